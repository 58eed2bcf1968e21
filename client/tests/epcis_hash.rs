//! `custody epcis hash FILE`: the real binary on a small hand-written EPCIS document.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The two events' hash IDs, as pinned in `epcis/tests/hash_vectors.rs` (vectors 1 and 3).
const FIRST: &str =
    "ni:///sha-256;a635c31e1abb86a6f6d9faf2186d41a8c437cc21d3246e4dfabaecbdcd2e9ef1?ver=CBV2.0";
const SECOND: &str =
    "ni:///sha-256;7eb41bd1592864ad8b1d95d51c1ee3b72f3c9cce8f17901d54b9e8add4ec4422?ver=CBV2.0";

const DOCUMENT: &str = r#"{
  "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
  "type": "EPCISDocument",
  "schemaVersion": "2.0",
  "creationDate": "2026-11-03T00:00:00Z",
  "epcisBody": {
    "eventList": [
      {
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sscc:0614141.1123456789"],
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:departing",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00000.0"}
      },
      {
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T14:45:10.5+05:30",
        "eventTimeZoneOffset": "+05:30",
        "epcList": ["https://id.gs1.org/00/106141411234567897"],
        "quantityList": [{"epcClass": "https://brand.example/01/4006381333931?linkType=all", "quantity": 12.50, "uom": "KGM"}],
        "action": "OBSERVE",
        "bizStep": "arriving",
        "disposition": "in_progress",
        "bizLocation": {"id": "urn:custody:locode:INBOM"}
      }
    ]
  }
}"#;

fn custody(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env("CUSTODY_NODE", "http://127.0.0.1:1")
        .output()
        .expect("run custody")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn prints_one_hash_id_per_event_in_document_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "document.jsonld", DOCUMENT);
    let output = custody(&["epcis", "hash", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("{FIRST}\n{SECOND}\n"));

    let output = custody(&["epcis", "hash", file.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let ids: Vec<String> = serde_json::from_slice(&output.stdout).expect("a JSON array");
    assert_eq!(ids, [FIRST, SECOND]);
}

#[test]
fn a_query_document_hashes_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut document: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    let events = document["epcisBody"]["eventList"].take();
    document["type"] = "EPCISQueryDocument".into();
    document["epcisBody"] = serde_json::json!({
        "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}
    });
    let file = write(dir.path(), "query.jsonld", &document.to_string());
    let output = custody(&["epcis", "hash", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("{FIRST}\n{SECOND}\n"));
}

#[test]
fn errors_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_time = DOCUMENT.replace("2026-11-02T08:00:00Z", "yesterday");
    let file = write(dir.path(), "bad.jsonld", &bad_time);
    let output = custody(&["epcis", "hash", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("epcisBody.eventList[0].eventTime"),
        "{stderr}"
    );

    let file = write(dir.path(), "not-json.jsonld", "{ nope");
    let output = custody(&["epcis", "hash", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("not a valid EPCIS document"));

    let file = write(dir.path(), "other.json", r#"{"type": "Bundle"}"#);
    let output = custody(&["epcis", "hash", file.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON error");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("not an EPCIS document"));

    let missing = dir.path().join("missing.jsonld");
    let output = custody(&["epcis", "hash", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}
