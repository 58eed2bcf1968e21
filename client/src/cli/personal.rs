//! `custody erase` and `custody personal show|disclose`: a shipment's off-ledger personal
//! data. Reads and writes are signed with the member key given by `--key`; the node answers
//! only a party of the shipment.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use custody_ledger::model::ShipmentId;
use custody_ledger::personal::Disclosure;
use serde_json::json;

use crate::build::Signer;
use crate::cli::{print_json, Verdict};
use crate::verify::read_json;
use crate::{keyfile, Client, Submitted};

/// Largest disclosures file read.
const DISCLOSURES_FILE_SIZE_BYTES_MAX: u64 = 1024 * 1024;

/// The commands of this module, flattened into the top level.
#[derive(Debug, Subcommand)]
pub(crate) enum PersonalCommands {
    /// Erase a shipment's personal data: signs and submits a PersonalDataErased event (the
    /// seller's or an admin's key) and waits for its commit. Every node then deletes the
    /// values and salts it holds; the commitments stay, and every proof still verifies.
    Erase(EraseArgs),
    /// Give a node, or read from it, a shipment's personal data (kept off the ledger).
    #[command(subcommand)]
    Personal(PersonalCommand),
}

/// Arguments of `custody erase`.
#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    /// The shipment.
    shipment: String,
    /// The seller's or an admin's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

/// `custody personal …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PersonalCommand {
    /// The disclosures the node holds for a shipment (a signed read by a party).
    Show {
        /// The shipment.
        shipment: String,
        /// A party member's private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Give the node disclosures of a shipment: a JSON array of
    /// {"event_id", "field", "value", "salt"}; each is checked against its event's commitment.
    Disclose {
        /// The shipment.
        shipment: String,
        /// The disclosures (JSON array).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// A party member's private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

/// Runs a command against the node at `node`.
pub(crate) async fn run(
    command: PersonalCommands,
    node: &str,
    json: bool,
) -> anyhow::Result<Verdict> {
    let client = Client::new(node).context("--node")?;
    match command {
        PersonalCommands::Erase(args) => erase(&client, args, json).await,
        PersonalCommands::Personal(PersonalCommand::Show { shipment, key }) => {
            let key = keyfile::read_key(&key)?;
            let view = client.personal(&key, &ShipmentId::new(shipment)).await?;
            if json {
                print_json(&view)?;
            } else if view.disclosures.is_empty() {
                outln!(
                    "shipment {}: this node holds no personal data",
                    view.shipment_id
                )?;
            } else {
                outln!("shipment {}:", view.shipment_id)?;
                for d in &view.disclosures {
                    outln!(
                        "  {:<18} {}  (event {})",
                        d.field.as_str(),
                        d.value,
                        d.event_id
                    )?;
                }
            }
            Ok(Verdict::Ok)
        }
        PersonalCommands::Personal(PersonalCommand::Disclose {
            shipment,
            file,
            key,
        }) => {
            let key = keyfile::read_key(&key)?;
            let disclosures: Vec<Disclosure> =
                read_json(&file, "disclosures", DISCLOSURES_FILE_SIZE_BYTES_MAX)?;
            let stored = client
                .disclose(&key, &ShipmentId::new(shipment), disclosures)
                .await?;
            if json {
                print_json(&stored)?;
            } else {
                outln!(
                    "the node holds {} disclosures of shipment {} (off the ledger)",
                    stored.held,
                    stored.shipment_id
                )?;
            }
            Ok(Verdict::Ok)
        }
    }
}

async fn erase(client: &Client, args: EraseArgs, json: bool) -> anyhow::Result<Verdict> {
    let key = keyfile::read_key(&args.key)?;
    let chain_id = client.status().await?.chain_id;
    let shipment = ShipmentId::new(args.shipment);
    let submitted = client.erase(&Signer::new(key, chain_id), &shipment).await?;
    match submitted {
        Submitted::Committed(receipt) => {
            if json {
                print_json(&json!({
                    "status": "committed",
                    "shipment_id": shipment,
                    "event_id": receipt.event_id,
                    "height": receipt.height,
                }))?;
            } else {
                outln!(
                    "erased the personal data of shipment {shipment}: event {} committed at \
                     height {}; every node deletes its copy",
                    receipt.event_id,
                    receipt.height
                )?;
            }
            Ok(Verdict::Ok)
        }
        Submitted::Pending(accepted) => {
            if json {
                print_json(&json!({ "status": "pending", "event_id": accepted.event_id }))?;
            } else {
                outln!(
                    "accepted {}; not committed within the node's wait, still pending",
                    accepted.event_id
                )?;
            }
            Ok(Verdict::Failed)
        }
    }
}
