//! Every committed fuzz input, replayed through the check its fuzz target runs
//! (`custody_node::fuzz_checks`), so that `cargo test` guards what fuzzing found without
//! building libFuzzer: the seed corpora (`fuzz/corpus/<target>/`) and the inputs of past
//! findings (`fuzz/regressions/<target>/`), each of which once made its target panic.
//!
//! A check panics when a property fails (see the module's documentation); a passing input
//! returns whether it decoded. Each seed corpus must hold an input that decodes, so that a
//! format change cannot leave a corpus that only reaches the first error: regenerate it with
//! `fuzz/run seeds`.

use std::path::{Path, PathBuf};

use custody_node::fuzz_checks::{self, Outcome, TARGETS};

/// The fuzz directory beside the workspace's crates.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files under `fuzz/<kind>/`, by target, in name order. A directory that names no
/// target is an error rather than inputs nobody replays.
fn inputs(kind: &str) -> Vec<(&'static str, PathBuf)> {
    let root = fuzz_dir().join(kind);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let dir = entry.expect("a readable directory").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.starts_with('.') {
            continue;
        }
        let target = fuzz_checks::target(&name)
            .unwrap_or_else(|| panic!("{} names no fuzz target", dir.display()));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable directory").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|path| (target.name, path)));
    }
    out.sort();
    out
}

/// Runs one input through its target's check, naming the file if the check panics.
fn replay(target: &'static str, path: &Path) -> Outcome {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let check = fuzz_checks::target(target).expect("a target").check;
    match std::panic::catch_unwind(|| check(&bytes)) {
        Ok(outcome) => outcome,
        Err(_) => panic!("{} fails its check (target {target})", path.display()),
    }
}

#[test]
fn every_corpus_input_passes_its_check_and_every_corpus_has_one_that_decodes() {
    let inputs = inputs("corpus");
    for target in TARGETS {
        let outcomes: Vec<Outcome> = inputs
            .iter()
            .filter(|(name, _)| *name == target.name)
            .map(|(name, path)| replay(name, path))
            .collect();
        assert!(
            outcomes.contains(&Outcome::Decoded),
            "fuzz/corpus/{} has no input that decodes ({} inputs); run `fuzz/run seeds`",
            target.name,
            outcomes.len()
        );
    }
}

#[test]
fn every_regression_input_passes_its_check() {
    for (target, path) in inputs("regressions") {
        replay(target, &path);
    }
}

#[test]
fn every_generated_seed_decodes() {
    let seeds = fuzz_checks::seeds();
    for target in TARGETS {
        assert!(
            seeds.iter().any(|s| s.target == target.name),
            "no seed for {}",
            target.name
        );
    }
    for seed in seeds {
        let check = fuzz_checks::target(seed.target)
            .expect("seeds name targets")
            .check;
        assert_eq!(
            check(&seed.bytes),
            Outcome::Decoded,
            "seed {}/{}",
            seed.target,
            seed.name
        );
    }
}
