//! The shipment map: a sparse Merkle tree from shipment keys to 32-byte values (the entry hash
//! of each shipment's latest event), whose root goes into every block header.
//!
//! The tree is defined over all 2^256 keys, `key = SHA-256("custody/shipment-key/v1" ||
//! utf8(shipment_id))`, reading key bits from the most significant bit of byte 0, bit 0 going
//! left:
//!
//! * an empty subtree hashes to the zero digest,
//! * a subtree holding exactly one leaf hashes to that leaf's hash `SHA-256(0x02 || key ||
//!   value)`, wherever the subtree sits: a leaf lives at the shallowest depth where it is alone,
//! * a subtree holding two or more leaves hashes to `SHA-256(0x03 || left || right)`, where one
//!   side may be the zero digest.
//!
//! The prefixes `0x02` and `0x03` are distinct from each other and from the log's `0x00` and
//! `0x01` (see [`crate::merkle`]), so no hash of one kind can be passed off as another.
//!
//! # Storage
//!
//! Nodes are addressed by their place in the tree, a [`NodePath`] (depth and key prefix), and
//! read through the [`MapNodes`] trait, so the same code serves the sled store, the in-memory
//! [`MemoryMap`] and a block's overlay of not yet committed writes. An interior node stores its
//! two children's hashes, so a change to a leaf rewrites exactly the nodes on its path.
//! [`update`] computes those writes without touching the store; the caller applies them.
//!
//! # Proofs
//!
//! A membership proof for a leaf at depth `d` is the list of its `d` siblings' hashes, deepest
//! first, with the zero digest for an empty sibling. [`verify`] needs only the root. Because a
//! leaf sits where it is alone, its deepest sibling is never empty; a proof whose deepest sibling
//! is zero is refused, so each (key, value) under a root has exactly one proof.

use std::collections::BTreeMap;
use std::convert::Infallible;

use serde::{Deserialize, Serialize};

use crate::hash::{domain, Digest};

/// The deepest a node can sit: a leaf whose key shares its first 255 bits with another key.
pub const MAX_DEPTH: u16 = 256;

/// Prefix byte of a leaf hash, distinct from the log's `0x00` and `0x01`.
const LEAF_PREFIX: u8 = 0x02;
/// Prefix byte of an interior node hash.
const INTERIOR_PREFIX: u8 = 0x03;

/// Tag byte of an encoded [`MapNode::Leaf`].
const LEAF_TAG: u8 = 0;
/// Tag byte of an encoded [`MapNode::Interior`].
const INTERIOR_TAG: u8 = 1;
/// Length of an encoded node: the tag and two 32-byte fields.
const NODE_LEN_BYTES: usize = 65;
/// Length of an encoded [`NodePath`]: a big-endian `u16` depth and a 32-byte prefix.
const PATH_LEN_BYTES: usize = 34;

/// A place in the map's key space: the 256 bits of `SHA-256(domain || shipment id)`.
pub type MapKey = [u8; 32];

/// The map key of a shipment: `SHA-256("custody/shipment-key/v1" || utf8(shipment_id))`.
///
/// Hashing spreads the keys evenly, which keeps the tree about `log2(shipments)` deep.
#[must_use]
pub fn key_of(shipment_id: &str) -> MapKey {
    Digest::of(domain::SHIPMENT_KEY, &[shipment_id.as_bytes()]).0
}

/// Hash of a leaf: `SHA-256(0x02 || key || value)`.
#[must_use]
pub fn leaf_hash(key: &MapKey, value: &Digest) -> Digest {
    Digest::of(&[LEAF_PREFIX], &[key, value.as_bytes()])
}

/// Hash of an interior node: `SHA-256(0x03 || left || right)`.
#[must_use]
pub fn interior_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of(&[INTERIOR_PREFIX], &[left.as_bytes(), right.as_bytes()])
}

/// Bit `index` of `key`, counting from the most significant bit of byte 0; `index < 256`.
fn bit(key: &MapKey, index: u16) -> u8 {
    let index = usize::from(index);
    (key[index / 8] >> (7 - index % 8)) & 1
}

/// Why a proof, a node or a node path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// A proof with more siblings than the tree has levels.
    #[error("the proof has {len} siblings, but the map is at most {MAX_DEPTH} deep")]
    ProofTooLong {
        /// The number of siblings in the proof.
        len: usize,
    },
    /// A proof whose deepest sibling is empty: the leaf would have sat one level higher, so the
    /// proof is not the one the map gives.
    #[error("the proof's deepest sibling is empty, so the leaf is not where the map puts it")]
    NonCanonical,
    /// A well-formed proof that leads to a different root: the claimed value is not in the map.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    /// Stored node bytes that are not a node's encoding.
    #[error("{len} bytes are not an encoded shipment map node")]
    BadNode {
        /// The number of bytes offered.
        len: usize,
    },
    /// Stored path bytes that are not a node path's encoding.
    #[error("{len} bytes are not an encoded shipment map node path")]
    BadPath {
        /// The number of bytes offered.
        len: usize,
    },
}

/// A node's place: its depth (0 at the root, at most 256) and the first `depth` bits of the keys
/// below it, with every later bit zero.
///
/// Paths order by depth, then prefix, which is also the byte order of [`NodePath::to_bytes`], so
/// a store that keys nodes by those bytes keeps them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodePath {
    depth: u16,
    prefix: [u8; 32],
}

impl NodePath {
    /// The root's path: depth 0, empty prefix.
    #[must_use]
    pub fn root() -> NodePath {
        NodePath {
            depth: 0,
            prefix: [0; 32],
        }
    }

    /// The path of the node at `depth` on the way to `key`.
    ///
    /// # Panics
    ///
    /// If `depth` exceeds [`MAX_DEPTH`]; no tree has such a node.
    #[must_use]
    pub fn of(key: &MapKey, depth: u16) -> NodePath {
        assert!(
            depth <= MAX_DEPTH,
            "map depth {depth} is beyond {MAX_DEPTH}"
        );
        let full_bytes = usize::from(depth / 8);
        let mut prefix = [0; 32];
        prefix[..full_bytes].copy_from_slice(&key[..full_bytes]);
        let spare_bits = depth % 8;
        if spare_bits > 0 {
            prefix[full_bytes] = key[full_bytes] & (0xff << (8 - spare_bits));
        }
        NodePath { depth, prefix }
    }

    /// The node's depth, 0 to 256.
    #[must_use]
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// The key prefix, `depth` bits followed by zeros.
    #[must_use]
    pub fn prefix(&self) -> &[u8; 32] {
        &self.prefix
    }

    /// The path of the child on side `side` (0 left, 1 right); the caller ensures
    /// `depth < 256`.
    fn child(&self, side: u8) -> NodePath {
        let mut prefix = self.prefix;
        let index = usize::from(self.depth);
        prefix[index / 8] |= side << (7 - index % 8);
        NodePath {
            depth: self.depth + 1,
            prefix,
        }
    }

    /// The store key: the depth as a big-endian `u16`, then the 32-byte prefix.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; PATH_LEN_BYTES] {
        let mut out = [0; PATH_LEN_BYTES];
        out[..2].copy_from_slice(&self.depth.to_be_bytes());
        out[2..].copy_from_slice(&self.prefix);
        out
    }

    /// Reads [`NodePath::to_bytes`] back, refusing a wrong length, a depth beyond 256 and a
    /// prefix with bits set past its depth, so each path has exactly one encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<NodePath, MapError> {
        let bad = MapError::BadPath { len: bytes.len() };
        let bytes: &[u8; PATH_LEN_BYTES] = bytes.try_into().map_err(|_| bad.clone())?;
        let depth = u16::from_be_bytes([bytes[0], bytes[1]]);
        if depth > MAX_DEPTH {
            return Err(bad);
        }
        let mut prefix = [0; 32];
        prefix.copy_from_slice(&bytes[2..]);
        let path = NodePath::of(&prefix, depth);
        if path.prefix != prefix {
            return Err(bad);
        }
        Ok(path)
    }
}

/// A stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapNode {
    /// The only leaf in its subtree.
    Leaf {
        /// The leaf's full key.
        key: MapKey,
        /// The value stored under the key.
        value: Digest,
    },
    /// A subtree of two or more leaves, holding its children's hashes (zero for an empty side).
    Interior {
        /// Hash of the subtree whose next key bit is 0.
        left: Digest,
        /// Hash of the subtree whose next key bit is 1.
        right: Digest,
    },
}

impl MapNode {
    /// The node's hash, [`leaf_hash`] or [`interior_hash`].
    #[must_use]
    pub fn hash(&self) -> Digest {
        match self {
            MapNode::Leaf { key, value } => leaf_hash(key, value),
            MapNode::Interior { left, right } => interior_hash(left, right),
        }
    }

    /// The stored form: a tag byte (0 leaf, 1 interior), then the two 32-byte fields in
    /// declaration order; always 65 bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (tag, first, second) = match self {
            MapNode::Leaf { key, value } => (LEAF_TAG, key, &value.0),
            MapNode::Interior { left, right } => (INTERIOR_TAG, &left.0, &right.0),
        };
        let mut out = Vec::with_capacity(NODE_LEN_BYTES);
        out.push(tag);
        out.extend_from_slice(first);
        out.extend_from_slice(second);
        out
    }

    /// Reads [`MapNode::encode`] back. Refuses any other length or tag, and an interior node
    /// with two empty sides, which no map holds.
    pub fn decode(bytes: &[u8]) -> Result<MapNode, MapError> {
        let bad = MapError::BadNode { len: bytes.len() };
        if bytes.len() != NODE_LEN_BYTES {
            return Err(bad);
        }
        let mut first = [0; 32];
        let mut second = [0; 32];
        first.copy_from_slice(&bytes[1..33]);
        second.copy_from_slice(&bytes[33..]);
        match bytes[0] {
            LEAF_TAG => Ok(MapNode::Leaf {
                key: first,
                value: Digest(second),
            }),
            INTERIOR_TAG if first != [0; 32] || second != [0; 32] => Ok(MapNode::Interior {
                left: Digest(first),
                right: Digest(second),
            }),
            _ => Err(bad),
        }
    }
}

/// Where nodes are read from: the sled store, a [`MemoryMap`], or a block's overlay of
/// uncommitted writes over either.
///
/// The tree trusts its nodes: a node that a parent names but the source has lost is taken as an
/// empty subtree, which yields a root that no honest block carries.
pub trait MapNodes {
    /// Why a read can fail, for example an I/O error of the underlying store.
    type Error;

    /// The node at `path`, or `None` if there is none.
    fn map_node(&self, path: &NodePath) -> Result<Option<MapNode>, Self::Error>;
}

/// The result of [`update`]: the new root and the node writes that produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapUpdate {
    /// The map's root after the update.
    pub root: Digest,
    /// Sorted by path, at most one per path. `Some` puts the node, `None` deletes it. Only
    /// nodes that change are listed, and since keys are never removed, [`update`] only puts.
    pub writes: Vec<(NodePath, Option<MapNode>)>,
}

/// Sets every `(key, value)` in `updates`; for a key listed twice the later value wins.
///
/// Reads only the nodes on the paths of the updated keys, each once, so the work is about
/// `updates.len() × log2(map size)` node reads and hashes. Nothing is written: the writes that
/// turn the stored tree into the new one come back in the [`MapUpdate`].
pub fn update<N: MapNodes>(nodes: &N, updates: &[(MapKey, Digest)]) -> Result<MapUpdate, N::Error> {
    // A BTreeMap both orders the keys, which the descent relies on, and lets later duplicates
    // replace earlier ones.
    let entries: Vec<(MapKey, Digest)> = updates
        .iter()
        .copied()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let root_path = NodePath::root();
    if entries.is_empty() {
        return Ok(MapUpdate {
            root: root(nodes)?,
            writes: Vec::new(),
        });
    }
    let mut updater = Updater {
        nodes,
        writes: Vec::new(),
    };
    let old_root = nodes.map_node(&root_path)?;
    let root = updater.visit(root_path, old_root, &entries)?;
    let mut writes = updater.writes;
    // The descent visits each path once, so paths are distinct and the order is total.
    writes.sort_unstable_by_key(|(path, _)| *path);
    Ok(MapUpdate { root, writes })
}

/// The recursive descent behind [`update`]: it visits each path on the way to an updated key
/// once, so it needs no overlay of its own writes.
struct Updater<'a, N> {
    nodes: &'a N,
    writes: Vec<(NodePath, Option<MapNode>)>,
}

impl<N: MapNodes> Updater<'_, N> {
    /// Applies `entries` (sorted, distinct, non-empty, all below `path`) to the subtree at `path`
    /// whose stored node is `old`, and returns the subtree's new hash.
    fn visit(
        &mut self,
        path: NodePath,
        old: Option<MapNode>,
        entries: &[(MapKey, Digest)],
    ) -> Result<Digest, N::Error> {
        let node = match &old {
            // Below depth 256 there is no bit to branch on; a store that holds an interior node
            // there is damaged, and the subtree is rebuilt from the entries alone.
            Some(MapNode::Interior { left, right }) if path.depth < MAX_DEPTH => {
                let split = split_at_bit(entries, path.depth);
                MapNode::Interior {
                    left: self.child(path.child(0), *left, &entries[..split])?,
                    right: self.child(path.child(1), *right, &entries[split..])?,
                }
            }
            Some(MapNode::Leaf { key, value }) => {
                // The leaf already here is one more entry of this subtree, unless it is updated.
                match entries.binary_search_by(|entry| entry.0.cmp(key)) {
                    Ok(_) => self.fresh(path, entries)?,
                    Err(place) => {
                        let mut merged = entries.to_vec();
                        merged.insert(place, (*key, *value));
                        self.fresh(path, &merged)?
                    }
                }
            }
            _ => self.fresh(path, entries)?,
        };
        let hash = node.hash();
        if old.as_ref() != Some(&node) {
            self.writes.push((path, Some(node)));
        }
        Ok(hash)
    }

    /// The new node at `path` for a subtree that holds nothing but `entries` (sorted, distinct,
    /// non-empty): a leaf if there is one, else an interior node over fresh children.
    fn fresh(&mut self, path: NodePath, entries: &[(MapKey, Digest)]) -> Result<MapNode, N::Error> {
        if let [(key, value)] = entries {
            return Ok(MapNode::Leaf {
                key: *key,
                value: *value,
            });
        }
        // Two distinct keys differ within 256 bits, so two entries never reach depth 256.
        let split = split_at_bit(entries, path.depth);
        Ok(MapNode::Interior {
            left: self.child(path.child(0), Digest::ZERO, &entries[..split])?,
            right: self.child(path.child(1), Digest::ZERO, &entries[split..])?,
        })
    }

    /// The new hash of the child at `path`, whose current hash is `hash`, after `entries`.
    fn child(
        &mut self,
        path: NodePath,
        hash: Digest,
        entries: &[(MapKey, Digest)],
    ) -> Result<Digest, N::Error> {
        if entries.is_empty() {
            return Ok(hash);
        }
        // An empty side has no node to read.
        let old = if hash == Digest::ZERO {
            None
        } else {
            self.nodes.map_node(&path)?
        };
        self.visit(path, old, entries)
    }
}

/// The number of `entries` (sorted, sharing their first `depth` bits) whose bit `depth` is 0.
fn split_at_bit(entries: &[(MapKey, Digest)], depth: u16) -> usize {
    entries.partition_point(|(key, _)| bit(key, depth) == 0)
}

/// The map's root: the hash of the node at the root path, or zero for an empty map.
pub fn root<N: MapNodes>(nodes: &N) -> Result<Digest, N::Error> {
    Ok(nodes
        .map_node(&NodePath::root())?
        .map_or(Digest::ZERO, |node| node.hash()))
}

/// A membership proof: the siblings of a leaf's path, deepest first, zero for an empty one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MapProof {
    /// One hash per level from the leaf's depth up to depth 1.
    pub siblings: Vec<Digest>,
}

/// The value stored under `key` and its proof, or `None` if the key is absent.
///
/// Reads one node per level on the way down to the key's leaf.
pub fn prove<N: MapNodes>(nodes: &N, key: &MapKey) -> Result<Option<(Digest, MapProof)>, N::Error> {
    let mut siblings = Vec::new();
    let mut node = nodes.map_node(&NodePath::root())?;
    for depth in 0..=MAX_DEPTH {
        let (left, right) = match node {
            Some(MapNode::Leaf { key: found, value }) if found == *key => {
                siblings.reverse();
                return Ok(Some((value, MapProof { siblings })));
            }
            Some(MapNode::Interior { left, right }) if depth < MAX_DEPTH => (left, right),
            // Another key's leaf, an empty subtree, or (in a damaged store) an interior node
            // below the last bit: the key is not in the map.
            _ => return Ok(None),
        };
        let (next, sibling) = if bit(key, depth) == 0 {
            (left, right)
        } else {
            (right, left)
        };
        if next == Digest::ZERO {
            return Ok(None);
        }
        siblings.push(sibling);
        node = nodes.map_node(&NodePath::of(key, depth + 1))?;
    }
    Ok(None)
}

/// Checks that `proof` shows `key` maps to `value` in the map whose root is `root`.
///
/// The proof's length is the leaf's depth. Hashing runs from the leaf up: at depth `d` the
/// running hash is the left child if bit `d - 1` of the key is 0, the right child otherwise.
pub fn verify(
    root: &Digest,
    key: &MapKey,
    value: &Digest,
    proof: &MapProof,
) -> Result<(), MapError> {
    let siblings = &proof.siblings;
    let len = siblings.len();
    let depth = u16::try_from(len)
        .ok()
        .filter(|depth| *depth <= MAX_DEPTH)
        .ok_or(MapError::ProofTooLong { len })?;
    if siblings.first() == Some(&Digest::ZERO) {
        return Err(MapError::NonCanonical);
    }
    let mut hash = leaf_hash(key, value);
    for (below, sibling) in (0..depth).rev().zip(siblings) {
        hash = if bit(key, below) == 0 {
            interior_hash(&hash, sibling)
        } else {
            interior_hash(sibling, &hash)
        };
    }
    if hash == *root {
        Ok(())
    } else {
        Err(MapError::RootMismatch)
    }
}

/// An in-memory node set, for tests and for replaying a whole chain in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryMap {
    nodes: BTreeMap<NodePath, MapNode>,
}

impl MemoryMap {
    /// Applies an [`update`]'s writes.
    pub fn apply(&mut self, update: &MapUpdate) {
        for (path, node) in &update.writes {
            match node {
                Some(node) => self.nodes.insert(*path, node.clone()),
                None => self.nodes.remove(path),
            };
        }
    }

    /// The number of stored nodes.
    #[must_use]
    pub fn len_nodes(&self) -> usize {
        self.nodes.len()
    }
}

impl MapNodes for MemoryMap {
    type Error = Infallible;

    fn map_node(&self, path: &NodePath) -> Result<Option<MapNode>, Infallible> {
        Ok(self.nodes.get(path).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    /// The map's definition, written independently of the module: recursion over the sorted
    /// entries, splitting on one key bit per level.
    mod reference {
        use super::super::{interior_hash, leaf_hash, MapKey};
        use crate::hash::Digest;

        pub fn key_bit(key: &MapKey, index: usize) -> bool {
            key[index / 8] & (0x80 >> (index % 8)) != 0
        }

        fn sides(entries: &[(MapKey, Digest)], depth: usize) -> [Vec<(MapKey, Digest)>; 2] {
            let left = entries.iter().filter(|e| !key_bit(&e.0, depth));
            let right = entries.iter().filter(|e| key_bit(&e.0, depth));
            [left.copied().collect(), right.copied().collect()]
        }

        /// Root of the subtree at `depth` holding `entries` (distinct keys).
        pub fn root(entries: &[(MapKey, Digest)], depth: usize) -> Digest {
            match entries {
                [] => Digest::ZERO,
                [(key, value)] => leaf_hash(key, value),
                _ => {
                    let [left, right] = sides(entries, depth);
                    interior_hash(&root(&left, depth + 1), &root(&right, depth + 1))
                }
            }
        }

        /// Siblings of `key`'s leaf, deepest first, if the key is present.
        pub fn proof(entries: &[(MapKey, Digest)], key: &MapKey) -> Option<Vec<Digest>> {
            let mut entries = entries.to_vec();
            let mut siblings = Vec::new();
            let mut depth = 0;
            while entries.len() > 1 {
                let [left, right] = sides(&entries, depth);
                let (own, other) = if key_bit(key, depth) {
                    (right, left)
                } else {
                    (left, right)
                };
                siblings.push(root(&other, depth + 1));
                entries = own;
                depth += 1;
            }
            siblings.reverse();
            (entries.first()?.0 == *key).then_some(siblings)
        }
    }

    /// A [`MemoryMap`] that records every path read, to check the descent's read pattern.
    #[derive(Default)]
    struct Counting {
        map: MemoryMap,
        reads: RefCell<Vec<NodePath>>,
    }

    impl MapNodes for Counting {
        type Error = Infallible;
        fn map_node(&self, path: &NodePath) -> Result<Option<MapNode>, Infallible> {
            self.reads.borrow_mut().push(*path);
            self.map.map_node(path)
        }
    }

    fn digest(tag: &str, n: u64) -> Digest {
        Digest::sha256(format!("{tag}/{n}").as_bytes())
    }

    fn value_of(name: &str) -> Digest {
        Digest::sha256(name.as_bytes())
    }

    /// Applies one batch to both the map and the model, checking the root against the
    /// reference, the read pattern, the writes against a build from scratch, and every proof.
    fn apply_and_check(
        map: &mut MemoryMap,
        model: &mut BTreeMap<MapKey, Digest>,
        batch: &[(MapKey, Digest)],
    ) {
        let counting = Counting {
            map: map.clone(),
            reads: RefCell::default(),
        };
        let result = update(&counting, batch).unwrap();
        let reads = counting.reads.into_inner();
        let distinct: BTreeSet<_> = reads.iter().collect();
        assert_eq!(distinct.len(), reads.len(), "a node was read twice");
        assert!(reads.len() <= 1 + batch.len() * usize::from(MAX_DEPTH));
        assert!(result.writes.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(result.writes.iter().all(|(_, node)| node.is_some()));
        map.apply(&result);
        model.extend(batch.iter().copied());
        let entries: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(result.root, reference::root(&entries, 0));
        assert_eq!(root(map).unwrap(), result.root);
        // The layout is canonical: replaying batches leaves exactly the nodes of a fresh build.
        let mut fresh = MemoryMap::default();
        fresh.apply(&update(&MemoryMap::default(), &entries).unwrap());
        assert_eq!(*map, fresh);
        for (key, value) in &entries {
            let (found, proof) = prove(map, key).unwrap().expect("key is present");
            assert_eq!(found, *value);
            assert_eq!(
                Some(proof.siblings.clone()),
                reference::proof(&entries, key)
            );
            assert_eq!(verify(&result.root, key, value, &proof), Ok(()));
        }
    }

    #[test]
    fn empty_map_has_zero_root_and_no_proofs() {
        let map = MemoryMap::default();
        assert_eq!(root(&map), Ok(Digest::ZERO));
        assert_eq!(prove(&map, &key_of("S-1")), Ok(None));
        let counting = Counting::default();
        let result = update(&counting, &[]).unwrap();
        assert_eq!(result.root, Digest::ZERO);
        assert!(result.writes.is_empty());
        assert_eq!(counting.reads.borrow().len(), 1, "only the root is read");
    }

    #[test]
    fn single_leaf_is_the_root() {
        let mut map = MemoryMap::default();
        let key = key_of("S-1");
        let value = value_of("S-1");
        let result = update(&map, &[(key, value)]).unwrap();
        assert_eq!(result.root, leaf_hash(&key, &value));
        map.apply(&result);
        assert_eq!(map.len_nodes(), 1);
        let (found, proof) = prove(&map, &key).unwrap().unwrap();
        assert_eq!((found, proof.siblings.len()), (value, 0));
        assert_eq!(verify(&result.root, &key, &value, &proof), Ok(()));
        assert_eq!(prove(&map, &key_of("S-2")), Ok(None));
    }

    #[test]
    fn many_batches_match_the_reference() {
        let mut map = MemoryMap::default();
        let mut model = BTreeMap::new();
        let mut next_key = 0u64;
        for batch_no in 0..40u64 {
            let mut batch = Vec::new();
            for i in 0..(batch_no * 7) % 23 {
                let n = batch_no * 100 + i;
                // Mostly new keys; some updates of old keys and duplicates within the batch.
                let key = match n % 5 {
                    0 if next_key > 0 => digest("key", n % next_key).0,
                    1 => batch
                        .last()
                        .map_or(digest("key", next_key).0, |e: &(_, _)| e.0),
                    _ => {
                        next_key += 1;
                        digest("key", next_key - 1).0
                    }
                };
                batch.push((key, digest("value", n)));
            }
            apply_and_check(&mut map, &mut model, &batch);
        }
        assert!(model.len() > 100);
    }

    #[test]
    fn rewriting_the_same_value_writes_nothing() {
        let entries: Vec<_> = (0..20)
            .map(|n| (digest("key", n).0, digest("v", n)))
            .collect();
        let mut map = MemoryMap::default();
        map.apply(&update(&map, &entries).unwrap());
        let again = update(&map, &entries[3..9]).unwrap();
        assert!(again.writes.is_empty());
        assert_eq!(again.root, root(&map).unwrap());
    }

    #[test]
    fn later_duplicates_win() {
        let key = key_of("S-1");
        let batch = [(key, value_of("a")), (key, value_of("b"))];
        let result = update(&MemoryMap::default(), &batch).unwrap();
        assert_eq!(result.root, leaf_hash(&key, &value_of("b")));
    }

    /// A key equal to `base` except for bit `index`.
    fn flip(base: &MapKey, index: usize) -> MapKey {
        let mut key = *base;
        key[index / 8] ^= 0x80 >> (index % 8);
        key
    }

    #[test]
    fn long_shared_prefixes_down_to_depth_256() {
        let base = key_of("base");
        let last_bit = flip(&base, 255);
        let bit_200 = flip(&base, 200);
        let bit_0 = flip(&base, 0);
        let mut map = MemoryMap::default();
        let mut model = BTreeMap::new();
        // Inserted one at a time, so leaves are pushed down past existing ones.
        for (n, key) in [base, bit_200, last_bit, bit_0].iter().enumerate() {
            apply_and_check(&mut map, &mut model, &[(*key, digest("v", n as u64))]);
        }
        let depth_of = |key: &MapKey| prove(&map, key).unwrap().unwrap().1.siblings.len();
        assert_eq!(depth_of(&base), 256);
        assert_eq!(depth_of(&last_bit), 256);
        assert_eq!(depth_of(&bit_200), 201);
        assert_eq!(depth_of(&bit_0), 1);
        // 255 interior nodes above the deepest pair, 256 levels, 4 leaves.
        assert_eq!(map.len_nodes(), 256 + 4);
        // The same keys in one batch, in a different order.
        let mut one_batch = MemoryMap::default();
        let entries: Vec<_> = model.iter().rev().map(|(k, v)| (*k, *v)).collect();
        one_batch.apply(&update(&one_batch, &entries).unwrap());
        assert_eq!(one_batch, map);
        // An absent key on the deep path, and one next to a leaf.
        assert_eq!(prove(&map, &flip(&base, 254)), Ok(None));
        assert_eq!(prove(&map, &flip(&bit_0, 9)), Ok(None));
    }

    #[test]
    fn tampered_proofs_fail() {
        let base = key_of("base");
        let mut entries: Vec<_> = (0..50)
            .map(|n| (digest("key", n).0, digest("v", n)))
            .collect();
        entries.push((flip(&base, 255), value_of("deep")));
        entries.push((base, value_of("base")));
        let mut map = MemoryMap::default();
        let result = update(&map, &entries).unwrap();
        map.apply(&result);
        let root = result.root;
        for (key, value) in &entries {
            let (_, proof) = prove(&map, key).unwrap().unwrap();
            let with = |siblings: Vec<Digest>| MapProof { siblings };
            assert_eq!(verify(&root, key, value, &proof), Ok(()));
            for i in 0..proof.siblings.len() {
                let mut changed = proof.siblings.clone();
                changed[i].0[i % 32] ^= 1;
                assert_eq!(
                    verify(&root, key, value, &with(changed)),
                    Err(MapError::RootMismatch)
                );
            }
            let mut dropped = proof.siblings.clone();
            dropped.remove(0);
            assert!(verify(&root, key, value, &with(dropped)).is_err());
            let mut extra = proof.siblings.clone();
            extra.push(value_of("extra"));
            assert!(verify(&root, key, value, &with(extra)).is_err());
            let mut zeroed = proof.siblings.clone();
            zeroed[0] = Digest::ZERO;
            assert_eq!(
                verify(&root, key, value, &with(zeroed)),
                Err(MapError::NonCanonical)
            );
            // Moving the leaf up a level with an empty sibling below it is refused too.
            let mut lowered = proof.siblings.clone();
            lowered.insert(0, Digest::ZERO);
            assert!(verify(&root, key, value, &with(lowered)).is_err());
            let wrong_value = value_of("wrong");
            assert_eq!(
                verify(&root, key, &wrong_value, &proof),
                Err(MapError::RootMismatch)
            );
            assert!(verify(&root, &flip(key, 3), value, &proof).is_err());
            assert!(verify(&root, &flip(key, 255), value, &proof).is_err());
            assert!(verify(&value_of("root"), key, value, &proof).is_err());
        }
        let too_long = MapProof {
            siblings: vec![value_of("x"); 257],
        };
        assert_eq!(
            verify(&root, &base, &value_of("base"), &too_long),
            Err(MapError::ProofTooLong { len: 257 })
        );
    }

    #[test]
    fn node_encoding_round_trips_and_refuses_bad_bytes() {
        let leaf = MapNode::Leaf {
            key: key_of("S-1"),
            value: value_of("S-1"),
        };
        let interior = MapNode::Interior {
            left: Digest::ZERO,
            right: value_of("r"),
        };
        for node in [&leaf, &interior] {
            let bytes = node.encode();
            assert_eq!(bytes.len(), 65);
            assert_eq!(MapNode::decode(&bytes).as_ref(), Ok(node));
            assert!(MapNode::decode(&bytes[..64]).is_err());
            assert!(MapNode::decode(&[&bytes[..], &[0]].concat()).is_err());
            let mut tagged = bytes.clone();
            tagged[0] = 2;
            assert_eq!(MapNode::decode(&tagged), Err(MapError::BadNode { len: 65 }));
        }
        assert_eq!(leaf.encode()[0], 0);
        assert_eq!(interior.encode()[0], 1);
        assert!(MapNode::decode(&[]).is_err());
        let mut empty_interior = [0u8; 65];
        empty_interior[0] = 1;
        assert!(MapNode::decode(&empty_interior).is_err());
    }

    #[test]
    fn node_paths_encode_in_order_and_refuse_bad_bytes() {
        let key = [0xffu8; 32];
        assert_eq!(NodePath::of(&key, 0), NodePath::root());
        let mut previous = None;
        for depth in 0..=MAX_DEPTH {
            let path = NodePath::of(&key, depth);
            let bytes = path.to_bytes();
            assert_eq!(NodePath::from_bytes(&bytes), Ok(path));
            if let Some((before, before_bytes)) = previous {
                assert!(before < path && before_bytes < bytes);
            }
            previous = Some((path, bytes));
            if depth > 0 {
                assert_eq!(NodePath::of(&key, depth - 1).child(1), path);
            }
        }
        assert_eq!(NodePath::of(&key, 12).prefix()[..3], [0xff, 0xf0, 0]);
        let mut stray = NodePath::of(&key, 12).to_bytes();
        stray[3] |= 1;
        assert_eq!(
            NodePath::from_bytes(&stray),
            Err(MapError::BadPath { len: 34 })
        );
        let mut too_deep = NodePath::of(&key, 256).to_bytes();
        too_deep[1] = 1;
        assert!(NodePath::from_bytes(&too_deep).is_err());
        assert!(NodePath::from_bytes(&[0; 33]).is_err());
        assert!(NodePath::from_bytes(&[0; 35]).is_err());
    }

    #[test]
    fn proof_serialises_as_a_list_of_hex() {
        let proof = MapProof {
            siblings: vec![Digest::ZERO],
        };
        let json = serde_json::to_string(&proof).unwrap();
        assert_eq!(json, format!("[\"{}\"]", "0".repeat(64)));
        assert_eq!(serde_json::from_str::<MapProof>(&json).unwrap(), proof);
    }

    /// The test vector of `docs/PROTOCOL.md`: three shipments, each valued at the SHA-256 of its
    /// id's bytes.
    #[test]
    fn protocol_test_vector() {
        let ids = ["S-1", "S-2", "S-3"];
        let entries: Vec<_> = ids.iter().map(|id| (key_of(id), value_of(id))).collect();
        let mut map = MemoryMap::default();
        let result = update(&map, &entries).unwrap();
        map.apply(&result);
        for id in ids {
            println!("key({id}) = {}", hex::encode(key_of(id)));
            println!("value({id}) = {}", value_of(id));
            println!("leaf({id}) = {}", leaf_hash(&key_of(id), &value_of(id)));
        }
        println!("root = {}", result.root);
        let (_, proof) = prove(&map, &key_of("S-2")).unwrap().unwrap();
        println!("proof(S-2) = {}", serde_json::to_string(&proof).unwrap());
        for (path, node) in &map.nodes {
            println!("node depth {} = {}", path.depth(), node.hash());
        }
        assert_eq!(
            result.root.to_hex(),
            "566eb0cb43eb5c12da47ed247b8e0868eeb0531c427633f0ccc259a87858b5b5"
        );
        let zero = "0".repeat(64);
        let expected = [
            "81dbddc515e3cecc495f7af5f2208330505a93884b6278f778bce5902130f30d",
            &zero,
            &zero,
            "433f14b59956a290025ed7e2dc8ec02b56e6908f4b0c40e33d01da63618944d2",
            &zero,
        ];
        let hex: Vec<String> = proof.siblings.iter().map(Digest::to_hex).collect();
        assert_eq!(hex, expected);
        assert_eq!(
            verify(&result.root, &key_of("S-2"), &value_of("S-2"), &proof),
            Ok(())
        );
    }

    /// Strategy: batches of keys that differ only in their first and last bytes, so most pairs
    /// share 240 bits and the tree runs deep.
    fn deep_batches() -> impl Strategy<Value = Vec<Vec<(u8, u8, u8)>>> {
        let entry = (0..4u8, any::<u8>(), any::<u8>());
        prop::collection::vec(prop::collection::vec(entry, 0..12), 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn deep_random_batches_match_the_reference(batches in deep_batches()) {
            let mut map = MemoryMap::default();
            let mut model = BTreeMap::new();
            for batch in batches {
                let batch: Vec<_> = batch
                    .into_iter()
                    .map(|(first, last, value)| {
                        let mut key = [0x5a; 32];
                        key[0] = first;
                        key[31] = last;
                        (key, digest("value", u64::from(value)))
                    })
                    .collect();
                apply_and_check(&mut map, &mut model, &batch);
            }
        }
    }
}
