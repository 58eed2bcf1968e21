//! Load through the SDK while a schedule injects faults, and a Jepsen-style check of what the
//! network did.
//!
//! The [`Load`] submits shipment lifecycles (each event after the previous one is committed,
//! as a client of a real shipment must) to the nodes that are up, with `?wait=commit`, and
//! records every attempt in a [`History`]: acknowledged (a receipt, or "already on the
//! ledger"), refused (a problem document), or unknown (no answer in time: the node may or may
//! not have taken it). A refused or unknown event is tried again on another node.
//!
//! The [`check`] then holds the history and the stores to what the protocol promises:
//! every acknowledged event committed exactly once on every node, every node agreeing on
//! every height, every chain verifying with the rules, and no block decided while fewer than
//! 2f+1 validators could talk (against the [`Timeline`] the rig recorded).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use custody_client::{Client, Submitted};
use custody_ledger::event::EncodedEvent;
use custody_ledger::store::Store;
use custody_ledger::EventId;
use custody_sled::SledStore;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use crate::connectivity::Timeline;
use crate::network::Network;
use crate::wait::now_ms;

/// How long the load waits for one answer; a paused node never answers.
const ANSWER_TIMEOUT_MS: u64 = 8_000;

/// Pause before an event is tried again.
const RETRY_PAUSE_MS: u64 = 300;

/// Attempts at one event before its shipment is given up (reported, not an error: a
/// schedule may keep the network down longer than that).
const ATTEMPTS_MAX: u32 = 200;

/// How long before a decision the network must have had a quorum at some moment. A
/// decision needs precommits that were sent before it; a node may still be writing the
/// block a moment after a cut, so the window reaches back this far.
const DECISION_GRACE_MS: u64 = 2_000;

/// What one attempt at an event got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `200` with a receipt at this height.
    Committed {
        /// The receipt's block height.
        height: u64,
    },
    /// `event.duplicate`: the node says the event is already on its ledger.
    AlreadyCommitted,
    /// `202`: admitted, not committed within the node's wait.
    Pending,
    /// A problem document with this code.
    Refused {
        /// The stable code.
        code: String,
    },
    /// No answer, or no answer the client could read.
    Unknown {
        /// What went wrong.
        error: String,
    },
}

impl Outcome {
    /// Whether the system told the client the event is on the ledger.
    pub fn acknowledged(&self) -> bool {
        matches!(self, Outcome::Committed { .. } | Outcome::AlreadyCommitted)
    }
}

/// One attempt.
#[derive(Debug, Clone)]
pub struct Op {
    /// The event.
    pub event: EventId,
    /// The node it went to.
    pub node: usize,
    /// Unix ms at the request and at the answer.
    pub invoked_ms: u64,
    /// Unix ms at the answer.
    pub completed_ms: u64,
    /// The answer.
    pub outcome: Outcome,
}

/// Every attempt of a run, in completion order.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The attempts.
    pub ops: Vec<Op>,
    /// Shipments whose next event ran out of attempts.
    pub abandoned: usize,
}

impl History {
    /// The events the system acknowledged at least once.
    pub fn acknowledged(&self) -> BTreeSet<EventId> {
        self.ops
            .iter()
            .filter(|op| op.outcome.acknowledged())
            .map(|op| op.event)
            .collect()
    }

    fn count(&self, pick: impl Fn(&Outcome) -> bool) -> usize {
        self.ops.iter().filter(|op| pick(&op.outcome)).count()
    }
}

/// The node addresses the load may use, kept current by the test as nodes come and go.
pub type Endpoints = Arc<Mutex<Vec<Option<SocketAddr>>>>;

/// Load running in the background; [`Load::stop`] ends it and returns the history.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts `concurrency` clients, each taking the next shipment (a list of events to
    /// commit in order) until all are done or the load is stopped.
    pub fn start(
        endpoints: Endpoints,
        shipments: Vec<Vec<EncodedEvent>>,
        concurrency: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(History::default()));
        let queue = Arc::new(Mutex::new(shipments.into_iter().enumerate()));
        let (stop_flag, record) = (stop.clone(), history.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the load");
            runtime.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..concurrency.max(1) {
                    let (endpoints, queue) = (endpoints.clone(), queue.clone());
                    let (stop, record) = (stop_flag.clone(), record.clone());
                    tasks.spawn(async move {
                        loop {
                            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                            let Some((index, events)) = next else { return };
                            run_shipment(&endpoints, &stop, &record, index, &events).await;
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
            });
        });
        Load {
            stop,
            history,
            thread: Some(thread),
        }
    }

    /// Whether every shipment is done.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Events acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acknowledged()
            .len()
    }

    /// Stops the clients (each finishes its attempt in flight, bounded by the answer
    /// timeout) and returns the history.
    pub fn stop(mut self) -> History {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Commits one shipment's events in order, trying each on the nodes that are up in turn.
async fn run_shipment(
    endpoints: &Endpoints,
    stop: &AtomicBool,
    history: &Mutex<History>,
    index: usize,
    events: &[EncodedEvent],
) {
    for event in events {
        let mut attempt: u32 = 0;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if attempt >= ATTEMPTS_MAX {
                history.lock().unwrap_or_else(|e| e.into_inner()).abandoned += 1;
                return;
            }
            let choice = {
                let list = endpoints.lock().unwrap_or_else(|e| e.into_inner());
                let up: Vec<(usize, SocketAddr)> = list
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| a.map(|a| (i, a)))
                    .collect();
                (!up.is_empty()).then(|| up[(index + attempt as usize) % up.len()])
            };
            attempt += 1;
            let Some((node, addr)) = choice else {
                tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
                continue;
            };
            let invoked_ms = now_ms();
            let outcome = submit(addr, event).await;
            let done = outcome.acknowledged();
            history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ops
                .push(Op {
                    event: event.id(),
                    node,
                    invoked_ms,
                    completed_ms: now_ms(),
                    outcome,
                });
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
        }
    }
}

/// One submission through the SDK, with `?wait=commit`.
async fn submit(addr: SocketAddr, event: &EncodedEvent) -> Outcome {
    let client = match Client::new(&format!("http://{addr}")) {
        Ok(client) => client,
        Err(error) => {
            return Outcome::Unknown {
                error: error.to_string(),
            }
        }
    };
    let answer = tokio::time::timeout(
        Duration::from_millis(ANSWER_TIMEOUT_MS),
        client.submit(event, true),
    )
    .await;
    match answer {
        Err(_) => Outcome::Unknown {
            error: format!("no answer within {ANSWER_TIMEOUT_MS} ms"),
        },
        Ok(Ok(Submitted::Committed(receipt))) => Outcome::Committed {
            height: receipt.height,
        },
        Ok(Ok(Submitted::Pending(_))) => Outcome::Pending,
        Ok(Err(error)) => match error.code() {
            Some("event.duplicate") => Outcome::AlreadyCommitted,
            Some(code) => Outcome::Refused { code: code.into() },
            None => Outcome::Unknown {
                error: error.detail(),
            },
        },
    }
}

/// A fault the schedule injects, then holds for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL one node.
    Kill(usize),
    /// Start a killed node again.
    Start(usize),
    /// SIGSTOP one node.
    Pause(usize),
    /// SIGCONT.
    Resume(usize),
    /// Cut every link between groups.
    Partition(Vec<Vec<usize>>),
    /// Lose everything the first sends the second.
    OneWay(usize, usize),
    /// Hold every chunk between two nodes.
    Delay(usize, usize, u64),
    /// Cut and heal one node's links, `times` times, `period_ms` each way.
    Flap {
        /// The node.
        node: usize,
        /// How many cuts.
        times: u32,
        /// How long each cut and each heal lasts.
        period_ms: u64,
    },
    /// SIGKILL every node.
    KillAll,
    /// Start every node that is down.
    StartAll,
    /// Every link open, every paused node resumed, every killed node started.
    Heal,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill(i) => write!(f, "kill {i}"),
            Fault::Start(i) => write!(f, "start {i}"),
            Fault::Pause(i) => write!(f, "pause {i}"),
            Fault::Resume(i) => write!(f, "resume {i}"),
            Fault::Partition(groups) => write!(f, "partition {groups:?}"),
            Fault::OneWay(a, b) => write!(f, "one-way {a} -/-> {b}"),
            Fault::Delay(a, b, ms) => write!(f, "delay {a} <-> {b} {ms} ms"),
            Fault::Flap {
                node,
                times,
                period_ms,
            } => write!(f, "flap {node} x{times} every {period_ms} ms"),
            Fault::KillAll => f.write_str("kill all"),
            Fault::StartAll => f.write_str("start all"),
            Fault::Heal => f.write_str("heal"),
        }
    }
}

/// One step of a schedule: a fault, then a pause with it in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The fault.
    pub fault: Fault,
    /// How long it holds before the next step.
    pub hold_ms: u64,
}

fn step(fault: Fault, hold_ms: u64) -> Step {
    Step { fault, hold_ms }
}

/// The schedule that runs on every commit (well under 3 minutes with a 4-validator network
/// and the auditor as node 4): each kind of fault once, quorum kept and quorum lost.
pub fn short_schedule() -> Vec<Step> {
    vec![
        step(Fault::Kill(1), 6_000),
        step(Fault::Start(1), 4_000),
        step(Fault::Pause(2), 6_000),
        step(Fault::Resume(2), 4_000),
        // A minority cut off: the other three decide.
        step(Fault::Partition(vec![vec![3], vec![0, 1, 2, 4]]), 6_000),
        step(Fault::Heal, 4_000),
        // No side has 2f+1: nothing may be decided until it heals.
        step(Fault::Partition(vec![vec![0, 1], vec![2, 3, 4]]), 8_000),
        step(Fault::Heal, 5_000),
        step(Fault::OneWay(0, 1), 6_000),
        step(Fault::Delay(2, 3, 150), 5_000),
        step(Fault::Heal, 4_000),
        step(
            Fault::Flap {
                node: 0,
                times: 4,
                period_ms: 1_000,
            },
            3_000,
        ),
        step(Fault::KillAll, 2_000),
        step(Fault::StartAll, 6_000),
    ]
}

/// A random schedule of `steps` faults drawn from `seed` (the same seed, the same schedule),
/// for a network of `nodes` nodes of which `validators` are validators. Each fault is
/// undone within a few steps, so the network spends most of its time able to decide.
pub fn random_schedule(seed: u64, steps: usize, nodes: usize, validators: usize) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut schedule = Vec::with_capacity(steps * 2);
    for _ in 0..steps {
        let node = rng.gen_range(0..nodes);
        let other = (node + rng.gen_range(1..nodes)) % nodes;
        let hold_ms = rng.gen_range(2_000..12_000);
        let fault = match rng.gen_range(0..9) {
            0 => Fault::Kill(node),
            1 => Fault::Pause(node),
            2 => {
                let mut shuffled: Vec<usize> = (0..nodes).collect();
                for k in (1..shuffled.len()).rev() {
                    shuffled.swap(k, rng.gen_range(0..=k));
                }
                let split = rng.gen_range(1..nodes);
                Fault::Partition(vec![shuffled[..split].to_vec(), shuffled[split..].to_vec()])
            }
            3 => Fault::OneWay(node, other),
            4 => Fault::Delay(node, other, rng.gen_range(20..400)),
            5 => Fault::Flap {
                node,
                times: rng.gen_range(2..6),
                period_ms: rng.gen_range(300..2_000),
            },
            6 if rng.gen_range(0..4) == 0 => Fault::KillAll,
            _ => Fault::Kill(rng.gen_range(0..validators)),
        };
        schedule.push(step(fault, hold_ms));
        schedule.push(step(Fault::Heal, rng.gen_range(3_000..10_000)));
    }
    schedule
}

/// Applies one fault to the network and keeps `endpoints` current.
pub fn apply(network: &mut Network, fault: &Fault, endpoints: &Endpoints) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(i) => network.kill(*i),
        Fault::Start(i) => network.start(*i)?,
        Fault::Pause(i) => network.pause(*i)?,
        Fault::Resume(i) => network.resume(*i)?,
        Fault::Partition(groups) => {
            let groups: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
            network.partition(&groups);
        }
        Fault::OneWay(a, b) => network.cut_one_way(*a, *b),
        Fault::Delay(a, b, ms) => network.delay(*a, *b, *ms),
        Fault::Flap {
            node,
            times,
            period_ms,
        } => {
            for _ in 0..*times {
                let others: Vec<usize> = (0..network.len()).filter(|j| j != node).collect();
                network.partition(&[&[*node], &others]);
                std::thread::sleep(Duration::from_millis(*period_ms));
                network.heal();
                std::thread::sleep(Duration::from_millis(*period_ms));
            }
        }
        Fault::KillAll => {
            for i in 0..network.len() {
                network.kill(i);
            }
        }
        Fault::StartAll => network.start_all()?,
        Fault::Heal => {
            network.heal();
            for i in 0..network.len() {
                if network.is_paused(i) {
                    network.resume(i)?;
                }
            }
            network.start_all()?;
        }
    }
    *endpoints.lock().unwrap_or_else(|e| e.into_inner()) = (0..network.len())
        .map(|i| network.is_running(i).then(|| network.http(i)))
        .collect();
    Ok(())
}

/// The network's current endpoints, for [`Load::start`].
pub fn endpoints(network: &Network) -> Endpoints {
    Arc::new(Mutex::new(
        (0..network.len())
            .map(|i| network.is_running(i).then(|| network.http(i)))
            .collect(),
    ))
}

/// What a run did and what the check found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Faults injected (a flap counts each cut).
    pub faults: usize,
    /// Submission attempts.
    pub attempts: usize,
    /// Events acknowledged.
    pub acknowledged: usize,
    /// Attempts answered with no answer in time.
    pub unknown: usize,
    /// Attempts refused.
    pub refused: usize,
    /// Refusals by code.
    pub refused_codes: BTreeMap<String, usize>,
    /// Acknowledged events missing from some node.
    pub lost: usize,
    /// Events committed more than once on some node.
    pub duplicated: usize,
    /// Events committed that no one acknowledged (the answer was lost): allowed.
    pub committed_unacknowledged: usize,
    /// Heights every node agrees on.
    pub height: u64,
    /// Blocks decided while no 2f+1 validators could talk.
    pub decided_without_quorum: Vec<u64>,
    /// Milliseconds the network spent without a quorum.
    pub no_quorum_ms: u64,
    /// Shipments given up after too many attempts.
    pub abandoned: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "faults {}, attempts {}, acknowledged {}, unknown {}, refused {}, lost {}, \
             duplicated {}, committed unacknowledged {}, height {}, decided without quorum {:?}, \
             {} ms without quorum, abandoned shipments {}, refusals by code {:?}",
            self.faults,
            self.attempts,
            self.acknowledged,
            self.unknown,
            self.refused,
            self.lost,
            self.duplicated,
            self.committed_unacknowledged,
            self.height,
            self.decided_without_quorum,
            self.no_quorum_ms,
            self.abandoned,
            self.refused_codes
        )
    }
}

/// Counts the faults a schedule injects.
pub fn fault_count(schedule: &[Step]) -> usize {
    schedule
        .iter()
        .map(|s| match &s.fault {
            Fault::Heal | Fault::Start(_) | Fault::StartAll | Fault::Resume(_) => 0,
            Fault::Flap { times, .. } => *times as usize,
            _ => 1,
        })
        .sum()
}

/// Every event of every block of `store`, with how many times each appears.
fn committed_events(store: &SledStore) -> anyhow::Result<BTreeMap<EventId, usize>> {
    let head = store.head()?.map_or(0, |h| h.height);
    let mut counts = BTreeMap::new();
    let mut from = 1;
    while from <= head {
        let blocks = store.blocks(from, 64)?;
        if blocks.is_empty() {
            bail!("no block at height {from} below the head {head}");
        }
        for block in &blocks {
            for event in &block.events {
                *counts.entry(event.id()).or_insert(0) += 1;
            }
        }
        from += blocks.len() as u64;
    }
    Ok(counts)
}

/// Checks a finished run. Every node must be stopped; the stores are read from disk.
pub fn check(
    network: &Network,
    history: &History,
    timeline: &Timeline,
    faults: usize,
) -> anyhow::Result<Report> {
    let stores: Vec<SledStore> = (0..network.len())
        .map(|i| network.open_store(i))
        .collect::<anyhow::Result<_>>()?;
    let height = crate::network::compare_stores(&stores, network.genesis())?;
    let acknowledged = history.acknowledged();
    let mut report = Report {
        faults,
        attempts: history.ops.len(),
        acknowledged: acknowledged.len(),
        unknown: history.count(|o| matches!(o, Outcome::Unknown { .. })),
        refused: history.count(|o| matches!(o, Outcome::Refused { .. })),
        abandoned: history.abandoned,
        height,
        no_quorum_ms: timeline.no_quorum_ms(now_ms()),
        ..Report::default()
    };
    for op in &history.ops {
        if let Outcome::Refused { code } = &op.outcome {
            *report.refused_codes.entry(code.clone()).or_insert(0) += 1;
        }
    }
    let mut lost: BTreeSet<EventId> = BTreeSet::new();
    let mut duplicated: BTreeSet<EventId> = BTreeSet::new();
    let mut unacknowledged: BTreeSet<EventId> = BTreeSet::new();
    for store in &stores {
        let counts = committed_events(store)?;
        lost.extend(acknowledged.iter().filter(|e| !counts.contains_key(e)));
        duplicated.extend(counts.iter().filter(|(_, n)| **n > 1).map(|(e, _)| *e));
        unacknowledged.extend(counts.keys().filter(|e| !acknowledged.contains(e)));
    }
    report.lost = lost.len();
    report.duplicated = duplicated.len();
    report.committed_unacknowledged = unacknowledged.len();
    report.decided_without_quorum = decisions_without_quorum(network, timeline);
    Ok(report)
}

/// Heights whose first commit on any node came when the network had had no quorum for the
/// whole [`DECISION_GRACE_MS`] before it.
fn decisions_without_quorum(network: &Network, timeline: &Timeline) -> Vec<u64> {
    let mut first: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..network.len() {
        for (height, at_ms) in network.commits(i) {
            let entry = first.entry(height).or_insert(at_ms);
            *entry = (*entry).min(at_ms);
        }
    }
    first
        .into_iter()
        .filter(|(_, at_ms)| {
            !timeline.quorum_during(at_ms.saturating_sub(DECISION_GRACE_MS), *at_ms)
        })
        .map(|(height, _)| height)
        .collect()
}

/// Fails with the report unless the run kept every promise.
pub fn assert_sound(report: &Report) -> anyhow::Result<()> {
    if report.lost > 0 || report.duplicated > 0 || !report.decided_without_quorum.is_empty() {
        return Err(anyhow!("the network broke a promise: {report}"));
    }
    if report.acknowledged == 0 {
        return Err(anyhow!(
            "nothing was acknowledged, so nothing was tested: {report}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = random_schedule(7, 20, 5, 4);
        assert_eq!(a, random_schedule(7, 20, 5, 4));
        assert_ne!(a, random_schedule(8, 20, 5, 4));
        assert!(a.iter().all(|s| match &s.fault {
            Fault::Kill(i) | Fault::Pause(i) => *i < 5,
            Fault::Partition(groups) => groups.iter().map(Vec::len).sum::<usize>() == 5,
            _ => true,
        }));
    }

    #[test]
    fn the_short_schedule_injects_every_kind_of_fault() {
        let schedule = short_schedule();
        let has = |pick: fn(&Fault) -> bool| schedule.iter().any(|s| pick(&s.fault));
        assert!(has(|f| matches!(f, Fault::Kill(_))));
        assert!(has(|f| matches!(f, Fault::Pause(_))));
        assert!(has(|f| matches!(f, Fault::Partition(_))));
        assert!(has(|f| matches!(f, Fault::OneWay(..))));
        assert!(has(|f| matches!(f, Fault::Flap { .. })));
        assert!(has(|f| matches!(f, Fault::KillAll)));
        let total_ms: u64 = schedule.iter().map(|s| s.hold_ms).sum();
        assert!(total_ms < 120_000, "{total_ms} ms");
    }
}
