//! Tracking scans: the vocabulary, places, parcels and sensor readings of a
//! `TrackingScanRecorded`.
//!
//! A scan says what happened to the goods (a CBV 2.0 bizStep), the state it left them in (a
//! CBV 2.0 disposition), where it was read (a UN/LOCODE, and the read point's GLN when there
//! is one), where the goods are now (a UN/LOCODE), which parcels were seen (SSCCs) and what
//! the sensors read. The vocabulary terms are those of the GS1 Core Business Vocabulary 2.0,
//! kept here as code: every validator must agree on them, so they are never read from a file
//! or the network. A term of another vocabulary is written as an absolute URI (`http`,
//! `https` or `urn`), as EPCIS allows in every vocabulary slot; the CBV's own terms are
//! written by their short names only, so each term has one spelling on the ledger.
//!
//! Whether the parcels belong to the shipment, and who may scan in which status, is the
//! ledger's state machine's business (`scan.unknown_parcel`, `scan.not_allowed`).

use std::collections::BTreeSet;

use custody_ledger::model::{SensorReading, TrackingScanRecorded};
use custody_ledger::reject::{Code, Rejection};

use crate::{documents, identifiers};

/// Stable codes of this module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// `biz_step` is neither a CBV 2.0 bizStep short name nor an absolute URI of another
    /// vocabulary.
    pub const BIZ_STEP: Code = ContractCode::ScanBizStep.code();
    /// `disposition` is neither a CBV 2.0 disposition short name nor an absolute URI of
    /// another vocabulary.
    pub const DISPOSITION: Code = ContractCode::ScanDisposition.code();
    /// A sensor reading's measurement type or unit is not in form.
    pub const SENSOR_READING: Code = ContractCode::ScanSensorReading.code();
}

pub use custody_ledger::cbv::{CBV_BIZ_STEPS, CBV_DISPOSITIONS};

/// URI prefixes of the CBV itself (CBV 2.0 web URIs, the older `ns.gs1.org` ones and the
/// EPCIS 1.x URNs), compared in lower case. Its terms go on the ledger by short name.
const CBV_URI_PREFIXES: [&str; 5] = [
    "https://ref.gs1.org/cbv/",
    "http://ref.gs1.org/cbv/",
    "https://ns.gs1.org/cbv/",
    "http://ns.gs1.org/cbv/",
    "urn:epcglobal:cbv:",
];

/// At most this many characters of a bad value are quoted in a message.
const SHOWN_CHARS_MAX: usize = 60;

fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS_MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN_CHARS_MAX).collect();
        format!("{head:?}…")
    }
}

/// Whether `b` may stand in a URI (RFC 3986: unreserved, reserved and `%`).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Why `value` is not an absolute `http`, `https` or `urn` URI, or `None` if it is one.
///
/// The check is of form, not of existence: ASCII characters a URI may contain, `%` followed
/// by two hex digits, the scheme (case-insensitive), for `http(s)` an authority of host name
/// characters with an optional port, for `urn` a namespace identifier of 2 to 32 letters,
/// digits and hyphens (RFC 8141) and a non-empty namespace-specific string.
pub fn uri_problem(value: &str) -> Option<String> {
    if let Some(bad) = value.bytes().find(|b| !is_uri_byte(*b)) {
        return Some(if bad.is_ascii() {
            format!("contains {:?}, which a URI cannot", char::from(bad))
        } else {
            "contains a character outside ASCII, which a URI must percent-encode".into()
        });
    }
    let bytes = value.as_bytes();
    for (i, _) in value.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Some("has a % not followed by two hex digits".into());
        }
    }
    let Some((scheme, rest)) = value.split_once(':') else {
        return Some("has no scheme; expected http://, https:// or urn:".into());
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let Some(after) = rest.strip_prefix("//") else {
                return Some(format!("has no // after {scheme}:"));
            };
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !host_ok {
                return Some(format!(
                    "has the authority {authority:?}; expected a host name (example.com)"
                ));
            }
            if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
                return Some(format!("has a port that is not a number in {authority:?}"));
            }
            None
        }
        "urn" => {
            let (nid, nss) = rest.split_once(':').unwrap_or((rest, ""));
            let nid_ok = (2..=32).contains(&nid.len())
                && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !nid.starts_with('-')
                && !nid.ends_with('-');
            if !nid_ok {
                return Some(format!(
                    "has the URN namespace {nid:?}; expected 2 to 32 letters, digits and hyphens"
                ));
            }
            if nss.is_empty() {
                return Some(format!("names nothing in the URN namespace {nid}"));
            }
            None
        }
        _ => Some(format!(
            "has the scheme {scheme:?}; expected http, https or urn"
        )),
    }
}

/// The CBV short name a CBV URI stands for, if `value` is one (`…/cbv/BizStep-departing`,
/// `urn:epcglobal:cbv:bizstep:departing` → `departing`).
fn cbv_uri_term(value: &str) -> Option<&str> {
    let lower = value.to_ascii_lowercase();
    let prefix = CBV_URI_PREFIXES.iter().find(|p| lower.starts_with(*p))?;
    let rest = &value[prefix.len()..];
    Some(
        rest.rsplit_once('-')
            .map(|(_, term)| term)
            .or_else(|| rest.rsplit_once(':').map(|(_, term)| term))
            .unwrap_or(rest),
    )
}

/// Checks a vocabulary value: a term of `terms` by its short name, or an absolute URI of
/// another vocabulary. `other` is the other CBV list, to point out swapped fields.
fn check_term(
    code: Code,
    field: &str,
    value: &str,
    what: &str,
    terms: &[&str],
    other: (&str, &[&str]),
) -> Result<(), Rejection> {
    if terms.binary_search(&value).is_ok() {
        return Ok(());
    }
    let fail = |reason: String| {
        Err(Rejection::new(
            code,
            field,
            format!("{what} {} {reason}.", shown(value)),
        ))
    };
    if let Some(term) = cbv_uri_term(value) {
        let hint = if terms.contains(&term) {
            format!("; write the short name {term:?}")
        } else {
            String::new()
        };
        return fail(format!(
            "is a URI of the CBV itself; CBV terms are written by their short names{hint}"
        ));
    }
    let looks_like_uri = value.contains(':');
    if !looks_like_uri {
        let lower = value.to_ascii_lowercase();
        let hint = if terms.contains(&lower.as_str()) {
            format!("; CBV short names are lower case: {lower:?}")
        } else if other.1.contains(&value) {
            format!("; it is a CBV {}, not a {what}", other.0)
        } else {
            String::new()
        };
        return fail(format!(
            "is not a CBV 2.0 {what} short name (such as {:?}) nor an absolute http, https or \
             urn URI of another vocabulary{hint}",
            terms.first().copied().unwrap_or_default()
        ));
    }
    match uri_problem(value) {
        None => Ok(()),
        Some(problem) => fail(format!(
            "is neither a CBV 2.0 {what} short name nor an absolute URI: it {problem}"
        )),
    }
}

/// Checks a bizStep: a CBV 2.0 short name ([`CBV_BIZ_STEPS`]) or an absolute URI of
/// another vocabulary.
pub fn check_biz_step(field: &str, value: &str) -> Result<(), Rejection> {
    check_term(
        codes::BIZ_STEP,
        field,
        value,
        "bizStep",
        &CBV_BIZ_STEPS,
        ("disposition", &CBV_DISPOSITIONS),
    )
}

/// Checks a disposition: a CBV 2.0 short name ([`CBV_DISPOSITIONS`]) or an absolute URI of
/// another vocabulary.
pub fn check_disposition(field: &str, value: &str) -> Result<(), Rejection> {
    check_term(
        codes::DISPOSITION,
        field,
        value,
        "disposition",
        &CBV_DISPOSITIONS,
        ("bizStep", &CBV_BIZ_STEPS),
    )
}

/// Checks a sensor reading's form: the measurement type is a name of ASCII letters and
/// digits starting with a capital letter, as the EPCIS measurement types are (`Temperature`,
/// `RelativeHumidity`), or an absolute URI; the unit is a UN/CEFACT Recommendation 20 code in
/// form: 2 or 3 capital letters and digits (`CEL`, `P1`, `LUX`). The limits are checked for
/// order by the shape check; a value outside them is an excursion, which a scan may record.
pub fn check_sensor_reading(field: &str, reading: &SensorReading) -> Result<(), Rejection> {
    let kind = &reading.kind;
    let is_name = kind.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
        && kind.bytes().all(|b| b.is_ascii_alphanumeric());
    if !is_name {
        if let Some(problem) = uri_problem(kind) {
            return Err(Rejection::new(
                codes::SENSOR_READING,
                format!("{field}.kind"),
                format!(
                    "Measurement type {} is neither a type name (Temperature, \
                     RelativeHumidity) nor an absolute URI: it {problem}.",
                    shown(kind)
                ),
            ));
        }
    }
    let unit = &reading.unit;
    let unit_ok = (2..=3).contains(&unit.len())
        && unit
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !unit_ok {
        return Err(Rejection::new(
            codes::SENSOR_READING,
            format!("{field}.unit"),
            format!(
                "Unit {} is not a UN/CEFACT Recommendation 20 code: expected 2 or 3 capital \
                 letters or digits, such as CEL (degree Celsius), P1 (percent) or LUX.",
                shown(unit)
            ),
        ));
    }
    Ok(())
}

/// A tracking scan's parcels (each a valid SSCC, none twice), vocabulary, places, GLN and
/// sensor readings.
pub fn check_scan(e: &TrackingScanRecorded, path: &str) -> Result<(), Rejection> {
    let mut seen = BTreeSet::new();
    for (i, sscc) in e.parcels.iter().enumerate() {
        let field = format!("{path}.parcels[{i}]");
        identifiers::check_sscc(&field, sscc)?;
        if !seen.insert(sscc.as_str()) {
            return Err(Rejection::new(
                documents::codes::PARCEL_DUPLICATE,
                field,
                format!("SSCC {sscc} is listed twice"),
            ));
        }
    }
    check_biz_step(&format!("{path}.biz_step"), &e.biz_step)?;
    check_disposition(&format!("{path}.disposition"), &e.disposition)?;
    identifiers::check_locode(&format!("{path}.read_point"), &e.read_point)?;
    if let Some(gln) = &e.read_point_gln {
        identifiers::check_gln(&format!("{path}.read_point_gln"), gln)?;
    }
    identifiers::check_locode(&format!("{path}.biz_location"), &e.biz_location)?;
    for (i, reading) in e.sensor_readings.iter().enumerate() {
        check_sensor_reading(&format!("{path}.sensor_readings[{i}]"), reading)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_term_lists_are_sorted_and_unique() {
        for list in [&CBV_BIZ_STEPS[..], &CBV_DISPOSITIONS[..]] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
    }

    #[test]
    fn short_names_and_uris_of_other_vocabularies_are_accepted() {
        for step in ["departing", "arriving", "holding", "void_shipping"] {
            assert_eq!(check_biz_step("f", step), Ok(()));
        }
        for disposition in ["in_transit", "in_progress", "damaged", "returned"] {
            assert_eq!(check_disposition("f", disposition), Ok(()));
        }
        for uri in [
            "https://example.com/vocab/out_for_delivery",
            "http://carrier.example:8080/steps#failed-attempt",
            "HTTPS://Example.COM/x",
            "urn:example:custody:delivery-attempt-failed",
            "urn:custody:step:out%20for%20delivery",
        ] {
            assert_eq!(check_biz_step("f", uri), Ok(()), "{uri}");
            assert_eq!(check_disposition("f", uri), Ok(()), "{uri}");
        }
    }

    #[test]
    fn unknown_terms_and_bad_uris_are_refused_with_a_reason() {
        let refused = |value: &str, needle: &str| {
            let r = check_biz_step("f", value).expect_err(value);
            assert_eq!(r.code, codes::BIZ_STEP);
            assert!(r.message.contains(needle), "{value}: {}", r.message);
        };
        refused("flying", "not a CBV 2.0 bizStep");
        refused("Departing", "lower case: \"departing\"");
        refused("in_transit", "it is a CBV disposition");
        refused(
            "https://ref.gs1.org/cbv/BizStep-departing",
            "short name \"departing\"",
        );
        refused(
            "urn:epcglobal:cbv:bizstep:arriving",
            "short name \"arriving\"",
        );
        refused("ftp://example.com/x", "scheme \"ftp\"");
        refused("mailto:x@example.com", "scheme");
        refused("https:example.com", "no //");
        refused("https:///path", "authority");
        refused("https://exa mple.com", "' '");
        refused("https://example.com:80a/", "port");
        refused("urn:x:y", "URN namespace");
        refused("urn:example", "names nothing");
        refused("https://example.com/%zz", "%");
        refused("https://example.com/é", "outside ASCII");
        let r = check_disposition("f", "departing").expect_err("a bizStep");
        assert_eq!(r.code, codes::DISPOSITION);
        assert!(r.message.contains("it is a CBV bizStep"), "{}", r.message);
    }

    #[test]
    fn sensor_readings_need_a_type_name_or_uri_and_a_unit_code() {
        let reading = |kind: &str, unit: &str| SensorReading {
            kind: kind.into(),
            unit: unit.into(),
            value_milli: -18_000,
            min_milli: None,
            max_milli: Some(-15_000),
        };
        for (kind, unit) in [
            ("Temperature", "CEL"),
            ("RelativeHumidity", "P1"),
            ("Shock", "MSK"),
            ("https://example.com/measurement/tilt", "DD"),
        ] {
            assert_eq!(check_sensor_reading("f", &reading(kind, unit)), Ok(()));
        }
        for (kind, unit, field) in [
            ("temperature", "CEL", "f.kind"),
            ("Temperature C", "CEL", "f.kind"),
            ("Temperature", "cel", "f.unit"),
            ("Temperature", "°C", "f.unit"),
            ("Temperature", "C", "f.unit"),
            ("Temperature", "CELS", "f.unit"),
        ] {
            let r = check_sensor_reading("f", &reading(kind, unit)).expect_err(kind);
            assert_eq!((r.code, r.field.as_str()), (codes::SENSOR_READING, field));
        }
    }

    #[test]
    fn uri_checks_never_panic_on_odd_input() {
        for value in [
            "", ":", "%", "a%", "%4", "urn:", "https://", "http://:", "é:", "::::",
        ] {
            let _ = uri_problem(value);
            let _ = check_biz_step("f", value);
            let _ = cbv_uri_term(value);
        }
    }
}
