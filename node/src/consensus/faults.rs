//! Deliberate misbehaviour of a validator, for the tests of what honest nodes do about it
//! (the `[faults]` table; this module exists only with the `fault-injection` feature).
//!
//! The faults live in the real node so that a Byzantine validator of a test is a real process
//! on the real network, speaking the real protocol badly, rather than a simulation of one:
//!
//! - `propose_unchecked_event`: the proposer puts an event the rules refuse into its blocks;
//! - `panic_at_height`: the consensus host panics on a decision, as on a broken invariant;
//! - `equivocate`: the proposer builds two different valid blocks for one height and round,
//!   streams both, and signs a consensus proposal for each (see [`ProposalSlot`]);
//! - `malformed_consensus_frames`: the validator damages every other vote it sends and
//!   follows each proposal it streams with damaged copies (see [`FaultyCodec`]);
//! - `drop_gossiped_events`: the node drops every event gossip brings it, so proposals name
//!   events it lacks (applied at the node's gossip intake).
//!
//! Malachite gives the application one way to send (`NetworkMsg::PublishProposalPart`) and
//! sends everything else itself, encoding each message with the network codec it was given.
//! The faults that need frames the engine would never send therefore sit in a codec that
//! wraps [`CustodyCodec`]: decoding is untouched, and encoding damages or replaces some of
//! this node's own messages on their way out.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _};
use arc_malachitebft_app_channel::app::consensus::{LivenessMsg, SignedConsensusMsg};
use arc_malachitebft_app_channel::app::streaming::{StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use arc_malachitebft_app_channel::app::types::core::{Round, SignedMessage, ValidatorProof};
use arc_malachitebft_app_channel::app::types::sync;
use bytes::Bytes;
use custody_contracts::ContractRules;
use custody_ledger::chain::{build_block, BuiltBlock};
use custody_ledger::event::{EncodedEvent, VerifiedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::{KeyCache, Signature};
use custody_ledger::reject::Rejection;
use custody_ledger::rules::Rules;
use custody_ledger::state::{BlockContext, State};
use custody_ledger::store::StoreError;
use custody_ledger::{Digest, Timestamp};
use custody_sled::SledStore;
use tracing::warn;

use super::codec::{CodecError, CustodyCodec, CONSENSUS_MSG_SIZE_BYTES_MAX};
use super::context::{Address, CustodyContext, Height, Proposal, ProposalPart, Vote};
use super::signing::{proposal_bytes, CustodySigner};
use crate::config::Faults;

/// What the faults change in the consensus host.
#[derive(Debug, Default)]
pub struct HostFaults {
    /// An event forced into every block this node proposes, unchecked by the rule modules
    /// (`propose_unchecked_event`).
    pub unchecked_event: Option<EncodedEvent>,
    /// A height at which the host panics (`panic_at_height`).
    pub panic_at_height: Option<u64>,
    /// Where the host leaves the second proposal of an equivocation for the codec to send
    /// (`equivocate`).
    pub equivocate: Option<ProposalSlot>,
    /// Whether each proposal streamed is followed by damaged copies
    /// (`malformed_consensus_frames`).
    pub malformed: bool,
    /// The second block of each equivocation by height and round, to stream after the first.
    pub seconds: BTreeMap<(Height, Round), Digest>,
}

/// Reads the faults of a configuration, logs each one loudly, and returns the host's part
/// and the network codec that carries the rest.
pub fn arm(faults: &Faults) -> anyhow::Result<(HostFaults, FaultyCodec)> {
    let unchecked_event = match &faults.propose_unchecked_event {
        None => None,
        Some(path) => {
            let event = read_event(path)?;
            warn!(event = %event.id(), "FAULT INJECTION: this node proposes an event without checking the rules");
            Some(event)
        }
    };
    if let Some(height) = faults.panic_at_height {
        warn!(
            height,
            "FAULT INJECTION: the consensus host panics when this height is decided"
        );
    }
    let equivocate = faults.equivocate.then(ProposalSlot::default);
    if equivocate.is_some() {
        warn!("FAULT INJECTION: this node equivocates, proposing two different blocks at each of its turns");
    }
    if faults.malformed_consensus_frames {
        warn!("FAULT INJECTION: this node sends malformed frames on the consensus network");
    }
    let codec = FaultyCodec {
        inner: CustodyCodec,
        equivocation: equivocate.clone(),
        malformed: faults
            .malformed_consensus_frames
            .then(|| Arc::new(AtomicU64::new(0))),
    };
    Ok((
        HostFaults {
            unchecked_event,
            panic_at_height: faults.panic_at_height,
            equivocate,
            malformed: faults.malformed_consensus_frames,
            seconds: BTreeMap::new(),
        },
        codec,
    ))
}

fn read_event(path: &Path) -> anyhow::Result<EncodedEvent> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the fault-injection event {}", path.display()))?;
    // Decoded with the block limit, not the event limit: the fault may be an event too large
    // for any block, which the proposer must then drop (issue 11).
    let event: custody_ledger::model::SignedEvent =
        custody_ledger::codec::decode(&bytes, custody_ledger::codec::BLOCK_SIZE_BYTES_MAX)
            .map_err(|e| anyhow!("the fault-injection event {}: {e}", path.display()))?;
    Ok(EncodedEvent::new(event))
}

impl HostFaults {
    /// Panics if the engine decided the height set by `panic_at_height`.
    pub fn panic_if_due(&self, height: Height) {
        if self.panic_at_height == Some(height.0) {
            panic!("fault injection: the consensus host panics at height {height}");
        }
    }
}

/// The rule modules with their verdicts ignored and their bookkeeping kept: what a Byzantine
/// proposer (`propose_unchecked_event`) builds its blocks with, so the blocks are well formed
/// and only their content is wrong.
#[derive(Debug, Clone)]
struct Unchecked(ContractRules);

impl Rules for Unchecked {
    fn check(&self, _: &State, _: &EncodedEvent, _: BlockContext) -> Result<(), Rejection> {
        Ok(())
    }

    fn applied(&mut self, event: &EncodedEvent, ctx: BlockContext) {
        self.0.applied(event, ctx);
    }
}

/// Builds a block with `forced` first and no rule checked. The forced event's signature is
/// still checked: what this fault tests is a block the rules would refuse, and the event types
/// do not let an unsigned event into any block.
#[allow(clippy::too_many_arguments)]
pub fn build_unchecked(
    store: &SledStore,
    genesis: &Genesis,
    rules: &ContractRules,
    forced: &EncodedEvent,
    mut candidates: Vec<VerifiedEvent>,
    time: Timestamp,
    proposer: Address,
    keys: &KeyCache,
) -> Result<BuiltBlock<ContractRules>, StoreError> {
    match forced.clone().verify(keys) {
        Ok(forced) => candidates.insert(0, forced),
        Err(rejection) => {
            tracing::warn!(%rejection, "the forced event is not signed; building without it")
        }
    }
    build_block(
        store,
        genesis,
        &Unchecked(rules.clone()),
        candidates,
        time,
        proposer.0,
    )
    .map(|built| built.map_rules(|unchecked| unchecked.0))
}

/// The signed consensus proposal of an equivocating proposer's second block, from the host
/// (which builds and signs it) to the network codec (which sends it).
///
/// The engine signs and sends one proposal per height and round, for the value the host
/// returned; the application cannot publish consensus messages itself. So the codec sends the
/// second proposal in place of the proposer's next vote of that height and round (its prevote
/// for the first block, sent right after the first proposal): two signed proposals for one
/// height and round go out on the consensus channel, and the equivocator's prevote does not.
#[derive(Debug, Clone, Default)]
pub struct ProposalSlot(Arc<Mutex<Option<SignedMessage<CustodyContext, Proposal>>>>);

impl ProposalSlot {
    /// Signs `proposal` and leaves it for the codec, replacing any left before.
    pub fn fill(&self, chain_id: &str, signer: &CustodySigner, proposal: Proposal) {
        let signature = signer.sign_bytes(&proposal_bytes(chain_id, &proposal));
        *self.0.lock().expect("slot lock") = Some(SignedMessage::new(proposal, signature));
    }

    /// The proposal left for the height and round of `vote`, taken out.
    fn take_for(&self, vote: &Vote) -> Option<SignedMessage<CustodyContext, Proposal>> {
        let mut slot = self.0.lock().expect("slot lock");
        match &*slot {
            Some(p) if p.message.height == vote.height && p.message.round == vote.round => {
                slot.take()
            }
            _ => None,
        }
    }
}

/// How a proposer's honest stream ids are told from its faulty ones: an honest id is the
/// height and round (16 bytes, see `host::stream_id`); a faulty one has one more byte, this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamTag {
    /// The second block of an equivocation: a valid stream.
    Second = 1,
    /// A copy of a proposal that the codec damages frame by frame.
    Damaged = 2,
    /// A copy of a proposal whose closing signature is wrong.
    BadSignature = 3,
}

/// The id of a faulty stream beside the honest stream `id`.
pub fn tagged(id: &StreamId, tag: StreamTag) -> StreamId {
    let mut bytes = id.to_bytes().to_vec();
    bytes.push(tag as u8);
    StreamId::new(Bytes::from(bytes))
}

fn tag_of(id: &StreamId) -> Option<u8> {
    let bytes = id.to_bytes();
    (bytes.len() == 17).then(|| bytes[16])
}

/// A proposal's parts with the closing signature spoiled (one bit flipped): well-framed
/// parts that an honest host must refuse by the signature.
pub fn with_bad_signature(mut parts: Vec<ProposalPart>) -> Vec<ProposalPart> {
    if let Some(ProposalPart::Fin { signature }) = parts.last_mut() {
        signature.0[0] ^= 1;
    }
    parts
}

/// The ways a frame is damaged, in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// A vote with one bit of its signature flipped: a well-formed frame that fails the
    /// signature check.
    WrongSignature,
    /// The first half of the frame.
    Truncated,
    /// Random bytes.
    Garbage,
    /// The frame padded past the receiver's limit for its kind (votes only: a proposal part's
    /// limit is above what the network layer sends at all).
    Oversize,
    /// The frame and one byte more.
    TrailingByte,
    /// No bytes at all.
    Empty,
}

const VOTE_DAMAGE: [Damage; 5] = [
    Damage::WrongSignature,
    Damage::Truncated,
    Damage::Garbage,
    Damage::Oversize,
    Damage::TrailingByte,
];

const PART_DAMAGE: [Damage; 4] = [
    Damage::Truncated,
    Damage::Garbage,
    Damage::TrailingByte,
    Damage::Empty,
];

/// Damages an encoded frame in a way that leaves no valid encoding.
fn damage_bytes(frame: Bytes, damage: Damage) -> Bytes {
    let mut bytes = frame.to_vec();
    match damage {
        Damage::Truncated => bytes.truncate(bytes.len() / 2),
        Damage::Garbage => {
            let len = 1 + rand::random::<usize>() % 512;
            bytes = (0..len).map(|_| rand::random::<u8>()).collect();
        }
        Damage::Oversize => bytes.resize(CONSENSUS_MSG_SIZE_BYTES_MAX + 1, 0xA5),
        Damage::TrailingByte => bytes.push(0),
        Damage::Empty => bytes.clear(),
        // Damages the message, not its bytes; see `FaultyCodec::damaged_vote`.
        Damage::WrongSignature => {}
    }
    Bytes::from(bytes)
}

/// The network codec of a node with faults: [`CustodyCodec`], except that it
///
/// - sends the second proposal of an equivocation in place of the proposer's next vote of
///   that height and round (`equivocate`, see [`ProposalSlot`]);
/// - damages every other vote and liveness message this node sends (wrong signature,
///   truncated, garbage, oversize, trailing byte, in turn), and every frame of a stream tagged
///   [`StreamTag::Damaged`] (`malformed_consensus_frames`).
///
/// Decoding is [`CustodyCodec`]'s, and so is everything sync sends: the faults are in
/// consensus messages.
#[derive(Debug, Clone)]
pub struct FaultyCodec {
    inner: CustodyCodec,
    equivocation: Option<ProposalSlot>,
    /// Messages seen by the malformed-frames fault, to take turns.
    malformed: Option<Arc<AtomicU64>>,
}

impl FaultyCodec {
    /// The next turn, if frames are to be malformed.
    fn turn(&self) -> Option<u64> {
        self.malformed
            .as_ref()
            .map(|count| count.fetch_add(1, Ordering::Relaxed))
    }

    /// A vote damaged according to `turn`: a wrong signature, or bytes no decoder accepts.
    fn damaged_vote(
        &self,
        vote: &SignedMessage<CustodyContext, Vote>,
        wrap: impl Fn(SignedMessage<CustodyContext, Vote>) -> Result<Bytes, CodecError>,
        turn: u64,
    ) -> Result<Bytes, CodecError> {
        let damage = VOTE_DAMAGE[(turn / 2) as usize % VOTE_DAMAGE.len()];
        let mut signature: Signature = vote.signature;
        if damage == Damage::WrongSignature {
            signature.0[0] ^= 1;
        }
        let frame = wrap(SignedMessage::new(vote.message.clone(), signature))?;
        Ok(damage_bytes(frame, damage))
    }
}

impl Codec<SignedConsensusMsg<CustodyContext>> for FaultyCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<SignedConsensusMsg<CustodyContext>, CodecError> {
        self.inner.decode(bytes)
    }

    fn encode(&self, msg: &SignedConsensusMsg<CustodyContext>) -> Result<Bytes, CodecError> {
        let SignedConsensusMsg::Vote(vote) = msg else {
            // The proposer's own proposals go out as they are: the faults add messages
            // around them.
            return self.inner.encode(msg);
        };
        if let Some(second) = self
            .equivocation
            .as_ref()
            .and_then(|s| s.take_for(&vote.message))
        {
            warn!(height = %second.message.height, round = %second.message.round, "fault injection: sending a second proposal for this height and round");
            return self.inner.encode(&SignedConsensusMsg::Proposal(second));
        }
        match self.turn() {
            Some(turn) if turn % 2 == 1 => self.damaged_vote(
                vote,
                |v| self.inner.encode(&SignedConsensusMsg::Vote(v)),
                turn,
            ),
            _ => self.inner.encode(msg),
        }
    }
}

impl Codec<LivenessMsg<CustodyContext>> for FaultyCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<LivenessMsg<CustodyContext>, CodecError> {
        self.inner.decode(bytes)
    }

    fn encode(&self, msg: &LivenessMsg<CustodyContext>) -> Result<Bytes, CodecError> {
        match (self.turn(), msg) {
            (Some(turn), LivenessMsg::Vote(vote)) if turn % 2 == 1 => {
                self.damaged_vote(vote, |v| self.inner.encode(&LivenessMsg::Vote(v)), turn)
            }
            (Some(turn), _) if turn % 2 == 1 => {
                // A certificate: its bytes damaged (never the wrong-signature turn, which
                // only applies to a vote).
                let damage = PART_DAMAGE[(turn / 2) as usize % PART_DAMAGE.len()];
                Ok(damage_bytes(self.inner.encode(msg)?, damage))
            }
            _ => self.inner.encode(msg),
        }
    }
}

impl Codec<StreamMessage<ProposalPart>> for FaultyCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<StreamMessage<ProposalPart>, CodecError> {
        self.inner.decode(bytes)
    }

    fn encode(&self, msg: &StreamMessage<ProposalPart>) -> Result<Bytes, CodecError> {
        let frame = self.inner.encode(msg)?;
        if tag_of(&msg.stream_id) != Some(StreamTag::Damaged as u8) {
            return Ok(frame);
        }
        let turn = msg.sequence as usize;
        let damage = PART_DAMAGE[turn % PART_DAMAGE.len()];
        Ok(damage_bytes(frame, damage))
    }
}

/// Implements `Codec<$value>` as [`CustodyCodec`]'s.
macro_rules! honest {
    ($($value:ty),* $(,)?) => {$(
        impl Codec<$value> for FaultyCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$value, CodecError> {
                self.inner.decode(bytes)
            }

            fn encode(&self, msg: &$value) -> Result<Bytes, CodecError> {
                self.inner.encode(msg)
            }
        }
    )*};
}

honest!(
    ProposalPart,
    ValidatorProof<CustodyContext>,
    sync::Status<CustodyContext>,
    sync::Request<CustodyContext>,
    sync::Response<CustodyContext>,
);

impl HasEncodedLen<sync::Response<CustodyContext>> for FaultyCodec {
    fn encoded_len(&self, msg: &sync::Response<CustodyContext>) -> Result<usize, CodecError> {
        self.inner.encoded_len(msg)
    }
}

/// The second block of an equivocation is built from the first half of the first one's
/// candidates, one millisecond later: valid, and different even when both are empty.
pub fn second_candidates(candidates: &[VerifiedEvent]) -> Vec<VerifiedEvent> {
    candidates[..candidates.len() / 2].to_vec()
}

/// The time of the second block of an equivocation.
pub fn second_time(first: Timestamp) -> Timestamp {
    Timestamp(first.0.saturating_add(1))
}

/// A proposal as the engine makes one for a fresh value.
pub fn fresh_proposal(
    height: Height,
    round: Round,
    value: super::context::BlockValue,
    proposer: Address,
) -> Proposal {
    Proposal {
        height,
        round,
        value,
        pol_round: Round::Nil,
        proposer,
    }
}

#[cfg(test)]
mod tests {
    use arc_malachitebft_app_channel::app::streaming::StreamContent;
    use arc_malachitebft_app_channel::app::types::core::{NilOrVal, VoteType};
    use custody_ledger::block::BlockHeader;
    use custody_ledger::keys::Keypair;

    use super::*;
    use crate::consensus::context::EventRef;

    fn signer() -> (CustodySigner, Address) {
        let key = Arc::new(Keypair::from_seed([4; 32]));
        let address = Address(key.public());
        (CustodySigner::new("test-chain", key), address)
    }

    fn prevote(address: Address, height: u64) -> SignedMessage<CustodyContext, Vote> {
        SignedMessage::new(
            Vote::new(
                VoteType::Prevote,
                Height(height),
                Round::new(0),
                NilOrVal::Val(Digest::sha256(b"block")),
                address,
            ),
            Signature([7; 64]),
        )
    }

    fn codec(faults: Faults) -> (HostFaults, FaultyCodec) {
        arm(&faults).expect("faults arm")
    }

    #[test]
    fn without_faults_the_codec_is_custody_codec() {
        let (_, codec) = codec(Faults::default());
        let (_, address) = signer();
        for height in 1..10 {
            let msg = SignedConsensusMsg::Vote(prevote(address, height));
            assert_eq!(codec.encode(&msg), CustodyCodec.encode(&msg));
        }
    }

    #[test]
    fn every_other_vote_is_damaged_and_no_damaged_vote_is_a_valid_one() {
        let (_, codec) = codec(Faults {
            malformed_consensus_frames: true,
            ..Faults::default()
        });
        let (_, address) = signer();
        let mut wrong_signatures = 0;
        let mut undecodable = 0;
        for turn in 0..20u64 {
            let vote = prevote(address, 5);
            let msg = SignedConsensusMsg::Vote(vote.clone());
            let bytes = codec.encode(&msg).expect("encodes");
            if turn % 2 == 0 {
                assert_eq!(Ok(bytes), CustodyCodec.encode(&msg), "turn {turn}");
                continue;
            }
            match CustodyCodec.decode(bytes) {
                Ok(SignedConsensusMsg::Vote(back)) => {
                    assert_eq!(back.message, vote.message);
                    assert_ne!(back.signature, vote.signature);
                    wrong_signatures += 1;
                }
                Ok(other) => panic!("turn {turn}: {other:?}"),
                Err(_) => undecodable += 1,
            }
        }
        assert_eq!((wrong_signatures, undecodable), (2, 8));
    }

    #[test]
    fn a_damaged_stream_never_decodes_and_other_streams_are_untouched() {
        let (_, codec) = codec(Faults {
            malformed_consensus_frames: true,
            ..Faults::default()
        });
        let honest = StreamId::new(Bytes::from(vec![0; 16]));
        let parts = [
            StreamContent::Data(ProposalPart::Events(vec![EventRef::Body(vec![1, 2, 3])])),
            StreamContent::Data(ProposalPart::Fin {
                signature: Signature([1; 64]),
            }),
            StreamContent::Fin,
            StreamContent::Fin,
            StreamContent::Fin,
        ];
        for (sequence, content) in parts.into_iter().enumerate() {
            for (id, damaged) in [
                (tagged(&honest, StreamTag::Damaged), true),
                (tagged(&honest, StreamTag::Second), false),
                (honest.clone(), false),
            ] {
                let msg = StreamMessage::new(id, sequence as u64, content.clone());
                let bytes = codec.encode(&msg).expect("encodes");
                let back: Result<StreamMessage<ProposalPart>, _> = CustodyCodec.decode(bytes);
                assert_eq!(back.is_err(), damaged, "{msg:?}");
            }
        }
    }

    #[test]
    fn the_second_proposal_replaces_the_next_vote_of_its_height_and_round_only() {
        let (host, codec) = codec(Faults {
            equivocate: true,
            ..Faults::default()
        });
        let (signer, address) = signer();
        let slot = host.equivocate.expect("a slot");
        let digest = Digest::sha256(b"a block");
        let value = super::super::context::BlockValue::new(BlockHeader {
            chain_id: "test-chain".into(),
            height: 5,
            prev_hash: digest,
            time: Timestamp(1),
            proposer: address.0,
            event_count: 0,
            events_root: digest,
            log_size: 0,
            log_root: digest,
            state_root: digest,
            shipments_root: digest,
        });
        slot.fill(
            "test-chain",
            &signer,
            fresh_proposal(Height(5), Round::new(0), value.clone(), address),
        );
        // Another height's vote goes out as it is.
        let other = SignedConsensusMsg::Vote(prevote(address, 4));
        assert_eq!(codec.encode(&other), CustodyCodec.encode(&other));
        let bytes = codec
            .encode(&SignedConsensusMsg::Vote(prevote(address, 5)))
            .expect("encodes");
        let Ok(SignedConsensusMsg::Proposal(sent)) = CustodyCodec.decode(bytes) else {
            panic!("the second proposal");
        };
        assert_eq!(sent.message.value, value);
        assert!(address
            .0
            .verify(
                &proposal_bytes("test-chain", &sent.message),
                &sent.signature
            )
            .is_ok());
        // Sent once.
        let vote = SignedConsensusMsg::Vote(prevote(address, 5));
        assert_eq!(codec.encode(&vote), CustodyCodec.encode(&vote));
    }

    #[test]
    fn a_bad_signature_copy_differs_only_in_the_signature() {
        let fin = ProposalPart::Fin {
            signature: Signature([9; 64]),
        };
        let parts = vec![
            ProposalPart::Events(vec![EventRef::Body(vec![1])]),
            fin.clone(),
        ];
        let bad = with_bad_signature(parts.clone());
        assert_eq!(bad[0], parts[0]);
        assert_ne!(bad[1], fin);
    }
}
