//! The SDK signs personal-data requests with exactly the bytes a node checks.

use custody_client::personal;
use custody_ledger::keys::Keypair;
use custody_ledger::model::ShipmentId;
use custody_ledger::personal::{Disclosure, PersonalField, Salt};
use custody_ledger::Digest;
use custody_node::personal::auth;

fn disclosures() -> Vec<Disclosure> {
    vec![
        Disclosure::new(
            Digest::sha256(b"registration"),
            PersonalField::BuyerName,
            "Zoë Buyer",
            Salt([3; 32]),
        ),
        Disclosure::new(
            Digest::sha256(b"delivery"),
            PersonalField::ReceivedBy,
            "",
            Salt([4; 32]),
        ),
    ]
}

#[test]
fn the_sdk_and_the_node_sign_the_same_bytes() {
    let shipment = ShipmentId::new("S-1:a.b_c");
    assert_eq!(
        personal::write_message(&shipment, &disclosures()),
        auth::write_message(&shipment, &disclosures())
    );
    assert_eq!(
        personal::read_message(&shipment, 1_793_491_200_123),
        auth::read_message(&shipment, 1_793_491_200_123)
    );
    let key = Keypair::from_seed([9; 32]);
    let request = personal::sign_write(&key, &shipment, disclosures());
    let as_node: auth::DiscloseRequest =
        serde_json::from_str(&serde_json::to_string(&request).expect("json")).expect("node parses");
    assert_eq!(auth::check_write(&shipment, &as_node), Ok(()));
    let headers = personal::read_headers(&key, &shipment, 1_000);
    let read = auth::SignedRead {
        signer: key.public(),
        time_ms: headers[1].1.parse().expect("time"),
        signature: auth::signature_from_hex(&headers[2].1).expect("hex"),
    };
    assert_eq!(headers[0].1, key.public().to_hex());
    assert_eq!(auth::check_read(&shipment, &read, 1_000), Ok(()));
}

#[test]
fn a_commitment_opens_with_its_fresh_salt_only() {
    let (commitment, salt) = personal::commit("J. Buyer");
    assert_eq!(
        custody_ledger::personal::commitment("J. Buyer", &salt),
        commitment
    );
    let (again, other) = personal::commit("J. Buyer");
    assert_ne!(salt, other, "a fresh salt each time");
    assert_ne!(commitment, again);
}
