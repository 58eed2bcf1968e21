//! Custody's rule modules: the checks every validator runs on every event, beyond the
//! ledger's custody state machine, and the reference data they read.
//!
//! A rule module is a pure function of the ledger state before the event, the reference data
//! in force at the block's time, and the event. It accepts or rejects with a stable code, a
//! message and the offending field. No module reads a clock, draws randomness, uses floats or
//! depends on hash-map order. The [`registry`] runs the modules of each event kind in a fixed
//! order; [`ContractRules`] plugs them into the ledger's block building, block validation and
//! full verification. `docs/RULES.md` lists every code.

mod code;
pub mod customs;
pub mod documents;
pub mod hs;
pub mod identifiers;
pub mod load;
pub mod money;
pub mod payments;
pub mod reference;
pub mod regimes;
pub mod registry;
pub mod roles;
pub mod tracking;

pub use code::ContractCode;
pub use reference::ReferenceBook;
pub use registry::{ContractRules, Ctx};
