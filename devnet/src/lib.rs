//! The Custody devnet.
//!
//! This crate is empty until the devnet issue lands; see ARCHITECTURE.md.
