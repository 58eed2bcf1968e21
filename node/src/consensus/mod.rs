//! Consensus: our Malachite context, signatures and codecs, and the application loop that
//! proposes, validates and commits blocks.

pub mod codec;
pub mod context;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod fetch;
pub mod host;
pub mod proposals;
pub mod signing;
pub mod streams;
