//! Crash safety: a child process appends blocks to a sled store and prints each height once
//! `append_block` (which flushes) has returned; the parent kills it with SIGKILL at random
//! moments, reopens the store, and checks that every printed height is there and the chain
//! verifies.
//!
//! 100 cycles run in the normal test run; set `CUSTODY_CRASH_CYCLES` for more.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use custody_ledger::rules::NoRules;
use custody_ledger::store::Store;
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use custody_sled::SledStore;
use rand::{Rng, SeedableRng};

const DIR_VAR: &str = "CUSTODY_CRASH_CHILD_DIR";
/// A child never runs longer than this, even if nobody kills it.
const CHILD_LIFETIME_MS_MAX: u64 = 20_000;

/// The child: appends blocks of five registrations until killed. Run only by the parent,
/// which sets the directory variable.
#[test]
#[ignore = "run as a child process by sled_survives_sigkill_at_random_moments"]
fn crash_child() {
    let dir = std::env::var(DIR_VAR).expect("the parent sets the store directory");
    let net = TestNet::new();
    let store = SledStore::open(&dir, net.genesis_hash()).expect("open");
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(CHILD_LIFETIME_MS_MAX) {
        let height = store.head().expect("head").map_or(0, |h| h.height) + 1;
        let events = (0..5)
            .map(|i| net.register(&format!("C{height}-{i}"), "CN", "FR"))
            .collect();
        let built = net
            .commit(&store, events, Timestamp(GENESIS_TIME.0 + height * 1000))
            .expect("commit");
        assert!(built.rejected.is_empty());
        println!("flushed {height}");
    }
}

#[test]
fn sled_survives_sigkill_at_random_moments() {
    let cycles: usize = std::env::var("CUSTODY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("tempdir");
    let net = TestNet::new();
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xC0FFEE);
    let mut printed_max = 0u64;
    let mut kills_mid_run = 0;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(h) = line
                    .strip_prefix("flushed ")
                    .and_then(|h| h.parse::<u64>().ok())
                {
                    if tx.send(h).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait for the first flushed block (or up to 10 s), then kill after a random delay.
        let first = rx.recv_timeout(Duration::from_secs(10));
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..30_000)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        reader.join().expect("reader");
        if status.code().is_none() {
            kills_mid_run += 1;
        }
        let mut printed: Vec<u64> = first.into_iter().collect();
        printed.extend(rx.try_iter());
        if let Some(&max) = printed.iter().max() {
            printed_max = printed_max.max(max);
        }

        let store = SledStore::open(dir.path(), net.genesis_hash())
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let head = store.head().expect("head").map_or(0, |h| h.height);
        assert!(
            head >= printed_max,
            "cycle {cycle}: head {head} lost printed height {printed_max}"
        );
        for h in &printed {
            assert!(
                store.header(*h).expect("read").is_some(),
                "cycle {cycle}: height {h} missing"
            );
        }
        if cycle % 10 == 9 || cycle + 1 == cycles {
            verify_chain(&store, &net.genesis, NoRules, |_, _| {})
                .unwrap_or_else(|e| panic!("cycle {cycle}: chain does not verify: {e}"));
        }
    }
    assert!(printed_max > 0, "children wrote blocks");
    assert!(
        kills_mid_run > cycles / 2,
        "most children were killed while writing"
    );
}
