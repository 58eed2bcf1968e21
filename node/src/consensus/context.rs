//! Our implementation of Malachite's `Context`: the consensus engine orders *our* blocks,
//! votes with *our* keys and signs *our* bytes.
//!
//! - A height is a ledger height; an address is a validator's node key.
//! - The value consensus agrees on is a block header; its id is the block hash. The events
//!   travel separately, as proposal parts (see `streaming`), so that the consensus messages
//!   stay small.
//! - Votes are signed over bytes we define. A precommit for a block signs exactly the
//!   ledger's `block::vote_message`, so the engine's commit certificate converts one to one
//!   into the ledger's `CommitCertificate`, which anyone can verify with the genesis file.

use std::fmt;
use std::sync::Arc;

use arc_malachitebft_app_channel::app::types::core::{
    self as mc, NilOrVal, Round, SignedExtension, VoteType,
};
use custody_ledger::block::BlockHeader;
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::{Keypair, PublicKey, Signature};
use custody_ledger::Digest;
use serde::Serialize;

/// The context: which validator proposes when, and how to make proposals and votes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustodyContext;

/// A ledger height.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    // The ledger's first block is height 1; height 0 is the genesis.
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(
            self.0
                .checked_add(n)
                .expect("heights do not reach u64::MAX"),
        )
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its node key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub PublicKey);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex characters are enough to tell validators apart in logs.
        write!(f, "{}", &self.0.to_hex()[..8])
    }
}

impl mc::Address for Address {}

/// The value agreed on: a block header. Its id is the block hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockValue {
    /// The header.
    pub header: BlockHeader,
    /// Its hash, computed once.
    pub hash: Digest,
}

impl BlockValue {
    /// Wraps a header.
    pub fn new(header: BlockHeader) -> BlockValue {
        let hash = header.hash();
        BlockValue { header, hash }
    }
}

impl PartialOrd for BlockValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BlockValue {
    // The engine only needs some total order; the hash identifies the header.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.header.height, self.hash).cmp(&(other.header.height, other.hash))
    }
}

impl mc::Value for BlockValue {
    type Id = Digest;

    fn id(&self) -> Digest {
        self.hash
    }
}

/// A proposal: a header for a height and round, by its proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed header.
    pub value: BlockValue,
    /// Proof-of-lock round, `Round::Nil` if none.
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

impl mc::Proposal<CustodyContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockValue {
        &self.value
    }
    fn take_value(self) -> BlockValue {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// One part of a streamed proposal: the header first, then the events in chunks, then the
/// proposer's signature over everything before it.
#[derive(Debug, Clone, PartialEq, Eq)]
// One `Init` per proposal: its size does not matter, and boxing would cost every caller.
#[allow(clippy::large_enum_variant)]
pub enum ProposalPart {
    /// Opens the stream.
    Init {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
        /// Proof-of-lock round the proposal restreams, `Round::Nil` for a fresh one.
        pol_round: Round,
        /// The proposer.
        proposer: Address,
        /// The block header.
        header: BlockHeader,
    },
    /// A chunk of the block's events in block order, each named by id or carried whole.
    Events(Vec<EventRef>),
    /// Closes the stream with the proposer's signature over the parts' digest.
    Fin {
        /// Signature over [`super::signing::parts_message`].
        signature: Signature,
    },
}

/// One event of a proposal: its id when the proposer expects every validator to hold it
/// already (it arrived by gossip long enough ago), else its canonical bytes. The block
/// header commits to the full events either way, so an id resolved to the wrong event
/// cannot make a wrong block pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EventRef {
    /// The event's id, the hash of its canonical bytes.
    Id(Digest),
    /// The event's canonical bytes.
    Body(Vec<u8>),
}

impl mc::ProposalPart<CustodyContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin { .. })
    }
}

/// A prevote or precommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block hash voted for, or nil.
    pub value: NilOrVal<Digest>,
    /// The voter.
    pub validator: Address,
    /// Vote extensions are not used; kept because the engine may attach one.
    pub extension: Option<SignedExtension<CustodyContext>>,
}

impl Vote {
    /// A vote without extension.
    pub fn new(
        vote_type: VoteType,
        height: Height,
        round: Round,
        value: NilOrVal<Digest>,
        validator: Address,
    ) -> Vote {
        Vote {
            vote_type,
            height,
            round,
            value,
            validator,
            extension: None,
        }
    }
}

impl mc::Vote<CustodyContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<Digest> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<Digest> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<CustodyContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<CustodyContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<CustodyContext>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

/// A validator: node key and voting power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// Its address (the node key).
    pub address: Address,
    /// The same key, as the signing scheme's public key.
    pub public_key: PublicKey,
    /// Voting power.
    pub power: u64,
}

impl mc::Validator<CustodyContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validator set, sorted by address so that every node derives the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

impl ValidatorSet {
    /// The genesis validators.
    pub fn from_genesis(genesis: &Genesis) -> ValidatorSet {
        let mut validators: Vec<Validator> = genesis
            .validators()
            .into_iter()
            .map(|v| Validator {
                address: Address(v.key),
                public_key: v.key,
                power: v.power,
            })
            .collect();
        validators.sort_by_key(|v| v.address);
        assert!(!validators.is_empty(), "a validated genesis has validators");
        ValidatorSet { validators }
    }

    /// The validators, by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }
}

impl mc::ValidatorSet<CustodyContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).sum()
    }
    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
            .map(|i| &self.validators[i])
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// Our signing scheme: ed25519 with the ledger's key and signature types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyScheme;

/// Bytes that are not a key or signature of the right length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongLength {
    /// Bytes expected.
    pub expected: usize,
    /// Bytes given.
    pub actual: usize,
}

impl fmt::Display for WrongLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} bytes, got {}", self.expected, self.actual)
    }
}

/// Exactly `N` bytes, or how many there were.
fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], WrongLength> {
    <[u8; N]>::try_from(bytes).map_err(|_| WrongLength {
        expected: N,
        actual: bytes.len(),
    })
}

impl mc::SigningScheme for CustodyScheme {
    type DecodingError = WrongLength;
    type Signature = Signature;
    type PublicKey = PublicKey;
    type PrivateKey = Arc<Keypair>;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, WrongLength> {
        fixed(bytes).map(Signature)
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, WrongLength> {
        fixed(bytes).map(PublicKey)
    }

    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

impl mc::Context for CustodyContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = mc::LinearTimeouts;
    type Value = BlockValue;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = CustodyScheme;

    /// Round robin over the address-sorted set, shifted by height, so that every validator
    /// proposes in turn and a silent proposer costs one round, not a height.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let n = validator_set.validators.len() as u64;
        let round = u64::from(round.as_u32().unwrap_or(0));
        let index = (height.0.wrapping_add(round)) % n;
        &validator_set.validators[usize::try_from(index).expect("index below the set size")]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<Digest>,
        address: Address,
    ) -> Vote {
        Vote::new(VoteType::Prevote, height, round, value_id, address)
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<Digest>,
        address: Address,
    ) -> Vote {
        Vote::new(VoteType::Precommit, height, round, value_id, address)
    }
}
