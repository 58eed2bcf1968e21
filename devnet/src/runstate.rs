//! `state.json`: which processes run a devnet, so that `down`, `demo` and `bench` can find a
//! network started by another command (`up --detach`, or `up` in another terminal).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::process;

/// The running devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The chain id.
    pub chain_id: String,
    /// When `up` started it (RFC 3339).
    pub started_at: String,
    /// The pid of the `up` process that supervises the nodes in the foreground; `None` when
    /// detached.
    pub supervisor: Option<u32>,
    /// The node processes.
    pub nodes: Vec<RunningNode>,
}

/// A node process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningNode {
    /// The node's name.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Its HTTP API.
    pub http: SocketAddr,
    /// Whether it votes.
    pub validator: bool,
    /// Its configuration file (also how its process is recognised).
    pub config: PathBuf,
}

impl RunningNode {
    /// Whether its process still runs (and is this node, not a recycled pid).
    pub fn is_running(&self) -> bool {
        process::is_node_process(self.pid, &self.config)
    }

    /// The HTTP API base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }
}

impl RunState {
    /// Whether any of its node processes still runs.
    pub fn any_running(&self) -> bool {
        self.nodes.iter().any(RunningNode::is_running)
    }

    /// Whether the supervising `up` process still runs.
    pub fn supervisor_running(&self) -> bool {
        self.supervisor.is_some_and(|pid| {
            process::is_alive(pid) && process::cmdline(pid).contains("custody-devnet")
        })
    }
}

/// Reads `state.json`, if there is one.
pub fn read(layout: &Layout) -> anyhow::Result<Option<RunState>> {
    let path = layout.state();
    if !path.exists() {
        return Ok(None);
    }
    let state = custody_client::verify::read_json(&path, "devnet state file", 1024 * 1024)?;
    Ok(Some(state))
}

/// The devnet running in `layout`'s directory: its state, if some node of it still runs.
pub fn running(layout: &Layout) -> anyhow::Result<Option<RunState>> {
    Ok(read(layout)?.filter(RunState::any_running))
}

/// Writes `state.json`.
pub fn write(layout: &Layout, state: &RunState) -> anyhow::Result<()> {
    let path = layout.state();
    let mut text = serde_json::to_string_pretty(state)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// Removes `state.json` (nothing if there is none).
pub fn remove(layout: &Layout) -> anyhow::Result<()> {
    match std::fs::remove_file(layout.state()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", layout.state().display())),
    }
}
