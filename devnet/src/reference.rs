//! The reference data a devnet runs on, published by the customs authority through the SDK,
//! and the [`ReferenceBook`] a broker's software builds from what the node serves.
//!
//! Published tables:
//!
//! - the demo HS nomenclature and the tariffs of the fictional sample jurisdictions QX and QY
//!   (`custody_contracts::load::sample_tables`, SAMPLE DATA), in force from 2025-01-01;
//! - every version of the real low-value (de minimis) regimes with their sources
//!   (`custody_contracts::load::de_minimis_events`);
//! - a French tariff holding only real rates, each with its source below.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail};
use custody_client::build::Signer;
use custody_client::{Client, ClientError};
use custody_contracts::{load, ReferenceBook};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{EventKind, ReferenceDataPublished, Role};
use custody_ledger::Timestamp;

use crate::setup;
use crate::submit;

/// France's tariff, restricted to the lines the demo and the benchmark need, all facts:
///
/// - Customs duty is the EU's Common Customs Tariff (Council Regulation (EEC) No 2658/87,
///   Annex I, the Combined Nomenclature as in force from 1 January 2025): heading 6109
///   (T-shirts, singlets and other vests, knitted or crocheted) has a conventional
///   third-country duty of 12 % for cotton (6109 10 00) and for other textile materials
///   (6109 90); heading 8471 (automatic data-processing machines, such as portable computers
///   of 8471 30 00) is duty-free under the WTO Information Technology Agreement.
/// - Import VAT at the French standard rate of 20 % (Code général des impôts, article 278,
///   in force at that rate since 1 January 2014).
///
/// Any other French rate is absent, so a declaration of other goods is refused with
/// `duty.no_rate` rather than assessed at an invented rate.
pub const FR_TARIFF: &str = r#"{
  "jurisdiction": "FR",
  "currency": "EUR",
  "vat_rate_ppm": 200000,
  "lines": [
    { "hs_prefix": "6109", "rate": { "ad_valorem": { "rate_ppm": 120000 } } },
    { "hs_prefix": "8471", "rate": { "ad_valorem": { "rate_ppm": 0 } } }
  ]
}"#;

/// When the sample tables and the French tariff take effect: 2025-01-01, the date of the
/// Combined Nomenclature the French rates are taken from.
pub fn tables_effective_from() -> Timestamp {
    Timestamp::from_date(2025, 1, 1).expect("a real date")
}

/// Every table the devnet publishes, in publication order.
pub fn tables() -> Vec<ReferenceDataPublished> {
    let from = tables_effective_from();
    let mut tables = load::sample_tables(from);
    tables.extend(load::de_minimis_events());
    tables.push(load::tariff_from_json(FR_TARIFF, from).expect("the French tariff is valid"));
    tables
}

/// One line about a table, for people.
pub fn describe(table: &ReferenceDataPublished) -> String {
    use custody_ledger::model::ReferenceData;
    let date = &table.effective_from.to_rfc3339()[..10];
    match &table.data {
        ReferenceData::HsNomenclature(n) => format!(
            "HS nomenclature {} ({} subheadings) in force from {date}",
            n.edition,
            n.subheadings.len()
        ),
        ReferenceData::Tariff(t) if ["QX", "QY"].contains(&t.jurisdiction.as_str()) => format!(
            "SAMPLE tariff of the fictional jurisdiction {} ({} lines, tax {}) in force from {date}",
            t.jurisdiction,
            t.lines.len(),
            percent(t.vat_rate_ppm)
        ),
        ReferenceData::Tariff(t) => format!(
            "{} tariff ({} lines, VAT {}) in force from {date}",
            t.jurisdiction,
            t.lines.len(),
            percent(t.vat_rate_ppm)
        ),
        ReferenceData::DeMinimis(d) => format!(
            "low-value regimes ({} rules) in force from {date}",
            d.rules.len()
        ),
    }
}

/// A rate in parts per million as a percentage, `200000` → `20 %`, `65000` → `6.5 %`.
pub fn percent(ppm: u32) -> String {
    let hundredths_of_percent = ppm / 100;
    let (whole, hundredths) = (hundredths_of_percent / 100, hundredths_of_percent % 100);
    match hundredths {
        0 => format!("{whole} %"),
        h if h % 10 == 0 => format!("{whole}.{} %", h / 10),
        h => format!("{whole}.{h:02} %"),
    }
}

/// The `ReferenceDataPublished` events the node holds, from every customs authority.
async fn published(client: &Client) -> anyhow::Result<Vec<EncodedEvent>> {
    let members = client.members().await?;
    let mut events = Vec::new();
    for member in members
        .iter()
        .filter(|m| m.roles.contains(&Role::CustomsAuthority))
    {
        for key in std::iter::once(&member.key).chain(&member.retired_keys) {
            let mut after: Option<String> = None;
            for _ in 0..custody_client::PAGES_MAX {
                let page = client.member_events(key, after.as_deref(), None).await?;
                for entry in page.items {
                    let event = EncodedEvent::new(entry.event);
                    if matches!(
                        event.event().event.kind,
                        EventKind::ReferenceDataPublished(_)
                    ) {
                        events.push(event);
                    }
                }
                match page.next {
                    Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                    _ => break,
                }
            }
        }
    }
    Ok(events)
}

/// The reference book of what the node has published, as the rules will read it.
pub async fn load_book(client: &Client) -> anyhow::Result<ReferenceBook> {
    let mut book = ReferenceBook::new();
    let mut seen = BTreeSet::new();
    for event in published(client).await? {
        if seen.insert(event.id()) {
            book.learn(&event);
        }
    }
    Ok(book)
}

/// The reference book of what the node has published, once it has committed `height` (so a
/// node other than the publishing one has seen the publications).
pub async fn load_book_at(client: &Client, height: u64) -> anyhow::Result<ReferenceBook> {
    submit::wait_height(client, height, Duration::from_millis(CATCH_UP_TIMEOUT_MS)).await?;
    load_book(client).await
}

/// How long another node may take to reach the height of the last publication.
const CATCH_UP_TIMEOUT_MS: u64 = 60_000;

/// Publishes, signed by `authority` through `client`, every table of [`tables`] the node does
/// not hold yet, each waiting for its commit. `report` hears about each table: its
/// description and the committing height (`None`: it was already published). Returns a
/// height at which every table is committed.
pub async fn ensure_published(
    client: &Client,
    authority: &Signer,
    mut report: impl FnMut(&ReferenceDataPublished, Option<u64>),
) -> anyhow::Result<u64> {
    let held: BTreeSet<(String, Timestamp)> = published(client)
        .await?
        .iter()
        .filter_map(|e| match &e.event().event.kind {
            EventKind::ReferenceDataPublished(p) => Some((p.table_id.clone(), p.effective_from)),
            _ => None,
        })
        .collect();
    for table in tables() {
        if held.contains(&(table.table_id.clone(), table.effective_from)) {
            report(&table, None);
            continue;
        }
        let event = authority.publish_reference(table.clone(), setup::now());
        match submit::committed(client, &event).await {
            Ok(height) => report(&table, Some(height)),
            Err(e) => match e.downcast_ref::<ClientError>().and_then(ClientError::code) {
                Some("reference.duplicate") | Some("event.duplicate") => report(&table, None),
                _ => bail!("publishing {}: {e}", describe(&table)),
            },
        }
    }
    let height = client.status().await?.height;
    let book = load_book(client).await?;
    if book.de_minimis(setup::now()).is_none() || book.nomenclature(setup::now()).is_none() {
        return Err(anyhow!(
            "the reference data is published but not in force; is the system clock before 2025?"
        ));
    }
    Ok(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_load_and_percentages_read_well() {
        let tables = tables();
        assert!(tables.iter().any(|t| t.table_id == "tariff/FR"));
        assert!(tables.iter().any(|t| t.table_id == "tariff/QX"));
        assert!(tables.iter().any(|t| t.table_id == "de-minimis"));
        let mut keys: Vec<_> = tables
            .iter()
            .map(|t| (t.table_id.clone(), t.effective_from))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), tables.len(), "no table version twice");
        assert_eq!(percent(200_000), "20 %");
        assert_eq!(percent(65_000), "6.5 %");
        assert_eq!(percent(120_000), "12 %");
        assert_eq!(percent(1_250), "0.12 %");
        assert!(describe(&tables[1]).contains("SAMPLE"));
    }
}
