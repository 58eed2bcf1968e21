//! `custody shipment show`'s text, from a ledger built with the test kit.

mod common;

use custody_client::timeline::{render, Directory};
use custody_ledger::model::ShipmentId;
use custody_ledger::state::MemberStatus;
use custody_ledger::store::Store;
use custody_ledger::testkit::TestNet;
use custody_ledger::view::{EventEntry, MemberView};

#[test]
fn the_timeline_names_signers_places_and_customs_amounts_then_the_state() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let id = ShipmentId::new("B-A");
    let entries: Vec<EventEntry> = store
        .shipment_events(&id, None, 100)
        .expect("store")
        .into_iter()
        .map(|(log_index, event_id)| {
            let stored = store.event(&event_id).expect("store").expect("event");
            let header = store
                .header(stored.location.height)
                .expect("store")
                .expect("header");
            EventEntry {
                event_id,
                height: stored.location.height,
                log_index,
                recorded_at: header.time,
                event: stored.event.into_event(),
            }
        })
        .collect();
    let members: Vec<MemberView> = net
        .genesis
        .members
        .iter()
        .map(|m| MemberView {
            id: m.id.clone(),
            name: m.name.clone(),
            roles: m.roles.clone(),
            key: m.key,
            retired_keys: vec![],
            status: MemberStatus::Active,
            node_key: m.node_key,
            voting_power: m.voting_power,
        })
        .collect();
    let state = store.shipment(&id).expect("store").expect("shipment");
    let text = render(&state, &entries, &members);
    let lines: Vec<&str> = text.lines().collect();

    let line_of = |kind: &str| {
        lines
            .iter()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} line in\n{text}"))
    };
    let registered = line_of("ShipmentRegistered");
    assert!(registered.contains("seller-acme"), "{registered}");
    assert!(registered.contains("CN → FR"), "{registered}");
    assert!(registered.contains("250.00 EUR"), "{registered}");
    // The second handoff: proposed by the air carrier at Paris-CDG, accepted there.
    let accepted: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("HandoffAccepted"))
        .collect();
    assert_eq!(accepted.len(), 2, "{text}");
    assert!(accepted[1].contains("carrier-lastmile"), "{}", accepted[1]);
    assert!(accepted[1].contains("FRCDG"), "{}", accepted[1]);
    let declared = line_of("CustomsDeclared");
    assert!(declared.contains("broker-clear"), "{declared}");
    assert!(declared.contains("duty 3.00 EUR"), "{declared}");
    assert!(declared.contains("tax 50.60 EUR"), "{declared}");
    assert!(line_of("DutyPaid").contains("paid 53.60 EUR"), "{text}");
    assert!(
        line_of("CustomsCleared").contains("outcome release"),
        "{text}"
    );
    assert!(line_of("Delivered").contains("FRPAR"), "{text}");

    assert!(line_of("status").contains("returned"), "{text}");
    assert!(line_of("custodian").contains("carrier-lastmile"), "{text}");
    let declaration = line_of("declaration");
    assert!(
        declaration.contains("due 53.60 EUR") && declaration.contains("paid 53.60 EUR"),
        "{declaration}"
    );
    assert!(declaration.contains("release"), "{declaration}");

    // Unknown keys show as a key prefix rather than a wrong name.
    let stranger = custody_ledger::Keypair::from_seed([9; 32]).public();
    assert!(Directory::new(&members).name(&stranger).starts_with("key "));
}
