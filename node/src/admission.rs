//! Admission of an event to this node's mempool: the checks a block will make, run early
//! so that a client learns at once why an event cannot be ordered.
//!
//! The event is judged against the committed state plus the events of the same shipment
//! already waiting in the mempool (an acceptance may wait for its proposal), at the time the
//! next block would have.

use custody_contracts::ContractRules;
use custody_ledger::event::{check_shape, EncodedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::reject::{codes, Rejection};
use custody_ledger::rules::Rules;
use custody_ledger::state::{apply, BlockContext};
use custody_ledger::store::Store;
use custody_ledger::Timestamp;

/// Why an event was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The event is invalid; the rejection says why.
    Invalid(Rejection),
    /// The event is already committed or waiting.
    Duplicate,
    /// The store could not answer; the event may be fine.
    Unavailable(String),
}

/// Judges `event` as the next block would, after `pending` (the mempool's events of the same
/// shipment, in order).
pub fn admit<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    rules: &ContractRules,
    pending: &[EncodedEvent],
    event: &EncodedEvent,
    at: Timestamp,
) -> Result<(), Refusal> {
    check_shape(&event.event, &genesis.chain_id).map_err(Refusal::Invalid)?;
    event.verify_signature().map_err(Refusal::Invalid)?;
    let head = store
        .head()
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let mut all = pending.to_vec();
    all.push(event.clone());
    let mut state = store
        .load_state(genesis, &all)
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if state.is_committed(&event.id) {
        return Err(Refusal::Duplicate);
    }
    let ctx = BlockContext {
        height: head.map_or(0, |h| h.height) + 1,
        time: at.max(head.map_or(genesis.genesis_time, |h| h.time)),
    };
    let mut rules = rules.clone();
    for waiting in pending {
        // Waiting events were admitted earlier; one that no longer applies is skipped here
        // and dropped by the proposer.
        if rules.check(&state, waiting, ctx).is_ok() && apply(&mut state, waiting, ctx).is_ok() {
            rules.applied(waiting, ctx);
        }
    }
    rules.check(&state, event, ctx).map_err(Refusal::Invalid)?;
    match apply(&mut state, event, ctx) {
        Ok(()) => Ok(()),
        Err(r) if r.code == codes::EVENT_DUPLICATE => Err(Refusal::Duplicate),
        Err(r) => Err(Refusal::Invalid(r)),
    }
}
