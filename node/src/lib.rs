//! The Custody peer.
//!
//! This crate is empty until the node issue lands; see ARCHITECTURE.md.
