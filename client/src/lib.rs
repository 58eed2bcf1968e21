//! Rust SDK over the Custody HTTP API, the offline verifier and the `custody` CLI.
//!
//! This crate is empty until the API issue lands; see ARCHITECTURE.md.
