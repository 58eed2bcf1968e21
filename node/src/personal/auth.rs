//! The signed requests of the personal-data endpoints.
//!
//! A write (`POST /v1/shipments/{id}/personal`) carries its signer and signature in the body,
//! over
//!
//! ```text
//! "custody/personal-request/v1" || utf8(shipment id) || 0x00 || D
//! D = SHA-256( for each disclosure, in body order:
//!        event_id (32 bytes) || utf8(field name) || 0x00 ||
//!        u32 big-endian byte length of the value || utf8(value) || salt (32 bytes) )
//! ```
//!
//! A read (`GET`) carries them in headers (`Custody-Signer`, `Custody-Time`,
//! `Custody-Signature`: hex key, unix milliseconds, hex signature) over
//!
//! ```text
//! "custody/personal-read/v1" || utf8(shipment id) || 0x00 || time_ms (u64 big-endian)
//! ```
//!
//! A node's read of many shipments from a peer (`POST /v1/personal/batch`, [`ReadBatch`])
//! carries them in its body, over
//!
//! ```text
//! "custody/personal-read-batch/v1" || time_ms (u64 big-endian) ||
//!     for each shipment, in body order: utf8(shipment id) || 0x00
//! ```
//!
//! Reads are refused when their time is more than [`READ_SKEW_MS_MAX`] from the node's clock, so a
//! read overheard once cannot be replayed later. The domains keep a read signature from
//! passing as a write, and both from passing as an event. The bytes are fixed here rather than
//! taken from a JSON serialiser, so any language can produce them.

use custody_ledger::keys::{Keypair, Signature};
use custody_ledger::model::ShipmentId;
use custody_ledger::personal::Disclosure;
pub use custody_ledger::personal::{
    disclosures_digest, read_batch_message, read_message, write_message, DiscloseRequest,
    READ_BATCH_DOMAIN, READ_DOMAIN, WRITE_DOMAIN,
};
use custody_ledger::PublicKey;

/// How far a read's time may be from the node's clock: five minutes.
pub const READ_SKEW_MS_MAX: u64 = 5 * 60 * 1000;

/// The read headers.
pub const SIGNER_HEADER: &str = "custody-signer";
/// See [`SIGNER_HEADER`].
pub const TIME_HEADER: &str = "custody-time";
/// See [`SIGNER_HEADER`].
pub const SIGNATURE_HEADER: &str = "custody-signature";

/// A signed read, as its three headers carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRead {
    /// The signing key.
    pub signer: PublicKey,
    /// Unix milliseconds when it was signed.
    pub time_ms: u64,
    /// The signature over [`read_message`].
    pub signature: Signature,
}

/// Most shipments one batch read names.
pub const READ_BATCH_SHIPMENTS_MAX: usize = 512;

/// The body of `POST /v1/personal/batch`: a node asking a peer for the disclosures of many
/// shipments at once (one signature and one request per peer and block, not per shipment).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBatch {
    /// The shipments, at most [`READ_BATCH_SHIPMENTS_MAX`].
    pub shipments: Vec<ShipmentId>,
    /// The signing key: a member's node key or event key.
    pub signer: PublicKey,
    /// Unix milliseconds when it was signed.
    pub time_ms: u64,
    /// The signature over [`read_batch_message`].
    pub signature: Signature,
}

/// The answer to a [`ReadBatch`]: the peer's committed height, and the disclosures it holds
/// of those shipments the signer is a party of (the others are left out, as are shipments
/// it holds nothing of).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBatchAnswer {
    /// The height of the peer's last committed block when it answered: an asker ahead of it
    /// asks again later, since the peer may not see it as a party yet.
    pub height: u64,
    /// What the peer holds and may give, by shipment.
    pub shipments: Vec<super::PersonalView>,
}

/// Signs a batch read of `shipments` at `time_ms`.
pub fn sign_read_batch(key: &Keypair, shipments: Vec<ShipmentId>, time_ms: u64) -> ReadBatch {
    let signature = key.sign(&read_batch_message(&shipments, time_ms));
    ReadBatch {
        shipments,
        signer: key.public(),
        time_ms,
        signature,
    }
}

/// Checks a batch read's time against `now_ms`, then its signature.
pub fn check_read_batch(read: &ReadBatch, now_ms: u64) -> Result<(), AuthError> {
    check_time(read.time_ms, now_ms)?;
    read.signer
        .verify(
            &read_batch_message(&read.shipments, read.time_ms),
            &read.signature,
        )
        .map_err(|_| AuthError::Signature(read.signer))
}

fn check_time(time_ms: u64, now_ms: u64) -> Result<(), AuthError> {
    if time_ms.abs_diff(now_ms) > READ_SKEW_MS_MAX {
        return Err(AuthError::Stale { time_ms, now_ms });
    }
    Ok(())
}

/// Why a signed request is refused before anyone's rights are looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The signature does not verify (`personal.signature`).
    #[error("the signature does not verify for signer {0}")]
    Signature(PublicKey),
    /// The read's time is too far from the node's clock (`personal.stale_request`).
    #[error("the request was signed at {time_ms} ms; the node's clock says {now_ms} ms, more than {READ_SKEW_MS_MAX} ms apart")]
    Stale {
        /// The request's time.
        time_ms: u64,
        /// The node's.
        now_ms: u64,
    },
}

impl AuthError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Signature(_) => "personal.signature",
            AuthError::Stale { .. } => "personal.stale_request",
        }
    }
}

/// Signs a write.
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

/// Signs a read at `time_ms`.
pub fn sign_read(key: &Keypair, shipment: &ShipmentId, time_ms: u64) -> SignedRead {
    SignedRead {
        signer: key.public(),
        time_ms,
        signature: key.sign(&read_message(shipment, time_ms)),
    }
}

/// Checks a write's signature.
pub fn check_write(shipment: &ShipmentId, request: &DiscloseRequest) -> Result<(), AuthError> {
    request
        .signer
        .verify(
            &write_message(shipment, &request.disclosures),
            &request.signature,
        )
        .map_err(|_| AuthError::Signature(request.signer))
}

/// Checks a read's time against `now_ms`, then its signature.
pub fn check_read(shipment: &ShipmentId, read: &SignedRead, now_ms: u64) -> Result<(), AuthError> {
    check_time(read.time_ms, now_ms)?;
    read.signer
        .verify(&read_message(shipment, read.time_ms), &read.signature)
        .map_err(|_| AuthError::Signature(read.signer))
}

/// The current time in unix milliseconds (the node's one clock, [`crate::clock`]).
pub fn now_ms() -> u64 {
    crate::clock::now().0
}

/// Parses a signature from hex.
pub fn signature_from_hex(text: &str) -> Option<Signature> {
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(Signature(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::personal::{PersonalField, Salt};
    use custody_ledger::Digest;

    fn disclosures() -> Vec<Disclosure> {
        vec![Disclosure::new(
            Digest::sha256(b"reg"),
            PersonalField::BuyerName,
            "J. Buyer",
            Salt([1; 32]),
        )]
    }

    #[test]
    fn a_signed_write_verifies_and_any_change_breaks_it() {
        let key = Keypair::from_seed([5; 32]);
        let s = ShipmentId::new("S-1");
        let request = sign_write(&key, &s, disclosures());
        assert_eq!(check_write(&s, &request), Ok(()));
        assert!(check_write(&ShipmentId::new("S-2"), &request).is_err());
        let mut changed = request.clone();
        changed.disclosures[0].value = "J. Buyer2".into();
        assert_eq!(
            check_write(&s, &changed).map_err(|e| e.code()),
            Err("personal.signature")
        );
        let mut other_signer = request;
        other_signer.signer = Keypair::from_seed([6; 32]).public();
        assert!(check_write(&s, &other_signer).is_err());
    }

    #[test]
    fn a_read_is_refused_when_stale_or_signed_by_another_key_or_for_another_shipment() {
        let key = Keypair::from_seed([5; 32]);
        let s = ShipmentId::new("S-1");
        let now = 1_800_000_000_000;
        let read = sign_read(&key, &s, now - 1_000);
        assert_eq!(check_read(&s, &read, now), Ok(()));
        let old = sign_read(&key, &s, now - READ_SKEW_MS_MAX - 1);
        assert_eq!(
            check_read(&s, &old, now).map_err(|e| e.code()),
            Err("personal.stale_request")
        );
        let future = sign_read(&key, &s, now + READ_SKEW_MS_MAX + 1);
        assert!(matches!(
            check_read(&s, &future, now),
            Err(AuthError::Stale { .. })
        ));
        let mut forged = read;
        forged.signer = Keypair::from_seed([6; 32]).public();
        assert_eq!(
            check_read(&s, &forged, now).map_err(|e| e.code()),
            Err("personal.signature")
        );
        assert!(check_read(&ShipmentId::new("S-2"), &read, now).is_err());
        // A read's signature is not a write's.
        let write = sign_write(&key, &s, Vec::new());
        let as_read = SignedRead {
            signer: key.public(),
            time_ms: now,
            signature: write.signature,
        };
        assert!(check_read(&s, &as_read, now).is_err());
    }

    #[test]
    fn the_write_message_layout_is_as_documented() {
        let s = ShipmentId::new("S-1");
        let d = disclosures();
        let mut inner = Digest::sha256(b"reg").as_bytes().to_vec();
        inner.extend_from_slice(b"buyer.name\0");
        inner.extend_from_slice(&8u32.to_be_bytes());
        inner.extend_from_slice(b"J. Buyer");
        inner.extend_from_slice(&[1; 32]);
        let mut expected = b"custody/personal-request/v1S-1\0".to_vec();
        expected.extend_from_slice(Digest::sha256(&inner).as_bytes());
        assert_eq!(write_message(&s, &d), expected);
        let mut read = b"custody/personal-read/v1S-1\0".to_vec();
        read.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(read_message(&s, 7), read);
        let mut batch = b"custody/personal-read-batch/v1".to_vec();
        batch.extend_from_slice(&7u64.to_be_bytes());
        batch.extend_from_slice(b"S-1\0S-22\0");
        let shipments = [s, ShipmentId::new("S-22")];
        assert_eq!(read_batch_message(&shipments, 7), batch);
    }

    #[test]
    fn a_batch_read_is_refused_when_stale_or_when_its_shipments_change() {
        let key = Keypair::from_seed([6; 32]);
        let shipments = vec![ShipmentId::new("S-1"), ShipmentId::new("S-2")];
        let now = 1_800_000_000_000;
        let read = sign_read_batch(&key, shipments, now);
        assert_eq!(check_read_batch(&read, now + READ_SKEW_MS_MAX), Ok(()));
        assert!(matches!(
            check_read_batch(&read, now + READ_SKEW_MS_MAX + 1),
            Err(AuthError::Stale { .. })
        ));
        let mut reordered = read.clone();
        reordered.shipments.reverse();
        assert_eq!(
            check_read_batch(&reordered, now),
            Err(AuthError::Signature(read.signer))
        );
        let mut fewer = read.clone();
        fewer.shipments.pop();
        assert!(check_read_batch(&fewer, now).is_err());
    }
}
