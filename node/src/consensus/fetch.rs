//! Compact proposals: a proposer names by id the events the validators already hold, and a
//! validator resolves those ids from its mempool, fetching from the proposer the few it
//! lacks.
//!
//! Every event a proposer takes from its mempool was gossiped to every member, so the bodies
//! of a block are usually on every validator before the proposal is. Sending 34 bytes for
//! each such event instead of its canonical bytes shrinks the proposal stream, and resolving
//! an id is a map lookup where a body costs a full decode (and, unless the pool holds it, a
//! signature check). The block header still commits to the full events, so whatever an id
//! resolves to, a block that does not match its header is refused as before.
//!
//! A validator that lacks some events asks the proposer for them once, over the event-gossip
//! swarm, bounded by the block's event count and the block size and given up after
//! [`FETCH_TIMEOUT_MS`]; if no matching answer comes, it judges the proposal invalid and votes
//! nil, and the other validators commit without it.

use std::collections::BTreeMap;
use std::time::Duration;

use arc_malachitebft_app_channel::app::types::core::Round;
use arc_malachitebft_app_channel::app::types::ProposedValue;
use custody_ledger::block::BlockHeader;
use custody_ledger::event::{EncodedEvent, VerifiedEvent};
use custody_ledger::model::EventId;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::context::{Address, CustodyContext, EventRef, Height, ProposalPart};
use crate::event_fetch::FetchError;
use crate::gossip::GossipHandle;

/// How long a validator waits for the events it fetches from a proposer: well under the
/// engine's 3 s propose timeout, so that a validator whose fetch fails still prevotes (nil)
/// in the round, and far over the round trip of a few hundred kilobytes between members.
pub const FETCH_TIMEOUT_MS: u64 = 1_000;

/// How long after admitting an event itself a proposer names it by id. The event left in a
/// gossip batch at most 10 ms after admission, and reaches and passes the other members'
/// checks within tens of milliseconds on a network of members; an event named too early costs
/// the validators a fetch, one sent whole costs only its bytes. An event this node received
/// by gossip is named at once: its publisher sent it to every member together.
pub const LOCAL_EVENT_AGE_MIN_MS: u64 = 100;

/// What an entry costs in a proposal part when named by id: the variant tag, the digest's
/// length byte and its 32 bytes.
pub const ID_SIZE_BYTES: usize = 34;

/// The bytes an entry adds to a proposal part, for chunking.
pub fn entry_size_bytes(entry: &EventRef) -> usize {
    match entry {
        EventRef::Id(_) => ID_SIZE_BYTES,
        EventRef::Body(bytes) => bytes.len(),
    }
}

/// The entries of a block's events: ids for those `widely_held` says every validator has,
/// bodies for the rest, in block order.
pub fn entries(events: &[EncodedEvent], widely_held: impl Fn(&EventId) -> bool) -> Vec<EventRef> {
    events
        .iter()
        .map(|event| {
            let id = event.id();
            if widely_held(&id) {
                EventRef::Id(id)
            } else {
                EventRef::Body(event.bytes().to_vec())
            }
        })
        .collect()
}

/// One event of a proposal being resolved.
// Nearly every slot holds an event, so boxing it would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Event(EncodedEvent),
    Missing(EventId),
}

/// A proposal's events as far as this node could resolve them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    slots: Vec<Slot>,
    missing: Vec<EventId>,
}

/// Why a proposal's events cannot make a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A body is not a canonical signed event.
    #[error("event {index} of the proposal does not decode")]
    Undecodable {
        /// Its position in the block.
        index: usize,
    },
    /// The proposer answered with fewer or more bodies than were asked for.
    #[error("asked for {asked} events, got {got}")]
    Count {
        /// How many were asked for.
        asked: usize,
        /// How many came.
        got: usize,
    },
    /// A fetched body is not the event its id names.
    #[error("a fetched event is not the one asked for: wanted {wanted}")]
    WrongEvent {
        /// The id asked for.
        wanted: EventId,
    },
    /// The fetch failed or timed out.
    #[error("fetching the missing events failed: {0}")]
    Fetch(#[from] FetchError),
}

impl Resolution {
    /// The ids this node lacks, in block order.
    pub fn missing(&self) -> &[EventId] {
        &self.missing
    }

    /// The block's events, once nothing is missing.
    pub fn complete(self) -> Option<Vec<EncodedEvent>> {
        if !self.missing.is_empty() {
            return None;
        }
        self.slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Event(event) => Some(event),
                Slot::Missing(_) => None,
            })
            .collect()
    }

    /// Fills the missing events with the fetched `bodies` (in the order of
    /// [`Resolution::missing`]), each checked against its id.
    pub fn fill(self, bodies: Vec<Vec<u8>>) -> Result<Vec<EncodedEvent>, ResolveError> {
        if bodies.len() != self.missing.len() {
            return Err(ResolveError::Count {
                asked: self.missing.len(),
                got: bodies.len(),
            });
        }
        let mut fetched = bodies.into_iter();
        let mut events = Vec::with_capacity(self.slots.len());
        // Bounded by the block's event count.
        for (index, slot) in self.slots.into_iter().enumerate() {
            let event = match slot {
                Slot::Event(event) => event,
                Slot::Missing(wanted) => {
                    let bytes = fetched.next().expect("one body per missing event");
                    let event = EncodedEvent::decode(&bytes)
                        .map_err(|_| ResolveError::Undecodable { index })?;
                    if event.id() != wanted {
                        return Err(ResolveError::WrongEvent { wanted });
                    }
                    event
                }
            };
            events.push(event);
        }
        Ok(events)
    }
}

/// Resolves a proposal's entries: bodies are decoded, ids are taken from `held` (events this
/// node verified on arrival, taken as they are), and the ids not held are listed as missing.
pub fn resolve(
    entries: Vec<EventRef>,
    held: &BTreeMap<EventId, VerifiedEvent>,
) -> Result<Resolution, ResolveError> {
    let mut slots = Vec::with_capacity(entries.len());
    let mut missing = Vec::new();
    // Bounded by the parts' entries, at most a block's worth per part.
    for (index, entry) in entries.into_iter().enumerate() {
        let slot = match entry {
            EventRef::Body(bytes) => Slot::Event(
                EncodedEvent::decode(&bytes).map_err(|_| ResolveError::Undecodable { index })?,
            ),
            EventRef::Id(id) => match held.get(&id) {
                Some(event) => Slot::Event(event.encoded().clone()),
                None => {
                    missing.push(id);
                    Slot::Missing(id)
                }
            },
        };
        slots.push(slot);
    }
    Ok(Resolution { slots, missing })
}

/// The ids that the entries of `parts` name, for looking them up in the mempool at once.
pub fn named_ids(parts: &[ProposalPart]) -> Vec<EventId> {
    parts
        .iter()
        .filter_map(|part| match part {
            ProposalPart::Events(entries) => Some(entries),
            _ => None,
        })
        .flatten()
        .filter_map(|entry| match entry {
            EventRef::Id(id) => Some(*id),
            EventRef::Body(_) => None,
        })
        .collect()
}

/// A proposal whose events are being fetched, with the engine's reply kept until then.
#[derive(Debug)]
pub struct Pending {
    /// Which fetch answers it.
    pub fetch: u64,
    /// The proposal's height.
    pub height: Height,
    /// Its round.
    pub round: Round,
    /// Its proof-of-lock round.
    pub pol_round: Round,
    /// Its proposer.
    pub proposer: Address,
    /// Its header.
    pub header: BlockHeader,
    /// Its events so far.
    pub resolution: Resolution,
    /// Its parts, kept with the candidate if it validates.
    pub parts: Vec<ProposalPart>,
    /// The engine's reply for the part that completed the stream.
    pub reply: oneshot::Sender<Option<ProposedValue<CustodyContext>>>,
}

/// The answer to a fetch, for the host.
#[derive(Debug)]
pub struct Fetched {
    /// Which fetch.
    pub fetch: u64,
    /// The bodies, or why there are none.
    pub bodies: Result<Vec<Vec<u8>>, FetchError>,
}

/// Asks `proposer` for the events `ids` on a task of its own, and sends the answer (or the
/// failure, after at most [`FETCH_TIMEOUT_MS`]) to `done`.
pub fn spawn_fetch(
    gossip: GossipHandle,
    proposer: Address,
    ids: Vec<EventId>,
    fetch: u64,
    done: mpsc::Sender<Fetched>,
) {
    tokio::spawn(async move {
        let bodies = match crate::keys::peer_id(&proposer.0) {
            Some(peer) => {
                let asked = gossip.fetch_events(peer, ids);
                tokio::time::timeout(Duration::from_millis(FETCH_TIMEOUT_MS), asked)
                    .await
                    .unwrap_or_else(|_| Err(FetchError::Failed("timed out".into())))
            }
            None => Err(FetchError::Failed(
                "the proposer's key is no peer id".into(),
            )),
        };
        if done.send(Fetched { fetch, bodies }).await.is_err() {
            warn!(
                fetch,
                "the consensus host stopped before a fetch of events ended"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use custody_ledger::testkit::{verified, TestNet};

    use super::*;

    fn lifecycle() -> Vec<VerifiedEvent> {
        verified(TestNet::new().lifecycle("FETCH"))
    }

    fn held(events: &[VerifiedEvent]) -> BTreeMap<EventId, VerifiedEvent> {
        events.iter().map(|e| (e.id(), e.clone())).collect()
    }

    fn encoded(events: &[VerifiedEvent]) -> Vec<EncodedEvent> {
        events.iter().map(|e| e.encoded().clone()).collect()
    }

    #[test]
    fn events_held_resolve_without_a_fetch_and_keep_their_order() {
        let events = lifecycle();
        let block = encoded(&events);
        // Every other event by id, the rest whole.
        let entries = super::entries(&block, |id| {
            block
                .iter()
                .position(|e| e.id() == *id)
                .is_some_and(|i| i % 2 == 0)
        });
        assert!(matches!(entries[0], EventRef::Id(_)));
        assert!(matches!(entries[1], EventRef::Body(_)));
        let resolution = resolve(entries, &held(&events)).expect("resolves");
        assert!(resolution.missing().is_empty());
        assert_eq!(resolution.complete(), Some(block));
    }

    #[test]
    fn events_not_held_are_missing_and_filled_by_their_bodies() {
        let events = lifecycle();
        let block = encoded(&events);
        let entries = super::entries(&block, |_| true);
        // This node lacks the second and the fourth event.
        let mut pool = held(&events);
        pool.remove(&events[1].id());
        pool.remove(&events[3].id());
        let resolution = resolve(entries, &pool).expect("resolves");
        assert_eq!(resolution.missing(), [events[1].id(), events[3].id()]);
        assert_eq!(resolution.clone().complete(), None);
        let bodies = vec![block[1].bytes().to_vec(), block[3].bytes().to_vec()];
        assert_eq!(resolution.fill(bodies), Ok(block));
    }

    #[test]
    fn fetched_bodies_that_are_not_the_named_events_are_refused() {
        let events = lifecycle();
        let block = encoded(&events);
        let mut pool = held(&events);
        pool.remove(&events[1].id());
        let resolution = resolve(super::entries(&block, |_| true), &pool).expect("resolves");
        // Another real event in place of the one asked for.
        assert_eq!(
            resolution.clone().fill(vec![block[2].bytes().to_vec()]),
            Err(ResolveError::WrongEvent {
                wanted: events[1].id()
            })
        );
        assert_eq!(
            resolution.clone().fill(vec![vec![1, 2, 3]]),
            Err(ResolveError::Undecodable { index: 1 })
        );
        assert_eq!(
            resolution.fill(Vec::new()),
            Err(ResolveError::Count { asked: 1, got: 0 })
        );
    }

    #[test]
    fn a_body_that_does_not_decode_is_refused_at_once() {
        let entries = vec![EventRef::Body(vec![0xFF; 8])];
        assert_eq!(
            resolve(entries, &BTreeMap::new()),
            Err(ResolveError::Undecodable { index: 0 })
        );
    }
}
