//! The Custody devnet: a whole network on one machine in one command.
//!
//! - `up` creates a devnet directory on first use — member and node keys (PKCS#8 PEM), a
//!   genesis of the founding organisations, a TOML configuration per node with free ports —
//!   and starts every node as a child process of this binary (`custody-devnet node`), each
//!   with its own sled store, on 127.0.0.1. It waits until every node serves and commits,
//!   supervises them until Ctrl-C, and resumes the same chain on the same ports next time.
//!   `--detach` leaves them running; `down` stops them.
//! - `--demo` (or `demo`) publishes the reference data and runs four realistic cross-border
//!   shipments through the SDK ([`demo`]).
//! - `bench` loads a devnet with pre-signed shipment lifecycles and measures committed
//!   throughput, submit-to-commit latency, CPU and disk use, checking its own run
//!   ([`bench`]).
//! - Both, and the whole-network tests, run their shipments through one scenario
//!   ([`scenario`]): the lifecycle as data, signed for any network's members and keys.
//!
//! The binary's `main.rs` only calls [`cli::main`].

pub mod bench;
pub mod cli;
pub mod demo;
pub mod documents;
pub mod layout;
pub mod network;
pub mod nodecmd;
pub mod process;
pub mod reference;
pub mod roster;
pub mod runstate;
pub mod scenario;
pub mod setup;
pub mod submit;
pub mod up;
