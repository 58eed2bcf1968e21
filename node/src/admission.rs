//! Admission of an event to this node's mempool: the checks a block will make, run early
//! so that a client learns at once why an event cannot be ordered.
//!
//! The event is judged against the committed state plus the events of the same shipment
//! already waiting in the mempool (an acceptance may wait for its proposal), at the time the
//! next block would have.

use custody_contracts::ContractRules;
use custody_ledger::cause::Cause;
use custody_ledger::chain::{apply_checked, check_alone};
use custody_ledger::event::{check_encoded, EncodedEvent, VerifiedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::KeyCache;
use custody_ledger::model::EventId;
use custody_ledger::reject::{codes, Rejection};
use custody_ledger::state::BlockContext;
use custody_ledger::store::{Store, StoreError};
use custody_ledger::Timestamp;

/// Why an event was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The event is invalid; the rejection says why.
    Invalid(Rejection),
    /// The event is already committed or waiting.
    Duplicate,
    /// The store could not answer; the event may be fine.
    Unavailable(Cause),
}

/// The checks of an event that need no state, then its signature, strictly: the only way an
/// event from outside becomes a [`VerifiedEvent`] that a mempool can hold. Cheap checks come
/// first, so a malformed event costs no signature check.
pub fn verify(
    event: EncodedEvent,
    genesis: &Genesis,
    keys: &KeyCache,
) -> Result<VerifiedEvent, Rejection> {
    check_encoded(&event, &genesis.chain_id)?;
    event.verify(keys)
}

/// Judges a verified `event` as the next block would, after `pending` (the mempool's events
/// of the same shipment, in order), through the event pipeline blocks run
/// (`chain::check_alone`, then `chain::apply_checked`).
pub fn judge<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    rules: &ContractRules,
    pending: &[VerifiedEvent],
    event: &VerifiedEvent,
    at: Timestamp,
) -> Result<(), Refusal> {
    judge_batch(store, genesis, rules, pending, &[event], at)
        .map_err(|e| Refusal::Unavailable(Cause::new(e)))?
        .pop()
        .expect("one verdict per event")
}

/// Judges verified `events` in order as the next block would, after `pending` (the
/// mempool's events of the shipments they touch, in candidate order), loading the state once
/// for all of them: an admission batch costs one read of the members and the rules schedule,
/// not one per event. Each event is judged after the earlier ones of the batch that passed,
/// so a batch may carry a proposal and its acceptance. `Err` only if the store cannot answer.
pub fn judge_batch<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    rules: &ContractRules,
    pending: &[VerifiedEvent],
    events: &[&VerifiedEvent],
    at: Timestamp,
) -> Result<Vec<Result<(), Refusal>>, StoreError> {
    let head = store.head()?;
    let mut all: Vec<&EncodedEvent> = pending.iter().map(|e| e.encoded()).collect();
    all.extend(events.iter().map(|e| e.encoded()));
    let mut state = store.load_state(genesis, &all)?;
    let ctx = BlockContext {
        height: head.map_or(0, |h| h.height) + 1,
        time: at.max(head.map_or(genesis.genesis_time, |h| h.time)),
    };
    let mut rules = rules.clone();
    for waiting in pending {
        // As in `judge`: a waiting event that no longer applies is skipped here.
        let _ = apply_checked(&mut state, &mut rules, waiting, ctx);
    }
    let verdicts = events
        .iter()
        .map(|event| {
            if state.is_committed(&event.id()) {
                return Err(Refusal::Duplicate);
            }
            check_alone(event, genesis, ctx.time).map_err(Refusal::Invalid)?;
            match apply_checked(&mut state, &mut rules, event, ctx) {
                Ok(()) => Ok(()),
                Err(r) if r.code == codes::EVENT_DUPLICATE => Err(Refusal::Duplicate),
                Err(r) => Err(Refusal::Invalid(r)),
            }
        })
        .collect();
    Ok(verdicts)
}

/// [`verify`], then [`judge`]: the event, verified, if the next block would take it.
pub fn admit<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    rules: &ContractRules,
    pending: &[VerifiedEvent],
    event: EncodedEvent,
    keys: &KeyCache,
    at: Timestamp,
) -> Result<VerifiedEvent, Refusal> {
    let event = verify(event, genesis, keys).map_err(Refusal::Invalid)?;
    judge(store, genesis, rules, pending, &event, at)?;
    Ok(event)
}

/// The events of `waiting` (held by the mempool, in candidate order) that the next block
/// would refuse, with the reason: the re-check after a commit.
///
/// Signatures and shapes were checked on admission and do not change, so only the rule
/// modules and the state machine run again, against the state the new block left. An event
/// that depends on a refused one (an acceptance of a proposal that no longer applies) is
/// refused in turn, as a block would refuse it.
pub fn stale<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    rules: &ContractRules,
    waiting: &[VerifiedEvent],
    at: Timestamp,
) -> Result<Vec<(EventId, Rejection)>, StoreError> {
    let head = store.head()?;
    let mut state = store.load_state(genesis, waiting)?;
    let ctx = BlockContext {
        height: head.map_or(0, |h| h.height) + 1,
        time: at.max(head.map_or(genesis.genesis_time, |h| h.time)),
    };
    let mut rules = rules.clone();
    let mut refused = Vec::new();
    for event in waiting {
        if let Err(rejection) = apply_checked(&mut state, &mut rules, event, ctx) {
            refused.push((event.id(), rejection));
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use custody_contracts::load::sample_tables;
    use custody_ledger::model::EventKind;
    use custody_ledger::store::MemoryStore;
    use custody_ledger::testkit::{verified, TestNet};

    use super::*;

    /// A pool holding two proposals of one shipment from the same holder: committing a third
    /// makes both, and the acceptance that names one, stale; the other shipment's waiting
    /// event is untouched.
    #[test]
    fn a_committed_handoff_makes_a_competing_one_stale() {
        let net = TestNet::new();
        let store = MemoryStore::new(net.genesis_hash());
        let at = net.genesis.genesis_time;
        let mut setup: Vec<EncodedEvent> = sample_tables(at)
            .into_iter()
            .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
            .collect();
        setup.push(net.register("S-A", "CN", "FR"));
        setup.push(net.register("S-B", "CN", "FR"));
        let built = net
            .commit_with(&store, &ContractRules::default(), setup, at)
            .unwrap();
        assert_eq!(built.rejected, vec![]);
        let rules = built.into_rules();

        let first = net.propose_at("seller-acme", "S-A", "carrier-swift", "CNSHA");
        let second = net.propose_at("seller-acme", "S-A", "carrier-lastmile", "CNSHA");
        let accept_second = net.accept("carrier-lastmile", "S-A", &second);
        let other = net.propose_at("seller-acme", "S-B", "carrier-swift", "CNSHA");
        let waiting = verified([second.clone(), accept_second.clone(), other]);
        assert_eq!(
            stale(&store, &net.genesis, &rules, &waiting, at).unwrap(),
            vec![]
        );

        let accept_first = net.accept("carrier-swift", "S-A", &first);
        let built = net
            .commit_with(&store, &rules, vec![first, accept_first], at)
            .unwrap();
        assert_eq!(built.rejected, vec![]);
        let refused = stale(&store, &net.genesis, built.rules(), &waiting, at).unwrap();
        let ids: Vec<EventId> = refused.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![second.id(), accept_second.id()]);
    }
}
