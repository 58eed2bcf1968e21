//! The canonical codec: pinned golden hashes, round trips, and malformed input.

use custody_ledger::block::{BlockHeader, CommitCertificate};
use custody_ledger::codec::{self, CodecError, EVENT_SIZE_BYTES_MAX};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::state::{MemberRecord, ShipmentState};
use custody_ledger::store::MemoryStore;
use custody_ledger::testkit::{registration, TestNet, GENESIS_TIME};
use custody_ledger::{Digest, Timestamp};
use proptest::prelude::*;

/// A fixed event and a fixed block hash to these values. If this test fails, the canonical
/// format changed: every stored ledger and every signature is affected. Change the pinned
/// values only together with a new format version and a note in docs/PROTOCOL.md. (Format
/// v3 moved the block and genesis hashes: genesis gained its rules schedule, the state delta
/// its rules activations, and `CustomsDeclared` its transport mode; event ids did not move.
/// Format v4 moved the registration's id (its buyer is a `Buyer` of commitments) and the block
/// hash (log entries, `shipments_root`, the shipment record's head entry); genesis did not.)
#[test]
fn golden_hashes_are_stable() {
    let net = TestNet::new();
    let event = net.register("GOLDEN-1", "CN", "FR");
    assert_eq!(
        event.id().to_hex(),
        "ae5f5c0256e4b02ad133320b3268292150eb4781f770803c4bba64037b1aeadd",
        "event id changed"
    );
    assert_eq!(
        Digest::sha256(event.bytes()).to_hex(),
        "411463bf0886bb61ee2e14a50ce98379a34abc119a8d4308e51f80a939d3f623",
        "event bytes changed"
    );
    let store = MemoryStore::new(net.genesis_hash());
    let built = net
        .commit(
            &store,
            net.lifecycle("GOLDEN-2"),
            Timestamp(GENESIS_TIME.0 + 1_000),
        )
        .expect("commit");
    assert_eq!(
        built.block().hash().to_hex(),
        "270005b3fbf61546ea010d77202a93718699aeb1c0fddd888eb6c739881611f4",
        "block hash changed"
    );
    assert_eq!(
        net.genesis_hash().to_hex(),
        "faa56d7ec3efc724b9c22d87af1887c5f7d834c64b8cb4cfdac0cab242016c6f",
        "genesis hash changed"
    );
}

/// A fixed `TrackingScanRecorded` (format v2: `EventKind` variant 12, appended after the
/// twelve kinds of format v1, whose encodings and the goldens above are unchanged) hashes to
/// these values (docs/PROTOCOL.md §16.5). The same rule as above: change them only with a new format version.
#[test]
fn golden_tracking_scan_hash_is_stable() {
    let net = TestNet::new();
    let event = net.scan("carrier-swift", "GOLDEN-3", "DEHAM");
    // chain id (13 bytes), occurred_at (9 bytes), then the variant index 12.
    assert_eq!(
        event.bytes()[22],
        12,
        "TrackingScanRecorded is EventKind variant 12"
    );
    assert_eq!(
        event.id().to_hex(),
        "73e10ea41f827f25f2ae03c2ef7126c34ae68212f215390e91cd84878f5835d1",
        "event id changed"
    );
    assert_eq!(
        Digest::sha256(event.bytes()).to_hex(),
        "8390851bd5a84cc4af2ca38bf2c6ae150f85b90c7fabfdbc58b7cbcf98c2ef89",
        "event bytes changed"
    );
    assert_eq!(EncodedEvent::decode(event.bytes()), Ok(event.clone()));
    let json = serde_json::to_value(event.event()).expect("json");
    let scan = &json["event"]["kind"]["TrackingScanRecorded"];
    assert_eq!(scan["biz_step"], "departing");
    assert_eq!(scan["read_point_gln"], "0614141000005");
    assert_eq!(scan["sensor_readings"][0]["value_milli"], 4_500);
    assert_eq!(scan["exception"], false);
    let back: SignedEvent = serde_json::from_value(json).expect("parse");
    assert_eq!(EncodedEvent::new(back), event);
}

/// `PersonalDataErased` is `EventKind` variant 13 (format v4, appended after the tracking
/// scan): its payload is the shipment id alone.
#[test]
fn personal_data_erased_is_variant_13() {
    let net = TestNet::new();
    let event = net.erase_personal("seller-acme", "GOLDEN-4");
    // chain id (13 bytes), occurred_at (9 bytes), then the variant index 13.
    assert_eq!(
        event.bytes()[22],
        13,
        "PersonalDataErased is EventKind variant 13"
    );
    // Then the shipment id, length-prefixed: nothing else.
    assert_eq!(event.bytes()[23], 8);
    assert_eq!(&event.bytes()[24..32], b"GOLDEN-4");
    assert_eq!(EncodedEvent::decode(event.bytes()), Ok(event.clone()));
    let json = serde_json::to_value(event.event()).expect("json");
    assert_eq!(
        json["event"]["kind"]["PersonalDataErased"],
        serde_json::json!({ "shipment_id": "GOLDEN-4" })
    );
    let back: SignedEvent = serde_json::from_value(json).expect("parse");
    assert_eq!(EncodedEvent::new(back), event);
}

/// The buyer and the receiver of a delivery are commitments in both forms: 32 raw bytes in
/// the canonical encoding, hex in JSON; no name appears.
#[test]
fn personal_data_is_committed_not_written() {
    let net = TestNet::new();
    for event in net.lifecycle("PERSONAL-1") {
        let json = serde_json::to_string(&event.event()).expect("json");
        assert!(!json.contains("J. Buyer"), "{json}");
        assert!(
            !event.bytes().windows(8).any(|w| w == b"J. Buyer"),
            "{}",
            event.event().event.kind.name()
        );
    }
    let registration = net.register("PERSONAL-2", "CN", "FR");
    let json = serde_json::to_value(registration.event()).expect("json");
    let buyer = &json["event"]["kind"]["ShipmentRegistered"]["invoice"]["buyer"];
    let expected = custody_ledger::personal::commitment(
        &custody_ledger::testkit::buyer_name("PERSONAL-2"),
        &custody_ledger::testkit::salt_for(
            "PERSONAL-2",
            custody_ledger::personal::PersonalField::BuyerName,
        ),
    );
    assert_eq!(buyer["name_commitment"], expected.to_hex());
    assert_eq!(buyer["address_commitment"], serde_json::Value::Null);
    assert_eq!(buyer["personal_id_commitment"], serde_json::Value::Null);
    assert_eq!(buyer["country"], "FR");
}

#[test]
fn json_form_is_readable_and_round_trips() {
    let net = TestNet::new();
    let event = net.register("JSON-1", "CN", "FR");
    let json = serde_json::to_value(event.event()).expect("json");
    assert_eq!(json["event"]["occurred_at"], "2026-11-01T00:00:00.000Z");
    assert_eq!(
        json["event"]["kind"]["ShipmentRegistered"]["incoterm"],
        "DDP"
    );
    assert_eq!(json["event"]["kind"]["ShipmentRegistered"]["origin"], "CN");
    assert_eq!(json["signer"].as_str().map(str::len), Some(64));
    let back: SignedEvent = serde_json::from_value(json).expect("parse");
    assert_eq!(EncodedEvent::new(back), event);
}

#[test]
fn truncated_event_bytes_never_decode() {
    let net = TestNet::new();
    for event in net.lifecycle("TRUNC-1") {
        for len in 0..event.bytes().len() {
            assert!(
                EncodedEvent::decode(&event.bytes()[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut longer = event.bytes().to_vec();
        longer.push(0);
        assert!(matches!(
            EncodedEvent::decode(&longer),
            Err(CodecError::TrailingBytes { trailing_bytes: 1 })
        ));
    }
}

#[test]
fn oversized_inputs_are_refused_before_decoding() {
    let big = vec![0u8; EVENT_SIZE_BYTES_MAX + 1];
    assert!(matches!(
        EncodedEvent::decode(&big),
        Err(CodecError::TooLarge { .. })
    ));
    let big = vec![0u8; codec::RECORD_SIZE_BYTES_MAX + 1];
    assert!(matches!(
        BlockHeader::decode(&big),
        Err(CodecError::TooLarge { .. })
    ));
    assert!(matches!(
        CommitCertificate::decode(&big),
        Err(CodecError::TooLarge { .. })
    ));
}

#[test]
fn a_length_prefix_beyond_the_input_does_not_allocate() {
    // A ShipmentRegistered whose chain id claims 2^40 bytes.
    let mut bytes = vec![0xFD];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    bytes.extend_from_slice(b"abc");
    assert!(matches!(
        EncodedEvent::decode(&bytes),
        Err(CodecError::Malformed(_))
    ));
}

/// Every decoder of stored or received bytes, as a function that must not panic.
/// A decoder under test: its name, and a function saying whether the bytes decoded.
type Decoder = (&'static str, fn(&[u8]) -> bool);

fn decoders() -> Vec<Decoder> {
    vec![
        ("signed event", |b| EncodedEvent::decode(b).is_ok()),
        ("header", |b| BlockHeader::decode(b).is_ok()),
        ("certificate", |b| CommitCertificate::decode(b).is_ok()),
        ("event ids", |b| {
            codec::decode::<Vec<EventId>>(b, codec::BLOCK_SIZE_BYTES_MAX).is_ok()
        }),
        ("shipment state", |b| {
            codec::decode::<ShipmentState>(b, codec::RECORD_SIZE_BYTES_MAX).is_ok()
        }),
        ("member record", |b| {
            codec::decode::<MemberRecord>(b, codec::RECORD_SIZE_BYTES_MAX).is_ok()
        }),
        ("genesis", |b| {
            codec::decode::<custody_ledger::genesis::Genesis>(b, codec::RECORD_SIZE_BYTES_MAX)
                .is_ok()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for (_, decode) in decoders() {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn mutated_events_never_panic_and_never_keep_their_id(
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let net = TestNet::new();
        let event = net.register("MUT-1", "CN", "FR");
        let mut bytes = event.bytes().to_vec();
        let i = position.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(decoded) = EncodedEvent::decode(&bytes) {
            prop_assert_ne!(decoded.id(), event.id());
            // A mutated body or signature fails verification.
            prop_assert!(decoded.verify_signature().is_err());
        }
    }

    #[test]
    fn registrations_round_trip(
        shipment in "[A-Za-z0-9._:-]{1,64}",
        quantity in 1u64..1_000_000,
        unit_value_minor in 0u64..u64::MAX / 1_000_000,
        description in "\\PC{1,100}",
        occurred_at in 0u64..253_402_300_799_999,
    ) {
        let net = TestNet::new();
        let mut payload = registration(&shipment, "CN", "FR");
        payload.invoice.lines[0].quantity = quantity;
        payload.invoice.lines[0].unit_value_minor = unit_value_minor;
        payload.invoice.lines[0].description = description;
        let event = net.sign_at("seller-acme", EventKind::ShipmentRegistered(payload), Timestamp(occurred_at));
        let decoded = EncodedEvent::decode(event.bytes()).expect("canonical bytes decode");
        prop_assert_eq!(&decoded, &event);
        prop_assert!(decoded.verify_signature().is_ok());
        let json = serde_json::to_string(&event.event()).expect("json");
        let back: SignedEvent = serde_json::from_str(&json).expect("json parses");
        prop_assert_eq!(EncodedEvent::new(back).id(), event.id());
    }

    #[test]
    fn payments_and_handoffs_round_trip(
        amount_minor in any::<u64>(),
        reference in "[ -~]{1,64}",
        to in "[a-z-]{1,64}",
    ) {
        let net = TestNet::new();
        let kinds = vec![
            EventKind::DutyPaid(DutyPaid {
                shipment_id: ShipmentId::new("P-1"),
                declaration: Digest::sha256(reference.as_bytes()),
                amount: Money { amount_minor, currency: custody_ledger::testkit::eur() },
                payment_reference: reference.clone(),
            }),
            EventKind::HandoffProposed(HandoffProposed {
                shipment_id: ShipmentId::new("P-1"),
                to: MemberId::new(to),
                place: reference,
                transport_document: None,
            }),
        ];
        for kind in kinds {
            let event = net.sign("carrier-swift", kind);
            prop_assert_eq!(EncodedEvent::decode(event.bytes()).expect("decodes"), event);
        }
    }
}

/// docs/PROTOCOL.md §16.3 (format v3): block 1 of the test network holding the first three
/// events of the `SHP-1` lifecycle, under the state machine alone. The genesis (§9, with its
/// rules schedule) and the state delta (§10.3, with its rules activations) are inputs of
/// these values, so a change to either encoding fails here.
#[test]
fn golden_first_block_of_protocol_section_16_3() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let events: Vec<EncodedEvent> = net.lifecycle("SHP-1").into_iter().take(3).collect();
    let built = net
        .commit(&store, events, Timestamp(GENESIS_TIME.0 + 1_000))
        .expect("commit");
    let header = codec::encode(&built.block().header);
    let delta = codec::encode(&built.delta());
    let show = format!(
        "genesis {}\nstate_root {}\nblock {}\nheader {} {}\ndelta {} {}",
        net.genesis_hash().to_hex(),
        built.block().header.state_root.to_hex(),
        built.block().hash().to_hex(),
        header.len(),
        hex::encode(&header),
        delta.len(),
        hex::encode(&delta),
    );
    assert_eq!(
        (
            net.genesis_hash().to_hex(),
            built.block().header.state_root.to_hex(),
            built.block().hash().to_hex(),
            header.len(),
            delta.len(),
        ),
        (
            "faa56d7ec3efc724b9c22d87af1887c5f7d834c64b8cb4cfdac0cab242016c6f".to_owned(),
            "03489654767f5b82fa1869988ddbaa9d23533b676c9877b9d3140a3a7b619a22".to_owned(),
            "6873e8bcf50461c698316fb8f03bbc60213186213a0c6f1f0ac21276d69ee1e0".to_owned(),
            223,
            337,
        ),
        "{show}"
    );
    // The delta ends with its four empty lists: members, keys, reference, rules activations.
    assert!(delta.ends_with(&[0, 0, 0, 0]));
}

/// docs/PROTOCOL.md §9.3: the example genesis file, its canonical length and its hash.
#[test]
fn golden_genesis_example_of_protocol_section_9_3() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md");
    let start = doc.find("## 9. Genesis").expect("section 9");
    let section = &doc[start..];
    let json = section
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the example of 9.3");
    let genesis: custody_ledger::genesis::Genesis = serde_json::from_str(json).expect("parses");
    assert_eq!(genesis.validate(), Ok(()));
    assert_eq!(
        (codec::encode(&genesis).len(), genesis.hash().to_hex()),
        (
            204,
            "6e0b63e640af2d378b1e6e7e7e3e0d1939be0b5eea88be6473b6b6feac6b72ff".to_owned()
        )
    );
}
