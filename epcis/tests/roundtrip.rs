//! Every Custody event kind to EPCIS 2.0 and back: schema-valid on its own, in an
//! `EPCISDocument` and in an `EPCISQueryDocument` (GS1's JSON Schema, read from
//! `../shared/data/epcis/`, never copied into the tree), no personal data written, and read back
//! to the same Custody fields where a capture mapping is defined.

use custody_epcis::mapping::{CommittedEvent, MappingContext, ProposalContext, ShipmentContext};
use custody_epcis::{
    document_hash_ids, from_epcis, to_epcis, CaptureError, DocumentBuilder, MappingError, Validator,
};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::testkit::{self, TestNet, GENESIS_TIME, MEMBERS};
use custody_ledger::{Digest, Timestamp};
use serde_json::{json, Value};

/// GS1's EPCIS 2.0 JSON Schema from the shared data beside the workspace.
fn validator() -> Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/epcis/EPCIS-JSON-Schema.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    Validator::new(&schema).expect("the GS1 schema compiles")
}

/// The member whose key signed an event.
fn signer_of(net: &TestNet, event: &EncodedEvent) -> MemberId {
    let (id, _, _) = MEMBERS
        .iter()
        .find(|(id, _, _)| net.key(id).public() == event.event().signer)
        .expect("a test member signed");
    MemberId::new(*id)
}

/// Mapping contexts for a run of events of one shipment, built as a node would from the
/// events before each.
struct History {
    registration: Option<(MemberId, ShipmentRegistered)>,
    proposal: Option<ProposalContext>,
}

impl History {
    fn context(&mut self, signer: MemberId, kind: &EventKind) -> MappingContext {
        if let EventKind::ShipmentRegistered(e) = kind {
            self.registration = Some((signer.clone(), e.clone()));
        }
        let proposal = self.proposal.clone();
        if let EventKind::HandoffProposed(e) = kind {
            self.proposal = Some(ProposalContext {
                from: signer.clone(),
                proposal: e.clone(),
            });
        }
        MappingContext {
            signer,
            shipment: self
                .registration
                .as_ref()
                .map(|(seller, registration)| ShipmentContext {
                    seller: seller.clone(),
                    registration: registration.clone(),
                    proposal,
                }),
        }
    }
}

/// A tracking scan of the whole shipment with no GLN, a reading GS1 has no type for, a
/// negative value, and an exception.
fn odd_scan(shipment: &str) -> TrackingScanRecorded {
    TrackingScanRecorded {
        parcels: Vec::new(),
        biz_step: "arriving".into(),
        disposition: "damaged".into(),
        read_point: "FRCDG".into(),
        read_point_gln: None,
        biz_location: "FRCDG".into(),
        sensor_readings: vec![
            SensorReading {
                kind: "Shock".into(),
                unit: "MTS".into(),
                value_milli: 35_125,
                min_milli: None,
                max_milli: Some(30_000),
            },
            SensorReading {
                kind: "Temperature".into(),
                unit: "CEL".into(),
                value_milli: -1_250,
                min_milli: Some(-20_000),
                max_milli: None,
            },
        ],
        exception: true,
        ..testkit::tracking_scan(shipment, "FRCDG")
    }
}

/// Every kind: the lifecycle, scans, a hold, an inspection, an attested document, and the two
/// kinds without an EPCIS form.
fn all_events(net: &TestNet) -> Vec<EncodedEvent> {
    let s = "S-EPCIS-1";
    let mut events = net.lifecycle(s);
    let declaration = events[5].clone();
    events.insert(3, net.scan("carrier-swift", s, "DEHAM"));
    events.insert(
        4,
        net.sign(
            "carrier-swift",
            EventKind::TrackingScanRecorded(odd_scan(s)),
        ),
    );
    events.push(net.clear(s, &declaration, ClearanceOutcome::Hold));
    events.push(net.clear(s, &declaration, ClearanceOutcome::Inspection));
    events.push(net.sign(
        "broker-clear",
        EventKind::DocumentAttested(DocumentAttested {
            shipment_id: ShipmentId::new(s),
            document_type: "certificate_of_origin".into(),
            document_hash: Digest::sha256(b"certificate"),
            reference: "CO-2026/0042".into(),
        }),
    ));
    events
}

/// The EPCIS form of each event with an EPCIS form, with its original.
fn mapped(net: &TestNet) -> Vec<(EncodedEvent, Value)> {
    let mut history = History {
        registration: None,
        proposal: None,
    };
    let mut out = Vec::new();
    for (i, event) in all_events(net).into_iter().enumerate() {
        let i = u64::try_from(i).unwrap();
        let committed = CommittedEvent {
            event: event.event(),
            id: event.id(),
            height: 10 + i,
            log_index: 100 + i,
            recorded_at: Timestamp(GENESIS_TIME.0 + 1_000 * i),
        };
        let ctx = history.context(signer_of(net, &event), &event.event().event.kind);
        let epcis = to_epcis(&committed, &ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", event.event().event.kind.name()));
        out.push((event, epcis));
    }
    out
}

#[test]
fn every_kind_is_schema_valid_alone_and_in_both_documents() {
    let net = TestNet::new();
    let validator = validator();
    let events = mapped(&net);
    let mut kinds: Vec<&str> = events
        .iter()
        .map(|(e, _)| e.event().event.kind.name())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 11, "every kind with an EPCIS form: {kinds:?}");
    let builder = DocumentBuilder::new(GENESIS_TIME)
        .custody_context_url("https://node.example/epcis/context/custody.jsonld");
    for (event, epcis) in &events {
        let alone = builder.standalone(epcis.clone());
        if let Err(error) = validator.validate(&alone) {
            panic!(
                "{}: {error}\n{}",
                event.event().event.kind.name(),
                serde_json::to_string_pretty(&alone).unwrap()
            );
        }
    }
    let epcis: Vec<Value> = events.into_iter().map(|(_, v)| v).collect();
    let document = builder.clone().events(epcis.clone()).epcis_document();
    validator.validate(&document).expect("EPCISDocument");
    let query = builder.events(epcis).query_document("SimpleEventQuery");
    validator.validate(&query).expect("EPCISQueryDocument");

    let ids = document_hash_ids(&document).expect("hash IDs");
    assert_eq!(ids, document_hash_ids(&query).expect("hash IDs"));
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every event has its own hash ID");
}

#[test]
fn the_validator_refuses_what_the_schema_refuses() {
    let validator = validator();
    let net = TestNet::new();
    let (_, epcis) = mapped(&net).remove(0);
    let builder = DocumentBuilder::new(GENESIS_TIME);
    let mut broken = epcis.clone();
    broken["action"] = json!("LOOK");
    let error = validator
        .validate(&builder.standalone(broken))
        .expect_err("bad action");
    assert_eq!(error.code(), "epcis_schema.invalid");
    let mut no_context = epcis.clone();
    no_context.as_object_mut().unwrap().remove("@context");
    assert!(
        validator.validate(&no_context).is_err(),
        "an event alone needs @context"
    );
    let document = builder
        .event(json!({"type": "ObjectEvent"}))
        .epcis_document();
    assert!(
        validator.validate(&document).is_err(),
        "an event needs eventTime"
    );
}

#[test]
fn ledger_placement_is_written_and_personal_data_is_not() {
    let net = TestNet::new();
    for (event, epcis) in mapped(&net) {
        let text = serde_json::to_string(&epcis).unwrap();
        assert!(!text.contains("J. Buyer"), "{text}");
        match &event.event().event.kind {
            EventKind::ShipmentRegistered(e) => {
                assert_eq!(
                    epcis["custody:buyerNameCommitment"],
                    e.invoice.buyer.name_commitment.to_hex()
                );
                assert!(epcis.get("custody:buyerAddressCommitment").is_none());
            }
            EventKind::Delivered(e) => assert_eq!(
                epcis["custody:receivedByCommitment"],
                e.received_by_commitment.to_hex()
            ),
            _ => {}
        }
        assert!(!text.contains("Acme Trading"), "{text}");
        assert_eq!(epcis["custody:eventId"], event.id().to_hex());
        assert_eq!(
            epcis["eventID"],
            format!("urn:custody:event:{}", event.id().to_hex())
        );
        assert!(epcis["custody:height"].as_u64().unwrap() >= 10);
        assert!(epcis["custody:logIndex"].as_u64().unwrap() >= 100);
        assert_eq!(epcis["custody:kind"], event.event().event.kind.name());
        assert_eq!(
            epcis["eventTime"],
            event.event().event.occurred_at.to_rfc3339()
        );
    }
}

#[test]
fn identifiers_are_digital_link_uris() {
    let net = TestNet::new();
    let events = mapped(&net);
    let (_, registration) = &events[0];
    assert_eq!(
        registration["epcList"],
        json!(["https://id.gs1.org/00/106141411234567897"])
    );
    assert_eq!(
        registration["quantityList"][0]["epcClass"],
        "urn:custody:line:S-EPCIS-1:1"
    );
    assert_eq!(registration["bizTransactionList"][0]["type"], "inv");
    let scan = &events[3].1;
    assert_eq!(
        scan["readPoint"]["id"],
        "https://id.gs1.org/414/0614141000005"
    );
    assert_eq!(scan["readPoint"]["custody:locode"], "DEHAM");
    assert_eq!(scan["bizLocation"]["id"], "urn:custody:locode:DEHAM");
    let report = &scan["sensorElementList"][0]["sensorReport"][0];
    assert_eq!(
        report.to_string(),
        json!({"type": "Temperature", "value": 4.5, "uom": "CEL",
        "custody:lowerLimit": 2, "custody:upperLimit": 8})
        .to_string()
    );
}

#[test]
fn captures_read_back_to_the_same_custody_fields() {
    let net = TestNet::new();
    let mut read_back = Vec::new();
    for (event, epcis) in mapped(&net) {
        let kind = &event.event().event.kind;
        match kind {
            EventKind::HandoffProposed(_)
            | EventKind::HandoffAccepted(_)
            | EventKind::Delivered(_)
            | EventKind::TrackingScanRecorded(_) => {
                let draft = from_epcis(&epcis)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{epcis:#}", kind.name()));
                assert_eq!(&draft.kind, kind, "{}", kind.name());
                assert_eq!(draft.occurred_at, event.event().event.occurred_at);
                assert_eq!(draft.facts.parcels, vec!["106141411234567897".to_owned()]);
                assert!(draft.unresolved.is_empty(), "{}", kind.name());
                read_back.push(kind.name());
            }
            _ => {
                let error = from_epcis(&epcis).expect_err(kind.name());
                assert_eq!(error.code(), "epcis_capture.unsupported", "{}", kind.name());
                assert!(
                    ["custody:kind", "action"].contains(&error.field()),
                    "{}: {error}",
                    kind.name()
                );
            }
        }
    }
    read_back.sort_unstable();
    read_back.dedup();
    assert_eq!(
        read_back,
        [
            "Delivered",
            "HandoffAccepted",
            "HandoffProposed",
            "TrackingScanRecorded"
        ]
    );
}

#[test]
fn acting_parties_and_places_are_facts() {
    let net = TestNet::new();
    let events = mapped(&net);
    let accepted = events
        .iter()
        .find(|(e, _)| matches!(e.event().event.kind, EventKind::HandoffAccepted(_)))
        .unwrap();
    let draft = from_epcis(&accepted.1).unwrap();
    assert_eq!(
        draft.facts.acting_party,
        Some(MemberId::new("carrier-swift"))
    );
    assert_eq!(draft.facts.other_party, Some(MemberId::new("seller-acme")));
    assert_eq!(draft.facts.place.as_deref(), Some("CNSHA"));
    assert_eq!(
        draft.facts.transport_document,
        Some(TransportDocument {
            kind: TransportDocumentKind::AirWaybill,
            number: "02012345675".into()
        })
    );
}

#[test]
fn membership_and_reference_data_have_no_epcis_form() {
    let net = TestNet::new();
    let event = net.sign(
        "customs-qx",
        EventKind::ReferenceDataPublished(ReferenceDataPublished {
            table_id: "hs/QX".into(),
            effective_from: GENESIS_TIME,
            data: ReferenceData::HsNomenclature(HsNomenclature {
                edition: "HS2022".into(),
                subheadings: vec!["610910".into()],
            }),
        }),
    );
    let committed = CommittedEvent {
        event: event.event(),
        id: event.id(),
        height: 1,
        log_index: 0,
        recorded_at: GENESIS_TIME,
    };
    let ctx = MappingContext {
        signer: MemberId::new("customs-qx"),
        shipment: None,
    };
    let error = to_epcis(&committed, &ctx).unwrap_err();
    assert_eq!(
        error,
        MappingError::NoEpcisForm {
            kind: "ReferenceDataPublished"
        }
    );
    assert_eq!(error.code(), "epcis.no_form");
}

#[test]
fn an_erasure_has_no_epcis_form() {
    let net = TestNet::new();
    let event = net.erase_personal("seller-acme", "S-1");
    let committed = CommittedEvent {
        event: event.event(),
        id: event.id(),
        height: 1,
        log_index: 0,
        recorded_at: GENESIS_TIME,
    };
    let ctx = MappingContext {
        signer: MemberId::new("seller-acme"),
        shipment: None,
    };
    assert_eq!(
        to_epcis(&committed, &ctx).unwrap_err(),
        MappingError::NoEpcisForm {
            kind: "PersonalDataErased"
        }
    );
}

/// A delivery read from EPCIS carries the commitment to who received it; a plain name is
/// refused naming the field, and a delivery without the commitment is incomplete.
#[test]
fn a_captured_delivery_carries_a_commitment_never_a_name() {
    let net = TestNet::new();
    let (delivered, epcis) = mapped(&net)
        .into_iter()
        .find(|(e, _)| matches!(e.event().event.kind, EventKind::Delivered(_)))
        .expect("a delivery");
    let draft = from_epcis(&epcis).expect("a delivery with its commitment");
    assert_eq!(draft.kind, delivered.event().event.kind);

    let mut plain = epcis.clone();
    plain["custody:receivedBy"] = json!("J. Buyer");
    let error = from_epcis(&plain).expect_err("a plain name");
    assert_eq!(error.field(), "custody:receivedBy", "{error}");
    assert_eq!(error.code(), "epcis_capture.invalid", "{error}");
    assert!(
        error.to_string().contains("receivedByCommitment"),
        "{error}"
    );

    let mut without = epcis.clone();
    without
        .as_object_mut()
        .unwrap()
        .remove("custody:receivedByCommitment");
    let error = from_epcis(&without).expect_err("no commitment");
    assert_eq!(error.field(), "custody:receivedByCommitment", "{error}");
    assert_eq!(error.code(), "epcis_capture.missing", "{error}");

    let mut bad = epcis;
    bad["custody:receivedByCommitment"] = json!("J. Buyer");
    let error = from_epcis(&bad).expect_err("not hex");
    assert_eq!(error.field(), "custody:receivedByCommitment", "{error}");
    assert_eq!(error.code(), "epcis_capture.invalid", "{error}");
}

#[test]
fn a_handoff_needs_its_shipment_in_the_context() {
    let net = TestNet::new();
    let event = net.propose("seller-acme", "S-1", "carrier-swift");
    let committed = CommittedEvent {
        event: event.event(),
        id: event.id(),
        height: 1,
        log_index: 0,
        recorded_at: GENESIS_TIME,
    };
    let ctx = MappingContext {
        signer: MemberId::new("seller-acme"),
        shipment: None,
    };
    assert_eq!(
        to_epcis(&committed, &ctx).unwrap_err().code(),
        "epcis.missing_context"
    );
}

/// A plain EPCIS scan from a partner's system (no Custody placement, EPC URNs, an offset).
fn partner_scan() -> Value {
    json!({
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T10:15:00.250+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sscc:0614141.1123456789"],
        "action": "OBSERVE",
        "bizStep": "https://ref.gs1.org/cbv/BizStep-arriving",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:custody:locode:FRCDG"},
        "bizLocation": {"id": "urn:custody:locode:FRCDG"},
        "sensorElementList": [{"sensorReport": [{"type": "gs1:Temperature", "value": 3.25, "uom": "CEL"}]}]
    })
}

#[test]
fn a_partner_scan_becomes_a_draft_with_its_shipment_unresolved() {
    let draft = from_epcis(&partner_scan()).expect("a scan");
    assert_eq!(
        draft.occurred_at,
        Timestamp::parse_rfc3339("2026-11-02T09:15:00.250Z").unwrap()
    );
    assert_eq!(draft.unresolved, ["shipment_id"]);
    assert_eq!(draft.facts.parcels, ["106141411234567897"]);
    let EventKind::TrackingScanRecorded(scan) = draft.kind else {
        panic!("a scan");
    };
    assert_eq!(scan.biz_step, "https://ref.gs1.org/cbv/BizStep-arriving");
    assert_eq!(scan.read_point, "FRCDG");
    assert_eq!(scan.sensor_readings[0].kind, "Temperature");
    assert_eq!(scan.sensor_readings[0].value_milli, 3_250);
    assert_eq!(scan.parcels, ["106141411234567897"]);
}

fn refused(change: impl Fn(&mut Value)) -> CaptureError {
    let mut event = partner_scan();
    change(&mut event);
    from_epcis(&event).expect_err("refused")
}

/// A change to a partner's scan.
type Change = Box<dyn Fn(&mut Value)>;

#[test]
fn what_has_no_mapping_is_refused_naming_the_field() {
    let cases: Vec<(Change, &str, &str)> = vec![
        (
            Box::new(|e| e["type"] = json!("AggregationEvent")),
            "type",
            "unsupported",
        ),
        (
            Box::new(|e| e["action"] = json!("ADD")),
            "action",
            "unsupported",
        ),
        (Box::new(|e| e["ilmd"] = json!({})), "ilmd", "unsupported"),
        (
            Box::new(|e| e["example:x"] = json!("y")),
            "example:x",
            "unsupported",
        ),
        (
            Box::new(|e| e["readPoint"]["example:x"] = json!(1)),
            "readPoint.example:x",
            "unsupported",
        ),
        (
            Box::new(|e| e["sensorElementList"][0]["sensorReport"][0]["minValue"] = json!(1)),
            "sensorElementList[0].sensorReport[0].minValue",
            "unsupported",
        ),
        (
            Box::new(|e| e["sensorElementList"][0]["sensorMetadata"] = json!({})),
            "sensorElementList[0].sensorMetadata",
            "unsupported",
        ),
        (
            Box::new(|e| e["sensorElementList"][0]["sensorReport"][0]["value"] = json!(3.2505)),
            "sensorElementList[0].sensorReport[0].value",
            "invalid",
        ),
        (
            Box::new(|e| e["epcList"] = json!(["urn:epc:id:sgtin:0614141.107346.2017"])),
            "epcList[0]",
            "invalid",
        ),
        (
            Box::new(|e| e["eventTime"] = json!("2026-11-02T10:15:00.2501+01:00")),
            "eventTime",
            "invalid",
        ),
        (
            Box::new(|e| e["readPoint"]["id"] = json!("urn:epc:id:sgln:0614141.00000.0")),
            "readPoint.custody:locode",
            "missing",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("bizLocation");
            }),
            "bizLocation",
            "missing",
        ),
        (
            Box::new(|e| e["bizStep"] = json!("urn:custody:epcis:BizStep-customs_clearing")),
            "bizStep",
            "unsupported",
        ),
        (
            Box::new(|e| e["custody:kind"] = json!("CustomsCleared")),
            "custody:kind",
            "unsupported",
        ),
        (
            Box::new(|e| e["bizTransactionList"] = json!([])),
            "bizTransactionList",
            "unsupported",
        ),
    ];
    for (change, field, code) in cases {
        let error = refused(change);
        assert_eq!(error.field(), field, "{error}");
        assert_eq!(error.code(), format!("epcis_capture.{code}"), "{error}");
    }
}

#[test]
fn a_handoff_from_a_partner_names_its_parties() {
    let event = json!({
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T10:15:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["https://id.gs1.org/00/106141411234567897"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:custody:locode:DEHAM"},
        "sourceList": [{"type": "possessing_party", "source": "urn:custody:member:carrier-swift"}],
        "destinationList": [{"type": "possessing_party", "destination": "urn:custody:member:carrier-lastmile"}],
        "bizTransactionList": [{"type": "bol", "bizTransaction": "urn:custody:bt:bol:MAEU123"}],
        "custody:shipmentId": "S-9"
    });
    let draft = from_epcis(&event).expect("a proposal");
    assert_eq!(
        draft.kind,
        EventKind::HandoffProposed(HandoffProposed {
            shipment_id: ShipmentId::new("S-9"),
            to: MemberId::new("carrier-lastmile"),
            place: "DEHAM".into(),
            transport_document: Some(TransportDocument {
                kind: TransportDocumentKind::BillOfLading,
                number: "MAEU123".into()
            }),
        })
    );
    assert_eq!(
        draft.facts.acting_party,
        Some(MemberId::new("carrier-swift"))
    );
    assert!(draft.unresolved.is_empty());

    let mut owning = event.clone();
    owning["destinationList"][0]["type"] = json!("owning_party");
    let error = from_epcis(&owning).unwrap_err();
    assert_eq!(error.field(), "destinationList[0].type");
    let mut receiving = event;
    receiving["bizStep"] = json!("receiving");
    receiving
        .as_object_mut()
        .unwrap()
        .remove("custody:shipmentId");
    let draft = from_epcis(&receiving).expect("an acceptance");
    assert_eq!(draft.unresolved, ["shipment_id", "proposal"]);
    assert_eq!(
        draft.facts.acting_party,
        Some(MemberId::new("carrier-lastmile"))
    );
}
