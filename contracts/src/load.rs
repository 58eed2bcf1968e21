//! Loading reference data from files into `ReferenceDataPublished` events.
//!
//! A customs authority publishes tables by signing these events; this module turns the
//! files it starts from — the HS nomenclature CSV, tariff JSON, the de minimis facts in
//! [`crate::regimes`] — into their payloads, validated the way the rules will read them.

use custody_ledger::cause::Cause;
use custody_ledger::model::{HsNomenclature, ReferenceData, ReferenceDataPublished, TariffTable};
use custody_ledger::Timestamp;

use crate::hs::{self, CsvError};
use crate::reference::{tariff_table_id, DE_MINIMIS_TABLE, HS_TABLE};
use crate::regimes;

/// Largest JSON document accepted.
pub const JSON_SIZE_BYTES_MAX: usize = 1024 * 1024;

/// Why a file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The HS CSV is malformed.
    #[error("HS nomenclature CSV: {0}")]
    Csv(#[from] CsvError),
    /// The JSON is malformed or has the wrong shape.
    #[error("JSON: {0}")]
    Json(#[source] Cause),
    /// The document is larger than [`JSON_SIZE_BYTES_MAX`].
    #[error("JSON document of {size_bytes} bytes exceeds {size_bytes_max} bytes")]
    TooLarge {
        /// Its size.
        size_bytes: usize,
        /// The limit.
        size_bytes_max: usize,
    },
}

/// The HS nomenclature in a CSV (`hscode,level,parent,section`), in force from a date.
pub fn hs_nomenclature(
    edition: &str,
    csv: &str,
    effective_from: Timestamp,
) -> Result<ReferenceDataPublished, LoadError> {
    let nomenclature: HsNomenclature = hs::nomenclature_from_csv(edition, csv)?;
    Ok(ReferenceDataPublished {
        table_id: HS_TABLE.into(),
        effective_from,
        data: ReferenceData::HsNomenclature(nomenclature),
    })
}

/// A tariff from its JSON form, in force from a date.
pub fn tariff_from_json(
    json: &str,
    effective_from: Timestamp,
) -> Result<ReferenceDataPublished, LoadError> {
    if json.len() > JSON_SIZE_BYTES_MAX {
        return Err(LoadError::TooLarge {
            size_bytes: json.len(),
            size_bytes_max: JSON_SIZE_BYTES_MAX,
        });
    }
    let table: TariffTable =
        serde_json::from_str(json).map_err(|e| LoadError::Json(Cause::new(e)))?;
    Ok(ReferenceDataPublished {
        table_id: tariff_table_id(table.jurisdiction),
        effective_from,
        data: ReferenceData::Tariff(table),
    })
}

/// Every version of the de minimis table, oldest first.
pub fn de_minimis_events() -> Vec<ReferenceDataPublished> {
    regimes::de_minimis_versions()
        .into_iter()
        .map(|(effective_from, table)| ReferenceDataPublished {
            table_id: DE_MINIMIS_TABLE.into(),
            effective_from,
            data: ReferenceData::DeMinimis(table),
        })
        .collect()
}

/// The project's sample data: the demo's HS subheadings and the tariffs of the fictional
/// jurisdictions QX and QY (see `contracts/data/README.md`), in force from `effective_from`.
pub fn sample_tables(effective_from: Timestamp) -> Vec<ReferenceDataPublished> {
    let mut tables = vec![hs_nomenclature(
        "HS2022-demo",
        include_str!("../data/demo-hs-codes.csv"),
        effective_from,
    )
    .expect("the demo nomenclature is valid")];
    for json in [
        include_str!("../data/sample-tariff-QX.json"),
        include_str!("../data/sample-tariff-QY.json"),
    ] {
        tables.push(tariff_from_json(json, effective_from).expect("the sample tariffs are valid"));
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_tables_load() {
        let tables = sample_tables(Timestamp(0));
        assert_eq!(tables.len(), 3);
        assert_eq!(tables[1].table_id, "tariff/QX");
        assert_eq!(tables[2].table_id, "tariff/QY");
        match &tables[0].data {
            ReferenceData::HsNomenclature(n) => assert_eq!(n.subheadings.len(), 7),
            other => panic!("expected a nomenclature, got {other:?}"),
        }
    }

    #[test]
    fn bad_json_is_refused() {
        assert!(matches!(
            tariff_from_json("{", Timestamp(0)),
            Err(LoadError::Json(_))
        ));
        assert!(matches!(
            tariff_from_json(
                r#"{"jurisdiction":"qx","currency":"EUR","vat_rate_ppm":0,"lines":[]}"#,
                Timestamp(0)
            ),
            Err(LoadError::Json(_))
        ));
        let big = " ".repeat(JSON_SIZE_BYTES_MAX + 1);
        assert!(matches!(
            tariff_from_json(&big, Timestamp(0)),
            Err(LoadError::TooLarge { .. })
        ));
    }

    #[test]
    fn de_minimis_versions_become_events() {
        let events = de_minimis_events();
        assert_eq!(events.len(), 4);
        assert!(events.iter().all(|e| e.table_id == DE_MINIMIS_TABLE));
    }
}
