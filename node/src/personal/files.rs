//! The off-ledger store of personal data: one JSON file per shipment under
//! `<data_dir>/personal/<hex(SHA-256(shipment id))>.json`.
//!
//! Files rather than sled: `remove_file` takes a shipment's plaintext off the filesystem at
//! once, while sled keeps overwritten and removed values in its log segments until it
//! happens to compact them, so an erasure there could not be promised. Writes are atomic
//! (temporary file, fsync, rename, fsync of the folder), so a crash leaves the old or the
//! new file and at most a temporary one, which [`PersonalFiles::sweep`] deletes. Every call
//! blocks on the disk: call it from the blocking pool. One lock serialises the writers, so
//! that a merge that checked "not erased" cannot land after the erasure deleted the file.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use custody_ledger::model::ShipmentId;
use custody_ledger::personal::{Disclosure, PersonalField, VALUE_LEN_MAX};
use custody_ledger::store::StoreError;
use custody_ledger::Digest;
use serde::{Deserialize, Serialize};

use super::DISCLOSURES_MAX;

/// The format tag of a shipment's file.
const FORMAT: &str = "custody-personal/v1";

/// Largest file read: the disclosures of one shipment, with room for JSON escapes.
const FILE_SIZE_BYTES_MAX: u64 = (DISCLOSURES_MAX * (VALUE_LEN_MAX * 6 + 512)) as u64;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The disk failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what this store writes.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The ledger says the shipment's personal data was erased.
    #[error("the personal data of this shipment was erased")]
    Erased,
    /// The merge would keep more than [`DISCLOSURES_MAX`] disclosures.
    #[error("a shipment holds at most {DISCLOSURES_MAX} disclosures; this would make {count}")]
    TooMany {
        /// How many there would be.
        count: usize,
    },
    /// The ledger could not be asked whether the shipment was erased.
    #[error("cannot read the ledger: {0}")]
    Ledger(#[source] StoreError),
}

/// One shipment's file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShipmentFile {
    format: String,
    shipment_id: ShipmentId,
    disclosures: Vec<Disclosure>,
}

/// The personal-data folder of a node. Cheap to clone; clones share the writers' lock.
#[derive(Debug, Clone)]
pub struct PersonalFiles {
    dir: PathBuf,
    lock: Arc<Mutex<()>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError + '_ {
    move |source| FilesError::Io {
        path: path.to_owned(),
        source,
    }
}

impl PersonalFiles {
    /// Opens (creating it, readable by the owner only) `<data_dir>/personal`.
    pub fn open(data_dir: &Path) -> Result<PersonalFiles, FilesError> {
        let dir = data_dir.join("personal");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        }
        Ok(PersonalFiles {
            dir,
            lock: Arc::new(Mutex::new(())),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a shipment. Named by a hash, so that no shipment id reaches a path.
    pub fn path(&self, shipment: &ShipmentId) -> PathBuf {
        let name = Digest::sha256(shipment.as_str().as_bytes()).to_hex();
        self.dir.join(format!("{name}.json"))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // The lock guards no data, only the order of file operations.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disclosures held for a shipment; none if there is no file.
    pub fn read(&self, shipment: &ShipmentId) -> Result<Vec<Disclosure>, FilesError> {
        Ok(read_file(&self.path(shipment))?.map_or_else(Vec::new, |f| f.disclosures))
    }

    /// Whether a file is held for the shipment.
    pub fn holds(&self, shipment: &ShipmentId) -> bool {
        self.path(shipment).exists()
    }

    /// Adds disclosures to a shipment's file, replacing any for the same (event, field), and
    /// returns how many the file then holds. `erased` is asked under the writers' lock, so an
    /// erasure committed meanwhile is seen: then nothing is written.
    pub fn merge(
        &self,
        shipment: &ShipmentId,
        new: &[Disclosure],
        erased: impl FnOnce() -> Result<bool, StoreError>,
    ) -> Result<usize, FilesError> {
        let _guard = self.guard();
        if erased().map_err(FilesError::Ledger)? {
            return Err(FilesError::Erased);
        }
        let path = self.path(shipment);
        let mut held = read_file(&path)?.map_or_else(Vec::new, |f| f.disclosures);
        let before = held.clone();
        for disclosure in new {
            let key = (disclosure.event_id, disclosure.field);
            held.retain(|d| (d.event_id, d.field) != key);
            held.push(disclosure.clone());
        }
        held.sort_by_key(|d| (d.event_id, field_order(d.field)));
        if held.len() > DISCLOSURES_MAX {
            return Err(FilesError::TooMany { count: held.len() });
        }
        if held != before {
            let file = ShipmentFile {
                format: FORMAT.into(),
                shipment_id: shipment.clone(),
                disclosures: held.clone(),
            };
            let bytes = serde_json::to_vec(&file).expect("a file serialises");
            write_atomically(&self.dir, &path, &bytes)?;
        }
        Ok(held.len())
    }

    /// Deletes a shipment's file; whether there was one.
    pub fn erase(&self, shipment: &ShipmentId) -> Result<bool, FilesError> {
        let _guard = self.guard();
        remove(&self.dir, &self.path(shipment))
    }

    /// Deletes left-over temporary files and the files of shipments `erased` says were
    /// erased; returns how many files it deleted. A file that does not parse is kept and
    /// reported (it cannot be told whose it is), and the sweep goes on.
    pub fn sweep(
        &self,
        erased: impl Fn(&ShipmentId) -> Result<bool, StoreError>,
    ) -> Result<usize, FilesError> {
        let _guard = self.guard();
        let mut deleted = 0;
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // A temporary file is the remains of a write a crash interrupted.
            let delete = if name.ends_with(".tmp") {
                true
            } else if name.ends_with(".json") {
                match read_file(&path) {
                    Ok(Some(file)) => erased(&file.shipment_id).map_err(FilesError::Ledger)?,
                    Ok(None) => false,
                    Err(error) => {
                        tracing::warn!(%error, "unreadable personal-data file kept");
                        false
                    }
                }
            } else {
                false
            };
            if delete && remove(&self.dir, &path)? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// A stable order of fields within an event.
fn field_order(field: PersonalField) -> usize {
    PersonalField::ALL
        .iter()
        .position(|f| *f == field)
        .unwrap_or(usize::MAX)
}

fn read_file(path: &Path) -> Result<Option<ShipmentFile>, FilesError> {
    let size = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(path)(error)),
    };
    let corrupt = |message: String| FilesError::Corrupt {
        path: path.to_owned(),
        message,
    };
    if size > FILE_SIZE_BYTES_MAX {
        return Err(corrupt(format!(
            "{size} bytes, more than {FILE_SIZE_BYTES_MAX}"
        )));
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        // Erased between the two calls.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(path)(error)),
    };
    let file: ShipmentFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.format != FORMAT {
        return Err(corrupt(format!("format {:?}, not {FORMAT}", file.format)));
    }
    Ok(Some(file))
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), FilesError> {
    let temp = path.with_extension("json.tmp");
    let mut file = File::create(&temp).map_err(io(&temp))?;
    file.write_all(bytes).map_err(io(&temp))?;
    file.sync_all().map_err(io(&temp))?;
    drop(file);
    fs::rename(&temp, path).map_err(io(path))?;
    sync_dir(dir)
}

/// Removes a file and makes the removal durable; whether there was one.
fn remove(dir: &Path, path: &Path) -> Result<bool, FilesError> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io(path)(error)),
    }
}

/// Flushes a folder's entries, so a rename or a removal survives a crash.
fn sync_dir(dir: &Path) -> Result<(), FilesError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::cause::Cause;
    use custody_ledger::personal::Salt;

    fn disclosure(event: &[u8], field: PersonalField, value: &str) -> Disclosure {
        Disclosure::new(Digest::sha256(event), field, value, Salt([7; 32]))
    }

    fn not_erased() -> Result<bool, StoreError> {
        Ok(false)
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_merge_writes_one_file_named_by_hash_and_replaces_by_event_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PersonalFiles::open(dir.path()).expect("open");
        let s = ShipmentId::new("S-1");
        let name = disclosure(b"reg", PersonalField::BuyerName, "J. Buyer");
        let address = disclosure(b"reg", PersonalField::BuyerAddress, "1 Rue X");
        assert_eq!(
            files
                .merge(&s, std::slice::from_ref(&name), not_erased)
                .expect("merge"),
            1
        );
        assert_eq!(
            files
                .merge(&s, std::slice::from_ref(&address), not_erased)
                .expect("merge"),
            2
        );
        let renamed = disclosure(b"reg", PersonalField::BuyerName, "J. Buyer-Smith");
        assert_eq!(
            files
                .merge(&s, std::slice::from_ref(&renamed), not_erased)
                .expect("merge"),
            2
        );
        assert_eq!(files.read(&s).expect("read"), vec![renamed, address]);
        // One file, named by the hash of the id, and no temporary file left.
        let hash = Digest::sha256(b"S-1").to_hex();
        assert_eq!(files_in(files.dir()), vec![format!("{hash}.json")]);
        assert!(files
            .read(&ShipmentId::new("S-2"))
            .expect("read")
            .is_empty());
    }

    #[test]
    fn a_merge_is_refused_when_erased_or_over_the_bound_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PersonalFiles::open(dir.path()).expect("open");
        let s = ShipmentId::new("S-1");
        let one = disclosure(b"reg", PersonalField::BuyerName, "J. Buyer");
        assert!(matches!(
            files.merge(&s, std::slice::from_ref(&one), || Ok(true)),
            Err(FilesError::Erased)
        ));
        assert!(!files.holds(&s));
        let many: Vec<Disclosure> = (0..=DISCLOSURES_MAX)
            .map(|i| disclosure(&i.to_be_bytes(), PersonalField::ReceivedBy, "x"))
            .collect();
        assert!(matches!(
            files.merge(&s, &many, not_erased),
            Err(FilesError::TooMany { count }) if count == DISCLOSURES_MAX + 1
        ));
        assert!(!files.holds(&s));
        assert!(matches!(
            files.merge(&s, &[one], || {
                Err(StoreError::Io(Cause::new(std::io::Error::other(
                    "ledger down",
                ))))
            }),
            Err(FilesError::Ledger(_))
        ));
    }

    #[test]
    fn erase_removes_the_file_and_its_plaintext_from_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PersonalFiles::open(dir.path()).expect("open");
        let s = ShipmentId::new("S-1");
        let d = disclosure(b"reg", PersonalField::BuyerName, "Zoë Plaintext");
        files.merge(&s, &[d], not_erased).expect("merge");
        assert!(files.erase(&s).expect("erase"));
        assert!(
            !files.erase(&s).expect("erase again"),
            "nothing left to erase"
        );
        assert!(files_in(files.dir()).is_empty());
        assert!(files.read(&s).expect("read").is_empty());
    }

    #[test]
    fn the_sweep_deletes_erased_shipments_and_left_over_temporary_files_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PersonalFiles::open(dir.path()).expect("open");
        let (erased, kept) = (ShipmentId::new("S-erased"), ShipmentId::new("S-kept"));
        for s in [&erased, &kept] {
            let d = disclosure(s.as_str().as_bytes(), PersonalField::BuyerName, "J. Buyer");
            files.merge(s, &[d], not_erased).expect("merge");
        }
        // The remains of a write interrupted by a crash.
        fs::write(files.dir().join("abc.json.tmp"), b"{\"partial").expect("write");
        fs::write(files.dir().join("bad.json"), b"not json").expect("write");
        let deleted = files.sweep(|s| Ok(s == &erased)).expect("sweep");
        assert_eq!(deleted, 2);
        assert!(!files.holds(&erased));
        assert!(files.holds(&kept));
        assert!(
            files.dir().join("bad.json").exists(),
            "an unreadable file is kept"
        );
        assert!(!files.dir().join("abc.json.tmp").exists());
    }
}
