//! Reference data in force: the book of published tables, by table id and effective date.
//!
//! Tables arrive on the ledger as `ReferenceDataPublished` events signed by a customs
//! authority. A rule evaluates an event against the version of each table in force at its
//! block's time: the version with the latest `effective_from` not after the block time,
//! among those already published. The book records which event published each version, so
//! an auditor can see exactly which table a clearance was checked against.

use std::collections::BTreeMap;
use std::sync::Arc;

use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{
    CountryCode, DeMinimisTable, EventId, EventKind, HsNomenclature, ReferenceData, TariffTable,
};
use custody_ledger::store::{Store, StoreError};
use custody_ledger::Timestamp;

/// Table id of the HS nomenclature.
pub const HS_TABLE: &str = "hs-nomenclature";
/// Table id of the de minimis rules.
pub const DE_MINIMIS_TABLE: &str = "de-minimis";

/// Table id of a jurisdiction's tariff: `tariff/FR`.
pub fn tariff_table_id(jurisdiction: CountryCode) -> String {
    format!("tariff/{jurisdiction}")
}

/// One published version of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The event that published it.
    pub event: EventId,
    /// The data.
    pub data: Arc<ReferenceData>,
}

/// Every published version of every table. Cheap to clone (the data is shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceBook {
    tables: BTreeMap<String, BTreeMap<Timestamp, Version>>,
}

impl ReferenceBook {
    /// An empty book.
    pub fn new() -> ReferenceBook {
        ReferenceBook::default()
    }

    /// Records a published version. A second version with the same table id and date is
    /// refused by the state machine before it gets here, so one is never overwritten.
    pub fn insert(
        &mut self,
        table_id: &str,
        effective_from: Timestamp,
        event: EventId,
        data: ReferenceData,
    ) {
        let previous = self.tables.entry(table_id.to_owned()).or_default().insert(
            effective_from,
            Version {
                event,
                data: Arc::new(data),
            },
        );
        assert!(previous.is_none(), "reference versions are never replaced");
    }

    /// Records a committed `ReferenceDataPublished` event; other events are ignored.
    pub fn learn(&mut self, event: &EncodedEvent) {
        if let EventKind::ReferenceDataPublished(p) = &event.event().event.kind {
            self.insert(&p.table_id, p.effective_from, event.id(), p.data.clone());
        }
    }

    /// Loads every published version from a store.
    pub fn load<S: Store + ?Sized>(store: &S) -> Result<ReferenceBook, StoreError> {
        let mut book = ReferenceBook::new();
        for (_, _, id) in store.reference_entries()? {
            let stored = store.event(&id)?.ok_or_else(|| StoreError::Corrupt {
                record: format!("reference event {id}"),
                message: "indexed but missing".into(),
            })?;
            book.learn(&stored.event);
        }
        Ok(book)
    }

    /// The version of a table in force at `at`.
    pub fn in_force(&self, table_id: &str, at: Timestamp) -> Option<&Version> {
        self.tables
            .get(table_id)?
            .range(..=at)
            .next_back()
            .map(|(_, version)| version)
    }

    /// The version of a table in force at `at`, with its effective date.
    pub fn in_force_dated(&self, table_id: &str, at: Timestamp) -> Option<(Timestamp, &Version)> {
        self.tables
            .get(table_id)?
            .range(..=at)
            .next_back()
            .map(|(from, version)| (*from, version))
    }

    /// The HS nomenclature in force.
    pub fn nomenclature(&self, at: Timestamp) -> Option<&HsNomenclature> {
        match self.in_force(HS_TABLE, at).map(|v| v.data.as_ref()) {
            Some(ReferenceData::HsNomenclature(n)) => Some(n),
            _ => None,
        }
    }

    /// A jurisdiction's tariff in force.
    pub fn tariff(&self, jurisdiction: CountryCode, at: Timestamp) -> Option<&TariffTable> {
        match self
            .in_force(&tariff_table_id(jurisdiction), at)
            .map(|v| v.data.as_ref())
        {
            Some(ReferenceData::Tariff(t)) => Some(t),
            _ => None,
        }
    }

    /// The de minimis rules in force.
    pub fn de_minimis(&self, at: Timestamp) -> Option<&DeMinimisTable> {
        match self.in_force(DE_MINIMIS_TABLE, at).map(|v| v.data.as_ref()) {
            Some(ReferenceData::DeMinimis(d)) => Some(d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::Digest;

    fn nomenclature(codes: &[&str]) -> ReferenceData {
        ReferenceData::HsNomenclature(HsNomenclature {
            edition: "test".into(),
            subheadings: codes.iter().map(|c| c.to_string()).collect(),
        })
    }

    #[test]
    fn the_latest_version_not_after_the_time_is_in_force() {
        let mut book = ReferenceBook::new();
        book.insert(
            HS_TABLE,
            Timestamp(100),
            Digest::sha256(b"a"),
            nomenclature(&["010121"]),
        );
        book.insert(
            HS_TABLE,
            Timestamp(200),
            Digest::sha256(b"b"),
            nomenclature(&["010129"]),
        );
        assert!(book.nomenclature(Timestamp(99)).is_none());
        let at = |t| {
            book.nomenclature(Timestamp(t))
                .map(|n| n.subheadings[0].clone())
        };
        assert_eq!(at(100).as_deref(), Some("010121"));
        assert_eq!(at(199).as_deref(), Some("010121"));
        assert_eq!(at(200).as_deref(), Some("010129"));
        assert_eq!(
            book.in_force(HS_TABLE, Timestamp(150)).map(|v| v.event),
            Some(Digest::sha256(b"a"))
        );
        // A table of another kind under the same id is not mistaken for a nomenclature.
        assert!(book
            .tariff(CountryCode::parse("QX").expect("QX"), Timestamp(300))
            .is_none());
    }
}
