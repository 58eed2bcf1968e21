//! The sled-backed [`Store`] of the Custody ledger.
//!
//! The ledger crate (`custody-ledger`) defines the [`Store`] trait, the key layout written on
//! top of it and an in-memory store; it does no I/O and starts no thread. This crate is the
//! implementation a node runs: a sled database, whose files and background threads live here,
//! outside the ledger.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

mod filter;

use filter::IdFilter;

/// sled itself, for tools and tests that write sled files of their own.
pub use sled;

use custody_ledger::cause::Cause;
use custody_ledger::hash::Digest;
use custody_ledger::store::{
    KeyValue, Store, StoreError, Tree, WriteBatch, FORMAT_KEY, GENESIS_KEY, STORE_FORMAT,
};

/// A sled database holding every [`Tree`] in one sled tree, each key prefixed with its
/// tree's tag ([`tagged`]).
///
/// One sled tree, not one per [`Tree`], because a block is one atomic write and sled makes a
/// write atomic across trees only inside a transaction, which reads every key it writes
/// before writing it: a third of the store's CPU in the devnet benchmark. A batch applied to
/// one tree is as atomic (sled seals it in its log as one unit) and reads nothing.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    genesis_hash: Digest,
    path: PathBuf,
    writes: Arc<WriteCounts>,
    /// The ids in [`Tree::Events`], so that a check for an absent event reads no page.
    event_ids: Arc<RwLock<IdFilter>>,
}

/// The design load of the first event-id filter; later ones double (`filter.rs`).
const EVENT_FILTER_FIRST_IDS: u64 = 1 << 16;
/// The length of an event id, the key of [`Tree::Events`].
const EVENT_ID_LEN: usize = 32;
/// The name of the one sled tree the store writes.
const LEDGER_TREE: &str = "ledger";
/// The tree that held [`Tree::Meta`] in format v6 and earlier, when each [`Tree`] was a sled
/// tree of its own: its presence marks a directory of an earlier format.
const OLD_META_TREE: &str = "meta";

/// `key` of `tree` as a key of the one sled tree: the tree's tag byte, then the key.
fn tagged(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(tag(tree));
    out.extend_from_slice(key);
    out
}

/// The first byte of every key of `tree`: its place in [`Tree::ALL`], an order the store
/// format fixes.
fn tag(tree: Tree) -> u8 {
    u8::try_from(tree.position()).expect("fewer than 256 trees")
}

/// sled inserts and removals committed per tree, indexed by [`Tree::position`]: how much a
/// block costs the database, which tests bound and benchmarks report.
#[derive(Debug, Default)]
struct WriteCounts([AtomicU64; Tree::ALL.len()]);

impl WriteCounts {
    fn add(&self, batch: &WriteBatch) {
        for (tree, _, _) in &batch.writes {
            self.0[tree.position()].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self) -> [u64; Tree::ALL.len()] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// How long opening waits for sled's file lock. sled releases it when the last handle on its
/// file closes, which its background I/O threads may do a moment after the database is
/// dropped; a store opened right after a probe, or reopened in the same process, waits for
/// that instead of failing.
const LOCK_WAIT_MS: u64 = 2000;

/// Opens the sled database in `path`, waiting up to [`LOCK_WAIT_MS`] for its file lock.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + Duration::from_millis(LOCK_WAIT_MS);
    loop {
        match sled::Config::new().path(path).open() {
            // sled reports a held lock only in this message (an `Other` I/O error).
            Err(sled::Error::Io(error))
                if error.to_string().starts_with("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result.map_err(|error| sled_error(path, error)),
        }
    }
}

/// A sled error as a store error; corruption sled detects itself names the store's folder.
fn sled_error(path: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Corruption { .. } => StoreError::Damaged {
            path: path.to_owned(),
            message: error.to_string(),
        },
        error => StoreError::Io(Cause::new(error)),
    }
}

/// Runs `f`, turning a panic into [`StoreError::Damaged`] naming the folder at `path`.
///
/// sled 0.34 does not always return an error for damaged files: a `db` file cut short or with
/// bytes flipped near its end can make it panic while it recovers the file (in its segment or
/// snapshot code), which would kill the node with an assertion nobody can act on. The default panic hook still prints sled's
/// message; it is left alone because it is process-wide and other threads may be running.
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(StoreError::Damaged {
            path: path.to_owned(),
            message: format!("sled panicked reading it: {}", panic_text(payload.as_ref())),
        })
    })
}

/// A handle on a database that is leaked, not dropped, if a panic unwinds past it. The last
/// handle on a sled tree flushes when dropped; if the panic came from damaged files, the flush
/// may panic again, and a panic while unwinding aborts the process. Holding a handle on the
/// database keeps every tree opened through it alive. Leaking keeps the files locked until the
/// process exits, which it does after reporting the damage.
struct LeakOnUnwind(Option<sled::Db>);

impl Drop for LeakOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

impl SledStore {
    /// Opens (or creates) the store in `path` for the network with `genesis_hash`, and
    /// checks the stored chain. Refuses a store of another network and a broken chain,
    /// naming the first bad height. Damaged files are [`StoreError::Damaged`], never a panic.
    pub fn open(path: impl AsRef<Path>, genesis_hash: Digest) -> Result<SledStore, StoreError> {
        let path = path.as_ref();
        // Opening reads every tree and, through `check_chain`, every header: all of it is
        // where damaged files show.
        guard(path, || SledStore::open_unguarded(path, genesis_hash))
    }

    /// Opens the sled database in `path` and its trees, without the chain check, and closes
    /// it again: damaged files make sled fail or panic here, which this returns as
    /// [`StoreError::Damaged`]. Lets a process find the damage before it starts anything that
    /// depends on the store. Does nothing if `path` does not exist (a new node), and fails
    /// with [`StoreError::Io`] while another process keeps the store open.
    pub fn probe(path: impl AsRef<Path>) -> Result<(), StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Ok(());
        }
        guard(path, || {
            let io = |error| sled_error(path, error);
            let db = open_db(path)?;
            let _leak = LeakOnUnwind(Some(db.clone()));
            for name in db.tree_names() {
                db.open_tree(name).map_err(io)?;
            }
            Ok(())
        })
    }

    fn open_unguarded(path: &Path, genesis_hash: Digest) -> Result<SledStore, StoreError> {
        let io = |error| sled_error(path, error);
        let db = open_db(path)?;
        let _leak = LeakOnUnwind(Some(db.clone()));
        refuse_per_tree_layout(&db, path)?;
        let store = SledStore {
            tree: db.open_tree(LEDGER_TREE).map_err(io)?,
            db,
            genesis_hash,
            path: path.to_owned(),
            writes: Arc::default(),
            event_ids: Arc::new(RwLock::new(IdFilter::new(EVENT_FILTER_FIRST_IDS))),
        };
        store.fill_event_ids()?;
        match store.get(Tree::Meta, GENESIS_KEY)? {
            Some(stored) => {
                let stored = <[u8; 32]>::try_from(stored.as_slice())
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
                let format = store.get(Tree::Meta, FORMAT_KEY)?;
                if format.as_deref() != Some(STORE_FORMAT.as_bytes()) {
                    return Err(format_error(format.as_deref()));
                }
            }
            None => {
                let mut batch = WriteBatch::default();
                batch.put(
                    Tree::Meta,
                    GENESIS_KEY.to_vec(),
                    genesis_hash.as_bytes().to_vec(),
                );
                batch.put(
                    Tree::Meta,
                    FORMAT_KEY.to_vec(),
                    STORE_FORMAT.as_bytes().to_vec(),
                );
                store.commit(batch)?;
            }
        }
        store.check_chain()?;
        Ok(store)
    }

    /// Adds every stored event id to the filter, once, at open.
    fn fill_event_ids(&self) -> Result<(), StoreError> {
        let mut filter = self.event_ids.write().expect("event id filter lock");
        for key in self.tree.scan_prefix([tag(Tree::Events)]).keys() {
            let key = key.map_err(|e| self.error(e))?;
            if let Ok(id) = <&[u8; EVENT_ID_LEN]>::try_from(&key[1..]) {
                filter.insert(id);
            }
        }
        Ok(())
    }

    /// Writes `value` under `key` of `tree` as it is, outside any block, for tests that damage
    /// records on disk. It bypasses the event-id filter: use it to damage records, not to add
    /// events.
    pub fn raw_put(&self, tree: Tree, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        self.tree
            .insert(tagged(tree, key), value)
            .map_err(|e| self.error(e))?;
        self.db.flush().map_err(|e| self.error(e))?;
        Ok(())
    }

    /// sled inserts and removals committed since the store was opened (by this handle and its
    /// clones), per tree in [`Tree::ALL`] order. The difference across an append is what the
    /// block wrote.
    pub fn write_counts(&self) -> [u64; Tree::ALL.len()] {
        self.writes.get()
    }

    /// Bytes sled occupies on disk.
    pub fn size_on_disk_bytes(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(|e| self.error(e))
    }

    /// The folder the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, error: sled::Error) -> StoreError {
        sled_error(&self.path, error)
    }
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // Pages are read lazily, so damage can first show on any read, long after open.
        guard(&self.path, || {
            Ok(self
                .tree
                .get(tagged(tree, key))
                .map_err(|e| self.error(e))?
                .map(|v| v.to_vec()))
        })
    }

    fn contains(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        if let (Tree::Events, Ok(id)) = (tree, <&[u8; EVENT_ID_LEN]>::try_from(key)) {
            if !self
                .event_ids
                .read()
                .expect("event id filter lock")
                .may_hold(id)
            {
                return Ok(false);
            }
        }
        guard(&self.path, || {
            self.tree
                .contains_key(tagged(tree, key))
                .map_err(|e| self.error(e))
        })
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        guard(&self.path, || {
            self.scan_unguarded(tree, prefix, after, limit)
        })
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        guard(&self.path, || self.commit_unguarded(batch))
    }

    fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }
}

impl SledStore {
    fn add_event_ids(&self, batch: &WriteBatch) {
        let mut filter = None;
        for (tree, key, value) in &batch.writes {
            if let (Tree::Events, Some(_), Ok(id)) =
                (tree, value, <&[u8; EVENT_ID_LEN]>::try_from(key.as_slice()))
            {
                filter
                    .get_or_insert_with(|| self.event_ids.write().expect("event id filter lock"))
                    .insert(id);
            }
        }
    }

    fn scan_unguarded(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let start = tagged(tree, after.unwrap_or(prefix));
        let prefix = tagged(tree, prefix);
        let iter = match after {
            Some(_) => self.tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(start.as_slice()),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.range::<&[u8], _>(start.as_slice()..),
        };
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| self.error(e))?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push((k[1..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn commit_unguarded(&self, batch: WriteBatch) -> Result<(), StoreError> {
        // Ids join the filter before the batch can be read, so the filter never says "not
        // held" of an event sled holds; if the batch then fails, they are false positives.
        self.add_event_ids(&batch);
        let mut writes = sled::Batch::default();
        for (tree, key, value) in &batch.writes {
            let key = tagged(*tree, key);
            match value {
                Some(value) => writes.insert(key, value.as_slice()),
                None => writes.remove(key),
            }
        }
        self.tree.apply_batch(writes).map_err(|e| self.error(e))?;
        // Counted once the batch is applied.
        self.writes.add(&batch);
        // Acknowledge only once the batch is on disk.
        self.db.flush().map_err(|e| self.error(e))?;
        Ok(())
    }
}

/// Refuses a directory of format v6 or earlier, which kept each [`Tree`] in a sled tree of
/// its own, naming the format its `meta` tree records.
fn refuse_per_tree_layout(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    let io = |error| sled_error(path, error);
    if !db
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == OLD_META_TREE.as_bytes())
    {
        return Ok(());
    }
    let format = db
        .open_tree(OLD_META_TREE)
        .map_err(io)?
        .get(FORMAT_KEY)
        .map_err(io)?;
    Err(format_error(format.as_deref()))
}

/// The error for a store whose format record says `found` (absent before format v4).
fn format_error(found: Option<&[u8]>) -> StoreError {
    StoreError::Format {
        found: found.map_or_else(
            || "no format record (format v3 or earlier)".into(),
            |f| String::from_utf8_lossy(f).into_owned(),
        ),
        expected: STORE_FORMAT,
    }
}
