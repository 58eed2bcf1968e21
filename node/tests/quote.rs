//! `POST /v1/quote`, called with `oneshot` on the router over a sled store holding published
//! reference data: good drafts for each regime and jurisdiction, with the figures computed by
//! hand; every kind of bad input answered with a 4xx problem naming the draft's field and
//! changing nothing; and a property test that a quote at a block's time is exactly what a
//! declaration of the same shipment in that block must state.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use custody_contracts::load::{de_minimis_events, sample_tables, tariff_from_json};
use custody_contracts::ContractRules;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::view::{Problem, Quote, QuoteLine, QuoteRequest};
use custody_ledger::Timestamp;
use custody_node::api::{app, ApiState};
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_sled::SledStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, Mutex};
use tower::ServiceExt;

/// Tariffs for the tests. The French one holds the real rates the devnet publishes (6109:
/// 12 %, 8471: free, VAT 20 %); the other lines and jurisdictions have TEST rates, chosen only
/// to exercise the arithmetic, not the law.
const TARIFFS: &[&str] = &[
    r#"{"jurisdiction":"FR","currency":"EUR","vat_rate_ppm":200000,"lines":[
        {"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":120000}}},
        {"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":90000}}},
        {"hs_prefix":"8471","rate":{"ad_valorem":{"rate_ppm":0}}}]}"#,
    r#"{"jurisdiction":"AU","currency":"AUD","vat_rate_ppm":100000,"lines":[
        {"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":50000}}},
        {"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":50000}}},
        {"hs_prefix":"8471","rate":{"ad_valorem":{"rate_ppm":0}}}]}"#,
    r#"{"jurisdiction":"CA","currency":"CAD","vat_rate_ppm":50000,"lines":[
        {"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":180000}}},
        {"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":65000}}},
        {"hs_prefix":"8471","rate":{"ad_valorem":{"rate_ppm":0}}}]}"#,
    r#"{"jurisdiction":"GB","currency":"GBP","vat_rate_ppm":200000,"lines":[
        {"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":120000}}},
        {"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":60000}}},
        {"hs_prefix":"8471","rate":{"ad_valorem":{"rate_ppm":0}}}]}"#,
    r#"{"jurisdiction":"US","currency":"USD","vat_rate_ppm":0,"lines":[
        {"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":165000}}},
        {"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":100000}}},
        {"hs_prefix":"8471","rate":{"ad_valorem":{"rate_ppm":0}}}]}"#,
];

/// The tables' effective date: 2025-01-01, before the EU's flat duty (2026-07-01).
fn tables_from() -> Timestamp {
    Timestamp::from_date(2025, 1, 1).expect("date")
}

/// Every table the tests publish: the demo nomenclature and sample tariffs, the de minimis
/// versions, and the tariffs above.
fn tables() -> Vec<ReferenceDataPublished> {
    let mut tables = sample_tables(tables_from());
    tables.extend(de_minimis_events());
    for json in TARIFFS {
        tables.push(tariff_from_json(json, tables_from()).expect("test tariff"));
    }
    tables
}

/// Publishes the tables in one block at `time`; the rules after it.
fn publish<S: Store + ?Sized>(net: &TestNet, store: &S, time: Timestamp) -> ContractRules {
    let events: Vec<EncodedEvent> = tables()
        .into_iter()
        .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
        .collect();
    let built = net
        .commit_with(store, &ContractRules::default(), events, time)
        .expect("commit");
    assert_eq!(built.rejected, vec![], "the tables publish");
    built.into_rules()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SledStore>,
    mempool: Arc<Mutex<Mempool>>,
    state: ApiState,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

impl Fixture {
    /// A network running the newest rules (version 2 from height 1), as a new devnet does.
    fn new() -> Fixture {
        Fixture::with_rules_version(2)
    }

    /// A network running one rules version from height 1.
    fn with_rules_version(version: u32) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = TestNet::new().with_rules_version(version);
        let store = Arc::new(
            SledStore::open(dir.path().join("ledger"), net.genesis_hash()).expect("store"),
        );
        let rules = publish(&net, store.as_ref(), GENESIS_TIME);
        let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
            count_max: 100,
            size_bytes_max: 1 << 20,
            signer_count_max: 50,
            signer_size_bytes_max: 1 << 20,
        })));
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
            store,
            mempool,
            state,
            _outbound: outbound_rx,
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
        let response = app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("body")
            .to_vec();
        (status, content_type, body)
    }

    async fn post_raw(
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

    async fn quote(&self, draft: &Value) -> Quote {
        let (status, _, body) = self
            .post_raw(
                "/v1/quote",
                "application/json",
                draft.to_string().into_bytes(),
            )
            .await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Posts a bad draft: a 4xx problem with `code` naming `field`, and nothing changed.
    async fn refused(&self, draft: Vec<u8>, status: StatusCode, code: &str, field: &str) {
        let before = self.footprint().await;
        let (got, content_type, body) = self.post_raw("/v1/quote", "application/json", draft).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(got, status, "{text}");
        assert_eq!(content_type, "application/problem+json", "{text}");
        let problem: Problem = serde_json::from_slice(&body).expect("a problem");
        assert_eq!(problem.code, code, "{text}");
        assert_eq!(problem.field.as_deref(), Some(field), "{text}");
        assert_eq!(self.footprint().await, before, "a quote changes nothing");
    }

    async fn footprint(&self) -> (Option<custody_ledger::store::Head>, usize) {
        (
            self.store.head().expect("head"),
            self.mempool.lock().await.len(),
        )
    }
}

/// 2026-11-01, after the EU's flat duty took effect (2026-07-01).
fn at() -> String {
    GENESIS_TIME.to_rfc3339()
}

/// A draft of `quantity` cotton T-shirts at `unit_value_minor` each, dispatched from `origin`
/// to `destination`, with €10 freight and €2 insurance.
fn tshirts(origin: &str, destination: &str, quantity: u64, unit_value_minor: u64) -> Value {
    json!({
        "origin": origin,
        "destination": destination,
        "incoterm": "DAP",
        "transport_mode": "courier",
        "currency": "EUR",
        "lines": [{
            "description": "Cotton T-shirt",
            "hs_code": "6109.10",
            "tariff_code": "6109100010",
            "quantity": quantity,
            "unit": "PCE",
            "unit_value_minor": unit_value_minor,
            "net_weight_grams": 200 * quantity,
            "origin_country": origin
        }],
        "freight_minor": 1_000,
        "insurance_minor": 200,
        "seller_registrations": [],
        "at": at()
    })
}

/// The same goods priced in another currency, with the rate from EUR.
fn in_currency(mut draft: Value, currency: &str, numerator: u64, denominator: u64) -> Value {
    draft["exchange_rate"] = json!({
        "from": "EUR", "to": currency, "numerator": numerator, "denominator": denominator
    });
    draft
}

#[tokio::test]
async fn a_full_declaration_in_france() {
    let f = Fixture::new();
    // 20 T-shirts × €15 = €300, above the EU's €150: a full declaration.
    let q = f.quote(&tshirts("CN", "FR", 20, 1_500)).await;
    assert_eq!(q.jurisdiction.as_str(), "FR");
    assert_eq!(q.currency.as_str(), "EUR");
    assert_eq!(q.regime.regime, CustomsRegime::Full);
    assert_eq!(q.regime.compared_minor, 30_000);
    assert_eq!(q.regime.duty_free_max_minor, Some(15_000));
    assert!(q
        .regime
        .source
        .as_deref()
        .unwrap_or("")
        .contains("1186/2009"));
    // CIF basis; DAP already includes the carriage: nothing added.
    assert_eq!(q.valuation.basis, ValuationBasis::CIF);
    assert_eq!(q.valuation.adjustment, "none");
    assert_eq!(q.valuation.customs_value_minor, 30_000);
    // Duty 12 % of €300 = €36.00; VAT 20 % of (€300 + €36) = €67.20.
    assert_eq!(q.lines[0].duty_minor, 3_600);
    assert_eq!(q.lines[0].tax_minor, 6_720);
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (3_600, 6_720));
    // Landed: €300 + €10 + €2 + €36 + €67.20 = €415.20.
    assert_eq!(q.landed_cost_minor, 41_520);
    assert_eq!(q.payer.duty_and_tax, "buyer");
    assert_eq!(q.payer.transport, "seller");
    assert!(!q.payer.tax_collected_at_sale);
    assert_eq!(q.rules_version, 2);
    // The tables read, with their dates and the events that published them.
    let tables: Vec<&str> = q
        .reference_data
        .iter()
        .map(|r| r.table_id.as_str())
        .collect();
    assert_eq!(tables, ["hs-nomenclature", "de-minimis", "tariff/FR"]);
    let de_minimis = &q.reference_data[1];
    assert_eq!(
        de_minimis.effective_from,
        Timestamp::from_date(2026, 7, 1).expect("date")
    );
    let stored = f
        .store
        .event(&de_minimis.event_id)
        .expect("store")
        .expect("the publishing event is on the ledger");
    assert!(matches!(
        stored.event.event().event.kind,
        EventKind::ReferenceDataPublished(_)
    ));
}

#[tokio::test]
async fn relief_in_france_with_the_flat_duty_and_with_ioss() {
    let f = Fixture::new();
    // 2 × €15 = €30, within €150: duty relief, but since 2026-07-01 a flat €3 for the one
    // item category; VAT at import: 20 % of (€30 + €3) = €6.60.
    let q = f.quote(&tshirts("CN", "FR", 2, 1_500)).await;
    assert_eq!(q.regime.regime, CustomsRegime::DeMinimisRelief);
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (300, 660));
    // €30 + €10 + €2 + €3 + €6.60 = €51.60.
    assert_eq!(q.landed_cost_minor, 5_160);

    // The same before 2026-07-01: no flat duty; VAT 20 % of €30 = €6.00.
    let mut earlier = tshirts("CN", "FR", 2, 1_500);
    earlier["at"] = json!("2026-03-01T00:00:00.000Z");
    let q = f.quote(&earlier).await;
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (0, 600));
    assert_eq!(
        q.reference_data[1].effective_from,
        Timestamp::from_date(2025, 8, 29).expect("date"),
        "the de minimis version in force on 2026-03-01"
    );

    // With the seller's IOSS number, the VAT is charged at checkout: none at the border.
    let mut ioss = tshirts("CN", "FR", 2, 1_500);
    ioss["seller_registrations"] = json!([{ "scheme": "IOSS", "value": "IM2500000001" }]);
    let q = f.quote(&ioss).await;
    assert_eq!(
        q.regime.regime,
        CustomsRegime::TaxCollectedAtSale {
            registration_id: "IM2500000001".into()
        }
    );
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (300, 0));
    assert!(q.payer.tax_collected_at_sale);
    // Above €150, IOSS no longer applies: a full declaration again.
    let mut dear = tshirts("CN", "FR", 20, 1_500);
    dear["seller_registrations"] = ioss["seller_registrations"].clone();
    assert_eq!(f.quote(&dear).await.regime.regime, CustomsRegime::Full);
}

#[tokio::test]
async fn australia_adds_transport_to_the_gst_base_whatever_the_incoterm() {
    let f = Fixture::new();
    // 100 T-shirts × €15 = €1,500 at 17/10 = A$2,550.00, above A$1,000: full. FOB basis and
    // an FOB sale: nothing deducted. Freight €10 → A$17.00, insurance €2 → A$3.40.
    let mut draft = in_currency(tshirts("CN", "AU", 100, 1_500), "AUD", 17, 10);
    draft["incoterm"] = json!("FOB");
    draft["lines"][0]["tariff_code"] = json!("61091000");
    let q = f.quote(&draft).await;
    assert_eq!(q.currency.as_str(), "AUD");
    assert_eq!(q.regime.regime, CustomsRegime::Full);
    assert_eq!(q.valuation.basis, ValuationBasis::FOB);
    assert_eq!(q.valuation.customs_value_minor, 255_000);
    // Duty 5 % = A$127.50. GST (rules version 2) 10 % of (2,550 + 127.50 + 17 + 3.40)
    // = 10 % of A$2,697.90 = A$269.79.
    assert_eq!(q.duty_total_minor, 12_750);
    assert_eq!(q.tax_total_minor, 26_979);
    // 2,550 + 17 + 3.40 + 127.50 + 269.79 = A$2,967.69.
    assert_eq!(q.landed_cost_minor, 296_769);
    assert_eq!(q.payer.transport, "buyer");

    // Within A$1,000 with an ABN: GST collected at the sale, nothing at the border.
    let mut cheap = in_currency(tshirts("CN", "AU", 2, 1_500), "AUD", 17, 10);
    cheap["lines"][0]["tariff_code"] = json!("61091000");
    cheap["seller_registrations"] = json!([{ "scheme": "ABN", "value": "51 824 753 556" }]);
    let q = f.quote(&cheap).await;
    assert!(matches!(
        q.regime.regime,
        CustomsRegime::TaxCollectedAtSale { .. }
    ));
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (0, 0));
}

#[tokio::test]
async fn a_network_still_on_rules_version_1_is_quoted_by_version_1() {
    let f = Fixture::with_rules_version(1);
    // The Australian draft above, judged by version 1: under FOB the GST base has no
    // transport: 10 % of (A$2,550 + A$127.50) = A$267.75.
    let mut draft = in_currency(tshirts("CN", "AU", 100, 1_500), "AUD", 17, 10);
    draft["incoterm"] = json!("FOB");
    draft["lines"][0]["tariff_code"] = json!("61091000");
    let q = f.quote(&draft).await;
    assert_eq!(q.rules_version, 1);
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (12_750, 26_775));
}

#[tokio::test]
async fn canada_distinguishes_courier_from_postal() {
    let f = Fixture::new();
    // 2 × €15 = €30 at 3/2 = C$45.00 from the US. By courier: within CUSMA's C$150 duty
    // threshold, above its C$40 tax threshold: no duty. FOB basis, and DDP includes the
    // €12 = C$18.00 of transport and insurance: deducted, customs value C$27.00; GST 5 % of
    // C$27.00 = C$1.35.
    let mut courier = in_currency(tshirts("US", "CA", 2, 1_500), "CAD", 3, 2);
    courier["incoterm"] = json!("DDP");
    let q = f.quote(&courier).await;
    assert_eq!(q.regime.regime, CustomsRegime::DeMinimisRelief);
    assert_eq!(q.regime.duty_free_max_minor, Some(15_000));
    assert_eq!(q.valuation.customs_value_minor, 2_700);
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (0, 135));
    assert_eq!(q.payer.duty_and_tax, "seller");
    // By post, the C$20 threshold: a full declaration. Duty 18 % of C$27 = C$4.86; GST 5 %
    // of C$31.86 = C$1.593 → C$1.59.
    let mut postal = courier.clone();
    postal["transport_mode"] = json!("postal");
    let q = f.quote(&postal).await;
    assert_eq!(q.regime.regime, CustomsRegime::Full);
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (486, 159));
}

#[tokio::test]
async fn the_united_kingdom_and_the_united_states() {
    let f = Fixture::new();
    // UK: 2 × €15 = €30 at 85/100 = £25.50, within £135, the seller VAT-registered: VAT at
    // the sale, no duty.
    let mut gb = in_currency(tshirts("CN", "GB", 2, 1_500), "GBP", 85, 100);
    gb["seller_registrations"] = json!([{ "scheme": "VAT", "value": "GB980780684" }]);
    let q = f.quote(&gb).await;
    assert!(matches!(
        q.regime.regime,
        CustomsRegime::TaxCollectedAtSale { .. }
    ));
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (0, 0));

    // US after 2025-08-29: no de minimis at all. €30 at 108/100 = $32.40; FOB basis, DAP
    // includes €12 = $12.96 of transport and insurance, deducted: $19.44. Duty 16.5 % =
    // $3.2076 → $3.21; no federal import VAT.
    let mut us = in_currency(tshirts("CN", "US", 2, 1_500), "USD", 108, 100);
    us["lines"][0]["tariff_code"] = json!("6109100012");
    let q = f.quote(&us).await;
    assert_eq!(q.regime.regime, CustomsRegime::Full);
    assert_eq!(q.regime.source, None);
    assert_eq!(q.valuation.adjustment, "deducted");
    assert_eq!(q.valuation.customs_value_minor, 1_944);
    assert_eq!((q.duty_total_minor, q.tax_total_minor), (321, 0));
    // Landed: $32.40 + $10.80 + $2.16 + $3.21 = $48.57.
    assert_eq!(q.landed_cost_minor, 4_857);
}

#[tokio::test]
async fn a_quote_matches_the_documented_schema() {
    let f = Fixture::new();
    let q = f.quote(&tshirts("CN", "FR", 20, 1_500)).await;
    let doc = custody_node::openapi::document();
    let json = serde_json::to_value(&doc).expect("document");
    let schema = &json["components"]["schemas"]["Quote"];
    let properties = schema["properties"].as_object().expect("Quote properties");
    let value = serde_json::to_value(&q).expect("quote");
    for key in value.as_object().expect("object").keys() {
        assert!(properties.contains_key(key), "Quote.{key} is undocumented");
    }
    assert!(json["paths"]["/v1/quote"]["post"].is_object());
}

/// The draft's JSON with the value at `pointer` replaced.
fn with(mut draft: Value, pointer: &str, value: Value) -> Vec<u8> {
    *draft
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    draft.to_string().into_bytes()
}

#[tokio::test]
async fn every_kind_of_bad_input_is_a_4xx_naming_the_field() {
    let f = Fixture::new();
    let good = tshirts("CN", "FR", 20, 1_500);
    let bad = StatusCode::BAD_REQUEST;
    let refused = StatusCode::UNPROCESSABLE_ENTITY;
    // Not a draft at all.
    f.refused(b"{".to_vec(), bad, "quote.malformed", "body")
        .await;
    f.refused(b"[]".to_vec(), bad, "quote.malformed", "body")
        .await;
    f.refused(
        format!("{good} trailing").into_bytes(),
        bad,
        "quote.malformed",
        "body",
    )
    .await;
    // A missing field, an unknown one, a value of the wrong type or form.
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("destination");
    f.refused(
        missing.to_string().into_bytes(),
        bad,
        "quote.malformed",
        "destination",
    )
    .await;
    let mut line_missing = good.clone();
    line_missing["lines"][0]
        .as_object_mut()
        .expect("line")
        .remove("quantity");
    f.refused(
        line_missing.to_string().into_bytes(),
        bad,
        "quote.malformed",
        "lines[0].quantity",
    )
    .await;
    let mut unknown = good.clone();
    unknown["colour"] = json!("red");
    f.refused(
        unknown.to_string().into_bytes(),
        bad,
        "quote.malformed",
        "colour",
    )
    .await;
    let mut unknown = good.clone();
    unknown["lines"][0]["colour"] = json!("red");
    f.refused(
        unknown.to_string().into_bytes(),
        bad,
        "quote.malformed",
        "lines[0].colour",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/quantity", json!("ten")),
        bad,
        "quote.malformed",
        "lines[0].quantity",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/quantity", json!(-1)),
        bad,
        "quote.malformed",
        "lines[0].quantity",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/unit_value_minor", json!(12.5)),
        bad,
        "quote.malformed",
        "lines[0].unit_value_minor",
    )
    .await;
    f.refused(
        with(good.clone(), "/freight_minor", json!(-100)),
        bad,
        "quote.malformed",
        "freight_minor",
    )
    .await;
    f.refused(
        with(good.clone(), "/origin", json!("china")),
        bad,
        "quote.malformed",
        "origin",
    )
    .await;
    f.refused(
        with(good.clone(), "/currency", json!("euro")),
        bad,
        "quote.malformed",
        "currency",
    )
    .await;
    f.refused(
        with(good.clone(), "/incoterm", json!("FOO")),
        bad,
        "quote.malformed",
        "incoterm",
    )
    .await;
    f.refused(
        with(good.clone(), "/transport_mode", json!("pigeon")),
        bad,
        "quote.malformed",
        "transport_mode",
    )
    .await;
    f.refused(
        with(good.clone(), "/at", json!("yesterday")),
        bad,
        "quote.malformed",
        "at",
    )
    .await;
    f.refused(
        with(
            good.clone(),
            "/seller_registrations",
            json!([{ "scheme": "IOSS" }]),
        ),
        bad,
        "quote.malformed",
        "seller_registrations[0].value",
    )
    .await;

    // Drafts the rules refuse, on the draft's own field.
    f.refused(
        with(good.clone(), "/lines", json!([])),
        refused,
        "quote.lines",
        "lines",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/quantity", json!(0)),
        refused,
        "invoice.quantity_zero",
        "lines[0].quantity",
    )
    .await;
    f.refused(
        with(good.clone(), "/origin", json!("XX")),
        refused,
        "id.country",
        "origin",
    )
    .await;
    // EU entry summaries refuse generic descriptions (rules version 2).
    f.refused(
        with(good.clone(), "/lines/0/description", json!("Accessories")),
        refused,
        "invoice.generic_description",
        "lines[0].description",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/origin_country", json!("XX")),
        refused,
        "id.country",
        "lines[0].origin_country",
    )
    .await;
    f.refused(
        with(good.clone(), "/destination", json!("JP")),
        refused,
        "valuation.unsupported_jurisdiction",
        "destination",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/hs_code", json!("0101.21")),
        refused,
        "hs.unknown_subheading",
        "lines[0].hs_code",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/hs_code", json!("99")),
        refused,
        "hs.length",
        "lines[0].hs_code",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/tariff_code", json!("6912000010")),
        refused,
        "hs.invoice_mismatch",
        "lines[0].tariff_code",
    )
    .await;
    f.refused(
        with(good.clone(), "/lines/0/tariff_code", Value::Null),
        refused,
        "hs.length",
        "lines[0].hs_code",
    )
    .await;
    let mut no_rate = good.clone();
    no_rate["lines"][0]["hs_code"] = json!("4202.21");
    no_rate["lines"][0]["tariff_code"] = json!("4202210000");
    f.refused(
        no_rate.to_string().into_bytes(),
        refused,
        "duty.no_rate",
        "lines[0].tariff_code",
    )
    .await;
    f.refused(
        with(good.clone(), "/currency", json!("USD")),
        refused,
        "valuation.exchange_rate",
        "exchange_rate",
    )
    .await;
    f.refused(
        with(
            good.clone(),
            "/seller_registrations",
            json!([{ "scheme": "IOSS", "value": "IM123" }]),
        ),
        refused,
        "id.ioss",
        "seller_registrations[0].value",
    )
    .await;
    let mut huge = good.clone();
    huge["lines"][0]["quantity"] = json!(u64::MAX);
    huge["lines"][0]["unit_value_minor"] = json!(u64::MAX);
    f.refused(
        huge.to_string().into_bytes(),
        refused,
        "money.overflow",
        "lines",
    )
    .await;

    // The request around the draft.
    let before = f.footprint().await;
    let (status, _, body) = f
        .post_raw(
            "/v1/quote?dry=1",
            "application/json",
            good.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, bad, "{}", String::from_utf8_lossy(&body));
    let problem: Problem = serde_json::from_slice(&body).expect("problem");
    assert_eq!(
        (problem.code.as_str(), problem.field.as_deref()),
        ("request.query", Some("dry"))
    );
    let (status, _, _) = f
        .post_raw("/v1/quote", "text/plain", good.to_string().into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = f
        .call(
            Request::get("/v1/quote")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(f.footprint().await, before);
}

// ---------------------------------------------------------------------------------------------
// The property: a quote at the block time is what the declaration must state.

/// The registration a seller signs for the draft: the same goods, one parcel.
fn registration_of(draft: &QuoteRequest, shipment: &str) -> ShipmentRegistered {
    let sscc = "106141411234567897";
    let lines: Vec<InvoiceLine> = draft
        .lines
        .iter()
        .zip(1u32..)
        .map(|(l, no)| InvoiceLine {
            line_no: no,
            description: l.description.clone(),
            hs_code: l.hs_code.clone(),
            gtin: None,
            quantity: l.quantity,
            unit: l.unit.clone(),
            unit_value_minor: l.unit_value_minor,
            net_weight_grams: l.net_weight_grams,
            origin_country: l.origin_country,
        })
        .collect();
    ShipmentRegistered {
        shipment_id: ShipmentId::new(shipment),
        parcels: vec![Parcel {
            sscc: sscc.into(),
            gross_weight_grams: 5_000,
        }],
        origin: draft.origin,
        destination: draft.destination,
        incoterm: draft.incoterm,
        incoterm_place: "Paris".into(),
        invoice: CommercialInvoice {
            number: format!("INV-{shipment}"),
            issued_at: GENESIS_TIME,
            currency: draft.currency,
            seller: Party {
                name: "Acme Trading".into(),
                country: draft.origin,
                tax_ids: draft.seller_registrations.clone(),
            },
            buyer: Buyer {
                name_commitment: custody_ledger::personal::commitment(
                    "J. Buyer",
                    &custody_ledger::testkit::salt(1),
                ),
                address_commitment: None,
                country: draft.destination,
                tax_ids: vec![],
                personal_id_commitment: None,
            },
            total_minor: lines.iter().map(|l| l.quantity * l.unit_value_minor).sum(),
            lines,
            freight_minor: draft.freight_minor,
            insurance_minor: draft.insurance_minor,
        },
        packing_list: PackingList {
            lines: (1u32..)
                .zip(&draft.lines)
                .map(|(no, l)| PackingLine {
                    sscc: sscc.into(),
                    invoice_line: no,
                    quantity: l.quantity,
                })
                .collect(),
        },
    }
}

/// The declaration a broker signs stating the quoted figures.
fn declaration_of(q: &Quote, shipment: &str) -> CustomsDeclared {
    CustomsDeclared {
        shipment_id: ShipmentId::new(shipment),
        declaration_ref: format!("DEC-{shipment}"),
        jurisdiction: q.jurisdiction,
        transport_mode: q.transport_mode,
        currency: q.currency,
        valuation_basis: q.valuation.basis,
        customs_value_minor: q.valuation.customs_value_minor,
        freight_minor: q.valuation.freight_minor,
        insurance_minor: q.valuation.insurance_minor,
        exchange_rate: q.exchange_rate,
        regime: q.regime.regime.clone(),
        lines: q
            .lines
            .iter()
            .map(|l| DeclarationLine {
                invoice_line: l.line_no,
                hs_code: l.tariff_code.clone(),
                customs_value_minor: l.customs_value_minor,
                duty_minor: l.duty_minor,
                tax_minor: l.tax_minor,
            })
            .collect(),
        duty_total_minor: q.duty_total_minor,
        tax_total_minor: q.tax_total_minor,
    }
}

/// One amount of a declaration moved by one minor unit: `which` picks the amount, `up` the
/// direction (down only when the amount is above zero).
fn one_off(mut d: CustomsDeclared, which: usize, up: bool) -> CustomsDeclared {
    let mut amounts: Vec<&mut u64> = vec![
        &mut d.customs_value_minor,
        &mut d.freight_minor,
        &mut d.insurance_minor,
        &mut d.duty_total_minor,
        &mut d.tax_total_minor,
    ];
    for line in &mut d.lines {
        amounts.push(&mut line.customs_value_minor);
        amounts.push(&mut line.duty_minor);
        amounts.push(&mut line.tax_minor);
    }
    let n = amounts.len();
    let amount = &mut amounts[which % n];
    **amount = if up || **amount == 0 {
        **amount + 1
    } else {
        **amount - 1
    };
    d
}

/// Goods of the demo nomenclature with the tariff codes every test jurisdiction accepts.
const GOODS: &[(&str, &str, &str, &str)] = &[
    ("Cotton T-shirt", "6109.10", "6109100010", "61091000"),
    ("Ceramic mug", "6912.00", "6912000010", "69120000"),
    ("Laptop", "8471.30", "8471300000", "84713000"),
];

/// (destination, customs currency, rate from EUR as numerator / denominator).
const DESTINATIONS: &[(&str, &str, u64, u64)] = &[
    ("FR", "EUR", 1, 1),
    ("AU", "AUD", 17, 10),
    ("CA", "CAD", 3, 2),
    ("GB", "GBP", 85, 100),
    ("US", "USD", 108, 100),
];

fn draft_strategy() -> impl Strategy<Value = QuoteRequest> {
    // Values from a cent to €30 a unit, a few units a line: most drafts fall under one
    // low-value threshold or another, some above.
    let line = (0..GOODS.len(), 1u64..5, 1u64..3_000, 0u64..5_000, 0..3usize);
    (
        0..DESTINATIONS.len(),
        prop::collection::vec(line, 1..4),
        0u64..5_000,
        0u64..1_000,
        0..Incoterm::ALL.len(),
        0..3usize,
        any::<bool>(),
        0..3usize,
    )
        .prop_map(
            |(d, lines, freight, insurance, term, mode, registered, origin)| {
                let (destination, currency, numerator, denominator) = DESTINATIONS[d];
                let country = |c: &str| CountryCode::parse(c).expect("country");
                let origins = ["CN", "US", "DE"];
                let registration = match destination {
                    "FR" => Some(("IOSS", "IM2500000001")),
                    "GB" => Some(("VAT", "GB980780684")),
                    "AU" => Some(("ABN", "51824753556")),
                    _ => None,
                };
                QuoteRequest {
                    origin: country(origins[origin]),
                    destination: country(destination),
                    incoterm: Incoterm::ALL[term],
                    transport_mode: [
                        TransportMode::Postal,
                        TransportMode::Courier,
                        TransportMode::Freight,
                    ][mode],
                    currency: CurrencyCode::parse("EUR").expect("EUR"),
                    lines: lines
                        .into_iter()
                        .map(|(g, quantity, value, weight, o)| {
                            let (description, hs, long, eight) = GOODS[g];
                            QuoteLine {
                                description: description.into(),
                                hs_code: hs.into(),
                                tariff_code: Some(
                                    if destination == "AU" { eight } else { long }.into(),
                                ),
                                quantity,
                                unit: "PCE".into(),
                                unit_value_minor: value,
                                net_weight_grams: weight,
                                origin_country: country(origins[o]),
                            }
                        })
                        .collect(),
                    freight_minor: freight,
                    insurance_minor: insurance,
                    seller_registrations: registration
                        .filter(|_| registered)
                        .map(|(scheme, value)| {
                            vec![TaxId {
                                scheme: scheme.into(),
                                value: value.into(),
                            }]
                        })
                        .unwrap_or_default(),
                    exchange_rate: (currency != "EUR").then(|| ExchangeRate {
                        from: CurrencyCode::parse("EUR").expect("EUR"),
                        to: CurrencyCode::parse(currency).expect("currency"),
                        numerator,
                        denominator,
                    }),
                    at: None,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A quote at a block's time, under the rules version in force at its height, is what a
    /// declaration of the same shipment in that block must state: the declaration with the
    /// quoted figures is accepted, and the same declaration with any one amount one minor
    /// unit off is refused.
    #[test]
    fn a_quote_is_what_the_declaration_must_state(
        draft in draft_strategy(),
        version in 1u32..=2,
        which in 0usize..64,
        up in any::<bool>(),
        later_ms in 0u64..400 * 86_400_000,
    ) {
        let net = TestNet::new().with_rules_version(version);
        let store = MemoryStore::new(net.genesis_hash());
        let rules = publish(&net, &store, GENESIS_TIME);
        let shipment = "Q-1";
        let t1 = Timestamp(GENESIS_TIME.0 + 1_000);
        let registered = net.sign(
            "seller-acme",
            EventKind::ShipmentRegistered(registration_of(&draft, shipment)),
        );
        let proposal = net.propose_at("seller-acme", shipment, "carrier-swift", "CNSHA");
        let accepted = net.accept("carrier-swift", shipment, &proposal);
        let built = net
            .commit_with(&store, &rules, vec![registered, proposal, accepted], t1)
            .expect("commit");
        prop_assert_eq!(&built.rejected, &vec![]);
        let rules = built.into_rules();

        // The declaration's block: its height and time decide the rules and the tables.
        let height = store.head().expect("head").expect("a block").height + 1;
        let time = Timestamp(t1.0 + 1_000 + later_ms);
        let rules_version = net.genesis.rules_version_at(height);
        prop_assert_eq!(rules_version, version);
        let quote = match custody_node::quote::quote(&rules, time, rules_version, &draft) {
            Ok(quote) => quote,
            // Drafts the rules refuse (an FOB deduction above a line's value) have no
            // declaration either: the registration stands, no declaration can be made.
            Err(e) => {
                prop_assert_eq!(e.code.as_str(), "valuation.negative", "{:?}", e);
                return Ok(());
            }
        };
        let right = declaration_of(&quote, shipment);
        let wrong = one_off(right.clone(), which, up);
        let wrong = net.sign("broker-clear", EventKind::CustomsDeclared(wrong));
        let right = net.sign("broker-clear", EventKind::CustomsDeclared(right));
        let built = net
            .commit_with(&store, &rules, vec![wrong.clone(), right.clone()], time)
            .expect("commit");
        let rejected: Vec<_> = built.rejected.iter().map(|(id, _)| *id).collect();
        prop_assert_eq!(rejected, vec![wrong.id()], "{:?}", built.rejected);
        prop_assert_eq!(built.block().events.len(), 1);
        prop_assert_eq!(built.block().events[0].id(), right.id());
    }
}
