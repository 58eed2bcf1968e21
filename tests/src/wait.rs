//! Bounded waiting.

use std::time::{Duration, Instant};

use anyhow::bail;

/// How often a condition is checked.
const POLL_MS: u64 = 100;

/// Checks `done` every 100 ms until it holds; an error naming `what` after `within`.
pub fn wait_until(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: not reached within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
}

/// Unix time in milliseconds, from the system clock: the rig times faults and commits with
/// the clock the nodes' logs use (the ledger's crates read no clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
