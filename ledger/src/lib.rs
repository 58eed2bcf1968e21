//! Custody's ledger: the data model, its canonical encoding, signatures, the verifiable log,
//! blocks and commit certificates, the custody state machine, and storage.
//!
//! **Architecture invariant:** nothing here does I/O, starts a thread, opens a socket, reads a
//! clock or draws randomness. Time and keys come in as arguments. Storage is the
//! [`store::Store`] trait; its sled implementation, which does the I/O and runs sled's threads,
//! is the `custody-sled` crate.

pub mod block;
pub mod bundle;
pub mod cause;
pub mod cbv;
pub mod chain;
pub mod codec;
pub mod entry;
pub mod event;
pub mod genesis;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod model;
pub mod personal;
pub mod reject;
pub mod rules;
pub mod smt;
pub mod state;
pub mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod verify;
pub mod view;

pub use hash::Digest;
pub use keys::{Keypair, PublicKey, Signature};
pub use model::EventId;
pub use time::Timestamp;
