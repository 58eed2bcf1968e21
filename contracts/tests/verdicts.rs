//! Golden verdict vectors, the rules' counterpart of the codec's golden hashes
//! (`ledger/tests/codec.rs`): fixed shipments, judged under every rules version, give these
//! regimes, assessed amounts and verdicts, pinned as text. A change to a rule module that
//! moves any of them fails here. That is intended for a new rules version (add its column);
//! for a released version it is a fork of every chain judged by it, which is why a fixed rule
//! is a new version and never an edit of an old one's verdicts (docs/RULES.md, "Rules
//! versions").
//!
//! Also here: the rules version in force is the schedule's at each height, and a chain
//! replays with the version each of its blocks was judged by.

use custody_contracts::customs;
use custody_contracts::reference::tariff_table_id;
use custody_contracts::registry::{codes, LATEST_RULES_VERSION, RULES_VERSIONS};
use custody_contracts::{load, ContractRules};
use custody_ledger::chain::build_block;
use custody_ledger::event::{approve, EncodedEvent};
use custody_ledger::model::*;
use custody_ledger::rules::Rules;
use custody_ledger::state::{apply, BlockContext, State};
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::{TestNet, CHAIN_ID};
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;

const HS_CSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/hs2022/hs2022-codes.csv"
));

fn date(y: u32, m: u32, d: u32) -> Timestamp {
    Timestamp::from_date(y, m, d).expect("date")
}

fn cc(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("country")
}

fn cur(code: &str) -> CurrencyCode {
    CurrencyCode::parse(code).expect("currency")
}

fn ad_valorem(prefix: &str, percent_tenths: u32) -> TariffLine {
    TariffLine {
        hs_prefix: prefix.into(),
        rate: DutyRate::AdValorem {
            rate_ppm: percent_tenths * 1_000,
        },
    }
}

/// HS 2022, every de minimis version, and tariffs of five jurisdictions: illustrative duty
/// rates, real VAT/GST rates (FR 20 %, GB 20 %, US none, AU 10 %, CA 5 % GST).
fn tables() -> Vec<ReferenceDataPublished> {
    let mut out = vec![load::hs_nomenclature("HS2022", HS_CSV, date(2022, 1, 1)).expect("HS")];
    out.extend(load::de_minimis_events());
    for (j, currency, vat, lines) in [
        (
            "FR",
            "EUR",
            200_000,
            vec![ad_valorem("6109", 120), ad_valorem("6912", 65)],
        ),
        ("GB", "GBP", 200_000, vec![ad_valorem("6109", 120)]),
        ("US", "USD", 0, vec![ad_valorem("6109", 165)]),
        (
            "AU",
            "AUD",
            100_000,
            vec![ad_valorem("4202", 50), ad_valorem("8471", 0)],
        ),
        ("CA", "CAD", 50_000, vec![ad_valorem("6109", 180)]),
    ] {
        let t = TariffTable {
            jurisdiction: cc(j),
            currency: cur(currency),
            vat_rate_ppm: vat,
            lines,
        };
        out.push(ReferenceDataPublished {
            table_id: tariff_table_id(t.jurisdiction),
            effective_from: date(2025, 1, 1),
            data: ReferenceData::Tariff(t),
        });
    }
    out
}

/// One shipment to judge.
struct Case {
    name: &'static str,
    /// Country of dispatch, and of the goods' origin.
    dispatch: &'static str,
    goods_origin: &'static str,
    destination: &'static str,
    incoterm: Incoterm,
    /// Invoice and declaration currency (one currency: no exchange rate).
    currency: &'static str,
    /// (invoice HS, declaration HS, quantity, unit value, description)
    lines: &'static [(&'static str, &'static str, u64, u64, &'static str)],
    freight_minor: u64,
    insurance_minor: u64,
    transport_mode: TransportMode,
    /// When it is declared.
    at: Timestamp,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "FR full, CIF, from CN",
            dispatch: "CN",
            goods_origin: "CN",
            destination: "FR",
            incoterm: Incoterm::DDP,
            currency: "EUR",
            lines: &[
                ("6109.10", "61091000", 10, 1_500, "Cotton T-shirt"),
                ("6912.00", "69120000", 2, 5_000, "Ceramic mug"),
            ],
            freight_minor: 1_000,
            insurance_minor: 200,
            transport_mode: TransportMode::Courier,
            at: date(2026, 6, 1),
        },
        Case {
            name: "AU above A$1,000, FOB",
            dispatch: "CN",
            goods_origin: "CN",
            destination: "AU",
            incoterm: Incoterm::FOB,
            currency: "AUD",
            lines: &[
                ("8471.30", "84713000", 2, 110_000, "Laptop computer"),
                ("4202.21", "42022100", 1, 30_000, "Leather handbag"),
            ],
            freight_minor: 5_000,
            insurance_minor: 1_000,
            transport_mode: TransportMode::Freight,
            at: date(2026, 6, 1),
        },
        Case {
            name: "US US$100 of Chinese goods dispatched from GB, June 2025",
            dispatch: "GB",
            goods_origin: "CN",
            destination: "US",
            incoterm: Incoterm::DAP,
            currency: "USD",
            lines: &[("6109.10", "6109100010", 4, 2_500, "Cotton T-shirt")],
            freight_minor: 800,
            insurance_minor: 0,
            transport_mode: TransportMode::Courier,
            at: date(2025, 6, 1),
        },
        Case {
            name: "CA C$30 by post from US",
            dispatch: "US",
            goods_origin: "US",
            destination: "CA",
            incoterm: Incoterm::DAP,
            currency: "CAD",
            lines: &[("6109.10", "6109100010", 1, 3_000, "Cotton T-shirt")],
            freight_minor: 500,
            insurance_minor: 0,
            transport_mode: TransportMode::Postal,
            at: date(2026, 6, 1),
        },
        Case {
            name: "GB above GBP 135, from CN",
            dispatch: "CN",
            goods_origin: "CN",
            destination: "GB",
            incoterm: Incoterm::DDP,
            currency: "GBP",
            lines: &[("6109.10", "6109100010", 10, 2_000, "Cotton T-shirt")],
            freight_minor: 1_500,
            insurance_minor: 100,
            transport_mode: TransportMode::Courier,
            at: date(2026, 6, 1),
        },
    ]
}

fn registration(case: &Case, id: &str) -> ShipmentRegistered {
    const SSCC: &str = "106141411234567897";
    let lines: Vec<InvoiceLine> = case
        .lines
        .iter()
        .enumerate()
        .map(|(i, (hs, _, quantity, value, description))| InvoiceLine {
            line_no: u32::try_from(i + 1).expect("few lines"),
            description: (*description).into(),
            hs_code: (*hs).into(),
            gtin: None,
            quantity: *quantity,
            unit: "PCE".into(),
            unit_value_minor: *value,
            net_weight_grams: 500,
            origin_country: cc(case.goods_origin),
        })
        .collect();
    ShipmentRegistered {
        shipment_id: ShipmentId::new(id),
        parcels: vec![Parcel {
            sscc: SSCC.into(),
            gross_weight_grams: 2_000,
        }],
        origin: cc(case.dispatch),
        destination: cc(case.destination),
        incoterm: case.incoterm,
        incoterm_place: "Destination city".into(),
        invoice: CommercialInvoice {
            number: format!("INV-{id}"),
            issued_at: date(2025, 1, 2),
            currency: cur(case.currency),
            seller: Party {
                name: "Acme Trading".into(),
                country: cc(case.dispatch),
                tax_ids: vec![],
            },
            buyer: custody_ledger::testkit::buyer(
                "A. Buyer",
                cc(case.destination).as_str(),
                &custody_ledger::testkit::salt(1),
            ),
            total_minor: lines.iter().map(|l| l.quantity * l.unit_value_minor).sum(),
            lines: lines.clone(),
            freight_minor: case.freight_minor,
            insurance_minor: case.insurance_minor,
        },
        packing_list: PackingList {
            lines: lines
                .iter()
                .map(|l| PackingLine {
                    sscc: SSCC.into(),
                    invoice_line: l.line_no,
                    quantity: l.quantity,
                })
                .collect(),
        },
    }
}

/// A ledger state judged by the contract rules at one height and time, on a network whose
/// genesis schedules one rules version.
struct World {
    net: TestNet,
    state: State,
    rules: ContractRules,
    ctx: BlockContext,
}

impl World {
    fn new(version: u32, time: Timestamp) -> World {
        let net = TestNet::new().with_rules_version(version);
        let state = State::from_genesis(&net.genesis);
        let mut w = World {
            net,
            state,
            rules: ContractRules::default(),
            ctx: BlockContext { height: 1, time },
        };
        for t in tables() {
            let e = w
                .net
                .sign("customs-qx", EventKind::ReferenceDataPublished(t));
            w.must(&e);
        }
        w
    }

    fn verdict(&self, e: &EncodedEvent) -> String {
        match self.rules.check(&self.state, e, self.ctx) {
            Ok(()) => "accepted".into(),
            Err(r) => r.code.as_str().into(),
        }
    }

    fn must(&mut self, e: &EncodedEvent) {
        let judged = self
            .rules
            .check(&self.state, e, self.ctx)
            .and_then(|()| apply(&mut self.state, e, self.ctx));
        if let Err(r) = judged {
            panic!("{} was rejected: {r}", e.event().event.kind.name());
        }
        self.rules.applied(e, self.ctx);
    }

    /// Registers the case's shipment and moves it into the destination, in transit.
    fn arrive(&mut self, case: &Case, id: &str) {
        let reg = registration(case, id);
        let e = self
            .net
            .sign("seller-acme", EventKind::ShipmentRegistered(reg));
        self.must(&e);
        let from = format!("{}AAA", case.dispatch);
        let to = format!("{}BBB", case.destination);
        let p1 = self
            .net
            .propose_at("seller-acme", id, "carrier-swift", &from);
        self.must(&p1);
        let a1 = self.net.accept("carrier-swift", id, &p1);
        self.must(&a1);
        let p2 = self
            .net
            .propose_at("carrier-swift", id, "carrier-lastmile", &to);
        self.must(&p2);
        let a2 = self.net.accept("carrier-lastmile", id, &p2);
        self.must(&a2);
    }

    /// The declaration `assess` completes under this world's version, trying the full regime
    /// and then relief; or the code of why neither can be assessed.
    fn declaration(&self, case: &Case, id: &str) -> Result<CustomsDeclared, String> {
        let shipment = self
            .state
            .shipment(&ShipmentId::new(id))
            .expect("registered");
        let j = cc(case.destination);
        let version = self.state.rules_version_at(self.ctx.height);
        let mut last = String::new();
        for regime in [CustomsRegime::Full, CustomsRegime::DeMinimisRelief] {
            let mut decl = CustomsDeclared {
                shipment_id: ShipmentId::new(id),
                declaration_ref: format!("DEC-{id}"),
                jurisdiction: j,
                transport_mode: case.transport_mode,
                currency: cur(case.currency),
                valuation_basis: customs::valuation_basis(j).expect("known basis"),
                customs_value_minor: 0,
                freight_minor: 0,
                insurance_minor: 0,
                exchange_rate: None,
                regime,
                lines: case
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, (_, hs, ..))| DeclarationLine {
                        invoice_line: u32::try_from(i + 1).expect("few lines"),
                        hs_code: (*hs).into(),
                        customs_value_minor: 0,
                        duty_minor: 0,
                        tax_minor: 0,
                    })
                    .collect(),
                duty_total_minor: 0,
                tax_total_minor: 0,
            };
            match customs::assess(
                version,
                &self.rules.book,
                self.ctx.time,
                shipment,
                &decl,
                "d",
            ) {
                Ok(a) => {
                    customs::complete(&mut decl, &a);
                    return Ok(decl);
                }
                Err(r) => last = r.code.as_str().into(),
            }
        }
        Err(last)
    }
}

fn describe(decl: &CustomsDeclared) -> String {
    let regime = match &decl.regime {
        CustomsRegime::Full => "full",
        CustomsRegime::DeMinimisRelief => "relief",
        CustomsRegime::TaxCollectedAtSale { .. } => "collected",
    };
    let lines: Vec<String> = decl
        .lines
        .iter()
        .map(|l| format!("{}/{}/{}", l.customs_value_minor, l.duty_minor, l.tax_minor))
        .collect();
    format!(
        "{regime} value {} duty {} tax {} lines {}",
        decl.customs_value_minor,
        decl.duty_total_minor,
        decl.tax_total_minor,
        lines.join(" ")
    )
}

/// Each case under each version: the regime and amounts assessed, then the verdict of every
/// version on the declaration each version completed (so a difference between versions shows
/// as an acceptance on one side and a stable code on the other).
fn transcript() -> String {
    let mut out = String::new();
    for (n, case) in cases().iter().enumerate() {
        let id = format!("GV-{n}");
        let worlds: Vec<World> = RULES_VERSIONS
            .iter()
            .map(|v| {
                let mut w = World::new(*v, case.at);
                w.arrive(case, &id);
                w
            })
            .collect();
        out.push_str(&format!("{}\n", case.name));
        for (v, made_by) in RULES_VERSIONS.iter().zip(&worlds) {
            let decl = match made_by.declaration(case, &id) {
                Ok(decl) => decl,
                Err(code) => {
                    out.push_str(&format!("  v{v}: not assessable: {code}\n"));
                    continue;
                }
            };
            let verdicts: Vec<String> = RULES_VERSIONS
                .iter()
                .zip(&worlds)
                .map(|(judge, w)| {
                    let e = w
                        .net
                        .sign("broker-clear", EventKind::CustomsDeclared(decl.clone()));
                    format!("v{judge} {}", w.verdict(&e))
                })
                .collect();
            out.push_str(&format!(
                "  v{v}: {}; judged: {}\n",
                describe(&decl),
                verdicts.join(", ")
            ));
        }
    }
    out
}

/// The pinned vectors. Every figure is the assessment of `contracts/src/customs.rs` under the
/// version named (amounts in minor units, "value/duty/tax" per line). By hand:
///
/// - FR (CIF, duty 12 % and 6.5 %, VAT 20 %): 15,000 × 12 % = 1,800, VAT 20 % × 16,800 =
///   3,360; 10,000 × 6.5 % = 650, VAT 20 % × 10,650 = 2,130. Both versions agree.
/// - AU (FOB, GST 10 %): version 1 taxes 220,000 and 31,500 (22,000 and 3,150); version 2
///   adds the A$60.00 of freight and insurance spread by value, 5,280 and 720: GST 22,528
///   and 3,222 (10 % × (30,000 + 1,500 + 720)). Each version refuses the other's figures
///   (`tax.mismatch`).
/// - US (FOB, duty 16.5 %): 10,000 less 800 freight = 9,200. Version 1 reads the China/Hong
///   Kong withdrawal as a rule on the country of dispatch (GB here): relief. Version 2 reads
///   the goods' origin (CN): full, 9,200 × 16.5 % = 1,518.
/// - CA (FOB, duty 18 %, GST 5 %), by post from the US: 3,000 less 500 freight = 2,500.
///   Version 1 applies the courier CUSMA thresholds (C$40 free): relief. Version 2 applies
///   the postal C$20: full, 2,500 × 18 % = 450, GST 5 % × 2,950 = 147.5 → 148.
/// - GB (CIF, duty 12 %, VAT 20 %) above £135: 20,000 × 12 % = 2,400, VAT 20 % × 22,400 =
///   4,480. Both versions agree.
const GOLDEN: &str = "\
FR full, CIF, from CN
  v1: full value 25000 duty 2450 tax 5490 lines 15000/1800/3360 10000/650/2130; judged: v1 accepted, v2 accepted
  v2: full value 25000 duty 2450 tax 5490 lines 15000/1800/3360 10000/650/2130; judged: v1 accepted, v2 accepted
AU above A$1,000, FOB
  v1: full value 250000 duty 1500 tax 25150 lines 220000/0/22000 30000/1500/3150; judged: v1 accepted, v2 tax.mismatch
  v2: full value 250000 duty 1500 tax 25750 lines 220000/0/22528 30000/1500/3222; judged: v1 tax.mismatch, v2 accepted
US US$100 of Chinese goods dispatched from GB, June 2025
  v1: relief value 9200 duty 0 tax 0 lines 9200/0/0; judged: v1 accepted, v2 regime.not_eligible
  v2: full value 9200 duty 1518 tax 0 lines 9200/1518/0; judged: v1 regime.relief_applies, v2 accepted
CA C$30 by post from US
  v1: relief value 2500 duty 0 tax 0 lines 2500/0/0; judged: v1 accepted, v2 regime.not_eligible
  v2: full value 2500 duty 450 tax 148 lines 2500/450/148; judged: v1 regime.relief_applies, v2 accepted
GB above GBP 135, from CN
  v1: full value 20000 duty 2400 tax 4480 lines 20000/2400/4480; judged: v1 accepted, v2 accepted
  v2: full value 20000 duty 2400 tax 4480 lines 20000/2400/4480; judged: v1 accepted, v2 accepted
";

#[test]
fn golden_verdict_vectors_are_stable() {
    let got = transcript();
    assert_eq!(
        got, GOLDEN,
        "verdicts changed. If a released rules version moved, that is a fork: put the fix in a \
         new version instead. Got:\n{got}"
    );
}

fn schedule_change(net: &TestNet, version: u32, from_height: u64) -> EncodedEvent {
    let change = MembershipChange::ScheduleRules {
        activation: RulesActivation {
            version,
            from_height,
        },
    };
    net.sign(
        "admin-1",
        EventKind::MembershipChanged(MembershipChanged {
            approvals: vec![approve(CHAIN_ID, &change, net.key("admin-2"))],
            change,
        }),
    )
}

#[test]
fn a_version_this_build_lacks_is_neither_scheduled_nor_run() {
    let w = World::new(1, date(2026, 6, 1));
    let next = LATEST_RULES_VERSION + 1;
    assert_eq!(
        w.verdict(&schedule_change(&w.net, next, 10)),
        codes::RULES_VERSION_UNKNOWN.as_str()
    );
    assert_eq!(w.verdict(&schedule_change(&w.net, 2, 10)), "accepted");

    // A genesis naming a version the build lacks: every event is refused, not judged by
    // other rules.
    let net = TestNet::new().with_rules_version(next);
    let state = State::from_genesis(&net.genesis);
    let e = net.sign(
        "customs-qx",
        EventKind::ReferenceDataPublished(tables().remove(0)),
    );
    let ctx = BlockContext {
        height: 1,
        time: date(2026, 6, 1),
    };
    assert_eq!(
        ContractRules::default()
            .check(&state, &e, ctx)
            .map_err(|r| r.code),
        Err(codes::RULES_VERSION_UNKNOWN)
    );
}

/// A chain founded on version 1 keeps version-1 verdicts: the Australian FOB declaration
/// completed under version 1 goes into block 2 and is accepted; admins schedule version 2
/// from height 4; at height 4 the same figures are refused, and the whole chain still
/// verifies, because replay judges block 2 by version 1.
#[test]
fn a_chain_replays_each_block_with_the_version_in_force_at_its_height() {
    let case = &cases()[1];
    let time = case.at;
    let net = TestNet::new().with_rules_version(1);
    let store = MemoryStore::new(net.genesis_hash());
    let mut rules = ContractRules::default();
    let commit = |rules: &mut ContractRules, events: Vec<EncodedEvent>| {
        let built = net
            .commit_with(&store, rules, events, time)
            .expect("commit");
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
        *rules = built.rules().clone();
    };

    // Block 1: reference data and the shipments' journeys, one per version's declaration.
    let mut block1: Vec<EncodedEvent> = tables()
        .into_iter()
        .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
        .collect();
    for id in ["AU-1", "AU-2"] {
        block1.push(net.sign(
            "seller-acme",
            EventKind::ShipmentRegistered(registration(case, id)),
        ));
        let p1 = net.propose_at("seller-acme", id, "carrier-swift", "CNSHA");
        let a1 = net.accept("carrier-swift", id, &p1);
        let p2 = net.propose_at("carrier-swift", id, "carrier-lastmile", "AUSYD");
        let a2 = net.accept("carrier-lastmile", id, &p2);
        block1.extend([p1, a1, p2, a2]);
    }
    commit(&mut rules, block1);

    // The version-1 and version-2 figures, from the same state.
    let state = store.load_base_state(&net.genesis).expect("state");
    let with_state = |id: &str, version: u32| {
        let judged_by = TestNet::new().with_rules_version(version);
        let mut s = State::from_genesis(&judged_by.genesis);
        let shipment = store
            .shipment(&ShipmentId::new(id))
            .expect("read")
            .expect("stored");
        s.insert_shipment(shipment);
        let w = World {
            net: judged_by,
            state: s,
            rules: rules.clone(),
            ctx: BlockContext { height: 2, time },
        };
        let decl = w.declaration(case, id).expect("assessable");
        net.sign("broker-clear", EventKind::CustomsDeclared(decl))
    };
    let v1_decl = with_state("AU-1", 1);
    let v1_decl_again = with_state("AU-2", 1);
    let v2_decl = with_state("AU-2", 2);
    assert_eq!(state.rules_version_at(2), 1);

    // Block 2, under version 1: its figures are right, version 2's are not.
    let trial = build_block(
        &store,
        &net.genesis,
        &rules,
        custody_ledger::testkit::verified([v2_decl.clone()]),
        time,
        net.validator_keys()[0].public(),
    )
    .expect("build");
    assert_eq!(
        trial.rejected.iter().map(|r| r.1.code).collect::<Vec<_>>(),
        ["tax.mismatch"],
        "version 2's figures are refused at height 2"
    );
    commit(&mut rules, vec![v1_decl, schedule_change(&net, 2, 4)]);
    // Block 3: still version 1.
    commit(&mut rules, vec![]);
    // Block 4: version 2. The version-1 figures are refused, version 2's accepted.
    let state = store.load_base_state(&net.genesis).expect("state");
    assert_eq!(
        (state.rules_version_at(3), state.rules_version_at(4)),
        (1, 2)
    );
    let built = net
        .commit_with(&store, &rules, vec![v1_decl_again, v2_decl], time)
        .expect("commit");
    assert_eq!(built.rejected.len(), 1, "{:?}", built.rejected);
    assert_eq!(built.rejected[0].1.code, "tax.mismatch");
    assert_eq!(built.block().events.len(), 1);

    let summary = verify_chain(&store, &net.genesis, ContractRules::default(), |_, _| {})
        .expect("the chain verifies with each block's version");
    assert_eq!(summary.height, 4);
}
