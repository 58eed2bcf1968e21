//! The command line: `up`, `down`, `demo`, `status`, `bench`, and the hidden `node`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::bench::{self, BenchOptions};
use crate::layout::DEFAULT_DIR;
use crate::nodecmd;
use crate::roster::{VALIDATORS_MAX, VALIDATORS_MIN};
use crate::up::{self, UpOptions};

/// A whole Custody network on this machine: real node processes on 127.0.0.1, a realistic
/// demo, and a load benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "custody-devnet",
    version,
    after_help = "Start here: custody-devnet up --demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The devnet directory.
#[derive(Debug, Args)]
struct DirArg {
    /// The devnet directory: keys, genesis, node configurations, ledgers and logs.
    #[arg(long, env = "CUSTODY_DEVNET_DIR", default_value = DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the devnet (creating it on first use, resuming it afterwards) and keep it
    /// running until Ctrl-C.
    Up {
        #[command(flatten)]
        dir: DirArg,
        /// Validators of a new devnet (at least 4); an existing devnet keeps its own.
        #[arg(long, value_parser = clap::value_parser!(u64).range(VALIDATORS_MIN as u64..=VALIDATORS_MAX as u64))]
        validators: Option<u64>,
        /// Run the demo scenario once the network is up.
        #[arg(long)]
        demo: bool,
        /// Return once the network is up (and the demo done), leaving the nodes running;
        /// stop them with `down`.
        #[arg(long)]
        detach: bool,
    },
    /// Stop the devnet running in DIR (SIGTERM, a bounded wait, then SIGKILL).
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Run the demo scenario against the devnet running in DIR.
    Demo {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Show the nodes of the devnet running in DIR and their heights.
    Status {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Load the devnet running in DIR (or a fresh one started for the run) with pre-signed
    /// shipment lifecycles; report throughput, latency, CPU and disk use, and check the run.
    Bench {
        #[command(flatten)]
        dir: DirArg,
        /// Events to submit.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Offered load in events per second; 0 sends as fast as the nodes accept.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Measure throughput over this many seconds after the warm-up (default: the whole
        /// steady part of the run).
        #[arg(long, value_name = "S")]
        window_secs: Option<u64>,
        /// Most requests waiting for their commit at once (the default fills the node's
        /// largest block, 2,000 events).
        #[arg(long, default_value_t = 2_000)]
        inflight: usize,
        /// Validators of the fresh devnet, when none runs in DIR.
        #[arg(long, default_value_t = VALIDATORS_MIN as u64, value_parser = clap::value_parser!(u64).range(VALIDATORS_MIN as u64..=VALIDATORS_MAX as u64))]
        validators: u64,
        /// Measure the nodes' idle CPU for this many seconds before the load (0: not at all).
        #[arg(long, value_name = "S", default_value_t = 5)]
        idle_secs: u64,
        /// Events per request through `POST /v1/events/batch`, whole shipments each (1: every
        /// event alone through `POST /v1/events`, each after its predecessor's commit).
        #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        batch: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run one node (how `up` starts each node process).
    #[command(hide = true)]
    Node {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Stop when the process that started this one is gone.
        #[arg(long)]
        exit_with_parent: bool,
    },
}

/// Parses the command line and runs the command; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node {
            config,
            exit_with_parent,
        } => nodecmd::run(&config, exit_with_parent).map(|()| ExitCode::SUCCESS),
        command => run_async(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("custody-devnet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(command: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Up {
                dir,
                validators,
                demo,
                detach,
            } => {
                up::up(UpOptions {
                    dir: dir.dir,
                    validators: validators.map(|v| v as usize),
                    demo,
                    detach,
                })
                .await
            }
            Command::Down { dir } => up::down(&dir.dir),
            Command::Demo { dir } => up::demo(&dir.dir).await,
            Command::Status { dir } => up::status(&dir.dir).await,
            Command::Bench {
                dir,
                events,
                rate,
                window_secs,
                inflight,
                validators,
                idle_secs,
                batch,
                json,
            } => {
                bench::run(BenchOptions {
                    dir: dir.dir,
                    events,
                    rate,
                    window_secs,
                    json,
                    inflight,
                    validators: validators as usize,
                    idle_secs,
                    batch: batch as usize,
                })
                .await
            }
            Command::Node { .. } => unreachable!("run without a runtime of its own"),
        }
    })
}
