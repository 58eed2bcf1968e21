//! The organisations of a devnet: who the members are, what roles they hold, and which of them
//! run a node.
//!
//! Four member organisations run the first four validators — a seller, an air carrier, a
//! customs broker and a customs authority — as DESIGN.md describes the network. Further
//! validators are more carriers. An auditor runs a full (non-voting) node that follows the
//! chain; a last-mile carrier takes part without a node of its own; three admins, with a quorum
//! of two, can change the membership later.

use custody_ledger::model::Role;

/// The seller: registers shipments, pays duty under DDP, handles returns.
pub const SELLER: &str = "seller-acme";
/// The air carrier that takes shipments from the seller.
pub const CARRIER: &str = "carrier-swift";
/// The last-mile carrier that delivers in the destination country; it runs no node.
pub const LASTMILE: &str = "carrier-lastmile";
/// The customs broker: declares, pays as the buyer's agent, records clearance.
pub const BROKER: &str = "broker-clear";
/// The customs authority: publishes tariffs, the nomenclature and the low-value regimes.
pub const CUSTOMS: &str = "customs-authority";
/// The auditor, with a full node.
pub const AUDITOR: &str = "auditor-ivy";

/// The fewest validators a devnet has: with four, one may fail (n = 3f + 1).
pub const VALIDATORS_MIN: usize = 4;
/// The most validators a devnet has; each is a process on this machine.
pub const VALIDATORS_MAX: usize = 16;

/// A member organisation of the devnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// Stable member id.
    pub id: String,
    /// Organisation name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// The node it runs, if any.
    pub node: Option<NodeSpec>,
}

/// A node of the devnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Short name: the node's directory and moniker.
    pub name: String,
    /// Whether it votes (voting power 1) or only follows.
    pub validator: bool,
}

fn member(id: &str, name: &str, roles: &[Role], node: Option<(&str, bool)>) -> MemberSpec {
    MemberSpec {
        id: id.into(),
        name: name.into(),
        roles: roles.to_vec(),
        node: node.map(|(name, validator)| NodeSpec {
            name: name.into(),
            validator,
        }),
    }
}

/// Names of the carriers that run the validators beyond the first four.
const EXTRA_CARRIERS: &[(&str, &str)] = &[
    ("carrier-ocean", "Blue Ocean Lines"),
    ("carrier-rail", "Silk Rail Freight"),
    ("carrier-road", "Continental Road Haulage"),
];

/// The members of a devnet with `validators` validators (at least [`VALIDATORS_MIN`]).
pub fn members(validators: usize) -> Vec<MemberSpec> {
    let mut members = vec![
        member(
            SELLER,
            "Acme Trading Co., Ltd. (Shenzhen)",
            &[Role::Seller],
            Some(("seller", true)),
        ),
        member(
            CARRIER,
            "Swift Air Cargo",
            &[Role::Carrier],
            Some(("carrier", true)),
        ),
        member(
            BROKER,
            "ClearPath Customs Brokers",
            &[Role::CustomsBroker],
            Some(("broker", true)),
        ),
        member(
            CUSTOMS,
            "Devnet Customs Authority",
            &[Role::CustomsAuthority],
            Some(("customs", true)),
        ),
    ];
    for k in 0..validators.saturating_sub(VALIDATORS_MIN) {
        let (id, name) = match EXTRA_CARRIERS.get(k) {
            Some((id, name)) => ((*id).to_owned(), (*name).to_owned()),
            None => (
                format!("carrier-{}", k + 2),
                format!("Carrier No. {}", k + 2),
            ),
        };
        let node = id.clone();
        members.push(member(&id, &name, &[Role::Carrier], Some((&node, true))));
    }
    members.push(member(
        AUDITOR,
        "Ivy Audit LLP",
        &[Role::Auditor],
        Some(("auditor", false)),
    ));
    members.push(member(
        LASTMILE,
        "LastMile Couriers",
        &[Role::Carrier],
        None,
    ));
    for i in 1..=3 {
        members.push(member(
            &format!("admin-{i}"),
            &format!("Network administrator {i}"),
            &[Role::Admin],
            None,
        ));
    }
    members
}

/// How many admins must approve a membership change.
pub const ADMIN_QUORUM: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_has_the_four_founding_validators_an_auditor_and_a_last_mile_carrier() {
        for validators in [4, 5, 7, 9] {
            let members = members(validators);
            let voting = members
                .iter()
                .filter(|m| m.node.as_ref().is_some_and(|n| n.validator))
                .count();
            assert_eq!(voting, validators);
            let full: Vec<_> = members
                .iter()
                .filter(|m| m.node.as_ref().is_some_and(|n| !n.validator))
                .collect();
            assert_eq!(full.len(), 1);
            assert_eq!(full[0].id, AUDITOR);
            let lastmile = members.iter().find(|m| m.id == LASTMILE).expect("lastmile");
            assert!(lastmile.node.is_none() && lastmile.roles == [Role::Carrier]);
            let mut ids: Vec<_> = members.iter().map(|m| m.id.clone()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), members.len(), "ids are unique");
            let mut nodes: Vec<_> = members
                .iter()
                .filter_map(|m| m.node.as_ref().map(|n| n.name.clone()))
                .collect();
            nodes.sort();
            nodes.dedup();
            assert_eq!(nodes.len(), validators + 1, "node names are unique");
        }
    }
}
