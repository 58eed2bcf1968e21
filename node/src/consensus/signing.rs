//! What validators sign, and the engine's signer and verifier over our keys.
//!
//! Every consensus signature is over domain-separated bytes that include the chain id, so a
//! signature made for one network, or for one kind of message, is never valid for another.
//! A precommit for a block signs exactly the ledger's `block::vote_message`: the engine's
//! commit certificates are then ledger certificates as they are.

use std::sync::Arc;

use arc_malachitebft_app_channel::app::types::core::{
    NilOrVal, Round, SignedMessage, ValidatorProof, VoteExtensionScope, VoteType,
};
use arc_malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};
use async_trait::async_trait;
use custody_ledger::block::vote_message;
use custody_ledger::codec;
use custody_ledger::keys::{Keypair, PublicKey, Signature};
use custody_ledger::Digest;

use super::context::{CustodyContext, Height, Proposal, Vote};

/// Votes that do not count towards a commit certificate: prevotes and nil precommits.
pub const CONSENSUS_VOTE_DOMAIN: &[u8] = b"custody/consensus-vote/v1";
/// Proposals.
pub const PROPOSAL_DOMAIN: &[u8] = b"custody/proposal/v1";
/// The digest of a streamed proposal's parts.
pub const PARTS_DOMAIN: &[u8] = b"custody/proposal-parts/v1";
/// Vote extensions (unused, but the engine may ask).
pub const EXTENSION_DOMAIN: &[u8] = b"custody/vote-extension/v1";

fn with_domain(domain: &[u8], body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + body.len());
    out.extend_from_slice(domain);
    out.extend_from_slice(&body);
    out
}

fn round_number(round: Round) -> i64 {
    round.as_i64()
}

/// The bytes a validator signs for a vote.
pub fn vote_bytes(chain_id: &str, vote: &Vote) -> Vec<u8> {
    match (&vote.vote_type, &vote.value, vote.round.as_u32()) {
        (VoteType::Precommit, NilOrVal::Val(hash), Some(round)) => {
            vote_message(chain_id, vote.height.0, round, hash)
        }
        _ => {
            let kind: u8 = match vote.vote_type {
                VoteType::Prevote => 0,
                VoteType::Precommit => 1,
            };
            let value = match &vote.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(hash) => Some(*hash),
            };
            let body = codec::encode(&(
                chain_id,
                kind,
                vote.height.0,
                round_number(vote.round),
                value,
            ));
            with_domain(CONSENSUS_VOTE_DOMAIN, body)
        }
    }
}

/// The bytes a proposer signs for a proposal.
pub fn proposal_bytes(chain_id: &str, proposal: &Proposal) -> Vec<u8> {
    let body = codec::encode(&(
        chain_id,
        proposal.height.0,
        round_number(proposal.round),
        round_number(proposal.pol_round),
        proposal.value.hash,
        proposal.proposer.0,
    ));
    with_domain(PROPOSAL_DOMAIN, body)
}

/// The bytes a proposer signs to close a proposal stream: the digest of its parts.
pub fn parts_message(
    chain_id: &str,
    height: Height,
    round: Round,
    parts_digest: &Digest,
) -> Vec<u8> {
    let body = codec::encode(&(chain_id, height.0, round_number(round), parts_digest));
    with_domain(PARTS_DOMAIN, body)
}

fn extension_bytes(chain_id: &str, scope: &VoteExtensionScope<CustodyContext>) -> Vec<u8> {
    let body = codec::encode(&(
        chain_id,
        scope.height.0,
        round_number(scope.round),
        scope.value_id,
        scope.validator_address.0,
    ));
    with_domain(EXTENSION_DOMAIN, body)
}

/// Signs consensus messages with the node key.
#[derive(Debug, Clone)]
pub struct CustodySigner {
    chain_id: String,
    key: Arc<Keypair>,
}

impl CustodySigner {
    /// A signer for a chain.
    pub fn new(chain_id: impl Into<String>, key: Arc<Keypair>) -> CustodySigner {
        CustodySigner {
            chain_id: chain_id.into(),
            key,
        }
    }

    /// Signs arbitrary consensus bytes (the proposal-parts digest).
    pub fn sign_bytes(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

#[async_trait]
impl Signer<CustodyContext> for CustodySigner {
    async fn sign_vote(
        &self,
        vote: Vote,
    ) -> Result<SignedMessage<CustodyContext, Vote>, SigningError> {
        let signature = self.key.sign(&vote_bytes(&self.chain_id, &vote));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<CustodyContext, Proposal>, SigningError> {
        let signature = self.key.sign(&proposal_bytes(&self.chain_id, &proposal));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<CustodyContext>,
        extension: (),
    ) -> Result<SignedMessage<CustodyContext, ()>, SigningError> {
        let signature = self.key.sign(&extension_bytes(&self.chain_id, &scope));
        Ok(SignedMessage::new(extension, signature))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<CustodyContext>, SigningError> {
        let signature = self
            .key
            .sign(&ValidatorProof::<CustodyContext>::signing_bytes(
                &public_key,
                &peer_id,
            ));
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

/// Verifies consensus messages with strict ed25519.
#[derive(Debug, Clone)]
pub struct CustodyVerifier {
    chain_id: String,
}

impl CustodyVerifier {
    /// A verifier for a chain.
    pub fn new(chain_id: impl Into<String>) -> CustodyVerifier {
        CustodyVerifier {
            chain_id: chain_id.into(),
        }
    }
}

fn verdict(key: &PublicKey, message: &[u8], signature: &Signature) -> VerificationResult {
    VerificationResult::from_bool(key.verify(message, signature).is_ok())
}

#[async_trait]
impl Verifier<CustodyContext> for CustodyVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(verdict(
            public_key,
            &vote_bytes(&self.chain_id, vote),
            signature,
        ))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(verdict(
            public_key,
            &proposal_bytes(&self.chain_id, proposal),
            signature,
        ))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<CustodyContext>,
        _extension: &(),
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(verdict(
            public_key,
            &extension_bytes(&self.chain_id, scope),
            signature,
        ))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<CustodyContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(key) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return Ok(VerificationResult::Invalid);
        };
        let message =
            ValidatorProof::<CustodyContext>::signing_bytes(&proof.public_key, &proof.peer_id);
        Ok(verdict(&PublicKey(key), &message, &proof.signature))
    }
}
