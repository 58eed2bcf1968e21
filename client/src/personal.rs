//! The signed requests of a node's personal-data endpoints
//! (`POST` and `GET /v1/shipments/{id}/personal`), as the SDK sends them.
//!
//! Personal data (a private buyer's name, address and personal tax id, whoever signed for a
//! delivery) is on the ledger only as salted commitments; the values and salts are
//! [`Disclosure`]s kept off the ledger by the nodes of the shipment's parties. A party gives
//! them to its node and reads them back with requests signed by its member key:
//!
//! ```text
//! write: "custody/personal-request/v1" || utf8(shipment id) || 0x00 || D
//!        D = SHA-256( per disclosure, in body order: event_id (32 bytes) ||
//!            utf8(field) || 0x00 || u32 big-endian value length || utf8(value) || salt (32) )
//! read:  "custody/personal-read/v1" || utf8(shipment id) || 0x00 || time_ms (u64 BE)
//! ```
//!
//! A read carries its key, time and signature in the headers `Custody-Signer`,
//! `Custody-Time` and `Custody-Signature`; a node refuses one more than five minutes from its
//! clock. The layout is the ledger crate's (`custody_ledger::personal::write_message`,
//! `read_message`), which the node checks against.

use custody_ledger::keys::Keypair;
use custody_ledger::model::ShipmentId;
pub use custody_ledger::personal::{
    disclosures_digest, read_message, write_message, DiscloseRequest, READ_DOMAIN, WRITE_DOMAIN,
};
use custody_ledger::personal::{Disclosure, Salt};
use custody_ledger::Digest;
use serde::{Deserialize, Serialize};

/// A node's answer to a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// How many disclosures the node now holds for it.
    pub held: usize,
}

/// A node's answer to a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalView {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The disclosures the node holds.
    pub disclosures: Vec<Disclosure>,
}

/// A signed write of `disclosures`.
pub fn sign_write(
    key: &Keypair,
    shipment: &ShipmentId,
    disclosures: Vec<Disclosure>,
) -> DiscloseRequest {
    let signature = key.sign(&write_message(shipment, &disclosures));
    DiscloseRequest {
        disclosures,
        signer: key.public(),
        signature,
    }
}

/// The three headers of a read signed at `time_ms`: (name, value).
pub fn read_headers(
    key: &Keypair,
    shipment: &ShipmentId,
    time_ms: u64,
) -> [(&'static str, String); 3] {
    let signature = key.sign(&read_message(shipment, time_ms));
    [
        ("Custody-Signer", key.public().to_hex()),
        ("Custody-Time", time_ms.to_string()),
        ("Custody-Signature", hex::encode(signature.0)),
    ]
}

/// A fresh random salt for a commitment (from the operating system's generator).
pub fn new_salt() -> Salt {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    Salt(bytes)
}

/// A value committed under a fresh salt: the commitment to put in the event, and the salt
/// to keep with the value for its [`Disclosure`].
pub fn commit(value: &str) -> (Digest, Salt) {
    let salt = new_salt();
    (custody_ledger::personal::commitment(value, &salt), salt)
}

/// The wall clock in unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
