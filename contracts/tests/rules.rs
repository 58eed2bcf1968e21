//! The rule modules end to end: events signed by the test network's members, judged by the
//! registry against the reference data in force, then applied by the ledger's state machine.
//!
//! The worked examples compute every amount by hand in their comments; each asserts exact
//! minor units and that one minor unit off is rejected. Duty rates in the examples are
//! illustrative (the project claims no real duty rate); VAT/GST rates and low-value
//! thresholds are the real ones, with their sources in `src/regimes.rs` and below.

use custody_contracts::customs::{self, Assessment};
use custody_contracts::reference::{tariff_table_id, DE_MINIMIS_TABLE, HS_TABLE};
use custody_contracts::{load, ContractRules, ReferenceBook};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::reject::Rejection;
use custody_ledger::rules::Rules;
use custody_ledger::state::{apply, BlockContext, ShipmentStatus, State};
use custody_ledger::testkit::TestNet;
use custody_ledger::{Digest, Timestamp};

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

/// Illustrative tariffs of real jurisdictions. Duty rates are made up for the tests; the
/// VAT/GST rates are real: France 20 % (Code général des impôts, art. 278), United Kingdom
/// 20 % (Value Added Tax Act 1994, s. 2), Australia 10 % GST (GST Act 1999, s. 9-70),
/// Canada 5 % GST (Excise Tax Act, s. 165(1); provincial HST is not modelled), and the United
/// States levies no federal import VAT.
fn test_tariffs() -> Vec<TariffTable> {
    vec![
        TariffTable {
            jurisdiction: cc("FR"),
            currency: cur("EUR"),
            vat_rate_ppm: 200_000,
            lines: vec![ad_valorem("6109", 120), ad_valorem("6912", 65)],
        },
        TariffTable {
            jurisdiction: cc("GB"),
            currency: cur("GBP"),
            vat_rate_ppm: 200_000,
            lines: vec![ad_valorem("6109", 120), ad_valorem("6912", 60)],
        },
        TariffTable {
            jurisdiction: cc("US"),
            currency: cur("USD"),
            vat_rate_ppm: 0,
            lines: vec![ad_valorem("6109", 165), ad_valorem("847130", 0)],
        },
        TariffTable {
            jurisdiction: cc("AU"),
            currency: cur("AUD"),
            vat_rate_ppm: 100_000,
            lines: vec![
                ad_valorem("6109", 50),
                ad_valorem("4202", 50),
                ad_valorem("8471", 0),
            ],
        },
        TariffTable {
            jurisdiction: cc("CA"),
            currency: cur("CAD"),
            vat_rate_ppm: 50_000,
            lines: vec![ad_valorem("6109", 180)],
        },
    ]
}

/// Every table the tests use, as `ReferenceDataPublished` payloads, in a fixed order.
fn tables() -> Vec<ReferenceDataPublished> {
    let mut out =
        vec![load::hs_nomenclature("HS2022", HS_CSV, date(2022, 1, 1)).expect("HS 2022 loads")];
    out.extend(load::de_minimis_events());
    for json in [
        include_str!("../data/sample-tariff-QX.json"),
        include_str!("../data/sample-tariff-QY.json"),
    ] {
        out.push(load::tariff_from_json(json, date(2026, 1, 1)).expect("sample tariff"));
    }
    for t in test_tariffs() {
        out.push(ReferenceDataPublished {
            table_id: tariff_table_id(t.jurisdiction),
            effective_from: date(2025, 1, 1),
            data: ReferenceData::Tariff(t),
        });
    }
    out
}

/// A ledger state, the rules, and a clock that only moves when a test says so.
struct World {
    net: TestNet,
    state: State,
    rules: ContractRules,
    time: Timestamp,
    /// How declarations made with [`World::declaration`] say the goods crossed the border.
    transport_mode: TransportMode,
}

impl World {
    /// Reference data published in genesis order by the customs authority, through the
    /// rules and the state machine like any other event.
    fn new(time: Timestamp) -> World {
        World::with_tables(time, tables())
    }

    fn with_tables(time: Timestamp, tables: Vec<ReferenceDataPublished>) -> World {
        World::on(TestNet::new(), time, tables)
    }

    /// A world on `net` (whose genesis decides the rules version), with `tables` published.
    fn on(net: TestNet, time: Timestamp, tables: Vec<ReferenceDataPublished>) -> World {
        let state = State::from_genesis(&net.genesis);
        let mut world = World {
            net,
            state,
            rules: ContractRules::default(),
            time,
            transport_mode: TransportMode::Courier,
        };
        for table in tables {
            let e = world
                .net
                .sign("customs-qx", EventKind::ReferenceDataPublished(table));
            world.must(&e);
        }
        world
    }

    fn ctx(&self) -> BlockContext {
        BlockContext {
            height: 1,
            time: self.time,
        }
    }

    /// The registry's verdict only.
    fn check(&self, e: &EncodedEvent) -> Result<(), Rejection> {
        self.rules.check(&self.state, e, self.ctx())
    }

    /// Rules, then the state machine, then the book learns.
    fn apply(&mut self, e: &EncodedEvent) -> Result<(), Rejection> {
        let ctx = self.ctx();
        self.rules.check(&self.state, e, ctx)?;
        apply(&mut self.state, e, ctx)?;
        self.rules.applied(e, ctx);
        Ok(())
    }

    fn must(&mut self, e: &EncodedEvent) {
        if let Err(r) = self.apply(e) {
            panic!("{} was rejected: {r}", e.event().event.kind.name());
        }
    }

    fn code(&self, e: &EncodedEvent) -> &'static str {
        match self.check(e) {
            Err(r) => {
                assert!(!r.field.is_empty() && !r.message.is_empty());
                r.code.as_str()
            }
            Ok(()) => "accepted",
        }
    }

    fn shipment(&self, id: &str) -> &custody_ledger::state::ShipmentState {
        self.state
            .shipment(&ShipmentId::new(id))
            .expect("registered")
    }

    /// Registers, hands to the air carrier at `from`, and to the last-mile carrier at `to`
    /// (the arrival), leaving the shipment in transit in the destination country.
    fn arrive(&mut self, reg: ShipmentRegistered, from: &str, to: &str) {
        let id = reg.shipment_id.0.clone();
        let e = self
            .net
            .sign("seller-acme", EventKind::ShipmentRegistered(reg));
        self.must(&e);
        let p1 = self
            .net
            .propose_at("seller-acme", &id, "carrier-swift", from);
        self.must(&p1);
        let a1 = self.net.accept("carrier-swift", &id, &p1);
        self.must(&a1);
        let p2 = self
            .net
            .propose_at("carrier-swift", &id, "carrier-lastmile", to);
        self.must(&p2);
        let a2 = self.net.accept("carrier-lastmile", &id, &p2);
        self.must(&a2);
        assert!(self.shipment(&id).arrived_in_destination);
    }

    /// A declaration with the given choices and the amounts `assess` computes.
    fn declaration(
        &self,
        id: &str,
        jurisdiction: &str,
        currency: &str,
        rate: Option<(&str, u64, u64)>,
        regime: CustomsRegime,
        hs: &[&str],
    ) -> (CustomsDeclared, Assessment) {
        let j = cc(jurisdiction);
        let mut decl = CustomsDeclared {
            shipment_id: ShipmentId::new(id),
            declaration_ref: format!("DEC-{id}"),
            jurisdiction: j,
            transport_mode: self.transport_mode,
            currency: cur(currency),
            valuation_basis: customs::valuation_basis(j).unwrap_or(ValuationBasis::CIF),
            customs_value_minor: 0,
            freight_minor: 0,
            insurance_minor: 0,
            exchange_rate: rate.map(|(from, numerator, denominator)| ExchangeRate {
                from: cur(from),
                to: cur(currency),
                numerator,
                denominator,
            }),
            regime,
            lines: self
                .shipment(id)
                .invoice
                .lines
                .iter()
                .zip(hs)
                .map(|(l, code)| DeclarationLine {
                    invoice_line: l.line_no,
                    hs_code: (*code).into(),
                    customs_value_minor: 0,
                    duty_minor: 0,
                    tax_minor: 0,
                })
                .collect(),
            duty_total_minor: 0,
            tax_total_minor: 0,
        };
        let a = customs::assess(
            self.state.rules_version_at(self.ctx().height),
            &self.rules.book,
            self.time,
            self.shipment(id),
            &decl,
            "event",
        )
        .unwrap_or_else(|r| panic!("assessment failed: {r}"));
        customs::complete(&mut decl, &a);
        (decl, a)
    }

    fn sign_declaration(&self, decl: CustomsDeclared) -> EncodedEvent {
        self.net
            .sign("broker-clear", EventKind::CustomsDeclared(decl))
    }
}

/// One invoice line: (HS code, quantity, unit value in minor units, unit, net grams).
type Line<'a> = (&'a str, u64, u64, &'a str, u64);

/// A registration with one valid parcel holding everything.
#[allow(clippy::too_many_arguments)]
fn registration(
    id: &str,
    origin: &str,
    destination: &str,
    incoterm: Incoterm,
    currency: &str,
    lines: &[Line<'_>],
    freight_minor: u64,
    insurance_minor: u64,
    seller_tax_ids: Vec<TaxId>,
) -> ShipmentRegistered {
    const SSCC: &str = "106141411234567897";
    let invoice_lines: Vec<InvoiceLine> = lines
        .iter()
        .enumerate()
        .map(
            |(i, (hs, quantity, unit_value_minor, unit, grams))| InvoiceLine {
                line_no: u32::try_from(i + 1).expect("few lines"),
                description: format!("goods {hs}"),
                hs_code: (*hs).into(),
                gtin: None,
                quantity: *quantity,
                unit: (*unit).into(),
                unit_value_minor: *unit_value_minor,
                net_weight_grams: *grams,
                origin_country: cc(origin),
            },
        )
        .collect();
    let total_minor = invoice_lines
        .iter()
        .map(|l| l.quantity * l.unit_value_minor)
        .sum();
    ShipmentRegistered {
        shipment_id: ShipmentId::new(id),
        parcels: vec![Parcel {
            sscc: SSCC.into(),
            gross_weight_grams: 2_000,
        }],
        origin: cc(origin),
        destination: cc(destination),
        incoterm,
        incoterm_place: "Destination city".into(),
        invoice: CommercialInvoice {
            number: format!("INV-{id}"),
            issued_at: date(2026, 11, 1),
            currency: cur(currency),
            seller: Party {
                name: "Acme Trading".into(),
                country: cc(origin),
                tax_ids: seller_tax_ids,
            },
            buyer: custody_ledger::testkit::buyer(
                "A. Buyer",
                cc(destination).as_str(),
                &custody_ledger::testkit::salt(1),
            ),
            lines: invoice_lines.clone(),
            total_minor,
            freight_minor,
            insurance_minor,
        },
        packing_list: PackingList {
            lines: invoice_lines
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

fn now() -> Timestamp {
    date(2026, 11, 21)
}

/// Declares, pays and releases; returns the declaration event.
fn declare_pay_release(w: &mut World, id: &str, decl: CustomsDeclared, payer: &str) {
    let due = decl.duty_total_minor + decl.tax_total_minor;
    let currency = decl.currency;
    let d = w.sign_declaration(decl);
    w.must(&d);
    if due > 0 {
        let pay = w.net.sign(
            payer,
            EventKind::DutyPaid(DutyPaid {
                shipment_id: ShipmentId::new(id),
                declaration: d.id(),
                amount: Money {
                    amount_minor: due,
                    currency,
                },
                payment_reference: format!("PAY-{id}"),
            }),
        );
        w.must(&pay);
    }
    let clear = w.net.clear(id, &d, ClearanceOutcome::Release);
    w.must(&clear);
    assert_eq!(w.shipment(id).status, ShipmentStatus::Released);
}

/// Checks that changing one declared amount by one minor unit is rejected with `code`.
fn off_by_one(
    w: &World,
    decl: &CustomsDeclared,
    change: impl Fn(&mut CustomsDeclared),
    code: &str,
) {
    let mut wrong = decl.clone();
    change(&mut wrong);
    assert_eq!(w.code(&w.sign_declaration(wrong)), code);
}

/// EU-bound, DDP, above €150, from China to France, at 2026-11-21.
///
/// Invoice (EUR): 10 T-shirts (6109.10) at €15.37 = €153.70; 2 mugs (6912.00) at €49.99 =
/// €99.98. Intrinsic value €253.68 > €150, so the full regime applies. France values CIF;
/// under DDP the seller's price already carries the goods to the border, so nothing is added.
///
/// - T-shirts: duty 12 % × 15,370 = 1,844.4 → 1,844; VAT 20 % × (15,370 + 1,844) = 3,442.8 → 3,443
/// - mugs: duty 6.5 % × 9,998 = 649.87 → 650; VAT 20 % × (9,998 + 650) = 2,129.6 → 2,130
/// - totals: customs value 25,368; duty 2,494; VAT 5,573; the seller pays 8,067 (DDP).
#[test]
fn worked_example_eu_ddp_above_150() {
    let mut w = World::new(now());
    let reg = registration(
        "EU-DDP",
        "CN",
        "FR",
        Incoterm::DDP,
        "EUR",
        &[
            ("6109.10", 10, 1_537, "PCE", 1_500),
            ("6912.00", 2, 4_999, "PCE", 800),
        ],
        1_200,
        150,
        vec![],
    );
    w.arrive(reg, "CNSHA", "FRCDG");
    let (decl, a) = w.declaration(
        "EU-DDP",
        "FR",
        "EUR",
        None,
        CustomsRegime::Full,
        &["61091000", "69120000"],
    );
    assert_eq!(a.intrinsic_value_minor, 25_368);
    assert_eq!((a.freight_minor, a.insurance_minor), (0, 0));
    assert_eq!(a.customs_value_minor, 25_368);
    assert_eq!(
        a.lines
            .iter()
            .map(|l| (l.customs_value_minor, l.duty_minor, l.tax_minor))
            .collect::<Vec<_>>(),
        vec![(15_370, 1_844, 3_443), (9_998, 650, 2_130)]
    );
    assert_eq!((a.duty_total_minor, a.tax_total_minor), (2_494, 5_573));
    off_by_one(&w, &decl, |d| d.lines[0].duty_minor += 1, "duty.mismatch");
    off_by_one(&w, &decl, |d| d.lines[1].tax_minor -= 1, "tax.mismatch");
    off_by_one(
        &w,
        &decl,
        |d| d.duty_total_minor += 1,
        "duty.total_mismatch",
    );
    off_by_one(&w, &decl, |d| d.tax_total_minor -= 1, "tax.total_mismatch");
    off_by_one(
        &w,
        &decl,
        |d| d.customs_value_minor += 1,
        "valuation.mismatch",
    );
    off_by_one(
        &w,
        &decl,
        |d| d.lines[0].customs_value_minor -= 1,
        "valuation.mismatch",
    );
    off_by_one(
        &w,
        &decl,
        |d| d.regime = CustomsRegime::DeMinimisRelief,
        "regime.not_eligible",
    );
    // Under DDP the seller pays; a broker paying is refused.
    let d = w.sign_declaration(decl.clone());
    w.must(&d);
    let by_broker = w.net.sign(
        "broker-clear",
        EventKind::DutyPaid(DutyPaid {
            shipment_id: ShipmentId::new("EU-DDP"),
            declaration: d.id(),
            amount: Money {
                amount_minor: 8_067,
                currency: cur("EUR"),
            },
            payment_reference: "P".into(),
        }),
    );
    assert_eq!(w.code(&by_broker), "payment.wrong_payer");
    let by_seller = w.net.pay("seller-acme", "EU-DDP", &d, 8_067);
    w.must(&by_seller);
    w.must(&w.net.clear("EU-DDP", &d, ClearanceOutcome::Release));
    assert_eq!(w.shipment("EU-DDP").status, ShipmentStatus::Released);
}

/// EU-bound, FCA, with the CIF adjustment: the same goods, but the buyer arranges carriage,
/// so the separately stated freight (€12.00) and insurance (€1.50) are added to reach the
/// value at the EU border.
///
/// Adjustment 1,350 split by value: T-shirts ⌊1,350 × 15,370 / 25,368⌋ = 817, mugs the
/// remaining 533. Customs values 16,187 and 10,531, total 26,718.
/// - T-shirts: duty 12 % × 16,187 = 1,942.44 → 1,942; VAT 20 % × 18,129 = 3,625.8 → 3,626
/// - mugs: duty 6.5 % × 10,531 = 684.515 → 685 (half up); VAT 20 % × 11,216 = 2,243.2 → 2,243
#[test]
fn worked_example_eu_fca_with_cif_adjustment() {
    let mut w = World::new(now());
    let reg = registration(
        "EU-FCA",
        "CN",
        "FR",
        Incoterm::FCA,
        "EUR",
        &[
            ("6109.10", 10, 1_537, "PCE", 1_500),
            ("6912.00", 2, 4_999, "PCE", 800),
        ],
        1_200,
        150,
        vec![],
    );
    w.arrive(reg, "CNSHA", "FRCDG");
    let (decl, a) = w.declaration(
        "EU-FCA",
        "FR",
        "EUR",
        None,
        CustomsRegime::Full,
        &["6109100010", "6912000010"],
    );
    assert_eq!((a.freight_minor, a.insurance_minor), (1_200, 150));
    assert_eq!(a.customs_value_minor, 26_718);
    assert_eq!(
        a.lines
            .iter()
            .map(|l| (l.customs_value_minor, l.duty_minor, l.tax_minor))
            .collect::<Vec<_>>(),
        vec![(16_187, 1_942, 3_626), (10_531, 685, 2_243)]
    );
    off_by_one(
        &w,
        &decl,
        |d| d.freight_minor -= 1,
        "valuation.adjustment_mismatch",
    );
    off_by_one(&w, &decl, |d| d.lines[1].duty_minor -= 1, "duty.mismatch");
    // Under FCA the buyer's side pays, so the seller may not.
    let d = w.sign_declaration(decl);
    w.must(&d);
    assert_eq!(
        w.code(&w.net.pay("seller-acme", "EU-FCA", &d, 8_496)),
        "payment.wrong_payer"
    );
    w.must(
        &w.net
            .pay("broker-clear", "EU-FCA", &d, 1_942 + 685 + 3_626 + 2_243),
    );
}

/// EU low-value parcel before and after 2026-07-01: €45.00 of T-shirts and €12.00 of mugs,
/// IOSS: VAT was collected at sale. Before the flat duty: no duty, no VAT at import. From
/// 2026-07-01: €3 for each of the two item categories (subheadings 610910 and 691200), on the
/// first line of each: 300 + 300 = 600; still no VAT at import.
#[test]
fn worked_example_eu_ioss_and_the_flat_duty() {
    let ioss = vec![TaxId {
        scheme: "IOSS".into(),
        value: "IM2500000001".into(),
    }];
    let lines: [Line<'_>; 3] = [
        ("6109.10", 3, 1_000, "PCE", 600),
        ("6109.10", 1, 1_500, "PCE", 200),
        ("6912.00", 1, 1_200, "PCE", 400),
    ];
    for (time, flat) in [(date(2026, 6, 30), 0), (date(2026, 7, 1), 300)] {
        let mut w = World::new(time);
        w.arrive(
            registration(
                "EU-IOSS",
                "CN",
                "FR",
                Incoterm::DDP,
                "EUR",
                &lines,
                0,
                0,
                ioss.clone(),
            ),
            "CNSHA",
            "FRCDG",
        );
        let regime = CustomsRegime::TaxCollectedAtSale {
            registration_id: "IM2500000001".into(),
        };
        let (decl, a) = w.declaration(
            "EU-IOSS",
            "FR",
            "EUR",
            None,
            regime,
            &["61091000", "61091000", "69120000"],
        );
        assert_eq!(a.intrinsic_value_minor, 5_700);
        assert_eq!(
            a.lines.iter().map(|l| l.duty_minor).collect::<Vec<_>>(),
            vec![flat, 0, flat]
        );
        assert_eq!((a.duty_total_minor, a.tax_total_minor), (2 * flat, 0));
        off_by_one(
            &w,
            &decl,
            |d| d.regime = CustomsRegime::Full,
            "regime.relief_applies",
        );
        off_by_one(
            &w,
            &decl,
            |d| {
                d.regime = CustomsRegime::TaxCollectedAtSale {
                    registration_id: "IM9999999999".into(),
                }
            },
            "tax.registration_missing",
        );
        // De minimis relief without IOSS: no duty, but import VAT is always due in the EU:
        // 20 % × (3,000 + 300) = 660, 20 % × (1,500) = 300, 20 % × (1,200 + 300) = 300 after
        // the flat duty; 600, 300, 240 before it.
        let (_, relief) = w.declaration(
            "EU-IOSS",
            "FR",
            "EUR",
            None,
            CustomsRegime::DeMinimisRelief,
            &["61091000", "61091000", "69120000"],
        );
        let expected_tax = if flat > 0 {
            vec![660, 300, 300]
        } else {
            vec![600, 300, 240]
        };
        assert_eq!(
            relief.lines.iter().map(|l| l.tax_minor).collect::<Vec<_>>(),
            expected_tax
        );
        declare_pay_release(&mut w, "EU-IOSS", decl, "seller-acme");
    }
}

/// UK parcel under £135 with VAT at sale: 3 T-shirts at £12.50 and a mug at £20.00,
/// £57.50 ≤ £135: no duty, and VAT was charged at the sale under the seller's UK VAT
/// registration, so nothing is due at import.
#[test]
fn worked_example_uk_under_135_vat_at_sale() {
    let mut w = World::new(now());
    let vat = vec![TaxId {
        scheme: "VAT".into(),
        value: "GB123456789".into(),
    }];
    w.arrive(
        registration(
            "UK-1",
            "CN",
            "GB",
            Incoterm::DDP,
            "GBP",
            &[
                ("6109.10", 3, 1_250, "PCE", 600),
                ("6912.00", 1, 2_000, "PCE", 500),
            ],
            0,
            0,
            vat,
        ),
        "CNSHA",
        "GBLHR",
    );
    let regime = CustomsRegime::TaxCollectedAtSale {
        registration_id: "GB123456789".into(),
    };
    let (decl, a) = w.declaration(
        "UK-1",
        "GB",
        "GBP",
        None,
        regime,
        &["6109100010", "6912001000"],
    );
    assert_eq!(
        (
            a.intrinsic_value_minor,
            a.duty_total_minor,
            a.tax_total_minor
        ),
        (5_750, 0, 0)
    );
    off_by_one(&w, &decl, |d| d.lines[0].duty_minor = 1, "duty.mismatch");
    off_by_one(
        &w,
        &decl,
        |d| d.lines[0].hs_code = "61091000".into(),
        "hs.length",
    );
    off_by_one(
        &w,
        &decl,
        |d| {
            d.currency = cur("EUR");
            d.exchange_rate = Some(ExchangeRate {
                from: cur("GBP"),
                to: cur("EUR"),
                numerator: 117,
                denominator: 100,
            });
        },
        "regime.currency",
    );
    declare_pay_release(&mut w, "UK-1", decl, "seller-acme");

    // Above £135 tax at sale is not available.
    let mut w = World::new(now());
    let vat = vec![TaxId {
        scheme: "VAT".into(),
        value: "GB123456789".into(),
    }];
    w.arrive(
        registration(
            "UK-2",
            "CN",
            "GB",
            Incoterm::DDP,
            "GBP",
            &[("6109.10", 11, 1_250, "PCE", 600)],
            0,
            0,
            vat,
        ),
        "CNSHA",
        "GBLHR",
    );
    let (full, a) = w.declaration(
        "UK-2",
        "GB",
        "GBP",
        None,
        CustomsRegime::Full,
        &["6109100010"],
    );
    // 11 × £12.50 = £137.50: duty 12 % = 1,650; VAT 20 % × 15,400 = 3,080.
    assert_eq!((a.duty_total_minor, a.tax_total_minor), (1_650, 3_080));
    off_by_one(
        &w,
        &full,
        |d| {
            d.regime = CustomsRegime::TaxCollectedAtSale {
                registration_id: "GB123456789".into(),
            }
        },
        "regime.not_eligible",
    );
}

/// US-bound after 2025-08-29: no de minimis for any origin. 10 T-shirts at $20.00 under
/// DAP with $15.00 freight and $2.00 insurance stated separately. The US values FOB, so
/// the D term's international freight and insurance are deducted: 20,000 − 1,700 = 18,300.
/// Duty 16.5 % × 18,300 = 3,019.5 → 3,020 (half up); no federal import VAT.
/// On 2025-08-28 the same $200 parcel from Viet Nam was under the $800 de minimis and a full
/// declaration is refused. (From China it was not: de minimis for products of China and Hong
/// Kong ended on 2025-05-02; see `version_2`.)
#[test]
fn worked_example_us_after_2025_08_29() {
    let reg_from = |origin: &str| {
        registration(
            "US-1",
            origin,
            "US",
            Incoterm::DAP,
            "USD",
            &[("6109.10", 10, 2_000, "PCE", 1_500)],
            1_500,
            200,
            vec![],
        )
    };
    let mut w = World::new(date(2025, 8, 29));
    w.arrive(reg_from("CN"), "CNSHA", "USNYC");
    let (decl, a) = w.declaration(
        "US-1",
        "US",
        "USD",
        None,
        CustomsRegime::Full,
        &["6109100012"],
    );
    assert_eq!(
        (a.freight_minor, a.insurance_minor, a.customs_value_minor),
        (1_500, 200, 18_300)
    );
    assert_eq!((a.duty_total_minor, a.tax_total_minor), (3_020, 0));
    off_by_one(
        &w,
        &decl,
        |d| d.lines[0].duty_minor = 3_019,
        "duty.mismatch",
    );
    off_by_one(
        &w,
        &decl,
        |d| d.regime = CustomsRegime::DeMinimisRelief,
        "regime.not_eligible",
    );
    off_by_one(
        &w,
        &decl,
        |d| d.valuation_basis = ValuationBasis::CIF,
        "valuation.basis",
    );
    declare_pay_release(&mut w, "US-1", decl, "broker-clear");

    let mut before = World::new(date(2025, 8, 28));
    before.arrive(reg_from("VN"), "VNSGN", "USNYC");
    let (relief, a) = before.declaration(
        "US-1",
        "US",
        "USD",
        None,
        CustomsRegime::DeMinimisRelief,
        &["6109100012"],
    );
    assert_eq!((a.duty_total_minor, a.tax_total_minor), (0, 0));
    off_by_one(
        &before,
        &relief,
        |d| d.regime = CustomsRegime::Full,
        "regime.relief_applies",
    );
}

/// Australian parcel under A$1,000: 2 handbags at A$180.00 and a T-shirt at A$45.50,
/// A$405.50: no duty and no GST at the border; the registered vendor may instead have
/// collected GST at sale (ABN on the invoice). Above A$1,000, GST is charged on the value
/// of the taxable importation, which adds international transport and insurance back to the
/// FOB customs value: 2 laptops at A$1,100.00 under CIF with A$50.00 freight and A$10.00
/// insurance: customs value 220,000 − 6,000 = 214,000; duty 0 %; GST 10 % × (214,000 + 0 +
/// 6,000) = 22,000.
#[test]
fn worked_example_australia_under_1000() {
    let mut w = World::new(now());
    let abn = vec![TaxId {
        scheme: "ABN".into(),
        value: "51824753556".into(),
    }];
    w.arrive(
        registration(
            "AU-1",
            "CN",
            "AU",
            Incoterm::DAP,
            "AUD",
            &[
                ("4202.21", 2, 18_000, "PCE", 1_600),
                ("6109.10", 1, 4_550, "PCE", 200),
            ],
            0,
            0,
            abn,
        ),
        "CNSHA",
        "AUSYD",
    );
    let (relief, a) = w.declaration(
        "AU-1",
        "AU",
        "AUD",
        None,
        CustomsRegime::DeMinimisRelief,
        &["42022100", "61091000"],
    );
    assert_eq!(
        (
            a.intrinsic_value_minor,
            a.duty_total_minor,
            a.tax_total_minor
        ),
        (40_550, 0, 0)
    );
    let (at_sale, _) = w.declaration(
        "AU-1",
        "AU",
        "AUD",
        None,
        CustomsRegime::TaxCollectedAtSale {
            registration_id: "51824753556".into(),
        },
        &["42022100", "61091000"],
    );
    assert_eq!(w.code(&w.sign_declaration(at_sale)), "accepted");
    off_by_one(&w, &relief, |d| d.lines[1].tax_minor = 1, "tax.mismatch");
    off_by_one(
        &w,
        &relief,
        |d| d.regime = CustomsRegime::Full,
        "regime.relief_applies",
    );
    declare_pay_release(&mut w, "AU-1", relief, "broker-clear");

    let mut w = World::new(now());
    w.arrive(
        registration(
            "AU-2",
            "CN",
            "AU",
            Incoterm::CIF,
            "AUD",
            &[("8471.30", 2, 110_000, "PCE", 3_000)],
            5_000,
            1_000,
            vec![],
        ),
        "CNSHA",
        "AUSYD",
    );
    let (full, a) = w.declaration(
        "AU-2",
        "AU",
        "AUD",
        None,
        CustomsRegime::Full,
        &["84713000"],
    );
    assert_eq!(
        (a.customs_value_minor, a.duty_total_minor, a.tax_total_minor),
        (214_000, 0, 22_000)
    );
    off_by_one(
        &w,
        &full,
        |d| d.tax_total_minor = 21_999,
        "tax.total_mismatch",
    );
}

/// Canadian courier parcel from the US at C$100: 4 T-shirts invoiced at US$18.25 = US$73.00,
/// converted at the declared exact rate 1.3699 CAD/USD: 7,300 × 13,699 / 10,000 = 10,000.27
/// → C$100.00. From the US, up to C$150 is duty-free and taxes are due above C$40: GST 5 % ×
/// 10,000 = 500. The same parcel from China is over the C$20 threshold: full duty and tax,
/// 18 % × 10,000 = 1,800, GST 5 % × 11,800 = 590.
#[test]
fn worked_example_canada_courier_from_us() {
    let mut w = World::new(now());
    w.arrive(
        registration(
            "CA-1",
            "US",
            "CA",
            Incoterm::DAP,
            "USD",
            &[("6109.10", 4, 1_825, "PCE", 600)],
            0,
            0,
            vec![],
        ),
        "USNYC",
        "CAYYZ",
    );
    let rate = Some(("USD", 13_699, 10_000));
    let (decl, a) = w.declaration(
        "CA-1",
        "CA",
        "CAD",
        rate,
        CustomsRegime::DeMinimisRelief,
        &["6109100000"],
    );
    assert_eq!(
        (
            a.intrinsic_value_minor,
            a.duty_total_minor,
            a.tax_total_minor
        ),
        (10_000, 0, 500)
    );
    off_by_one(&w, &decl, |d| d.tax_total_minor = 501, "tax.total_mismatch");
    off_by_one(&w, &decl, |d| d.lines[0].tax_minor = 501, "tax.mismatch");
    off_by_one(
        &w,
        &decl,
        |d| d.exchange_rate = None,
        "valuation.exchange_rate",
    );
    off_by_one(
        &w,
        &decl,
        |d| {
            d.exchange_rate = Some(ExchangeRate {
                from: cur("EUR"),
                to: cur("CAD"),
                numerator: 1,
                denominator: 1,
            })
        },
        "valuation.exchange_rate",
    );
    off_by_one(
        &w,
        &decl,
        |d| {
            d.regime = CustomsRegime::TaxCollectedAtSale {
                registration_id: "X".into(),
            }
        },
        "regime.not_eligible",
    );
    declare_pay_release(&mut w, "CA-1", decl, "carrier-lastmile");

    let mut w = World::new(now());
    w.arrive(
        registration(
            "CA-2",
            "CN",
            "CA",
            Incoterm::DAP,
            "USD",
            &[("6109.10", 4, 1_825, "PCE", 600)],
            0,
            0,
            vec![],
        ),
        "CNSHA",
        "CAYYZ",
    );
    let (decl, a) = w.declaration(
        "CA-2",
        "CA",
        "CAD",
        rate,
        CustomsRegime::Full,
        &["6109100000"],
    );
    assert_eq!((a.duty_total_minor, a.tax_total_minor), (1_800, 590));
    off_by_one(
        &w,
        &decl,
        |d| d.regime = CustomsRegime::DeMinimisRelief,
        "regime.not_eligible",
    );
}

/// Every rate type of the sample tariffs (fictional jurisdictions QX and QY).
///
/// QX (EUR, CIF, VAT 20 %), FOB incoterm so freight €5.00 and insurance €1.00 are added,
/// split by value over the lines:
/// - 2 kg of cheese (0406.90) at €9.99: 1,998; specific €1.50/kg × 2.000 kg = 300
/// - 6 litres of wine (2204.21) at €7.00: 4,200; compound 3 % + €0.20/l = 126 + 120 = 246
/// - 1 pair of shoes (6403.99) at €80.00: 8,000; compound 8 % + €0.50 each = 640 + 50 = 690
///
/// Goods 14,198; adjustment 600: ⌊600 × 1,998 / 14,198⌋ = 84, ⌊600 × 4,200 / 14,198⌋ = 177,
/// the rest 339. Customs values 2,082, 4,377, 8,339. Ad valorem parts use them: wine 3 % ×
/// 4,377 = 131.31 + 120 = 251.31 → 251; shoes 8 % × 8,339 = 667.12 + 50 = 717.12 → 717;
/// cheese 300. VAT 20 %: (2,082 + 300) = 2,382 → 476.4 → 476; (4,377 + 251) = 4,628 →
/// 925.6 → 926; (8,339 + 717) = 9,056 → 1,811.2 → 1,811.
#[test]
fn worked_example_sample_tariffs_cover_every_rate_type() {
    let mut w = World::new(now());
    w.arrive(
        registration(
            "QX-1",
            "CN",
            "QX",
            Incoterm::FOB,
            "EUR",
            &[
                ("0406.90", 2, 999, "KGM", 2_000),
                ("2204.21", 6, 700, "LTR", 4_500),
                ("6403.99", 1, 8_000, "PCE", 900),
            ],
            500,
            100,
            vec![],
        ),
        "CNSHA",
        "QXAAA",
    );
    let (decl, a) = w.declaration(
        "QX-1",
        "QX",
        "EUR",
        None,
        CustomsRegime::Full,
        &["040690", "220421", "640399"],
    );
    assert_eq!(
        a.lines
            .iter()
            .map(|l| (l.customs_value_minor, l.duty_minor, l.tax_minor))
            .collect::<Vec<_>>(),
        vec![(2_082, 300, 476), (4_377, 251, 926), (8_339, 717, 1_811)]
    );
    off_by_one(&w, &decl, |d| d.lines[2].duty_minor = 716, "duty.mismatch");
    declare_pay_release(&mut w, "QX-1", decl, "broker-clear");

    // QY (USD, FOB): a specific duty per item on the shoes ($0.90 each) and the ceramic
    // specific rate ($0.10 each): 3 mugs at $4.00 → 30; 1 pair of shoes at $60.00 → 90; sales
    // tax 7 % × (1,200 + 30) = 86.1 → 86 and 7 % × (6,000 + 90) = 426.3 → 426.
    let mut w = World::new(now());
    w.arrive(
        registration(
            "QY-1",
            "CN",
            "QY",
            Incoterm::EXW,
            "USD",
            &[
                ("6912.00", 3, 400, "PCE", 900),
                ("6403.99", 1, 6_000, "PCE", 900),
            ],
            0,
            0,
            vec![],
        ),
        "CNSHA",
        "QYAAA",
    );
    let (_, a) = w.declaration(
        "QY-1",
        "QY",
        "USD",
        None,
        CustomsRegime::Full,
        &["691200", "640399"],
    );
    assert_eq!(
        a.lines
            .iter()
            .map(|l| (l.duty_minor, l.tax_minor))
            .collect::<Vec<_>>(),
        vec![(30, 86), (90, 426)]
    );
}

/// A registration mutated by `change`, signed by the seller.
fn mutated(w: &World, change: impl Fn(&mut ShipmentRegistered)) -> EncodedEvent {
    let mut reg = registration(
        "BAD-1",
        "CN",
        "FR",
        Incoterm::DDP,
        "EUR",
        &[
            ("6109.10", 10, 1_537, "PCE", 1_500),
            ("6912.00", 2, 4_999, "PCE", 800),
        ],
        0,
        0,
        vec![],
    );
    change(&mut reg);
    w.net
        .sign("seller-acme", EventKind::ShipmentRegistered(reg))
}

fn tax_id(scheme: &str, value: &str) -> TaxId {
    TaxId {
        scheme: scheme.into(),
        value: value.into(),
    }
}

/// A change to a registration payload.
type Mutation = Box<dyn Fn(&mut ShipmentRegistered)>;

/// Registration documents: one accepted, then each fault named by its code.
#[test]
fn registration_documents_accept_and_reject() {
    let w = World::new(now());
    assert_eq!(w.code(&mutated(&w, |_| {})), "accepted");
    assert_eq!(
        w.code(&mutated(&w, |r| r.invoice.seller.tax_ids = vec![
            tax_id("EORI", "DE123456789012345"),
            tax_id("IOSS", "IM2500000001")
        ])),
        "accepted"
    );
    assert_eq!(
        w.code(&mutated(&w, |r| r.invoice.lines[0].gtin =
            Some("4006381333931".into()))),
        "accepted"
    );
    // The buyer's commitments carry nothing to check; a business buyer's plain
    // registrations are checked like the seller's.
    assert_eq!(
        w.code(&mutated(&w, |r| {
            r.invoice.buyer.address_commitment = Some(Digest::sha256(b"address"));
            r.invoice.buyer.personal_id_commitment = Some(Digest::ZERO);
            r.invoice.buyer.tax_ids = vec![tax_id("EORI", "FR12345678901")];
        })),
        "accepted"
    );
    assert_eq!(
        w.code(&mutated(&w, |r| r.invoice.buyer.tax_ids =
            vec![tax_id("EORI", "GB12345")])),
        "id.eori"
    );
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "bad SSCC check digit",
            Box::new(|r| r.parcels[0].sscc = "106141411234567898".into()),
            "id.sscc",
        ),
        (
            "bad GTIN",
            Box::new(|r| r.invoice.lines[0].gtin = Some("4006381333932".into())),
            "id.gtin",
        ),
        (
            "unassigned destination",
            Box::new(|r| r.destination = cc("ZZ")),
            "id.country",
        ),
        (
            "currency without minor units",
            Box::new(|r| r.invoice.currency = cur("XAU")),
            "id.currency",
        ),
        (
            "malformed EORI",
            Box::new(|r| r.invoice.seller.tax_ids = vec![tax_id("EORI", "GB12345")]),
            "id.eori",
        ),
        (
            "malformed IOSS",
            Box::new(|r| r.invoice.seller.tax_ids = vec![tax_id("IOSS", "IM123")]),
            "id.ioss",
        ),
        (
            "HS code with letters",
            Box::new(|r| r.invoice.lines[0].hs_code = "61O9.10".into()),
            "hs.format",
        ),
        (
            "HS code of 7 digits",
            Box::new(|r| r.invoice.lines[0].hs_code = "6109100".into()),
            "hs.length",
        ),
        (
            "HS chapter 77",
            Box::new(|r| r.invoice.lines[0].hs_code = "770000".into()),
            "hs.reserved",
        ),
        (
            "HS placeholder 999999",
            Box::new(|r| r.invoice.lines[0].hs_code = "999999".into()),
            "hs.reserved",
        ),
        (
            "unknown subheading",
            Box::new(|r| r.invoice.lines[0].hs_code = "610999".into()),
            "hs.unknown_subheading",
        ),
        (
            "duplicate line number",
            Box::new(|r| r.invoice.lines[1].line_no = 1),
            "invoice.duplicate_line",
        ),
        (
            "zero quantity",
            Box::new(|r| r.invoice.lines[1].quantity = 0),
            "invoice.quantity_zero",
        ),
        (
            "total off by one cent",
            Box::new(|r| r.invoice.total_minor += 1),
            "invoice.total_mismatch",
        ),
        (
            "two parcels, one SSCC",
            Box::new(|r| r.parcels.push(r.parcels[0].clone())),
            "parcel.duplicate_sscc",
        ),
        (
            "packing an unknown parcel",
            Box::new(|r| r.packing_list.lines[0].sscc = "376104250021234569".into()),
            "packing.unknown_parcel",
        ),
        (
            "packing an unknown line",
            Box::new(|r| r.packing_list.lines[1].invoice_line = 9),
            "packing.unknown_line",
        ),
        (
            "packing one unit short",
            Box::new(|r| r.packing_list.lines[0].quantity -= 1),
            "packing.quantity_mismatch",
        ),
        (
            "an empty parcel",
            Box::new(|r| {
                r.parcels.push(Parcel {
                    sscc: "376104250021234569".into(),
                    gross_weight_grams: 1,
                })
            }),
            "packing.empty_parcel",
        ),
    ];
    for (name, change, code) in cases {
        assert_eq!(w.code(&mutated(&w, change)), code, "{name}");
    }
    // With no nomenclature published, no HS code can be checked.
    let bare = World::with_tables(now(), vec![]);
    assert_eq!(bare.code(&mutated(&bare, |_| {})), "hs.no_nomenclature");
}

#[test]
fn incoterms_2020_only_with_a_pointer_to_the_replacement() {
    use custody_contracts::documents::parse_incoterm;
    assert_eq!(
        parse_incoterm("f", "DAP").map_err(|r| r.code),
        Ok(Incoterm::DAP)
    );
    let ddu =
        parse_incoterm("event.kind.ShipmentRegistered.incoterm", "DDU").expect_err("DDU is gone");
    assert_eq!(
        (ddu.code.as_str(), ddu.field.as_str()),
        ("incoterm.unknown", "event.kind.ShipmentRegistered.incoterm")
    );
    assert!(ddu.message.contains("DAP"), "{}", ddu.message);
    assert!(parse_incoterm("f", "DAT")
        .expect_err("DAT is gone")
        .message
        .contains("DPU"));
    // The JSON form of an event refuses DDU with the same pointer.
    let json = serde_json::json!("DDU");
    let err = serde_json::from_value::<Incoterm>(json).expect_err("DDU refused");
    assert!(err.to_string().contains("DAP"), "{err}");
}

#[test]
fn roles_table() {
    let w = World::new(now());
    let w2 = {
        let mut w2 = World::new(now());
        w2.arrive(
            registration(
                "R-1",
                "CN",
                "FR",
                Incoterm::DDP,
                "EUR",
                &[("6109.10", 1, 100, "PCE", 100)],
                0,
                0,
                vec![],
            ),
            "CNSHA",
            "FRCDG",
        );
        w2
    };
    let attest = |by: &str| {
        w2.net.sign(
            by,
            EventKind::DocumentAttested(DocumentAttested {
                shipment_id: ShipmentId::new("R-1"),
                document_type: "certificate_of_origin".into(),
                document_hash: Digest::sha256(b"coo"),
                reference: "COO-1".into(),
            }),
        )
    };
    assert_eq!(w2.code(&attest("seller-acme")), "accepted");
    assert_eq!(w2.code(&attest("customs-qx")), "accepted");
    assert_eq!(w2.code(&attest("auditor-ivy")), "role.not_permitted");
    // Personal-data erasure by a seller or an admin; the state machine keeps sellers to
    // their own shipments.
    let erase = |by: &str| {
        w2.net.sign(
            by,
            EventKind::PersonalDataErased(PersonalDataErased {
                shipment_id: ShipmentId::new("R-1"),
            }),
        )
    };
    assert_eq!(w2.code(&erase("seller-acme")), "accepted");
    assert_eq!(w2.code(&erase("admin-1")), "accepted");
    assert_eq!(w2.code(&erase("carrier-swift")), "role.not_permitted");
    assert_eq!(w2.code(&erase("broker-clear")), "role.not_permitted");
    // Reference data only from a customs authority.
    let table = load::de_minimis_events().remove(0);
    assert_eq!(
        w.code(
            &w.net
                .sign("broker-clear", EventKind::ReferenceDataPublished(table))
        ),
        "role.not_permitted"
    );
    // Registration only by a seller.
    let reg = registration(
        "R-2",
        "CN",
        "FR",
        Incoterm::DDP,
        "EUR",
        &[("6109.10", 1, 100, "PCE", 100)],
        0,
        0,
        vec![],
    );
    assert_eq!(
        w.code(
            &w.net
                .sign("carrier-swift", EventKind::ShipmentRegistered(reg))
        ),
        "role.not_permitted"
    );
    // Unknown keys are refused before any role is looked at.
    let stranger = custody_ledger::keys::Keypair::from_seed([9; 32]);
    let e = EncodedEvent::new(custody_ledger::event::sign(
        w.net.register("R-3", "CN", "FR").into_event().event,
        &stranger,
    ));
    assert_eq!(w.code(&e), "member.unknown_signer");
    // The whole table names a role for every kind; auditors sign nothing.
    for kind in [
        w.net.register("X", "CN", "FR"),
        w.net.deliver("carrier-swift", "X"),
        w.net.request_return("X", "R", 1),
    ] {
        let roles = custody_contracts::roles::permitted_roles(&kind.event().event.kind);
        assert!(!roles.is_empty() && !roles.contains(&Role::Auditor));
    }
}

#[test]
fn handoffs_and_deliveries_check_places_and_waybills() {
    let mut w = World::new(now());
    let id = "H-1";
    let reg = registration(
        id,
        "CN",
        "FR",
        Incoterm::DDP,
        "EUR",
        &[("6109.10", 1, 100, "PCE", 100)],
        0,
        0,
        vec![],
    );
    w.must(
        &w.net
            .sign("seller-acme", EventKind::ShipmentRegistered(reg)),
    );
    assert_eq!(
        w.code(
            &w.net
                .propose_at("seller-acme", id, "carrier-swift", "ZZABC")
        ),
        "id.locode"
    );
    assert_eq!(
        w.code(
            &w.net
                .propose_at("seller-acme", id, "carrier-swift", "CNSH1")
        ),
        "id.locode"
    );
    let mut bad_awb = w
        .net
        .propose_at("seller-acme", id, "carrier-swift", "CNSHA")
        .into_event()
        .event
        .kind;
    if let EventKind::HandoffProposed(h) = &mut bad_awb {
        h.transport_document = Some(TransportDocument {
            kind: TransportDocumentKind::AirWaybill,
            number: "020-12345676".into(),
        });
    }
    assert_eq!(w.code(&w.net.sign("seller-acme", bad_awb)), "id.awb");
    let p = w
        .net
        .propose_at("seller-acme", id, "carrier-swift", "CNSHA");
    w.must(&p);
    w.must(&w.net.accept("carrier-swift", id, &p));
    // Custody moved: only the custodian hands off (the ledger's custody continuity).
    assert_eq!(
        w.code(
            &w.net
                .propose_at("seller-acme", id, "carrier-lastmile", "FRCDG")
        ),
        "accepted"
    );
    assert_eq!(
        w.apply(
            &w.net
                .propose_at("seller-acme", id, "carrier-lastmile", "FRCDG")
        )
        .map_err(|r| r.code.as_str()),
        Err("custody.not_custodian")
    );
    let mut bad_place = w.net.deliver("carrier-swift", id).into_event().event.kind;
    if let EventKind::Delivered(d) = &mut bad_place {
        // "PARIS" would be a well-formed LOCODE (PA, Panama); a digit 1 is never allowed.
        d.place = "FRPA1".into();
    }
    assert_eq!(w.code(&w.net.sign("carrier-swift", bad_place)), "id.locode");
}

/// The parcel of the registrations above.
const SCANNED_SSCC: &str = "106141411234567897";

/// A tracking scan of `id` by `by`, with `change` applied to the test kit's payload (the
/// parcel departing Hamburg, in transit, with a temperature reading).
fn scan(w: &World, by: &str, id: &str, change: impl Fn(&mut TrackingScanRecorded)) -> EncodedEvent {
    let mut payload = custody_ledger::testkit::tracking_scan(id, "DEHAM");
    payload.parcels = vec![SCANNED_SSCC.into()];
    change(&mut payload);
    w.net.sign(by, EventKind::TrackingScanRecorded(payload))
}

#[test]
fn tracking_scans_check_places_parcels_vocabulary_and_sensors() {
    let mut w = World::new(now());
    let id = "T-1";
    let reg = registration(
        id,
        "CN",
        "FR",
        Incoterm::DDP,
        "EUR",
        &[("6109.10", 1, 100, "PCE", 100)],
        0,
        0,
        vec![],
    );
    w.must(
        &w.net
            .sign("seller-acme", EventKind::ShipmentRegistered(reg)),
    );
    let p = w
        .net
        .propose_at("seller-acme", id, "carrier-swift", "CNSHA");
    w.must(&p);
    w.must(&w.net.accept("carrier-swift", id, &p));

    let cases: Vec<(&str, EncodedEvent, &str)> = vec![
        (
            "the custodian's scan",
            scan(&w, "carrier-swift", id, |_| {}),
            "accepted",
        ),
        (
            "another carrier's scan of the whole shipment",
            scan(&w, "carrier-lastmile", id, |s| s.parcels.clear()),
            "accepted",
        ),
        (
            "terms of other vocabularies as URIs",
            scan(&w, "carrier-swift", id, |s| {
                s.biz_step = "https://carrier.example/steps/delivery_attempt_failed".into();
                s.disposition = "urn:example:custody:awaiting_collection".into();
                s.exception = true;
            }),
            "accepted",
        ),
        (
            "no GLN, no sensor",
            scan(&w, "carrier-swift", id, |s| {
                s.read_point_gln = None;
                s.sensor_readings.clear();
            }),
            "accepted",
        ),
        (
            "a spaced LOCODE",
            scan(&w, "carrier-swift", id, |s| {
                s.biz_location = "DE HAM".into()
            }),
            "accepted",
        ),
        (
            "an excursion outside the limits",
            scan(&w, "carrier-swift", id, |s| {
                s.sensor_readings[0].value_milli = 9_250;
                s.exception = true;
            }),
            "accepted",
        ),
        (
            "a read point that is no LOCODE",
            scan(&w, "carrier-swift", id, |s| s.read_point = "Hamburg".into()),
            "id.locode",
        ),
        (
            "a business location in no country",
            scan(&w, "carrier-swift", id, |s| s.biz_location = "ZZHAM".into()),
            "id.locode",
        ),
        (
            "a GLN with a wrong check digit",
            scan(&w, "carrier-swift", id, |s| {
                s.read_point_gln = Some("0614141000006".into())
            }),
            "id.gln",
        ),
        (
            "an SSCC with a wrong check digit",
            scan(&w, "carrier-swift", id, |s| {
                s.parcels = vec!["106141411234567898".into()]
            }),
            "id.sscc",
        ),
        (
            "a parcel listed twice",
            scan(&w, "carrier-swift", id, |s| {
                s.parcels.push(SCANNED_SSCC.into())
            }),
            "parcel.duplicate_sscc",
        ),
        (
            "an unknown CBV bizStep",
            scan(&w, "carrier-swift", id, |s| {
                s.biz_step = "teleporting".into()
            }),
            "scan.biz_step",
        ),
        (
            "a CBV URI instead of its short name",
            scan(&w, "carrier-swift", id, |s| {
                s.biz_step = "https://ref.gs1.org/cbv/BizStep-arriving".into()
            }),
            "scan.biz_step",
        ),
        (
            "an unknown CBV disposition",
            scan(&w, "carrier-swift", id, |s| s.disposition = "lost".into()),
            "scan.disposition",
        ),
        (
            "a URI of another scheme",
            scan(&w, "carrier-swift", id, |s| {
                s.disposition = "ftp://example.com/lost".into()
            }),
            "scan.disposition",
        ),
        (
            "a unit that is no Rec 20 code",
            scan(&w, "carrier-swift", id, |s| {
                s.sensor_readings[0].unit = "°C".into()
            }),
            "scan.sensor_reading",
        ),
        (
            "an auditor's scan",
            scan(&w, "auditor-ivy", id, |_| {}),
            "role.not_permitted",
        ),
    ];
    for (name, event, code) in &cases {
        assert_eq!(
            custody_ledger::event::check_shape(event.event(), custody_ledger::testkit::CHAIN_ID),
            Ok(()),
            "{name}"
        );
        assert_eq!(w.code(event), *code, "{name}");
    }

    // A lower limit above the upper one is refused by the shape check, before any module.
    let inverted = scan(&w, "carrier-swift", id, |s| {
        s.sensor_readings[0].min_milli = Some(8_000);
        s.sensor_readings[0].max_milli = Some(2_000);
    });
    let shape =
        custody_ledger::event::check_shape(inverted.event(), custody_ledger::testkit::CHAIN_ID)
            .expect_err("min above max");
    assert_eq!(
        (shape.code.as_str(), shape.field.as_str()),
        (
            "event.field_invalid",
            "event.kind.TrackingScanRecorded.sensor_readings[0].min_milli"
        )
    );

    // The seller passes the roles table (it may scan what it holds) but no longer holds the
    // shipment: the state machine refuses. Nothing moves on an accepted scan.
    let by_seller = scan(&w, "seller-acme", id, |_| {});
    assert_eq!(w.code(&by_seller), "accepted");
    assert_eq!(
        w.apply(&by_seller).map_err(|r| r.code.as_str()),
        Err("scan.not_allowed")
    );
    let before = w.shipment(id).clone();
    let hub = scan(&w, "carrier-lastmile", id, |s| {
        s.biz_step = "arriving".into();
        s.read_point = "NLAMS".into();
        s.biz_location = "NLAMS".into();
    });
    w.must(&hub);
    let after = w.shipment(id);
    assert_eq!(after.custodian, before.custodian);
    assert_eq!(after.status, before.status);
    assert_eq!(after.last_place, before.last_place);
    assert_eq!(after.event_count, before.event_count + 1);
    assert_eq!(after.last_event, hub.id());
}

/// A one-line declaration written by hand, amounts as given (for faults `assess` would
/// refuse to compute).
fn one_line_declaration(
    id: &str,
    jurisdiction: &str,
    currency: &str,
    basis: ValuationBasis,
    hs_code: &str,
    value_minor: u64,
    freight_minor: u64,
) -> CustomsDeclared {
    CustomsDeclared {
        shipment_id: ShipmentId::new(id),
        declaration_ref: format!("DEC-{id}"),
        jurisdiction: cc(jurisdiction),
        transport_mode: TransportMode::Courier,
        currency: cur(currency),
        valuation_basis: basis,
        customs_value_minor: value_minor,
        freight_minor,
        insurance_minor: 0,
        exchange_rate: None,
        regime: CustomsRegime::Full,
        lines: vec![DeclarationLine {
            invoice_line: 1,
            hs_code: hs_code.into(),
            customs_value_minor: value_minor,
            duty_minor: 0,
            tax_minor: 0,
        }],
        duty_total_minor: 0,
        tax_total_minor: 0,
    }
}

/// Declarations: the faults not shown by the worked examples.
#[test]
fn declaration_faults() {
    let mut w = World::new(now());
    w.arrive(
        registration(
            "D-1",
            "CN",
            "FR",
            Incoterm::DDP,
            "EUR",
            &[
                ("6109.10", 10, 1_537, "PCE", 1_500),
                ("6912.00", 2, 4_999, "PCE", 800),
            ],
            0,
            0,
            vec![],
        ),
        "CNSHA",
        "FRCDG",
    );
    let (decl, _) = w.declaration(
        "D-1",
        "FR",
        "EUR",
        None,
        CustomsRegime::Full,
        &["61091000", "69120000"],
    );
    assert_eq!(w.code(&w.sign_declaration(decl.clone())), "accepted");
    let sign = |change: &dyn Fn(&mut CustomsDeclared)| {
        let mut d = decl.clone();
        change(&mut d);
        w.code(&w.sign_declaration(d))
    };
    assert_eq!(
        sign(&|d| d.jurisdiction = cc("JP")),
        "valuation.unsupported_jurisdiction"
    );
    assert_eq!(sign(&|d| d.lines.swap(0, 1)), "declaration.lines_mismatch");
    assert_eq!(
        sign(&|d| {
            d.lines.pop();
        }),
        "declaration.lines_mismatch"
    );
    assert_eq!(
        sign(&|d| d.lines[0].hs_code = "69120000".into()),
        "hs.invoice_mismatch"
    );
    assert_eq!(sign(&|d| d.lines[0].hs_code = "610910".into()), "hs.length");
    // Germany has no tariff in force in the tests.
    assert_eq!(sign(&|d| d.jurisdiction = cc("DE")), "duty.no_tariff");
    // QX has no de minimis rule; its tariff is in euros, not dollars.
    assert_eq!(
        sign(&|d| {
            d.jurisdiction = cc("QX");
            d.currency = cur("USD");
            d.exchange_rate = Some(ExchangeRate {
                from: cur("EUR"),
                to: cur("USD"),
                numerator: 108,
                denominator: 100,
            });
            d.lines[0].hs_code = "610910".into();
            d.lines[1].hs_code = "691200".into();
        }),
        "duty.currency"
    );

    // A line whose subheading the tariff does not list.
    let mut w = World::new(now());
    w.arrive(
        registration(
            "D-2",
            "CN",
            "FR",
            Incoterm::DDP,
            "EUR",
            &[("4202.21", 1, 30_000, "PCE", 800)],
            0,
            0,
            vec![],
        ),
        "CNSHA",
        "FRCDG",
    );
    let decl = one_line_declaration(
        "D-2",
        "FR",
        "EUR",
        ValuationBasis::CIF,
        "42022100",
        30_000,
        0,
    );
    assert_eq!(w.code(&w.sign_declaration(decl)), "duty.no_rate");

    // A specific rate per litre on a line counted in bottles.
    let mut w = World::new(now());
    w.arrive(
        registration(
            "D-3",
            "CN",
            "QX",
            Incoterm::DDP,
            "EUR",
            &[("2204.21", 6, 700, "BTL", 4_500)],
            0,
            0,
            vec![],
        ),
        "CNSHA",
        "QXAAA",
    );
    let decl = one_line_declaration("D-3", "QX", "EUR", ValuationBasis::CIF, "220421", 4_200, 0);
    assert_eq!(w.code(&w.sign_declaration(decl)), "duty.unit");

    // FOB deduction larger than the goods: $5 of goods, $9 of freight under CIF terms.
    let mut w = World::new(now());
    w.arrive(
        registration(
            "D-4",
            "CN",
            "QY",
            Incoterm::CIF,
            "USD",
            &[("6109.10", 1, 500, "PCE", 100)],
            900,
            0,
            vec![],
        ),
        "CNSHA",
        "QYAAA",
    );
    let decl = one_line_declaration("D-4", "QY", "USD", ValuationBasis::FOB, "610910", 0, 900);
    assert_eq!(w.code(&w.sign_declaration(decl)), "valuation.negative");
}

/// Release in the destination needs a recorded arrival there; a hold blocks handoffs until
/// a later release.
#[test]
fn clearance_needs_arrival_and_a_hold_blocks_custody() {
    let mut w = World::new(now());
    let id = "C-1";
    let reg = registration(
        id,
        "CN",
        "FR",
        Incoterm::DDP,
        "EUR",
        &[("6109.10", 10, 1_537, "PCE", 1_500)],
        0,
        0,
        vec![],
    );
    w.must(
        &w.net
            .sign("seller-acme", EventKind::ShipmentRegistered(reg)),
    );
    let p = w
        .net
        .propose_at("seller-acme", id, "carrier-swift", "CNSHA");
    w.must(&p);
    w.must(&w.net.accept("carrier-swift", id, &p));
    // Declared while still in transit outside France (a pre-arrival declaration).
    let (decl, a) = w.declaration(id, "FR", "EUR", None, CustomsRegime::Full, &["61091000"]);
    let d = w.sign_declaration(decl);
    w.must(&d);
    w.must(&w.net.pay(
        "seller-acme",
        id,
        &d,
        a.duty_total_minor + a.tax_total_minor,
    ));
    let release = w.net.clear(id, &d, ClearanceOutcome::Release);
    assert_eq!(w.code(&release), "clearance.no_arrival");
    // Customs holds it for inspection: no handoff until released.
    w.must(&w.net.clear(id, &d, ClearanceOutcome::Inspection));
    let handoff = w
        .net
        .propose_at("carrier-swift", id, "carrier-lastmile", "FRCDG");
    assert_eq!(
        w.apply(&handoff).map_err(|r| r.code.as_str()),
        Err("custody.held_by_customs")
    );
    assert_eq!(w.shipment(id).status, ShipmentStatus::Held);
}

#[test]
fn malformed_reference_data_is_refused() {
    let w = World::new(now());
    let publish = |data: ReferenceData| {
        w.net.sign(
            "customs-qx",
            EventKind::ReferenceDataPublished(ReferenceDataPublished {
                table_id: "test".into(),
                effective_from: now(),
                data,
            }),
        )
    };
    let unsorted = ReferenceData::HsNomenclature(HsNomenclature {
        edition: "x".into(),
        subheadings: vec!["610910".into(), "010121".into()],
    });
    assert_eq!(w.code(&publish(unsorted)), "reference.invalid");
    let short = ReferenceData::HsNomenclature(HsNomenclature {
        edition: "x".into(),
        subheadings: vec!["6109".into()],
    });
    assert_eq!(w.code(&publish(short)), "reference.invalid");
    let letters = ReferenceData::Tariff(TariffTable {
        jurisdiction: cc("QX"),
        currency: cur("EUR"),
        vat_rate_ppm: 0,
        lines: vec![ad_valorem("61A9", 10)],
    });
    assert_eq!(w.code(&publish(letters)), "reference.invalid");
    let rate = ReferenceData::Tariff(TariffTable {
        jurisdiction: cc("QX"),
        currency: cur("EUR"),
        vat_rate_ppm: 2_000_000,
        lines: vec![],
    });
    assert_eq!(w.code(&publish(rate)), "reference.invalid");
    let country = ReferenceData::Tariff(TariffTable {
        jurisdiction: cc("ZZ"),
        currency: cur("EUR"),
        vat_rate_ppm: 0,
        lines: vec![],
    });
    assert_eq!(w.code(&publish(country)), "id.country");
    let good = ReferenceData::Tariff(TariffTable {
        jurisdiction: cc("QX"),
        currency: cur("EUR"),
        vat_rate_ppm: 200_000,
        lines: vec![ad_valorem("61", 10)],
    });
    assert_eq!(w.code(&publish(good)), "accepted");
}

/// Codes this file does not produce, and the unit tests that do.
const UNIT_TESTED: &[(&str, &str)] = &[
    (
        "rules.version_unknown",
        "tests/verdicts.rs: a_version_this_build_lacks_is_neither_scheduled_nor_run",
    ),
    (
        "money.overflow",
        "src/money.rs: conversion_with_an_exact_rate",
    ),
];

/// Every contract code appears in docs/RULES.md, and every code is produced by a test here
/// or by a named unit test. The list of codes produced here is kept by hand from the tests
/// above, so adding a code without a test fails this test.
#[test]
fn every_code_is_documented_and_tested() {
    let rules_md = include_str!("../../docs/RULES.md");
    let this_file = include_str!("rules.rs");
    for code in custody_ledger::reject::codes::ALL {
        assert!(
            rules_md.contains(&format!("`{code}`")),
            "docs/RULES.md does not explain ledger code {code}"
        );
    }
    for (module, code) in custody_contracts::registry::contract_codes() {
        assert!(
            rules_md.contains(&format!("`{code}`")),
            "docs/RULES.md does not explain {code} ({module})"
        );
        let quoted = format!("\"{code}\"");
        let tested_here =
            this_file.contains(&quoted) || UNIT_TESTED.iter().any(|(c, _)| c == &code);
        assert!(tested_here, "no test produces {code}");
    }
}

/// The verdict on a declaration does not depend on the order in which unrelated reference
/// tables were published.
mod publication_order {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn verdicts_do_not_depend_on_publication_order(order in Just((0..tables().len()).collect::<Vec<usize>>()).prop_shuffle()) {
            let all = tables();
            let shuffled: Vec<ReferenceDataPublished> = order.iter().map(|i| all[*i].clone()).collect();
            let verdict = |tables: Vec<ReferenceDataPublished>| {
                let mut w = World::with_tables(now(), tables);
                w.arrive(registration("P-1", "CN", "FR", Incoterm::FCA, "EUR", &[("6109.10", 10, 1_537, "PCE", 1_500), ("6912.00", 2, 4_999, "PCE", 800)], 1_200, 150, vec![]), "CNSHA", "FRCDG");
                let (decl, a) = w.declaration("P-1", "FR", "EUR", None, CustomsRegime::Full, &["61091000", "69120000"]);
                let mut wrong = decl.clone();
                wrong.lines[1].duty_minor += 1;
                (a, w.code(&w.sign_declaration(decl)), w.code(&w.sign_declaration(wrong)))
            };
            let expected = verdict(all);
            prop_assert_eq!(verdict(shuffled), expected);
        }
    }
}

#[test]
fn reference_tables_have_the_expected_ids() {
    let ids: Vec<String> = tables().into_iter().map(|t| t.table_id).collect();
    assert!(ids.contains(&HS_TABLE.to_string()) && ids.contains(&DE_MINIMIS_TABLE.to_string()));
    let book = ReferenceBook::new();
    assert!(book.de_minimis(now()).is_none());
}

/// Custody continuity and returns through the whole pipeline (registry, then the ledger's
/// state machine): delivery only by the custodian after release in the destination;
/// returns only of delivered lines, never more than shipped minus returned, received only
/// against a request.
#[test]
fn delivery_and_returns_through_the_pipeline() {
    let mut w = World::new(now());
    let id = "RET-1";
    w.arrive(
        registration(
            id,
            "CN",
            "FR",
            Incoterm::DDP,
            "EUR",
            &[
                ("6109.10", 10, 1_537, "PCE", 1_500),
                ("6912.00", 2, 4_999, "PCE", 800),
            ],
            0,
            0,
            vec![],
        ),
        "CNSHA",
        "FRCDG",
    );
    assert_eq!(
        w.apply(&w.net.deliver("carrier-lastmile", id))
            .map_err(|r| r.code.as_str()),
        Err("delivery.not_released")
    );
    let (decl, _) = w.declaration(
        id,
        "FR",
        "EUR",
        None,
        CustomsRegime::Full,
        &["61091000", "69120000"],
    );
    declare_pay_release(&mut w, id, decl, "seller-acme");
    assert_eq!(
        w.apply(&w.net.deliver("carrier-swift", id))
            .map_err(|r| r.code.as_str()),
        Err("custody.not_custodian")
    );
    w.must(&w.net.deliver("carrier-lastmile", id));
    assert_eq!(
        w.apply(&w.net.request_return(id, "RMA-1", 11))
            .map_err(|r| r.code.as_str()),
        Err("return.bad_lines")
    );
    w.must(&w.net.request_return(id, "RMA-1", 6));
    assert_eq!(
        w.apply(&w.net.request_return(id, "RMA-2", 5))
            .map_err(|r| r.code.as_str()),
        Err("return.bad_lines")
    );
    assert_eq!(
        w.apply(&w.net.receive_return(id, "RMA-9", 1))
            .map_err(|r| r.code.as_str()),
        Err("return.bad_rma")
    );
    assert_eq!(
        w.apply(&w.net.receive_return(id, "RMA-1", 7))
            .map_err(|r| r.code.as_str()),
        Err("return.bad_lines")
    );
    w.must(&w.net.receive_return(id, "RMA-1", 6));
    assert_eq!(w.shipment(id).status, ShipmentStatus::Returned);
    // Four more may still come back: 10 shipped, 6 returned.
    w.must(&w.net.request_return(id, "RMA-2", 4));
    assert_eq!(w.shipment(id).status, ShipmentStatus::ReturnRequested);
}

/// Rules version 2: the regime fixes of issue 14, each beside the version-1 verdict it
/// replaces (a network scheduled on version 1 keeps the old verdicts). Every figure is worked
/// by hand in the comments; each test accepts the exact figure and rejects one minor unit off.
mod version_2 {
    use super::*;

    fn on_version(version: u32, time: Timestamp) -> World {
        World::on(TestNet::new().with_rules_version(version), time, tables())
    }

    fn register(w: &World, reg: ShipmentRegistered) -> Result<(), Rejection> {
        w.check(
            &w.net
                .sign("seller-acme", EventKind::ShipmentRegistered(reg)),
        )
    }

    /// Australia, above A$1,000, FOB from China: 2 laptops (8471.30, duty 0 %) at
    /// A$1,100.00 and a handbag (4202.21, duty 5 %) at A$300.00; the invoice states A$50.00
    /// freight and A$10.00 insurance. Australia values FOB, and under FOB (also EXW, FCA, FAS)
    /// nothing is deducted: customs values 220,000 and 30,000. The GST base adds transport and
    /// insurance whatever the Incoterm (GST Act s. 13-20(2)), spread by value:
    /// ⌊6,000 × 220,000 / 250,000⌋ = 5,280 and the rest 720.
    ///
    /// - laptops: duty 0; GST 10 % × (220,000 + 0 + 5,280) = 22,528
    /// - handbag: duty 5 % × 30,000 = 1,500; GST 10 % × (30,000 + 1,500 + 720) = 3,222.0 → 3,222
    /// - GST total 25,750 (version 1 left transport out: 22,000 + 3,150 = 25,150).
    ///
    /// Under CIF (a C term) both versions agree, since version 1 added back what the
    /// valuation deducted: customs values 214,720 and 29,280; duty 5 % × 29,280 = 1,464; GST
    /// 10 % × (214,720 + 5,280) = 22,000 and 10 % × (29,280 + 1,464 + 720) = 3,146.4 → 3,146.
    #[test]
    fn australian_gst_base_adds_transport_whatever_the_incoterm() {
        let lines: &[Line<'_>] = &[
            ("8471.30", 2, 110_000, "PCE", 3_000),
            ("4202.21", 1, 30_000, "PCE", 800),
        ];
        let hs = ["84713000", "42022100"];
        for incoterm in [Incoterm::EXW, Incoterm::FCA, Incoterm::FAS, Incoterm::FOB] {
            for (version, taxes) in [(2, [22_528, 3_222]), (1, [22_000, 3_150])] {
                let mut w = on_version(version, now());
                let reg = registration(
                    "AU-F",
                    "CN",
                    "AU",
                    incoterm,
                    "AUD",
                    lines,
                    5_000,
                    1_000,
                    vec![],
                );
                w.arrive(reg, "CNSHA", "AUSYD");
                let (decl, a) = w.declaration("AU-F", "AU", "AUD", None, CustomsRegime::Full, &hs);
                let got: Vec<(u64, u64, u64)> = a
                    .lines
                    .iter()
                    .map(|l| (l.customs_value_minor, l.duty_minor, l.tax_minor))
                    .collect();
                assert_eq!(
                    got,
                    vec![(220_000, 0, taxes[0]), (30_000, 1_500, taxes[1])],
                    "{incoterm:?} under version {version}"
                );
                assert_eq!((a.freight_minor, a.insurance_minor), (0, 0));
                let total = taxes[0] + taxes[1];
                assert_eq!(a.tax_total_minor, total);
                assert_eq!(
                    a.tax_base_transport_minor,
                    if version == 2 { 6_000 } else { 0 }
                );
                assert_eq!(w.code(&w.sign_declaration(decl.clone())), "accepted");
                off_by_one(&w, &decl, |d| d.lines[0].tax_minor += 1, "tax.mismatch");
                off_by_one(&w, &decl, |d| d.lines[1].tax_minor -= 1, "tax.mismatch");
                off_by_one(
                    &w,
                    &decl,
                    |d| d.tax_total_minor = total + 1,
                    "tax.total_mismatch",
                );
            }
        }
        // The version-1 figure is refused under version 2, and the other way round.
        let mut w = on_version(2, now());
        let reg = registration(
            "AU-F",
            "CN",
            "AU",
            Incoterm::FOB,
            "AUD",
            lines,
            5_000,
            1_000,
            vec![],
        );
        w.arrive(reg.clone(), "CNSHA", "AUSYD");
        let (decl, _) = w.declaration("AU-F", "AU", "AUD", None, CustomsRegime::Full, &hs);
        let mut old = decl.clone();
        old.lines[0].tax_minor = 22_000;
        assert_eq!(w.code(&w.sign_declaration(old)), "tax.mismatch");

        for version in [1, 2] {
            let mut w = on_version(version, now());
            let reg = registration(
                "AU-C",
                "CN",
                "AU",
                Incoterm::CIF,
                "AUD",
                lines,
                5_000,
                1_000,
                vec![],
            );
            w.arrive(reg, "CNSHA", "AUSYD");
            let (decl, a) = w.declaration("AU-C", "AU", "AUD", None, CustomsRegime::Full, &hs);
            let got: Vec<(u64, u64, u64)> = a
                .lines
                .iter()
                .map(|l| (l.customs_value_minor, l.duty_minor, l.tax_minor))
                .collect();
            assert_eq!(got, vec![(214_720, 0, 22_000), (29_280, 1_464, 3_146)]);
            assert_eq!(a.tax_base_transport_minor, 6_000);
            off_by_one(&w, &decl, |d| d.lines[1].tax_minor = 3_147, "tax.mismatch");
            declare_pay_release(&mut w, "AU-C", decl, "broker-clear");
        }
    }

    /// A T-shirt parcel for the United States on 2025-06-10, between the end of de minimis
    /// for products of China and Hong Kong (2025-05-02) and the general end (2025-08-29):
    /// 4 T-shirts (6109.10, illustrative duty 16.5 %) at US$18.25 = US$73.00, DAP.
    ///
    /// - Goods of Chinese origin (shipped from China, or from Viet Nam): no de minimis; full
    ///   duty 16.5 % × 7,300 = 1,204.5 → 1,205; no federal import tax.
    /// - Vietnamese goods shipped from China: US$73.00 ≤ US$800, relieved.
    /// - Version 1 keyed on the dispatch country only, and read every table's origins as such.
    #[test]
    fn us_de_minimis_ends_for_chinese_and_hong_kong_goods_on_2025_05_02() {
        let at = date(2025, 6, 10);
        let lines: &[Line<'_>] = &[("6109.10", 4, 1_825, "PCE", 600)];
        let parcel = |version: u32, dispatch: &str, goods: &str| {
            let mut w = on_version(version, at);
            let mut reg = registration(
                "US-1",
                dispatch,
                "US",
                Incoterm::DAP,
                "USD",
                lines,
                0,
                0,
                vec![],
            );
            reg.invoice.lines[0].origin_country = cc(goods);
            let from = if dispatch == "CN" { "CNSHA" } else { "VNSGN" };
            w.arrive(reg, from, "USLAX");
            w
        };
        for (dispatch, goods) in [("CN", "CN"), ("VN", "CN"), ("VN", "HK")] {
            let w = parcel(2, dispatch, goods);
            let (full, a) = w.declaration(
                "US-1",
                "US",
                "USD",
                None,
                CustomsRegime::Full,
                &["61091000"],
            );
            assert_eq!((a.duty_total_minor, a.tax_total_minor), (1_205, 0));
            assert_eq!(w.code(&w.sign_declaration(full.clone())), "accepted");
            off_by_one(
                &w,
                &full,
                |d| d.lines[0].duty_minor = 1_204,
                "duty.mismatch",
            );
            off_by_one(
                &w,
                &full,
                |d| d.lines[0].duty_minor = 1_206,
                "duty.mismatch",
            );
            off_by_one(
                &w,
                &full,
                |d| d.regime = CustomsRegime::DeMinimisRelief,
                "regime.not_eligible",
            );
        }
        // Vietnamese goods shipped from China keep de minimis until 2025-08-29.
        let w = parcel(2, "CN", "VN");
        let (relief, a) = w.declaration(
            "US-1",
            "US",
            "USD",
            None,
            CustomsRegime::DeMinimisRelief,
            &["61091000"],
        );
        assert_eq!((a.duty_total_minor, a.tax_total_minor), (0, 0));
        assert_eq!(w.code(&w.sign_declaration(relief.clone())), "accepted");
        off_by_one(
            &w,
            &relief,
            |d| d.regime = CustomsRegime::Full,
            "regime.relief_applies",
        );
        // Version 1: Chinese goods shipped from Viet Nam were relieved.
        let w = parcel(1, "VN", "CN");
        let (relief, _) = w.declaration(
            "US-1",
            "US",
            "USD",
            None,
            CustomsRegime::DeMinimisRelief,
            &["61091000"],
        );
        assert_eq!(w.code(&w.sign_declaration(relief)), "accepted");
    }

    /// Canada: the CA-1 parcel of `worked_example_canada_courier_from_us` (4 T-shirts from the
    /// US, C$100.00 after conversion at 1.3699) sent by post. CBSA: mail stays at C$20 from
    /// every country, the US and Mexico included, so it is fully assessed: duty 18 % × 10,000 =
    /// 1,800; GST 5 % × (10,000 + 1,800) = 590. By courier or other commercial carrier:
    /// duty-free up to C$150 and GST 5 % × 10,000 = 500 (above C$40).
    #[test]
    fn canadian_mail_gets_the_postal_threshold() {
        let rate = Some(("USD", 13_699, 10_000));
        let parcel = |version: u32, mode: TransportMode| {
            let mut w = on_version(version, now());
            w.transport_mode = mode;
            let reg = registration(
                "CA-P",
                "US",
                "CA",
                Incoterm::DAP,
                "USD",
                &[("6109.10", 4, 1_825, "PCE", 600)],
                0,
                0,
                vec![],
            );
            w.arrive(reg, "USNYC", "CAYYZ");
            w
        };
        let w = parcel(2, TransportMode::Postal);
        let (full, a) = w.declaration(
            "CA-P",
            "CA",
            "CAD",
            rate,
            CustomsRegime::Full,
            &["6109100000"],
        );
        assert_eq!(
            (
                a.intrinsic_value_minor,
                a.duty_total_minor,
                a.tax_total_minor
            ),
            (10_000, 1_800, 590)
        );
        assert_eq!(w.code(&w.sign_declaration(full.clone())), "accepted");
        off_by_one(
            &w,
            &full,
            |d| d.lines[0].duty_minor = 1_799,
            "duty.mismatch",
        );
        off_by_one(&w, &full, |d| d.lines[0].tax_minor = 591, "tax.mismatch");
        off_by_one(
            &w,
            &full,
            |d| d.regime = CustomsRegime::DeMinimisRelief,
            "regime.not_eligible",
        );
        for (version, mode) in [
            (2, TransportMode::Courier),
            (2, TransportMode::Freight),
            (1, TransportMode::Postal),
        ] {
            let w = parcel(version, mode);
            let (relief, a) = w.declaration(
                "CA-P",
                "CA",
                "CAD",
                rate,
                CustomsRegime::DeMinimisRelief,
                &["6109100000"],
            );
            assert_eq!(
                (a.duty_total_minor, a.tax_total_minor),
                (0, 500),
                "{mode:?} v{version}"
            );
            assert_eq!(w.code(&w.sign_declaration(relief.clone())), "accepted");
            off_by_one(
                &w,
                &relief,
                |d| d.tax_total_minor = 499,
                "tax.total_mismatch",
            );
        }
    }

    /// The postal threshold at its edge, invoiced in CAD from the US by post: one T-shirt at
    /// C$20.00 is relieved of duty and tax; at C$20.01 it is not: duty 18 % × 2,001 = 360.18
    /// → 360, GST 5 % × (2,001 + 360) = 118.05 → 118.
    #[test]
    fn the_postal_threshold_is_c20_to_the_cent() {
        for (unit_value, regime, duty, tax) in [
            (2_000, CustomsRegime::DeMinimisRelief, 0, 0),
            (2_001, CustomsRegime::Full, 360, 118),
        ] {
            let mut w = on_version(2, now());
            w.transport_mode = TransportMode::Postal;
            let reg = registration(
                "CA-E",
                "US",
                "CA",
                Incoterm::DAP,
                "CAD",
                &[("6109.10", 1, unit_value, "PCE", 150)],
                0,
                0,
                vec![],
            );
            w.arrive(reg, "USNYC", "CAYYZ");
            let (decl, a) =
                w.declaration("CA-E", "CA", "CAD", None, regime.clone(), &["6109100000"]);
            assert_eq!((a.duty_total_minor, a.tax_total_minor), (duty, tax));
            assert_eq!(w.code(&w.sign_declaration(decl.clone())), "accepted");
            if regime == CustomsRegime::Full {
                off_by_one(&w, &decl, |d| d.lines[0].duty_minor = 361, "duty.mismatch");
                off_by_one(&w, &decl, |d| d.lines[0].tax_minor = 117, "tax.mismatch");
                off_by_one(
                    &w,
                    &decl,
                    |d| d.regime = CustomsRegime::DeMinimisRelief,
                    "regime.not_eligible",
                );
            } else {
                off_by_one(
                    &w,
                    &decl,
                    |d| d.regime = CustomsRegime::Full,
                    "regime.relief_applies",
                );
            }
        }
    }

    /// A de minimis rule listing a transport mode twice is malformed under version 2 (version 1
    /// does not read the modes).
    #[test]
    fn a_rule_lists_each_transport_mode_once() {
        let table = |modes: Vec<TransportMode>| ReferenceDataPublished {
            table_id: DE_MINIMIS_TABLE.into(),
            effective_from: date(2027, 1, 1),
            data: ReferenceData::DeMinimis(DeMinimisTable {
                rules: vec![DeMinimisRule {
                    jurisdictions: vec![cc("CA")],
                    origins: vec![cc("US")],
                    currency: cur("CAD"),
                    duty_free_max_minor: Some(15_000),
                    flat_duty_per_category_minor: None,
                    tax_free_max_minor: Some(4_000),
                    collected_at_sale_max_minor: None,
                    collected_at_sale_schemes: vec![],
                    source: "test".into(),
                    transport_modes: modes,
                    origins_are: OriginBasis::Dispatch,
                }],
            }),
        };
        let twice = vec![
            TransportMode::Courier,
            TransportMode::Freight,
            TransportMode::Courier,
        ];
        let publish = |w: &World, t| {
            w.check(
                &w.net
                    .sign("customs-qx", EventKind::ReferenceDataPublished(t)),
            )
        };
        let w2 = on_version(2, now());
        let r = publish(&w2, table(twice.clone())).expect_err("listed twice");
        assert_eq!(
            (r.code.as_str(), r.field.as_str()),
            (
                "reference.invalid",
                "event.kind.ReferenceDataPublished.data.de_minimis.rules[0].transport_modes[2]"
            )
        );
        assert_eq!(
            publish(
                &w2,
                table(vec![TransportMode::Courier, TransportMode::Freight])
            ),
            Ok(())
        );
        assert_eq!(publish(&on_version(1, now()), table(twice)), Ok(()));
    }

    #[test]
    fn registration_numbers_are_checked_for_form() {
        let with_ids = |ids: Vec<TaxId>| {
            registration(
                "R-1",
                "CN",
                "AU",
                Incoterm::DAP,
                "AUD",
                &[("6109.10", 1, 4_550, "PCE", 200)],
                0,
                0,
                ids,
            )
        };
        let seller = "event.kind.ShipmentRegistered.invoice.seller.tax_ids[0].value";
        let w2 = on_version(2, now());
        let w1 = on_version(1, now());
        for (scheme, good, bad, code) in [
            ("ABN", "51 824 753 556", "51824753557", "id.abn"),
            ("ARN", "300012345678", "30001234567", "id.arn"),
            ("VAT", "GB980780684", "GB980780685", "id.uk_vat"),
        ] {
            assert_eq!(register(&w2, with_ids(vec![tax_id(scheme, good)])), Ok(()));
            let r = register(&w2, with_ids(vec![tax_id(scheme, bad)])).expect_err(bad);
            assert_eq!((r.code.as_str(), r.field.as_str()), (code, seller));
            // Version 1 took them as written.
            assert_eq!(register(&w1, with_ids(vec![tax_id(scheme, bad)])), Ok(()));
        }
        // Other countries' VAT numbers are still taken as written.
        assert_eq!(
            register(&w2, with_ids(vec![tax_id("VAT", "FR12345678901")])),
            Ok(())
        );
    }

    /// UK VAT collected at sale needs a UK VAT registration: 2 T-shirts at £20.00 from China,
    /// £40.00 ≤ £135, no duty and no VAT at the border. Citing the seller's French VAT number
    /// (which the invoice may carry, taken as written) is refused under version 2 with
    /// `id.uk_vat`; version 1 took it.
    #[test]
    fn uk_vat_at_sale_cites_a_uk_vat_number() {
        let at_sale = |number: &str| CustomsRegime::TaxCollectedAtSale {
            registration_id: number.into(),
        };
        for version in [2, 1] {
            let mut w = on_version(version, now());
            let ids = vec![tax_id("VAT", "GB980780684"), tax_id("VAT", "FR12345678901")];
            let reg = registration(
                "GB-S",
                "CN",
                "GB",
                Incoterm::DAP,
                "GBP",
                &[("6109.10", 2, 2_000, "PCE", 300)],
                0,
                0,
                ids,
            );
            w.arrive(reg, "CNSHA", "GBLHR");
            let (decl, a) = w.declaration(
                "GB-S",
                "GB",
                "GBP",
                None,
                at_sale("GB980780684"),
                &["6109100010"],
            );
            assert_eq!((a.duty_total_minor, a.tax_total_minor), (0, 0));
            assert_eq!(w.code(&w.sign_declaration(decl.clone())), "accepted");
            let french = if version == 2 {
                "id.uk_vat"
            } else {
                "accepted"
            };
            off_by_one(&w, &decl, |d| d.regime = at_sale("FR12345678901"), french);
        }
    }

    #[test]
    fn generic_descriptions_are_refused_for_the_eu() {
        let described = |destination: &str, description: &str| {
            let currency = if destination == "FR" { "EUR" } else { "AUD" };
            let mut reg = registration(
                "D-1",
                "CN",
                destination,
                Incoterm::DAP,
                currency,
                &[("6109.10", 1, 4_550, "PCE", 200)],
                0,
                0,
                vec![],
            );
            reg.invoice.lines[0].description = description.into();
            reg
        };
        let w2 = on_version(2, now());
        let w1 = on_version(1, now());
        let field = "event.kind.ShipmentRegistered.invoice.lines[0].description";
        for generic in [
            "Gift",
            "gifts",
            "PARTS",
            "Accessories",
            "samples",
            "Parts & accessories",
            "General cargo",
            "12345",
        ] {
            let r = register(&w2, described("FR", generic)).expect_err(generic);
            assert_eq!(
                (r.code.as_str(), r.field.as_str()),
                ("invoice.generic_description", field)
            );
            // Outside the EU, and under version 1, they pass.
            assert_eq!(register(&w2, described("AU", generic)), Ok(()));
            assert_eq!(register(&w1, described("FR", generic)), Ok(()));
        }
        assert_eq!(
            register(&w2, described("FR", "Men's cotton T-shirts")),
            Ok(())
        );
    }
}
