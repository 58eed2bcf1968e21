//! Personal data on the ledger: salted commitments, and the disclosures that open them.
//!
//! Names, addresses and ids of natural persons (a private buyer, whoever signed for a
//! delivery) never go onto the ledger in plain text (DESIGN.md decision 10). An event carries
//! only a commitment
//!
//! ```text
//! commitment(value, salt) = SHA-256("custody/personal/v1" || salt (32 bytes) || utf8(value))
//! ```
//!
//! and the value with its salt stays off the ledger with the shipment's parties, as a
//! [`Disclosure`]. Whoever holds a disclosure can check it against the event
//! ([`Disclosure::check`]); erasing the disclosure leaves the commitment unopenable (the salt
//! is 32 random bytes, so the value cannot be guessed back from it) and breaks no proof.
//!
//! Salts are drawn by the party that commits (this crate draws no randomness): 32 bytes from
//! a cryptographic random generator, a fresh salt per value.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::{domain, fixed_bytes, Digest, HexError};
use crate::keys::{PublicKey, Signature};
use crate::model::{EventId, EventKind, ShipmentId};

/// Longest value a disclosure may carry, in bytes of UTF-8.
pub const VALUE_LEN_MAX: usize = 1_024;

/// The 32 random bytes a commitment is salted with. Hex in JSON; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt(pub [u8; 32]);

impl Salt {
    /// The salt's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Salt, HexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| HexError { expected_bytes: 32 })?;
        Ok(Salt(out))
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl Serialize for Salt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fixed_bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Salt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_bytes::deserialize(deserializer).map(Salt)
    }
}

/// A salt is 64 hex characters in JSON.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Salt {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::hash::string_schema(
            "The 32-byte salt of a personal-data commitment, as 64 hex characters.",
            64,
            64,
            "^[0-9a-fA-F]{64}$",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Salt {}

/// `SHA-256("custody/personal/v1" || salt || utf8(value))`: the commitment an event carries
/// in place of a piece of personal data.
pub fn commitment(value: &str, salt: &Salt) -> Digest {
    Digest::of(domain::PERSONAL, &[salt.as_bytes(), value.as_bytes()])
}

/// The personal-data fields of events, each held on the ledger as a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PersonalField {
    /// The buyer's name (`invoice.buyer.name_commitment` of a `ShipmentRegistered` event).
    #[serde(rename = "buyer.name")]
    BuyerName,
    /// The buyer's address (`invoice.buyer.address_commitment`).
    #[serde(rename = "buyer.address")]
    BuyerAddress,
    /// A private buyer's personal tax id (`invoice.buyer.personal_id_commitment`).
    #[serde(rename = "buyer.personal_id")]
    BuyerPersonalId,
    /// Who received a delivery (`received_by_commitment` of a `Delivered` event).
    #[serde(rename = "received_by")]
    ReceivedBy,
}

impl PersonalField {
    /// Every field.
    pub const ALL: [PersonalField; 4] = [
        PersonalField::BuyerName,
        PersonalField::BuyerAddress,
        PersonalField::BuyerPersonalId,
        PersonalField::ReceivedBy,
    ];

    /// The field's name, as JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonalField::BuyerName => "buyer.name",
            PersonalField::BuyerAddress => "buyer.address",
            PersonalField::BuyerPersonalId => "buyer.personal_id",
            PersonalField::ReceivedBy => "received_by",
        }
    }

    /// Parses a field name.
    pub fn parse(text: &str) -> Option<PersonalField> {
        PersonalField::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

impl fmt::Display for PersonalField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The commitment an event holds for a field, if the event has that field (a registration
/// without a buyer address has no `buyer.address`).
pub fn commitment_of(kind: &EventKind, field: PersonalField) -> Option<Digest> {
    match (kind, field) {
        (EventKind::ShipmentRegistered(e), PersonalField::BuyerName) => {
            Some(e.invoice.buyer.name_commitment)
        }
        (EventKind::ShipmentRegistered(e), PersonalField::BuyerAddress) => {
            e.invoice.buyer.address_commitment
        }
        (EventKind::ShipmentRegistered(e), PersonalField::BuyerPersonalId) => {
            e.invoice.buyer.personal_id_commitment
        }
        (EventKind::Delivered(e), PersonalField::ReceivedBy) => Some(e.received_by_commitment),
        _ => None,
    }
}

/// A piece of personal data with its salt, kept off the ledger: it opens the commitment
/// `field` of event `event_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// The event that holds the commitment.
    pub event_id: EventId,
    /// Which of its fields.
    pub field: PersonalField,
    /// The plain value (at most 1,024 bytes of UTF-8).
    pub value: String,
    /// The salt.
    pub salt: Salt,
}

impl Disclosure {
    /// A disclosure of `value` under `salt`.
    pub fn new(
        event_id: EventId,
        field: PersonalField,
        value: impl Into<String>,
        salt: Salt,
    ) -> Disclosure {
        Disclosure {
            event_id,
            field,
            value: value.into(),
            salt,
        }
    }

    /// The commitment this disclosure opens.
    pub fn commitment(&self) -> Digest {
        commitment(&self.value, &self.salt)
    }

    /// Checks the disclosure against the event it names (the caller finds the event by
    /// `event_id`): the value is within bounds, the event has the field, and the field's
    /// commitment is `commitment(value, salt)`.
    pub fn check(&self, kind: &EventKind) -> Result<(), DisclosureError> {
        if self.value.len() > VALUE_LEN_MAX {
            return Err(DisclosureError::ValueTooLong {
                field: self.field,
                len: self.value.len(),
            });
        }
        let committed = commitment_of(kind, self.field).ok_or(DisclosureError::FieldAbsent {
            field: self.field,
            kind: kind.name(),
        })?;
        if committed != self.commitment() {
            return Err(DisclosureError::CommitmentMismatch { field: self.field });
        }
        Ok(())
    }
}

/// Why a disclosure does not open its event's commitment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisclosureError {
    /// The event has no commitment for the field (`disclosure.field`).
    #[error("a {kind} event has no {field} commitment")]
    FieldAbsent {
        /// The field.
        field: PersonalField,
        /// The event's kind.
        kind: &'static str,
    },
    /// The value and salt do not hash to the event's commitment (`disclosure.commitment`).
    #[error("the value and salt do not match the event's {field} commitment")]
    CommitmentMismatch {
        /// The field.
        field: PersonalField,
    },
    /// The value is longer than [`VALUE_LEN_MAX`] bytes (`disclosure.value`).
    #[error("the {field} value is {len} bytes long; at most {VALUE_LEN_MAX} allowed")]
    ValueTooLong {
        /// The field.
        field: PersonalField,
        /// Its length in bytes.
        len: usize,
    },
}

impl DisclosureError {
    /// The check's stable name: `disclosure.field`, `disclosure.commitment` or
    /// `disclosure.value`.
    pub fn code(&self) -> &'static str {
        match self {
            DisclosureError::FieldAbsent { .. } => "disclosure.field",
            DisclosureError::CommitmentMismatch { .. } => "disclosure.commitment",
            DisclosureError::ValueTooLong { .. } => "disclosure.value",
        }
    }
}

/// Domain of the signature of a party's write of disclosures to a node
/// (`POST /v1/shipments/{id}/personal`).
pub const WRITE_DOMAIN: &[u8] = b"custody/personal-request/v1";
/// Domain of the signature of a party's read (`GET /v1/shipments/{id}/personal`).
pub const READ_DOMAIN: &[u8] = b"custody/personal-read/v1";

/// Domain of the signature of a node's read of many shipments' disclosures from a peer
/// (`POST /v1/personal/batch`).
pub const READ_BATCH_DOMAIN: &[u8] = b"custody/personal-read-batch/v1";

/// The body of `POST /v1/shipments/{id}/personal`: what a party gives its node to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscloseRequest {
    /// What to keep.
    pub disclosures: Vec<Disclosure>,
    /// The signing key: a party member's event key or its node key.
    pub signer: PublicKey,
    /// The signature over [`write_message`].
    pub signature: Signature,
}

/// `D` of a write: `SHA-256` over, for each disclosure in body order, its event id (32 bytes),
/// its field name and a zero byte, the value's byte length (`u32` big-endian), the value and
/// the salt (32 bytes). Fixed bytes rather than a JSON serialiser's, so that any language can
/// produce them.
pub fn disclosures_digest(disclosures: &[Disclosure]) -> Digest {
    let mut bytes = Vec::new();
    for d in disclosures {
        bytes.extend_from_slice(d.event_id.as_bytes());
        bytes.extend_from_slice(d.field.as_str().as_bytes());
        bytes.push(0);
        let len = u32::try_from(d.value.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(d.value.as_bytes());
        bytes.extend_from_slice(d.salt.as_bytes());
    }
    Digest::sha256(&bytes)
}

/// The bytes a write's signature covers:
/// `WRITE_DOMAIN || utf8(shipment id) || 0x00 || disclosures_digest`.
pub fn write_message(shipment: &ShipmentId, disclosures: &[Disclosure]) -> Vec<u8> {
    let mut message = WRITE_DOMAIN.to_vec();
    message.extend_from_slice(shipment.as_str().as_bytes());
    message.push(0);
    message.extend_from_slice(disclosures_digest(disclosures).as_bytes());
    message
}

/// The bytes a read's signature covers:
/// `READ_DOMAIN || utf8(shipment id) || 0x00 || time_ms (u64 big-endian)`.
pub fn read_message(shipment: &ShipmentId, time_ms: u64) -> Vec<u8> {
    let mut message = READ_DOMAIN.to_vec();
    message.extend_from_slice(shipment.as_str().as_bytes());
    message.push(0);
    message.extend_from_slice(&time_ms.to_be_bytes());
    message
}

/// The bytes a batch read's signature covers: `READ_BATCH_DOMAIN || time_ms (u64
/// big-endian)`, then for each shipment in request order `utf8(shipment id) || 0x00`.
pub fn read_batch_message(shipments: &[ShipmentId], time_ms: u64) -> Vec<u8> {
    let mut message = READ_BATCH_DOMAIN.to_vec();
    message.extend_from_slice(&time_ms.to_be_bytes());
    for shipment in shipments {
        message.extend_from_slice(shipment.as_str().as_bytes());
        message.push(0);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Delivered, PersonalDataErased, ProofKind, ShipmentId};

    fn salt_11() -> Salt {
        Salt([0x11; 32])
    }

    #[test]
    fn the_commitment_test_vector() {
        let c = commitment("J. Buyer", &salt_11());
        assert_eq!(c.to_hex(), TEST_VECTOR_HEX);
        let mut preimage = b"custody/personal/v1".to_vec();
        preimage.extend_from_slice(&[0x11; 32]);
        preimage.extend_from_slice("J. Buyer".as_bytes());
        assert_eq!(c, Digest::sha256(&preimage));
    }

    #[test]
    fn more_vectors_empty_and_non_ascii() {
        assert_eq!(
            commitment("", &salt_11()).to_hex(),
            "59f7ec227559baa2834ba997092d60d8ebf17bd5d9bd7a99ed007203028e17fc"
        );
        let counting: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).expect("i < 32"));
        assert_eq!(
            commitment("Zoë Müller", &Salt(counting)).to_hex(),
            "1a9a216ed6d4c116ad69f5865f7c5a6ddac2a369f9e221a0453e6d20e59767ff"
        );
    }

    /// `commitment("J. Buyer", 32 × 0x11)`, as written in docs/PROTOCOL.md.
    const TEST_VECTOR_HEX: &str =
        "e90705218396ecac428667028e698a050435bcfe4bcee3fa26063488c22e4819";

    #[test]
    fn salt_and_value_both_change_the_commitment() {
        let a = commitment("J. Buyer", &salt_11());
        assert_ne!(a, commitment("J. Buyer", &Salt([0x12; 32])));
        assert_ne!(a, commitment("J. Buyer ", &salt_11()));
        assert_ne!(a, commitment("", &salt_11()));
    }

    #[test]
    fn salt_debug_hides_the_bytes_and_json_is_hex() {
        let salt = salt_11();
        assert_eq!(format!("{salt:?}"), "Salt(..)");
        let json = serde_json::to_string(&salt).unwrap();
        assert_eq!(json, format!("\"{}\"", "11".repeat(32)));
        assert_eq!(serde_json::from_str::<Salt>(&json).unwrap(), salt);
        assert!(serde_json::from_str::<Salt>("\"1111\"").is_err());
        assert_eq!(Salt::from_hex(&salt.to_hex()), Ok(salt));
    }

    #[test]
    fn field_names_in_json() {
        for field in PersonalField::ALL {
            let json = serde_json::to_string(&field).unwrap();
            assert_eq!(json, format!("\"{}\"", field.as_str()));
            assert_eq!(serde_json::from_str::<PersonalField>(&json).unwrap(), field);
            assert_eq!(PersonalField::parse(field.as_str()), Some(field));
        }
        assert!(serde_json::from_str::<PersonalField>("\"buyer_name\"").is_err());
    }

    fn registration() -> EventKind {
        let mut r = crate::testkit::registration("P-1", "CN", "FR");
        r.invoice.buyer.name_commitment = commitment("J. Buyer", &salt_11());
        r.invoice.buyer.address_commitment = None;
        r.invoice.buyer.personal_id_commitment = Some(commitment("FR-123", &Salt([7; 32])));
        EventKind::ShipmentRegistered(r)
    }

    #[test]
    fn commitments_are_found_by_field() {
        let kind = registration();
        assert_eq!(
            commitment_of(&kind, PersonalField::BuyerName),
            Some(commitment("J. Buyer", &salt_11()))
        );
        assert_eq!(commitment_of(&kind, PersonalField::BuyerAddress), None);
        assert_eq!(
            commitment_of(&kind, PersonalField::BuyerPersonalId),
            Some(commitment("FR-123", &Salt([7; 32])))
        );
        assert_eq!(commitment_of(&kind, PersonalField::ReceivedBy), None);
        let delivered = EventKind::Delivered(Delivered {
            shipment_id: ShipmentId::new("P-1"),
            place: "FRPAR".into(),
            proof_kind: ProofKind::Signature,
            proof_hash: Digest::sha256(b"proof"),
            received_by_commitment: commitment("J. Buyer", &salt_11()),
        });
        assert_eq!(
            commitment_of(&delivered, PersonalField::ReceivedBy),
            Some(commitment("J. Buyer", &salt_11()))
        );
        assert_eq!(commitment_of(&delivered, PersonalField::BuyerName), None);
        let erased = EventKind::PersonalDataErased(PersonalDataErased {
            shipment_id: ShipmentId::new("P-1"),
        });
        for field in PersonalField::ALL {
            assert_eq!(commitment_of(&erased, field), None);
        }
    }

    #[test]
    fn disclosures_are_checked_against_the_event() {
        let kind = registration();
        let id = Digest::sha256(b"event");
        let good = Disclosure::new(id, PersonalField::BuyerName, "J. Buyer", salt_11());
        assert_eq!(good.check(&kind), Ok(()));

        let wrong_value = Disclosure::new(id, PersonalField::BuyerName, "J. Seller", salt_11());
        let err = wrong_value.check(&kind).unwrap_err();
        assert_eq!(err.code(), "disclosure.commitment");

        let wrong_salt = Disclosure::new(id, PersonalField::BuyerName, "J. Buyer", Salt([0; 32]));
        assert_eq!(
            wrong_salt.check(&kind).map_err(|e| e.code()),
            Err("disclosure.commitment")
        );

        let absent = Disclosure::new(id, PersonalField::BuyerAddress, "1 Rue X", salt_11());
        let err = absent.check(&kind).unwrap_err();
        assert_eq!(err.code(), "disclosure.field");
        assert!(err.to_string().contains("buyer.address"), "{err}");

        let long = "x".repeat(VALUE_LEN_MAX + 1);
        let too_long = Disclosure::new(id, PersonalField::BuyerName, long.clone(), salt_11());
        let mut kind_long = registration();
        if let EventKind::ShipmentRegistered(r) = &mut kind_long {
            r.invoice.buyer.name_commitment = commitment(&long, &salt_11());
        }
        assert_eq!(
            too_long.check(&kind_long).map_err(|e| e.code()),
            Err("disclosure.value")
        );
        let at_max = Disclosure::new(
            id,
            PersonalField::BuyerName,
            "é".repeat(VALUE_LEN_MAX / 2),
            salt_11(),
        );
        if let EventKind::ShipmentRegistered(r) = &mut kind_long {
            r.invoice.buyer.name_commitment = at_max.commitment();
        }
        assert_eq!(at_max.check(&kind_long), Ok(()));
    }

    #[test]
    fn disclosure_json_is_strict() {
        let d = Disclosure::new(
            Digest::sha256(b"event"),
            PersonalField::ReceivedBy,
            "J. Buyer",
            salt_11(),
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["field"], "received_by");
        assert_eq!(json["salt"], "11".repeat(32));
        assert_eq!(json["event_id"], Digest::sha256(b"event").to_hex());
        assert_eq!(
            serde_json::from_value::<Disclosure>(json.clone()).unwrap(),
            d
        );
        let mut extra = json.clone();
        extra["note"] = "x".into();
        assert!(serde_json::from_value::<Disclosure>(extra).is_err());
        let mut bad_field = json;
        bad_field["field"] = "buyer.phone".into();
        assert!(serde_json::from_value::<Disclosure>(bad_field).is_err());
    }
}
