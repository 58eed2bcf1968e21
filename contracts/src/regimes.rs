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
//! Not modelled: the United States' earlier suspension for goods from China and Hong Kong
//! (2 May 2025, Executive Order 14256), which would need an exclusion list of origins, and
//! Canada's postal (as opposed to courier) thresholds: every Canadian import here is treated
//! as a courier shipment.

use custody_ledger::model::{CountryCode, CurrencyCode, DeMinimisRule, DeMinimisTable};
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
        source: "AU: A$1,000 low value threshold; GST on low value imported goods at sale from 2018-07-01 (GST Act 1999 Div 84; Treasury Laws Amendment (GST Low Value Goods) Act 2017)".into(),
    }
}

/// Canada, courier shipments from the United States or Mexico: under CUSMA, from 1 July
/// 2020, no duty up to C$150 and no taxes up to C$40 (Courier Imports Remission Order as
/// amended for CUSMA).
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
        source: "CA: courier shipments from US/MX, C$150 duty and C$40 tax thresholds from 2020-07-01 (CUSMA; Courier Imports Remission Order)".into(),
    }
}

/// Canada, every other origin: no duty or taxes up to C$20 (Courier Imports Remission Order).
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
        source:
            "CA: C$20 duty and tax threshold for other origins (Courier Imports Remission Order)"
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
        source: "US: US$800 under 19 U.S.C. 1321(a)(2)(C), until 2025-08-28".into(),
    }
}

/// The versions of the de minimis table, oldest first: (effective from, table).
///
/// - 2021-07-01: the EU's VAT reform; the state of every regime here on that date.
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

/// The rule of a table that applies to goods from `origin` declared in `jurisdiction`: the
/// first whose jurisdictions include it and whose origins are empty or include the origin.
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
        let ca = country("CA");
        let rule = applicable(&versions[0].1, ca, country("US")).expect("CUSMA rule");
        assert_eq!(rule.duty_free_max_minor, Some(15_000));
        let rule = applicable(&versions[0].1, ca, country("CN")).expect("general rule");
        assert_eq!(rule.duty_free_max_minor, Some(2_000));
        assert!(applicable(&versions[0].1, country("US"), country("CN")).is_some());
        assert!(applicable(&versions[1].1, country("US"), country("CN")).is_none());
        assert_eq!(
            applicable(&versions[1].1, country("FR"), country("CN"))
                .and_then(|r| r.flat_duty_per_category_minor),
            None
        );
        assert_eq!(
            applicable(&versions[2].1, country("FR"), country("CN"))
                .and_then(|r| r.flat_duty_per_category_minor),
            Some(300)
        );
        assert!(applicable(&versions[2].1, country("QX"), country("CN")).is_none());
    }
}
