//! The canonical binary encoding: the one place that knows the wire and disk format.
//!
//! Everything that is hashed or signed is encoded here with bincode 2's standard
//! configuration (little-endian, variable-length integers) through serde. Swapping the
//! format means changing this module and the golden hashes in its tests, nothing else.
//!
//! Decoding is strict in three ways, because ids are hashes of bytes and two encodings of one
//! value would give one event two ids:
//! - the input may be at most `size_bytes_max` long, and bincode's own limit stops a length
//!   prefix from claiming more memory than that;
//! - every input byte must be consumed;
//! - the bytes must re-encode to themselves (no overlong varints, no alternative forms).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest signed event, in canonical bytes. Reference-data tables (a whole HS nomenclature)
/// are the largest events we expect, at well under this.
pub const EVENT_SIZE_BYTES_MAX: usize = 1024 * 1024;
/// Largest block body, in canonical bytes.
pub const BLOCK_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest block header, commit certificate or other small record.
pub const RECORD_SIZE_BYTES_MAX: usize = 256 * 1024;

/// The bincode limit is a type-level constant; it is the largest of our limits, and each call
/// checks its own smaller limit on the input length first.
const BINCODE_LIMIT_BYTES: usize = BLOCK_SIZE_BYTES_MAX;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_LIMIT_BYTES>()
}

/// Why bytes were not a canonical encoding of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than the limit for this kind of object.
    #[error("input of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    TooLarge {
        /// Length of the input.
        size_bytes: usize,
        /// The limit that applied.
        size_bytes_max: usize,
    },
    /// bincode could not decode the bytes (truncated, bad tag, invalid UTF-8, length too large…).
    #[error("malformed bytes: {0}")]
    Malformed(#[source] crate::cause::Cause),
    /// The value decoded but did not use all of the input.
    #[error("{trailing_bytes} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left over.
        trailing_bytes: usize,
    },
    /// The bytes decode to a value whose canonical encoding is different.
    #[error("bytes are not the canonical encoding of the value")]
    NotCanonical,
}

/// Encodes a value canonically.
///
/// Encoding our own types cannot fail: they contain no maps with non-string keys, no
/// `serialize_any`-only constructs and no values beyond the limit. A failure is a bug.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match bincode::serde::encode_to_vec(value, config()) {
        Ok(bytes) => bytes,
        Err(error) => panic!("canonical encoding of an in-memory value failed: {error}"),
    }
}

/// Decodes a canonical encoding of `T` that is at most `size_bytes_max` long.
pub fn decode<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    size_bytes_max: usize,
) -> Result<T, CodecError> {
    assert!(size_bytes_max <= BINCODE_LIMIT_BYTES);
    if bytes.len() > size_bytes_max {
        return Err(CodecError::TooLarge {
            size_bytes: bytes.len(),
            size_bytes_max,
        });
    }
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|error| CodecError::Malformed(crate::cause::Cause::new(error)))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            trailing_bytes: bytes.len() - used,
        });
    }
    if encode(&value) != bytes {
        return Err(CodecError::NotCanonical);
    }
    Ok(value)
}

/// Where the value of type `T` at the start of `bytes` ends: the framing of a concatenation
/// of encodings (a batch of signed events sent as their canonical bytes, one after another).
///
/// Only the first `size_bytes_max` bytes are looked at, so a value longer than the limit does
/// not frame (`Malformed`), whatever follows it. Framing is not acceptance: each piece must
/// still go through [`decode`], which refuses trailing bytes and non-canonical forms.
pub fn prefix_len<T: DeserializeOwned>(
    bytes: &[u8],
    size_bytes_max: usize,
) -> Result<usize, CodecError> {
    assert!(size_bytes_max <= BINCODE_LIMIT_BYTES);
    let window = &bytes[..bytes.len().min(size_bytes_max)];
    let (_, used): (T, usize) = bincode::serde::decode_from_slice(window, config())
        .map_err(|error| CodecError::Malformed(crate::cause::Cause::new(error)))?;
    Ok(used)
}

/// How a signed event's canonical encoding ends: the signer (its length byte, 32, then 32
/// bytes) and the signature (its length byte, 64, then 64 bytes), after the body.
/// `docs/PROTOCOL.md` §4.1.
const SIGNED_EVENT_TRAILER_LEN: usize = 1 + 32 + 1 + 64;

/// The body of a signed event's canonical bytes: everything before the signer and the
/// signature, so the signing message is taken from the bytes without encoding the body again.
///
/// Checked in every build, not only in debug: `None` if the bytes do not end in the trailer's
/// two length bytes. Bytes that came from [`encode`] or [`decode`] of a signed event always do.
pub fn signed_event_body(bytes: &[u8]) -> Option<&[u8]> {
    let body_len = bytes.len().checked_sub(SIGNED_EVENT_TRAILER_LEN)?;
    let (body, trailer) = bytes.split_at(body_len);
    (trailer[0] == 32 && trailer[1 + 32] == 64).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_events_body_is_what_precedes_its_signer_and_signature() {
        let body = (String::from("body"), 7u64);
        let signed = (body.clone(), [3u8; 32].to_vec(), [4u8; 64].to_vec());
        let bytes = encode(&signed);
        assert_eq!(signed_event_body(&bytes), Some(encode(&body).as_slice()));
        assert_eq!(signed_event_body(&bytes[..bytes.len() - 1]), None);
        assert_eq!(signed_event_body(&[0; 10]), None);
    }

    #[test]
    fn a_concatenation_splits_at_each_values_end() {
        let first = encode(&(String::from("first"), 300u64));
        let second = encode(&(String::from("2nd"), 1u64));
        let mut both = first.clone();
        both.extend_from_slice(&second);
        assert_eq!(prefix_len::<(String, u64)>(&both, 100), Ok(first.len()));
        let rest = &both[first.len()..];
        assert_eq!(prefix_len::<(String, u64)>(rest, 100), Ok(second.len()));
        // A truncated value, an empty input and a value beyond the limit do not frame.
        for cut in [&rest[..rest.len() - 1], &[][..], &both[..]] {
            let limit = if cut.len() == both.len() { 4 } else { 100 };
            assert!(
                matches!(
                    prefix_len::<(String, u64)>(cut, limit),
                    Err(CodecError::Malformed(_))
                ),
                "{cut:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&(7u32, String::from("x")));
        bytes.push(0);
        assert_eq!(
            decode::<(u32, String)>(&bytes, 100),
            Err(CodecError::TrailingBytes { trailing_bytes: 1 })
        );
    }

    #[test]
    fn overlong_varint_is_not_canonical() {
        // 5 as a u16-tagged varint (0xFB, 5, 0) instead of the single byte 5.
        assert_eq!(decode::<u64>(&[5], 16), Ok(5));
        assert_eq!(
            decode::<u64>(&[0xFB, 5, 0], 16),
            Err(CodecError::NotCanonical)
        );
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> claiming 2^62 elements (varint tag 0xFD = u64 follows).
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(
            decode::<Vec<u8>>(&bytes, 64),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode::<String>(&bytes, 64),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Vec<u64>>(&bytes, 64),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let bytes = vec![0u8; 101];
        assert_eq!(
            decode::<Vec<u8>>(&bytes, 100),
            Err(CodecError::TooLarge {
                size_bytes: 101,
                size_bytes_max: 100
            })
        );
    }
}
