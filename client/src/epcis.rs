//! EPCIS 2.0 capture by a member that signs: an `EPCISDocument` from a partner's system
//! becomes signed Custody events, one per EPCIS event, submitted and committed one by one.
//!
//! [`capture`] checks the document (its size is the caller's to bound, see
//! [`DOCUMENT_SIZE_BYTES_MAX`]; against GS1's EPCIS 2.0 JSON Schema when the caller passes a
//! [`Validator`]; at most [`CAPTURE_EVENTS_MAX`] events), maps each event with
//! [`custody_epcis::from_epcis`], fills in what EPCIS cannot say (the shipment, from the
//! document's `custody:shipmentId` or the caller's; the proposal an acceptance answers, from the
//! shipment's pending handoff), signs it with the member's key and submits it with
//! `?wait=commit`. Events are submitted in document order, each once the previous one is
//! committed, so an acceptance can follow the proposal it answers in the same document.
//!
//! Without a schema the checks are the mapping's own, which are strict in their own right:
//! every key of an event is read or refused, never dropped. An event that does not map, that
//! cannot be resolved, or that the node refuses is reported with a stable code and the field,
//! and nothing is submitted for it; the other events go on.

use custody_epcis::{CaptureError, Draft, Validator};
use custody_ledger::model::{EventKind, MemberId, ShipmentId};
use custody_ledger::view::Receipt;
use custody_ledger::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::build::Signer;
use crate::client::{Client, ClientError, Submitted};

/// Largest EPCIS document a capture reads (the CLI refuses larger files before parsing).
pub const DOCUMENT_SIZE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Most events one capture takes: each is committed before the next is sent.
pub const CAPTURE_EVENTS_MAX: usize = 1_000;

/// Stable codes of capture refusals made by the SDK itself (the mapping's are
/// `epcis_capture.unsupported`, `.missing`, `.invalid`; the node's are the ledger's and the
/// rule modules').
pub mod codes {
    /// What EPCIS cannot say could not be found (no shipment named, no pending handoff).
    pub const UNRESOLVED: &str = "epcis_capture.unresolved";
    /// The event contradicts the ledger or the capture's own arguments (another shipment,
    /// another party than the signer, another place or document than the proposal's).
    pub const MISMATCH: &str = "epcis_capture.mismatch";
    /// An earlier event of the capture failed for a reason that was not a refusal (the node
    /// could not be reached), so this one was not submitted.
    pub const NOT_SUBMITTED: &str = "epcis_capture.not_submitted";
}

/// Why a whole document cannot be captured: nothing is submitted.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not an `EPCISDocument` (or a lone event) with an event list.
    #[error("{0}")]
    NotADocument(String),
    /// The document breaks the EPCIS 2.0 JSON Schema.
    #[error(transparent)]
    Schema(#[from] custody_epcis::SchemaError),
    /// More events than [`CAPTURE_EVENTS_MAX`].
    #[error("{count} events; a capture takes at most {CAPTURE_EVENTS_MAX}")]
    TooManyEvents {
        /// Events in the document.
        count: usize,
    },
    /// The node could not say which chain it serves or who its members are.
    #[error(transparent)]
    Node(#[from] ClientError),
}

/// What happened to one EPCIS event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Committed: the Custody event and where it is.
    Committed {
        /// The Custody event id.
        event_id: custody_ledger::model::EventId,
        /// The Custody kind.
        kind: String,
        /// The block height.
        height: u64,
        /// The log index.
        log_index: u64,
    },
    /// Admitted, but not committed within the node's wait.
    Pending {
        /// The Custody event id.
        event_id: custody_ledger::model::EventId,
        /// The Custody kind.
        kind: String,
    },
    /// Refused, by the mapping, the SDK or the node; nothing of it is on the ledger.
    Refused {
        /// The stable code.
        code: String,
        /// The field at fault, when one is named.
        field: Option<String>,
        /// Why.
        reason: String,
    },
}

/// One EPCIS event of a capture and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapturedEvent {
    /// Position in the document's event list.
    pub index: usize,
    /// The EPCIS `eventID`, when the document gives one.
    pub epcis_event_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The report of a capture: one entry per EPCIS event, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureReport {
    /// The events.
    pub events: Vec<CapturedEvent>,
}

impl CaptureReport {
    /// Whether every event is committed.
    pub fn all_committed(&self) -> bool {
        self.events
            .iter()
            .all(|e| matches!(e.outcome, Outcome::Committed { .. }))
    }

    /// Whether any event was refused.
    pub fn any_refused(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e.outcome, Outcome::Refused { .. }))
    }
}

/// The events of a document, checked against the schema when one is given, and bounded.
pub fn document_events<'d>(
    document: &'d Value,
    schema: Option<&Validator>,
) -> Result<&'d [Value], DocumentError> {
    if let Some(validator) = schema {
        validator.validate(document)?;
    }
    let events = custody_epcis::events_of(document)
        .map_err(|e| DocumentError::NotADocument(e.to_string()))?;
    if events.len() > CAPTURE_EVENTS_MAX {
        return Err(DocumentError::TooManyEvents {
            count: events.len(),
        });
    }
    Ok(events)
}

fn refused(code: &str, field: Option<&str>, reason: impl Into<String>) -> Outcome {
    Outcome::Refused {
        code: code.to_owned(),
        field: field.map(str::to_owned),
        reason: reason.into(),
    }
}

fn mapping_refusal(error: &CaptureError) -> Outcome {
    refused(error.code(), Some(error.field()), error.to_string())
}

/// Captures a document: maps, resolves, signs and submits each event (see the module
/// documentation). `shipment` is the shipment of events that do not name one. A document
/// that is not one refuses the whole capture; everything else is reported per event.
pub async fn capture(
    client: &Client,
    signer: &Signer,
    document: &Value,
    schema: Option<&Validator>,
    shipment: Option<&ShipmentId>,
) -> Result<CaptureReport, DocumentError> {
    let events = document_events(document, schema)?;
    let members = client.members().await?;
    let me = members
        .iter()
        .find(|m| m.key == signer.public())
        .map(|m| m.id.clone());
    let mut report = CaptureReport { events: Vec::new() };
    let mut failed: Option<String> = None;
    for (index, event) in events.iter().enumerate() {
        let epcis_event_id = event
            .get("eventID")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let outcome = match &failed {
            Some(reason) => refused(codes::NOT_SUBMITTED, None, reason.clone()),
            None => match capture_one(client, signer, me.as_ref(), event, shipment).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    let reason = format!("not submitted: {error}");
                    failed = Some(format!("not submitted: event {index} failed: {error}"));
                    refused(codes::NOT_SUBMITTED, None, reason)
                }
            },
        };
        report.events.push(CapturedEvent {
            index,
            epcis_event_id,
            outcome,
        });
    }
    Ok(report)
}

/// One event: `Ok` with its outcome (refusals included), `Err` when the node could not be
/// asked.
async fn capture_one(
    client: &Client,
    signer: &Signer,
    me: Option<&MemberId>,
    event: &Value,
    shipment: Option<&ShipmentId>,
) -> Result<Outcome, ClientError> {
    let draft = match custody_epcis::from_epcis(event) {
        Ok(draft) => draft,
        Err(error) => return Ok(mapping_refusal(&error)),
    };
    let (kind, occurred_at) = match resolve(client, draft, me, shipment).await? {
        Ok(resolved) => resolved,
        Err(outcome) => return Ok(outcome),
    };
    let name = kind.name().to_owned();
    let signed = signer.sign(kind, occurred_at);
    match client.submit(&signed, true).await {
        Ok(Submitted::Committed(Receipt {
            event_id,
            height,
            log_index,
            ..
        })) => Ok(Outcome::Committed {
            event_id,
            kind: name,
            height,
            log_index,
        }),
        Ok(Submitted::Pending(accepted)) => Ok(Outcome::Pending {
            event_id: accepted.event_id,
            kind: name,
        }),
        Err(ClientError::Problem { problem, .. }) => Ok(refused(
            &problem.code,
            problem.field.as_deref(),
            problem.detail.clone(),
        )),
        Err(other) => Err(other),
    }
}

/// Fills what the draft leaves unresolved and checks its facts against the ledger: the
/// payload to sign, or the refusal.
async fn resolve(
    client: &Client,
    draft: Draft,
    me: Option<&MemberId>,
    shipment: Option<&ShipmentId>,
) -> Result<Result<(EventKind, Timestamp), Outcome>, ClientError> {
    let Draft {
        occurred_at,
        mut kind,
        facts,
        unresolved,
    } = draft;
    if let Some(acting) = &facts.acting_party {
        if me != Some(acting) {
            return Ok(Err(refused(
                codes::MISMATCH,
                Some(match kind {
                    EventKind::HandoffAccepted(_) => "destinationList",
                    _ => "sourceList",
                }),
                format!(
                    "the event says {acting} acted, but the signing key is {}",
                    me.map_or("no member's".to_owned(), |m| format!("{m}'s"))
                ),
            )));
        }
    }
    if unresolved.contains(&"received_by") {
        return Ok(Err(refused(
            codes::UNRESOLVED,
            Some("received_by"),
            "EPCIS does not carry who signed for a delivery; record the delivery with \
             `custody submit deliver`",
        )));
    }
    let named = kind.shipment_id().cloned();
    let id = match (named, unresolved.contains(&"shipment_id"), shipment) {
        (_, true, Some(given)) => given.clone(),
        (_, true, None) => {
            return Ok(Err(refused(
                codes::UNRESOLVED,
                Some("custody:shipmentId"),
                format!(
                    "the event does not name its shipment (parcels {}); give the shipment \
                     (--shipment)",
                    facts.parcels.join(", ")
                ),
            )))
        }
        (Some(named), false, Some(given)) if &named != given => {
            return Ok(Err(refused(
                codes::MISMATCH,
                Some("custody:shipmentId"),
                format!("the event names shipment {named}, the capture is for {given}"),
            )))
        }
        (Some(named), false, _) => named,
        (None, false, _) => {
            return Ok(Err(refused(
                codes::UNRESOLVED,
                Some("custody:shipmentId"),
                "the event names no shipment",
            )))
        }
    };
    set_shipment(&mut kind, id.clone());
    if let EventKind::HandoffAccepted(accepted) = &mut kind {
        let state = match client.shipment(&id).await {
            Ok(state) => state,
            Err(ClientError::Problem { problem, .. }) => {
                return Ok(Err(refused(
                    &problem.code,
                    Some("custody:shipmentId"),
                    problem.detail.clone(),
                )))
            }
            Err(other) => return Err(other),
        };
        let Some(pending) = state.pending_handoff else {
            return Ok(Err(refused(
                codes::UNRESOLVED,
                Some("custody:proposal"),
                format!("shipment {id} has no pending handoff to accept"),
            )));
        };
        if unresolved.contains(&"proposal") {
            accepted.proposal = pending.proposal;
        }
        if let Some(place) = &facts.place {
            if *place != pending.place {
                return Ok(Err(refused(
                    codes::MISMATCH,
                    Some("readPoint.id"),
                    format!("the handoff was proposed at {}, not {place}", pending.place),
                )));
            }
        }
        if let Some(from) = &facts.other_party {
            if *from != pending.from {
                return Ok(Err(refused(
                    codes::MISMATCH,
                    Some("sourceList"),
                    format!("the handoff was proposed by {}, not {from}", pending.from),
                )));
            }
        }
        if let Some(document) = &facts.transport_document {
            let proposed = client.event(&accepted.proposal).await?;
            let theirs = match &proposed.event.event.kind {
                EventKind::HandoffProposed(p) => p.transport_document.as_ref(),
                _ => None,
            };
            if theirs != Some(document) {
                return Ok(Err(refused(
                    codes::MISMATCH,
                    Some("bizTransactionList"),
                    "the transport document differs from the proposal's",
                )));
            }
        }
    }
    Ok(Ok((kind, occurred_at)))
}

/// Puts the resolved shipment into the payload of a kind capture produces.
fn set_shipment(kind: &mut EventKind, id: ShipmentId) {
    match kind {
        EventKind::HandoffProposed(p) => p.shipment_id = id,
        EventKind::HandoffAccepted(p) => p.shipment_id = id,
        EventKind::Delivered(p) => p.shipment_id = id,
        EventKind::TrackingScanRecorded(p) => p.shipment_id = id,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_are_bounded_and_must_have_an_event_list() {
        let event = json!({"type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00Z"});
        let many = json!({"type": "EPCISDocument",
            "epcisBody": {"eventList": vec![event.clone(); CAPTURE_EVENTS_MAX + 1]}});
        assert!(matches!(
            document_events(&many, None),
            Err(DocumentError::TooManyEvents { count }) if count == CAPTURE_EVENTS_MAX + 1
        ));
        assert!(matches!(
            document_events(&json!({"type": "EPCISDocument"}), None),
            Err(DocumentError::NotADocument(_))
        ));
        assert_eq!(document_events(&event, None).unwrap().len(), 1);
    }

    #[test]
    fn reports_serialize_flat_with_a_status() {
        let report = CaptureReport {
            events: vec![CapturedEvent {
                index: 0,
                epcis_event_id: None,
                outcome: refused("epcis_capture.unsupported", Some("ilmd"), "no"),
            }],
        };
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["events"][0]["status"], "refused");
        assert_eq!(value["events"][0]["field"], "ilmd");
        assert!(report.any_refused() && !report.all_committed());
    }
}
