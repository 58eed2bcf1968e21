//! Blocks this node proposed or validated for the height being decided, kept on disk so that
//! a restarted node can still serve them.
//!
//! The engine's write-ahead log remembers the votes a validator cast and the proposals it
//! saw, but a proposal names its block only by hash: the block itself is the host's to keep.
//! A validator that restarts without the block it proposed, or without the block it locked
//! on, cannot restream it when a later round asks it to, and if every validator restarts at
//! once no node may hold it any more: the height stalls. So every candidate block of the
//! current height is written here before the node votes for it (the engine asks for a vote
//! only after the host has answered), and forgotten once a block of that height commits.
//!
//! One file per block, `<height>-<block hash>.bin`, holding the canonical encoding of a
//! [`StoredProposal`]. A file is written to a temporary name, flushed and renamed, so a crash
//! leaves either the whole file or none.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use custody_ledger::block::BlockHeader;
use custody_ledger::codec;
use custody_ledger::keys::PublicKey;
use custody_ledger::Digest;
use serde::{Deserialize, Serialize};

/// Most files read back at start; a height has one block per round at most, and rounds
/// beyond this many mean the network has been stuck far longer than a restart.
const FILES_MAX: usize = 1_024;

/// A candidate block as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProposal {
    /// The round it was proposed or last validated at.
    pub round: u32,
    /// Who proposed it at that round.
    pub proposer: PublicKey,
    /// The header.
    pub header: BlockHeader,
    /// The events' canonical bytes, in block order.
    pub events: Vec<Vec<u8>>,
}

/// The directory of kept proposals.
#[derive(Debug, Clone)]
pub struct ProposalStore {
    dir: PathBuf,
}

impl ProposalStore {
    /// Opens (creating) the directory.
    pub fn open(dir: &Path) -> io::Result<ProposalStore> {
        fs::create_dir_all(dir)?;
        Ok(ProposalStore {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, height: u64, hash: &Digest) -> PathBuf {
        self.dir.join(format!("{height:020}-{}.bin", hash.to_hex()))
    }

    /// Writes a proposal durably, replacing any earlier copy of the same block.
    pub fn save(&self, proposal: &StoredProposal) -> io::Result<()> {
        let path = self.path(proposal.header.height, &proposal.header.hash());
        let temporary = path.with_extension("tmp");
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&codec::encode(proposal))?;
        file.sync_all()?;
        fs::rename(&temporary, &path)?;
        // The rename is durable once the directory is.
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Every kept proposal for `height`, in file-name order; files of other heights are left
    /// alone, files that do not decode (which a crash cannot leave, but a disk can) are
    /// skipped and reported in the second list.
    pub fn load(&self, height: u64) -> io::Result<(Vec<StoredProposal>, Vec<PathBuf>)> {
        let prefix = format!("{height:020}-");
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&self.dir)?.take(FILES_MAX) {
            let path = entry?.path();
            let matches = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".bin"));
            if matches {
                names.push(path);
            }
        }
        names.sort();
        let mut kept = Vec::new();
        let mut unreadable = Vec::new();
        for path in names {
            let decoded = fs::read(&path).ok().and_then(|bytes| {
                codec::decode::<StoredProposal>(&bytes, codec::BLOCK_SIZE_BYTES_MAX).ok()
            });
            match decoded {
                Some(p) if p.header.height == height => kept.push(p),
                _ => unreadable.push(path),
            }
        }
        Ok((kept, unreadable))
    }

    /// Deletes the proposals of every height up to `height`, and temporary files: once a
    /// height is committed its candidates are of no use.
    pub fn forget_up_to(&self, height: u64) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)?.take(FILES_MAX) {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let old = name
                .split('-')
                .next()
                .and_then(|h| h.parse::<u64>().ok())
                .is_some_and(|h| h <= height);
            if old || name.ends_with(".tmp") {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use custody_ledger::keys::Keypair;
    use custody_ledger::Timestamp;

    use super::*;

    /// A proposal with a made-up header: the store keeps bytes, it does not judge them.
    fn proposal(height: u64, round: u32, events: Vec<Vec<u8>>) -> StoredProposal {
        let proposer = Keypair::from_seed([7; 32]).public();
        StoredProposal {
            round,
            proposer,
            header: BlockHeader {
                chain_id: "custody-test".into(),
                height,
                prev_hash: Digest::sha256(&height.to_be_bytes()),
                time: Timestamp(1_700_000_000_000 + u64::from(round)),
                proposer,
                event_count: u32::try_from(events.len()).expect("few events"),
                events_root: Digest::sha256(&codec::encode(&events)),
                log_size: 0,
                log_root: Digest::sha256(b""),
                state_root: Digest::sha256(b"state"),
                shipments_root: Digest::sha256(b"shipments"),
            },
            events,
        }
    }

    #[test]
    fn proposals_survive_reopening_and_are_forgotten_by_height() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ProposalStore::open(dir.path()).expect("opens");
        let a = proposal(7, 0, vec![vec![1, 2, 3]]);
        let b = proposal(7, 2, vec![vec![4], vec![5]]);
        let later = proposal(8, 0, vec![]);
        for p in [&a, &b, &later] {
            store.save(p).expect("saved");
        }
        // Saving the same block again replaces it.
        store.save(&a).expect("saved again");

        let reopened = ProposalStore::open(dir.path()).expect("reopens");
        let (mut seven, unreadable) = reopened.load(7).expect("loads");
        assert!(unreadable.is_empty());
        seven.sort_by_key(|p| p.round);
        assert_eq!(seven, vec![a, b]);
        assert_eq!(reopened.load(8).expect("loads").0, vec![later.clone()]);

        reopened.forget_up_to(7).expect("forgets");
        assert!(reopened.load(7).expect("loads").0.is_empty());
        assert_eq!(reopened.load(8).expect("loads").0, vec![later]);
    }

    #[test]
    fn a_damaged_file_is_reported_not_loaded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ProposalStore::open(dir.path()).expect("opens");
        let p = proposal(3, 1, vec![vec![9; 40]]);
        store.save(&p).expect("saved");
        let path = store.path(3, &p.header.hash());
        let bytes = fs::read(&path).expect("reads");
        fs::write(&path, &bytes[..bytes.len() - 1]).expect("truncates");
        let (kept, unreadable) = store.load(3).expect("loads");
        assert!(kept.is_empty());
        assert_eq!(unreadable, vec![path]);
    }
}
