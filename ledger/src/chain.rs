//! Building and validating blocks: the state machine applied to a batch of events.
//!
//! There is one event pipeline ([`check_alone`], then [`apply_checked`]) and one header
//! check, and three ways in: the proposer calls [`build_block`] with verified candidates and
//! gets a block of the ones that apply plus the rejects; every validator calls
//! [`validate_verified`] on a proposal once its events' signatures are checked
//! ([`verify_events`], which takes the events the node already verified as they are);
//! `verify::verify_chain` and a syncing node run [`validate_block`], which checks them all. Each returns a
//! [`ValidatedBlock`], the only thing a store appends. All are deterministic functions of
//! the stored state and their inputs.

use std::convert::Infallible;

use crate::block::{events_root, Block, BlockHeader, BLOCK_EVENTS_MAX};
use crate::entry::{block_entries, new_heads, LogEntry};
use crate::event::{
    check_encoded, check_occurred_at, verify_events, EncodedEvent, EventFailure, VerifiedEvent,
};
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::keys::{KeyCache, PublicKey};
use crate::reject::Rejection;
use crate::rules::Rules;
use crate::smt;
use crate::state::{apply, state_root, BlockContext, State, StateDelta};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// Why a proposed block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A header field is wrong.
    #[error("header field {field}: {message}")]
    Header {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An event is invalid.
    #[error("event {index} ({id}) is invalid: {rejection}")]
    Event {
        /// Position in the block.
        index: usize,
        /// Its id.
        id: Digest,
        /// Why.
        rejection: Rejection,
    },
}

/// A block that passed validation against the stored state it extends (or was built by the
/// same checks), with what appending it writes: the state delta, the events' log entries,
/// and the rules as they are after it. Only [`build_block`] and [`validate_block`] make one,
/// and it is the only thing `Store::append_block` accepts, so no block reaches the store
/// without the checks every validator and every auditor runs.
#[derive(Debug, Clone)]
pub struct ValidatedBlock<R> {
    block: Block,
    delta: StateDelta,
    entries: Vec<LogEntry>,
    /// The block's roots as computed, with the log and shipment-map nodes that give them, so
    /// the store writes them without computing them again.
    roots: Roots,
    rules: R,
}

/// What computing a block's header produced besides the header: the log nodes its entries
/// add and the shipment map's node writes.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    pub(crate) log_nodes: Vec<(u32, u64, Digest)>,
    /// The shipment map's root after the block.
    pub(crate) map_root: Digest,
    /// The map's records the block rewrites, computed from the tiles validation read.
    pub(crate) map_tiles: Vec<crate::store::TileWrite>,
}

impl<R> ValidatedBlock<R> {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its header.
    pub fn header(&self) -> &BlockHeader {
        &self.block.header
    }

    /// Its hash.
    pub fn hash(&self) -> Digest {
        self.block.hash()
    }

    /// The state delta it produces.
    pub fn delta(&self) -> &StateDelta {
        &self.delta
    }

    /// Its events' log entries, in block order.
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    /// The rules as they are after the block (reference data it published included).
    pub fn rules(&self) -> &R {
        &self.rules
    }

    /// The log nodes the block creates, as (level, index, hash): every complete subtree of
    /// the log that ends within the block. Appending writes them, so after the append they
    /// are the store's.
    pub fn log_nodes(&self) -> &[(u32, u64, Digest)] {
        &self.roots.log_nodes
    }

    /// The log and shipment-map nodes appending the block writes.
    pub(crate) fn roots(&self) -> &Roots {
        &self.roots
    }

    /// The block, giving up the rest.
    pub fn into_block(self) -> Block {
        self.block
    }

    /// The block and the rules after it.
    pub fn into_parts(self) -> (Block, R) {
        (self.block, self.rules)
    }
}

/// A block built from candidates, and the candidates left out.
#[derive(Debug, Clone)]
pub struct BuiltBlock<R> {
    /// The block, validated as it was built.
    pub validated: ValidatedBlock<R>,
    /// Candidates left out, and why.
    pub rejected: Vec<(Digest, Rejection)>,
}

impl<R> BuiltBlock<R> {
    /// The rules as they are after the block.
    pub fn into_rules(self) -> R {
        self.validated.rules
    }

    /// The same block with the rules after it turned into others: for a node that built or
    /// validated under a wrapper of its rules (a test build's faulty proposer runs its rules
    /// inside one that lets everything through) and carries on with the inner ones. The block
    /// stays exactly as the wrapped rules judged it.
    pub fn map_rules<T>(self, f: impl FnOnce(R) -> T) -> BuiltBlock<T> {
        let ValidatedBlock {
            block,
            delta,
            entries,
            roots,
            rules,
        } = self.validated;
        BuiltBlock {
            validated: ValidatedBlock {
                block,
                delta,
                entries,
                roots,
                rules: f(rules),
            },
            rejected: self.rejected,
        }
    }
}

impl<R> std::ops::Deref for BuiltBlock<R> {
    type Target = ValidatedBlock<R>;

    fn deref(&self) -> &ValidatedBlock<R> {
        &self.validated
    }
}

/// What a block extends: the head of the store (or of a replay), or the genesis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parent {
    pub(crate) height: u64,
    pub(crate) hash: Digest,
    pub(crate) time: Timestamp,
    pub(crate) log_size: u64,
    pub(crate) state_root: Digest,
}

impl Parent {
    /// The parent of block 1.
    pub(crate) fn genesis(genesis: &Genesis, genesis_hash: Digest) -> Parent {
        Parent {
            height: 0,
            hash: genesis_hash,
            time: genesis.genesis_time,
            log_size: 0,
            state_root: genesis_hash,
        }
    }
}

fn parent<S: Store + ?Sized>(store: &S, genesis: &Genesis) -> Result<Parent, StoreError> {
    Ok(match store.head()? {
        Some(h) => Parent {
            height: h.height,
            hash: h.block_hash,
            time: h.time,
            log_size: h.log_size,
            state_root: h.state_root,
        },
        None => Parent::genesis(genesis, store.genesis_hash()),
    })
}

/// The checks of one event that need no state: size and shape, and `occurred_at` against
/// the genesis and the block time. The first stage of the one event pipeline.
pub fn check_alone(
    event: &EncodedEvent,
    genesis: &Genesis,
    time: Timestamp,
) -> Result<(), Rejection> {
    check_encoded(event, &genesis.chain_id)?;
    check_occurred_at(event.event(), genesis.genesis_time, time)
}

/// The rules, then the state machine, on one event whose signature was checked; on success
/// the rules learn from it. The second stage of the one event pipeline: block building,
/// block validation, chain verification and mempool admission all run exactly this.
pub fn apply_checked<R: Rules>(
    state: &mut State,
    rules: &mut R,
    event: &VerifiedEvent,
    ctx: BlockContext,
) -> Result<(), Rejection> {
    rules.check(state, event, ctx)?;
    apply(state, event, ctx)?;
    rules.applied(event, ctx);
    Ok(())
}

/// Builds the next block from candidate events, in the given order, keeping those that
/// pass the event pipeline (at most [`BLOCK_EVENTS_MAX`]). The candidates' signatures were
/// checked (their type says so), typically when they entered the mempool.
///
/// `time` is clamped to be no earlier than the parent's.
pub fn build_block<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    candidates: Vec<VerifiedEvent>,
    time: Timestamp,
    proposer: PublicKey,
) -> Result<BuiltBlock<R>, StoreError> {
    let parent = parent(store, genesis)?;
    let time = time.max(parent.time);
    let ctx = BlockContext {
        height: parent.height + 1,
        time,
    };
    let mut state = store.load_state(genesis, &candidates)?;
    let mut rules = rules.clone();
    let mut accepted = Vec::with_capacity(candidates.len().min(BLOCK_EVENTS_MAX));
    let mut rejected = Vec::new();
    for event in candidates {
        if accepted.len() == BLOCK_EVENTS_MAX {
            break;
        }
        let verdict = check_alone(&event, genesis, time)
            .and_then(|()| apply_checked(&mut state, &mut rules, &event, ctx));
        match verdict {
            Ok(()) => accepted.push(event.into_encoded()),
            Err(rejection) => rejected.push((event.id(), rejection)),
        }
    }
    let (delta, entries) = finish_block(&mut state, &accepted, ctx, parent.log_size);
    let (header, roots) = header_for(
        store,
        genesis,
        &parent,
        HeaderInputs {
            time,
            proposer,
            events: &accepted,
            entries: &entries,
            delta: &delta,
        },
    )?;
    let block = Block {
        header,
        events: accepted,
    };
    Ok(BuiltBlock {
        validated: ValidatedBlock {
            block,
            delta,
            entries,
            roots,
            rules,
        },
        rejected,
    })
}

/// What a header is computed from, besides its parent.
pub(crate) struct HeaderInputs<'a> {
    pub(crate) time: Timestamp,
    pub(crate) proposer: PublicKey,
    pub(crate) events: &'a [EncodedEvent],
    pub(crate) entries: &'a [LogEntry],
    pub(crate) delta: &'a StateDelta,
}

/// Gives the block's events their log entries and the shipments they moved their new heads;
/// returns the block's state delta and the entries.
pub(crate) fn finish_block(
    state: &mut State,
    events: &[EncodedEvent],
    ctx: BlockContext,
    log_size: u64,
) -> (StateDelta, Vec<LogEntry>) {
    // Within the block, `apply` leaves `head_entry` as it was before the block (`None` for a
    // shipment registered in it); `block_entries` chains the block's own events.
    let entries = block_entries(events, ctx.height, ctx.time, log_size, |s| {
        Ok::<_, Infallible>(state.shipment(s).and_then(|x| x.head_entry))
    })
    .unwrap_or_else(|never| match never {});
    state.set_head_entries(&new_heads(events, &entries));
    (state.take_delta(), entries)
}

/// The shipment-map updates of a block: each shipment it wrote, to its head entry.
pub fn map_updates(delta: &StateDelta) -> Vec<(smt::MapKey, Digest)> {
    delta
        .shipments
        .iter()
        .map(|s| {
            let head = s
                .head_entry
                .expect("a shipment written by a block has the entry of its latest event");
            (smt::key_of(&s.shipment_id.0), head)
        })
        .collect()
}

/// The header of the block of `inputs` on `parent`, every root computed from the store, and
/// the nodes that give those roots.
fn header_for<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    parent: &Parent,
    inputs: HeaderInputs<'_>,
) -> Result<(BlockHeader, Roots), StoreError> {
    let leaves: Vec<Digest> = inputs.entries.iter().map(LogEntry::hash).collect();
    let (log_nodes, log_root) = crate::store::extend_log(store, parent.log_size, &leaves)?;
    let source = crate::store::MapSource::new(store);
    let map = smt::update(&source, &map_updates(inputs.delta))?;
    let map_tiles = source.tile_writes(&map.writes)?;
    let header = header_with(genesis, parent, &inputs, log_root, map.root);
    let roots = Roots {
        log_nodes,
        map_root: map.root,
        map_tiles,
    };
    Ok((header, roots))
}

/// The header of the block of `inputs` on `parent`, given its log and shipment-map roots
/// (computed from a store, or by a replay that keeps them in memory).
pub(crate) fn header_with(
    genesis: &Genesis,
    parent: &Parent,
    inputs: &HeaderInputs<'_>,
    log_root: Digest,
    shipments_root: Digest,
) -> BlockHeader {
    BlockHeader {
        chain_id: genesis.chain_id.clone(),
        height: parent.height + 1,
        prev_hash: parent.hash,
        time: inputs.time,
        proposer: inputs.proposer,
        event_count: u32::try_from(inputs.events.len()).expect("block size is bounded"),
        events_root: events_root(
            &inputs
                .events
                .iter()
                .map(EncodedEvent::id)
                .collect::<Vec<_>>(),
        ),
        log_size: parent.log_size + inputs.entries.len() as u64,
        log_root,
        state_root: state_root(&parent.state_root, inputs.delta),
        shipments_root,
    }
}

fn header_error(field: &'static str, message: String) -> BlockError {
    BlockError::Header { field, message }
}

/// The checks of a header against its parent and the genesis that need none of its events'
/// contents: chain, height, link, proposer, time and event count.
pub(crate) fn check_header(
    genesis: &Genesis,
    parent: &Parent,
    header: &BlockHeader,
    events: usize,
) -> Result<(), BlockError> {
    if header.chain_id != genesis.chain_id {
        return Err(header_error(
            "chain_id",
            format!("{:?} is not this chain", header.chain_id),
        ));
    }
    if header.height != parent.height + 1 {
        return Err(header_error(
            "height",
            format!("expected {}, got {}", parent.height + 1, header.height),
        ));
    }
    if header.prev_hash != parent.hash {
        return Err(header_error(
            "prev_hash",
            format!("expected {}, got {}", parent.hash, header.prev_hash),
        ));
    }
    if !genesis
        .validators()
        .iter()
        .any(|v| v.key == header.proposer)
    {
        return Err(header_error(
            "proposer",
            format!("{} is not a validator", header.proposer),
        ));
    }
    if header.time < parent.time {
        return Err(header_error(
            "time",
            format!("{} is before the parent's {}", header.time, parent.time),
        ));
    }
    if events > BLOCK_EVENTS_MAX || header.event_count as usize != events {
        return Err(header_error(
            "event_count",
            format!("{events} events, header says {}", header.event_count),
        ));
    }
    Ok(())
}

/// The roots a header claims, against those computed from its events.
pub(crate) fn check_roots(expected: &BlockHeader, header: &BlockHeader) -> Result<(), BlockError> {
    for (field, ok) in [
        ("events_root", expected.events_root == header.events_root),
        ("log_size", expected.log_size == header.log_size),
        ("log_root", expected.log_root == header.log_root),
        ("state_root", expected.state_root == header.state_root),
        (
            "shipments_root",
            expected.shipments_root == header.shipments_root,
        ),
    ] {
        if !ok {
            return Err(header_error(
                field,
                "does not match the block's events".into(),
            ));
        }
    }
    Ok(())
}

/// A block's events through the event pipeline, strictly: the shapes of all first, then the
/// rules and the state machine in order. The first failure names the event.
pub(crate) fn execute<R: Rules>(
    state: &mut State,
    rules: &mut R,
    genesis: &Genesis,
    header: &BlockHeader,
    events: &[VerifiedEvent],
) -> Result<(), BlockError> {
    let fail = |index: usize, rejection: Rejection| BlockError::Event {
        index,
        id: events[index].id(),
        rejection,
    };
    for (index, e) in events.iter().enumerate() {
        check_alone(e, genesis, header.time).map_err(|r| fail(index, r))?;
    }
    let ctx = BlockContext {
        height: header.height,
        time: header.time,
    };
    for (index, e) in events.iter().enumerate() {
        apply_checked(state, rules, e, ctx).map_err(|r| fail(index, r))?;
    }
    Ok(())
}

/// Validates a proposed block against the stored state: header links and roots, and every
/// event through the event pipeline (shapes of all first, then rules and the state machine in
/// order). The events' signatures were checked (their type says so). The first failure names
/// the event. Every validator runs this on every proposal, and [`validate_block`] on every
/// stored block in `verify::verify_chain`.
pub fn validate_verified<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    header: BlockHeader,
    events: Vec<VerifiedEvent>,
) -> Result<ValidatedBlock<R>, BlockError> {
    let parent = parent(store, genesis)?;
    check_header(genesis, &parent, &header, events.len())?;
    let mut state = store.load_state(genesis, &events)?;
    let mut rules = rules.clone();
    execute(&mut state, &mut rules, genesis, &header, &events)?;
    let events: Vec<EncodedEvent> = events
        .into_iter()
        .map(VerifiedEvent::into_encoded)
        .collect();
    let ctx = BlockContext {
        height: header.height,
        time: header.time,
    };
    let (delta, entries) = finish_block(&mut state, &events, ctx, parent.log_size);
    let (expected, roots) = header_for(
        store,
        genesis,
        &parent,
        HeaderInputs {
            time: header.time,
            proposer: header.proposer,
            events: &events,
            entries: &entries,
            delta: &delta,
        },
    )?;
    check_roots(&expected, &header)?;
    assert_eq!(
        expected, header,
        "a header whose every field was checked is the one computed"
    );
    Ok(ValidatedBlock {
        block: Block { header, events },
        delta,
        entries,
        roots,
        rules,
    })
}

/// Validates a block none of whose events were verified before (a block read from storage,
/// from sync, from a test): the events' shapes are checked first (cheap, and bounding what
/// the signature check hashes), then all their signatures in one batch, then
/// [`validate_verified`].
pub fn validate_block<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    block: Block,
    keys: &KeyCache,
) -> Result<ValidatedBlock<R>, BlockError> {
    let events = verify_unchecked(block.events, genesis, keys)?;
    validate_verified(store, genesis, rules, block.header, events)
}

/// The shapes of events none of which was verified, then their signatures in one batch.
pub(crate) fn verify_unchecked(
    events: Vec<EncodedEvent>,
    genesis: &Genesis,
    keys: &KeyCache,
) -> Result<Vec<VerifiedEvent>, BlockError> {
    for (index, e) in events.iter().enumerate() {
        check_encoded(e, &genesis.chain_id).map_err(|rejection| BlockError::Event {
            index,
            id: e.id(),
            rejection,
        })?;
    }
    verify_events(events, |_| None, keys).map_err(BlockError::from)
}

impl From<EventFailure> for BlockError {
    fn from(failure: EventFailure) -> BlockError {
        BlockError::Event {
            index: failure.index,
            id: failure.id,
            rejection: failure.rejection,
        }
    }
}
