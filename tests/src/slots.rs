//! How many networks run at once in one test binary.
//!
//! The test harness runs every test of a binary in parallel; a dozen networks of four or five
//! nodes each on a 2-core machine starve one another until commits and shutdowns miss their
//! (generous) deadlines. `CUSTODY_TEST_NETWORKS` overrides the bound.

use std::sync::{Condvar, Mutex};

/// Networks of one test binary that may run at once by default.
const NETWORKS_AT_ONCE_MAX: usize = 2;

static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn networks_at_once() -> usize {
    std::env::var("CUSTODY_TEST_NETWORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(NETWORKS_AT_ONCE_MAX)
}

/// A place among the networks that may run at once, released when dropped.
#[derive(Debug)]
pub struct Slot(());

impl Slot {
    /// Waits for a free place.
    pub fn take() -> Slot {
        let (running, freed) = &SLOTS;
        // A test that panicked while holding the lock left a correct count: recover it.
        let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= networks_at_once() {
            running = freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (running, freed) = &SLOTS;
        *running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}
