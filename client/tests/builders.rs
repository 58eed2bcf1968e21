//! The event builders: every kind signs, verifies, has a valid shape and survives JSON; the
//! events are the ones the ledger's own test kit signs, and the ledger accepts them.

use custody_client::build::Signer;
use custody_ledger::event::{check_shape, EncodedEvent};
use custody_ledger::model::*;
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::{self, TestNet, CHAIN_ID, GENESIS_TIME};
use custody_ledger::{Digest, Keypair, Timestamp};

fn signer(net: &TestNet, member: &str) -> Signer {
    let key = Keypair::from_signing_key(net.key(member).signing_key().clone());
    Signer::new(key, CHAIN_ID)
}

fn shipment() -> ShipmentId {
    ShipmentId::new("BUILD-1")
}

/// One event of every kind, built with the builders.
fn one_of_each(net: &TestNet) -> Vec<(&'static str, EncodedEvent)> {
    let at = Timestamp(GENESIS_TIME.0 + 60_000);
    let seller = signer(net, "seller-acme");
    let carrier = signer(net, "carrier-swift");
    let broker = signer(net, "broker-clear");
    let customs = signer(net, "customs-qx");
    let admin = signer(net, "admin-1");
    let eur = testkit::eur();
    let some_id = Digest::sha256(b"some event");
    let change = MembershipChange::Revoke {
        member: MemberId::new("auditor-ivy"),
        reason: "left the network".into(),
    };
    vec![
        (
            "ShipmentRegistered",
            seller.register(testkit::registration("BUILD-1", "CN", "FR"), at),
        ),
        (
            "HandoffProposed",
            seller.propose_handoff(
                HandoffProposed {
                    shipment_id: shipment(),
                    to: MemberId::new("carrier-swift"),
                    place: "CNSHA".into(),
                    transport_document: Some(TransportDocument {
                        kind: TransportDocumentKind::AirWaybill,
                        number: "02012345675".into(),
                    }),
                },
                at,
            ),
        ),
        (
            "HandoffAccepted",
            carrier.accept_handoff(
                HandoffAccepted {
                    shipment_id: shipment(),
                    proposal: some_id,
                },
                at,
            ),
        ),
        (
            "CustomsDeclared",
            broker.declare(
                CustomsDeclared {
                    shipment_id: shipment(),
                    declaration_ref: "DEC-1".into(),
                    jurisdiction: CountryCode::parse("FR").expect("FR"),
                    transport_mode: TransportMode::Courier,
                    currency: eur,
                    valuation_basis: ValuationBasis::CIF,
                    customs_value_minor: 26_200,
                    freight_minor: 1_000,
                    insurance_minor: 200,
                    exchange_rate: None,
                    regime: CustomsRegime::Full,
                    lines: vec![DeclarationLine {
                        invoice_line: 1,
                        hs_code: "61091000".into(),
                        customs_value_minor: 26_200,
                        duty_minor: 300,
                        tax_minor: 5_060,
                    }],
                    duty_total_minor: 300,
                    tax_total_minor: 5_060,
                },
                at,
            ),
        ),
        (
            "DutyPaid",
            seller.pay_duty(
                DutyPaid {
                    shipment_id: shipment(),
                    declaration: some_id,
                    amount: Money {
                        amount_minor: 5_360,
                        currency: eur,
                    },
                    payment_reference: "PAY-1".into(),
                },
                at,
            ),
        ),
        (
            "CustomsCleared",
            broker.clear(
                CustomsCleared {
                    shipment_id: shipment(),
                    declaration: some_id,
                    outcome: ClearanceOutcome::Hold,
                    authority_reference: "MRN-1".into(),
                    reason: "documents missing".into(),
                },
                at,
            ),
        ),
        (
            "Delivered",
            carrier.deliver(
                Delivered {
                    shipment_id: shipment(),
                    place: "FRPAR".into(),
                    proof_kind: ProofKind::Photo,
                    proof_hash: Digest::sha256(b"photo"),
                    received_by_commitment: custody_ledger::personal::commitment(
                        "J. Buyer",
                        &testkit::salt(1),
                    ),
                },
                at,
            ),
        ),
        (
            "ReturnRequested",
            seller.request_return(
                ReturnRequested {
                    shipment_id: shipment(),
                    rma: "RMA-1".into(),
                    lines: vec![LineQuantity {
                        invoice_line: 1,
                        quantity: 2,
                    }],
                    reason: "wrong size".into(),
                },
                at,
            ),
        ),
        (
            "ReturnReceived",
            seller.receive_return(
                ReturnReceived {
                    shipment_id: shipment(),
                    rma: "RMA-1".into(),
                    lines: vec![ReturnedLine {
                        invoice_line: 1,
                        quantity: 2,
                        disposition: Disposition::Damaged,
                    }],
                },
                at,
            ),
        ),
        (
            "DocumentAttested",
            broker.attest_document(
                DocumentAttested {
                    shipment_id: shipment(),
                    document_type: "certificate_of_origin".into(),
                    document_hash: Digest::sha256(b"certificate"),
                    reference: "COO-1".into(),
                },
                at,
            ),
        ),
        (
            "ReferenceDataPublished",
            customs.publish_reference(
                ReferenceDataPublished {
                    table_id: "hs-nomenclature".into(),
                    effective_from: GENESIS_TIME,
                    data: ReferenceData::HsNomenclature(HsNomenclature {
                        edition: "HS2022".into(),
                        subheadings: vec!["610910".into(), "691200".into()],
                    }),
                },
                at,
            ),
        ),
        (
            "MembershipChanged",
            admin.change_membership(
                MembershipChanged {
                    approvals: vec![signer(net, "admin-2").approve(&change)],
                    change,
                },
                at,
            ),
        ),
        (
            "TrackingScanRecorded",
            carrier.record_scan(testkit::tracking_scan("BUILD-1", "DEHAM"), at),
        ),
        (
            "PersonalDataErased",
            seller.erase_personal(
                PersonalDataErased {
                    shipment_id: shipment(),
                },
                at,
            ),
        ),
    ]
}

#[test]
fn every_kind_is_signed_well_formed_and_survives_json() {
    let net = TestNet::new();
    let events = one_of_each(&net);
    assert_eq!(events.len(), 14, "one event per kind");
    for (name, event) in events {
        assert_eq!(event.event().event.kind.name(), name);
        assert_eq!(event.event().event.chain_id, CHAIN_ID, "{name}");
        assert_eq!(
            event.event().event.occurred_at,
            Timestamp(GENESIS_TIME.0 + 60_000)
        );
        event
            .verify_signature()
            .unwrap_or_else(|r| panic!("{name}: {r}"));
        check_shape(event.event(), CHAIN_ID).unwrap_or_else(|r| panic!("{name}: {r}"));

        let json = serde_json::to_string(&event.event()).expect("to JSON");
        let back: SignedEvent = serde_json::from_str(&json).expect("from JSON");
        let back = EncodedEvent::new(back);
        assert_eq!(back, event, "{name}: JSON round trip changed the event");
        assert_eq!(
            EncodedEvent::decode(event.bytes()),
            Ok(event.clone()),
            "{name}"
        );

        let mut forged = event.event().clone();
        forged.signature.0[0] ^= 1;
        assert!(
            EncodedEvent::new(forged).verify_signature().is_err(),
            "{name}: a flipped signature bit still verifies"
        );
    }
}

#[test]
fn builders_sign_exactly_what_the_ledger_test_kit_signs() {
    let net = TestNet::new();
    let seller = signer(&net, "seller-acme");
    let built = seller.register(testkit::registration("SAME-1", "CN", "FR"), GENESIS_TIME);
    let kit = net.register("SAME-1", "CN", "FR");
    assert_eq!(built.id(), kit.id());
    assert_eq!(built.bytes(), kit.bytes());

    let carrier = signer(&net, "carrier-swift");
    let proposal = net.propose_at("seller-acme", "SAME-1", "carrier-swift", "CNSHA");
    let accepted = carrier.accept_handoff(
        HandoffAccepted {
            shipment_id: ShipmentId::new("SAME-1"),
            proposal: proposal.id(),
        },
        GENESIS_TIME,
    );
    assert_eq!(
        accepted.id(),
        net.accept("carrier-swift", "SAME-1", &proposal).id()
    );
    let scan = carrier.record_scan(testkit::tracking_scan("SAME-1", "CNSHA"), GENESIS_TIME);
    assert_eq!(scan.id(), net.scan("carrier-swift", "SAME-1", "CNSHA").id());
}

#[test]
fn the_ledger_commits_built_events_including_a_co_signed_membership_change() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let seller = signer(&net, "seller-acme");
    let admin = signer(&net, "admin-1");
    let change = MembershipChange::Revoke {
        member: MemberId::new("auditor-ivy"),
        reason: "left the network".into(),
    };
    let revoke = admin.change_membership(
        MembershipChanged {
            approvals: vec![signer(&net, "admin-2").approve(&change)],
            change,
        },
        GENESIS_TIME,
    );
    let register = seller.register(testkit::registration("LEDGER-1", "CN", "FR"), GENESIS_TIME);
    let propose = seller.propose_handoff(
        HandoffProposed {
            shipment_id: ShipmentId::new("LEDGER-1"),
            to: MemberId::new("carrier-swift"),
            place: "CNSHA".into(),
            transport_document: None,
        },
        GENESIS_TIME,
    );
    let scan = signer(&net, "carrier-lastmile")
        .record_scan(testkit::tracking_scan("LEDGER-1", "CNSHA"), GENESIS_TIME);
    let built = net
        .commit(&store, vec![revoke, register, propose, scan], GENESIS_TIME)
        .expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let state = store
        .shipment(&ShipmentId::new("LEDGER-1"))
        .expect("store")
        .expect("registered");
    let pending = state.pending_handoff.expect("a pending handoff");
    assert_eq!(pending.to, MemberId::new("carrier-swift"));
    let auditor = store
        .stored_member(&MemberId::new("auditor-ivy"))
        .expect("store")
        .expect("changed by the block");
    assert_eq!(auditor.status, custody_ledger::state::MemberStatus::Revoked);

    // An approval for another chain does not count: the change needs two admins.
    let other_chain_admin = Signer::new(
        Keypair::from_signing_key(net.key("admin-2").signing_key().clone()),
        "another-chain",
    );
    let change = MembershipChange::Revoke {
        member: MemberId::new("carrier-lastmile"),
        reason: "gone".into(),
    };
    let revoke = admin.change_membership(
        MembershipChanged {
            approvals: vec![other_chain_admin.approve(&change)],
            change,
        },
        GENESIS_TIME,
    );
    let built = net
        .commit(&store, vec![revoke], GENESIS_TIME)
        .expect("commit");
    assert_eq!(
        built.rejected.len(),
        1,
        "an approval for another chain counted"
    );
}
