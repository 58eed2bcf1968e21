//! EPCIS 2.0 events to draft Custody events, for capture.
//!
//! A mapping is defined for what carriers' systems send: tracking scans (an `ObjectEvent`,
//! action `OBSERVE`, with a business step), handoffs (`consigning`/`shipping` proposes,
//! `accepting`/`receiving` accepts) and delivery (the Custody step `delivering`). Anything
//! else is refused with an error naming the field: a field the mapping does not read is never
//! dropped silently, since the signer would then sign less than the partner said.
//!
//! The fields that place an event on a ledger (`eventID`, `recordTime`, `custody:eventId`,
//! `custody:height`, `custody:logIndex`, `custody:signer`) are read past: a capture is a new
//! event, and the ledger gives it a place of its own. `custody:kind` chooses the mapping when
//! present (so Custody's own output reads back as what it was).

use std::collections::BTreeSet;

use custody_ledger::model::*;
use custody_ledger::{Digest, Timestamp};
use serde_json::{Map, Value};

use crate::mapping::transport_kind;
use crate::vocab::{self, biz_step, disposition as disp};
use crate::{decimal, gs1, time};

/// Why an EPCIS event cannot become a Custody event. Each names the field, a path into the
/// event's JSON (`readPoint.id`, `sensorElementList[0].sensorReport[1].value`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The field is one no Custody mapping reads, or asks for a mapping Custody lacks.
    #[error("{field}: not supported: {reason}")]
    Unsupported {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A field the mapping needs is absent.
    #[error("{field}: missing: {reason}")]
    Missing {
        /// The field.
        field: String,
        /// What it should hold.
        reason: String,
    },
    /// A field's value has the wrong form.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl CaptureError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            CaptureError::Unsupported { .. } => "epcis_capture.unsupported",
            CaptureError::Missing { .. } => "epcis_capture.missing",
            CaptureError::Invalid { .. } => "epcis_capture.invalid",
        }
    }

    /// The field at fault.
    pub fn field(&self) -> &str {
        match self {
            CaptureError::Unsupported { field, .. }
            | CaptureError::Missing { field, .. }
            | CaptureError::Invalid { field, .. } => field,
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> CaptureError {
    CaptureError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn missing(field: &str, reason: impl Into<String>) -> CaptureError {
    CaptureError::Missing {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn unsupported(field: &str, reason: impl Into<String>) -> CaptureError {
    CaptureError::Unsupported {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// A Custody event read from EPCIS, to be checked, completed and signed by the capturing
/// member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The EPCIS `eventTime`, in UTC.
    pub occurred_at: Timestamp,
    /// The payload. Fields named in `unresolved` hold placeholders.
    pub kind: EventKind,
    /// What the EPCIS event says beyond the payload, for the capture to check against the
    /// ledger.
    pub facts: Facts,
    /// Payload fields EPCIS did not give, left as placeholders for the capture to fill:
    /// `shipment_id` (an empty id, when no `custody:shipmentId` names it: find it by
    /// `facts.parcels`), `proposal` (all zeros, when no `custody:proposal` names it: the
    /// shipment's pending handoff).
    pub unresolved: Vec<&'static str>,
}

/// What an EPCIS event says that the Custody payload does not hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The SSCCs of the `epcList`.
    pub parcels: Vec<String>,
    /// The member the event says acted: the source of a proposal or delivery, the destination
    /// of an acceptance. The capture must sign as this member.
    pub acting_party: Option<MemberId>,
    /// The other side of an acceptance: the member that proposed the handoff.
    pub other_party: Option<MemberId>,
    /// Where an acceptance happened, to check against the proposal's place.
    pub place: Option<String>,
    /// The transport document an acceptance names, to check against the proposal's.
    pub transport_document: Option<TransportDocument>,
}

/// The keys of one JSON object, each read at most once; [`Fields::finish`] refuses any not
/// read.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: String,
    taken: BTreeSet<&'a str>,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, path: &str) -> Result<Fields<'a>, CaptureError> {
        let object = value
            .as_object()
            .ok_or_else(|| invalid(&display(path), "not a JSON object"))?;
        Ok(Fields {
            object,
            path: path.to_owned(),
            taken: BTreeSet::new(),
        })
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn take(&mut self, key: &str) -> Option<&'a Value> {
        let (key, value) = self.object.get_key_value(key)?;
        self.taken.insert(key.as_str());
        Some(value)
    }

    /// A Custody property, written `custody:local` or in full; returns its key too.
    fn take_custody(&mut self, local: &str) -> Option<(String, &'a Value)> {
        let (key, value) = self
            .object
            .iter()
            .find(|(key, _)| vocab::custody_property(key) == Some(local))?;
        self.taken.insert(key.as_str());
        Some((self.at(key), value))
    }

    fn required(&mut self, key: &str, what: &str) -> Result<&'a Value, CaptureError> {
        let at = self.at(key);
        self.take(key).ok_or_else(|| missing(&at, what))
    }

    fn string(&mut self, key: &str) -> Result<Option<&'a str>, CaptureError> {
        let at = self.at(key);
        self.take(key).map(|v| as_str(v, &at)).transpose()
    }

    /// Refuses the first key not read.
    fn finish(self) -> Result<(), CaptureError> {
        match self
            .object
            .keys()
            .find(|k| !self.taken.contains(k.as_str()))
        {
            Some(key) => Err(unsupported(
                &self.at(key),
                "no Custody mapping reads this field here; refused rather than dropped",
            )),
            None => Ok(()),
        }
    }
}

fn display(path: &str) -> String {
    if path.is_empty() {
        "(event)".into()
    } else {
        path.into()
    }
}

fn as_str<'v>(value: &'v Value, field: &str) -> Result<&'v str, CaptureError> {
    value.as_str().ok_or_else(|| invalid(field, "not a string"))
}

fn as_list<'v>(value: &'v Value, field: &str) -> Result<&'v [Value], CaptureError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(field, "not a list"))
}

/// Which Custody event an EPCIS event becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Proposal,
    Acceptance,
    Delivery,
    Scan,
}

/// A draft Custody event from one EPCIS 2.0 event (JSON-LD), or the first field that stops
/// it.
pub fn from_epcis(event: &Value) -> Result<Draft, CaptureError> {
    let mut f = Fields::new(event, "")?;
    for key in ["@context", "eventID", "recordTime"] {
        f.take(key);
    }
    for local in ["eventId", "height", "logIndex", "signer"] {
        f.take_custody(local);
    }
    match f.string("type")? {
        Some("ObjectEvent") => {}
        Some(other) => {
            return Err(unsupported(
                "type",
                format!("{other} has no Custody mapping; only ObjectEvent does"),
            ))
        }
        None => return Err(missing("type", "the event type")),
    }
    let action = f.required("action", "OBSERVE")?;
    if action != "OBSERVE" {
        return Err(unsupported(
            "action",
            "only OBSERVE events map to Custody events",
        ));
    }
    let occurred_at = event_time(&mut f)?;
    let mut unresolved = Vec::new();
    let shipment_id = shipment_id(&mut f, &mut unresolved)?;
    let hint = match f.take_custody("kind") {
        Some((at, value)) => Some((as_str(value, &at)?, at)),
        None => None,
    };
    let step = as_str(f.required("bizStep", "a business step")?, "bizStep")?;
    let route = route(hint.as_ref().map(|(k, at)| (*k, at.as_str())), step)?;
    let mut facts = Facts {
        parcels: parcels(&mut f)?,
        ..Facts::default()
    };
    let kind = match route {
        Route::Proposal => proposal(&mut f, shipment_id, &mut facts)?,
        Route::Acceptance => acceptance(&mut f, shipment_id, &mut facts, &mut unresolved)?,
        Route::Delivery => delivery(&mut f, shipment_id, &mut facts)?,
        Route::Scan => scan(&mut f, shipment_id, step, &facts)?,
    };
    f.finish()?;
    Ok(Draft {
        occurred_at,
        kind,
        facts,
        unresolved,
    })
}

/// `eventTime` as UTC milliseconds; finer precision than Custody's is refused, not rounded.
fn event_time(f: &mut Fields) -> Result<Timestamp, CaptureError> {
    let text = as_str(f.required("eventTime", "when it happened")?, "eventTime")?;
    let instant = time::parse(text)
        .ok_or_else(|| invalid("eventTime", "not an RFC 3339 date-time with a zone offset"))?;
    if instant.sub_milli {
        return Err(invalid("eventTime", "more precise than a millisecond"));
    }
    let offset = as_str(
        f.required("eventTimeZoneOffset", "the local zone offset")?,
        "eventTimeZoneOffset",
    )?;
    if time::parse_offset(offset).is_none() {
        return Err(invalid(
            "eventTimeZoneOffset",
            "not an offset such as +01:00",
        ));
    }
    u64::try_from(instant.utc_millis)
        .map(Timestamp)
        .map_err(|_| invalid("eventTime", "before 1970"))
}

fn shipment_id(
    f: &mut Fields,
    unresolved: &mut Vec<&'static str>,
) -> Result<ShipmentId, CaptureError> {
    let Some((at, value)) = f.take_custody("shipmentId") else {
        unresolved.push("shipment_id");
        return Ok(ShipmentId::new(""));
    };
    let id = ShipmentId::new(as_str(value, &at)?);
    if !id.is_well_formed() {
        return Err(invalid(
            &at,
            "not a shipment id (1 to 64 of A-Z a-z 0-9 . _ - :)",
        ));
    }
    Ok(id)
}

fn route(hint: Option<(&str, &str)>, step: &str) -> Result<Route, CaptureError> {
    let short = vocab::cbv_short_name(step, "BizStep-", "bizstep");
    let by_step = match short {
        Some("consigning" | "shipping") => Some(Route::Proposal),
        Some("accepting" | "receiving") => Some(Route::Acceptance),
        _ if step == biz_step::DELIVERING => Some(Route::Delivery),
        _ => None,
    };
    let Some((kind, at)) = hint else {
        if by_step.is_none() && step.starts_with(vocab::NAMESPACE) {
            return Err(unsupported(
                "bizStep",
                format!("the Custody step {step} has no capture mapping"),
            ));
        }
        return Ok(by_step.unwrap_or(Route::Scan));
    };
    let hinted = match kind {
        "HandoffProposed" => Route::Proposal,
        "HandoffAccepted" => Route::Acceptance,
        "Delivered" => Route::Delivery,
        "TrackingScanRecorded" => return Ok(Route::Scan),
        other => return Err(unsupported(at, format!("{other} has no capture mapping"))),
    };
    if by_step != Some(hinted) {
        return Err(invalid(
            "bizStep",
            format!("{step} is not a step of {kind}"),
        ));
    }
    Ok(hinted)
}

/// The SSCCs of the `epcList` (Digital Link or EPC URN).
fn parcels(f: &mut Fields) -> Result<Vec<String>, CaptureError> {
    let list = f.required("epcList", "the parcels, as SSCCs")?;
    as_list(list, "epcList")?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("epcList[{i}]");
            let uri = gs1::canonical_uri(as_str(item, &at)?);
            uri.strip_prefix(vocab::SSCC_PREFIX)
                .map(str::to_owned)
                .ok_or_else(|| {
                    invalid(
                        &at,
                        "not an SSCC (https://id.gs1.org/00/… or urn:epc:id:sscc:…)",
                    )
                })
        })
        .collect()
}

/// A `disposition`, if present, must be one of `allowed`.
fn disposition_in(f: &mut Fields, allowed: &[&str]) -> Result<(), CaptureError> {
    let Some(value) = f.string("disposition")? else {
        return Ok(());
    };
    let short = vocab::cbv_short_name(value, "Disp-", "disp").unwrap_or(value);
    if allowed.contains(&short) {
        Ok(())
    } else {
        Err(unsupported(
            "disposition",
            format!(
                "{value} does not fit this step (expected {})",
                allowed.join(" or ")
            ),
        ))
    }
}

/// A `readPoint` or `bizLocation` naming a UN/LOCODE.
fn locode_at(f: &mut Fields, key: &str) -> Result<Option<String>, CaptureError> {
    let Some(value) = f.take(key) else {
        return Ok(None);
    };
    let mut location = Fields::new(value, key)?;
    let at = location.at("id");
    let id = as_str(location.required("id", "the location's URI")?, &at)?;
    location.finish()?;
    vocab::parse_locode_uri(id)
        .map(Some)
        .ok_or_else(|| invalid(&at, "not a UN/LOCODE URI (urn:custody:locode:XXXXX)"))
}

/// One place from `readPoint` and `bizLocation`, which must agree when both are given.
fn place(f: &mut Fields) -> Result<Option<String>, CaptureError> {
    let read_point = locode_at(f, "readPoint")?;
    let biz_location = locode_at(f, "bizLocation")?;
    match (read_point, biz_location) {
        (Some(a), Some(b)) if a != b => Err(invalid(
            "bizLocation.id",
            format!("{b} differs from the readPoint {a}; Custody records one place"),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// The possessing parties of a `sourceList` or `destinationList`; owning parties are
/// refused (Custody records custody, not title).
fn possessing_party(f: &mut Fields, key: &str) -> Result<Option<MemberId>, CaptureError> {
    let Some(list) = f.take(key) else {
        return Ok(None);
    };
    let id_key = if key == "sourceList" {
        "source"
    } else {
        "destination"
    };
    let mut found = None;
    for (i, item) in as_list(list, key)?.iter().enumerate() {
        let mut entry = Fields::new(item, &format!("{key}[{i}]"))?;
        let type_at = entry.at("type");
        let kind = as_str(entry.required("type", "the party type")?, &type_at)?;
        let id_at = entry.at(id_key);
        let uri = as_str(entry.required(id_key, "the party")?, &id_at)?;
        entry.finish()?;
        if vocab::cbv_short_name(kind, "SDT-", "sdt") != Some("possessing_party") {
            return Err(unsupported(
                &type_at,
                "only possessing_party maps to custody",
            ));
        }
        if found.is_some() {
            return Err(unsupported(&type_at, "more than one possessing party"));
        }
        let member = vocab::parse_member_uri(uri)
            .ok_or_else(|| invalid(&id_at, "not a member URI (urn:custody:member:…)"))?;
        found = Some(member);
    }
    Ok(found)
}

/// The one transport document of a `bizTransactionList`.
fn transport_document(f: &mut Fields) -> Result<Option<TransportDocument>, CaptureError> {
    let Some(list) = f.take("bizTransactionList") else {
        return Ok(None);
    };
    let items = as_list(list, "bizTransactionList")?;
    if items.len() > 1 {
        return Err(unsupported(
            "bizTransactionList[1]",
            "a handoff carries one transport document",
        ));
    }
    let Some(item) = items.first() else {
        return Ok(None);
    };
    let mut entry = Fields::new(item, "bizTransactionList[0]")?;
    let type_at = entry.at("type");
    let kind_value = as_str(entry.required("type", "the document type")?, &type_at)?;
    let id_at = entry.at("bizTransaction");
    let uri = as_str(entry.required("bizTransaction", "the document")?, &id_at)?;
    entry.finish()?;
    let short = vocab::cbv_short_name(kind_value, "BTT-", "btt").unwrap_or(kind_value);
    let kind = TRANSPORT_KINDS
        .iter()
        .copied()
        .find(|k| transport_kind(*k).1 == short)
        .ok_or_else(|| {
            unsupported(
                &type_at,
                "not a transport document type (bol, awb, cmr, cim, courier waybill)",
            )
        })?;
    let number = vocab::parse_bt_uri(uri)
        .filter(|(tag, _)| *tag == transport_kind(kind).0)
        .map(|(_, number)| number)
        .ok_or_else(|| {
            invalid(
                &id_at,
                "not a Custody document URI of this type (urn:custody:bt:{type}:{number})",
            )
        })?;
    Ok(Some(TransportDocument { kind, number }))
}

const TRANSPORT_KINDS: [TransportDocumentKind; 5] = [
    TransportDocumentKind::AirWaybill,
    TransportDocumentKind::BillOfLading,
    TransportDocumentKind::RoadConsignmentNote,
    TransportDocumentKind::RailConsignmentNote,
    TransportDocumentKind::CourierWaybill,
];

fn proposal(
    f: &mut Fields,
    shipment_id: ShipmentId,
    facts: &mut Facts,
) -> Result<EventKind, CaptureError> {
    disposition_in(f, &["in_transit"])?;
    let place = locode_at(f, "readPoint")?
        .ok_or_else(|| missing("readPoint", "where the handoff happens, as a UN/LOCODE URI"))?;
    facts.acting_party = possessing_party(f, "sourceList")?;
    let to = possessing_party(f, "destinationList")?
        .ok_or_else(|| missing("destinationList", "the member taking custody"))?;
    Ok(EventKind::HandoffProposed(HandoffProposed {
        shipment_id,
        to,
        place,
        transport_document: transport_document(f)?,
    }))
}

fn acceptance(
    f: &mut Fields,
    shipment_id: ShipmentId,
    facts: &mut Facts,
    unresolved: &mut Vec<&'static str>,
) -> Result<EventKind, CaptureError> {
    disposition_in(f, &["in_transit"])?;
    facts.place = place(f)?;
    facts.other_party = possessing_party(f, "sourceList")?;
    facts.acting_party = possessing_party(f, "destinationList")?;
    facts.transport_document = transport_document(f)?;
    let proposal = match f.take_custody("proposal") {
        Some((at, value)) => Digest::from_hex(as_str(value, &at)?)
            .map_err(|_| invalid(&at, "not an event id (64 hex digits)"))?,
        None => {
            unresolved.push("proposal");
            Digest([0; 32])
        }
    };
    Ok(EventKind::HandoffAccepted(HandoffAccepted {
        shipment_id,
        proposal,
    }))
}

fn delivery(
    f: &mut Fields,
    shipment_id: ShipmentId,
    facts: &mut Facts,
) -> Result<EventKind, CaptureError> {
    disposition_in(f, &[disp::DELIVERED])?;
    let place = place(f)?.ok_or_else(|| missing("readPoint", "the place, as a UN/LOCODE URI"))?;
    facts.acting_party = possessing_party(f, "sourceList")?;
    let (at, kind) = f
        .take_custody("proofKind")
        .ok_or_else(|| missing("custody:proofKind", "signature, photo or one_time_code"))?;
    let proof_kind = match as_str(kind, &at)? {
        "signature" => ProofKind::Signature,
        "photo" => ProofKind::Photo,
        "one_time_code" => ProofKind::OneTimeCode,
        _ => return Err(invalid(&at, "not signature, photo or one_time_code")),
    };
    let (at, hash) = f
        .take_custody("proofHash")
        .ok_or_else(|| missing("custody:proofHash", "the SHA-256 of the proof, in hex"))?;
    let proof_hash = Digest::from_hex(as_str(hash, &at)?)
        .map_err(|_| invalid(&at, "not a SHA-256 in hex (64 digits)"))?;
    let received_by_commitment = personal_commitment(f, "receivedBy")?.ok_or_else(|| {
        missing(
            "custody:receivedByCommitment",
            "the commitment to who received it (64 hex digits: SHA-256 of \
             \"custody/personal/v1\", a 32-byte salt and the name)",
        )
    })?;
    Ok(EventKind::Delivered(Delivered {
        shipment_id,
        place,
        proof_kind,
        proof_hash,
        received_by_commitment,
    }))
}

/// The commitment `custody:{name}Commitment`, if given. Personal data in plain text
/// (`custody:{name}`) is refused with an error naming the field: the ledger holds only
/// commitments (DESIGN.md decision 10).
fn personal_commitment(f: &mut Fields, name: &str) -> Result<Option<Digest>, CaptureError> {
    if let Some((at, _)) = f.take_custody(name) {
        return Err(invalid(
            &at,
            format!(
                "personal data in plain text is not taken; send custody:{name}Commitment, the \
                 salted commitment (keep the value and salt off the ledger)"
            ),
        ));
    }
    match f.take_custody(&format!("{name}Commitment")) {
        Some((at, value)) => Digest::from_hex(as_str(value, &at)?)
            .map(Some)
            .map_err(|_| invalid(&at, "not a commitment (64 hex digits)")),
        None => Ok(None),
    }
}

fn scan(
    f: &mut Fields,
    shipment_id: ShipmentId,
    step: &str,
    facts: &Facts,
) -> Result<EventKind, CaptureError> {
    if step.starts_with(vocab::NAMESPACE) {
        return Err(unsupported("bizStep", "a Custody step is no tracking scan"));
    }
    let disposition = f
        .string("disposition")?
        .ok_or_else(|| missing("disposition", "the state the goods are left in"))?;
    let (read_point, read_point_gln) = scan_read_point(f)?;
    let biz_location = locode_at(f, "bizLocation")?
        .ok_or_else(|| missing("bizLocation", "where the goods are, as a UN/LOCODE URI"))?;
    let whole = match f.take_custody("wholeShipment") {
        Some((at, value)) => value
            .as_bool()
            .ok_or_else(|| invalid(&at, "not a boolean"))?,
        None => false,
    };
    let exception = match f.take_custody("exception") {
        Some((at, value)) => value
            .as_bool()
            .ok_or_else(|| invalid(&at, "not a boolean"))?,
        None => false,
    };
    Ok(EventKind::TrackingScanRecorded(TrackingScanRecorded {
        shipment_id,
        parcels: if whole {
            Vec::new()
        } else {
            facts.parcels.clone()
        },
        biz_step: step.to_owned(),
        disposition: disposition.to_owned(),
        read_point,
        read_point_gln,
        biz_location,
        sensor_readings: sensor_readings(f)?,
        exception,
    }))
}

/// A scan's read point: a UN/LOCODE URI, or a GLN with the UN/LOCODE in `custody:locode`.
fn scan_read_point(f: &mut Fields) -> Result<(String, Option<String>), CaptureError> {
    let value = f
        .take("readPoint")
        .ok_or_else(|| missing("readPoint", "where the scan was read"))?;
    let mut location = Fields::new(value, "readPoint")?;
    let id = as_str(
        location.required("id", "the read point's URI")?,
        "readPoint.id",
    )?;
    let locode = match location.take_custody("locode") {
        Some((at, v)) => Some((at, as_str(v, "readPoint.custody:locode")?)),
        None => None,
    };
    location.finish()?;
    if let Some(code) = vocab::parse_locode_uri(id) {
        if let Some((at, _)) = locode {
            return Err(unsupported(&at, "the read point is a UN/LOCODE already"));
        }
        return Ok((code, None));
    }
    let gln = gs1::canonical_uri(id)
        .strip_prefix(vocab::GLN_PREFIX)
        .filter(|g| gs1::is_valid_key(g, 13))
        .map(str::to_owned)
        .ok_or_else(|| {
            invalid(
                "readPoint.id",
                "neither a UN/LOCODE URI nor a GLN (https://id.gs1.org/414/…)",
            )
        })?;
    let (at, code) = locode.ok_or_else(|| {
        missing(
            "readPoint.custody:locode",
            "the UN/LOCODE of a GLN read point",
        )
    })?;
    if !vocab::is_locode(code) {
        return Err(invalid(&at, "not a UN/LOCODE"));
    }
    Ok((code.to_owned(), Some(gln)))
}

fn sensor_readings(f: &mut Fields) -> Result<Vec<SensorReading>, CaptureError> {
    let Some(list) = f.take("sensorElementList") else {
        return Ok(Vec::new());
    };
    let mut readings = Vec::new();
    for (i, element) in as_list(list, "sensorElementList")?.iter().enumerate() {
        let mut element = Fields::new(element, &format!("sensorElementList[{i}]"))?;
        let at = element.at("sensorReport");
        let reports = as_list(element.required("sensorReport", "the readings")?, &at)?;
        element.finish()?;
        for (j, report) in reports.iter().enumerate() {
            readings.push(sensor_reading(report, &format!("{at}[{j}]"))?);
        }
    }
    Ok(readings)
}

fn sensor_reading(report: &Value, path: &str) -> Result<SensorReading, CaptureError> {
    let mut r = Fields::new(report, path)?;
    let kind_at = r.at("type");
    let kind = measurement_kind(as_str(
        r.required("type", "the measurement type")?,
        &kind_at,
    )?);
    let value_at = r.at("value");
    let value_milli = milli(r.required("value", "the value")?, &value_at)?;
    let unit_at = r.at("uom");
    let unit = as_str(r.required("uom", "the unit (UN/CEFACT Rec 20)")?, &unit_at)?.to_owned();
    let limit = |r: &mut Fields, local| match r.take_custody(local) {
        Some((at, v)) => milli(v, &at).map(Some),
        None => Ok(None),
    };
    let min_milli = limit(&mut r, "lowerLimit")?;
    let max_milli = limit(&mut r, "upperLimit")?;
    r.finish()?;
    Ok(SensorReading {
        kind,
        unit,
        value_milli,
        min_milli,
        max_milli,
    })
}

/// A measurement type as Custody names it: GS1's short name, or the name under the Custody
/// prefix, or any other URI as it is.
fn measurement_kind(value: &str) -> String {
    let gs1 = value
        .strip_prefix("gs1:")
        .or_else(|| value.strip_prefix("https://gs1.org/voc/"));
    if let Some(short) = gs1.filter(|s| vocab::GS1_MEASUREMENT_TYPES.contains(s)) {
        return short.to_owned();
    }
    value
        .strip_prefix(vocab::MEASUREMENT_PREFIX)
        .and_then(vocab::percent_decode)
        .unwrap_or_else(|| value.to_owned())
}

/// A JSON number as exact thousandths.
fn milli(value: &Value, field: &str) -> Result<i64, CaptureError> {
    let number = value
        .as_number()
        .ok_or_else(|| invalid(field, "not a number"))?;
    decimal::to_milli(number).ok_or_else(|| {
        invalid(
            field,
            "more than three decimals, or too large, for thousandths",
        )
    })
}
