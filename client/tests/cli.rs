//! The `custody` binary: `verify bundle` exit codes and messages, keys, and signing without a
//! node (`submit --dry-run`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custody_ledger::bundle::Bundle;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{EventKind, SignedEvent};
use custody_ledger::testkit::{TestNet, CHAIN_ID};

fn custody(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        // No node is needed by these commands; a closed port makes any attempt fail loudly.
        .env("CUSTODY_NODE", "http://127.0.0.1:1")
        .output()
        .expect("run custody")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

struct Files {
    dir: tempfile::TempDir,
    genesis: PathBuf,
    bundle: Bundle,
}

impl Files {
    fn new() -> Files {
        let net = TestNet::new();
        let store = common::store_with_history(&net);
        let dir = tempfile::tempdir().expect("tempdir");
        let genesis = dir.path().join("genesis.json");
        std::fs::write(
            &genesis,
            serde_json::to_string_pretty(&net.genesis).expect("json"),
        )
        .expect("write");
        let bundle = common::bundle_of(&net, &store, "B-A");
        Files {
            dir,
            genesis,
            bundle,
        }
    }

    fn write(&self, name: &str, bundle: &Bundle) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(bundle).expect("json")).expect("write");
        path
    }

    fn verify(&self, bundle: &Path, json: bool) -> Output {
        let mut args = vec![
            "verify",
            "bundle",
            bundle.to_str().expect("utf-8 path"),
            "--genesis",
            self.genesis.to_str().expect("utf-8 path"),
        ];
        if json {
            args.push("--json");
        }
        custody(&args)
    }
}

#[test]
fn a_valid_bundle_exits_zero_and_says_what_it_proves() {
    let files = Files::new();
    let path = files.write("bundle.json", &files.bundle);
    let output = files.verify(&path, false);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = stdout(&output);
    assert!(text.contains("valid: shipment B-A"), "{text}");
    assert!(text.contains("height 2"), "{text}");
    assert!(
        text.contains(&files.bundle.events[10].event_id.to_hex()),
        "{text}"
    );

    let output = files.verify(&path, true);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["valid"], true);
    assert_eq!(report["shipment_id"], "B-A");
    assert_eq!(report["height"], 2);
    assert_eq!(report["event_count"], 11);
}

#[test]
fn tampered_bundles_exit_one_naming_the_event_and_the_check() {
    let files = Files::new();

    // One byte of an event's canonical bytes (its base64 in the file).
    let mut bundle = files.bundle.clone();
    let last = bundle.events[3].bytes.len() - 70;
    bundle.events[3].bytes[last] ^= 1;
    let output = files.verify(&files.write("bytes.json", &bundle), false);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let text = stdout(&output);
    assert!(
        text.contains("check event.id failed") || text.contains("check event.bytes failed"),
        "{text}"
    );
    assert!(text.contains(&bundle.events[3].event_id.to_hex()), "{text}");
    assert!(text.contains("position 3"), "{text}");

    // One bit of an event's link to the shipment's previous entry.
    let mut bundle = files.bundle.clone();
    bundle.events[2]
        .shipment_prev
        .as_mut()
        .expect("not the first")
        .0[0] ^= 1;
    let output = files.verify(&files.write("chain.json", &bundle), true);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["valid"], false);
    assert_eq!(report["check"], "event.chain");
    assert_eq!(report["index"], 2);
    assert_eq!(
        report["event_id"],
        serde_json::json!(bundle.events[2].event_id.to_hex())
    );

    // One validator signature of the checkpoint's certificate.
    let mut bundle = files.bundle.clone();
    bundle.checkpoint.certificate.signatures[0].signature.0[5] ^= 1;
    let output = files.verify(&files.write("certificate.json", &bundle), false);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stdout(&output).contains("check checkpoint.certificate failed"),
        "{}",
        describe(&output)
    );

    // A genesis of another network.
    let mut other = TestNet::new().genesis;
    other.chain_id = "another-chain".into();
    let genesis = files.dir.path().join("other-genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&other).expect("json")).expect("write");
    let output = custody(&[
        "verify",
        "bundle",
        files
            .write("good.json", &files.bundle)
            .to_str()
            .expect("utf-8"),
        "--genesis",
        genesis.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stdout(&output).contains("bundle.genesis"),
        "{}",
        describe(&output)
    );
}

#[test]
fn unusable_files_exit_two() {
    let files = Files::new();
    let output = files.verify(&files.dir.path().join("missing.json"), false);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("missing.json"),
        "{}",
        describe(&output)
    );

    let directory = files.verify(files.dir.path(), false);
    assert_eq!(directory.status.code(), Some(2), "{}", describe(&directory));

    // A bundle file is fine, the genesis file is not: the tool cannot decide.
    let bundle = files.write("bundle.json", &files.bundle);
    for (name, text) in [
        ("missing-genesis.json", None),
        ("truncated-genesis.json", Some("{\"chain_id\": ")),
    ] {
        let genesis = files.dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&genesis, text).expect("write");
        }
        let output = custody(&[
            "--json",
            "verify",
            "bundle",
            bundle.to_str().expect("utf-8"),
            "--genesis",
            genesis.to_str().expect("utf-8"),
        ]);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert!(
            report["error"].as_str().is_some_and(|e| e.contains(name)),
            "{report}"
        );
    }

    // Bad arguments.
    let output = custody(&["verify", "bundle", bundle.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

/// The bundle as JSON, changed by `edit`, written to `name`.
fn edited(files: &Files, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut value = serde_json::to_value(&files.bundle).expect("JSON");
    edit(&mut value);
    let path = files.dir.path().join(name);
    std::fs::write(&path, serde_json::to_string(&value).expect("JSON")).expect("write");
    path
}

#[test]
fn regression_issue_15_a_file_that_is_not_a_bundle_is_invalid_not_a_tool_error() {
    let files = Files::new();
    let set = |pointer: &'static str, to: serde_json::Value| {
        move |value: &mut serde_json::Value| {
            *value.pointer_mut(pointer).expect(pointer) = to;
        }
    };
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "unknown top-level field",
            edited(&files, "unknown.json", |v| {
                v["x"] = serde_json::json!(1);
            }),
            "unknown field `x`",
        ),
        (
            "broken timestamp",
            edited(
                &files,
                "time.json",
                set("/events/0/time", "2026-13-45T99:00:00Z".into()),
            ),
            "time",
        ),
        (
            "invalid base64",
            edited(
                &files,
                "base64.json",
                set("/checkpoint/header_bytes", "not base64!".into()),
            ),
            "base64",
        ),
        (
            "non-canonical base64 (no padding)",
            edited(&files, "padding.json", |v| {
                let padded = v["events"]
                    .as_array_mut()
                    .expect("events")
                    .iter_mut()
                    .map(|e| &mut e["bytes"])
                    .find(|b| b.as_str().is_some_and(|t| t.ends_with('=')))
                    .expect("an event whose base64 is padded");
                let trimmed = padded.as_str().expect("base64").trim_end_matches('=');
                *padded = trimmed.to_owned().into();
            }),
            "base64",
        ),
        (
            "wrong type",
            edited(
                &files,
                "type.json",
                set("/checkpoint/header/height", "two".into()),
            ),
            "invalid type",
        ),
        (
            "not an object",
            files.dir.path().join("array.json"),
            "invalid type",
        ),
        (
            "truncated JSON",
            files.dir.path().join("truncated.json"),
            "EOF",
        ),
        ("empty file", files.dir.path().join("empty.json"), "EOF"),
    ];
    std::fs::write(files.dir.path().join("array.json"), "[1, 2]").expect("write");
    let whole = serde_json::to_string(&files.bundle).expect("JSON");
    std::fs::write(
        files.dir.path().join("truncated.json"),
        &whole[..whole.len() / 2],
    )
    .expect("write");
    std::fs::write(files.dir.path().join("empty.json"), "").expect("write");
    for (what, path, reason) in cases {
        let output = files.verify(&path, false);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {}",
            describe(&output)
        );
        let text = stdout(&output);
        assert!(
            text.contains("invalid: check bundle.json failed"),
            "{what}: {text}"
        );
        assert!(text.contains(reason), "{what}: {text}");

        let output = files.verify(&path, true);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {}",
            describe(&output)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(report["valid"], false, "{what}");
        assert_eq!(report["check"], "bundle.json", "{what}");
        assert!(
            report["message"]
                .as_str()
                .is_some_and(|m| m.contains(reason)),
            "{what}: {report}"
        );
    }
}

#[test]
fn verify_consistency_exit_codes_without_a_node() {
    let files = Files::new();
    let genesis = files.genesis.to_str().expect("utf-8");
    // Unreachable node.
    let output = custody(&[
        "verify",
        "consistency",
        "--from",
        "1",
        "--to",
        "2",
        "--genesis",
        genesis,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    // Bad arguments: reversed heights, height 0, a missing genesis.
    for args in [
        &["--from", "3", "--to", "2", "--genesis", genesis][..],
        &["--from", "0", "--to", "2", "--genesis", genesis][..],
        &["--from", "1", "--to", "2"][..],
    ] {
        let mut all = vec!["verify", "consistency"];
        all.extend_from_slice(args);
        let output = custody(&all);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
    }
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["verify", "--help"][..],
        &["verify", "bundle", "--help"][..],
        &["verify", "consistency", "--help"][..],
    ] {
        let output = custody(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            describe(&output)
        );
        let text = stdout(&output);
        assert!(text.contains("Exit codes:"), "{args:?}: {text}");
        assert!(text.contains("1  verify: invalid"), "{args:?}: {text}");
    }
}

#[test]
fn verify_chain_without_a_reachable_node_exits_two() {
    let files = Files::new();
    let output = custody(&[
        "verify",
        "chain",
        "--genesis",
        files.genesis.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

#[test]
fn keys_are_created_shown_and_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("member.pem");
    let path_text = path.to_str().expect("utf-8");
    let output = custody(&["keys", "new", "--out", path_text, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let public = created["public_key"].as_str().expect("hex").to_owned();
    assert_eq!(public.len(), 64);

    let output = custody(&["keys", "show", "--key", path_text]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(stdout(&output).trim(), public);

    let before = std::fs::read(&path).expect("read");
    let output = custody(&["keys", "new", "--out", path_text]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the key was overwritten"
    );
}

#[test]
fn submit_dry_run_signs_flags_and_prepared_files_without_a_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("carrier.pem");
    let key_text = key.to_str().expect("utf-8");
    let output = custody(&["keys", "new", "--out", key_text]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let public = stdout(&custody(&["keys", "show", "--key", key_text]))
        .trim()
        .to_owned();

    let output = custody(&[
        "submit",
        "propose-handoff",
        "--shipment",
        "S-1",
        "--to",
        "carrier-lastmile",
        "--place",
        "FRCDG",
        "--document-kind",
        "air-waybill",
        "--document-number",
        "02012345675",
        "--key",
        key_text,
        "--chain-id",
        CHAIN_ID,
        "--occurred-at",
        "2026-11-02T09:30:00Z",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let event: SignedEvent = serde_json::from_value(printed["event"].clone()).expect("event");
    let event = EncodedEvent::new(event);
    assert_eq!(printed["event_id"], serde_json::json!(event.id().to_hex()));
    assert_eq!(event.event().signer.to_hex(), public);
    assert_eq!(event.event().event.chain_id, CHAIN_ID);
    assert_eq!(
        event.event().event.occurred_at.to_string(),
        "2026-11-02T09:30:00.000Z"
    );
    event.verify_signature().expect("signature verifies");
    let EventKind::HandoffProposed(proposal) = &event.event().event.kind else {
        panic!("a handoff proposal: {:?}", event.event().event.kind)
    };
    assert_eq!(proposal.place, "FRCDG");
    assert_eq!(proposal.to.as_str(), "carrier-lastmile");

    // The signed event as a prepared file goes out as it is.
    let signed = dir.path().join("signed.json");
    std::fs::write(
        &signed,
        serde_json::to_string(&event.event()).expect("json"),
    )
    .expect("write");
    let output = custody(&[
        "submit",
        "--file",
        signed.to_str().expect("utf-8"),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed["event_id"], serde_json::json!(event.id().to_hex()));

    // An unsigned body is signed with --key.
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        serde_json::to_string(&event.event().event).expect("json"),
    )
    .expect("write");
    let body_text = body.to_str().expect("utf-8");
    let output = custody(&[
        "submit",
        "--file",
        body_text,
        "--key",
        key_text,
        "--dry-run",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        printed["event_id"],
        serde_json::json!(event.id().to_hex()),
        "ed25519 is deterministic: the same body and key give the same event"
    );

    // Without --key a body cannot be signed; with another chain id it is refused.
    let output = custody(&["submit", "--file", body_text, "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let output = custody(&[
        "submit",
        "--file",
        body_text,
        "--key",
        key_text,
        "--chain-id",
        "other",
        "--dry-run",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

/// Runs `custody` with its standard output a pipe whose reading end is already closed, as
/// in `custody status | true`: every write to stdout fails with EPIPE.
fn custody_into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env("CUSTODY_NODE", "http://127.0.0.1:1")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run custody")
}

#[test]
fn regression_issue_11_a_closed_stdout_is_a_normal_end_not_a_panic() {
    let files = Files::new();
    let valid = files.write("valid.json", &files.bundle);
    let mut tampered = files.bundle.clone();
    tampered.events[2]
        .shipment_prev
        .as_mut()
        .expect("not the first")
        .0[0] ^= 1;
    let tampered = files.write("tampered.json", &tampered);
    let key = files.dir.path().join("member.pem");
    let (valid, tampered, key) = (
        valid.to_str().expect("utf-8"),
        tampered.to_str().expect("utf-8"),
        key.to_str().expect("utf-8"),
    );
    let genesis = files.genesis.to_str().expect("utf-8");
    // Each command with the status it has when its output is read: a closed stdout changes
    // nothing but the output.
    let cases: [(&[&str], i32); 9] = [
        (&["--help"], 0),
        (&["keys", "new", "--out", key], 0),
        (&["keys", "show", "--key", key], 0),
        (&["keys", "show", "--key", key, "--json"], 0),
        (&["verify", "bundle", valid, "--genesis", genesis], 0),
        (
            &["verify", "bundle", valid, "--genesis", genesis, "--json"],
            0,
        ),
        (&["verify", "bundle", tampered, "--genesis", genesis], 1),
        (
            &["verify", "bundle", tampered, "--genesis", genesis, "--json"],
            1,
        ),
        // No node: the error goes to stderr, and with --json to stdout too.
        (&["status", "--json"], 2),
    ];
    for (args, status) in cases {
        let output = custody_into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(status), "{args:?}: {stderr}");
    }
}

#[test]
fn submit_scan_dry_run_builds_a_tracking_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("carrier.pem");
    let key_text = key.to_str().expect("utf-8");
    let output = custody(&["keys", "new", "--out", key_text]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let output = custody(&[
        "submit",
        "scan",
        "--shipment",
        "S-1",
        "--parcel",
        "106141411234567897",
        "--biz-step",
        "arriving",
        "--disposition",
        "in_transit",
        "--read-point",
        "NLAMS",
        "--read-point-gln",
        "0614141000005",
        "--sensor",
        "Temperature:CEL:9.25:2:8",
        "--sensor",
        "RelativeHumidity:P1:61",
        "--exception",
        "--key",
        key_text,
        "--chain-id",
        CHAIN_ID,
        "--occurred-at",
        "2026-11-02T09:30:00Z",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let event: SignedEvent = serde_json::from_value(printed["event"].clone()).expect("event");
    EncodedEvent::new(event.clone())
        .verify_signature()
        .expect("signature verifies");
    let EventKind::TrackingScanRecorded(scan) = &event.event.kind else {
        panic!("a tracking scan: {:?}", event.event.kind)
    };
    assert_eq!(scan.parcels, ["106141411234567897"]);
    assert_eq!(
        (scan.biz_step.as_str(), scan.disposition.as_str()),
        ("arriving", "in_transit")
    );
    assert_eq!(scan.biz_location, "NLAMS", "the read point by default");
    assert_eq!(scan.read_point_gln.as_deref(), Some("0614141000005"));
    assert_eq!(scan.sensor_readings.len(), 2);
    assert_eq!(scan.sensor_readings[0].value_milli, 9_250);
    assert_eq!(scan.sensor_readings[0].max_milli, Some(8_000));
    assert_eq!(scan.sensor_readings[1].min_milli, None);
    assert!(scan.exception);
    // A reading that is not a number with at most three decimals is a usage error.
    let output = custody(&[
        "submit",
        "scan",
        "--shipment",
        "S-1",
        "--biz-step",
        "arriving",
        "--disposition",
        "in_transit",
        "--read-point",
        "NLAMS",
        "--sensor",
        "Temperature:CEL:warm",
        "--key",
        key_text,
        "--chain-id",
        CHAIN_ID,
        "--dry-run",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}
