//! The events of each shipment and of each signer, by log index, in the `index` tree.
//!
//! A block writes one record per shipment and per signer it names, not one per event:
//!
//! `prefix ‖ last log index (u64 BE)` → (log index (u64 BE) ‖ event id) for each of the
//! block's events in the list, ascending
//!
//! where the prefix is `S` ‖ shipment id ‖ `0` or `M` ‖ signer key. A 1,000-event block of 90
//! shipments and a handful of signers writes about a hundred records where it wrote two
//! thousand. Keying a record by its last log index lets a page that starts after log index
//! `a` begin with a scan after `prefix ‖ a`: the first record found is the first whose last
//! event is after `a`, and only that record can also hold events at or before `a`.

use std::collections::BTreeMap;

use super::{Store, StoreError, Tree, WriteBatch};
use crate::hash::Digest;
use crate::model::EventId;

const ENTRY_LEN: usize = 8 + 32;
/// Most records read by one scan while filling a page; a record holds at most a block's
/// events, so a page never reads far past its end.
const RECORDS_PER_SCAN_MAX: usize = 16;

/// The list records of one block, by prefix, built as its events are laid out.
#[derive(Debug, Default)]
pub(super) struct BlockLists {
    lists: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
}

impl BlockLists {
    /// Adds the event at `log_index` to the list under `prefix`; events come in log order.
    pub(super) fn add(&mut self, prefix: Vec<u8>, log_index: u64, id: &EventId) {
        let (last, entries) = self.lists.entry(prefix).or_default();
        assert!(
            entries.is_empty() || log_index > *last,
            "a block's events come in log order"
        );
        *last = log_index;
        entries.extend_from_slice(&log_index.to_be_bytes());
        entries.extend_from_slice(id.as_bytes());
    }

    /// One put per list.
    pub(super) fn write(self, batch: &mut WriteBatch) {
        for (mut key, (last, entries)) in self.lists {
            key.extend_from_slice(&last.to_be_bytes());
            batch.put(Tree::Index, key, entries);
        }
    }
}

/// Up to `limit` (log index, event id) pairs of the list under `prefix`, after
/// `after_log_index`, in log order.
pub(super) fn read<S: Store + ?Sized>(
    store: &S,
    prefix: &[u8],
    after_log_index: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, EventId)>, StoreError> {
    let after = |log_index: u64| after_log_index.is_none_or(|a| log_index > a);
    let mut out = Vec::new();
    let mut cursor = after_log_index.map(|a| key(prefix, a));
    let records_per_scan = limit.clamp(1, RECORDS_PER_SCAN_MAX);
    while out.len() < limit {
        let records = store.scan(Tree::Index, prefix, cursor.as_deref(), records_per_scan)?;
        for (key, value) in &records {
            let entries = decode(prefix, key, value)?;
            out.extend(entries.into_iter().filter(|(i, _)| after(*i)));
        }
        match records.last() {
            Some((last, _)) if records.len() == records_per_scan => cursor = Some(last.clone()),
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

fn key(prefix: &[u8], log_index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&log_index.to_be_bytes());
    key
}

/// A record's entries, checked: whole entries, ascending, the last one the key's.
fn decode(prefix: &[u8], key: &[u8], value: &[u8]) -> Result<Vec<(u64, EventId)>, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        record: format!("event list {}", String::from_utf8_lossy(key)),
        message: message.into(),
    };
    let last = key
        .get(prefix.len()..)
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("key is not the prefix and a log index"))?;
    if value.is_empty() || !value.len().is_multiple_of(ENTRY_LEN) {
        return Err(corrupt("not a whole number of entries"));
    }
    let entries: Vec<(u64, EventId)> = value
        .chunks_exact(ENTRY_LEN)
        .map(|entry| {
            let (index, id) = entry.split_at(8);
            let index = u64::from_be_bytes(index.try_into().expect("8 bytes"));
            (index, Digest(id.try_into().expect("32 bytes")))
        })
        .collect();
    let ascending = entries.windows(2).all(|pair| pair[0].0 < pair[1].0);
    if !ascending || entries.last().map(|(i, _)| *i) != Some(last) {
        return Err(corrupt(
            "entries out of order or not ending at the key's index",
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn id(n: u64) -> EventId {
        Digest::sha256(&n.to_be_bytes())
    }

    /// A list with events at log indexes 0, 2, 4, … 98, written ten per block.
    fn store_with_list(prefix: &[u8]) -> MemoryStore {
        let store = MemoryStore::new(Digest::sha256(b"lists"));
        for block in 0..5u64 {
            let mut lists = BlockLists::default();
            for n in 0..10 {
                let log_index = (block * 10 + n) * 2;
                lists.add(prefix.to_vec(), log_index, &id(log_index));
            }
            let mut batch = WriteBatch::default();
            lists.write(&mut batch);
            assert_eq!(batch.writes.len(), 1, "one record per list per block");
            store.commit(batch).expect("commit");
        }
        store
    }

    #[test]
    fn pages_after_any_log_index_are_the_list_from_there() {
        let prefix = b"Sshipment\0";
        let store = store_with_list(prefix);
        let all: Vec<(u64, EventId)> = (0..50).map(|n| (n * 2, id(n * 2))).collect();
        assert_eq!(read(&store, prefix, None, 1_000).expect("read"), all);
        for after in 0..100 {
            for limit in [0, 1, 3, 10, 25, 100] {
                let expected: Vec<_> = all
                    .iter()
                    .filter(|(i, _)| *i > after)
                    .take(limit)
                    .copied()
                    .collect();
                let page = read(&store, prefix, Some(after), limit).expect("read");
                assert_eq!(page, expected, "after {after}, limit {limit}");
            }
        }
        // Another list's prefix finds nothing.
        assert!(read(&store, b"Sother\0", None, 10)
            .expect("read")
            .is_empty());
    }

    #[test]
    fn a_record_cut_short_or_out_of_order_is_corrupt() {
        let prefix = b"Sshipment\0";
        let store = store_with_list(prefix);
        let (key, value) = store
            .scan(Tree::Index, prefix, None, 1)
            .expect("scan")
            .remove(0);
        store.put_raw(Tree::Index, &key, value[..value.len() - 1].to_vec());
        assert!(matches!(
            read(&store, prefix, None, 10),
            Err(StoreError::Corrupt { .. })
        ));
        let mut swapped = value[ENTRY_LEN..2 * ENTRY_LEN].to_vec();
        swapped.extend_from_slice(&value[..ENTRY_LEN]);
        swapped.extend_from_slice(&value[2 * ENTRY_LEN..]);
        store.put_raw(Tree::Index, &key, swapped);
        assert!(matches!(
            read(&store, prefix, None, 10),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
