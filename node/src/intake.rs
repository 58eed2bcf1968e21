//! The admission queue: the one bounded way in for events, from the API (single events and
//! batches) and from gossip, checked in batches on a thread of its own.
//!
//! Callers never wait for room: a full queue refuses at once (the API answers 503 with
//! `Retry-After`, gossip ignores the message without penalty), so memory stays bounded
//! whatever the load. The worker takes every job waiting, up to [`BATCH_EVENTS_MAX`]
//! events, and checks them together: the stateless checks, then all signatures in one batch
//! (`event::verify_many`: the single check names a bad one and decides its verdict), then
//! the rules and the state machine in order against one load of the committed state
//! (`admission::judge_batch`). Signature checks and store reads thus never run on a tokio
//! worker or on the gossip swarm's task.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use custody_contracts::ContractRules;
use custody_ledger::event::{check_encoded, verify_many, EncodedEvent, VerifiedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::KeyCache;
use custody_ledger::model::ShipmentId;
use custody_sled::SledStore;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::admission::{judge_batch, Refusal};
use crate::gossip::Verdict;
use crate::mempool::{Admission, Mempool, MempoolError};

/// Most jobs waiting in the queue. A job holds at most a batch's events
/// (`BATCH_EVENTS_MAX` of the API), so the queue holds a bounded number of bytes.
pub const QUEUE_JOBS_MAX: usize = 256;

/// Most events the worker checks in one batch (it takes whole jobs, so one large job may
/// exceed it alone).
pub const BATCH_EVENTS_MAX: usize = 2_048;

/// What became of one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Admitted now: it waits in the mempool and should be gossiped.
    Added(VerifiedEvent),
    /// Already waiting in the mempool: nothing changed (a resubmission is harmless).
    Waiting(VerifiedEvent),
    /// The checks refused it.
    Refused(Refusal),
    /// It passed the checks, but the mempool could not take it.
    Pool(MempoolError),
}

/// The queue is full: the caller should retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the admission queue is full ({QUEUE_JOBS_MAX} jobs waiting); retry later")]
pub struct Busy;

/// One piece of work for the worker.
enum Job {
    /// Events from the API, to admit to the mempool in order.
    Submit {
        events: Vec<EncodedEvent>,
        reply: oneshot::Sender<Vec<Entered>>,
    },
    /// The events of one gossip message, to judge; the swarm is answered through `reply`.
    Gossip {
        events: Vec<Vec<u8>>,
        reply: Box<dyn FnOnce(Vec<Verdict>) + Send>,
    },
}

impl Job {
    fn len(&self) -> usize {
        match self {
            Job::Submit { events, .. } => events.len(),
            Job::Gossip { events, .. } => events.len(),
        }
    }
}

/// What the worker reads to judge events.
pub struct Judge {
    /// The ledger.
    pub store: Arc<SledStore>,
    /// The network's genesis.
    pub genesis: Arc<Genesis>,
    /// The rules as of the committed head, as the consensus host keeps them.
    pub rules: Arc<RwLock<ContractRules>>,
    /// Where admitted events wait.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Parsed keys, shared with the host.
    pub keys: Arc<KeyCache>,
}

/// The sending side of the queue, cheap to clone.
#[derive(Debug, Clone)]
pub struct Intake {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} events)", self.len())
    }
}

impl Intake {
    /// Starts the worker thread. It ends when every `Intake` is dropped.
    pub fn start(judge: Judge) -> std::io::Result<Intake> {
        let (jobs, queue) = mpsc::channel(QUEUE_JOBS_MAX);
        std::thread::Builder::new()
            .name("custody-intake".into())
            .spawn(move || run(queue, &judge))?;
        Ok(Intake { jobs })
    }

    /// Resolves once the worker has stopped. It runs while any `Intake` lives, so this means
    /// it panicked: the supervisor watches for it, since a node that admits nothing must not
    /// go on as if it were alive.
    pub async fn stopped(&self) {
        self.jobs.closed().await
    }

    /// Admits `events` in order, each judged after the earlier ones of the list; one verdict
    /// per event, in order. `Err(Busy)` at once if the queue is full.
    pub async fn submit(&self, events: Vec<EncodedEvent>) -> Result<Vec<Entered>, Busy> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job::Submit { events, reply })
            .map_err(|_| Busy)?;
        // The worker answers every job it takes; it is gone only if the node is stopping.
        answer.await.map_err(|_| Busy)
    }

    /// The gossip validator: hands the events of a message to the worker, whose verdicts go
    /// to the swarm through the callback. Refuses (false) when the queue is full.
    pub fn gossip_validator(&self) -> crate::gossip::Validator {
        let jobs = self.jobs.clone();
        Arc::new(move |events, reply| jobs.try_send(Job::Gossip { events, reply }).is_ok())
    }
}

/// The worker: takes every waiting job up to a batch, checks them together, answers each.
fn run(mut queue: mpsc::Receiver<Job>, judge: &Judge) {
    while let Some(first) = queue.blocking_recv() {
        let mut count = first.len();
        let mut batch = vec![first];
        // Bounded by BATCH_EVENTS_MAX and by the queue's length.
        while count < BATCH_EVENTS_MAX {
            let Ok(job) = queue.try_recv() else { break };
            count += job.len();
            batch.push(job);
        }
        process(judge, batch);
    }
}

/// One event of a batch on its way through the checks.
enum Slot {
    /// Refused or settled before the signature check.
    Done(Outcome),
    /// To verify.
    Check(EncodedEvent),
    /// Verified, to judge.
    Judge(VerifiedEvent),
}

/// The verdict on one event, before it is turned into the answer its source expects.
#[derive(Debug)]
enum Outcome {
    Waiting(VerifiedEvent),
    Known,
    Refused(Refusal),
    Passed(VerifiedEvent),
}

/// Checks a batch of jobs and answers each.
fn process(judge: &Judge, batch: Vec<Job>) {
    // Each job's events, as slots, in order; the jobs' kinds kept to answer them.
    let mut slots: Vec<Vec<Slot>> = batch.iter().map(|job| precheck(judge, job)).collect();
    verify_slots(judge, &mut slots);
    let gossip: Vec<bool> = batch
        .iter()
        .map(|job| matches!(job, Job::Gossip { .. }))
        .collect();
    let outcomes = judge_slots(judge, slots, &gossip);
    for (job, outcomes) in batch.into_iter().zip(outcomes) {
        match job {
            Job::Submit { reply, .. } => {
                let _ = reply.send(enter(judge, outcomes));
            }
            Job::Gossip { reply, .. } => reply(outcomes.into_iter().map(verdict).collect()),
        }
    }
}

/// Decoding (gossip), the stateless checks, and events the mempool already holds.
fn precheck(judge: &Judge, job: &Job) -> Vec<Slot> {
    let genesis = &judge.genesis;
    let pool = judge.mempool.blocking_lock();
    let mut stateless = |event: EncodedEvent| {
        if let Some(held) = pool.get(&event.id()) {
            return Slot::Done(Outcome::Waiting(held));
        }
        match check_encoded(&event, &genesis.chain_id) {
            Ok(()) => Slot::Check(event),
            Err(r) => Slot::Done(Outcome::Refused(Refusal::Invalid(r))),
        }
    };
    match job {
        Job::Submit { events, .. } => events.iter().cloned().map(&mut stateless).collect(),
        Job::Gossip { events, .. } => events
            .iter()
            .map(|bytes| match EncodedEvent::decode_untrusted(bytes) {
                Ok(event) => match stateless(event) {
                    // Gossip ignores what it already holds.
                    Slot::Done(Outcome::Waiting(_)) => Slot::Done(Outcome::Known),
                    slot => slot,
                },
                Err(r) => Slot::Done(Outcome::Refused(Refusal::Invalid(r))),
            })
            .collect(),
    }
}

/// Verifies the signatures of every slot to check, across all jobs, in one batch.
fn verify_slots(judge: &Judge, slots: &mut [Vec<Slot>]) {
    let mut unchecked = Vec::new();
    for slot in slots.iter_mut().flatten() {
        if let Slot::Check(event) = slot {
            unchecked.push(event.clone());
        }
    }
    let mut verdicts = verify_many(unchecked, &judge.keys).into_iter();
    for slot in slots.iter_mut().flatten() {
        if matches!(slot, Slot::Check(_)) {
            *slot = match verdicts.next().expect("one verdict per event checked") {
                Ok(event) => Slot::Judge(event),
                Err(r) => Slot::Done(Outcome::Refused(Refusal::Invalid(r))),
            };
        }
    }
}

/// Runs the rules and the state machine over every verified slot, in order, after the
/// mempool's events of the shipments they touch. Gossip's events are judged on the committed
/// state as well, but a refusal that may only mean a predecessor is still in flight passes.
fn judge_slots(judge: &Judge, slots: Vec<Vec<Slot>>, gossip: &[bool]) -> Vec<Vec<Outcome>> {
    let verified: Vec<&VerifiedEvent> = slots
        .iter()
        .flatten()
        .filter_map(|slot| match slot {
            Slot::Judge(event) => Some(event),
            _ => None,
        })
        .collect();
    let pending = pending_for(judge, &verified);
    let rules = judge.rules.read().expect("rules lock").clone();
    let at = crate::clock::now();
    let verdicts = judge_batch(
        judge.store.as_ref(),
        &judge.genesis,
        &rules,
        &pending,
        &verified,
        at,
    );
    let mut verdicts = match verdicts {
        Ok(verdicts) => verdicts.into_iter(),
        Err(error) => {
            let cause = custody_ledger::cause::Cause::new(error);
            vec![Err(Refusal::Unavailable(cause)); verified.len()].into_iter()
        }
    };
    slots
        .into_iter()
        .zip(gossip)
        .map(|(job, &gossiped)| {
            job.into_iter()
                .map(|slot| match slot {
                    Slot::Done(outcome) => outcome,
                    Slot::Check(_) => unreachable!("every slot to check was verified"),
                    Slot::Judge(event) => {
                        let verdict = verdicts.next().expect("one verdict per event judged");
                        judged(event, verdict, gossiped)
                    }
                })
                .collect()
        })
        .collect()
}

/// One verified event's verdict.
fn judged(event: VerifiedEvent, verdict: Result<(), Refusal>, gossiped: bool) -> Outcome {
    match verdict {
        Ok(()) => Outcome::Passed(event),
        // Causal predecessors may still be in flight on gossip; the proposer re-checks in
        // order.
        Err(Refusal::Invalid(r)) if gossiped && r.code.is_causal() => Outcome::Passed(event),
        Err(refusal) => Outcome::Refused(refusal),
    }
}

/// The mempool's events of the shipments `events` touch, in candidate order.
fn pending_for(judge: &Judge, events: &[&VerifiedEvent]) -> Vec<VerifiedEvent> {
    let shipments: BTreeSet<&ShipmentId> = events
        .iter()
        .filter_map(|e| e.event().event.kind.shipment_id())
        .collect();
    let pool = judge.mempool.blocking_lock();
    shipments
        .into_iter()
        .flat_map(|shipment| pool.shipment_events(shipment))
        .collect()
}

/// Puts the passed events of an API job in the mempool, in order. Once the pool is full or
/// the signer at its quota, the job's later events are refused too, so that the ones that
/// may depend on the refused one are resubmitted after it.
fn enter(judge: &Judge, outcomes: Vec<Outcome>) -> Vec<Entered> {
    let mut pool = judge.mempool.blocking_lock();
    let mut load: Option<MempoolError> = None;
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Passed(_) if load.is_some() => Entered::Pool(load.clone().expect("set")),
            Outcome::Passed(event) => match pool.insert(event.clone()) {
                Ok(Admission::Added) => Entered::Added(event),
                Ok(Admission::Duplicate) => Entered::Waiting(event),
                Err(error @ MempoolError::TooLarge { .. }) => Entered::Pool(error),
                Err(error) => {
                    load = Some(error.clone());
                    Entered::Pool(error)
                }
            },
            Outcome::Waiting(event) => Entered::Waiting(event),
            Outcome::Refused(refusal) => Entered::Refused(refusal),
            Outcome::Known => Entered::Refused(Refusal::Duplicate),
        })
        .collect()
}

/// Gossip's judgement of one event.
fn verdict(outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Passed(event) => Verdict::Accept(event),
        Outcome::Known | Outcome::Waiting(_) => Verdict::Ignore,
        Outcome::Refused(Refusal::Duplicate) => Verdict::Ignore,
        Outcome::Refused(Refusal::Unavailable(_)) => Verdict::Ignore,
        Outcome::Refused(Refusal::Invalid(r)) => Verdict::Reject(r.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use custody_contracts::load::sample_tables;
    use custody_ledger::model::EventKind;
    use custody_ledger::testkit::TestNet;

    use super::*;
    use crate::mempool::MempoolConfig;

    struct Fixture {
        _dir: tempfile::TempDir,
        net: TestNet,
        mempool: Arc<Mutex<Mempool>>,
        intake: Intake,
    }

    fn fixture(count_max: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = TestNet::new();
        let store = Arc::new(
            SledStore::open(dir.path().join("ledger"), net.genesis_hash()).expect("store"),
        );
        // Reference data in force, so registrations can pass the rules.
        let tables: Vec<EncodedEvent> = sample_tables(net.genesis.genesis_time)
            .into_iter()
            .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
            .collect();
        let built = net
            .commit_with(
                store.as_ref(),
                &ContractRules::default(),
                tables,
                net.genesis.genesis_time,
            )
            .expect("tables commit");
        assert_eq!(built.rejected, vec![]);
        let rules = Arc::new(RwLock::new(built.into_rules()));
        let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
            count_max,
            size_bytes_max: 1 << 24,
            signer_count_max: count_max,
            signer_size_bytes_max: 1 << 24,
        })));
        let intake = Intake::start(Judge {
            store,
            genesis: Arc::new(net.genesis.clone()),
            rules,
            mempool: mempool.clone(),
            keys: Default::default(),
        })
        .expect("the worker starts");
        Fixture {
            _dir: dir,
            net,
            mempool,
            intake,
        }
    }

    fn forged(net: &TestNet, shipment: &str) -> EncodedEvent {
        let mut event = net.register(shipment, "CN", "FR").into_event();
        event.signature.0[5] ^= 1;
        EncodedEvent::new(event)
    }

    fn code(entered: &Entered) -> Option<&str> {
        match entered {
            Entered::Refused(Refusal::Invalid(r)) => Some(r.code.as_str()),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_signature_inside_a_batch_is_named_and_the_rest_admitted() {
        let f = fixture(100);
        let events = vec![
            f.net.register("B-1", "CN", "FR"),
            f.net.register("B-2", "CN", "FR"),
            forged(&f.net, "B-3"),
            f.net.register("B-4", "CN", "FR"),
        ];
        let entered = f.intake.submit(events.clone()).await.expect("room");
        assert_eq!(entered.len(), 4);
        for i in [0, 1, 3] {
            assert!(
                matches!(&entered[i], Entered::Added(e) if e.id() == events[i].id()),
                "{i}: {:?}",
                entered[i]
            );
        }
        assert_eq!(code(&entered[2]), Some("signature.invalid"));
        let pool = f.mempool.lock().await;
        assert_eq!(pool.len(), 3);
        assert!(!pool.contains(&events[2].id()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_judged_in_order_and_a_resubmission_changes_nothing() {
        let f = fixture(100);
        let register = f.net.register("O-1", "CN", "FR");
        let handoff = f
            .net
            .propose_at("seller-acme", "O-1", "carrier-swift", "CNSHA");
        let accept = f.net.accept("carrier-swift", "O-1", &handoff);
        // The acceptance alone names a proposal nobody has seen.
        let alone = f.intake.submit(vec![accept.clone()]).await.expect("room");
        assert!(
            matches!(alone[0], Entered::Refused(Refusal::Invalid(_))),
            "{alone:?}"
        );
        let all = vec![register.clone(), handoff, accept];
        let entered = f.intake.submit(all.clone()).await.expect("room");
        assert!(
            entered.iter().all(|e| matches!(e, Entered::Added(_))),
            "{entered:?}"
        );
        // Twice in one batch, and again later: waiting, not added twice.
        let again = f
            .intake
            .submit(vec![register.clone(), register])
            .await
            .expect("room");
        assert!(
            again.iter().all(|e| matches!(e, Entered::Waiting(_))),
            "{again:?}"
        );
        assert_eq!(f.mempool.lock().await.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gossip_verdicts_reject_forgeries_ignore_known_and_pass_causal_gaps() {
        let f = fixture(100);
        let register = f.net.register("G-1", "CN", "FR");
        f.intake.submit(vec![register.clone()]).await.expect("room");
        let handoff = f
            .net
            .propose_at("seller-acme", "G-2", "carrier-swift", "CNSHA");
        let (tx, rx) = oneshot::channel();
        let validator = f.intake.gossip_validator();
        let taken = validator(
            vec![
                register.bytes().to_vec(),
                forged(&f.net, "G-3").bytes().to_vec(),
                b"not an event".to_vec(),
                handoff.bytes().to_vec(),
            ],
            Box::new(move |verdicts| {
                let _ = tx.send(verdicts);
            }),
        );
        assert!(taken);
        let verdicts = rx.await.expect("answered");
        assert_eq!(verdicts[0], Verdict::Ignore);
        assert!(
            matches!(&verdicts[1], Verdict::Reject(r) if r.contains("signature")),
            "{verdicts:?}"
        );
        assert!(matches!(&verdicts[2], Verdict::Reject(_)));
        // A handoff of a shipment whose registration may still be in flight passes.
        assert!(
            matches!(&verdicts[3], Verdict::Accept(e) if e.id() == handoff.id()),
            "{verdicts:?}"
        );
    }

    /// The queue holds at most QUEUE_JOBS_MAX jobs: with the worker held up (it waits for the
    /// mempool's lock, held here), further jobs are refused at once, never buffered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        use futures::FutureExt as _;
        let f = fixture(100);
        let pool = f.mempool.lock().await;
        let event = f.net.register("Q-1", "CN", "FR");
        // A first job, which the worker takes off the queue and then waits on the lock with.
        assert!(f
            .intake
            .submit(vec![event.clone()])
            .now_or_never()
            .is_none());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while f.intake.jobs.capacity() < QUEUE_JOBS_MAX {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker takes a job"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let extra = 8;
        let mut busy = 0;
        for _ in 0..QUEUE_JOBS_MAX + extra {
            // The first poll enqueues the job or meets a full queue; a queued job's answer is
            // not awaited.
            match f.intake.submit(vec![event.clone()]).now_or_never() {
                Some(Err(Busy)) => busy += 1,
                Some(Ok(answer)) => panic!("answered while the worker is held up: {answer:?}"),
                None => {}
            }
        }
        drop(pool);
        assert_eq!(busy, extra);
    }
}
