//! Whether this node is doing its work, as `/healthz` and `/v1/status` report it.
//!
//! A node is unhealthy when one of its critical tasks is gone (the supervisor records which and
//! why, then stops the process), or when it has not committed a block for
//! [`STALL_MS`] while the validators it hears from have moved past it: a node that serves
//! its API but no longer follows the chain must not look alive to a load balancer or a
//! process manager.
//!
//! Peers' heights come from the consensus messages the engine receives. One Byzantine
//! validator could claim any height, so the height counted is the one that at least `f + 1`
//! validators have reached (the `(f+1)`-th highest), which at least one honest validator has.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use custody_ledger::view::NodeHealth;
use custody_ledger::PublicKey;

/// How long a node may go without a commit while `f + 1` validators are past it before it
/// calls itself stalled: longer than a few rounds with growing timeouts, far shorter than
/// what an operator would tolerate.
pub const STALL_MS: u64 = 15_000;

/// How many heights `f + 1` validators must be ahead before a node can be stalled: one
/// height ahead is normal (they are deciding the next block while this node stores the last).
const STALL_LAG_BLOCKS: u64 = 2;

/// A critical task that ended, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The task's name, as the logs and `/v1/status` give it.
    pub task: &'static str,
    /// Why it ended: its error, its panic message, or that it returned.
    pub reason: String,
}

#[derive(Debug)]
struct Inner {
    failure: Option<TaskFailure>,
    head: u64,
    advanced_at: Instant,
    peer_heights: BTreeMap<PublicKey, u64>,
}

/// The node's health, shared by the supervisor, the host's commits, the consensus event
/// watcher and the API.
#[derive(Debug)]
pub struct Health {
    /// How many validators may be faulty: `f` of `n = 3f + 1`.
    faulty_max: usize,
    inner: Mutex<Inner>,
}

impl Health {
    /// A healthy node at `head`, in a network of `validators` validators.
    pub fn new(validators: usize, head: u64, now: Instant) -> Health {
        Health {
            faulty_max: validators.saturating_sub(1) / 3,
            inner: Mutex::new(Inner {
                failure: None,
                head,
                advanced_at: now,
                peer_heights: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent (every update is one
        // assignment), so a poisoned lock is still read.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the first critical task to end; later ones are consequences.
    pub fn task_failed(&self, failure: TaskFailure) {
        let mut inner = self.lock();
        if inner.failure.is_none() {
            inner.failure = Some(failure);
        }
    }

    /// The recorded failure, if any.
    pub fn failure(&self) -> Option<TaskFailure> {
        self.lock().failure.clone()
    }

    /// This node committed `height`.
    pub fn committed(&self, height: u64, now: Instant) {
        let mut inner = self.lock();
        if height > inner.head {
            inner.head = height;
            inner.advanced_at = now;
        }
    }

    /// A validator's consensus message for `height` arrived.
    pub fn peer_at(&self, validator: PublicKey, height: u64) {
        let mut inner = self.lock();
        let known = inner.peer_heights.entry(validator).or_insert(0);
        *known = (*known).max(height);
    }

    /// The height that at least `f + 1` validators heard from have reached.
    fn peers_height(&self, inner: &Inner) -> Option<u64> {
        let mut heights: Vec<u64> = inner.peer_heights.values().copied().collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.get(self.faulty_max).copied()
    }

    /// The report `/healthz` and `/v1/status` give.
    pub fn report(&self, now: Instant) -> NodeHealth {
        let inner = self.lock();
        let peers_height = self.peers_height(&inner);
        let still_ms = u64::try_from(now.saturating_duration_since(inner.advanced_at).as_millis())
            .unwrap_or(u64::MAX);
        let mut problems = Vec::new();
        if let Some(failure) = &inner.failure {
            problems.push(format!(
                "critical task {} stopped: {}",
                failure.task, failure.reason
            ));
        }
        if let Some(peers) = peers_height {
            // A validator deciding height `peers` has committed `peers - 1`.
            if peers.saturating_sub(1) >= inner.head + STALL_LAG_BLOCKS && still_ms >= STALL_MS {
                problems.push(format!(
                    "not advancing: this node has been at height {} for {} s while validators \
                     are deciding height {peers}",
                    inner.head,
                    still_ms / 1000
                ));
            }
        }
        NodeHealth {
            healthy: problems.is_empty(),
            problems,
            failed_task: inner.failure.as_ref().map(|f| f.task.to_string()),
            peers_height,
            since_last_commit_ms: still_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    #[test]
    fn a_failed_task_is_unhealthy_and_the_first_failure_is_kept() {
        let start = Instant::now();
        let health = Health::new(4, 0, start);
        assert!(health.report(start).healthy);
        health.task_failed(TaskFailure {
            task: "consensus host",
            reason: "panicked: boom".into(),
        });
        health.task_failed(TaskFailure {
            task: "http",
            reason: "ended".into(),
        });
        let report = health.report(start);
        assert!(!report.healthy);
        assert_eq!(report.failed_task.as_deref(), Some("consensus host"));
        assert!(report.problems[0].contains("panicked: boom"), "{report:?}");
    }

    #[test]
    fn a_node_left_behind_is_unhealthy_only_after_the_stall_time() {
        let start = Instant::now();
        let health = Health::new(4, 10, start);
        for n in 1..=3 {
            health.peer_at(key(n), 20);
        }
        assert!(health.report(start).healthy, "not stalled yet");
        let later = start + Duration::from_millis(STALL_MS);
        let report = health.report(later);
        assert!(!report.healthy);
        assert_eq!(report.peers_height, Some(20));
        assert!(report.problems[0].contains("height 10"), "{report:?}");
        // Catching up makes it healthy again.
        health.committed(19, later);
        assert!(health.report(later).healthy);
    }

    #[test]
    fn one_validator_claiming_a_far_height_is_not_believed() {
        let start = Instant::now();
        let health = Health::new(4, 10, start);
        health.peer_at(key(1), 1_000_000);
        health.peer_at(key(2), 11);
        let later = start + Duration::from_millis(STALL_MS * 2);
        let report = health.report(later);
        assert_eq!(report.peers_height, Some(11));
        assert!(report.healthy, "{report:?}");
    }
}
