//! The wall clock, read in one place. Only the node reads it: to propose a block time, to
//! refuse proposals from the future, and to judge admission at the next block's time. The
//! ledger and the rules never do.

use custody_ledger::Timestamp;

/// Now, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}
