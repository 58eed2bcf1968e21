//! The extension point for rule modules.
//!
//! The ledger's state machine owns custody continuity and the lifecycle. Everything else a
//! validator checks — documents, identifiers, tariffs, duties and taxes, reference data in
//! force — is a [`Rules`] implementation, supplied by `custody-contracts`. Block building,
//! block validation and full verification run the rules on every event, after its shape and
//! signature and before the state machine, so that verification replays exactly what the
//! validators decided.

use crate::event::EncodedEvent;
use crate::reject::Rejection;
use crate::state::{BlockContext, State};

/// Rule modules run on every event.
///
/// `check` must be a pure, deterministic function of its arguments and of what `applied`
/// has been told: no clock, no randomness, no floats, no hash-map order.
pub trait Rules: Clone {
    /// Judges an event against the state before it, at its block's height and time.
    fn check(
        &self,
        state: &State,
        event: &EncodedEvent,
        ctx: BlockContext,
    ) -> Result<(), Rejection>;

    /// Learns from an event that was applied: reference data published, for example, is in
    /// force for later events once its effective date is reached.
    fn applied(&mut self, event: &EncodedEvent, ctx: BlockContext);
}

/// No rules beyond the state machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRules;

impl Rules for NoRules {
    fn check(&self, _: &State, _: &EncodedEvent, _: BlockContext) -> Result<(), Rejection> {
        Ok(())
    }

    fn applied(&mut self, _: &EncodedEvent, _: BlockContext) {}
}
