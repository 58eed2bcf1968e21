//! Personal data off the ledger (DESIGN.md decision 10, issue 15).
//!
//! Events carry only salted commitments to personal data ([`custody_ledger::personal`]); the
//! values and salts ([`Disclosure`]s) live here, in one file per shipment on the nodes of the
//! shipment's parties ([`files`]). A party gives them to its node with a signed
//! `POST /v1/shipments/{id}/personal` and reads them with a signed `GET` ([`routes`]); a node
//! whose member becomes a party fetches them from its configured peers with the same signed
//! read, signed with its node key ([`share`]). Nothing here is ever gossiped.
//!
//! Erasure is the on-ledger `PersonalDataErased` event: every node deletes the shipment's file
//! when the erasing block is appended (decided or synced: both pass the host's one commit
//! path and its `Committed` announcement), and sweeps its folder at start and whenever it
//! missed announcements, so a node that was down or crashed between the append and the
//! delete deletes on its next start.

pub mod auth;
pub mod files;
pub mod parties;
pub mod routes;
pub mod share;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use custody_ledger::event::EncodedEvent;
use custody_ledger::genesis::Genesis;
use custody_ledger::model::{EventKind, MemberId, ShipmentId};
use custody_ledger::personal::{commitment_of, Disclosure, PersonalField};
use custody_ledger::store::{Store, StoreError};
use custody_sled::SledStore;
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::consensus::host::Committed;

pub use files::{FilesError, PersonalFiles};
pub use share::Sharing;

/// Most disclosures kept for one shipment.
pub const DISCLOSURES_MAX: usize = 64;

/// A node's personal-data service: its files and, when it has peers, its sharing with them.
/// The default keeps nothing (routes answer 503 `personal.unavailable`), for API tests that do
/// not exercise it.
#[derive(Debug, Default)]
pub struct Personal {
    /// The off-ledger files; `None` when this node keeps no personal data.
    pub files: Option<PersonalFiles>,
    /// Fetching from other party nodes; `None` without peers.
    pub sharing: Option<Sharing>,
    /// The member this node belongs to (whose node key it holds).
    pub node_member: Option<MemberId>,
}

impl Personal {
    /// The service over `files`, fetching through `sharing`.
    pub fn new(
        files: PersonalFiles,
        sharing: Option<Sharing>,
        node_member: Option<MemberId>,
    ) -> Personal {
        Personal {
            files: Some(files),
            sharing,
            node_member,
        }
    }
}

/// Whether the ledger says the personal data of `shipment` was erased. An unknown shipment
/// was not.
pub fn is_erased(store: &SledStore, shipment: &ShipmentId) -> Result<bool, StoreError> {
    store
        .shipment(shipment)
        .map(|s| s.is_some_and(|s| s.personal_erased))
}

/// Follows the node's commits: deletes the files of shipments a block erased, and asks the
/// sharing task to fetch the disclosures of shipments this node's member took part in. Runs
/// until the host drops its sender. File work runs on the blocking pool; this task never waits
/// on a peer.
pub async fn follow_commits(
    personal: Arc<Personal>,
    store: Arc<SledStore>,
    genesis: Arc<Genesis>,
    mut commits: broadcast::Receiver<Committed>,
) {
    use broadcast::error::RecvError;
    let Some(files) = personal.files.clone() else {
        return;
    };
    let mut asked = Asked::default();
    loop {
        match commits.recv().await {
            Ok(commit) => {
                erase_in_block(&files, &commit).await;
                if let Some(sharing) = &personal.sharing {
                    let member = personal.node_member.as_ref();
                    let wanted = worth_asking(&genesis, member, &commit.block.events, &asked);
                    for shipments in wanted.chunks(auth::READ_BATCH_SHIPMENTS_MAX) {
                        let job = share::Job {
                            height: commit.block.header.height,
                            shipments: shipments.to_vec(),
                        };
                        if sharing.enqueue(job) {
                            for shipment in shipments {
                                asked.record(shipment.clone());
                            }
                        }
                    }
                }
            }
            // Announcements were missed: one may have been an erasure, so sweep.
            Err(RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "missed commit announcements; sweeping personal data"
                );
                sweep_async(&files, &store).await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Deletes the files of the shipments whose personal data `commit` erased.
async fn erase_in_block(files: &PersonalFiles, commit: &Committed) {
    for event in &commit.block.events {
        if let EventKind::PersonalDataErased(erased) = &event.event().event.kind {
            let (files, shipment) = (files.clone(), erased.shipment_id.clone());
            let height = commit.block.header.height;
            let result =
                tokio::task::spawn_blocking(move || files.erase(&shipment).map(|d| (d, shipment)))
                    .await;
            match result {
                Ok(Ok((true, shipment))) => info!(%shipment, height, "personal data erased"),
                Ok(Ok((false, shipment))) => {
                    debug!(%shipment, height, "personal data erased; this node held none")
                }
                Ok(Err(error)) => warn!(%error, height, "cannot delete erased personal data"),
                Err(error) => warn!(%error, height, "personal-data erasure task failed"),
            }
        }
    }
}

/// Most shipments [`Asked`] remembers.
const ASKED_SHIPMENTS_MAX: usize = 65_536;

/// The shipments this node has already asked its peers about, so that each later block of a
/// shipment does not ask every peer again. Bounded: the oldest is forgotten first, and a
/// forgotten shipment costs one more round of asking at most. Kept in memory only: after a
/// restart a shipment's next block asks once more.
#[derive(Debug, Default)]
struct Asked {
    order: VecDeque<ShipmentId>,
    known: BTreeSet<ShipmentId>,
}

impl Asked {
    fn contains(&self, shipment: &ShipmentId) -> bool {
        self.known.contains(shipment)
    }

    fn record(&mut self, shipment: ShipmentId) {
        if !self.known.insert(shipment.clone()) {
            return;
        }
        if self.order.len() == ASKED_SHIPMENTS_MAX {
            let oldest = self.order.pop_front().expect("a full list has a first");
            self.known.remove(&oldest);
        }
        self.order.push_back(shipment);
    }
}

/// The shipments of a committed block whose disclosures this node should fetch from its
/// peers: those in which the block involves this node's member (names it as the next
/// custodian, or holds an event it signed other than a registration, whose signer's node is
/// where disclosures start), when the member has just become a party (not [`Asked`] before)
/// or the block holds a commitment another member signed (a value this node cannot hold yet).
/// Disclosures made later still reach a party on its first read (`GET .../personal` fetches
/// when nothing is held).
fn worth_asking(
    genesis: &Genesis,
    member: Option<&MemberId>,
    events: &[EncodedEvent],
    asked: &Asked,
) -> Vec<ShipmentId> {
    let Some(member) = member else {
        return Vec::new();
    };
    // Genesis keys suffice here: a member admitted later runs no node.
    let keys: Vec<_> = genesis
        .members
        .iter()
        .filter(|m| &m.id == member)
        .flat_map(|m| [Some(m.key), m.node_key])
        .flatten()
        .collect();
    // Per shipment: whether the block involves the member, and whether it brings a
    // commitment someone else signed.
    let mut seen: BTreeMap<&ShipmentId, (bool, bool)> = BTreeMap::new();
    for event in events {
        let signed = event.event();
        let kind = &signed.event.kind;
        let Some(shipment) = kind.shipment_id() else {
            continue;
        };
        let ours = keys.contains(&signed.signer);
        let named = matches!(kind, EventKind::HandoffProposed(p) if &p.to == member);
        let registers = matches!(kind, EventKind::ShipmentRegistered(_));
        let commits = PersonalField::ALL
            .iter()
            .any(|field| commitment_of(kind, *field).is_some());
        let entry = seen.entry(shipment).or_default();
        entry.0 |= named || (ours && !registers);
        entry.1 |= commits && !ours;
    }
    let mut out: Vec<ShipmentId> = Vec::new();
    // In block order, so the oldest shipment is asked about first.
    for event in events {
        let Some(shipment) = event.event().event.kind.shipment_id() else {
            continue;
        };
        let Some((involved, new_values)) = seen.remove(shipment) else {
            continue;
        };
        if involved && (new_values || !asked.contains(shipment)) {
            out.push(shipment.clone());
        }
    }
    out
}

/// Deletes the files of erased shipments, on the blocking pool; logs what it did.
pub async fn sweep_async(files: &PersonalFiles, store: &Arc<SledStore>) {
    let (files, store) = (files.clone(), store.clone());
    let swept =
        tokio::task::spawn_blocking(move || files.sweep(|shipment| is_erased(&store, shipment)))
            .await;
    match swept {
        Ok(Ok(deleted)) if deleted > 0 => info!(deleted, "swept erased personal data"),
        Ok(Ok(_)) => {}
        Ok(Err(error)) => warn!(%error, "cannot sweep personal data"),
        Err(error) => warn!(%error, "personal-data sweep task failed"),
    }
}

/// What a node answers for a shipment's personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalView {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The disclosures this node holds, by event and field.
    pub disclosures: Vec<Disclosure>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::testkit::TestNet;

    fn carrier() -> MemberId {
        MemberId::new("carrier-swift")
    }

    fn asked_about(
        net: &TestNet,
        member: &MemberId,
        events: &[EncodedEvent],
        asked: &Asked,
    ) -> Vec<String> {
        worth_asking(&net.genesis, Some(member), events, asked)
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect()
    }

    #[test]
    fn a_member_asks_when_it_becomes_a_party_and_not_again_for_its_own_events() {
        let net = TestNet::new();
        let register = net.register("S-1", "CN", "FR");
        let proposal = net.propose("seller-acme", "S-1", "carrier-swift");
        let mut asked = Asked::default();
        // Named as the next custodian: asks once.
        let first = asked_about(
            &net,
            &carrier(),
            &[register.clone(), proposal.clone()],
            &asked,
        );
        assert_eq!(first, ["S-1"]);
        asked.record(ShipmentId::new("S-1"));
        // Its acceptance and its own delivery (a commitment it signed) ask nothing more.
        let accept = net.accept("carrier-swift", "S-1", &proposal);
        let deliver = net.deliver("carrier-swift", "S-1");
        assert!(asked_about(&net, &carrier(), &[accept], &asked).is_empty());
        assert!(asked_about(&net, &carrier(), std::slice::from_ref(&deliver), &asked).is_empty());
        // A block that does not involve the member asks nothing, even about a new shipment.
        let other = net.register("S-2", "CN", "FR");
        assert!(asked_about(&net, &carrier(), &[other], &asked).is_empty());
        // The seller, involved by its own proposal, asks again when the block brings the
        // carrier's commitment to who received the parcel.
        let seller = MemberId::new("seller-acme");
        asked.record(ShipmentId::new("S-1"));
        let again = net.propose("seller-acme", "S-1", "carrier-swift");
        assert_eq!(
            asked_about(&net, &seller, std::slice::from_ref(&again), &asked),
            Vec::<String>::new()
        );
        assert_eq!(
            asked_about(&net, &seller, &[again, deliver], &asked),
            ["S-1"]
        );
        // A node without a member asks nothing.
        assert!(worth_asking(&net.genesis, None, &[register], &Asked::default()).is_empty());
    }

    #[test]
    fn asked_shipments_are_bounded_and_the_oldest_is_forgotten_first() {
        let mut asked = Asked::default();
        for i in 0..=ASKED_SHIPMENTS_MAX {
            asked.record(ShipmentId::new(format!("S-{i}")));
        }
        assert_eq!(asked.order.len(), ASKED_SHIPMENTS_MAX);
        assert_eq!(asked.known.len(), ASKED_SHIPMENTS_MAX);
        assert!(!asked.contains(&ShipmentId::new("S-0")));
        assert!(asked.contains(&ShipmentId::new("S-1")));
        assert!(asked.contains(&ShipmentId::new(format!("S-{ASKED_SHIPMENTS_MAX}"))));
        // Recording a known shipment changes nothing.
        asked.record(ShipmentId::new("S-1"));
        assert_eq!(asked.order.len(), ASKED_SHIPMENTS_MAX);
    }
}
