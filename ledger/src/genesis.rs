//! The genesis document: the network's founding members, validators and admin quorum.
//!
//! Its hash is the network's identity. Block 1's `prev_hash` is the genesis hash, so every
//! block commits to it, and an auditor needs nothing but this document to verify a bundle.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::{domain, Digest};
use crate::keys::PublicKey;
use crate::model::{MemberId, Role, RulesActivation};
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
    /// From which height each rules version applies, by ascending height; the first entry
    /// starts at height 1. Admins extend it later with `ScheduleRules` changes. Verification
    /// replays every block with the version in force at its height, so a fixed rule (a new
    /// version) never changes the verdicts of the blocks before its activation.
    pub rules_schedule: Vec<RulesActivation>,
}

/// Most entries a rules schedule may have (genesis plus later `ScheduleRules` changes). The
/// store loads the whole schedule before every block; the bound keeps that small.
pub const RULES_SCHEDULE_LEN_MAX: usize = 1_000;

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
        check_schedule(&self.rules_schedule)
    }

    /// The rules version in force at a height under the genesis schedule alone.
    pub fn rules_version_at(&self, height: u64) -> u32 {
        rules_version_at(&self.rules_schedule, height)
    }
}

/// The version of the last activation at or below `height`; 0 if none has started (only
/// before block 1, since a valid schedule starts at height 1).
pub fn rules_version_at(schedule: &[RulesActivation], height: u64) -> u32 {
    schedule
        .iter()
        .take_while(|a| a.from_height <= height)
        .last()
        .map_or(0, |a| a.version)
}

/// A rules schedule is usable if it starts at height 1, with heights strictly ascending and
/// versions strictly ascending: a version never comes back after a newer one, because a
/// fixed rule must not be unfixed by accident.
fn check_schedule(schedule: &[RulesActivation]) -> Result<(), GenesisError> {
    let Some(first) = schedule.first() else {
        return Err(invalid("rules_schedule", "needs at least one entry"));
    };
    if schedule.len() > RULES_SCHEDULE_LEN_MAX {
        return Err(invalid(
            "rules_schedule",
            format!("has more than {RULES_SCHEDULE_LEN_MAX} entries"),
        ));
    }
    if first.from_height != 1 {
        return Err(invalid(
            "rules_schedule[0].from_height",
            "the first rules version must apply from height 1",
        ));
    }
    for (i, a) in schedule.iter().enumerate() {
        if a.version == 0 {
            return Err(invalid(
                format!("rules_schedule[{i}].version"),
                "rules versions start at 1",
            ));
        }
        if let Some(before) = i.checked_sub(1).map(|j| schedule[j]) {
            if a.from_height <= before.from_height {
                return Err(invalid(
                    format!("rules_schedule[{i}].from_height"),
                    "heights must ascend strictly",
                ));
            }
            if a.version <= before.version {
                return Err(invalid(
                    format!("rules_schedule[{i}].version"),
                    "versions must ascend strictly",
                ));
            }
        }
    }
    Ok(())
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

    #[test]
    fn the_rules_schedule_starts_at_one_and_ascends() {
        use crate::model::RulesActivation as A;
        let net = TestNet::new();
        let field_of = |schedule: Vec<A>| {
            let mut g = net.genesis.clone();
            g.rules_schedule = schedule;
            match g.validate() {
                Err(super::GenesisError::Invalid { field, .. }) => field,
                Ok(()) => "ok".into(),
            }
        };
        let a = |version, from_height| A {
            version,
            from_height,
        };
        assert_eq!(field_of(vec![a(1, 1), a(2, 10)]), "ok");
        assert_eq!(field_of(vec![]), "rules_schedule");
        assert_eq!(field_of(vec![a(1, 2)]), "rules_schedule[0].from_height");
        assert_eq!(field_of(vec![a(0, 1)]), "rules_schedule[0].version");
        assert_eq!(
            field_of(vec![a(1, 1), a(2, 1)]),
            "rules_schedule[1].from_height"
        );
        assert_eq!(
            field_of(vec![a(2, 1), a(1, 5)]),
            "rules_schedule[1].version"
        );

        let schedule = [a(1, 1), a(2, 10), a(3, 20)];
        let at = |h| super::rules_version_at(&schedule, h);
        assert_eq!(
            (at(0), at(1), at(9), at(10), at(19), at(20), at(u64::MAX)),
            (0, 1, 1, 2, 2, 3, 3)
        );
    }
}
