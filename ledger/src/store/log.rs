//! The RFC 6962 log's complete subtrees in the `log` tree.
//!
//! The bottom levels are stored as tiles: tile `t` holds every node over leaves
//! `[16t, 16t + 16)`, levels 0 to 4 (31 hashes, 992 bytes), under one key. Stored node by
//! node, each leaf cost one insert and each interior node another, about two per event; a
//! tile is one insert per 16 events, and a proof's or an append's reads near the bottom of
//! the tree fall in one tile anyway.
//!
//! | key                            | value                                         |
//! |--------------------------------|-----------------------------------------------|
//! | `T` ‖ tile index (u64 BE)      | the tile's 31 hashes: level 0, then 1, … 4    |
//! | level (u8) ‖ index (u64 BE)    | one subtree hash                              |
//!
//! A node of level 5 or above is always stored alone. A node of levels 0 to 4 is stored alone
//! only while its tile is incomplete (the log's last, partial tile); the block that completes
//! the tile writes it whole, and reads look in the tile first. The lone copies of a completed
//! tile stay (at most 30 per block, hashes that never change): removing them would cost as
//! many writes as they did. Levels are below 64, so no level byte is `T`.

use std::collections::BTreeMap;

use super::{Store, StoreError, Tree, WriteBatch};
use crate::hash::Digest;

/// The level of a tile's root: tiles span levels 0 to `TILE_LEVEL`.
const TILE_LEVEL: u32 = 4;
/// Leaves under one tile.
const TILE_LEAVES: u64 = 1 << TILE_LEVEL;
/// Hashes in one tile: every level from the leaves to the root.
const TILE_NODES: usize = 2 * TILE_LEAVES as usize - 1;
const TILE_TAG: u8 = b'T';
const HASH_LEN: usize = 32;

/// The key of a node stored alone.
fn node_key(level: u32, index: u64) -> Vec<u8> {
    let level = u8::try_from(level).expect("log levels are below 64");
    assert!(level < TILE_TAG, "a level byte never reads as the tile tag");
    let mut key = Vec::with_capacity(9);
    key.push(level);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn tile_key(tile: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(TILE_TAG);
    key.extend_from_slice(&tile.to_be_bytes());
    key
}

/// The tile holding node (`level`, `index`), if its level is in tiles.
fn tile_of(level: u32, index: u64) -> Option<u64> {
    (level <= TILE_LEVEL).then(|| index >> (TILE_LEVEL - level))
}

/// Where node (`level`, `index`) sits in its tile's hashes: the levels below it come first.
fn slot(level: u32, index: u64) -> usize {
    assert!(level <= TILE_LEVEL);
    let below = 2 * TILE_LEAVES - ((2 * TILE_LEAVES) >> level);
    let within = index & ((TILE_LEAVES >> level) - 1);
    usize::try_from(below + within).expect("a slot is below 31")
}

fn corrupt(level: u32, index: u64, message: &str) -> StoreError {
    StoreError::Corrupt {
        record: format!("log node {level}/{index}"),
        message: message.into(),
    }
}

/// The stored hash of the complete subtree (`level`, `index`), if stored.
pub(super) fn node<S: Store + ?Sized>(
    store: &S,
    level: u32,
    index: u64,
) -> Result<Option<Digest>, StoreError> {
    if let Some(tile) = tile_of(level, index) {
        if let Some(hashes) = store.get(Tree::Log, &tile_key(tile))? {
            if hashes.len() != TILE_NODES * HASH_LEN {
                return Err(corrupt(level, index, "its tile is not 31 hashes"));
            }
            let at = slot(level, index) * HASH_LEN;
            let hash = <[u8; HASH_LEN]>::try_from(&hashes[at..at + HASH_LEN])
                .expect("a tile slot is 32 bytes");
            return Ok(Some(Digest(hash)));
        }
    }
    store
        .get(Tree::Log, &node_key(level, index))?
        .map(|bytes| {
            <[u8; HASH_LEN]>::try_from(bytes.as_slice())
                .map(Digest)
                .map_err(|_| corrupt(level, index, "expected 32 bytes"))
        })
        .transpose()
}

/// Adds to `batch` the nodes that growing the log from `old_size` to `new_size` leaves
/// created (`created`: every new complete subtree, as `merkle::append_nodes` lists them):
/// each tile the growth completes as one record, every other new node alone.
pub(super) fn write_nodes<S: Store + ?Sized>(
    store: &S,
    batch: &mut WriteBatch,
    created: &[(u32, u64, Digest)],
    old_size: u64,
    new_size: u64,
) -> Result<(), StoreError> {
    assert!(old_size <= new_size);
    let complete_tiles_end = new_size / TILE_LEAVES;
    let by_place: BTreeMap<(u32, u64), Digest> =
        created.iter().map(|(l, i, d)| ((*l, *i), *d)).collect();
    for tile in old_size / TILE_LEAVES..complete_tiles_end {
        let hashes = tile_hashes(store, &by_place, tile)?;
        batch.put(Tree::Log, tile_key(tile), hashes);
    }
    for (level, index, hash) in created {
        let in_complete_tile = tile_of(*level, *index).is_some_and(|t| t < complete_tiles_end);
        if !in_complete_tile {
            batch.put(
                Tree::Log,
                node_key(*level, *index),
                hash.as_bytes().to_vec(),
            );
        }
    }
    Ok(())
}

/// The 31 hashes of a complete tile: created by this append, or stored alone by the
/// appends that began it.
fn tile_hashes<S: Store + ?Sized>(
    store: &S,
    created: &BTreeMap<(u32, u64), Digest>,
    tile: u64,
) -> Result<Vec<u8>, StoreError> {
    let mut hashes = vec![0u8; TILE_NODES * HASH_LEN];
    for level in 0..=TILE_LEVEL {
        let width = TILE_LEAVES >> level;
        for index in tile * width..(tile + 1) * width {
            let hash = match created.get(&(level, index)) {
                Some(hash) => *hash,
                None => node(store, level, index)?
                    .ok_or_else(|| corrupt(level, index, "missing under a completed tile"))?,
            };
            let at = slot(level, index) * HASH_LEN;
            hashes[at..at + HASH_LEN].copy_from_slice(hash.as_bytes());
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, MemoryLog, SubtreeSource};
    use crate::store::MemoryStore;

    struct Stored<'a>(&'a MemoryStore);

    impl SubtreeSource for Stored<'_> {
        type Error = StoreError;
        fn subtree(&self, level: u32, index: u64) -> Result<Digest, StoreError> {
            node(self.0, level, index)?.ok_or_else(|| corrupt(level, index, "missing"))
        }
    }

    fn leaf(i: u64) -> Digest {
        merkle::leaf_hash(&i.to_be_bytes())
    }

    /// Appends `count` leaves to the stored log of `size` leaves, as a block does.
    fn append(store: &MemoryStore, size: u64, count: u64) -> u64 {
        let leaves: Vec<Digest> = (size..size + count).map(leaf).collect();
        let created = merkle::append_nodes(&Stored(store), size, &leaves).expect("append");
        let mut batch = WriteBatch::default();
        write_nodes(store, &mut batch, &created, size, size + count).expect("write");
        store.commit(batch).expect("commit");
        size + count
    }

    /// Every complete subtree of the first `size` leaves, read from the store, is the one
    /// the in-memory log computes.
    fn assert_all_nodes(store: &MemoryStore, log: &MemoryLog, size: u64) {
        for level in 0..=size.ilog2() {
            for index in 0..size >> level {
                assert_eq!(
                    node(store, level, index).expect("read"),
                    Some(log.subtree(level, index).expect("memory")),
                    "node {level}/{index} at size {size}"
                );
            }
        }
    }

    #[test]
    fn appends_of_every_size_and_offset_store_every_node_once_readable() {
        let log: MemoryLog = (0..400).map(leaf).collect();
        // Appends that start and end inside tiles, fill one exactly, and span several.
        for chunk in [1, 3, 7, 16, 17, 33, 100] {
            let store = MemoryStore::new(Digest::sha256(b"tiles"));
            let mut size = 0;
            while size + chunk <= 400 {
                size = append(&store, size, chunk);
                assert_all_nodes(&store, &log, size);
                assert_eq!(
                    merkle::root(&Stored(&store), size).expect("root"),
                    log.root_at(size).expect("memory root")
                );
            }
        }
    }

    #[test]
    fn a_block_of_a_thousand_leaves_writes_about_one_record_per_seven_leaves() {
        let store = MemoryStore::new(Digest::sha256(b"tiles"));
        let size = append(&store, 0, 1_005);
        let leaves: Vec<Digest> = (size..size + 1_000).map(leaf).collect();
        let created = merkle::append_nodes(&Stored(&store), size, &leaves).expect("append");
        let mut batch = WriteBatch::default();
        write_nodes(&store, &mut batch, &created, size, size + 1_000).expect("write");
        // 63 tiles completed (from leaf 992 to leaf 2,000), the nodes of level 5 and above
        // (1,000/32 + 1,000/64 + … < 64), and at most 30 lone nodes of the last, partial
        // tile: node by node, it was one record per node, 2,000.
        assert!(created.len() >= 1_999, "{}", created.len());
        assert!(batch.writes.len() <= 63 + 64 + 30, "{}", batch.writes.len());
    }

    #[test]
    fn a_tile_of_the_wrong_length_is_corrupt_not_a_panic() {
        let store = MemoryStore::new(Digest::sha256(b"tiles"));
        append(&store, 0, 16);
        store.put_raw(Tree::Log, &tile_key(0), vec![0; 31]);
        assert!(matches!(
            node(&store, 2, 1),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
