//! `POST /v1/events/batch`: many signed events in one request, each answered as
//! `POST /v1/events` would answer it alone, and [`enter_batch`], the one way in for signed
//! events from the API (the single endpoint and the EPCIS capture gateway enter a batch of one).
//!
//! A problem with the request as a whole (its media type, its size, a body that is not a list
//! of events) is one problem answer and admits nothing. Past that, every element gets its own
//! result and one bad event never refuses the others. Events are admitted in the batch's order,
//! each judged after the ones before it that were accepted, so a batch may carry a handoff
//! proposal and then its acceptance.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use custody_contracts::ContractRules;
use custody_ledger::codec::{self, EVENT_SIZE_BYTES_MAX};
use custody_ledger::event::{EncodedEvent, VerifiedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::KeyCache;
use custody_ledger::model::{EventId, SignedEvent};
use custody_ledger::reject::{codes, Rejection};
use custody_ledger::store::Store;
use custody_ledger::view::{BatchOutcome, BatchResult, BatchStatus, Receipt};
use custody_ledger::Timestamp;
use custody_sled::SledStore;
use tokio::sync::{broadcast, Mutex};

use crate::admission::{self, Refusal};
use crate::api::{
    blocking, body_form, body_unreadable, mempool_refusal, only_params, query_pairs, receipt_at,
    wait_param, ApiError, ApiState, BodyForm, QueryPairs, COMMIT_WAIT_MS_MAX,
};
use crate::clock::now;
use crate::consensus::host::Committed;
use crate::mempool::{Admission, Mempool, MempoolError};
use crate::metrics::Metrics;

pub use custody_ledger::view::{BATCH_BODY_BYTES_MAX, BATCH_EVENTS_MAX};

/// What became of one event offered to the node.
#[derive(Debug)]
pub(crate) enum Entered {
    /// In the mempool: admitted now, or already waiting there.
    Accepted(EventId),
    /// Already on the ledger, or the same event earlier in the same batch.
    Duplicate(EventId),
    /// Not admitted: the problem `POST /v1/events` answers for it (and its id, when the
    /// element was an event at all).
    Refused(Option<EventId>, ApiError),
}

/// `POST /v1/events/batch[?wait=commit]`.
pub(crate) async fn submit_batch(
    State(state): State<ApiState>,
    query: QueryPairs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_unreadable(e, BATCH_BODY_BYTES_MAX))?;
    let pairs = query_pairs(query)?;
    only_params(&pairs, &["wait"])?;
    let wait = wait_param(&pairs)?;
    let events = match body_form(&headers)? {
        BodyForm::Json => json_batch(&body)?,
        BodyForm::Canonical => canonical_batch(&body)?,
    };
    // Subscribe before admitting, so a commit cannot slip between the two.
    let mut commits = state.committed.subscribe();
    let entered = enter_batch(&state, events).await;
    // Any refusal for load tells the client when to come back, as the single endpoint does.
    let retry_after_s = entered.iter().find_map(|e| match e {
        Entered::Refused(_, error) => error.retry_after_s(),
        _ => None,
    });
    let mut outcome = outcome(entered);
    if wait {
        wait_for_commits(&state, &mut commits, &mut outcome.results).await?;
    }
    let mut response = Json(outcome).into_response();
    if let Some(seconds) = retry_after_s {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

fn whole_batch(status: StatusCode, code: &str, detail: String) -> ApiError {
    ApiError::new(status, code, Some("body".into()), detail)
}

fn too_many() -> ApiError {
    whole_batch(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch.too_many",
        format!("a batch holds at most {BATCH_EVENTS_MAX} events"),
    )
}

fn empty() -> ApiError {
    whole_batch(
        StatusCode::BAD_REQUEST,
        "batch.empty",
        "the batch holds no event".into(),
    )
}

/// A JSON array of signed events. Each element is read exactly as `POST /v1/events` reads its
/// body; one that is not a signed event is refused alone (`event.malformed`).
fn json_batch(body: &[u8]) -> Result<Vec<Result<EncodedEvent, Rejection>>, ApiError> {
    // Checks the whole body is one JSON array and counts it before reading any event.
    let count = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body)
        .map_err(|e| {
            whole_batch(
                StatusCode::BAD_REQUEST,
                "request.body",
                format!("the body is not a JSON array of signed events: {e}"),
            )
        })?
        .len();
    if count > BATCH_EVENTS_MAX {
        return Err(too_many());
    }
    if count == 0 {
        return Err(empty());
    }
    let elements = array_elements(body);
    if elements.len() != count {
        return Err(whole_batch(
            StatusCode::BAD_REQUEST,
            "request.body",
            format!("the array's {count} elements could not be told apart"),
        ));
    }
    Ok(elements.into_iter().map(json_event).collect())
}

fn json_event(text: &[u8]) -> Result<EncodedEvent, Rejection> {
    let event: SignedEvent = serde_json::from_slice(text).map_err(|e| {
        Rejection::new(
            codes::EVENT_MALFORMED,
            "event",
            format!("not a signed event in JSON: {e}"),
        )
    })?;
    EncodedEvent::from_untrusted(event)
}

/// The text of each element of `text`, which `serde_json` has already accepted as one JSON
/// array: the commas and the closing bracket at depth one, outside strings, end the elements.
/// Each element is then parsed on its own, so that a bad one does not spoil the others and
/// each is held to the single endpoint's exact parsing (duplicate keys included).
fn array_elements(text: &[u8]) -> Vec<&[u8]> {
    let mut elements = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0usize);
    for (at, &byte) in text.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 {
                    start = at + 1;
                }
            }
            b',' if depth == 1 => {
                elements.push(&text[start..at]);
                start = at + 1;
            }
            b']' | b'}' => {
                if depth == 1 && !text[start..at].trim_ascii().is_empty() {
                    elements.push(&text[start..at]);
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    elements
}

/// Canonical signed-event bytes, one event after another. Each is framed by decoding it
/// (`codec::prefix_len`), then decoded strictly as `POST /v1/events` decodes its body, so a
/// non-canonical event is refused alone; bytes that do not frame refuse the whole batch, since
/// nothing after them can be found.
fn canonical_batch(body: &[u8]) -> Result<Vec<Result<EncodedEvent, Rejection>>, ApiError> {
    let mut events = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        if events.len() == BATCH_EVENTS_MAX {
            return Err(too_many());
        }
        let rest = &body[offset..];
        let len = codec::prefix_len::<SignedEvent>(rest, EVENT_SIZE_BYTES_MAX).map_err(|e| {
            whole_batch(
                StatusCode::BAD_REQUEST,
                "batch.framing",
                format!(
                    "event {} (from byte {offset}) is not a signed event of at most \
                     {EVENT_SIZE_BYTES_MAX} bytes, so the batch cannot be split: {e}",
                    events.len()
                ),
            )
        })?;
        events.push(EncodedEvent::decode_untrusted(&rest[..len]));
        offset += len;
    }
    if events.is_empty() {
        return Err(empty());
    }
    Ok(events)
}

/// Offers `events` to the node in order: the admission checks (`admission::verify`, then
/// `admission::judge` after the mempool's waiting events of the same shipment, which by then
/// include the batch's earlier accepted ones), the mempool, and gossip of what was added. An
/// element that is already an error is refused with it. One result per element, in order.
///
/// The batch's work runs in one task on the blocking pool; this function is the unit a queue
/// of admissions can take over.
pub(crate) async fn enter_batch(
    state: &ApiState,
    events: Vec<Result<EncodedEvent, Rejection>>,
) -> Vec<Entered> {
    let count = events.len();
    let admitter = Admitter::new(state);
    let (entered, added) = match blocking(move || admitter.run(events)).await {
        Ok(done) => done,
        Err(_) => {
            let refused = (0..count).map(|_| Entered::Refused(None, unavailable("admission")));
            return refused.collect();
        }
    };
    for bytes in added {
        // Gossip is best effort: the proposer of any round includes what reached it.
        let _ = state.outbound.try_send(bytes);
    }
    entered
}

fn unavailable(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "node.unavailable",
        None,
        format!("the node could not complete the {what}; retry"),
    )
}

/// What the admission of a batch needs, taken from the API's state once.
struct Admitter {
    store: Arc<SledStore>,
    genesis: Arc<Genesis>,
    rules: ContractRules,
    mempool: Arc<Mutex<Mempool>>,
    keys: Arc<KeyCache>,
    metrics: Arc<Metrics>,
    at: Timestamp,
}

/// An element after the checks that need no state.
enum Checked {
    /// Its result is known.
    Done(Entered),
    /// The same id as an earlier element.
    Again(EventId),
    /// Signature checked; to be judged in order. Boxed: an event is large beside the others.
    Verified(Box<VerifiedEvent>),
}

impl Admitter {
    fn new(state: &ApiState) -> Admitter {
        Admitter {
            store: state.store.clone(),
            genesis: state.genesis.clone(),
            rules: read_rules(&state.rules),
            mempool: state.mempool.clone(),
            keys: state.keys.clone(),
            metrics: state.metrics.clone(),
            at: now(),
        }
    }

    /// Runs on the blocking pool: the mempool's lock is taken with `blocking_lock`, only around
    /// its reads and inserts, never across a signature check or a store read.
    fn run(self, events: Vec<Result<EncodedEvent, Rejection>>) -> (Vec<Entered>, Vec<Vec<u8>>) {
        let checked = self.check_all(events);
        let mut added = Vec::new();
        // A full mempool or a signer at its quota refuses the rest too, so that the batch's
        // later events, which may depend on the refused one, are resubmitted after it.
        let mut load: Option<MempoolError> = None;
        let entered = checked
            .into_iter()
            .map(|element| match (element, &load) {
                (Checked::Done(entered), _) => entered,
                (Checked::Again(id), None) => Entered::Duplicate(id),
                (Checked::Again(id), Some(error)) => {
                    Entered::Refused(Some(id), mempool_refusal(error.clone()))
                }
                (Checked::Verified(event), Some(error)) => {
                    Entered::Refused(Some(event.id()), mempool_refusal(error.clone()))
                }
                (Checked::Verified(event), None) => self.admit(*event, &mut added, &mut load),
            })
            .collect();
        (entered, added)
    }

    /// The checks that need no state, for every element: errors, repeats within the batch,
    /// events already waiting in the mempool, shape, then each signature with the strict check
    /// `POST /v1/events` and gossip use. Strict, not a batch equation: a batch equation can
    /// pass a crafted signature the strict check refuses, and nothing enters a mempool
    /// without the strict check (`docs/PROTOCOL.md` §5.3). The key cache spares the repeated
    /// key parsing, which is what a batch of one signer's events shares.
    fn check_all(&self, events: Vec<Result<EncodedEvent, Rejection>>) -> Vec<Checked> {
        let held: BTreeSet<EventId> = {
            let mempool = self.mempool.blocking_lock();
            let ids = events.iter().flatten().map(EncodedEvent::id);
            ids.filter(|id| mempool.contains(id)).collect()
        };
        let mut seen = BTreeSet::new();
        events
            .into_iter()
            .map(|event| match event {
                Err(rejection) => Checked::Done(self.refuse(None, rejection)),
                Ok(event) if !seen.insert(event.id()) => Checked::Again(event.id()),
                Ok(event) if held.contains(&event.id()) => {
                    Checked::Done(Entered::Accepted(event.id()))
                }
                Ok(event) => {
                    let id = event.id();
                    match admission::verify(event, &self.genesis, &self.keys) {
                        Ok(verified) => Checked::Verified(Box::new(verified)),
                        Err(rejection) => Checked::Done(self.refuse(Some(id), rejection)),
                    }
                }
            })
            .collect()
    }

    /// Judges one verified event after the mempool's waiting events of its shipment, and puts
    /// it in the mempool if the next block would take it.
    fn admit(
        &self,
        event: VerifiedEvent,
        added: &mut Vec<Vec<u8>>,
        load: &mut Option<MempoolError>,
    ) -> Entered {
        let id = event.id();
        let pending = match event.event().event.kind.shipment_id() {
            Some(shipment) => self.mempool.blocking_lock().shipment_events(shipment),
            None => Vec::new(),
        };
        let verdict = admission::judge(
            self.store.as_ref(),
            &self.genesis,
            &self.rules,
            &pending,
            &event,
            self.at,
        );
        match verdict {
            Ok(()) => {}
            Err(Refusal::Duplicate) => return Entered::Duplicate(id),
            Err(Refusal::Invalid(rejection)) => return self.refuse(Some(id), rejection),
            Err(Refusal::Unavailable(cause)) => {
                let error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "node.unavailable",
                    None,
                    cause.to_string(),
                );
                return Entered::Refused(Some(id), error);
            }
        }
        let bytes = event.bytes().to_vec();
        match self.mempool.blocking_lock().insert(event) {
            Ok(Admission::Added) => added.push(bytes),
            Ok(Admission::Duplicate) => {}
            Err(error @ MempoolError::TooLarge { .. }) => {
                return Entered::Refused(Some(id), mempool_refusal(error))
            }
            Err(error) => {
                *load = Some(error.clone());
                return Entered::Refused(Some(id), mempool_refusal(error));
            }
        }
        Entered::Accepted(id)
    }

    /// A refusal by the admission checks, counted by its code as every refused event is.
    fn refuse(&self, id: Option<EventId>, rejection: Rejection) -> Entered {
        self.metrics.reject(rejection.code.as_str());
        Entered::Refused(id, ApiError::rejected(rejection))
    }
}

fn read_rules(rules: &RwLock<ContractRules>) -> ContractRules {
    rules.read().expect("rules lock").clone()
}

/// The answer's body before any wait: one result per element, and the counts.
fn outcome(entered: Vec<Entered>) -> BatchOutcome {
    let results: Vec<BatchResult> = entered
        .into_iter()
        .enumerate()
        .map(|(index, entered)| result(index as u64, entered))
        .collect();
    let count = |status| results.iter().filter(|r| r.status == status).count() as u64;
    BatchOutcome {
        accepted: count(BatchStatus::Accepted),
        duplicate: count(BatchStatus::Duplicate),
        refused: count(BatchStatus::Refused),
        results,
    }
}

fn result(index: u64, entered: Entered) -> BatchResult {
    let plain = |event_id, status| BatchResult {
        index,
        event_id,
        status,
        code: None,
        field: None,
        detail: None,
        receipt: None,
    };
    match entered {
        Entered::Accepted(id) => plain(Some(id), BatchStatus::Accepted),
        Entered::Duplicate(id) => plain(Some(id), BatchStatus::Duplicate),
        Entered::Refused(id, error) => {
            let problem = error.problem();
            BatchResult {
                code: Some(problem.code.clone()),
                field: problem.field.clone(),
                detail: Some(problem.detail.clone()),
                ..plain(id, BatchStatus::Refused)
            }
        }
    }
}

/// `?wait=commit`: waits until every accepted event is committed or [`COMMIT_WAIT_MS_MAX`]
/// passed, then gives every committed event of the batch (accepted or duplicate) its receipt
/// to the block that committed it. Events still waiting keep status `accepted` and no receipt.
async fn wait_for_commits(
    state: &ApiState,
    commits: &mut broadcast::Receiver<Committed>,
    results: &mut [BatchResult],
) -> Result<(), ApiError> {
    let accepted = results
        .iter()
        .filter(|r| r.status == BatchStatus::Accepted)
        .filter_map(|r| r.event_id);
    let mut waiting: BTreeSet<EventId> = accepted.collect();
    // Some may have committed between their admission and now.
    drop_committed(state, &mut waiting).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(COMMIT_WAIT_MS_MAX);
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, commits.recv()).await {
            Ok(Ok(committed)) => waiting.retain(|id| !committed.ids.contains(id)),
            // Missed some announcements: look in the store instead.
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                drop_committed(state, &mut waiting).await?
            }
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
        }
    }
    let candidates: Vec<EventId> = results
        .iter()
        .filter(|r| r.status != BatchStatus::Refused)
        .filter_map(|r| r.event_id)
        .filter(|id| !waiting.contains(id))
        .collect();
    let receipts = receipts(state, candidates).await?;
    for result in results.iter_mut() {
        if let Some(id) = result
            .event_id
            .filter(|_| result.status != BatchStatus::Refused)
        {
            // A repeat within the batch gets the receipt too, hence the clone.
            result.receipt = receipts.get(&id).cloned();
        }
    }
    Ok(())
}

/// Removes from `waiting` the events the store already holds.
async fn drop_committed(state: &ApiState, waiting: &mut BTreeSet<EventId>) -> Result<(), ApiError> {
    let (store, ids) = (state.store.clone(), waiting.clone());
    let committed = blocking(move || {
        ids.into_iter()
            .filter(|id| store.contains_event(id).unwrap_or(false))
            .collect::<Vec<EventId>>()
    })
    .await?;
    for id in committed {
        waiting.remove(&id);
    }
    Ok(())
}

/// The receipts of those of `ids` that are committed, read off the async workers.
async fn receipts(
    state: &ApiState,
    ids: Vec<EventId>,
) -> Result<BTreeMap<EventId, Receipt>, ApiError> {
    let state = state.clone();
    blocking(move || {
        let mut receipts = BTreeMap::new();
        for id in ids {
            if let Some((receipt, _)) = receipt_at(&state, &id, None)? {
                receipts.insert(id, receipt);
            }
        }
        Ok::<_, ApiError>(receipts)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_elements_split_at_top_level_commas_only() {
        let text = br#" [ {"a": [1, 2], "b": "x,]}\" y"}, 7 ,"s",[[]] ] "#;
        let elements: Vec<&str> = array_elements(text)
            .into_iter()
            .map(|e| std::str::from_utf8(e).unwrap().trim())
            .collect();
        assert_eq!(
            elements,
            vec![r#"{"a": [1, 2], "b": "x,]}\" y"}"#, "7", r#""s""#, "[[]]"]
        );
        assert!(array_elements(b"[ ]").is_empty());
        assert_eq!(array_elements(b"[1]"), vec![&b"1"[..]]);
    }

    #[test]
    fn whole_batch_problems_name_the_body() {
        let code = |r: Result<Vec<Result<EncodedEvent, Rejection>>, ApiError>| {
            let error = r.expect_err("a whole-batch problem");
            assert_eq!(error.problem().field.as_deref(), Some("body"));
            error.problem().code.clone()
        };
        assert_eq!(code(json_batch(b"{not json")), "request.body");
        assert_eq!(code(json_batch(br#"{"event": 1}"#)), "request.body");
        assert_eq!(code(json_batch(b"[]")), "batch.empty");
        let many = format!("[{}]", vec!["1"; BATCH_EVENTS_MAX + 1].join(","));
        assert_eq!(code(json_batch(many.as_bytes())), "batch.too_many");
        assert_eq!(code(canonical_batch(b"")), "batch.empty");
        assert_eq!(code(canonical_batch(&[0xFF; 40])), "batch.framing");
    }

    #[test]
    fn an_element_that_is_not_an_event_is_refused_alone() {
        let events = json_batch(br#"[5, {"event": null}]"#).expect("an array");
        assert_eq!(events.len(), 2);
        for event in events {
            assert_eq!(
                event.expect_err("not an event").code,
                codes::EVENT_MALFORMED
            );
        }
    }
}
