//! The registry: which modules run for which event kind, in which order.

use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::reject::{codes as ledger_codes, Code, Rejection};
use custody_ledger::rules::Rules;
use custody_ledger::state::{signer_of, BlockContext, ShipmentState, State};

use crate::reference::ReferenceBook;
use crate::ContractCode;
use crate::{customs, documents, hs, identifiers, payments, roles, tracking};

/// What a module sees: the state before the event, the reference data, the block.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Ledger state before the event.
    pub state: &'a State,
    /// Reference data published so far.
    pub book: &'a ReferenceBook,
    /// The event's block: its time decides which reference data is in force.
    pub block: BlockContext,
    /// The rules version in force at the block's height (the schedule of genesis and of
    /// `ScheduleRules` admin changes). A module that fixes a rule branches on it, so that the
    /// verdicts of blocks judged under an older version never change on replay.
    pub rules_version: u32,
}

/// The rules versions this build can run, oldest first. A version, once released, is
/// never edited: a fix is a new version (see `docs/RULES.md`, "Rules versions").
///
/// - 1: the rules as first released.
/// - 2: the regime fixes of issue 14 (Australian GST base, US de minimis by origin, Canadian
///   thresholds by transport mode, registration number forms, ICS2 descriptions).
pub const RULES_VERSIONS: &[u32] = &[1, 2];

/// The newest rules version this build can run.
pub const LATEST_RULES_VERSION: u32 = 2;

/// The exact versions of the crates whose tables a verdict reads (country codes and names,
/// currency codes and minor units). They are pinned with `=` in the workspace's
/// `Cargo.toml`; a test checks the lock file agrees. Every rules version so far reads these
/// same tables: a newer version of either crate may only come with a new rules version.
pub const PINNED_TABLE_CRATES: &[(&str, &str)] = &[("celes", "2.8.2"), ("iso_currency", "0.7.1")];

/// A rule module.
#[derive(Debug, Clone, Copy)]
pub struct Module {
    /// Its name, as `docs/RULES.md` lists it.
    pub name: &'static str,
    /// The check.
    pub check: fn(&Ctx<'_>, &EncodedEvent) -> Result<(), Rejection>,
}

const ROLES: Module = Module {
    name: "roles",
    check: |ctx, e| roles::check(ctx.state, e),
};
const DOCUMENTS: Module = Module {
    name: "documents",
    check: check_documents,
};
const CUSTOMS: Module = Module {
    name: "customs",
    check: check_customs,
};
const PAYMENTS: Module = Module {
    name: "payments",
    check: check_payments,
};
const REFERENCE: Module = Module {
    name: "reference",
    check: check_reference,
};
const TRACKING: Module = Module {
    name: "tracking",
    check: check_tracking,
};

/// The modules run for an event kind, in order. The ledger's state machine (custody
/// continuity, lifecycle, returns, membership quorum) runs after all of them.
pub fn modules_for(kind: &EventKind) -> &'static [Module] {
    match kind {
        EventKind::ShipmentRegistered(_)
        | EventKind::HandoffProposed(_)
        | EventKind::Delivered(_) => &[ROLES, DOCUMENTS],
        EventKind::CustomsDeclared(_) => &[ROLES, CUSTOMS],
        EventKind::DutyPaid(_) | EventKind::CustomsCleared(_) => &[ROLES, PAYMENTS],
        EventKind::ReferenceDataPublished(_) => &[ROLES, REFERENCE],
        EventKind::TrackingScanRecorded(_) => &[ROLES, TRACKING],
        EventKind::HandoffAccepted(_)
        | EventKind::ReturnRequested(_)
        | EventKind::ReturnReceived(_)
        | EventKind::DocumentAttested(_)
        | EventKind::PersonalDataErased(_) => &[ROLES],
        EventKind::MembershipChanged(_) => &[ROLES, SCHEDULE],
    }
}

const SCHEDULE: Module = Module {
    name: "schedule",
    check: check_schedule,
};

/// A `ScheduleRules` change may only name a version this build has: validators would stop
/// at its height otherwise. (Its order and height are the state machine's to check.)
fn check_schedule(_: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    let EventKind::MembershipChanged(e) = &event.event().event.kind else {
        return Ok(());
    };
    match &e.change {
        MembershipChange::ScheduleRules { activation }
            if !RULES_VERSIONS.contains(&activation.version) =>
        {
            Err(Rejection::new(
                codes::RULES_VERSION_UNKNOWN,
                format!("{}.change.schedule_rules.activation.version", path(event)),
                format!(
                    "rules version {} is not one this build runs ({RULES_VERSIONS:?})",
                    activation.version
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Runs every module for the event, in order; the first rejection wins.
pub fn check(ctx: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    for module in modules_for(&event.event().event.kind) {
        (module.check)(ctx, event)?;
    }
    Ok(())
}

fn path(event: &EncodedEvent) -> String {
    format!("event.kind.{}", event.event().event.kind.name())
}

/// The shipment an event names, or `shipment.unknown`.
fn shipment<'a>(
    ctx: &Ctx<'a>,
    id: &ShipmentId,
    path: &str,
) -> Result<&'a ShipmentState, Rejection> {
    ctx.state.shipment(id).ok_or_else(|| {
        Rejection::new(
            ledger_codes::SHIPMENT_UNKNOWN,
            format!("{path}.shipment_id"),
            format!("no shipment {id} is registered"),
        )
    })
}

fn check_documents(ctx: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    let path = path(event);
    match &event.event().event.kind {
        EventKind::ShipmentRegistered(e) => documents::check_registration(ctx, e, &path),
        EventKind::HandoffProposed(e) => documents::check_handoff(e, &path),
        EventKind::Delivered(e) => documents::check_delivery(e, &path),
        _ => Ok(()),
    }
}

fn check_customs(ctx: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    let path = path(event);
    if let EventKind::CustomsDeclared(e) = &event.event().event.kind {
        let s = shipment(ctx, &e.shipment_id, &path)?;
        customs::check_declaration(ctx.rules_version, ctx.book, ctx.block.time, s, e, &path)?;
    }
    Ok(())
}

fn check_payments(ctx: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    let path = path(event);
    match &event.event().event.kind {
        EventKind::DutyPaid(e) => {
            let s = shipment(ctx, &e.shipment_id, &path)?;
            let payer = signer_of(ctx.state, &event.event().signer)?;
            payments::check_payer(s, payer, e, &path)
        }
        EventKind::CustomsCleared(e) => {
            let s = shipment(ctx, &e.shipment_id, &path)?;
            payments::check_clearance(s, e, &path)
        }
        _ => Ok(()),
    }
}

fn check_tracking(_: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    match &event.event().event.kind {
        EventKind::TrackingScanRecorded(e) => tracking::check_scan(e, &path(event)),
        _ => Ok(()),
    }
}

/// Stable codes of the reference-data module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// A published table is malformed; the message says where.
    pub const REFERENCE_INVALID: Code = ContractCode::ReferenceInvalid.code();
    /// The rules version in force (or one a `ScheduleRules` change names) is not one this
    /// build can run.
    pub const RULES_VERSION_UNKNOWN: Code = ContractCode::RulesVersionUnknown.code();
}

fn invalid(field: String, message: String) -> Rejection {
    Rejection::new(codes::REFERENCE_INVALID, field, message)
}

fn check_reference(ctx: &Ctx<'_>, event: &EncodedEvent) -> Result<(), Rejection> {
    let path = format!("{}.data", path(event));
    let EventKind::ReferenceDataPublished(e) = &event.event().event.kind else {
        return Ok(());
    };
    match &e.data {
        ReferenceData::HsNomenclature(n) => {
            if let Some(i) = n.subheadings.windows(2).position(|w| w[0] >= w[1]) {
                return Err(invalid(
                    format!("{path}.hs_nomenclature.subheadings[{}]", i + 1),
                    "subheadings must be sorted ascending without duplicates".into(),
                ));
            }
            for (i, code) in n.subheadings.iter().enumerate() {
                let field = format!("{path}.hs_nomenclature.subheadings[{i}]");
                let digits = hs::normalize(&field, code)?;
                if digits.len() != 6 || digits != *code {
                    return Err(invalid(
                        field,
                        format!("{code:?} is not a six-digit subheading"),
                    ));
                }
                hs::check(&field, code, &[6], Some(n))?;
            }
        }
        ReferenceData::Tariff(t) => {
            identifiers::check_country(&format!("{path}.tariff.jurisdiction"), t.jurisdiction)?;
            identifiers::check_currency(&format!("{path}.tariff.currency"), t.currency)?;
            if t.vat_rate_ppm > 1_000_000 {
                return Err(invalid(
                    format!("{path}.tariff.vat_rate_ppm"),
                    "a rate above 100 % is not plausible".into(),
                ));
            }
            for (i, line) in t.lines.iter().enumerate() {
                let field = format!("{path}.tariff.lines[{i}]");
                let prefix = &line.hs_prefix;
                if !(2..=10).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid(
                        format!("{field}.hs_prefix"),
                        format!("{prefix:?} is not 2 to 10 digits"),
                    ));
                }
                if t.lines[..i].iter().any(|l| l.hs_prefix == *prefix) {
                    return Err(invalid(
                        format!("{field}.hs_prefix"),
                        format!("{prefix} appears twice"),
                    ));
                }
                let (ppm, per_quantity) = match &line.rate {
                    DutyRate::AdValorem { rate_ppm } => (*rate_ppm, 1),
                    DutyRate::Specific { per_quantity, .. } => (0, *per_quantity),
                    DutyRate::Compound {
                        rate_ppm,
                        per_quantity,
                        ..
                    } => (*rate_ppm, *per_quantity),
                };
                if ppm > 1_000_000 || per_quantity == 0 {
                    return Err(invalid(
                        format!("{field}.rate"),
                        "rates are at most 1,000,000 ppm and per a positive quantity".into(),
                    ));
                }
            }
        }
        ReferenceData::DeMinimis(d) => {
            for (i, rule) in d.rules.iter().enumerate() {
                let field = format!("{path}.de_minimis.rules[{i}]");
                if rule.jurisdictions.is_empty() {
                    return Err(invalid(
                        format!("{field}.jurisdictions"),
                        "a rule needs a jurisdiction".into(),
                    ));
                }
                for (k, c) in rule.jurisdictions.iter().chain(&rule.origins).enumerate() {
                    identifiers::check_country(&format!("{field}.countries[{k}]"), *c)?;
                }
                identifiers::check_currency(&format!("{field}.currency"), rule.currency)?;
                // Version 2 reads the transport modes: each at most once.
                if ctx.rules_version >= 2 {
                    if let Some(k) = (1..rule.transport_modes.len())
                        .find(|&k| rule.transport_modes[..k].contains(&rule.transport_modes[k]))
                    {
                        return Err(invalid(
                            format!("{field}.transport_modes[{k}]"),
                            format!("{:?} is listed twice", rule.transport_modes[k]),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The rule modules as the ledger runs them, with the reference data published so far.
#[derive(Debug, Clone, Default)]
pub struct ContractRules {
    /// Reference data published so far.
    pub book: ReferenceBook,
}

impl ContractRules {
    /// Rules over a reference book (loaded from a store with `ReferenceBook::load`).
    pub fn new(book: ReferenceBook) -> ContractRules {
        ContractRules { book }
    }
}

impl Rules for ContractRules {
    fn check(
        &self,
        state: &State,
        event: &EncodedEvent,
        block: BlockContext,
    ) -> Result<(), Rejection> {
        let rules_version = state.rules_version_at(block.height);
        // A schedule naming a version this build does not have (a newer release's) stops the
        // node judging rather than judging by the wrong rules.
        if !RULES_VERSIONS.contains(&rules_version) {
            return Err(Rejection::new(
                codes::RULES_VERSION_UNKNOWN,
                "block.height",
                format!(
                    "rules version {rules_version} is in force at height {}; this build runs \
                     versions {RULES_VERSIONS:?}",
                    block.height
                ),
            ));
        }
        check(
            &Ctx {
                state,
                book: &self.book,
                block,
                rules_version,
            },
            event,
        )
    }

    fn applied(&mut self, event: &EncodedEvent, _: BlockContext) {
        self.book.learn(event);
    }
}

/// The ledger's or a rule module's code with this stable string, if there is one.
pub fn code_named(text: &str) -> Option<Code> {
    let ledger = ledger_codes::ALL.iter().copied();
    let rules = ContractCode::ALL.iter().map(|code| code.code());
    ledger.chain(rules).find(|code| code.as_str() == text)
}

/// Every stable code the rule modules produce, with its module, in documentation order.
/// `docs/RULES.md` explains each; a test keeps the two in step.
pub fn contract_codes() -> Vec<(&'static str, &'static str)> {
    ContractCode::ALL
        .iter()
        .map(|code| (code.module(), code.as_str()))
        .collect()
}
