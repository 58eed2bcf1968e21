//! EPCIS webhook subscriptions: a real receiver on 127.0.0.1 (a tiny axum server) records the
//! pushes and checks their `GS1-Signature`; events are committed to a real sled store and the
//! commit is announced on `committed` as the consensus host does. Matching events arrive and
//! others do not, a receiver that is down at first gets the events once it is up, and
//! subscriptions with their cursors survive rebuilding the state from the data directory.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use custody_contracts::load::sample_tables;
use custody_contracts::ContractRules;
use custody_ledger::block::CommitCertificate;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::EventKind;
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::Timestamp;
use custody_node::api::{app, ApiState};
use custody_node::consensus::host::Committed;
use custody_node::epcis::subscriptions::{signature, spawn_delivery, Backoff, Subscriptions};
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_sled::SledStore;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, Mutex};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";
/// Short back-off, so that a retry comes soon.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(50),
    max: Duration::from_millis(400),
};
const WAIT_MAX: Duration = Duration::from_secs(30);

/// What a receiver got: each push's events' IDs, and whether every signature was right.
#[derive(Default)]
struct Received {
    pushes: Vec<Vec<String>>,
    bad_signatures: usize,
}

impl Received {
    fn ids(&self) -> Vec<String> {
        self.pushes.iter().flatten().cloned().collect()
    }
}

/// A receiver on `listener` at `/hook`, answering 200 and recording every push.
fn receiver(listener: tokio::net::TcpListener) -> Arc<StdMutex<Received>> {
    let received = Arc::new(StdMutex::new(Received::default()));
    let record = received.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let mut r = record.lock().expect("lock");
                let sig = headers
                    .get("gs1-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if sig != signature(TOKEN, &body) || !valid_hmac(sig, &body) {
                    r.bad_signatures += 1;
                }
                let document: Value = serde_json::from_slice(&body).expect("JSON");
                assert_eq!(document["type"], "EPCISQueryDocument");
                assert_eq!(headers["gs1-epcis-version"], "2.0.0");
                let ids = custody_epcis::events_of(&document)
                    .expect("events")
                    .iter()
                    .map(|e| e["eventID"].as_str().expect("eventID").to_owned())
                    .collect();
                r.pushes.push(ids);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("receiver");
    });
    received
}

/// Checks the signature independently of the node's code: HMAC-SHA256 with the token.
fn valid_hmac(sig: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let Some(hex) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(bytes) = hex::decode(hex) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(TOKEN.as_bytes()).expect("key");
    mac.update(body);
    hex == hex.to_lowercase() && mac.verify_slice(&bytes).is_ok()
}

async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
}

struct Fixture {
    dir: tempfile::TempDir,
    net: TestNet,
    store: Arc<SledStore>,
    blocks: u64,
    state: ApiState,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

impl Fixture {
    /// A store with reference data (no EPCIS form) in block 1, and the delivery task running.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = TestNet::new();
        let store = Arc::new(
            SledStore::open(dir.path().join("ledger"), net.genesis_hash()).expect("store"),
        );
        let (outbound, outbound_rx) = mpsc::channel(100);
        let state_keys: Arc<custody_ledger::keys::KeyCache> = Default::default();
        let state_genesis = Arc::new(net.genesis.clone());
        let state_store = store.clone();
        let state_rules = Arc::new(RwLock::new(ContractRules::default()));
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
            epcis_subscriptions: Subscriptions::open(dir.path(), BACKOFF).expect("open"),
            personal: Default::default(),
        };
        spawn_delivery(&state);
        let mut f = Fixture {
            dir,
            net,
            store,
            blocks: 0,
            state,
            _outbound: outbound_rx,
        };
        let tables: Vec<EncodedEvent> = sample_tables(GENESIS_TIME)
            .into_iter()
            .map(|t| {
                f.net
                    .sign("customs-qx", EventKind::ReferenceDataPublished(t))
            })
            .collect();
        f.commit(tables);
        f
    }

    /// The state rebuilt from the data directory, as after a restart, with its own delivery
    /// task (the old one stops with its channel).
    fn restart(&mut self) {
        self.state.committed = broadcast::channel(16).0;
        self.state.epcis_subscriptions =
            Subscriptions::open(self.dir.path(), BACKOFF).expect("reopen");
        spawn_delivery(&self.state);
    }

    /// Commits `events` in one block and announces it as the host does.
    fn commit(&mut self, events: Vec<EncodedEvent>) {
        self.blocks += 1;
        let built = self
            .net
            .commit(
                self.store.as_ref(),
                events,
                Timestamp(GENESIS_TIME.0 + 1_000 * self.blocks),
            )
            .expect("commit");
        assert_eq!(built.rejected, vec![], "events apply");
        let certificate = CommitCertificate {
            height: built.block().header.height,
            round: 0,
            block_hash: built.block().header.hash(),
            signatures: Vec::new(),
        };
        let _ = self
            .state
            .committed
            .send(Committed::of(&built.validated, certificate));
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let response = app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// Subscribes `dest` to `query`; the subscription's ID.
    async fn subscribe(&self, dest: &str, query: Value) -> String {
        let (status, headers, body) = self
            .call(
                Method::POST,
                "/epcis/queries/shipments/subscriptions",
                Some(json!({ "dest": dest, "signatureToken": TOKEN, "query": query })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["subscriptionID"].as_str().expect("id").to_owned();
        assert_eq!(
            headers[header::LOCATION],
            format!("/epcis/queries/shipments/subscriptions/{id}").as_str()
        );
        assert_eq!(body["dest"], dest);
        assert!(body["createdAt"].is_string());
        assert!(
            body.get("signatureToken").is_none(),
            "the token is not shown"
        );
        id
    }
}

fn uri_of(event: &EncodedEvent) -> String {
    format!("urn:custody:event:{}", event.id())
}

/// Waits until `received` holds `want` events (or the bound passes).
async fn wait_for(received: &StdMutex<Received>, want: usize) {
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    while received.lock().expect("lock").ids().len() < want
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn matching_events_are_pushed_signed_and_survive_a_restart() {
    let mut f = Fixture::new();
    let listener = loopback().await;
    let dest = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let received = receiver(listener);
    let id = f
        .subscribe(&dest, json!({ "EQ_bizStep": "consigning" }))
        .await;
    let events = f.net.lifecycle("S-1");
    // The two handoff proposals are the consigning events.
    let want: Vec<String> = vec![uri_of(&events[1]), uri_of(&events[3])];
    for event in &events[..6] {
        f.commit(vec![event.clone()]);
    }
    wait_for(&received, 2).await;
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let r = received.lock().expect("lock");
        assert_eq!(r.ids(), want);
        assert_eq!(r.bad_signatures, 0);
    }

    // Listed and read back.
    let (status, _, list) = f
        .call(Method::GET, "/epcis/queries/shipments/subscriptions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["subscriptions"][0]["subscriptionID"], id.as_str());
    assert_eq!(
        list["subscriptions"][0]["query"]["EQ_bizStep"],
        "consigning"
    );
    let (status, _, list) = f
        .call(Method::GET, "/epcis/queries/other/subscriptions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["subscriptions"], json!([]));

    // After a restart: the subscription is back, with its cursor: nothing is pushed again,
    // and a new matching event is.
    f.restart();
    let uri = format!("/epcis/queries/shipments/subscriptions/{id}");
    let (status, _, one) = f.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["dest"], dest.as_str());
    let other = f.net.lifecycle("S-2");
    f.commit(vec![other[0].clone(), other[1].clone()]);
    wait_for(&received, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let r = received.lock().expect("lock");
        let mut want = want.clone();
        want.push(uri_of(&other[1]));
        assert_eq!(r.ids(), want, "no duplicates after the restart");
        assert_eq!(r.bad_signatures, 0);
    }

    // Deleted: gone, also after a restart, and no more pushes.
    let (status, _, _) = f.call(Method::DELETE, &uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = f.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = f.call(Method::DELETE, &uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.restart();
    let (status, _, _) = f.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.commit(vec![other[2].clone(), other[3].clone()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.lock().expect("lock").ids().len(), 3);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_events_once_it_is_up() {
    let mut f = Fixture::new();
    // A free port, nobody listening on it yet.
    let addr: SocketAddr = loopback().await.local_addr().expect("addr");
    let dest = format!("http://{addr}/hook");
    f.subscribe(&dest, json!({})).await;
    let events = f.net.lifecycle("S-1");
    let all: Vec<String> = events.iter().map(uri_of).collect();
    for event in &events {
        f.commit(vec![event.clone()]);
    }
    // A few failed attempts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver(tokio::net::TcpListener::bind(addr).await.expect("rebind"));
    // No further commit: the retry alone delivers.
    wait_for(&received, all.len()).await;
    let r = received.lock().expect("lock");
    let got = r.ids();
    // At least once: duplicates would be allowed, but every event is there, in order.
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), all.len(), "{got:?}");
    assert_eq!(got, all);
    assert_eq!(r.bad_signatures, 0);
}

#[tokio::test]
async fn bad_subscriptions_are_400_naming_the_field() {
    let f = Fixture::new();
    let path = "/epcis/queries/q/subscriptions";
    let ok = "http://127.0.0.1:9/hook";
    let cases = [
        (json!({ "signatureToken": TOKEN }), "dest"),
        (
            json!({ "dest": "ftp://x/y", "signatureToken": TOKEN }),
            "dest",
        ),
        (
            json!({ "dest": "not a url", "signatureToken": TOKEN }),
            "dest",
        ),
        (json!({ "dest": ok }), "signatureToken"),
        (
            json!({ "dest": ok, "signatureToken": "" }),
            "signatureToken",
        ),
        (
            json!({ "dest": ok, "signatureToken": TOKEN, "query": { "perPage": "5" } }),
            "perPage",
        ),
        (
            json!({ "dest": ok, "signatureToken": TOKEN, "query": { "eventType": "Nope" } }),
            "eventType",
        ),
        (
            json!({ "dest": ok, "signatureToken": TOKEN, "query": { "colour": "red" } }),
            "colour",
        ),
        (
            json!({ "dest": ok, "signatureToken": TOKEN, "schedule": {} }),
            "schedule",
        ),
    ];
    for (body, field) in cases {
        let (status, headers, problem) = f.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (status, _, list) = f.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["subscriptions"], json!([]), "nothing was kept");
}
