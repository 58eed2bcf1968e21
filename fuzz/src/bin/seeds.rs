//! Writes the seed corpora: `fuzz/corpus/<target>/<name>` for every seed of
//! `custody_node::fuzz_checks::seeds`, after emptying each target's directory, so the
//! committed corpus is exactly what the generator makes; every seed must decode. Run by
//! `fuzz/run seeds`.

// The binaries of this package are built with coverage instrumentation, whose callbacks
// libFuzzer defines: link it (its `main` stays unused, this file has its own).
use libfuzzer_sys as _;

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let seeds = custody_node::fuzz_checks::seeds();
    for target in custody_node::fuzz_checks::TARGETS {
        let dir = corpus.join(target.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
    }
    let mut total_bytes = 0;
    let mut refused = Vec::new();
    for seed in &seeds {
        let target = custody_node::fuzz_checks::target(seed.target).expect("seeds name targets");
        if (target.check)(&seed.bytes) != custody_node::fuzz_checks::Outcome::Decoded {
            refused.push(format!("{}/{}", seed.target, seed.name));
        }
        let path = corpus.join(seed.target).join(&seed.name);
        assert!(!path.exists(), "two seeds named {}", path.display());
        std::fs::write(&path, &seed.bytes)?;
        total_bytes += seed.bytes.len();
    }
    println!(
        "{} seeds, {} bytes, in {}",
        seeds.len(),
        total_bytes,
        corpus.display()
    );
    // A seed that does not decode only reaches the first error: worth little as a start.
    assert!(refused.is_empty(), "seeds that do not decode: {refused:?}");
    Ok(())
}
