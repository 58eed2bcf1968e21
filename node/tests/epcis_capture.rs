//! `POST /epcis/capture` and `GET /epcis/capture/{id}` on a node configured as a capture
//! gateway, called with `oneshot` on the router over a real sled store: shipment `A-2` is
//! registered and held by `carrier-swift`, whose key the gateway signs with.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use custody_contracts::load::sample_tables;
use custody_contracts::ContractRules;
use custody_ledger::event::EncodedEvent;
use custody_ledger::keys::Keypair;
use custody_ledger::model::EventKind;
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_node::api::{app, ApiState};
use custody_node::epcis::capture::{Gateway, CAPTURE_EVENTS_MAX, CAPTURE_FILE_SIZE_BYTES_MAX};
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_sled::SledStore;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, Mutex};
use tower::ServiceExt;

const TOKEN: &str = "capture-token-0123456789";

/// GS1's EPCIS 2.0 JSON Schema, beside the project (never copied into it).
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/epcis/EPCIS-JSON-Schema.json"
);

struct Fixture {
    _dir: tempfile::TempDir,
    mempool: Arc<Mutex<Mempool>>,
    state: ApiState,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

impl Fixture {
    fn new(gateway: Option<Gateway>) -> Fixture {
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
        for events in [tables, net.lifecycle("A-2")[..3].to_vec()] {
            let built = net
                .commit_with(store.as_ref(), &rules, events, GENESIS_TIME)
                .expect("commit");
            assert_eq!(built.rejected, vec![], "fixture events apply");
            rules = built.into_rules();
        }
        let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
            count_max: 100,
            size_bytes_max: 1 << 20,
            signer_count_max: 50,
            signer_size_bytes_max: 1 << 20,
        })));
        let (outbound, outbound_rx) = mpsc::channel(100);
        let state_keys: Arc<custody_ledger::keys::KeyCache> = Default::default();
        let state_genesis = Arc::new(net.genesis.clone());
        let state_store = store;
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
            epcis_gateway: gateway.map(Arc::new),
            epcis_subscriptions: Default::default(),
            personal: Default::default(),
        };
        Fixture {
            _dir: dir,
            mempool,
            state,
            _outbound: outbound_rx,
        }
    }

    /// A gateway signing as `carrier-swift`.
    fn gateway() -> Fixture {
        let net = TestNet::new();
        let key = Keypair::from_signing_key(net.key("carrier-swift").signing_key().clone());
        Fixture::new(Some(Gateway::with(key, TOKEN, None)))
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).expect("request");
        let response = app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body");
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, headers, value)
    }

    async fn capture(
        &self,
        document: &Value,
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![
            ("content-type", "application/ld+json"),
            ("authorization", auth.as_str()),
        ];
        headers.extend_from_slice(extra);
        self.call(
            Method::POST,
            "/epcis/capture",
            &headers,
            serde_json::to_vec(document).expect("json"),
        )
        .await
    }

    async fn waiting(&self) -> usize {
        self.mempool.lock().await.len()
    }
}

fn scan(time: &str, sscc: &str) -> Value {
    json!({
        "type": "ObjectEvent",
        "eventTime": time,
        "eventTimeZoneOffset": "+00:00",
        "epcList": [format!("https://id.gs1.org/00/{sscc}")],
        "action": "OBSERVE",
        "bizStep": "departing",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:custody:locode:CNSHA"},
        "bizLocation": {"id": "urn:custody:locode:CNSHA"},
        "custody:shipmentId": "A-2"
    })
}

fn document(events: Vec<Value>) -> Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
                     {"custody": "urn:custody:epcis:"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-03T00:00:00Z",
        "epcisBody": {"eventList": events}
    })
}

const PARCEL: &str = "106141411234567897";
const STRANGER: &str = "106141419999999991";

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
}

#[tokio::test]
async fn without_a_gateway_the_endpoint_is_forbidden() {
    let f = Fixture::new(None);
    let (status, _, body) = f
        .capture(&document(vec![scan("2026-11-02T08:00:00Z", PARCEL)]), &[])
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "epcis.gateway_not_configured",
    );
    let (status, _, body) = f.call(Method::GET, "/epcis/capture/1", &[], vec![]).await;
    assert_problem(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "epcis.gateway_not_configured",
    );
    assert_eq!(f.waiting().await, 0);
}

#[tokio::test]
async fn the_token_is_required_and_checked() {
    let f = Fixture::gateway();
    let body = serde_json::to_vec(&document(vec![scan("2026-11-02T08:00:00Z", PARCEL)])).unwrap();
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Basic Zm9vOmJhcg=="),
        Some("Bearer capture-token-012345678"),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let (status, answer_headers, answer) = f
            .call(Method::POST, "/epcis/capture", &headers, body.clone())
            .await;
        assert_problem(
            status,
            &answer,
            StatusCode::UNAUTHORIZED,
            "epcis.unauthorized",
        );
        assert_eq!(answer_headers["www-authenticate"], "Bearer");
    }
    assert_eq!(f.waiting().await, 0);

    // The right token: 202, the job at its Location, the event in the mempool.
    let (status, headers, job) = f
        .capture(&document(vec![scan("2026-11-02T08:00:00Z", PARCEL)]), &[])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/epcis/capture/{}", job["captureID"].as_str().unwrap())
    );
    assert_eq!(
        headers["gs1-epcis-capture-limit"],
        CAPTURE_EVENTS_MAX.to_string().as_str()
    );
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["running"], false);
    assert_eq!(job["captureErrorBehaviour"], "rollback");
    assert_eq!(job["errors"], json!([]));
    assert_eq!(job["custody:events"][0]["kind"], "TrackingScanRecorded");
    assert_eq!(f.waiting().await, 1);

    let auth = format!("Bearer {TOKEN}");
    let (status, _, shown) = f
        .call(Method::GET, &location, &[("authorization", &auth)], vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, job);
    let (status, _, body) = f.call(Method::GET, &location, &[], vec![]).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "epcis.unauthorized",
    );
    let (status, _, body) = f
        .call(
            Method::GET,
            "/epcis/capture/999",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "epcis.no_such_resource",
    );

    // The same document again: the same signed event, refused as a duplicate.
    let (status, _, job) = f
        .capture(&document(vec![scan("2026-11-02T08:00:00Z", PARCEL)]), &[])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(job["success"], false, "{job}");
    assert_eq!(job["errors"][0]["code"], "event.duplicate", "{job}");
}

#[tokio::test]
async fn options_advertises_the_limits() {
    let f = Fixture::gateway();
    let (status, headers, _) = f.call(Method::OPTIONS, "/epcis/capture", &[], vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        headers["gs1-epcis-capture-limit"],
        CAPTURE_EVENTS_MAX.to_string().as_str()
    );
    assert_eq!(
        headers["gs1-epcis-capture-file-size-limit"],
        CAPTURE_FILE_SIZE_BYTES_MAX.to_string().as_str()
    );
    assert!(headers[header::ALLOW].to_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn rollback_submits_nothing_when_one_event_would_be_refused_and_proceed_submits_the_rest() {
    let f = Fixture::gateway();
    let mixed = document(vec![
        scan("2026-11-02T08:00:00Z", PARCEL),
        scan("2026-11-02T09:00:00Z", STRANGER),
        {
            let mut unmappable = scan("2026-11-02T10:00:00Z", PARCEL);
            unmappable["ilmd"] = json!({});
            unmappable
        },
    ]);
    let (status, _, job) = f.capture(&mixed, &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["success"], false);
    assert_eq!(job["captureErrorBehaviour"], "rollback");
    assert_eq!(job["errors"][0]["index"], 1, "{job}");
    assert_eq!(job["errors"][0]["code"], "scan.unknown_parcel", "{job}");
    assert_eq!(job["errors"][1]["index"], 2, "{job}");
    assert_eq!(
        job["errors"][1]["code"], "epcis_capture.unsupported",
        "{job}"
    );
    assert_eq!(job["errors"][1]["field"], "ilmd", "{job}");
    assert_eq!(job["custody:events"], json!([]));
    assert_eq!(f.waiting().await, 0, "a rollback submits nothing");

    let (status, _, job) = f
        .capture(&mixed, &[("GS1-Capture-Error-Behaviour", "proceed")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["success"], false);
    assert_eq!(job["captureErrorBehaviour"], "proceed");
    assert_eq!(job["errors"].as_array().map(Vec::len), Some(2), "{job}");
    assert_eq!(job["custody:events"][0]["index"], 0, "{job}");
    assert_eq!(f.waiting().await, 1, "proceed submits the good event");

    let (status, _, body) = f
        .capture(&mixed, &[("GS1-Capture-Error-Behaviour", "sometimes")])
        .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "epcis.validation");
}

#[tokio::test]
async fn an_oversize_document_is_413_and_too_many_events_too() {
    let f = Fixture::gateway();
    let mut big = document(vec![scan("2026-11-02T08:00:00Z", PARCEL)]);
    big["padding"] = "x".repeat(CAPTURE_FILE_SIZE_BYTES_MAX).into();
    let (status, headers, body) = f.capture(&big, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "epcis.capture_too_large", "{body}");
    assert!(headers.contains_key("gs1-epcis-capture-file-size-limit"));

    let many = document(vec![json!({}); CAPTURE_EVENTS_MAX + 1]);
    let (status, _, body) = f.capture(&many, &[]).await;
    assert_problem(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "epcis.capture_limit",
    );
    assert_eq!(f.waiting().await, 0);
}

#[tokio::test]
async fn documents_that_are_not_epcis_are_400_naming_the_first_error() {
    let f = Fixture::gateway();
    let (status, _, body) = f.capture(&json!({"type": "Nothing"}), &[]).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "epcis.validation");
    assert_eq!(body["title"], "ValidationException");
    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) = f
        .call(
            Method::POST,
            "/epcis/capture",
            &[("authorization", &auth)],
            b"{ not json".to_vec(),
        )
        .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "epcis.validation");

    // With GS1's schema configured, a schema violation is named.
    let schema: Value =
        serde_json::from_slice(&std::fs::read(SCHEMA).expect("the EPCIS schema")).unwrap();
    let validator = custody_epcis::Validator::new(&schema).expect("schema compiles");
    let net = TestNet::new();
    let key = Keypair::from_signing_key(net.key("carrier-swift").signing_key().clone());
    let f = Fixture::new(Some(Gateway::with(key, TOKEN, Some(validator))));
    let mut invalid = document(vec![scan("2026-11-02T08:00:00Z", PARCEL)]);
    invalid["epcisBody"]["eventList"][0]["action"] = "LOOK".into();
    let (status, _, body) = f.capture(&invalid, &[]).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "epcis.validation");
    assert_eq!(body["field"], "/epcisBody/eventList/0/action", "{body}");
    assert_eq!(f.waiting().await, 0);
}
