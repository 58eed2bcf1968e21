//! CBV 2.0 §8.9 event hash IDs: hand-checked vectors (each pre-hash string written out by
//! hand from the rules, each hash computed from it independently), the two examples of the
//! standard's own figures whose printed hashes this implementation reproduces, and the one
//! figure whose printed hash follows the other reading (docs/EPCIS.md, "Event hash IDs").

use custody_epcis::hash::{hash_id_of, pre_hash_string, Prefixes};
use custody_epcis::{document_hash_ids, event_hash_id, DocumentBuilder};
use custody_ledger::testkit::GENESIS_TIME;
use serde_json::{json, Value};

const EPCIS: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";

fn check(event: &Value, pre_hash: &str, hash: &str) {
    let prefixes = Prefixes::standard().with_context(&event["@context"]);
    assert_eq!(pre_hash_string(event, &prefixes, "").unwrap(), pre_hash);
    assert_eq!(hash_id_of(pre_hash), hash);
    assert_eq!(event_hash_id(event).unwrap(), hash);
}

/// EPC URNs (SSCC, SGTIN, SGLN) become Digital Link URIs; a CBV 1.x URN becomes a web URI.
#[test]
fn vector_1_epc_urns() {
    let event = json!({
        "@context": [EPCIS],
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sscc:0614141.1123456789"],
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:departing",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00000.0"}
    });
    check(
        &event,
        "eventType=ObjectEventeventTime=2026-11-02T08:00:00.000ZeventTimeZoneOffset=+00:00\
         epcListepc=https://id.gs1.org/00/106141411234567897\
         epc=https://id.gs1.org/01/10614141073464/21/2017\
         action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-departing\
         readPointid=https://id.gs1.org/414/0614141000005",
        "ni:///sha-256;a635c31e1abb86a6f6d9faf2186d41a8c437cc21d3246e4dfabaecbdcd2e9ef1?ver=CBV2.0",
    );
}

/// CBV short names expanded; business transactions, sources and destinations written
/// identifier first, then type, items sorted; a Custody extension last.
#[test]
fn vector_2_short_cbv_names() {
    let event = json!({
        "@context": [EPCIS, {"custody": "urn:custody:epcis:"}],
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T09:30:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["https://id.gs1.org/00/106141411234567897"],
        "action": "OBSERVE",
        "bizStep": "consigning",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:custody:locode:CNSHA"},
        "bizTransactionList": [
            {"type": "inv", "bizTransaction": "urn:custody:bt:inv:INV-7"},
            {"type": "urn:custody:epcis:BTT-awb", "bizTransaction": "urn:custody:bt:awb:02012345675"}
        ],
        "destinationList": [{"type": "possessing_party", "destination": "urn:custody:member:carrier-swift"}],
        "sourceList": [{"type": "possessing_party", "source": "urn:custody:member:seller-acme"}],
        "custody:shipmentId": "S-7",
        "eventID": "urn:custody:event:00",
        "recordTime": "2026-11-02T09:30:01.000Z"
    });
    check(
        &event,
        "eventType=ObjectEventeventTime=2026-11-02T09:30:00.000ZeventTimeZoneOffset=+00:00\
         epcListepc=https://id.gs1.org/00/106141411234567897action=OBSERVE\
         bizStep=https://ref.gs1.org/cbv/BizStep-consigning\
         disposition=https://ref.gs1.org/cbv/Disp-in_transit\
         readPointid=urn:custody:locode:CNSHA\
         bizTransactionList\
         bizTransaction=urn:custody:bt:awb:02012345675type=urn:custody:epcis:BTT-awb\
         bizTransaction=urn:custody:bt:inv:INV-7type=https://ref.gs1.org/cbv/BTT-inv\
         sourceListsource=urn:custody:member:seller-acmetype=https://ref.gs1.org/cbv/SDT-possessing_party\
         destinationListdestination=urn:custody:member:carrier-swift\
         type=https://ref.gs1.org/cbv/SDT-possessing_party\
         {urn:custody:epcis:}shipmentId=S-7",
        "ni:///sha-256;2c7bec57f991d4a21de739a945cdf737983a1a3b38a4688af440364cbfcabc39?ver=CBV2.0",
    );
}

/// A local time with an offset and one decimal becomes UTC with milliseconds; a GTIN-13 on a
/// brand's domain with a query becomes the constrained canonical GTIN-14 URI; 12.50 is 12.5.
#[test]
fn vector_3_non_utc_timestamp() {
    let event = json!({
        "@context": [EPCIS],
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T14:45:10.5+05:30",
        "eventTimeZoneOffset": "+05:30",
        "epcList": ["https://id.gs1.org/00/106141411234567897"],
        "quantityList": [{"epcClass": "https://brand.example/01/4006381333931?linkType=all", "quantity": 12.50, "uom": "KGM"}],
        "action": "OBSERVE",
        "bizStep": "arriving",
        "disposition": "in_progress",
        "bizLocation": {"id": "urn:custody:locode:INBOM"}
    });
    check(
        &event,
        "eventType=ObjectEventeventTime=2026-11-02T09:15:10.500ZeventTimeZoneOffset=+05:30\
         epcListepc=https://id.gs1.org/00/106141411234567897\
         quantityListquantityElementepcClass=https://id.gs1.org/01/04006381333931quantity=12.5uom=KGM\
         action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-arriving\
         disposition=https://ref.gs1.org/cbv/Disp-in_progress\
         bizLocationid=urn:custody:locode:INBOM",
        "ni:///sha-256;7eb41bd1592864ad8b1d95d51c1ee3b72f3c9cce8f17901d54b9e8add4ec4422?ver=CBV2.0",
    );
}

/// A sensor element: metadata in order (its time in UTC, a GIAI URN as Digital Link), reports
/// sorted, GS1 measurement types expanded, extensions at the end of their structure.
#[test]
fn vector_4_sensor_element_list() {
    let event = json!({
        "@context": [EPCIS, {"custody": "urn:custody:epcis:"}],
        "type": "ObjectEvent",
        "eventTime": "2026-11-03T06:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["https://id.gs1.org/00/106141411234567897"],
        "action": "OBSERVE",
        "bizStep": "departing",
        "disposition": "in_transit",
        "readPoint": {"id": "https://id.gs1.org/414/0614141000005", "custody:locode": "DEHAM"},
        "bizLocation": {"id": "urn:custody:locode:DEHAM"},
        "sensorElementList": [{
            "sensorMetadata": {"deviceID": "urn:epc:id:giai:0614141.TL-1", "time": "2026-11-03T07:00:00+01:00"},
            "sensorReport": [
                {"type": "Temperature", "value": 4.5, "uom": "CEL", "custody:upperLimit": 8},
                {"type": "RelativeHumidity", "value": 61.0, "uom": "P1"}
            ]
        }],
        "custody:exception": false
    });
    check(
        &event,
        "eventType=ObjectEventeventTime=2026-11-03T06:00:00.000ZeventTimeZoneOffset=+00:00\
         epcListepc=https://id.gs1.org/00/106141411234567897action=OBSERVE\
         bizStep=https://ref.gs1.org/cbv/BizStep-departing\
         disposition=https://ref.gs1.org/cbv/Disp-in_transit\
         readPointid=https://id.gs1.org/414/0614141000005{urn:custody:epcis:}locode=DEHAM\
         bizLocationid=urn:custody:locode:DEHAM\
         sensorElementListsensorElement\
         sensorMetadatatime=2026-11-03T06:00:00.000ZdeviceID=https://id.gs1.org/8004/0614141TL-1\
         sensorReporttype=https://gs1.org/voc/RelativeHumidityvalue=61uom=P1\
         sensorReporttype=https://gs1.org/voc/Temperaturevalue=4.5uom=CEL{urn:custody:epcis:}upperLimit=8\
         {urn:custody:epcis:}exception=false",
        "ni:///sha-256;645228e4f60f222359d5d76f94785f189860d12dbc69f3075764bd9bceb132f4?ver=CBV2.0",
    );
}

/// The same event written differently (key order, list order, URN or Digital Link, local time
/// or UTC, short name or URI) has the same hash ID; any change of content changes it.
#[test]
fn syntax_does_not_matter_content_does() {
    let a = json!({
        "type": "ObjectEvent", "eventTime": "2026-11-02T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sscc:0614141.1123456789", "urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit"
    });
    let b = json!({
        "disposition": "https://ref.gs1.org/cbv/Disp-in_transit",
        "bizStep": "urn:epcglobal:cbv:bizstep:shipping", "action": "OBSERVE",
        "epcList": ["https://id.gs1.org/01/10614141073464/21/2017", "https://id.gs1.org/00/106141411234567897"],
        "eventTimeZoneOffset": "+01:00", "eventTime": "2026-11-02T09:00:00.000Z", "type": "ObjectEvent",
        "eventID": "urn:uuid:ignored", "recordTime": "2030-01-01T00:00:00Z"
    });
    assert_eq!(event_hash_id(&a).unwrap(), event_hash_id(&b).unwrap());
    let mut c = a.clone();
    c["disposition"] = json!("in_progress");
    assert_ne!(event_hash_id(&a).unwrap(), event_hash_id(&c).unwrap());
}

/// A document's events hash with the document's context: a prefix defined only there
/// resolves, and an undefined one is refused naming the field.
#[test]
fn document_context_resolves_prefixes() {
    let event = json!({
        "type": "ObjectEvent", "eventTime": "2026-11-02T10:00:00Z", "eventTimeZoneOffset": "+00:00",
        "epcList": [], "action": "OBSERVE", "custody:kind": "TrackingScanRecorded"
    });
    let document = DocumentBuilder::new(GENESIS_TIME)
        .event(event.clone())
        .epcis_document();
    let ids = document_hash_ids(&document).unwrap();
    let expected = hash_id_of(
        "eventType=ObjectEventeventTime=2026-11-02T10:00:00.000ZeventTimeZoneOffset=+00:00\
         action=OBSERVE{urn:custody:epcis:}kind=TrackingScanRecorded",
    );
    assert_eq!(ids, [expected]);
    let error = event_hash_id(&event).unwrap_err();
    assert_eq!(error.code(), "epcis_hash.unknown_prefix");
    assert_eq!(
        error.to_string(),
        "custody:kind: the prefix \"custody\" is not defined by an inline @context of the document"
    );
    let mut bare = document;
    bare["@context"] = json!([EPCIS]);
    assert_eq!(
        document_hash_ids(&bare).unwrap_err().to_string(),
        "epcisBody.eventList[0].custody:kind: the prefix \"custody\" is not defined by an inline @context of the document"
    );
}

/// CBV 2.0 §8.9, the example of its first figure (EPC URNs, a CBV URN, nested user
/// extensions): the printed hash.
#[test]
fn standard_figure_1() {
    let event = json!({
        "@context": [EPCIS, {"example": "https://ns.example.com/epcis/"}],
        "type": "ObjectEvent",
        "eventTime": "2020-03-04T11:00:30.000+01:00",
        "recordTime": "2020-03-04T11:00:30.999+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sscc:4012345.0000000333", "urn:epc:id:sscc:4012345.0000000111", "urn:epc:id:sscc:4012345.0000000222"],
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:departing",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.987"},
        "example:myField1": {"example:mySubField1": "2", "example:mySubField2": "5"},
        "example:myField2": "0",
        "example:myField3": {"example:mySubField3": ["3", "1"]}
    });
    assert_eq!(
        event_hash_id(&event).unwrap(),
        "ni:///sha-256;6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7?ver=CBV2.0"
    );
}

/// CBV 2.0 §8.9, the example of its second figure (sensor data): the printed hash.
#[test]
fn standard_figure_2() {
    let event = json!({
        "@context": [EPCIS],
        "type": "ObjectEvent",
        "eventTime": "2020-04-01T15:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["https://id.gs1.org/01/04012345111118/21/9876"],
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "readPoint": {"id": "https://id.gs1.org/414/4012345000054"},
        "sensorElementList": [{
            "sensorMetadata": {"deviceID": "https://id.gs1.org/8004/4000001111", "deviceMetadata": "https://id.gs1.org/8004/4000001111"},
            "sensorReport": [
                {"type": "Temperature", "value": 26, "uom": "CEL", "sDev": 0.1},
                {"type": "AbsoluteHumidity", "value": 12.1, "uom": "A93"},
                {"type": "Dimensionless", "microorganism": "https://www.ncbi.nlm.nih.gov/taxonomy/1126011", "value": 0.05, "uom": "C35"},
                {"type": "Dimensionless", "chemicalSubstance": "https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N", "value": 0.18, "uom": "C35"}
            ]
        }]
    });
    assert_eq!(
        event_hash_id(&event).unwrap(),
        "ni:///sha-256;49b13037c36e84ad9307c531671b00e901318c3957e4b1151f816ec49eb668da?ver=CBV2.0"
    );
}

/// CBV 2.0 §8.9, the example of its third figure: its printed pre-hash string writes each
/// business transaction, source and destination identifier first and the source list before
/// the destination list, as the text says (rule 13, canonical order 20 to 22); its printed
/// hash is that of the other order (type first, destination list before source list), which
/// the reference implementation computes. We follow the text (docs/EPCIS.md).
#[test]
fn standard_figure_3_follows_the_text_not_the_printed_hash() {
    let event = json!({
        "@context": [EPCIS, {"example": "https://ns.example.com/epcis/"}],
        "type": "ObjectEvent",
        "eventTime": "2020-03-04T11:00:30+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sgtin:0614141.011111.987"],
        "action": "OBSERVE",
        "bizStep": "departing",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.0", "example:myField1": "AB-12"},
        "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epc:id:gdti:4012345.11111.123"}],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:4012345.00000"}],
        "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:0614141.00000"}],
        "example:userExt": "CD-34"
    });
    let pre_hash = "eventType=ObjectEventeventTime=2020-03-04T10:00:30.000ZeventTimeZoneOffset=+01:00\
         epcListepc=https://id.gs1.org/01/00614141111114/21/987action=OBSERVE\
         bizStep=https://ref.gs1.org/cbv/BizStep-departing\
         disposition=https://ref.gs1.org/cbv/Disp-in_transit\
         readPointid=https://id.gs1.org/414/4012345000115{https://ns.example.com/epcis/}myField1=AB-12\
         bizTransactionListbizTransaction=https://id.gs1.org/253/4012345111118123\
         type=https://ref.gs1.org/cbv/BTT-po\
         sourceListsource=https://id.gs1.org/417/4012345000009type=https://ref.gs1.org/cbv/SDT-owning_party\
         destinationListdestination=https://id.gs1.org/417/0614141000005\
         type=https://ref.gs1.org/cbv/SDT-owning_party\
         {https://ns.example.com/epcis/}userExt=CD-34";
    check(&event, pre_hash, &hash_id_of(pre_hash));
    assert_ne!(
        event_hash_id(&event).unwrap(),
        "ni:///sha-256;a13cbe6c8bb6df3710b3edaeff760a1365ec8fd69ca1f4d7e0c10eb5189a883a?ver=CBV2.0"
    );
}
