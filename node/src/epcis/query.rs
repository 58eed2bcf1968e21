//! The EPCIS 2.0 query interface: `GET /epcis/events` with the `SimpleEventQuery` parameters
//! Custody supports, `GET /epcis/events/{eventID}`, and the per-resource paths.
//!
//! Events are read in log order, which never changes once written: the page token is the log
//! index to resume at, so pages stay stable while events arrive (new events only ever come
//! after every token handed out). Each page reads at most [`SCAN_BUDGET`] log entries; if the
//! budget runs out before the page is full, the page holds what was found and a token. Every
//! event is written with `custody_epcis::to_epcis` and filtered on its EPCIS form, so a
//! filter matches exactly what the answer shows. Membership and reference data have no EPCIS
//! form and are never answered.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use custody_epcis::gs1::canonical_uri;
use custody_epcis::{to_epcis, CommittedEvent, MappingContext, ProposalContext, ShipmentContext};
use custody_ledger::genesis::Genesis;
use custody_ledger::model::{EventKind, MemberId, ShipmentRegistered, SignedEvent};
use custody_ledger::store::{Store, StoreError};
use custody_ledger::{Digest, PublicKey, Timestamp};
use custody_sled::SledStore;
use serde_json::{json, Value};

use super::{implementation, no_such_resource, query_parameter, read_only};
use crate::api::{blocking, ApiError, ApiState};
use crate::clock::now;

/// Events per page unless `perPage` says otherwise.
pub const PER_PAGE_DEFAULT: usize = 100;
/// Most events per page.
pub const PER_PAGE_MAX: usize = 1_000;
/// Most log entries one page reads.
pub const SCAN_BUDGET: u64 = 10_000;
/// The query name of the answers (the REST binding's `GET /events` is a `SimpleEventQuery`).
pub const QUERY_NAME: &str = "SimpleEventQuery";

/// The EPCIS 2.0 event types.
pub const EVENT_TYPES: [&str; 5] = [
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
];

/// The filter parameters supported (besides `EQ_bizTransaction_{type}`).
pub const FILTER_PARAMS: [&str; 12] = [
    "eventType",
    "GE_eventTime",
    "LT_eventTime",
    "GE_recordTime",
    "LT_recordTime",
    "EQ_bizStep",
    "EQ_disposition",
    "MATCH_epc",
    "MATCH_anyEPC",
    "EQ_bizLocation",
    "EQ_readPoint",
    "EQ_eventID",
];
/// The prefix of `EQ_bizTransaction_{type}`.
pub const BIZ_TRANSACTION_PARAM: &str = "EQ_bizTransaction_";
/// The paging parameters.
pub const PAGING_PARAMS: [&str; 2] = ["perPage", "nextPageToken"];

/// What events a query selects: every condition given must hold; a list matches any of its
/// values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    event_types: Option<Vec<String>>,
    ge_event_time: Option<i64>,
    lt_event_time: Option<i64>,
    ge_record_time: Option<i64>,
    lt_record_time: Option<i64>,
    biz_steps: Option<Vec<String>>,
    dispositions: Option<Vec<String>>,
    epcs: Option<Vec<String>>,
    any_epcs: Option<Vec<String>>,
    biz_locations: Option<Vec<String>>,
    read_points: Option<Vec<String>>,
    event_ids: Option<Vec<String>>,
    biz_transactions: Vec<(String, Vec<String>)>,
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// The log index to start at.
    pub start: u64,
    /// The most events in the page.
    pub per_page: usize,
}

/// A CBV term in its full web URI form: a short name (`shipping`) or a CBV 1.x URN
/// (`urn:epcglobal:cbv:bizstep:shipping`) becomes `https://ref.gs1.org/cbv/BizStep-shipping`;
/// any other URI is left as it is.
fn cbv_term(value: &str, kind: &str) -> String {
    let urn = format!("urn:epcglobal:cbv:{}:", kind.to_ascii_lowercase());
    if let Some(rest) = value.strip_prefix(&urn) {
        return format!("https://ref.gs1.org/cbv/{kind}-{rest}");
    }
    if !value.contains(':') {
        let rest = value.strip_prefix(&format!("{kind}-")).unwrap_or(value);
        return format!("https://ref.gs1.org/cbv/{kind}-{rest}");
    }
    value.to_owned()
}

/// `a|b|c`, none empty.
fn values(name: &str, text: &str) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = text.split('|').map(str::to_owned).collect();
    if list.iter().any(|v| v.trim().is_empty()) {
        return Err(query_parameter(
            name,
            format!("{name} needs one or more non-empty values separated by '|'"),
        ));
    }
    Ok(list)
}

fn time(name: &str, text: &str) -> Result<i64, ApiError> {
    custody_epcis::time::parse(text)
        .map(|t| t.utc_millis)
        .ok_or_else(|| {
            query_parameter(
                name,
                format!(
                    "{name} must be a date-time such as 2026-11-02T08:00:00.000Z or \
                     2026-11-02T09:00:00+01:00, not {text:?}"
                ),
            )
        })
}

/// Parses the query parameters. Unknown or unsupported parameters, duplicates and malformed
/// values are refused with a `QueryParameterException`; `paging` says whether `perPage` and
/// `nextPageToken` are allowed.
pub fn parse(pairs: &[(String, String)], paging: bool) -> Result<(Filter, Paging), ApiError> {
    let mut filter = Filter::default();
    let mut page = Paging {
        start: 0,
        per_page: PER_PAGE_DEFAULT,
    };
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in pairs {
        if !seen.insert(name.as_str()) {
            return Err(query_parameter(
                name,
                format!("{name} is given more than once; separate several values with '|'"),
            ));
        }
        let name = name.as_str();
        match name {
            "eventType" => {
                let types = values(name, value)?;
                if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
                    return Err(query_parameter(
                        name,
                        format!("{bad:?} is not an EPCIS event type; one of {EVENT_TYPES:?}"),
                    ));
                }
                filter.event_types = Some(types);
            }
            "GE_eventTime" => filter.ge_event_time = Some(time(name, value)?),
            "LT_eventTime" => filter.lt_event_time = Some(time(name, value)?),
            "GE_recordTime" => filter.ge_record_time = Some(time(name, value)?),
            "LT_recordTime" => filter.lt_record_time = Some(time(name, value)?),
            "EQ_bizStep" => {
                let list = values(name, value)?;
                filter.biz_steps = Some(list.iter().map(|v| cbv_term(v, "BizStep")).collect());
            }
            "EQ_disposition" => {
                let list = values(name, value)?;
                filter.dispositions = Some(list.iter().map(|v| cbv_term(v, "Disp")).collect());
            }
            "MATCH_epc" | "MATCH_anyEPC" => {
                let list = values(name, value)?;
                if let Some(pattern) = list.iter().find(|v| v.contains('*')) {
                    return Err(query_parameter(
                        name,
                        format!("EPC patterns ({pattern:?}) are not supported; give EPCs"),
                    ));
                }
                let list = Some(list.iter().map(|v| canonical_uri(v)).collect());
                if name == "MATCH_epc" {
                    filter.epcs = list;
                } else {
                    filter.any_epcs = list;
                }
            }
            "EQ_bizLocation" => {
                let list = values(name, value)?;
                filter.biz_locations = Some(list.iter().map(|v| canonical_uri(v)).collect());
            }
            "EQ_readPoint" => {
                let list = values(name, value)?;
                filter.read_points = Some(list.iter().map(|v| canonical_uri(v)).collect());
            }
            "EQ_eventID" => filter.event_ids = Some(values(name, value)?),
            "perPage" if paging => {
                page.per_page = match value.parse::<usize>() {
                    Ok(n) if (1..=PER_PAGE_MAX).contains(&n) => n,
                    _ => {
                        return Err(query_parameter(
                            name,
                            format!("perPage must be an integer from 1 to {PER_PAGE_MAX}"),
                        ))
                    }
                }
            }
            "nextPageToken" if paging => {
                page.start = value.parse::<u64>().map_err(|_| {
                    query_parameter(
                        name,
                        format!("{value:?} is not a page token this node handed out"),
                    )
                })?;
            }
            _ => {
                if let Some(kind) = name.strip_prefix(BIZ_TRANSACTION_PARAM) {
                    if kind.is_empty() {
                        return Err(query_parameter(
                            name,
                            "EQ_bizTransaction_ needs a type: EQ_bizTransaction_inv".into(),
                        ));
                    }
                    filter
                        .biz_transactions
                        .push((cbv_term(kind, "BTT"), values(name, value)?));
                    continue;
                }
                let standard = ["EQ_", "GE_", "GT_", "LE_", "LT_", "MATCH_", "EXISTS_"]
                    .iter()
                    .any(|p| name.starts_with(p))
                    || [
                        "orderBy",
                        "orderDirection",
                        "eventCountLimit",
                        "maxEventCount",
                    ]
                    .contains(&name)
                    || PAGING_PARAMS.contains(&name);
                let why = if standard {
                    "is not supported by this node"
                } else {
                    "is not an EPCIS query parameter"
                };
                return Err(query_parameter(
                    name,
                    format!(
                        "{name} {why}; supported: {FILTER_PARAMS:?}, \
                         {BIZ_TRANSACTION_PARAM}{{type}}{}",
                        if paging {
                            ", perPage, nextPageToken"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
    }
    Ok((filter, page))
}

fn any_in(wanted: &Option<Vec<String>>, got: impl IntoIterator<Item = String>) -> bool {
    match wanted {
        None => true,
        Some(wanted) => got.into_iter().any(|g| wanted.contains(&g)),
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl Filter {
    /// Whether an EPCIS event (as `to_epcis` writes it) is selected. Times are compared in
    /// milliseconds since the epoch: `GE_` is inclusive, `LT_` exclusive.
    pub fn matches(&self, event: &Value, occurred_at: Timestamp, recorded_at: Timestamp) -> bool {
        let ms = |t: Timestamp| i64::try_from(t.as_millis()).unwrap_or(i64::MAX);
        let (occurred, recorded) = (ms(occurred_at), ms(recorded_at));
        let text = |key: &str| event[key].as_str().map(str::to_owned);
        let id_of = |key: &str| event[key]["id"].as_str().map(canonical_uri);
        let within = |value: i64, ge: Option<i64>, lt: Option<i64>| {
            ge.is_none_or(|ge| value >= ge) && lt.is_none_or(|lt| value < lt)
        };
        let epcs = || strings(&event["epcList"]).map(canonical_uri);
        let any_epcs = || {
            ["epcList", "childEPCs", "inputEPCList", "outputEPCList"]
                .iter()
                .flat_map(|k| strings(&event[*k]))
                .chain(event["parentID"].as_str())
                .map(canonical_uri)
        };
        within(occurred, self.ge_event_time, self.lt_event_time)
            && within(recorded, self.ge_record_time, self.lt_record_time)
            && any_in(&self.event_types, text("type"))
            && any_in(&self.event_ids, text("eventID"))
            && any_in(
                &self.biz_steps,
                text("bizStep").map(|s| cbv_term(&s, "BizStep")),
            )
            && any_in(
                &self.dispositions,
                text("disposition").map(|s| cbv_term(&s, "Disp")),
            )
            && any_in(&self.epcs, epcs())
            && any_in(&self.any_epcs, any_epcs())
            && any_in(&self.biz_locations, id_of("bizLocation"))
            && any_in(&self.read_points, id_of("readPoint"))
            && self.biz_transactions.iter().all(|(kind, wanted)| {
                event["bizTransactionList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|bt| {
                        let kind_of = bt["type"].as_str().map(|t| cbv_term(t, "BTT"));
                        kind_of.as_deref() == Some(kind.as_str())
                            && bt["bizTransaction"]
                                .as_str()
                                .is_some_and(|v| wanted.iter().any(|w| w == v))
                    })
            })
    }
}

/// Builds the mapping context of events from the store: members by key, each shipment's
/// registration (read once per shipment), the proposal a `HandoffAccepted` accepts.
pub(crate) struct Resolver<'a> {
    store: &'a SledStore,
    members: Vec<(PublicKey, MemberId)>,
    registrations: BTreeMap<String, Option<(MemberId, ShipmentRegistered)>>,
}

impl std::fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

fn corrupt(record: String, message: &str) -> ApiError {
    ApiError::from(StoreError::Corrupt {
        record,
        message: message.into(),
    })
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(store: &'a SledStore, genesis: &Genesis) -> Result<Resolver<'a>, ApiError> {
        let mut members: Vec<(PublicKey, MemberId)> = Vec::new();
        for record in store.stored_members()? {
            members.push((record.key, record.id.clone()));
            for key in &record.retired_keys {
                members.push((*key, record.id.clone()));
            }
        }
        for member in &genesis.members {
            members.push((member.key, member.id.clone()));
        }
        Ok(Resolver {
            store,
            members,
            registrations: BTreeMap::new(),
        })
    }

    fn member(&self, key: &PublicKey) -> MemberId {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| MemberId::new(key.to_string()), |(_, id)| id.clone())
    }

    fn registration(
        &mut self,
        shipment: &custody_ledger::model::ShipmentId,
    ) -> Result<Option<(MemberId, ShipmentRegistered)>, ApiError> {
        if let Some(known) = self.registrations.get(shipment.as_str()) {
            return Ok(known.clone());
        }
        let first = self.store.shipment_events(shipment, None, 1)?;
        let mut found = None;
        if let Some((_, id)) = first.first() {
            let stored = self
                .store
                .event(id)?
                .ok_or_else(|| corrupt(format!("event {id}"), "indexed but missing"))?;
            if let EventKind::ShipmentRegistered(e) = &stored.event.event().event.kind {
                found = Some((self.member(&stored.event.event().signer), e.clone()));
            }
        }
        self.registrations
            .insert(shipment.as_str().to_owned(), found.clone());
        Ok(found)
    }

    fn context(&mut self, event: &SignedEvent) -> Result<MappingContext, ApiError> {
        let signer = self.member(&event.signer);
        let Some(shipment_id) = event.event.kind.shipment_id() else {
            return Ok(MappingContext {
                signer,
                shipment: None,
            });
        };
        let Some((seller, registration)) = self.registration(shipment_id)? else {
            return Ok(MappingContext {
                signer,
                shipment: None,
            });
        };
        let proposal = match &event.event.kind {
            EventKind::HandoffAccepted(accepted) => {
                let stored = self.store.event(&accepted.proposal)?.ok_or_else(|| {
                    corrupt(
                        format!("event {}", accepted.proposal),
                        "accepted but missing",
                    )
                })?;
                match &stored.event.event().event.kind {
                    EventKind::HandoffProposed(p) => Some(ProposalContext {
                        from: self.member(&stored.event.event().signer),
                        proposal: p.clone(),
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(MappingContext {
            signer,
            shipment: Some(ShipmentContext {
                seller,
                registration,
                proposal,
            }),
        })
    }

    /// The EPCIS form of a committed event; `None` for kinds without one.
    pub(crate) fn epcis(&mut self, committed: &CommittedEvent) -> Result<Option<Value>, ApiError> {
        if matches!(
            committed.event.event.kind,
            EventKind::MembershipChanged(_)
                | EventKind::ReferenceDataPublished(_)
                | EventKind::PersonalDataErased(_)
        ) {
            return Ok(None);
        }
        let ctx = self.context(committed.event)?;
        to_epcis(committed, &ctx).map(Some).map_err(|e| {
            implementation(format!(
                "event {} cannot be written as EPCIS: {e}",
                committed.id
            ))
        })
    }
}

/// One page of a scan: the events found and where the next page starts, if anywhere.
#[derive(Debug, Clone)]
pub struct ScanPage {
    /// The matching events, in log order, as EPCIS events.
    pub events: Vec<Value>,
    /// The log index the next page starts at; `None` when the scan reached the head.
    pub next: Option<u64>,
    /// The log index after the last entry read (the cursor of a subscription).
    pub read_to: u64,
}

/// The height of the block holding log index `index`, if the log is that long.
fn block_of(store: &SledStore, head_height: u64, index: u64) -> Result<Option<u64>, ApiError> {
    let (mut low, mut high) = (1, head_height);
    let mut found = None;
    while low <= high {
        let mid = low + (high - low) / 2;
        let header = store
            .header(mid)?
            .ok_or_else(|| corrupt(format!("header {mid}"), "missing below the head"))?;
        if header.log_size > index {
            found = Some(mid);
            high = mid - 1;
        } else {
            low = mid + 1;
        }
    }
    Ok(found)
}

/// Reads the log from `page.start`, at most `budget` entries and up to the head as it is when
/// the scan starts, and returns the events `filter` selects, at most `page.per_page`.
pub fn scan(
    store: &SledStore,
    genesis: &Genesis,
    filter: &Filter,
    page: Paging,
    budget: u64,
) -> Result<ScanPage, ApiError> {
    let mut out = ScanPage {
        events: Vec::new(),
        next: None,
        read_to: page.start,
    };
    let Some(head) = store.head()? else {
        return Ok(out);
    };
    let Some(mut height) = block_of(store, head.height, page.start)? else {
        return Ok(out);
    };
    let mut resolver = Resolver::new(store, genesis)?;
    let mut read = 0;
    while height <= head.height {
        let block = store
            .block(height)?
            .ok_or_else(|| corrupt(format!("block {height}"), "missing below the head"))?;
        let first = block.header.log_size - u64::from(block.header.event_count);
        for (i, encoded) in block.events.iter().enumerate() {
            let log_index = first + i as u64;
            if log_index < page.start {
                continue;
            }
            if out.events.len() == page.per_page || read == budget {
                out.next = Some(log_index);
                return Ok(out);
            }
            read += 1;
            out.read_to = log_index + 1;
            let committed = CommittedEvent {
                event: encoded.event(),
                id: encoded.id(),
                height,
                log_index,
                recorded_at: block.header.time,
            };
            if let Some(event) = resolver.epcis(&committed)? {
                if filter.matches(&event, encoded.event().event.occurred_at, block.header.time) {
                    out.events.push(event);
                }
            }
        }
        height += 1;
    }
    Ok(out)
}

/// The EPCIS form of one committed event by its EPCIS `eventID` (`urn:custody:event:{hex}`);
/// `None` if there is no such event or it has no EPCIS form.
pub fn event_by_id(
    store: &SledStore,
    genesis: &Genesis,
    event_id: &str,
) -> Result<Option<Value>, ApiError> {
    let Some(hex) = event_id.strip_prefix(custody_epcis::vocab::EVENT_PREFIX) else {
        return Ok(None);
    };
    let Ok(id) = Digest::from_hex(hex) else {
        return Ok(None);
    };
    let Some(stored) = store.event(&id)? else {
        return Ok(None);
    };
    let height = stored.location.height;
    let header = store
        .header(height)?
        .ok_or_else(|| corrupt(format!("header {height}"), "missing"))?;
    let committed = CommittedEvent {
        event: stored.event.event(),
        id,
        height,
        log_index: stored.location.log_index,
        recorded_at: header.time,
    };
    Resolver::new(store, genesis)?.epcis(&committed)
}

/// The query parameters, or a `QueryParameterException`.
pub(crate) type QueryList = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(crate) fn query_list(query: QueryList) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| query_parameter("query", format!("malformed query string: {e}")))
}

/// `application/json` if the client asks for it and not for JSON-LD; JSON-LD otherwise.
fn content_type(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/json") && !accept.contains("application/ld+json") {
        "application/json"
    } else {
        "application/ld+json"
    }
}

/// An `EPCISQueryDocument` answer.
pub(crate) fn document_response(events: Vec<Value>, headers: &HeaderMap) -> Response {
    let document = custody_epcis::DocumentBuilder::new(now())
        .events(events)
        .query_document(QUERY_NAME);
    (
        [(header::CONTENT_TYPE, content_type(headers))],
        serde_json::to_vec(&document).expect("JSON serializes"),
    )
        .into_response()
}

/// Runs a query: filter from `pairs` plus `implied` (the parameter a resource path stands
/// for), one page, with a `Link: <...>; rel="next"` header when there is more.
async fn run(
    state: ApiState,
    mut pairs: Vec<(String, String)>,
    implied: Option<(&'static str, String)>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let link_pairs: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "nextPageToken")
        .cloned()
        .collect();
    if let Some((name, value)) = implied {
        if pairs.iter().any(|(k, _)| k == name) {
            return Err(query_parameter(
                name,
                format!("{name} is given by the path; it cannot also be a query parameter"),
            ));
        }
        pairs.push((name.to_owned(), value));
    }
    let (filter, page) = parse(&pairs, true)?;
    let (store, genesis) = (state.store.clone(), state.genesis.clone());
    let found = blocking(move || scan(&store, &genesis, &filter, page, SCAN_BUDGET)).await??;
    let mut response = document_response(found.events, &headers);
    if let Some(next) = found.next {
        let mut query: Vec<String> = link_pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    custody_epcis::vocab::percent_encode(k),
                    custody_epcis::vocab::percent_encode(v)
                )
            })
            .collect();
        query.push(format!("nextPageToken={next}"));
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"));
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// `GET /epcis/events`.
async fn events(
    State(state): State<ApiState>,
    query: QueryList,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    run(state, query_list(query)?, None, headers, uri).await
}

/// `GET /epcis/events/{eventID}`.
async fn event(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryList,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = query_list(query)?;
    if let Some((name, _)) = pairs.first() {
        return Err(query_parameter(
            name,
            format!("{name}: GET /epcis/events/{{eventID}} takes no query parameters"),
        ));
    }
    let id = path
        .map(|Path(id)| id)
        .map_err(|e| no_such_resource(format!("malformed eventID: {e}")))?;
    let (store, genesis, wanted) = (state.store.clone(), state.genesis.clone(), id.clone());
    match blocking(move || event_by_id(&store, &genesis, &wanted)).await?? {
        Some(event) => Ok(document_response(vec![event], &headers)),
        None => Err(no_such_resource(format!(
            "no EPCIS event {id:?} on this ledger (event IDs are urn:custody:event:{{64 hex}})"
        ))),
    }
}

/// A per-resource path: `/epcis/{resource}/{value}/events` is `/epcis/events?{param}={value}`.
macro_rules! resource_events {
    ($name:ident, $param:literal) => {
        async fn $name(
            State(state): State<ApiState>,
            path: Result<Path<String>, PathRejection>,
            query: QueryList,
            headers: HeaderMap,
            uri: OriginalUri,
        ) -> Result<Response, ApiError> {
            let value = path
                .map(|Path(v)| v)
                .map_err(|e| query_parameter($param, format!("malformed path segment: {e}")))?;
            let pairs = query_list(query)?;
            run(state, pairs, Some(($param, value)), headers, uri).await
        }
    };
}

resource_events!(event_type_events, "eventType");
resource_events!(biz_step_events, "EQ_bizStep");
resource_events!(disposition_events, "EQ_disposition");
resource_events!(epc_events, "MATCH_epc");
resource_events!(read_point_events, "EQ_readPoint");
resource_events!(biz_location_events, "EQ_bizLocation");

/// A list of resource names (`/epcis/eventTypes`, ...).
fn collection(members: Vec<String>, query: QueryList) -> Result<Response, ApiError> {
    let pairs = query_list(query)?;
    if let Some((name, _)) = pairs.first() {
        return Err(query_parameter(
            name,
            format!("{name}: resource lists take no query parameters"),
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/ld+json")],
        serde_json::to_vec(&json!({
            "@context": custody_epcis::vocab::EPCIS_CONTEXT_URL,
            "type": "Collection",
            "member": members,
        }))
        .expect("JSON serializes"),
    )
        .into_response())
}

/// `GET /epcis/eventTypes`: the types Custody writes (only `ObjectEvent`).
async fn event_types(query: QueryList) -> Result<Response, ApiError> {
    collection(vec!["ObjectEvent".into()], query)
}

/// `GET /epcis/bizSteps`: the CBV 2.0 steps (tracking scans may carry any) and Custody's own.
async fn biz_steps(query: QueryList) -> Result<Response, ApiError> {
    use custody_epcis::vocab::biz_step as b;
    let mut list: Vec<String> = custody_contracts::tracking::CBV_BIZ_STEPS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    list.extend(
        [
            b::CUSTOMS_DECLARING,
            b::DUTY_PAYING,
            b::CUSTOMS_CLEARING,
            b::DELIVERING,
            b::RETURN_AUTHORISING,
            b::DOCUMENT_ATTESTING,
        ]
        .map(str::to_owned),
    );
    collection(list, query)
}

/// `GET /epcis/dispositions`: the CBV 2.0 dispositions and Custody's own.
async fn dispositions(query: QueryList) -> Result<Response, ApiError> {
    use custody_epcis::vocab::disposition as d;
    let mut list: Vec<String> = custody_contracts::tracking::CBV_DISPOSITIONS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    list.extend(
        [
            d::AT_CUSTOMS,
            d::CUSTOMS_RELEASED,
            d::CUSTOMS_HELD,
            d::CUSTOMS_INSPECTION,
            d::DELIVERED,
        ]
        .map(str::to_owned),
    );
    collection(list, query)
}

/// The query routes, relative to `/epcis`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/events", read_only(get(events)))
        .route("/events/{eventID}", read_only(get(event)))
        .route("/eventTypes", read_only(get(event_types)))
        .route(
            "/eventTypes/{eventType}/events",
            read_only(get(event_type_events)),
        )
        .route("/bizSteps", read_only(get(biz_steps)))
        .route(
            "/bizSteps/{bizStep}/events",
            read_only(get(biz_step_events)),
        )
        .route("/dispositions", read_only(get(dispositions)))
        .route(
            "/dispositions/{disposition}/events",
            read_only(get(disposition_events)),
        )
        .route("/epcs/{epc}/events", read_only(get(epc_events)))
        .route(
            "/readPoints/{readPoint}/events",
            read_only(get(read_point_events)),
        )
        .route(
            "/bizLocations/{bizLocation}/events",
            read_only(get(biz_location_events)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbv_terms_are_compared_in_their_web_form() {
        let web = "https://ref.gs1.org/cbv/BizStep-shipping";
        for form in [
            "shipping",
            "BizStep-shipping",
            "urn:epcglobal:cbv:bizstep:shipping",
            web,
        ] {
            assert_eq!(cbv_term(form, "BizStep"), web, "{form}");
        }
        assert_eq!(
            cbv_term("urn:custody:epcis:Disp-delivered", "Disp"),
            "urn:custody:epcis:Disp-delivered"
        );
    }

    #[test]
    fn parameters_are_parsed_or_refused() {
        let p = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            parse(&pairs, true)
        };
        assert!(p(&[("EQ_bizStep", "shipping|receiving"), ("perPage", "5")]).is_ok());
        for bad in [
            vec![("perPage", "0")],
            vec![("perPage", "1001")],
            vec![("nextPageToken", "x")],
            vec![("GE_eventTime", "yesterday")],
            vec![("eventType", "Nope")],
            vec![("EQ_action", "ADD")],
            vec![("colour", "red")],
            vec![("EQ_bizStep", "")],
            vec![("MATCH_epc", "urn:epc:idpat:sgtin:0614141.*")],
            vec![("EQ_bizTransaction_", "x")],
            vec![("EQ_bizStep", "a"), ("EQ_bizStep", "b")],
        ] {
            assert!(p(&bad).is_err(), "{bad:?}");
        }
        let pairs = vec![("perPage".to_owned(), "5".to_owned())];
        assert!(parse(&pairs, false).is_err(), "no paging in subscriptions");
    }
}
