//! Full verification of a stored ledger, from genesis to head, trusting nothing on disk.
//!
//! For every height it checks, from the stored bytes: the header decodes canonically and
//! links to its parent; the commit certificate carries precommits of more than two thirds
//! of the genesis voting power for that header; every listed event is present, canonical,
//! hashes to its id and carries a valid signature; the events root, log size and log root
//! match; and replaying the events through the state machine gives the header's state root.
//! The first failure is reported with its height.

use crate::block::{events_root, verify_certificate, BlockHeader, CommitCertificate};
use crate::chain::execute;
use crate::codec;
use crate::event::EncodedEvent;
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::merkle;
use crate::model::EventId;
use crate::rules::Rules;
use crate::smt::{self, MemoryMap};
use crate::state::{state_root, BlockContext, State};
use crate::store::{raw_event, RawEvent, Store};
use crate::time::Timestamp;

/// What a verified ledger looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSummary {
    /// Heights verified (the head height).
    pub height: u64,
    /// Hash of the head header (the genesis hash if there are no blocks).
    pub head_hash: Digest,
    /// Events in the log.
    pub log_size: u64,
    /// The log root.
    pub log_root: Digest,
}

/// The first height that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("height {height}: {reason}")]
pub struct VerifyError {
    /// The height.
    pub height: u64,
    /// What failed.
    pub reason: String,
}

/// The right edge of an RFC 6962 tree: one complete subtree root per set bit of the size.
/// Enough to extend the log and compute its root without keeping the leaves.
#[derive(Debug, Clone, Default)]
pub struct LogFrontier {
    size: u64,
    peaks: Vec<Digest>,
}

impl LogFrontier {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Digest) {
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.peaks.pop().expect("one peak per set bit of the size");
            hash = merkle::node_hash(&left, &hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
        debug_assert_eq!(self.peaks.len() as u32, self.size.count_ones());
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root.
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return merkle::empty_root();
        };
        peaks.fold(*last, |acc, left| merkle::node_hash(left, &acc))
    }
}

/// Verifies the whole stored ledger against its genesis, replaying every event through
/// `rules` and the state machine. `progress` is called with each verified height and the
/// head height.
pub fn verify_chain<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    mut rules: R,
    mut progress: impl FnMut(u64, u64),
) -> Result<ChainSummary, VerifyError> {
    let fail = |height: u64, reason: String| VerifyError { height, reason };
    let genesis_hash = genesis.hash();
    if store.genesis_hash() != genesis_hash {
        return Err(fail(0, "store belongs to another genesis".into()));
    }
    genesis
        .validate()
        .map_err(|e| fail(0, format!("genesis: {e}")))?;
    let validators = genesis.validators();
    let head_height = store
        .head()
        .map_err(|e| fail(0, format!("head record: {e}")))?
        .map_or(0, |h| h.height);
    let mut state = State::from_genesis(genesis);
    let mut frontier = LogFrontier::default();
    let mut map = MemoryMap::default();
    let mut prev_hash = genesis_hash;
    let mut prev_state_root = genesis_hash;
    let mut prev_time: Timestamp = genesis.genesis_time;
    for height in 1..=head_height {
        let fail = |reason: String| VerifyError { height, reason };
        let raw = store
            .raw_block(height)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("block missing".into()))?;
        let header = BlockHeader::decode(&raw.header).map_err(|e| fail(format!("header: {e}")))?;
        let hash = header.hash();
        let cert = CommitCertificate::decode(&raw.certificate)
            .map_err(|e| fail(format!("certificate: {e}")))?;
        verify_certificate(&cert, &genesis.chain_id, height, &hash, &validators)
            .map_err(|e| fail(format!("certificate: {e}")))?;
        if header.height != height || header.chain_id != genesis.chain_id {
            return Err(fail("header height or chain id is wrong".into()));
        }
        if header.prev_hash != prev_hash {
            return Err(fail("previous-hash link is broken".into()));
        }
        if !validators.iter().any(|v| v.key == header.proposer) {
            return Err(fail(format!(
                "proposer {} is not a validator",
                header.proposer
            )));
        }
        if header.event_count as usize > crate::block::BLOCK_EVENTS_MAX {
            return Err(fail("block holds more events than allowed".into()));
        }
        if header.time < prev_time {
            return Err(fail("block time goes backwards".into()));
        }
        let ids: Vec<EventId> = codec::decode(&raw.event_ids, codec::BLOCK_SIZE_BYTES_MAX)
            .map_err(|e| fail(format!("event list: {e}")))?;
        if ids.len() != header.event_count as usize {
            return Err(fail("event count differs from the header".into()));
        }
        let mut events = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let RawEvent { location, bytes } = raw_event(store, id)
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail(format!("event {i} ({id}) is missing")))?;
            let event =
                EncodedEvent::decode(&bytes).map_err(|e| fail(format!("event {i} ({id}): {e}")))?;
            if event.id != *id {
                return Err(fail(format!(
                    "event {i} ({id}): stored bytes hash to {}",
                    event.id
                )));
            }
            let location =
                location.ok_or_else(|| fail(format!("event {i} ({id}): location missing")))?;
            if location.height != height
                || location.index_in_block as usize != i
                || location.log_index != frontier.size() + i as u64
            {
                return Err(fail(format!("event {i} ({id}): stored location is wrong")));
            }
            events.push(event);
        }
        if events_root(&ids) != header.events_root {
            return Err(fail("events root does not match the events".into()));
        }
        let ctx = BlockContext {
            height,
            time: header.time,
        };
        let (delta, entries) = execute(
            &mut state,
            &mut rules,
            &events,
            genesis,
            ctx,
            frontier.size(),
        )
        .map_err(|e| fail(e.to_string()))?;
        for entry in &entries {
            frontier.push(entry.hash());
        }
        if frontier.size() != header.log_size || frontier.root() != header.log_root {
            return Err(fail("log size or log root does not match the log".into()));
        }
        let root = state_root(&prev_state_root, &delta);
        if root != header.state_root {
            return Err(fail("state root does not match the replayed state".into()));
        }
        let update = smt::update(&map, &crate::chain::map_updates(&delta))
            .unwrap_or_else(|never| match never {});
        if update.root != header.shipments_root {
            return Err(fail(
                "shipments root does not match the replayed shipment heads".into(),
            ));
        }
        map.apply(&update);
        prev_hash = hash;
        prev_state_root = root;
        prev_time = header.time;
        progress(height, head_height);
    }
    Ok(ChainSummary {
        height: head_height,
        head_hash: prev_hash,
        log_size: frontier.size(),
        log_root: frontier.root(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_root_matches_the_memory_log_at_every_size() {
        let mut frontier = LogFrontier::default();
        let mut log = merkle::MemoryLog::new();
        assert_eq!(frontier.root(), log.root());
        for i in 0u64..300 {
            let leaf = merkle::leaf_hash(&i.to_be_bytes());
            frontier.push(leaf);
            log.push(leaf);
            assert_eq!(frontier.root(), log.root(), "size {}", i + 1);
        }
    }
}
