//! The determinism boundary, as a test: the crates every verdict runs in (`custody-ledger`,
//! `custody-contracts`) must not read a clock, draw randomness, iterate a hash map or do
//! float arithmetic, in their own code or through a dependency. Two validators that differ
//! in any of these would reach different verdicts on the same block and fork.
//!
//! Two checks: their sources are scanned for the types and crates that bring these in, and
//! their dependency tree (from `cargo tree`) must stay within a reviewed list, so that a new
//! dependency fails here until someone has looked at what it does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("contracts/ is in the workspace")
        .to_path_buf()
}

/// Identifiers that bring a clock, randomness, hash-map order or floats.
const FORBIDDEN: &[(&str, &str)] = &[
    ("SystemTime", "a clock"),
    ("Instant", "a clock"),
    ("UNIX_EPOCH", "a clock"),
    ("chrono", "a clock"),
    ("rand", "randomness"),
    ("thread_rng", "randomness"),
    ("OsRng", "randomness"),
    ("getrandom", "randomness"),
    ("fastrand", "randomness"),
    ("HashMap", "hash-map order"),
    ("HashSet", "hash-map order"),
    ("hash_map", "hash-map order"),
    ("hashbrown", "hash-map order"),
    ("RandomState", "hash-map order"),
    ("f32", "floats"),
    ("f64", "floats"),
];

/// Files allowed an entry of [`FORBIDDEN`], and why it cannot reach a verdict.
const EXEMPT: &[(&str, &str, &str)] = &[(
    "ledger/src/store/sled_store.rs",
    "Instant",
    "waits a bounded time for the database lock when a node opens its store",
)];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers of a line of code, comments dropped.
fn identifiers(line: &str) -> impl Iterator<Item = &str> {
    let code = line.split("//").next().unwrap_or("");
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// What the sources of `ledger/src` and `contracts/src` use of [`FORBIDDEN`], as
/// (file, line, identifier, what it brings).
fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["ledger/src", "contracts/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 20,
        "found the sources ({} files)",
        files.len()
    );
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        for (n, line) in text.lines().enumerate() {
            for word in identifiers(line) {
                let Some((_, what)) = FORBIDDEN.iter().find(|(w, _)| *w == word) else {
                    continue;
                };
                if EXEMPT.iter().any(|(f, w, _)| *f == rel && *w == word) {
                    continue;
                }
                found.push(format!("{rel}:{}: {word} ({what})", n + 1));
            }
        }
    }
    found
}

#[test]
fn ledger_and_contracts_sources_use_no_clock_randomness_hash_map_or_float() {
    let found = violations(&workspace());
    assert!(
        found.is_empty(),
        "the rule and state-machine crates must stay deterministic:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_source_scan_sees_what_it_forbids() {
    // The scan itself must work: a copy of the tree with a hash map and a float in a rule
    // module is caught, in code but not in a comment.
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for d in ["ledger/src", "contracts/src"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    for i in 0..21 {
        std::fs::write(
            root.join(format!("ledger/src/m{i}.rs")),
            "// no HashMap here\n",
        )
        .expect("write");
    }
    std::fs::write(
        root.join("contracts/src/customs.rs"),
        "use std::collections::HashMap;\nfn rate() -> f64 { 0.2 }\n",
    )
    .expect("write");
    let found = violations(root);
    assert_eq!(
        found,
        [
            "contracts/src/customs.rs:1: HashMap (hash-map order)",
            "contracts/src/customs.rs:2: f64 (floats)",
        ]
    );
}

/// The crates `custody-ledger` and `custody-contracts` build with (normal dependencies,
/// transitively, on this platform), reviewed. None brings a clock, randomness or floats into
/// a verdict:
/// - `rand_core` is ed25519-dalek's key-generation interface; no verdict generates a key.
/// - `instant`, `fxhash`, `crossbeam-*`, `parking_lot*`, `fs2`, `crc32fast`, `libc` are
///   sled's: storage, not verdicts (the store's reads are ordered by key).
/// - `fastrand`, `phf_*`, `siphasher` build iso_currency's compile-time tables (perfect hash
///   functions generated at build time from fixed seeds; lookups are by key, never iterated
///   in hash order).
///
/// A crate not on the list fails the test: review what it does, then add it here.
const REVIEWED: &[&str] = &[
    "base64",
    "base64ct",
    "bincode",
    "block-buffer",
    "byteorder",
    "celes",
    "cfg-if",
    "const-oid",
    "cpufeatures",
    "crc32fast",
    "crossbeam-epoch",
    "crossbeam-utils",
    "crypto-common",
    "curve25519-dalek",
    "curve25519-dalek-derive",
    "custody-contracts",
    "custody-ledger",
    "der",
    "digest",
    "ed25519",
    "ed25519-dalek",
    "fastrand",
    "fs2",
    "fxhash",
    "generic-array",
    "hex",
    "instant",
    "iso_country",
    "iso_currency",
    "itoa",
    "keccak",
    "lazy_static",
    "libc",
    "lock_api",
    "log",
    "memchr",
    "merlin",
    "parking_lot",
    "parking_lot_core",
    "pem-rfc7468",
    "phf",
    "phf_generator",
    "phf_macros",
    "phf_shared",
    "pkcs8",
    "proc-macro2",
    "quote",
    "rand_core",
    "scopeguard",
    "serde",
    "serde_core",
    "serde_derive",
    "serde_json",
    "sha2",
    "signature",
    "siphasher",
    "sled",
    "smallvec",
    "spki",
    "subtle",
    "syn",
    "thiserror",
    "thiserror-impl",
    "typenum",
    "unicode-ident",
    "unty",
    "zeroize",
    "zeroize_derive",
    "zmij",
];

/// Crates that must never be among them, whatever the list says: clocks, random number
/// generators, hash maps with random state, float-parsing libraries.
const NEVER: &[&str] = &[
    "chrono",
    "time",
    "rand",
    "rand_chacha",
    "getrandom",
    "hashbrown",
    "ahash",
    "indexmap",
    "ordered-float",
    "num-traits",
];

fn dependency_tree(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn ledger_and_contracts_gain_no_unreviewed_dependency() {
    let mut crates = dependency_tree("custody-ledger");
    crates.extend(dependency_tree("custody-contracts"));
    let never: Vec<_> = crates
        .iter()
        .filter(|c| NEVER.contains(&c.as_str()))
        .collect();
    assert!(
        never.is_empty(),
        "clock, randomness, hash-map or float crates: {never:?}"
    );
    let new: Vec<_> = crates
        .iter()
        .filter(|c| !REVIEWED.contains(&c.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "dependencies not reviewed for determinism (see REVIEWED): {new:?}"
    );
}

#[test]
fn the_table_crates_are_pinned_exactly_to_the_recorded_versions() {
    // A `cargo update` must not move a table verdicts read: the workspace pins each with
    // `=`, and the lock file holds the version the rules version's definition records.
    let root = workspace();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    for (name, version) in custody_contracts::registry::PINNED_TABLE_CRATES {
        let pin = format!("{name} = \"={version}\"");
        assert!(
            manifest.lines().any(|l| l.trim() == pin),
            "Cargo.toml must pin `{pin}`"
        );
        let locked: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains(&format!("\nname = \"{name}\"\n")))
            .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .collect();
        assert_eq!(
            locked,
            [format!("\"{version}\"")],
            "Cargo.lock must hold exactly {name} {version}"
        );
    }
}
