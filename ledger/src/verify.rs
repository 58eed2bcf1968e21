//! Full verification of a stored ledger, from genesis to head, trusting nothing on disk.
//!
//! Every stored block is read back from its bytes and replayed into an in-memory store
//! through exactly what a validator runs on a proposal ([`chain::validate_block`]: one
//! header check, the events' signatures in one batch, the one event pipeline, every root)
//! and what it runs on a decision (the commit certificate, then `Store::append_block`). On
//! top, it checks what only a stored ledger has: the listed event ids, that each stored event
//! hashes to its id, and each event's stored location. The first failure is reported with its
//! height.
//!
//! The replay holds the whole ledger in memory (events, indexes, log and shipment map), about
//! as much again as the store holds on disk.

use crate::block::{verify_certificate, Block, BlockHeader, CommitCertificate};
use crate::chain::{self, ValidatedBlock};
use crate::codec;
use crate::event::EncodedEvent;
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::keys::KeyCache;
use crate::model::EventId;
use crate::rules::Rules;
use crate::store::{raw_event, MemoryStore, RawEvent, Store};

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

/// Verifies the whole stored ledger against its genesis, replaying every block through
/// `rules` as a validator would. `progress` is called with each verified height and the
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
    let head_height = store
        .head()
        .map_err(|e| fail(0, format!("head record: {e}")))?
        .map_or(0, |h| h.height);
    let replay = MemoryStore::new(genesis_hash);
    let keys = KeyCache::new();
    for height in 1..=head_height {
        let fail = |reason: String| VerifyError { height, reason };
        let log_size = replay
            .head()
            .map_err(|e| fail(e.to_string()))?
            .map_or(0, |h| h.log_size);
        let (block, cert) = read_block(store, height, log_size).map_err(fail)?;
        verify_certificate(
            &cert,
            &genesis.chain_id,
            height,
            &block.hash(),
            &genesis.validators(),
        )
        .map_err(|e| fail(format!("certificate: {e}")))?;
        let validated: ValidatedBlock<R> =
            chain::validate_block(&replay, genesis, &rules, block, &keys)
                .map_err(|e| fail(e.to_string()))?;
        replay
            .append_block(&validated, &cert)
            .map_err(|e| fail(e.to_string()))?;
        rules = validated.into_parts().1;
        progress(height, head_height);
    }
    let head = replay
        .head()
        .map_err(|e| fail(head_height, e.to_string()))?;
    Ok(ChainSummary {
        height: head_height,
        head_hash: head.map_or(genesis_hash, |h| h.block_hash),
        log_size: head.map_or(0, |h| h.log_size),
        log_root: head.map_or_else(crate::merkle::empty_root, |h| h.log_root),
    })
}

/// The block and certificate stored at `height`, decoded from their bytes, with every listed
/// event present, hashing to its listed id and stored at its place in the log (which held
/// `log_size` events before the block).
fn read_block<S: Store + ?Sized>(
    store: &S,
    height: u64,
    log_size: u64,
) -> Result<(Block, CommitCertificate), String> {
    let raw = store
        .raw_block(height)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "block missing".to_string())?;
    let header = BlockHeader::decode(&raw.header).map_err(|e| format!("header: {e}"))?;
    let cert =
        CommitCertificate::decode(&raw.certificate).map_err(|e| format!("certificate: {e}"))?;
    if header.height != height {
        return Err("header height or chain id is wrong".into());
    }
    let ids: Vec<EventId> = codec::decode(&raw.event_ids, codec::BLOCK_SIZE_BYTES_MAX)
        .map_err(|e| format!("event list: {e}"))?;
    if ids.len() != header.event_count as usize {
        return Err("event count differs from the header".into());
    }
    let mut events = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let RawEvent { location, bytes } = raw_event(store, id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("event {i} ({id}) is missing"))?;
        let event = EncodedEvent::decode(&bytes).map_err(|e| format!("event {i} ({id}): {e}"))?;
        if event.id() != *id {
            return Err(format!(
                "event {i} ({id}): stored bytes hash to {}",
                event.id()
            ));
        }
        let location = location.ok_or_else(|| format!("event {i} ({id}): location missing"))?;
        if location.height != height
            || location.index_in_block as usize != i
            || location.log_index != log_size + i as u64
        {
            return Err(format!("event {i} ({id}): stored location is wrong"));
        }
        events.push(event);
    }
    Ok((Block { header, events }, cert))
}
