//! Building and validating blocks: the state machine applied to a batch of events.
//!
//! The proposer calls [`build_block`] with candidate events and gets a block of the ones that
//! apply, plus the rejects. Every validator calls [`validate_block`] on a proposal and gets
//! the state delta to store with it, or the first offending event. Both are deterministic
//! functions of the stored state and their inputs.

use std::convert::Infallible;

use crate::block::{events_root, Block, BlockHeader, BLOCK_EVENTS_MAX};
use crate::entry::{block_entries, new_heads, LogEntry};
use crate::event::signature_rejection;
use crate::event::{check_encoded, check_occurred_at, EncodedEvent};
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::keys::{verify_batch, PublicKey, SignedMessage};
use crate::merkle;
use crate::model::EventId;
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

/// A block built from candidates.
#[derive(Debug, Clone)]
pub struct BuiltBlock<R> {
    /// The block.
    pub block: Block,
    /// The state delta it produces.
    pub delta: StateDelta,
    /// Candidates left out, and why.
    pub rejected: Vec<(Digest, Rejection)>,
    /// The rules as they are after the block (reference data it published included).
    pub rules: R,
}

/// The parent of the next block: (height, hash, time, log size, log root, state root).
fn parent<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
) -> Result<(u64, Digest, Timestamp, u64, Digest, Digest), StoreError> {
    Ok(match store.head()? {
        Some(h) => (
            h.height,
            h.block_hash,
            h.time,
            h.log_size,
            h.log_root,
            h.state_root,
        ),
        None => (
            0,
            store.genesis_hash(),
            genesis.genesis_time,
            0,
            merkle::empty_root(),
            store.genesis_hash(),
        ),
    })
}

/// Builds the next block from candidate events, in the given order, keeping those that
/// pass shape, signature and state-machine checks (at most [`BLOCK_EVENTS_MAX`]).
///
/// `time` is clamped to be no earlier than the parent's.
pub fn build_block<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    candidates: Vec<EncodedEvent>,
    time: Timestamp,
    proposer: PublicKey,
) -> Result<BuiltBlock<R>, StoreError> {
    build_block_from(store, genesis, rules, candidates, time, proposer, &|_| {
        false
    })
}

/// [`build_block`], skipping the signature check of the candidates for which `verified`
/// answers true: a node's mempool holds only events whose signatures it checked on arrival,
/// and checking them again is most of the cost of building a block.
pub fn build_block_from<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    candidates: Vec<EncodedEvent>,
    time: Timestamp,
    proposer: PublicKey,
    verified: &dyn Fn(&EventId) -> bool,
) -> Result<BuiltBlock<R>, StoreError> {
    let (height, prev_hash, prev_time, log_size, _, prev_state_root) = parent(store, genesis)?;
    let time = time.max(prev_time);
    let ctx = BlockContext {
        height: height + 1,
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
        let verdict = check_encoded(&event, &genesis.chain_id)
            .and_then(|()| {
                if verified(&event.id) {
                    Ok(())
                } else {
                    event.verify_signature()
                }
            })
            .and_then(|()| check_occurred_at(&event.event, genesis.genesis_time, time))
            .and_then(|()| rules.check(&state, &event, ctx))
            .and_then(|()| apply(&mut state, &event, ctx));
        match verdict {
            Ok(()) => {
                rules.applied(&event, ctx);
                accepted.push(event);
            }
            Err(rejection) => rejected.push((event.id, rejection)),
        }
    }
    let (delta, entries) = finish_block(&mut state, &accepted, ctx, log_size);
    let header = header_for(
        genesis,
        &accepted,
        &entries,
        HeaderInputs {
            height: height + 1,
            prev_hash,
            time,
            proposer,
            log_size,
            prev_state_root,
        },
        store,
        &delta,
    )?;
    Ok(BuiltBlock {
        block: Block {
            header,
            events: accepted,
        },
        delta,
        rejected,
        rules,
    })
}

struct HeaderInputs {
    height: u64,
    prev_hash: Digest,
    time: Timestamp,
    proposer: PublicKey,
    log_size: u64,
    prev_state_root: Digest,
}

/// Gives the block's events their log entries and the shipments they moved their new heads;
/// returns the block's state delta and the entries.
fn finish_block(
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

fn header_for<S: Store + ?Sized>(
    genesis: &Genesis,
    events: &[EncodedEvent],
    entries: &[LogEntry],
    inputs: HeaderInputs,
    store: &S,
    delta: &StateDelta,
) -> Result<BlockHeader, StoreError> {
    let (log_size, log_root) = extended_log_root(store, inputs.log_size, entries)?;
    let shipments_root = smt::update(&crate::store::MapSource(store), &map_updates(delta))?.root;
    Ok(BlockHeader {
        chain_id: genesis.chain_id.clone(),
        height: inputs.height,
        prev_hash: inputs.prev_hash,
        time: inputs.time,
        proposer: inputs.proposer,
        event_count: u32::try_from(events.len()).expect("block size is bounded"),
        events_root: events_root(events.iter().map(|e| &e.id)),
        log_size,
        log_root,
        state_root: state_root(&inputs.prev_state_root, delta),
        shipments_root,
    })
}

/// Size and root of the stored log extended by `entries`.
fn extended_log_root<S: Store + ?Sized>(
    store: &S,
    log_size: u64,
    entries: &[LogEntry],
) -> Result<(u64, Digest), StoreError> {
    let leaves: Vec<Digest> = entries.iter().map(LogEntry::hash).collect();
    let (_, root) = crate::store::extend_log(store, log_size, &leaves)?;
    let size = log_size + entries.len() as u64;
    Ok((size, root))
}

/// Validates a proposed block against the stored state: header links and roots, every
/// event's shape, signature (in one batch) and state transition. Returns the state delta to
/// store with the block, and the rules as they are after it.
pub fn validate_block<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    block: &Block,
) -> Result<(StateDelta, R), BlockError> {
    validate_block_from(store, genesis, rules, block, &|_| false)
}

/// [`validate_block`], skipping the signature check of the events for which `verified`
/// answers true (events this node checked when they reached its mempool). Everything else —
/// shapes, rules, state, roots — is checked for every event.
pub fn validate_block_from<S: Store + ?Sized, R: Rules>(
    store: &S,
    genesis: &Genesis,
    rules: &R,
    block: &Block,
    verified: &dyn Fn(&EventId) -> bool,
) -> Result<(StateDelta, R), BlockError> {
    let (height, prev_hash, prev_time, log_size, _, prev_state_root) = parent(store, genesis)?;
    let h = &block.header;
    let header_error = |field: &'static str, message: String| BlockError::Header { field, message };
    if h.chain_id != genesis.chain_id {
        return Err(header_error(
            "chain_id",
            format!("{:?} is not this chain", h.chain_id),
        ));
    }
    if h.height != height + 1 {
        return Err(header_error(
            "height",
            format!("expected {}, got {}", height + 1, h.height),
        ));
    }
    if h.prev_hash != prev_hash {
        return Err(header_error(
            "prev_hash",
            format!("expected {prev_hash}, got {}", h.prev_hash),
        ));
    }
    if !genesis.validators().iter().any(|v| v.key == h.proposer) {
        return Err(header_error(
            "proposer",
            format!("{} is not a validator", h.proposer),
        ));
    }
    if h.time < prev_time {
        return Err(header_error(
            "time",
            format!("{} is before the parent's {prev_time}", h.time),
        ));
    }
    if block.events.len() > BLOCK_EVENTS_MAX || h.event_count as usize != block.events.len() {
        return Err(header_error(
            "event_count",
            format!(
                "{} events, header says {}",
                block.events.len(),
                h.event_count
            ),
        ));
    }
    let mut state = store.load_state(genesis, &block.events)?;
    let mut rules = rules.clone();
    let (delta, entries) = execute_from(
        &mut state,
        &mut rules,
        &block.events,
        genesis,
        BlockContext {
            height: h.height,
            time: h.time,
        },
        log_size,
        verified,
    )?;
    let expected = header_for(
        genesis,
        &block.events,
        &entries,
        HeaderInputs {
            height: h.height,
            prev_hash,
            time: h.time,
            proposer: h.proposer,
            log_size,
            prev_state_root,
        },
        store,
        &delta,
    )?;
    for (field, ok) in [
        ("events_root", expected.events_root == h.events_root),
        ("log_size", expected.log_size == h.log_size),
        ("log_root", expected.log_root == h.log_root),
        ("state_root", expected.state_root == h.state_root),
        (
            "shipments_root",
            expected.shipments_root == h.shipments_root,
        ),
    ] {
        if !ok {
            return Err(header_error(
                field,
                "does not match the block's events".into(),
            ));
        }
    }
    Ok((delta, rules))
}

/// Applies a block's events strictly: shapes, then signatures in one batch, then the rules
/// and the state machine event by event. The first failure names the event. Returns the
/// state delta and the events' log entries (the log held `log_size` events before them).
pub fn execute<R: Rules>(
    state: &mut State,
    rules: &mut R,
    events: &[EncodedEvent],
    genesis: &Genesis,
    ctx: BlockContext,
    log_size: u64,
) -> Result<(StateDelta, Vec<LogEntry>), BlockError> {
    execute_from(state, rules, events, genesis, ctx, log_size, &|_| false)
}

/// [`execute`], skipping the signature check of the events for which `verified` answers true.
pub fn execute_from<R: Rules>(
    state: &mut State,
    rules: &mut R,
    events: &[EncodedEvent],
    genesis: &Genesis,
    ctx: BlockContext,
    log_size: u64,
    verified: &dyn Fn(&EventId) -> bool,
) -> Result<(StateDelta, Vec<LogEntry>), BlockError> {
    let BlockContext { time, .. } = ctx;
    let fail = |index: usize, rejection: Rejection| BlockError::Event {
        index,
        id: events[index].id,
        rejection,
    };
    for (index, e) in events.iter().enumerate() {
        check_encoded(e, &genesis.chain_id).map_err(|r| fail(index, r))?;
        check_occurred_at(&e.event, genesis.genesis_time, time).map_err(|r| fail(index, r))?;
    }
    // Only the events not already checked go into the batch; `positions` maps a batch index
    // back to the event's index in the block, so a failure names the right event.
    let positions: Vec<usize> = (0..events.len())
        .filter(|i| !verified(&events[*i].id))
        .collect();
    let messages: Vec<Vec<u8>> = positions
        .iter()
        .map(|i| events[*i].signing_message())
        .collect();
    let items: Vec<SignedMessage<'_>> = positions
        .iter()
        .zip(&messages)
        .map(|(i, message)| SignedMessage {
            key: &events[*i].event.signer,
            message,
            signature: &events[*i].event.signature,
        })
        .collect();
    verify_batch(&items).map_err(|b| fail(positions[b.index], signature_rejection(b.error)))?;
    for (index, e) in events.iter().enumerate() {
        rules.check(state, e, ctx).map_err(|r| fail(index, r))?;
        apply(state, e, ctx).map_err(|r| fail(index, r))?;
        rules.applied(e, ctx);
    }
    Ok(finish_block(state, events, ctx, log_size))
}
