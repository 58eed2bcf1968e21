//! Log entries: what the verifiable log commits to for each event.
//!
//! A log leaf is not the bare event id but an entry that also names the event's block height,
//! block time and log index, and — for an event about a shipment — the entry of the same
//! shipment's previous event. So an inclusion proof also proves when an event was committed,
//! and a shipment's entries form a hash chain from its registration to its latest event, whose
//! head the block header's shipment map (`crate::smt`) commits to: a bundle that leaves an
//! event out breaks the chain or misses the head.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::event::EncodedEvent;
use crate::hash::Digest;
use crate::merkle;
use crate::model::{EventId, ShipmentId};
use crate::time::Timestamp;

/// One event's place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// The event.
    pub event_id: EventId,
    /// Height of the block that committed it.
    pub height: u64,
    /// That block's time: when the event was recorded.
    pub time: Timestamp,
    /// Its 0-based index in the log.
    pub log_index: u64,
    /// Entry hash of the same shipment's previous event; `None` for a shipment's first event
    /// and for events that name no shipment.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub shipment_prev: Option<Digest>,
}

impl LogEntry {
    /// The entry's hash, which is its RFC 6962 leaf hash: `SHA-256(0x00 || canonical(entry))`.
    pub fn hash(&self) -> Digest {
        merkle::leaf_hash(&codec::encode(self))
    }
}

/// The entries of a block's events, in block order. `head` gives a shipment's head entry
/// before the block (`None` for a shipment not yet registered); entries of the same shipment
/// within the block chain to each other.
pub fn block_entries<E>(
    events: &[EncodedEvent],
    height: u64,
    time: Timestamp,
    log_size: u64,
    mut head: impl FnMut(&ShipmentId) -> Result<Option<Digest>, E>,
) -> Result<Vec<LogEntry>, E> {
    let mut heads: BTreeMap<&ShipmentId, Option<Digest>> = BTreeMap::new();
    let mut entries = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let shipment = e.event().event.kind.shipment_id();
        let shipment_prev = match shipment {
            Some(s) => match heads.get(s) {
                Some(h) => *h,
                None => head(s)?,
            },
            None => None,
        };
        let entry = LogEntry {
            event_id: e.id(),
            height,
            time,
            log_index: log_size + i as u64,
            shipment_prev,
        };
        if let Some(s) = shipment {
            heads.insert(s, Some(entry.hash()));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The new head entry of every shipment the entries touch, in shipment order.
pub fn new_heads(events: &[EncodedEvent], entries: &[LogEntry]) -> BTreeMap<ShipmentId, Digest> {
    assert_eq!(events.len(), entries.len(), "one entry per event");
    let mut heads = BTreeMap::new();
    for (e, entry) in events.iter().zip(entries) {
        assert_eq!(e.id(), entry.event_id, "entries are in block order");
        if let Some(s) = e.event().event.kind.shipment_id() {
            heads.insert(s.clone(), entry.hash());
        }
    }
    heads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(prev: Option<Digest>) -> LogEntry {
        LogEntry {
            event_id: Digest::of(b"test", &[b"event"]),
            height: 7,
            time: Timestamp(1_700_000_000_000),
            log_index: 41,
            shipment_prev: prev,
        }
    }

    #[test]
    fn the_hash_is_the_leaf_hash_of_the_canonical_bytes() {
        let e = entry(None);
        assert_eq!(e.hash(), merkle::leaf_hash(&codec::encode(&e)));
        assert_ne!(e.hash(), entry(Some(Digest::ZERO)).hash());
    }

    #[test]
    fn every_field_moves_the_hash() {
        let base = entry(Some(Digest::ZERO)).hash();
        let mut e = entry(Some(Digest::ZERO));
        e.height += 1;
        assert_ne!(e.hash(), base);
        let mut e = entry(Some(Digest::ZERO));
        e.time = Timestamp(e.time.0 + 1);
        assert_ne!(e.hash(), base);
        let mut e = entry(Some(Digest::ZERO));
        e.log_index += 1;
        assert_ne!(e.hash(), base);
    }
}

#[cfg(test)]
mod vector {
    use super::*;

    /// The test vector of PROTOCOL.md §16.6.
    #[test]
    fn protocol_vector() {
        let with_prev = LogEntry {
            event_id: Digest([0x11; 32]),
            height: 3,
            time: Timestamp(1_767_225_600_000),
            log_index: 10,
            shipment_prev: Some(Digest([0x22; 32])),
        };
        let first = LogEntry {
            shipment_prev: None,
            ..with_prev.clone()
        };
        let prev_hex = "2022222222222222222222222222222222222222222222222222222222222222";
        assert_eq!(
            hex::encode(codec::encode(&with_prev)),
            format!("20{}03fd00a8da769b0100000a01{prev_hex}22", "11".repeat(32))
        );
        assert_eq!(
            with_prev.hash().to_hex(),
            "935321218854bf00a2570e88042f69a8694af79925b42da35c3f6c87d65a936d"
        );
        assert_eq!(
            hex::encode(codec::encode(&first)),
            format!("20{}03fd00a8da769b0100000a00", "11".repeat(32))
        );
        assert_eq!(
            first.hash().to_hex(),
            "70fec32209bd55e0c40f42810f86391ae5f98fdf32a3e3b2a3c436764bd7a5cd"
        );
    }
}
