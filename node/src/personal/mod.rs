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

use std::sync::Arc;

use custody_ledger::genesis::Genesis;
use custody_ledger::model::{EventKind, MemberId, ShipmentId};
use custody_ledger::personal::Disclosure;
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
    loop {
        match commits.recv().await {
            Ok(commit) => {
                erase_in_block(&files, &commit).await;
                if let Some(sharing) = &personal.sharing {
                    for shipment in involving(&genesis, personal.node_member.as_ref(), &commit) {
                        sharing.enqueue(shipment);
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

/// The shipments of `commit` whose events this node's member signed or is the named receiver
/// of: its node should hold their disclosures.
fn involving(genesis: &Genesis, member: Option<&MemberId>, commit: &Committed) -> Vec<ShipmentId> {
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
    let mut out: Vec<ShipmentId> = Vec::new();
    for event in &commit.block.events {
        let kind = &event.event().event.kind;
        let Some(shipment) = kind.shipment_id() else {
            continue;
        };
        let named = matches!(kind, EventKind::HandoffProposed(p) if &p.to == member);
        // A registration's signer is the seller, whose node is where disclosures start.
        let registers = matches!(kind, EventKind::ShipmentRegistered(_));
        let signed = keys.contains(&event.event().signer) && !registers;
        if (named || signed) && !out.contains(shipment) {
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
