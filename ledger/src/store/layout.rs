//! The ledger's layout on the key-value trees, shared by every [`Store`].
//!
//! | tree   | key                                        | value                              |
//! |--------|--------------------------------------------|------------------------------------|
//! | meta   | `head`                                     | canonical [`Head`]                 |
//! | meta   | `genesis`                                  | genesis hash                       |
//! | blocks | height (u64 BE) ‖ `0`                      | canonical header                   |
//! | blocks | height ‖ `1`                               | canonical commit certificate       |
//! | blocks | height ‖ `2`                               | canonical list of event ids        |
//! | events | event id                                   | location ‖ prev ‖ event bytes      |
//! | index  | `S` ‖ shipment id ‖ `0` ‖ last log index   | the block's (log index ‖ id)s      |
//! | index  | `M` ‖ signer key ‖ last log index          | the block's (log index ‖ id)s      |
//! | index  | `R` ‖ table id ‖ `0` ‖ effective from (BE) | event id                           |
//! | index  | `F` ‖ tag ‖ length (u32 BE) ‖ value ‖ id   | empty (see `search.rs`)            |
//! | index  | `E` ‖ minute of block time (ms, BE)        | events committed in it (u64 BE)    |
//! | state  | `S` ‖ shipment id                          | canonical shipment state           |
//! | state  | `M` ‖ member id                            | canonical member record            |
//! | state  | `K` ‖ key                                  | member id                          |
//! | log    | `T` ‖ tile, or level (u8) ‖ index (u64 BE) | 16 leaves' subtrees, or one hash   |
//! | map    | tile root's depth (u16 BE) ‖ key prefix    | up to 15 map nodes (see `map.rs`)  |
//!
//! An event's record carries its location (20 bytes) and its log entry's `shipment_prev`
//! (`0`, or `1` ‖ 32 bytes), so a block writes one record per event and the rest of the
//! entry comes from its block's header. The shipment and signer lists hold one record per
//! block (see `lists.rs`) and the log keeps its bottom levels in tiles (see `log.rs`): a
//! 1,000-event block writes about 2,900 records, not 7,600 as in format v4.
//!
//! Big-endian integers make key order numeric order, so scans come out by height or log
//! index. Shipment and member ids never contain a zero byte (they are restricted to
//! printable ASCII), so the `0` separator cannot be forged.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::lists::BlockLists;
use super::{log, search, KeyValue, Store, StoreError, Tree, WriteBatch};
use crate::block::{Block, BlockHeader, CommitCertificate};
use crate::chain::ValidatedBlock;
use crate::codec::{self, RECORD_SIZE_BYTES_MAX};
use crate::entry::{new_heads, LogEntry};
use crate::event::EncodedEvent;
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::keys::PublicKey;
use crate::merkle::{self, SubtreeSource};
use crate::model::{EventId, EventKind, MemberId, RulesActivation, ShipmentId};
use crate::state::{state_root, MemberRecord, ShipmentState, State, StateDelta};
use crate::time::Timestamp;

const HEAD_KEY: &[u8] = b"head";
/// The key, in [`Tree::Meta`](super::Tree::Meta), of the genesis hash a store was created for.
pub const GENESIS_KEY: &[u8] = b"genesis";
/// The key, in [`Tree::Meta`](super::Tree::Meta), of the store's format ([`STORE_FORMAT`]).
pub const FORMAT_KEY: &[u8] = b"format";
/// The protocol format a store's records are in, written when the store is created. A node
/// refuses a store of another format rather than misread its headers.
pub const STORE_FORMAT: &str = "custody-store/v7";
const HEADER_TAG: u8 = 0;
const CERT_TAG: u8 = 1;
const IDS_TAG: u8 = 2;
const BODIES_TAG: u8 = 3;
/// Events per body record: a block's event bytes are stored in records of this many events,
/// in block order, so that a block writes one record per this many events rather than one
/// per event, and one event is read with at most this many others. sled rewrites a leaf of up
/// to 16 records whole, and writes a leaf over 128 KiB as a file of its own: at a typical
/// event's half kilobyte, 16 events keep a leaf of body records under that size.
const EVENTS_PER_BODY: u32 = 16;
const LOCATION_LEN: usize = 20;
const MINUTE_TAG: u8 = b'E';
/// Milliseconds in a minute, the unit of the event-rate index.
pub const MINUTE_MS: u64 = 60_000;

/// The latest block, as recorded in the same batch that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Height.
    pub height: u64,
    /// Header hash.
    pub block_hash: Digest,
    /// Block time.
    pub time: Timestamp,
    /// Events in the log.
    pub log_size: u64,
    /// Log root.
    pub log_root: Digest,
    /// State root.
    pub state_root: Digest,
}

/// Where an event is in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLocation {
    /// Block height.
    pub height: u64,
    /// Position within the block.
    pub index_in_block: u32,
    /// Position in the log (0-based, over all events).
    pub log_index: u64,
}

impl EventLocation {
    fn to_bytes(self) -> [u8; LOCATION_LEN] {
        let mut out = [0u8; LOCATION_LEN];
        out[..8].copy_from_slice(&self.height.to_be_bytes());
        out[8..12].copy_from_slice(&self.index_in_block.to_be_bytes());
        out[12..].copy_from_slice(&self.log_index.to_be_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<EventLocation> {
        if bytes.len() < LOCATION_LEN {
            return None;
        }
        Some(EventLocation {
            height: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            index_in_block: u32::from_be_bytes(bytes[8..12].try_into().ok()?),
            log_index: u64::from_be_bytes(bytes[12..20].try_into().ok()?),
        })
    }
}

/// A committed event with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event.
    pub event: EncodedEvent,
    /// Where it is.
    pub location: EventLocation,
}

/// A block's stored bytes, undecoded, so that a verifier checks exactly what is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlock {
    /// Height asked for.
    pub height: u64,
    /// Header bytes.
    pub header: Vec<u8>,
    /// Certificate bytes (empty if missing).
    pub certificate: Vec<u8>,
    /// Bytes of the event-id list (empty if missing).
    pub event_ids: Vec<u8>,
}

fn block_key(height: u64, tag: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.extend_from_slice(&height.to_be_bytes());
    key.push(tag);
    key
}

/// The key of body record `chunk` of the block at `height`: events
/// `[chunk·EVENTS_PER_BODY, (chunk+1)·EVENTS_PER_BODY)` of the block.
fn body_key(height: u64, chunk: u32) -> Vec<u8> {
    let mut key = block_key(height, BODIES_TAG);
    key.extend_from_slice(&chunk.to_be_bytes());
    key
}

/// A body record: each event's canonical bytes, preceded by their length (`u32` BE).
fn body_record<'a>(events: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut value = Vec::new();
    for bytes in events {
        let len = u32::try_from(bytes.len()).expect("an event is under 4 GiB");
        value.extend_from_slice(&len.to_be_bytes());
        value.extend_from_slice(bytes);
    }
    value
}

/// The events of a body record, in order; `None` if a length runs past the record's end.
fn split_body(mut value: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (len, rest) = value.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (bytes, rest) = rest.split_at(len);
        out.push(bytes);
        value = rest;
    }
    Some(out)
}

/// The bytes of the event at `index_in_block` of the block at `height`, from its body record;
/// `None` if the record is missing, does not split, or holds too few events.
fn event_bytes<S: Store + ?Sized>(
    store: &S,
    height: u64,
    index_in_block: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(value) = store.get(
        Tree::Blocks,
        &body_key(height, index_in_block / EVENTS_PER_BODY),
    )?
    else {
        return Ok(None);
    };
    let position = (index_in_block % EVENTS_PER_BODY) as usize;
    Ok(split_body(&value).and_then(|events| events.get(position).map(|b| b.to_vec())))
}

/// The bytes of the first `count` events of the block at `height`, in block order, each
/// `None` if its body record is missing or damaged: what a verifier reads, undecoded.
pub fn raw_event_bodies<S: Store + ?Sized>(
    store: &S,
    height: u64,
    count: u32,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let mut out = Vec::with_capacity(count as usize);
    for chunk in 0..count.div_ceil(EVENTS_PER_BODY) {
        let in_chunk = (count - chunk * EVENTS_PER_BODY).min(EVENTS_PER_BODY) as usize;
        let value = store.get(Tree::Blocks, &body_key(height, chunk))?;
        match value.as_deref().and_then(split_body) {
            Some(events) if events.len() == in_chunk => {
                out.extend(events.into_iter().map(|b| Some(b.to_vec())));
            }
            _ => out.extend(std::iter::repeat_n(None, in_chunk)),
        }
    }
    Ok(out)
}

pub(super) fn shipment_prefix(id: &ShipmentId) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.0.len() + 2);
    key.push(b'S');
    key.extend_from_slice(id.0.as_bytes());
    key.push(0);
    key
}

pub(super) fn signer_prefix(key: &PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(33);
    out.push(b'M');
    out.extend_from_slice(&key.0);
    out
}

fn reference_prefix(table_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(table_id.len() + 2);
    key.push(b'R');
    key.extend_from_slice(table_id.as_bytes());
    key.push(0);
    key
}

fn state_key(tag: u8, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(tag);
    key.extend_from_slice(id);
    key
}

/// The event-rate key of the minute holding `time`.
fn minute_key(time: Timestamp) -> Vec<u8> {
    with_suffix(&[MINUTE_TAG], time.0 / MINUTE_MS * MINUTE_MS)
}

fn with_suffix(prefix: &[u8], n: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

fn corrupt(record: impl Into<String>, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        record: record.into(),
        message: message.to_string(),
    }
}

fn digest(bytes: &[u8], record: &str) -> Result<Digest, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest)
        .map_err(|_| corrupt(record, "expected 32 bytes"))
}

pub(super) fn head<S: Store + ?Sized>(store: &S) -> Result<Option<Head>, StoreError> {
    store
        .get(Tree::Meta, HEAD_KEY)?
        .map(|bytes| codec::decode(&bytes, RECORD_SIZE_BYTES_MAX).map_err(|e| corrupt("head", e)))
        .transpose()
}

pub(super) fn header<S: Store + ?Sized>(
    store: &S,
    height: u64,
) -> Result<Option<BlockHeader>, StoreError> {
    store
        .get(Tree::Blocks, &block_key(height, HEADER_TAG))?
        .map(|bytes| {
            BlockHeader::decode(&bytes).map_err(|e| corrupt(format!("header {height}"), e))
        })
        .transpose()
}

pub(super) fn certificate<S: Store + ?Sized>(
    store: &S,
    height: u64,
) -> Result<Option<CommitCertificate>, StoreError> {
    store
        .get(Tree::Blocks, &block_key(height, CERT_TAG))?
        .map(|bytes| {
            CommitCertificate::decode(&bytes)
                .map_err(|e| corrupt(format!("certificate {height}"), e))
        })
        .transpose()
}

fn event_ids<S: Store + ?Sized>(
    store: &S,
    height: u64,
) -> Result<Option<Vec<EventId>>, StoreError> {
    store
        .get(Tree::Blocks, &block_key(height, IDS_TAG))?
        .map(|bytes| {
            codec::decode(&bytes, codec::BLOCK_SIZE_BYTES_MAX)
                .map_err(|e| corrupt(format!("event ids {height}"), e))
        })
        .transpose()
}

pub(super) fn block<S: Store + ?Sized>(
    store: &S,
    height: u64,
) -> Result<Option<Block>, StoreError> {
    let Some(header) = header(store, height)? else {
        return Ok(None);
    };
    let ids = event_ids(store, height)?
        .ok_or_else(|| corrupt(format!("block {height}"), "event ids missing"))?;
    let count =
        u32::try_from(ids.len()).map_err(|_| corrupt(format!("event ids {height}"), "too many"))?;
    let bodies = raw_event_bodies(store, height, count)?;
    let mut events = Vec::with_capacity(ids.len());
    for (id, bytes) in ids.iter().zip(bodies) {
        let record = format!("event {id}");
        let bytes = bytes.ok_or_else(|| corrupt(&record, "bytes missing"))?;
        events.push(decode_stored(&bytes, id, &record)?);
    }
    Ok(Some(Block { header, events }))
}

pub(super) fn raw_block<S: Store + ?Sized>(
    store: &S,
    height: u64,
) -> Result<Option<RawBlock>, StoreError> {
    let Some(header) = store.get(Tree::Blocks, &block_key(height, HEADER_TAG))? else {
        return Ok(None);
    };
    Ok(Some(RawBlock {
        height,
        header,
        certificate: store
            .get(Tree::Blocks, &block_key(height, CERT_TAG))?
            .unwrap_or_default(),
        event_ids: store
            .get(Tree::Blocks, &block_key(height, IDS_TAG))?
            .unwrap_or_default(),
    }))
}

/// The value of an event's record: where it is and its log entry's `shipment_prev`. Its
/// bytes are in its block's body record.
fn event_record(location: EventLocation, shipment_prev: Option<&Digest>) -> Vec<u8> {
    let mut value = Vec::with_capacity(LOCATION_LEN + 33);
    value.extend_from_slice(&location.to_bytes());
    match shipment_prev {
        None => value.push(0),
        Some(prev) => {
            value.push(1);
            value.extend_from_slice(prev.as_bytes());
        }
    }
    value
}

/// An event record's parts.
struct EventRecord {
    location: EventLocation,
    shipment_prev: Option<Digest>,
}

/// Splits an event record; `None` if it is not a location and a `shipment_prev` exactly (a
/// flag of 0, or 1 and 32 bytes).
fn split_event_record(value: &[u8]) -> Option<EventRecord> {
    let location = EventLocation::from_bytes(value)?;
    let shipment_prev = match value.get(LOCATION_LEN..)?.split_first()? {
        (0, []) => None,
        (1, prev) => Some(Digest(<[u8; 32]>::try_from(prev).ok()?)),
        _ => return None,
    };
    Some(EventRecord {
        location,
        shipment_prev,
    })
}

/// The stored location of an event, undecoded: `Some(None)` if the event has a record that
/// does not split into a location and a `shipment_prev`.
pub fn raw_location<S: Store + ?Sized>(
    store: &S,
    id: &EventId,
) -> Result<Option<Option<EventLocation>>, StoreError> {
    Ok(store
        .get(Tree::Events, id.as_bytes())?
        .map(|value| split_event_record(&value).map(|record| record.location)))
}

/// Decodes stored event bytes and checks they are the event `id`.
fn decode_stored(bytes: &[u8], id: &EventId, record: &str) -> Result<EncodedEvent, StoreError> {
    let event = EncodedEvent::decode(bytes).map_err(|e| corrupt(record, e))?;
    if event.id() != *id {
        return Err(corrupt(record, "stored bytes hash to another id"));
    }
    Ok(event)
}

/// A committed event, its location and its log entry's `shipment_prev`.
fn event_with_prev<S: Store + ?Sized>(
    store: &S,
    id: &EventId,
) -> Result<Option<(StoredEvent, Option<Digest>)>, StoreError> {
    let Some(value) = store.get(Tree::Events, id.as_bytes())? else {
        return Ok(None);
    };
    let record = format!("event {id}");
    let parts = split_event_record(&value)
        .ok_or_else(|| corrupt(&record, "location or previous entry truncated"))?;
    let bytes = event_bytes(store, parts.location.height, parts.location.index_in_block)?
        .ok_or_else(|| corrupt(&record, "bytes missing from its block's body record"))?;
    let event = decode_stored(&bytes, id, &record)?;
    let stored = StoredEvent {
        event,
        location: parts.location,
    };
    Ok(Some((stored, parts.shipment_prev)))
}

pub(super) fn event<S: Store + ?Sized>(
    store: &S,
    id: &EventId,
) -> Result<Option<StoredEvent>, StoreError> {
    Ok(event_with_prev(store, id)?.map(|(stored, _)| stored))
}

pub(super) fn shipment<S: Store + ?Sized>(
    store: &S,
    id: &ShipmentId,
) -> Result<Option<ShipmentState>, StoreError> {
    store
        .get(Tree::State, &state_key(b'S', id.0.as_bytes()))?
        .map(|bytes| {
            // A shipment record carries its invoice, so it may be as large as an event.
            codec::decode(&bytes, codec::EVENT_SIZE_BYTES_MAX)
                .map_err(|e| corrupt(format!("shipment {id}"), e))
        })
        .transpose()
}

pub(super) fn member<S: Store + ?Sized>(
    store: &S,
    id: &MemberId,
) -> Result<Option<MemberRecord>, StoreError> {
    store
        .get(Tree::State, &state_key(b'M', id.0.as_bytes()))?
        .map(|bytes| {
            codec::decode(&bytes, RECORD_SIZE_BYTES_MAX)
                .map_err(|e| corrupt(format!("member {id}"), e))
        })
        .transpose()
}

/// Up to `limit` shipment records in id order, after the shipment `after`.
pub(super) fn shipments<S: Store + ?Sized>(
    store: &S,
    after: Option<&ShipmentId>,
    limit: usize,
) -> Result<Vec<ShipmentState>, StoreError> {
    let start = after.map(|id| state_key(b'S', id.0.as_bytes()));
    store
        .scan(Tree::State, b"S", start.as_deref(), limit)?
        .into_iter()
        .map(|(key, bytes)| {
            codec::decode(&bytes, codec::EVENT_SIZE_BYTES_MAX).map_err(|e| {
                corrupt(
                    format!("shipment {}", String::from_utf8_lossy(&key[1..])),
                    e,
                )
            })
        })
        .collect()
}

/// Events committed in blocks whose time falls in the minute holding `time`. Blocks appended
/// by a store from before this index count nothing.
pub(super) fn events_in_minute<S: Store + ?Sized>(
    store: &S,
    time: Timestamp,
) -> Result<u64, StoreError> {
    store
        .get(Tree::Index, &minute_key(time))?
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("events per minute", "expected 8 bytes"))
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Most members a network can have; the scan of member records is bounded by it.
pub const MEMBERS_MAX: usize = 100_000;

/// A bounded scan that every validator's state depends on: one entry more than `max` is
/// read, and finding it is an error. Returning the first `max` entries instead would let a
/// validator judge blocks against part of the state (members or reference tables missing)
/// and fork silently from one whose store holds fewer.
fn scan_all<S: Store + ?Sized>(
    store: &S,
    tree: Tree,
    prefix: &[u8],
    max: usize,
    what: &str,
) -> Result<Vec<KeyValue>, StoreError> {
    let entries = store.scan(tree, prefix, None, max + 1)?;
    if entries.len() > max {
        return Err(StoreError::LimitExceeded {
            what: what.to_owned(),
            max,
        });
    }
    Ok(entries)
}

pub(super) fn members<S: Store + ?Sized>(store: &S) -> Result<Vec<MemberRecord>, StoreError> {
    scan_all(store, Tree::State, b"M", MEMBERS_MAX, "member records")?
        .into_iter()
        .map(|(key, bytes)| {
            codec::decode(&bytes, RECORD_SIZE_BYTES_MAX)
                .map_err(|e| corrupt(format!("member {}", String::from_utf8_lossy(&key[1..])), e))
        })
        .collect()
}

/// The rules activations `ScheduleRules` changes committed, by height (genesis's are not
/// stored: they are in the genesis document).
pub(super) fn rules_activations<S: Store + ?Sized>(
    store: &S,
) -> Result<Vec<RulesActivation>, StoreError> {
    scan_all(
        store,
        Tree::State,
        b"V",
        crate::genesis::RULES_SCHEDULE_LEN_MAX,
        "rules activations",
    )?
    .into_iter()
    .map(|(_, bytes)| {
        codec::decode(&bytes, RECORD_SIZE_BYTES_MAX).map_err(|e| corrupt("rules activation", e))
    })
    .collect()
}

/// Entries keyed by a prefix and a big-endian number, one id each (reference versions).
fn indexed<S: Store + ?Sized>(
    store: &S,
    prefix: &[u8],
    after_log_index: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, EventId)>, StoreError> {
    let after = after_log_index.map(|i| with_suffix(prefix, i));
    store
        .scan(Tree::Index, prefix, after.as_deref(), limit)?
        .into_iter()
        .map(|(key, value)| {
            let tail = key
                .get(prefix.len()..)
                .and_then(|t| <[u8; 8]>::try_from(t).ok())
                .ok_or_else(|| corrupt("index key", "bad length"))?;
            Ok((u64::from_be_bytes(tail), digest(&value, "index value")?))
        })
        .collect()
}

/// Most versions of one reference table that a scan returns.
pub const REFERENCE_VERSIONS_MAX: usize = 10_000;

pub(super) fn reference_versions<S: Store + ?Sized>(
    store: &S,
    table_id: &str,
) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
    // Reference keys end in the effective date as a big-endian u64, like log indexes. One
    // more than the bound is read so that a longer history is an error, not a cut: the
    // version in force is the latest, which a cut would drop.
    let prefix = reference_prefix(table_id);
    let versions = indexed(store, &prefix, None, REFERENCE_VERSIONS_MAX + 1)?;
    if versions.len() > REFERENCE_VERSIONS_MAX {
        return Err(StoreError::LimitExceeded {
            what: format!("versions of reference table {table_id}"),
            max: REFERENCE_VERSIONS_MAX,
        });
    }
    Ok(versions
        .into_iter()
        .map(|(from, id)| (Timestamp(from), id))
        .collect())
}

pub(super) fn reference_entries<S: Store + ?Sized>(
    store: &S,
) -> Result<Vec<(String, Timestamp, EventId)>, StoreError> {
    scan_all(
        store,
        Tree::Index,
        b"R",
        REFERENCE_VERSIONS_MAX,
        "reference table versions",
    )?
    .into_iter()
    .map(|(key, value)| {
        // R ‖ table id ‖ 0 ‖ effective from (8 bytes).
        let bad = || corrupt("reference key", "bad layout");
        let body = key.get(1..).ok_or_else(bad)?;
        let split = body.len().checked_sub(9).ok_or_else(bad)?;
        if body[split] != 0 {
            return Err(bad());
        }
        let table = String::from_utf8(body[..split].to_vec()).map_err(|_| bad())?;
        let from = u64::from_be_bytes(body[split + 1..].try_into().map_err(|_| bad())?);
        Ok((table, Timestamp(from), digest(&value, "reference value")?))
    })
    .collect()
}

pub(super) fn log_node<S: Store + ?Sized>(
    store: &S,
    level: u32,
    index: u64,
) -> Result<Digest, StoreError> {
    log::node(store, level, index)?
        .ok_or_else(|| corrupt(format!("log node {level}/{index}"), "missing"))
}

/// The stored log as a Merkle subtree source.
pub(super) struct LogSource<'a, S: ?Sized>(pub &'a S);

impl<S: Store + ?Sized> SubtreeSource for LogSource<'_, S> {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> Result<Digest, StoreError> {
        log_node(self.0, level, index)
    }
}

/// The stored log as a Merkle subtree source that remembers every node it read (a few
/// dozen per proof), for building many proofs at once.
pub(super) struct MemoLogSource<'a, S: ?Sized> {
    store: &'a S,
    read: std::cell::RefCell<BTreeMap<(u32, u64), Digest>>,
}

impl<'a, S: Store + ?Sized> MemoLogSource<'a, S> {
    /// A source that starts out knowing `known` (level, index, hash) nodes of the store.
    pub(super) fn with_known(store: &'a S, known: &[(u32, u64, Digest)]) -> Self {
        let read = known.iter().map(|(l, i, d)| ((*l, *i), *d)).collect();
        MemoLogSource {
            store,
            read: std::cell::RefCell::new(read),
        }
    }
}

impl<S: Store + ?Sized> SubtreeSource for MemoLogSource<'_, S> {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> Result<Digest, StoreError> {
        if let Some(hash) = self.read.borrow().get(&(level, index)) {
            return Ok(*hash);
        }
        let hash = log_node(self.store, level, index)?;
        self.read.borrow_mut().insert((level, index), hash);
        Ok(hash)
    }
}

/// The stored log plus nodes about to be written.
struct Overlay<'a, S: ?Sized> {
    store: &'a S,
    pending: BTreeMap<(u32, u64), Digest>,
}

impl<S: Store + ?Sized> SubtreeSource for Overlay<'_, S> {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> Result<Digest, StoreError> {
        match self.pending.get(&(level, index)) {
            Some(d) => Ok(*d),
            None => log_node(self.store, level, index),
        }
    }
}

/// Log nodes as (level, index, hash).
pub(crate) type LogNodes = Vec<(u32, u64, Digest)>;

/// The log nodes that appending `leaves` to the stored log of `log_size` leaves creates, and
/// the new root; nothing is written.
pub(crate) fn extend_log<S: Store + ?Sized>(
    store: &S,
    log_size: u64,
    leaves: &[Digest],
) -> Result<(LogNodes, Digest), StoreError> {
    let nodes = merkle::append_nodes(&LogSource(store), log_size, leaves)?;
    let overlay = Overlay {
        store,
        pending: nodes.iter().map(|(l, i, d)| ((*l, *i), *d)).collect(),
    };
    let root =
        merkle::root(&overlay, log_size + leaves.len() as u64).map_err(super::proof_error)?;
    Ok((nodes, root))
}

pub(super) fn append_block<S: Store + ?Sized, R>(
    store: &S,
    validated: &ValidatedBlock<R>,
    cert: &CommitCertificate,
) -> Result<(), StoreError> {
    let block = validated.block();
    let delta = validated.delta();
    let entries = validated.entries();
    let h = &block.header;
    let head = head(store)?;
    let (head_height, head_hash, log_size, head_state_root) = match &head {
        Some(head) => (head.height, head.block_hash, head.log_size, head.state_root),
        None => (0, store.genesis_hash(), 0, store.genesis_hash()),
    };
    if h.height != head_height + 1 || h.prev_hash != head_hash {
        return Err(StoreError::NotNext {
            height: h.height,
            prev_hash: h.prev_hash,
            head_height,
            head_hash,
        });
    }
    let block_hash = h.hash();
    assert_eq!(
        cert.block_hash, block_hash,
        "certificate must be for this block"
    );
    assert_eq!(h.event_count as usize, block.events.len());
    // Validation computed the delta against this parent, whose hash commits to its state root.
    assert_eq!(
        state_root(&head_state_root, delta),
        h.state_root,
        "a validated block's delta gives its header's state root"
    );
    assert_eq!(entries.len(), block.events.len(), "one log entry per event");
    assert_heads_match(&new_heads(&block.events, entries), delta);
    // Validation computed the log and map nodes against this parent, whose hash commits to
    // both roots; the header it checked names the results.
    let roots = validated.roots();
    let new_size = log_size + block.events.len() as u64;
    assert_eq!(
        h.log_size, new_size,
        "a validated block extends the log by its events"
    );
    assert_eq!(
        roots.map_root, h.shipments_root,
        "a validated block's map writes give its header's shipments root"
    );

    let mut batch = WriteBatch::default();
    put_block(&mut batch, block, cert);
    put_events(&mut batch, block, entries, log_size);
    if h.event_count > 0 {
        // Block times never go back, so only the head's minute can already hold a count.
        let count = events_in_minute(store, h.time)? + u64::from(h.event_count);
        batch.put(
            Tree::Index,
            minute_key(h.time),
            count.to_be_bytes().to_vec(),
        );
    }
    put_delta(store, &mut batch, delta)?;
    log::write_nodes(store, &mut batch, &roots.log_nodes, log_size, new_size)?;
    for (key, tile) in &roots.map_tiles {
        match tile {
            Some(tile) => batch.put(Tree::Map, key.clone(), tile.clone()),
            None => batch.delete(Tree::Map, key.clone()),
        }
    }
    let new_head = Head {
        height: h.height,
        block_hash,
        time: h.time,
        log_size: new_size,
        log_root: h.log_root,
        state_root: h.state_root,
    };
    batch.put(Tree::Meta, HEAD_KEY.to_vec(), codec::encode(&new_head));
    store.commit(batch)
}

/// The block's header, certificate and list of event ids.
fn put_block(batch: &mut WriteBatch, block: &Block, cert: &CommitCertificate) {
    let height = block.header.height;
    batch.put(
        Tree::Blocks,
        block_key(height, HEADER_TAG),
        codec::encode(&block.header),
    );
    batch.put(
        Tree::Blocks,
        block_key(height, CERT_TAG),
        codec::encode(cert),
    );
    let ids: Vec<EventId> = block.events.iter().map(|e| e.id()).collect();
    batch.put(
        Tree::Blocks,
        block_key(height, IDS_TAG),
        codec::encode(&ids),
    );
}

/// The block's body records, each event's record, and the indexes that find events: one list
/// record per shipment and per signer of the block, and the per-event reference and search
/// entries.
fn put_events(batch: &mut WriteBatch, block: &Block, entries: &[LogEntry], log_size: u64) {
    let height = block.header.height;
    for (chunk, events) in block.events.chunks(EVENTS_PER_BODY as usize).enumerate() {
        let chunk = u32::try_from(chunk).expect("blocks hold fewer than 2^32 events");
        batch.put(
            Tree::Blocks,
            body_key(height, chunk),
            body_record(events.iter().map(|e| e.bytes())),
        );
    }
    let mut lists = BlockLists::default();
    for (i, (e, entry)) in block.events.iter().zip(entries).enumerate() {
        let id = e.id();
        let log_index = log_size + i as u64;
        assert_eq!(entry.log_index, log_index, "entries are in block order");
        assert_eq!(entry.event_id, id, "an entry is its event's");
        let location = EventLocation {
            height: block.header.height,
            index_in_block: u32::try_from(i).expect("blocks hold fewer than 2^32 events"),
            log_index,
        };
        let value = event_record(location, entry.shipment_prev.as_ref());
        batch.put(Tree::Events, id.as_bytes().to_vec(), value);
        let kind = &e.event().event.kind;
        if let Some(shipment) = kind.shipment_id() {
            lists.add(shipment_prefix(shipment), log_index, &id);
        }
        lists.add(signer_prefix(&e.event().signer), log_index, &id);
        if let EventKind::ReferenceDataPublished(r) = kind {
            batch.put(
                Tree::Index,
                with_suffix(&reference_prefix(&r.table_id), r.effective_from.0),
                id.as_bytes().to_vec(),
            );
        }
        search::index_event(batch, kind);
    }
    lists.write(batch);
}

/// The state records the block changes, with the search entries that move with them.
fn put_delta<S: Store + ?Sized>(
    store: &S,
    batch: &mut WriteBatch,
    delta: &StateDelta,
) -> Result<(), StoreError> {
    for s in &delta.shipments {
        // The record being replaced says which filter entries move.
        let before = shipment(store, &s.shipment_id)?;
        search::index_shipment(batch, before.as_ref(), s);
        batch.put(
            Tree::State,
            state_key(b'S', s.shipment_id.0.as_bytes()),
            codec::encode(s),
        );
    }
    for m in &delta.members {
        batch.put(
            Tree::State,
            state_key(b'M', m.id.0.as_bytes()),
            codec::encode(m),
        );
    }
    for activation in &delta.rules_schedule {
        batch.put(
            Tree::State,
            state_key(b'V', &activation.from_height.to_be_bytes()),
            codec::encode(activation),
        );
    }
    for (key, id) in &delta.keys {
        batch.put(
            Tree::State,
            state_key(b'K', &key.0),
            id.0.as_bytes().to_vec(),
        );
    }
    Ok(())
}

pub(super) fn check_chain<S: Store + ?Sized>(store: &S) -> Result<(), StoreError> {
    let Some(head) = head(store)? else {
        return Ok(());
    };
    let mut prev_hash = store.genesis_hash();
    for height in 1..=head.height {
        let broken = |reason: String| StoreError::BrokenChain { height, reason };
        let bytes = store
            .get(Tree::Blocks, &block_key(height, HEADER_TAG))?
            .ok_or_else(|| broken("header missing".into()))?;
        let header = BlockHeader::decode(&bytes)
            .map_err(|e| broken(format!("header does not decode: {e}")))?;
        let hash = header.hash();
        let cert_bytes = store
            .get(Tree::Blocks, &block_key(height, CERT_TAG))?
            .ok_or_else(|| broken("certificate missing".into()))?;
        let cert = CommitCertificate::decode(&cert_bytes)
            .map_err(|e| broken(format!("certificate does not decode: {e}")))?;
        if cert.block_hash != hash || cert.height != height {
            return Err(broken(
                "header is not the block its certificate names".into(),
            ));
        }
        if header.height != height {
            return Err(broken(format!("header says height {}", header.height)));
        }
        if header.prev_hash != prev_hash {
            return Err(broken(
                "previous-hash link does not match the block below".into(),
            ));
        }
        prev_hash = hash;
    }
    if prev_hash != head.block_hash {
        return Err(StoreError::BrokenChain {
            height: head.height,
            reason: "head record does not match the last header".into(),
        });
    }
    Ok(())
}

pub(super) fn load_state<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    events: &[impl AsRef<EncodedEvent>],
) -> Result<State, StoreError> {
    let mut state = State::from_genesis(genesis);
    for record in members(store)? {
        state.insert_member(record);
    }
    // The whole schedule: the rules read the version in force at the block's height, and the
    // state machine checks a new activation against the last one.
    for activation in rules_activations(store)? {
        state.insert_rules_activation(activation);
    }
    // Each shipment is read once, also one the store does not hold yet (registered by an
    // event of the list): asking again for every later event of it found nothing each time.
    let mut looked_up: BTreeSet<&ShipmentId> = BTreeSet::new();
    for e in events.iter().map(AsRef::as_ref) {
        if store.contains_event(&e.id())? {
            state.insert_committed(e.id());
        }
        match &e.event().event.kind {
            EventKind::ReferenceDataPublished(r) => {
                for (from, id) in reference_versions(store, &r.table_id)? {
                    state.insert_reference(r.table_id.clone(), from, id);
                }
            }
            kind => {
                if let Some(id) = kind.shipment_id() {
                    if looked_up.insert(id) {
                        if let Some(s) = shipment(store, id)? {
                            state.insert_shipment(s);
                        }
                    }
                    // A scan naming parcels is checked against the shipment's registered
                    // SSCCs, which live in its registration event, not in its record.
                    let names_parcels = matches!(
                        kind,
                        EventKind::TrackingScanRecorded(scan) if !scan.parcels.is_empty()
                    );
                    if names_parcels && state.parcels(id).is_none() {
                        if let Some(registered) = state.shipment(id).map(|s| s.registered_event) {
                            state.insert_parcels(
                                id.clone(),
                                registered_parcels(store, id, &registered)?,
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(state)
}

/// The SSCCs of a shipment's registration event.
fn registered_parcels<S: Store + ?Sized>(
    store: &S,
    id: &ShipmentId,
    registration: &EventId,
) -> Result<Vec<String>, StoreError> {
    let record = format!("shipment {id}");
    let stored = event(store, registration)?.ok_or_else(|| {
        corrupt(
            &record,
            format!("its registration event {registration} is not stored"),
        )
    })?;
    match stored.event.into_event().event.kind {
        EventKind::ShipmentRegistered(r) if r.shipment_id == *id => {
            Ok(r.parcels.into_iter().map(|p| p.sscc).collect())
        }
        _ => Err(corrupt(
            &record,
            format!("event {registration} is not its registration"),
        )),
    }
}

/// The delta a block is stored with must give every shipment the head its entries end at: the
/// state machine and the log agree on each shipment's chain.
fn assert_heads_match(heads: &BTreeMap<ShipmentId, Digest>, delta: &StateDelta) {
    assert_eq!(
        heads.len(),
        delta.shipments.len(),
        "every shipment a block writes has an event in it"
    );
    for s in &delta.shipments {
        assert_eq!(
            heads.get(&s.shipment_id),
            s.head_entry.as_ref(),
            "shipment {}: the delta's head entry is the last entry of its events",
            s.shipment_id
        );
    }
}

/// Where a committed event is and its log entry's `shipment_prev`, read from its record's
/// head without decoding the event: what a receipt needs.
pub(super) fn event_position<S: Store + ?Sized>(
    store: &S,
    id: &EventId,
) -> Result<Option<(EventLocation, Option<Digest>)>, StoreError> {
    let Some(value) = store.get(Tree::Events, id.as_bytes())? else {
        return Ok(None);
    };
    let parts = split_event_record(&value).ok_or_else(|| {
        corrupt(
            format!("event {id}"),
            "location or previous entry truncated",
        )
    })?;
    Ok(Some((parts.location, parts.shipment_prev)))
}

/// The log entry of a committed event.
pub(super) fn log_entry<S: Store + ?Sized>(
    store: &S,
    id: &EventId,
) -> Result<Option<LogEntry>, StoreError> {
    let Some((stored, shipment_prev)) = event_with_prev(store, id)? else {
        return Ok(None);
    };
    let corrupt = |message: &str| StoreError::Corrupt {
        record: format!("log entry of {id}"),
        message: message.into(),
    };
    let height = stored.location.height;
    let header = header(store, height)?.ok_or_else(|| corrupt("block header missing"))?;
    Ok(Some(LogEntry {
        event_id: *id,
        height,
        time: header.time,
        log_index: stored.location.log_index,
        shipment_prev,
    }))
}
