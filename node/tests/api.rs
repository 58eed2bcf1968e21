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
use custody_ledger::state::ShipmentStatus;
use custody_ledger::store::Store;
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::view::{BatchOutcome, BatchStatus, BATCH_BODY_BYTES_MAX, BATCH_EVENTS_MAX};
use custody_ledger::view::{BlockView, ConsistencyView, EventView, MemberView, Page, Problem};
use custody_ledger::view::{EventEntry, NetworkView, Receipt, ShipmentList, Status};
use custody_node::api::{app, receipts_in, receipts_of, ApiState, BODY_SIZE_BYTES_MAX};
use custody_node::consensus::host::Committed;
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_sled::SledStore;
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
        Fixture::with_mempool(MempoolConfig {
            count_max: 100,
            size_bytes_max: 1 << 20,
            signer_count_max: 50,
            signer_size_bytes_max: 1 << 20,
        })
    }

    fn with_mempool(config: MempoolConfig) -> Fixture {
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
            rules = built.into_rules();
        }
        let mempool = Arc::new(Mutex::new(Mempool::new(config)));
        let (outbound, outbound_rx) = mpsc::channel(100);
        let state_keys: Arc<custody_ledger::keys::KeyCache> = Default::default();
        let state_genesis = Arc::new(net.genesis.clone());
        let state_store = store.clone();
        let state_rules = Arc::new(RwLock::new(rules));
        let state_mempool = mempool.clone();
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
            personal: Default::default(),
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
    serde_json::to_vec(&event.event()).expect("json")
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
    assert_eq!(accepted.event_id, next.id());
    assert!(f.mempool.lock().await.contains(&next.id()));
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
            other.bytes().to_vec(),
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
    let mut forged = f.net.register("F-1", "CN", "FR").into_event();
    forged.signature.0[3] ^= 1;
    let p = problem(
        post(json(&EncodedEvent::new(forged))).await,
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
    let view: EventView = f.ok(&format!("/v1/events/{}", wanted.id())).await;
    assert_eq!(view.event, *wanted.event());
    assert_eq!(view.height, 2);
    let head = f.store.head().unwrap().expect("head");
    let Receipt {
        log_index,
        log_size,
        log_root,
        inclusion_proof,
        height,
        entry,
        ..
    } = view.receipt;
    assert_eq!(
        (height, log_size, log_root),
        (head.height, head.log_size, head.log_root)
    );
    // The leaf is the event's log entry: the proof also proves its block and time.
    assert_eq!(
        (entry.event_id, entry.log_index, entry.height),
        (wanted.id(), log_index, view.height)
    );
    merkle::verify_inclusion(
        &entry.hash(),
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

    let lifecycle: Vec<_> = f.net.lifecycle("A-1")[..5].iter().map(|e| e.id()).collect();
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
    let event = f.net.lifecycle("A-1")[0].id().to_string();
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

#[tokio::test]
async fn regression_issue_11_path_values_that_cannot_be_ids_are_400_naming_the_field() {
    let f = Fixture::new();
    let long = "X".repeat(65);
    let cases = [
        ("/v1/shipments/%00".to_owned(), "id"),
        ("/v1/shipments/%00/events".to_owned(), "id"),
        ("/v1/shipments/%00/bundle".to_owned(), "id"),
        ("/v1/shipments/A-1%0A".to_owned(), "id"),
        ("/v1/shipments/A%201".to_owned(), "id"),
        ("/v1/shipments/%C3%A9t%C3%A9".to_owned(), "id"),
        (format!("/v1/shipments/{long}"), "id"),
        (format!("/v1/shipments/{long}/events"), "id"),
        (format!("/v1/shipments/{long}/bundle"), "id"),
        ("/v1/events/%00".to_owned(), "id"),
        ("/v1/members/%00/events".to_owned(), "key"),
        ("/v1/members/%00".to_owned(), "id"),
        (format!("/v1/members/{long}"), "id"),
        ("/v1/blocks/%00".to_owned(), "height"),
    ];
    let before = f.footprint().await;
    for (uri, field) in cases {
        let p = problem(f.get(&uri).await, StatusCode::BAD_REQUEST, "request.path");
        assert_eq!(p.field.as_deref(), Some(field), "{uri}");
    }
    assert_eq!(f.footprint().await, before);
    // The longest well-formed id is looked up, not refused.
    problem(
        f.get(&format!("/v1/shipments/{}", "X".repeat(64))).await,
        StatusCode::NOT_FOUND,
        "shipment.not_found",
    );
}

/// Sends `head` (a whole HTTP/1.1 request without a body) over a new connection and reads
/// the answer to its end: status, content type and body.
async fn raw_http(addr: std::net::SocketAddr, head: &str) -> (StatusCode, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), exchange)
        .await
        .expect("an answer within 20 s");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    let content_type = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map_or_else(String::new, |(_, value)| value.trim().to_owned());
    (status, content_type, answer[split + 4..].to_vec())
}

#[tokio::test]
async fn regression_issue_11_an_over_long_path_or_header_section_is_a_problem_over_http() {
    let f = Fixture::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(custody_node::http::serve(listener, f.app(), async {
        let _ = stopped.await;
    }));
    let get = |path: &str, headers: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n{headers}\r\n")
    };

    let (status, content_type, _) = raw_http(addr, &get("/v1/status", "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");

    let path = format!("/v1/shipments/{}", "X".repeat(20_000));
    let p = problem(
        raw_http(addr, &get(&path, "")).await,
        StatusCode::URI_TOO_LONG,
        "request.uri",
    );
    assert_eq!(p.field.as_deref(), Some("uri"));

    let big = format!("X-Big: {}\r\n", "v".repeat(40_000));
    let p = problem(
        raw_http(addr, &get("/v1/status", &big)).await,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request.headers",
    );
    assert_eq!(p.field.as_deref(), Some("headers"));

    let many: String = (0..150).map(|i| format!("X-Many-{i}: 1\r\n")).collect();
    problem(
        raw_http(addr, &get("/v1/status", &many)).await,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request.headers",
    );

    stop.send(()).expect("the server listens");
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .expect("the server task")
        .expect("the server ends cleanly");
}

#[tokio::test]
async fn regression_issue_11_serve_stops_accepting_and_finishes_requests_in_flight() {
    use axum::routing::get;
    let slow = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(custody_node::http::serve(listener, slow, async {
        let _ = stopped.await;
    }));
    // Keep-alive: the connection would stay open but for the shutdown.
    let in_flight = tokio::spawn(raw_http(addr, "GET /slow HTTP/1.1\r\nHost: node\r\n\r\n"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.send(()).expect("the server listens");
    let (status, _, body) = in_flight.await.expect("the request task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"done");
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops once the request is answered")
        .expect("the server task")
        .expect("the server ends cleanly");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// Issue 11: an event over the 1 MiB limit sent as JSON used to be taken with 202 (only the
/// canonical-bytes path checked the size); now both paths answer 413 `event.too_large` and
/// the mempool is untouched.
#[tokio::test]
async fn regression_issue_11_an_oversize_json_event_is_413_and_changes_nothing() {
    let f = Fixture::new();
    let oversize = f.net.oversize_publication();
    let json = serde_json::to_vec(&oversize.event()).expect("json");
    assert!(
        json.len() < BODY_SIZE_BYTES_MAX,
        "the body limit must not be what refuses it"
    );
    let refused = problem(
        f.post("/v1/events", "application/json", json).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "event.too_large",
    );
    assert_eq!(refused.field.as_deref(), Some("event"));
    problem(
        f.post(
            "/v1/events",
            "application/octet-stream",
            oversize.bytes().to_vec(),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "event.too_large",
    );
    assert!(f.mempool.lock().await.is_empty());
}

/// Issue 11: one signer beyond its share of the mempool is told to slow down (429 with
/// `Retry-After`); another signer is still admitted.
#[tokio::test]
async fn regression_issue_11_a_signer_over_its_quota_gets_429_and_others_do_not() {
    let f = Fixture::new();
    let quota = 50; // the fixture's `signer_count_max`
    for i in 0..quota {
        let event = f.net.register(&format!("QUOTA-{i}"), "CN", "FR");
        let (code, _, body) = f
            .post(
                "/v1/events",
                "application/octet-stream",
                event.bytes().to_vec(),
            )
            .await;
        assert_eq!(
            code,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let over = f.net.register("QUOTA-OVER", "CN", "FR");
    let response = f
        .app()
        .oneshot(
            Request::post("/v1/events")
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from(over.bytes().to_vec()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let refused: Problem = serde_json::from_slice(&body).expect("problem");
    assert_eq!(refused.code, "mempool.signer_quota");
    assert_eq!(f.mempool.lock().await.len(), quota);
    // Another signer: a customs authority's table.
    let table = custody_contracts::load::sample_tables(custody_ledger::Timestamp(1)).remove(1);
    let other = f
        .net
        .sign("customs-qx", EventKind::ReferenceDataPublished(table));
    let (code, _, body) = f
        .post(
            "/v1/events",
            "application/octet-stream",
            other.bytes().to_vec(),
        )
        .await;
    assert_eq!(
        code,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// Issue 11: a node whose critical task failed answers `/healthz` with 503 naming the task,
/// and `/v1/status` carries the same report.
#[tokio::test]
async fn regression_issue_11_healthz_is_503_once_a_critical_task_failed() {
    let f = Fixture::new();
    f.state
        .health
        .task_failed(custody_node::health::TaskFailure {
            task: "consensus host",
            reason: "panicked: a broken invariant".into(),
        });
    let (code, content_type, body) = f.get("/healthz").await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert_eq!(content_type, "application/problem+json");
    assert!(
        text.contains("node.unhealthy") && text.contains("consensus host"),
        "{text}"
    );
    let status: Status = f.ok("/v1/status").await;
    assert!(!status.health.healthy);
    assert_eq!(status.health.failed_task.as_deref(), Some("consensus host"));
}

/// A parcel SSCC with a valid GS1 check digit: extension 1, company prefix 0614141, `serial`.
fn sscc(serial: u32) -> String {
    let body = format!("10614141{serial:09}");
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    let check = custody_contracts::identifiers::gs1_check_digit(&digits);
    format!("{body}{check}")
}

/// A registration by `seller-acme` of one parcel `parcel` bound for `destination`.
fn register_parcel(net: &TestNet, shipment: &str, parcel: &str, destination: &str) -> EncodedEvent {
    let mut registration = custody_ledger::testkit::registration(shipment, "CN", destination);
    registration.parcels[0].sscc = parcel.to_owned();
    for line in &mut registration.packing_list.lines {
        line.sscc = parcel.to_owned();
    }
    net.sign("seller-acme", EventKind::ShipmentRegistered(registration))
}

/// Builds a block of `events` at `time` proposed by validator `proposer`, certifies it with
/// the first `signers` validators and appends it. Every event must apply.
fn append(
    f: &Fixture,
    events: Vec<EncodedEvent>,
    time: custody_ledger::Timestamp,
    proposer: usize,
    signers: usize,
) -> u64 {
    use custody_ledger::block::{vote_message, CommitCertificate, CommitSignature};
    let rules = f.state.rules.read().expect("rules").clone();
    let validators = f.net.validator_keys();
    let built = custody_ledger::chain::build_block(
        f.store.as_ref(),
        &f.net.genesis,
        &rules,
        custody_ledger::testkit::verified(events),
        time,
        validators[proposer].public(),
    )
    .expect("build");
    assert_eq!(built.rejected, vec![], "every event applies");
    let (height, hash) = (built.block().header.height, built.block().hash());
    let message = vote_message(&f.net.genesis.chain_id, height, 0, &hash);
    let certificate = CommitCertificate {
        height,
        round: 0,
        block_hash: hash,
        signatures: validators[..signers]
            .iter()
            .map(|v| CommitSignature {
                validator: v.public(),
                signature: v.sign(&message),
            })
            .collect(),
    };
    f.store
        .append_block(&built.validated, &certificate)
        .expect("append");
    *f.state.rules.write().expect("rules") = built.into_rules();
    height
}

const HOUR_MS: u64 = 3_600_000;

/// An air waybill number only `B-2`'s handoff carries (prefix 020, serial 7654321, check
/// digit serial mod 7).
const B2_AIR_WAYBILL: &str = "02076543213";

/// The fixture plus shipments registered an hour later (`B-1` to DE, `B-2` and `B-3` to FR,
/// each with its own SSCC; `B-2` proposed to a carrier under its own air waybill) and two
/// hours later (`C-1` to `C-4`).
fn catalogue() -> Fixture {
    let f = Fixture::new();
    let net = &f.net;
    let b2 = register_parcel(net, "B-2", &sscc(2), "FR");
    let handoff = net.sign(
        "seller-acme",
        EventKind::HandoffProposed(custody_ledger::model::HandoffProposed {
            shipment_id: custody_ledger::model::ShipmentId::new("B-2"),
            to: custody_ledger::model::MemberId::new("carrier-swift"),
            place: "CNSHA".into(),
            transport_document: Some(custody_ledger::model::TransportDocument {
                kind: custody_ledger::model::TransportDocumentKind::AirWaybill,
                number: B2_AIR_WAYBILL.into(),
            }),
        }),
    );
    let hour = |n: u64| custody_ledger::Timestamp(GENESIS_TIME.0 + n * HOUR_MS);
    append(
        &f,
        vec![
            register_parcel(net, "B-1", &sscc(1), "DE"),
            b2,
            register_parcel(net, "B-3", &sscc(3), "FR"),
        ],
        hour(1),
        0,
        4,
    );
    append(&f, vec![handoff], hour(1), 0, 4);
    let c: Vec<EncodedEvent> = (1..=4)
        .map(|i| register_parcel(net, &format!("C-{i}"), &sscc(10 + i), "FR"))
        .collect();
    append(&f, c, hour(2), 0, 4);
    f
}

/// The ids of a shipment list.
fn ids(list: &ShipmentList) -> Vec<&str> {
    list.shipments
        .iter()
        .map(|s| s.shipment_id.as_str())
        .collect()
}

#[tokio::test]
async fn shipments_are_listed_in_id_order_a_page_at_a_time() {
    let f = catalogue();
    let all = [
        "A-1", "A-2", "B-1", "B-2", "B-3", "C-1", "C-2", "C-3", "C-4",
    ];
    let first: ShipmentList = f.ok("/v1/shipments").await;
    assert_eq!(ids(&first), all, "the default page holds them all");
    assert_eq!(first.next_cursor, None);

    let mut seen = Vec::new();
    let mut uri = "/v1/shipments?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page: ShipmentList = f.ok(&uri).await;
        assert!(page.shipments.len() <= 2, "{uri}");
        pages += 1;
        seen.extend(ids(&page).into_iter().map(str::to_owned));
        match page.next_cursor {
            Some(cursor) => uri = format!("/v1/shipments?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(seen, all, "pages give every shipment once, in id order");
    assert_eq!(pages, 5);

    let a1 = &first.shipments[0];
    let shipment: serde_json::Value = f.ok("/v1/shipments/A-1").await;
    assert_eq!(a1.status, ShipmentStatus::InTransit);
    assert_eq!(
        (a1.seller.as_str(), a1.custodian.as_str()),
        ("seller-acme", "carrier-lastmile")
    );
    assert_eq!((a1.origin.as_str(), a1.destination.as_str()), ("CN", "FR"));
    assert_eq!(a1.registered_at, GENESIS_TIME);
    assert_eq!(a1.registered_height, 2);
    assert_eq!(a1.invoice_number, "INV-A-1");
    assert_eq!(a1.parcels, 1);
    assert_eq!(
        serde_json::to_value(a1.last_event_at).unwrap(),
        shipment["updated_at"]
    );
    let b1 = &first.shipments[2];
    assert_eq!(
        (b1.registered_height, b1.registered_at.0),
        (4, GENESIS_TIME.0 + HOUR_MS)
    );
    // The JSON spellings are those of the shipment record.
    let raw: serde_json::Value = f.ok("/v1/shipments?limit=1").await;
    assert_eq!(raw["shipments"][0]["status"], "in_transit");
    assert_eq!(
        raw["shipments"][0]["registered_at"],
        shipment["registered_at"]
    );
    assert!(raw["next_cursor"].is_string());
}

#[tokio::test]
async fn each_filter_narrows_the_list() {
    let f = catalogue();
    let hour = |n: u64| custody_ledger::Timestamp(GENESIS_TIME.0 + n * HOUR_MS).to_rfc3339();
    let cases: Vec<(String, Vec<&str>)> = vec![
        // Custody moved A-1 from the seller to carrier-swift to carrier-lastmile: only the
        // current custodian finds it.
        ("custodian=carrier-lastmile".into(), vec!["A-1"]),
        ("custodian=carrier-swift".into(), vec!["A-2"]),
        (
            "custodian=seller-acme".into(),
            vec!["B-1", "B-2", "B-3", "C-1", "C-2", "C-3", "C-4"],
        ),
        ("status=in_transit".into(), vec!["A-1", "A-2"]),
        (
            "status=registered".into(),
            vec!["B-1", "B-2", "B-3", "C-1", "C-2", "C-3", "C-4"],
        ),
        ("status=delivered".into(), vec![]),
        ("seller=carrier-swift".into(), vec![]),
        ("seller=seller-acme&destination=DE".into(), vec!["B-1"]),
        ("destination=DE".into(), vec!["B-1"]),
        ("destination=US".into(), vec![]),
        (
            format!("from={}", hour(1)),
            vec!["B-1", "B-2", "B-3", "C-1", "C-2", "C-3", "C-4"],
        ),
        (format!("to={}", hour(1)), vec!["A-1", "A-2"]),
        (
            format!("from={}&to={}", hour(1), hour(2)),
            vec!["B-1", "B-2", "B-3"],
        ),
        (
            format!("from={}", hour(2)),
            vec!["C-1", "C-2", "C-3", "C-4"],
        ),
        // A date is its midnight UTC; the fixture's genesis day holds every registration.
        (
            format!("from={}", &hour(0)[..10]),
            vec![
                "A-1", "A-2", "B-1", "B-2", "B-3", "C-1", "C-2", "C-3", "C-4",
            ],
        ),
        (
            format!("status=registered&destination=FR&from={}", hour(2)),
            vec!["C-1", "C-2", "C-3", "C-4"],
        ),
    ];
    for (query, expected) in cases {
        let list: ShipmentList = f.ok(&format!("/v1/shipments?{query}")).await;
        assert_eq!(ids(&list), expected, "{query}");
        assert_eq!(list.next_cursor, None, "{query}");
    }
    // A filtered list pages by cursor too.
    let first: ShipmentList = f.ok("/v1/shipments?status=registered&limit=4").await;
    assert_eq!(ids(&first), ["B-1", "B-2", "B-3", "C-1"]);
    let cursor = first.next_cursor.expect("a next page");
    let second: ShipmentList = f
        .ok(&format!(
            "/v1/shipments?status=registered&limit=4&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&second), ["C-2", "C-3", "C-4"]);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn q_finds_a_shipment_by_id_sscc_transport_document_or_invoice_number() {
    let f = catalogue();
    let shared_sscc = custody_ledger::testkit::registration("X", "CN", "FR").parcels[0]
        .sscc
        .clone();
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("B-1".into(), vec!["B-1"]),
        (sscc(2), vec!["B-2"]),
        (sscc(13), vec!["C-3"]),
        (B2_AIR_WAYBILL.into(), vec!["B-2"]),
        ("INV-C-4".into(), vec!["C-4"]),
        // The fixture's lifecycles share a parcel and an air waybill.
        (shared_sscc.clone(), vec!["A-1", "A-2"]),
        ("02012345675".into(), vec!["A-1", "A-2"]),
        // Surrounding white space is not part of the term.
        (format!("%20{}%20", sscc(3)), vec!["B-3"]),
        // Unknown terms give an empty list, not 404; matching is exact.
        ("NOPE".into(), vec![]),
        ("B-".into(), vec![]),
        ("inv-c-4".into(), vec![]),
        (sscc(2)[..17].to_owned(), vec![]),
        ("anything at all".replace(' ', "%20"), vec![]),
    ];
    for (q, expected) in cases {
        let list: ShipmentList = f.ok(&format!("/v1/shipments?q={q}")).await;
        assert_eq!(ids(&list), expected, "q={q}");
        assert_eq!(list.next_cursor, None, "q={q}");
    }
    // A term and a filter: both must hold.
    let both: ShipmentList = f
        .ok(&format!(
            "/v1/shipments?q={shared_sscc}&custodian=carrier-lastmile"
        ))
        .await;
    assert_eq!(ids(&both), ["A-1"]);
    // A term matching several shipments pages like any list.
    let page: ShipmentList = f.ok("/v1/shipments?q=02012345675&limit=1").await;
    assert_eq!(ids(&page), ["A-1"]);
    let cursor = page.next_cursor.expect("a second page");
    let page: ShipmentList = f
        .ok(&format!(
            "/v1/shipments?q=02012345675&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&page), ["A-2"]);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let f = catalogue();
    let long = "7".repeat(257);
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("status=lost", "status"),
        ("status=InTransit", "status"),
        ("seller=%00", "seller"),
        ("seller=a%20b", "seller"),
        ("custodian=%C3%A9", "custodian"),
        ("destination=fr", "destination"),
        ("destination=FRA", "destination"),
        ("from=yesterday", "from"),
        ("from=2026-13-01", "from"),
        ("to=2026-11-01T25:00:00Z", "to"),
        ("from=2026-11-02&to=2026-11-01", "to"),
        ("from=2026-11-01&to=2026-11-01", "to"),
        ("cursor=%00", "cursor"),
        ("cursor=", "cursor"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=a%0Ab", "q"),
        (&format!("q={long}"), "q"),
        ("colour=red", "colour"),
        ("after=3", "after"),
    ];
    for (query, field) in cases {
        let p = problem(
            f.get(&format!("/v1/shipments?{query}")).await,
            StatusCode::BAD_REQUEST,
            "request.query",
        );
        assert_eq!(p.field.as_deref(), Some(field), "{query}: {}", p.detail);
        assert!(p.detail.contains(field), "{query}: {}", p.detail);
    }
}

#[tokio::test]
async fn the_network_shows_validators_recent_blocks_and_the_event_rate() {
    let f = Fixture::new();
    let validators = f.net.validator_keys();
    // Block 4, five minutes on: proposed by the second validator and certified without the
    // fourth's signature.
    let later = custody_ledger::Timestamp(GENESIS_TIME.0 + 5 * 60_000);
    let event = register_parcel(&f.net, "N-1", &sscc(99), "FR");
    assert_eq!(append(&f, vec![event], later, 1, 3), 4);

    f.state
        .health
        .task_failed(custody_node::health::TaskFailure {
            task: "gossip",
            reason: "stopped".into(),
        });
    let network: NetworkView = f.ok("/v1/network").await;
    let status: Status = f.ok("/v1/status").await;
    assert_eq!(network.health.failed_task.as_deref(), Some("gossip"));
    let head = f.store.head().unwrap().expect("head");
    assert_eq!(network.chain_id, f.net.genesis.chain_id);
    assert_eq!(network.genesis_hash, f.net.genesis_hash());
    assert_eq!((network.height, network.head_time), (4, Some(later)));
    // The same report as /v1/status, but for the milliseconds between the two requests.
    let report = |h: &custody_ledger::view::NodeHealth| {
        (
            h.healthy,
            h.problems.clone(),
            h.failed_task.clone(),
            h.peers_height,
        )
    };
    assert_eq!(report(&network.health), report(&status.health));

    let genesis_validators: Vec<_> = f
        .net
        .genesis
        .members
        .iter()
        .filter(|m| m.voting_power > 0)
        .collect();
    assert_eq!(network.validators.len(), 4);
    let expected = [
        // (last proposed, last signed)
        (Some(3), Some(4)),
        (Some(4), Some(4)),
        (None, Some(4)),
        (None, Some(3)),
    ];
    for ((v, member), (proposed, signed)) in network
        .validators
        .iter()
        .zip(&genesis_validators)
        .zip(expected)
    {
        assert_eq!(v.member_id, member.id);
        assert_eq!(v.name, member.name);
        assert_eq!(Some(v.node_key), member.node_key);
        assert_eq!(v.voting_power, member.voting_power);
        assert_eq!(
            (v.last_proposed_height, v.last_signed_height),
            (proposed, signed),
            "{}",
            v.member_id
        );
    }

    let heights: Vec<u64> = network.recent_blocks.iter().map(|b| b.height).collect();
    assert_eq!(heights, [4, 3, 2, 1], "newest first");
    for block in &network.recent_blocks {
        let header = f.store.header(block.height).unwrap().expect("header");
        assert_eq!(block.hash, header.hash());
        assert_eq!(block.time, header.time);
        assert_eq!(block.event_count, header.event_count);
        assert_eq!(block.proposer, header.proposer);
    }
    assert_eq!(network.recent_blocks[0].proposer, validators[1].public());
    assert_eq!(
        network.recent_blocks[0]
            .proposer_member
            .as_ref()
            .map(|m| m.as_str()),
        Some("carrier-swift")
    );
    assert_eq!(
        network.recent_blocks[1]
            .proposer_member
            .as_ref()
            .map(|m| m.as_str()),
        Some("seller-acme")
    );

    // Thirty minutes, oldest first, ending with the head's; the fixture's three blocks fall
    // five minutes before block 4.
    let minutes = &network.events_per_minute;
    assert_eq!(minutes.len(), 30);
    let last = later.0 / 60_000 * 60_000;
    for (i, minute) in minutes.iter().enumerate() {
        assert_eq!(minute.minute.0, last - (29 - i as u64) * 60_000);
    }
    let counts: Vec<u64> = minutes.iter().map(|m| m.events).collect();
    assert_eq!(counts[29], 1);
    assert_eq!(counts[24], head.log_size - 1);
    assert_eq!(counts.iter().sum::<u64>(), head.log_size);
    let raw: serde_json::Value = f.ok("/v1/network").await;
    assert_eq!(
        raw["validators"][2]["last_proposed_height"],
        serde_json::Value::Null
    );
    assert_eq!(
        raw["events_per_minute"][29]["minute"],
        custody_ledger::Timestamp(last).to_rfc3339()
    );
}

#[tokio::test]
async fn the_genesis_document_and_one_member() {
    let f = Fixture::new();
    let genesis: custody_ledger::genesis::Genesis = f.ok("/v1/genesis").await;
    assert_eq!(genesis, f.net.genesis);
    assert_eq!(genesis.hash(), f.net.genesis_hash());

    let members: Vec<MemberView> = f.ok("/v1/members").await;
    for member in &members {
        let one: MemberView = f.ok(&format!("/v1/members/{}", member.id)).await;
        assert_eq!(&one, member);
    }
    problem(
        f.get("/v1/members/nobody").await,
        StatusCode::NOT_FOUND,
        "member.not_found",
    );
    let p = problem(
        f.get("/v1/members/a%20b").await,
        StatusCode::BAD_REQUEST,
        "request.path",
    );
    assert_eq!(p.field.as_deref(), Some("id"));
}

// ---- POST /v1/events/batch ----

/// A batch as a JSON array of the events' JSON forms.
fn json_batch(events: &[&EncodedEvent]) -> Vec<u8> {
    let values: Vec<&custody_ledger::model::SignedEvent> =
        events.iter().map(|e| e.event()).collect();
    serde_json::to_vec(&values).expect("json")
}

/// A batch as the events' canonical bytes, one after another.
fn canonical_batch(events: &[&EncodedEvent]) -> Vec<u8> {
    events.iter().flat_map(|e| e.bytes().to_vec()).collect()
}

/// Posts a batch that must be answered 200, and decodes the answer.
async fn batch(f: &Fixture, uri: &str, content_type: &str, body: Vec<u8>) -> BatchOutcome {
    let (status, _, body) = f.post(uri, content_type, body).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, StatusCode::OK, "{text}");
    let outcome: BatchOutcome = serde_json::from_slice(&body).expect("a batch outcome");
    for (at, result) in outcome.results.iter().enumerate() {
        assert_eq!(result.index, at as u64, "{text}");
    }
    outcome
}

fn statuses(outcome: &BatchOutcome) -> Vec<BatchStatus> {
    outcome.results.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn a_batch_that_is_not_a_list_of_events_is_one_problem_and_changes_nothing() {
    let f = Fixture::new();
    let before = f.footprint().await;
    let good = f.net.register("B-1", "CN", "FR");
    let post = |body: Vec<u8>| f.post("/v1/events/batch", "application/json", body);
    for (body, code) in [
        (b"[{not json".to_vec(), "request.body"),
        (json(&good), "request.body"),
        (b"[]".to_vec(), "batch.empty"),
    ] {
        let p = problem(post(body).await, StatusCode::BAD_REQUEST, code);
        assert_eq!(p.field.as_deref(), Some("body"));
    }
    problem(
        f.post("/v1/events/batch", "text/plain", json_batch(&[&good]))
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "request.media_type",
    );
    let p = problem(
        f.post(
            "/v1/events/batch?colour=red",
            "application/json",
            json_batch(&[&good]),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "request.query",
    );
    assert_eq!(p.field.as_deref(), Some("colour"));
    problem(
        f.post(
            "/v1/events/batch?wait=soon",
            "application/json",
            json_batch(&[&good]),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "request.query",
    );
    assert_eq!(f.footprint().await, before, "bad input changed nothing");
}

#[tokio::test]
async fn an_element_that_is_not_an_event_is_refused_and_the_others_go_through() {
    let f = Fixture::new();
    let (first, last) = (
        f.net.register("B-1", "CN", "FR"),
        f.net.register("B-2", "CN", "FR"),
    );
    let body = format!(
        "[{}, {{\"event\": 5}}, {}]",
        String::from_utf8(json(&first)).unwrap(),
        String::from_utf8(json(&last)).unwrap()
    );
    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/json",
        body.into_bytes(),
    )
    .await;
    use BatchStatus::*;
    assert_eq!(statuses(&outcome), vec![Accepted, Refused, Accepted]);
    let bad = &outcome.results[1];
    assert_eq!(bad.code.as_deref(), Some("event.malformed"));
    assert_eq!(bad.event_id, None);
    assert!(bad.detail.as_deref().is_some_and(|d| !d.is_empty()));
    assert_eq!(outcome.results[0].event_id, Some(first.id()));
    assert_eq!(
        (outcome.accepted, outcome.duplicate, outcome.refused),
        (2, 0, 1)
    );
    let mempool = f.mempool.lock().await;
    assert!(mempool.contains(&first.id()) && mempool.contains(&last.id()));
}

#[tokio::test]
async fn an_oversize_batch_is_refused_whole() {
    let f = Fixture::new();
    let before = f.footprint().await;
    let good = f.net.register("B-1", "CN", "FR");
    let many: Vec<&EncodedEvent> = vec![&good; BATCH_EVENTS_MAX + 1];
    let p = problem(
        f.post("/v1/events/batch", "application/json", json_batch(&many))
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch.too_many",
    );
    assert_eq!(p.field.as_deref(), Some("body"));
    problem(
        f.post(
            "/v1/events/batch",
            "application/octet-stream",
            canonical_batch(&many),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch.too_many",
    );
    problem(
        f.post(
            "/v1/events/batch",
            "application/json",
            vec![b' '; BATCH_BODY_BYTES_MAX + 1],
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request.body",
    );
    assert_eq!(f.footprint().await, before, "nothing admitted");
    // The batch route's own limit is above a single event's: a body longer than
    // BODY_SIZE_BYTES_MAX is read.
    let mut padded = json_batch(&[&good]);
    padded.splice(1..1, std::iter::repeat_n(b' ', BODY_SIZE_BYTES_MAX));
    let outcome = batch(&f, "/v1/events/batch", "application/json", padded).await;
    assert_eq!(statuses(&outcome), vec![BatchStatus::Accepted]);
}

#[tokio::test]
async fn a_bad_signature_in_the_middle_is_named_by_index_and_the_rest_are_accepted() {
    let f = Fixture::new();
    let first = f.net.register("B-1", "CN", "FR");
    let mut forged = f.net.register("B-2", "CN", "FR").into_event();
    forged.signature.0[3] ^= 1;
    let forged = EncodedEvent::new(forged);
    let last = f.net.register("B-3", "CN", "FR");
    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/json",
        json_batch(&[&first, &forged, &last]),
    )
    .await;
    use BatchStatus::*;
    assert_eq!(statuses(&outcome), vec![Accepted, Refused, Accepted]);
    let bad = &outcome.results[1];
    assert_eq!(
        (
            bad.index,
            bad.event_id,
            bad.code.as_deref(),
            bad.field.as_deref()
        ),
        (
            1,
            Some(forged.id()),
            Some("signature.invalid"),
            Some("signature")
        )
    );
    // The same verdict as the single endpoint's.
    let single = problem(
        f.post("/v1/events", "application/json", json(&forged))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature.invalid",
    );
    assert_eq!(bad.detail.as_deref(), Some(single.detail.as_str()));
    assert_eq!(f.mempool.lock().await.len(), 2);
    let metrics = String::from_utf8(f.get("/metrics").await.2).unwrap();
    assert!(
        metrics.contains("custody_events_rejected_total{code=\"signature.invalid\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn repeats_within_a_batch_and_committed_events_are_duplicates() {
    let f = Fixture::new();
    let fresh = f.net.register("B-1", "CN", "FR");
    let committed = f.net.lifecycle("A-1")[0].clone();
    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/json",
        json_batch(&[&fresh, &committed, &fresh]),
    )
    .await;
    use BatchStatus::*;
    assert_eq!(statuses(&outcome), vec![Accepted, Duplicate, Duplicate]);
    assert_eq!(outcome.results[2].event_id, Some(fresh.id()));
    assert_eq!(
        (outcome.accepted, outcome.duplicate, outcome.refused),
        (1, 2, 0)
    );
    assert_eq!(f.mempool.lock().await.len(), 1);
    // An event already waiting is accepted again, as the single endpoint answers it.
    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/json",
        json_batch(&[&fresh]),
    )
    .await;
    assert_eq!(statuses(&outcome), vec![Accepted]);
    assert_eq!(f.mempool.lock().await.len(), 1);
}

#[tokio::test]
async fn a_batch_is_judged_in_order_so_a_proposal_then_its_acceptance_both_go_in() {
    let f = Fixture::new();
    // A-2 has its registration and first handoff committed; these are the second.
    let lifecycle = f.net.lifecycle("A-2");
    let (proposal, acceptance) = (&lifecycle[3], &lifecycle[4]);
    use BatchStatus::*;
    // The acceptance first: its proposal is not known yet when it is judged.
    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/json",
        json_batch(&[acceptance]),
    )
    .await;
    assert_eq!(statuses(&outcome), vec![Refused]);
    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/json",
        json_batch(&[proposal, acceptance]),
    )
    .await;
    assert_eq!(statuses(&outcome), vec![Accepted, Accepted], "{outcome:?}");
    assert_eq!(f.mempool.lock().await.len(), 2);
}

#[tokio::test]
async fn canonical_bytes_split_into_events_and_a_torn_tail_admits_nothing() {
    let f = Fixture::new();
    let (first, second) = (
        f.net.register("B-1", "CN", "FR"),
        f.net.register("B-2", "CN", "FR"),
    );
    let third = f.net.register("B-3", "CN", "FR");
    let before = f.footprint().await;
    let mut torn = canonical_batch(&[&third, &second]);
    torn.truncate(torn.len() - 10);
    let p = problem(
        f.post("/v1/events/batch", "application/octet-stream", torn)
            .await,
        StatusCode::BAD_REQUEST,
        "batch.framing",
    );
    assert!(p.detail.starts_with("event 1 "), "{}", p.detail);
    assert_eq!(f.footprint().await, before, "nothing admitted");

    let outcome = batch(
        &f,
        "/v1/events/batch",
        "application/octet-stream",
        canonical_batch(&[&first, &second]),
    )
    .await;
    assert_eq!(statuses(&outcome), vec![BatchStatus::Accepted; 2]);
    let ids: Vec<_> = outcome.results.iter().map(|r| r.event_id).collect();
    assert_eq!(ids, vec![Some(first.id()), Some(second.id())]);
    assert_eq!(f.mempool.lock().await.len(), 2);
}

#[tokio::test]
async fn a_full_signer_quota_refuses_that_event_and_the_rest_with_retry_after() {
    let f = Fixture::with_mempool(MempoolConfig {
        count_max: 100,
        size_bytes_max: 1 << 20,
        signer_count_max: 2,
        signer_size_bytes_max: 1 << 20,
    });
    let events: Vec<EncodedEvent> = (1..=4)
        .map(|n| f.net.register(&format!("B-{n}"), "CN", "FR"))
        .collect();
    let refs: Vec<&EncodedEvent> = events.iter().collect();
    let response = f
        .app()
        .oneshot(
            Request::post("/v1/events/batch")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json_batch(&refs)))
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let outcome: BatchOutcome = serde_json::from_slice(&body).expect("outcome");
    use BatchStatus::*;
    assert_eq!(
        statuses(&outcome),
        vec![Accepted, Accepted, Refused, Refused]
    );
    for refused in &outcome.results[2..] {
        assert_eq!(refused.code.as_deref(), Some("mempool.signer_quota"));
    }
    assert_eq!(f.mempool.lock().await.len(), 2);
}

/// Commits, once the mempool holds `count` events, what it holds in one block, and announces
/// the block as the host does.
async fn commit_when_waiting(f: &Fixture, count: usize) {
    let events = loop {
        let waiting = f.mempool.lock().await.all_in_order();
        if waiting.len() >= count {
            break waiting;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let events: Vec<EncodedEvent> = events.into_iter().map(EncodedEvent::from).collect();
    let rules = f.state.rules.read().unwrap().clone();
    let time = custody_ledger::Timestamp(GENESIS_TIME.0 + 60_000);
    let built = f
        .net
        .commit_with(f.store.as_ref(), &rules, events, time)
        .expect("commit");
    assert_eq!(built.rejected, vec![], "the batch's events apply");
    let header = &built.block().header;
    let certificate = custody_ledger::block::CommitCertificate {
        height: header.height,
        round: 0,
        block_hash: header.hash(),
        signatures: Vec::new(),
    };
    let _ = f
        .state
        .committed
        .send(Committed::of(&built.validated, certificate));
}

#[tokio::test]
async fn wait_commit_answers_with_a_receipt_for_every_committed_event() {
    let f = Fixture::new();
    let lifecycle = f.net.lifecycle("A-2");
    let (proposal, acceptance) = (&lifecycle[3], &lifecycle[4]);
    let committed = f.net.lifecycle("A-1")[0].clone();
    let body = json_batch(&[proposal, acceptance, &committed]);
    let (outcome, ()) = tokio::join!(
        batch(&f, "/v1/events/batch?wait=commit", "application/json", body),
        commit_when_waiting(&f, 2)
    );
    use BatchStatus::*;
    assert_eq!(statuses(&outcome), vec![Accepted, Accepted, Duplicate]);
    let head = f.store.head().unwrap().expect("head");
    for (result, event) in outcome
        .results
        .iter()
        .zip([proposal, acceptance, &committed])
    {
        let receipt = result.receipt.as_ref().expect("a receipt");
        assert_eq!(receipt.event_id, event.id());
        merkle::verify_inclusion(
            &receipt.entry.hash(),
            receipt.log_index,
            receipt.log_size,
            &receipt.inclusion_proof,
            &receipt.log_root,
        )
        .expect("the proof verifies");
    }
    // The batch's events were committed by the head; the duplicate long before.
    assert_eq!(
        outcome.results[0].receipt.as_ref().unwrap().height,
        head.height
    );
    assert!(outcome.results[2].receipt.as_ref().unwrap().height < head.height);
}

/// Issue 17: a batch's receipts are built from the committing block's announcement (its
/// entries and the log nodes it wrote), reading only older log nodes; they are exactly the
/// receipts read back from the store.
#[tokio::test]
async fn receipts_from_a_blocks_announcement_are_the_receipts_from_the_store() {
    let f = Fixture::new();
    let events: Vec<EncodedEvent> = (0..6)
        .map(|i| f.net.lifecycle(&format!("R-{i}"))[0].clone())
        .collect();
    let rules = f.state.rules.read().unwrap().clone();
    let time = custody_ledger::Timestamp(GENESIS_TIME.0 + 60_000);
    let built = f
        .net
        .commit_with(f.store.as_ref(), &rules, events.clone(), time)
        .expect("commit");
    assert_eq!(built.rejected, vec![], "the events apply");
    let header = &built.block().header;
    assert!(header.log_size > 6, "earlier blocks hold events too");
    let certificate = custody_ledger::block::CommitCertificate {
        height: header.height,
        round: 0,
        block_hash: header.hash(),
        signatures: Vec::new(),
    };
    let committed = Committed::of(&built.validated, certificate);
    let ids: Vec<_> = events.iter().map(|e| e.id()).collect();
    let wanted = ids.iter().copied().collect();
    let from_block =
        receipts_in(&f.state, &wanted, std::slice::from_ref(&committed)).expect("receipts");
    assert_eq!(from_block.len(), ids.len(), "every event of the block");
    assert_eq!(from_block, receipts_of(&f.state, &ids).expect("receipts"));
    let elsewhere = [f.net.lifecycle("R-9")[0].id()].into_iter().collect();
    assert!(receipts_in(&f.state, &elsewhere, &[committed])
        .expect("receipts")
        .is_empty());
}
