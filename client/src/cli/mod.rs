//! The `custody` command line over the Custody SDK; the `custody` binary only calls [`main`].
//!
//! Human output by default, `--json` for scripts. Exit codes: 0 success (valid, for
//! `verify`); 1 invalid (`verify`: anything wrong with what is verified, including a bundle
//! file that does not parse as a bundle) or refused by the node (an error status with a
//! problem document); 2 any other failure (usage, unreadable files, an unusable genesis file,
//! an unreachable node). A closed standard output (the
//! reader of a pipe has gone) only ends the output, never the command: see `output.rs`.
//!
//! It lives in the library, not in the binary, so that other binaries (a test rig) can run
//! the very same command line.

#[macro_use]
mod output;
mod consistency;
mod epcis;
mod personal;
mod quote;
mod submit;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use custody_ledger::model::ShipmentId;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::submit::SubmitArgs;
use crate::timeline;
use crate::verify::{self, ChainError, FileError};
use crate::{keyfile, Client, ClientError, Submitted};

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "Exit codes:\n  \
    0  success; for verify: valid\n  \
    1  verify: invalid (anything wrong with what is verified, including a bundle or proof \
       file that does not parse: unknown fields, bad base64 or timestamps, truncated JSON; \
       the failing check is named); other commands: refused by the node\n  \
    2  any other failure: bad arguments, a file that cannot be read or is too large, an \
       unusable genesis file, an unreachable node";

/// Command line of the Custody ledger: keys, events, shipments, bundles and verification.
#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    after_help = EXIT_CODES
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
        /// Add the personal values the node holds for the shipment (buyer name, receiver…)
        /// as disclosures, asked for with a request signed by this member key (a party of
        /// the shipment). Whoever reads the bundle then sees them, checked against the
        /// ledger's commitments.
        #[arg(long = "disclose-with", value_name = "KEY.pem")]
        disclose_with: Option<PathBuf>,
    },
    /// Verify a bundle offline, a node's whole chain, or that a node's log only grew.
    #[command(subcommand, after_help = EXIT_CODES)]
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
    /// `erase` and `personal show|disclose`: off-ledger personal data.
    #[command(flatten)]
    Personal(personal::PersonalCommands),
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
    /// Verify a provenance bundle offline against the genesis file. A file that is read but
    /// does not parse as a bundle is invalid (exit 1, check `bundle.json`).
    #[command(after_help = EXIT_CODES)]
    Bundle {
        /// The bundle (JSON).
        file: PathBuf,
        /// The network's genesis file (JSON).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
    /// Download and replay the node's whole chain from the genesis file. A block answer that
    /// does not parse as a block is invalid (exit 1, check `block.json`).
    #[command(after_help = EXIT_CODES)]
    Chain {
        /// The network's genesis file (JSON).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
    /// Verify that the node's log at height H2 extends its log at height H1: both certified
    /// checkpoints against the genesis file, and the RFC 6962 consistency proof between them.
    #[command(after_help = EXIT_CODES)]
    Consistency(consistency::ConsistencyArgs),
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

/// Runs the `custody` command line on the process's arguments and environment, and returns
/// its exit code (see the module documentation). Prints usage errors, `--help` and
/// `--version` and exits the process itself, as clap does.
#[tokio::main]
pub async fn main() -> ExitCode {
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
            // The chain, each source once: errors that keep their source also show its text.
            let text = crate::client::error_chain(error.as_ref());
            errln!("error: {text}");
            if json {
                // Already failing: a failure to print the error too changes nothing.
                let _ = outln!("{}", json!({ "error": text, "problem": problem }));
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
            if let Some(events) = submit::prepared_batch(&args)? {
                if args.dry_run {
                    if json {
                        let printed: Vec<_> = events
                            .iter()
                            .map(|e| json!({ "event_id": e.id(), "event": e.event() }))
                            .collect();
                        print_json(&printed)?;
                    } else {
                        for (at, event) in events.iter().enumerate() {
                            outln!("{at} {}", event.id())?;
                        }
                    }
                    return Ok(Verdict::Ok);
                }
                let refused = submit::submit_batch(&client, &events, args.wait, json).await?;
                return Ok(if refused {
                    Verdict::Invalid
                } else {
                    Verdict::Ok
                });
            }
            let event = submit::event(&args, &client).await?;
            if args.dry_run {
                if json {
                    print_json(&json!({ "event_id": event.id(), "event": event.event() }))?;
                } else {
                    outln!("event {}", event.id())?;
                    outln!("{}", serde_json::to_string_pretty(&event.event())?)?;
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
        Command::Bundle {
            id,
            out,
            disclose_with,
        } => {
            let client = client()?;
            let id = ShipmentId::new(id);
            let mut bundle = client.bundle(&id).await?;
            if let Some(key) = disclose_with {
                let key = keyfile::read_key(&key)?;
                bundle.disclosures = client.personal(&key, &id).await?.disclosures;
            }
            let text = serde_json::to_string_pretty(&bundle)?;
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            if json {
                print_json(&json!({
                    "file": out,
                    "shipment_id": bundle.shipment_id,
                    "height": bundle.checkpoint.header.height,
                    "events": bundle.events.len(),
                    "disclosures": bundle.disclosures.len(),
                }))?;
            } else {
                outln!(
                    "wrote the bundle of shipment {} ({} events, {} disclosures, checkpoint height {}) to {}",
                    bundle.shipment_id,
                    bundle.events.len(),
                    bundle.disclosures.len(),
                    bundle.checkpoint.header.height,
                    out.display()
                )?;
            }
        }
        Command::Verify(VerifyCommand::Bundle { file, genesis }) => {
            let genesis = verify::read_genesis(&genesis)?;
            let bundle = match verify::read_bundle(&file) {
                Ok(bundle) => bundle,
                // Read, but not a bundle: the bundle is invalid, not the tool.
                Err(FileError::Invalid { message, .. }) => {
                    report_invalid(json, "bundle.json", &message)?;
                    return Ok(Verdict::Invalid);
                }
                Err(other) => return Err(other.into()),
            };
            return verify_bundle(&bundle, &genesis, json);
        }
        Command::Verify(VerifyCommand::Consistency(args)) => {
            return consistency::run(&args, &client()?, json).await;
        }
        Command::Epcis(command) => return epcis::run(command, json, &cli.node).await,
        Command::Personal(command) => return personal::run(command, &cli.node, json).await,
        Command::Verify(VerifyCommand::Chain { genesis }) => {
            let genesis = verify::read_genesis(&genesis)?;
            return verify_chain(&client()?, &genesis, json).await;
        }
    }
    Ok(Verdict::Ok)
}

/// Prints an "invalid" verdict that is about the whole input, not one event: the failing
/// check and what was found.
fn report_invalid(json: bool, check: &str, message: &str) -> anyhow::Result<()> {
    if json {
        print_json(&json!({
            "valid": false,
            "check": check,
            "event_id": null,
            "index": null,
            "message": message,
        }))
    } else {
        outln!("invalid: check {check} failed")?;
        outln!("  reason  {message}")
    }
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
                    .zip(&verified.entries)
                    .map(|(e, entry)| {
                        json!({
                            "event_id": e.id(),
                            "kind": e.event().event.kind.name(),
                            "height": entry.height,
                            "committed_at": entry.time,
                            "log_index": entry.log_index,
                        })
                    })
                    .collect();
                let disclosed: Vec<_> = verified
                    .disclosures
                    .iter()
                    .map(|d| json!({ "event_id": d.event_id, "field": d.field, "value": d.value }))
                    .collect();
                print_json(&json!({
                    "valid": true,
                    "shipment_id": verified.shipment_id,
                    "height": verified.height,
                    "time": verified.time,
                    "block_hash": verified.block_hash,
                    "log_size": verified.log_size,
                    "shipments_root": verified.shipments_root,
                    "event_count": verified.events.len(),
                    "events": events,
                    "disclosures": disclosed,
                }))?;
            } else {
                outln!("valid: shipment {}", verified.shipment_id)?;
                outln!(
                    "  checkpoint  height {} at {} (block {})",
                    verified.height,
                    verified.time,
                    verified.block_hash
                )?;
                outln!(
                    "  complete    the checkpoint's shipment map (root {}) names the last event",
                    verified.shipments_root
                )?;
                outln!("  events      {}", verified.events.len())?;
                for (index, (event, entry)) in
                    verified.events.iter().zip(&verified.entries).enumerate()
                {
                    outln!(
                        "    #{index:<3} {}  {:<22} committed at height {} at {}",
                        event.id(),
                        event.event().event.kind.name(),
                        entry.height,
                        entry.time
                    )?;
                }
                for d in &verified.disclosures {
                    outln!(
                        "  disclosed   {} of event {}: {}",
                        d.field.as_str(),
                        d.event_id,
                        d.value
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
        // A block answer that is not a block: the node serves an invalid chain.
        Err(ChainError::Client {
            height,
            error: ClientError::Decode(reason),
        }) if height > 0 => {
            if json {
                print_json(&json!({
                    "valid": false,
                    "height": height,
                    "check": "block.json",
                    "message": reason,
                }))?;
            } else {
                outln!("invalid: height {height}: check block.json failed")?;
                outln!("  reason  {reason}")?;
            }
            Ok(Verdict::Invalid)
        }
        Err(other) => Err(other.into()),
    }
}
