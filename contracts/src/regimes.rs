//! Low-value (de minimis) regimes: real thresholds, effective-dated, each with its source.
//!
//! These are facts of law, kept as data with their sources and published on the ledger as
//! versions of the `de-minimis` reference table (see [`crate::load::de_minimis_events`]).
//! Rules read the version in force at a block's time, so a clearance is always assessed
//! against the regime of its day.
//!
//! **What is compared with a threshold.** The *intrinsic value*: the price of the goods
//! alone, without transport and insurance, in the declaration's currency. That is the EU's
//! and the UK's measure; for the other regimes it is the customs value without international
//! freight, which is the same number for the parcels these regimes cover.
//!
//! **The EU's "item category".** From 2026-07-01 the EU levies a flat €3 customs duty per
//! item category in parcels of intrinsic value up to €150. We read "item category" as a
//! distinct tariff subheading — the first six digits of the HS code — among the parcel's
//! declared lines: three T-shirts and a mug are two categories and pay €6; three T-shirts of
//! one subheading declared on two lines are one category and pay €3. The duty is charged on
//! the first line of each category.
//!
//! **Transport mode and origin (rules version 2 on).** A rule may name the transport modes it
//! covers (Canada: the CUSMA thresholds are courier thresholds; mail stays at C$20) and say
//! whether its `origins` are countries of dispatch or countries of origin of the goods. Relief
//! keyed on where a parcel is shipped from (Canada's CUSMA thresholds: CBSA Customs Notice
//! 20-18) lists dispatch countries; a withdrawal keyed on what the goods are (the United
//! States' end of de minimis for products of China and Hong Kong, Executive Order 14256) lists
//! countries of origin, and matches a shipment if any of its lines comes from one of them.
//! Rules version 1 ignores both fields: every rule's origins are dispatch countries and every
//! mode is a courier's.
//!
//! Not modelled: the special duties the United States levied on postal items from China and
//! Hong Kong between 2 May and 29 August 2025 (Executive Order 14256 and its amendments); such
//! goods are assessed under the full regime with the tariff in force.

use custody_ledger::model::{
    CountryCode, CurrencyCode, DeMinimisRule, DeMinimisTable, OriginBasis, TransportMode,
};
use custody_ledger::Timestamp;

use crate::identifiers::EU_MEMBERS;

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("regime tables use valid codes")
}

fn currency(code: &str) -> CurrencyCode {
    CurrencyCode::parse(code).expect("regime tables use valid codes")
}

fn date(year: u32, month: u32, day: u32) -> Timestamp {
    Timestamp::from_date(year, month, day).expect("regime tables use real dates")
}

/// The EU rule. Customs duty relief up to €150: Council Regulation (EC) No 1186/2009,
/// Article 23. Import VAT is due on every consignment since 1 July 2021, when Council
/// Directives (EU) 2017/2455 and 2019/1995 removed the €22 exemption; up to €150 the seller
/// or marketplace may collect it at the sale under the Import One-Stop Shop (IOSS).
fn eu(flat_duty: bool) -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: EU_MEMBERS.iter().map(|c| country(c)).collect(),
        origins: vec![],
        currency: currency("EUR"),
        duty_free_max_minor: Some(15_000),
        // From 1 July 2026, a flat €3 customs duty per item category in parcels up to €150:
        // Council agreement of 12 December 2025 on small-parcel duty (interim until the EU
        // customs data hub applies a full regime).
        flat_duty_per_category_minor: flat_duty.then_some(300),
        tax_free_max_minor: None,
        collected_at_sale_max_minor: Some(15_000),
        collected_at_sale_schemes: vec!["IOSS".into()],
        transport_modes: vec![],
        origins_are: OriginBasis::Dispatch,
        source: if flat_duty {
            "EU: Reg. (EC) 1186/2009 Art. 23 (€150); Dir. (EU) 2017/2455 and 2019/1995 (VAT, IOSS) from 2021-07-01; flat €3 per item category from 2026-07-01 (Council agreement of 2025-12-12)".into()
        } else {
            "EU: Reg. (EC) 1186/2009 Art. 23 (€150); Dir. (EU) 2017/2455 and 2019/1995 (VAT, IOSS) from 2021-07-01".into()
        },
    }
}

/// The United Kingdom: no customs duty on consignments up to £135; VAT on them is charged
/// at the point of sale by the seller or marketplace, from 1 January 2021 (Taxation
/// (Cross-border Trade) Act 2018 and The Value Added Tax (Amendment) (EU Exit) Regulations
/// 2020, SI 2020/1495).
fn uk() -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: vec![country("GB")],
        origins: vec![],
        currency: currency("GBP"),
        duty_free_max_minor: Some(13_500),
        flat_duty_per_category_minor: None,
        tax_free_max_minor: None,
        collected_at_sale_max_minor: Some(13_500),
        collected_at_sale_schemes: vec!["VAT".into()],
        transport_modes: vec![],
        origins_are: OriginBasis::Dispatch,
        source: "UK: £135 consignment threshold from 2021-01-01, VAT at the point of sale (Taxation (Cross-border Trade) Act 2018; SI 2020/1495)".into(),
    }
}

/// Australia: goods up to A$1,000 pass the border free of duty and GST; since 1 July 2018
/// registered vendors collect GST at the sale (A New Tax System (Goods and Services Tax) Act
/// 1999, Division 84, as amended by the Treasury Laws Amendment (GST Low Value Goods) Act
/// 2017), identified by an ABN or an ARN.
fn australia() -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: vec![country("AU")],
        origins: vec![],
        currency: currency("AUD"),
        duty_free_max_minor: Some(100_000),
        flat_duty_per_category_minor: None,
        tax_free_max_minor: Some(100_000),
        collected_at_sale_max_minor: Some(100_000),
        collected_at_sale_schemes: vec!["ABN".into(), "ARN".into()],
        transport_modes: vec![],
        origins_are: OriginBasis::Dispatch,
        source: "AU: A$1,000 low value threshold; GST on low value imported goods at sale from 2018-07-01 (GST Act 1999 Div 84; Treasury Laws Amendment (GST Low Value Goods) Act 2017)".into(),
    }
}

/// Canada, courier shipments from the United States or Mexico: under CUSMA, from 1 July
/// 2020, no duty up to C$150 and no taxes up to C$40 (Courier Imports Remission Order as
/// amended for CUSMA; CBSA Customs Notice 20-18). The thresholds key on the place of direct
/// shipment, not on the goods' CUSMA origin: goods need only have entered the commerce of the
/// US or Mexico. A "courier" is a commercial carrier in scheduled international transport of
/// shipments other than mail, so other commercial carriers (freight) count; mail does not:
/// postal shipments from the US or Mexico stay at C$20.
fn canada_cusma() -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: vec![country("CA")],
        origins: vec![country("US"), country("MX")],
        currency: currency("CAD"),
        duty_free_max_minor: Some(15_000),
        flat_duty_per_category_minor: None,
        tax_free_max_minor: Some(4_000),
        collected_at_sale_max_minor: None,
        collected_at_sale_schemes: vec![],
        transport_modes: vec![TransportMode::Courier, TransportMode::Freight],
        origins_are: OriginBasis::Dispatch,
        source: "CA: courier shipments from US/MX (place of direct shipment), C$150 duty and C$40 tax thresholds from 2020-07-01 (CUSMA Art. 7.8; Courier Imports Remission Order; CBSA Customs Notice 20-18); mail stays at C$20".into(),
    }
}

/// Canada, every other case: no duty or taxes up to C$20, by courier from any other country
/// (Courier Imports Remission Order) and by mail from any country, the US and Mexico included
/// (Postal Imports Remission Order).
fn canada_other() -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: vec![country("CA")],
        origins: vec![],
        currency: currency("CAD"),
        duty_free_max_minor: Some(2_000),
        flat_duty_per_category_minor: None,
        tax_free_max_minor: Some(2_000),
        collected_at_sale_max_minor: None,
        collected_at_sale_schemes: vec![],
        transport_modes: vec![],
        origins_are: OriginBasis::Dispatch,
        source:
            "CA: C$20 duty and tax threshold for mail from any country and courier shipments from other countries (Postal Imports Remission Order; Courier Imports Remission Order)"
                .into(),
    }
}

/// The United States until 28 August 2025: no duty on shipments up to US$800 a day per
/// person (19 U.S.C. § 1321(a)(2)(C), as raised by the Trade Facilitation and Trade
/// Enforcement Act of 2015). The United States levies no federal import VAT.
fn united_states() -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: vec![country("US")],
        origins: vec![],
        currency: currency("USD"),
        duty_free_max_minor: Some(80_000),
        flat_duty_per_category_minor: None,
        tax_free_max_minor: Some(80_000),
        collected_at_sale_max_minor: None,
        collected_at_sale_schemes: vec![],
        transport_modes: vec![],
        origins_are: OriginBasis::Dispatch,
        source: "US: US$800 under 19 U.S.C. 1321(a)(2)(C), until 2025-08-28".into(),
    }
}

/// The United States from 2 May 2025: no de minimis for products of China or Hong Kong,
/// whoever ships them and however (Executive Order 14256 of 2 April 2025, effective 12:01 a.m.
/// EDT on 2 May 2025; the table is effective-dated by day). A withdrawal: it grants no relief,
/// and its origins are the goods' countries of origin, so one line of Chinese or Hong Kong
/// origin puts the whole shipment under the full regime. It comes before the general US rule.
fn united_states_cn_hk_withdrawn() -> DeMinimisRule {
    DeMinimisRule {
        jurisdictions: vec![country("US")],
        origins: vec![country("CN"), country("HK")],
        currency: currency("USD"),
        duty_free_max_minor: None,
        flat_duty_per_category_minor: None,
        tax_free_max_minor: None,
        collected_at_sale_max_minor: None,
        collected_at_sale_schemes: vec![],
        transport_modes: vec![],
        origins_are: OriginBasis::Goods,
        source: "US: no de minimis for products of China and Hong Kong from 2025-05-02 (Executive Order 14256 of 2025-04-02, 90 FR 14899, amending EO 14195)".into(),
    }
}

/// The versions of the de minimis table, oldest first: (effective from, table).
///
/// - 2021-07-01: the EU's VAT reform; the state of every regime here on that date.
/// - 2025-05-02: the United States ends de minimis for products of China and Hong Kong
///   (Executive Order 14256); read by rules version 2 on as an origin of the goods (version 1
///   reads the rule's origins as dispatch countries).
/// - 2025-08-29: the United States suspends de minimis treatment for every country
///   (Executive Order 14324 of 30 July 2025); no US rule from then on.
/// - 2026-07-01: the EU's flat €3 duty per item category on parcels up to €150.
pub fn de_minimis_versions() -> Vec<(Timestamp, DeMinimisTable)> {
    vec![
        (
            date(2021, 7, 1),
            DeMinimisTable {
                rules: vec![
                    eu(false),
                    uk(),
                    australia(),
                    canada_cusma(),
                    canada_other(),
                    united_states(),
                ],
            },
        ),
        (
            date(2025, 5, 2),
            DeMinimisTable {
                rules: vec![
                    eu(false),
                    uk(),
                    australia(),
                    canada_cusma(),
                    canada_other(),
                    united_states_cn_hk_withdrawn(),
                    united_states(),
                ],
            },
        ),
        (
            date(2025, 8, 29),
            DeMinimisTable {
                rules: vec![eu(false), uk(), australia(), canada_cusma(), canada_other()],
            },
        ),
        (
            date(2026, 7, 1),
            DeMinimisTable {
                rules: vec![eu(true), uk(), australia(), canada_cusma(), canada_other()],
            },
        ),
    ]
}

/// A consignment as the de minimis rules of rules version 2 see it.
#[derive(Debug, Clone, Copy)]
pub struct Consignment<'a> {
    /// Where it is declared.
    pub jurisdiction: CountryCode,
    /// The country it is dispatched from (the shipment's origin).
    pub dispatch: CountryCode,
    /// The countries of origin of its goods, one per invoice line.
    pub goods_origins: &'a [CountryCode],
    /// How it crossed the border.
    pub transport_mode: TransportMode,
}

/// Rules version 2: the first rule of the table whose jurisdictions include the consignment's,
/// whose transport modes are empty or include its mode, and whose origins are empty or
/// include its dispatch country (`OriginBasis::Dispatch`) or the origin of any of its goods
/// (`OriginBasis::Goods`).
pub fn applicable_to<'t>(
    table: &'t DeMinimisTable,
    consignment: &Consignment<'_>,
) -> Option<&'t DeMinimisRule> {
    table.rules.iter().find(|r| {
        r.jurisdictions.contains(&consignment.jurisdiction)
            && (r.transport_modes.is_empty()
                || r.transport_modes.contains(&consignment.transport_mode))
            && (r.origins.is_empty()
                || match r.origins_are {
                    OriginBasis::Dispatch => r.origins.contains(&consignment.dispatch),
                    OriginBasis::Goods => consignment
                        .goods_origins
                        .iter()
                        .any(|o| r.origins.contains(o)),
                })
    })
}

/// The rule of `table` that applies to `consignment` under `rules_version`: the one place that
/// knows which lookup each version uses, so that the customs module and a quote cannot drift.
pub fn applicable_under<'t>(
    rules_version: u32,
    table: &'t DeMinimisTable,
    consignment: &Consignment<'_>,
) -> Option<&'t DeMinimisRule> {
    if rules_version >= 2 {
        applicable_to(table, consignment)
    } else {
        applicable(table, consignment.jurisdiction, consignment.dispatch)
    }
}

/// Rules version 1: the rule of a table that applies to goods from `origin` declared in
/// `jurisdiction`: the first whose jurisdictions include it and whose origins are empty or
/// include the origin (read as the country of dispatch). Transport modes and the origin basis
/// are ignored.
pub fn applicable(
    table: &DeMinimisTable,
    jurisdiction: CountryCode,
    origin: CountryCode,
) -> Option<&DeMinimisRule> {
    table.rules.iter().find(|r| {
        r.jurisdictions.contains(&jurisdiction)
            && (r.origins.is_empty() || r.origins.contains(&origin))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_in_date_order_and_well_formed() {
        let versions = de_minimis_versions();
        assert!(versions.windows(2).all(|w| w[0].0 < w[1].0));
        for (_, table) in &versions {
            for rule in &table.rules {
                assert!(!rule.jurisdictions.is_empty() && !rule.source.is_empty());
            }
        }
    }

    #[test]
    fn the_applicable_rule_depends_on_origin_and_date() {
        let versions = de_minimis_versions();
        let dates: Vec<Timestamp> = versions.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            dates,
            vec![
                date(2021, 7, 1),
                date(2025, 5, 2),
                date(2025, 8, 29),
                date(2026, 7, 1)
            ]
        );
        let ca = country("CA");
        let rule = applicable(&versions[0].1, ca, country("US")).expect("CUSMA rule");
        assert_eq!(rule.duty_free_max_minor, Some(15_000));
        let rule = applicable(&versions[0].1, ca, country("CN")).expect("general rule");
        assert_eq!(rule.duty_free_max_minor, Some(2_000));
        assert!(applicable(&versions[0].1, country("US"), country("CN")).is_some());
        assert!(applicable(&versions[2].1, country("US"), country("CN")).is_none());
        assert_eq!(
            applicable(&versions[2].1, country("FR"), country("CN"))
                .and_then(|r| r.flat_duty_per_category_minor),
            None
        );
        assert_eq!(
            applicable(&versions[3].1, country("FR"), country("CN"))
                .and_then(|r| r.flat_duty_per_category_minor),
            Some(300)
        );
        assert!(applicable(&versions[3].1, country("QX"), country("CN")).is_none());
    }

    /// The test vector of `docs/PROTOCOL.md` §16: a rule's two format-v3 fields encode as one
    /// byte each after `source` (an empty list, the `Dispatch` index), and the enums by index.
    #[test]
    fn the_protocol_test_vector_of_a_rule() {
        let rule = DeMinimisRule {
            jurisdictions: vec![country("GB")],
            origins: vec![],
            currency: currency("GBP"),
            duty_free_max_minor: Some(13_500),
            flat_duty_per_category_minor: None,
            tax_free_max_minor: None,
            collected_at_sale_max_minor: Some(13_500),
            collected_at_sale_schemes: vec!["VAT".into()],
            source: "UK".into(),
            transport_modes: vec![],
            origins_are: OriginBasis::Dispatch,
        };
        let hex = |bytes: Vec<u8>| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
        assert_eq!(
            hex(custody_ledger::codec::encode(&rule)),
            "01024742000347425001fbbc34000001fbbc34010356415402554b0000"
        );
        assert_eq!(
            hex(custody_ledger::codec::encode(&TransportMode::Freight)),
            "02"
        );
        let json = r#"{"jurisdictions":["GB"],"origins":[],"currency":"GBP","duty_free_max_minor":13500,"flat_duty_per_category_minor":null,"tax_free_max_minor":null,"collected_at_sale_max_minor":13500,"collected_at_sale_schemes":["VAT"],"source":"UK"}"#;
        let read: DeMinimisRule = serde_json::from_str(json).expect("the new fields have defaults");
        assert_eq!(read, rule);
    }

    fn consignment<'a>(
        jurisdiction: &str,
        dispatch: &str,
        goods: &'a [CountryCode],
        transport_mode: TransportMode,
    ) -> Consignment<'a> {
        Consignment {
            jurisdiction: country(jurisdiction),
            dispatch: country(dispatch),
            goods_origins: goods,
            transport_mode,
        }
    }

    #[test]
    fn version_2_keys_canada_on_mode_and_dispatch() {
        use TransportMode::*;
        let table = &de_minimis_versions()[0].1;
        let goods = [country("CN")];
        let threshold = |dispatch, mode| {
            applicable_to(table, &consignment("CA", dispatch, &goods, mode))
                .and_then(|r| r.duty_free_max_minor)
        };
        // CBSA: the CUSMA thresholds follow the place of direct shipment (Chinese-made goods
        // shipped by courier from the US qualify) and only courier (commercial carrier)
        // shipments; mail from the US stays at C$20.
        assert_eq!(threshold("US", Courier), Some(15_000));
        assert_eq!(threshold("MX", Freight), Some(15_000));
        assert_eq!(threshold("US", Postal), Some(2_000));
        assert_eq!(threshold("CN", Courier), Some(2_000));
        // US-made goods shipped from Germany get the general threshold.
        let us_goods = [country("US")];
        let rule = applicable_to(table, &consignment("CA", "DE", &us_goods, Courier));
        assert_eq!(rule.and_then(|r| r.duty_free_max_minor), Some(2_000));
    }

    #[test]
    fn version_2_withdraws_us_relief_for_chinese_and_hong_kong_goods_from_2025_05_02() {
        use TransportMode::*;
        let versions = de_minimis_versions();
        let relief = |v: usize, dispatch, goods: &[CountryCode]| {
            applicable_to(&versions[v].1, &consignment("US", dispatch, goods, Postal))
                .and_then(|r| r.duty_free_max_minor)
        };
        let cn = [country("CN")];
        let hk_and_vn = [country("VN"), country("HK")];
        let vn = [country("VN")];
        // Before 2025-05-02: US$800 for everyone.
        assert_eq!(relief(0, "CN", &cn), Some(80_000));
        // From 2025-05-02: none for products of China or Hong Kong, wherever shipped from.
        assert_eq!(relief(1, "CN", &cn), None);
        assert_eq!(relief(1, "DE", &cn), None);
        assert_eq!(relief(1, "VN", &hk_and_vn), None);
        // Vietnamese goods shipped from China keep it until 2025-08-29.
        assert_eq!(relief(1, "CN", &vn), Some(80_000));
        // From 2025-08-29: no US rule at all.
        assert!(applicable_to(&versions[2].1, &consignment("US", "VN", &vn, Courier)).is_none());
        // Version 1 reads the withdrawal's origins as dispatch countries.
        assert_eq!(
            applicable(&versions[1].1, country("US"), country("DE"))
                .and_then(|r| r.duty_free_max_minor),
            Some(80_000)
        );
    }
}
