//! Key files interoperate with other tools (issue 15): a key written by `custody keys new` is
//! read by OpenSSL 3 (`openssl pkey`) and by Python's `cryptography`, and a key written by
//! `openssl genpkey -algorithm ed25519` is read by the CLI, the SDK and the node, with the
//! same public key. A tool that is not installed is skipped with a line saying so.

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Option<Output> {
    Command::new(program).args(args).output().ok()
}

/// Whether `program` runs; prints a skip line when it does not.
fn available(program: &str, args: &[&str]) -> bool {
    let ok = run(program, args).is_some_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `{program} {}` is not available", args.join(" "));
    }
    ok
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn custody(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env("CUSTODY_NODE", "http://127.0.0.1:1")
        .output()
        .expect("run custody")
}

/// The public key `custody keys show --json` reads from `path`.
fn custody_public_key(path: &Path) -> String {
    let output = custody(&[
        "keys",
        "show",
        "--json",
        "--key",
        path.to_str().expect("utf-8"),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    report["public_key"]
        .as_str()
        .expect("public key")
        .to_owned()
}

/// The public key OpenSSL reads from `path`: the last 32 bytes of its SubjectPublicKeyInfo.
fn openssl_public_key(path: &Path) -> String {
    let output = run(
        "openssl",
        &[
            "pkey",
            "-in",
            path.to_str().expect("utf-8"),
            "-pubout",
            "-outform",
            "DER",
        ],
    )
    .expect("openssl runs");
    assert!(output.status.success(), "{}", describe(&output));
    let der = output.stdout;
    assert_eq!(der.len(), 44, "an ed25519 SubjectPublicKeyInfo");
    hex::encode(&der[der.len() - 32..])
}

#[test]
fn a_key_from_custody_keys_new_is_read_by_openssl() {
    if !available("openssl", &["version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("member.pem");
    let output = custody(&["keys", "new", "--out", path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", describe(&output));
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    assert!(text.ends_with("-----END PRIVATE KEY-----\n"), "{text}");
    assert!(text.lines().all(|l| l.len() <= 64), "{text}");

    let check = run(
        "openssl",
        &["pkey", "-in", path.to_str().expect("utf-8"), "-noout"],
    )
    .expect("openssl runs");
    assert!(
        check.status.success(),
        "openssl refuses the key: {}",
        describe(&check)
    );
    assert_eq!(openssl_public_key(&path), custody_public_key(&path));
}

#[test]
fn a_key_from_openssl_genpkey_is_read_by_the_cli_the_sdk_and_the_node() {
    if !available("openssl", &["version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("openssl.pem");
    let output = run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            path.to_str().expect("utf-8"),
        ],
    )
    .expect("openssl runs");
    assert!(output.status.success(), "{}", describe(&output));
    let expected = openssl_public_key(&path);
    assert_eq!(custody_public_key(&path), expected);
    let sdk = custody_client::keyfile::read_key(&path).expect("the SDK reads it");
    assert_eq!(sdk.public().to_hex(), expected);
    let node = custody_node::keys::read_key(&path).expect("the node reads it");
    assert_eq!(node.public().to_hex(), expected);
}

/// Python's `cryptography` loads the key and derives the same public key.
const PYTHON_READ: &str = "\
import sys
from cryptography.hazmat.primitives import serialization as s
key = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)
print(key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())
";

#[test]
fn a_key_from_custody_keys_new_is_read_by_python_cryptography() {
    if !available("python3", &["-c", "import cryptography"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("member.pem");
    let output = custody(&["keys", "new", "--out", path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", describe(&output));
    let output = run(
        "python3",
        &["-c", PYTHON_READ, path.to_str().expect("utf-8")],
    )
    .expect("python runs");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        custody_public_key(&path)
    );
}
