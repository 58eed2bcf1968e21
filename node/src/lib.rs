//! The Custody peer: consensus over Malachite, event gossip over libp2p, the mempool and
//! the HTTP API. See ARCHITECTURE.md.

pub mod admission;
pub mod api;
pub mod batch;
pub mod browse;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod epcis;
pub mod event_fetch;
pub mod explorer;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_checks;
pub mod gossip;
pub mod health;
pub mod http;
pub mod intake;
pub mod keys;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod personal;
pub mod quote;
pub mod repair;
