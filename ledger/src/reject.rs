//! Rejections: why an event or block was refused, with a stable code.
//!
//! Codes are part of the interface: clients and tests match on them, the API puts them in
//! problem documents, and `docs/RULES.md` explains each. Renaming one is a breaking change.
//!
//! A code is a [`Code`]: one of the ledger's own ([`LedgerCode`]) or a rule module's
//! ([`RuleCode`], made by `custody-contracts` from its own enum). Each says, by an exhaustive
//! match rather than a list kept elsewhere, whether it may clear once earlier events commit
//! ([`Code::is_causal`]) and which HTTP status a client sees ([`Code::http_status`]).

use std::fmt;

use serde::{Serialize, Serializer};

/// A refusal with a stable code, the offending field (a dotted path into the event's JSON
/// form, such as `event.kind.HandoffProposed.to`) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Stable machine-readable code, `area.reason`.
    pub code: Code,
    /// Path of the field at fault.
    pub field: String,
    /// What is wrong, naming the values involved.
    pub message: String,
}

impl Rejection {
    /// A rejection with the given code, field and message.
    pub fn new(code: Code, field: impl Into<String>, message: impl Into<String>) -> Self {
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

/// A rejection code: the ledger's own, or a rule module's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A code of the ledger's shape checks and state machine.
    Ledger(LedgerCode),
    /// A code of a rule module (`custody-contracts`).
    Rule(RuleCode),
}

impl Code {
    /// The stable string, `area.reason`, as clients, metrics and `docs/RULES.md` spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Ledger(code) => code.as_str(),
            Code::Rule(code) => code.as_str(),
        }
    }

    /// Whether the refusal may clear once events this node has not committed yet are
    /// committed (a predecessor in another validator's mempool or a block in flight), so
    /// that an event refused for it is kept waiting rather than dropped.
    pub const fn is_causal(self) -> bool {
        match self {
            Code::Ledger(code) => code.is_causal(),
            Code::Rule(code) => code.is_causal(),
        }
    }

    /// The HTTP status of a problem document carrying the code.
    pub const fn http_status(self) -> u16 {
        match self {
            Code::Ledger(code) => code.http_status(),
            Code::Rule(code) => code.http_status(),
        }
    }
}

impl From<LedgerCode> for Code {
    fn from(code: LedgerCode) -> Code {
        Code::Ledger(code)
    }
}

impl From<RuleCode> for Code {
    fn from(code: RuleCode) -> Code {
        Code::Rule(code)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for str {
    fn eq(&self, other: &Code) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

/// How a rule module's code travels through the ledger: its string and its classification,
/// fixed by the module's own code enum (`custody_contracts::ContractCode`), which is the only
/// maker of these. The ledger knows nothing of the modules beyond this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleCode {
    name: &'static str,
    causal: bool,
    http_status: u16,
}

impl RuleCode {
    /// A rule module's code: its stable string, whether it is causal (see
    /// [`Code::is_causal`]) and its HTTP status.
    pub const fn new(name: &'static str, causal: bool, http_status: u16) -> RuleCode {
        RuleCode {
            name,
            causal,
            http_status,
        }
    }

    /// The stable string.
    pub const fn as_str(self) -> &'static str {
        self.name
    }

    /// Whether the refusal may clear once earlier events commit.
    pub const fn is_causal(self) -> bool {
        self.causal
    }

    /// The HTTP status of a problem document carrying the code.
    pub const fn http_status(self) -> u16 {
        self.http_status
    }
}

/// Declares [`LedgerCode`] (its variants, `ALL`, `as_str`, `is_causal` and `http_status`)
/// and the [`codes`] constants from one table, in which every code states its string, its
/// status and whether it is causal: the list of codes cannot miss a variant, and no code is
/// classified by a default.
macro_rules! ledger_codes {
    ($(
        $(#[$doc:meta])*
        $variant:ident, $name:ident = $text:literal, status $status:literal, causal $causal:literal;
    )*) => {
        /// A code the ledger itself produces. Rule modules in `custody-contracts` add their
        /// own ([`RuleCode`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum LedgerCode {
            $($(#[$doc])* $variant,)*
        }

        impl LedgerCode {
            /// Every ledger code, in documentation order.
            pub const ALL: &'static [LedgerCode] = &[$(LedgerCode::$variant,)*];

            /// The stable string, `area.reason`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(LedgerCode::$variant => $text,)*
                }
            }

            /// Whether the refusal may clear once earlier events commit (see
            /// [`Code::is_causal`]).
            pub const fn is_causal(self) -> bool {
                match self {
                    $(LedgerCode::$variant => $causal,)*
                }
            }

            /// The HTTP status of a problem document carrying the code: 409 for an event
            /// already on the ledger, 400 for bytes that are not an event at all (as
            /// malformed JSON is), 413 for one too large for any block, and 422 for a
            /// well-formed event the rules refuse.
            pub const fn http_status(self) -> u16 {
                match self {
                    $(LedgerCode::$variant => $status,)*
                }
            }
        }

        /// The codes the ledger itself produces, as [`Code`]s. Rule modules in
        /// `custody-contracts` add their own.
        pub mod codes {
            use super::{Code, LedgerCode};

            $($(#[$doc])* pub const $name: Code = Code::Ledger(LedgerCode::$variant);)*

            /// Every code above, for documentation checks.
            pub const ALL: &[Code] = &[$($name,)*];
        }
    };
}

ledger_codes! {
    /// The bytes are not a canonical encoding of a signed event.
    EventMalformed, EVENT_MALFORMED = "event.malformed", status 400, causal false;
    /// A field has the wrong shape (length, characters, count).
    EventFieldInvalid, EVENT_FIELD_INVALID = "event.field_invalid", status 422, causal false;
    /// The event names another network's chain id.
    EventWrongChain, EVENT_WRONG_CHAIN = "event.wrong_chain", status 422, causal false;
    /// The signature does not verify under the signer's key.
    SignatureInvalid, SIGNATURE_INVALID = "signature.invalid", status 422, causal false;
    /// The signer's key is not a valid ed25519 key, or is a weak key.
    SignatureBadKey, SIGNATURE_BAD_KEY = "signature.bad_key", status 422, causal false;
    /// The event is already on the ledger.
    EventDuplicate, EVENT_DUPLICATE = "event.duplicate", status 409, causal false;
    /// The event's canonical encoding is longer than any block may carry an event.
    EventTooLarge, EVENT_TOO_LARGE = "event.too_large", status 413, causal false;
    /// `occurred_at` is outside the plausibility window around the block time.
    EventImplausibleTime, EVENT_IMPLAUSIBLE_TIME = "event.implausible_time",
        status 422, causal false;
    /// The signing key belongs to no member.
    MemberUnknownSigner, MEMBER_UNKNOWN_SIGNER = "member.unknown_signer", status 422, causal false;
    /// The signing key was rotated out.
    MemberKeyRotated, MEMBER_KEY_ROTATED = "member.key_rotated", status 422, causal false;
    /// The signer's membership was revoked.
    MemberRevoked, MEMBER_REVOKED = "member.revoked", status 422, causal false;
    /// A member lacks the role the event needs.
    MemberMissingRole, MEMBER_MISSING_ROLE = "member.missing_role", status 422, causal false;
    /// A membership change refers to a member that does not exist.
    MemberNotFound, MEMBER_NOT_FOUND = "member.not_found", status 422, causal false;
    /// A member with this id or key already exists.
    MemberExists, MEMBER_EXISTS = "member.exists", status 422, causal false;
    /// Fewer distinct admins approved than the genesis quorum.
    MembershipQuorumNotMet, MEMBERSHIP_QUORUM = "membership.quorum_not_met",
        status 422, causal false;
    /// An approval's signature does not verify, or it is not from an admin.
    MembershipBadApproval, MEMBERSHIP_BAD_APPROVAL = "membership.bad_approval",
        status 422, causal false;
    /// A `ScheduleRules` change names a height the chain has already reached (or the block
    /// it is in): a version may only start at a future block, so no committed verdict moves.
    RulesScheduleNotFuture, RULES_SCHEDULE_NOT_FUTURE = "rules.schedule_not_future",
        status 422, causal false;
    /// A `ScheduleRules` change does not come after the last activation: its height or its
    /// version is not above the last entry's, or the schedule is full.
    RulesScheduleOrder, RULES_SCHEDULE_ORDER = "rules.schedule_order", status 422, causal false;
    // Causal: the event names something a predecessor creates, or needs a state a
    // predecessor reaches.
    /// No shipment with this id is registered.
    ShipmentUnknown, SHIPMENT_UNKNOWN = "shipment.unknown", status 422, causal true;
    /// A shipment with this id is already registered.
    ShipmentExists, SHIPMENT_EXISTS = "shipment.exists", status 422, causal false;
    /// The event is not allowed in the shipment's current state.
    ShipmentWrongState, SHIPMENT_WRONG_STATE = "shipment.wrong_state", status 422, causal true;
    /// The signer is not the shipment's current custodian.
    CustodyNotCustodian, CUSTODY_NOT_CUSTODIAN = "custody.not_custodian", status 422, causal false;
    /// The proposed receiver is not an active member.
    CustodyReceiverNotMember, CUSTODY_RECEIVER_NOT_MEMBER = "custody.receiver_not_member",
        status 422, causal false;
    /// A handoff to the current custodian.
    CustodySelfHandoff, CUSTODY_SELF_HANDOFF = "custody.self_handoff", status 422, causal false;
    /// No handoff is pending, or the accepted proposal is not the pending one.
    CustodyNoPendingHandoff, CUSTODY_NO_PENDING_HANDOFF = "custody.no_pending_handoff",
        status 422, causal true;
    /// The signer is not the receiver named in the pending proposal.
    CustodyNotReceiver, CUSTODY_NOT_RECEIVER = "custody.not_receiver", status 422, causal false;
    /// Customs holds the shipment; custody cannot move.
    CustodyHeldByCustoms, CUSTODY_HELD_BY_CUSTOMS = "custody.held_by_customs",
        status 422, causal true;
    /// The referenced declaration is not the shipment's current one.
    CustomsUnknownDeclaration, CUSTOMS_UNKNOWN_DECLARATION = "customs.unknown_declaration",
        status 422, causal true;
    /// Release without duty and tax paid in full.
    CustomsUnpaid, CUSTOMS_UNPAID = "customs.unpaid", status 422, causal true;
    /// Payment in another currency than the declaration's.
    DutyCurrencyMismatch, DUTY_CURRENCY_MISMATCH = "duty.currency_mismatch",
        status 422, causal false;
    /// Payments would exceed what the declaration assesses.
    DutyOverpaid, DUTY_OVERPAID = "duty.overpaid", status 422, causal false;
    // Causal: a release, payment, arrival or return authorisation may be in a block this
    // node has not committed yet.
    /// Delivery before release in the destination country.
    DeliveryNotReleased, DELIVERY_NOT_RELEASED = "delivery.not_released", status 422, causal true;
    /// The signer is not the seller of the shipment.
    ReturnNotSeller, RETURN_NOT_SELLER = "return.not_seller", status 422, causal false;
    /// An RMA is used twice, or a receipt names an unknown RMA.
    ReturnBadRma, RETURN_BAD_RMA = "return.bad_rma", status 422, causal true;
    /// A return names a line the invoice does not have, or more units than remain.
    ReturnBadLines, RETURN_BAD_LINES = "return.bad_lines", status 422, causal false;
    /// Reference data with the same table id and effective date already exists.
    ReferenceDuplicate, REFERENCE_DUPLICATE = "reference.duplicate", status 422, causal false;
    // Causal: a scan by a seller or broker that has just accepted custody.
    /// A tracking scan's signer is neither the shipment's custodian nor a carrier.
    ScanNotAllowed, SCAN_NOT_ALLOWED = "scan.not_allowed", status 422, causal true;
    // Not causal: the registered parcels never change.
    /// A tracking scan names a parcel that is not one of the shipment's SSCCs.
    ScanUnknownParcel, SCAN_UNKNOWN_PARCEL = "scan.unknown_parcel", status 422, causal false;
    /// A personal-data erasure signed by neither the shipment's seller nor an admin.
    PersonalNotAllowed, PERSONAL_NOT_ALLOWED = "personal.not_allowed", status 422, causal false;
    /// The shipment's personal data is already recorded as erased.
    PersonalAlreadyErased, PERSONAL_ALREADY_ERASED = "personal.already_erased",
        status 422, causal false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ledger_code_is_listed_once_with_a_distinct_string() {
        assert_eq!(codes::ALL.len(), LedgerCode::ALL.len());
        for (i, code) in LedgerCode::ALL.iter().enumerate() {
            assert_eq!(codes::ALL[i], Code::Ledger(*code));
            assert!(
                LedgerCode::ALL[..i]
                    .iter()
                    .all(|c| c.as_str() != code.as_str()),
                "{} twice",
                code.as_str()
            );
        }
    }

    #[test]
    fn a_code_serializes_and_displays_as_its_string() {
        let rejection = Rejection::new(codes::EVENT_DUPLICATE, "event", "seen");
        assert_eq!(rejection.to_string(), "event.duplicate at event: seen");
        assert_eq!(rejection.code, "event.duplicate");
        let rule = Code::Rule(RuleCode::new("money.overflow", false, 422));
        assert_eq!(rule.as_str(), "money.overflow");
        assert_eq!(rule.http_status(), 422);
        assert!(!rule.is_causal());
    }
}
