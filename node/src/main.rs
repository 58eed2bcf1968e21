//! `custody-node`: runs one Custody peer.
//!
//! ```text
//! custody-node --config node.toml [--data-dir DIR] [--http-listen ADDR] ...
//! ```
//!
//! Flags override the file. Logs go to stderr (`RUST_LOG` filters them; `--log-json` makes
//! them JSON). SIGINT or SIGTERM stops taking events, lets the block in flight finish and
//! flush, and exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use custody_node::config::Config;
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
    let node = custody_node::node::start(config)
        .await
        .context("starting the node")?;
    // Tests and scripts read the bound addresses from this line.
    println!(
        "custody-node http={} gossip={:?}",
        node.http_addr, node.gossip_addrs
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    node.stop().await?;
    Ok(())
}
