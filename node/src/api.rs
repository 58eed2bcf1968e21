//! The HTTP API (axum). This endpoints: `POST /v1/events` (with `?wait=commit`),
//! `GET /v1/status` and `GET /healthz`. The API issue adds the queries.
//!
//! Every error is an RFC 9457 `application/problem+json` body with a 4xx status and the
//! stable rejection code; malformed input never gets a 5xx.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use custody_contracts::ContractRules;
use custody_ledger::event::EncodedEvent;
use custody_ledger::genesis::Genesis;
use custody_ledger::model::SignedEvent;
use custody_ledger::reject::{codes, Rejection};
use custody_ledger::store::{SledStore, Store};
use custody_ledger::{Digest, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, Mutex};

use crate::admission::{admit, Refusal};
use crate::clock::now;
use crate::consensus::host::Committed;
use crate::mempool::{Admission, Mempool, MempoolError};

/// Largest request body.
pub const BODY_SIZE_BYTES_MAX: usize = 2 * 1024 * 1024;
/// How long `?wait=commit` waits before answering 202.
pub const COMMIT_WAIT_MS_MAX: u64 = 20_000;
/// Seconds a client should wait before retrying when the mempool is full.
const RETRY_AFTER_S: u64 = 2;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The genesis.
    pub genesis: Arc<Genesis>,
    /// The ledger.
    pub store: Arc<SledStore>,
    /// The rules with the reference data at the head; the consensus host updates it.
    pub rules: Arc<RwLock<ContractRules>>,
    /// The mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Commits, as the host announces them.
    pub committed: broadcast::Sender<Committed>,
    /// Events to gossip to the other nodes.
    pub outbound: mpsc::Sender<Vec<u8>>,
    /// This node's key.
    pub node_key: PublicKey,
    /// Whether this node votes.
    pub validator: bool,
}

/// The router.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/v1/events", post(submit))
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BODY_SIZE_BYTES_MAX))
        .with_state(state)
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong here.
    pub detail: String,
    /// The stable code.
    pub code: String,
    /// The field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The API's one error type. Boxed, so that handlers' results stay small.
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorInner>);

#[derive(Debug)]
struct ApiErrorInner {
    status: StatusCode,
    problem: Problem,
    retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, field: Option<String>, detail: String) -> ApiError {
        ApiError(Box::new(ApiErrorInner {
            status,
            problem: Problem {
                type_uri: format!("urn:custody:problem:{code}"),
                title: status.canonical_reason().unwrap_or("error").to_owned(),
                status: status.as_u16(),
                detail,
                code: code.to_owned(),
                field,
            },
            retry_after_s: None,
        }))
    }

    fn rejected(rejection: Rejection) -> ApiError {
        let status = if rejection.code == codes::EVENT_DUPLICATE {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(
            status,
            rejection.code,
            Some(rejection.field),
            rejection.message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiErrorInner {
            status,
            problem,
            retry_after_s,
        } = *self.0;
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `?wait=commit`.
#[derive(Debug, Deserialize)]
pub struct SubmitQuery {
    wait: Option<String>,
}

/// Where a committed event is, with its inclusion proof to the block's log root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The event id.
    pub event_id: Digest,
    /// Block height.
    pub height: u64,
    /// Block hash.
    pub block_hash: Digest,
    /// Block time (`recorded_at`).
    pub recorded_at: Timestamp,
    /// Position in the log.
    pub log_index: u64,
    /// Log size after the block.
    pub log_size: u64,
    /// Log root after the block.
    pub log_root: Digest,
    /// RFC 6962 inclusion proof of the event id (leaf data) in that log.
    pub inclusion_proof: Vec<Digest>,
}

/// The answer to a submission that is not yet committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The event id.
    pub event_id: Digest,
    /// `pending`.
    pub status: String,
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<EncodedEvent, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if content_type.starts_with("application/octet-stream") {
        return EncodedEvent::decode_untrusted(body).map_err(ApiError::rejected);
    }
    if !content_type.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.media_type",
            Some("content-type".into()),
            format!(
                "{content_type} is not accepted; send application/json or application/octet-stream"
            ),
        ));
    }
    let event: SignedEvent = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::EVENT_MALFORMED,
            None,
            format!("the body is not a signed event in JSON: {e}"),
        )
    })?;
    Ok(EncodedEvent::new(event))
}

async fn submit(
    State(state): State<ApiState>,
    Query(query): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let event = decode_body(&headers, &body)?;
    let wait = match query.wait.as_deref() {
        None => false,
        Some("commit") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.query",
                Some("wait".into()),
                format!("wait={other} is not supported; use wait=commit"),
            ))
        }
    };
    // Subscribe before admitting, so a commit cannot slip between the two.
    let mut commits = state.committed.subscribe();
    let pending: Vec<EncodedEvent> = match event.event.event.kind.shipment_id() {
        Some(shipment) => state.mempool.lock().await.shipment_events(shipment),
        None => Vec::new(),
    };
    let rules = state.rules.read().expect("rules lock").clone();
    let verdict = {
        let (store, genesis, event) = (state.store.clone(), state.genesis.clone(), event.clone());
        tokio::task::spawn_blocking(move || {
            admit(store.as_ref(), &genesis, &rules, &pending, &event, now())
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node.unavailable",
                None,
                e.to_string(),
            )
        })?
    };
    match verdict {
        Ok(()) => {}
        Err(Refusal::Invalid(rejection)) => return Err(ApiError::rejected(rejection)),
        Err(Refusal::Duplicate) => {
            return Err(ApiError::rejected(Rejection::new(
                codes::EVENT_DUPLICATE,
                "event",
                format!("event {} is already on the ledger", event.id),
            )))
        }
        Err(Refusal::Unavailable(message)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node.unavailable",
                None,
                message,
            ))
        }
    }
    let admission = state.mempool.lock().await.insert(event.clone());
    match admission {
        Ok(Admission::Added) => {
            // Gossip is best effort: the proposer of any round includes what reached it.
            let _ = state.outbound.try_send(event.bytes.clone());
        }
        Ok(Admission::Duplicate) => {}
        Err(MempoolError::Full { count, size_bytes }) => {
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mempool.full",
                None,
                format!("the mempool holds {count} events ({size_bytes} bytes); retry later"),
            );
            error.0.retry_after_s = Some(RETRY_AFTER_S);
            return Err(error);
        }
        Err(error @ MempoolError::TooLarge { .. }) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "mempool.too_large",
                None,
                error.to_string(),
            ))
        }
    }
    let accepted = || {
        (
            StatusCode::ACCEPTED,
            Json(Accepted {
                event_id: event.id,
                status: "pending".into(),
            }),
        )
            .into_response()
    };
    if !wait {
        return Ok(accepted());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(COMMIT_WAIT_MS_MAX);
    loop {
        match tokio::time::timeout_at(deadline, commits.recv()).await {
            Ok(Ok(committed)) if committed.block.events.iter().any(|e| e.id == event.id) => {
                return Ok(Json(receipt(&state, &event.id)?).into_response());
            }
            Ok(Ok(_)) => continue,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                // Missed some announcements: look in the store instead.
                if state.store.contains_event(&event.id).unwrap_or(false) {
                    return Ok(Json(receipt(&state, &event.id)?).into_response());
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return Ok(accepted()),
        }
    }
}

fn receipt(state: &ApiState, id: &Digest) -> Result<Receipt, ApiError> {
    let unavailable =
        |e: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node.unavailable", None, e);
    let stored = state
        .store
        .event(id)
        .map_err(|e| unavailable(e.to_string()))?
        .ok_or_else(|| unavailable("committed event not found".into()))?;
    let header = state
        .store
        .header(stored.location.height)
        .map_err(|e| unavailable(e.to_string()))?
        .ok_or_else(|| unavailable("committed block not found".into()))?;
    let proof = state
        .store
        .inclusion_proof(stored.location.log_index, header.log_size)
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(Receipt {
        event_id: *id,
        height: header.height,
        block_hash: header.hash(),
        recorded_at: header.time,
        log_index: stored.location.log_index,
        log_size: header.log_size,
        log_root: header.log_root,
        inclusion_proof: proof,
    })
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

async fn status(State(state): State<ApiState>) -> Result<Json<Status>, ApiError> {
    let head = state.store.head().map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unavailable",
            None,
            e.to_string(),
        )
    })?;
    let genesis_hash = state.genesis.hash();
    Ok(Json(Status {
        chain_id: state.genesis.chain_id.clone(),
        genesis_hash,
        node_key: state.node_key,
        validator: state.validator,
        height: head.map_or(0, |h| h.height),
        head_hash: head.map_or(genesis_hash, |h| h.block_hash),
        log_size: head.map_or(0, |h| h.log_size),
        log_root: head.map_or_else(custody_ledger::merkle::empty_root, |h| h.log_root),
        mempool_size: state.mempool.lock().await.len(),
    }))
}

async fn healthz(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    state.store.head().map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unavailable",
            None,
            e.to_string(),
        )
    })?;
    Ok("ok")
}
