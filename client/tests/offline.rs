//! Offline verification through the files an auditor holds: a bundle and a genesis.

mod common;

use custody_client::verify::{
    read_bundle, read_capped, read_genesis, verify_bundle, verify_extension, FileError,
};
use custody_ledger::bundle::checkpoint_at;
use custody_ledger::model::EventId;
use custody_ledger::store::Store;
use custody_ledger::testkit::TestNet;

fn write_json(
    dir: &tempfile::TempDir,
    name: &str,
    value: &impl serde::Serialize,
) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write");
    path
}

#[test]
fn a_bundle_read_from_a_file_verifies_against_the_genesis_file() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle_path = write_json(&dir, "bundle.json", &common::bundle_of(&net, &store, "B-A"));
    let genesis_path = write_json(&dir, "genesis.json", &net.genesis);

    let genesis = read_genesis(&genesis_path).expect("genesis");
    assert_eq!(genesis.hash(), net.genesis_hash());
    let bundle = read_bundle(&bundle_path).expect("bundle");
    let verified = verify_bundle(&bundle, &genesis).expect("valid");
    let expected: Vec<EventId> = net.lifecycle("B-A").iter().map(|e| e.id()).collect();
    let got: Vec<EventId> = verified.events.iter().map(|e| e.id()).collect();
    assert_eq!(got, expected);
    assert_eq!(verified.height, 2);
    assert_eq!(verified.log_size, 22);
}

#[test]
fn a_tampered_bundle_file_names_the_event_and_the_check() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bundle = common::bundle_of(&net, &store, "B-A");
    bundle.events[4]
        .shipment_prev
        .as_mut()
        .expect("not the first")
        .0[7] ^= 0x10;
    let path = write_json(&dir, "bundle.json", &bundle);
    let error = verify_bundle(&read_bundle(&path).expect("well-formed"), &net.genesis)
        .expect_err("tampered");
    assert_eq!(error.check, "event.chain");
    assert_eq!(error.index, Some(4));
    assert_eq!(error.event, Some(bundle.events[4].event_id));
}

#[test]
fn checkpoints_of_one_ledger_extend_each_other() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let one = checkpoint_at(&store, 1).expect("store").expect("height 1");
    let two = checkpoint_at(&store, 2).expect("store").expect("height 2");
    let proof = store
        .consistency_proof(one.header.log_size, two.header.log_size)
        .expect("proof");
    verify_extension(&one, &two, &proof, &net.genesis).expect("consistent");
    let error = verify_extension(&one, &two, &proof[1..], &net.genesis).expect_err("short proof");
    assert_eq!(error.check, "log.consistency_proof");
}

#[test]
fn unreadable_oversized_and_malformed_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    assert!(matches!(read_bundle(&missing), Err(FileError::Io { .. })));

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"format\": 1").expect("write");
    let error = read_bundle(&garbage).expect_err("not a bundle");
    assert!(matches!(error, FileError::Invalid { .. }), "{error}");
    assert!(error.to_string().contains("garbage.json"), "{error}");
    assert!(error.to_string().contains("provenance bundle"), "{error}");

    let mut genesis = TestNet::new().genesis;
    genesis.admin_quorum = 0;
    let path = write_json(&dir, "genesis.json", &genesis);
    let error = read_genesis(&path).expect_err("unusable genesis");
    assert!(error.to_string().contains("admin_quorum"), "{error}");

    std::fs::write(&garbage, vec![b' '; 1_001]).expect("write");
    assert!(matches!(
        read_capped(&garbage, "test file", 1_000),
        Err(FileError::TooLarge {
            limit_bytes: 1_000,
            ..
        })
    ));
    assert_eq!(
        read_capped(&garbage, "test file", 1_001)
            .expect("fits")
            .len(),
        1_001
    );
}
