//! The API's queries for browsing the ledger, which the explorer's pages are built from:
//! shipments listed, filtered and searched (`GET /v1/shipments`), the network at a glance
//! (`GET /v1/network`), the genesis document (`GET /v1/genesis`) and one member
//! (`GET /v1/members/{id}`).
//!
//! Every query is bounded: a shipment list examines at most [`SHIPMENTS_EXAMINED_MAX`]
//! records, and the network view reads the last [`ACTIVITY_LOOKBACK_BLOCKS`] headers and
//! certificates and [`RATE_MINUTES`] per-minute counts. Input
//! is checked as everywhere in the API: a bad parameter is a 400 problem naming it.

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use custody_ledger::genesis::{Genesis, GenesisMember};
use custody_ledger::model::{CountryCode, EventKind, MemberId, ShipmentId, ID_LEN_MAX};
use custody_ledger::reject::codes;
use custody_ledger::state::{MemberRecord, MemberStatus, ShipmentState, ShipmentStatus};
use custody_ledger::store::{ShipmentIndex, Store, StoreError, MINUTE_MS};
use custody_ledger::view::{
    MemberView, MinuteCount, NetworkView, NodeHealth, RecentBlock, ShipmentList, ShipmentSummary,
    ValidatorActivity,
};
use custody_ledger::{PublicKey, Timestamp};

use crate::api::{
    blocking, only_params, path_segment, query_pairs, ApiError, ApiState, QueryPairs,
};

/// Shipments per page unless `?limit=` says otherwise.
pub const SHIPMENT_PAGE_DEFAULT: usize = 20;
/// Most shipments per page.
pub const SHIPMENT_PAGE_MAX: usize = 100;
/// Most shipment records one list request examines. A filter that no index serves (a time
/// range, or a second filter beside the one that drives the scan) may reject many records;
/// after this many the page ends early, shorter than `limit` or even empty, with a cursor
/// to continue from.
pub const SHIPMENTS_EXAMINED_MAX: usize = 5_000;
/// Longest search term, in bytes.
pub const SEARCH_TERM_LEN_MAX: usize = 256;
/// Blocks in `recent_blocks`.
pub const RECENT_BLOCKS_MAX: u64 = 20;
/// How far back from the head the validators' last proposal and signature are looked for.
pub const ACTIVITY_LOOKBACK_BLOCKS: u64 = 256;
/// Minutes of block time in `events_per_minute`.
pub const RATE_MINUTES: u64 = 30;

/// The parameters of `GET /v1/shipments`.
const LIST_PARAMS: [&str; 9] = [
    "q",
    "status",
    "seller",
    "custodian",
    "destination",
    "from",
    "to",
    "cursor",
    "limit",
];

/// What a shipment list asks for, checked.
#[derive(Debug)]
struct ShipmentQuery {
    q: Option<String>,
    status: Option<ShipmentStatus>,
    seller: Option<MemberId>,
    custodian: Option<MemberId>,
    destination: Option<CountryCode>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    cursor: Option<ShipmentId>,
    limit: usize,
}

fn bad_param(field: &str, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "request.query",
        Some(field.into()),
        detail,
    )
}

/// `q`: trimmed of surrounding white space, non-empty, at most [`SEARCH_TERM_LEN_MAX`] bytes,
/// no control characters.
fn parse_term(text: &str) -> Result<String, ApiError> {
    let term = text.trim();
    if term.is_empty() || term.len() > SEARCH_TERM_LEN_MAX || term.chars().any(char::is_control) {
        return Err(bad_param(
            "q",
            format!(
                "q must be 1 to {SEARCH_TERM_LEN_MAX} bytes of text without control characters"
            ),
        ));
    }
    Ok(term.to_owned())
}

fn parse_member(text: &str, field: &str) -> Result<MemberId, ApiError> {
    let id = MemberId::new(text);
    if !id.is_well_formed() {
        return Err(bad_param(
            field,
            format!("{field} must be a member id: 1 to {ID_LEN_MAX} characters from A-Z a-z 0-9 . _ - :"),
        ));
    }
    Ok(id)
}

/// `status`, in its JSON spelling; serde's message lists the spellings, so it cannot drift
/// from the enumeration.
fn parse_status(text: &str) -> Result<ShipmentStatus, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| bad_param("status", format!("status {text:?} is not a status: {e}")))
}

fn parse_time(text: &str, field: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        bad_param(
            field,
            format!(
                "{field} must be an RFC 3339 UTC time (2026-11-01T09:30:00Z) or a date \
                 (2026-11-01), not {text:?}"
            ),
        )
    })
}

fn parse_limit(text: &str) -> Result<usize, ApiError> {
    match text.parse::<usize>() {
        Ok(limit) if (1..=SHIPMENT_PAGE_MAX).contains(&limit) => Ok(limit),
        _ => Err(bad_param(
            "limit",
            format!("limit must be an integer from 1 to {SHIPMENT_PAGE_MAX}, not {text:?}"),
        )),
    }
}

impl ShipmentQuery {
    fn parse(pairs: &BTreeMap<String, String>) -> Result<ShipmentQuery, ApiError> {
        only_params(pairs, &LIST_PARAMS)?;
        let get = |name: &str| pairs.get(name).map(String::as_str);
        let cursor = get("cursor")
            .map(|text| {
                let id = ShipmentId::new(text);
                id.is_well_formed().then_some(id).ok_or_else(|| {
                    bad_param(
                        "cursor",
                        "cursor must be the next_cursor of a previous page".into(),
                    )
                })
            })
            .transpose()?;
        let destination = get("destination")
            .map(|text| {
                CountryCode::parse(text).ok_or_else(|| {
                    bad_param(
                        "destination",
                        format!(
                            "destination must be an ISO 3166-1 alpha-2 code (FR), not {text:?}"
                        ),
                    )
                })
            })
            .transpose()?;
        let query = ShipmentQuery {
            q: get("q").map(parse_term).transpose()?,
            status: get("status").map(parse_status).transpose()?,
            seller: get("seller")
                .map(|t| parse_member(t, "seller"))
                .transpose()?,
            custodian: get("custodian")
                .map(|t| parse_member(t, "custodian"))
                .transpose()?,
            destination,
            from: get("from").map(|t| parse_time(t, "from")).transpose()?,
            to: get("to").map(|t| parse_time(t, "to")).transpose()?,
            cursor,
            limit: get("limit")
                .map(parse_limit)
                .transpose()?
                .unwrap_or(SHIPMENT_PAGE_DEFAULT),
        };
        if let (Some(from), Some(to)) = (query.from, query.to) {
            if to <= from {
                return Err(bad_param(
                    "to",
                    format!(
                        "to ({to}) must be after from ({from}): from is inclusive, to exclusive"
                    ),
                ));
            }
        }
        Ok(query)
    }

    /// Whether a shipment passes every filter (`q` is not a filter: it chose the candidates).
    fn matches(&self, s: &ShipmentState) -> bool {
        self.status.is_none_or(|status| s.status == status)
            && self
                .seller
                .as_ref()
                .is_none_or(|seller| &s.seller == seller)
            && self
                .custodian
                .as_ref()
                .is_none_or(|custodian| &s.custodian == custodian)
            && self
                .destination
                .is_none_or(|destination| s.destination == destination)
            && self.from.is_none_or(|from| s.registered_at >= from)
            && self.to.is_none_or(|to| s.registered_at < to)
    }

    /// Where the candidates come from: the search indexes for `q`, else the index of one
    /// filter, else every shipment. The sources chosen yield shipment ids in id order.
    fn sources(&self) -> Vec<Source> {
        if let Some(q) = &self.q {
            let mut sources: Vec<Source> = ShipmentIndex::TERMS
                .iter()
                .map(|index| Source::Index(*index, q.clone()))
                .collect();
            let id = ShipmentId::new(q.as_str());
            if id.is_well_formed() {
                sources.push(Source::Id(id));
            }
            return sources;
        }
        let indexed = [
            (
                ShipmentIndex::Seller,
                self.seller.as_ref().map(|m| m.0.clone()),
            ),
            (
                ShipmentIndex::Custodian,
                self.custodian.as_ref().map(|m| m.0.clone()),
            ),
            (
                ShipmentIndex::Destination,
                self.destination.map(|c| c.as_str().to_owned()),
            ),
            (
                ShipmentIndex::Status,
                self.status.map(|s| s.as_str().to_owned()),
            ),
        ];
        match indexed
            .into_iter()
            .find_map(|(index, value)| Some((index, value?)))
        {
            Some((index, value)) => vec![Source::Index(index, value)],
            None => vec![Source::All],
        }
    }
}

/// A stream of candidate shipments in id order.
#[derive(Debug)]
enum Source {
    /// Every shipment.
    All,
    /// The shipments an index entry names.
    Index(ShipmentIndex, String),
    /// The shipment with this id, if there is one.
    Id(ShipmentId),
}

/// Candidate ids, with their records when the source read them already.
type Candidates = BTreeMap<ShipmentId, Option<ShipmentState>>;

impl Source {
    /// Up to `limit` candidates after `after`.
    fn after<S: Store + ?Sized>(
        &self,
        store: &S,
        after: Option<&ShipmentId>,
        limit: usize,
    ) -> Result<Candidates, StoreError> {
        Ok(match self {
            Source::All => store
                .shipments(after, limit)?
                .into_iter()
                .map(|s| (s.shipment_id.clone(), Some(s)))
                .collect(),
            Source::Index(index, value) => store
                .shipments_by(*index, value, after, limit)?
                .into_iter()
                .map(|id| (id, None))
                .collect(),
            Source::Id(id) if after.is_none_or(|after| id > after) => {
                Candidates::from([(id.clone(), None)])
            }
            Source::Id(_) => Candidates::new(),
        })
    }
}

/// The first `limit` candidates after `after` over all `sources`, in id order. Each source is
/// asked for `limit`: the first `limit` of the union are among them, because a source's ids
/// before any of those are in the union too.
fn merged<S: Store + ?Sized>(
    store: &S,
    sources: &[Source],
    after: Option<&ShipmentId>,
    limit: usize,
) -> Result<Candidates, StoreError> {
    let mut all = Candidates::new();
    for source in sources {
        for (id, record) in source.after(store, after, limit)? {
            let slot = all.entry(id).or_default();
            if slot.is_none() {
                *slot = record;
            }
        }
    }
    Ok(all.into_iter().take(limit).collect())
}

/// One page of the shipments `query` asks for.
fn list<S: Store + ?Sized>(store: &S, query: &ShipmentQuery) -> Result<ShipmentList, StoreError> {
    let sources = query.sources();
    let mut after = query.cursor.clone();
    let mut shipments = Vec::new();
    let mut examined = 0;
    loop {
        let want = (query.limit - shipments.len()).min(SHIPMENTS_EXAMINED_MAX - examined);
        let candidates = merged(store, &sources, after.as_ref(), want)?;
        if candidates.is_empty() {
            return Ok(ShipmentList {
                shipments,
                next_cursor: None,
            });
        }
        for (id, record) in candidates {
            examined += 1;
            let record = match record {
                Some(record) => Some(record),
                None => store.shipment(&id)?,
            };
            after = Some(id);
            // An id that is no shipment (a `q` that names none) is skipped.
            if let Some(record) = record.filter(|r| query.matches(r)) {
                shipments.push(summary(store, record)?);
            }
        }
        let full = shipments.len() == query.limit;
        if full || examined >= SHIPMENTS_EXAMINED_MAX {
            // A full page has a next one if any candidate is left, which the filters may
            // still reject: the next page can come back empty.
            let more = !full || !merged(store, &sources, after.as_ref(), 1)?.is_empty();
            return Ok(ShipmentList {
                shipments,
                next_cursor: after.filter(|_| more).map(|id| id.0),
            });
        }
    }
}

/// The list entry of a shipment; its registration event gives the height and the parcels.
pub(crate) fn summary<S: Store + ?Sized>(
    store: &S,
    s: ShipmentState,
) -> Result<ShipmentSummary, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        record: format!("shipment {}", s.shipment_id),
        message: format!("its registration event {}: {message}", s.registered_event),
    };
    let registration = store
        .event(&s.registered_event)?
        .ok_or_else(|| corrupt("not stored"))?;
    let EventKind::ShipmentRegistered(registered) = &registration.event.event().event.kind else {
        return Err(corrupt("is not a registration"));
    };
    Ok(ShipmentSummary {
        parcels: registered.parcels.len() as u64,
        registered_height: registration.location.height,
        shipment_id: s.shipment_id,
        status: s.status,
        seller: s.seller,
        custodian: s.custodian,
        origin: s.origin,
        destination: s.destination,
        registered_at: s.registered_at,
        last_event_at: s.updated_at,
        invoice_number: s.invoice.number,
    })
}

/// `GET /v1/shipments?q=&status=&seller=&custodian=&destination=&from=&to=&cursor=&limit=`.
pub(crate) async fn shipments(
    State(state): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<ShipmentList>, ApiError> {
    let query = ShipmentQuery::parse(&query_pairs(query)?)?;
    let store = state.store.clone();
    Ok(Json(blocking(move || list(store.as_ref(), &query)).await??))
}

/// The validators' recent work and the latest blocks, read from the headers and certificates
/// of the last [`ACTIVITY_LOOKBACK_BLOCKS`] blocks.
#[derive(Debug, Default)]
struct Activity {
    last_proposed: BTreeMap<PublicKey, u64>,
    last_signed: BTreeMap<PublicKey, u64>,
    recent_blocks: Vec<RecentBlock>,
}

fn activity<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    height: u64,
) -> Result<Activity, StoreError> {
    let members: BTreeMap<PublicKey, &MemberId> = genesis
        .members
        .iter()
        .filter_map(|m| Some((m.node_key?, &m.id)))
        .collect();
    let mut out = Activity::default();
    let lowest = height.saturating_sub(ACTIVITY_LOOKBACK_BLOCKS - 1).max(1);
    for h in (lowest..=height).rev() {
        let header = store.header(h)?.ok_or_else(|| StoreError::Corrupt {
            record: format!("header {h}"),
            message: "missing below the head".into(),
        })?;
        if height - h < RECENT_BLOCKS_MAX {
            out.recent_blocks.push(RecentBlock {
                height: h,
                hash: header.hash(),
                time: header.time,
                event_count: header.event_count,
                proposer: header.proposer,
                proposer_member: members.get(&header.proposer).map(|id| (*id).clone()),
            });
        }
        // Walking down, the first height seen for a key is its latest.
        out.last_proposed.entry(header.proposer).or_insert(h);
        if let Some(certificate) = store.certificate(h)? {
            for signature in certificate.signatures {
                out.last_signed.entry(signature.validator).or_insert(h);
            }
        }
    }
    Ok(out)
}

/// Events per minute of block time over the [`RATE_MINUTES`] minutes ending with the one
/// holding `end`, oldest first, from the store's per-minute counts.
fn events_per_minute<S: Store + ?Sized>(
    store: &S,
    end: Timestamp,
) -> Result<Vec<MinuteCount>, StoreError> {
    let last = end.0 / MINUTE_MS * MINUTE_MS;
    (0..RATE_MINUTES)
        .rev()
        .filter_map(|back| last.checked_sub(back * MINUTE_MS))
        .map(|minute| {
            Ok(MinuteCount {
                minute: Timestamp(minute),
                events: store.events_in_minute(Timestamp(minute))?,
            })
        })
        .collect()
}

pub(crate) fn network_view<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    health: NodeHealth,
) -> Result<NetworkView, StoreError> {
    let head = store.head()?;
    let activity = activity(store, genesis, head.map_or(0, |h| h.height))?;
    // Before the first block, the window ends at the genesis time.
    let end = head.map_or(genesis.genesis_time, |h| h.time);
    let validators = genesis
        .members
        .iter()
        .filter(|m| m.voting_power > 0)
        .filter_map(|m| {
            let node_key = m.node_key?;
            Some(ValidatorActivity {
                member_id: m.id.clone(),
                name: m.name.clone(),
                node_key,
                voting_power: m.voting_power,
                last_proposed_height: activity.last_proposed.get(&node_key).copied(),
                last_signed_height: activity.last_signed.get(&node_key).copied(),
            })
        })
        .collect();
    Ok(NetworkView {
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash(),
        height: head.map_or(0, |h| h.height),
        head_time: head.map(|h| h.time),
        validators,
        recent_blocks: activity.recent_blocks,
        events_per_minute: events_per_minute(store, end)?,
        health,
    })
}

/// `GET /v1/network`.
pub(crate) async fn network(State(state): State<ApiState>) -> Result<Json<NetworkView>, ApiError> {
    let health = state.health.report(std::time::Instant::now());
    let (store, genesis) = (state.store.clone(), state.genesis.clone());
    Ok(Json(
        blocking(move || network_view(store.as_ref(), &genesis, health)).await??,
    ))
}

/// `GET /v1/genesis`: the genesis document in its JSON form (docs/PROTOCOL.md §9.3), the file
/// `custody verify bundle --genesis` reads.
pub(crate) async fn genesis(State(state): State<ApiState>) -> Json<Genesis> {
    Json(state.genesis.as_ref().clone())
}

/// A genesis member as the ledger knows it now: its stored record, if a block changed it.
pub(crate) fn genesis_member_view(
    member: &GenesisMember,
    stored: Option<&MemberRecord>,
) -> MemberView {
    match stored {
        Some(record) => MemberView {
            node_key: member.node_key,
            voting_power: member.voting_power,
            ..admitted_member_view(record)
        },
        None => MemberView {
            id: member.id.clone(),
            name: member.name.clone(),
            roles: member.roles.clone(),
            key: member.key,
            retired_keys: vec![],
            status: MemberStatus::Active,
            node_key: member.node_key,
            voting_power: member.voting_power,
        },
    }
}

/// A member admitted after genesis: it runs no validator.
pub(crate) fn admitted_member_view(record: &MemberRecord) -> MemberView {
    MemberView {
        id: record.id.clone(),
        name: record.name.clone(),
        roles: record.roles.clone(),
        key: record.key,
        retired_keys: record.retired_keys.clone(),
        status: record.status,
        node_key: None,
        voting_power: 0,
    }
}

/// `GET /v1/members/{id}`: one member, as `GET /v1/members` lists it.
pub(crate) async fn member(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<MemberView>, ApiError> {
    let id = MemberId::new(path_segment(path, "id")?);
    if !id.is_well_formed() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.path",
            Some("id".into()),
            format!("a member id has 1 to {ID_LEN_MAX} characters from A-Z a-z 0-9 . _ - :"),
        ));
    }
    let stored = state.store.stored_member(&id)?;
    let view = match state.genesis.members.iter().find(|m| m.id == id) {
        Some(member) => Some(genesis_member_view(member, stored.as_ref())),
        None => stored.as_ref().map(admitted_member_view),
    };
    view.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            codes::MEMBER_NOT_FOUND.as_str(),
            None,
            format!("no member {id} on the ledger"),
        )
    })
}
