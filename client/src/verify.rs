//! Verification without trusting a node: provenance bundles offline, and a node's whole chain
//! replayed from the genesis.
//!
//! Bundle verification is the ledger's own ([`verify_bundle`], [`verify_checkpoint`],
//! [`verify_extension`]), re-exported so that SDK users need one crate. Chain verification
//! downloads every block and replays it into an in-memory store with exactly the functions
//! validators run: [`validate_block`] under the contract rules, [`verify_certificate`] against
//! the genesis validators, and [`Store::append_block`].

use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use custody_contracts::ContractRules;
use custody_ledger::block::{verify_certificate, Block, BLOCK_EVENTS_MAX};
use custody_ledger::chain::{validate_block, BlockError};
use custody_ledger::codec::EVENT_SIZE_BYTES_MAX;
use custody_ledger::event::EncodedEvent;
use custody_ledger::genesis::{Genesis, GenesisError, Validator};
use custody_ledger::keys::KeyCache;
use custody_ledger::merkle;
use custody_ledger::rules::Rules;
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::view::BlockView;
use custody_ledger::Digest;
use serde::de::DeserializeOwned;

pub use custody_ledger::bundle::{
    verify as verify_bundle, verify_checkpoint, verify_extension, Bundle, BundleError, Checkpoint,
    Verified,
};

use crate::{Client, ClientError};

/// Largest bundle file read.
pub const BUNDLE_FILE_SIZE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Largest genesis file read.
pub const GENESIS_FILE_SIZE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is larger than its limit.
    #[error("{}: larger than the limit of {limit_bytes} bytes for a {what}", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        what: &'static str,
        /// The limit.
        limit_bytes: u64,
    },
    /// The contents are not what they should be.
    #[error("{}: not a valid {what}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Reads a whole file of at most `limit_bytes`.
pub fn read_capped(
    path: &Path,
    what: &'static str,
    limit_bytes: u64,
) -> Result<Vec<u8>, FileError> {
    let io = |error| FileError::Io {
        path: path.to_owned(),
        error,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit_bytes {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            what,
            limit_bytes,
        });
    }
    Ok(bytes)
}

/// Reads a JSON file of at most `limit_bytes` as a `T`; `what` names it in errors.
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
    limit_bytes: u64,
) -> Result<T, FileError> {
    let bytes = read_capped(path, what, limit_bytes)?;
    serde_json::from_slice(&bytes).map_err(|e| FileError::Invalid {
        path: path.to_owned(),
        what,
        message: e.to_string(),
    })
}

/// Reads a provenance bundle (JSON) of at most [`BUNDLE_FILE_SIZE_BYTES_MAX`]. Only its form
/// is checked here; [`verify_bundle`] checks what it proves.
pub fn read_bundle(path: &Path) -> Result<Bundle, FileError> {
    read_json(path, "provenance bundle", BUNDLE_FILE_SIZE_BYTES_MAX)
}

/// Reads a genesis file (JSON) of at most [`GENESIS_FILE_SIZE_BYTES_MAX`] and checks that it
/// is usable (unique ids and keys, validators, an admin quorum).
pub fn read_genesis(path: &Path) -> Result<Genesis, FileError> {
    let genesis: Genesis = read_json(path, "genesis file", GENESIS_FILE_SIZE_BYTES_MAX)?;
    genesis.validate().map_err(|e| FileError::Invalid {
        path: path.to_owned(),
        what: "genesis file",
        message: e.to_string(),
    })?;
    Ok(genesis)
}

/// What a verified chain looks like at the height verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainReport {
    /// Blocks verified: the head height when verification started.
    pub height: u64,
    /// Hash of that block (the genesis hash if there are none).
    pub head_hash: Digest,
    /// Events in the log.
    pub log_size: u64,
    /// The log root.
    pub log_root: Digest,
    /// The state root after the last block.
    pub state_root: Digest,
}

/// Why chain verification stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The chain is invalid: the block at `height` failed `check`.
    #[error("height {height}: {check}: {reason}")]
    Invalid {
        /// The first height that failed (0: before any block, such as the node's genesis).
        height: u64,
        /// The check that failed, a stable name such as `block.certificate`.
        check: &'static str,
        /// What was found.
        reason: String,
    },
    /// The genesis document is unusable.
    #[error("the genesis is unusable: {0}")]
    Genesis(#[source] GenesisError),
    /// The node could not be asked for a block; nothing is known about its validity.
    #[error("height {height}: {error}")]
    Client {
        /// The height being fetched (0: the status).
        height: u64,
        /// The request's failure.
        error: ClientError,
    },
}

/// Replays blocks, one height after another, into an in-memory store: each block's view is
/// checked against its header, its certificate against the genesis validators, its events
/// under the rules and the state machine, and its roots against the replayed state.
#[derive(Debug)]
pub struct ChainReplay<'g, R> {
    genesis: &'g Genesis,
    validators: Vec<Validator>,
    store: MemoryStore,
    keys: KeyCache,
    rules: R,
    height: u64,
}

impl<'g, R: Rules> ChainReplay<'g, R> {
    /// A replay from the genesis, under `rules` as they are before block 1.
    pub fn new(genesis: &'g Genesis, rules: R) -> Result<ChainReplay<'g, R>, ChainError> {
        genesis.validate().map_err(ChainError::Genesis)?;
        Ok(ChainReplay {
            genesis,
            validators: genesis.validators(),
            store: MemoryStore::new(genesis.hash()),
            keys: KeyCache::new(),
            rules,
            height: 0,
        })
    }

    /// The last height replayed.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The replayed ledger.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Replays the block at the next height.
    pub fn apply(&mut self, view: &BlockView) -> Result<(), ChainError> {
        let height = self.height + 1;
        let fail = |check: &'static str, reason: String| ChainError::Invalid {
            height,
            check,
            reason,
        };
        if view.header.height != height {
            return Err(fail(
                "block.height",
                format!("the node served height {} for {height}", view.header.height),
            ));
        }
        let block = block_from_view(view).map_err(|(check, reason)| fail(check, reason))?;
        verify_certificate(
            &view.certificate,
            &self.genesis.chain_id,
            height,
            &view.hash,
            &self.validators,
        )
        .map_err(|e| fail("block.certificate", e.to_string()))?;
        let validated = validate_block(&self.store, self.genesis, &self.rules, block, &self.keys)
            .map_err(|e| match e {
            BlockError::Header { field, message } => {
                fail("block.header", format!("{field}: {message}"))
            }
            BlockError::Event {
                index,
                id,
                rejection,
            } => fail(
                "block.event",
                format!("event {index} ({id}) is invalid: {rejection}"),
            ),
            BlockError::Store(e) => fail("block.replay", e.to_string()),
        })?;
        self.store
            .append_block(&validated, &view.certificate)
            .map_err(|e| fail("block.append", e.to_string()))?;
        self.rules = validated.into_parts().1;
        self.height = height;
        Ok(())
    }

    /// The replayed chain's head.
    pub fn report(&self) -> ChainReport {
        match self.store.head().expect("the memory store cannot fail") {
            Some(head) => ChainReport {
                height: head.height,
                head_hash: head.block_hash,
                log_size: head.log_size,
                log_root: head.log_root,
                state_root: head.state_root,
            },
            None => ChainReport {
                height: 0,
                head_hash: self.genesis.hash(),
                log_size: 0,
                log_root: merkle::empty_root(),
                state_root: self.genesis.hash(),
            },
        }
    }
}

/// Longest base64 text of one event's canonical bytes.
const EVENT_BASE64_LEN_MAX: usize = EVENT_SIZE_BYTES_MAX.div_ceil(3) * 4;

/// The block a view describes, after checking that the view agrees with itself: the hash is
/// the header's, and the events decode from their canonical bytes to the listed ids. On
/// failure, returns the check that failed and why.
pub fn block_from_view(view: &BlockView) -> Result<Block, (&'static str, String)> {
    let hash = view.header.hash();
    if view.hash != hash {
        return Err((
            "block.hash",
            format!("the header hashes to {hash}, the node says {}", view.hash),
        ));
    }
    let count = view.header.event_count as usize;
    if count > BLOCK_EVENTS_MAX || view.events.len() != count || view.event_ids.len() != count {
        return Err((
            "block.event_count",
            format!(
                "the header says {count} events; the node sent {} events and {} ids",
                view.events.len(),
                view.event_ids.len()
            ),
        ));
    }
    let mut events = Vec::with_capacity(count);
    for (index, (text, id)) in view.events.iter().zip(&view.event_ids).enumerate() {
        if text.len() > EVENT_BASE64_LEN_MAX {
            return Err((
                "block.event_bytes",
                format!("event {index} ({id}) is longer than an event may be"),
            ));
        }
        let bytes = BASE64.decode(text).map_err(|e| {
            (
                "block.event_bytes",
                format!("event {index} ({id}): invalid base64: {e}"),
            )
        })?;
        let event = EncodedEvent::decode(&bytes).map_err(|e| {
            (
                "block.event_bytes",
                format!("event {index} ({id}): not a canonical signed event: {e}"),
            )
        })?;
        if event.id() != *id {
            return Err((
                "block.event_id",
                format!(
                    "event {index}: the bytes hash to {}, the node says {id}",
                    event.id()
                ),
            ));
        }
        events.push(event);
    }
    Ok(Block {
        header: view.header.clone(),
        events,
    })
}

/// Downloads the node's blocks 1 to its head (as its status names the head when verification
/// starts) and replays them from `genesis` under the contract rules. `progress` is called with
/// each verified height and the target height (first with 0).
pub async fn verify_chain(
    client: &Client,
    genesis: &Genesis,
    mut progress: impl FnMut(u64, u64),
) -> Result<ChainReport, ChainError> {
    let mut replay = ChainReplay::new(genesis, ContractRules::default())?;
    let status = client
        .status()
        .await
        .map_err(|error| ChainError::Client { height: 0, error })?;
    if status.genesis_hash != genesis.hash() || status.chain_id != genesis.chain_id {
        return Err(ChainError::Invalid {
            height: 0,
            check: "node.genesis",
            reason: format!(
                "the node serves chain {:?} with genesis {}, the genesis file is chain {:?} \
                 with hash {}",
                status.chain_id,
                status.genesis_hash,
                genesis.chain_id,
                genesis.hash()
            ),
        });
    }
    let target = status.height;
    progress(0, target);
    for height in 1..=target {
        let view = client
            .block(height)
            .await
            .map_err(|error| ChainError::Client { height, error })?;
        replay.apply(&view)?;
        progress(height, target);
    }
    Ok(replay.report())
}
