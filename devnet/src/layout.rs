//! Where a devnet keeps its files.
//!
//! ```text
//! DIR/
//!   devnet.json              the manifest: chain id, members, nodes (written last at creation)
//!   genesis.json             the genesis document every node and verifier reads
//!   keys/<member>.pem        members' event-signing keys (PKCS#8 PEM)
//!   nodes/<node>/node.toml   the node's configuration, with its ports
//!   nodes/<node>/node.pem    the node's key (libp2p identity, vote signing)
//!   nodes/<node>/data/       its sled ledger and consensus WAL
//!   nodes/<node>/node.log    its log (stdout and stderr), appended across runs
//!   state.json               the running processes, while the devnet runs
//!   demo.json                the shipments of the last demo run and their final states
//! ```

use std::path::{Path, PathBuf};

/// The file layout of one devnet directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout rooted at `dir`, which should be absolute so that node configurations
    /// written from it work from any working directory.
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// Creates `dir` if needed and returns its layout with an absolute root.
    pub fn create(dir: &Path) -> anyhow::Result<Layout> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let absolute = dir
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("cannot resolve {}: {e}", dir.display()))?;
        Ok(Layout::new(absolute))
    }

    /// The layout of an existing `dir`, with an absolute root; `None` if it does not exist.
    pub fn existing(dir: &Path) -> Option<Layout> {
        dir.canonicalize().ok().map(Layout::new)
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("devnet.json")
    }

    /// The genesis document.
    pub fn genesis(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    /// The directory of members' keys.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    /// A member's event-signing key.
    pub fn member_key(&self, member: &str) -> PathBuf {
        self.keys_dir().join(format!("{member}.pem"))
    }

    /// The directory of all nodes.
    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }

    /// A node's directory.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.nodes_dir().join(node)
    }

    /// A node's configuration file.
    pub fn node_config(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("node.toml")
    }

    /// A node's key.
    pub fn node_key(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("node.pem")
    }

    /// A node's data directory (sled store and consensus WAL).
    pub fn node_data(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("data")
    }

    /// A node's sled ledger, inside its data directory (where `custody_node::node::start` puts
    /// it).
    pub fn node_ledger(&self, node: &str) -> PathBuf {
        self.node_data(node).join("ledger")
    }

    /// A node's log file.
    pub fn node_log(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("node.log")
    }

    /// The file naming the running processes.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The record of the last demo run.
    pub fn demo(&self) -> PathBuf {
        self.dir.join("demo.json")
    }
}

/// The default devnet directory, relative to the working directory.
pub const DEFAULT_DIR: &str = ".devnet";

/// Total size in bytes of the files under `dir` (0 if it does not exist). The walk goes at
/// most 16 levels deep, which a sled or devnet directory never reaches.
pub fn tree_size_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth_left: u32) -> u64 {
        if depth_left == 0 {
            return 0;
        }
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(m) if m.is_dir() => walk(&entry.path(), depth_left - 1),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    const DEPTH_MAX: u32 = 16;
    walk(dir, DEPTH_MAX)
}
