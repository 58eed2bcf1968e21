//! The EPCIS 2.0 query interface under `/epcis`, called with `oneshot` over a real sled store
//! holding every Custody event kind: every answer validates against GS1's EPCIS 2.0 JSON
//! Schema (read from `../shared/data/epcis/`), each filter selects what it should and not what
//! it should not, pages stay stable while events arrive, and bad input gets an EPCIS problem.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use custody_contracts::load::sample_tables;
use custody_contracts::ContractRules;
use custody_epcis::Validator;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{ClearanceOutcome, DocumentAttested, EventKind, ShipmentId};
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::view::Problem;
use custody_ledger::{Digest, Timestamp};
use custody_node::api::{app, ApiState};
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_sled::SledStore;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, Mutex};
use tower::ServiceExt;

/// GS1's EPCIS 2.0 JSON Schema from the shared data beside the workspace.
fn validator() -> Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/epcis/EPCIS-JSON-Schema.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    Validator::new(&schema).expect("the GS1 schema compiles")
}

const S: &str = "E-1";

/// Block times: reference data, then the shipment's events one block each second.
fn block_time(n: u64) -> Timestamp {
    Timestamp(GENESIS_TIME.0 + 1_000 * n)
}

struct Fixture {
    _dir: tempfile::TempDir,
    net: TestNet,
    store: Arc<SledStore>,
    blocks: u64,
    state: ApiState,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

/// Every kind with an EPCIS form: the lifecycle, a scan, a hold, an inspection, an attested
/// document.
fn all_events(net: &TestNet) -> Vec<EncodedEvent> {
    let mut events = net.lifecycle(S);
    let declaration = events[5].clone();
    events.insert(3, net.scan("carrier-swift", S, "DEHAM"));
    // A hold and an inspection before the release.
    events.insert(8, net.clear(S, &declaration, ClearanceOutcome::Inspection));
    events.insert(8, net.clear(S, &declaration, ClearanceOutcome::Hold));
    events.push(net.sign(
        "broker-clear",
        EventKind::DocumentAttested(DocumentAttested {
            shipment_id: ShipmentId::new(S),
            document_type: "certificate_of_origin".into(),
            document_hash: Digest::sha256(b"certificate"),
            reference: "CO-2026/0042".into(),
        }),
    ));
    events
}

impl Fixture {
    /// Reference data (no EPCIS form) in block 1, then `events`, one block each.
    fn new(events: &[EncodedEvent]) -> Fixture {
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
            epcis_subscriptions: Default::default(),
            personal: Default::default(),
        };
        let mut f = Fixture {
            _dir: dir,
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
        for event in events {
            f.commit(vec![event.clone()]);
        }
        f
    }

    fn commit(&mut self, events: Vec<EncodedEvent>) {
        self.blocks += 1;
        // The ledger's state machine without the contract modules: the testkit's declaration
        // is not assessed against the sample tariffs, and EPCIS does not care.
        let built = self
            .net
            .commit(self.store.as_ref(), events, block_time(self.blocks))
            .expect("commit");
        assert_eq!(built.rejected, vec![], "fixture events apply");
    }

    async fn call(&self, method: Method, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let response = app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body")
            .to_vec();
        (status, headers, body)
    }

    /// A query that must answer 200 with a schema-valid `EPCISQueryDocument`: its events and
    /// its `Link` next page, if any.
    async fn query(&self, uri: &str) -> (Vec<Value>, Option<String>) {
        let (status, headers, body) = self.call(Method::GET, uri).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::OK, "{uri}: {text}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/ld+json",
            "{uri}"
        );
        versions(&headers);
        let document: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(document["type"], "EPCISQueryDocument");
        validator()
            .validate(&document)
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let events = custody_epcis::events_of(&document)
            .expect("events")
            .to_vec();
        let link = headers.get(header::LINK).map(|l| {
            let l = l.to_str().expect("ascii");
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            l[1..l.find('>').expect(">")].to_owned()
        });
        (events, link)
    }

    async fn ids(&self, uri: &str) -> Vec<String> {
        let (events, link) = self.query(uri).await;
        assert_eq!(link, None, "{uri} fits one page");
        events
            .iter()
            .map(|e| e["eventID"].as_str().expect("eventID").to_owned())
            .collect()
    }

    /// A 4xx EPCIS problem with `code` and `title`.
    async fn problem(&self, uri: &str, status: StatusCode, code: &str, title: &str) -> Problem {
        let (got, headers, body) = self.call(Method::GET, uri).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{uri}: {text}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        versions(&headers);
        let problem: Problem = serde_json::from_slice(&body).expect("problem");
        assert_eq!(problem.code, code, "{uri}: {text}");
        assert_eq!(problem.title, title, "{uri}");
        assert_eq!(problem.kind, format!("urn:custody:problem:{code}"));
        problem
    }
}

fn versions(headers: &HeaderMap) {
    for name in [
        "GS1-EPCIS-Version",
        "GS1-EPCIS-Min",
        "GS1-EPCIS-Max",
        "GS1-CBV-Version",
        "GS1-CBV-Min",
        "GS1-CBV-Max",
    ] {
        assert_eq!(headers[name], "2.0.0", "{name}");
    }
}

fn uri_of(id: &Digest) -> String {
    format!("urn:custody:event:{id}")
}

fn enc(text: &str) -> String {
    custody_epcis::vocab::percent_encode(text)
}

#[tokio::test]
async fn every_kind_is_answered_schema_valid_in_log_order_and_by_id() {
    let events = all_events(&TestNet::new());
    let f = Fixture::new(&events);
    let expected: Vec<String> = events.iter().map(|e| uri_of(&e.id())).collect();
    // Reference data has no EPCIS form and is not answered.
    assert_eq!(f.ids("/epcis/events").await, expected);
    let kinds: std::collections::BTreeSet<String> = f
        .query("/epcis/events")
        .await
        .0
        .iter()
        .map(|e| e["custody:kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.len(), 11, "{kinds:?}");
    for event in &events {
        let uri = uri_of(&event.id());
        for path in [uri.clone(), enc(&uri)] {
            assert_eq!(
                f.ids(&format!("/epcis/events/{path}")).await,
                vec![uri.clone()]
            );
        }
    }
    // JSON on request.
    let request = Request::get("/epcis/events?perPage=1")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let response = app(f.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    // Unknown and impossible event IDs.
    let unknown = uri_of(&Digest::sha256(b"nothing"));
    for id in [unknown.as_str(), "urn:custody:event:zz", "nonsense"] {
        f.problem(
            &format!("/epcis/events/{}", enc(id)),
            StatusCode::NOT_FOUND,
            "epcis.no_such_resource",
            "NoSuchResourceException",
        )
        .await;
    }
    // Resource lists and the context.
    for (path, member) in [
        ("/epcis/eventTypes", "ObjectEvent"),
        ("/epcis/bizSteps", "consigning"),
        (
            "/epcis/bizSteps",
            "urn:custody:epcis:BizStep-customs_clearing",
        ),
        ("/epcis/dispositions", "in_transit"),
    ] {
        let (status, headers, body) = f.call(Method::GET, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        versions(&headers);
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            list["member"].as_array().unwrap().contains(&member.into()),
            "{path}"
        );
    }
    let (status, headers, body) = f.call(Method::GET, "/epcis/context/custody.jsonld").await;
    assert_eq!(status, StatusCode::OK);
    versions(&headers);
    assert_eq!(body, custody_epcis::vocab::CONTEXT_JSON.as_bytes());
    // OPTIONS on every route.
    for path in [
        "/epcis/events",
        "/epcis/events/x",
        "/epcis/eventTypes",
        "/epcis/bizSteps/shipping/events",
        "/epcis/context/custody.jsonld",
    ] {
        let (status, headers, _) = f.call(Method::OPTIONS, path).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}");
        assert!(headers[header::ALLOW].to_str().unwrap().contains("GET"));
        versions(&headers);
    }
}

#[tokio::test]
async fn each_filter_selects_what_it_names_and_nothing_else() {
    let events = all_events(&TestNet::new());
    let f = Fixture::new(&events);
    let id = |i: usize| uri_of(&events[i].id());
    // events: 0 reg, 1 propose CNSHA, 2 accept, 3 scan DEHAM, 4 propose FRCDG, 5 accept,
    // 6 declare, 7 pay, 8 hold, 9 inspection, 10 release, 11 deliver, 12 return requested,
    // 13 return received, 14 attested. Event i is in block i + 2.
    let all: Vec<String> = (0..events.len()).map(id).collect();
    let sscc = "https://id.gs1.org/00/";
    let first_epc = f.query("/epcis/events?perPage=1").await.0[0]["epcList"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first_epc.starts_with(sscc));
    let t = |n: u64| enc(&block_time(n).to_rfc3339());
    let cases: Vec<(String, Vec<String>)> = vec![
        ("eventType=ObjectEvent".into(), all.clone()),
        ("eventType=AggregationEvent".into(), vec![]),
        (format!("GE_recordTime={}", t(16)), vec![id(14)]),
        (format!("LT_recordTime={}", t(3)), vec![id(0)]),
        (
            format!("GE_recordTime={}&LT_recordTime={}", t(3), t(4)),
            vec![id(1)],
        ),
        (format!("GE_eventTime={}", t(1)), vec![]),
        (format!("LT_eventTime={}", t(1)), all.clone()),
        ("EQ_bizStep=consigning".into(), vec![id(1), id(4)]),
        (
            "EQ_bizStep=urn:epcglobal:cbv:bizstep:accepting|commissioning".into(),
            vec![id(0), id(2), id(5)],
        ),
        ("EQ_bizStep=shipping".into(), vec![]),
        (
            format!(
                "EQ_bizStep={}",
                enc("urn:custody:epcis:BizStep-customs_clearing")
            ),
            vec![id(8), id(9), id(10)],
        ),
        (
            format!(
                "EQ_disposition={}",
                enc("urn:custody:epcis:Disp-customs_held")
            ),
            vec![id(8)],
        ),
        ("EQ_disposition=returned".into(), vec![id(13)]),
        ("EQ_disposition=damaged".into(), vec![]),
        (format!("MATCH_epc={}", enc(&first_epc)), all.clone()),
        (format!("MATCH_anyEPC={}", enc(&first_epc)), all.clone()),
        (
            format!("MATCH_epc={}", enc(&format!("{sscc}000000000000000000"))),
            vec![],
        ),
        (
            "EQ_readPoint=urn:custody:locode:CNSHA".into(),
            vec![id(1), id(2)],
        ),
        ("EQ_readPoint=urn:custody:locode:USNYC".into(), vec![]),
        (
            "EQ_bizLocation=urn:custody:locode:FRPAR".into(),
            vec![id(11)],
        ),
        ("EQ_bizLocation=urn:custody:locode:USNYC".into(), vec![]),
        (
            format!(
                "EQ_bizTransaction_rma={}",
                enc("urn:custody:bt:rma:RMA-E-1")
            ),
            vec![id(12), id(13)],
        ),
        (
            format!(
                "EQ_bizTransaction_inv={}",
                enc("urn:custody:bt:rma:RMA-E-1")
            ),
            vec![],
        ),
        (
            format!(
                "EQ_bizTransaction_{}={}",
                enc("urn:custody:epcis:BTT-awb"),
                enc("urn:custody:bt:awb:02012345675")
            ),
            vec![id(1), id(2), id(4), id(5)],
        ),
        (format!("EQ_eventID={}", enc(&id(7))), vec![id(7)]),
        // Conditions combine.
        (
            "EQ_bizStep=consigning&EQ_readPoint=urn:custody:locode:FRCDG".into(),
            vec![id(4)],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(
            f.ids(&format!("/epcis/events?{query}")).await,
            want,
            "{query}"
        );
    }
    // The resource paths are the same filters.
    assert_eq!(
        f.ids("/epcis/bizSteps/consigning/events").await,
        vec![id(1), id(4)]
    );
    assert_eq!(
        f.ids("/epcis/bizSteps/shipping/events").await,
        Vec::<String>::new()
    );
    assert_eq!(f.ids("/epcis/eventTypes/ObjectEvent/events").await, all);
    assert_eq!(
        f.ids("/epcis/dispositions/returned/events").await,
        vec![id(13)]
    );
    assert_eq!(
        f.ids(&format!("/epcis/epcs/{}/events", enc(&first_epc)))
            .await,
        all
    );
    assert_eq!(
        f.ids("/epcis/readPoints/urn:custody:locode:CNSHA/events?EQ_bizStep=accepting")
            .await,
        vec![id(2)]
    );
    assert_eq!(
        f.ids("/epcis/bizLocations/urn:custody:locode:FRPAR/events")
            .await,
        vec![id(11)]
    );
}

#[tokio::test]
async fn bad_parameters_are_query_parameter_exceptions() {
    let f = Fixture::new(&all_events(&TestNet::new())[..2]);
    for (query, field) in [
        ("colour=red", "colour"),
        ("EQ_action=ADD", "EQ_action"),
        ("orderBy=eventTime", "orderBy"),
        ("GE_eventTime=yesterday", "GE_eventTime"),
        ("eventType=Thing", "eventType"),
        ("perPage=0", "perPage"),
        ("perPage=1001", "perPage"),
        ("perPage=x", "perPage"),
        ("nextPageToken=abc", "nextPageToken"),
        ("EQ_bizStep=", "EQ_bizStep"),
        ("EQ_bizStep=a&EQ_bizStep=b", "EQ_bizStep"),
        ("MATCH_epc=urn:epc:idpat:sscc:0614141.*", "MATCH_epc"),
        ("EQ_bizTransaction_=x", "EQ_bizTransaction_"),
    ] {
        let problem = f
            .problem(
                &format!("/epcis/events?{query}"),
                StatusCode::BAD_REQUEST,
                "epcis.query_parameter",
                "QueryParameterException",
            )
            .await;
        assert_eq!(problem.field.as_deref(), Some(field), "{query}");
    }
    for uri in [
        "/epcis/bizSteps/shipping/events?EQ_bizStep=receiving",
        "/epcis/eventTypes?x=1",
        "/epcis/events/urn:custody:event:00?perPage=1",
    ] {
        f.problem(
            uri,
            StatusCode::BAD_REQUEST,
            "epcis.query_parameter",
            "QueryParameterException",
        )
        .await;
    }
    let (status, headers, _) = f.call(Method::GET, "/epcis/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    versions(&headers);
    let (status, headers, _) = f.call(Method::DELETE, "/epcis/events").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    versions(&headers);
}

#[tokio::test]
async fn pages_are_stable_while_events_arrive() {
    let net = TestNet::new();
    let events = all_events(&net);
    let mut f = Fixture::new(&events[..5]);
    let query = "EQ_disposition=in_transit|active|returned";
    let mut seen: Vec<String> = Vec::new();
    let mut uri = format!("/epcis/events?perPage=2&{query}");
    let mut committed = 5;
    let last = loop {
        let (page, next) = f.query(&uri).await;
        let committed_when_read = committed;
        assert!(page.len() <= 2);
        seen.extend(
            page.iter()
                .map(|e| e["eventID"].as_str().unwrap().to_owned()),
        );
        // An event arrives between pages, matching or not.
        if committed < events.len() {
            f.commit(vec![events[committed].clone()]);
            committed += 1;
        }
        match next {
            Some(next) => {
                assert!(next.contains("nextPageToken="), "{next}");
                assert!(next.contains("EQ_disposition="), "{next}");
                uri = next;
            }
            None => break committed_when_read,
        }
    };
    assert!(
        last > 6,
        "events that arrived while paging were read: {last}"
    );
    let committed_ids: Vec<String> = events[..last].iter().map(|e| uri_of(&e.id())).collect();
    let want: Vec<String> = f
        .ids(&format!("/epcis/events?{query}"))
        .await
        .into_iter()
        .filter(|id| committed_ids.contains(id))
        .collect();
    assert!(want.len() >= 4);
    assert_eq!(seen, want, "no duplicate, none missing, in log order");
}

#[tokio::test]
async fn a_page_ends_early_when_its_scan_budget_is_spent() {
    use custody_node::epcis::query::{parse, scan, Paging};
    let events = all_events(&TestNet::new());
    let f = Fixture::new(&events);
    let pairs = vec![("EQ_bizStep".to_owned(), "accepting".to_owned())];
    let (filter, _) = parse(&pairs, true).unwrap();
    let mut start = 0;
    let mut found = Vec::new();
    let mut pages = 0;
    loop {
        let page = scan(
            &f.store,
            &f.state.genesis,
            &filter,
            Paging {
                start,
                per_page: 10,
            },
            3,
        )
        .unwrap();
        assert!(page.read_to - start <= 3, "at most the budget is read");
        found.extend(page.events);
        pages += 1;
        match page.next {
            Some(next) => start = next,
            None => break,
        }
    }
    assert!(pages > 3);
    assert_eq!(found.len(), 2);
}
