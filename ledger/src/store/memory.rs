//! An in-memory [`Store`] for tests: ordered maps behind one lock.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use super::{KeyValue, Store, StoreError, Tree, WriteBatch};
use crate::hash::Digest;

type Trees = [BTreeMap<Vec<u8>, Vec<u8>>; 7];

/// A store that keeps everything in memory. A batch is applied under one write lock, so
/// readers see all of it or none of it.
#[derive(Debug)]
pub struct MemoryStore {
    genesis_hash: Digest,
    trees: RwLock<Trees>,
    /// `get` calls per tree, for tests that bound what an operation reads.
    gets: [AtomicU64; Tree::ALL.len()],
}

impl MemoryStore {
    /// An empty store for a network.
    pub fn new(genesis_hash: Digest) -> MemoryStore {
        MemoryStore {
            genesis_hash,
            trees: RwLock::new(Default::default()),
            gets: Default::default(),
        }
    }

    /// The `get` calls made of `tree` since the store was created.
    pub fn gets(&self, tree: Tree) -> u64 {
        self.gets[tree.position()].load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Trees> {
        // A poisoned lock means a writer panicked mid-batch, which `commit` cannot do.
        self.trees.read().expect("memory store lock poisoned")
    }

    /// Overwrites one raw value, bypassing the ledger layout: for tests that tamper.
    pub fn put_raw(&self, tree: Tree, key: &[u8], value: Vec<u8>) {
        self.trees.write().expect("memory store lock poisoned")[tree.position()]
            .insert(key.to_vec(), value);
    }

    /// Removes one raw value, bypassing the ledger layout: for tests that damage a store.
    pub fn delete_raw(&self, tree: Tree, key: &[u8]) {
        self.trees.write().expect("memory store lock poisoned")[tree.position()].remove(key);
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.gets[tree.position()].fetch_add(1, Ordering::Relaxed);
        Ok(self.read()[tree.position()].get(key).cloned())
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let trees = self.read();
        let start = match after {
            Some(after) => Bound::Excluded(after.to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        Ok(trees[tree.position()]
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut trees = self.trees.write().expect("memory store lock poisoned");
        for (tree, key, value) in batch.writes {
            match value {
                Some(value) => trees[tree.position()].insert(key, value),
                None => trees[tree.position()].remove(&key),
            };
        }
        Ok(())
    }

    fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }
}
