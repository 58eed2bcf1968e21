//! Blocks, headers and commit certificates.
//!
//! A header commits to its parent (`prev_hash`), to its own events (`events_root`, an
//! RFC 6962 root over their ids), to the whole log so far (`log_size`, `log_root`) and to the
//! state after it (`state_root`). A commit certificate holds precommit signatures of more than
//! two thirds of the voting power for the header's hash; it is what makes a block final.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, RECORD_SIZE_BYTES_MAX};
use crate::event::EncodedEvent;
use crate::genesis::Validator;
use crate::hash::{domain, Digest};
use crate::keys::{PublicKey, Signature};
use crate::merkle;
use crate::model::EventId;
use crate::time::Timestamp;

/// Most events in one block.
pub const BLOCK_EVENTS_MAX: usize = 10_000;

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockHeader {
    /// The chain id.
    pub chain_id: String,
    /// Height, starting at 1.
    pub height: u64,
    /// Hash of the previous header; the genesis hash for height 1.
    pub prev_hash: Digest,
    /// Block time, agreed by consensus; never before the parent's.
    pub time: Timestamp,
    /// Node key of the validator that proposed the block.
    pub proposer: PublicKey,
    /// Number of events in the block.
    pub event_count: u32,
    /// RFC 6962 root over the ids of this block's events, in order.
    pub events_root: Digest,
    /// Number of events in the log after this block.
    pub log_size: u64,
    /// RFC 6962 root over the ids of all events after this block.
    pub log_root: Digest,
    /// Link of the state digest chain after this block (see `state::state_root`).
    pub state_root: Digest,
    /// Root of the shipment map after this block: each shipment's id to the entry hash of
    /// its latest event (see `smt`).
    pub shipments_root: Digest,
}

impl BlockHeader {
    /// `SHA-256("custody/block/v1" || canonical header bytes)`.
    pub fn hash(&self) -> Digest {
        Digest::of(domain::BLOCK, &[&codec::encode(self)])
    }

    /// Decodes a stored header.
    pub fn decode(bytes: &[u8]) -> Result<BlockHeader, CodecError> {
        codec::decode(bytes, RECORD_SIZE_BYTES_MAX)
    }
}

/// A block: its header and its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The events, in log order.
    pub events: Vec<EncodedEvent>,
}

impl Block {
    /// The header's hash.
    pub fn hash(&self) -> Digest {
        self.header.hash()
    }
}

/// RFC 6962 root over a list of event ids (the leaf data is the 32-byte id).
pub fn events_root<'a>(ids: impl IntoIterator<Item = &'a EventId>) -> Digest {
    let mut log = merkle::MemoryLog::new();
    for id in ids {
        log.push(merkle::leaf_hash(id.as_bytes()));
    }
    log.root()
}

/// One validator's precommit signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitSignature {
    /// The validator's node key.
    pub validator: PublicKey,
    /// Signature over [`vote_message`] for the certificate's height, round and block hash.
    pub signature: Signature,
}

/// Proof that a block was decided: precommits for its hash by more than 2/3 of the power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitCertificate {
    /// Height decided.
    pub height: u64,
    /// Consensus round in which it was decided.
    pub round: u32,
    /// Hash of the decided header.
    pub block_hash: Digest,
    /// The precommits.
    pub signatures: Vec<CommitSignature>,
}

impl CommitCertificate {
    /// Decodes a stored certificate.
    pub fn decode(bytes: &[u8]) -> Result<CommitCertificate, CodecError> {
        codec::decode(bytes, RECORD_SIZE_BYTES_MAX)
    }
}

/// What a validator signs when it precommits a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteBody {
    /// The chain id.
    pub chain_id: String,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// The block hash voted for.
    pub block_hash: Digest,
}

/// The bytes a validator signs for a precommit: the vote domain, then the canonical body.
pub fn vote_message(chain_id: &str, height: u64, round: u32, block_hash: &Digest) -> Vec<u8> {
    let body = codec::encode(&VoteBody {
        chain_id: chain_id.to_owned(),
        height,
        round,
        block_hash: *block_hash,
    });
    let mut message = Vec::with_capacity(domain::VOTE.len() + body.len());
    message.extend_from_slice(domain::VOTE);
    message.extend_from_slice(&body);
    message
}

/// Why a certificate does not prove a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate is for another height or block.
    #[error("certificate is for height {cert_height} block {cert_hash}, not height {height} block {hash}")]
    WrongBlock {
        /// Height in the certificate.
        cert_height: u64,
        /// Hash in the certificate.
        cert_hash: Digest,
        /// Height expected.
        height: u64,
        /// Hash expected.
        hash: Digest,
    },
    /// A signer is not a validator, or signs twice.
    #[error("signature {index} is from {validator}, which is not a validator or already signed")]
    UnknownOrDuplicateSigner {
        /// Position in the certificate.
        index: usize,
        /// The key.
        validator: PublicKey,
    },
    /// A signature does not verify.
    #[error("signature {index} from validator {validator} does not verify")]
    BadSignature {
        /// Position in the certificate.
        index: usize,
        /// The key.
        validator: PublicKey,
    },
    /// Not enough power signed.
    #[error("signed power {signed} of {total} is not more than two thirds")]
    InsufficientPower {
        /// Power that signed.
        signed: u64,
        /// Total power.
        total: u64,
    },
}

/// Checks that `cert` proves the header with `hash` at `height` under `validators`.
pub fn verify_certificate(
    cert: &CommitCertificate,
    chain_id: &str,
    height: u64,
    hash: &Digest,
    validators: &[Validator],
) -> Result<(), CertificateError> {
    if cert.height != height || cert.block_hash != *hash {
        return Err(CertificateError::WrongBlock {
            cert_height: cert.height,
            cert_hash: cert.block_hash,
            height,
            hash: *hash,
        });
    }
    let total: u64 = validators.iter().map(|v| v.power).sum();
    let message = vote_message(chain_id, cert.height, cert.round, &cert.block_hash);
    let mut seen = BTreeSet::new();
    let mut signed: u64 = 0;
    for (index, sig) in cert.signatures.iter().enumerate() {
        let validator = validators
            .iter()
            .find(|v| v.key == sig.validator)
            .filter(|_| seen.insert(sig.validator))
            .ok_or(CertificateError::UnknownOrDuplicateSigner {
                index,
                validator: sig.validator,
            })?;
        validator
            .key
            .verify(&message, &sig.signature)
            .map_err(|_| CertificateError::BadSignature {
                index,
                validator: sig.validator,
            })?;
        signed += validator.power;
    }
    // More than two thirds, in integers: 3 * signed > 2 * total.
    if u128::from(signed) * 3 <= u128::from(total) * 2 {
        return Err(CertificateError::InsufficientPower { signed, total });
    }
    Ok(())
}
