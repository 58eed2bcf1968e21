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
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use custody_ledger::codec::{self, EVENT_SIZE_BYTES_MAX};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{EventId, SignedEvent};
use custody_ledger::reject::{codes, Rejection};
use custody_ledger::store::Store;
use custody_ledger::view::{BatchOutcome, BatchResult, BatchStatus, Receipt};
use tokio::sync::broadcast;

use crate::admission::Refusal;
use crate::api::{
    blocking, body_form, body_unreadable, busy, mempool_refusal, only_params, query_pairs,
    receipts_in, receipts_of, wait_param, ApiError, ApiState, BodyForm, QueryPairs,
    COMMIT_WAIT_MS_MAX,
};
use crate::consensus::host::Committed;
use crate::intake;

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

/// Offers `events` to the node in order through the admission queue (`crate::intake`: the
/// checks, signatures in one batch, each event judged after the batch's earlier accepted
/// ones, then the mempool), and gossips what was added. An element that is already an error
/// is refused with it, and a repeat of an earlier element is a duplicate. One result per
/// element, in order.
pub(crate) async fn enter_batch(
    state: &ApiState,
    events: Vec<Result<EncodedEvent, Rejection>>,
) -> Vec<Entered> {
    let mut seen = BTreeSet::new();
    let mut queued = Vec::new();
    let settled: Vec<Option<Entered>> = events
        .into_iter()
        .map(|element| match element {
            Err(rejection) => Some(refuse(state, None, rejection)),
            Ok(event) if !seen.insert(event.id()) => Some(Entered::Duplicate(event.id())),
            Ok(event) => {
                queued.push(event);
                None
            }
        })
        .collect();
    let ids: Vec<EventId> = queued.iter().map(EncodedEvent::id).collect();
    let answers: Vec<Entered> = match state.intake.submit(queued).await {
        Ok(answers) => ids
            .into_iter()
            .zip(answers)
            .map(|(id, answer)| entered(state, id, answer))
            .collect(),
        Err(error) => ids
            .into_iter()
            .map(|id| Entered::Refused(Some(id), busy(error)))
            .collect(),
    };
    let mut answers = answers.into_iter();
    settled
        .into_iter()
        .map(|s| s.unwrap_or_else(|| answers.next().expect("one answer per queued event")))
        .collect()
}

/// The admission queue's answer on event `id`, as the API says it; an event added now is
/// gossiped (best effort: the proposer of any round includes what reached it).
fn entered(state: &ApiState, id: EventId, answer: intake::Entered) -> Entered {
    match answer {
        intake::Entered::Added(event) => {
            let _ = state.outbound.try_send(event.bytes().to_vec());
            Entered::Accepted(id)
        }
        intake::Entered::Waiting(_) => Entered::Accepted(id),
        intake::Entered::Refused(Refusal::Duplicate) => Entered::Duplicate(id),
        intake::Entered::Refused(Refusal::Invalid(rejection)) => refuse(state, Some(id), rejection),
        intake::Entered::Refused(Refusal::Unavailable(cause)) => Entered::Refused(
            Some(id),
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node.unavailable",
                None,
                cause.to_string(),
            ),
        ),
        intake::Entered::Pool(error) => Entered::Refused(Some(id), mempool_refusal(error)),
    }
}

/// A refusal by the admission checks, counted by its code as every refused event is.
fn refuse(state: &ApiState, id: Option<EventId>, rejection: Rejection) -> Entered {
    state.metrics.reject(rejection.code.as_str());
    Entered::Refused(id, ApiError::rejected(rejection))
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
    // The announcements of the blocks that committed waiting events, whose receipts are
    // built from them rather than read back (at most one per event waited for).
    let mut seen: Vec<Committed> = Vec::new();
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, commits.recv()).await {
            Ok(Ok(committed)) => {
                let before = waiting.len();
                waiting.retain(|id| !committed.ids.contains(id));
                if waiting.len() < before {
                    seen.push(committed);
                }
            }
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
    let receipts = receipts(state, candidates, seen).await?;
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

/// The receipts of those of `ids` that are committed, built off the async workers: from the
/// announcements `seen` for the events they committed, from the store for the rest (events
/// committed before the wait began, or announcements missed).
async fn receipts(
    state: &ApiState,
    ids: Vec<EventId>,
    seen: Vec<Committed>,
) -> Result<BTreeMap<EventId, Receipt>, ApiError> {
    let state = state.clone();
    blocking(move || {
        let wanted: BTreeSet<EventId> = ids.iter().copied().collect();
        let mut receipts = receipts_in(&state, &wanted, &seen)?;
        let rest: Vec<EventId> = ids
            .into_iter()
            .filter(|id| !receipts.contains_key(id))
            .collect();
        receipts.extend(receipts_of(&state, &rest)?);
        Ok(receipts)
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
