//! Rust SDK over the Custody HTTP API, the offline verifier and the `custody` CLI.
//!
//! - [`Client`] speaks the HTTP API v1 of a node: submitting signed events and reading
//!   events, shipments, bundles, members, blocks and log proofs. Its JSON shapes are the
//!   ledger's own types ([`custody_ledger::view`], [`custody_ledger::bundle`]), so the SDK and
//!   the node cannot disagree about them.
//! - [`build`] signs events of every kind with a member's key.
//! - [`epcis`] captures an EPCIS 2.0 document: each event mapped, resolved against the
//!   ledger, signed with the member's key and committed, with a report per event.
//! - [`verify`] checks a provenance bundle offline against a genesis file, and replays a
//!   node's whole chain from the genesis with the same functions the validators run.
//! - [`personal`] signs the requests that give a node a shipment's personal data and read
//!   it back ([`Client::disclose`], [`Client::personal`], [`Client::erase`]).
//! - [`keyfile`] reads and writes ed25519 keys as PKCS#8 PEM files.
//! - [`timeline`] renders a shipment's history for people.
//! - [`cli`] is the `custody` command line, a thin layer over these modules; the `custody`
//!   binary only runs it.

pub mod build;
pub mod cli;
mod client;
pub mod epcis;
pub mod keyfile;
pub mod personal;
pub mod timeline;
pub mod verify;

pub use client::{
    batch_chunks, Client, ClientError, ShipmentQuery, Submitted, PAGES_MAX, REQUEST_TIMEOUT_MS,
    RESPONSE_SIZE_BYTES_MAX,
};
