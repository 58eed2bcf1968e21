//! Who may hold a shipment's personal data: its parties.
//!
//! The parties of a shipment are its seller, every member that signed one of its committed
//! events, and every member named as the receiver of one of its handoff proposals. A request
//! is by a party if its key is an active party member's current event key or that member's
//! node key (genesis records the node keys), so a member's person and its node both qualify.

use std::collections::{BTreeMap, BTreeSet};

use custody_ledger::genesis::Genesis;
use custody_ledger::model::{EventKind, MemberId, ShipmentId};
use custody_ledger::state::MemberStatus;
use custody_ledger::store::{Store, StoreError};
use custody_ledger::PublicKey;

/// Most events of one shipment looked at (a bundle holds at most this many too).
pub const SHIPMENT_EVENTS_MAX: usize = 10_000;

/// Events read per page.
const PAGE_ITEMS: usize = 1_000;

/// A member as the party check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    key: PublicKey,
    retired_keys: Vec<PublicKey>,
    node_key: Option<PublicKey>,
    active: bool,
}

/// The members of a ledger: genesis, as later blocks changed or added them.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    members: BTreeMap<MemberId, Known>,
}

impl Directory {
    /// Reads the members from the store and genesis.
    pub fn load(store: &impl Store, genesis: &Genesis) -> Result<Directory, StoreError> {
        let mut members: BTreeMap<MemberId, Known> = genesis
            .members
            .iter()
            .map(|m| {
                let known = Known {
                    key: m.key,
                    retired_keys: Vec::new(),
                    node_key: m.node_key,
                    active: true,
                };
                (m.id.clone(), known)
            })
            .collect();
        for record in store.stored_members()? {
            let node_key = members.get(&record.id).and_then(|k| k.node_key);
            members.insert(
                record.id.clone(),
                Known {
                    key: record.key,
                    retired_keys: record.retired_keys.clone(),
                    node_key,
                    active: record.status == MemberStatus::Active,
                },
            );
        }
        Ok(Directory { members })
    }

    /// The member that signs (or signed) with `key`.
    pub fn signer(&self, key: &PublicKey) -> Option<&MemberId> {
        self.members
            .iter()
            .find(|(_, m)| m.key == *key || m.retired_keys.contains(key))
            .map(|(id, _)| id)
    }

    /// Whether `key` is the current event key or the node key of active member `id`.
    fn speaks_for(&self, id: &MemberId, key: &PublicKey) -> bool {
        self.members
            .get(id)
            .is_some_and(|m| m.active && (m.key == *key || m.node_key == Some(*key)))
    }
}

/// The parties of one shipment.
#[derive(Debug, Clone)]
pub struct Parties {
    members: BTreeSet<MemberId>,
    directory: Directory,
}

impl Parties {
    /// The parties of `shipment` as committed, or `None` if the ledger does not know it.
    pub fn of(
        store: &impl Store,
        genesis: &Genesis,
        shipment: &ShipmentId,
    ) -> Result<Option<Parties>, StoreError> {
        let Some(state) = store.shipment(shipment)? else {
            return Ok(None);
        };
        let directory = Directory::load(store, genesis)?;
        let mut members = BTreeSet::from([state.seller.clone()]);
        let mut after = None;
        for _ in 0..SHIPMENT_EVENTS_MAX.div_ceil(PAGE_ITEMS) {
            let page = store.shipment_events(shipment, after, PAGE_ITEMS)?;
            for (_, id) in &page {
                let Some(stored) = store.event(id)? else {
                    continue;
                };
                let signed = &stored.event.event();
                if let Some(member) = directory.signer(&signed.signer) {
                    members.insert(member.clone());
                }
                if let EventKind::HandoffProposed(proposal) = &signed.event.kind {
                    members.insert(proposal.to.clone());
                }
            }
            if page.len() < PAGE_ITEMS {
                break;
            }
            after = page.last().map(|(index, _)| *index);
        }
        Ok(Some(Parties { members, directory }))
    }

    /// Whether member `id` is a party.
    pub fn contains(&self, id: &MemberId) -> bool {
        self.members.contains(id)
    }

    /// The party member `key` speaks for (event key or node key), if any.
    pub fn admits(&self, key: &PublicKey) -> Option<&MemberId> {
        self.members
            .iter()
            .find(|id| self.directory.speaks_for(id, key))
    }

    /// The parties' ids.
    pub fn members(&self) -> impl Iterator<Item = &MemberId> {
        self.members.iter()
    }
}
