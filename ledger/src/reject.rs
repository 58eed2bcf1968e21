//! Rejections: why an event or block was refused, with a stable code.
//!
//! Codes are part of the interface: clients and tests match on them, the API puts them in
//! problem documents, and `docs/RULES.md` explains each. Renaming one is a breaking change.

use std::fmt;

use serde::Serialize;

/// A refusal with a stable code, the offending field (a dotted path into the event's JSON
/// form, such as `event.kind.HandoffProposed.to`) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Stable machine-readable code, `area.reason`.
    pub code: &'static str,
    /// Path of the field at fault.
    pub field: String,
    /// What is wrong, naming the values involved.
    pub message: String,
}

impl Rejection {
    /// A rejection with the given code, field and message.
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.field, self.message)
    }
}

impl std::error::Error for Rejection {}

/// The codes the ledger itself produces. Rule modules in `custody-contracts` add their own.
pub mod codes {
    /// The bytes are not a canonical encoding of a signed event.
    pub const EVENT_MALFORMED: &str = "event.malformed";
    /// A field has the wrong shape (length, characters, count).
    pub const EVENT_FIELD_INVALID: &str = "event.field_invalid";
    /// The event names another network's chain id.
    pub const EVENT_WRONG_CHAIN: &str = "event.wrong_chain";
    /// The signature does not verify under the signer's key.
    pub const SIGNATURE_INVALID: &str = "signature.invalid";
    /// The signer's key is not a valid ed25519 key, or is a weak key.
    pub const SIGNATURE_BAD_KEY: &str = "signature.bad_key";
    /// The event is already on the ledger.
    pub const EVENT_DUPLICATE: &str = "event.duplicate";
    /// The event's canonical encoding is longer than any block may carry an event.
    pub const EVENT_TOO_LARGE: &str = "event.too_large";
    /// `occurred_at` is outside the plausibility window around the block time.
    pub const EVENT_IMPLAUSIBLE_TIME: &str = "event.implausible_time";

    /// The signing key belongs to no member.
    pub const MEMBER_UNKNOWN_SIGNER: &str = "member.unknown_signer";
    /// The signing key was rotated out.
    pub const MEMBER_KEY_ROTATED: &str = "member.key_rotated";
    /// The signer's membership was revoked.
    pub const MEMBER_REVOKED: &str = "member.revoked";
    /// A member lacks the role the event needs.
    pub const MEMBER_MISSING_ROLE: &str = "member.missing_role";
    /// A membership change refers to a member that does not exist.
    pub const MEMBER_NOT_FOUND: &str = "member.not_found";
    /// A member with this id or key already exists.
    pub const MEMBER_EXISTS: &str = "member.exists";
    /// Fewer distinct admins approved than the genesis quorum.
    pub const MEMBERSHIP_QUORUM: &str = "membership.quorum_not_met";
    /// An approval's signature does not verify, or it is not from an admin.
    pub const MEMBERSHIP_BAD_APPROVAL: &str = "membership.bad_approval";
    /// A `ScheduleRules` change names a height the chain has already reached (or the block
    /// it is in): a version may only start at a future block, so no committed verdict moves.
    pub const RULES_SCHEDULE_NOT_FUTURE: &str = "rules.schedule_not_future";
    /// A `ScheduleRules` change does not come after the last activation: its height or its
    /// version is not above the last entry's, or the schedule is full.
    pub const RULES_SCHEDULE_ORDER: &str = "rules.schedule_order";

    /// No shipment with this id is registered.
    pub const SHIPMENT_UNKNOWN: &str = "shipment.unknown";
    /// A shipment with this id is already registered.
    pub const SHIPMENT_EXISTS: &str = "shipment.exists";
    /// The event is not allowed in the shipment's current state.
    pub const SHIPMENT_WRONG_STATE: &str = "shipment.wrong_state";

    /// The signer is not the shipment's current custodian.
    pub const CUSTODY_NOT_CUSTODIAN: &str = "custody.not_custodian";
    /// The proposed receiver is not an active member.
    pub const CUSTODY_RECEIVER_NOT_MEMBER: &str = "custody.receiver_not_member";
    /// A handoff to the current custodian.
    pub const CUSTODY_SELF_HANDOFF: &str = "custody.self_handoff";
    /// No handoff is pending, or the accepted proposal is not the pending one.
    pub const CUSTODY_NO_PENDING_HANDOFF: &str = "custody.no_pending_handoff";
    /// The signer is not the receiver named in the pending proposal.
    pub const CUSTODY_NOT_RECEIVER: &str = "custody.not_receiver";
    /// Customs holds the shipment; custody cannot move.
    pub const CUSTODY_HELD_BY_CUSTOMS: &str = "custody.held_by_customs";

    /// The referenced declaration is not the shipment's current one.
    pub const CUSTOMS_UNKNOWN_DECLARATION: &str = "customs.unknown_declaration";
    /// Release without duty and tax paid in full.
    pub const CUSTOMS_UNPAID: &str = "customs.unpaid";
    /// Payment in another currency than the declaration's.
    pub const DUTY_CURRENCY_MISMATCH: &str = "duty.currency_mismatch";
    /// Payments would exceed what the declaration assesses.
    pub const DUTY_OVERPAID: &str = "duty.overpaid";
    /// Delivery before release in the destination country.
    pub const DELIVERY_NOT_RELEASED: &str = "delivery.not_released";
    /// The signer is not the seller of the shipment.
    pub const RETURN_NOT_SELLER: &str = "return.not_seller";
    /// An RMA is used twice, or a receipt names an unknown RMA.
    pub const RETURN_BAD_RMA: &str = "return.bad_rma";
    /// A return names a line the invoice does not have, or more units than remain.
    pub const RETURN_BAD_LINES: &str = "return.bad_lines";
    /// Reference data with the same table id and effective date already exists.
    pub const REFERENCE_DUPLICATE: &str = "reference.duplicate";
    /// A tracking scan's signer is neither the shipment's custodian nor a carrier.
    pub const SCAN_NOT_ALLOWED: &str = "scan.not_allowed";
    /// A tracking scan names a parcel that is not one of the shipment's SSCCs.
    pub const SCAN_UNKNOWN_PARCEL: &str = "scan.unknown_parcel";
    /// A personal-data erasure signed by neither the shipment's seller nor an admin.
    pub const PERSONAL_NOT_ALLOWED: &str = "personal.not_allowed";
    /// The shipment's personal data is already recorded as erased.
    pub const PERSONAL_ALREADY_ERASED: &str = "personal.already_erased";

    /// Every code above, for documentation checks.
    pub const ALL: &[&str] = &[
        EVENT_MALFORMED,
        EVENT_FIELD_INVALID,
        EVENT_WRONG_CHAIN,
        SIGNATURE_INVALID,
        SIGNATURE_BAD_KEY,
        EVENT_DUPLICATE,
        EVENT_TOO_LARGE,
        EVENT_IMPLAUSIBLE_TIME,
        MEMBER_UNKNOWN_SIGNER,
        MEMBER_KEY_ROTATED,
        MEMBER_REVOKED,
        MEMBER_MISSING_ROLE,
        MEMBER_NOT_FOUND,
        MEMBER_EXISTS,
        MEMBERSHIP_QUORUM,
        MEMBERSHIP_BAD_APPROVAL,
        RULES_SCHEDULE_NOT_FUTURE,
        RULES_SCHEDULE_ORDER,
        SHIPMENT_UNKNOWN,
        SHIPMENT_EXISTS,
        SHIPMENT_WRONG_STATE,
        CUSTODY_NOT_CUSTODIAN,
        CUSTODY_RECEIVER_NOT_MEMBER,
        CUSTODY_SELF_HANDOFF,
        CUSTODY_NO_PENDING_HANDOFF,
        CUSTODY_NOT_RECEIVER,
        CUSTODY_HELD_BY_CUSTOMS,
        CUSTOMS_UNKNOWN_DECLARATION,
        CUSTOMS_UNPAID,
        DUTY_CURRENCY_MISMATCH,
        DUTY_OVERPAID,
        DELIVERY_NOT_RELEASED,
        RETURN_NOT_SELLER,
        RETURN_BAD_RMA,
        RETURN_BAD_LINES,
        REFERENCE_DUPLICATE,
        SCAN_NOT_ALLOWED,
        SCAN_UNKNOWN_PARCEL,
        PERSONAL_NOT_ALLOWED,
        PERSONAL_ALREADY_ERASED,
    ];
}
