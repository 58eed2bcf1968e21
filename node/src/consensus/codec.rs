//! The bytes Malachite sends to peers and writes to its write-ahead log, for our context.
//!
//! Malachite's types carry no serialisation of their own, so every type the engine needs to
//! move has a private "wire" mirror here: a plain serde struct or enum that holds only
//! integers, fixed-size keys, signatures, digests and length-prefixed bytes. A value is
//! converted to its mirror and encoded with the ledger's canonical codec; decoding runs the
//! other way and checks, on the way back, everything the mirror cannot express by its type
//! (a round is `-1` or a `u32`, a vote type is 0 or 1, a peer id is a canonical multihash).
//!
//! The mirrors are ours rather than derived from Malachite's structs so that the format only
//! changes when we decide it does: upgrading the engine cannot silently change what is on
//! the wire or in the WAL, and a new field in an engine type breaks the build here instead.
//!
//! Decoding treats every input as hostile, because gossip, sync and even a WAL copied from
//! elsewhere are. An input is refused before parsing if it is longer than the limit for its
//! kind, must be consumed exactly, and must be the canonical encoding of what it decodes to
//! (the ledger codec re-encodes and compares), so one message has exactly one encoding.
//! Nothing trusts a length prefix: byte strings and the header's chain id are copied out of
//! the input only once it is known to hold them, and sequences grow only as their elements
//! actually decode, so decoding allocates in proportion to the input, not to what it claims.
//! A proposal part holds at most a block's worth of events ([`BLOCK_EVENTS_MAX`]), which also
//! stops a message of empty events from costing far more memory than its size.
//!
//! Limits:
//! - [`STREAM_MSG_SIZE_BYTES_MAX`] (the block limit) for proposal parts and the stream
//!   messages that carry them, since a stream may carry a whole block's events;
//! - [`SYNC_RESPONSE_SIZE_BYTES_MAX`] (the block limit) for sync responses, which carry whole
//!   decided blocks;
//! - [`CONSENSUS_MSG_SIZE_BYTES_MAX`] (the ledger's record limit, 256 KiB) for everything else:
//!   votes, proposals (a header, not the events), certificates, proofs, sync status and
//!   requests. Certificates are the largest of these, at about 130 bytes per validator.
//!
//! Encoding applies the same limits, so that we never send or log a message that we, or any
//! peer running this code, would refuse to read back.

use std::ops::RangeInclusive;

use arc_malachitebft_app_channel::app::consensus::{
    LivenessMsg, ProposedValue, SignedConsensusMsg,
};
use arc_malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use arc_malachitebft_app_channel::app::types::core::{
    ExtendedCommitCertificate, ExtendedCommitSignature, NilOrVal, PolkaCertificate, PolkaSignature,
    Round, RoundCertificate, RoundCertificateType, RoundSignature, SignedMessage, ValidatorProof,
    Validity, VoteType,
};
use arc_malachitebft_app_channel::app::types::sync::{self, RawDecidedValue};
use arc_malachitebft_app_channel::app::types::PeerId;
// The sync request and response bodies are not re-exported by the app crates; naming them
// is the only way to build a `sync::Request` or `sync::Response` when decoding.
use arc_malachitebft_sync::{ValueRequest, ValueResponse};
use bytes::Bytes;
use custody_ledger::block::{BlockHeader, BLOCK_EVENTS_MAX};
use custody_ledger::codec::{self as ledger_codec, BLOCK_SIZE_BYTES_MAX, RECORD_SIZE_BYTES_MAX};
use custody_ledger::keys::{PublicKey, Signature};
use custody_ledger::{Digest, Timestamp};
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::context::{
    Address, BlockValue, CustodyContext, EventRef, Height, Proposal, ProposalPart, Vote,
};

/// Largest vote, proposal, certificate, validator proof, sync status or sync request: the
/// ledger's record limit, because none of them carries more than a header and one signature
/// per validator.
pub const CONSENSUS_MSG_SIZE_BYTES_MAX: usize = RECORD_SIZE_BYTES_MAX;
/// Largest proposal part or stream message: the block limit, because nothing stops a
/// proposer from streaming a whole block's events in one part.
pub const STREAM_MSG_SIZE_BYTES_MAX: usize = BLOCK_SIZE_BYTES_MAX;
/// Largest sync response: the block limit, the most the ledger codec will decode at once. A
/// batch of blocks that would not fit is cut short by the engine, which sizes each value with
/// [`HasEncodedLen`] against its own (smaller, 10 MiB by default) response limit.
pub const SYNC_RESPONSE_SIZE_BYTES_MAX: usize = BLOCK_SIZE_BYTES_MAX;

/// The codec for everything Malachite sends or logs in our context.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustodyCodec;

/// Why bytes are not a message, or a message cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not the canonical encoding of a wire message (too long, truncated,
    /// trailing bytes, a bad tag, a non-minimal integer…).
    #[error("not a canonical message: {0}")]
    Frame(#[from] ledger_codec::CodecError),
    /// The encoded message is longer than the receiver accepts, so it is not sent.
    #[error("encoded message of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    TooLarge {
        /// Length of the encoding.
        size_bytes: usize,
        /// The limit for this kind of message.
        size_bytes_max: usize,
    },
    /// A round that is neither nil (`-1`) nor a `u32`.
    #[error("round {0} is neither -1 (nil) nor a 32-bit round number")]
    Round(i64),
    /// A vote type other than prevote (0) or precommit (1).
    #[error("unknown vote type {0}")]
    VoteType(u8),
    /// A round certificate type other than skip (0) or precommit (1).
    #[error("unknown round certificate type {0}")]
    RoundCertificateType(u8),
    /// Bytes that are not the canonical form of a libp2p peer id.
    #[error("invalid peer id: {0}")]
    PeerId(String),
    /// A proposal part with more events than a block may hold, so it is not sent.
    #[error("a proposal part of {count} events exceeds the block limit of {count_max}")]
    TooManyEvents {
        /// Events in the part.
        count: usize,
        /// The most a block holds.
        count_max: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Framing shared by every message type.
// ---------------------------------------------------------------------------------------------

/// A wire mirror: the serde form of one engine type, and the conversions both ways.
trait Wire: Serialize + DeserializeOwned {
    /// The engine type this mirrors.
    type Value;
    /// Refuses, before encoding, a value the decoder would refuse for a reason other than
    /// its size; most values have no such reason.
    fn check_encodable(_value: &Self::Value) -> Result<(), CodecError> {
        Ok(())
    }
    /// Builds the mirror.
    fn from_value(value: &Self::Value) -> Self;
    /// Rebuilds the engine value, checking what the mirror's types cannot.
    fn into_value(self) -> Result<Self::Value, CodecError>;
}

/// Encodes through the mirror `W`, refusing what a receiver applying `size_bytes_max` would
/// refuse, so that the failure shows up at the sender rather than as silence on the network.
fn encode_wire<W: Wire>(value: &W::Value, size_bytes_max: usize) -> Result<Bytes, CodecError> {
    W::check_encodable(value)?;
    let bytes = ledger_codec::encode(&W::from_value(value));
    if bytes.len() > size_bytes_max {
        return Err(CodecError::TooLarge {
            size_bytes: bytes.len(),
            size_bytes_max,
        });
    }
    Ok(Bytes::from(bytes))
}

/// Decodes through the mirror `W`: the ledger codec checks the frame (size, exact length,
/// canonical form), the mirror checks the values.
fn decode_wire<W: Wire>(bytes: &[u8], size_bytes_max: usize) -> Result<W::Value, CodecError> {
    ledger_codec::decode::<W>(bytes, size_bytes_max)?.into_value()
}

/// Implements `Codec<$value>` through the mirror `$wire` under the limit `$limit`.
macro_rules! codec_via_wire {
    ($value:ty, $wire:ty, $limit:expr) => {
        impl Codec<$value> for CustodyCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$value, CodecError> {
                decode_wire::<$wire>(&bytes, $limit)
            }

            fn encode(&self, msg: &$value) -> Result<Bytes, CodecError> {
                encode_wire::<$wire>(msg, $limit)
            }
        }
    };
}

codec_via_wire!(ProposalPart, WirePart, STREAM_MSG_SIZE_BYTES_MAX);
codec_via_wire!(
    StreamMessage<ProposalPart>,
    WireStreamMessage,
    STREAM_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    SignedConsensusMsg<CustodyContext>,
    WireConsensusMsg,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    LivenessMsg<CustodyContext>,
    WireLivenessMsg,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    ValidatorProof<CustodyContext>,
    WireValidatorProof,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    PolkaCertificate<CustodyContext>,
    WirePolkaCertificate,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    ProposedValue<CustodyContext>,
    WireProposedValue,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    sync::Status<CustodyContext>,
    WireStatus,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    sync::Request<CustodyContext>,
    WireRequest,
    CONSENSUS_MSG_SIZE_BYTES_MAX
);
codec_via_wire!(
    sync::Response<CustodyContext>,
    WireResponse,
    SYNC_RESPONSE_SIZE_BYTES_MAX
);

impl HasEncodedLen<sync::Response<CustodyContext>> for CustodyCodec {
    /// The length of the encoding, even past the limit: the engine asks in order to decide
    /// how many values fit in a response, and an honest size lets it stop before the limit
    /// rather than fail on the value that crosses it.
    fn encoded_len(&self, msg: &sync::Response<CustodyContext>) -> Result<usize, CodecError> {
        Ok(ledger_codec::encode(&WireResponse::from_value(msg)).len())
    }
}

// ---------------------------------------------------------------------------------------------
// Leaf encodings.
// ---------------------------------------------------------------------------------------------

/// A length-prefixed byte string that decodes by borrowing from the input, so that its
/// length prefix cannot make the decoder allocate more than the input holds. (bincode's
/// owned `Vec<u8>` and `String` decoding allocates the claimed length before reading.)
#[derive(Debug, Clone, PartialEq, Eq)]
struct Blob(Bytes);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl Visitor<'_> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(Bytes::from(v)))
            }
        }
        deserializer.deserialize_bytes(BlobVisitor)
    }
}

impl Blob {
    fn from_slice(bytes: &[u8]) -> Blob {
        Blob(Bytes::copy_from_slice(bytes))
    }
}

/// A length-prefixed UTF-8 string that decodes by borrowing, for the same reason as [`Blob`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Text(String);

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a UTF-8 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A sequence of at most `MAX` elements, encoded like a `Vec`, that decodes without trusting
/// its length prefix: it grows only as elements actually decode (each consuming input), where
/// serde's `Vec` would reserve up to 1 MiB on the prefix's word alone, and it stops at `MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct List<T, const MAX: usize = { usize::MAX }>(Vec<T>);

impl<T, const MAX: usize> FromIterator<T> for List<T, MAX> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        List(iter.into_iter().collect())
    }
}

impl<T, const MAX: usize> IntoIterator for List<T, MAX> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: Serialize, const MAX: usize> Serialize for List<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.0)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for List<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T, const MAX: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for ListVisitor<T, MAX> {
            type Value = List<T, MAX>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a sequence of at most {MAX} elements")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                if let Some(claimed) = seq.size_hint().filter(|&claimed| claimed > MAX) {
                    return Err(serde::de::Error::invalid_length(claimed, &self));
                }
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(serde::de::Error::invalid_length(
                            MAX.saturating_add(1),
                            &self,
                        ));
                    }
                    items.push(item);
                }
                Ok(List(items))
            }
        }
        deserializer.deserialize_seq(ListVisitor(std::marker::PhantomData))
    }
}

/// Rounds travel as Malachite's own integer form, `-1` for nil.
fn round_to_wire(round: Round) -> i64 {
    round.as_i64()
}

/// Checked by hand: `Round::from(i64)` panics above `u32::MAX` and maps every negative
/// number to nil, which would give nil many encodings.
fn round_from_wire(round: i64) -> Result<Round, CodecError> {
    if round == -1 {
        return Ok(Round::Nil);
    }
    u32::try_from(round)
        .map(Round::Some)
        .map_err(|_| CodecError::Round(round))
}

/// Vote types travel as one byte rather than as a serde enum, so that the mapping is written
/// down here and not left to the order of Malachite's variants.
fn vote_type_to_wire(vote_type: VoteType) -> u8 {
    match vote_type {
        VoteType::Prevote => 0,
        VoteType::Precommit => 1,
    }
}

fn vote_type_from_wire(vote_type: u8) -> Result<VoteType, CodecError> {
    match vote_type {
        0 => Ok(VoteType::Prevote),
        1 => Ok(VoteType::Precommit),
        other => Err(CodecError::VoteType(other)),
    }
}

/// A nil vote is an absent value id.
fn nil_or_val_to_wire(value: &NilOrVal<Digest>) -> Option<Digest> {
    match value {
        NilOrVal::Nil => None,
        NilOrVal::Val(id) => Some(*id),
    }
}

fn nil_or_val_from_wire(value: Option<Digest>) -> NilOrVal<Digest> {
    value.map_or(NilOrVal::Nil, NilOrVal::Val)
}

/// Peer ids travel as libp2p's multihash bytes. Re-encoding must give the same bytes, so
/// that a peer id, like everything else, has one encoding.
fn peer_id_from_wire(bytes: &[u8]) -> Result<PeerId, CodecError> {
    let peer = PeerId::from_bytes(bytes).map_err(|error| CodecError::PeerId(error.to_string()))?;
    if peer.to_bytes() != bytes {
        return Err(CodecError::PeerId(
            "not the canonical multihash encoding".into(),
        ));
    }
    Ok(peer)
}

/// A block header, field for field, in the ledger's order, so its bytes are exactly the
/// ledger's header encoding; only the chain id decodes differently (see [`Text`]). The
/// destructuring in `from_header` makes a new header field a build error here.
#[derive(Debug, Serialize, Deserialize)]
struct WireHeader {
    chain_id: Text,
    height: u64,
    prev_hash: Digest,
    time: Timestamp,
    proposer: PublicKey,
    event_count: u32,
    events_root: Digest,
    log_size: u64,
    log_root: Digest,
    state_root: Digest,
    shipments_root: Digest,
}

impl WireHeader {
    fn from_header(header: &BlockHeader) -> WireHeader {
        let BlockHeader {
            chain_id,
            height,
            prev_hash,
            time,
            proposer,
            event_count,
            events_root,
            log_size,
            log_root,
            state_root,
            shipments_root,
        } = header;
        WireHeader {
            chain_id: Text(chain_id.clone()),
            height: *height,
            prev_hash: *prev_hash,
            time: *time,
            proposer: *proposer,
            event_count: *event_count,
            events_root: *events_root,
            log_size: *log_size,
            log_root: *log_root,
            state_root: *state_root,
            shipments_root: *shipments_root,
        }
    }

    fn into_header(self) -> BlockHeader {
        BlockHeader {
            chain_id: self.chain_id.0,
            height: self.height,
            prev_hash: self.prev_hash,
            time: self.time,
            proposer: self.proposer,
            event_count: self.event_count,
            events_root: self.events_root,
            log_size: self.log_size,
            log_root: self.log_root,
            state_root: self.state_root,
            shipments_root: self.shipments_root,
        }
    }

    /// The value's hash is recomputed from the header rather than sent, so a peer cannot
    /// pair a header with someone else's hash.
    fn into_value(self) -> BlockValue {
        BlockValue::new(self.into_header())
    }
}

// ---------------------------------------------------------------------------------------------
// Votes and proposals.
// ---------------------------------------------------------------------------------------------

/// A vote, with every field the signature covers plus the (unused) extension.
#[derive(Debug, Serialize, Deserialize)]
struct WireVote {
    vote_type: u8,
    height: u64,
    round: i64,
    value: Option<Digest>,
    validator: PublicKey,
    /// Our extension is `()`, so a signed extension is just its signature.
    extension: Option<Signature>,
}

impl WireVote {
    fn from_vote(vote: &Vote) -> WireVote {
        WireVote {
            vote_type: vote_type_to_wire(vote.vote_type),
            height: vote.height.0,
            round: round_to_wire(vote.round),
            value: nil_or_val_to_wire(&vote.value),
            validator: vote.validator.0,
            extension: vote.extension.as_ref().map(|extension| extension.signature),
        }
    }

    fn into_vote(self) -> Result<Vote, CodecError> {
        Ok(Vote {
            vote_type: vote_type_from_wire(self.vote_type)?,
            height: Height(self.height),
            round: round_from_wire(self.round)?,
            value: nil_or_val_from_wire(self.value),
            validator: Address(self.validator),
            extension: self
                .extension
                .map(|signature| SignedMessage::new((), signature)),
        })
    }
}

/// A vote and its signature; the signature is checked by the verifier, not here.
#[derive(Debug, Serialize, Deserialize)]
struct WireSignedVote {
    vote: WireVote,
    signature: Signature,
}

impl WireSignedVote {
    fn from_signed(signed: &SignedMessage<CustodyContext, Vote>) -> WireSignedVote {
        WireSignedVote {
            vote: WireVote::from_vote(&signed.message),
            signature: signed.signature,
        }
    }

    fn into_signed(self) -> Result<SignedMessage<CustodyContext, Vote>, CodecError> {
        Ok(SignedMessage::new(self.vote.into_vote()?, self.signature))
    }
}

/// A proposal carries the header only; the events follow as proposal parts.
#[derive(Debug, Serialize, Deserialize)]
struct WireProposal {
    height: u64,
    round: i64,
    header: WireHeader,
    pol_round: i64,
    proposer: PublicKey,
}

/// A proposal and its proposer's signature.
#[derive(Debug, Serialize, Deserialize)]
struct WireSignedProposal {
    proposal: WireProposal,
    signature: Signature,
}

impl WireSignedProposal {
    fn from_signed(signed: &SignedMessage<CustodyContext, Proposal>) -> WireSignedProposal {
        let proposal = &signed.message;
        WireSignedProposal {
            proposal: WireProposal {
                height: proposal.height.0,
                round: round_to_wire(proposal.round),
                header: WireHeader::from_header(&proposal.value.header),
                pol_round: round_to_wire(proposal.pol_round),
                proposer: proposal.proposer.0,
            },
            signature: signed.signature,
        }
    }

    fn into_signed(self) -> Result<SignedMessage<CustodyContext, Proposal>, CodecError> {
        let wire = self.proposal;
        let proposal = Proposal {
            height: Height(wire.height),
            round: round_from_wire(wire.round)?,
            value: wire.header.into_value(),
            pol_round: round_from_wire(wire.pol_round)?,
            proposer: Address(wire.proposer),
        };
        Ok(SignedMessage::new(proposal, self.signature))
    }
}

/// A signed vote or proposal, on the consensus channel and in the WAL.
#[derive(Debug, Serialize, Deserialize)]
enum WireConsensusMsg {
    Vote(WireSignedVote),
    Proposal(WireSignedProposal),
}

impl Wire for WireConsensusMsg {
    type Value = SignedConsensusMsg<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        match value {
            SignedConsensusMsg::Vote(vote) => {
                WireConsensusMsg::Vote(WireSignedVote::from_signed(vote))
            }
            SignedConsensusMsg::Proposal(proposal) => {
                WireConsensusMsg::Proposal(WireSignedProposal::from_signed(proposal))
            }
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(match self {
            WireConsensusMsg::Vote(vote) => SignedConsensusMsg::Vote(vote.into_signed()?),
            WireConsensusMsg::Proposal(proposal) => {
                SignedConsensusMsg::Proposal(proposal.into_signed()?)
            }
        })
    }
}

/// The application's verdict on a proposal, as the WAL records it for replay.
#[derive(Debug, Serialize, Deserialize)]
struct WireProposedValue {
    height: u64,
    round: i64,
    valid_round: i64,
    proposer: PublicKey,
    header: WireHeader,
    valid: bool,
}

impl Wire for WireProposedValue {
    type Value = ProposedValue<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        WireProposedValue {
            height: value.height.0,
            round: round_to_wire(value.round),
            valid_round: round_to_wire(value.valid_round),
            proposer: value.proposer.0,
            header: WireHeader::from_header(&value.value.header),
            valid: value.validity.is_valid(),
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(ProposedValue {
            height: Height(self.height),
            round: round_from_wire(self.round)?,
            valid_round: round_from_wire(self.valid_round)?,
            proposer: Address(self.proposer),
            value: self.header.into_value(),
            validity: Validity::from_bool(self.valid),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates and liveness messages.
// ---------------------------------------------------------------------------------------------

/// One validator's signature in a polka certificate.
#[derive(Debug, Serialize, Deserialize)]
struct WireSignature {
    address: PublicKey,
    signature: Signature,
}

/// Prevotes from more than two thirds for one value in one round, as a lock's justification.
#[derive(Debug, Serialize, Deserialize)]
struct WirePolkaCertificate {
    height: u64,
    round: i64,
    value_id: Digest,
    signatures: List<WireSignature>,
}

impl Wire for WirePolkaCertificate {
    type Value = PolkaCertificate<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        WirePolkaCertificate {
            height: value.height.0,
            round: round_to_wire(value.round),
            value_id: value.value_id,
            signatures: value
                .polka_signatures
                .iter()
                .map(|s| WireSignature {
                    address: s.address.0,
                    signature: s.signature,
                })
                .collect(),
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(PolkaCertificate {
            height: Height(self.height),
            round: round_from_wire(self.round)?,
            value_id: self.value_id,
            polka_signatures: self
                .signatures
                .into_iter()
                .map(|s| PolkaSignature::new(Address(s.address), s.signature))
                .collect(),
        })
    }
}

/// One vote in a round certificate: its type and value vary, unlike in a polka.
#[derive(Debug, Serialize, Deserialize)]
struct WireRoundSignature {
    vote_type: u8,
    value_id: Option<Digest>,
    address: PublicKey,
    signature: Signature,
}

/// Votes that let a lagging validator skip to a later round; the type travels as one byte
/// for the same reason as the vote type.
#[derive(Debug, Serialize, Deserialize)]
struct WireRoundCertificate {
    height: u64,
    round: i64,
    cert_type: u8,
    signatures: List<WireRoundSignature>,
}

impl WireRoundCertificate {
    fn from_certificate(certificate: &RoundCertificate<CustodyContext>) -> WireRoundCertificate {
        WireRoundCertificate {
            height: certificate.height.0,
            round: round_to_wire(certificate.round),
            cert_type: match certificate.cert_type {
                RoundCertificateType::Skip => 0,
                RoundCertificateType::Precommit => 1,
            },
            signatures: certificate
                .round_signatures
                .iter()
                .map(|s| WireRoundSignature {
                    vote_type: vote_type_to_wire(s.vote_type),
                    value_id: nil_or_val_to_wire(&s.value_id),
                    address: s.address.0,
                    signature: s.signature,
                })
                .collect(),
        }
    }

    fn into_certificate(self) -> Result<RoundCertificate<CustodyContext>, CodecError> {
        let cert_type = match self.cert_type {
            0 => RoundCertificateType::Skip,
            1 => RoundCertificateType::Precommit,
            other => return Err(CodecError::RoundCertificateType(other)),
        };
        let round_signatures = self
            .signatures
            .into_iter()
            .map(|s| {
                Ok(RoundSignature::new(
                    vote_type_from_wire(s.vote_type)?,
                    nil_or_val_from_wire(s.value_id),
                    Address(s.address),
                    s.signature,
                ))
            })
            .collect::<Result<Vec<_>, CodecError>>()?;
        Ok(RoundCertificate {
            height: Height(self.height),
            round: round_from_wire(self.round)?,
            cert_type,
            round_signatures,
        })
    }
}

/// What validators rebroadcast to keep a stalled round moving.
#[derive(Debug, Serialize, Deserialize)]
enum WireLivenessMsg {
    Vote(WireSignedVote),
    PolkaCertificate(WirePolkaCertificate),
    SkipRoundCertificate(WireRoundCertificate),
}

impl Wire for WireLivenessMsg {
    type Value = LivenessMsg<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        match value {
            LivenessMsg::Vote(vote) => WireLivenessMsg::Vote(WireSignedVote::from_signed(vote)),
            LivenessMsg::PolkaCertificate(certificate) => {
                WireLivenessMsg::PolkaCertificate(WirePolkaCertificate::from_value(certificate))
            }
            LivenessMsg::SkipRoundCertificate(certificate) => {
                WireLivenessMsg::SkipRoundCertificate(WireRoundCertificate::from_certificate(
                    certificate,
                ))
            }
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(match self {
            WireLivenessMsg::Vote(vote) => LivenessMsg::Vote(vote.into_signed()?),
            WireLivenessMsg::PolkaCertificate(certificate) => {
                LivenessMsg::PolkaCertificate(certificate.into_value()?)
            }
            WireLivenessMsg::SkipRoundCertificate(certificate) => {
                LivenessMsg::SkipRoundCertificate(certificate.into_certificate()?)
            }
        })
    }
}

/// A validator's signature binding its consensus key to its libp2p peer id. Both are kept
/// as the raw bytes the engine signed over; the verifier, not the codec, judges them.
#[derive(Debug, Serialize, Deserialize)]
struct WireValidatorProof {
    public_key: Blob,
    peer_id: Blob,
    signature: Signature,
}

impl Wire for WireValidatorProof {
    type Value = ValidatorProof<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        WireValidatorProof {
            public_key: Blob::from_slice(&value.public_key),
            peer_id: Blob::from_slice(&value.peer_id),
            signature: value.signature,
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(ValidatorProof::new(
            Vec::from(self.public_key.0),
            Vec::from(self.peer_id.0),
            self.signature,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Proposal streams.
// ---------------------------------------------------------------------------------------------

/// One proposal part. The header is boxed only to keep the enum small in memory; a box
/// encodes exactly as what it holds.
#[derive(Debug, Serialize, Deserialize)]
enum WirePart {
    Init {
        height: u64,
        round: i64,
        pol_round: i64,
        proposer: PublicKey,
        header: Box<WireHeader>,
    },
    /// At most a block's worth of events, which also keeps a flood of empty events (two
    /// input bytes each) from costing far more memory than the input.
    Events(List<WireEventRef, BLOCK_EVENTS_MAX>),
    Fin {
        signature: Signature,
    },
}

/// One event of a proposal part: named by id, or carried as canonical bytes.
#[derive(Debug, Serialize, Deserialize)]
enum WireEventRef {
    Id(Digest),
    Body(Blob),
}

impl WireEventRef {
    fn from_ref(event: &EventRef) -> WireEventRef {
        match event {
            EventRef::Id(id) => WireEventRef::Id(*id),
            EventRef::Body(bytes) => WireEventRef::Body(Blob::from_slice(bytes)),
        }
    }

    fn into_ref(self) -> EventRef {
        match self {
            WireEventRef::Id(id) => EventRef::Id(id),
            WireEventRef::Body(bytes) => EventRef::Body(Vec::from(bytes.0)),
        }
    }
}

impl Wire for WirePart {
    type Value = ProposalPart;

    fn check_encodable(value: &ProposalPart) -> Result<(), CodecError> {
        match value {
            ProposalPart::Events(events) if events.len() > BLOCK_EVENTS_MAX => {
                Err(CodecError::TooManyEvents {
                    count: events.len(),
                    count_max: BLOCK_EVENTS_MAX,
                })
            }
            _ => Ok(()),
        }
    }

    fn from_value(value: &Self::Value) -> Self {
        match value {
            ProposalPart::Init {
                height,
                round,
                pol_round,
                proposer,
                header,
            } => WirePart::Init {
                height: height.0,
                round: round_to_wire(*round),
                pol_round: round_to_wire(*pol_round),
                proposer: proposer.0,
                header: Box::new(WireHeader::from_header(header)),
            },
            ProposalPart::Events(events) => {
                WirePart::Events(events.iter().map(WireEventRef::from_ref).collect())
            }
            ProposalPart::Fin { signature } => WirePart::Fin {
                signature: *signature,
            },
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(match self {
            WirePart::Init {
                height,
                round,
                pol_round,
                proposer,
                header,
            } => ProposalPart::Init {
                height: Height(height),
                round: round_from_wire(round)?,
                pol_round: round_from_wire(pol_round)?,
                proposer: Address(proposer),
                header: header.into_header(),
            },
            WirePart::Events(events) => {
                ProposalPart::Events(events.into_iter().map(WireEventRef::into_ref).collect())
            }
            WirePart::Fin { signature } => ProposalPart::Fin { signature },
        })
    }
}

/// A stream message either carries a part or closes the stream.
#[derive(Debug, Serialize, Deserialize)]
enum WireStreamContent {
    Data(WirePart),
    Fin,
}

/// One message of a proposal stream. The stream id is the proposer's own opaque bytes.
#[derive(Debug, Serialize, Deserialize)]
struct WireStreamMessage {
    stream_id: Blob,
    sequence: u64,
    content: WireStreamContent,
}

impl Wire for WireStreamMessage {
    type Value = StreamMessage<ProposalPart>;

    fn check_encodable(value: &Self::Value) -> Result<(), CodecError> {
        match &value.content {
            StreamContent::Data(part) => WirePart::check_encodable(part),
            StreamContent::Fin => Ok(()),
        }
    }

    fn from_value(value: &Self::Value) -> Self {
        WireStreamMessage {
            stream_id: Blob(value.stream_id.to_bytes()),
            sequence: value.sequence,
            content: match &value.content {
                StreamContent::Data(part) => WireStreamContent::Data(WirePart::from_value(part)),
                StreamContent::Fin => WireStreamContent::Fin,
            },
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        let content = match self.content {
            WireStreamContent::Data(part) => StreamContent::Data(part.into_value()?),
            WireStreamContent::Fin => StreamContent::Fin,
        };
        Ok(StreamMessage::new(
            StreamId::new(self.stream_id.0),
            self.sequence,
            content,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Value sync.
// ---------------------------------------------------------------------------------------------

/// A peer's announcement of the heights it can serve.
#[derive(Debug, Serialize, Deserialize)]
struct WireStatus {
    peer_id: Blob,
    tip_height: u64,
    history_min_height: u64,
}

impl Wire for WireStatus {
    type Value = sync::Status<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        WireStatus {
            peer_id: Blob(Bytes::from(value.peer_id.to_bytes())),
            tip_height: value.tip_height.0,
            history_min_height: value.history_min_height.0,
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        Ok(sync::Status {
            peer_id: peer_id_from_wire(&self.peer_id.0)?,
            tip_height: Height(self.tip_height),
            history_min_height: Height(self.history_min_height),
        })
    }
}

/// A request for the decided values in an inclusive height range. The range is carried as
/// asked, even if empty or reversed: refusing it is the sync protocol's decision, and it
/// reports it as such to the peer.
#[derive(Debug, Serialize, Deserialize)]
enum WireRequest {
    Values { first: u64, last: u64 },
}

impl Wire for WireRequest {
    type Value = sync::Request<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        match value {
            sync::Request::ValueRequest(request) => WireRequest::Values {
                first: request.range.start().0,
                last: request.range.end().0,
            },
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        match self {
            WireRequest::Values { first, last } => Ok(sync::Request::ValueRequest(
                ValueRequest::new(RangeInclusive::new(Height(first), Height(last))),
            )),
        }
    }
}

/// One precommit in the certificate that comes with a synced value; our extension is `()`,
/// so an attached extension is just its signature.
#[derive(Debug, Serialize, Deserialize)]
struct WireCommitSignature {
    address: PublicKey,
    signature: Signature,
    extension: Option<Signature>,
}

/// The commit certificate of a synced value.
#[derive(Debug, Serialize, Deserialize)]
struct WireCommitCertificate {
    height: u64,
    round: i64,
    value_id: Digest,
    signatures: List<WireCommitSignature>,
}

impl WireCommitCertificate {
    fn from_certificate(
        certificate: &ExtendedCommitCertificate<CustodyContext>,
    ) -> WireCommitCertificate {
        WireCommitCertificate {
            height: certificate.height.0,
            round: round_to_wire(certificate.round),
            value_id: certificate.value_id,
            signatures: certificate
                .commit_signatures
                .iter()
                .map(|s| WireCommitSignature {
                    address: s.address.0,
                    signature: s.signature,
                    extension: s.extension.as_ref().map(|extension| extension.signature),
                })
                .collect(),
        }
    }

    fn into_certificate(self) -> Result<ExtendedCommitCertificate<CustodyContext>, CodecError> {
        Ok(ExtendedCommitCertificate {
            height: Height(self.height),
            round: round_from_wire(self.round)?,
            value_id: self.value_id,
            commit_signatures: self
                .signatures
                .into_iter()
                .map(|s| {
                    ExtendedCommitSignature::new(
                        Address(s.address),
                        s.signature,
                        s.extension
                            .map(|signature| SignedMessage::new((), signature)),
                    )
                })
                .collect(),
        })
    }
}

/// A decided value as the application stored it, with the certificate that decided it.
#[derive(Debug, Serialize, Deserialize)]
struct WireDecidedValue {
    value_bytes: Blob,
    certificate: WireCommitCertificate,
}

/// Decided values from `start_height` on, in height order.
#[derive(Debug, Serialize, Deserialize)]
enum WireResponse {
    Values {
        start_height: u64,
        values: List<WireDecidedValue>,
    },
}

impl Wire for WireResponse {
    type Value = sync::Response<CustodyContext>;

    fn from_value(value: &Self::Value) -> Self {
        match value {
            sync::Response::ValueResponse(response) => WireResponse::Values {
                start_height: response.start_height.0,
                values: response
                    .values
                    .iter()
                    .map(|value| WireDecidedValue {
                        value_bytes: Blob(value.value_bytes.clone()),
                        certificate: WireCommitCertificate::from_certificate(&value.certificate),
                    })
                    .collect(),
            },
        }
    }

    fn into_value(self) -> Result<Self::Value, CodecError> {
        match self {
            WireResponse::Values {
                start_height,
                values,
            } => {
                let values = values
                    .into_iter()
                    .map(|value| {
                        Ok(RawDecidedValue::new(
                            value.value_bytes.0,
                            value.certificate.into_certificate()?,
                        ))
                    })
                    .collect::<Result<Vec<_>, CodecError>>()?;
                Ok(sync::Response::ValueResponse(ValueResponse::new(
                    Height(start_height),
                    values,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::sync::{Arc, OnceLock};

    use arc_malachitebft_app_channel::app::consensus::Input;
    use arc_malachitebft_app_channel::app::engine::wal::{decode_entry, encode_entry};
    use arc_malachitebft_app_channel::app::types::codec::{ConsensusCodec, SyncCodec, WalCodec};
    use arc_malachitebft_app_channel::app::types::core::{ValueOrigin, VoteExtensionScope};
    use arc_malachitebft_signing::{Signer, VerificationResult, Verifier};
    use custody_ledger::chain::build_block;
    use custody_ledger::keys::Keypair;
    use custody_ledger::rules::NoRules;
    use custody_ledger::store::MemoryStore;
    use custody_ledger::testkit::{TestNet, CHAIN_ID, GENESIS_TIME};
    use proptest::prelude::*;

    use super::*;
    use crate::consensus::signing::{parts_message, CustodySigner, CustodyVerifier};

    type SignedVote = SignedMessage<CustodyContext, Vote>;

    fn engine_codec<C>()
    where
        C: ConsensusCodec<CustodyContext> + SyncCodec<CustodyContext> + WalCodec<CustodyContext>,
    {
    }

    #[test]
    fn custody_codec_meets_every_engine_bound() {
        engine_codec::<CustodyCodec>();
    }

    fn encode<T>(value: &T) -> Result<Bytes, CodecError>
    where
        CustodyCodec: Codec<T, Error = CodecError>,
    {
        <CustodyCodec as Codec<T>>::encode(&CustodyCodec, value)
    }

    fn decode<T>(bytes: impl Into<Bytes>) -> Result<T, CodecError>
    where
        CustodyCodec: Codec<T, Error = CodecError>,
    {
        <CustodyCodec as Codec<T>>::decode(&CustodyCodec, bytes.into())
    }

    /// Decodes and, if that succeeds, encodes again: a decoder that accepts bytes must
    /// accept exactly the bytes it would produce.
    fn reencode<T>(bytes: Bytes) -> Result<Bytes, CodecError>
    where
        CustodyCodec: Codec<T, Error = CodecError>,
    {
        encode(&decode::<T>(bytes)?)
    }

    type Reencoder = fn(Bytes) -> Result<Bytes, CodecError>;

    /// Every decoder, with the input limit it should apply.
    const DECODERS: &[(&str, Reencoder, usize)] = &[
        (
            "proposal part",
            reencode::<ProposalPart>,
            STREAM_MSG_SIZE_BYTES_MAX,
        ),
        (
            "stream message",
            reencode::<StreamMessage<ProposalPart>>,
            STREAM_MSG_SIZE_BYTES_MAX,
        ),
        (
            "consensus message",
            reencode::<SignedConsensusMsg<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "liveness message",
            reencode::<LivenessMsg<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "validator proof",
            reencode::<ValidatorProof<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "polka certificate",
            reencode::<PolkaCertificate<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "proposed value",
            reencode::<ProposedValue<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "sync status",
            reencode::<sync::Status<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "sync request",
            reencode::<sync::Request<CustodyContext>>,
            CONSENSUS_MSG_SIZE_BYTES_MAX,
        ),
        (
            "sync response",
            reencode::<sync::Response<CustodyContext>>,
            SYNC_RESPONSE_SIZE_BYTES_MAX,
        ),
    ];

    /// Realistic values of every type, built once: four validators voting on a real block.
    struct Samples {
        header: BlockHeader,
        parts: Vec<ProposalPart>,
        streams: Vec<StreamMessage<ProposalPart>>,
        consensus: Vec<SignedConsensusMsg<CustodyContext>>,
        liveness: Vec<LivenessMsg<CustodyContext>>,
        proofs: Vec<ValidatorProof<CustodyContext>>,
        polkas: Vec<PolkaCertificate<CustodyContext>>,
        proposed: Vec<ProposedValue<CustodyContext>>,
        statuses: Vec<sync::Status<CustodyContext>>,
        requests: Vec<sync::Request<CustodyContext>>,
        responses: Vec<sync::Response<CustodyContext>>,
    }

    impl Samples {
        /// Each sample's encoding, tagged with the index of its decoder in [`DECODERS`].
        fn encodings(&self) -> Vec<(usize, Bytes)> {
            fn all<T>(index: usize, values: &[T], out: &mut Vec<(usize, Bytes)>)
            where
                CustodyCodec: Codec<T, Error = CodecError>,
            {
                out.extend(
                    values
                        .iter()
                        .map(|v| (index, encode(v).expect("samples encode"))),
                );
            }
            let mut out = Vec::new();
            all(0, &self.parts, &mut out);
            all(1, &self.streams, &mut out);
            all(2, &self.consensus, &mut out);
            all(3, &self.liveness, &mut out);
            all(4, &self.proofs, &mut out);
            all(5, &self.polkas, &mut out);
            all(6, &self.proposed, &mut out);
            all(7, &self.statuses, &mut out);
            all(8, &self.requests, &mut out);
            all(9, &self.responses, &mut out);
            out
        }
    }

    fn samples() -> &'static Samples {
        static SAMPLES: OnceLock<Samples> = OnceLock::new();
        SAMPLES.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a test runtime")
                .block_on(build_samples())
        })
    }

    fn signers() -> Vec<(Address, CustodySigner)> {
        (1..=4u8)
            .map(|i| {
                let key = Keypair::from_seed([i; 32]);
                (
                    Address(key.public()),
                    CustodySigner::new(CHAIN_ID, Arc::new(key)),
                )
            })
            .collect()
    }

    /// A libp2p ed25519 peer id: the identity multihash of the protobuf-encoded key.
    fn peer_id(key: &PublicKey) -> PeerId {
        let mut bytes = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
        bytes.extend_from_slice(&key.0);
        PeerId::from_bytes(&bytes).expect("a valid peer id")
    }

    async fn vote(
        signer: &(Address, CustodySigner),
        vote_type: VoteType,
        height: u64,
        round: Round,
        value: NilOrVal<Digest>,
    ) -> SignedVote {
        let vote = Vote {
            vote_type,
            height: Height(height),
            round,
            value,
            validator: signer.0,
            extension: None,
        };
        signer
            .1
            .sign_vote(vote)
            .await
            .expect("signing does not fail")
    }

    async fn build_samples() -> Samples {
        let net = TestNet::new();
        let store = MemoryStore::new(net.genesis_hash());
        let signers = signers();
        let built = build_block(
            &store,
            &net.genesis,
            &NoRules,
            custody_ledger::testkit::verified(net.lifecycle("SHP-0001")),
            Timestamp(GENESIS_TIME.0 + 60_000),
            signers[0].0 .0,
        )
        .expect("the memory store does not fail");
        assert!(
            built.rejected.is_empty(),
            "the lifecycle is valid in one block"
        );
        let header = built.block().header.clone();
        let value = BlockValue::new(header.clone());
        let hash = value.hash;
        let height = header.height;
        let events: Vec<Vec<u8>> = built
            .block()
            .events
            .iter()
            .map(|e| e.bytes().to_vec())
            .collect();
        assert_eq!(events.len(), 11);
        let ids: Vec<Digest> = built.block().events.iter().map(|e| e.id()).collect();

        // Proposal parts: header, events in chunks of bodies, of ids and of both, an empty
        // chunk, signature.
        let round = Round::new(2);
        let fin_signature = signers[0].1.sign_bytes(&parts_message(
            CHAIN_ID,
            Height(height),
            round,
            &Digest::sha256(b"parts"),
        ));
        let parts = vec![
            ProposalPart::Init {
                height: Height(height),
                round,
                pol_round: Round::Nil,
                proposer: signers[0].0,
                header: header.clone(),
            },
            ProposalPart::Init {
                height: Height(height),
                round,
                pol_round: Round::new(1),
                proposer: signers[0].0,
                header: header.clone(),
            },
            ProposalPart::Events(events[..4].iter().cloned().map(EventRef::Body).collect()),
            ProposalPart::Events(ids[4..8].iter().copied().map(EventRef::Id).collect()),
            ProposalPart::Events(vec![
                EventRef::Id(ids[8]),
                EventRef::Body(events[9].clone()),
                EventRef::Id(ids[10]),
            ]),
            ProposalPart::Events(Vec::new()),
            ProposalPart::Fin {
                signature: fin_signature,
            },
        ];
        let stream_id = StreamId::new(Bytes::from(ledger_codec::encode(&(height, 2u32))));
        let mut streams: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                StreamMessage::new(
                    stream_id.clone(),
                    i as u64,
                    StreamContent::Data(part.clone()),
                )
            })
            .collect();
        streams.push(StreamMessage::new(
            stream_id,
            parts.len() as u64,
            StreamContent::Fin,
        ));

        // Votes from every validator.
        let mut prevotes = Vec::new();
        let mut precommits = Vec::new();
        for signer in &signers {
            prevotes.push(
                vote(
                    signer,
                    VoteType::Prevote,
                    height,
                    round,
                    NilOrVal::Val(hash),
                )
                .await,
            );
            precommits.push(
                vote(
                    signer,
                    VoteType::Precommit,
                    height,
                    round,
                    NilOrVal::Val(hash),
                )
                .await,
            );
        }
        let nil_prevote = vote(
            &signers[1],
            VoteType::Prevote,
            height,
            Round::ZERO,
            NilOrVal::Nil,
        )
        .await;
        let nil_precommit = vote(
            &signers[2],
            VoteType::Precommit,
            height,
            Round::new(u32::MAX),
            NilOrVal::Nil,
        )
        .await;
        let scope = VoteExtensionScope::new(Height(height), round, hash, signers[3].0);
        let extension = signers[3]
            .1
            .sign_vote_extension(scope, ())
            .await
            .expect("signing does not fail");
        let mut extended = precommits[3].clone();
        extended.message.extension = Some(extension);

        let proposal = signers[0]
            .1
            .sign_proposal(Proposal {
                height: Height(height),
                round,
                value: value.clone(),
                pol_round: Round::Nil,
                proposer: signers[0].0,
            })
            .await
            .expect("signing does not fail");
        let relock = signers[1]
            .1
            .sign_proposal(Proposal {
                height: Height(height),
                round: Round::new(3),
                value: value.clone(),
                pol_round: round,
                proposer: signers[1].0,
            })
            .await
            .expect("signing does not fail");

        let polka = PolkaCertificate::new(Height(height), round, hash, prevotes.clone());
        assert_eq!(polka.polka_signatures.len(), 4);
        let mut mixed = vec![nil_prevote.clone()];
        mixed.extend(prevotes[1..3].iter().cloned());
        mixed.push(precommits[3].clone());
        let skip = RoundCertificate::new_from_votes(
            Height(height),
            round,
            RoundCertificateType::Skip,
            mixed,
        );
        let precommit_round = RoundCertificate::new_from_votes(
            Height(height),
            round,
            RoundCertificateType::Precommit,
            precommits.clone(),
        );

        let proofs = vec![
            signers[0]
                .1
                .sign_validator_proof(
                    signers[0].0 .0 .0.to_vec(),
                    peer_id(&signers[0].0 .0).to_bytes(),
                )
                .await
                .expect("signing does not fail"),
            // The codec carries whatever bytes were signed; judging them is the verifier's job.
            ValidatorProof::new(Vec::new(), vec![0xFF; 3], fin_signature),
        ];

        let mut commits = precommits.clone();
        commits[3] = extended.clone();
        let certificate =
            ExtendedCommitCertificate::from_votes(Height(height), round, hash, commits);
        assert_eq!(certificate.commit_signatures.len(), 4);
        let block_bytes = Bytes::from(ledger_codec::encode(&(&header, &events)));
        let next_certificate = ExtendedCommitCertificate::from_votes(
            Height(height + 1),
            Round::ZERO,
            Digest::sha256(b"next"),
            Vec::new(),
        );
        let responses = vec![
            sync::Response::ValueResponse(ValueResponse::new(
                Height(height),
                vec![
                    RawDecidedValue::new(block_bytes.clone(), certificate),
                    RawDecidedValue::new(Bytes::new(), next_certificate),
                ],
            )),
            sync::Response::ValueResponse(ValueResponse::new(Height(height), Vec::new())),
        ];

        let sha256_peer = {
            let mut bytes = vec![0x12, 0x20];
            bytes.extend_from_slice(&Digest::sha256(b"peer").0);
            PeerId::from_bytes(&bytes).expect("a valid peer id")
        };

        Samples {
            header: header.clone(),
            parts,
            streams,
            consensus: vec![
                SignedConsensusMsg::Vote(prevotes[0].clone()),
                SignedConsensusMsg::Vote(precommits[1].clone()),
                SignedConsensusMsg::Vote(nil_prevote.clone()),
                SignedConsensusMsg::Vote(nil_precommit),
                SignedConsensusMsg::Vote(extended),
                SignedConsensusMsg::Proposal(proposal),
                SignedConsensusMsg::Proposal(relock),
            ],
            liveness: vec![
                LivenessMsg::Vote(nil_prevote),
                LivenessMsg::PolkaCertificate(polka.clone()),
                LivenessMsg::SkipRoundCertificate(skip),
                LivenessMsg::SkipRoundCertificate(precommit_round),
            ],
            proofs,
            polkas: vec![
                polka,
                PolkaCertificate::new(Height(height), Round::ZERO, hash, Vec::new()),
            ],
            proposed: vec![
                ProposedValue {
                    height: Height(height),
                    round,
                    valid_round: Round::Nil,
                    proposer: signers[0].0,
                    value: value.clone(),
                    validity: Validity::Valid,
                },
                ProposedValue {
                    height: Height(height),
                    round: Round::new(3),
                    valid_round: round,
                    proposer: signers[1].0,
                    value,
                    validity: Validity::Invalid,
                },
            ],
            statuses: vec![
                sync::Status {
                    peer_id: peer_id(&signers[2].0 .0),
                    tip_height: Height(height),
                    history_min_height: Height(1),
                },
                sync::Status {
                    peer_id: sha256_peer,
                    tip_height: Height(u64::MAX),
                    history_min_height: Height(0),
                },
            ],
            requests: vec![
                sync::Request::ValueRequest(ValueRequest::new(Height(1)..=Height(height))),
                sync::Request::ValueRequest(ValueRequest::new(Height(9)..=Height(5))),
            ],
            responses,
        }
    }

    /// Encodes, decodes, and checks that nothing shorter or longer than the encoding decodes.
    fn round_trip<T>(value: &T)
    where
        CustodyCodec: Codec<T, Error = CodecError>,
        T: PartialEq + Debug,
    {
        let bytes = encode(value).expect("encodes");
        assert_eq!(&decode::<T>(bytes.clone()).expect("decodes"), value);
        for len in 0..bytes.len() {
            assert!(
                decode::<T>(bytes.slice(..len)).is_err(),
                "a {len}-byte prefix of {value:?} decoded"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(matches!(
            decode::<T>(longer),
            Err(CodecError::Frame(ledger_codec::CodecError::TrailingBytes {
                trailing_bytes: 1
            }))
        ));
    }

    #[test]
    fn every_type_round_trips_and_refuses_truncation_and_trailing_bytes() {
        let s = samples();
        s.parts.iter().for_each(round_trip);
        s.streams.iter().for_each(round_trip);
        s.consensus.iter().for_each(round_trip);
        s.liveness.iter().for_each(round_trip);
        s.proofs.iter().for_each(round_trip);
        s.polkas.iter().for_each(round_trip);
        s.proposed.iter().for_each(round_trip);
        s.statuses.iter().for_each(round_trip);
        s.requests.iter().for_each(round_trip);
        s.responses.iter().for_each(round_trip);
    }

    #[test]
    fn the_header_mirror_encodes_exactly_like_the_ledger_header() {
        let header = &samples().header;
        assert_eq!(
            ledger_codec::encode(&WireHeader::from_header(header)),
            ledger_codec::encode(header)
        );
    }

    #[tokio::test]
    async fn decoded_votes_and_proposals_still_verify() {
        let verifier = CustodyVerifier::new(CHAIN_ID);
        for message in &samples().consensus {
            let bytes = encode(message).expect("encodes");
            let decoded: SignedConsensusMsg<CustodyContext> = decode(bytes).expect("decodes");
            let result = match &decoded {
                SignedConsensusMsg::Vote(vote) => verifier
                    .verify_signed_vote(&vote.message, &vote.signature, &vote.validator.0)
                    .await
                    .expect("verification runs"),
                SignedConsensusMsg::Proposal(proposal) => verifier
                    .verify_signed_proposal(
                        &proposal.message,
                        &proposal.signature,
                        &proposal.proposer.0,
                    )
                    .await
                    .expect("verification runs"),
            };
            assert!(matches!(result, VerificationResult::Valid), "{decoded:?}");
        }
    }

    #[test]
    fn a_decoded_block_value_carries_the_hash_of_its_header() {
        for proposed in &samples().proposed {
            let decoded: ProposedValue<CustodyContext> =
                decode(encode(proposed).expect("encodes")).expect("decodes");
            assert_eq!(decoded.value.hash, decoded.value.header.hash());
        }
    }

    #[test]
    fn encoded_len_is_the_length_of_the_encoding() {
        for response in &samples().responses {
            let len = CustodyCodec.encoded_len(response).expect("sizes");
            assert_eq!(len, encode(response).expect("encodes").len());
        }
    }

    #[test]
    fn wal_entries_round_trip_through_the_engine_format() {
        let s = samples();
        let mut inputs: Vec<Input<CustodyContext>> = Vec::new();
        for message in &s.consensus {
            inputs.push(match message.clone() {
                SignedConsensusMsg::Vote(vote) => Input::Vote(vote),
                SignedConsensusMsg::Proposal(proposal) => Input::Proposal(proposal),
            });
        }
        for proposed in &s.proposed {
            inputs.push(Input::ProposedValue(
                proposed.clone(),
                ValueOrigin::Consensus,
            ));
        }
        for polka in &s.polkas {
            inputs.push(Input::PolkaCertificate(polka.clone()));
        }
        for input in inputs {
            let mut buf = Vec::new();
            encode_entry(input.clone(), &CustodyCodec, &mut buf).expect("writes");
            let back =
                decode_entry::<CustodyContext, _, _>(&CustodyCodec, buf.as_slice()).expect("reads");
            assert_eq!(back, input);
        }
    }

    #[test]
    fn oversize_inputs_are_refused_before_decoding() {
        for (name, reencode, limit) in DECODERS {
            let bytes = Bytes::from(vec![0u8; limit + 1]);
            assert_eq!(
                reencode(bytes),
                Err(CodecError::Frame(ledger_codec::CodecError::TooLarge {
                    size_bytes: limit + 1,
                    size_bytes_max: *limit,
                })),
                "{name}"
            );
        }
    }

    #[test]
    fn messages_the_receiver_would_refuse_are_not_encoded() {
        let mut proposed = samples().proposed[0].clone();
        proposed.value = BlockValue::new(BlockHeader {
            chain_id: "x".repeat(CONSENSUS_MSG_SIZE_BYTES_MAX),
            ..proposed.value.header
        });
        assert!(matches!(
            encode(&proposed),
            Err(CodecError::TooLarge {
                size_bytes_max: CONSENSUS_MSG_SIZE_BYTES_MAX,
                ..
            })
        ));

        let too_many = ProposalPart::Events(vec![EventRef::Body(Vec::new()); BLOCK_EVENTS_MAX + 1]);
        let refused = Err(CodecError::TooManyEvents {
            count: BLOCK_EVENTS_MAX + 1,
            count_max: BLOCK_EVENTS_MAX,
        });
        assert_eq!(encode(&too_many), refused);
        let message = StreamMessage::new(
            StreamId::new(Bytes::new()),
            1,
            StreamContent::Data(too_many),
        );
        assert_eq!(encode(&message), refused);
        let most = ProposalPart::Events(vec![EventRef::Body(Vec::new()); BLOCK_EVENTS_MAX]);
        assert_eq!(
            decode::<ProposalPart>(encode(&most).expect("encodes")).expect("decodes"),
            most
        );
    }

    #[test]
    fn a_part_with_more_events_than_a_block_is_refused() {
        // One more empty event than a block holds: each costs two input bytes but a whole
        // byte string in memory, so the count is what bounds memory here.
        let mut frame = ledger_codec::encode(&WirePart::Events(List(
            (0..BLOCK_EVENTS_MAX)
                .map(|_| WireEventRef::Body(Blob(Bytes::new())))
                .collect(),
        )));
        assert!(decode::<ProposalPart>(frame.clone()).is_ok());
        frame[1..4].copy_from_slice(&[0xFB, 0x11, 0x27]); // 10_001 as a bincode u16 varint
        frame.extend_from_slice(&[1, 0]); // one more empty body
        assert!(matches!(
            decode::<ProposalPart>(frame),
            Err(CodecError::Frame(ledger_codec::CodecError::Malformed(_)))
        ));
    }

    #[test]
    fn a_length_prefix_beyond_the_input_is_refused() {
        // A proposed value whose chain id claims 60 MB in a 40-byte message.
        let mut bytes = vec![1, 0, 1, 32];
        bytes.extend_from_slice(&[7; 32]);
        bytes.push(0xFC);
        bytes.extend_from_slice(&60_000_000u32.to_le_bytes());
        assert!(matches!(
            decode::<ProposedValue<CustodyContext>>(bytes),
            Err(CodecError::Frame(ledger_codec::CodecError::Malformed(_)))
        ));
        // A proposal part claiming 2^40 event chunks.
        let mut bytes = vec![1, 0xFD];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<ProposalPart>(bytes).is_err());
    }

    fn frame<W: Serialize>(wire: &W) -> Bytes {
        Bytes::from(ledger_codec::encode(wire))
    }

    fn wire_vote(vote_type: u8, round: i64) -> WireConsensusMsg {
        WireConsensusMsg::Vote(WireSignedVote {
            vote: WireVote {
                vote_type,
                height: 1,
                round,
                value: None,
                validator: PublicKey([1; 32]),
                extension: None,
            },
            signature: Signature([2; 64]),
        })
    }

    #[test]
    fn rounds_outside_nil_and_u32_are_refused() {
        for round in [-2, i64::MIN, i64::from(u32::MAX) + 1, i64::MAX] {
            assert_eq!(
                decode::<SignedConsensusMsg<CustodyContext>>(frame(&wire_vote(0, round))),
                Err(CodecError::Round(round))
            );
        }
        for (round, expected) in [
            (-1, Round::Nil),
            (0, Round::ZERO),
            (i64::from(u32::MAX), Round::new(u32::MAX)),
        ] {
            let decoded = decode::<SignedConsensusMsg<CustodyContext>>(frame(&wire_vote(1, round)))
                .expect("decodes");
            assert_eq!(decoded.round(), expected);
        }
    }

    #[test]
    fn unknown_vote_and_certificate_types_are_refused() {
        assert_eq!(
            decode::<SignedConsensusMsg<CustodyContext>>(frame(&wire_vote(2, 0))),
            Err(CodecError::VoteType(2))
        );
        let certificate = |cert_type, vote_type| {
            frame(&WireLivenessMsg::SkipRoundCertificate(
                WireRoundCertificate {
                    height: 1,
                    round: 0,
                    cert_type,
                    signatures: List(vec![WireRoundSignature {
                        vote_type,
                        value_id: None,
                        address: PublicKey([1; 32]),
                        signature: Signature([2; 64]),
                    }]),
                },
            ))
        };
        assert!(decode::<LivenessMsg<CustodyContext>>(certificate(1, 1)).is_ok());
        assert_eq!(
            decode::<LivenessMsg<CustodyContext>>(certificate(2, 0)),
            Err(CodecError::RoundCertificateType(2))
        );
        assert_eq!(
            decode::<LivenessMsg<CustodyContext>>(certificate(0, 7)),
            Err(CodecError::VoteType(7))
        );
    }

    #[test]
    fn peer_ids_must_be_canonical_multihashes() {
        let status = |peer_id: Vec<u8>| {
            frame(&WireStatus {
                peer_id: Blob(Bytes::from(peer_id)),
                tip_height: 1,
                history_min_height: 1,
            })
        };
        let mut good = vec![0x12, 0x20];
        good.extend_from_slice(&[9; 32]);
        assert!(decode::<sync::Status<CustodyContext>>(status(good.clone())).is_ok());
        // An overlong varint for the hash code, a digest shorter than announced, extra
        // bytes after the digest, an unsupported hash, nothing at all.
        let mut overlong = vec![0x92, 0x00, 0x20];
        overlong.extend_from_slice(&[9; 32]);
        let mut extra = good.clone();
        extra.push(0);
        let mut md5 = vec![0xD5, 0x01, 0x10];
        md5.extend_from_slice(&[9; 16]);
        for bad in [overlong, good[..20].to_vec(), extra, md5, Vec::new()] {
            assert!(
                matches!(
                    decode::<sync::Status<CustodyContext>>(status(bad.clone())),
                    Err(CodecError::PeerId(_))
                ),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn invalid_booleans_and_enum_tags_are_refused() {
        let mut bytes = encode(&samples().proposed[0]).expect("encodes").to_vec();
        let last = bytes.len() - 1;
        bytes[last] = 2;
        assert!(matches!(
            decode::<ProposedValue<CustodyContext>>(bytes),
            Err(CodecError::Frame(_))
        ));
        assert!(decode::<ProposalPart>(vec![3]).is_err());
        assert!(decode::<sync::Request<CustodyContext>>(vec![1, 1, 2]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic_and_only_canonical_bytes_decode(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            for (name, reencode, _) in DECODERS {
                let input = Bytes::from(bytes.clone());
                if let Ok(again) = reencode(input.clone()) {
                    prop_assert_eq!(again, input, "{}", name);
                }
            }
        }

        #[test]
        fn corrupted_messages_never_panic_and_only_canonical_bytes_decode(
            pick in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let encodings = samples().encodings();
            let (decoder, bytes) = &encodings[pick.index(encodings.len())];
            let mut corrupted = bytes.to_vec();
            let at = at.index(corrupted.len());
            corrupted[at] = byte;
            let corrupted = Bytes::from(corrupted);
            let (name, reencode, _) = DECODERS[*decoder];
            if let Ok(again) = reencode(corrupted.clone()) {
                prop_assert_eq!(again, corrupted, "{}", name);
            }
        }
    }
}
