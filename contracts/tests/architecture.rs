//! ARCHITECTURE.md's invariants, as far as a test can check them.
//!
//! - **The crate graph** (`cargo metadata`): which of our crates each crate builds with, that
//!   the pure crates (`custody-ledger`, `custody-contracts`, `custody-epcis`) bring no runtime,
//!   network or storage crate, that only the ledger brings bincode, and that only the test rig
//!   turns on the node's fault injection.
//! - **Forbidden names in the pure crates' sources**: the crates every verdict runs in must not
//!   read a clock, draw randomness, iterate a hash map or do float arithmetic (two validators
//!   that differ in any of these would reach different verdicts on the same block and fork);
//!   they do no I/O, start no thread and keep no process-wide state; nothing but the ledger's
//!   codec names bincode; and elsewhere the wall clock is read only in the one function of each
//!   edge crate that ARCHITECTURE.md names.
//! - **Reviewed dependencies**: the dependency tree of `custody-ledger` and
//!   `custody-contracts` (from `cargo tree`) must stay within a reviewed list, so that a new
//!   dependency fails here until someone has looked at what it does.
//!
//! Each check is a function of its input (a source tree, a metadata document), and a test
//! feeds each one input that breaks every rule, so a check that stopped seeing would fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("contracts/ is in the workspace")
        .to_path_buf()
}

/// What `cargo ARGS` prints, run in the workspace with the cargo that started the test
/// (`cargo test` sets `CARGO`), else the one that built it. Offline: the arguments say so.
fn cargo(args: &[&str]) -> Vec<u8> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cargo {args:?} does not run: {e}"));
    assert!(
        out.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ----- forbidden names -------------------------------------------------------------------

/// The crates every verdict runs in, and the pure library around them.
const PURE: &[&str] = &["ledger/src", "contracts/src", "epcis/src"];

/// Identifiers that bring a clock, randomness, hash-map order or floats.
const NONDETERMINISM: &[(&str, &str)] = &[
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

/// Identifiers, and paths (those with `::`, matched as text), that do I/O, start a thread or
/// keep process-wide state. Storage is the `Store` trait; its sled implementation is the
/// `custody-sled` crate.
const EFFECTS: &[(&str, &str)] = &[
    ("fs", "file I/O"),
    ("File", "file I/O"),
    ("std::net", "network I/O"),
    ("TcpStream", "network I/O"),
    ("TcpListener", "network I/O"),
    ("UdpSocket", "network I/O"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("sled", "storage I/O"),
    ("tokio", "a runtime"),
    ("thread", "threads"),
    ("spawn", "threads"),
    ("OnceLock", "process-wide state"),
    ("LazyLock", "process-wide state"),
    ("lazy_static", "process-wide state"),
    ("once_cell", "process-wide state"),
    ("thread_local", "process-wide state"),
];

/// Forbidden names, each with what it brings.
type Names = &'static [(&'static str, &'static str)];

/// Where each set of names is forbidden (folders of the workspace), and why.
const RULES: &[(&[&str], Names)] = &[
    (PURE, NONDETERMINISM),
    (PURE, EFFECTS),
    // The codec is the only module that knows the wire format (`ledger/src/codec.rs` is
    // exempt below); no other crate calls bincode either.
    (
        &[
            "ledger/src",
            "ledger/sled/src",
            "contracts/src",
            "epcis/src",
            "node/src",
            "client/src",
            "devnet/src",
            "tests/src",
        ],
        &[("bincode", "the wire format, which only the codec knows")],
    ),
    // The wall clock is read in one function per edge crate (ARCHITECTURE.md); the
    // exemptions below name them.
    (
        &["node/src", "client/src", "devnet/src", "tests/src"],
        &[
            ("SystemTime", "the wall clock"),
            ("UNIX_EPOCH", "the wall clock"),
        ],
    ),
];

/// Files allowed a forbidden name, and why it cannot reach a verdict. An exemption that no
/// longer matches anything fails the test, so the list cannot outlive its reasons.
const EXEMPT: &[(&str, &str, &str)] = &[
    (
        "ledger/src/codec.rs",
        "bincode",
        "the canonical codec: the one module that calls bincode",
    ),
    (
        "ledger/src/merkle.rs",
        "OnceLock",
        "a unit test's fixture (a large log built once for its tests)",
    ),
    (
        "contracts/src/hs.rs",
        "fs",
        "a unit test reads the HS 2022 listing from the shared data; rules read tables only from the ledger",
    ),
    ("node/src/clock.rs", "SystemTime", "the node's clock"),
    ("node/src/clock.rs", "UNIX_EPOCH", "the node's clock"),
    ("client/src/personal.rs", "SystemTime", "the SDK's clock: signed personal-data reads and erasures"),
    ("client/src/personal.rs", "UNIX_EPOCH", "the SDK's clock: signed personal-data reads and erasures"),
    ("client/src/cli/submit.rs", "SystemTime", "the CLI's clock: an event's default occurred_at"),
    ("client/src/cli/submit.rs", "UNIX_EPOCH", "the CLI's clock: an event's default occurred_at"),
    ("devnet/src/setup.rs", "SystemTime", "the devnet's clock: its genesis time and its events' times"),
    ("devnet/src/setup.rs", "UNIX_EPOCH", "the devnet's clock: its genesis time and its events' times"),
    ("tests/src/wait.rs", "SystemTime", "the rig's clock, compared with the nodes' logs"),
    ("tests/src/wait.rs", "UNIX_EPOCH", "the rig's clock, compared with the nodes' logs"),
    (
        "epcis/src/time.rs",
        "Instant",
        "the crate's own type for a parsed EPCIS time, not std's clock",
    ),
    (
        "epcis/src/decimal.rs",
        "f64",
        "writes exact thousandths as a JSON number (serde_json's number type); nothing is computed with it",
    ),
];

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

/// A line of code with its comment dropped.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// The identifiers of a line of code.
fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// The forbidden names a line of code uses: identifiers by word, paths by text.
fn names_in<'a>(code: &str, names: &'a [(&'a str, &'a str)]) -> Vec<&'a (&'a str, &'a str)> {
    let words: BTreeSet<&str> = identifiers(code).collect();
    names
        .iter()
        .filter(|(name, _)| {
            if name.contains("::") {
                code.contains(name)
            } else {
                words.contains(name)
            }
        })
        .collect()
}

/// What the sources under `root` use of the names [`RULES`] forbid, as "file:line: name
/// (what it brings)", and the exemptions that matched nothing.
fn violations(root: &Path) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let mut used = BTreeSet::new();
    let mut scanned = 0;
    for (dirs, names) in RULES {
        let mut files = Vec::new();
        for dir in *dirs {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(!files.is_empty(), "found no sources in {dirs:?}");
        scanned += files.len();
        for file in files {
            let rel = file
                .strip_prefix(root)
                .expect("under the workspace")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&file).expect("source is UTF-8");
            for (n, line) in text.lines().enumerate() {
                for (name, what) in names_in(code(line), names) {
                    if let Some(exempt) = EXEMPT.iter().find(|(f, w, _)| *f == rel && w == name) {
                        used.insert(exempt.0.to_owned() + " " + exempt.1);
                        continue;
                    }
                    found.push(format!("{rel}:{}: {name} ({what})", n + 1));
                }
            }
        }
    }
    assert!(scanned > 20, "found the sources ({scanned} files)");
    let stale = EXEMPT
        .iter()
        .map(|(f, w, _)| format!("{f} {w}"))
        .filter(|e| !used.contains(e))
        .collect();
    (found, stale)
}

#[test]
fn no_source_uses_a_forbidden_name_outside_its_exemptions() {
    let (found, stale) = violations(&workspace());
    assert!(
        found.is_empty(),
        "the pure crates must stay deterministic and free of effects, and only the codec calls bincode:\n{}",
        found.join("\n")
    );
    assert!(
        stale.is_empty(),
        "exemptions that match nothing any more (remove them from EXEMPT): {stale:?}"
    );
}

#[test]
fn the_source_scan_sees_what_it_forbids() {
    // The scan itself must work: a copy of the tree with a hash map and a float in a rule
    // module, a thread and a clock in the ledger, a file read in EPCIS, bincode in the node
    // and the wall clock in the SDK is caught, in code but not in a comment.
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for d in RULES.iter().flat_map(|(dirs, _)| dirs.iter()) {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    for i in 0..21 {
        std::fs::write(
            root.join(format!("ledger/src/m{i}.rs")),
            "// no HashMap, std::thread or bincode here\n",
        )
        .expect("write");
    }
    std::fs::write(
        root.join("contracts/src/customs.rs"),
        "use std::collections::HashMap;\nfn rate() -> f64 { 0.2 }\n",
    )
    .expect("write");
    std::fs::write(
        root.join("ledger/src/chain.rs"),
        "fn go() { std::thread::spawn(|| ()); }\nlet t = std::time::Instant::now();\n",
    )
    .expect("write");
    std::fs::write(
        root.join("epcis/src/schema.rs"),
        "let s = std::fs::read_to_string(p);\n",
    )
    .expect("write");
    std::fs::write(root.join("node/src/codec.rs"), "use bincode::config;\n").expect("write");
    std::fs::write(
        root.join("client/src/lib.rs"),
        "let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);\n",
    )
    .expect("write");
    let (found, stale) = violations(root);
    assert_eq!(
        found,
        [
            "ledger/src/chain.rs:2: Instant (a clock)",
            "contracts/src/customs.rs:1: HashMap (hash-map order)",
            "contracts/src/customs.rs:2: f64 (floats)",
            "ledger/src/chain.rs:1: thread (threads)",
            "ledger/src/chain.rs:1: spawn (threads)",
            "epcis/src/schema.rs:1: fs (file I/O)",
            "node/src/codec.rs:1: bincode (the wire format, which only the codec knows)",
            "client/src/lib.rs:1: SystemTime (the wall clock)",
            "client/src/lib.rs:1: UNIX_EPOCH (the wall clock)",
        ]
    );
    assert_eq!(stale.len(), EXEMPT.len(), "no exemption matched: {stale:?}");
}

// ----- the crate graph -------------------------------------------------------------------

/// Our crates and, for each, exactly which of ours it builds with (normal and build
/// dependencies), as ARCHITECTURE.md's code map and invariants state: the ledger depends on
/// none of ours; the storage implementation, the rules and EPCIS on the ledger only; the SDK
/// and CLI not on the node; nothing but the test rig on the test rig.
const OUR_GRAPH: &[(&str, &[&str])] = &[
    ("custody-ledger", &[]),
    ("custody-sled", &["custody-ledger"]),
    ("custody-contracts", &["custody-ledger"]),
    ("custody-epcis", &["custody-ledger"]),
    (
        "custody-client",
        &["custody-contracts", "custody-epcis", "custody-ledger"],
    ),
    (
        "custody-node",
        &[
            "custody-contracts",
            "custody-epcis",
            "custody-ledger",
            "custody-sled",
        ],
    ),
    (
        "custody-devnet",
        &[
            "custody-client",
            "custody-contracts",
            "custody-ledger",
            "custody-node",
        ],
    ),
    (
        "custody-rig",
        &[
            "custody-client",
            "custody-contracts",
            "custody-devnet",
            "custody-ledger",
            "custody-node",
            "custody-sled",
        ],
    ),
];

/// Runtime, network, HTTP and storage crates: none may be a dependency of the pure crates,
/// declared or transitive.
const EFFECT_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "libp2p",
    "axum",
    "hyper",
    "hyper-util",
    "tower",
    "tower-http",
    "reqwest",
    "sled",
];

/// Crates whose names start with these are effect crates too (the consensus engine).
const EFFECT_PREFIXES: &[&str] = &["arc-malachitebft-", "libp2p-"];

fn is_effect_crate(name: &str) -> bool {
    EFFECT_CRATES.contains(&name) || EFFECT_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The pure crates, and what their invariant adds to the graph rules.
const PURE_CRATES: &[&str] = &["custody-ledger", "custody-contracts", "custody-epcis"];

/// One declared dependency of a package.
#[derive(Debug)]
struct Dependency {
    name: String,
    /// `None` for a normal dependency, else `dev` or `build`.
    kind: Option<String>,
    features: Vec<String>,
}

/// The workspace's packages and their declared dependencies, from `cargo metadata`.
fn packages(metadata: &Value) -> BTreeMap<String, Vec<Dependency>> {
    let list = metadata["packages"]
        .as_array()
        .expect("metadata lists packages");
    list.iter()
        .map(|p| {
            let name = p["name"].as_str().expect("package name").to_owned();
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| Dependency {
                    name: d["name"].as_str().expect("dependency name").to_owned(),
                    kind: d["kind"].as_str().map(str::to_owned),
                    features: d["features"]
                        .as_array()
                        .expect("features")
                        .iter()
                        .map(|f| f.as_str().expect("feature").to_owned())
                        .collect(),
                })
                .collect();
            (name, deps)
        })
        .collect()
}

/// Whether a dependency is part of what a package builds with (not a dev-dependency).
fn builds_with(dep: &Dependency) -> bool {
    dep.kind.as_deref() != Some("dev")
}

/// How the workspace described by `metadata` breaks the graph rules, one line each.
fn graph_violations(metadata: &Value) -> Vec<String> {
    let packages = packages(metadata);
    let mut found = Vec::new();
    let ours: BTreeSet<&str> = packages.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = OUR_GRAPH.iter().map(|(n, _)| *n).collect();
    if ours != expected {
        found.push(format!(
            "the workspace's crates are {ours:?}, ARCHITECTURE.md's code map (and OUR_GRAPH) {expected:?}"
        ));
    }
    for (name, allowed) in OUR_GRAPH {
        let Some(deps) = packages.get(*name) else {
            continue;
        };
        let used: BTreeSet<&str> = deps
            .iter()
            .filter(|d| builds_with(d) && ours.contains(d.name.as_str()))
            .map(|d| d.name.as_str())
            .collect();
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        if used != allowed {
            found.push(format!(
                "{name} builds with {used:?} of our crates, the architecture says {allowed:?}"
            ));
        }
    }
    for name in PURE_CRATES {
        for dep in packages.get(*name).into_iter().flatten() {
            if builds_with(dep) && is_effect_crate(&dep.name) {
                found.push(format!("{name} depends on {} (a pure crate)", dep.name));
            }
        }
    }
    // The ledger's own tests may run against the sled store, and nothing else of ours.
    for dep in packages.get("custody-ledger").into_iter().flatten() {
        let dev_ours = !builds_with(dep) && ours.contains(dep.name.as_str());
        if dev_ours && !["custody-ledger", "custody-sled"].contains(&dep.name.as_str()) {
            found.push(format!(
                "custody-ledger's tests depend on {}, which depends on the ledger's users",
                dep.name
            ));
        }
    }
    if let Some(deps) = packages.get("custody-sled") {
        let external: BTreeSet<&str> = deps
            .iter()
            .filter(|d| builds_with(d) && !ours.contains(d.name.as_str()))
            .map(|d| d.name.as_str())
            .collect();
        if external != BTreeSet::from(["sled"]) {
            found.push(format!(
                "custody-sled builds with {external:?} besides the ledger, not sled alone"
            ));
        }
    }
    for (name, deps) in &packages {
        for dep in deps {
            if dep.name == "bincode" && name != "custody-ledger" {
                found.push(format!(
                    "{name} depends on bincode: only the ledger's codec knows the format"
                ));
            }
            let faults =
                dep.name == "custody-node" && dep.features.iter().any(|f| f == "fault-injection");
            if faults && name != "custody-rig" {
                found.push(format!(
                    "{name} turns on custody-node's fault-injection: only the test rig may"
                ));
            }
        }
    }
    found
}

/// `cargo metadata` of the workspace: its packages and their declared dependencies. Offline,
/// and without resolving the dependency graph, so it needs nothing but the manifests.
fn workspace_metadata() -> Value {
    let out = cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]);
    serde_json::from_slice(&out).expect("cargo metadata prints JSON")
}

#[test]
fn the_crate_graph_is_the_one_architecture_md_states() {
    let found = graph_violations(&workspace_metadata());
    assert!(
        found.is_empty(),
        "the crate graph has drifted from ARCHITECTURE.md (fix the code, or the document and this test):\n{}",
        found.join("\n")
    );
}

fn dependency(name: &str, kind: Option<&str>, features: &[&str]) -> Value {
    serde_json::json!({ "name": name, "kind": kind, "features": features })
}

/// A metadata document of a workspace that keeps every graph rule: [`OUR_GRAPH`], the ledger
/// with bincode, the storage crate with sled, the test rig turning on fault injection.
fn metadata_keeping_the_rules() -> Value {
    let packages: Vec<Value> = OUR_GRAPH
        .iter()
        .map(|(name, ours)| {
            let mut deps: Vec<Value> = ours
                .iter()
                .map(|d| match (*name, *d) {
                    ("custody-rig", "custody-node") => dependency(d, None, &["fault-injection"]),
                    _ => dependency(d, None, &[]),
                })
                .collect();
            match *name {
                "custody-ledger" => deps.push(dependency("bincode", None, &[])),
                "custody-sled" => deps.push(dependency("sled", None, &[])),
                _ => {}
            }
            serde_json::json!({ "name": name, "dependencies": deps })
        })
        .collect();
    serde_json::json!({ "packages": packages })
}

#[test]
fn the_graph_check_sees_what_it_forbids() {
    let mut metadata = metadata_keeping_the_rules();
    assert_eq!(graph_violations(&metadata), Vec::<String>::new());
    // Broken in every way the check knows: the SDK depending on the node, the ledger on tokio
    // and on the rules, the ledger's tests on the node, EPCIS on bincode, the devnet turning on
    // fault injection, sled's crate growing a dependency, and a crate the map does not know.
    let packages = metadata["packages"].as_array_mut().expect("packages");
    for package in packages.iter_mut() {
        let name = package["name"].as_str().expect("name").to_owned();
        let deps = package["dependencies"]
            .as_array_mut()
            .expect("dependencies");
        match name.as_str() {
            "custody-client" => deps.push(dependency("custody-node", None, &[])),
            "custody-ledger" => {
                deps.push(dependency("tokio", None, &[]));
                deps.push(dependency("custody-contracts", None, &[]));
                deps.push(dependency("custody-node", Some("dev"), &[]));
            }
            "custody-epcis" => deps.push(dependency("bincode", None, &[])),
            "custody-devnet" => deps.push(dependency(
                "custody-node",
                Some("dev"),
                &["fault-injection"],
            )),
            "custody-sled" => deps.push(dependency("libc", None, &[])),
            _ => {}
        }
    }
    packages.push(serde_json::json!({ "name": "custody-extra", "dependencies": [] }));
    let found = graph_violations(&metadata);
    let expect = [
        "the workspace's crates are",
        "custody-ledger builds with {\"custody-contracts\"}",
        "custody-client builds with {\"custody-contracts\", \"custody-epcis\", \"custody-ledger\", \"custody-node\"}",
        "custody-ledger depends on tokio (a pure crate)",
        "custody-ledger's tests depend on custody-node",
        "custody-sled builds with {\"libc\", \"sled\"} besides the ledger",
        "custody-epcis depends on bincode",
        "custody-devnet turns on custody-node's fault-injection",
    ];
    for line in expect {
        assert!(
            found.iter().any(|f| f.starts_with(line)),
            "expected a violation starting {line:?} in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expect.len(), "{}", found.join("\n"));
}

#[test]
fn pure_crates_bring_no_runtime_network_or_storage_crate_transitively() {
    for package in PURE_CRATES {
        let effects: Vec<String> = dependency_tree(package)
            .into_iter()
            .filter(|c| is_effect_crate(c))
            .collect();
        assert!(
            effects.is_empty(),
            "{package} builds with runtime, network or storage crates: {effects:?}"
        );
    }
}

// ----- reviewed dependencies -------------------------------------------------------------

/// The crates `custody-ledger` and `custody-contracts` build with (normal dependencies,
/// transitively, on this platform), reviewed. None brings a clock, randomness or floats into
/// a verdict:
/// - `rand_core` is ed25519-dalek's key-generation interface; no verdict generates a key.
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
    "generic-array",
    "hex",
    "iso_country",
    "iso_currency",
    "itoa",
    "keccak",
    "lazy_static",
    "memchr",
    "merlin",
    "pem-rfc7468",
    "phf",
    "phf_generator",
    "phf_macros",
    "phf_shared",
    "pkcs8",
    "proc-macro2",
    "quote",
    "rand_core",
    "serde",
    "serde_core",
    "serde_derive",
    "serde_json",
    "sha2",
    "signature",
    "siphasher",
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
    let out = cargo(&[
        "tree",
        "--offline",
        "-p",
        package,
        "-e",
        "normal",
        "--prefix",
        "none",
    ]);
    String::from_utf8(out)
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
