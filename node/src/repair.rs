//! Damaged data folders: finding the damage before the node starts, and the remedies an
//! operator runs with `custody-node --repair <remedy>` instead of editing files by hand.
//!
//! Two things in `data_dir` can be left damaged by a crash, a full disk or a failing device:
//!
//! - the ledger store (sled, in `ledger/`): a `db` file cut short or with flipped bytes makes
//!   sled panic while opening it. The remedy is [`Remedy::ResyncLedger`]: move the store
//!   aside, start empty and fetch every block from the peers, which hold the same chain.
//! - the consensus WAL (`wal/consensus.wal`), where the engine records every vote and
//!   proposal it signs before sending it, so that a restart never signs a conflicting one.
//!   A torn write (a crash in the middle of an append) leaves an incomplete last entry; the
//!   remedy is [`Remedy::TruncateWal`], which cuts only that entry. A WAL that cannot be read
//!   at all is moved aside with [`Remedy::MoveWalAside`].
//!
//! [`check_data_dir`] finds both before anything depends on them; [`open_ledger`] names the
//! remedy when the store's chain check finds damage the first look could not.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use arc_malachitebft_app_channel::app::wal::Storage as _;
use custody_ledger::hash::Digest;
use custody_ledger::store::StoreError;
use custody_sled::SledStore;

use crate::config::Config;

/// The ledger store's folder in `data_dir`.
pub const LEDGER_DIR: &str = "ledger";
/// The consensus WAL's folder in `data_dir`.
pub const WAL_DIR: &str = "wal";
/// The consensus WAL's file in [`WAL_DIR`].
pub const WAL_FILE: &str = "consensus.wal";
/// The candidate blocks' folder in `data_dir` (`consensus::proposals`).
pub const PROPOSALS_DIR: &str = "proposals";

/// Most `.damaged-<n>` copies looked through for a free number.
const ASIDE_COPIES_MAX: u32 = 10_000;

/// The ledger store's folder.
pub fn ledger_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LEDGER_DIR)
}

/// The consensus WAL file.
pub fn wal_path(data_dir: &Path) -> PathBuf {
    data_dir.join(WAL_DIR).join(WAL_FILE)
}

/// What `custody-node --repair` can do to a stopped node's data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Remedy {
    /// Move the ledger store, the consensus WAL and the candidate blocks aside (to
    /// `<name>.damaged-<n>` in the data folder), so the node starts empty and fetches every
    /// block from its peers.
    ResyncLedger,
    /// Cut the incomplete last entry of the consensus WAL (a torn write), keeping every
    /// complete entry.
    TruncateWal,
    /// Move the consensus WAL aside (to `wal.damaged-<n>`), when it cannot be read or the
    /// ledger is already past its height.
    MoveWalAside,
}

impl Remedy {
    /// The value of `--repair`.
    pub fn flag_value(self) -> &'static str {
        match self {
            Remedy::ResyncLedger => "resync-ledger",
            Remedy::TruncateWal => "truncate-wal",
            Remedy::MoveWalAside => "move-wal-aside",
        }
    }

    /// What the remedy does, for the damage report.
    fn effect(self) -> &'static str {
        match self {
            Remedy::ResyncLedger => {
                "moves the ledger, the consensus WAL and the candidate blocks aside so that the \
                 node starts empty and fetches every block from its peers"
            }
            Remedy::TruncateWal => "cuts the incomplete last entry and keeps every complete one",
            Remedy::MoveWalAside => {
                "moves the WAL aside; the node then forgets the votes it cast at the WAL's \
                 height, so prefer to run it once the network is past that height"
            }
        }
    }
}

impl std::fmt::Display for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flag_value())
    }
}

/// Damage found in a data folder: which file, what is wrong, and the remedy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{path} is damaged: {problem}. Run the node once with `--repair {remedy}` added (for \
     example `custody-node --config node.toml --repair {remedy}`), which {effect}; then start \
     it as usual",
    effect = .remedy.effect()
)]
pub struct DamageReport {
    /// The damaged file or folder.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
    /// What fixes it.
    pub remedy: Remedy,
}

/// Why [`open_ledger`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenLedgerError {
    /// The store's files are damaged; the report names the remedy.
    #[error(transparent)]
    Damaged(#[from] DamageReport),
    /// Any other failure (another network's store, the store in use by another process).
    #[error("opening the ledger store in {path}: {source}")]
    Store {
        /// The store's folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// Why a remedy could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// A process (the node) holds the file's lock.
    #[error("{path} is in use ({reason}); stop the node before repairing its data folder")]
    InUse {
        /// The locked file.
        path: PathBuf,
        /// The lock's error.
        reason: String,
    },
    /// The WAL's damage is not a torn tail, so cutting its end would not fix it.
    #[error(
        "{path} cannot be truncated safely: {reason}. Run with `--repair move-wal-aside` instead"
    )]
    NotTorn {
        /// The WAL file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

fn io_error(action: String) -> impl FnOnce(io::Error) -> RepairError {
    move |source| RepairError::Io { action, source }
}

/// Looks for damage in `config.data_dir` before the node uses it: opens the ledger store's
/// sled files (without walking the chain) and reads the consensus WAL's framing and
/// checksums. Call it before the store is opened (sled locks its files, and a probe of a
/// store this process holds open learns nothing) and before the consensus engine starts.
pub fn check_data_dir(config: &Config) -> Result<(), DamageReport> {
    check_ledger_files(&config.data_dir)?;
    check_wal(&config.data_dir)
}

/// What a node does with its data folder before it starts: [`check_data_dir`], except that a
/// torn WAL tail is cut at once ([`truncate_wal`]) instead of stopping the node. That is safe:
/// the engine syncs an entry before it sends what the entry records, so an incomplete last
/// entry was never sent, and cutting it forgets no vote the network saw. Stopping for it
/// would turn every crash in the middle of an append into a node that needs an operator.
/// Returns what was repaired, for the log; other damage is a [`DamageReport`] naming the
/// remedy to run by hand.
pub fn prepare_data_dir(config: &Config) -> Result<Vec<String>, DamageReport> {
    match check_data_dir(config) {
        Ok(()) => Ok(Vec::new()),
        Err(report) if report.remedy == Remedy::TruncateWal => truncate_wal(&config.data_dir)
            .map_err(|error| DamageReport {
                path: report.path,
                problem: format!("{}; cutting it failed: {error}", report.problem),
                remedy: Remedy::MoveWalAside,
            }),
        Err(report) => Err(report),
    }
}

fn check_ledger_files(data_dir: &Path) -> Result<(), DamageReport> {
    match SledStore::probe(ledger_path(data_dir)) {
        Err(StoreError::Damaged { path, message }) => Err(DamageReport {
            path,
            problem: message,
            remedy: Remedy::ResyncLedger,
        }),
        // Anything else is not damage (the store held by another process, say); opening the
        // store reports it.
        _ => Ok(()),
    }
}

fn check_wal(data_dir: &Path) -> Result<(), DamageReport> {
    let path = wal_path(data_dir);
    match scan_wal(&path) {
        Ok(Some(scan)) if scan.is_torn() => Err(DamageReport {
            problem: scan.torn_problem(),
            path,
            remedy: Remedy::TruncateWal,
        }),
        Ok(_) => Ok(()),
        Err(error) => Err(DamageReport {
            path,
            problem: error.to_string(),
            remedy: Remedy::MoveWalAside,
        }),
    }
}

/// Opens the ledger store of `config` for the network with `genesis_hash`, as
/// [`SledStore::open`] does; damage its chain check or sled finds is a [`DamageReport`]
/// naming [`Remedy::ResyncLedger`].
pub fn open_ledger(config: &Config, genesis_hash: Digest) -> Result<SledStore, OpenLedgerError> {
    let path = ledger_path(&config.data_dir);
    SledStore::open(&path, genesis_hash).map_err(|error| {
        let problem = match error {
            StoreError::Damaged { message, .. } => message,
            error @ (StoreError::Corrupt { .. } | StoreError::BrokenChain { .. }) => {
                error.to_string()
            }
            source => return OpenLedgerError::Store { path, source },
        };
        OpenLedgerError::Damaged(DamageReport {
            path,
            problem,
            remedy: Remedy::ResyncLedger,
        })
    })
}

/// Applies `remedy` to the data folder of a stopped node. Returns what was done, one line per
/// action, for the operator.
pub fn repair(config: &Config, remedy: Remedy) -> Result<Vec<String>, RepairError> {
    let data_dir = &config.data_dir;
    ensure_stopped(data_dir)?;
    match remedy {
        Remedy::ResyncLedger => resync_ledger(data_dir),
        Remedy::TruncateWal => truncate_wal(data_dir),
        Remedy::MoveWalAside => move_wal_aside(data_dir),
    }
}

/// Refuses while a process holds the store's or the WAL's lock: moving or cutting the files
/// of a running node would corrupt what it writes next. sled and the engine's WAL each hold
/// an exclusive `flock` on their file while open; the WAL crate's file opener, used here,
/// asks for the same lock without waiting.
fn ensure_stopped(data_dir: &Path) -> Result<(), RepairError> {
    for path in [ledger_path(data_dir).join("db"), wal_path(data_dir)] {
        if path.is_file() {
            lock(&path)?;
        }
    }
    Ok(())
}

/// Opens an existing file read-write under an exclusive lock, held until it is dropped.
fn lock(path: &Path) -> Result<File, RepairError> {
    File::open_with(path, ()).map_err(|error| RepairError::InUse {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// Remedy (a): moves `ledger/`, `wal/` and `proposals/` to `<name>.damaged-<n>`. The WAL and
/// the candidate blocks belong to the old chain state; the engine would reset a WAL of
/// another height anyway, and moving it keeps it for a post-mortem.
pub fn resync_ledger(data_dir: &Path) -> Result<Vec<String>, RepairError> {
    let names = [LEDGER_DIR, WAL_DIR, PROPOSALS_DIR];
    let n = aside_number(data_dir, &names)?;
    let mut done = Vec::new();
    for name in names {
        if let Some(line) = move_aside(data_dir, name, n)? {
            done.push(line);
        }
    }
    if done.is_empty() {
        done.push(format!(
            "nothing to move: {} holds no ledger, WAL or candidate blocks",
            data_dir.display()
        ));
    } else {
        done.push(
            "the node starts with an empty ledger and fetches every block from its peers".into(),
        );
    }
    Ok(done)
}

/// Remedy (b): cuts the WAL after its last complete entry. Refuses a WAL whose damage is not
/// only at its end.
pub fn truncate_wal(data_dir: &Path) -> Result<Vec<String>, RepairError> {
    let path = wal_path(data_dir);
    let scan = match scan_wal(&path) {
        Ok(Some(scan)) => scan,
        Ok(None) => {
            return Ok(vec![format!(
                "nothing to do: {} does not exist",
                path.display()
            )])
        }
        Err(error) => {
            return Err(RepairError::NotTorn {
                path,
                reason: error.to_string(),
            })
        }
    };
    if !scan.is_torn() {
        return Ok(vec![format!(
            "nothing to do: {} is whole ({} complete entries)",
            path.display(),
            scan.entries
        )]);
    }
    let file = lock(&path)?;
    file.set_len(scan.complete_bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("truncating {}", path.display())))?;
    let kept = if scan.complete_bytes == 0 {
        // No entry can follow an incomplete header; the engine writes a new header.
        "the header was incomplete and no entry followed it; the engine writes a new header"
            .to_owned()
    } else {
        format!(
            "kept {} bytes: the header and {} complete entries",
            scan.complete_bytes, scan.entries
        )
    };
    Ok(vec![format!(
        "cut the incomplete last entry of {}: removed {} bytes, {kept}",
        path.display(),
        scan.size_bytes - scan.complete_bytes
    )])
}

/// Remedy (c): moves `wal/` to `wal.damaged-<n>`.
pub fn move_wal_aside(data_dir: &Path) -> Result<Vec<String>, RepairError> {
    let height = wal_height(&wal_path(data_dir));
    let n = aside_number(data_dir, &[WAL_DIR])?;
    let Some(moved) = move_aside(data_dir, WAL_DIR, n)? else {
        return Ok(vec![format!(
            "nothing to do: {} does not exist",
            data_dir.join(WAL_DIR).display()
        )]);
    };
    let height = match height {
        Some(height) => format!("height {height}"),
        None => "a height its header no longer says".to_owned(),
    };
    Ok(vec![
        moved,
        format!("the WAL was for {height}; the node starts a new WAL at its ledger's next height"),
    ])
}

/// The smallest `n` for which no `<name>.damaged-<n>` exists in `data_dir`.
fn aside_number(data_dir: &Path, names: &[&str]) -> Result<u32, RepairError> {
    (1..=ASIDE_COPIES_MAX)
        .find(|n| {
            names
                .iter()
                .all(|name| !exists(&data_dir.join(format!("{name}.damaged-{n}"))))
        })
        .ok_or_else(|| RepairError::Io {
            action: format!("choosing a name in {}", data_dir.display()),
            source: io::Error::other(format!("{ASIDE_COPIES_MAX} damaged copies already exist")),
        })
}

/// Whether anything (even a dangling link) is at `path`.
fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Renames `data_dir/name` to `data_dir/name.damaged-n`, durably; `None` if there is nothing.
fn move_aside(data_dir: &Path, name: &str, n: u32) -> Result<Option<String>, RepairError> {
    let from = data_dir.join(name);
    if !exists(&from) {
        return Ok(None);
    }
    let to = data_dir.join(format!("{name}.damaged-{n}"));
    let action = format!("moving {} to {}", from.display(), to.display());
    std::fs::rename(&from, &to).map_err(io_error(action.clone()))?;
    // The rename is durable once the folder holding both names is flushed.
    File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(action))?;
    Ok(Some(format!(
        "moved {} to {}",
        from.display(),
        to.display()
    )))
}

// The WAL's framing, as `arc-malachitebft-wal` 0.8.2 writes it (`log.rs` there): a header of
// version (u32, big-endian, 1) and sequence (u64, big-endian: the height), then entries of a
// compression flag (u8), the data's length (u64, big-endian), the CRC-32 of the data (u32,
// big-endian) and the data. The crate itself drops a partial last entry silently when it
// opens the file, and fails with "Failed to read sequence number" on a partial header.

const WAL_VERSION: u32 = 1;
const WAL_HEADER_SIZE_BYTES: u64 = 12;
const WAL_ENTRY_HEADER_SIZE_BYTES: u64 = 13;
/// The crate's own limit on an entry.
const WAL_ENTRY_SIZE_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// What the framing of a WAL file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalScan {
    /// The file's size.
    pub size_bytes: u64,
    /// The height the WAL is for (its sequence number), if its header is whole.
    pub height: Option<u64>,
    /// Complete entries: whole, with a matching checksum.
    pub entries: u64,
    /// Bytes up to the end of the last complete entry (0 if the header is incomplete): what
    /// [`truncate_wal`] keeps.
    pub complete_bytes: u64,
}

impl WalScan {
    /// Whether the file ends in an incomplete entry or header.
    pub fn is_torn(&self) -> bool {
        self.complete_bytes < self.size_bytes
    }

    fn torn_problem(&self) -> String {
        if self.complete_bytes == 0 {
            format!(
                "its header is incomplete (a torn write): the file has {} of its {} bytes",
                self.size_bytes, WAL_HEADER_SIZE_BYTES
            )
        } else {
            format!(
                "its last entry is incomplete (a torn write): {} bytes follow its {} complete \
                 entries",
                self.size_bytes - self.complete_bytes,
                self.entries
            )
        }
    }
}

/// Why a WAL cannot be read (damage other than a torn tail).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The file cannot be read.
    #[error("it cannot be read: {0}")]
    Io(#[from] io::Error),
    /// The header names an unknown format.
    #[error("its header names format version {0}, not 1")]
    Version(u32),
    /// An entry claims more than the crate's limit.
    #[error(
        "entry {entry} at byte {offset_bytes} claims {length_bytes} bytes, over the 1 GiB limit"
    )]
    TooLarge {
        /// Entry number, from 0.
        entry: u64,
        /// Where it starts.
        offset_bytes: u64,
        /// Its claimed data length.
        length_bytes: u64,
    },
    /// An entry is compressed; the engine is built without compression and refuses it.
    #[error("entry {entry} at byte {offset_bytes} is marked compressed, which the engine refuses")]
    Compressed {
        /// Entry number, from 0.
        entry: u64,
        /// Where it starts.
        offset_bytes: u64,
    },
    /// An entry before the last fails its checksum.
    #[error("entry {entry} at byte {offset_bytes} fails its checksum, and entries follow it")]
    Checksum {
        /// Entry number, from 0.
        entry: u64,
        /// Where it starts.
        offset_bytes: u64,
    },
}

/// The height in the WAL's header, if the header can be read, whatever follows it.
pub fn wal_height(path: &Path) -> Option<u64> {
    let mut header = [0u8; WAL_HEADER_SIZE_BYTES as usize];
    File::open(path).ok()?.read_exact(&mut header).ok()?;
    let (version, height) = header.split_at(4);
    (version == WAL_VERSION.to_be_bytes())
        .then(|| u64::from_be_bytes(<[u8; 8]>::try_from(height).expect("8 bytes")))
}

/// Reads the framing of the WAL at `path` and checks every entry's checksum, without the
/// engine; `None` if there is no file. A last entry that is cut short, or whole but failing
/// its checksum (the file grew but its last write never reached the disk), is a torn tail:
/// the engine flushes an entry before it sends what it records, so such an entry was never
/// sent. Damage anywhere else is a [`WalError`].
pub fn scan_wal(path: &Path) -> Result<Option<WalScan>, WalError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let size_bytes = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut scan = WalScan {
        size_bytes,
        height: None,
        entries: 0,
        complete_bytes: 0,
    };
    if size_bytes >= 4 {
        let version = u32::from_be_bytes(read_array(&mut reader)?);
        if version != WAL_VERSION {
            return Err(WalError::Version(version));
        }
    }
    if size_bytes < WAL_HEADER_SIZE_BYTES {
        return Ok(Some(scan));
    }
    scan.height = Some(u64::from_be_bytes(read_array(&mut reader)?));
    scan.complete_bytes = WAL_HEADER_SIZE_BYTES;
    // Each pass consumes at least an entry header, so the loop ends within the file.
    while scan.complete_bytes < size_bytes {
        if !scan_entry(&mut reader, &mut scan)? {
            break;
        }
    }
    Ok(Some(scan))
}

/// Reads the entry at `scan.complete_bytes`; `true` and `scan` advanced if it is complete,
/// `false` if it is the torn tail.
fn scan_entry(reader: &mut impl Read, scan: &mut WalScan) -> Result<bool, WalError> {
    let offset_bytes = scan.complete_bytes;
    let remaining_bytes = scan.size_bytes - offset_bytes;
    if remaining_bytes < WAL_ENTRY_HEADER_SIZE_BYTES {
        return Ok(false);
    }
    let [flag] = read_array(reader)?;
    let length_bytes = u64::from_be_bytes(read_array(reader)?);
    let expected_crc = u32::from_be_bytes(read_array(reader)?);
    if length_bytes > remaining_bytes - WAL_ENTRY_HEADER_SIZE_BYTES {
        return Ok(false);
    }
    let entry = scan.entries;
    if length_bytes > WAL_ENTRY_SIZE_BYTES_MAX {
        return Err(WalError::TooLarge {
            entry,
            offset_bytes,
            length_bytes,
        });
    }
    if flag != 0 {
        return Err(WalError::Compressed {
            entry,
            offset_bytes,
        });
    }
    let crc = crc32_of_next(reader, length_bytes)?;
    let end_bytes = offset_bytes + WAL_ENTRY_HEADER_SIZE_BYTES + length_bytes;
    if crc != expected_crc {
        if end_bytes == scan.size_bytes {
            return Ok(false);
        }
        return Err(WalError::Checksum {
            entry,
            offset_bytes,
        });
    }
    scan.entries += 1;
    scan.complete_bytes = end_bytes;
    Ok(true)
}

fn read_array<const N: usize>(reader: &mut impl Read) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// CRC-32 (IEEE 802.3, reflected, as `crc32fast` computes it), one byte at a time.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32 of the next `length_bytes` bytes of `reader`, read in chunks so that an entry
/// costs no allocation of its size.
fn crc32_of_next(reader: &mut impl Read, length_bytes: u64) -> io::Result<u32> {
    let mut crc = !0u32;
    let mut chunk = [0u8; 8192];
    let mut left_bytes = length_bytes;
    while left_bytes > 0 {
        let take = usize::try_from(left_bytes.min(chunk.len() as u64)).expect("at most 8192");
        reader.read_exact(&mut chunk[..take])?;
        for &byte in &chunk[..take] {
            crc = CRC32_TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
        left_bytes -= take as u64;
    }
    Ok(!crc)
}
