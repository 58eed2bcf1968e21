//! Building signed events: one method per event kind.
//!
//! A [`Signer`] holds a member's key and the network's chain id. Each method wraps its payload
//! in the matching [`EventKind`], signs it with [`custody_ledger::event::sign`] and returns the
//! [`EncodedEvent`] (canonical bytes and id) ready for [`crate::Client::submit`].

use custody_ledger::event::{self, EncodedEvent};
use custody_ledger::model::{
    Approval, CustomsCleared, CustomsDeclared, Delivered, DocumentAttested, DutyPaid, Event,
    EventKind, HandoffAccepted, HandoffProposed, MembershipChange, MembershipChanged,
    PersonalDataErased, ReferenceDataPublished, ReturnReceived, ReturnRequested,
    ShipmentRegistered, TrackingScanRecorded,
};
use custody_ledger::{Keypair, PublicKey, Timestamp};

/// A member's signing key on one network.
#[derive(Debug)]
pub struct Signer {
    /// The member's event-signing key.
    pub key: Keypair,
    /// The network's chain id, which every event carries.
    pub chain_id: String,
}

impl Signer {
    /// A signer for `chain_id` with `key`.
    pub fn new(key: Keypair, chain_id: impl Into<String>) -> Signer {
        Signer {
            key,
            chain_id: chain_id.into(),
        }
    }

    /// The public key events are signed with.
    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// The unsigned body of an event of this chain.
    pub fn body(&self, kind: EventKind, occurred_at: Timestamp) -> Event {
        Event {
            chain_id: self.chain_id.clone(),
            occurred_at,
            kind,
        }
    }

    /// Signs an event of any kind.
    pub fn sign(&self, kind: EventKind, occurred_at: Timestamp) -> EncodedEvent {
        self.sign_body(self.body(kind, occurred_at))
    }

    /// Signs a prepared body as it is, whatever chain id it names.
    pub fn sign_body(&self, body: Event) -> EncodedEvent {
        EncodedEvent::new(event::sign(body, &self.key))
    }

    /// A seller registers a shipment.
    pub fn register(&self, payload: ShipmentRegistered, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::ShipmentRegistered(payload), occurred_at)
    }

    /// The custodian proposes a handoff.
    pub fn propose_handoff(
        &self,
        payload: HandoffProposed,
        occurred_at: Timestamp,
    ) -> EncodedEvent {
        self.sign(EventKind::HandoffProposed(payload), occurred_at)
    }

    /// The proposed receiver accepts a handoff.
    pub fn accept_handoff(&self, payload: HandoffAccepted, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::HandoffAccepted(payload), occurred_at)
    }

    /// A customs broker declares a shipment.
    pub fn declare(&self, payload: CustomsDeclared, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::CustomsDeclared(payload), occurred_at)
    }

    /// Someone pays duty and tax for a declaration.
    pub fn pay_duty(&self, payload: DutyPaid, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::DutyPaid(payload), occurred_at)
    }

    /// A customs broker records the authority's decision.
    pub fn clear(&self, payload: CustomsCleared, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::CustomsCleared(payload), occurred_at)
    }

    /// The custodian delivers a shipment.
    pub fn deliver(&self, payload: Delivered, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::Delivered(payload), occurred_at)
    }

    /// The seller authorises a return.
    pub fn request_return(&self, payload: ReturnRequested, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::ReturnRequested(payload), occurred_at)
    }

    /// The seller records returned goods.
    pub fn receive_return(&self, payload: ReturnReceived, occurred_at: Timestamp) -> EncodedEvent {
        self.sign(EventKind::ReturnReceived(payload), occurred_at)
    }

    /// An issuer attests a document about a shipment.
    pub fn attest_document(
        &self,
        payload: DocumentAttested,
        occurred_at: Timestamp,
    ) -> EncodedEvent {
        self.sign(EventKind::DocumentAttested(payload), occurred_at)
    }

    /// The custodian, or any carrier, records a tracking scan of the shipment or some of its
    /// parcels. Custody does not move.
    pub fn record_scan(
        &self,
        payload: TrackingScanRecorded,
        occurred_at: Timestamp,
    ) -> EncodedEvent {
        self.sign(EventKind::TrackingScanRecorded(payload), occurred_at)
    }

    /// The shipment's seller, or an admin, records that its personal data was erased off the
    /// ledger.
    pub fn erase_personal(
        &self,
        payload: PersonalDataErased,
        occurred_at: Timestamp,
    ) -> EncodedEvent {
        self.sign(EventKind::PersonalDataErased(payload), occurred_at)
    }

    /// A customs authority publishes reference data.
    pub fn publish_reference(
        &self,
        payload: ReferenceDataPublished,
        occurred_at: Timestamp,
    ) -> EncodedEvent {
        self.sign(EventKind::ReferenceDataPublished(payload), occurred_at)
    }

    /// An admin proposes a membership change, with other admins' approvals.
    pub fn change_membership(
        &self,
        payload: MembershipChanged,
        occurred_at: Timestamp,
    ) -> EncodedEvent {
        self.sign(EventKind::MembershipChanged(payload), occurred_at)
    }

    /// This signer's approval of a membership change on its chain, as a co-signing admin
    /// gives it to the admin who submits the change.
    pub fn approve(&self, change: &MembershipChange) -> Approval {
        event::approve(&self.chain_id, change, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::model::{MemberId, ShipmentId};

    #[test]
    fn a_signed_event_carries_the_chain_id_and_verifies() {
        let signer = Signer::new(Keypair::from_seed([3; 32]), "net-1");
        let event = signer.propose_handoff(
            HandoffProposed {
                shipment_id: ShipmentId::new("S-1"),
                to: MemberId::new("carrier-1"),
                place: "DEHAM".into(),
                transport_document: None,
            },
            Timestamp(1_000),
        );
        assert_eq!(event.event().event.chain_id, "net-1");
        assert_eq!(event.event().event.occurred_at, Timestamp(1_000));
        assert_eq!(event.event().signer, signer.public());
        assert_eq!(event.verify_signature(), Ok(()));
        assert_eq!(EncodedEvent::decode(event.bytes()), Ok(event.clone()));
    }

    #[test]
    fn a_scan_is_signed_as_its_kind() {
        let signer = Signer::new(Keypair::from_seed([4; 32]), "net-1");
        let payload = custody_ledger::testkit::tracking_scan("S-1", "DEHAM");
        let event = signer.record_scan(payload.clone(), Timestamp(2_000));
        assert_eq!(
            event.event().event.kind,
            EventKind::TrackingScanRecorded(payload)
        );
        assert_eq!(event.verify_signature(), Ok(()));
    }
}
