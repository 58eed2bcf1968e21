//! `custody submit`: events from flags, payload files or prepared event files.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{
    ClearanceOutcome, CurrencyCode, CustomsCleared, Delivered, Disposition, DocumentAttested,
    DutyPaid, Event, EventKind, HandoffAccepted, HandoffProposed, LineQuantity, MemberId, Money,
    ProofKind, ReturnReceived, ReturnRequested, ReturnedLine, SensorReading, ShipmentId,
    SignedEvent, TrackingScanRecorded, TransportDocument, TransportDocumentKind,
};
use custody_ledger::personal::{Disclosure, PersonalField, Salt};
use custody_ledger::view::{BatchResult, BatchStatus};
use custody_ledger::{Digest, Timestamp};
use serde::de::DeserializeOwned;

use crate::build::Signer;
use crate::keyfile;
use crate::verify::{read_capped, read_json};
use crate::Client;

/// Largest payload or prepared event file read (JSON is larger than the canonical form).
const PAYLOAD_FILE_SIZE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Largest proof file hashed for a delivery.
const PROOF_FILE_SIZE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Arguments of `custody submit`.
#[derive(Debug, Args)]
#[command(
    subcommand_required = false,
    after_help = "Give either an event kind with its arguments, or --file with a prepared \
                  event: a signed event (submitted as it is) or an unsigned event body (signed \
                  with --key)."
)]
pub(crate) struct SubmitArgs {
    /// The member's private key (PKCS#8 PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// The network's chain id; by default the node's, from its status.
    #[arg(long, global = true, value_name = "ID")]
    pub(crate) chain_id: Option<String>,
    /// When the event happened (RFC 3339, such as 2026-11-02T09:30:00Z); by default now.
    #[arg(long, global = true, value_name = "TIME", value_parser = parse_timestamp)]
    pub(crate) occurred_at: Option<Timestamp>,
    /// Wait until the event is committed and print its receipt.
    #[arg(long, global = true)]
    pub(crate) wait: bool,
    /// Print the signed event instead of submitting it.
    #[arg(long, global = true)]
    pub(crate) dry_run: bool,
    /// A prepared event in JSON: a signed event, or an unsigned event body to sign with --key.
    /// A JSON array of them, or JSON lines, goes through the batch endpoint, at most 1,000
    /// events a request, with one line per event; exit status 1 if any is refused.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// The kind of event to build.
    #[command(subcommand)]
    pub(crate) kind: Option<SubmitKind>,
}

/// A JSON file holding an event payload.
#[derive(Debug, Args)]
pub(crate) struct PayloadFile {
    /// The payload as JSON (see the model's types in custody_ledger::model).
    #[arg(long, value_name = "FILE")]
    pub(crate) payload: PathBuf,
}

/// The arguments of `custody submit scan`.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// The shipment.
    #[arg(long)]
    shipment: String,
    /// A parcel seen, by SSCC; repeat for more. None: the whole shipment.
    #[arg(long = "parcel", value_name = "SSCC")]
    parcels: Vec<String>,
    /// What happened: a CBV bizStep (departing, arriving, transporting, loading,
    /// unloading, holding, inspecting, receiving, shipping…) or a URI.
    #[arg(long, value_name = "BIZSTEP")]
    biz_step: String,
    /// The state the goods are left in: a CBV disposition (in_transit, in_progress,
    /// damaged, returned…) or a URI.
    #[arg(long)]
    disposition: String,
    /// Where the scan was read, as a UN/LOCODE (DEHAM).
    #[arg(long, value_name = "LOCODE")]
    read_point: String,
    /// The read point's GLN (13 digits).
    #[arg(long, value_name = "GLN")]
    read_point_gln: Option<String>,
    /// Where the goods are after the scan, as a UN/LOCODE; by default the read point.
    #[arg(long, value_name = "LOCODE")]
    biz_location: Option<String>,
    /// A sensor reading KIND:UNIT:VALUE[:MIN:MAX] in decimal units with at most three
    /// decimals (Temperature:CEL:4.5:2:8; MIN or MAX may be left empty, KIND may be a
    /// URI); repeat for more.
    #[arg(long = "sensor", value_name = "KIND:UNIT:VALUE[:MIN:MAX]", value_parser = parse_sensor_reading)]
    sensor_readings: Vec<SensorReading>,
    /// The scan reports an exception (a failed delivery attempt, damage, an excursion).
    #[arg(long)]
    exception: bool,
}

/// One subcommand per event kind.
#[derive(Debug, Subcommand)]
pub(crate) enum SubmitKind {
    /// Register a shipment (seller); --payload is a ShipmentRegistered.
    Register(PayloadFile),
    /// Propose handing the shipment to another member (custodian).
    ProposeHandoff {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// The member to hand it to.
        #[arg(long, value_name = "MEMBER")]
        to: String,
        /// Where, as a UN/LOCODE (DEHAM).
        #[arg(long, value_name = "LOCODE")]
        place: String,
        /// The kind of transport document of the next leg.
        #[arg(long, value_enum, requires = "document_number")]
        document_kind: Option<DocumentKind>,
        /// The transport document's number.
        #[arg(long, requires = "document_kind")]
        document_number: Option<String>,
    },
    /// Accept a proposed handoff (the proposed receiver).
    AcceptHandoff {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// The HandoffProposed event's id (hex).
        #[arg(long, value_name = "EVENT_ID", value_parser = parse_digest)]
        proposal: Digest,
    },
    /// Declare the shipment to customs (broker); --payload is a CustomsDeclared.
    Declare(PayloadFile),
    /// Pay duty and tax for a declaration.
    Pay {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// The CustomsDeclared event's id (hex).
        #[arg(long, value_name = "EVENT_ID", value_parser = parse_digest)]
        declaration: Digest,
        /// The amount in minor units of the currency (cents).
        #[arg(long)]
        amount_minor: u64,
        /// The currency (ISO 4217), the declaration's.
        #[arg(long, value_parser = parse_currency)]
        currency: CurrencyCode,
        /// The bank or customs payment reference.
        #[arg(long)]
        reference: String,
    },
    /// Record customs' decision on a declaration (broker).
    Clear {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// The CustomsDeclared event's id (hex).
        #[arg(long, value_name = "EVENT_ID", value_parser = parse_digest)]
        declaration: Digest,
        /// The decision.
        #[arg(long, value_enum)]
        outcome: Outcome,
        /// The authority's reference (MRN or similar).
        #[arg(long)]
        authority_reference: String,
        /// Why, for holds and inspections.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Deliver the shipment (carrier holding it).
    Deliver {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// Where, as a UN/LOCODE (FRPAR).
        #[arg(long, value_name = "LOCODE")]
        place: String,
        /// Who received it, as written on the proof. A person's name: the ledger gets only a
        /// salted commitment to it.
        #[arg(long)]
        received_by: String,
        /// Where to write the disclosure of the name (a JSON array of one {"event_id",
        /// "field", "value", "salt"}, as `custody personal disclose` reads it): the value and
        /// its random salt, kept off the ledger.
        #[arg(long, value_name = "FILE")]
        disclosure_out: PathBuf,
        /// What the proof is.
        #[arg(long, value_enum)]
        proof_kind: ProofKindArg,
        /// SHA-256 of the proof, hex.
        #[arg(long, value_parser = parse_digest, required_unless_present = "proof_file", conflicts_with = "proof_file")]
        proof_hash: Option<Digest>,
        /// The proof file itself, hashed here (it stays off the ledger).
        #[arg(long, value_name = "FILE")]
        proof_file: Option<PathBuf>,
    },
    /// Authorise a return of some invoice lines (seller).
    RequestReturn {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// The return merchandise authorisation number.
        #[arg(long)]
        rma: String,
        /// An invoice line and the units coming back, LINE:QUANTITY; repeat for more lines.
        #[arg(long = "line", value_name = "LINE:QUANTITY", required = true, value_parser = parse_line_quantity)]
        lines: Vec<LineQuantity>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Record goods received back under an RMA (seller).
    ReceiveReturn {
        /// The shipment.
        #[arg(long)]
        shipment: String,
        /// The RMA of the request.
        #[arg(long)]
        rma: String,
        /// LINE:QUANTITY:DISPOSITION (resellable, damaged or destroyed); repeat for more lines.
        #[arg(long = "line", value_name = "LINE:QUANTITY:DISPOSITION", required = true, value_parser = parse_returned_line)]
        lines: Vec<ReturnedLine>,
    },
    /// Record a tracking scan of the shipment or some of its parcels (the custodian or any
    /// carrier); custody does not move.
    Scan(Box<ScanArgs>),
    /// Attest a document about a shipment; --payload is a DocumentAttested.
    Attest(PayloadFile),
    /// Publish reference data (customs authority); --payload is a ReferenceDataPublished.
    PublishReference(PayloadFile),
    /// Change the membership (admin); --payload is a MembershipChanged with its approvals.
    Membership(PayloadFile),
}

/// Kinds of transport document.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DocumentKind {
    /// IATA air waybill.
    AirWaybill,
    /// Ocean bill of lading.
    BillOfLading,
    /// CMR road consignment note.
    RoadConsignmentNote,
    /// CIM rail consignment note.
    RailConsignmentNote,
    /// A courier's own waybill.
    CourierWaybill,
}

impl From<DocumentKind> for TransportDocumentKind {
    fn from(kind: DocumentKind) -> Self {
        match kind {
            DocumentKind::AirWaybill => TransportDocumentKind::AirWaybill,
            DocumentKind::BillOfLading => TransportDocumentKind::BillOfLading,
            DocumentKind::RoadConsignmentNote => TransportDocumentKind::RoadConsignmentNote,
            DocumentKind::RailConsignmentNote => TransportDocumentKind::RailConsignmentNote,
            DocumentKind::CourierWaybill => TransportDocumentKind::CourierWaybill,
        }
    }
}

/// Customs decisions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Outcome {
    /// Released for free circulation.
    Release,
    /// Held.
    Hold,
    /// Held for physical inspection.
    Inspection,
}

impl From<Outcome> for ClearanceOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Release => ClearanceOutcome::Release,
            Outcome::Hold => ClearanceOutcome::Hold,
            Outcome::Inspection => ClearanceOutcome::Inspection,
        }
    }
}

/// Kinds of proof of delivery.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ProofKindArg {
    /// The recipient's signature.
    Signature,
    /// A photo of the parcel at the door.
    Photo,
    /// A one-time code the recipient read out.
    OneTimeCode,
}

impl From<ProofKindArg> for ProofKind {
    fn from(kind: ProofKindArg) -> Self {
        match kind {
            ProofKindArg::Signature => ProofKind::Signature,
            ProofKindArg::Photo => ProofKind::Photo,
            ProofKindArg::OneTimeCode => ProofKind::OneTimeCode,
        }
    }
}

fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        "expected an RFC 3339 UTC time such as 2026-11-02T09:30:00Z, or a date 2026-11-02".into()
    })
}

fn parse_digest(text: &str) -> Result<Digest, String> {
    Digest::from_hex(text).map_err(|_| "expected 64 hex characters".into())
}

fn parse_currency(text: &str) -> Result<CurrencyCode, String> {
    CurrencyCode::parse(text).ok_or_else(|| "expected three capital letters (ISO 4217)".into())
}

fn parse_number<T: std::str::FromStr>(part: &str, what: &str) -> Result<T, String> {
    part.parse()
        .map_err(|_| format!("{what} {part:?} is not a whole number"))
}

fn parse_line_quantity(text: &str) -> Result<LineQuantity, String> {
    let (line, quantity) = text
        .split_once(':')
        .ok_or_else(|| "expected LINE:QUANTITY, such as 1:2".to_owned())?;
    Ok(LineQuantity {
        invoice_line: parse_number(line, "line")?,
        quantity: parse_number(quantity, "quantity")?,
    })
}

fn parse_returned_line(text: &str) -> Result<ReturnedLine, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(line), Some(quantity), Some(disposition)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("expected LINE:QUANTITY:DISPOSITION, such as 1:2:resellable".into());
    };
    let disposition = match disposition {
        "resellable" => Disposition::Resellable,
        "damaged" => Disposition::Damaged,
        "destroyed" => Disposition::Destroyed,
        other => {
            return Err(format!(
                "disposition {other:?} is not one of resellable, damaged, destroyed"
            ))
        }
    };
    Ok(ReturnedLine {
        invoice_line: parse_number(line, "line")?,
        quantity: parse_number(quantity, "quantity")?,
        disposition,
    })
}

/// A decimal number of units (`4.5`, `-18`, `0.125`) as an exact count of thousandths.
fn parse_milli(text: &str, what: &str) -> Result<i64, String> {
    let bad = || format!("{what} {text:?} is not a number with at most three decimals");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if units.is_empty() || !all_digits(units) || !all_digits(fraction) || fraction.len() > 3 {
        return Err(bad());
    }
    if digits.ends_with('.') {
        return Err(bad());
    }
    let units: i64 = units.parse().map_err(|_| bad())?;
    let fraction: i64 = format!("{fraction:0<3}").parse().map_err(|_| bad())?;
    let magnitude = units
        .checked_mul(1_000)
        .and_then(|m| m.checked_add(fraction))
        .ok_or_else(bad)?;
    Ok(if negative { -magnitude } else { magnitude })
}

fn parse_optional_milli(text: &str, what: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse_milli(text, what).map(Some)
    }
}

/// `KIND:UNIT:VALUE` or `KIND:UNIT:VALUE:MIN:MAX`, read from the right so that the kind may
/// be a URI with colons of its own.
fn parse_sensor_reading(text: &str) -> Result<SensorReading, String> {
    let expected = "expected KIND:UNIT:VALUE[:MIN:MAX], such as Temperature:CEL:4.5:2:8";
    let parts: Vec<&str> = text.split(':').collect();
    let is_number = |s: &str| parse_milli(s, "").is_ok();
    let with_limits = parts.len() >= 5
        && is_number(parts[parts.len() - 3])
        && parts[parts.len() - 2..]
            .iter()
            .all(|s| s.is_empty() || is_number(s));
    let (head, limits) = if with_limits {
        parts.split_at(parts.len() - 2)
    } else {
        (&parts[..], &[][..])
    };
    let [kind @ .., unit, value] = head else {
        return Err(expected.into());
    };
    let kind = kind.join(":");
    if kind.is_empty() {
        return Err(expected.into());
    }
    let (min, max) = match limits {
        [min, max] => (
            parse_optional_milli(min, "lower limit")?,
            parse_optional_milli(max, "upper limit")?,
        ),
        _ => (None, None),
    };
    Ok(SensorReading {
        kind,
        unit: (*unit).to_owned(),
        value_milli: parse_milli(value, "value")?,
        min_milli: min,
        max_milli: max,
    })
}

/// The wall clock as a ledger timestamp: the default `occurred_at` of a new event.
fn now() -> anyhow::Result<Timestamp> {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    Ok(Timestamp(
        u64::try_from(elapsed.as_millis()).context("the system clock is out of range")?,
    ))
}

fn payload<T: DeserializeOwned>(file: &PayloadFile, what: &'static str) -> anyhow::Result<T> {
    Ok(read_json(&file.payload, what, PAYLOAD_FILE_SIZE_BYTES_MAX)?)
}

fn signer_key(args: &SubmitArgs) -> anyhow::Result<custody_ledger::Keypair> {
    let path = args
        .key
        .as_deref()
        .ok_or_else(|| anyhow!("--key FILE is needed to sign the event"))?;
    Ok(keyfile::read_key(path)?)
}

/// The chain id: as given, or the node's.
async fn chain_id(args: &SubmitArgs, client: &Client) -> anyhow::Result<String> {
    match &args.chain_id {
        Some(id) => Ok(id.clone()),
        None => Ok(client
            .status()
            .await
            .context("asking the node for its chain id (or give --chain-id)")?
            .chain_id),
    }
}

/// A prepared event file: a signed event as it is, or a body signed with --key.
fn prepared(args: &SubmitArgs, path: &Path) -> anyhow::Result<EncodedEvent> {
    let value: serde_json::Value = read_json(path, "event file", PAYLOAD_FILE_SIZE_BYTES_MAX)?;
    prepared_value(args, path, value, &mut None)
}

/// The events of a prepared event file that holds several: a JSON array, or JSON values one
/// after another (JSON lines), each a signed event or a body signed with --key. `None` when
/// there is no --file, or it holds one event (or is not JSON): `POST /v1/events` as before.
pub(crate) fn prepared_batch(args: &SubmitArgs) -> anyhow::Result<Option<Vec<EncodedEvent>>> {
    let (Some(path), None) = (&args.file, &args.kind) else {
        return Ok(None);
    };
    let bytes = read_capped(path, "event file", PAYLOAD_FILE_SIZE_BYTES_MAX)?;
    let parsed: Result<Vec<serde_json::Value>, _> = serde_json::Deserializer::from_slice(&bytes)
        .into_iter()
        .collect();
    let values = match parsed.map(<[serde_json::Value; 1]>::try_from) {
        // The single-event path reports what is wrong with a file that is not JSON.
        Err(_) | Ok(Ok([serde_json::Value::Object(_)])) => return Ok(None),
        Ok(Ok([serde_json::Value::Array(items)])) => items,
        Ok(Ok([other])) => vec![other],
        Ok(Err(values)) => values,
    };
    if values.is_empty() {
        bail!("{}: holds no event", path.display());
    }
    let mut signer = None;
    let events = values
        .into_iter()
        .enumerate()
        .map(|(at, value)| {
            prepared_value(args, path, value, &mut signer).with_context(|| format!("event {at}"))
        })
        .collect::<anyhow::Result<Vec<EncodedEvent>>>()?;
    Ok(Some(events))
}

/// One prepared event: a signed event as it is, or a body signed with --key (read once, into
/// `signer`, for all the bodies of a file).
fn prepared_value(
    args: &SubmitArgs,
    path: &Path,
    value: serde_json::Value,
    signer: &mut Option<Signer>,
) -> anyhow::Result<EncodedEvent> {
    let is_signed = value
        .as_object()
        .is_some_and(|o| o.contains_key("signature") || o.contains_key("signer"));
    if is_signed {
        let event: SignedEvent = serde_json::from_value(value)
            .with_context(|| format!("{}: not a signed event", path.display()))?;
        return Ok(EncodedEvent::new(event));
    }
    let body: Event = serde_json::from_value(value).with_context(|| {
        format!(
            "{}: neither a signed event nor an event body (chain_id, occurred_at, kind)",
            path.display()
        )
    })?;
    if let Some(chain_id) = &args.chain_id {
        if *chain_id != body.chain_id {
            bail!(
                "{}: the event is for chain {:?}, --chain-id says {chain_id:?}",
                path.display(),
                body.chain_id
            );
        }
    }
    let signer = match signer {
        Some(signer) => signer,
        None => signer.insert(Signer::new(signer_key(args)?, body.chain_id.clone())),
    };
    // The body keeps its own chain id: the signer's is not used to sign a prepared body.
    Ok(signer.sign_body(body))
}

/// Submits `events` through `POST /v1/events/batch`, in runs the node takes in one request,
/// and prints one line per event (or, with --json, one result list); `true` if the node
/// refused any.
pub(crate) async fn submit_batch(
    client: &Client,
    events: &[EncodedEvent],
    wait: bool,
    json: bool,
) -> anyhow::Result<bool> {
    let mut all = Vec::with_capacity(events.len());
    let mut offset = 0u64;
    for chunk in crate::batch_chunks(events) {
        let outcome = client.submit_batch(chunk, wait).await?;
        for mut result in outcome.results {
            // Numbered in the file, not in the request.
            result.index += offset;
            if !json {
                print_result(&result)?;
            }
            all.push(result);
        }
        offset += chunk.len() as u64;
    }
    let count = |status| all.iter().filter(|r| r.status == status).count();
    let refused = count(BatchStatus::Refused);
    if json {
        let summary = serde_json::json!({
            "accepted": count(BatchStatus::Accepted),
            "duplicate": count(BatchStatus::Duplicate),
            "refused": refused,
            "results": all,
        });
        outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(refused > 0)
}

fn print_result(result: &BatchResult) -> anyhow::Result<()> {
    let id = result
        .event_id
        .map_or_else(|| "(not an event)".to_owned(), |id| id.to_hex());
    let index = result.index;
    match (result.status, &result.receipt) {
        (_, Some(receipt)) => outln!(
            "{index} {id} committed at height {}, log index {}",
            receipt.entry.height,
            receipt.log_index
        ),
        (BatchStatus::Accepted, None) => outln!("{index} {id} accepted; pending"),
        (BatchStatus::Duplicate, None) => outln!("{index} {id} duplicate"),
        (BatchStatus::Refused, None) => outln!(
            "{index} {id} refused {} ({}): {}",
            result.code.as_deref().unwrap_or(""),
            result.field.as_deref().unwrap_or("-"),
            result.detail.as_deref().unwrap_or("")
        ),
    }
}

/// The event the arguments describe, signed.
pub(crate) async fn event(args: &SubmitArgs, client: &Client) -> anyhow::Result<EncodedEvent> {
    let kind = match (&args.file, &args.kind) {
        (Some(_), Some(_)) => bail!("give either --file or an event kind, not both"),
        (None, None) => bail!("give an event kind (see custody submit --help) or --file"),
        (Some(path), None) => return prepared(args, path),
        (None, Some(kind)) => kind,
    };
    // Read local files before asking the node anything.
    let key = signer_key(args)?;
    let (kind, kept) = event_kind(kind)?;
    let occurred_at = match args.occurred_at {
        Some(at) => at,
        None => now()?,
    };
    let signer = Signer::new(key, chain_id(args, client).await?);
    let event = signer.sign(kind, occurred_at);
    if let Some(kept) = kept {
        let disclosures = vec![Disclosure::new(
            event.id(),
            kept.field,
            kept.value,
            kept.salt,
        )];
        let text = serde_json::to_string_pretty(&disclosures)?;
        std::fs::write(&kept.path, text + "\n")
            .with_context(|| format!("{}: cannot write the disclosure", kept.path.display()))?;
    }
    Ok(event)
}

/// Personal data committed in an event: the value and salt to write to `path`.
struct Kept {
    path: PathBuf,
    field: PersonalField,
    value: String,
    salt: Salt,
}

fn event_kind(kind: &SubmitKind) -> anyhow::Result<(EventKind, Option<Kept>)> {
    let mut kept = None;
    let kind = match kind {
        SubmitKind::Register(file) => {
            EventKind::ShipmentRegistered(payload(file, "ShipmentRegistered payload")?)
        }
        SubmitKind::ProposeHandoff {
            shipment,
            to,
            place,
            document_kind,
            document_number,
        } => EventKind::HandoffProposed(HandoffProposed {
            shipment_id: ShipmentId::new(shipment.as_str()),
            to: MemberId::new(to.as_str()),
            place: place.clone(),
            transport_document: match (document_kind, document_number) {
                (Some(kind), Some(number)) => Some(TransportDocument {
                    kind: (*kind).into(),
                    number: number.clone(),
                }),
                _ => None,
            },
        }),
        SubmitKind::AcceptHandoff { shipment, proposal } => {
            EventKind::HandoffAccepted(HandoffAccepted {
                shipment_id: ShipmentId::new(shipment.as_str()),
                proposal: *proposal,
            })
        }
        SubmitKind::Declare(file) => {
            EventKind::CustomsDeclared(payload(file, "CustomsDeclared payload")?)
        }
        SubmitKind::Pay {
            shipment,
            declaration,
            amount_minor,
            currency,
            reference,
        } => EventKind::DutyPaid(DutyPaid {
            shipment_id: ShipmentId::new(shipment.as_str()),
            declaration: *declaration,
            amount: Money {
                amount_minor: *amount_minor,
                currency: *currency,
            },
            payment_reference: reference.clone(),
        }),
        SubmitKind::Clear {
            shipment,
            declaration,
            outcome,
            authority_reference,
            reason,
        } => EventKind::CustomsCleared(CustomsCleared {
            shipment_id: ShipmentId::new(shipment.as_str()),
            declaration: *declaration,
            outcome: (*outcome).into(),
            authority_reference: authority_reference.clone(),
            reason: reason.clone(),
        }),
        SubmitKind::Deliver {
            shipment,
            place,
            received_by,
            disclosure_out,
            proof_kind,
            proof_hash,
            proof_file,
        } => {
            let proof_hash = match (proof_hash, proof_file) {
                (Some(hash), _) => *hash,
                (None, Some(path)) => Digest::sha256(&crate::verify::read_capped(
                    path,
                    "proof file",
                    PROOF_FILE_SIZE_BYTES_MAX,
                )?),
                (None, None) => bail!("give --proof-hash or --proof-file"),
            };
            let (received_by_commitment, salt) = crate::personal::commit(received_by);
            kept = Some(Kept {
                path: disclosure_out.clone(),
                field: PersonalField::ReceivedBy,
                value: received_by.clone(),
                salt,
            });
            EventKind::Delivered(Delivered {
                shipment_id: ShipmentId::new(shipment.as_str()),
                place: place.clone(),
                proof_kind: (*proof_kind).into(),
                proof_hash,
                received_by_commitment,
            })
        }
        SubmitKind::RequestReturn {
            shipment,
            rma,
            lines,
            reason,
        } => EventKind::ReturnRequested(ReturnRequested {
            shipment_id: ShipmentId::new(shipment.as_str()),
            rma: rma.clone(),
            lines: lines.clone(),
            reason: reason.clone(),
        }),
        SubmitKind::ReceiveReturn {
            shipment,
            rma,
            lines,
        } => EventKind::ReturnReceived(ReturnReceived {
            shipment_id: ShipmentId::new(shipment.as_str()),
            rma: rma.clone(),
            lines: lines.clone(),
        }),
        SubmitKind::Scan(scan) => EventKind::TrackingScanRecorded(TrackingScanRecorded {
            shipment_id: ShipmentId::new(scan.shipment.as_str()),
            parcels: scan.parcels.clone(),
            biz_step: scan.biz_step.clone(),
            disposition: scan.disposition.clone(),
            read_point: scan.read_point.clone(),
            read_point_gln: scan.read_point_gln.clone(),
            biz_location: scan
                .biz_location
                .clone()
                .unwrap_or_else(|| scan.read_point.clone()),
            sensor_readings: scan.sensor_readings.clone(),
            exception: scan.exception,
        }),
        SubmitKind::Attest(file) => EventKind::DocumentAttested(payload::<DocumentAttested>(
            file,
            "DocumentAttested payload",
        )?),
        SubmitKind::PublishReference(file) => {
            EventKind::ReferenceDataPublished(payload(file, "ReferenceDataPublished payload")?)
        }
        SubmitKind::Membership(file) => {
            EventKind::MembershipChanged(payload(file, "MembershipChanged payload")?)
        }
    };
    Ok((kind, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_arguments_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_line_quantity("2:5"),
            Ok(LineQuantity {
                invoice_line: 2,
                quantity: 5
            })
        );
        assert!(parse_line_quantity("2").is_err());
        assert!(parse_line_quantity("a:5").unwrap_err().contains("line"));
        assert_eq!(
            parse_returned_line("1:3:damaged"),
            Ok(ReturnedLine {
                invoice_line: 1,
                quantity: 3,
                disposition: Disposition::Damaged
            })
        );
        assert!(parse_returned_line("1:3:lost")
            .unwrap_err()
            .contains("lost"));
        assert!(parse_returned_line("1:3").is_err());
    }

    #[test]
    fn sensor_arguments_parse_exactly_in_thousandths() {
        let reading = |kind: &str, unit: &str, value, min, max| SensorReading {
            kind: kind.into(),
            unit: unit.into(),
            value_milli: value,
            min_milli: min,
            max_milli: max,
        };
        assert_eq!(
            parse_sensor_reading("Temperature:CEL:4.5:2:8"),
            Ok(reading(
                "Temperature",
                "CEL",
                4_500,
                Some(2_000),
                Some(8_000)
            ))
        );
        assert_eq!(
            parse_sensor_reading("Temperature:CEL:-18.25::-15"),
            Ok(reading("Temperature", "CEL", -18_250, None, Some(-15_000)))
        );
        assert_eq!(
            parse_sensor_reading("RelativeHumidity:P1:61"),
            Ok(reading("RelativeHumidity", "P1", 61_000, None, None))
        );
        assert_eq!(
            parse_sensor_reading("https://example.com/tilt:DD:0.125"),
            Ok(reading("https://example.com/tilt", "DD", 125, None, None))
        );
        assert_eq!(
            parse_sensor_reading("urn:example:tilt:DD:3:1:5"),
            Ok(reading(
                "urn:example:tilt",
                "DD",
                3_000,
                Some(1_000),
                Some(5_000)
            ))
        );
        for bad in [
            "Temperature:CEL",
            "CEL:4.5",
            "Temperature:CEL:4.5555",
            "Temperature:CEL:4,5",
            "Temperature:CEL:4.",
            "Temperature:CEL:.5",
            "Temperature:CEL:99999999999999999",
            ":CEL:4",
        ] {
            assert!(parse_sensor_reading(bad).is_err(), "{bad}");
        }
    }
}
