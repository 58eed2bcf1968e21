//! `custody`: the command line over the Custody SDK.
//!
//! Human output by default, `--json` for scripts. Exit codes: 0 success (valid, for
//! `verify`); 1 invalid (`verify`) or refused by the node (an error status with a problem
//! document); 2 any other failure (usage, files, network). A closed standard output (the
//! reader of a pipe has gone) only ends the output, never the command: see `output.rs`.

#[macro_use]
mod output;
mod epcis;
mod quote;
mod submit;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use custody_client::timeline;
use custody_client::verify::{self, ChainError};
use custody_client::{keyfile, Client, ClientError, Submitted};
use custody_ledger::model::ShipmentId;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::submit::SubmitArgs;

/// Command line of the Custody ledger: keys, events, shipments, bundles and verification.
#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    after_help = "Exit codes: 0 success or valid; 1 invalid (verify) or refused by the node; \
                  2 any other failure."
)]
struct Cli {
    /// Base URL of a node's HTTP API.
    #[arg(
        long,
        global = true,
        env = "CUSTODY_NODE",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    node: String,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or show event-signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign and submit an event.
    Submit(SubmitArgs),
    /// Read shipments.
    #[command(subcommand)]
    Shipment(ShipmentCommand),
    /// Download a shipment's provenance bundle.
    Bundle {
        /// The shipment.
        id: String,
        /// Where to write the bundle (JSON).
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify a bundle offline, or a node's whole chain.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Show the node's status.
    Status,
    /// Quote the landed cost of a draft shipment (duty, tax, regime, who pays) from a JSON
    /// file in the form of `POST /v1/quote`. Nothing is written to the ledger.
    Quote {
        /// The draft (JSON).
        file: PathBuf,
    },
    /// Work with GS1 EPCIS 2.0 documents: hash them offline, capture them as signed events.
    #[command(subcommand)]
    Epcis(epcis::EpcisCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a new ed25519 key as a PKCS#8 PEM file (never overwrites).
    New {
        /// The file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Show the public key of a key file, in hex.
    Show {
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ShipmentCommand {
    /// A shipment's timeline and current state.
    Show {
        /// The shipment.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum VerifyCommand {
    /// Verify a provenance bundle offline against the genesis file.
    Bundle {
        /// The bundle (JSON).
        file: PathBuf,
        /// The network's genesis file (JSON).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
    /// Download and replay the node's whole chain from the genesis file.
    Chain {
        /// The network's genesis file (JSON).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
}

/// What a command concluded, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Done, or valid.
    Ok,
    /// Verified and found invalid, or (`epcis capture`) some event refused.
    Invalid,
    /// Ran to the end and reported, but could not finish its work (`epcis capture`: an event
    /// not confirmed committed, or not submitted for want of the node).
    Failed,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let verifying = matches!(cli.command, Command::Verify(_));
    match run(cli).await {
        Ok(Verdict::Ok) => ExitCode::SUCCESS,
        Ok(Verdict::Invalid) => ExitCode::from(1),
        Ok(Verdict::Failed) => ExitCode::from(2),
        Err(error) => {
            let problem = error
                .chain()
                .find_map(|e| e.downcast_ref::<ClientError>())
                .and_then(|e| match e {
                    ClientError::Problem { problem, .. } => Some(problem.as_ref().clone()),
                    _ => None,
                });
            errln!("error: {error:#}");
            if json {
                // Already failing: a failure to print the error too changes nothing.
                let _ = outln!(
                    "{}",
                    json!({ "error": format!("{error:#}"), "problem": problem })
                );
            }
            if problem.is_some() && !verifying {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<Verdict> {
    let json = cli.json;
    let client = || Client::new(&cli.node).context("--node");
    match cli.command {
        Command::Keys(KeysCommand::New { out }) => {
            let key = keyfile::generate();
            keyfile::write_key(&out, &key)?;
            if json {
                print_json(&json!({ "file": out, "public_key": key.public() }))?;
            } else {
                outln!("wrote {}", out.display())?;
                outln!("public key {}", key.public())?;
            }
        }
        Command::Keys(KeysCommand::Show { key }) => {
            let key = keyfile::read_key(&key)?;
            if json {
                print_json(&json!({ "public_key": key.public() }))?;
            } else {
                outln!("{}", key.public())?;
            }
        }
        Command::Status => {
            let status = client()?.status().await?;
            if json {
                print_json(&status)?;
            } else {
                outln!("chain id      {}", status.chain_id)?;
                outln!("genesis hash  {}", status.genesis_hash)?;
                outln!(
                    "node key      {} ({})",
                    status.node_key,
                    if status.validator {
                        "validator"
                    } else {
                        "not a validator"
                    }
                )?;
                outln!("height        {}", status.height)?;
                outln!("head hash     {}", status.head_hash)?;
                outln!("log size      {}", status.log_size)?;
                outln!("log root      {}", status.log_root)?;
                outln!("mempool       {} events", status.mempool_size)?;
            }
        }
        Command::Quote { file } => {
            let draft = quote::read_draft(&file)?;
            let answer = client()?.quote(&draft).await?;
            if json {
                print_json(&answer)?;
            } else {
                quote::print(&answer)?;
            }
        }
        Command::Submit(args) => {
            let client = client()?;
            let event = submit::event(&args, &client).await?;
            if args.dry_run {
                if json {
                    print_json(&json!({ "event_id": event.id, "event": event.event }))?;
                } else {
                    outln!("event {}", event.id)?;
                    outln!("{}", serde_json::to_string_pretty(&event.event)?)?;
                }
                return Ok(Verdict::Ok);
            }
            let submitted = client.submit(&event, args.wait).await?;
            match &submitted {
                Submitted::Committed(receipt) => {
                    if json {
                        print_json(&json!({
                            "status": "committed",
                            "event_id": receipt.event_id,
                            "receipt": receipt,
                        }))?;
                    } else {
                        outln!(
                            "committed {} at height {} (block {}), log index {} of {}",
                            receipt.event_id,
                            receipt.height,
                            receipt.block_hash,
                            receipt.log_index,
                            receipt.log_size
                        )?;
                    }
                }
                Submitted::Pending(accepted) => {
                    if json {
                        print_json(&json!({ "status": "pending", "event_id": accepted.event_id }))?;
                    } else if args.wait {
                        outln!(
                            "accepted {}; not committed within the node's wait, still pending",
                            accepted.event_id
                        )?;
                    } else {
                        outln!("accepted {}; pending", accepted.event_id)?;
                    }
                }
            }
        }
        Command::Shipment(ShipmentCommand::Show { id }) => {
            let client = client()?;
            let id = ShipmentId::new(id);
            let (state, events, members) = tokio::try_join!(
                client.shipment(&id),
                client.all_shipment_events(&id),
                client.members()
            )?;
            if json {
                print_json(&json!({ "state": state, "events": events }))?;
            } else {
                out!("{}", timeline::render(&state, &events, &members))?;
            }
        }
        Command::Bundle { id, out } => {
            let bundle = client()?.bundle(&ShipmentId::new(id)).await?;
            let text = serde_json::to_string_pretty(&bundle)?;
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            if json {
                print_json(&json!({
                    "file": out,
                    "shipment_id": bundle.shipment_id,
                    "height": bundle.checkpoint.header.height,
                    "events": bundle.events.len(),
                }))?;
            } else {
                outln!(
                    "wrote the bundle of shipment {} ({} events, checkpoint height {}) to {}",
                    bundle.shipment_id,
                    bundle.events.len(),
                    bundle.checkpoint.header.height,
                    out.display()
                )?;
            }
        }
        Command::Verify(VerifyCommand::Bundle { file, genesis }) => {
            let genesis = verify::read_genesis(&genesis)?;
            let bundle = verify::read_bundle(&file)?;
            return verify_bundle(&bundle, &genesis, json);
        }
        Command::Epcis(command) => return epcis::run(command, json, &cli.node).await,
        Command::Verify(VerifyCommand::Chain { genesis }) => {
            let genesis = verify::read_genesis(&genesis)?;
            return verify_chain(&client()?, &genesis, json).await;
        }
    }
    Ok(Verdict::Ok)
}

fn verify_bundle(
    bundle: &verify::Bundle,
    genesis: &custody_ledger::genesis::Genesis,
    json: bool,
) -> anyhow::Result<Verdict> {
    match verify::verify_bundle(bundle, genesis) {
        Ok(verified) => {
            if json {
                let events: Vec<_> = verified
                    .events
                    .iter()
                    .map(|e| json!({ "event_id": e.id, "kind": e.event.event.kind.name() }))
                    .collect();
                print_json(&json!({
                    "valid": true,
                    "shipment_id": verified.shipment_id,
                    "height": verified.height,
                    "block_hash": verified.block_hash,
                    "log_size": verified.log_size,
                    "log_root": verified.log_root,
                    "event_count": verified.events.len(),
                    "events": events,
                }))?;
            } else {
                outln!("valid: shipment {}", verified.shipment_id)?;
                outln!(
                    "  checkpoint  height {} (block {})",
                    verified.height,
                    verified.block_hash
                )?;
                outln!(
                    "  log         {} events, root {}",
                    verified.log_size,
                    verified.log_root
                )?;
                outln!("  events      {}", verified.events.len())?;
                for (index, event) in verified.events.iter().enumerate() {
                    outln!(
                        "    #{index:<3} {}  {}",
                        event.id,
                        event.event.event.kind.name()
                    )?;
                }
            }
            Ok(Verdict::Ok)
        }
        Err(error) => {
            if json {
                print_json(&json!({
                    "valid": false,
                    "check": error.check,
                    "event_id": error.event,
                    "index": error.index,
                    "message": error.message,
                }))?;
            } else {
                outln!("invalid: check {} failed", error.check)?;
                if let Some(event) = error.event {
                    outln!(
                        "  event   {event} (position {})",
                        error.index.map_or("?".into(), |i| i.to_string())
                    )?;
                }
                outln!("  reason  {}", error.message)?;
            }
            Ok(Verdict::Invalid)
        }
    }
}

async fn verify_chain(
    client: &Client,
    genesis: &custody_ledger::genesis::Genesis,
    json: bool,
) -> anyhow::Result<Verdict> {
    let target = if json || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    if let Ok(style) =
        ProgressStyle::with_template("verifying {bar:40} {pos}/{len} blocks, {eta} left")
    {
        bar.set_style(style);
    }
    let result = verify::verify_chain(client, genesis, |height, head| {
        bar.set_length(head);
        bar.set_position(height);
    })
    .await;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            if json {
                print_json(&json!({
                    "valid": true,
                    "height": report.height,
                    "head_hash": report.head_hash,
                    "log_size": report.log_size,
                    "log_root": report.log_root,
                    "state_root": report.state_root,
                }))?;
            } else {
                outln!("valid: {} blocks from the genesis", report.height)?;
                outln!("  head        {}", report.head_hash)?;
                outln!(
                    "  log         {} events, root {}",
                    report.log_size,
                    report.log_root
                )?;
                outln!("  state root  {}", report.state_root)?;
            }
            Ok(Verdict::Ok)
        }
        Err(ChainError::Invalid {
            height,
            check,
            reason,
        }) => {
            if json {
                print_json(&json!({
                    "valid": false,
                    "height": height,
                    "check": check,
                    "message": reason,
                }))?;
            } else {
                outln!("invalid: height {height}: check {check} failed")?;
                outln!("  reason  {reason}")?;
            }
            Ok(Verdict::Invalid)
        }
        Err(other) => Err(other.into()),
    }
}
