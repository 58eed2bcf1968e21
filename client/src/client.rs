//! The HTTP client of a node's API v1.

use std::fmt;
use std::time::Duration;

use custody_ledger::bundle::{Bundle, Checkpoint};
use custody_ledger::event::EncodedEvent;
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::Keypair;
use custody_ledger::model::{EventId, EventKind, MemberId, PersonalDataErased, ShipmentId};
use custody_ledger::personal::Disclosure;
use custody_ledger::state::ShipmentState;
use custody_ledger::view::{
    Accepted, BatchOutcome, BlockView, ConsistencyView, EventEntry, EventView, MemberView,
    NetworkView, Page, Problem, Quote, QuoteRequest, Receipt, ShipmentList, Status,
};
use custody_ledger::PublicKey;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

/// How long one request may take, from connecting to the last byte of the answer.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Largest answer body the client reads; larger answers are refused with
/// [`ClientError::TooLarge`].
pub const RESPONSE_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most pages [`Client::all_shipment_events`] follows before giving up.
pub const PAGES_MAX: usize = 1_000;

/// Most characters of a non-problem error body kept in the error's detail.
const TEXT_DETAIL_CHARS_MAX: usize = 500;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error status. `problem` is the node's RFC 9457 problem
    /// document; when the body was not one, it is made up from the status and the body's
    /// text, with an empty `code`.
    #[error("{}", describe_problem(*status, problem))]
    Problem {
        /// The HTTP status.
        status: u16,
        /// The problem document (boxed, to keep results small).
        problem: Box<Problem>,
    },
    /// The request could not be sent or the answer not received (connection refused,
    /// timeout, TLS failure, bad base URL).
    #[error("cannot reach the node: {}", error_chain(.0))]
    Transport(#[source] reqwest::Error),
    /// The answer arrived but is not what the API promises.
    #[error("unexpected answer from the node: {0}")]
    Decode(String),
    /// The answer is larger than [`RESPONSE_SIZE_BYTES_MAX`].
    #[error("the node's answer is larger than the limit of {RESPONSE_SIZE_BYTES_MAX} bytes")]
    TooLarge,
    /// The request cannot be expressed: a base URL that is not http(s), or an id that cannot
    /// be a path segment.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// What failed, with the causes under it, without the variant's own words.
    pub fn detail(&self) -> String {
        match self {
            ClientError::Transport(error) => error_chain(error),
            other => other.to_string(),
        }
    }

    /// The problem's stable code, if the node answered with a problem document.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Problem { problem, .. } if !problem.code.is_empty() => Some(&problem.code),
            _ => None,
        }
    }

    /// The HTTP status, if the node answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `422 contract.hs_code_unknown (field event.kind…hs_code): message`.
fn describe_problem(status: u16, problem: &Problem) -> String {
    let mut text = status.to_string();
    if problem.code.is_empty() {
        text.push(' ');
        text.push_str(&problem.title);
    } else {
        text.push(' ');
        text.push_str(&problem.code);
    }
    if let Some(field) = &problem.field {
        text.push_str(&format!(" (field {field})"));
    }
    if !problem.detail.is_empty() {
        text.push_str(": ");
        text.push_str(&problem.detail);
    }
    text
}

/// What a submission achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// `200`: the event is committed; its receipt proves where.
    Committed(Receipt),
    /// `202`: the node admitted the event and it waits for a block.
    Pending(Accepted),
}

impl Submitted {
    /// The submitted event's id.
    pub fn event_id(&self) -> EventId {
        match self {
            Submitted::Committed(receipt) => receipt.event_id,
            Submitted::Pending(accepted) => accepted.event_id,
        }
    }
}

/// A client of one node's HTTP API v1. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl Client {
    /// A client of the node at `base_url` (`http://127.0.0.1:8080`, possibly with a path
    /// prefix). Requests time out after [`REQUEST_TIMEOUT_MS`]; TLS is rustls with the
    /// Mozilla root certificates.
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        let base = Url::parse(base_url)
            .map_err(|e| ClientError::InvalidRequest(format!("node URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::InvalidRequest(format!(
                "node URL {base_url:?} is not an http or https URL"
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ClientError::InvalidRequest(format!(
                "node URL {base_url:?} must not have a query or fragment"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .user_agent(concat!("custody-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Client { http, base })
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `POST /v1/events`: submits a signed event in its canonical binary form. With `wait`, asks the node to
    /// answer once the event is committed (`?wait=commit`); the node still answers
    /// [`Submitted::Pending`] if the commit takes longer than it waits.
    pub async fn submit(&self, event: &EncodedEvent, wait: bool) -> Result<Submitted, ClientError> {
        let mut url = self.url(&["v1", "events"])?;
        if wait {
            url.query_pairs_mut().append_pair("wait", "commit");
        }
        // The canonical bytes, which are what was signed: smaller than JSON, and the node
        // decodes them without re-encoding.
        let request = self
            .http
            .request(Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(event.bytes().to_vec());
        let (status, body) = self.send(request).await?;
        let submitted = match status {
            StatusCode::OK => Submitted::Committed(decode::<Receipt>(&body)?),
            StatusCode::ACCEPTED => Submitted::Pending(decode::<Accepted>(&body)?),
            other => {
                return Err(ClientError::Decode(format!(
                    "status {other} is not an answer to a submission"
                )))
            }
        };
        if submitted.event_id() != event.id() {
            return Err(ClientError::Decode(format!(
                "the node answered for event {}, the submitted event is {}",
                submitted.event_id(),
                event.id()
            )));
        }
        Ok(submitted)
    }

    /// `POST /v1/events/batch`: submits `events` in one request, as their canonical bytes one
    /// after another, and answers what became of each, in order. The node takes at most
    /// [`BATCH_EVENTS_MAX`](custody_ledger::view::BATCH_EVENTS_MAX) events and
    /// [`BATCH_BODY_BYTES_MAX`](custody_ledger::view::BATCH_BODY_BYTES_MAX) bytes a request
    /// ([`batch_chunks`] splits a longer list). One refused event does not refuse the others:
    /// refusals are in the outcome, not errors. With `wait`, asks the node to answer once the
    /// accepted events are committed (`?wait=commit`); those that are carry their receipt.
    pub async fn submit_batch(
        &self,
        events: &[EncodedEvent],
        wait: bool,
    ) -> Result<BatchOutcome, ClientError> {
        let mut url = self.url(&["v1", "events", "batch"])?;
        if wait {
            url.query_pairs_mut().append_pair("wait", "commit");
        }
        let body: Vec<u8> = events.iter().flat_map(|e| e.bytes()).copied().collect();
        let request = self
            .http
            .request(Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let (status, body) = self.send(request).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Decode(format!(
                "status {status} where 200 was expected"
            )));
        }
        let outcome: BatchOutcome = decode(&body)?;
        check_outcome(&outcome, events)?;
        Ok(outcome)
    }

    /// `POST /v1/quote`: the landed cost of a draft shipment (duty, tax, regime, who pays),
    /// computed by the node with the rules and the reference data in force at the draft's
    /// `at` (the node's clock without it). Nothing is written to the ledger. A draft the
    /// rules refuse is a [`ClientError::Problem`] whose `field` names the draft's field.
    pub async fn quote(&self, draft: &QuoteRequest) -> Result<Quote, ClientError> {
        let body = serde_json::to_vec(draft).map_err(|e| ClientError::Decode(e.to_string()))?;
        let request = self
            .http
            .request(Method::POST, self.url(&["v1", "quote"])?)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, body) = self.send(request).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Decode(format!(
                "status {status} where 200 was expected"
            )));
        }
        decode(&body)
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get(self.url(&["v1", "status"])?).await
    }

    /// `GET /v1/events/{id}`: a committed event with its proof to the current head.
    pub async fn event(&self, id: &EventId) -> Result<EventView, ClientError> {
        self.get(self.url(&["v1", "events", &id.to_hex()])?).await
    }

    /// `GET /v1/shipments/{id}`: a shipment's current state.
    pub async fn shipment(&self, id: &ShipmentId) -> Result<ShipmentState, ClientError> {
        self.get(self.url(&["v1", "shipments", checked_segment(id.as_str())?])?)
            .await
    }

    /// `GET /v1/shipments`: one page of the shipments that match `query`, in id order.
    pub async fn shipments(&self, query: &ShipmentQuery) -> Result<ShipmentList, ClientError> {
        let mut url = self.url(&["v1", "shipments"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query.pairs() {
                pairs.append_pair(name, &value);
            }
        }
        self.get(url).await
    }

    /// `GET /v1/shipments/{id}/events`: one page of a shipment's events, oldest first.
    /// `after` is the previous page's `next`; `limit` asks for at most that many items (the
    /// node caps it).
    pub async fn shipment_events(
        &self,
        id: &ShipmentId,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<EventEntry>, ClientError> {
        let url = self.url(&["v1", "shipments", checked_segment(id.as_str())?, "events"])?;
        self.get(paged(url, after, limit)).await
    }

    /// Every event of a shipment, following `next` cursors for at most [`PAGES_MAX`] pages.
    pub async fn all_shipment_events(
        &self,
        id: &ShipmentId,
    ) -> Result<Vec<EventEntry>, ClientError> {
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..PAGES_MAX {
            let page = self.shipment_events(id, after.as_deref(), None).await?;
            events.extend(page.items);
            match page.next {
                None => return Ok(events),
                Some(next) if after.as_deref() == Some(next.as_str()) => {
                    return Err(ClientError::Decode(format!(
                        "the cursor {next:?} does not advance"
                    )))
                }
                Some(next) => after = Some(next),
            }
        }
        Err(ClientError::Decode(format!(
            "shipment {id} has more than {PAGES_MAX} pages of events"
        )))
    }

    /// `GET /v1/shipments/{id}/bundle`: the shipment's self-contained provenance bundle.
    pub async fn bundle(&self, id: &ShipmentId) -> Result<Bundle, ClientError> {
        self.get(self.url(&["v1", "shipments", checked_segment(id.as_str())?, "bundle"])?)
            .await
    }

    /// `GET /v1/members`: every member as the ledger knows it now.
    pub async fn members(&self) -> Result<Vec<MemberView>, ClientError> {
        self.get(self.url(&["v1", "members"])?).await
    }

    /// `GET /v1/members/{id}`: one member as the ledger knows it now.
    pub async fn member(&self, id: &MemberId) -> Result<MemberView, ClientError> {
        self.get(self.url(&["v1", "members", checked_segment(id.as_str())?])?)
            .await
    }

    /// `GET /v1/network`: validators with their last proposal and signature, recent blocks,
    /// events per minute and the node's health.
    pub async fn network(&self) -> Result<NetworkView, ClientError> {
        self.get(self.url(&["v1", "network"])?).await
    }

    /// `GET /v1/genesis`: the node's genesis document. Check its hash against one obtained
    /// elsewhere before trusting the node with it.
    pub async fn genesis(&self) -> Result<Genesis, ClientError> {
        self.get(self.url(&["v1", "genesis"])?).await
    }

    /// `GET /v1/members/{key}/events`: one page of the events signed with a key.
    pub async fn member_events(
        &self,
        key: &PublicKey,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<EventEntry>, ClientError> {
        let url = self.url(&["v1", "members", &key.to_hex(), "events"])?;
        self.get(paged(url, after, limit)).await
    }

    /// `GET /v1/blocks/{height}`: a committed block with its certificate and event bytes.
    pub async fn block(&self, height: u64) -> Result<BlockView, ClientError> {
        self.get(self.url(&["v1", "blocks", &height.to_string()])?)
            .await
    }

    /// `GET /v1/blocks/head`: the latest block.
    pub async fn head(&self) -> Result<BlockView, ClientError> {
        self.get(self.url(&["v1", "blocks", "head"])?).await
    }

    /// `GET /v1/log/checkpoint`: the latest checkpoint (header and certificate).
    pub async fn checkpoint(&self) -> Result<Checkpoint, ClientError> {
        self.get(self.url(&["v1", "log", "checkpoint"])?).await
    }

    /// `GET /v1/log/consistency?from=&to=`: proof that the log of `to` events extends the
    /// log of `from` events.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyView, ClientError> {
        let mut url = self.url(&["v1", "log", "consistency"])?;
        url.query_pairs_mut()
            .append_pair("from", &from.to_string())
            .append_pair("to", &to.to_string());
        self.get(url).await
    }

    /// `POST /v1/shipments/{id}/personal`: gives the node disclosures of a shipment's
    /// personal data, signed with `key` (a party member's key). The node checks each against
    /// its event's commitment and keeps them off the ledger.
    pub async fn disclose(
        &self,
        key: &Keypair,
        shipment: &ShipmentId,
        disclosures: Vec<Disclosure>,
    ) -> Result<crate::personal::Stored, ClientError> {
        let request = crate::personal::sign_write(key, shipment, disclosures);
        let body = serde_json::to_vec(&request).map_err(|e| ClientError::Decode(e.to_string()))?;
        let url = self.url(&[
            "v1",
            "shipments",
            checked_segment(shipment.as_str())?,
            "personal",
        ])?;
        let request = self
            .http
            .request(Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, body) = self.send(request).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Decode(format!(
                "status {status} where 200 was expected"
            )));
        }
        decode(&body)
    }

    /// `GET /v1/shipments/{id}/personal`: the disclosures the node holds, read with a request
    /// signed by `key` now. A 410 problem (`personal.erased`) once they were erased.
    pub async fn personal(
        &self,
        key: &Keypair,
        shipment: &ShipmentId,
    ) -> Result<crate::personal::PersonalView, ClientError> {
        let url = self.url(&[
            "v1",
            "shipments",
            checked_segment(shipment.as_str())?,
            "personal",
        ])?;
        let mut request = self.http.request(Method::GET, url);
        for (name, value) in crate::personal::read_headers(key, shipment, crate::personal::now_ms())
        {
            request = request.header(name, value);
        }
        let (status, body) = self.send(request).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Decode(format!(
                "status {status} where 200 was expected"
            )));
        }
        decode(&body)
    }

    /// Erases a shipment's personal data: signs a `PersonalDataErased` event (the seller's or
    /// an admin's key), submits it and waits for its commit. Every node then deletes the
    /// values and salts it holds; the ledger keeps the commitments, and every proof verifies.
    pub async fn erase(
        &self,
        signer: &crate::build::Signer,
        shipment: &ShipmentId,
    ) -> Result<Submitted, ClientError> {
        let kind = EventKind::PersonalDataErased(PersonalDataErased {
            shipment_id: shipment.clone(),
        });
        let now = custody_ledger::Timestamp(crate::personal::now_ms());
        self.submit(&signer.sign(kind, now), true).await
    }

    /// The base URL with `segments` appended, each percent-encoded as one segment.
    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidRequest("the node URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        let (status, body) = self.send(self.http.request(Method::GET, url)).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Decode(format!(
                "status {status} where 200 was expected"
            )));
        }
        decode(&body)
    }

    /// Sends a request and reads the answer with the size cap; error statuses become
    /// [`ClientError::Problem`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let mut response = request.send().await.map_err(ClientError::Transport)?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|length| length > RESPONSE_SIZE_BYTES_MAX as u64)
        {
            return Err(ClientError::TooLarge);
        }
        let mut body = Vec::new();
        // Ends at the end of the body, at the size cap, or at the request timeout.
        while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
            if body.len() + chunk.len() > RESPONSE_SIZE_BYTES_MAX {
                return Err(ClientError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_client_error() || status.is_server_error() {
            return Err(problem(status, &body));
        }
        Ok((status, body))
    }
}

/// Splits `events` into runs the batch endpoint takes in one request: at most
/// [`BATCH_EVENTS_MAX`](custody_ledger::view::BATCH_EVENTS_MAX) events and
/// [`BATCH_BODY_BYTES_MAX`](custody_ledger::view::BATCH_BODY_BYTES_MAX) canonical bytes each,
/// in order. An event too large for any batch is alone in its run, for the node to refuse.
pub fn batch_chunks(events: &[EncodedEvent]) -> Vec<&[EncodedEvent]> {
    use custody_ledger::view::{BATCH_BODY_BYTES_MAX, BATCH_EVENTS_MAX};
    let mut chunks = Vec::new();
    let (mut start, mut size_bytes) = (0, 0);
    for (at, event) in events.iter().enumerate() {
        let full = at - start == BATCH_EVENTS_MAX
            || size_bytes + event.bytes().len() > BATCH_BODY_BYTES_MAX;
        if full && at > start {
            chunks.push(&events[start..at]);
            (start, size_bytes) = (at, 0);
        }
        size_bytes += event.bytes().len();
    }
    if start < events.len() {
        chunks.push(&events[start..]);
    }
    chunks
}

/// Checks that a batch's answer speaks of the events sent, one result each, in order.
fn check_outcome(outcome: &BatchOutcome, events: &[EncodedEvent]) -> Result<(), ClientError> {
    if outcome.results.len() != events.len() {
        return Err(ClientError::Decode(format!(
            "the node answered {} results for {} events",
            outcome.results.len(),
            events.len()
        )));
    }
    for (at, (result, event)) in outcome.results.iter().zip(events).enumerate() {
        let same_event = result.event_id.is_none_or(|id| id == event.id());
        if result.index != at as u64 || !same_event {
            return Err(ClientError::Decode(format!(
                "result {at} is not about event {at} ({})",
                event.id()
            )));
        }
    }
    Ok(())
}

/// Adds `after` and `limit` query parameters.
/// The search term and filters of `GET /v1/shipments`; every field left `None` is not sent.
/// Values go as written (status in its JSON spelling, times as RFC 3339 or a date): the node
/// checks them and answers a problem naming the parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentQuery {
    /// Exact shipment id, SSCC, transport document number or invoice number.
    pub q: Option<String>,
    /// Lifecycle status (`in_transit`, `delivered`, …).
    pub status: Option<String>,
    /// Member id of the seller.
    pub seller: Option<String>,
    /// Member id of the current custodian.
    pub custodian: Option<String>,
    /// Destination country code.
    pub destination: Option<String>,
    /// Registered at or after this time.
    pub from: Option<String>,
    /// Registered before this time.
    pub to: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// At most this many shipments (the node allows 1 to 100).
    pub limit: Option<u32>,
}

impl ShipmentQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let text = [
            ("q", &self.q),
            ("status", &self.status),
            ("seller", &self.seller),
            ("custodian", &self.custodian),
            ("destination", &self.destination),
            ("from", &self.from),
            ("to", &self.to),
            ("cursor", &self.cursor),
        ];
        let mut pairs: Vec<(&'static str, String)> = text
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
            .collect();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        pairs
    }
}

fn paged(mut url: Url, after: Option<&str>, limit: Option<u32>) -> Url {
    if after.is_some() || limit.is_some() {
        let mut query = url.query_pairs_mut();
        if let Some(after) = after {
            query.append_pair("after", after);
        }
        if let Some(limit) = limit {
            query.append_pair("limit", &limit.to_string());
        }
    }
    url
}

/// Refuses ids that a URL would read as `.` or `..` path segments.
fn checked_segment(id: &str) -> Result<&str, ClientError> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(ClientError::InvalidRequest(format!(
            "{id:?} cannot be used as an id in a URL"
        )));
    }
    Ok(id)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// The problem document of an error answer, or one made up from its status and text.
fn problem(status: StatusCode, body: &[u8]) -> ClientError {
    let problem = serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        let mut detail: String = text.trim().chars().take(TEXT_DETAIL_CHARS_MAX).collect();
        if text.trim().chars().count() > TEXT_DETAIL_CHARS_MAX {
            detail.push('…');
        }
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("error").into(),
            status: status.as_u16(),
            detail,
            code: String::new(),
            field: None,
        }
    });
    ClientError::Problem {
        status: status.as_u16(),
        problem: Box::new(problem),
    }
}

/// An error with its sources, which reqwest keeps the useful part in; a source whose text the
/// message already shows is not repeated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // Error chains are short; the bound only guards against a cyclic chain.
    for _ in 0..16 {
        let Some(cause) = source else { break };
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(base).expect("valid base URL")
    }

    #[test]
    fn urls_append_encoded_segments_to_the_base() {
        let c = client("http://127.0.0.1:8080");
        assert_eq!(
            c.url(&["v1", "shipments", "A B/C", "events"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/v1/shipments/A%20B%2FC/events"
        );
        let c = client("https://node.example/custody/");
        assert_eq!(
            c.url(&["v1", "status"]).unwrap().as_str(),
            "https://node.example/custody/v1/status"
        );
        let url = paged(c.url(&["v1", "x"]).unwrap(), Some("12&a=b"), Some(5));
        assert_eq!(url.query(), Some("after=12%26a%3Db&limit=5"));
        assert_eq!(paged(c.url(&["v1"]).unwrap(), None, None).query(), None);
    }

    #[test]
    fn bad_base_urls_and_dot_ids_are_refused() {
        for bad in ["ftp://x", "not a url", "mailto:a@b", "http://x/?q=1"] {
            assert!(
                matches!(Client::new(bad), Err(ClientError::InvalidRequest(_))),
                "{bad}"
            );
        }
        for bad in ["", ".", ".."] {
            assert!(checked_segment(bad).is_err(), "{bad:?}");
        }
        assert_eq!(checked_segment("...").ok(), Some("..."));
    }

    #[test]
    fn problems_display_code_field_and_detail() {
        let body = br#"{"type":"urn:custody:problem:hs.unknown","title":"Unprocessable Entity",
            "status":422,"detail":"6109.99 is not in HS2022","code":"hs.unknown",
            "field":"event.kind.ShipmentRegistered.invoice.lines[0].hs_code"}"#;
        let error = problem(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            error.to_string(),
            "422 hs.unknown (field event.kind.ShipmentRegistered.invoice.lines[0].hs_code): \
             6109.99 is not in HS2022"
        );
        assert_eq!(error.code(), Some("hs.unknown"));
        assert_eq!(error.status(), Some(422));

        let error = problem(StatusCode::BAD_GATEWAY, b"  upstream down\n");
        assert_eq!(error.to_string(), "502 Bad Gateway: upstream down");
        assert_eq!(error.code(), None);

        let long = "x".repeat(2 * TEXT_DETAIL_CHARS_MAX);
        let ClientError::Problem { problem, .. } = problem(StatusCode::NOT_FOUND, long.as_bytes())
        else {
            panic!("a problem")
        };
        assert_eq!(problem.detail.chars().count(), TEXT_DETAIL_CHARS_MAX + 1);
    }

    #[tokio::test]
    async fn an_unreachable_node_is_a_transport_error() {
        // A port that was just free: nothing listens on it once the listener is dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let c = client(&format!("http://127.0.0.1:{port}"));
        let error = c.status().await.expect_err("nothing listens");
        assert!(matches!(error, ClientError::Transport(_)), "{error}");
    }
}
