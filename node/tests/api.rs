//! The HTTP API's handlers, called with `oneshot` on the router over a real sled store holding
//! a committed history: every endpoint's answers, and bad input to every endpoint answered
//! with a 4xx problem that changes nothing.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use custody_contracts::load::sample_tables;
use custody_contracts::ContractRules;
use custody_ledger::bundle;
use custody_ledger::event::EncodedEvent;
use custody_ledger::merkle;
use custody_ledger::model::EventKind;
use custody_ledger::store::{SledStore, Store};
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::view::{BlockView, ConsistencyView, EventView, MemberView, Page, Problem};
use custody_ledger::view::{EventEntry, Receipt, Status};
use custody_node::api::{app, ApiState, BODY_SIZE_BYTES_MAX};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, Mutex};
use tower::ServiceExt;

/// A router over a store with reference data and two committed lifecycles (shipments `A-1`
/// and `A-2`), and what a test needs to look at behind it.
struct Fixture {
    _dir: tempfile::TempDir,
    net: TestNet,
    store: Arc<SledStore>,
    mempool: Arc<Mutex<Mempool>>,
    state: ApiState,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

impl Fixture {
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
        let mut rules = ContractRules::default();
        for events in [
            tables,
            net.lifecycle("A-1")[..5].to_vec(),
            net.lifecycle("A-2")[..3].to_vec(),
        ] {
            let built = net
                .commit_with(store.as_ref(), &rules, events, GENESIS_TIME)
                .expect("commit");
            assert_eq!(built.rejected, vec![], "fixture events apply");
            rules = built.rules;
        }
        let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
            count_max: 100,
            size_bytes_max: 1 << 20,
        })));
        let (outbound, outbound_rx) = mpsc::channel(100);
        let state = ApiState {
            genesis: Arc::new(net.genesis.clone()),
            store: store.clone(),
            rules: Arc::new(RwLock::new(rules)),
            mempool: mempool.clone(),
            committed: broadcast::channel(16).0,
            outbound,
            node_key: net.validator_keys()[0].public(),
            validator: true,
            metrics: Arc::new(Metrics::new()),
            peers: Arc::new(AtomicUsize::new(3)),
        };
        Fixture {
            _dir: dir,
            net,
            store,
            mempool,
            state,
            _outbound: outbound_rx,
        }
    }

    fn app(&self) -> Router {
        app(self.state.clone())
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
        let response = self.app().oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body")
            .to_vec();
        (status, content_type, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, String, Vec<u8>) {
        self.call(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    /// A GET that must succeed, decoded.
    async fn ok<T: DeserializeOwned>(&self, uri: &str) -> T {
        let (status, _, body) = self.get(uri).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    async fn post(
        &self,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        self.call(
            Request::post(uri)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .expect("request"),
        )
        .await
    }

    /// The store head and mempool size: what bad input must leave alone.
    async fn footprint(&self) -> (Option<custody_ledger::store::Head>, usize) {
        (
            self.store.head().expect("head"),
            self.mempool.lock().await.len(),
        )
    }
}

/// Asserts a 4xx problem with `code`, and returns it.
fn problem(answer: (StatusCode, String, Vec<u8>), status: StatusCode, code: &str) -> Problem {
    let (got, content_type, body) = answer;
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(got, status, "{text}");
    assert!(got.is_client_error());
    assert_eq!(content_type, "application/problem+json", "{text}");
    let problem: Problem = serde_json::from_slice(&body).expect("problem body");
    assert_eq!(problem.code, code, "{text}");
    assert_eq!(problem.status, status.as_u16());
    assert_eq!(problem.kind, format!("urn:custody:problem:{code}"));
    problem
}

fn json(event: &EncodedEvent) -> Vec<u8> {
    serde_json::to_vec(&event.event).expect("json")
}

#[tokio::test]
async fn a_valid_event_is_accepted_and_waits_in_the_mempool() {
    let f = Fixture::new();
    let next = f.net.lifecycle("A-2")[3].clone();
    let (status, _, body) = f.post("/v1/events", "application/json", json(&next)).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let accepted: custody_ledger::view::Accepted = serde_json::from_slice(&body).unwrap();
    assert_eq!(accepted.event_id, next.id);
    assert!(f.mempool.lock().await.contains(&next.id));
    // The same event again is not added twice.
    let (status, _, _) = f.post("/v1/events", "application/json", json(&next)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(f.mempool.lock().await.len(), 1);
    // Canonical bytes are accepted too.
    let other = f.net.register("A-3", "CN", "FR");
    let (status, _, _) = f
        .post(
            "/v1/events",
            "application/octet-stream",
            other.bytes.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(f.mempool.lock().await.len(), 2);
}

#[tokio::test]
async fn bad_submissions_get_a_problem_and_change_nothing() {
    let f = Fixture::new();
    let before = f.footprint().await;
    let post = |body: Vec<u8>| f.post("/v1/events", "application/json", body);

    problem(
        post(b"{not json".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "event.malformed",
    );
    problem(
        post(br#"{"event": 5, "signer": [], "signature": true}"#.to_vec()).await,
        StatusCode::BAD_REQUEST,
        "event.malformed",
    );
    let mut forged = f.net.register("F-1", "CN", "FR");
    forged.event.signature.0[3] ^= 1;
    let p = problem(
        post(json(&forged)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature.invalid",
    );
    assert_eq!(p.field.as_deref(), Some("signature"));
    let mut bad_total = custody_ledger::testkit::registration("F-2", "CN", "FR");
    bad_total.invoice.total_minor += 1;
    let bad_total = f
        .net
        .sign("seller-acme", EventKind::ShipmentRegistered(bad_total));
    problem(
        post(json(&bad_total)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invoice.total_mismatch",
    );
    // A replayed (committed) event.
    let replayed = f.net.lifecycle("A-1")[0].clone();
    problem(
        post(json(&replayed)).await,
        StatusCode::CONFLICT,
        "event.duplicate",
    );
    // Oversize body, wrong media type, bad query, garbage canonical bytes.
    problem(
        post(vec![b' '; BODY_SIZE_BYTES_MAX + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request.body",
    );
    problem(
        f.post("/v1/events", "text/plain", json(&replayed)).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "request.media_type",
    );
    problem(
        f.post(
            "/v1/events?wait=forever",
            "application/json",
            json(&replayed),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "request.query",
    );
    problem(
        f.post("/v1/events?colour=red", "application/json", json(&replayed))
            .await,
        StatusCode::BAD_REQUEST,
        "request.query",
    );
    problem(
        f.post("/v1/events", "application/octet-stream", vec![0xFF; 40])
            .await,
        StatusCode::BAD_REQUEST,
        "event.malformed",
    );
    assert_eq!(f.footprint().await, before, "bad input changed nothing");

    let metrics = String::from_utf8(f.get("/metrics").await.2).unwrap();
    assert!(
        metrics.contains("custody_events_rejected_total{code=\"signature.invalid\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("custody_events_rejected_total{code=\"invoice.total_mismatch\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_event_is_served_with_a_proof_to_the_head() {
    let f = Fixture::new();
    let wanted = f.net.lifecycle("A-1")[2].clone();
    let view: EventView = f.ok(&format!("/v1/events/{}", wanted.id)).await;
    assert_eq!(view.event, wanted.event);
    assert_eq!(view.height, 2);
    let head = f.store.head().unwrap().expect("head");
    let Receipt {
        log_index,
        log_size,
        log_root,
        inclusion_proof,
        height,
        ..
    } = view.receipt;
    assert_eq!(
        (height, log_size, log_root),
        (head.height, head.log_size, head.log_root)
    );
    merkle::verify_inclusion(
        &merkle::leaf_hash(wanted.id.as_bytes()),
        log_index,
        log_size,
        &inclusion_proof,
        &log_root,
    )
    .expect("the proof verifies");

    problem(
        f.get(&format!("/v1/events/{}", custody_ledger::Digest([7; 32])))
            .await,
        StatusCode::NOT_FOUND,
        "event.not_found",
    );
    let p = problem(
        f.get("/v1/events/xyz").await,
        StatusCode::BAD_REQUEST,
        "request.path",
    );
    assert_eq!(p.field.as_deref(), Some("id"));
}

#[tokio::test]
async fn shipments_their_events_pages_and_bundle() {
    let f = Fixture::new();
    let state: serde_json::Value = f.ok("/v1/shipments/A-1").await;
    assert_eq!(state["shipment_id"], "A-1");
    assert_eq!(state["custodian"], "carrier-lastmile");

    let lifecycle: Vec<_> = f.net.lifecycle("A-1")[..5].iter().map(|e| e.id).collect();
    let mut seen = Vec::new();
    let mut uri = "/v1/shipments/A-1/events?limit=2".to_owned();
    for _ in 0..10 {
        let page: Page<EventEntry> = f.ok(&uri).await;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.event_id));
        match page.next {
            Some(next) => uri = format!("/v1/shipments/A-1/events?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, lifecycle, "pages give every event once, in order");

    let bundle: bundle::Bundle = f.ok("/v1/shipments/A-1/bundle").await;
    let verified = bundle::verify(&bundle, &f.net.genesis).expect("the bundle verifies");
    assert_eq!(verified.events.len(), 5);

    for uri in [
        "/v1/shipments/NOPE",
        "/v1/shipments/NOPE/events",
        "/v1/shipments/NOPE/bundle",
    ] {
        problem(
            f.get(uri).await,
            StatusCode::NOT_FOUND,
            "shipment.not_found",
        );
    }
    let long = "X".repeat(65);
    problem(
        f.get(&format!("/v1/shipments/{long}")).await,
        StatusCode::BAD_REQUEST,
        "request.path",
    );
    for query in ["limit=0", "limit=1001", "limit=two", "after=-1", "page=2"] {
        problem(
            f.get(&format!("/v1/shipments/A-1/events?{query}")).await,
            StatusCode::BAD_REQUEST,
            "request.query",
        );
    }
}

#[tokio::test]
async fn members_and_their_events() {
    let f = Fixture::new();
    let members: Vec<MemberView> = f.ok("/v1/members").await;
    assert_eq!(members.len(), f.net.genesis.members.len());
    let seller = members
        .iter()
        .find(|m| m.id.as_str() == "seller-acme")
        .expect("seller");
    assert_eq!(seller.key, f.net.key("seller-acme").public());
    assert_eq!(seller.voting_power, 1);

    let page: Page<EventEntry> = f.ok(&format!("/v1/members/{}/events", seller.key)).await;
    assert!(!page.items.is_empty());
    assert!(page.items.iter().all(|e| e.event.signer == seller.key));
    problem(
        f.get("/v1/members/abc/events").await,
        StatusCode::BAD_REQUEST,
        "request.path",
    );
}

#[tokio::test]
async fn blocks_checkpoint_and_consistency() {
    let f = Fixture::new();
    let one: BlockView = f.ok("/v1/blocks/1").await;
    assert_eq!(one.hash, one.header.hash());
    assert_eq!(one.events.len(), one.event_ids.len());
    let head: BlockView = f.ok("/v1/blocks/head").await;
    assert_eq!(head.header.height, 3);
    problem(
        f.get("/v1/blocks/4").await,
        StatusCode::NOT_FOUND,
        "block.not_found",
    );
    problem(
        f.get("/v1/blocks/minus-one").await,
        StatusCode::BAD_REQUEST,
        "request.path",
    );

    let checkpoint: bundle::Checkpoint = f.ok("/v1/log/checkpoint").await;
    let header = bundle::verify_checkpoint(&checkpoint, &f.net.genesis).expect("valid");
    assert_eq!(header.height, 3);

    let size = header.log_size;
    let view: ConsistencyView = f.ok(&format!("/v1/log/consistency?from=3&to={size}")).await;
    merkle::verify_consistency(3, size, &view.from_root, &view.to_root, &view.proof)
        .expect("consistent");
    assert_eq!(view.to_root, header.log_root);
    for query in [
        "from=0&to=3",
        &format!("from=3&to={}", size + 1),
        "from=5&to=3",
        "from=3",
        "to=3",
    ] {
        let answer = f.get(&format!("/v1/log/consistency?{query}")).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn status_health_metrics_and_unknown_routes() {
    let f = Fixture::new();
    let status: Status = f.ok("/v1/status").await;
    assert_eq!(status.height, 3);
    assert_eq!(status.genesis_hash, f.net.genesis_hash());
    let (code, _, body) = f.get("/healthz").await;
    assert_eq!((code, body.as_slice()), (StatusCode::OK, b"ok".as_slice()));
    let (code, content_type, body) = f.get("/metrics").await;
    assert_eq!(code, StatusCode::OK);
    assert!(content_type.starts_with("application/openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    for line in [
        "custody_height 3",
        "custody_peers 3",
        "custody_mempool_size_events 0",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    assert!(
        text.contains("custody_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    problem(
        f.get("/v2/anything").await,
        StatusCode::NOT_FOUND,
        "request.route",
    );
    problem(
        f.call(Request::delete("/v1/status").body(Body::empty()).unwrap())
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method",
    );
}

#[tokio::test]
async fn the_router_and_the_openapi_document_agree() {
    let f = Fixture::new();
    let (status, content_type, body) = f.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let document: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let paths = document["paths"].as_object().expect("paths");
    let event = f.net.lifecycle("A-1")[0].id.to_string();
    let key = f.net.key("seller-acme").public().to_string();
    for (method, route) in custody_node::openapi::ROUTES {
        assert!(
            paths[*route].get(method.to_lowercase()).is_some(),
            "{method} {route} is not in the served document"
        );
        // Every documented operation is routed: the answer is never the fallback's.
        let uri = route
            .replace(
                "{id}",
                if route.contains("events/{id}") {
                    &event
                } else {
                    "A-1"
                },
            )
            .replace("{key}", &key)
            .replace("{height}", "1");
        let request = Request::builder()
            .method(*method)
            .uri(&uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("request");
        let (status, _, body) = f.call(request).await;
        let text = String::from_utf8_lossy(&body);
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && !text.contains("request.route"),
            "{method} {uri} is documented but not routed: {status} {text}"
        );
    }
}
