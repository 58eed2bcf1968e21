//! Names: the Custody vocabulary, the URIs Custody gives its members, places and documents, the
//! GS1 identifiers it writes, and the CBV 2.0 terms it checks against.
//!
//! CBV 2.0 has no business step for a customs declaration, a duty payment or a customs decision,
//! and no business transaction type for an air waybill. Rather than bend CBV terms, Custody
//! names those in its own namespace, [`NAMESPACE`] (`urn:custody:epcis:`, JSON-LD prefix
//! `custody`), with term names shaped like CBV's (`BizStep-…`, `Disp-…`, `BTT-…`). Every
//! vocabulary slot of EPCIS 2.0 admits any URI, so these are valid EPCIS values. The
//! extension properties (`custody:eventId`, …) live in the same namespace.
//!
//! The `urn:custody:` URNs use an unregistered namespace identifier: they are names private to
//! Custody networks, never resolved on the web. `docs/EPCIS.md` lists every form.

use custody_ledger::model::MemberId;
use custody_ledger::EventId;
use serde_json::Value;

/// The EPCIS 2.0 JSON-LD context every Custody EPCIS document names first.
pub const EPCIS_CONTEXT_URL: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";
/// The Custody vocabulary's namespace: terms and extension properties.
pub const NAMESPACE: &str = "urn:custody:epcis:";
/// The JSON-LD prefix Custody writes for [`NAMESPACE`].
pub const PREFIX: &str = "custody";
/// Where a node serves [`CONTEXT_JSON`], relative to its base URL.
pub const CONTEXT_PATH: &str = "/epcis/context/custody.jsonld";

/// The Custody JSON-LD context document, served by the node at [`CONTEXT_PATH`]: the prefix,
/// and the extension properties whose values are IRIs or typed literals.
pub const CONTEXT_JSON: &str = r#"{
  "@context": {
    "@version": 1.1,
    "@protected": true,
    "custody": "urn:custody:epcis:",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "custody:eventId": { "@type": "xsd:hexBinary" },
    "custody:height": { "@type": "xsd:nonNegativeInteger" },
    "custody:logIndex": { "@type": "xsd:nonNegativeInteger" },
    "custody:kind": { "@type": "xsd:string" },
    "custody:shipmentId": { "@type": "xsd:string" },
    "custody:signer": { "@type": "@id" },
    "custody:proposal": { "@type": "xsd:hexBinary" },
    "custody:declaration": { "@type": "xsd:hexBinary" },
    "custody:wholeShipment": { "@type": "xsd:boolean" },
    "custody:exception": { "@type": "xsd:boolean" },
    "custody:locode": { "@type": "xsd:string" },
    "custody:lowerLimit": { "@type": "xsd:decimal" },
    "custody:upperLimit": { "@type": "xsd:decimal" },
    "custody:proofKind": { "@type": "xsd:string" },
    "custody:proofHash": { "@type": "xsd:hexBinary" },
    "custody:documentHash": { "@type": "xsd:hexBinary" }
  }
}"#;

/// [`CONTEXT_JSON`] as a JSON value.
pub fn context_document() -> Value {
    serde_json::from_str(CONTEXT_JSON).expect("the Custody context is valid JSON")
}

/// The full IRI of a Custody term or property (`eventId` → `urn:custody:epcis:eventId`).
pub fn term(local: &str) -> String {
    format!("{NAMESPACE}{local}")
}

/// The compact form Custody writes for a property (`eventId` → `custody:eventId`).
pub fn property(local: &str) -> String {
    format!("{PREFIX}:{local}")
}

/// The local name of a Custody property written compactly (`custody:x`) or in full
/// (`urn:custody:epcis:x`); `None` for any other key.
pub fn custody_property(key: &str) -> Option<&str> {
    key.strip_prefix("custody:")
        .or_else(|| key.strip_prefix(NAMESPACE))
}

/// Custody business steps (CBV has none for these).
pub mod biz_step {
    /// A customs broker declares the goods (`CustomsDeclared`).
    pub const CUSTOMS_DECLARING: &str = "urn:custody:epcis:BizStep-customs_declaring";
    /// Duty and import tax are paid (`DutyPaid`).
    pub const DUTY_PAYING: &str = "urn:custody:epcis:BizStep-duty_paying";
    /// Customs decides on a declaration: release, hold or inspection (`CustomsCleared`).
    pub const CUSTOMS_CLEARING: &str = "urn:custody:epcis:BizStep-customs_clearing";
    /// The last custodian hands the goods to the consignee, who is no member (`Delivered`).
    pub const DELIVERING: &str = "urn:custody:epcis:BizStep-delivering";
    /// The seller authorises a return (`ReturnRequested`).
    pub const RETURN_AUTHORISING: &str = "urn:custody:epcis:BizStep-return_authorising";
    /// An issuer attests an external document (`DocumentAttested`).
    pub const DOCUMENT_ATTESTING: &str = "urn:custody:epcis:BizStep-document_attesting";
}

/// Custody dispositions.
pub mod disposition {
    /// Declared, awaiting the decision of customs.
    pub const AT_CUSTOMS: &str = "urn:custody:epcis:Disp-at_customs";
    /// Released by customs.
    pub const CUSTOMS_RELEASED: &str = "urn:custody:epcis:Disp-customs_released";
    /// Held by customs (documents, payment, suspicion).
    pub const CUSTOMS_HELD: &str = "urn:custody:epcis:Disp-customs_held";
    /// Held by customs for a physical inspection.
    pub const CUSTOMS_INSPECTION: &str = "urn:custody:epcis:Disp-customs_inspection";
    /// Delivered to the consignee.
    pub const DELIVERED: &str = "urn:custody:epcis:Disp-delivered";
}

/// Custody business transaction types (CBV's `bol`, `inv` and `rma` are used as they are).
pub mod btt {
    /// IATA air waybill.
    pub const AIR_WAYBILL: &str = "urn:custody:epcis:BTT-awb";
    /// CMR road consignment note.
    pub const ROAD_CONSIGNMENT_NOTE: &str = "urn:custody:epcis:BTT-cmr";
    /// CIM rail consignment note.
    pub const RAIL_CONSIGNMENT_NOTE: &str = "urn:custody:epcis:BTT-cim";
    /// An express courier's own waybill.
    pub const COURIER_WAYBILL: &str = "urn:custody:epcis:BTT-courier_waybill";
    /// A customs declaration, by the broker's reference.
    pub const CUSTOMS_DECLARATION: &str = "urn:custody:epcis:BTT-customs_declaration";
    /// A customs decision, by the authority's reference (MRN or similar).
    pub const CUSTOMS_DECISION: &str = "urn:custody:epcis:BTT-customs_decision";
    /// A duty payment, by its payment reference.
    pub const DUTY_PAYMENT: &str = "urn:custody:epcis:BTT-duty_payment";
    /// An attested external document, by its own number.
    pub const ATTESTED_DOCUMENT: &str = "urn:custody:epcis:BTT-attested_document";
}

/// The prefix of Custody measurement types that GS1's list lacks (`Shock`, `Vibration`).
pub const MEASUREMENT_PREFIX: &str = "urn:custody:epcis:Measurement-";

/// Member URIs: `urn:custody:member:{id}` (member ids are URN-safe by their shape rule).
pub const MEMBER_PREFIX: &str = "urn:custody:member:";
/// Event URIs (the EPCIS `eventID`): `urn:custody:event:{64 hex digits}`.
pub const EVENT_PREFIX: &str = "urn:custody:event:";
/// UN/LOCODE locations: `urn:custody:locode:{LOCODE}`.
pub const LOCODE_PREFIX: &str = "urn:custody:locode:";
/// Business transaction identifiers: `urn:custody:bt:{kind}:{percent-encoded number}`.
pub const BT_PREFIX: &str = "urn:custody:bt:";
/// Invoice lines without a GTIN: `urn:custody:line:{shipment}:{line number}`.
pub const LINE_PREFIX: &str = "urn:custody:line:";
/// SSCCs as GS1 Digital Link URIs.
pub const SSCC_PREFIX: &str = "https://id.gs1.org/00/";
/// GTINs (class level) as GS1 Digital Link URIs.
pub const GTIN_PREFIX: &str = "https://id.gs1.org/01/";
/// GLNs of physical locations as GS1 Digital Link URIs.
pub const GLN_PREFIX: &str = "https://id.gs1.org/414/";

/// A member's URI.
pub fn member_uri(id: &MemberId) -> String {
    format!("{MEMBER_PREFIX}{}", id.as_str())
}

/// The member a URI names, if it is a well-formed member URI.
pub fn parse_member_uri(uri: &str) -> Option<MemberId> {
    let id = MemberId::new(uri.strip_prefix(MEMBER_PREFIX)?);
    id.is_well_formed().then_some(id)
}

/// An event's URI, its EPCIS `eventID`.
pub fn event_uri(id: &EventId) -> String {
    format!("{EVENT_PREFIX}{}", id.to_hex())
}

/// A UN/LOCODE's URI.
pub fn locode_uri(locode: &str) -> String {
    format!("{LOCODE_PREFIX}{locode}")
}

/// The UN/LOCODE a URI names: five characters, two capital letters and three capitals or
/// digits 2 to 9 (the form; whether the code exists is for the rule modules).
pub fn parse_locode_uri(uri: &str) -> Option<String> {
    let code = uri.strip_prefix(LOCODE_PREFIX)?;
    is_locode(code).then(|| code.to_owned())
}

/// Whether `code` has the form of a UN/LOCODE.
pub fn is_locode(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'9').contains(c))
}

/// An SSCC's Digital Link URI.
pub fn sscc_uri(sscc: &str) -> String {
    format!("{SSCC_PREFIX}{sscc}")
}

/// A GTIN's class-level Digital Link URI, the GTIN padded to 14 digits as Digital Link's
/// canonical form writes it.
pub fn gtin_uri(gtin: &str) -> String {
    format!("{GTIN_PREFIX}{gtin:0>14}")
}

/// A GLN's Digital Link URI.
pub fn gln_uri(gln: &str) -> String {
    format!("{GLN_PREFIX}{gln}")
}

/// The URI of an invoice line that has no GTIN.
pub fn line_uri(shipment: &str, line_no: u32) -> String {
    format!("{LINE_PREFIX}{}:{line_no}", percent_encode(shipment))
}

/// A business transaction identifier: `kind` is a short tag (`inv`, `awb`, `rma`, …).
pub fn bt_uri(kind: &str, number: &str) -> String {
    format!("{BT_PREFIX}{kind}:{}", percent_encode(number))
}

/// The kind tag and number of a business transaction identifier.
pub fn parse_bt_uri(uri: &str) -> Option<(&str, String)> {
    let (kind, number) = uri.strip_prefix(BT_PREFIX)?.split_once(':')?;
    Some((kind, percent_decode(number)?))
}

/// Percent-encodes every byte but RFC 3986's unreserved characters, so any text becomes a
/// URN segment.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The inverse of [`percent_encode`]; `None` for a malformed escape or bytes that are not
/// UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub use custody_ledger::cbv::{CBV_BIZ_STEPS, CBV_DISPOSITIONS};

/// The GS1 measurement types EPCIS 2.0 names by short name (the JSON Schema's list).
pub const GS1_MEASUREMENT_TYPES: &[&str] = &[
    "AbsoluteHumidity",
    "AbsorbedDose",
    "AbsorbedDoseRate",
    "Acceleration",
    "Radioactivity",
    "Altitude",
    "AmountOfSubstance",
    "AmountOfSubstancePerUnitVolume",
    "Angle",
    "AngularAcceleration",
    "AngularMomentum",
    "AngularVelocity",
    "Area",
    "Capacitance",
    "Conductance",
    "Conductivity",
    "Count",
    "Density",
    "Dimensionless",
    "DoseEquivalent",
    "DoseEquivalentRate",
    "DynamicViscosity",
    "ElectricCharge",
    "ElectricCurrent",
    "ElectricCurrentDensity",
    "ElectricFieldStrength",
    "Energy",
    "Exposure",
    "Force",
    "Frequency",
    "Illuminance",
    "Inductance",
    "Irradiance",
    "KinematicViscosity",
    "Length",
    "LinearMomentum",
    "Luminance",
    "LuminousFlux",
    "LuminousIntensity",
    "MagneticFlux",
    "MagneticFluxDensity",
    "MagneticVectorPotential",
    "Mass",
    "MassConcentration",
    "MassFlowRate",
    "MassPerAreaTime",
    "MemoryCapacity",
    "MolalityOfSolute",
    "MolarEnergy",
    "MolarMass",
    "MolarVolume",
    "Power",
    "Pressure",
    "RadiantFlux",
    "RadiantIntensity",
    "RelativeHumidity",
    "Resistance",
    "Resistivity",
    "SolidAngle",
    "SpecificVolume",
    "Speed",
    "SurfaceDensity",
    "SurfaceTension",
    "Temperature",
    "Time",
    "Torque",
    "Voltage",
    "Volume",
    "VolumeFlowRate",
    "VolumeFraction",
    "VolumetricFlux",
    "Wavenumber",
];

/// The CBV short name of a vocabulary value written as a short name, a CBV web URI
/// (`https://ref.gs1.org/cbv/{web}{name}`) or a CBV 1.x URN (`urn:epcglobal:cbv:{urn}:{name}`).
/// `web` is the term-name prefix (`BizStep-`), `urn` the URN segment (`bizstep`).
pub fn cbv_short_name<'v>(value: &'v str, web: &str, urn: &str) -> Option<&'v str> {
    if !value.contains(':') {
        return Some(value);
    }
    if let Some(rest) = value.strip_prefix("https://ref.gs1.org/cbv/") {
        return rest.strip_prefix(web);
    }
    value
        .strip_prefix("urn:epcglobal:cbv:")?
        .strip_prefix(urn)?
        .strip_prefix(':')
}

/// Whether `value` looks like an absolute URI: a scheme (a letter, then letters, digits,
/// `+ - .`), a colon and something after it.
pub fn is_absolute_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_parses_and_defines_the_prefix() {
        let context = context_document();
        assert_eq!(context["@context"][PREFIX], NAMESPACE);
    }

    #[test]
    fn percent_encoding_round_trips() {
        for text in ["INV-1", "AWB 123/45", "é#%:", ""] {
            assert_eq!(percent_decode(&percent_encode(text)).as_deref(), Some(text));
        }
        assert_eq!(percent_encode("A B/1"), "A%20B%2F1");
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn uris() {
        assert_eq!(
            parse_locode_uri(&locode_uri("DEHAM")).as_deref(),
            Some("DEHAM")
        );
        assert_eq!(parse_locode_uri("urn:custody:locode:deham"), None);
        assert_eq!(
            gtin_uri("4006381333931"),
            "https://id.gs1.org/01/04006381333931"
        );
        let member = MemberId::new("carrier-swift");
        assert_eq!(parse_member_uri(&member_uri(&member)), Some(member));
        assert_eq!(parse_member_uri("urn:custody:member:"), None);
        assert_eq!(
            parse_bt_uri(&bt_uri("awb", "176-1234 5675")),
            Some(("awb", "176-1234 5675".to_owned()))
        );
    }

    #[test]
    fn cbv_names() {
        let short = |v| cbv_short_name(v, "BizStep-", "bizstep");
        assert_eq!(short("shipping"), Some("shipping"));
        assert_eq!(
            short("https://ref.gs1.org/cbv/BizStep-shipping"),
            Some("shipping")
        );
        assert_eq!(
            short("urn:epcglobal:cbv:bizstep:shipping"),
            Some("shipping")
        );
        assert_eq!(short("urn:custody:epcis:BizStep-delivering"), None);
        assert!(is_absolute_uri("urn:custody:x"));
        assert!(!is_absolute_uri("in_transit"));
        assert!(!is_absolute_uri("a b:c"));
    }
}
