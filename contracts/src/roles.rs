//! Roles: which role may sign which event kind.
//!
//! The ledger's state machine already refuses unknown, revoked and rotated-out keys and the
//! custody-specific roles; this module holds the complete table, so that every kind has an
//! explicit answer and the table is documented in one place (`docs/RULES.md`).

use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{EventKind, Role};
use custody_ledger::reject::Rejection;
use custody_ledger::state::{signer_of, State};

/// Stable codes of this module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// The signer holds none of the roles allowed to sign this kind of event.
    pub const NOT_PERMITTED: Code = ContractCode::RoleNotPermitted.code();
}

/// The roles allowed to sign each kind of event.
///
/// Auditors read and verify; they sign nothing. Any custodial role (seller, carrier, broker)
/// may hand off and accept, because goods pass between all three.
pub fn permitted_roles(kind: &EventKind) -> &'static [Role] {
    use Role::*;
    match kind {
        EventKind::ShipmentRegistered(_) => &[Seller],
        EventKind::HandoffProposed(_) | EventKind::HandoffAccepted(_) => {
            &[Seller, Carrier, CustomsBroker]
        }
        EventKind::CustomsDeclared(_) | EventKind::CustomsCleared(_) => &[CustomsBroker],
        // The seller pays under DDP; on the buyer's side a broker or courier pays as agent.
        EventKind::DutyPaid(_) => &[Seller, CustomsBroker, Carrier],
        EventKind::Delivered(_) => &[Carrier],
        EventKind::ReturnRequested(_) | EventKind::ReturnReceived(_) => &[Seller],
        EventKind::DocumentAttested(_) => &[Seller, Carrier, CustomsBroker, CustomsAuthority],
        // The custodian (any custodial role) scans what it holds; carriers also scan what
        // they handle for the custodian. The state machine keeps sellers and brokers to
        // shipments they hold (`scan.not_allowed`).
        EventKind::TrackingScanRecorded(_) => &[Seller, Carrier, CustomsBroker],
        EventKind::ReferenceDataPublished(_) => &[CustomsAuthority],
        EventKind::MembershipChanged(_) => &[Admin],
        // The seller that collected the data, or an admin; the state machine keeps sellers
        // to their own shipments (`personal.not_allowed`).
        EventKind::PersonalDataErased(_) => &[Seller, Admin],
    }
}

/// The signer is an active member with a current key and holds a permitted role.
pub fn check(state: &State, event: &EncodedEvent) -> Result<(), Rejection> {
    let member = signer_of(state, &event.event().signer)?;
    let kind = &event.event().event.kind;
    let allowed = permitted_roles(kind);
    if allowed.iter().any(|role| member.has_role(*role)) {
        return Ok(());
    }
    Err(Rejection::new(
        codes::NOT_PERMITTED,
        "signer",
        format!(
            "member {} ({:?}) may not sign {}; allowed roles: {:?}",
            member.id,
            member.roles,
            kind.name(),
            allowed
        ),
    ))
}
