//! The test rig: whole Custody networks of real node processes on loopback, with the faults a
//! test injects, and the checker that judges what the network did.
//!
//! - [`Network`] starts the test network's four validators (and the auditor's full node) as
//!   processes of a [`Program`], each with its own sled store, and gives typed handles:
//!   submit, wait for a height, kill (SIGKILL), pause (SIGSTOP) and resume, terminate,
//!   restart, damage a store, read logs and commits.
//! - Every connection between two nodes (consensus, gossip, and HTTP between personal-data
//!   peers) goes through a [`proxy::Proxy`] of the rig: a real TCP relay that a test can cut,
//!   delay or make one-way, so partitions are real sockets going quiet, not a mock network.
//!   The proxies' listeners are bound on port 0 and held for the whole test; nodes bind port 0
//!   for HTTP and gossip and print where.
//! - [`chaos`] drives load through the SDK while a schedule injects faults, and checks the
//!   history afterwards: every acknowledged event committed exactly once on every node, all
//!   nodes agreeing on every height, every chain verifying, and no block decided while too
//!   few validators could talk (against the [`connectivity::Timeline`] the rig records).
//!
//! The programs come from this package's binaries (`custody-rig-node`, `custody-rig-cli`),
//! because Cargo gives an integration test the path of its own package's binaries only; the
//! node program is built with custody-node's `fault-injection` feature.

pub mod chaos;
pub mod command;
pub mod connectivity;
pub mod http;
pub mod network;
pub mod proxy;
pub mod slots;
pub mod wait;

pub use network::{compare_stores, Damage, Network, NetworkBuilder, Program};
pub use wait::{now_ms, wait_until};
