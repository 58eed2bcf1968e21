//! The hidden `custody-devnet node --config FILE` subcommand: one Custody node, run by this
//! binary in its own process, the way the `custody-node` binary runs it.
//!
//! Logs go to stderr (`RUST_LOG` filters them). SIGINT or SIGTERM stops the node: it stops
//! taking events, lets the block in flight finish and flush, and the process exits 0. With
//! `--exit-with-parent`, the node also stops when the process that started it is gone, so a
//! supervisor that dies does not leave nodes behind.

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use custody_node::config::Config;
use tracing_subscriber::EnvFilter;

use crate::process::NODE_LOG_FILTER;

/// How often the parent process is checked with `--exit-with-parent`.
const PARENT_CHECK_INTERVAL_MS: u64 = 500;

/// Runs the node of `config_file` until a signal (or the parent's exit) stops it.
pub fn run(config_file: &Path, exit_with_parent: bool) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(NODE_LOG_FILTER));
    // Colours only on a terminal: under the devnet, stderr is the node's log file.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Config::load(config_file)?;
    let parent = std::os::unix::process::parent_id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let orphaned = async move {
            if !exit_with_parent {
                return std::future::pending::<()>().await;
            }
            let mut tick = tokio::time::interval(Duration::from_millis(PARENT_CHECK_INTERVAL_MS));
            // Ends when the parent is gone: this process is then re-parented.
            while std::os::unix::process::parent_id() == parent {
                tick.tick().await;
            }
        };
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => eprintln!("SIGINT: stopping"),
                _ = terminate.recv() => eprintln!("SIGTERM: stopping"),
                () = orphaned => eprintln!("the devnet supervisor is gone: stopping"),
            }
        };
        // A failed critical task is an error: the process exits non-zero.
        custody_node::node::run(config, stop).await
    })
}
