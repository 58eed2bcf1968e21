//! Custody events to EPCIS 2.0 events: one committed Custody event is exactly one EPCIS event,
//! so its EPCIS hash ID and its Custody inclusion proof name the same thing.
//!
//! Every event carries, in the Custody namespace, its Custody event id, block height and log
//! index (`custody:eventId`, `custody:height`, `custody:logIndex`), so that a reader can ask any
//! node for its inclusion proof, and `custody:kind`, `custody:shipmentId`, `custody:signer`.
//! Personal data is never written (DESIGN.md decision 10): the ledger holds only salted
//! commitments to the buyer's name, address and personal id and to who signed for a delivery,
//! and only those commitments (hex) are written. `docs/EPCIS.md` has the table this module
//! implements.

use custody_ledger::model::*;
use custody_ledger::view::EventEntry;
use custody_ledger::Timestamp;
use serde_json::{json, Map, Value};

use crate::decimal;
use crate::vocab::{self, biz_step, btt, disposition as disp};

/// A committed event and its place on the ledger.
#[derive(Debug, Clone, Copy)]
pub struct CommittedEvent<'a> {
    /// The signed event.
    pub event: &'a SignedEvent,
    /// Its Custody event id.
    pub id: EventId,
    /// The height of the block that committed it.
    pub height: u64,
    /// Its index in the log.
    pub log_index: u64,
    /// Its block's time, the EPCIS `recordTime`.
    pub recorded_at: Timestamp,
}

impl<'a> CommittedEvent<'a> {
    /// The committed event of an API list entry.
    pub fn from_entry(entry: &'a EventEntry) -> CommittedEvent<'a> {
        CommittedEvent {
            event: &entry.event,
            id: entry.event_id,
            height: entry.height,
            log_index: entry.log_index,
            recorded_at: entry.recorded_at,
        }
    }
}

/// What the mapping needs to know beyond the event itself. A node fills it from its state and
/// the event's shipment history.
#[derive(Debug, Clone)]
pub struct MappingContext {
    /// The member whose key signed the event.
    pub signer: MemberId,
    /// The event's shipment; `None` for membership and reference data.
    pub shipment: Option<ShipmentContext>,
}

/// The shipment an event is about.
#[derive(Debug, Clone)]
pub struct ShipmentContext {
    /// The seller that registered it.
    pub seller: MemberId,
    /// Its registration: the parcels (SSCCs) and invoice lines (GTINs) EPCIS names. Its
    /// parties are never written.
    pub registration: ShipmentRegistered,
    /// For a `HandoffAccepted`: the proposal it accepts.
    pub proposal: Option<ProposalContext>,
}

/// The `HandoffProposed` a `HandoffAccepted` accepts, and who proposed it.
#[derive(Debug, Clone)]
pub struct ProposalContext {
    /// The custodian that proposed the handoff.
    pub from: MemberId,
    /// The proposal.
    pub proposal: HandoffProposed,
}

/// Why an event has no EPCIS form, or cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// Membership and reference data are not supply-chain events.
    #[error("{kind} has no EPCIS form: it is not about goods")]
    NoEpcisForm {
        /// The event kind.
        kind: &'static str,
    },
    /// The mapping context lacks what this kind needs.
    #[error("mapping {kind} needs {what} in the mapping context")]
    MissingContext {
        /// The event kind.
        kind: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// A value EPCIS cannot carry as it is.
    #[error("{field}: {reason}")]
    Unwritable {
        /// The field, a path into the event's JSON.
        field: String,
        /// Why.
        reason: String,
    },
}

impl MappingError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            MappingError::NoEpcisForm { .. } => "epcis.no_form",
            MappingError::MissingContext { .. } => "epcis.missing_context",
            MappingError::Unwritable { .. } => "epcis.unwritable",
        }
    }
}

/// An EPCIS event being written.
struct Out {
    map: Map<String, Value>,
    kind: &'static str,
}

impl Out {
    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.map.insert(key.to_owned(), value.into());
    }

    fn custody(&mut self, local: &str, value: impl Into<Value>) {
        self.map.insert(vocab::property(local), value.into());
    }

    fn step(&mut self, action: &str, biz_step: &str, disposition: Option<&str>) {
        self.set("action", action);
        self.set("bizStep", biz_step);
        if let Some(disposition) = disposition {
            self.set("disposition", disposition);
        }
    }

    fn place(&mut self, key: &str, locode: &str) {
        self.set(key, json!({ "id": vocab::locode_uri(locode) }));
    }

    fn transaction(&mut self, kind: &str, id: String) {
        self.set(
            "bizTransactionList",
            json!([{ "type": kind, "bizTransaction": id }]),
        );
    }

    fn parties(&mut self, key: &str, parties: &[(&str, &MemberId)]) {
        let id = if key == "sourceList" {
            "source"
        } else {
            "destination"
        };
        let list: Vec<Value> = parties
            .iter()
            .map(|(kind, member)| json!({ "type": kind, id: vocab::member_uri(member) }))
            .collect();
        self.set(key, list);
    }
}

/// The EPCIS 2.0 event of one committed Custody event. Membership and reference data have no
/// EPCIS form.
pub fn to_epcis(committed: &CommittedEvent, ctx: &MappingContext) -> Result<Value, MappingError> {
    let kind = &committed.event.event.kind;
    let mut out = common(committed, ctx);
    match kind {
        EventKind::ShipmentRegistered(e) => registered(&mut out, e, ctx),
        EventKind::HandoffProposed(e) => proposed(&mut out, e, ctx)?,
        EventKind::HandoffAccepted(e) => accepted(&mut out, e, ctx)?,
        EventKind::CustomsDeclared(e) => declared(&mut out, e, ctx)?,
        EventKind::DutyPaid(e) => paid(&mut out, e, ctx)?,
        EventKind::CustomsCleared(e) => cleared(&mut out, e, ctx)?,
        EventKind::Delivered(e) => delivered(&mut out, e, ctx)?,
        EventKind::ReturnRequested(e) => return_requested(&mut out, e, ctx)?,
        EventKind::ReturnReceived(e) => return_received(&mut out, e, ctx)?,
        EventKind::DocumentAttested(e) => attested(&mut out, e, ctx)?,
        EventKind::TrackingScanRecorded(e) => scanned(&mut out, e, ctx)?,
        EventKind::ReferenceDataPublished(_)
        | EventKind::MembershipChanged(_)
        | EventKind::PersonalDataErased(_) => {
            return Err(MappingError::NoEpcisForm { kind: kind.name() })
        }
    }
    if let Some(unit) = unwritable_unit(&out) {
        return Err(unit);
    }
    Ok(Value::Object(out.map))
}

/// The fields every event has: times, ids, and the ledger placement.
fn common(committed: &CommittedEvent, ctx: &MappingContext) -> Out {
    let event = &committed.event.event;
    let mut out = Out {
        map: Map::new(),
        kind: event.kind.name(),
    };
    out.set("type", "ObjectEvent");
    out.set("eventTime", event.occurred_at.to_rfc3339());
    out.set("eventTimeZoneOffset", "+00:00");
    out.set("recordTime", committed.recorded_at.to_rfc3339());
    out.set("eventID", vocab::event_uri(&committed.id));
    out.custody("eventId", committed.id.to_hex());
    out.custody("height", committed.height);
    out.custody("logIndex", committed.log_index);
    out.custody("kind", event.kind.name());
    out.custody("signer", vocab::member_uri(&ctx.signer));
    if let Some(shipment) = event.kind.shipment_id() {
        out.custody("shipmentId", shipment.as_str());
    }
    out
}

/// Units that mean "a count of items": EPCIS omits `uom` for counts.
const COUNT_UNITS: &[&str] = &["PCE", "H87", "C62", "EA"];

/// A `quantityList` entry for some units of an invoice line.
fn quantity(shipment: &ShipmentId, line: Option<&InvoiceLine>, line_no: u32, qty: u64) -> Value {
    let class = match line.and_then(|l| l.gtin.as_deref()) {
        Some(gtin) => vocab::gtin_uri(gtin),
        None => vocab::line_uri(shipment.as_str(), line_no),
    };
    let mut element = json!({ "epcClass": class, "quantity": qty });
    if let Some(unit) = line.map(|l| l.unit.as_str()) {
        if !COUNT_UNITS.contains(&unit) {
            element["uom"] = json!(unit);
        }
    }
    element
}

/// An error if a `uom` written does not have EPCIS's form (two or three capitals or digits).
fn unwritable_unit(out: &Out) -> Option<MappingError> {
    let list = out.map.get("quantityList")?.as_array()?;
    list.iter().enumerate().find_map(|(i, element)| {
        let unit = element.get("uom")?.as_str()?;
        let ok = (2..=3).contains(&unit.len())
            && unit
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        (!ok).then(|| MappingError::Unwritable {
            field: format!("quantityList[{i}].uom"),
            reason: format!(
                "unit {unit:?} of a {} is not a UN/ECE Rec 20 code EPCIS accepts",
                out.kind
            ),
        })
    })
}

fn shipment<'c>(
    kind: &'static str,
    ctx: &'c MappingContext,
) -> Result<&'c ShipmentContext, MappingError> {
    ctx.shipment.as_ref().ok_or(MappingError::MissingContext {
        kind,
        what: "the shipment (its registration)",
    })
}

/// The shipment's parcels as the `epcList`.
fn all_parcels(out: &mut Out, ctx: &MappingContext) -> Result<(), MappingError> {
    let shipment = shipment(out.kind, ctx)?;
    let list: Vec<String> = shipment
        .registration
        .parcels
        .iter()
        .map(|p| vocab::sscc_uri(&p.sscc))
        .collect();
    out.set("epcList", list);
    Ok(())
}

fn registered(out: &mut Out, e: &ShipmentRegistered, ctx: &MappingContext) {
    out.step("ADD", "commissioning", Some("active"));
    let parcels: Vec<String> = e.parcels.iter().map(|p| vocab::sscc_uri(&p.sscc)).collect();
    out.set("epcList", parcels);
    let lines: Vec<Value> = e
        .invoice
        .lines
        .iter()
        .map(|l| quantity(&e.shipment_id, Some(l), l.line_no, l.quantity))
        .collect();
    out.set("quantityList", lines);
    out.transaction("inv", vocab::bt_uri("inv", &e.invoice.number));
    let seller = &ctx.signer;
    out.parties(
        "destinationList",
        &[("possessing_party", seller), ("owning_party", seller)],
    );
    out.custody("origin", e.origin.as_str());
    out.custody("destination", e.destination.as_str());
    out.custody("incoterm", e.incoterm.code());
    out.custody("incotermPlace", e.incoterm_place.as_str());
    let buyer = &e.invoice.buyer;
    out.custody("buyerNameCommitment", buyer.name_commitment.to_hex());
    if let Some(address) = &buyer.address_commitment {
        out.custody("buyerAddressCommitment", address.to_hex());
    }
    if let Some(id) = &buyer.personal_id_commitment {
        out.custody("buyerPersonalIdCommitment", id.to_hex());
    }
}

/// The transaction type tag and EPCIS type of a transport document.
pub(crate) fn transport_kind(kind: TransportDocumentKind) -> (&'static str, &'static str) {
    match kind {
        TransportDocumentKind::AirWaybill => ("awb", btt::AIR_WAYBILL),
        TransportDocumentKind::BillOfLading => ("bol", "bol"),
        TransportDocumentKind::RoadConsignmentNote => ("cmr", btt::ROAD_CONSIGNMENT_NOTE),
        TransportDocumentKind::RailConsignmentNote => ("cim", btt::RAIL_CONSIGNMENT_NOTE),
        TransportDocumentKind::CourierWaybill => ("cwb", btt::COURIER_WAYBILL),
    }
}

fn transport(out: &mut Out, document: Option<&TransportDocument>) {
    if let Some(document) = document {
        let (tag, kind) = transport_kind(document.kind);
        out.transaction(kind, vocab::bt_uri(tag, &document.number));
    }
}

fn proposed(out: &mut Out, e: &HandoffProposed, ctx: &MappingContext) -> Result<(), MappingError> {
    out.step("OBSERVE", "consigning", Some("in_transit"));
    all_parcels(out, ctx)?;
    out.place("readPoint", &e.place);
    out.parties("sourceList", &[("possessing_party", &ctx.signer)]);
    out.parties("destinationList", &[("possessing_party", &e.to)]);
    transport(out, e.transport_document.as_ref());
    Ok(())
}

fn accepted(out: &mut Out, e: &HandoffAccepted, ctx: &MappingContext) -> Result<(), MappingError> {
    let proposal =
        shipment(out.kind, ctx)?
            .proposal
            .as_ref()
            .ok_or(MappingError::MissingContext {
                kind: out.kind,
                what: "the proposal accepted",
            })?;
    out.step("OBSERVE", "accepting", Some("in_transit"));
    all_parcels(out, ctx)?;
    out.place("readPoint", &proposal.proposal.place);
    out.place("bizLocation", &proposal.proposal.place);
    out.parties("sourceList", &[("possessing_party", &proposal.from)]);
    out.parties("destinationList", &[("possessing_party", &ctx.signer)]);
    transport(out, proposal.proposal.transport_document.as_ref());
    out.custody("proposal", e.proposal.to_hex());
    Ok(())
}

fn regime_name(regime: &CustomsRegime) -> &'static str {
    match regime {
        CustomsRegime::Full => "full",
        CustomsRegime::DeMinimisRelief => "de_minimis_relief",
        CustomsRegime::TaxCollectedAtSale { .. } => "tax_collected_at_sale",
    }
}

fn declared(out: &mut Out, e: &CustomsDeclared, ctx: &MappingContext) -> Result<(), MappingError> {
    out.step(
        "OBSERVE",
        biz_step::CUSTOMS_DECLARING,
        Some(disp::AT_CUSTOMS),
    );
    all_parcels(out, ctx)?;
    out.transaction(
        btt::CUSTOMS_DECLARATION,
        vocab::bt_uri("dec", &e.declaration_ref),
    );
    out.custody("jurisdiction", e.jurisdiction.as_str());
    out.custody("currency", e.currency.as_str());
    out.custody("customsValueMinor", e.customs_value_minor);
    out.custody("dutyTotalMinor", e.duty_total_minor);
    out.custody("taxTotalMinor", e.tax_total_minor);
    out.custody("regime", regime_name(&e.regime));
    if let CustomsRegime::TaxCollectedAtSale { registration_id } = &e.regime {
        out.custody("registrationId", registration_id.as_str());
    }
    Ok(())
}

fn paid(out: &mut Out, e: &DutyPaid, ctx: &MappingContext) -> Result<(), MappingError> {
    out.step("OBSERVE", biz_step::DUTY_PAYING, None);
    all_parcels(out, ctx)?;
    out.transaction(
        btt::DUTY_PAYMENT,
        vocab::bt_uri("pay", &e.payment_reference),
    );
    out.custody("declaration", e.declaration.to_hex());
    out.custody("amountMinor", e.amount.amount_minor);
    out.custody("currency", e.amount.currency.as_str());
    Ok(())
}

fn cleared(out: &mut Out, e: &CustomsCleared, ctx: &MappingContext) -> Result<(), MappingError> {
    let disposition = match e.outcome {
        ClearanceOutcome::Release => disp::CUSTOMS_RELEASED,
        ClearanceOutcome::Hold => disp::CUSTOMS_HELD,
        ClearanceOutcome::Inspection => disp::CUSTOMS_INSPECTION,
    };
    out.step("OBSERVE", biz_step::CUSTOMS_CLEARING, Some(disposition));
    all_parcels(out, ctx)?;
    out.transaction(
        btt::CUSTOMS_DECISION,
        vocab::bt_uri("mrn", &e.authority_reference),
    );
    out.custody("declaration", e.declaration.to_hex());
    if !e.reason.is_empty() {
        out.custody("reason", e.reason.as_str());
    }
    Ok(())
}

fn proof_kind_name(kind: ProofKind) -> &'static str {
    match kind {
        ProofKind::Signature => "signature",
        ProofKind::Photo => "photo",
        ProofKind::OneTimeCode => "one_time_code",
    }
}

/// A delivery. Who received it is a natural person: only the commitment is written.
fn delivered(out: &mut Out, e: &Delivered, ctx: &MappingContext) -> Result<(), MappingError> {
    out.step("OBSERVE", biz_step::DELIVERING, Some(disp::DELIVERED));
    all_parcels(out, ctx)?;
    out.place("readPoint", &e.place);
    out.place("bizLocation", &e.place);
    out.parties("sourceList", &[("possessing_party", &ctx.signer)]);
    out.custody("proofKind", proof_kind_name(e.proof_kind));
    out.custody("proofHash", e.proof_hash.to_hex());
    out.custody("receivedByCommitment", e.received_by_commitment.to_hex());
    Ok(())
}

fn line_quantities(ctx: &ShipmentContext, lines: impl Iterator<Item = (u32, u64)>) -> Vec<Value> {
    let registration = &ctx.registration;
    lines
        .map(|(line_no, qty)| {
            let line = registration
                .invoice
                .lines
                .iter()
                .find(|l| l.line_no == line_no);
            quantity(&registration.shipment_id, line, line_no, qty)
        })
        .collect()
}

fn return_requested(
    out: &mut Out,
    e: &ReturnRequested,
    ctx: &MappingContext,
) -> Result<(), MappingError> {
    out.step("OBSERVE", biz_step::RETURN_AUTHORISING, None);
    all_parcels(out, ctx)?;
    let lines = e.lines.iter().map(|l| (l.invoice_line, l.quantity));
    out.set(
        "quantityList",
        line_quantities(shipment(out.kind, ctx)?, lines),
    );
    out.transaction("rma", vocab::bt_uri("rma", &e.rma));
    out.custody("reason", e.reason.as_str());
    Ok(())
}

fn return_disposition(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Resellable => "resellable",
        Disposition::Damaged => "damaged",
        Disposition::Destroyed => "destroyed",
    }
}

fn return_received(
    out: &mut Out,
    e: &ReturnReceived,
    ctx: &MappingContext,
) -> Result<(), MappingError> {
    out.step("OBSERVE", "receiving", Some("returned"));
    all_parcels(out, ctx)?;
    let lines = e.lines.iter().map(|l| (l.invoice_line, l.quantity));
    out.set(
        "quantityList",
        line_quantities(shipment(out.kind, ctx)?, lines),
    );
    out.transaction("rma", vocab::bt_uri("rma", &e.rma));
    let seller = &ctx.signer;
    out.parties(
        "destinationList",
        &[("possessing_party", seller), ("owning_party", seller)],
    );
    let lines: Vec<Value> = e
        .lines
        .iter()
        .map(|l| {
            json!({
                "custody:invoiceLine": l.invoice_line,
                "custody:quantity": l.quantity,
                "custody:disposition": return_disposition(l.disposition),
            })
        })
        .collect();
    out.custody("returnedLines", lines);
    Ok(())
}

fn attested(out: &mut Out, e: &DocumentAttested, ctx: &MappingContext) -> Result<(), MappingError> {
    out.step("OBSERVE", biz_step::DOCUMENT_ATTESTING, None);
    all_parcels(out, ctx)?;
    out.transaction(btt::ATTESTED_DOCUMENT, vocab::bt_uri("doc", &e.reference));
    out.custody("documentType", e.document_type.as_str());
    out.custody("documentHash", e.document_hash.to_hex());
    Ok(())
}

/// A CBV term or URI as EPCIS writes it: a CBV 1.x URN becomes its short name (the schema
/// refuses `urn:epcglobal:cbv:` URIs), a short name must be CBV's.
fn cbv_or_uri(
    value: &str,
    known: &[&str],
    web: &str,
    urn: &str,
    field: &str,
) -> Result<String, MappingError> {
    if let Some(short) = vocab::cbv_short_name(value, web, urn) {
        if known.contains(&short) && !value.starts_with("https://") {
            return Ok(short.to_owned());
        }
    }
    if vocab::is_absolute_uri(value) && !value.starts_with("urn:epcglobal:cbv:") {
        return Ok(value.to_owned());
    }
    Err(MappingError::Unwritable {
        field: field.to_owned(),
        reason: format!("{value:?} is neither a CBV 2.0 short name nor an absolute URI"),
    })
}

/// A sensor reading's measurement type: GS1's short names and URIs as they are, other names
/// in the Custody namespace.
pub(crate) fn measurement_type(kind: &str) -> String {
    if vocab::GS1_MEASUREMENT_TYPES.contains(&kind) || vocab::is_absolute_uri(kind) {
        kind.to_owned()
    } else {
        format!(
            "{}{}",
            vocab::MEASUREMENT_PREFIX,
            vocab::percent_encode(kind)
        )
    }
}

fn sensor_report(reading: &SensorReading) -> Value {
    let mut report = json!({
        "type": measurement_type(&reading.kind),
        "value": decimal::from_milli(reading.value_milli),
        "uom": reading.unit,
    });
    if let Some(min) = reading.min_milli {
        report["custody:lowerLimit"] = decimal::from_milli(min).into();
    }
    if let Some(max) = reading.max_milli {
        report["custody:upperLimit"] = decimal::from_milli(max).into();
    }
    report
}

fn scanned(
    out: &mut Out,
    e: &TrackingScanRecorded,
    ctx: &MappingContext,
) -> Result<(), MappingError> {
    let path = "event.kind.TrackingScanRecorded";
    let step = cbv_or_uri(
        &e.biz_step,
        &vocab::CBV_BIZ_STEPS,
        "BizStep-",
        "bizstep",
        &format!("{path}.biz_step"),
    )?;
    let disposition = cbv_or_uri(
        &e.disposition,
        &vocab::CBV_DISPOSITIONS,
        "Disp-",
        "disp",
        &format!("{path}.disposition"),
    )?;
    out.step("OBSERVE", &step, Some(&disposition));
    if e.parcels.is_empty() {
        all_parcels(out, ctx)?;
        out.custody("wholeShipment", true);
    } else {
        let parcels: Vec<String> = e.parcels.iter().map(|s| vocab::sscc_uri(s)).collect();
        out.set("epcList", parcels);
    }
    match &e.read_point_gln {
        Some(gln) => out.set(
            "readPoint",
            json!({ "id": vocab::gln_uri(gln), "custody:locode": e.read_point }),
        ),
        None => out.place("readPoint", &e.read_point),
    }
    out.place("bizLocation", &e.biz_location);
    if !e.sensor_readings.is_empty() {
        let reports: Vec<Value> = e.sensor_readings.iter().map(sensor_report).collect();
        out.set("sensorElementList", json!([{ "sensorReport": reports }]));
    }
    out.custody("exception", e.exception);
    Ok(())
}
