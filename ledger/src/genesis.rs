//! The genesis document: the network's founding members, validators and admin quorum.
//!
//! Its hash is the network's identity. Block 1's `prev_hash` is the genesis hash, so every
//! block commits to it, and an auditor needs nothing but this document to verify a bundle.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::{domain, Digest};
use crate::keys::PublicKey;
use crate::model::{MemberId, Role};
use crate::time::Timestamp;

/// A founding member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenesisMember {
    /// Stable id.
    pub id: MemberId,
    /// Organisation name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Event-signing key.
    pub key: PublicKey,
    /// The node's libp2p and vote-signing key, if the member runs a node.
    pub node_key: Option<PublicKey>,
    /// Voting power; zero for members that do not validate.
    pub voting_power: u64,
}

/// The genesis document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Genesis {
    /// The chain id every event carries.
    pub chain_id: String,
    /// Time of the chain's start; no block time is before it.
    pub genesis_time: Timestamp,
    /// How many distinct admins must approve a membership change.
    pub admin_quorum: u32,
    /// Founding members.
    pub members: Vec<GenesisMember>,
}

/// A validator: a node key with voting power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validator {
    /// The key votes are signed with.
    pub key: PublicKey,
    /// Voting power.
    pub power: u64,
}

/// Why a genesis document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// A field is wrong; the message names it.
    #[error("genesis field {field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> GenesisError {
    GenesisError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl Genesis {
    /// `SHA-256("custody/genesis/v1" || canonical bytes)`.
    pub fn hash(&self) -> Digest {
        Digest::of(domain::GENESIS, &[&codec::encode(self)])
    }

    /// Validators in genesis order, members with positive voting power.
    pub fn validators(&self) -> Vec<Validator> {
        self.members
            .iter()
            .filter(|m| m.voting_power > 0)
            .filter_map(|m| {
                m.node_key.map(|key| Validator {
                    key,
                    power: m.voting_power,
                })
            })
            .collect()
    }

    /// Total voting power.
    pub fn total_power(&self) -> u64 {
        self.validators().iter().map(|v| v.power).sum()
    }

    /// Checks the document is usable: ids and keys unique and valid, at least one validator,
    /// an admin quorum that the admins can meet.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.chain_id.is_empty() || self.chain_id.len() > 64 {
            return Err(invalid("chain_id", "must be 1 to 64 bytes"));
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for (i, m) in self.members.iter().enumerate() {
            let field = |name: &str| format!("members[{i}].{name}");
            if !m.id.is_well_formed() {
                return Err(invalid(
                    field("id"),
                    "must be 1 to 64 characters from A-Z a-z 0-9 . _ - :",
                ));
            }
            if !ids.insert(m.id.clone()) {
                return Err(invalid(
                    field("id"),
                    format!("duplicate member id {}", m.id),
                ));
            }
            if m.roles.is_empty() {
                return Err(invalid(field("roles"), "a member needs at least one role"));
            }
            m.key
                .verifying_key()
                .map_err(|e| invalid(field("key"), e.to_string()))?;
            if !keys.insert(m.key) {
                return Err(invalid(field("key"), "duplicate key"));
            }
            if let Some(node_key) = m.node_key {
                node_key
                    .verifying_key()
                    .map_err(|e| invalid(field("node_key"), e.to_string()))?;
            }
            if m.voting_power > 0 && m.node_key.is_none() {
                return Err(invalid(field("node_key"), "a validator needs a node key"));
            }
        }
        let mut node_keys = std::collections::BTreeSet::new();
        for v in self.validators() {
            if !node_keys.insert(v.key) {
                return Err(invalid("members", "two validators share a node key"));
            }
        }
        if node_keys.is_empty() {
            return Err(invalid("members", "at least one member needs voting power"));
        }
        if self
            .validators()
            .iter()
            .try_fold(0u64, |acc, v| acc.checked_add(v.power))
            .is_none()
        {
            return Err(invalid("members", "total voting power overflows"));
        }
        let admins = self
            .members
            .iter()
            .filter(|m| m.roles.contains(&Role::Admin))
            .count();
        if self.admin_quorum == 0 || self.admin_quorum as usize > admins {
            return Err(invalid(
                "admin_quorum",
                format!("must be between 1 and the number of admins ({admins})"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::TestNet;

    #[test]
    fn the_test_genesis_is_valid_and_bad_ones_name_the_field() {
        let net = TestNet::new();
        assert_eq!(net.genesis.validate(), Ok(()));
        assert_eq!(net.genesis.validators().len(), 4);
        assert_eq!(net.genesis.total_power(), 4);

        let field_of = |g: &super::Genesis| match g.validate() {
            Err(super::GenesisError::Invalid { field, .. }) => field,
            Ok(()) => panic!("expected an invalid genesis"),
        };
        let mut g = net.genesis.clone();
        g.admin_quorum = 4;
        assert_eq!(field_of(&g), "admin_quorum");
        let mut g = net.genesis.clone();
        g.members[1].id = g.members[0].id.clone();
        assert_eq!(field_of(&g), "members[1].id");
        let mut g = net.genesis.clone();
        g.members[2].key = g.members[0].key;
        assert_eq!(field_of(&g), "members[2].key");
        let mut g = net.genesis.clone();
        g.members[0].node_key = None;
        assert_eq!(field_of(&g), "members[0].node_key");
        let mut g = net.genesis.clone();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        g.members[3].key = crate::PublicKey(identity);
        assert_eq!(field_of(&g), "members[3].key");
        let mut g = net.genesis.clone();
        g.chain_id.clear();
        assert_eq!(field_of(&g), "chain_id");
    }
}
