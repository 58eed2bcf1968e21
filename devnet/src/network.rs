//! A devnet's node processes: starting them, waiting until they serve and commit, and stopping
//! them. Also [`Endpoint`], how the demo and the benchmark reach a running node whoever
//! started it.

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use custody_client::Client;

use crate::process::{self, Stopped};
use crate::runstate::{RunState, RunningNode};
use crate::setup::{self, Devnet, NodeInfo};

/// How long `up` waits for every node to answer `/healthz` and commit a block.
pub const READY_TIMEOUT_MS: u64 = 120_000;
/// How long a node has to stop after SIGTERM before it is killed.
pub const STOP_TIMEOUT_MS: u64 = 30_000;
/// How long every node may sit healthy at one unchanging height before the network counts as
/// stalled.
pub const STALL_TIMEOUT_MS: u64 = 15_000;
/// How often readiness is polled.
const POLL_INTERVAL_MS: u64 = 250;
/// Timeout of one readiness request.
const PROBE_TIMEOUT_MS: u64 = 2_000;
/// Log lines shown when a node fails to start.
const LOG_TAIL_LINES: usize = 15;

/// A running node, as the demo and the benchmark see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Node name.
    pub name: String,
    /// The member that runs it.
    pub member: String,
    /// Whether it votes.
    pub validator: bool,
    /// HTTP API base URL.
    pub url: String,
    /// Its process id.
    pub pid: u32,
    /// Its sled ledger directory.
    pub ledger_dir: PathBuf,
}

impl Endpoint {
    /// An SDK client of this node.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url)?)
    }
}

/// The endpoints of a devnet whose processes `state` names, in manifest order.
pub fn endpoints(devnet: &Devnet, state: &RunState) -> anyhow::Result<Vec<Endpoint>> {
    devnet
        .nodes
        .iter()
        .map(|node| {
            let running = state
                .nodes
                .iter()
                .find(|r| r.name == node.name())
                .ok_or_else(|| {
                    anyhow!("the state file names no process for node `{}`", node.name())
                })?;
            Ok(Endpoint {
                name: node.name().to_owned(),
                member: node.entry.member.clone(),
                validator: node.entry.validator,
                url: running.url(),
                pid: running.pid,
                ledger_dir: devnet.layout.node_ledger(node.name()),
            })
        })
        .collect()
}

/// How a start ended, when no node failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Every node serves and has committed a new block.
    Ready,
    /// Every node serves, all at this same height, and none has committed a block for
    /// [`STALL_TIMEOUT_MS`].
    Stalled {
        /// The height every node is at.
        height: u64,
    },
}

/// The node processes of a devnet started by this process.
#[derive(Debug)]
pub struct Network {
    /// The devnet.
    pub devnet: Devnet,
    children: Vec<(NodeInfo, Child)>,
    /// Whether the processes outlive this value (`up --detach`); otherwise dropping it kills
    /// them.
    detached: bool,
}

impl Network {
    /// Starts every node of `devnet` as a child process, after checking that their ports are
    /// free. With `exit_with_parent`, the nodes stop by themselves if this process dies.
    pub fn start(devnet: Devnet, exit_with_parent: bool) -> anyhow::Result<Network> {
        devnet.check_ports_free()?;
        let mut network = Network {
            devnet,
            children: Vec::new(),
            detached: false,
        };
        for node in network.devnet.nodes.clone() {
            let child = process::spawn_node(&network.devnet.layout, &node, exit_with_parent)?;
            network.children.push((node, child));
        }
        Ok(network)
    }

    /// The state file's view of these processes.
    pub fn run_state(&self, supervisor: Option<u32>) -> RunState {
        RunState {
            chain_id: self.devnet.genesis.chain_id.clone(),
            started_at: setup::now().to_rfc3339(),
            supervisor,
            nodes: self
                .children
                .iter()
                .map(|(node, child)| RunningNode {
                    name: node.name().to_owned(),
                    pid: child.id(),
                    http: node.http_addr(),
                    validator: node.entry.validator,
                    config: node.config_file.clone(),
                })
                .collect(),
        }
    }

    /// The endpoints of these processes.
    pub fn endpoints(&self) -> anyhow::Result<Vec<Endpoint>> {
        endpoints(&self.devnet, &self.run_state(None))
    }

    /// Nodes that have exited, with their status.
    pub fn exited(&mut self) -> Vec<(String, ExitStatus)> {
        self.children
            .iter_mut()
            .filter_map(|(node, child)| {
                child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|status| (node.name().to_owned(), status))
            })
            .collect()
    }

    /// Waits until every node answers `/healthz` and has committed a new block since it
    /// started, for at most `within`. Fails at once if a node exits, naming it and quoting
    /// its log. Returns [`Readiness::Stalled`] if every node serves at one height above 0 that
    /// does not move for [`STALL_TIMEOUT_MS`].
    pub async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<Readiness> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(PROBE_TIMEOUT_MS))
            .build()?;
        let deadline = Instant::now() + within;
        let count = self.children.len();
        let mut last_seen: Vec<String> = vec!["not polled yet".into(); count];
        let mut ready = vec![false; count];
        // The first height each node reports: it is ready once it commits a block above it,
        // which shows consensus running, whether the chain is new or resumed.
        let mut first_height: Vec<Option<u64>> = vec![None; count];
        let mut heights: Vec<Option<u64>> = vec![None; count];
        let mut last_progress = Instant::now();
        loop {
            if let Some((name, status)) = self.exited().into_iter().next() {
                let log = self.devnet.layout.node_log(&name);
                bail!(
                    "node `{name}` exited during startup ({status}); its log is {}. Last lines:\n{}",
                    log.display(),
                    process::log_tail(&log, LOG_TAIL_LINES)
                );
            }
            for (i, (node, _)) in self.children.iter().enumerate() {
                match probe(&http, node).await {
                    Ok(height) => {
                        if heights[i] != Some(height) {
                            heights[i] = Some(height);
                            last_progress = Instant::now();
                        }
                        let first = *first_height[i].get_or_insert(height);
                        if height > first {
                            ready[i] = true;
                        } else {
                            last_seen[i] =
                                format!("healthy at height {height}, no new block committed yet");
                        }
                    }
                    Err(why) => {
                        heights[i] = None;
                        last_seen[i] = why;
                    }
                }
            }
            if ready.iter().all(|r| *r) {
                return Ok(Readiness::Ready);
            }
            // A new chain still at height 0 is left to the overall deadline: its first block
            // can take a while on a slow machine, and there is no WAL to blame.
            let known: Vec<u64> = heights.iter().flatten().copied().collect();
            if known.len() == count
                && known[0] > 0
                && known.windows(2).all(|w| w[0] == w[1])
                && last_progress.elapsed() >= Duration::from_millis(STALL_TIMEOUT_MS)
            {
                return Ok(Readiness::Stalled { height: known[0] });
            }
            if Instant::now() >= deadline {
                let mut message =
                    format!("the devnet did not come up within {} s:", within.as_secs());
                for (i, (node, _)) in self.children.iter().enumerate() {
                    if !ready[i] {
                        message.push_str(&format!(
                            "\n  node `{}` at {}: {}; see its log {}",
                            node.name(),
                            node.url(),
                            last_seen[i],
                            self.devnet.layout.node_log(node.name()).display()
                        ));
                    }
                }
                bail!(message);
            }
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
        }
    }

    /// Stops every node (SIGTERM, then SIGKILL after `within`); how each ended.
    pub fn stop(&mut self, within: Duration) -> Vec<(String, Stopped)> {
        let names: Vec<String> = self
            .children
            .iter()
            .map(|(n, _)| n.name().to_owned())
            .collect();
        let mut children: Vec<&mut Child> = self.children.iter_mut().map(|(_, c)| c).collect();
        let outcomes = process::stop_children(&mut children, within);
        self.children.clear();
        names.into_iter().zip(outcomes).collect()
    }

    /// Lets the processes run on after this value is dropped.
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for (_, child) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One readiness probe: `/healthz` answers and the status names the height; why not, if not.
async fn probe(http: &reqwest::Client, node: &NodeInfo) -> Result<u64, String> {
    let healthz = http
        .get(format!("{}/healthz", node.url()))
        .send()
        .await
        .map_err(|e| format!("/healthz unreachable ({e})"))?;
    if !healthz.status().is_success() {
        return Err(format!("/healthz answers {}", healthz.status()));
    }
    let client = Client::new(&node.url()).map_err(|e| e.to_string())?;
    let status = client
        .status()
        .await
        .map_err(|e| format!("/v1/status failed ({e})"))?;
    Ok(status.height)
}

/// Prints how each node stopped and says whether all stopped cleanly.
pub fn report_stopped(outcomes: &[(String, Stopped)]) -> bool {
    for (name, outcome) in outcomes {
        println!("  {name:<14} {outcome}");
    }
    outcomes.iter().all(|(_, o)| o.is_clean())
}
