//! `bench`: load on a devnet, measured.
//!
//! **Workload.** Whole shipment lifecycles of the shared scenario ([`scenario::workload`]),
//! pre-signed before the clock starts: registration, two two-party handoffs (proposal and
//! acceptance each), the declaration (amounts from `customs::assess` against the node's
//! reference book), the payment, the release and the delivery, and for one shipment in six a
//! return requested and received. Half the shipments are EU-bound DDP parcels under the
//! low-value regime (the seller pays); half go to the sample jurisdiction QX under FOB, fully
//! assessed (the broker pays). The last shipment may be cut short to make exactly `--events`.
//!
//! **Submission.** By default (`--batch N`, 200) the events go in batches over
//! `POST /v1/events/batch?wait=commit`: each request holds whole shipments of one validator,
//! their events in order (the node admits each after its predecessor in the batch), at most
//! N events, so no request waits for another; `--inflight` events are in flight, in requests
//! of N, offered at `--rate` events per second. An event refused for load (`node.busy`,
//! `mempool.full`, `mempool.signer_quota`) is sent again after a pause; every event's latency
//! runs from its batch's first request to the answer that carries its receipt.
//!
//! With `--batch 1`, every event goes to one validator over `POST /v1/events?wait=commit`, all
//! events of a shipment to the same validator, shipments spread round robin over all
//! validators. An event is sent only once its predecessor in the shipment has been answered
//! committed — as its signer, who has seen the previous step on the ledger, would — so every
//! event is admitted against committed state. Events are dispatched in a fixed interleaved
//! order (step by step across a group of shipments), open-loop at `--rate` events per second,
//! or as fast as the nodes take them (`--rate 0`). `--inflight` workers send them, each
//! waiting for its event's commit before taking the next, each over its own keep-alive
//! connection opened before the clock starts (so that connection setup, and a listener's
//! backlog overflowing under a burst of connections, are not counted as commit latency).
//!
//! **Measures.** Submit-to-commit latency is the time from sending the request to the node's
//! `200` answer, which the node sends when the block holding the event is committed (a `202`,
//! when the commit takes longer than the node waits, is followed by polling
//! `GET /v1/events/{id}`; those latencies are counted, and reported, as upper bounds).
//! Throughput counts commits in a steady window that leaves out the first and last 10 % of
//! commits (warm-up and drain), or the first `--window-secs` of it. CPU is each node process's
//! user plus system time from `/proc/<pid>/stat`, read every 100 ms through the run: the
//! share of a core is over the whole run; disk is the size of each node's sled ledger
//! directory over the number of events in its log.
//!
//! **Efficiency.** CPU per committed event per node is the nodes' CPU time between the
//! readings that bracket the steady window, over the commits answered between those
//! readings and the number of nodes (validators and auditor), also given node by node so an
//! outlier shows. Before the load, with the nodes idle and before the workers connect, one
//! thread of this process verifies the workload's first events with the ledger's batch
//! verification, in batches of a node's largest block, for about a second: signatures per
//! second on one core. Every node must check every signature once (the floor of its work),
//! so no network of full replicas on this machine commits more than `cores × that ÷ nodes`
//! events/s; the efficiency is the steady committed rate over that rate, in thousandths.
//! Before that, unless `--idle-secs 0`, the nodes' CPU is read over a few seconds in which
//! nothing is submitted: the idle devnet's CPU, all nodes together, as a percentage of one
//! core.
//!
//! **Self-check.** Every submitted event must appear exactly once in the blocks committed
//! during the run (scanned on one node), and every node must hold the same block at a common
//! height. If not, the run fails (exit code 1).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use custody_client::personal::new_salt;
use custody_client::{Client, ClientError, Submitted};
use custody_ledger::model::ShipmentId;
use custody_ledger::view::{BatchResult, BatchStatus};
use custody_ledger::{Digest, EventId};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Mutex};

use crate::layout::{tree_size_bytes, Layout};
use crate::network::{self, Endpoint, Network, Readiness, READY_TIMEOUT_MS, STOP_TIMEOUT_MS};
use crate::process;
use crate::reference;
use crate::roster::CUSTOMS;
use crate::runstate;
use crate::scenario::{self, ShipmentPlan};
use crate::setup::{self, Devnet};
use crate::submit;

mod efficiency;
mod writes;

use efficiency::{CpuSampler, SignedBytes, VerifyMeasure, WindowCost};

/// What the benchmark was asked.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The devnet directory to use if a devnet runs there.
    pub dir: PathBuf,
    /// Events to submit.
    pub events: usize,
    /// Offered load, events per second; 0 sends as fast as the nodes accept.
    pub rate: u64,
    /// Length of the measured window, from the end of the warm-up; the whole steady part if
    /// `None`.
    pub window_secs: Option<u64>,
    /// Print one JSON object instead of text.
    pub json: bool,
    /// Most requests waiting for their commit at once.
    pub inflight: usize,
    /// Validators of the network the benchmark starts when none runs in `dir`.
    pub validators: usize,
    /// Seconds of the nodes' idle CPU measured before the load; none if 0.
    pub idle_secs: u64,
    /// Events per request through `POST /v1/events/batch` (whole shipments); 1 sends every
    /// event alone through `POST /v1/events`, each after its predecessor's commit.
    pub batch: usize,
}

/// Attempts per event when the node is busy (`503`), asks this signer to slow down (`429`)
/// or is unreachable.
const ATTEMPTS_MAX: u32 = 30;
/// Pause before retrying a busy or unreachable node.
const RETRY_PAUSE_MS: u64 = 1_000;
/// Share of commits left out at each end of the run (warm-up and drain), in percent.
const TRIM_PERCENT: usize = 10;
/// Most error messages kept for the report.
const ERRORS_KEPT: usize = 10;
/// Time spent measuring batch verification: long enough for a steady rate, short beside the
/// run.
const VERIFY_BUDGET_MS: u64 = 1_000;
/// Most batches verified in that time, so that a machine much faster than expected still
/// stops early.
const VERIFY_BATCHES_MAX: usize = 1_000;

/// The network under load: a running devnet, or one started for the run.
#[derive(Debug)]
enum Target {
    Running {
        devnet: Devnet,
        endpoints: Vec<Endpoint>,
    },
    Own {
        network: Network,
        endpoints: Vec<Endpoint>,
        dir: tempfile::TempDir,
    },
}

impl Target {
    fn devnet(&self) -> &Devnet {
        match self {
            Target::Running { devnet, .. } => devnet,
            Target::Own { network, .. } => &network.devnet,
        }
    }

    fn endpoints(&self) -> &[Endpoint] {
        match self {
            Target::Running { endpoints, .. } | Target::Own { endpoints, .. } => endpoints,
        }
    }

    fn dir(&self) -> &std::path::Path {
        self.devnet().layout.dir()
    }

    fn describe(&self) -> String {
        match self {
            Target::Running { devnet, .. } => {
                format!("the devnet running in {}", devnet.layout.dir().display())
            }
            Target::Own { dir, .. } => format!(
                "a fresh devnet started for this run in {}",
                dir.path().display()
            ),
        }
    }
}

/// Finds the devnet running in the options' directory, or starts a fresh one in a temporary
/// directory.
async fn target(options: &BenchOptions) -> anyhow::Result<Target> {
    if let Some(layout) = Layout::existing(&options.dir) {
        if let Some(state) = runstate::running(&layout)? {
            let devnet = setup::load(&layout)?;
            let endpoints = network::endpoints(&devnet, &state)?;
            if let Some(down) = state.nodes.iter().find(|n| !n.is_running()) {
                bail!(
                    "node `{}` of the devnet in {} is not running; restart the devnet first",
                    down.name,
                    layout.dir().display()
                );
            }
            return Ok(Target::Running { devnet, endpoints });
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("custody-devnet-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    eprintln!(
        "No devnet runs in {}; starting a fresh one with {} validators in {}…",
        options.dir.display(),
        options.validators,
        dir.path().display()
    );
    let layout = Layout::create(dir.path())?;
    let devnet = setup::create(&layout, options.validators, setup::now())?;
    let mut network = Network::start(devnet, true)?;
    if let Readiness::Stalled { height } = network
        .wait_ready(Duration::from_millis(READY_TIMEOUT_MS))
        .await?
    {
        bail!(
            "the fresh devnet serves but commits no block (stuck at height {height}); see the logs in {}",
            network.devnet.layout.nodes_dir().display()
        );
    }
    let endpoints = network.endpoints()?;
    Ok(Target::Own {
        network,
        endpoints,
        dir,
    })
}

/// The dispatch order: step by step across groups of `group` shipments.
fn dispatch_order(plans: &[ShipmentPlan], group: usize) -> Vec<(usize, usize)> {
    let mut order = Vec::new();
    for start in (0..plans.len()).step_by(group.max(1)) {
        let end = (start + group.max(1)).min(plans.len());
        let steps = plans[start..end]
            .iter()
            .map(|p| p.events.len())
            .max()
            .unwrap_or(0);
        for step in 0..steps {
            for (s, plan) in plans.iter().enumerate().take(end).skip(start) {
                if step < plan.events.len() {
                    order.push((s, step));
                }
            }
        }
    }
    order
}

/// How one event fared.
#[derive(Debug, Clone)]
enum Fate {
    /// Answered committed: latency from the request, commit offset from the start.
    Committed {
        latency_us: u64,
        at_us: u64,
        height: u64,
    },
    /// The node answered pending; polling found it committed (latency is an upper bound).
    Polled {
        latency_us: u64,
        at_us: u64,
        height: u64,
    },
    /// The node said it was already on the ledger (a retry after a lost answer).
    Duplicate,
    /// Refused or never confirmed.
    Failed(String),
    /// Not sent: an earlier event of its shipment failed.
    Skipped,
}

/// What the submission workers share.
struct Shared {
    plans: Vec<ShipmentPlan>,
    progress: Vec<watch::Sender<usize>>,
    poisoned: Vec<AtomicBool>,
    start: Instant,
}

impl Shared {
    fn since_start_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Sends one event through `client`, retrying a busy or unreachable node, and waits for its
/// commit.
async fn send(shared: &Shared, client: &Client, s: usize, k: usize) -> Fate {
    let event = &shared.plans[s].events[k];
    let sent = Instant::now();
    let elapsed_us =
        |since: Instant| u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
    for attempt in 1..=ATTEMPTS_MAX {
        match client.submit(event, true).await {
            Ok(Submitted::Committed(receipt)) => {
                return Fate::Committed {
                    latency_us: elapsed_us(sent),
                    at_us: shared.since_start_us(),
                    height: receipt.height,
                }
            }
            Ok(Submitted::Pending(_)) => {
                return match submit::wait_committed(
                    client,
                    &event.id(),
                    Duration::from_millis(submit::COMMIT_TIMEOUT_MS),
                )
                .await
                {
                    Ok(height) => Fate::Polled {
                        latency_us: elapsed_us(sent),
                        at_us: shared.since_start_us(),
                        height,
                    },
                    Err(e) => Fate::Failed(format!("{}: {e}", event.id())),
                }
            }
            Err(e) if e.code() == Some("event.duplicate") => return Fate::Duplicate,
            Err(
                ClientError::Transport(_)
                | ClientError::Problem {
                    status: 429 | 503, ..
                },
            ) if attempt < ATTEMPTS_MAX => {
                tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            }
            Err(e) => {
                return Fate::Failed(format!(
                    "{} {} of shipment {}: {e}",
                    event.event().event.kind.name(),
                    event.id(),
                    event
                        .event()
                        .event
                        .kind
                        .shipment_id()
                        .map(ShipmentId::as_str)
                        .unwrap_or("-")
                ))
            }
        }
    }
    Fate::Failed(format!(
        "{}: no answer after {ATTEMPTS_MAX} attempts",
        event.id()
    ))
}

/// Connections opened at once while warming up, per node: well under a listener's backlog.
const WARM_BATCH: usize = 100;

/// The submission workers of each validator: `inflight` in all, each a client with its own
/// keep-alive connection, opened (with a status request) before the clock starts, so that
/// connection setup is not counted as commit latency.
async fn connect_workers(urls: &[String], inflight: usize) -> anyhow::Result<Vec<Vec<Client>>> {
    let per_node = inflight.div_ceil(urls.len().max(1)).max(1);
    let mut workers = Vec::with_capacity(urls.len());
    for url in urls {
        let clients: Vec<Client> = (0..per_node)
            .map(|_| Client::new(url))
            .collect::<Result<_, _>>()?;
        for batch in clients.chunks(WARM_BATCH) {
            let mut warming = tokio::task::JoinSet::new();
            for client in batch {
                let client = client.clone();
                warming.spawn(async move { client.status().await });
            }
            while let Some(done) = warming.join_next().await {
                done.map_err(|e| anyhow!("a warm-up request failed: {e}"))?
                    .with_context(|| format!("connecting to {url}"))?;
            }
        }
        workers.push(clients);
    }
    Ok(workers)
}

/// Result of the submission phase.
struct Run {
    fates: Vec<Vec<Option<Fate>>>,
    wall: Duration,
    last_dispatch_us: u64,
}

/// What one worker did: (shipment, step, fate) per event it sent.
type Done = Vec<(usize, usize, Fate)>;

/// One worker: takes events for its validator from the queue until the queue closes.
/// The next job from the queue a validator's workers share. The lock is released when this
/// returns, before the job is worked on: held through the work (as a `while let` on
/// `queue.lock().await.recv().await` holds it, to the end of the loop's body), it let one
/// request per validator be in flight whatever `--inflight` said, which capped earlier
/// batched runs at about four batches per block time.
async fn next_job<T>(queue: &Mutex<mpsc::Receiver<T>>) -> Option<T> {
    queue.lock().await.recv().await
}

async fn worker(
    shared: Arc<Shared>,
    client: Client,
    queue: Arc<Mutex<mpsc::Receiver<(usize, usize)>>>,
) -> Done {
    let mut done = Vec::new();
    // Ends when the dispatcher closes the queue: at most one turn per event.
    loop {
        let Some((s, k)) = next_job(&queue).await else {
            return done;
        };
        let fate = send(&shared, &client, s, k).await;
        if matches!(fate, Fate::Failed(_)) {
            shared.poisoned[s].store(true, Ordering::Relaxed);
        }
        shared.progress[s].send_replace(k + 1);
        done.push((s, k, fate));
    }
}

/// Dispatches every event in `order` to the workers of its validator and waits for all of
/// them, within `deadline`.
async fn dispatch(
    shared: Arc<Shared>,
    workers: Vec<Vec<Client>>,
    order: &[(usize, usize)],
    rate: u64,
    deadline: tokio::time::Instant,
) -> anyhow::Result<Run> {
    let mut queues = Vec::with_capacity(workers.len());
    let mut running = tokio::task::JoinSet::new();
    for clients in workers {
        // A queue of one: the dispatcher waits for a free worker, so no event waits unseen
        // in a queue while its latency is not yet counted.
        let (tx, rx) = mpsc::channel::<(usize, usize)>(1);
        let rx = Arc::new(Mutex::new(rx));
        for client in clients {
            running.spawn(worker(shared.clone(), client, rx.clone()));
        }
        queues.push(tx);
    }
    let mut skipped = Vec::new();
    let start = tokio::time::Instant::from_std(shared.start);
    let late = || anyhow!("the run did not finish in time");
    let mut last_dispatch_us = 0;
    for (n, &(s, k)) in order.iter().enumerate() {
        if let Some(slot_ns) = (n as u64).saturating_mul(1_000_000_000).checked_div(rate) {
            tokio::time::sleep_until(start + Duration::from_nanos(slot_ns)).await;
        }
        if k > 0 {
            let mut progress = shared.progress[s].subscribe();
            tokio::time::timeout_at(deadline, progress.wait_for(|steps| *steps >= k))
                .await
                .map_err(|_| late())?
                .map_err(|_| anyhow!("a progress channel closed"))?;
        }
        if shared.poisoned[s].load(Ordering::Relaxed) {
            skipped.push((s, k));
            shared.progress[s].send_replace(k + 1);
            continue;
        }
        tokio::time::timeout_at(deadline, queues[shared.plans[s].node].send((s, k)))
            .await
            .map_err(|_| late())?
            .map_err(|_| anyhow!("the workers stopped"))?;
        last_dispatch_us = shared.since_start_us();
    }
    drop(queues);
    let mut fates = join_workers(&shared, running, deadline).await?;
    for (s, k) in skipped {
        fates[s][k] = Some(Fate::Skipped);
    }
    Ok(Run {
        fates,
        wall: shared.start.elapsed(),
        last_dispatch_us,
    })
}

/// Load refusals a batch's event is retried after: the node or its mempool is full, or the
/// signer is at its share.
const RETRYABLE_CODES: [&str; 3] = ["node.busy", "mempool.full", "mempool.signer_quota"];

/// The requests of a batched run: whole shipments of one validator each, in shipment order,
/// at most `batch` events a request (a longer shipment travels alone). A shipment's events
/// share a request, in order, so the node admits each after its predecessor (the batch's
/// order) and no request waits for another's commit.
fn batch_jobs(plans: &[ShipmentPlan], batch: usize, nodes: usize) -> Vec<(usize, Vec<usize>)> {
    let mut open: Vec<(Vec<usize>, usize)> = vec![(Vec::new(), 0); nodes];
    let mut jobs = Vec::new();
    for (s, plan) in plans.iter().enumerate() {
        let (shipments, events) = &mut open[plan.node];
        if !shipments.is_empty() && *events + plan.events.len() > batch {
            jobs.push((plan.node, std::mem::take(shipments)));
            *events = 0;
        }
        shipments.push(s);
        *events += plan.events.len();
    }
    for (node, (shipments, _)) in open.into_iter().enumerate() {
        if !shipments.is_empty() {
            jobs.push((node, shipments));
        }
    }
    jobs
}

/// Sends the events of `shipments` as one batch with `?wait=commit`, retrying the events
/// refused for load (and the whole request when the node is unreachable or busy), and says
/// how each fared. Every event's latency runs from the first request.
async fn send_batch(shared: &Shared, client: &Client, shipments: &[usize]) -> Done {
    let mut pending: Vec<(usize, usize)> = shipments
        .iter()
        .flat_map(|&s| (0..shared.plans[s].events.len()).map(move |k| (s, k)))
        .collect();
    let sent = Instant::now();
    let mut done = Vec::with_capacity(pending.len());
    for attempt in 1..=ATTEMPTS_MAX {
        let events: Vec<_> = pending
            .iter()
            .map(|&(s, k)| shared.plans[s].events[k].clone())
            .collect();
        let last = attempt == ATTEMPTS_MAX;
        match client.submit_batch(&events, true).await {
            Ok(outcome) => {
                let mut retry = Vec::new();
                for (&(s, k), result) in pending.iter().zip(outcome.results) {
                    let code = result.code.as_deref().unwrap_or("");
                    if result.status == BatchStatus::Refused
                        && RETRYABLE_CODES.contains(&code)
                        && !last
                    {
                        retry.push((s, k));
                        continue;
                    }
                    done.push((s, k, batch_fate(shared, client, sent, s, k, result).await));
                }
                if retry.is_empty() {
                    return done;
                }
                pending = retry;
            }
            Err(
                ClientError::Transport(_)
                | ClientError::Problem {
                    status: 429 | 503, ..
                },
            ) if !last => {}
            Err(e) => {
                let failed = |(s, k)| (s, k, Fate::Failed(format!("batch request: {e}")));
                done.extend(pending.into_iter().map(failed));
                return done;
            }
        }
        tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
    }
    let failed = |(s, k)| (s, k, Fate::Failed("no answer after retries".into()));
    done.extend(pending.into_iter().map(failed));
    done
}

/// How one event of a batch fared, from its result; an accepted event the node did not see
/// committed while it waited is polled for.
async fn batch_fate(
    shared: &Shared,
    client: &Client,
    sent: Instant,
    s: usize,
    k: usize,
    result: BatchResult,
) -> Fate {
    let latency_us = || u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
    match (result.status, result.receipt) {
        (BatchStatus::Accepted, Some(receipt)) => Fate::Committed {
            latency_us: latency_us(),
            at_us: shared.since_start_us(),
            height: receipt.height,
        },
        (BatchStatus::Accepted, None) => {
            let id = shared.plans[s].events[k].id();
            let timeout = Duration::from_millis(submit::COMMIT_TIMEOUT_MS);
            match submit::wait_committed(client, &id, timeout).await {
                Ok(height) => Fate::Polled {
                    latency_us: latency_us(),
                    at_us: shared.since_start_us(),
                    height,
                },
                Err(e) => Fate::Failed(format!("{id}: {e}")),
            }
        }
        (BatchStatus::Duplicate, _) => Fate::Duplicate,
        (BatchStatus::Refused, _) => Fate::Failed(format!(
            "{} {}: {} {}",
            shared.plans[s].events[k].event().event.kind.name(),
            shared.plans[s].events[k].id(),
            result.code.unwrap_or_default(),
            result.detail.unwrap_or_default()
        )),
    }
}

/// A batched run: every request of `jobs` to the workers of its validator, offered at `rate`
/// events per second (0: as fast as the workers take them), within `deadline`.
async fn dispatch_batches(
    shared: Arc<Shared>,
    workers: Vec<Vec<Client>>,
    jobs: Vec<(usize, Vec<usize>)>,
    rate: u64,
    deadline: tokio::time::Instant,
) -> anyhow::Result<Run> {
    let mut queues = Vec::with_capacity(workers.len());
    let mut running = tokio::task::JoinSet::new();
    for clients in workers {
        // A queue of one, as for single events: no request waits unseen.
        let (tx, rx) = mpsc::channel::<Vec<usize>>(1);
        let rx = Arc::new(Mutex::new(rx));
        for client in clients {
            let (shared, rx) = (shared.clone(), rx.clone());
            running.spawn(async move {
                let mut done = Vec::new();
                // Ends when the dispatcher closes the queue: one turn per request.
                while let Some(shipments) = next_job(&rx).await {
                    done.extend(send_batch(&shared, &client, &shipments).await);
                }
                done
            });
        }
        queues.push(tx);
    }
    let start = tokio::time::Instant::from_std(shared.start);
    let late = || anyhow!("the run did not finish in time");
    let (mut offered, mut last_dispatch_us) = (0u64, 0);
    for (node, shipments) in jobs {
        if let Some(slot_ns) = offered.saturating_mul(1_000_000_000).checked_div(rate) {
            tokio::time::sleep_until(start + Duration::from_nanos(slot_ns)).await;
        }
        offered += shipments
            .iter()
            .map(|&s| shared.plans[s].events.len() as u64)
            .sum::<u64>();
        tokio::time::timeout_at(deadline, queues[node].send(shipments))
            .await
            .map_err(|_| late())?
            .map_err(|_| anyhow!("the workers stopped"))?;
        last_dispatch_us = shared.since_start_us();
    }
    drop(queues);
    let fates = join_workers(&shared, running, deadline).await?;
    Ok(Run {
        fates,
        wall: shared.start.elapsed(),
        last_dispatch_us,
    })
}

/// Waits for every worker (each ends once its queue is empty and closed; the deadline only
/// guards against a bug) and puts each event's fate in its place.
async fn join_workers(
    shared: &Shared,
    mut running: tokio::task::JoinSet<Done>,
    deadline: tokio::time::Instant,
) -> anyhow::Result<Vec<Vec<Option<Fate>>>> {
    let mut fates: Vec<Vec<Option<Fate>>> = shared
        .plans
        .iter()
        .map(|p| vec![None; p.events.len()])
        .collect();
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, running.join_next()).await {
            Ok(Some(done)) => {
                for (s, k, fate) in done.map_err(|e| anyhow!("a worker failed: {e}"))? {
                    fates[s][k] = Some(fate);
                }
            }
            Ok(None) => break,
            Err(_) => {
                running.abort_all();
                bail!("the run did not finish in time");
            }
        }
    }
    Ok(fates)
}

/// Tenths as a decimal: `1234` → `123.4`.
fn tenths(x: u64) -> String {
    format!("{}.{}", x / 10, x % 10)
}

/// Tenths as a JSON number.
fn tenths_json(x: u64) -> Value {
    serde_json::from_str(&tenths(x)).unwrap_or(Value::Null)
}

/// A duration in microseconds for people: `812 ms`, `1.9 s`.
fn human_us(us: u64) -> String {
    if (1_000_000..10_000_000).contains(&us) {
        format!("{} s", tenths(us / 100_000))
    } else if us >= 10_000_000 {
        format!("{} s", us / 1_000_000)
    } else {
        format!("{} ms", us / 1_000)
    }
}

/// The `p`-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// CPU time over wall time in tenths of a percent of one core.
fn core_tenths(ticks: u64, ticks_per_second: u64, wall: Duration) -> u64 {
    let wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX).max(1);
    ticks.saturating_mul(1_000_000) / (ticks_per_second.max(1).saturating_mul(wall_ms))
}

/// The nodes' CPU, all together, over `secs` in which this benchmark submits nothing, in
/// tenths of a percent of one core; `None` if `secs` is 0.
async fn idle_cpu(endpoints: &[Endpoint], secs: u64, ticks_per_second: u64) -> Option<u64> {
    if secs == 0 {
        return None;
    }
    let read = || -> Vec<Option<u64>> {
        endpoints
            .iter()
            .map(|e| process::cpu_ticks(e.pid))
            .collect()
    };
    let (before, start) = (read(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let ticks = before
        .iter()
        .zip(read())
        .filter_map(|(b, a)| Some(a?.saturating_sub((*b)?)))
        .sum();
    Some(core_tenths(ticks, ticks_per_second, start.elapsed()))
}

/// Signatures per batch when measuring batch verification (fewer if the workload is
/// smaller): a node's largest block unless its configuration says otherwise, which the
/// devnet's does not.
fn verify_batch_events() -> usize {
    custody_node::config::BlockLimitsConfig::default().events_max
}

/// Batch verification of the workload's first events on one thread, with nothing else of
/// this benchmark running. Every one of them is valid, so a refused batch is a fault.
async fn measure_verify(plans: &[ShipmentPlan]) -> anyhow::Result<VerifyMeasure> {
    let batch = verify_batch_events();
    let signed: Vec<SignedBytes> = plans
        .iter()
        .flat_map(|p| &p.events)
        .take(batch)
        .map(SignedBytes::of_event)
        .collect();
    let budget = Duration::from_millis(VERIFY_BUDGET_MS);
    let measure = tokio::task::spawn_blocking(move || {
        efficiency::measure_batch_verify(&signed, batch, budget, VERIFY_BATCHES_MAX)
    })
    .await
    .context("measuring batch verification")?;
    if measure.refused > 0 {
        bail!(
            "{} of the workload's signatures failed batch verification",
            measure.refused
        );
    }
    Ok(measure)
}

/// The report's efficiency section: CPU per committed event over the steady window, the
/// single-core batch-verification rate, and the committed rate's share of the floor they set.
fn efficiency_json(
    endpoints: &[Endpoint],
    cost: Option<&WindowCost>,
    verify: &VerifyMeasure,
    committed_per_s: u64,
    cores: u64,
) -> Value {
    let nodes = endpoints.len() as u64;
    let verify_per_s = verify.per_s();
    let by_node: serde_json::Map<String, Value> = endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let us = cost.and_then(|c| c.by_node.get(i).copied().flatten());
            (e.name.clone(), json!(us))
        })
        .collect();
    json!({
        "cpu_window_start_ms": cost.map(|c| c.from_us / 1_000),
        "cpu_window_end_ms": cost.map(|c| c.to_us / 1_000),
        "cpu_window_events": cost.map(|c| c.events),
        "cpu_us_per_event_per_node": cost.and_then(|c| c.per_node),
        "cpu_us_per_event_by_node": by_node,
        "batch_verify_per_s_single_core": verify_per_s,
        "batch_verify_batch_events": verify.batch_events,
        "batch_verify_signatures": verify.verified,
        "cores": cores,
        "nodes": nodes,
        "floor_events_per_s": efficiency::floor_events_per_s(cores, verify_per_s, nodes),
        "efficiency_permille": efficiency::efficiency_permille(committed_per_s, cores, verify_per_s, nodes),
    })
}

/// Runs the benchmark and prints its report. Exit code 1 if the self-check fails.
pub async fn run(options: BenchOptions) -> anyhow::Result<ExitCode> {
    if options.events == 0 {
        bail!("--events must be at least 1");
    }
    let target = target(&options).await?;
    let outcome = measure(&options, &target).await;
    if let Target::Own {
        mut network, dir, ..
    } = target
    {
        eprintln!("Stopping the benchmark's devnet…");
        let stopped = network.stop(Duration::from_millis(STOP_TIMEOUT_MS));
        let failed = !matches!(&outcome, Ok(report) if report["ok"] == true);
        if failed {
            let kept = dir.keep();
            eprintln!("Its files (logs, ledgers) are kept in {}", kept.display());
        }
        if stopped.iter().any(|(_, s)| !s.is_clean()) {
            network::report_stopped(&stopped);
        }
    }
    let report = outcome?;
    if options.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report["ok"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loads the target, checks and measures; the report as JSON.
async fn measure(options: &BenchOptions, target: &Target) -> anyhow::Result<Value> {
    let devnet = target.devnet();
    let endpoints = target.endpoints();
    let validators: Vec<&Endpoint> = endpoints.iter().filter(|e| e.validator).collect();
    let clients: Vec<Client> = validators
        .iter()
        .map(|e| e.client())
        .collect::<anyhow::Result<_>>()?;
    let customs = endpoints
        .iter()
        .find(|e| e.member == CUSTOMS)
        .unwrap_or(validators[0])
        .client()?;
    let published =
        reference::ensure_published(&customs, &devnet.signer(CUSTOMS)?, |table, height| {
            if let Some(h) = height {
                eprintln!("published {} — block {h}", reference::describe(table));
            }
        })
        .await?;
    // Every validator must hold the reference data before it admits the first registration.
    for client in &clients {
        submit::wait_height(client, published, Duration::from_millis(60_000)).await?;
    }
    let book = reference::load_book_at(&clients[0], published).await?;
    // A random salt seed: the names the workload commits are not guessable.
    let cast = scenario::Cast::of_devnet(devnet, new_salt().0)?;
    let signing = Instant::now();
    let plans =
        scenario::workload_with_book(&book, &cast, options.events, clients.len(), setup::now())?;
    eprintln!(
        "Signed {} events of {} shipments in {} ms.",
        options.events,
        plans.len(),
        signing.elapsed().as_millis()
    );
    let mut mix: BTreeMap<&'static str, usize> = BTreeMap::new();
    for event in plans.iter().flat_map(|p| &p.events) {
        *mix.entry(event.event().event.kind.name()).or_default() += 1;
    }
    let group = (2 * options.inflight)
        .max(usize::try_from(options.rate.saturating_mul(5)).unwrap_or(usize::MAX))
        .clamp(1, plans.len().max(1));
    let order = dispatch_order(&plans, group);
    let ids: Vec<EventId> = plans
        .iter()
        .flat_map(|p| p.events.iter().map(|e| e.id()))
        .collect();

    // Before the load, and before the workers connect: the nodes idle, then one core of
    // this process verifying signatures while the nodes still idle.
    let ticks_per_second = process::clock_ticks_per_second();
    if options.idle_secs > 0 {
        eprintln!("Measuring the idle nodes' CPU for {} s…", options.idle_secs);
    }
    let idle = idle_cpu(endpoints, options.idle_secs, ticks_per_second).await;
    let verify = measure_verify(&plans).await?;
    eprintln!(
        "Batch verification on one core: {} signatures/s.",
        verify.per_s()
    );

    let urls: Vec<String> = validators.iter().map(|e| e.url.clone()).collect();
    // Batched, the workers are requests in flight of `batch` events each.
    let connections = match options.batch {
        0 | 1 => options.inflight,
        batch => options.inflight.div_ceil(batch).max(urls.len()),
    };
    let workers = connect_workers(&urls, connections).await?;

    // Before.
    let status_before = clients[0].status().await?;
    let disk_before: Vec<u64> = endpoints
        .iter()
        .map(|e| tree_size_bytes(&e.ledger_dir))
        .collect();
    let self_before = process::cpu_ticks(std::process::id()).unwrap_or(0);
    let node_urls: Vec<String> = endpoints.iter().map(|e| e.url.clone()).collect();
    let writes_before = writes::scrape(&node_urls).await;

    eprintln!(
        "Submitting to {} validators of {} ({})…",
        clients.len(),
        target.describe(),
        match options.rate {
            0 => format!("as fast as accepted, at most {} waiting", options.inflight),
            r => format!("{r} events/s offered, at most {} waiting", options.inflight),
        }
    );
    let start = Instant::now();
    // The nodes' CPU is read through the run, so it can be counted over the steady window.
    let sampler = CpuSampler::start(endpoints.iter().map(|e| e.pid).collect(), start);
    let shared = Arc::new(Shared {
        progress: plans.iter().map(|_| watch::channel(0).0).collect(),
        poisoned: plans.iter().map(|_| AtomicBool::new(false)).collect(),
        plans,
        start,
    });
    let budget_s = 300 + u64::try_from(options.events).unwrap_or(u64::MAX) / 20;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(budget_s);
    let run = match options.batch {
        0 | 1 => dispatch(shared.clone(), workers, &order, options.rate, deadline).await?,
        batch => {
            let jobs = batch_jobs(&shared.plans, batch, clients.len());
            dispatch_batches(shared.clone(), workers, jobs, options.rate, deadline).await?
        }
    };

    // After.
    let samples = sampler.finish();
    let unread = vec![None; endpoints.len()];
    let cpu_before = samples.first().map_or(&unread, |s| &s.ticks);
    let cpu_after = samples.last().map_or(&unread, |s| &s.ticks);
    let self_after = process::cpu_ticks(std::process::id()).unwrap_or(0);

    let fates: Vec<&Fate> = run.fates.iter().flatten().flatten().collect();
    let mut latencies: Vec<u64> = Vec::new();
    let mut commit_times: Vec<u64> = Vec::new();
    let (mut polled, mut duplicates, mut skipped) = (0usize, 0usize, 0usize);
    // The highest block any node answered a commit from: the scan must reach it.
    let mut highest = 0u64;
    let mut errors: Vec<String> = Vec::new();
    for fate in &fates {
        match fate {
            Fate::Committed {
                latency_us,
                at_us,
                height,
            } => {
                latencies.push(*latency_us);
                commit_times.push(*at_us);
                highest = highest.max(*height);
            }
            Fate::Polled {
                latency_us,
                at_us,
                height,
            } => {
                polled += 1;
                latencies.push(*latency_us);
                commit_times.push(*at_us);
                highest = highest.max(*height);
            }
            Fate::Duplicate => duplicates += 1,
            Fate::Skipped => skipped += 1,
            Fate::Failed(e) => {
                if errors.len() < ERRORS_KEPT {
                    errors.push(e.clone());
                }
            }
        }
    }
    let failed = fates
        .iter()
        .filter(|f| matches!(f, Fate::Failed(_)))
        .count();
    latencies.sort_unstable();
    commit_times.sort_unstable();

    // The steady window.
    let trim = commit_times.len() * TRIM_PERCENT / 100;
    let (window_start, mut window_end) = match commit_times.len() {
        0 => (0, 0),
        n => (
            commit_times[trim.min(n - 1)],
            commit_times[(n - 1 - trim).max(trim.min(n - 1))],
        ),
    };
    if let Some(secs) = options.window_secs {
        window_end = window_end.min(window_start.saturating_add(secs.saturating_mul(1_000_000)));
    }
    let in_window = commit_times
        .iter()
        .filter(|t| (window_start..=window_end).contains(*t))
        .count();
    let window_us = window_end.saturating_sub(window_start);
    let throughput = (in_window as u64)
        .saturating_mul(1_000_000)
        .checked_div(window_us)
        .unwrap_or(0);
    let total_throughput = match commit_times.last() {
        Some(&last) if last > 0 => (commit_times.len() as u64).saturating_mul(1_000_000) / last,
        _ => 0,
    };

    // CPU.
    let mut cpu_nodes = Vec::new();
    let mut cpu_total_ticks = 0u64;
    for (i, e) in endpoints.iter().enumerate() {
        let ticks = match (cpu_before[i], cpu_after[i]) {
            (Some(b), Some(a)) => a.saturating_sub(b),
            _ => 0,
        };
        cpu_total_ticks += ticks;
        cpu_nodes.push(json!({
            "node": e.name,
            "pid": e.pid,
            "core_percent": tenths_json(core_tenths(ticks, ticks_per_second, run.wall)),
        }));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let nodes_core = core_tenths(cpu_total_ticks, ticks_per_second, run.wall);
    let bench_core = core_tenths(
        self_after.saturating_sub(self_before),
        ticks_per_second,
        run.wall,
    );
    let cost = efficiency::window_cost(
        &samples,
        &commit_times,
        (window_start, window_end),
        ticks_per_second,
    );

    // The self-check: every event exactly once, every node at the same block.
    eprintln!("Checking the run…");
    let check = self_check(&clients, endpoints, status_before.height, highest, &ids).await?;

    // Disk, after the check (the nodes have flushed every block the check read).
    let status_after = clients[0].status().await?;
    let disk_after: Vec<u64> = endpoints
        .iter()
        .map(|e| tree_size_bytes(&e.ledger_dir))
        .collect();
    let mut disk_nodes = Vec::new();
    let (mut total_per_event, mut delta_per_event) = (0u64, 0u64);
    for (i, e) in endpoints.iter().enumerate() {
        let log_size = e
            .client()?
            .status()
            .await
            .map(|s| s.log_size)
            .unwrap_or(0)
            .max(1);
        let per_event = disk_after[i] / log_size;
        let added = disk_after[i].saturating_sub(disk_before[i]) / (ids.len() as u64).max(1);
        total_per_event += per_event;
        delta_per_event += added;
        disk_nodes.push(json!({
            "node": e.name,
            "ledger_bytes": disk_after[i],
            "log_size": log_size,
            "bytes_per_event": per_event,
            "bytes_added_per_bench_event": added,
        }));
    }
    let node_count = (endpoints.len() as u64).max(1);
    let writes_after = writes::scrape(&node_urls).await;
    let committed_meanwhile = status_after.log_size.saturating_sub(status_before.log_size);

    let committed = fates
        .iter()
        .filter(|f| {
            matches!(
                f,
                Fate::Committed { .. } | Fate::Polled { .. } | Fate::Duplicate
            )
        })
        .count();
    let ok = check.ok && failed == 0 && skipped == 0;
    Ok(json!({
        "ok": ok,
        "network": target.describe(),
        "network_dir": target.dir().display().to_string(),
        "own_network": matches!(target, Target::Own { .. }),
        "chain_id": devnet.genesis.chain_id,
        "validators": clients.len(),
        "nodes": endpoints.len(),
        "events": ids.len(),
        "shipments": shared.plans.len(),
        "mix": mix,
        "rate_offered_events_per_s": options.rate,
        "inflight_max": options.inflight,
        "committed": committed,
        "failed": failed,
        "skipped": skipped,
        "duplicate_answers": duplicates,
        "polled": polled,
        "errors": errors,
        "wall_ms": run.wall.as_millis() as u64,
        "dispatch_ms": run.last_dispatch_us / 1_000,
        "throughput": {
            "window_start_ms": window_start / 1_000,
            "window_end_ms": window_end / 1_000,
            "window_events": in_window,
            "committed_events_per_s": throughput,
            "whole_run_events_per_s": total_throughput,
        },
        "latency_ms": {
            "p50": tenths_json(percentile(&latencies, 50) / 100),
            "p95": tenths_json(percentile(&latencies, 95) / 100),
            "p99": tenths_json(percentile(&latencies, 99) / 100),
            "max": tenths_json(latencies.last().copied().unwrap_or(0) / 100),
            "count": latencies.len(),
        },
        "cpu": {
            "cores": cores,
            "nodes_core_percent": tenths_json(nodes_core),
            "nodes_machine_percent": tenths_json(nodes_core / cores),
            "bench_core_percent": tenths_json(bench_core),
            "per_node": cpu_nodes,
            "idle_secs": options.idle_secs,
            "idle_cpu_percent_of_one_core": idle.map_or(Value::Null, tenths_json),
        },
        "efficiency": efficiency_json(endpoints, cost.as_ref(), &verify, throughput, cores),
        "disk": {
            "ledger_bytes_per_event": total_per_event / node_count,
            "ledger_bytes_added_per_bench_event": delta_per_event / node_count,
            "per_node": disk_nodes,
            "store_writes_per_event": writes::per_event_json(
                &writes_before,
                &writes_after,
                committed_meanwhile,
            ),
        },
        "heights": {
            "before": status_before.height,
            "after": status_after.height,
        },
        "check": check.to_json(),
    }))
}

/// What the self-check found.
#[derive(Debug)]
struct Check {
    ok: bool,
    found_once: usize,
    missing: usize,
    duplicated: usize,
    blocks_scanned: u64,
    blocks_with_events: u64,
    largest_block: usize,
    common_height: u64,
    head_hash: Option<Digest>,
    heads_agree: bool,
    problems: Vec<String>,
}

impl Check {
    fn to_json(&self) -> Value {
        json!({
            "ok": self.ok,
            "every_event_committed_once": self.missing == 0 && self.duplicated == 0,
            "found_once": self.found_once,
            "missing": self.missing,
            "duplicated": self.duplicated,
            "blocks_scanned": self.blocks_scanned,
            "blocks_with_bench_events": self.blocks_with_events,
            "largest_block_events": self.largest_block,
            "heads_agree": self.heads_agree,
            "common_height": self.common_height,
            "head_hash": self.head_hash.map(|h| h.to_hex()),
            "problems": self.problems,
        })
    }
}

/// Scans the blocks committed since `from_height` on the first validator (once it has
/// reached `highest`, the highest block a commit was answered from) for `ids`, and compares
/// every node's block at their common height.
async fn self_check(
    clients: &[Client],
    endpoints: &[Endpoint],
    from_height: u64,
    highest: u64,
    ids: &[EventId],
) -> anyhow::Result<Check> {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<EventId, usize> = ids.iter().map(|id| (*id, 0)).collect();
    if let Err(e) = submit::wait_height(&clients[0], highest, Duration::from_millis(60_000)).await {
        problems.push(format!(
            "the scanned node did not reach block {highest}: {e}"
        ));
    }
    let head = clients[0].status().await?.height;
    let (mut blocks_with_events, mut largest_block) = (0u64, 0usize);
    for height in from_height + 1..=head {
        let block = clients[0].block(height).await?;
        let mut here = 0;
        for id in &block.event_ids {
            if let Some(count) = counts.get_mut(id) {
                *count += 1;
                here += 1;
            }
        }
        if here > 0 {
            blocks_with_events += 1;
            largest_block = largest_block.max(here);
        }
    }
    let found_once = counts.values().filter(|c| **c == 1).count();
    let missing = counts.values().filter(|c| **c == 0).count();
    let duplicated = counts.values().filter(|c| **c > 1).count();
    if missing > 0 {
        problems.push(format!(
            "{missing} submitted events are not in blocks {}..={head}",
            from_height + 1
        ));
    }
    if duplicated > 0 {
        problems.push(format!("{duplicated} events were committed more than once"));
    }

    // Every node reaches the scanned head, then all must hold the same block at the lowest
    // height any of them is at.
    let all: Vec<Client> = endpoints
        .iter()
        .map(Endpoint::client)
        .collect::<anyhow::Result<_>>()?;
    for (client, endpoint) in all.iter().zip(endpoints) {
        if let Err(e) = submit::wait_height(client, head, Duration::from_millis(60_000)).await {
            problems.push(format!("node `{}` did not catch up: {e}", endpoint.name));
        }
    }
    let mut heights = Vec::new();
    for client in &all {
        heights.push(client.status().await?.height);
    }
    let common_height = heights.iter().copied().min().unwrap_or(0);
    let mut hashes = Vec::new();
    for client in &all {
        hashes.push(client.block(common_height).await?.hash);
    }
    let heads_agree = hashes.windows(2).all(|w| w[0] == w[1]);
    if !heads_agree {
        let listed: Vec<String> = endpoints
            .iter()
            .zip(&hashes)
            .map(|(e, h)| format!("{} {}", e.name, h))
            .collect();
        problems.push(format!(
            "the nodes disagree at height {common_height}: {}",
            listed.join(", ")
        ));
    }
    Ok(Check {
        ok: problems.is_empty(),
        found_once,
        missing,
        duplicated,
        blocks_scanned: head.saturating_sub(from_height),
        blocks_with_events,
        largest_block,
        common_height,
        head_hash: hashes.first().copied(),
        heads_agree,
        problems,
    })
}

fn print_report(r: &Value) {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let t = &r["throughput"];
    let l = &r["latency_ms"];
    let cpu = &r["cpu"];
    let check = &r["check"];
    println!(
        "Benchmark on {} ({} validators):",
        r["network"].as_str().unwrap_or(""),
        n(&r["validators"])
    );
    let mix: Vec<String> = r["mix"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{} {k}", n(v))).collect())
        .unwrap_or_default();
    println!(
        "  workload   {} events over {} shipments: {}",
        n(&r["events"]),
        n(&r["shipments"]),
        mix.join(", ")
    );
    println!(
        "  offered    {}, at most {} requests waiting",
        match n(&r["rate_offered_events_per_s"]) {
            0 => "as fast as accepted".to_owned(),
            rate => format!("{rate} events/s"),
        },
        n(&r["inflight_max"])
    );
    println!(
        "  committed  {} of {} ({} failed, {} skipped); all sent by {}, last commit at {}",
        n(&r["committed"]),
        n(&r["events"]),
        n(&r["failed"]),
        n(&r["skipped"]),
        human_us(n(&r["dispatch_ms"]) * 1_000),
        human_us(n(&r["wall_ms"]) * 1_000),
    );
    println!(
        "  throughput {} events/s committed in the steady window {}–{} ({} events; first and last {TRIM_PERCENT} % of commits left out); {} events/s over the whole run",
        n(&t["committed_events_per_s"]),
        human_us(n(&t["window_start_ms"]) * 1_000),
        human_us(n(&t["window_end_ms"]) * 1_000),
        n(&t["window_events"]),
        n(&t["whole_run_events_per_s"]),
    );
    println!(
        "  latency    submit to commit: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} answers; {} confirmed by polling)",
        l["p50"], l["p95"], l["p99"], l["max"], n(&l["count"]), n(&r["polled"])
    );
    let per_node: Vec<String> = cpu["per_node"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    format!(
                        "{} {} %",
                        x["node"].as_str().unwrap_or(""),
                        x["core_percent"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "  cpu        nodes {} % of one core = {} % of the machine's {} cores ({}); this benchmark {} % of one core",
        cpu["nodes_core_percent"],
        cpu["nodes_machine_percent"],
        n(&cpu["cores"]),
        per_node.join(", "),
        cpu["bench_core_percent"],
    );
    if !cpu["idle_cpu_percent_of_one_core"].is_null() {
        println!(
            "  idle       nodes {} % of one core over {} s before the load, nothing submitted",
            cpu["idle_cpu_percent_of_one_core"],
            n(&cpu["idle_secs"]),
        );
    }
    print_efficiency(&r["efficiency"]);
    println!(
        "  disk       {} bytes per event in each node's ledger (size / log size); this run added {} bytes per event (sled grows its files in steps: coarse for short runs)",
        n(&r["disk"]["ledger_bytes_per_event"]),
        n(&r["disk"]["ledger_bytes_added_per_bench_event"]),
    );
    let writes = &r["disk"]["store_writes_per_event"];
    if !writes.is_null() {
        let by_tree: Vec<String> = writes["by_tree"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(tree, per_event)| format!("{tree} {per_event}"))
            .collect();
        println!(
            "  writes     {} store inserts and removals per committed event per node ({})",
            writes["total"],
            by_tree.join(", "),
        );
    }
    println!(
        "  check      {}: {} of {} events found exactly once in blocks {}..{} ({} blocks held them, largest {}); nodes {} at height {} ({})",
        if check["ok"] == true { "PASSED" } else { "FAILED" },
        n(&check["found_once"]),
        n(&r["events"]),
        n(&r["heights"]["before"]) + 1,
        n(&r["heights"]["before"]) + n(&check["blocks_scanned"]),
        n(&check["blocks_with_bench_events"]),
        n(&check["largest_block_events"]),
        if check["heads_agree"] == true { "agree" } else { "DISAGREE" },
        n(&check["common_height"]),
        check["head_hash"].as_str().unwrap_or("-"),
    );
    for problem in check["problems"].as_array().into_iter().flatten() {
        println!("  problem    {}", problem.as_str().unwrap_or(""));
    }
    for error in r["errors"].as_array().into_iter().flatten() {
        println!("  error      {}", error.as_str().unwrap_or(""));
    }
}

/// The efficiency lines of the text report.
fn print_efficiency(e: &Value) {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let or_dash = |v: &Value| v.as_u64().map_or("-".to_owned(), |x| x.to_string());
    let by_node: Vec<String> = e["cpu_us_per_event_by_node"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", or_dash(v)))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "  cpu/event  {} µs of CPU per committed event per node ({}) over {}–{} ({} commits)",
        or_dash(&e["cpu_us_per_event_per_node"]),
        by_node.join(", "),
        human_us(n(&e["cpu_window_start_ms"]) * 1_000),
        human_us(n(&e["cpu_window_end_ms"]) * 1_000),
        n(&e["cpu_window_events"]),
    );
    println!(
        "  efficiency batch verification {} signatures/s on one core (batches of {}); floor {} cores × that ÷ {} nodes = {} events/s; committed {} of it",
        n(&e["batch_verify_per_s_single_core"]),
        n(&e["batch_verify_batch_events"]),
        n(&e["cores"]),
        n(&e["nodes"]),
        n(&e["floor_events_per_s"]),
        e["efficiency_permille"]
            .as_u64()
            .map_or("-".to_owned(), efficiency::thousandths),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::model::DocumentAttested;

    /// Issue 17: the batched benchmark kept one request per validator in flight because a
    /// worker held the shared queue's lock while its request ran. Two workers of one queue
    /// each hold a job at once.
    #[tokio::test]
    async fn regression_issue_17_workers_of_one_validator_work_at_once() {
        let (tx, rx) = mpsc::channel::<u32>(1);
        let queue = Arc::new(Mutex::new(rx));
        let (started_tx, mut started) = mpsc::channel::<u32>(2);
        let release = Arc::new(tokio::sync::Notify::new());
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..2 {
            let (queue, started_tx, release) = (queue.clone(), started_tx.clone(), release.clone());
            workers.spawn(async move {
                while let Some(job) = next_job(&queue).await {
                    started_tx.send(job).await.expect("the test listens");
                    // Working: until the test has seen both jobs start.
                    release.notified().await;
                }
            });
        }
        for job in [1, 2] {
            tx.send(job).await.expect("workers listen");
        }
        let mut seen = Vec::new();
        for _ in 0..2 {
            let job = tokio::time::timeout(Duration::from_secs(5), started.recv())
                .await
                .expect("the second job starts while the first is still being worked on");
            seen.push(job.expect("a job"));
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2]);
        drop(tx);
        release.notify_waiters();
        while workers.join_next().await.is_some() {
            release.notify_waiters();
        }
    }

    #[test]
    fn percentiles_and_rates_use_integers() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(tenths(1234), "123.4");
        assert_eq!(tenths_json(5), json!(0.5));
        assert_eq!(core_tenths(100, 100, Duration::from_secs(1)), 1000);
        assert_eq!(core_tenths(50, 100, Duration::from_secs(2)), 250);
        assert_eq!(human_us(812_000), "812 ms");
        assert_eq!(human_us(1_950_000), "1.9 s");
    }

    /// Shipments of the given numbers of events, on two validators in turn.
    fn small_plans(lengths: &[usize]) -> Vec<ShipmentPlan> {
        let event = |n: u8| {
            custody_client::build::Signer::new(custody_ledger::Keypair::from_seed([n; 32]), "c")
                .attest_document(
                    DocumentAttested {
                        shipment_id: ShipmentId::new("S"),
                        document_type: "x".into(),
                        document_hash: Digest::ZERO,
                        reference: "r".into(),
                    },
                    custody_ledger::Timestamp(0),
                )
        };
        lengths
            .iter()
            .enumerate()
            .map(|(i, len)| ShipmentPlan {
                node: i % 2,
                events: (0..*len).map(|k| event(k as u8)).collect(),
            })
            .collect()
    }

    #[test]
    fn batches_hold_whole_shipments_of_one_validator_within_the_size() {
        let plans = small_plans(&[3, 1, 2, 3, 2, 7, 1, 1, 4]);
        let jobs = batch_jobs(&plans, 4, 2);
        let mut seen: Vec<usize> = jobs.iter().flat_map(|(_, j)| j.clone()).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..plans.len()).collect::<Vec<_>>(),
            "each shipment once"
        );
        for (node, shipments) in &jobs {
            let events: usize = shipments.iter().map(|&s| plans[s].events.len()).sum();
            assert!(shipments.len() == 1 || events <= 4, "{events} events");
            assert!(shipments.iter().all(|&s| plans[s].node == *node));
            assert!(shipments.windows(2).all(|w| w[0] < w[1]), "shipment order");
        }
    }

    #[test]
    fn the_dispatch_order_keeps_each_shipment_in_order_and_interleaves_shipments() {
        let plans = small_plans(&[3, 1, 2, 3, 2]);
        let order = dispatch_order(&plans, 2);
        assert_eq!(order.len(), 11);
        assert_eq!(
            order,
            vec![
                (0, 0),
                (1, 0),
                (0, 1),
                (0, 2),
                (2, 0),
                (3, 0),
                (2, 1),
                (3, 1),
                (3, 2),
                (4, 0),
                (4, 1)
            ]
        );
    }
}
