//! SHA-256 digests and the domain separation every hash in Custody uses.
//!
//! Every hash is `SHA-256(domain || bytes)` with a fixed ASCII domain string, so that the
//! bytes of one kind of object can never be mistaken for another's. The Merkle log is the
//! one exception: it follows RFC 6962 exactly (leaf prefix `0x00`, node prefix `0x01`), so
//! that off-the-shelf Certificate Transparency verifiers and test vectors apply.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The domain strings, in one place so that `docs/PROTOCOL.md` can list them.
pub mod domain {
    /// Hash of a signed event's canonical bytes: the event id.
    pub const EVENT: &[u8] = b"custody/event/v1";
    /// Message an event's signer signs: this domain, then the canonical event body.
    pub const EVENT_SIGNATURE: &[u8] = b"custody/event-signature/v1";
    /// Hash of a block header's canonical bytes: the block hash.
    pub const BLOCK: &[u8] = b"custody/block/v1";
    /// Hash of the canonical genesis document: the network's identity.
    pub const GENESIS: &[u8] = b"custody/genesis/v1";
    /// Message a validator signs for a precommit vote.
    pub const VOTE: &[u8] = b"custody/vote/v1";
    /// The state digest chain, one link per block.
    pub const STATE: &[u8] = b"custody/state/v1";
    /// Message an admin signs to approve a membership change.
    pub const MEMBERSHIP_APPROVAL: &[u8] = b"custody/membership-approval/v1";
    /// Salted commitment to a piece of personal data: this domain, the 32-byte salt, then the
    /// value's UTF-8 bytes (see [`crate::personal`]).
    pub const PERSONAL: &[u8] = b"custody/personal/v1";
    /// Key of a shipment in the shipment map: this domain, then the shipment id's UTF-8 bytes
    /// (see [`crate::smt::key_of`]).
    pub const SHIPMENT_KEY: &[u8] = b"custody/shipment-key/v1";
}

/// A SHA-256 digest.
///
/// In JSON it is a lowercase hex string; in the canonical binary form it is 32 raw bytes
/// (bincode writes a length prefix of one byte, which the decoder checks).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest, used as the "previous hash" of nothing.
    pub const ZERO: Digest = Digest([0; 32]);

    /// Plain SHA-256 of `bytes`, with no domain. Only the RFC 6962 log uses this directly.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// `SHA-256(domain || parts[0] || parts[1] || ...)`.
    pub fn of(domain: &[u8], parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(domain);
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// The digest as a byte slice.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Digest, HexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| HexError { expected_bytes: 32 })?;
        Ok(Digest(out))
    }
}

/// A hex string that was not the expected number of bytes of valid hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected_bytes} bytes as hex")]
pub struct HexError {
    /// How many bytes the hex string should have encoded.
    pub expected_bytes: usize,
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for Digest {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s)
    }
}

/// Serde support for fixed-size byte arrays: hex in human-readable formats (JSON), raw bytes
/// in binary formats (bincode). Shared by digests, public keys and signatures.
pub(crate) mod fixed_bytes {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        struct FixedVisitor<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for FixedVisitor<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes (hex in JSON)")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                let mut out = [0u8; N];
                hex::decode_to_slice(v, &mut out)
                    .map_err(|_| E::custom(format_args!("expected {} hex characters", N * 2)))?;
                Ok(out)
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                <[u8; N]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                self.visit_bytes(&v)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(FixedVisitor::<N>)
        } else {
            deserializer.deserialize_bytes(FixedVisitor::<N>)
        }
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fixed_bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_bytes::deserialize(deserializer).map(Digest)
    }
}

/// A schema for a JSON string with length bounds and a pattern: how the OpenAPI document
/// describes the types whose JSON form is written by hand (digests, keys, signatures, codes
/// and ids).
#[cfg(feature = "openapi")]
pub(crate) fn string_schema(
    description: &str,
    min_length: usize,
    max_length: usize,
    pattern: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(min_length))
        .max_length(Some(max_length))
        .pattern(Some(pattern))
        .into()
}

/// A digest is 64 hex characters in JSON.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Digest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            "A SHA-256 digest: 32 bytes as 64 hex characters, written in lowercase (either case \
             is read).",
            64,
            64,
            "^[0-9a-fA-F]{64}$",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Digest {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256_is_the_known_value() {
        assert_eq!(
            Digest::sha256(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn domain_changes_the_hash() {
        let a = Digest::of(domain::EVENT, &[b"x"]);
        let b = Digest::of(domain::BLOCK, &[b"x"]);
        assert_ne!(a, b);
        assert_eq!(a, Digest::sha256(b"custody/event/v1x"));
    }

    #[test]
    fn hex_round_trip_and_bad_hex() {
        let d = Digest::sha256(b"abc");
        assert_eq!(Digest::from_hex(&d.to_hex()), Ok(d));
        assert!(Digest::from_hex("zz").is_err());
        assert!(Digest::from_hex(&"ab".repeat(31)).is_err());
    }
}
