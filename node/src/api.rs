//! The HTTP API (axum): every endpoint of DESIGN.md's "Interfaces", documented by the
//! OpenAPI document at `/openapi.json` (built from the same types, see `openapi.rs`).
//!
//! Every error is an RFC 9457 `application/problem+json` body with the stable code (a ledger or
//! contract rejection code, or an API code such as `request.path`) and the offending field.
//! Malformed input always gets a 4xx: path and query values are parsed here, by hand, so that
//! no extractor can answer with its own plain-text error; a 5xx means the node itself failed.
//! Lists are paged by an opaque cursor (`?after=`), oldest first; the shipment list of
//! `browse.rs` is in id order with its own `?cursor=`. CORS is off: no cross-origin headers
//! are sent.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use custody_contracts::ContractRules;
use custody_ledger::block::BlockHeader;
use custody_ledger::bundle;
use custody_ledger::cause::Cause;
use custody_ledger::entry::LogEntry;
use custody_ledger::event::{EncodedEvent, VerifiedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::KeyCache;
use custody_ledger::model::{MemberId, ShipmentId, SignedEvent, ID_LEN_MAX};
use custody_ledger::reject::{codes, Rejection};
use custody_ledger::store::{EventLocation, Store, StoreError};
use custody_ledger::view::{
    Accepted, BlockView, ConsistencyView, EventEntry, EventView, MemberView, Page, Problem,
    Receipt, Status,
};
use custody_ledger::{Digest, PublicKey};
use custody_sled::SledStore;
use tokio::sync::{broadcast, mpsc, Mutex};
use tower_http::timeout::TimeoutLayer;

use crate::admission::{admit, Refusal};
use crate::batch::Entered;
use crate::clock::now;
use crate::consensus::host::Committed;
use crate::health::Health;
use crate::mempool::{Mempool, MempoolError};
use crate::metrics::{Metrics, RequestLabels};

/// Largest request body.
pub const BODY_SIZE_BYTES_MAX: usize = 2 * 1024 * 1024;
/// How long `?wait=commit` waits before answering 202.
pub const COMMIT_WAIT_MS_MAX: u64 = 20_000;
/// Longest any request may take; above the commit wait, so a waiting submission answers 202
/// rather than being cut off.
pub const REQUEST_TIMEOUT_MS_MAX: u64 = COMMIT_WAIT_MS_MAX + 10_000;
/// Seconds a client should wait before retrying when the mempool is full.
const RETRY_AFTER_S: u64 = 2;
/// Items per page unless `?limit=` says otherwise.
pub const PAGE_ITEMS_DEFAULT: usize = 100;
/// Most items per page.
pub const PAGE_ITEMS_MAX: usize = 1_000;

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
    /// Parsed keys, shared by everything on this node that verifies signatures.
    pub keys: Arc<KeyCache>,
    /// The admission queue every submitted event goes through.
    pub intake: crate::intake::Intake,
    /// Commits, as the host announces them.
    pub committed: broadcast::Sender<Committed>,
    /// Events to gossip to the other nodes.
    pub outbound: mpsc::Sender<Vec<u8>>,
    /// This node's key.
    pub node_key: PublicKey,
    /// Whether this node votes.
    pub validator: bool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Connected gossip peers, as last counted by the node.
    pub peers: Arc<std::sync::atomic::AtomicUsize>,
    /// Whether the node is doing its work.
    pub health: Arc<Health>,
    /// The EPCIS capture gateway, when this node is configured as one (`[epcis_gateway]`).
    pub epcis_gateway: Option<Arc<crate::epcis::capture::Gateway>>,
    /// The EPCIS webhook subscriptions (`Default::default()`: in memory only).
    pub epcis_subscriptions: Arc<crate::epcis::subscriptions::Subscriptions>,
    /// The off-ledger personal data (`Default::default()`: none kept, the endpoints answer
    /// 503).
    pub personal: Arc<crate::personal::Personal>,
}

/// The router.
pub fn app(state: ApiState) -> Router {
    // The handlers that read the store (sled) and build proofs run on the blocking pool; the
    // submissions stay on the workers, since they wait for commits and hand their work to the
    // admission queue's thread.
    let reads = Router::new()
        .route("/v1/events/{id}", get(event))
        .route("/v1/quote", post(crate::quote::post_quote))
        .route("/v1/shipments", get(crate::browse::shipments))
        .route("/v1/shipments/{id}", get(shipment))
        .route("/v1/shipments/{id}/events", get(shipment_events))
        .route("/v1/shipments/{id}/bundle", get(shipment_bundle))
        .route("/v1/members", get(members))
        .route("/v1/members/{id}", get(crate::browse::member))
        .route("/v1/members/{key}/events", get(member_events))
        .route("/v1/blocks/head", get(head_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/consistency", get(consistency))
        .route("/v1/network", get(crate::browse::network))
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn(off_the_workers));
    Router::new()
        .route("/v1/events", post(submit))
        // Its own body limit, above the one for a single event; the innermost limit applies.
        .route(
            "/v1/events/batch",
            post(crate::batch::submit_batch)
                .layer(DefaultBodyLimit::max(crate::batch::BATCH_BODY_BYTES_MAX)),
        )
        .merge(reads)
        .route(
            "/v1/shipments/{id}/personal",
            get(crate::personal::routes::read).post(crate::personal::routes::disclose),
        )
        .route(
            "/v1/personal/batch",
            post(crate::personal::routes::read_batch),
        )
        .route("/v1/genesis", get(crate::browse::genesis))
        .route("/openapi.json", get(openapi))
        .nest("/epcis", crate::epcis::router())
        // The web explorer: `/`, `/search`, `/s/{shipment}`, `/m/{member}`, `/b/{height}`.
        .merge(crate::explorer::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside `observe`, so that refused requests are measured too.
        .layer(middleware::from_fn(crate::http::limits))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(REQUEST_TIMEOUT_MS_MAX),
        ))
        .layer(middleware::map_response(timeout_problem))
        .layer(DefaultBodyLimit::max(BODY_SIZE_BYTES_MAX))
        .with_state(state)
}

/// Runs a request's handler on tokio's blocking pool, driven by the runtime's handle, so that
/// its sled reads and proof building never hold a tokio worker (ARCHITECTURE.md, issue 17).
async fn off_the_workers(request: Request, next: Next) -> Response {
    let runtime = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || runtime.block_on(next.run(request))).await {
        Ok(response) => response,
        Err(error) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unavailable",
            None,
            format!("the request's handler failed: {error}"),
        )
        .into_response(),
    }
}

/// The API's one error type. Boxed, so that handlers' results stay small.
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorInner>);

#[derive(Debug)]
struct ApiErrorInner {
    status: StatusCode,
    problem: Problem,
    retry_after_s: Option<u64>,
    headers: Vec<(&'static str, HeaderValue)>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &str,
        field: Option<String>,
        detail: String,
    ) -> ApiError {
        ApiError(Box::new(ApiErrorInner {
            status,
            problem: Problem {
                kind: format!("urn:custody:problem:{code}"),
                title: status.canonical_reason().unwrap_or("error").to_owned(),
                status: status.as_u16(),
                detail,
                code: code.to_owned(),
                field,
            },
            retry_after_s: None,
            headers: Vec::new(),
        }))
    }

    /// The same problem with another `title` (EPCIS names its exceptions there).
    pub(crate) fn with_title(mut self, title: &str) -> ApiError {
        self.0.problem.title = title.to_owned();
        self
    }

    /// The problem document this error answers with.
    pub(crate) fn problem(&self) -> &Problem {
        &self.0.problem
    }

    /// Adds a header to the answer (`WWW-Authenticate`, the EPCIS capture limits).
    pub(crate) fn with_header(mut self, name: &'static str, value: HeaderValue) -> ApiError {
        self.0.headers.push((name, value));
        self
    }

    fn bad_request(code: &str, field: &str, detail: String) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, Some(field.into()), detail)
    }

    fn not_found(code: &str, detail: String) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, None, detail)
    }

    /// The seconds a client should wait before retrying, when the refusal was for load.
    pub(crate) fn retry_after_s(&self) -> Option<u64> {
        self.0.retry_after_s
    }

    pub(crate) fn rejected(rejection: Rejection) -> ApiError {
        let status = StatusCode::from_u16(rejection.code.http_status())
            .expect("every rejection code's status is a valid HTTP status");
        ApiError::new(
            status,
            rejection.code.as_str(),
            Some(rejection.field),
            rejection.message,
        )
    }
}

impl From<StoreError> for ApiError {
    /// The store failed: the node's fault, not the client's.
    fn from(error: StoreError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unavailable",
            None,
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiErrorInner {
            status,
            problem,
            retry_after_s,
            headers,
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
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The query string as name-value pairs, or a problem naming it.
pub(crate) type QueryPairs = Result<Query<BTreeMap<String, String>>, QueryRejection>;

pub(crate) fn query_pairs(query: QueryPairs) -> Result<BTreeMap<String, String>, ApiError> {
    query.map(|Query(pairs)| pairs).map_err(|e| {
        ApiError::bad_request(
            "request.query",
            "query",
            format!("malformed query string: {e}"),
        )
    })
}

/// Refuses query parameters an endpoint does not know, so a typo is not silently ignored.
pub(crate) fn only_params(
    pairs: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), ApiError> {
    match pairs.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(ApiError::bad_request(
            "request.query",
            unknown,
            format!("unknown query parameter {unknown:?}; known: {known:?}"),
        )),
    }
}

/// A path segment, or a problem if it is not valid percent-encoded UTF-8.
pub(crate) fn path_segment(
    path: Result<Path<String>, PathRejection>,
    field: &str,
) -> Result<String, ApiError> {
    path.map(|Path(segment)| segment).map_err(|e| {
        ApiError::bad_request(
            "request.path",
            field,
            format!("malformed path segment: {e}"),
        )
    })
}

fn parse_digest(text: &str, field: &str) -> Result<Digest, ApiError> {
    Digest::from_hex(text).map_err(|e| {
        ApiError::bad_request(
            "request.path",
            field,
            format!("{field} must be 64 hex digits: {e}"),
        )
    })
}

/// A shipment id in a path: one that could be on the ledger (the shape every event's shipment
/// id must have), or a 400 problem, so that no lookup is made for an impossible id.
pub(crate) fn parse_shipment(text: &str) -> Result<ShipmentId, ApiError> {
    let id = ShipmentId::new(text);
    if !id.is_well_formed() {
        return Err(ApiError::bad_request(
            "request.path",
            "id",
            format!("a shipment id has 1 to {ID_LEN_MAX} characters from A-Z a-z 0-9 . _ - :"),
        ));
    }
    Ok(id)
}

fn parse_u64(text: &str, field: &str, code: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            code,
            field,
            format!("{field} must be a non-negative integer, not {text:?}"),
        )
    })
}

/// `?after=` and `?limit=`: the log index after which to start, and the page size.
fn paging(pairs: &BTreeMap<String, String>) -> Result<(Option<u64>, usize), ApiError> {
    let after = pairs
        .get("after")
        .map(|a| parse_u64(a, "after", "request.query"))
        .transpose()?;
    let limit = match pairs.get("limit") {
        None => PAGE_ITEMS_DEFAULT,
        Some(l) => {
            let limit = parse_u64(l, "limit", "request.query")?;
            if limit == 0 || limit > PAGE_ITEMS_MAX as u64 {
                return Err(ApiError::bad_request(
                    "request.query",
                    "limit",
                    format!("limit must be between 1 and {PAGE_ITEMS_MAX}"),
                ));
            }
            limit as usize
        }
    };
    Ok((after, limit))
}

/// The two forms a submitted event may take.
pub(crate) enum BodyForm {
    /// `application/json`, or no `Content-Type`.
    Json,
    /// `application/octet-stream`: canonical bytes.
    Canonical,
}

/// The form of a submission's body, from its `Content-Type`, or a 415 problem.
pub(crate) fn body_form(headers: &HeaderMap) -> Result<BodyForm, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if content_type.starts_with("application/octet-stream") {
        return Ok(BodyForm::Canonical);
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
    Ok(BodyForm::Json)
}

/// A body that could not be read (larger than `limit_bytes`, or cut off).
pub(crate) fn body_unreadable(error: BytesRejection, limit_bytes: usize) -> ApiError {
    ApiError::new(
        error.status(),
        "request.body",
        Some("body".into()),
        format!("{error} (at most {limit_bytes} bytes)"),
    )
}

/// `?wait=`: `commit`, or absent.
pub(crate) fn wait_param(pairs: &BTreeMap<String, String>) -> Result<bool, ApiError> {
    match pairs.get("wait").map(String::as_str) {
        None => Ok(false),
        Some("commit") => Ok(true),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.query",
            Some("wait".into()),
            format!("wait={other} is not supported; use wait=commit"),
        )),
    }
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<EncodedEvent, ApiError> {
    if let BodyForm::Canonical = body_form(headers)? {
        return EncodedEvent::decode_untrusted(body).map_err(ApiError::rejected);
    }
    let event: SignedEvent = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::EVENT_MALFORMED.as_str(),
            None,
            format!("the body is not a signed event in JSON: {e}"),
        )
    })?;
    EncodedEvent::from_untrusted(event).map_err(ApiError::rejected)
}

async fn submit(
    State(state): State<ApiState>,
    query: QueryPairs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_unreadable(e, BODY_SIZE_BYTES_MAX))?;
    let pairs = query_pairs(query)?;
    only_params(&pairs, &["wait"])?;
    let event =
        decode_body(&headers, &body).inspect_err(|e| state.metrics.reject(&e.0.problem.code))?;
    let wait = wait_param(&pairs)?;
    // Subscribe before admitting, so a commit cannot slip between the two.
    let mut commits = state.committed.subscribe();
    let id = event.id();
    enter(&state, event).await?;
    let accepted = || {
        (
            StatusCode::ACCEPTED,
            Json(Accepted {
                event_id: id,
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
            Ok(Ok(committed)) if committed.ids.contains(&id) => {
                let state = state.clone();
                let receipt = blocking(move || receipt(&state, &id)).await??;
                return Ok(Json(receipt).into_response());
            }
            Ok(Ok(_)) => continue,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                // Missed some announcements: look in the store instead (off the workers).
                let state = state.clone();
                let found = blocking(move || {
                    if state.store.contains_event(&id).unwrap_or(false) {
                        receipt(&state, &id).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .await??;
                if let Some(receipt) = found {
                    return Ok(Json(receipt).into_response());
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return Ok(accepted()),
        }
    }
}

/// The way in for a signed event, whoever submits it (`POST /v1/events`, the EPCIS capture
/// gateway): a batch of one through [`crate::batch::enter_batch`] (the admission check, the
/// mempool, and gossip to the other nodes), answered as a single submission is.
pub(crate) async fn enter(state: &ApiState, event: EncodedEvent) -> Result<(), ApiError> {
    let entered = crate::batch::enter_batch(state, vec![Ok(event)]).await;
    match entered.into_iter().next() {
        // Resubmitting a waiting event is harmless: answered as the first submission.
        Some(Entered::Accepted(_)) => Ok(()),
        Some(Entered::Duplicate(id)) => Err(ApiError::rejected(Rejection::new(
            codes::EVENT_DUPLICATE,
            "event",
            format!("event {id} is already on the ledger"),
        ))),
        Some(Entered::Refused(_, error)) => Err(error),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unavailable",
            None,
            "the admission gave no answer".into(),
        )),
    }
}

/// 503 with `Retry-After` when the admission queue is full.
pub(crate) fn busy(error: crate::intake::Busy) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "node.busy",
        None,
        error.to_string(),
    );
    error.0.retry_after_s = Some(RETRY_AFTER_S);
    error
}

/// The answer to an event the mempool refused: 503 when full and 429 for a signer at its
/// quota, both with `Retry-After`; 413 for an event no mempool can hold, which a retry cannot
/// help.
pub(crate) fn mempool_refusal(error: MempoolError) -> ApiError {
    let (status, code, field) = match error {
        MempoolError::Full { .. } => (StatusCode::SERVICE_UNAVAILABLE, "mempool.full", None),
        MempoolError::SignerQuota { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "mempool.signer_quota",
            Some("signer".to_owned()),
        ),
        MempoolError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "mempool.too_large", None),
    };
    let detail = match &error {
        MempoolError::Full { count, size_bytes } => {
            format!("the mempool holds {count} events ({size_bytes} bytes); retry later")
        }
        other => other.to_string(),
    };
    let mut refusal = ApiError::new(status, code, field, detail);
    if !matches!(error, MempoolError::TooLarge { .. }) {
        refusal.0.retry_after_s = Some(RETRY_AFTER_S);
    }
    refusal
}

/// [`admit`] after `pending`, on the blocking pool: it reads the store and checks a signature.
pub(crate) async fn admit_blocking(
    state: &ApiState,
    pending: Vec<VerifiedEvent>,
    event: EncodedEvent,
) -> Result<VerifiedEvent, Refusal> {
    let rules = state.rules.read().expect("rules lock").clone();
    let (store, genesis, keys) = (
        state.store.clone(),
        state.genesis.clone(),
        state.keys.clone(),
    );
    let at = now();
    tokio::task::spawn_blocking(move || {
        admit(store.as_ref(), &genesis, &rules, &pending, event, &keys, at)
    })
    .await
    .unwrap_or_else(|e| Err(Refusal::Unavailable(Cause::new(e))))
}

/// Runs store-heavy work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unavailable",
            None,
            e.to_string(),
        )
    })
}

/// The receipt of a committed event with its proof to the log as of block `at_height` (the
/// committing block if `None`). It reads the event record's head, not the event: one store
/// read and no decoding besides the headers and the proof's nodes.
pub(crate) fn receipt_at(
    state: &ApiState,
    id: &Digest,
    at_height: Option<u64>,
) -> Result<Option<Receipt>, ApiError> {
    let Some((location, shipment_prev)) = state.store.event_position(id)? else {
        return Ok(None);
    };
    let committing = stored_header(state, location.height)?;
    let header = match at_height {
        Some(height) if height != location.height => stored_header(state, height)?,
        _ => committing.clone(),
    };
    let proof = state
        .store
        .inclusion_proof(location.log_index, header.log_size)?;
    let position = (location, shipment_prev);
    Ok(Some(receipt_from(
        *id,
        position,
        &committing,
        &header,
        proof,
    )))
}

/// The receipts of those of `ids` that are committed, each with its proof to the log as of
/// its committing block: one header read per block, and the log nodes the proofs share read
/// once (`Store::inclusion_proofs`), so a batch's receipts cost little more than one.
pub fn receipts_of(
    state: &ApiState,
    ids: &[Digest],
) -> Result<BTreeMap<Digest, Receipt>, ApiError> {
    let mut headers: BTreeMap<u64, (BlockHeader, Digest)> = BTreeMap::new();
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let Some((location, shipment_prev)) = state.store.event_position(id)? else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = headers.entry(location.height) {
            let header = stored_header(state, location.height)?;
            let hash = header.hash();
            slot.insert((header, hash));
        }
        found.push((*id, (location, shipment_prev)));
    }
    let wanted: Vec<(u64, u64)> = found
        .iter()
        .map(|(_, (location, _))| (location.log_index, headers[&location.height].0.log_size))
        .collect();
    let proofs = state.store.inclusion_proofs(&wanted)?;
    Ok(found
        .into_iter()
        .zip(proofs)
        .map(|((id, (location, shipment_prev)), proof)| {
            let (header, hash) = &headers[&location.height];
            let entry = entry_at(id, location, shipment_prev, header);
            (id, receipt_to(entry, header, *hash, proof))
        })
        .collect())
}

/// The receipts of those of `ids` that the announced blocks `commits` committed, each with its
/// proof to its block, from what the announcements carry: entries, headers and the log nodes
/// each block wrote, so the proofs read only the few older nodes their paths pass. Ids the
/// blocks do not hold are left out.
pub fn receipts_in(
    state: &ApiState,
    ids: &std::collections::BTreeSet<Digest>,
    commits: &[Committed],
) -> Result<BTreeMap<Digest, Receipt>, ApiError> {
    let mut receipts = BTreeMap::new();
    for commit in commits {
        let header = &commit.block.header;
        let mine: Vec<&LogEntry> = commit
            .entries
            .iter()
            .filter(|entry| ids.contains(&entry.event_id))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let wanted: Vec<(u64, u64)> = mine
            .iter()
            .map(|entry| (entry.log_index, header.log_size))
            .collect();
        let proofs = state
            .store
            .inclusion_proofs_with(&wanted, &commit.log_nodes)?;
        let hash = header.hash();
        for (entry, proof) in mine.into_iter().zip(proofs) {
            receipts.insert(
                entry.event_id,
                receipt_to(entry.clone(), header, hash, proof),
            );
        }
    }
    Ok(receipts)
}

/// A receipt from an event's position, its committing block's header, the header of the
/// block its proof is to, and that proof.
fn receipt_from(
    id: Digest,
    (location, shipment_prev): (EventLocation, Option<Digest>),
    committing: &BlockHeader,
    header: &BlockHeader,
    inclusion_proof: Vec<Digest>,
) -> Receipt {
    let entry = entry_at(id, location, shipment_prev, committing);
    receipt_to(entry, header, header.hash(), inclusion_proof)
}

/// An event's log entry, from its position and its committing block's header.
fn entry_at(
    id: Digest,
    location: EventLocation,
    shipment_prev: Option<Digest>,
    committing: &BlockHeader,
) -> LogEntry {
    LogEntry {
        event_id: id,
        height: location.height,
        time: committing.time,
        log_index: location.log_index,
        shipment_prev,
    }
}

/// A receipt for the event of `entry` with its proof to the block of `header`, whose hash is
/// `block_hash`.
fn receipt_to(
    entry: LogEntry,
    header: &BlockHeader,
    block_hash: Digest,
    inclusion_proof: Vec<Digest>,
) -> Receipt {
    Receipt {
        event_id: entry.event_id,
        height: header.height,
        block_hash,
        recorded_at: header.time,
        log_index: entry.log_index,
        log_size: header.log_size,
        log_root: header.log_root,
        entry,
        inclusion_proof,
    }
}

/// A block header the store must hold: a missing one is corruption.
fn stored_header(state: &ApiState, height: u64) -> Result<BlockHeader, ApiError> {
    state.store.header(height)?.ok_or_else(|| {
        ApiError::from(StoreError::Corrupt {
            record: format!("header {height}"),
            message: "missing".into(),
        })
    })
}

fn receipt(state: &ApiState, id: &Digest) -> Result<Receipt, ApiError> {
    receipt_at(state, id, None)?.ok_or_else(|| {
        ApiError::from(StoreError::Corrupt {
            record: format!("event {id}"),
            message: "announced as committed but not found".into(),
        })
    })
}

/// `GET /v1/events/{id}`.
async fn event(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<EventView>, ApiError> {
    let id = parse_digest(&path_segment(path, "id")?, "id")?;
    let not_found = || ApiError::not_found("event.not_found", format!("no committed event {id}"));
    let Some(stored) = state.store.event(&id)? else {
        return Err(not_found());
    };
    let head = state.store.head()?.map(|h| h.height);
    let receipt = receipt_at(&state, &id, head)?.ok_or_else(not_found)?;
    Ok(Json(EventView {
        event_id: id,
        height: stored.location.height,
        index_in_block: stored.location.index_in_block,
        log_index: stored.location.log_index,
        recorded_at: receipt.entry.time,
        event: stored.event.into_event(),
        receipt,
    }))
}

/// `GET /v1/shipments/{id}`.
async fn shipment(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_shipment(&path_segment(path, "id")?)?;
    match state.store.shipment(&id)? {
        Some(shipment) => Ok(Json(shipment).into_response()),
        None => Err(unknown_shipment(&id)),
    }
}

fn unknown_shipment(id: &ShipmentId) -> ApiError {
    ApiError::not_found(
        "shipment.not_found",
        format!("no shipment {id} on the ledger"),
    )
}

/// Entries for (log index, id) pairs from an index, and the cursor of the next page.
fn entries(
    state: &ApiState,
    located: Vec<(u64, Digest)>,
    limit: usize,
) -> Result<Page<EventEntry>, ApiError> {
    let next = (located.len() == limit)
        .then(|| located.last().map(|(index, _)| index.to_string()))
        .flatten();
    let mut items = Vec::with_capacity(located.len());
    let mut times: BTreeMap<u64, custody_ledger::Timestamp> = BTreeMap::new();
    for (log_index, id) in located {
        let stored = state.store.event(&id)?.ok_or_else(|| {
            ApiError::from(StoreError::Corrupt {
                record: format!("event {id}"),
                message: "indexed but missing".into(),
            })
        })?;
        let height = stored.location.height;
        let recorded_at = match times.get(&height) {
            Some(time) => *time,
            None => {
                let time = state
                    .store
                    .header(height)?
                    .map_or_else(|| custody_ledger::Timestamp(0), |h| h.time);
                times.insert(height, time);
                time
            }
        };
        items.push(EventEntry {
            event_id: id,
            height,
            log_index,
            recorded_at,
            event: stored.event.into_event(),
        });
    }
    Ok(Page { items, next })
}

/// `GET /v1/shipments/{id}/events?after=&limit=`.
async fn shipment_events(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Result<Json<Page<EventEntry>>, ApiError> {
    let id = parse_shipment(&path_segment(path, "id")?)?;
    let pairs = query_pairs(query)?;
    only_params(&pairs, &["after", "limit"])?;
    let (after, limit) = paging(&pairs)?;
    if state.store.shipment(&id)?.is_none() {
        return Err(unknown_shipment(&id));
    }
    let located = state.store.shipment_events(&id, after, limit)?;
    Ok(Json(entries(&state, located, limit)?))
}

/// `GET /v1/shipments/{id}/bundle`.
async fn shipment_bundle(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<bundle::Bundle>, ApiError> {
    let id = parse_shipment(&path_segment(path, "id")?)?;
    let (store, genesis, wanted) = (state.store.clone(), state.genesis.clone(), id.clone());
    let built = blocking(move || bundle::build(store.as_ref(), &genesis, &wanted)).await??;
    built.map(Json).ok_or_else(|| unknown_shipment(&id))
}

/// `GET /v1/members`: genesis members as the ledger knows them now, then members admitted
/// later, by id.
async fn members(State(state): State<ApiState>) -> Result<Json<Vec<MemberView>>, ApiError> {
    let stored: BTreeMap<MemberId, custody_ledger::state::MemberRecord> = state
        .store
        .stored_members()?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let mut out: Vec<MemberView> = state
        .genesis
        .members
        .iter()
        .map(|member| crate::browse::genesis_member_view(member, stored.get(&member.id)))
        .collect();
    for (id, record) in &stored {
        if state.genesis.members.iter().all(|m| &m.id != id) {
            out.push(crate::browse::admitted_member_view(record));
        }
    }
    Ok(Json(out))
}

/// `GET /v1/members/{key}/events?after=&limit=`: events signed by a key.
async fn member_events(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Result<Json<Page<EventEntry>>, ApiError> {
    let text = path_segment(path, "key")?;
    let key = PublicKey::from_hex(&text).map_err(|e| {
        ApiError::bad_request(
            "request.path",
            "key",
            format!("key must be 64 hex digits: {e}"),
        )
    })?;
    let pairs = query_pairs(query)?;
    only_params(&pairs, &["after", "limit"])?;
    let (after, limit) = paging(&pairs)?;
    let located = state.store.member_events(&key, after, limit)?;
    Ok(Json(entries(&state, located, limit)?))
}

fn block_view(state: &ApiState, height: u64) -> Result<BlockView, ApiError> {
    let (Some(block), Some(certificate)) =
        (state.store.block(height)?, state.store.certificate(height)?)
    else {
        return Err(ApiError::not_found(
            "block.not_found",
            format!("no committed block at height {height}"),
        ));
    };
    Ok(BlockView {
        hash: block.hash(),
        event_ids: block.events.iter().map(|e| e.id()).collect(),
        events: block
            .events
            .iter()
            .map(|e| STANDARD.encode(e.bytes()))
            .collect(),
        header: block.header,
        certificate,
    })
}

/// `GET /v1/blocks/{height}`.
async fn block(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BlockView>, ApiError> {
    let height = parse_u64(&path_segment(path, "height")?, "height", "request.path")?;
    Ok(Json(block_view(&state, height)?))
}

/// `GET /v1/blocks/head`.
async fn head_block(State(state): State<ApiState>) -> Result<Json<BlockView>, ApiError> {
    let Some(head) = state.store.head()? else {
        return Err(ApiError::not_found(
            "block.not_found",
            "no block is committed yet".into(),
        ));
    };
    Ok(Json(block_view(&state, head.height)?))
}

/// `GET /v1/log/checkpoint`: the head's header and certificate.
async fn checkpoint(State(state): State<ApiState>) -> Result<Json<bundle::Checkpoint>, ApiError> {
    let head = state.store.head()?.map_or(0, |h| h.height);
    bundle::checkpoint_at(state.store.as_ref(), head)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("block.not_found", "no block is committed yet".into()))
}

/// `GET /v1/log/consistency?from=&to=`: log sizes, `1 <= from <= to <= head log size`.
async fn consistency(
    State(state): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<ConsistencyView>, ApiError> {
    let pairs = query_pairs(query)?;
    only_params(&pairs, &["from", "to"])?;
    let size = state.store.head()?.map_or(0, |h| h.log_size);
    let get = |name: &str| -> Result<u64, ApiError> {
        let text = pairs.get(name).ok_or_else(|| {
            ApiError::bad_request("request.query", name, format!("{name} is required"))
        })?;
        parse_u64(text, name, "request.query")
    };
    let (from, to) = (get("from")?, get("to")?);
    if from == 0 || from > to || to > size {
        return Err(ApiError::bad_request(
            "log.bad_range",
            "from",
            format!("need 1 <= from <= to <= {size} (the log size), got from={from} to={to}"),
        ));
    }
    Ok(Json(ConsistencyView {
        from,
        to,
        from_root: state.store.log_root(from)?,
        to_root: state.store.log_root(to)?,
        proof: state.store.consistency_proof(from, to)?,
    }))
}

async fn status(State(state): State<ApiState>) -> Result<Json<Status>, ApiError> {
    let head = state.store.head()?;
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
        health: state.health.report(std::time::Instant::now()),
    }))
}

async fn healthz(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    state.store.head()?;
    let report = state.health.report(std::time::Instant::now());
    if !report.healthy {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node.unhealthy",
            None,
            report.problems.join("; "),
        ));
    }
    Ok("ok")
}

/// `GET /metrics`, in the Prometheus text format.
async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let head = state.store.head()?;
    let m = &state.metrics;
    m.height.set(head.map_or(0, |h| h.height) as i64);
    m.log_size.set(head.map_or(0, |h| h.log_size) as i64);
    m.mempool_size.set(state.mempool.lock().await.len() as i64);
    m.peers
        .set(state.peers.load(std::sync::atomic::Ordering::Relaxed) as i64);
    m.set_store_writes(state.store.write_counts());
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
        .into_response())
}

/// `GET /openapi.json`, built once: it depends only on the code.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(|| {
        serde_json::to_string(&crate::openapi::document()).expect("the document serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response()
}

/// Gives the timeout layer's bare 408 a problem body, like every other error.
async fn timeout_problem(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request.timeout",
            None,
            format!("the request took longer than {REQUEST_TIMEOUT_MS_MAX} ms"),
        )
        .into_response();
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "request.route",
        "no such endpoint; see /openapi.json".into(),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method",
        None,
        "this endpoint does not take that method; see /openapi.json".into(),
    )
}

/// Records each request's latency by route template, method and status.
async fn observe(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http_latency
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bare_timeout_becomes_a_problem_and_other_answers_pass_through() {
        let bare = StatusCode::REQUEST_TIMEOUT.into_response();
        let answer = timeout_problem(bare).await;
        assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            answer.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let ok = timeout_problem((StatusCode::OK, "ok").into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_ne!(
            ok.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
