//! The sled-backed [`Store`].

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::layout::GENESIS_KEY;
use super::{KeyValue, Store, StoreError, Tree, WriteBatch};
use crate::hash::Digest;

/// A sled database with one sled tree per [`Tree`].
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    trees: [sled::Tree; 6],
    genesis_hash: Digest,
}

fn io(error: sled::Error) -> StoreError {
    StoreError::Io(error.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `path` for the network with `genesis_hash`, and
    /// checks the stored chain. Refuses a store of another network and a broken chain,
    /// naming the first bad height.
    pub fn open(path: impl AsRef<Path>, genesis_hash: Digest) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().path(path).open().map_err(io)?;
        let open = |tree: Tree| db.open_tree(tree.name()).map_err(io);
        let trees = [
            open(Tree::Meta)?,
            open(Tree::Blocks)?,
            open(Tree::Events)?,
            open(Tree::Index)?,
            open(Tree::State)?,
            open(Tree::Log)?,
        ];
        let store = SledStore {
            db,
            trees,
            genesis_hash,
        };
        match store.trees[Tree::Meta.position()]
            .get(GENESIS_KEY)
            .map_err(io)?
        {
            Some(stored) => {
                let stored = <[u8; 32]>::try_from(stored.as_ref())
                    .map(Digest)
                    .map_err(|_| StoreError::Corrupt {
                        record: "genesis".into(),
                        message: "expected 32 bytes".into(),
                    })?;
                if stored != genesis_hash {
                    return Err(StoreError::GenesisMismatch {
                        stored,
                        expected: genesis_hash,
                    });
                }
            }
            None => {
                let mut batch = WriteBatch::default();
                batch.put(
                    Tree::Meta,
                    GENESIS_KEY.to_vec(),
                    genesis_hash.as_bytes().to_vec(),
                );
                store.commit(batch)?;
            }
        }
        store.check_chain()?;
        Ok(store)
    }

    /// The raw sled tree behind a [`Tree`], for tools and tests that inspect bytes on disk.
    pub fn raw_tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.position()]
    }

    /// Bytes sled occupies on disk.
    pub fn size_on_disk_bytes(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(io)
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.trees[tree.position()]
            .get(key)
            .map_err(io)?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let tree = &self.trees[tree.position()];
        let iter = match after {
            Some(after) => tree
                .range::<&[u8], _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => tree.range::<&[u8], _>(prefix..),
        };
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(io)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let [meta, blocks, events, index, state, log] = &self.trees;
        (meta, blocks, events, index, state, log)
            .transaction(|(meta, blocks, events, index, state, log)| {
                for (tree, key, value) in &batch.puts {
                    let target = match tree {
                        Tree::Meta => meta,
                        Tree::Blocks => blocks,
                        Tree::Events => events,
                        Tree::Index => index,
                        Tree::State => state,
                        Tree::Log => log,
                    };
                    target.insert(key.as_slice(), value.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|error: TransactionError<()>| StoreError::Io(format!("{error:?}")))?;
        // Acknowledge only once the batch is on disk.
        self.db.flush().map_err(io)?;
        Ok(())
    }

    fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }
}
