//! `POST /epcis/capture` and `GET /epcis/capture/{id}`: EPCIS capture for systems that
//! cannot sign, on a node configured as its organisation's gateway (`[epcis_gateway]`).
//!
//! The node maps each event of an `EPCISDocument` with [`custody_epcis::from_epcis`], fills in
//! what EPCIS cannot say from the ledger (the proposal an acceptance answers: the shipment's
//! pending handoff), signs it with the member's key and submits it through the same way in
//! as `POST /v1/events` ([`crate::api::enter`]: admission, mempool, gossip).
//!
//! - Not configured: 403. `Authorization: Bearer <api_token>` missing or wrong: 401 (the
//!   token is compared in constant time). The job pages need the token too.
//! - The document: at most [`CAPTURE_FILE_SIZE_BYTES_MAX`] bytes (413) and
//!   [`CAPTURE_EVENTS_MAX`] events (413), both advertised in `GS1-EPCIS-Capture-File-Size-Limit`
//!   and `GS1-EPCIS-Capture-Limit` on `OPTIONS` and on the answer. Not JSON, not an
//!   `EPCISDocument`, or (when `schema_file` is configured) not valid against GS1's JSON
//!   Schema: 400 naming the first error.
//! - `GS1-Capture-Error-Behaviour`: `rollback` (the default) judges every event with the
//!   admission check first, each after the ones before it, and submits none if any would be
//!   refused; `proceed` submits those that pass.
//! - The job runs before the answer: the 202 (`Location: /epcis/capture/{id}`) carries the
//!   finished job. `success` means every event was admitted (checked, in the mempool and
//!   gossiped); the block that commits them follows. The job lists each admitted event's
//!   Custody id (`custody:events`), to follow with `GET /v1/events/{id}`.
//! - Jobs are kept in memory, at most [`JOBS_MAX`]; beyond that the oldest finished job is
//!   dropped, and a restart forgets them all.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use custody_epcis::{Draft, Validator};
use custody_ledger::event::{self, EncodedEvent, VerifiedEvent};
use custody_ledger::keys::Keypair;
use custody_ledger::model::{Event, EventKind, MemberId, ShipmentId};
use custody_ledger::store::Store as _;
use custody_ledger::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::admission::Refusal;
use crate::api::{ApiError, ApiState, BODY_SIZE_BYTES_MAX};
use crate::clock::now;
use crate::config::EpcisGatewayConfig;

/// Most events in one captured document (`GS1-EPCIS-Capture-Limit`).
pub const CAPTURE_EVENTS_MAX: usize = 500;
/// Largest captured document (`GS1-EPCIS-Capture-File-Size-Limit`): the API's body limit.
pub const CAPTURE_FILE_SIZE_BYTES_MAX: usize = BODY_SIZE_BYTES_MAX;
/// Most capture jobs kept; the oldest finished one is dropped to make room.
pub const JOBS_MAX: usize = 1_000;
/// Largest schema file read.
const SCHEMA_SIZE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The gateway: the member key captured events are signed with, the callers' token, the
/// schema, and the jobs.
pub struct Gateway {
    key: Keypair,
    token: Vec<u8>,
    validator: Option<Validator>,
    jobs: Mutex<Jobs>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("member_key", &self.key.public())
            .field("schema", &self.validator.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Jobs {
    next: u64,
    list: VecDeque<Job>,
}

impl Gateway {
    /// Reads the member key (PKCS#8 PEM) and the schema, if one is configured.
    pub fn new(config: &EpcisGatewayConfig) -> anyhow::Result<Gateway> {
        let key = crate::keys::read_key(&config.member_key_file)?;
        let validator = match &config.schema_file {
            None => None,
            Some(path) => {
                let size = std::fs::metadata(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                    .len();
                if size > SCHEMA_SIZE_BYTES_MAX {
                    anyhow::bail!(
                        "{}: larger than {SCHEMA_SIZE_BYTES_MAX} bytes",
                        path.display()
                    );
                }
                let text =
                    std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let schema: Value = serde_json::from_slice(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Some(
                    Validator::new(&schema)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                )
            }
        };
        Ok(Gateway::with(key, &config.api_token, validator))
    }

    /// A gateway from its parts (tests build one without files).
    pub fn with(key: Keypair, api_token: &str, validator: Option<Validator>) -> Gateway {
        Gateway {
            key,
            token: api_token.as_bytes().to_vec(),
            validator,
            jobs: Mutex::new(Jobs::default()),
        }
    }

    fn keep(&self, mut job: Job) -> Job {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        jobs.next += 1;
        job.capture_id = jobs.next.to_string();
        if jobs.list.len() >= JOBS_MAX {
            match jobs.list.iter().position(|j| !j.running) {
                Some(oldest) => {
                    jobs.list.remove(oldest);
                }
                None => {
                    jobs.list.pop_front();
                }
            }
        }
        jobs.list.push_back(job.clone());
        job
    }

    fn job(&self, id: &str) -> Option<Job> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.list.iter().find(|j| j.capture_id == id).cloned()
    }
}

/// A capture job, in the shape of the EPCIS REST binding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The job's id.
    #[serde(rename = "captureID")]
    pub capture_id: String,
    /// When the document arrived.
    pub created_at: Timestamp,
    /// When the job finished.
    pub finished_at: Option<Timestamp>,
    /// Whether it is still running.
    pub running: bool,
    /// Whether every event was admitted.
    pub success: bool,
    /// `rollback` or `proceed`.
    pub capture_error_behaviour: &'static str,
    /// Each event that was refused, or not submitted for a rollback.
    pub errors: Vec<JobError>,
    /// Each event admitted, with its Custody id.
    #[serde(rename = "custody:events")]
    pub events: Vec<JobEvent>,
}

/// Why one event of a capture was refused.
#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    /// Its position in `epcisBody.eventList`.
    pub index: usize,
    /// Its `eventID`, when the document gives one.
    #[serde(rename = "eventID", skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The stable code.
    pub code: String,
    /// The field at fault.
    pub field: Option<String>,
    /// Why.
    pub detail: String,
}

/// One admitted event.
#[derive(Debug, Clone, Serialize)]
pub struct JobEvent {
    /// Its position in `epcisBody.eventList`.
    pub index: usize,
    /// The Custody event id.
    #[serde(rename = "eventId")]
    pub event_id: String,
    /// The Custody kind.
    pub kind: &'static str,
}

/// The capture routes, relative to `/epcis`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/capture", post(capture).options(options))
        .route("/capture/{id}", get(job))
}

fn with_limits(headers: &mut HeaderMap) {
    headers.insert(
        "gs1-epcis-capture-limit",
        HeaderValue::from(CAPTURE_EVENTS_MAX),
    );
    headers.insert(
        "gs1-epcis-capture-file-size-limit",
        HeaderValue::from(CAPTURE_FILE_SIZE_BYTES_MAX),
    );
}

fn limited(error: ApiError) -> ApiError {
    error
        .with_header(
            "gs1-epcis-capture-limit",
            HeaderValue::from(CAPTURE_EVENTS_MAX),
        )
        .with_header(
            "gs1-epcis-capture-file-size-limit",
            HeaderValue::from(CAPTURE_FILE_SIZE_BYTES_MAX),
        )
}

/// `OPTIONS /epcis/capture`: the methods and the limits.
async fn options() -> Response {
    let mut response = super::allow("POST, OPTIONS");
    with_limits(response.headers_mut());
    response
}

/// Equal without a timing that depends on where they differ (only on the expected length,
/// which is configuration).
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, byte) in expected.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ byte;
    }
    std::hint::black_box(diff) == 0
}

/// The gateway, if this node is one, and the caller holds its token.
fn authorized<'s>(state: &'s ApiState, headers: &HeaderMap) -> Result<&'s Gateway, ApiError> {
    let Some(gateway) = state.epcis_gateway.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "epcis.gateway_not_configured",
            None,
            "this node is not configured as an EPCIS capture gateway ([epcis_gateway]); sign \
             the events as a member (custody epcis capture) or use your organisation's gateway"
                .into(),
        )
        .with_title("SecurityException"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if same_token(token.as_bytes(), &gateway.token) => Ok(gateway),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "epcis.unauthorized",
            Some("Authorization".into()),
            "a capture needs the gateway's token: Authorization: Bearer <token>".into(),
        )
        .with_title("SecurityException")
        .with_header("www-authenticate", HeaderValue::from_static("Bearer"))),
    }
}

fn validation(field: Option<String>, detail: String) -> ApiError {
    limited(
        ApiError::new(StatusCode::BAD_REQUEST, "epcis.validation", field, detail)
            .with_title("ValidationException"),
    )
}

/// `POST /epcis/capture`.
async fn capture(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let gateway = authorized(&state, &headers)?;
    let body = body.map_err(|e| {
        let status = e.status();
        let error = ApiError::new(
            status,
            "epcis.capture_too_large",
            Some("body".into()),
            format!("{e} (a captured document has at most {CAPTURE_FILE_SIZE_BYTES_MAX} bytes)"),
        );
        limited(if status == StatusCode::PAYLOAD_TOO_LARGE {
            error.with_title("CaptureLimitExceededException")
        } else {
            error
        })
    })?;
    let behaviour = match headers
        .get("gs1-capture-error-behaviour")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None | Some("rollback") => "rollback",
        Some("proceed") => "proceed",
        Some(other) => {
            return Err(validation(
                Some("GS1-Capture-Error-Behaviour".into()),
                format!("{other:?} is not rollback or proceed"),
            ))
        }
    };
    let document: Value = serde_json::from_slice(&body)
        .map_err(|e| validation(None, format!("the body is not JSON: {e}")))?;
    if let Some(validator) = &gateway.validator {
        if let Err(custody_epcis::SchemaError::Invalid { violations }) =
            validator.validate(&document)
        {
            let first = &violations[0];
            return Err(validation(
                Some(first.instance_path.clone()),
                format!(
                    "not valid EPCIS 2.0 ({} violations); first: {}: {}",
                    violations.len(),
                    first.instance_path,
                    first.message
                ),
            ));
        }
    }
    if document.get("type").and_then(Value::as_str) != Some("EPCISDocument") {
        return Err(validation(
            Some("type".into()),
            "a capture takes an EPCISDocument".into(),
        ));
    }
    let events = custody_epcis::events_of(&document)
        .map_err(|e| validation(Some("epcisBody.eventList".into()), e.to_string()))?;
    if events.len() > CAPTURE_EVENTS_MAX {
        return Err(limited(
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "epcis.capture_limit",
                Some("epcisBody.eventList".into()),
                format!(
                    "{} events; a capture takes at most {CAPTURE_EVENTS_MAX}",
                    events.len()
                ),
            )
            .with_title("CaptureLimitExceededException"),
        ));
    }
    let created_at = now();
    let (events, errors) = run(&state, gateway, events, behaviour).await;
    let job = gateway.keep(Job {
        capture_id: String::new(),
        created_at,
        finished_at: Some(now()),
        running: false,
        success: errors.is_empty(),
        capture_error_behaviour: behaviour,
        errors,
        events,
    });
    let location = format!("/epcis/capture/{}", job.capture_id);
    let mut response = (StatusCode::ACCEPTED, Json(job)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a decimal id is a header value"),
    );
    with_limits(headers);
    Ok(response)
}

/// `GET /epcis/capture/{id}`.
async fn job(
    State(state): State<ApiState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    let gateway = authorized(&state, &headers)?;
    let id = path.map(|Path(id)| id).unwrap_or_default();
    gateway.job(&id).map(Json).ok_or_else(|| {
        super::no_such_resource(format!(
            "no capture job {id:?} (jobs are kept in memory, the latest {JOBS_MAX})"
        ))
    })
}

/// Maps, signs, judges and (unless a rollback finds an error) submits every event.
async fn run(
    state: &ApiState,
    gateway: &Gateway,
    events: &[Value],
    behaviour: &str,
) -> (Vec<JobEvent>, Vec<JobError>) {
    // The store is read on the blocking pool, never on a tokio worker (ARCHITECTURE.md).
    let me = {
        let (state, key) = (state.clone(), gateway.key.public());
        tokio::task::spawn_blocking(move || member_of(&state, &key))
            .await
            .ok()
            .flatten()
    };
    let mut errors = Vec::new();
    let mut signed: Vec<(usize, VerifiedEvent)> = Vec::new();
    for (index, epcis) in events.iter().enumerate() {
        let error = |code: &str, field: Option<&str>, detail: String| JobError {
            index,
            event_id: epcis
                .get("eventID")
                .and_then(Value::as_str)
                .map(str::to_owned),
            code: code.to_owned(),
            field: field.map(str::to_owned),
            detail,
        };
        let draft = match custody_epcis::from_epcis(epcis) {
            Ok(draft) => draft,
            Err(e) => {
                errors.push(error(e.code(), Some(e.field()), e.to_string()));
                continue;
            }
        };
        let occurred_at = draft.occurred_at;
        let resolved = {
            let (state, me) = (state.clone(), me.clone());
            tokio::task::spawn_blocking(move || resolve(&state, draft, me.as_ref())).await
        };
        let kind = match resolved {
            Ok(Ok(kind)) => kind,
            Ok(Err((code, field, detail))) => {
                errors.push(error(code, Some(field), detail));
                continue;
            }
            Err(failed) => {
                errors.push(error("node.unavailable", None, failed.to_string()));
                continue;
            }
        };
        let body = Event {
            chain_id: state.genesis.chain_id.clone(),
            occurred_at,
            kind,
        };
        let event = EncodedEvent::new(event::sign(body, &gateway.key));
        // Judged after the mempool's events of its shipment and the capture's before it.
        let mut pending = match event.event().event.kind.shipment_id() {
            Some(shipment) => state.mempool.lock().await.shipment_events(shipment),
            None => Vec::new(),
        };
        pending.extend(
            signed
                .iter()
                .map(|(_, e)| e)
                .filter(|e| {
                    e.event().event.kind.shipment_id() == event.event().event.kind.shipment_id()
                })
                .cloned(),
        );
        let id = event.id();
        let verdict = crate::api::admit_blocking(state, pending, event).await;
        match verdict {
            Ok(event) => signed.push((index, event)),
            Err(Refusal::Invalid(r)) => {
                errors.push(error(r.code.as_str(), Some(&r.field), r.message))
            }
            Err(Refusal::Duplicate) => errors.push(error(
                custody_ledger::reject::codes::EVENT_DUPLICATE.as_str(),
                Some("event"),
                format!("event {id} is already on the ledger or waiting"),
            )),
            Err(Refusal::Unavailable(cause)) => {
                errors.push(error("node.unavailable", None, cause.to_string()))
            }
        }
    }
    let mut admitted = Vec::new();
    if behaviour == "rollback" && !errors.is_empty() {
        return (admitted, errors);
    }
    for (index, event) in signed {
        let (event_id, kind) = (event.id().to_hex(), event.event().event.kind.name());
        match crate::api::enter(state, event.into_encoded()).await {
            Ok(()) => admitted.push(JobEvent {
                index,
                event_id,
                kind,
            }),
            Err(e) => {
                let problem = e.problem();
                errors.push(JobError {
                    index,
                    event_id: events[index]
                        .get("eventID")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    code: problem.code.clone(),
                    field: problem.field.clone(),
                    detail: problem.detail.clone(),
                });
            }
        }
    }
    errors.sort_by_key(|e| e.index);
    (admitted, errors)
}

/// The member whose event key the gateway signs with (`key`).
fn member_of(state: &ApiState, key: &custody_ledger::PublicKey) -> Option<MemberId> {
    if let Ok(members) = state.store.stored_members() {
        if let Some(member) = members.into_iter().find(|m| m.key == *key) {
            return Some(member.id);
        }
    }
    state
        .genesis
        .members
        .iter()
        .find(|m| m.key == *key)
        .map(|m| m.id.clone())
}

type Unresolved = (&'static str, &'static str, String);

/// Fills what the draft leaves open from the ledger, and checks its facts against it.
fn resolve(state: &ApiState, draft: Draft, me: Option<&MemberId>) -> Result<EventKind, Unresolved> {
    let Draft {
        mut kind,
        facts,
        unresolved,
        ..
    } = draft;
    const UNRESOLVED: &str = "epcis_capture.unresolved";
    const MISMATCH: &str = "epcis_capture.mismatch";
    if let Some(acting) = &facts.acting_party {
        if me != Some(acting) {
            return Err((
                MISMATCH,
                if matches!(kind, EventKind::HandoffAccepted(_)) {
                    "destinationList"
                } else {
                    "sourceList"
                },
                format!("the event says {acting} acted; this gateway signs for another member"),
            ));
        }
    }
    if unresolved.contains(&"received_by") {
        return Err((
            UNRESOLVED,
            "received_by",
            "EPCIS does not carry who signed for a delivery; the carrier records deliveries \
             itself"
                .into(),
        ));
    }
    if unresolved.contains(&"shipment_id") {
        return Err((
            UNRESOLVED,
            "custody:shipmentId",
            format!(
                "the event does not name its shipment (parcels {}); the gateway needs \
                 custody:shipmentId",
                facts.parcels.join(", ")
            ),
        ));
    }
    let shipment: Option<ShipmentId> = kind.shipment_id().cloned();
    if let (EventKind::HandoffAccepted(accepted), Some(id)) = (&mut kind, shipment) {
        let unavailable = |e: custody_ledger::store::StoreError| {
            ("node.unavailable", "custody:shipmentId", e.to_string())
        };
        let pending = state
            .store
            .shipment(&id)
            .map_err(unavailable)?
            .and_then(|s| s.pending_handoff)
            .ok_or_else(|| {
                (
                    UNRESOLVED,
                    "custody:proposal",
                    format!("shipment {id} has no committed pending handoff to accept"),
                )
            })?;
        if unresolved.contains(&"proposal") {
            accepted.proposal = pending.proposal;
        }
        if facts.place.as_ref().is_some_and(|p| *p != pending.place) {
            return Err((
                MISMATCH,
                "readPoint.id",
                format!("the handoff was proposed at {}", pending.place),
            ));
        }
        if facts
            .other_party
            .as_ref()
            .is_some_and(|p| *p != pending.from)
        {
            return Err((
                MISMATCH,
                "sourceList",
                format!("the handoff was proposed by {}", pending.from),
            ));
        }
        if let Some(document) = &facts.transport_document {
            let proposed = state.store.event(&accepted.proposal).map_err(unavailable)?;
            let theirs = proposed.and_then(|p| match p.event.into_event().event.kind {
                EventKind::HandoffProposed(p) => p.transport_document,
                _ => None,
            });
            if theirs.as_ref() != Some(document) {
                return Err((
                    MISMATCH,
                    "bizTransactionList",
                    "the transport document differs from the proposal's".into(),
                ));
            }
        }
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_token(b"", b"0123456789abcdef"));
    }
}
