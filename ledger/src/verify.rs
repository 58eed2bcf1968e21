//! Full verification of a stored ledger, from genesis to head, trusting nothing on disk.
//!
//! Every stored block is read back from its bytes and judged with the validators' own code:
//! the commit certificate, then `chain`'s one header check, the events' signatures in one
//! batch, the one event pipeline, and the header computed from the events and compared field by
//! field. On top, it checks what only a stored ledger has: the listed event ids, that each
//! stored event hashes to its id, and each event's stored location. The first failure is
//! reported with its height.
//!
//! Unlike a validator, which reads the state a block needs from its store, the replay keeps
//! the state, the log's right edge and the shipment map in memory from block to block, so it
//! holds no copy of the events: memory grows with shipments and members, not with the log.

use crate::block::{verify_certificate, Block, BlockHeader, CertificateError, CommitCertificate};
use crate::chain::{self, HeaderInputs, Parent};
use crate::codec;
use crate::event::{EncodedEvent, VerifiedEvent};
use crate::genesis::{Genesis, GenesisError};
use crate::hash::Digest;
use crate::keys::KeyCache;
use crate::merkle;
use crate::model::EventId;
use crate::rules::Rules;
use crate::smt::{self, MemoryMap};
use crate::state::{BlockContext, State};
use crate::store::{raw_event_bodies, raw_location, Store, StoreError};

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
#[error("height {height}: {failure}")]
pub struct VerifyError {
    /// The height (0 for the genesis and the store as a whole).
    pub height: u64,
    /// What failed.
    #[source]
    pub failure: VerifyFailure,
}

/// What failed at a height, keeping the error that said so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    /// The store was made for another network.
    #[error("store belongs to another genesis")]
    OtherGenesis,
    /// The genesis document is unusable.
    #[error("genesis: {0}")]
    Genesis(#[source] GenesisError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record is not what a ledger writes (missing, undecodable, misplaced).
    #[error("{0}")]
    Record(String),
    /// The commit certificate does not certify the block.
    #[error("certificate: {0}")]
    Certificate(#[source] CertificateError),
    /// The block is invalid: a header field or an event, named.
    #[error(transparent)]
    Block(#[from] chain::BlockError),
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

/// Verifies the whole stored ledger against its genesis, replaying every block through
/// `rules` as a validator would. `progress` is called with each verified height and the
/// head height.
pub fn verify_chain<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: R,
    mut progress: impl FnMut(u64, u64),
) -> Result<ChainSummary, VerifyError> {
    let fail = |height: u64, failure: VerifyFailure| VerifyError { height, failure };
    let genesis_hash = genesis.hash();
    if store.genesis_hash() != genesis_hash {
        return Err(fail(0, VerifyFailure::OtherGenesis));
    }
    genesis
        .validate()
        .map_err(|e| fail(0, VerifyFailure::Genesis(e)))?;
    let head_height = store
        .head()
        .map_err(|e| fail(0, e.into()))?
        .map_or(0, |h| h.height);
    let mut replay = Replay::new(genesis, genesis_hash, rules);
    for height in 1..=head_height {
        let fail = |failure: VerifyFailure| VerifyError { height, failure };
        let (block, cert) = read_block(store, height, replay.parent.log_size).map_err(fail)?;
        verify_certificate(
            &cert,
            &genesis.chain_id,
            height,
            &block.hash(),
            &replay.validators,
        )
        .map_err(|e| fail(VerifyFailure::Certificate(e)))?;
        replay.apply(genesis, block).map_err(|e| fail(e.into()))?;
        progress(height, head_height);
    }
    let parent = replay.parent;
    Ok(ChainSummary {
        height: parent.height,
        head_hash: parent.hash,
        log_size: parent.log_size,
        log_root: replay.log.root(),
    })
}

/// What a verification keeps from one block to the next.
struct Replay<R> {
    validators: Vec<crate::genesis::Validator>,
    keys: KeyCache,
    rules: R,
    state: State,
    log: LogFrontier,
    map: MemoryMap,
    parent: Parent,
}

impl<R: Rules> Replay<R> {
    fn new(genesis: &Genesis, genesis_hash: Digest, rules: R) -> Replay<R> {
        Replay {
            validators: genesis.validators(),
            keys: KeyCache::new(),
            rules,
            state: State::from_genesis(genesis),
            log: LogFrontier::default(),
            map: MemoryMap::default(),
            parent: Parent::genesis(genesis, genesis_hash),
        }
    }

    /// One block through the validators' checks, on the state the blocks before it left.
    fn apply(&mut self, genesis: &Genesis, block: Block) -> Result<(), chain::BlockError> {
        let Block { header, events } = block;
        chain::check_header(genesis, &self.parent, &header, events.len())?;
        let events = chain::verify_unchecked(events, genesis, &self.keys)?;
        chain::execute(&mut self.state, &mut self.rules, genesis, &header, &events)?;
        let events: Vec<EncodedEvent> = events
            .into_iter()
            .map(VerifiedEvent::into_encoded)
            .collect();
        let ctx = BlockContext {
            height: header.height,
            time: header.time,
        };
        let (delta, entries) =
            chain::finish_block(&mut self.state, &events, ctx, self.parent.log_size);
        for entry in &entries {
            self.log.push(entry.hash());
        }
        let update = smt::update(&self.map, &chain::map_updates(&delta))
            .unwrap_or_else(|never| match never {});
        let inputs = HeaderInputs {
            time: header.time,
            proposer: header.proposer,
            events: &events,
            entries: &entries,
            delta: &delta,
        };
        let expected =
            chain::header_with(genesis, &self.parent, &inputs, self.log.root(), update.root);
        chain::check_roots(&expected, &header)?;
        assert_eq!(
            expected, header,
            "a header whose every field was checked is the one computed"
        );
        assert_eq!(self.log.size(), expected.log_size, "one leaf per entry");
        self.map.apply(&update);
        self.parent = Parent {
            height: header.height,
            hash: header.hash(),
            time: header.time,
            log_size: self.log.size(),
            state_root: header.state_root,
        };
        Ok(())
    }
}

/// The block and certificate stored at `height`, decoded from their bytes, with every listed
/// event present, hashing to its listed id and stored at its place in the log (which held
/// `log_size` events before the block).
fn read_block<S: Store + ?Sized>(
    store: &S,
    height: u64,
    log_size: u64,
) -> Result<(Block, CommitCertificate), VerifyFailure> {
    let record = VerifyFailure::Record;
    let raw = store
        .raw_block(height)?
        .ok_or_else(|| record("block missing".into()))?;
    let header = BlockHeader::decode(&raw.header).map_err(|e| record(format!("header: {e}")))?;
    let cert = CommitCertificate::decode(&raw.certificate)
        .map_err(|e| record(format!("certificate: {e}")))?;
    if header.height != height {
        return Err(record("header height or chain id is wrong".into()));
    }
    let ids: Vec<EventId> = codec::decode(&raw.event_ids, codec::BLOCK_SIZE_BYTES_MAX)
        .map_err(|e| record(format!("event list: {e}")))?;
    if ids.len() != header.event_count as usize {
        return Err(record("event count differs from the header".into()));
    }
    let bodies = raw_event_bodies(store, height, header.event_count)?;
    let mut events = Vec::with_capacity(ids.len());
    for (i, (id, bytes)) in ids.iter().zip(bodies).enumerate() {
        let location = raw_location(store, id)?
            .ok_or_else(|| record(format!("event {i} ({id}) is missing")))?;
        let bytes = bytes.ok_or_else(|| {
            record(format!(
                "event {i} ({id}): bytes missing from the block's body record"
            ))
        })?;
        let event =
            EncodedEvent::decode(&bytes).map_err(|e| record(format!("event {i} ({id}): {e}")))?;
        if event.id() != *id {
            return Err(record(format!(
                "event {i} ({id}): stored bytes hash to {}",
                event.id()
            )));
        }
        let location =
            location.ok_or_else(|| record(format!("event {i} ({id}): location missing")))?;
        if location.height != height
            || location.index_in_block as usize != i
            || location.log_index != log_size + i as u64
        {
            return Err(record(format!(
                "event {i} ({id}): stored location is wrong"
            )));
        }
        events.push(event);
    }
    Ok((Block { header, events }, cert))
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
