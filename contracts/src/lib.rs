//! Rule modules and reference data for Custody.
//!
//! This crate is empty until the rule-modules issue lands; see ARCHITECTURE.md.
