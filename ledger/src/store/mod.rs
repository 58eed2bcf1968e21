//! Storage of blocks, events, indexes, the log and the current state.
//!
//! A [`Store`] is a handful of ordered key-value trees with one write operation,
//! [`Store::commit`], which applies a whole [`WriteBatch`] atomically and durably: when it
//! returns, the batch survives a crash, and a crash during it leaves none of the batch. Two
//! implementations exist: `custody_sled::SledStore` (a sled database, one transaction across
//! all trees, then a flush), in its own crate so that this one does no I/O and starts no
//! thread, and [`MemoryStore`] (for tests). The ledger's layout on top of the trees — what a
//! block writes, how indexes are keyed — is written once, as the provided methods of the trait,
//! so both implementations behave identically.

mod layout;
mod lists;
mod log;
mod map;
mod memory;
mod search;

pub(crate) use layout::extend_log;
pub use layout::{
    raw_event_bodies, raw_location, EventLocation, Head, RawBlock, StoredEvent, FORMAT_KEY,
    GENESIS_KEY, MEMBERS_MAX, MINUTE_MS, REFERENCE_VERSIONS_MAX, STORE_FORMAT,
};
pub use map::MapSource;
pub(crate) use map::TileWrite;
pub use memory::MemoryStore;
pub use search::ShipmentIndex;

use crate::block::{Block, BlockHeader, CommitCertificate};
use crate::cause::Cause;
use crate::chain::ValidatedBlock;
use crate::event::EncodedEvent;
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::keys::PublicKey;
use crate::merkle;
use crate::model::{EventId, MemberId, ShipmentId};
use crate::state::{MemberRecord, ShipmentState, State};
use crate::time::Timestamp;

/// The trees of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tree {
    /// Head and genesis hash.
    Meta,
    /// Headers, certificates and event-id lists by height.
    Blocks,
    /// Event bytes, locations and previous entries by id.
    Events,
    /// Secondary indexes: by shipment, by signer, reference tables, and the shipment search
    /// and filter indexes.
    Index,
    /// Current state: shipments, members, keys.
    State,
    /// Complete subtrees of the RFC 6962 log: tiles of the bottom levels, nodes above.
    Log,
    /// The shipment map (`smt`) at the head, four levels to a record (`map.rs`).
    Map,
}

impl Tree {
    /// Every tree, in a fixed order.
    pub const ALL: [Tree; 7] = [
        Tree::Meta,
        Tree::Blocks,
        Tree::Events,
        Tree::Index,
        Tree::State,
        Tree::Log,
        Tree::Map,
    ];

    /// The tree's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Blocks => "blocks",
            Tree::Events => "events",
            Tree::Index => "index",
            Tree::State => "state",
            Tree::Log => "log",
            Tree::Map => "map",
        }
    }

    /// The tree's index in [`Tree::ALL`], for implementations that keep one tree per entry
    /// of an array.
    pub fn position(self) -> usize {
        self as usize
    }
}

/// A key and its value, as a scan returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Writes to apply together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    /// (tree, key, value) writes, applied in order: `Some` puts the value, `None` removes the
    /// key (only secondary indexes of values that change, such as a shipment's custodian,
    /// ever remove anything).
    pub writes: Vec<(Tree, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// Adds a put.
    pub fn put(&mut self, tree: Tree, key: Vec<u8>, value: Vec<u8>) {
        self.writes.push((tree, key, Some(value)));
    }

    /// Adds a removal; removing an absent key does nothing.
    pub fn delete(&mut self, tree: Tree, key: Vec<u8>) {
        self.writes.push((tree, key, None));
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The underlying database failed.
    #[error("storage I/O failed: {0}")]
    Io(#[source] Cause),
    /// A shipment's records kept changing under the reads of its bundle (commits raced it
    /// every time).
    #[error(
        "storage I/O failed: the bundle of {shipment} could not be read consistently in \
         {attempts} attempts"
    )]
    Unsettled {
        /// The shipment.
        shipment: ShipmentId,
        /// How many times the bundle was read.
        attempts: usize,
    },
    /// The database files are damaged: sled found them corrupt, or panicked reading them (a
    /// file cut short or with flipped bytes). The store cannot be used; the node's
    /// `--repair resync-ledger` moves it aside and fetches the chain from peers.
    #[error("the ledger store in {path} is damaged: {message}")]
    Damaged {
        /// The store's folder (the sled database: its `db` file, `conf` and snapshots).
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Stored bytes did not decode; the message says which record.
    #[error("corrupt record {record}: {message}")]
    Corrupt {
        /// Which record.
        record: String,
        /// What is wrong.
        message: String,
    },
    /// A bounded read of consensus state found more entries than its bound; the store
    /// refuses to go on with part of them.
    #[error("the store holds more {what} than the {max} a node reads")]
    LimitExceeded {
        /// What was read.
        what: String,
        /// The bound.
        max: usize,
    },
    /// The stored hash chain is broken at a height.
    #[error("stored chain is broken at height {height}: {reason}")]
    BrokenChain {
        /// The first height that does not check.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The store belongs to another network.
    #[error("store was created for genesis {stored}, not {expected}")]
    GenesisMismatch {
        /// Genesis hash in the store.
        stored: Digest,
        /// Genesis hash expected.
        expected: Digest,
    },
    /// The block does not extend the stored head.
    #[error(
        "block {height} with parent {prev_hash} does not extend head {head_height} ({head_hash})"
    )]
    NotNext {
        /// Height of the block offered.
        height: u64,
        /// Its parent hash.
        prev_hash: Digest,
        /// Stored head height (0 if empty).
        head_height: u64,
        /// Stored head hash (genesis hash if empty).
        head_hash: Digest,
    },
    /// The store was written by another protocol format.
    #[error("the store was written by {found}, this node reads {expected}; a store of an earlier storage layout of the same chain is moved aside and synced again (the node's `--repair resync-ledger`), and a network moves to a new protocol format with a new genesis and new data directories (PROTOCOL.md, migration)")]
    Format {
        /// The format the store records (`no format record` for stores before v4).
        found: String,
        /// The format this code reads.
        expected: &'static str,
    },
    /// A proof was asked for sizes or indexes the log does not have.
    #[error("proof request out of range: {0}")]
    ProofRange(String),
}

/// Ordered key-value trees with atomic, durable batches; the ledger layout on top.
pub trait Store: Send + Sync {
    /// The value at `key`.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Whether `key` holds a value. Admission and validation ask this of every event's id;
    /// a store that can answer without copying the value out overrides it.
    fn contains(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.get(tree, key)?.is_some())
    }

    /// Up to `limit` entries whose keys start with `prefix` and sort after `after` (or from
    /// the start of the prefix), in key order.
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;

    /// Applies a batch atomically and durably.
    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError>;

    /// The genesis hash the store was created for.
    fn genesis_hash(&self) -> Digest;

    /// The latest block, if any.
    fn head(&self) -> Result<Option<Head>, StoreError> {
        layout::head(self)
    }

    /// Appends a decided block with its certificate and the state delta and log entries its
    /// validation produced, as one atomic, flushed write. The block must extend the head (it
    /// may have been validated before another block was appended); its roots were checked by
    /// validation and are asserted again here.
    fn append_block<R>(
        &self,
        block: &ValidatedBlock<R>,
        cert: &CommitCertificate,
    ) -> Result<(), StoreError> {
        layout::append_block(self, block, cert)
    }

    /// The header at a height.
    fn header(&self, height: u64) -> Result<Option<BlockHeader>, StoreError> {
        layout::header(self, height)
    }

    /// The commit certificate at a height.
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError> {
        layout::certificate(self, height)
    }

    /// The whole block at a height.
    fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        layout::block(self, height)
    }

    /// Up to `limit` consecutive blocks starting at height `from`, fewer at the head.
    fn blocks(&self, from: u64, limit: usize) -> Result<Vec<Block>, StoreError> {
        let mut out = Vec::new();
        let mut height = from.max(1);
        while out.len() < limit {
            match self.block(height)? {
                Some(block) => out.push(block),
                None => break,
            }
            height += 1;
        }
        Ok(out)
    }

    /// The stored bytes of a block, undecoded, for verification.
    fn raw_block(&self, height: u64) -> Result<Option<RawBlock>, StoreError> {
        layout::raw_block(self, height)
    }

    /// An event and where it is.
    fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        layout::event(self, id)
    }

    /// The log entry of a committed event: what its log leaf hashes.
    fn log_entry(&self, id: &EventId) -> Result<Option<crate::entry::LogEntry>, StoreError> {
        layout::log_entry(self, id)
    }

    /// Where a committed event is and the `shipment_prev` of its log entry, without decoding
    /// the event: the receipt's inputs, cheaper than [`Store::event`] and [`Store::log_entry`].
    fn event_position(
        &self,
        id: &EventId,
    ) -> Result<Option<(EventLocation, Option<Digest>)>, StoreError> {
        layout::event_position(self, id)
    }

    /// Whether an event is committed.
    fn contains_event(&self, id: &EventId) -> Result<bool, StoreError> {
        self.contains(Tree::Events, id.as_bytes())
    }

    /// A shipment's current state.
    fn shipment(&self, id: &ShipmentId) -> Result<Option<ShipmentState>, StoreError> {
        layout::shipment(self, id)
    }

    /// Up to `limit` shipment records in id order, starting after the shipment `after`.
    fn shipments(
        &self,
        after: Option<&ShipmentId>,
        limit: usize,
    ) -> Result<Vec<ShipmentState>, StoreError> {
        layout::shipments(self, after, limit)
    }

    /// Up to `limit` ids of the shipments whose `index` holds `value` (exactly), in id order,
    /// starting after the shipment `after`. See [`ShipmentIndex`] for what is indexed.
    fn shipments_by(
        &self,
        index: ShipmentIndex,
        value: &str,
        after: Option<&ShipmentId>,
        limit: usize,
    ) -> Result<Vec<ShipmentId>, StoreError> {
        search::shipments_by(self, index, value, after, limit)
    }

    /// Events committed in blocks whose time falls in the minute holding `time` (an index
    /// kept as blocks are appended; a store from before it counts nothing for earlier blocks).
    fn events_in_minute(&self, time: Timestamp) -> Result<u64, StoreError> {
        layout::events_in_minute(self, time)
    }

    /// Up to `limit` (log index, event id) pairs about a shipment, after a log index.
    fn shipment_events(
        &self,
        id: &ShipmentId,
        after_log_index: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, EventId)>, StoreError> {
        lists::read(self, &layout::shipment_prefix(id), after_log_index, limit)
    }

    /// Up to `limit` (log index, event id) pairs signed by a key, after a log index.
    fn member_events(
        &self,
        key: &PublicKey,
        after_log_index: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, EventId)>, StoreError> {
        lists::read(self, &layout::signer_prefix(key), after_log_index, limit)
    }

    /// Members written by blocks (genesis members appear once a block changes them).
    fn stored_member(&self, id: &MemberId) -> Result<Option<MemberRecord>, StoreError> {
        layout::member(self, id)
    }

    /// Every member record written by blocks.
    fn stored_members(&self) -> Result<Vec<MemberRecord>, StoreError> {
        layout::members(self)
    }

    /// Published versions of a reference table: (effective from, event id), oldest first.
    fn reference_versions(&self, table_id: &str) -> Result<Vec<(Timestamp, EventId)>, StoreError> {
        layout::reference_versions(self, table_id)
    }

    /// Every published reference table version: (table id, effective from, event id), by
    /// table id then date. Bounded by `layout::REFERENCE_VERSIONS_MAX`.
    fn reference_entries(&self) -> Result<Vec<(String, Timestamp, EventId)>, StoreError> {
        layout::reference_entries(self)
    }

    /// A complete subtree of the log.
    fn log_node(&self, level: u32, index: u64) -> Result<Digest, StoreError> {
        layout::log_node(self, level, index)
    }

    /// Inclusion proof of the event at `log_index` in the log of `size` events.
    fn inclusion_proof(&self, log_index: u64, size: u64) -> Result<Vec<Digest>, StoreError> {
        self.check_log_size(size)?;
        merkle::inclusion_proof(&layout::LogSource(self), log_index, size).map_err(proof_error)
    }

    /// Inclusion proofs of many events, each `(log_index, size)`, in order. The log nodes read
    /// are remembered across the proofs, so the events of one block, whose paths share all
    /// but their lowest nodes, cost few store reads.
    fn inclusion_proofs(&self, wanted: &[(u64, u64)]) -> Result<Vec<Vec<Digest>>, StoreError> {
        self.inclusion_proofs_with(wanted, &[])
    }

    /// [`Store::inclusion_proofs`], given some of the log's nodes as (level, index, hash):
    /// those a block just wrote ([`ValidatedBlock::log_nodes`]), so that the receipts of its
    /// events read only the few older nodes their paths pass. `known` must be stored nodes.
    fn inclusion_proofs_with(
        &self,
        wanted: &[(u64, u64)],
        known: &[(u32, u64, Digest)],
    ) -> Result<Vec<Vec<Digest>>, StoreError> {
        if let Some(largest) = wanted.iter().map(|&(_, size)| size).max() {
            self.check_log_size(largest)?;
        }
        let source = layout::MemoLogSource::with_known(self, known);
        wanted
            .iter()
            .map(|&(log_index, size)| {
                merkle::inclusion_proof(&source, log_index, size).map_err(proof_error)
            })
            .collect()
    }

    /// Consistency proof from the log of `old_size` events to that of `new_size`.
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Digest>, StoreError> {
        self.check_log_size(new_size)?;
        merkle::consistency_proof(&layout::LogSource(self), old_size, new_size).map_err(proof_error)
    }

    /// Root of the log of `size` events.
    fn log_root(&self, size: u64) -> Result<Digest, StoreError> {
        self.check_log_size(size)?;
        merkle::root(&layout::LogSource(self), size).map_err(proof_error)
    }

    /// Errors unless the log has at least `size` events.
    fn check_log_size(&self, size: u64) -> Result<(), StoreError> {
        let have = self.head()?.map_or(0, |h| h.log_size);
        if size > have {
            return Err(StoreError::ProofRange(format!(
                "the log has {have} events, not {size}"
            )));
        }
        Ok(())
    }

    /// Walks the stored header chain from height 1 to the head: each header decodes, has
    /// its height, links to its parent, and is the block its certificate names; the head
    /// record matches the last header. Stores run this on open and refuse a broken chain.
    fn check_chain(&self) -> Result<(), StoreError> {
        layout::check_chain(self)
    }

    /// The state the state machine needs for `events`: genesis members overlaid with stored
    /// member records, the shipments and reference tables the events name, and which of the
    /// events are already committed.
    fn load_state(
        &self,
        genesis: &Genesis,
        events: &[impl AsRef<EncodedEvent>],
    ) -> Result<State, StoreError> {
        layout::load_state(self, genesis, events)
    }

    /// The state before any event: members, the rules schedule and nothing else.
    fn load_base_state(&self, genesis: &Genesis) -> Result<State, StoreError> {
        layout::load_state(self, genesis, &[] as &[EncodedEvent])
    }
}

fn proof_error(error: merkle::ProofError<StoreError>) -> StoreError {
    match error {
        merkle::ProofError::Source(e) => e,
        merkle::ProofError::Merkle(e) => StoreError::ProofRange(e.to_string()),
    }
}
