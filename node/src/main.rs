//! `custody-node`: runs one Custody peer.
//!
//! ```text
//! custody-node --config node.toml [--data-dir DIR] [--http-listen ADDR] ...
//! ```
//!
//! Flags override the file. Before starting, the node checks its data folder; damage stops it
//! with a message naming the damaged file and the `--repair` remedy to run (see README.md,
//! "When a data folder is damaged"). Logs go to stderr (`RUST_LOG` filters them; `--log-json` makes
//! them JSON). SIGINT or SIGTERM stops taking events, lets the block in flight finish and
//! flush, and exits 0. If a critical task (consensus host or engine, gossip, HTTP) ends or
//! panics, the node logs which and why, answers `/healthz` with 503 for a moment, and exits 1.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use custody_node::config::Config;
use custody_node::repair::{self, Remedy};
use tracing_subscriber::EnvFilter;

/// A loaded node allocates for every event it decodes, checks, stores and forwards; glibc's
/// allocator took a fifth of its CPU in profiles, mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "custody-node", version, about = "Runs a Custody peer")]
struct Args {
    /// The TOML configuration file.
    #[arg(long, env = "CUSTODY_NODE_CONFIG")]
    config: PathBuf,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `http.listen`.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Overrides `consensus.listen`.
    #[arg(long)]
    consensus_listen: Option<String>,
    /// Overrides `gossip.listen`.
    #[arg(long)]
    gossip_listen: Option<String>,
    /// Logs as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Repairs a damaged data folder of this (stopped) node, prints what it did and exits
    /// without starting; start the node again without the flag. Exiting keeps a flag left in
    /// a service file from repeating the repair at every start. The node names the remedy
    /// when it finds damage on start.
    #[arg(long, value_enum, value_name = "REMEDY")]
    repair: Option<Remedy>,
}

/// The command that applies `remedy` to the data folder this invocation uses.
fn repair_command(config_file: &std::path::Path, config: &Config, remedy: Remedy) -> String {
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "custody-node".into());
    format!(
        "{program} --config {} --data-dir {} --repair {remedy}",
        config_file.display(),
        config.data_dir.display()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,libp2p=warn,malachitebft=warn"));
    if args.log_json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let mut config = Config::load(&args.config)?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(addr) = args.http_listen {
        config.http.listen = addr;
    }
    if let Some(addr) = args.consensus_listen {
        config.consensus.listen = addr;
    }
    if let Some(addr) = args.gossip_listen {
        config.gossip.listen = addr;
    }
    if let Some(remedy) = args.repair {
        for line in repair::repair(&config, remedy)? {
            println!("{line}");
        }
        println!("repaired; start the node again without --repair");
        return Ok(());
    }
    match repair::prepare_data_dir(&config) {
        Ok(repaired) => {
            for line in repaired {
                tracing::warn!("repaired on start: {line}");
            }
        }
        Err(report) => {
            let command = repair_command(&args.config, &config, report.remedy);
            return Err(anyhow::Error::new(report).context(format!(
                "the data folder is damaged; repair it with `{command}`, then start the node as usual"
            )));
        }
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    // An error (a critical task failed) exits non-zero, so a process manager restarts us.
    custody_node::node::run(config, stop).await
}
