//! The CBV 2.0 term lists compiled into the tracking module are exactly GS1's: every term of
//! the bizStep and disposition JSON-LD contexts in `../shared/data/epcis` (GS1's published
//! `cbv-context-*.jsonld`), and nothing else. The files are read here, never copied into the
//! tree; validators use only the lists in code.

use std::collections::BTreeSet;
use std::path::PathBuf;

use custody_contracts::tracking::{CBV_BIZ_STEPS, CBV_DISPOSITIONS};

fn epcis_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/epcis")
}

/// The short names a CBV context defines, with the URI each expands to: every key of its
/// `@context` except the JSON-LD keywords and the `cbv` prefix.
fn context_terms(file: &str) -> Vec<(String, String)> {
    let path = epcis_data().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; the shared EPCIS data (GS1's CBV contexts) must sit \
             beside the workspace",
            path.display()
        )
    });
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
    let context = json["@context"]
        .as_object()
        .unwrap_or_else(|| panic!("{file} has no @context object"));
    context
        .iter()
        .filter(|(key, _)| !key.starts_with('@') && key.as_str() != "cbv")
        .map(|(key, value)| {
            let uri = value
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {key} does not map to a string"));
            (key.clone(), uri.to_owned())
        })
        .collect()
}

fn check(file: &str, uri_prefix: &str, ours: &[&str]) {
    let terms = context_terms(file);
    assert!(terms.len() > 20, "{file} lists only {} terms", terms.len());
    for (term, uri) in &terms {
        assert_eq!(
            uri,
            &format!("{uri_prefix}{term}"),
            "{file}: {term} expands unexpectedly"
        );
    }
    let theirs: BTreeSet<&str> = terms.iter().map(|(t, _)| t.as_str()).collect();
    let ours: BTreeSet<&str> = ours.iter().copied().collect();
    let missing: Vec<_> = theirs.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&theirs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{file}: terms missing from the code: {missing:?}; terms in the code GS1 does not \
         define: {extra:?}"
    );
}

#[test]
fn the_biz_step_list_is_the_cbv_2_0_vocabulary() {
    check("cbv-context-bizstep.jsonld", "cbv:BizStep-", &CBV_BIZ_STEPS);
}

#[test]
fn the_disposition_list_is_the_cbv_2_0_vocabulary() {
    check(
        "cbv-context-disposition.jsonld",
        "cbv:Disp-",
        &CBV_DISPOSITIONS,
    );
}
