//! The personal-data endpoints (`POST`/`GET /v1/shipments/{id}/personal`), called with
//! `oneshot` on the router over a real sled store holding a committed lifecycle, and the
//! deletion that follows a committed erasure.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use custody_contracts::load::sample_tables;
use custody_contracts::ContractRules;
use custody_ledger::event::EncodedEvent;
use custody_ledger::keys::Keypair;
use custody_ledger::model::{EventKind, MemberId, PersonalDataErased, ShipmentId};
use custody_ledger::personal::{Disclosure, PersonalField, Salt};
use custody_ledger::store::Store;
use custody_ledger::testkit::{self, TestNet, GENESIS_TIME};
use custody_ledger::Timestamp;
use custody_node::api::{app, ApiState};
use custody_node::consensus::host::Committed;
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_node::personal::auth;
use custody_node::personal::{Personal, PersonalFiles};
use custody_sled::SledStore;
use tokio::sync::{broadcast, mpsc, Mutex};
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    net: TestNet,
    store: Arc<SledStore>,
    rules: ContractRules,
    files: PersonalFiles,
    state: ApiState,
    lifecycle: Vec<EncodedEvent>,
    other: Vec<EncodedEvent>,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

impl Fixture {
    /// A store with `A-1` registered and handed to `carrier-swift` (5 events), and `A-2`
    /// registered; the node is the seller's.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = TestNet::new();
        let store = Arc::new(
            SledStore::open(dir.path().join("ledger"), net.genesis_hash()).expect("store"),
        );
        let tables: Vec<EncodedEvent> = sample_tables(GENESIS_TIME)
            .into_iter()
            .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
            .collect();
        let lifecycle = net.lifecycle("A-1")[..3].to_vec();
        let other = net.lifecycle("A-2")[..1].to_vec();
        let mut rules = ContractRules::default();
        for events in [tables, lifecycle.clone(), other.clone()] {
            let built = net
                .commit_with(store.as_ref(), &rules, events, GENESIS_TIME)
                .expect("commit");
            assert_eq!(built.rejected, vec![], "fixture events apply");
            rules = built.into_rules();
        }
        let files = PersonalFiles::open(&dir.path().join("data")).expect("files");
        let (outbound, outbound_rx) = mpsc::channel(100);
        let state_keys: Arc<custody_ledger::keys::KeyCache> = Default::default();
        let state_genesis = Arc::new(net.genesis.clone());
        let state_store = store.clone();
        let state_rules = Arc::new(RwLock::new(rules.clone()));
        let state_mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
            count_max: 100,
            size_bytes_max: 1 << 20,
            signer_count_max: 50,
            signer_size_bytes_max: 1 << 20,
        })));
        let state = ApiState {
            intake: Intake::start(Judge {
                store: state_store.clone(),
                genesis: state_genesis.clone(),
                rules: state_rules.clone(),
                mempool: state_mempool.clone(),
                keys: state_keys.clone(),
            })
            .expect("the admission queue starts"),
            keys: state_keys.clone(),
            genesis: state_genesis.clone(),
            store: state_store.clone(),
            rules: state_rules.clone(),
            mempool: state_mempool.clone(),
            committed: broadcast::channel(16).0,
            outbound,
            node_key: net.validator_keys()[0].public(),
            validator: true,
            metrics: Arc::new(Metrics::new()),
            peers: Arc::new(AtomicUsize::new(3)),
            health: Arc::new(Health::new(4, 0, std::time::Instant::now())),
            epcis_gateway: None,
            epcis_subscriptions: Default::default(),
            personal: Arc::new(Personal::new(
                files.clone(),
                None,
                Some(MemberId::new("seller-acme")),
            )),
        };
        Fixture {
            _dir: dir,
            net,
            store,
            rules,
            files,
            state,
            lifecycle,
            other,
            _outbound: outbound_rx,
        }
    }

    fn name_disclosure(&self) -> Disclosure {
        testkit::disclosures("A-1", self.lifecycle[0].id(), None).remove(0)
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn disclose(
        &self,
        key: &Keypair,
        shipment: &str,
        ds: Vec<Disclosure>,
    ) -> (StatusCode, String) {
        let request = auth::sign_write(key, &ShipmentId::new(shipment), ds);
        self.call(
            Request::post(format!("/v1/shipments/{shipment}/personal"))
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&request).expect("json")))
                .expect("request"),
        )
        .await
    }

    async fn read_at(&self, key: &Keypair, shipment: &str, time_ms: u64) -> (StatusCode, String) {
        let read = auth::sign_read(key, &ShipmentId::new(shipment), time_ms);
        self.call(
            Request::get(format!("/v1/shipments/{shipment}/personal"))
                .header("custody-signer", read.signer.to_hex())
                .header("custody-time", read.time_ms.to_string())
                .header("custody-signature", hex::encode(read.signature.0))
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    async fn read(&self, key: &Keypair, shipment: &str) -> (StatusCode, String) {
        self.read_at(key, shipment, auth::now_ms()).await
    }

    /// Commits the seller's erasure of `A-1` and returns the announcement of its block.
    fn erase(&self) -> Committed {
        let event = self.net.sign(
            "seller-acme",
            EventKind::PersonalDataErased(PersonalDataErased {
                shipment_id: ShipmentId::new("A-1"),
            }),
        );
        let built = self
            .net
            .commit_with(
                self.store.as_ref(),
                &self.rules,
                vec![event],
                Timestamp(GENESIS_TIME.0 + 1),
            )
            .expect("commit");
        assert_eq!(built.rejected, vec![], "the erasure applies");
        let certificate = self.net.certify(built.block());
        Committed::of(&built.validated, certificate)
    }
}

fn assert_problem(answer: &(StatusCode, String), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let problem: serde_json::Value = serde_json::from_str(&answer.1).expect("problem json");
    assert_eq!(problem["code"], code, "{}", answer.1);
}

#[tokio::test]
async fn a_party_discloses_and_parties_read_back_and_others_are_refused() {
    let f = Fixture::new();
    let name = f.name_disclosure();
    let answer = f
        .disclose(f.net.key("seller-acme"), "A-1", vec![name.clone()])
        .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert!(answer.1.contains("\"held\":1"), "{}", answer.1);
    // The seller, the carrier it handed to, and the seller's node key all read it.
    for key in [
        f.net.key("seller-acme"),
        f.net.key("carrier-swift"),
        &f.net.validator_keys()[0],
    ] {
        let (status, body) = f.read(key, "A-1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let view: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(view["disclosures"][0]["value"], name.value);
    }
    // Not parties: the auditor, the broker (no event of A-1 yet), A-2's carrier-less reader.
    for key in [f.net.key("auditor-ivy"), f.net.key("broker-clear")] {
        assert_problem(
            &f.read(key, "A-1").await,
            StatusCode::FORBIDDEN,
            "personal.not_a_party",
        );
        assert_problem(
            &f.disclose(key, "A-1", vec![name.clone()]).await,
            StatusCode::FORBIDDEN,
            "personal.not_a_party",
        );
    }
    assert_problem(
        &f.read(f.net.key("carrier-swift"), "A-2").await,
        StatusCode::FORBIDDEN,
        "personal.not_a_party",
    );
    assert_problem(
        &f.read(f.net.key("seller-acme"), "NOPE-1").await,
        StatusCode::NOT_FOUND,
        "shipment.not_found",
    );
}

impl Fixture {
    async fn read_batch(&self, read: &auth::ReadBatch) -> (StatusCode, String) {
        self.call(
            Request::post("/v1/personal/batch")
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(read).expect("json")))
                .expect("request"),
        )
        .await
    }
}

/// The shipments a batch read's answer holds disclosures of.
fn answered(answer: &(StatusCode, String)) -> (u64, Vec<String>) {
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let read: auth::ReadBatchAnswer = serde_json::from_str(&answer.1).expect("answer json");
    let shipments = read
        .shipments
        .iter()
        .map(|v| v.shipment_id.as_str().to_owned())
        .collect();
    (read.height, shipments)
}

#[tokio::test]
async fn a_batch_read_answers_only_the_shipments_the_signer_is_a_party_of() {
    let f = Fixture::new();
    let seller = f.net.key("seller-acme");
    let a1 = f.name_disclosure();
    let a2 = testkit::disclosures("A-2", f.other[0].id(), None).remove(0);
    for (shipment, d) in [("A-1", a1.clone()), ("A-2", a2)] {
        let answer = f.disclose(seller, shipment, vec![d]).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    }
    let head = f.store.head().expect("store").expect("head").height;
    let ids = |names: &[&str]| {
        names
            .iter()
            .map(|n| ShipmentId::new(*n))
            .collect::<Vec<_>>()
    };
    let now = auth::now_ms();
    // The carrier is a party of A-1 (handed to it), not of A-2; NOPE-1 is unknown.
    let carrier = f.net.key("carrier-swift");
    let read = auth::sign_read_batch(carrier, ids(&["A-2", "A-1", "NOPE-1", "A-1"]), now);
    let answer = f.read_batch(&read).await;
    assert_eq!(answered(&answer), (head, vec!["A-1".to_owned()]));
    let view: auth::ReadBatchAnswer = serde_json::from_str(&answer.1).expect("json");
    assert_eq!(view.shipments[0].disclosures, vec![a1]);
    // The seller's node key is a party of both; the auditor of neither.
    let read = auth::sign_read_batch(&f.net.validator_keys()[0], ids(&["A-1", "A-2"]), now);
    assert_eq!(
        answered(&f.read_batch(&read).await).1,
        vec!["A-1".to_owned(), "A-2".to_owned()]
    );
    let read = auth::sign_read_batch(f.net.key("auditor-ivy"), ids(&["A-1", "A-2"]), now);
    assert_eq!(answered(&f.read_batch(&read).await), (head, vec![]));
    // Refused, and nothing answered: stale, tampered, too many, not a batch read.
    let stale = auth::sign_read_batch(carrier, ids(&["A-1"]), now - auth::READ_SKEW_MS_MAX - 1);
    assert_problem(
        &f.read_batch(&stale).await,
        StatusCode::UNAUTHORIZED,
        "personal.stale_request",
    );
    let mut tampered = auth::sign_read_batch(carrier, ids(&["A-2"]), now);
    tampered.shipments = ids(&["A-1"]);
    assert_problem(
        &f.read_batch(&tampered).await,
        StatusCode::UNAUTHORIZED,
        "personal.signature",
    );
    let many: Vec<String> = (0..=auth::READ_BATCH_SHIPMENTS_MAX)
        .map(|i| format!("S-{i}"))
        .collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    let too_many = auth::sign_read_batch(carrier, ids(&names), now);
    let answer = f.read_batch(&too_many).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "personal.too_many",
    );
    assert!(answer.1.contains("shipments"), "{}", answer.1);
    let malformed = f
        .call(
            Request::post("/v1/personal/batch")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"shipments": "A-1"}"#))
                .expect("request"),
        )
        .await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "request.body");
}

#[tokio::test]
async fn disclosures_that_do_not_open_their_commitment_are_refused_and_nothing_is_kept() {
    let f = Fixture::new();
    let seller = f.net.key("seller-acme");
    let mut wrong_value = f.name_disclosure();
    wrong_value.value = "Somebody Else".into();
    let mut wrong_salt = f.name_disclosure();
    wrong_salt.salt = Salt([0; 32]);
    let wrong_field = Disclosure::new(
        f.lifecycle[0].id(),
        PersonalField::ReceivedBy,
        "J. Buyer",
        Salt([1; 32]),
    );
    let other_shipment = testkit::disclosures("A-2", f.other[0].id(), None);
    let not_committed = Disclosure {
        event_id: custody_ledger::Digest::sha256(b"never committed"),
        ..f.name_disclosure()
    };
    for (ds, code) in [
        (vec![wrong_value], "disclosure.commitment"),
        (vec![wrong_salt], "disclosure.commitment"),
        (vec![wrong_field], "disclosure.field"),
        (other_shipment, "disclosure.event"),
        (vec![not_committed], "disclosure.event"),
    ] {
        let answer = f.disclose(seller, "A-1", ds).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let too_many = vec![f.name_disclosure(); custody_node::personal::DISCLOSURES_MAX + 1];
    assert_problem(
        &f.disclose(seller, "A-1", too_many).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "personal.too_many",
    );
    assert!(!f.files.holds(&ShipmentId::new("A-1")), "nothing was kept");
}

#[tokio::test]
async fn unsigned_forged_and_stale_requests_are_refused() {
    let f = Fixture::new();
    let seller = f.net.key("seller-acme");
    let unsigned = f
        .call(
            Request::get("/v1/shipments/A-1/personal")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_problem(&unsigned, StatusCode::UNAUTHORIZED, "personal.unsigned");
    let stale = f
        .read_at(
            seller,
            "A-1",
            auth::now_ms() - auth::READ_SKEW_MS_MAX - 60_000,
        )
        .await;
    assert_problem(&stale, StatusCode::UNAUTHORIZED, "personal.stale_request");
    // Signed by one key, claiming another.
    let mut forged = auth::sign_write(
        f.net.key("auditor-ivy"),
        &ShipmentId::new("A-1"),
        vec![f.name_disclosure()],
    );
    forged.signer = seller.public();
    let answer = f
        .call(
            Request::post("/v1/shipments/A-1/personal")
                .body(Body::from(serde_json::to_vec(&forged).expect("json")))
                .expect("request"),
        )
        .await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "personal.signature");
    let malformed = f
        .call(
            Request::post("/v1/shipments/A-1/personal")
                .body(Body::from("{\"disclosures\": 1}"))
                .expect("request"),
        )
        .await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "request.body");
}

#[tokio::test]
async fn a_committed_erasure_deletes_the_file_and_every_later_request_is_gone() {
    let f = Fixture::new();
    let seller = f.net.key("seller-acme");
    let answer = f.disclose(seller, "A-1", vec![f.name_disclosure()]).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let a1 = ShipmentId::new("A-1");
    assert!(f.files.holds(&a1));
    let (commits, rx) = broadcast::channel(4);
    let follower = tokio::spawn(custody_node::personal::follow_commits(
        f.state.personal.clone(),
        f.store.clone(),
        f.state.genesis.clone(),
        rx,
    ));
    commits.send(f.erase()).expect("a follower listens");
    drop(commits);
    follower.await.expect("the follower ends with the channel");
    assert!(!f.files.holds(&a1), "the erased shipment's file is gone");
    assert_problem(
        &f.read(seller, "A-1").await,
        StatusCode::GONE,
        "personal.erased",
    );
    assert_problem(
        &f.disclose(seller, "A-1", vec![f.name_disclosure()]).await,
        StatusCode::GONE,
        "personal.erased",
    );
    assert!(!f.files.holds(&a1), "a late disclosure stores nothing");
    // The shipment view says so.
    let (status, body) = f
        .call(
            Request::get("/v1/shipments/A-1")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let state: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(state["personal_erased"], true);
}

#[tokio::test]
async fn the_start_sweep_deletes_what_an_erasure_committed_while_the_node_was_down() {
    let f = Fixture::new();
    let seller = f.net.key("seller-acme");
    let answer = f.disclose(seller, "A-1", vec![f.name_disclosure()]).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let a2 = testkit::disclosures("A-2", f.other[0].id(), None);
    let answer = f.disclose(seller, "A-2", a2).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    // Committed with no one following: as if the node had stopped before deleting.
    let _ = f.erase();
    custody_node::personal::sweep_async(&f.files, &f.store).await;
    assert!(!f.files.holds(&ShipmentId::new("A-1")));
    assert!(
        f.files.holds(&ShipmentId::new("A-2")),
        "a shipment not erased is kept"
    );
}

#[tokio::test]
async fn a_node_that_keeps_no_personal_data_says_so() {
    let mut f = Fixture::new();
    f.state.personal = Default::default();
    assert_problem(
        &f.read(f.net.key("seller-acme"), "A-1").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "personal.unavailable",
    );
}
