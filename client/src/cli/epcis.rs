//! `custody epcis`: GS1 EPCIS 2.0 documents.
//!
//! `hash FILE` prints the CBV 2.0 event hash ID of every event of an `EPCISDocument` or
//! `EPCISQueryDocument` (or of a lone event), in document order: the fingerprint partners
//! compare to know they hold the same event, whatever syntax each wrote it in. It works
//! offline.
//!
//! `capture FILE --key KEY` signs each event of an `EPCISDocument` as the member and commits
//! it through the node (`custody_client::epcis`), then prints a report per event. The schema
//! check needs GS1's EPCIS 2.0 JSON Schema, which Custody does not ship: `--schema FILE` (or
//! `CUSTODY_EPCIS_SCHEMA`); without it only the mapping's own checks run, which refuse every
//! field they do not read. Exit 0 when every event is committed, 1 when any is refused, 2 when
//! the document cannot be captured at all or an event's fate is unknown (not committed within
//! the node's wait, or not submitted because the node could not be reached).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use clap::Subcommand;
use custody_epcis::Validator;
use custody_ledger::model::ShipmentId;
use serde_json::{json, Value};

use crate::build::Signer;
use crate::cli::Verdict;
use crate::epcis::{self as capture, CaptureReport, Outcome};
use crate::verify::read_json;
use crate::{keyfile, Client};

/// Largest EPCIS document read (a day of a busy hub's events is far less).
pub(crate) const EPCIS_FILE_SIZE_BYTES_MAX: u64 = 64 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub(crate) enum EpcisCommand {
    /// Print the CBV 2.0 event hash ID (`ni:///sha-256;…`) of each event of an EPCIS 2.0
    /// JSON-LD document, one per line in document order (`--json`: a JSON array).
    Hash {
        /// The EPCISDocument or EPCISQueryDocument (JSON-LD).
        file: PathBuf,
    },
    /// Sign each event of an EPCIS 2.0 document as a member and commit it through the node;
    /// print what became of each (committed with its Custody event id and height, or refused
    /// with the code and the field). Exit 0 all committed, 1 some refused, 2 otherwise.
    Capture {
        /// The EPCISDocument (JSON-LD), at most 16 MiB and 1000 events.
        file: PathBuf,
        /// The member's event-signing key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The shipment of events that do not name one (`custody:shipmentId`).
        #[arg(long, value_name = "ID")]
        shipment: Option<String>,
        /// GS1's EPCIS 2.0 JSON Schema, to check the document against first. Without it, only
        /// the mapping's own checks run.
        #[arg(long, env = "CUSTODY_EPCIS_SCHEMA", value_name = "FILE")]
        schema: Option<PathBuf>,
    },
}

/// Runs an `epcis` command.
pub(crate) async fn run(command: EpcisCommand, json: bool, node: &str) -> anyhow::Result<Verdict> {
    match command {
        EpcisCommand::Hash { file } => hash(&file, json).map(|()| Verdict::Ok),
        EpcisCommand::Capture {
            file,
            key,
            shipment,
            schema,
        } => {
            let shipment = shipment.map(ShipmentId::new);
            run_capture(
                &file,
                &key,
                shipment.as_ref(),
                schema.as_deref(),
                json,
                node,
            )
            .await
        }
    }
}

async fn run_capture(
    file: &Path,
    key: &Path,
    shipment: Option<&ShipmentId>,
    schema: Option<&Path>,
    json: bool,
    node: &str,
) -> anyhow::Result<Verdict> {
    if let Some(id) = shipment {
        if !id.is_well_formed() {
            return Err(anyhow!(
                "--shipment {id:?}: not a shipment id (1 to 64 of A-Z a-z 0-9 . _ - :)"
            ));
        }
    }
    let validator = match schema {
        Some(path) => {
            let schema: Value = read_json(path, "EPCIS JSON Schema", EPCIS_FILE_SIZE_BYTES_MAX)?;
            Some(Validator::new(&schema).with_context(|| format!("{}", path.display()))?)
        }
        None => None,
    };
    let document: Value = read_json(file, "EPCIS document", capture::DOCUMENT_SIZE_BYTES_MAX)?;
    // Checked before the node is asked anything, so a bad document costs no round trip.
    capture::document_events(&document, validator.as_ref())
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let key = keyfile::read_key(key)?;
    let client = Client::new(node).context("--node")?;
    let chain_id = client
        .status()
        .await
        .map_err(|e| anyhow!("asking the node for its chain id: {e}"))?
        .chain_id;
    let signer = Signer::new(key, chain_id);
    // The node's problems become plain errors here: a document refused as a whole is a
    // failure of the tool (exit 2), not an event refused (exit 1).
    let report = capture::capture(&client, &signer, &document, validator.as_ref(), shipment)
        .await
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    print_report(&report, json)?;
    Ok(if report.all_committed() {
        Verdict::Ok
    } else if report.any_refused()
        && report
            .events
            .iter()
            .all(|e| !matches!(&e.outcome, Outcome::Pending { .. }))
        && report.events.iter().all(|e| {
            !matches!(&e.outcome, Outcome::Refused { code, .. }
                if code == capture::codes::NOT_SUBMITTED)
        })
    {
        Verdict::Invalid
    } else {
        Verdict::Failed
    })
}

fn print_report(report: &CaptureReport, json: bool) -> anyhow::Result<()> {
    let count = |f: fn(&Outcome) -> bool| report.events.iter().filter(|e| f(&e.outcome)).count();
    let committed = count(|o| matches!(o, Outcome::Committed { .. }));
    let pending = count(|o| matches!(o, Outcome::Pending { .. }));
    let refused = count(|o| matches!(o, Outcome::Refused { .. }));
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "committed": committed,
                "pending": pending,
                "refused": refused,
                "events": report.events,
            }))?
        )?;
        return Ok(());
    }
    for event in &report.events {
        match &event.outcome {
            Outcome::Committed {
                event_id,
                kind,
                height,
                log_index,
            } => outln!(
                "#{:<3} committed  {kind} {event_id} at height {height}, log index {log_index}",
                event.index
            )?,
            Outcome::Pending { event_id, kind } => outln!(
                "#{:<3} pending    {kind} {event_id}: admitted, not committed within the wait",
                event.index
            )?,
            Outcome::Refused {
                code,
                field,
                reason,
            } => {
                let field = field
                    .as_ref()
                    .map_or(String::new(), |f| format!(" (field {f})"));
                outln!("#{:<3} refused    {code}{field}: {reason}", event.index)?
            }
        }
    }
    outln!(
        "{} events: {committed} committed, {refused} refused, {pending} pending",
        report.events.len()
    )?;
    Ok(())
}

fn hash(file: &Path, json: bool) -> anyhow::Result<()> {
    let document: Value = read_json(file, "EPCIS document", EPCIS_FILE_SIZE_BYTES_MAX)?;
    let ids = custody_epcis::document_hash_ids(&document)
        .with_context(|| format!("{}: no event hash IDs", file.display()))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&ids)?)?;
    } else {
        for id in ids {
            outln!("{id}")?;
        }
    }
    Ok(())
}
