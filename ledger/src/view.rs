//! The JSON shapes of the HTTP API, shared by the node that serves them and the SDK that reads
//! them, so the two cannot disagree. Plain data: no I/O, no behaviour beyond conversions.

use serde::{Deserialize, Serialize};

use crate::block::{BlockHeader, CommitCertificate};
use crate::bundle::Checkpoint;
use crate::hash::Digest;
use crate::keys::PublicKey;
use crate::model::{CountryCode, EventId, MemberId, Role, ShipmentId, SignedEvent};
use crate::state::{MemberStatus, ShipmentStatus};
use crate::time::Timestamp;

/// Proof that an event is committed: its place and its inclusion proof in the log as of the
/// block named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The event.
    pub event_id: EventId,
    /// Height of the block the proof leads to (for `POST ?wait=commit`, the committing block).
    pub height: u64,
    /// That block's hash.
    pub block_hash: Digest,
    /// That block's time.
    pub recorded_at: Timestamp,
    /// The event's index in the log.
    pub log_index: u64,
    /// The log size at that block.
    pub log_size: u64,
    /// The log root at that block.
    pub log_root: Digest,
    /// The event's log entry: its leaf is `SHA-256(0x00 || canonical(entry))`, so the proof
    /// also proves the committing block's height and time.
    pub entry: crate::entry::LogEntry,
    /// Sibling hashes from the entry's leaf to `log_root`.
    pub inclusion_proof: Vec<Digest>,
}

/// `202 Accepted`: the event waits for a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// The event's id.
    pub event_id: EventId,
    /// Always `pending`.
    #[cfg_attr(feature = "openapi", schema(schema_with = pending_schema))]
    pub status: String,
}

/// Most events in one `POST /v1/events/batch`: shared by the node that enforces it and the
/// SDK that splits larger submissions.
pub const BATCH_EVENTS_MAX: usize = 1_000;
/// Largest `POST /v1/events/batch` body: room for many events in JSON, which is about twice
/// the size of their canonical bytes, while one request stays a bounded amount of work.
pub const BATCH_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

/// `POST /v1/events/batch`: what became of each event of a batch, in the batch's order, and
/// how many ended each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchOutcome {
    /// One result per element of the batch, in order.
    pub results: Vec<BatchResult>,
    /// Results with status `accepted`.
    pub accepted: u64,
    /// Results with status `duplicate`.
    pub duplicate: u64,
    /// Results with status `refused`.
    pub refused: u64,
}

/// What became of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    /// The element's position in the batch, from 0.
    pub index: u64,
    /// The event's id; `null` when the element is not a signed event at all.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub event_id: Option<EventId>,
    /// What became of it.
    pub status: BatchStatus,
    /// Refused only: the stable code, as `POST /v1/events` would answer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub code: Option<String>,
    /// Refused only, when there is one: the offending field of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub field: Option<String>,
    /// Refused only: what was wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub detail: Option<String>,
    /// With `?wait=commit`, once the event is committed: its receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub receipt: Option<Receipt>,
}

/// The status of one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// In the mempool: admitted now, or already waiting there (as `POST /v1/events` answers a
    /// resubmitted waiting event).
    Accepted,
    /// Already on the ledger, or the same event earlier in the batch.
    Duplicate,
    /// Not admitted; `code`, `field` and `detail` say why.
    Refused,
}

/// A committed event, where it is, and its proof to the current head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    /// The event's id.
    pub event_id: EventId,
    /// The block that committed it.
    pub height: u64,
    /// Its position in that block.
    pub index_in_block: u32,
    /// Its index in the log.
    pub log_index: u64,
    /// The committing block's time.
    pub recorded_at: Timestamp,
    /// The signed event.
    pub event: SignedEvent,
    /// Its proof to the head at the time of the answer.
    pub receipt: Receipt,
}

/// One page of a list, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `?after=` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next: Option<String>,
}

/// An event in a list: its place and the signed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventEntry {
    /// The event's id.
    pub event_id: EventId,
    /// The block that committed it.
    pub height: u64,
    /// Its index in the log.
    pub log_index: u64,
    /// The committing block's time.
    pub recorded_at: Timestamp,
    /// The signed event.
    pub event: SignedEvent,
}

/// A member as the ledger knows it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberView {
    /// Stable id.
    pub id: MemberId,
    /// Organisation name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Current event-signing key.
    pub key: PublicKey,
    /// Keys rotated out; their past signatures stay valid.
    pub retired_keys: Vec<PublicKey>,
    /// Active or revoked.
    pub status: MemberStatus,
    /// Node key, for members that run a node (from genesis).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub node_key: Option<PublicKey>,
    /// Voting power (from genesis).
    pub voting_power: u64,
}

/// A committed block: header, hash, certificate and the events' canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockView {
    /// The header's hash.
    pub hash: Digest,
    /// The header.
    pub header: BlockHeader,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The events' ids, in block order.
    pub event_ids: Vec<EventId>,
    /// The events' canonical bytes, base64, in block order (what `custody verify chain`
    /// replays).
    #[cfg_attr(feature = "openapi", schema(schema_with = base64_list_schema))]
    pub events: Vec<String>,
}

/// `GET /v1/log/checkpoint`: the latest checkpoint.
pub type CheckpointView = Checkpoint;

/// `GET /v1/log/consistency`: proof that the log at `to` extends the log at `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyView {
    /// Older log size.
    pub from: u64,
    /// Newer log size.
    pub to: u64,
    /// Log root at `from`.
    pub from_root: Digest,
    /// Log root at `to`.
    pub to_root: Digest,
    /// The RFC 6962 consistency proof.
    pub proof: Vec<Digest>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// Chain id.
    pub chain_id: String,
    /// Genesis hash: the network's identity.
    pub genesis_hash: Digest,
    /// This node's key.
    pub node_key: PublicKey,
    /// Whether it votes.
    pub validator: bool,
    /// Head height (0 before the first block).
    pub height: u64,
    /// Head block hash (the genesis hash before the first block).
    pub head_hash: Digest,
    /// Events in the log.
    pub log_size: u64,
    /// Log root.
    pub log_root: Digest,
    /// Events waiting.
    pub mempool_size: usize,
    /// Whether the node is doing its work, and if not, why (`/healthz` answers 503 then).
    pub health: NodeHealth,
}

/// A node's health, in `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeHealth {
    /// True when every critical task runs and the node keeps up with the validators.
    pub healthy: bool,
    /// What is wrong, for people; empty when healthy.
    pub problems: Vec<String>,
    /// The critical task that stopped, if one did (the node then exits).
    pub failed_task: Option<String>,
    /// The height at least `f + 1` validators are deciding, from their consensus messages;
    /// absent before any was heard.
    pub peers_height: Option<u64>,
    /// Milliseconds since this node last committed a block (or started).
    pub since_last_commit_ms: u64,
}

/// A shipment in a list: what a search result or a row of a table shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShipmentSummary {
    /// The id.
    pub shipment_id: ShipmentId,
    /// Lifecycle status.
    pub status: ShipmentStatus,
    /// The seller that registered it.
    pub seller: MemberId,
    /// Who holds it now.
    pub custodian: MemberId,
    /// Country of dispatch.
    pub origin: CountryCode,
    /// Country of destination.
    pub destination: CountryCode,
    /// Block time of the registration.
    pub registered_at: Timestamp,
    /// Height of the block that registered it.
    pub registered_height: u64,
    /// Block time of its latest event.
    pub last_event_at: Timestamp,
    /// The commercial invoice's number.
    pub invoice_number: String,
    /// How many parcels were registered.
    pub parcels: u64,
}

/// `GET /v1/shipments`: one page of shipments, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShipmentList {
    /// The shipments of this page.
    pub shipments: Vec<ShipmentSummary>,
    /// Pass as `?cursor=` (with the same filters) to get the next page; `null` when there is
    /// nothing more.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// A validator and what it did lately, in `GET /v1/network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorActivity {
    /// The member that runs it.
    pub member_id: MemberId,
    /// The member's name.
    pub name: String,
    /// Its node key, which signs proposals and votes.
    pub node_key: PublicKey,
    /// Its voting power (from genesis).
    pub voting_power: u64,
    /// The latest recent block it proposed; `null` if none in the look-back.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_proposed_height: Option<u64>,
    /// The latest recent block whose commit certificate carries its signature; `null` if none
    /// in the look-back.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_signed_height: Option<u64>,
}

/// A committed block in `GET /v1/network`'s list of recent blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecentBlock {
    /// Height.
    pub height: u64,
    /// Header hash.
    pub hash: Digest,
    /// Block time.
    pub time: Timestamp,
    /// Number of events in it.
    pub event_count: u32,
    /// Node key of the validator that proposed it.
    pub proposer: PublicKey,
    /// The member whose node that is; `null` if no genesis validator has the key.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub proposer_member: Option<MemberId>,
}

/// Events committed in one minute of block time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinuteCount {
    /// The start of the minute.
    pub minute: Timestamp,
    /// Events in blocks whose time falls in it.
    pub events: u64,
}

/// `GET /v1/network`: the network at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkView {
    /// Chain id.
    pub chain_id: String,
    /// Genesis hash: the network's identity.
    pub genesis_hash: Digest,
    /// Head height (0 before the first block).
    pub height: u64,
    /// The head's block time; `null` before the first block.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub head_time: Option<Timestamp>,
    /// The genesis validators, in genesis order.
    pub validators: Vec<ValidatorActivity>,
    /// The latest blocks, newest first.
    pub recent_blocks: Vec<RecentBlock>,
    /// Events per minute of block time over the last minutes up to the head's, oldest first,
    /// minutes without events included.
    pub events_per_minute: Vec<MinuteCount>,
    /// This node's health, as in `GET /v1/status`.
    pub health: NodeHealth,
}

/// An RFC 9457 problem, as every error answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type (`urn:custody:problem:<code>`).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(format = "uri"))]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened.
    pub detail: String,
    /// The stable code (a contract or ledger rejection code, or an API code).
    pub code: String,
    /// The offending field, as a dotted path into the request, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub field: Option<String>,
}

/// The schema of [`Accepted::status`]: the one value `pending`.
#[cfg(feature = "openapi")]
fn pending_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("Always `pending`."))
        .enum_values(Some(["pending"]))
        .build()
}

/// The schema of [`BlockView::events`]: a list of base64 strings.
#[cfg(feature = "openapi")]
fn base64_list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ArrayBuilder::new()
        .description(Some(
            "The events' canonical bytes, standard base64 with padding, in block order.",
        ))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
                .content_encoding("base64"),
        )
        .build()
}

/// `POST /v1/quote`: a draft shipment, before it exists, to price at the border.
///
/// The draft carries what a registration and a declaration would: the goods (invoice lines
/// with HS codes, quantities, values and origins), the transport and insurance stated on the
/// invoice, the countries, the Incoterm and the seller's registrations. Amounts are integers
/// in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Country of dispatch.
    pub origin: CountryCode,
    /// Country of destination: where the goods are declared.
    pub destination: CountryCode,
    /// The Incoterms 2020 rule of the sale.
    pub incoterm: crate::model::Incoterm,
    /// How the goods will cross the border (postal, courier or freight): some thresholds
    /// depend on it.
    pub transport_mode: crate::model::TransportMode,
    /// The invoice currency; every line value, the freight and the insurance are in it.
    pub currency: crate::model::CurrencyCode,
    /// The goods, one line per product; at least one.
    pub lines: Vec<QuoteLine>,
    /// International freight stated on the invoice (0 if none).
    #[serde(default)]
    pub freight_minor: u64,
    /// Insurance stated on the invoice (0 if none).
    #[serde(default)]
    pub insurance_minor: u64,
    /// The seller's registrations (`IOSS`, `VAT`, `ABN`, `ARN`, `EORI`…), as on an invoice.
    #[serde(default)]
    pub seller_registrations: Vec<crate::model::TaxId>,
    /// The exact rate from `currency` to the destination's customs currency, required exactly
    /// when they differ.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub exchange_rate: Option<crate::model::ExchangeRate>,
    /// Quote as of this time (past or future): the reference data in force then. Without it,
    /// the node's clock.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub at: Option<Timestamp>,
}

/// One line of goods of a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuoteLine {
    /// Plain description of the goods.
    pub description: String,
    /// Harmonized System code as on the invoice: six digits or more, dots allowed.
    pub hs_code: String,
    /// The destination's tariff code (8 or 10 digits in the EU and the US, 10 in GB, CA and
    /// CN, 8 in AU), starting with the HS code's six digits. Without it, `hs_code` is used.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub tariff_code: Option<String>,
    /// Number of units; at least 1.
    pub quantity: u64,
    /// Unit of measure (UN/ECE Rec 20: `PCE`, `KGM`, `LTR`…).
    pub unit: String,
    /// Price of one unit, minor units of the invoice currency.
    pub unit_value_minor: u64,
    /// Net weight of the whole line.
    #[serde(default)]
    pub net_weight_grams: u64,
    /// Country of origin of the goods.
    pub origin_country: CountryCode,
}

/// The answer to `POST /v1/quote`: what a correct declaration of the draft would state, and
/// what the buyer pays to land the goods. Amounts are minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    /// The time the reference data was read at.
    pub at: Timestamp,
    /// The version of the rule modules the quote was computed with.
    pub rules_version: u32,
    /// Where the goods are declared.
    pub jurisdiction: CountryCode,
    /// How the goods cross the border, as the draft says.
    pub transport_mode: crate::model::TransportMode,
    /// The declaration currency: the customs currency of the jurisdiction.
    pub currency: crate::model::CurrencyCode,
    /// The rate used from the invoice currency, when it differs.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub exchange_rate: Option<crate::model::ExchangeRate>,
    /// Customs value and how it was built.
    pub valuation: QuoteValuation,
    /// The regime a declaration must claim, and why.
    pub regime: QuoteRegime,
    /// Per invoice line, in draft order.
    pub lines: Vec<QuoteLineAmounts>,
    /// Σ line duty.
    pub duty_total_minor: u64,
    /// Σ line import tax assessed at the border (0 when the tax is collected at the sale).
    pub tax_total_minor: u64,
    /// Who pays what under the Incoterm.
    pub payer: QuotePayer,
    /// Goods + freight + insurance + duty + import tax: what landing the goods costs.
    pub landed_cost_minor: u64,
    /// The reference data read, one entry per table.
    pub reference_data: Vec<QuoteReference>,
}

/// How the customs value was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteValuation {
    /// CIF or FOB, by jurisdiction.
    pub basis: crate::model::ValuationBasis,
    /// The goods alone, converted: what low-value thresholds are compared with.
    pub intrinsic_value_minor: u64,
    /// Freight added (CIF basis) or deducted (FOB basis); 0 when the Incoterm needs neither.
    pub freight_minor: u64,
    /// Insurance added or deducted likewise.
    pub insurance_minor: u64,
    /// `added`, `deducted` or `none`.
    pub adjustment: String,
    /// The customs value.
    pub customs_value_minor: u64,
    /// The basis and its legal source, for people.
    pub explanation: String,
}

/// The regime that applies and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteRegime {
    /// The regime a declaration claims.
    pub regime: crate::model::CustomsRegime,
    /// The value compared with the thresholds (the intrinsic value).
    pub compared_minor: u64,
    /// The low-value rule's duty threshold, when a rule applies.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub duty_free_max_minor: Option<u64>,
    /// Its tax threshold.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub tax_free_max_minor: Option<u64>,
    /// Its ceiling for tax collected at the sale.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub collected_at_sale_max_minor: Option<u64>,
    /// The rule's legal source, when a rule applies.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub source: Option<String>,
    /// Why, for people.
    pub reason: String,
}

/// The amounts of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteLineAmounts {
    /// The line's number (1 for the first line of the draft).
    pub line_no: u32,
    /// The tariff code the line is declared under.
    pub tariff_code: String,
    /// Customs value.
    pub customs_value_minor: u64,
    /// Duty.
    pub duty_minor: u64,
    /// Import VAT/GST assessed at the border.
    pub tax_minor: u64,
}

/// Who pays under the Incoterm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotePayer {
    /// The Incoterm.
    pub incoterm: crate::model::Incoterm,
    /// `seller` or `buyer`: who pays the import duty and tax.
    pub duty_and_tax: String,
    /// `seller` or `buyer`: who pays the main carriage.
    pub transport: String,
    /// Whether the seller collects the import VAT/GST at the sale (IOSS, UK VAT, ABN/ARN):
    /// then it is charged at checkout, not at the border, and not in `tax_total_minor`.
    pub tax_collected_at_sale: bool,
    /// For people.
    pub explanation: String,
}

/// A reference table version read by a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteReference {
    /// The table id (`hs-nomenclature`, `de-minimis`, `tariff/FR`).
    pub table_id: String,
    /// The version's effective date.
    pub effective_from: Timestamp,
    /// The event that published it.
    pub event_id: EventId,
}
