//! The mempool: events this node has received (from its API or from gossip) that no block has
//! committed yet.
//!
//! The pool is bounded by a number of events and a number of bytes, so a flood of submissions
//! costs a node a fixed amount of memory; when it is full it says so ([`MempoolError::Full`])
//! and the API answers 503 with `Retry-After` rather than dropping something silently. Events
//! are deduplicated by id, because the same event reaches a node through several peers.
//!
//! The pool hands the proposer its candidates in a causal order. Within a shipment events come
//! out in the order they arrived, except that a `HandoffAccepted` that arrived before the
//! `HandoffProposed` it names comes out right after that proposal: gossip can deliver the two
//! out of order, and a block that carried the acceptance first would have it rejected.
//! Shipments interleave by arrival; events without a shipment (reference data, membership)
//! keep their arrival order among themselves.
//!
//! Validity is not the pool's business: block building checks every candidate, and after a
//! block the node re-checks [`Mempool::affected_by`] the block and [`removes`](Mempool::remove)
//! what the block committed or made invalid.
//!
//! **Fairness.** One member flooding valid events from one key must not starve the others. So
//! each signer may hold at most [`MempoolConfig::signer_count_max`] events and
//! [`MempoolConfig::signer_size_bytes_max`] bytes (beyond that it is told to slow down,
//! [`MempoolError::SignerQuota`]), and [`Mempool::candidates`] takes signers in turn: the
//! first waiting event of every signer, then the second of every signer, and so on, never
//! letting a shipment's events overtake each other. A flood from one key then costs the others
//! at most one block slot per event of theirs, whatever the flood's length.
//!
//! Nothing here iterates a hash map (the fair order looks things up in two, never walks them): every output is in an order fixed by the arrivals alone,
//! so two runs given the same submissions propose the same blocks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use custody_ledger::codec::EVENT_SIZE_BYTES_MAX;
use custody_ledger::event::VerifiedEvent;
use custody_ledger::keys::PublicKey;
use custody_ledger::model::{EventId, EventKind, ShipmentId};

/// How much the pool may hold.
///
/// Both bounds apply at once: a count alone would let a few large events take a lot of memory,
/// and a byte budget alone would let many tiny events make every scan long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most events held at once.
    pub count_max: usize,
    /// Most bytes held at once, counting each event's canonical bytes.
    pub size_bytes_max: usize,
    /// Most events held at once from one signer.
    pub signer_count_max: usize,
    /// Most bytes held at once from one signer.
    pub signer_size_bytes_max: usize,
}

/// What became of an event offered to the pool.
///
/// A duplicate is not an error: peers gossip the same event to each other, and resubmitting
/// an event the node already holds is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The event is new and now waits for a block.
    Added,
    /// The pool already held an event with this id; nothing changed.
    Duplicate,
}

/// Why the pool refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// Full: the caller should retry later.
    ///
    /// The pool drains as blocks commit, so the same event will very likely be admitted after
    /// a block or two; the API turns this into 503 with `Retry-After`.
    #[error("mempool is full ({count} events, {size_bytes} bytes held); retry later")]
    Full {
        /// Events held when the event was refused.
        count: usize,
        /// Bytes held when the event was refused.
        size_bytes: usize,
    },
    /// The signer already holds its share of the pool: the caller should slow down.
    ///
    /// Like [`Full`](MempoolError::Full) it clears as blocks commit the signer's events; the
    /// API turns it into 429 with `Retry-After`.
    #[error(
        "signer {signer} already has {count} events ({size_bytes} bytes) waiting, its share of \
         the mempool; retry later"
    )]
    SignerQuota {
        /// The signer at its quota.
        signer: PublicKey,
        /// Events of the signer held when the event was refused.
        count: usize,
        /// Bytes of the signer held when the event was refused.
        size_bytes: usize,
    },
    /// One event larger than an event may be, or than the whole pool's byte budget: no block
    /// could carry it.
    ///
    /// Unlike [`Full`](MempoolError::Full), retrying cannot help, so the caller must not be
    /// told to.
    #[error(
        "event is {size_bytes} bytes; the mempool holds events of at most {size_bytes_max} bytes"
    )]
    TooLarge {
        /// Size of the refused event's canonical bytes.
        size_bytes: usize,
        /// The pool's byte budget.
        size_bytes_max: usize,
    },
}

/// Where an event stands in candidate order.
///
/// Most events stand at their own arrival: `anchor == seq` and `after_anchor == false`. An
/// acceptance that arrived before its proposal stands right after the proposal: `anchor` is
/// the proposal's arrival, `after_anchor` is true, and `seq` (its own arrival) orders several
/// acceptances of one proposal. Proposals are never moved, so an anchor is always an event
/// standing at its own arrival, and the derived order (fields compared in declaration order)
/// is exactly the candidate order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    anchor: u64,
    after_anchor: bool,
    seq: u64,
}

impl Position {
    /// The position of an event that stands where it arrived.
    fn arrival(seq: u64) -> Position {
        Position {
            anchor: seq,
            after_anchor: false,
            seq,
        }
    }

    /// The position of an acceptance that arrived at `seq`, moved behind the proposal that
    /// arrived at `proposal_seq`.
    fn after(proposal_seq: u64, seq: u64) -> Position {
        Position {
            anchor: proposal_seq,
            after_anchor: true,
            seq,
        }
    }
}

/// One held event with its arrival number and current position.
#[derive(Debug)]
struct Entry {
    event: VerifiedEvent,
    seq: u64,
    position: Position,
    /// When it arrived and whether by gossip, for [`Mempool::is_widely_held`].
    arrived_at: Instant,
    gossiped: bool,
}

/// The kind of an encoded event, to keep the triple field access in one place.
fn kind(event: &VerifiedEvent) -> &EventKind {
    &event.event().event.kind
}

/// The signer of an encoded event.
fn signer(event: &VerifiedEvent) -> &PublicKey {
    &event.event().signer
}

/// What one signer holds in the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SignerLoad {
    count: usize,
    size_bytes: usize,
}

/// The ordering group of an event: its shipment, or `None` for events that have none. Within
/// a group the pool never lets a later event overtake an earlier one.
fn group(event: &VerifiedEvent) -> Option<&ShipmentId> {
    kind(event).shipment_id()
}

/// The proposal an acceptance names, if the event is an acceptance.
fn accepted_proposal(event: &VerifiedEvent) -> Option<EventId> {
    match kind(event) {
        EventKind::HandoffAccepted(accepted) => Some(accepted.proposal),
        _ => None,
    }
}

fn is_proposal(event: &VerifiedEvent) -> bool {
    matches!(kind(event), EventKind::HandoffProposed(_))
}

/// Events waiting for a block, bounded, deduplicated and kept in causal order.
///
/// Lookups go through `entries` and the candidate order through `order`; both are B-trees so
/// inserting and removing cost `O(log n)` and every iteration is deterministic.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    /// Every held event by id.
    entries: BTreeMap<EventId, Entry>,
    /// Every held event's id by position: iterating it gives the candidate order.
    order: BTreeMap<Position, EventId>,
    /// For each proposal id, the held acceptances that name it, whether or not the proposal is
    /// held. A proposal that arrives late finds here the acceptances to move behind it.
    acceptances: BTreeMap<EventId, BTreeSet<EventId>>,
    /// For each shipment, its held events: what admission of a new event of that shipment
    /// has to see, found without scanning the pool.
    by_shipment: BTreeMap<ShipmentId, BTreeSet<EventId>>,
    /// What each signer holds, for its quota; signers holding nothing are absent.
    by_signer: BTreeMap<PublicKey, SignerLoad>,
    /// Sum of the held events' byte lengths.
    size_bytes: usize,
    /// Arrival number of the next admitted event.
    next_seq: u64,
}

impl Mempool {
    /// An empty pool with the given bounds.
    pub fn new(config: MempoolConfig) -> Mempool {
        Mempool {
            config,
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            acceptances: BTreeMap::new(),
            by_shipment: BTreeMap::new(),
            by_signer: BTreeMap::new(),
            size_bytes: 0,
            next_seq: 0,
        }
    }

    /// Offers an event to the pool.
    ///
    /// A duplicate is recognised before the bounds are checked, so resubmitting an event the
    /// pool holds answers [`Admission::Duplicate`] even when the pool is full. A refused event
    /// changes nothing.
    pub fn insert(&mut self, event: VerifiedEvent) -> Result<Admission, MempoolError> {
        self.insert_from(event, false)
    }

    /// [`Mempool::insert`] for an event received by gossip: its publisher sent it to every
    /// member at once, so the other validators very likely hold it too.
    pub fn insert_gossiped(&mut self, event: VerifiedEvent) -> Result<Admission, MempoolError> {
        self.insert_from(event, true)
    }

    fn insert_from(
        &mut self,
        event: VerifiedEvent,
        gossiped: bool,
    ) -> Result<Admission, MempoolError> {
        if self.entries.contains_key(&event.id()) {
            return Ok(Admission::Duplicate);
        }
        let size = event.bytes().len();
        let event_size_bytes_max = self.config.size_bytes_max.min(EVENT_SIZE_BYTES_MAX);
        if size > event_size_bytes_max {
            return Err(MempoolError::TooLarge {
                size_bytes: size,
                size_bytes_max: event_size_bytes_max,
            });
        }
        let load = self
            .by_signer
            .get(signer(&event))
            .copied()
            .unwrap_or_default();
        if load.count >= self.config.signer_count_max
            || load.size_bytes + size > self.config.signer_size_bytes_max
        {
            return Err(MempoolError::SignerQuota {
                signer: *signer(&event),
                count: load.count,
                size_bytes: load.size_bytes,
            });
        }
        // `size_bytes <= size_bytes_max` always holds, so the subtraction cannot underflow.
        let room = self.config.size_bytes_max - self.size_bytes;
        if self.entries.len() >= self.config.count_max || size > room {
            return Err(MempoolError::Full {
                count: self.entries.len(),
                size_bytes: self.size_bytes,
            });
        }

        let seq = self.next_seq;
        self.next_seq = seq
            .checked_add(1)
            .expect("fewer than 2^64 events arrive in a node's lifetime");
        let id = event.id();
        let position = Position::arrival(seq);
        if let Some(proposal) = accepted_proposal(&event) {
            self.acceptances.entry(proposal).or_default().insert(id);
        }
        if let Some(shipment) = group(&event) {
            self.by_shipment
                .entry(shipment.clone())
                .or_default()
                .insert(id);
        }
        let load = self.by_signer.entry(*signer(&event)).or_default();
        load.count += 1;
        load.size_bytes += size;
        let proposal = is_proposal(&event);
        let previous = self.order.insert(position, id);
        assert!(previous.is_none(), "arrival numbers are unique");
        self.entries.insert(
            id,
            Entry {
                event,
                seq,
                position,
                arrived_at: Instant::now(),
                gossiped,
            },
        );
        self.size_bytes += size;
        if proposal {
            self.move_acceptances_behind(id);
        }
        self.check();
        Ok(Admission::Added)
    }

    /// Whether the pool holds the event with this id.
    pub fn contains(&self, id: &EventId) -> bool {
        self.entries.contains_key(id)
    }

    /// The held event with this id: verified when it was admitted, so a block that carries it
    /// needs no second check of its signature.
    pub fn get(&self, id: &EventId) -> Option<VerifiedEvent> {
        self.entries.get(id).map(|entry| entry.event.clone())
    }

    /// Whether the other members very likely hold this event too: it came by gossip, or it
    /// was admitted here (and published) at least `local_age_min` before `now`. A proposer
    /// names such events by id instead of sending them.
    pub fn is_widely_held(&self, id: &EventId, now: Instant, local_age_min: Duration) -> bool {
        self.entries.get(id).is_some_and(|entry| {
            entry.gossiped || now.saturating_duration_since(entry.arrived_at) >= local_age_min
        })
    }

    /// How many events the pool holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool holds no event.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many bytes the held events take, counting their canonical bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// The next block's candidates: at most `count_max` events of at most `size_bytes_max`
    /// bytes in all, in fair order ([`fair_order`](Self::fair_order)).
    ///
    /// An event that does not fit the remaining byte budget is skipped and the scan goes on,
    /// so one large event does not leave the rest of the block empty. Skipping it also skips
    /// every later event of its group (its shipment, or the events without a shipment):
    /// those may depend on it, and proposing them without it would only get them rejected.
    /// The events are clones; the pool keeps its own until [`remove`](Self::remove) is told
    /// they were committed.
    pub fn candidates(&self, count_max: usize, size_bytes_max: usize) -> Vec<VerifiedEvent> {
        let mut chosen = Vec::with_capacity(count_max.min(self.entries.len()));
        let mut budget = size_bytes_max;
        let mut blocked: BTreeSet<Option<&ShipmentId>> = BTreeSet::new();
        // Bounded by the pool size: one step per held event at most.
        for id in self.fair_order() {
            if chosen.len() >= count_max || budget == 0 {
                break;
            }
            let event = &self.entry(id).event;
            let group = group(event);
            if blocked.contains(&group) {
                continue;
            }
            let size = event.bytes().len();
            if size > budget {
                blocked.insert(group);
                continue;
            }
            budget -= size;
            chosen.push(event.clone());
        }
        chosen
    }

    /// Every held id in fair order: signers take turns, and no event overtakes an earlier one
    /// of its group.
    ///
    /// An event's turn is its rank among its signer's held events in candidate order (0 for
    /// a signer's first), raised to the turn of the previous event of its group, so that
    /// turns never decrease within a group. Ids are sorted by (turn, candidate position):
    /// every signer's first event, then every signer's second, and within a group the
    /// candidate order is kept, since both keys grow along a group. Deterministic: it depends
    /// on the arrival order alone.
    fn fair_order(&self) -> Vec<&EventId> {
        // Hash maps for lookups only: nothing iterates them, so the order stays a function of
        // the arrivals. (B-trees keyed by shipment id made this five times slower than the
        // arrival order on a pool of 22,000 events; see README, Performance.)
        let mut signer_rank: HashMap<&PublicKey, u64> = HashMap::new();
        let mut group_turn: HashMap<Option<&ShipmentId>, u64> =
            HashMap::with_capacity(self.by_shipment.len() + 1);
        let mut ranked: Vec<(u64, Position, &EventId)> = Vec::with_capacity(self.order.len());
        // Bounded by the pool size.
        for (position, id) in &self.order {
            let event = &self.entry(id).event;
            let rank = signer_rank.entry(signer(event)).or_insert(0);
            let own = *rank;
            *rank += 1;
            let previous = group_turn.entry(group(event)).or_insert(0);
            let turn = own.max(*previous);
            *previous = turn;
            ranked.push((turn, *position, id));
        }
        ranked.sort_unstable();
        ranked.into_iter().map(|(_, _, id)| id).collect()
    }

    /// Removes the given ids (events a block committed, or that a re-check rejected); unknown
    /// ids are ignored. Returns how many were removed.
    ///
    /// Unknown ids are normal: a block carries events this node never saw, and an id listed
    /// twice is removed once. Acceptances that waited behind a removed proposal go back to
    /// where they arrived, since nothing in the pool is left for them to wait for.
    pub fn remove(&mut self, ids: &[EventId]) -> usize {
        let removed = ids.iter().filter(|id| self.remove_one(id)).count();
        self.check();
        removed
    }

    /// Every event, in candidate order (for re-validation after a block).
    ///
    /// Re-validating in this order lets a re-check apply each event after the ones it depends
    /// on, exactly as the next block would.
    pub fn all_in_order(&self) -> Vec<VerifiedEvent> {
        self.order
            .values()
            .map(|id| self.entry(id).event.clone())
            .collect()
    }

    /// The held events a committed block may have made invalid, in candidate order, at most
    /// `count_max` of them.
    ///
    /// A block changes the state of the shipments its events name, so the pool's events of
    /// those shipments need a new look. A block with an event that has no shipment (membership,
    /// reference data) may change the verdict on anything (a signer removed, a tariff
    /// replaced), so then every held event is returned, up to the bound; events beyond the
    /// bound are still checked by the proposer when it builds a block.
    pub fn affected_by(
        &self,
        shipments: &BTreeSet<ShipmentId>,
        everything: bool,
        count_max: usize,
    ) -> Vec<VerifiedEvent> {
        self.order
            .values()
            .map(|id| &self.entry(id).event)
            .filter(|event| everything || group(event).is_some_and(|s| shipments.contains(s)))
            .take(count_max)
            .cloned()
            .collect()
    }

    /// The held events of one shipment, in candidate order.
    pub fn shipment_events(&self, shipment: &ShipmentId) -> Vec<VerifiedEvent> {
        let Some(ids) = self.by_shipment.get(shipment) else {
            return Vec::new();
        };
        let mut entries: Vec<&Entry> = ids.iter().map(|id| self.entry(id)).collect();
        entries.sort_by_key(|e| e.position);
        entries.into_iter().map(|e| e.event.clone()).collect()
    }

    /// The entry of an id taken from `order` or `acceptances`, which only name held events.
    fn entry(&self, id: &EventId) -> &Entry {
        self.entries
            .get(id)
            .expect("every id in the pool's indexes is held")
    }

    /// Moves every held acceptance of the just-admitted proposal `proposal_id` behind it.
    ///
    /// All of them arrived earlier (the proposal is the newest event), so all of them would
    /// otherwise come out first. An acceptance naming a proposal of another shipment stays
    /// where it is: moving it would reorder its own shipment for an event the state machine
    /// will refuse anyway.
    fn move_acceptances_behind(&mut self, proposal_id: EventId) {
        let Some(waiting) = self.acceptances.get(&proposal_id) else {
            return;
        };
        let proposal = self
            .entries
            .get(&proposal_id)
            .expect("the proposal was just admitted");
        let anchor = proposal.seq;
        let shipment = group(&proposal.event).cloned();
        // Bounded by the pool size: each id names a distinct held acceptance.
        for acceptance_id in waiting {
            let entry = self
                .entries
                .get_mut(acceptance_id)
                .expect("indexed acceptances are held");
            assert!(entry.seq < anchor, "a new proposal is the newest event");
            assert!(
                !entry.position.after_anchor,
                "an acceptance only ever waits behind the one proposal it names"
            );
            if group(&entry.event) == shipment.as_ref() {
                reposition(
                    &mut self.order,
                    entry,
                    *acceptance_id,
                    Position::after(anchor, entry.seq),
                );
            }
        }
    }

    /// Removes one event, returning whether it was held.
    fn remove_one(&mut self, id: &EventId) -> bool {
        let Some(entry) = self.entries.remove(id) else {
            return false;
        };
        let previous = self.order.remove(&entry.position);
        assert_eq!(
            previous,
            Some(*id),
            "the order names each entry at its position"
        );
        self.size_bytes -= entry.event.bytes().len();
        let load = self
            .by_signer
            .get_mut(signer(&entry.event))
            .expect("every held event's signer is counted");
        load.count -= 1;
        load.size_bytes -= entry.event.bytes().len();
        if load.count == 0 {
            assert_eq!(
                load.size_bytes, 0,
                "a signer holding nothing holds no bytes"
            );
            self.by_signer.remove(signer(&entry.event));
        }
        if let Some(shipment) = group(&entry.event) {
            let set = self
                .by_shipment
                .get_mut(shipment)
                .expect("every held event of a shipment is indexed");
            set.remove(id);
            if set.is_empty() {
                self.by_shipment.remove(shipment);
            }
        }
        if let Some(proposal) = accepted_proposal(&entry.event) {
            if let Some(set) = self.acceptances.get_mut(&proposal) {
                set.remove(id);
                if set.is_empty() {
                    self.acceptances.remove(&proposal);
                }
            }
        }
        if is_proposal(&entry.event) {
            if let Some(waiting) = self.acceptances.get(id) {
                // Bounded by the pool size: each id names a distinct held acceptance.
                for acceptance_id in waiting {
                    let waiter = self
                        .entries
                        .get_mut(acceptance_id)
                        .expect("indexed acceptances are held");
                    if waiter.position.after_anchor {
                        assert_eq!(
                            waiter.position.anchor, entry.seq,
                            "an acceptance waits only behind the proposal it names"
                        );
                        let back = Position::arrival(waiter.seq);
                        reposition(&mut self.order, waiter, *acceptance_id, back);
                    }
                }
            }
        }
        true
    }

    /// Checks the pool's invariants after a change.
    ///
    /// The cheap ones run in every debug build. The full walk is `O(n)`, which would make
    /// every insert linear, so it runs only in this module's tests.
    fn check(&self) {
        debug_assert_eq!(self.order.len(), self.entries.len());
        debug_assert!(self.entries.len() <= self.config.count_max);
        debug_assert!(self.size_bytes <= self.config.size_bytes_max);
        #[cfg(test)]
        self.assert_consistent();
    }

    /// Walks every entry and index and asserts they agree.
    #[cfg(test)]
    fn assert_consistent(&self) {
        let indexed_by_shipment: usize = self.by_shipment.values().map(BTreeSet::len).sum();
        let with_shipment = self
            .entries
            .values()
            .filter(|e| group(&e.event).is_some())
            .count();
        assert_eq!(
            indexed_by_shipment, with_shipment,
            "each shipment event indexed once"
        );
        for (shipment, ids) in &self.by_shipment {
            for id in ids {
                assert_eq!(group(&self.entry(id).event), Some(shipment));
            }
        }
        let bytes: usize = self.entries.values().map(|e| e.event.bytes().len()).sum();
        assert_eq!(bytes, self.size_bytes, "byte total matches the entries");
        let mut loads: BTreeMap<PublicKey, SignerLoad> = BTreeMap::new();
        for entry in self.entries.values() {
            let load = loads.entry(*signer(&entry.event)).or_default();
            load.count += 1;
            load.size_bytes += entry.event.bytes().len();
        }
        assert_eq!(loads, self.by_signer, "signer loads match the entries");
        for load in loads.values() {
            assert!(load.count <= self.config.signer_count_max);
            assert!(load.size_bytes <= self.config.signer_size_bytes_max);
        }
        assert_eq!(
            self.order.len(),
            self.entries.len(),
            "one position per entry"
        );
        assert!(self.entries.len() <= self.config.count_max);
        assert!(self.size_bytes <= self.config.size_bytes_max);
        let mut indexed = 0;
        for (id, entry) in &self.entries {
            assert_eq!(*id, entry.event.id());
            assert!(entry.seq < self.next_seq);
            assert_eq!(self.order.get(&entry.position), Some(id));
            assert_eq!(entry.position.seq, entry.seq);
            let proposal = accepted_proposal(&entry.event);
            if let Some(proposal) = proposal {
                indexed += 1;
                assert!(self
                    .acceptances
                    .get(&proposal)
                    .is_some_and(|s| s.contains(id)));
            }
            // An acceptance waits behind its proposal exactly when the proposal is held, came
            // later and belongs to the same shipment.
            let anchor = proposal
                .and_then(|p| self.entries.get(&p))
                .filter(|p| p.seq > entry.seq && group(&p.event) == group(&entry.event));
            match anchor {
                Some(p) => {
                    assert!(is_proposal(&p.event));
                    assert_eq!(entry.position, Position::after(p.seq, entry.seq));
                }
                None => assert_eq!(entry.position, Position::arrival(entry.seq)),
            }
        }
        let index_size: usize = self.acceptances.values().map(BTreeSet::len).sum();
        assert_eq!(
            index_size, indexed,
            "the acceptance index names held events only"
        );
        assert!(self.acceptances.values().all(|s| !s.is_empty()));
    }
}

/// Moves a held event to a new position in `order`.
fn reposition(
    order: &mut BTreeMap<Position, EventId>,
    entry: &mut Entry,
    id: EventId,
    to: Position,
) {
    let previous = order.remove(&entry.position);
    assert_eq!(
        previous,
        Some(id),
        "the order names each entry at its position"
    );
    let occupied = order.insert(to, id);
    assert!(occupied.is_none(), "positions are unique");
    entry.position = to;
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use custody_ledger::event::EncodedEvent;
    use custody_ledger::model::{Member, MemberId, MembershipChange, MembershipChanged, Role};
    use custody_ledger::testkit::{verified, TestNet};
    use proptest::prelude::*;

    use super::*;

    fn pool(count_max: usize, size_bytes_max: usize) -> Mempool {
        Mempool::new(MempoolConfig {
            count_max,
            size_bytes_max,
            signer_count_max: usize::MAX,
            signer_size_bytes_max: usize::MAX,
        })
    }

    fn unbounded() -> Mempool {
        pool(usize::MAX, usize::MAX)
    }

    fn ids(events: &[VerifiedEvent]) -> Vec<EventId> {
        events.iter().map(|e| e.id()).collect()
    }

    fn bytes(events: &[VerifiedEvent]) -> usize {
        events.iter().map(|e| e.bytes().len()).sum()
    }

    fn v(event: EncodedEvent) -> VerifiedEvent {
        verified([event]).remove(0)
    }

    fn vs(events: Vec<EncodedEvent>) -> Vec<VerifiedEvent> {
        verified(events)
    }

    fn insert_all(pool: &mut Mempool, events: &[VerifiedEvent]) {
        for event in events {
            assert_eq!(pool.insert(event.clone()), Ok(Admission::Added));
        }
    }

    #[test]
    fn gossiped_events_are_widely_held_at_once_and_local_ones_after_a_while() {
        let events = vs(net().lifecycle("WIDE"));
        let mut pool = unbounded();
        pool.insert(events[0].clone()).expect("admitted");
        pool.insert_gossiped(events[1].clone()).expect("admitted");
        let later = Duration::from_millis(100);
        let now = Instant::now();
        assert!(!pool.is_widely_held(&events[0].id(), now, later));
        assert!(pool.is_widely_held(&events[0].id(), now + later, later));
        assert!(pool.is_widely_held(&events[1].id(), now, later));
        assert!(!pool.is_widely_held(&events[2].id(), now + later, later));
    }

    /// A test network, built once: signing keys are derived from fixed seeds, so sharing it
    /// changes nothing but the time the tests take.
    fn net() -> &'static TestNet {
        static NET: OnceLock<TestNet> = OnceLock::new();
        NET.get_or_init(TestNet::new)
    }

    /// The lifecycles of four shipments, built once because signing them dominates the
    /// property tests' run time.
    fn lifecycles() -> &'static [Vec<VerifiedEvent>] {
        static LIFECYCLES: OnceLock<Vec<Vec<VerifiedEvent>>> = OnceLock::new();
        LIFECYCLES.get_or_init(|| {
            ["P1", "P2", "P3", "P4"]
                .iter()
                .map(|s| vs(net().lifecycle(s)))
                .collect()
        })
    }

    /// An event with no shipment: admin-1 admits a member named `name`.
    fn admit(name: &str) -> VerifiedEvent {
        v(net().sign(
            "admin-1",
            EventKind::MembershipChanged(MembershipChanged {
                change: MembershipChange::Admit {
                    member: Member {
                        id: MemberId::new(name),
                        name: format!("{name} Ltd"),
                        roles: vec![Role::Carrier],
                        key: net().key("auditor-ivy").public(),
                    },
                },
                approvals: vec![],
            }),
        ))
    }

    #[test]
    fn a_duplicate_is_reported_and_changes_nothing() {
        let events = vs(net().lifecycle("D1"));
        let mut pool = unbounded();
        insert_all(&mut pool, &events[..3]);
        let before = pool.all_in_order();
        assert_eq!(pool.insert(events[1].clone()), Ok(Admission::Duplicate));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.size_bytes(), bytes(&events[..3]));
        assert_eq!(pool.all_in_order(), before);
    }

    #[test]
    fn the_count_limit_gives_full_and_changes_nothing() {
        let events = vs(net().lifecycle("C1"));
        let mut pool = pool(2, usize::MAX);
        insert_all(&mut pool, &events[..2]);
        let before = pool.all_in_order();
        assert_eq!(
            pool.insert(events[2].clone()),
            Err(MempoolError::Full {
                count: 2,
                size_bytes: bytes(&events[..2]),
            })
        );
        assert!(!pool.contains(&events[2].id()));
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.size_bytes(), bytes(&events[..2]));
        assert_eq!(pool.all_in_order(), before);
        // A full pool still recognises what it holds.
        assert_eq!(pool.insert(events[0].clone()), Ok(Admission::Duplicate));
    }

    #[test]
    fn the_byte_limit_gives_full_and_changes_nothing() {
        let events = vs(net().lifecycle("B1"));
        let budget = bytes(&events[..2]) + events[2].bytes().len() - 1;
        let mut pool = pool(usize::MAX, budget);
        insert_all(&mut pool, &events[..2]);
        let before = pool.all_in_order();
        assert_eq!(
            pool.insert(events[2].clone()),
            Err(MempoolError::Full {
                count: 2,
                size_bytes: bytes(&events[..2]),
            })
        );
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.size_bytes(), bytes(&events[..2]));
        assert_eq!(pool.all_in_order(), before);
        let error = MempoolError::Full {
            count: 2,
            size_bytes: 10,
        };
        assert_eq!(
            error.to_string(),
            "mempool is full (2 events, 10 bytes held); retry later"
        );
    }

    #[test]
    fn an_event_larger_than_the_pool_is_too_large() {
        let registration = v(net().register("T1", "CN", "FR"));
        let size = registration.bytes().len();
        let mut pool = pool(10, size - 1);
        assert_eq!(
            pool.insert(registration),
            Err(MempoolError::TooLarge {
                size_bytes: size,
                size_bytes_max: size - 1,
            })
        );
        assert!(pool.is_empty());
        assert_eq!(pool.size_bytes(), 0);
    }

    #[test]
    fn removal_frees_space() {
        let events = vs(net().lifecycle("R1"));
        let mut pool = pool(3, bytes(&events[..3]));
        insert_all(&mut pool, &events[..3]);
        assert!(matches!(
            pool.insert(events[3].clone()),
            Err(MempoolError::Full { .. })
        ));
        let unknown = events[10].id();
        // An unknown id and a repeated id are each counted once at most.
        assert_eq!(pool.remove(&[events[0].id(), unknown, events[0].id()]), 1);
        assert!(!pool.contains(&events[0].id()));
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.size_bytes(), bytes(&events[1..3]));
        // The registration was the largest of the three, so a proposal now fits.
        assert_eq!(pool.insert(events[3].clone()), Ok(Admission::Added));
        assert_eq!(pool.remove(&ids(&events)), 3);
        assert!(pool.is_empty());
        assert_eq!(pool.size_bytes(), 0);
    }

    #[test]
    fn candidates_respect_the_count_and_byte_budgets() {
        let events = vs(net().lifecycle("K1"));
        let mut pool = unbounded();
        insert_all(&mut pool, &events);
        assert_eq!(pool.candidates(usize::MAX, usize::MAX), events);
        assert_eq!(pool.candidates(3, usize::MAX), events[..3]);
        assert_eq!(
            pool.candidates(usize::MAX, bytes(&events[..4])),
            events[..4]
        );
        assert_eq!(
            pool.candidates(
                usize::MAX,
                bytes(&events[..4]) + events[4].bytes().len() - 1
            ),
            events[..4]
        );
        assert_eq!(pool.candidates(2, bytes(&events[..4])), events[..2]);
        assert!(pool.candidates(0, usize::MAX).is_empty());
        assert!(pool.candidates(usize::MAX, 0).is_empty());
        // Proposing does not take anything out of the pool.
        assert_eq!(pool.len(), events.len());
    }

    /// Issue 11: a seller floods the pool with registrations; an admin's event and a carrier's
    /// acceptance that arrive after the flood still make the first small block, and the
    /// flood's own order is kept.
    #[test]
    fn regression_issue_11_a_flood_from_one_signer_does_not_starve_the_others() {
        let net = net();
        let flood: Vec<VerifiedEvent> = (0..40)
            .map(|i| v(net.register(&format!("F{i}"), "CN", "FR")))
            .collect();
        let proposal = v(net.propose("seller-acme", "F0", "carrier-swift"));
        let acceptance = v(net.accept("carrier-swift", "F0", &proposal));
        let membership = admit("carrier-fair");
        let mut pool = unbounded();
        insert_all(&mut pool, &flood);
        insert_all(
            &mut pool,
            &[proposal.clone(), acceptance.clone(), membership.clone()],
        );
        // Five slots: the seller's first registration (F0) and the admin's change take the
        // first turn; the acceptance must wait for its proposal, the seller's 41st event.
        let chosen = pool.candidates(5, usize::MAX);
        assert_eq!(chosen.len(), 5);
        assert!(
            chosen.contains(&membership),
            "the admin's event is not starved"
        );
        assert_eq!(chosen[0], flood[0]);
        let seller_events: Vec<&VerifiedEvent> = chosen
            .iter()
            .filter(|e| e.event().signer == flood[0].event().signer)
            .collect();
        assert_eq!(seller_events, flood[..4].iter().collect::<Vec<_>>());
        // F0's handoff: the acceptance never comes out before its proposal.
        let all = pool.candidates(usize::MAX, usize::MAX);
        let at = |e: &VerifiedEvent| all.iter().position(|a| a == e).expect("held");
        assert!(at(&proposal) < at(&acceptance));
        assert_eq!(all.len(), 43);
    }

    #[test]
    fn a_signer_at_its_quota_is_told_to_slow_down_and_others_are_not() {
        let net = net();
        let flood: Vec<VerifiedEvent> = (0..4)
            .map(|i| v(net.register(&format!("Q{i}"), "CN", "FR")))
            .collect();
        let mut pool = Mempool::new(MempoolConfig {
            count_max: 100,
            size_bytes_max: usize::MAX,
            signer_count_max: 3,
            signer_size_bytes_max: usize::MAX,
        });
        insert_all(&mut pool, &flood[..3]);
        match pool.insert(flood[3].clone()) {
            Err(MempoolError::SignerQuota { signer, count, .. }) => {
                assert_eq!(signer, flood[3].event().signer);
                assert_eq!(count, 3);
            }
            other => panic!("expected the signer quota, got {other:?}"),
        }
        assert_eq!(pool.insert(admit("carrier-q")), Ok(Admission::Added));
        pool.remove(&[flood[0].id()]);
        assert_eq!(pool.insert(flood[3].clone()), Ok(Admission::Added));
    }

    #[test]
    fn an_event_longer_than_an_event_may_be_is_too_large_whatever_the_pool_holds() {
        let event = v(net().oversize_publication());
        let size_bytes = event.bytes().len();
        assert!(size_bytes > EVENT_SIZE_BYTES_MAX);
        let mut pool = unbounded();
        assert_eq!(
            pool.insert(event),
            Err(MempoolError::TooLarge {
                size_bytes,
                size_bytes_max: EVENT_SIZE_BYTES_MAX,
            })
        );
        assert!(pool.is_empty());
    }

    #[test]
    fn a_skipped_event_holds_back_its_shipment_but_not_others() {
        let net = net();
        let big = v(net.register("G1", "CN", "FR"));
        let g1_proposal = v(net.propose("seller-acme", "G1", "carrier-swift"));
        let h1_proposal = v(net.propose("seller-acme", "H1", "carrier-swift"));
        let h1_acceptance = v(net.accept("carrier-swift", "H1", &h1_proposal));
        let mut pool = unbounded();
        insert_all(
            &mut pool,
            &[
                h1_proposal.clone(),
                big.clone(),
                g1_proposal.clone(),
                h1_acceptance.clone(),
            ],
        );
        // Room for the three small events: after H1's proposal the registration no longer
        // fits, and G1's proposal, which would fit, must not overtake it.
        let budget = bytes(&[
            h1_proposal.clone(),
            g1_proposal.clone(),
            h1_acceptance.clone(),
        ]);
        assert!(big.bytes().len() > budget - h1_proposal.bytes().len());
        assert_eq!(
            pool.candidates(usize::MAX, budget),
            vec![h1_proposal, h1_acceptance]
        );
    }

    #[test]
    fn events_without_a_shipment_keep_arrival_order_and_hold_each_other_back() {
        let registration = v(net().register("M1", "CN", "FR"));
        let large = admit("carrier-admitted-with-a-rather-longer-member-id");
        let small = admit("carrier-new");
        assert!(large.bytes().len() > small.bytes().len());
        let mut pool = unbounded();
        insert_all(
            &mut pool,
            &[registration.clone(), large.clone(), small.clone()],
        );
        assert_eq!(
            pool.candidates(usize::MAX, usize::MAX),
            vec![registration.clone(), large, small.clone()]
        );
        // After the registration only the small change fits, but it must not overtake the
        // large one: a later membership change may depend on an earlier one.
        let budget = registration.bytes().len() + small.bytes().len();
        assert_eq!(pool.candidates(usize::MAX, budget), vec![registration]);
    }

    #[test]
    fn an_acceptance_inserted_before_its_proposal_comes_out_after_it() {
        let events = vs(net().lifecycle("A1"));
        let other = v(net().register("A2", "CN", "FR"));
        let (registration, proposal, acceptance, declaration) =
            (&events[0], &events[1], &events[2], &events[5]);
        let mut pool = unbounded();
        insert_all(
            &mut pool,
            &[
                registration.clone(),
                acceptance.clone(),
                declaration.clone(),
                other.clone(),
                proposal.clone(),
            ],
        );
        let expected = vec![
            registration.clone(),
            declaration.clone(),
            other.clone(),
            proposal.clone(),
            acceptance.clone(),
        ];
        assert_eq!(pool.candidates(usize::MAX, usize::MAX), expected);
        assert_eq!(pool.all_in_order(), expected);

        // Once a block commits the proposal, the acceptance goes back to where it arrived.
        assert_eq!(pool.remove(&[proposal.id()]), 1);
        assert_eq!(
            pool.all_in_order(),
            vec![
                registration.clone(),
                acceptance.clone(),
                declaration.clone(),
                other.clone(),
            ]
        );
        // A proposal that comes round again is once more put before the acceptance.
        insert_all(&mut pool, std::slice::from_ref(proposal));
        assert_eq!(
            pool.all_in_order(),
            vec![
                registration.clone(),
                declaration.clone(),
                other.clone(),
                proposal.clone(),
                acceptance.clone(),
            ]
        );
        // Removing the acceptance leaves the rest in place.
        assert_eq!(pool.remove(&[acceptance.id()]), 1);
        assert_eq!(
            pool.all_in_order(),
            vec![
                registration.clone(),
                declaration.clone(),
                other,
                proposal.clone()
            ]
        );
    }

    #[test]
    fn an_acceptance_naming_another_shipments_proposal_is_not_moved() {
        let net = net();
        let proposal = v(net.propose("seller-acme", "X1", "carrier-swift"));
        let stray = v(net.accept("carrier-swift", "X2", &proposal));
        let mut pool = unbounded();
        insert_all(&mut pool, &[stray.clone(), proposal.clone()]);
        assert_eq!(pool.all_in_order(), vec![stray, proposal]);
    }

    #[test]
    fn affected_by_picks_the_named_shipments_in_order_or_everything() {
        let a = vs(net().lifecycle("AF1"));
        let b = vs(net().lifecycle("AF2"));
        let member = admit("newco");
        let mut pool = unbounded();
        insert_all(
            &mut pool,
            &[a[0].clone(), b[0].clone(), a[1].clone(), member.clone()],
        );
        let only_a = BTreeSet::from([ShipmentId::new("AF1")]);
        assert_eq!(
            ids(&pool.affected_by(&only_a, false, 10)),
            ids(&[a[0].clone(), a[1].clone()])
        );
        assert_eq!(ids(&pool.affected_by(&only_a, false, 1)), ids(&a[..1]));
        assert_eq!(pool.affected_by(&BTreeSet::new(), false, 10), vec![]);
        assert_eq!(
            ids(&pool.affected_by(&BTreeSet::new(), true, 10)),
            ids(&[a[0].clone(), b[0].clone(), a[1].clone(), member])
        );
    }

    #[test]
    fn two_interleaved_shipments_keep_each_shipments_order() {
        let first = vs(net().lifecycle("I1"));
        let second = vs(net().lifecycle("I2"));
        let arrival: Vec<VerifiedEvent> = first
            .iter()
            .zip(&second)
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        let mut pool = unbounded();
        insert_all(&mut pool, &arrival);
        assert_eq!(pool.all_in_order(), arrival);
        let out = pool.candidates(usize::MAX, usize::MAX);
        for lifecycle in [&first, &second] {
            let mine: Vec<&VerifiedEvent> = out.iter().filter(|e| lifecycle.contains(e)).collect();
            assert_eq!(mine, lifecycle.iter().collect::<Vec<_>>());
        }
        assert_eq!(pool.shipment_events(&ShipmentId::new("I2")), second);
        pool.remove(&ids(&second[..3]));
        assert_eq!(pool.shipment_events(&ShipmentId::new("I2")), second[3..]);
        assert_eq!(pool.shipment_events(&ShipmentId::new("NONE")), vec![]);
    }

    /// The expected candidate order, computed the slow, obvious way: arrival order, then each
    /// acceptance whose same-shipment proposal arrived later moved right behind it (behind any
    /// acceptances already moved there, in their arrival order).
    fn reference_order(arrival: &[VerifiedEvent]) -> Vec<EventId> {
        let waits_for = |event: &VerifiedEvent, i: usize| -> Option<usize> {
            let proposal = accepted_proposal(event)?;
            arrival
                .iter()
                .position(|p| p.id() == proposal)
                .filter(|&j| {
                    j > i && is_proposal(&arrival[j]) && group(&arrival[j]) == group(event)
                })
        };
        let mut out = Vec::new();
        for (j, event) in arrival.iter().enumerate() {
            if waits_for(event, j).is_some() {
                continue;
            }
            out.push(event.id());
            for (i, waiting) in arrival.iter().enumerate() {
                if waits_for(waiting, i) == Some(j) {
                    out.push(waiting.id());
                }
            }
        }
        out
    }

    /// Strategy: an arrival order of the four test lifecycles, each shipment's events in
    /// order except that each acceptance may arrive up to four places (of its own shipment)
    /// early, and shipments interleaved at random.
    fn arrivals() -> impl Strategy<Value = Vec<VerifiedEvent>> {
        let shipments = lifecycles().len();
        let per_shipment = lifecycles()[0].len();
        let slots: Vec<usize> = (0..shipments)
            .flat_map(|s| std::iter::repeat_n(s, per_shipment))
            .collect();
        (
            Just(slots).prop_shuffle(),
            prop::collection::vec((0..=4usize, 0..=4usize), shipments),
        )
            .prop_map(|(slots, early)| {
                let mut streams: Vec<Vec<VerifiedEvent>> = lifecycles()
                    .iter()
                    .zip(&early)
                    .map(|(lifecycle, &(first, second))| {
                        let mut stream = lifecycle.clone();
                        // The acceptances are at 2 and 4 in a lifecycle; moving the first
                        // one earlier leaves the second one at 4.
                        for (at, by) in [(2, first), (4, second)] {
                            assert!(matches!(kind(&stream[at]), EventKind::HandoffAccepted(_)));
                            let acceptance = stream.remove(at);
                            stream.insert(at - by.min(at), acceptance);
                        }
                        stream
                    })
                    .collect();
                for stream in &mut streams {
                    stream.reverse();
                }
                slots
                    .iter()
                    .map(|&s| streams[s].pop().expect("one slot per event"))
                    .collect()
            })
    }

    /// Checks a block's candidates against everything held, in candidate order: within the
    /// budgets, and for each group a prefix of that group's held events, so nothing overtakes
    /// an event it may depend on; and nothing left out would still have fit.
    fn check_candidates(
        all: &[VerifiedEvent],
        fair: &[VerifiedEvent],
        chosen: &[VerifiedEvent],
        count_max: usize,
        size_bytes_max: usize,
    ) -> Result<(), TestCaseError> {
        prop_assert!(chosen.len() <= count_max);
        prop_assert!(bytes(chosen) <= size_bytes_max);
        let groups: BTreeSet<Option<&ShipmentId>> = all.iter().map(group).collect();
        for g in groups {
            let held: Vec<&VerifiedEvent> = all.iter().filter(|e| group(e) == g).collect();
            let mine: Vec<&VerifiedEvent> = chosen.iter().filter(|e| group(e) == g).collect();
            prop_assert_eq!(&held[..mine.len()], &mine[..]);
            // The first event of the group left out did not fit what was left of the budget
            // (or the count was reached).
            if let Some(next) = held.get(mine.len()) {
                prop_assert!(
                    chosen.len() == count_max
                        || bytes(chosen) + next.bytes().len() > size_bytes_max
                );
            }
        }
        // Chosen in fair order.
        let positions: Vec<usize> = chosen
            .iter()
            .map(|e| {
                fair.iter()
                    .position(|a| a.id() == e.id())
                    .expect("chosen events are held")
            })
            .collect();
        prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
        Ok(())
    }

    /// One step of a random workload over the first two test lifecycles.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize),
        Remove(Vec<usize>),
    }

    fn workload_events() -> Vec<VerifiedEvent> {
        lifecycles()[..2].concat()
    }

    fn op() -> impl Strategy<Value = Op> {
        let n = workload_events().len();
        prop_oneof![
            3 => (0..n).prop_map(Op::Insert),
            1 => prop::collection::vec(0..n, 0..4).prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn candidates_keep_every_lifecycle_in_order(arrival in arrivals()) {
            let mut pool = unbounded();
            insert_all(&mut pool, &arrival);
            let out = pool.candidates(usize::MAX, usize::MAX);
            prop_assert_eq!(out.len(), arrival.len());
            let distinct: BTreeSet<EventId> = out.iter().map(|e| e.id()).collect();
            prop_assert_eq!(distinct.len(), out.len());
            for lifecycle in lifecycles() {
                let mine: Vec<EventId> =
                    out.iter().filter(|e| lifecycle.contains(e)).map(|e| e.id()).collect();
                prop_assert_eq!(mine, ids(lifecycle));
            }
            prop_assert_eq!(ids(&pool.all_in_order()), reference_order(&arrival));
            let mut sorted = ids(&out);
            sorted.sort();
            prop_assert_eq!(sorted, distinct.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn random_inserts_and_removals_keep_the_totals(
            count_max in 0..=24usize,
            size_bytes_max in 0..=4_000usize,
            ops in prop::collection::vec(op(), 0..60),
            block_count in 0..=8usize,
            block_bytes in 0..=1_500usize,
        ) {
            let events = workload_events();
            let mut pool = pool(count_max, size_bytes_max);
            let mut model: BTreeMap<EventId, usize> = BTreeMap::new();
            // The held events in the order they were (last) admitted.
            let mut arrival: Vec<VerifiedEvent> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(i) => {
                        let event = &events[i];
                        let size = event.bytes().len();
                        let held: usize = model.values().sum();
                        let expected = if model.contains_key(&event.id()) {
                            Ok(Admission::Duplicate)
                        } else if size > size_bytes_max {
                            Err(MempoolError::TooLarge { size_bytes: size, size_bytes_max })
                        } else if model.len() >= count_max || held + size > size_bytes_max {
                            Err(MempoolError::Full { count: model.len(), size_bytes: held })
                        } else {
                            model.insert(event.id(), size);
                            arrival.push(event.clone());
                            Ok(Admission::Added)
                        };
                        prop_assert_eq!(pool.insert(event.clone()), expected);
                    }
                    Op::Remove(picks) => {
                        let chosen: Vec<EventId> = picks.iter().map(|&i| events[i].id()).collect();
                        let distinct: BTreeSet<EventId> = chosen.iter().copied().collect();
                        let expected = distinct.iter().filter(|id| model.remove(id).is_some()).count();
                        prop_assert_eq!(pool.remove(&chosen), expected);
                        arrival.retain(|e| !distinct.contains(&e.id()));
                    }
                }
                let all = pool.all_in_order();
                prop_assert_eq!(ids(&all), reference_order(&arrival));
                let fair = pool.candidates(usize::MAX, usize::MAX);
                check_candidates(&all, &fair, &pool.candidates(block_count, block_bytes), block_count, block_bytes)?;
                prop_assert_eq!(pool.len(), model.len());
                prop_assert_eq!(pool.is_empty(), model.is_empty());
                prop_assert_eq!(pool.size_bytes(), model.values().sum::<usize>());
                let held: BTreeSet<EventId> = all.iter().map(|e| e.id()).collect();
                prop_assert_eq!(held.len(), pool.len());
                prop_assert!(held.iter().eq(model.keys()));
                for event in &events {
                    prop_assert_eq!(pool.contains(&event.id()), model.contains_key(&event.id()));
                }
                pool.assert_consistent();
            }
        }
    }
}
