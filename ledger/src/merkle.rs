//! The verifiable log: an RFC 6962 Merkle tree over SHA-256, with audit (inclusion) and
//! consistency proofs.
//!
//! The tree follows RFC 6962 §2.1 exactly (and its successor RFC 9162 §2.1), so that any
//! Certificate Transparency verifier can check Custody's proofs and so that the published CT
//! test vectors apply to this code:
//!
//! * a leaf hashes as `SHA-256(0x00 || data)`,
//! * an interior node hashes as `SHA-256(0x01 || left || right)`,
//! * the empty tree's root is `SHA-256("")`.
//!
//! The distinct prefixes keep a leaf from ever being passed off as an interior node (the
//! second-preimage attack on naive Merkle trees).
//!
//! # Addressing nodes
//!
//! RFC 6962 defines the tree recursively, splitting `n` leaves at the largest power of two
//! below `n`. The same tree can be described without recursion: a node at `level` L with
//! `index` i covers the leaves `[i << L, (i + 1) << L)`, and it is *complete* once all of those
//! leaves exist. Complete nodes never change again as the log grows, which is what makes them
//! worth storing. The nodes along the right edge of a tree whose size is not a power of two
//! are *incomplete*; their hashes are not stored but recomputed from at most `log2(size)`
//! complete subtrees whenever a root or a proof needs them.
//!
//! # Storage
//!
//! The proof generators do not own the tree. They read complete subtree hashes through the
//! [`SubtreeSource`] trait, so the same code serves a persistent store (which keeps the
//! nodes on disk), the in-memory [`MemoryLog`] and test doubles. Every generator reads
//! `O(log size)` nodes, and only nodes that are complete within the tree size it was given;
//! [`append_nodes`] computes the nodes a store must write when leaves are appended.
//!
//! # Verification
//!
//! [`verify_inclusion`] and [`verify_consistency`] follow the algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2 and need no access to the tree. They check the proof's length
//! against the tree shape before hashing anything, so a proof of the wrong length is reported
//! as such instead of as a puzzling root mismatch, and hostile input never makes them do more
//! than `O(log size)` work.

use std::convert::Infallible;

use crate::hash::Digest;

/// The number of levels a tree of up to `u64::MAX` leaves can have complete nodes on.
///
/// A complete node on level `L` covers `2^L` leaves, so level 63 is the highest one that fits
/// in a `u64` leaf count.
const MAX_LEVELS: usize = u64::BITS as usize;

/// Hash of a leaf's data: `SHA-256(0x00 || data)`.
///
/// The `0x00` prefix makes leaf hashes disjoint from interior node hashes, as RFC 6962
/// §2.1 requires.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest::of(&[0x00], &[data])
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of(&[0x01], &[left.as_bytes(), right.as_bytes()])
}

/// Root of the empty tree, `SHA-256("")`, as RFC 6962 §2.1 defines it.
#[must_use]
pub fn empty_root() -> Digest {
    Digest::sha256(b"")
}

/// Why a proof could not be produced or did not verify.
///
/// These all describe bad arguments or a bad proof. They are ordinary errors rather than
/// panics because proofs and tree sizes typically arrive from other nodes or clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index does not name a leaf of a tree of this size.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index that was asked about.
        index: u64,
        /// The number of leaves in the tree.
        size: u64,
    },
    /// A consistency proof was asked for, or offered, between sizes that do not allow one.
    ///
    /// A proof needs `0 < old_size <= new_size`: a log never shrinks, and the empty tree has
    /// no proof (see [`consistency_proof`]).
    #[error(
        "a consistency proof needs 0 < old size <= new size, but the old size is {old_size} \
         and the new size is {new_size}"
    )]
    BadSizes {
        /// The size of the earlier tree.
        old_size: u64,
        /// The size of the later tree.
        new_size: u64,
    },
    /// The proof does not have the number of hashes the tree shape calls for.
    #[error("the proof has {actual} hashes, but this tree shape needs exactly {expected}")]
    WrongProofLength {
        /// The number of hashes a proof for these sizes and indices has.
        expected: usize,
        /// The number of hashes the proof had.
        actual: usize,
    },
    /// The proof is well formed but hashes to a different root than the one it was checked
    /// against, so the claim it makes is false.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    /// A tree size larger than the log that was asked to describe it.
    #[error("tree size {size} is larger than the log, which holds {len} leaves")]
    SizeBeyondLog {
        /// The tree size that was asked for.
        size: u64,
        /// The number of leaves the log holds.
        len: u64,
    },
}

/// Failure of a proof generator: either its arguments were bad, or the storage behind the
/// [`SubtreeSource`] failed.
///
/// The two are kept apart because they call for different reactions: the first is the
/// requester's fault and is reported back, the second is a local fault (a disk error, a
/// missing node in a damaged store) and is logged or escalated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    /// The arguments do not describe a proof that exists.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// Reading a subtree hash from the source failed.
    #[error("reading a subtree hash from the tree's storage failed")]
    Source(#[source] E),
}

impl From<ProofError<Infallible>> for MerkleError {
    /// A source that cannot fail leaves only argument errors, so these convert losslessly.
    fn from(error: ProofError<Infallible>) -> Self {
        match error {
            ProofError::Merkle(error) => error,
            ProofError::Source(never) => match never {},
        }
    }
}

/// Source of complete, aligned subtree hashes.
///
/// `subtree(level, index)` is the Merkle Tree Hash of leaves `[index << level, (index + 1) <<
/// level)`; level 0 holds the leaf hashes. The algorithms in this module only ever ask for
/// subtrees that are complete within the tree size they work on, so an implementation that
/// is asked for anything else may treat the request as an error (or, if its error type is
/// [`Infallible`], as a bug).
pub trait SubtreeSource {
    /// Why a read can fail, for example an I/O error of the underlying store.
    type Error;

    /// Returns the hash of the complete subtree at `level` and `index`.
    fn subtree(&self, level: u32, index: u64) -> Result<Digest, Self::Error>;
}

/// Returns the number of significant bits of `value`: 0 for 0, 64 for values with the top bit
/// set. It is the number of levels above the leaves in a tree whose last leaf index is
/// `value`.
fn bit_length(value: u64) -> u32 {
    u64::BITS - value.leading_zeros()
}

/// Merkle Tree Hash of the leaves `[begin, end)`, read as the complete subtrees that make up
/// that range, largest first.
///
/// The range must be a node of some RFC 6962 tree: `begin` has to be a multiple of the
/// largest power of two in `end - begin`, which makes every piece of the binary decomposition
/// of the range an aligned, complete subtree. Reads `popcount(end - begin)` subtrees and does
/// one fewer hash. The fold runs from the right edge leftwards so that it needs no buffer.
fn range_root<S: SubtreeSource>(src: &S, begin: u64, end: u64) -> Result<Digest, S::Error> {
    assert!(begin < end, "empty leaf range [{begin}, {end})");
    let width = end - begin;
    let top_level = bit_length(width) - 1;
    assert!(
        begin == 0 || begin.trailing_zeros() >= top_level,
        "leaf range [{begin}, {end}) is not aligned to a subtree boundary"
    );
    let mut remaining = width;
    let mut right_edge = end;
    let mut acc: Option<Digest> = None;
    // One iteration per set bit of the width, so at most 64.
    while remaining != 0 {
        let level = remaining.trailing_zeros();
        right_edge -= 1u64 << level;
        let piece = src.subtree(level, right_edge >> level)?;
        acc = Some(match acc {
            None => piece,
            Some(right) => node_hash(&piece, &right),
        });
        remaining &= remaining - 1;
    }
    Ok(acc.expect("a non-empty range has at least one complete subtree"))
}

/// Number of hashes on the audit path of the node containing `leaf_index` at `from_level`,
/// up to the root of a tree of `size` leaves.
///
/// Below the level where the paths of `leaf_index` and of the last leaf meet, every node has a
/// sibling. From there on the path runs along the tree's right edge, where a node has a
/// sibling only when it is a right child (odd index); an even node there has no right
/// neighbour and is carried up unchanged, as RFC 6962's uneven split implies.
fn path_len(leaf_index: u64, size: u64, from_level: u32) -> usize {
    assert!(
        leaf_index < size,
        "leaf {leaf_index} outside a tree of {size}"
    );
    let meet = bit_length(leaf_index ^ (size - 1));
    let below = meet.saturating_sub(from_level);
    let on_edge = leaf_index
        .checked_shr(meet.max(from_level))
        .unwrap_or(0)
        .count_ones();
    usize::try_from(below + on_edge).expect("at most 64 hashes")
}

/// Number of hashes in a valid inclusion proof for `leaf_index` in a tree of `size` leaves.
fn inclusion_len(leaf_index: u64, size: u64) -> usize {
    path_len(leaf_index, size, 0)
}

/// Number of hashes in a valid consistency proof from `old_size` to `new_size`, for
/// `0 < old_size < new_size`.
///
/// The proof is the largest complete subtree ending at `old_size` (left out when it is the
/// whole old tree, i.e. when `old_size` is a power of two), followed by that subtree's audit
/// path in the new tree.
fn consistency_len(old_size: u64, new_size: u64) -> usize {
    assert!(0 < old_size && old_size < new_size);
    let level = old_size.trailing_zeros();
    usize::from(!old_size.is_power_of_two()) + path_len(old_size - 1, new_size, level)
}

/// Appends to `out` the audit path of the node containing `leaf_index` at `from_level`, in a
/// tree of `size` leaves, lowest level first.
///
/// A complete sibling is one read; the one incomplete sibling a path can have (the right
/// neighbour on the tree's right edge) is assembled from its complete pieces. Since above
/// that point the path runs along the right edge, where all siblings are left siblings and
/// therefore complete, the whole path costs `O(log size)` reads.
fn push_path<S: SubtreeSource>(
    src: &S,
    leaf_index: u64,
    size: u64,
    from_level: u32,
    out: &mut Vec<Digest>,
) -> Result<(), S::Error> {
    let last = size - 1;
    for level in from_level..bit_length(last) {
        let sibling = (leaf_index >> level) ^ 1;
        if sibling > last >> level {
            // No node to the right on this level: ours is promoted to the next level as is.
            continue;
        }
        let hash = if sibling < size >> level {
            src.subtree(level, sibling)?
        } else {
            range_root(src, sibling << level, size)?
        };
        out.push(hash);
    }
    Ok(())
}

/// Root (Merkle Tree Hash) of the first `size` leaves.
///
/// The root of a tree that is not a power of two in size is never stored, because it changes
/// with every append; it is folded from the `popcount(size)` complete subtrees the tree
/// decomposes into, so this reads at most 64 nodes.
///
/// Every size has a root, so the only error is [`ProofError::Source`]; the error type is
/// the generators' common one so that callers handle a single type.
pub fn root<S: SubtreeSource>(src: &S, size: u64) -> Result<Digest, ProofError<S::Error>> {
    tree_root(src, size).map_err(ProofError::Source)
}

/// [`root`] with the source's own error type.
fn tree_root<S: SubtreeSource>(src: &S, size: u64) -> Result<Digest, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_root(src, 0, size)
}

/// RFC 6962 `PATH(leaf_index, D[0:size])`: the audit path proving that leaf `leaf_index` is in
/// the tree of the first `size` leaves.
///
/// The hashes are ordered from the leaf's sibling up to the child of the root, as RFC 6962
/// and RFC 9162 order them, which is the order [`verify_inclusion`] consumes them in. A
/// one-leaf tree has an empty path. Reads `O(log size)` nodes.
pub fn inclusion_proof<S: SubtreeSource>(
    src: &S,
    leaf_index: u64,
    size: u64,
) -> Result<Vec<Digest>, ProofError<S::Error>> {
    if leaf_index >= size {
        return Err(MerkleError::IndexOutOfRange {
            index: leaf_index,
            size,
        }
        .into());
    }
    let expected = inclusion_len(leaf_index, size);
    let mut proof = Vec::with_capacity(expected);
    push_path(src, leaf_index, size, 0, &mut proof).map_err(ProofError::Source)?;
    assert_eq!(
        proof.len(),
        expected,
        "audit path length disagrees with the tree shape"
    );
    Ok(proof)
}

/// RFC 6962 `PROOF(old_size, D[0:new_size])`: the consistency proof that the tree of the first
/// `new_size` leaves extends the tree of the first `old_size` leaves.
///
/// The proof is empty when the sizes are equal (the roots must then simply be equal).
///
/// An `old_size` of 0 is rejected with [`MerkleError::BadSizes`]. RFC 6962 §2.1.2's
/// recursion has no base case for it, and RFC 9162 §2.1.4.2 verifies proofs only for
/// `0 < first < second`: every log trivially extends the empty one, so there is nothing to
/// prove. A
/// caller without an earlier checkpoint should skip the consistency check explicitly rather
/// than receive an empty proof that looks as though something was verified.
///
/// The proof is the largest complete subtree that ends where the old tree ends (left out if
/// it is the whole old tree, which the verifier already has), followed by that subtree's audit
/// path in the new tree; this is the same list RFC 6962's `SUBPROOF` recursion produces, in
/// the same order. Reads `O(log new_size)` nodes.
pub fn consistency_proof<S: SubtreeSource>(
    src: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Digest>, ProofError<S::Error>> {
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::BadSizes { old_size, new_size }.into());
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    let expected = consistency_len(old_size, new_size);
    let mut proof = Vec::with_capacity(expected);
    let level = old_size.trailing_zeros();
    if !old_size.is_power_of_two() {
        let index = (old_size >> level) - 1;
        proof.push(src.subtree(level, index).map_err(ProofError::Source)?);
    }
    push_path(src, old_size - 1, new_size, level, &mut proof).map_err(ProofError::Source)?;
    assert_eq!(
        proof.len(),
        expected,
        "consistency proof length disagrees with the tree shape"
    );
    Ok(proof)
}

/// Moves RFC 9162's node counters `node` and `last` up past the levels on which `node` is a
/// left child with no right sibling and so is promoted unchanged.
///
/// This is the "right-shift both until either LSB(fn) is set or fn is 0" step of the RFC's
/// verification algorithms, done as one shift by the number of trailing zero bits.
fn skip_promoted_levels(node: &mut u64, last: &mut u64) {
    if *node != 0 {
        let shift = node.trailing_zeros();
        *node >>= shift;
        *last >>= shift;
    }
}

/// Verifies that `proof` shows the leaf with hash `leaf_hash` at `leaf_index` in the tree of
/// `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
///
/// The leaf hash is the already prefixed hash from [`leaf_hash`], not the leaf's data. The
/// proof's length is checked against the tree shape before any hashing, so the work is
/// bounded by `O(log size)` whatever the input.
pub fn verify_inclusion(
    leaf_hash: &Digest,
    leaf_index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), MerkleError> {
    if leaf_index >= size {
        return Err(MerkleError::IndexOutOfRange {
            index: leaf_index,
            size,
        });
    }
    let expected = inclusion_len(leaf_index, size);
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // RFC 9162 calls these fn and sn: our node's index and the last node's index on the
    // current level.
    let mut node = leaf_index;
    let mut last = size - 1;
    let mut hash = *leaf_hash;
    for sibling in proof {
        assert!(
            last != 0,
            "the length check admitted a proof longer than the path"
        );
        if node & 1 == 1 || node == last {
            hash = node_hash(sibling, &hash);
            skip_promoted_levels(&mut node, &mut last);
        } else {
            hash = node_hash(&hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    assert!(
        last == 0,
        "the length check admitted a proof shorter than the path"
    );
    if hash == *root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}

/// Verifies that `proof` shows the tree of `new_size` leaves with root `new_root` to be an
/// append-only extension of the tree of `old_size` leaves with root `old_root`
/// (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. An `old_size` of 0 is rejected with
/// [`MerkleError::BadSizes`], matching [`consistency_proof`], which explains why. The proof's
/// length is checked against the sizes before any hashing, so the work is bounded by
/// `O(log new_size)` whatever the input.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> Result<(), MerkleError> {
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::BadSizes { old_size, new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    let expected = consistency_len(old_size, new_size);
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // Step 2: when the old tree is a complete subtree the proof leaves it out, because the
    // verifier already has its hash; the walk starts from the old root instead.
    let (start, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        proof
            .split_first()
            .expect("a proof from a tree that is not a power of two is never empty")
    };
    // RFC 9162's fn and sn: the last node of the old tree and of the new tree on the current
    // level. Step 4 climbs to the level of the start hash; `old_size - 1` is below
    // `u64::MAX`, so fewer than 64 bits are shifted out.
    let mut old_last = old_size - 1;
    let mut new_last = new_size - 1;
    let climb = old_last.trailing_ones();
    old_last >>= climb;
    new_last >>= climb;
    let mut old_hash = *start;
    let mut new_hash = *start;
    for hash in rest {
        assert!(
            new_last != 0,
            "the length check admitted a proof longer than the path"
        );
        if old_last & 1 == 1 || old_last == new_last {
            old_hash = node_hash(hash, &old_hash);
            new_hash = node_hash(hash, &new_hash);
            skip_promoted_levels(&mut old_last, &mut new_last);
        } else {
            new_hash = node_hash(&new_hash, hash);
        }
        old_last >>= 1;
        new_last >>= 1;
    }
    assert!(
        new_last == 0,
        "the length check admitted a proof shorter than the path"
    );
    if old_hash == *old_root && new_hash == *new_root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}

/// Computes the nodes a persisted log must store when `leaves` (leaf hashes) are appended to
/// a log of `size` leaves whose complete subtrees `src` holds.
///
/// Returns every subtree node that becomes complete, including the level-0 entries for the
/// new leaves themselves, as `(level, index, hash)`. Each node comes after its children, so
/// writing them in order never leaves a parent without its children, even if the writer stops
/// part-way. Old nodes are read from `src` only where a new node needs a left sibling that
/// was complete before the call: those are the log's right frontier, at most one per level,
/// so at most `popcount(size)` reads. Nodes created by this call are taken from memory.
///
/// # Panics
///
/// Panics if `size + leaves.len()` exceeds `u64::MAX`, which no real log can reach.
pub fn append_nodes<S: SubtreeSource>(
    src: &S,
    size: u64,
    leaves: &[Digest],
) -> Result<Vec<(u32, u64, Digest)>, S::Error> {
    let added = u64::try_from(leaves.len()).expect("slice length fits in u64");
    assert!(
        size.checked_add(added).is_some(),
        "appending {added} leaves to a log of {size} would overflow the leaf count"
    );
    // Each leaf adds one level-0 node and, on average, just under one interior node.
    let mut out = Vec::with_capacity(leaves.len().saturating_mul(2));
    // pending[L] is a node on level L with an even index, created by this call, that waits
    // for its right sibling. Nodes on a level are created left to right, so the next node
    // created on level L is exactly that sibling.
    let mut pending: [Option<Digest>; MAX_LEVELS] = [None; MAX_LEVELS];
    for (offset, leaf) in leaves.iter().enumerate() {
        let mut level: u32 = 0;
        let mut index = size + u64::try_from(offset).expect("slice offset fits in u64");
        let mut hash = *leaf;
        out.push((level, index, hash));
        // Climbs while the new node is a right child; at most 63 times, as the tree has no
        // more levels than that.
        while index & 1 == 1 {
            let slot = usize::try_from(level).expect("level below 64");
            let left = match pending[slot].take() {
                Some(left) => left,
                None => {
                    assert!(
                        index << level <= size,
                        "left sibling ({level}, {}) is neither new nor complete in the old log",
                        index - 1
                    );
                    src.subtree(level, index - 1)?
                }
            };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            out.push((level, index, hash));
        }
        let slot = usize::try_from(level).expect("level below 64");
        pending[slot] = Some(hash);
    }
    Ok(out)
}

/// An in-memory log holding every complete subtree hash: `levels[L][i]` is the node at level
/// `L`, index `i`.
///
/// It serves tests, benchmarks and tools that rebuild a log from its leaves. Storing all
/// complete nodes costs about twice the leaf hashes, and makes every proof a handful of
/// vector lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLog {
    levels: Vec<Vec<Digest>>,
}

impl MemoryLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| {
            u64::try_from(leaves.len()).expect("leaf count fits in u64")
        })
    }

    /// Whether the log has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash (see [`leaf_hash`]) and returns its index.
    ///
    /// Every node the new leaf completes is hashed and stored now, so that the proofs never
    /// have to hash more than `O(log len)` nodes.
    pub fn push(&mut self, leaf_hash: Digest) -> u64 {
        let index = self.len();
        let mut hash = leaf_hash;
        let mut level = 0;
        // Each level holds half as many nodes as the one below, so this runs at most
        // log2(len) + 1 times before it reaches a level with an odd node count.
        loop {
            if level == self.levels.len() {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            if row.len() % 2 == 1 {
                break;
            }
            hash = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
        index
    }

    /// The root of the whole log.
    #[must_use]
    pub fn root(&self) -> Digest {
        match tree_root(self, self.len()) {
            Ok(root) => root,
            Err(never) => match never {},
        }
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Digest, MerkleError> {
        self.check_size(size)?;
        Ok(root(self, size)?)
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves; see
    /// [`inclusion_proof`].
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, MerkleError> {
        self.check_size(size)?;
        Ok(inclusion_proof(self, index, size)?)
    }

    /// The consistency proof from the first `old_size` to the first `new_size` leaves; see
    /// [`consistency_proof`].
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Digest>, MerkleError> {
        self.check_size(new_size)?;
        Ok(consistency_proof(self, old_size, new_size)?)
    }

    /// Rejects tree sizes beyond the log, whose nodes the [`SubtreeSource`] implementation
    /// cannot report as missing.
    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let len = self.len();
        if size > len {
            return Err(MerkleError::SizeBeyondLog { size, len });
        }
        Ok(())
    }
}

impl SubtreeSource for MemoryLog {
    type Error = Infallible;

    /// Returns a stored node.
    ///
    /// # Panics
    ///
    /// Panics if the node is not complete in this log. The generic algorithms only ask for
    /// nodes complete within the size they are given, so this happens only when they are
    /// handed a size beyond [`MemoryLog::len`]; the inherent methods check for that and
    /// return [`MerkleError::SizeBeyondLog`] instead.
    fn subtree(&self, level: u32, index: u64) -> Result<Digest, Infallible> {
        let node = usize::try_from(level)
            .ok()
            .and_then(|level| self.levels.get(level))
            .and_then(|row| usize::try_from(index).ok().and_then(|index| row.get(index)));
        match node {
            Some(hash) => Ok(*hash),
            None => panic!(
                "a log of {} leaves has no complete node at level {level}, index {index}",
                self.len()
            ),
        }
    }
}

impl Extend<Digest> for MemoryLog {
    /// Appends leaf hashes in order.
    fn extend<I: IntoIterator<Item = Digest>>(&mut self, leaf_hashes: I) {
        for hash in leaf_hashes {
            self.push(hash);
        }
    }
}

impl FromIterator<Digest> for MemoryLog {
    /// Builds a log from leaf hashes in order.
    fn from_iter<I: IntoIterator<Item = Digest>>(leaf_hashes: I) -> Self {
        let mut log = MemoryLog::new();
        log.extend(leaf_hashes);
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    use proptest::prelude::*;

    /// A literal transcription of RFC 6962 §2.1's recursive definitions over the leaf data,
    /// with its own hashing, used as the oracle the real code is compared against.
    mod reference {
        use crate::hash::Digest;

        fn leaf(data: &[u8]) -> Digest {
            Digest::sha256(&[&[0x00][..], data].concat())
        }

        fn node(left: &Digest, right: &Digest) -> Digest {
            Digest::sha256(&[&[0x01][..], &left.0[..], &right.0[..]].concat())
        }

        /// The largest power of two smaller than `n`, for `n > 1`.
        fn split(n: usize) -> usize {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            k
        }

        /// MTH(D[n]).
        pub fn mth(d: &[Vec<u8>]) -> Digest {
            match d.len() {
                0 => Digest::sha256(b""),
                1 => leaf(&d[0]),
                n => {
                    let k = split(n);
                    node(&mth(&d[..k]), &mth(&d[k..]))
                }
            }
        }

        /// PATH(m, D[n]).
        pub fn path(m: usize, d: &[Vec<u8>]) -> Vec<Digest> {
            let n = d.len();
            if n == 1 {
                return Vec::new();
            }
            let k = split(n);
            if m < k {
                let mut p = path(m, &d[..k]);
                p.push(mth(&d[k..]));
                p
            } else {
                let mut p = path(m - k, &d[k..]);
                p.push(mth(&d[..k]));
                p
            }
        }

        /// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
        pub fn proof(m: usize, d: &[Vec<u8>]) -> Vec<Digest> {
            subproof(m, d, true)
        }

        fn subproof(m: usize, d: &[Vec<u8>], whole: bool) -> Vec<Digest> {
            let n = d.len();
            if m == n {
                return if whole { Vec::new() } else { vec![mth(d)] };
            }
            let k = split(n);
            if m <= k {
                let mut p = subproof(m, &d[..k], whole);
                p.push(mth(&d[k..]));
                p
            } else {
                let mut p = subproof(m - k, &d[k..], false);
                p.push(mth(&d[..k]));
                p
            }
        }
    }

    // The Certificate Transparency test tree. Values are from transparency-dev/merkle:
    // leaf inputs, root hashes and node hashes from `testonly/constants.go` (commit
    // 582a6ad190b6848f1d26f8bf08ddef29955d9db1), proofs from `proof/verify_test.go` (commit
    // 02194e9afb6c1d95b5381350007963aa70fff472). That file numbers leaves from 1 in its
    // inclusion vectors; the indices below are 0-based.

    const LEAF_INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// Roots of the trees of sizes 0 to 8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Every complete node of the 8-leaf tree, by level then index.
    const NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    /// (leaf index, tree size, audit path).
    const INCLUSION_VECTORS: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// (old size, new size, consistency proof).
    const CONSISTENCY_VECTORS: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn digest(hex: &str) -> Digest {
        Digest::from_hex(hex).expect("test vector is 32 bytes of hex")
    }

    fn digests(hexes: &[&str]) -> Vec<Digest> {
        hexes.iter().map(|hex| digest(hex)).collect()
    }

    fn ct_leaf_data() -> Vec<Vec<u8>> {
        LEAF_INPUTS
            .iter()
            .map(|hex| hex::decode(hex).expect("leaf input is hex"))
            .collect()
    }

    fn ct_log() -> MemoryLog {
        ct_leaf_data().iter().map(|data| leaf_hash(data)).collect()
    }

    fn ct_root(size: u64) -> Digest {
        digest(ROOTS[usize::try_from(size).unwrap()])
    }

    /// Leaf data for the property tests: distinct for every index.
    fn leaf_data(index: u64) -> Vec<u8> {
        index.to_be_bytes().to_vec()
    }

    fn leaf_data_upto(size: u64) -> Vec<Vec<u8>> {
        (0..size).map(leaf_data).collect()
    }

    /// The largest tree the property tests build.
    const MAX_TEST_SIZE: u64 = 300;

    /// A log of [`MAX_TEST_SIZE`] leaves, shared by the property tests, which view its
    /// prefixes through [`Prefix`].
    fn shared_log() -> &'static MemoryLog {
        static LOG: OnceLock<MemoryLog> = OnceLock::new();
        LOG.get_or_init(|| {
            (0..MAX_TEST_SIZE)
                .map(|index| leaf_hash(&leaf_data(index)))
                .collect()
        })
    }

    /// A request for a subtree that is not complete within the size the source models.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct NotComplete {
        level: u32,
        index: u64,
    }

    /// Does node (`level`, `index`) lie completely within the first `size` leaves?
    fn complete_within(level: u32, index: u64, size: u64) -> bool {
        level < 64 && (u128::from(index) + 1) << level <= u128::from(size)
    }

    /// The first `size` leaves of a bigger log, refusing any read beyond them and counting
    /// reads, so that tests can check the generators' contract and their read bounds.
    struct Prefix<'a> {
        log: &'a MemoryLog,
        size: u64,
        reads: Cell<u32>,
    }

    impl<'a> Prefix<'a> {
        fn new(log: &'a MemoryLog, size: u64) -> Self {
            assert!(size <= log.len());
            Prefix {
                log,
                size,
                reads: Cell::new(0),
            }
        }
    }

    impl SubtreeSource for Prefix<'_> {
        type Error = NotComplete;
        fn subtree(&self, level: u32, index: u64) -> Result<Digest, NotComplete> {
            self.reads.set(self.reads.get() + 1);
            if !complete_within(level, index, self.size) {
                return Err(NotComplete { level, index });
            }
            let Ok(hash) = self.log.subtree(level, index);
            Ok(hash)
        }
    }

    /// A tree of up to `u64::MAX` identical leaves, whose level-L nodes all share one hash;
    /// it lets the tests reach sizes no real log can hold.
    struct Uniform {
        by_level: Vec<Digest>,
        size: u64,
    }

    impl Uniform {
        fn new(size: u64) -> Self {
            let mut by_level = vec![leaf_hash(b"uniform")];
            for level in 1..64 {
                let below = by_level[level - 1];
                by_level.push(node_hash(&below, &below));
            }
            Uniform { by_level, size }
        }
    }

    impl SubtreeSource for Uniform {
        type Error = NotComplete;
        fn subtree(&self, level: u32, index: u64) -> Result<Digest, NotComplete> {
            if !complete_within(level, index, self.size) {
                return Err(NotComplete { level, index });
            }
            Ok(self.by_level[usize::try_from(level).unwrap()])
        }
    }

    /// A store modelled as a map from (level, index) to hash, as a key-value store keeps
    /// the nodes, counting reads.
    #[derive(Default)]
    struct MapSource {
        nodes: BTreeMap<(u32, u64), Digest>,
        reads: Cell<u32>,
    }

    impl SubtreeSource for MapSource {
        type Error = NotComplete;
        fn subtree(&self, level: u32, index: u64) -> Result<Digest, NotComplete> {
            self.reads.set(self.reads.get() + 1);
            self.nodes
                .get(&(level, index))
                .copied()
                .ok_or(NotComplete { level, index })
        }
    }

    /// Levels above the leaves in a tree of `size` leaves: the O(log n) scale of the bounds.
    fn height(size: u64) -> u32 {
        bit_length(size.saturating_sub(1))
    }

    /// Applies `append_nodes` to `map` and checks what the function promises: only frontier
    /// reads, each node after its children and correctly hashed, nothing already stored.
    fn append_and_check(map: &mut MapSource, size: u64, leaves: &[Digest]) {
        map.reads.set(0);
        let nodes = append_nodes(map, size, leaves).expect("every read node is stored");
        assert!(
            map.reads.get() <= size.count_ones(),
            "read beyond the frontier"
        );
        let new_size = size + u64::try_from(leaves.len()).unwrap();
        for (level, index, hash) in nodes {
            assert!(complete_within(level, index, new_size));
            assert!(
                !complete_within(level, index, size),
                "re-created an old node"
            );
            if level == 0 {
                assert_eq!(hash, leaves[usize::try_from(index - size).unwrap()]);
            } else {
                let left = map.nodes[&(level - 1, 2 * index)];
                let right = map.nodes[&(level - 1, 2 * index + 1)];
                assert_eq!(hash, node_hash(&left, &right));
            }
            assert!(
                map.nodes.insert((level, index), hash).is_none(),
                "node returned twice"
            );
        }
    }

    /// Every complete node of `log`, keyed as in [`MapSource`].
    fn all_nodes(log: &MemoryLog) -> BTreeMap<(u32, u64), Digest> {
        let mut nodes = BTreeMap::new();
        for level in 0..64 {
            for index in 0..log.len() >> level {
                let Ok(hash) = log.subtree(level, index);
                nodes.insert((level, index), hash);
            }
        }
        nodes
    }

    fn flip_bit(proof: &[Digest], element: usize, bit: usize) -> Vec<Digest> {
        let mut wrong = proof.to_vec();
        wrong[element].0[bit / 8] ^= 1 << (bit % 8);
        wrong
    }

    #[test]
    fn hashes_follow_rfc_6962_prefixes() {
        assert_eq!(empty_root(), digest(ROOTS[0]));
        assert_eq!(leaf_hash(b""), digest(NODES[0][0]));
        assert_eq!(
            node_hash(&digest(NODES[0][0]), &digest(NODES[0][1])),
            digest(NODES[1][0])
        );
    }

    #[test]
    fn ct_tree_roots_match_published_values() {
        let data = ct_leaf_data();
        let mut log = MemoryLog::new();
        for size in 0..=8u64 {
            assert_eq!(log.root(), ct_root(size), "incremental root of size {size}");
            assert_eq!(
                reference::mth(&data[..usize::try_from(size).unwrap()]),
                ct_root(size),
                "reference root of size {size}"
            );
            if size < 8 {
                let index = log.push(leaf_hash(&data[usize::try_from(size).unwrap()]));
                assert_eq!(index, size);
            }
        }
        for size in 0..=8 {
            assert_eq!(log.root_at(size), Ok(ct_root(size)));
        }
    }

    #[test]
    fn ct_tree_nodes_match_published_values() {
        let log = ct_log();
        let mut expected = BTreeMap::new();
        for (level, row) in (0u32..).zip(NODES) {
            for (index, hex) in (0u64..).zip(row.iter()) {
                expected.insert((level, index), digest(hex));
            }
        }
        assert_eq!(all_nodes(&log), expected);
    }

    #[test]
    fn ct_inclusion_proofs_match_published_values() {
        let log = ct_log();
        let data = ct_leaf_data();
        for (index, size, hexes) in INCLUSION_VECTORS {
            let expected = digests(hexes);
            assert_eq!(
                log.inclusion_proof(index, size).as_ref(),
                Ok(&expected),
                "leaf {index} in size {size}"
            );
            let prefix = &data[..usize::try_from(size).unwrap()];
            assert_eq!(
                reference::path(usize::try_from(index).unwrap(), prefix),
                expected
            );
            let leaf = leaf_hash(&data[usize::try_from(index).unwrap()]);
            assert_eq!(
                verify_inclusion(&leaf, index, size, &expected, &ct_root(size)),
                Ok(())
            );
        }
    }

    #[test]
    fn ct_consistency_proofs_match_published_values() {
        let log = ct_log();
        let data = ct_leaf_data();
        for (old_size, new_size, hexes) in CONSISTENCY_VECTORS {
            let expected = digests(hexes);
            assert_eq!(
                log.consistency_proof(old_size, new_size).as_ref(),
                Ok(&expected),
                "consistency {old_size} -> {new_size}"
            );
            let prefix = &data[..usize::try_from(new_size).unwrap()];
            assert_eq!(
                reference::proof(usize::try_from(old_size).unwrap(), prefix),
                expected
            );
            assert_eq!(
                verify_consistency(
                    old_size,
                    new_size,
                    &ct_root(old_size),
                    &ct_root(new_size),
                    &expected
                ),
                Ok(())
            );
        }
    }

    /// The corruptions transparency-dev/merkle's tests apply to these vectors: all of them
    /// must be rejected.
    #[test]
    fn ct_inclusion_proof_corruptions_are_rejected() {
        let data = ct_leaf_data();
        let other = Digest::sha256(b"some other hash");
        for (index, size, hexes) in INCLUSION_VECTORS {
            let proof = digests(hexes);
            let root = ct_root(size);
            let leaf = leaf_hash(&data[usize::try_from(index).unwrap()]);
            let mut probes: Vec<(u64, u64, Digest, Vec<Digest>, Digest)> = vec![
                (index + 1, size, leaf, proof.clone(), root),
                (index ^ 2, size, leaf, proof.clone(), root),
                (index, size * 2, leaf, proof.clone(), root),
                (index, size / 2, leaf, proof.clone(), root),
                (index, size, leaf_hash(b"wrong leaf"), proof.clone(), root),
                (index, size, leaf, proof.clone(), empty_root()),
                (index, size, leaf, proof.clone(), other),
                (index, size, leaf, [&proof[..], &[other]].concat(), root),
                (index, size, leaf, [&proof[..], &[root]].concat(), root),
                (index, size, leaf, [&[other], &proof[..]].concat(), root),
                (index, size, leaf, [&[root], &proof[..]].concat(), root),
                (index, size, leaf, proof[..proof.len() - 1].to_vec(), root),
            ];
            if index > 0 {
                probes.push((index - 1, size, leaf, proof.clone(), root));
            }
            for element in 0..proof.len() {
                probes.push((index, size, leaf, flip_bit(&proof, element, 3), root));
            }
            for (probe_index, probe_size, probe_leaf, probe_proof, probe_root) in probes {
                assert!(
                    verify_inclusion(
                        &probe_leaf,
                        probe_index,
                        probe_size,
                        &probe_proof,
                        &probe_root
                    )
                    .is_err(),
                    "accepted leaf {probe_index} in size {probe_size} with {probe_proof:?}"
                );
            }
        }
    }

    #[test]
    fn ct_consistency_proof_corruptions_are_rejected() {
        let other = Digest::sha256(b"some other hash");
        for (old_size, new_size, hexes) in CONSISTENCY_VECTORS {
            let proof = digests(hexes);
            if proof.is_empty() {
                continue;
            }
            let old = ct_root(old_size);
            let new = ct_root(new_size);
            let mut probes: Vec<(u64, u64, Digest, Digest, Vec<Digest>)> = vec![
                (old_size - 1, new_size, old, new, proof.clone()),
                (old_size + 1, new_size, old, new, proof.clone()),
                (old_size ^ 2, new_size, old, new, proof.clone()),
                (old_size, new_size * 2, old, new, proof.clone()),
                (old_size, new_size / 2, old, new, proof.clone()),
                (old_size, new_size, other, new, proof.clone()),
                (old_size, new_size, old, other, proof.clone()),
                (old_size, new_size, new, old, proof.clone()),
                (old_size, new_size, old, new, Vec::new()),
                (
                    old_size,
                    new_size,
                    old,
                    new,
                    [&proof[..], &[other]].concat(),
                ),
                (old_size, new_size, old, new, [&proof[..], &[old]].concat()),
                (old_size, new_size, old, new, [&proof[..], &[new]].concat()),
                (
                    old_size,
                    new_size,
                    old,
                    new,
                    [&[other], &proof[..]].concat(),
                ),
                (old_size, new_size, old, new, [&[old], &proof[..]].concat()),
                (old_size, new_size, old, new, [&[new], &proof[..]].concat()),
                (
                    old_size,
                    new_size,
                    old,
                    new,
                    [&proof[..1], &proof[..]].concat(),
                ),
                (
                    old_size,
                    new_size,
                    old,
                    new,
                    proof[..proof.len() - 1].to_vec(),
                ),
            ];
            for element in 0..proof.len() {
                probes.push((old_size, new_size, old, new, flip_bit(&proof, element, 4)));
            }
            for (probe_old, probe_new, probe_old_root, probe_new_root, probe_proof) in probes {
                assert!(
                    verify_consistency(
                        probe_old,
                        probe_new,
                        &probe_old_root,
                        &probe_new_root,
                        &probe_proof
                    )
                    .is_err(),
                    "accepted {probe_old} -> {probe_new} with {probe_proof:?}"
                );
            }
        }
    }

    #[test]
    fn errors_name_the_offending_values() {
        let log = ct_log();
        assert_eq!(
            log.inclusion_proof(8, 8),
            Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert_eq!(
            log.inclusion_proof(0, 9),
            Err(MerkleError::SizeBeyondLog { size: 9, len: 8 })
        );
        assert_eq!(
            log.consistency_proof(0, 8),
            Err(MerkleError::BadSizes {
                old_size: 0,
                new_size: 8
            })
        );
        assert_eq!(
            log.consistency_proof(5, 4),
            Err(MerkleError::BadSizes {
                old_size: 5,
                new_size: 4
            })
        );
        assert_eq!(
            log.consistency_proof(4, 9),
            Err(MerkleError::SizeBeyondLog { size: 9, len: 8 })
        );
        assert_eq!(
            log.root_at(9),
            Err(MerkleError::SizeBeyondLog { size: 9, len: 8 })
        );
        let message = MerkleError::WrongProofLength {
            expected: 3,
            actual: 4,
        }
        .to_string();
        assert!(message.contains('3') && message.contains('4'), "{message}");
        let message = MerkleError::IndexOutOfRange {
            index: 17,
            size: 12,
        }
        .to_string();
        assert!(
            message.contains("17") && message.contains("12"),
            "{message}"
        );
        let message = MerkleError::BadSizes {
            old_size: 21,
            new_size: 20,
        }
        .to_string();
        assert!(
            message.contains("21") && message.contains("20"),
            "{message}"
        );
    }

    #[test]
    fn degenerate_trees() {
        let empty = MemoryLog::new();
        assert!(empty.is_empty());
        assert_eq!(empty.root(), empty_root());
        assert_eq!(
            empty.inclusion_proof(0, 0),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_inclusion(&empty_root(), 0, 0, &[], &empty_root()),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_consistency(0, 0, &empty_root(), &empty_root(), &[]),
            Err(MerkleError::BadSizes {
                old_size: 0,
                new_size: 0
            })
        );

        let one: MemoryLog = [leaf_hash(b"only")].into_iter().collect();
        assert_eq!(one.len(), 1);
        assert_eq!(one.root(), leaf_hash(b"only"));
        assert_eq!(one.inclusion_proof(0, 1), Ok(Vec::new()));
        assert_eq!(
            verify_inclusion(&leaf_hash(b"only"), 0, 1, &[], &one.root()),
            Ok(())
        );
        assert_eq!(
            verify_inclusion(&leaf_hash(b"other"), 0, 1, &[], &one.root()),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(one.consistency_proof(1, 1), Ok(Vec::new()));
        assert_eq!(
            verify_consistency(1, 1, &one.root(), &one.root(), &[]),
            Ok(())
        );
        assert_eq!(
            verify_consistency(1, 1, &one.root(), &empty_root(), &[]),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(1, 1, &one.root(), &one.root(), &[one.root()]),
            Err(MerkleError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
    }

    #[test]
    fn source_errors_are_reported_as_such() {
        let empty = MapSource::default();
        assert_eq!(root(&empty, 0), Ok(empty_root()));
        assert_eq!(empty.reads.get(), 0, "the empty root needs no reads");
        assert_eq!(
            root(&empty, 3),
            Err(ProofError::Source(NotComplete { level: 0, index: 2 }))
        );
        assert!(matches!(
            inclusion_proof(&empty, 1, 3),
            Err(ProofError::Source(_))
        ));
        assert!(matches!(
            consistency_proof(&empty, 1, 3),
            Err(ProofError::Source(_))
        ));
        assert_eq!(
            append_nodes(&empty, 1, &[leaf_hash(b"x")]),
            Err(NotComplete { level: 0, index: 0 })
        );
        // Argument errors win over reads, so nothing is read for a request that is invalid.
        empty.reads.set(0);
        assert_eq!(
            inclusion_proof(&empty, 3, 3),
            Err(ProofError::Merkle(MerkleError::IndexOutOfRange {
                index: 3,
                size: 3
            }))
        );
        assert_eq!(empty.reads.get(), 0);
    }

    /// Every leaf of every tree up to 64 leaves, and every pair of sizes up to 64, against
    /// the reference: small enough to do exhaustively, and it covers every shape of the
    /// right edge up to six levels.
    #[test]
    fn exhaustive_small_trees_match_reference() {
        let log = shared_log();
        let data = leaf_data_upto(64);
        for size in 0..=64u64 {
            let prefix = &data[..usize::try_from(size).unwrap()];
            let tree_root = reference::mth(prefix);
            assert_eq!(log.root_at(size), Ok(tree_root), "root of {size}");
            for index in 0..size {
                let expected = reference::path(usize::try_from(index).unwrap(), prefix);
                let proof = log.inclusion_proof(index, size).unwrap();
                assert_eq!(proof, expected, "leaf {index} of {size}");
                assert_eq!(inclusion_len(index, size), expected.len());
                let leaf = leaf_hash(&leaf_data(index));
                assert_eq!(
                    verify_inclusion(&leaf, index, size, &proof, &tree_root),
                    Ok(())
                );
            }
            for old_size in 1..=size {
                let expected = reference::proof(usize::try_from(old_size).unwrap(), prefix);
                let proof = log.consistency_proof(old_size, size).unwrap();
                assert_eq!(proof, expected, "consistency {old_size} -> {size}");
                let old_root = log.root_at(old_size).unwrap();
                assert_eq!(
                    verify_consistency(old_size, size, &old_root, &tree_root, &proof),
                    Ok(())
                );
            }
        }
    }

    /// Sizes near the top of the u64 range, where careless shifts overflow, on a tree of
    /// identical leaves that needs no storage.
    #[test]
    fn huge_trees_prove_and_verify() {
        let sizes = [
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            (1 << 63) + 1,
            (1 << 63) - 1,
            0xdead_beef_cafe_f00d,
        ];
        for size in sizes {
            let source = Uniform::new(size);
            let tree_root = root(&source, size).unwrap();
            let leaf = source.by_level[0];
            for index in [0, 1, size / 3, size / 2, size - 2, size - 1] {
                let proof = inclusion_proof(&source, index, size).unwrap();
                assert_eq!(
                    verify_inclusion(&leaf, index, size, &proof, &tree_root),
                    Ok(()),
                    "leaf {index} of {size}"
                );
            }
            for old_size in [1, 2, 3, size / 2, size - 1, size] {
                let old_root = root(&source, old_size).unwrap();
                let proof = consistency_proof(&source, old_size, size).unwrap();
                assert_eq!(
                    verify_consistency(old_size, size, &old_root, &tree_root, &proof),
                    Ok(()),
                    "consistency {old_size} -> {size}"
                );
            }
        }
        let source = Uniform::new(1 << 40);
        assert_eq!(root(&source, 1 << 40), Ok(source.by_level[40]));
    }

    #[test]
    fn append_nodes_with_no_leaves_creates_and_reads_nothing() {
        let map = MapSource::default();
        assert_eq!(append_nodes(&map, 12345, &[]), Ok(Vec::new()));
        assert_eq!(map.reads.get(), 0);
    }

    #[test]
    fn append_nodes_one_at_a_time_builds_the_ct_tree() {
        let mut map = MapSource::default();
        for (size, data) in (0u64..).zip(ct_leaf_data()) {
            append_and_check(&mut map, size, &[leaf_hash(&data)]);
        }
        assert_eq!(map.nodes, all_nodes(&ct_log()));
    }

    /// Strategy: a tree size up to [`MAX_TEST_SIZE`] and a leaf index in it.
    fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
        (1..=MAX_TEST_SIZE).prop_flat_map(|size| (Just(size), 0..size))
    }

    /// Strategy: a tree size up to [`MAX_TEST_SIZE`] and an old size in `1..=size`.
    fn old_and_new_size() -> impl Strategy<Value = (u64, u64)> {
        (1..=MAX_TEST_SIZE).prop_flat_map(|size| (1..=size, Just(size)))
    }

    /// Strategy: a proof of garbage hashes.
    fn garbage_proof(max_len: usize) -> impl Strategy<Value = Vec<Digest>> {
        prop::collection::vec(any::<[u8; 32]>().prop_map(Digest), 0..=max_len)
    }

    proptest! {
        #[test]
        fn root_matches_reference(size in 0..=MAX_TEST_SIZE) {
            let source = Prefix::new(shared_log(), size);
            let expected = reference::mth(&leaf_data_upto(size));
            prop_assert_eq!(root(&source, size), Ok(expected));
            prop_assert!(source.reads.get() <= size.count_ones());
        }

        #[test]
        fn inclusion_proof_matches_reference_and_verifies((size, index) in size_and_index()) {
            let source = Prefix::new(shared_log(), size);
            let data = leaf_data_upto(size);
            let proof = inclusion_proof(&source, index, size).unwrap();
            prop_assert!(source.reads.get() <= 2 * height(size));
            prop_assert_eq!(&proof, &reference::path(usize::try_from(index).unwrap(), &data));
            let tree_root = reference::mth(&data);
            let leaf = leaf_hash(&data[usize::try_from(index).unwrap()]);
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &tree_root), Ok(()));
        }

        #[test]
        fn consistency_proof_matches_reference_and_verifies((old_size, size) in old_and_new_size()) {
            let source = Prefix::new(shared_log(), size);
            let data = leaf_data_upto(size);
            let proof = consistency_proof(&source, old_size, size).unwrap();
            prop_assert!(source.reads.get() <= 2 * height(size) + 1);
            prop_assert_eq!(&proof, &reference::proof(usize::try_from(old_size).unwrap(), &data));
            let old_root = reference::mth(&data[..usize::try_from(old_size).unwrap()]);
            let new_root = reference::mth(&data);
            prop_assert_eq!(
                verify_consistency(old_size, size, &old_root, &new_root, &proof),
                Ok(())
            );
        }

        #[test]
        fn append_nodes_in_chunks_matches_memory_log(
            size in 0..=MAX_TEST_SIZE,
            chunks in prop::collection::vec(1..=40usize, 1..=60),
        ) {
            let leaves: Vec<Digest> = (0..size).map(|i| leaf_hash(&leaf_data(i))).collect();
            let mut map = MapSource::default();
            let mut appended = 0;
            for chunk in chunks.iter().cycle() {
                if appended == leaves.len() {
                    break;
                }
                let end = (appended + chunk).min(leaves.len());
                append_and_check(&mut map, u64::try_from(appended).unwrap(), &leaves[appended..end]);
                appended = end;
            }
            let log: MemoryLog = leaves.into_iter().collect();
            prop_assert_eq!(map.nodes, all_nodes(&log));
        }

        #[test]
        fn inclusion_rejects_tampering(
            (size, index) in size_and_index(),
            element in any::<prop::sample::Index>(),
            bit in 0..256usize,
            other_index in any::<prop::sample::Index>(),
        ) {
            let log = shared_log();
            let tree_root = log.root_at(size).unwrap();
            let leaf = leaf_hash(&leaf_data(index));
            let proof = log.inclusion_proof(index, size).unwrap();
            let extra = Digest::sha256(b"extra");
            if !proof.is_empty() {
                let flipped = flip_bit(&proof, element.index(proof.len()), bit);
                prop_assert_eq!(
                    verify_inclusion(&leaf, index, size, &flipped, &tree_root),
                    Err(MerkleError::RootMismatch)
                );
                let short = &proof[..proof.len() - 1];
                prop_assert_eq!(
                    verify_inclusion(&leaf, index, size, short, &tree_root),
                    Err(MerkleError::WrongProofLength { expected: proof.len(), actual: short.len() })
                );
            }
            let long = [&proof[..], &[extra]].concat();
            prop_assert_eq!(
                verify_inclusion(&leaf, index, size, &long, &tree_root),
                Err(MerkleError::WrongProofLength { expected: proof.len(), actual: long.len() })
            );
            let wrong_index = other_index.index(usize::try_from(size).unwrap());
            let wrong_index = u64::try_from(wrong_index).unwrap();
            if wrong_index != index {
                prop_assert!(verify_inclusion(&leaf, wrong_index, size, &proof, &tree_root).is_err());
            }
            // A size with a different tree height changes the path's length.
            prop_assert!(verify_inclusion(&leaf, index, size * 2, &proof, &tree_root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, index, &proof, &tree_root).is_err());
            prop_assert!(verify_inclusion(&extra, index, size, &proof, &tree_root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &extra).is_err());
        }

        #[test]
        fn consistency_rejects_tampering(
            (old_size, size) in old_and_new_size(),
            element in any::<prop::sample::Index>(),
            bit in 0..256usize,
        ) {
            let log = shared_log();
            let old_root = log.root_at(old_size).unwrap();
            let new_root = log.root_at(size).unwrap();
            let proof = log.consistency_proof(old_size, size).unwrap();
            let extra = Digest::sha256(b"extra");
            if !proof.is_empty() {
                let flipped = flip_bit(&proof, element.index(proof.len()), bit);
                prop_assert_eq!(
                    verify_consistency(old_size, size, &old_root, &new_root, &flipped),
                    Err(MerkleError::RootMismatch)
                );
                let short = &proof[..proof.len() - 1];
                prop_assert_eq!(
                    verify_consistency(old_size, size, &old_root, &new_root, short),
                    Err(MerkleError::WrongProofLength { expected: proof.len(), actual: short.len() })
                );
                prop_assert!(verify_consistency(old_size, size, &extra, &new_root, &proof).is_err());
                prop_assert!(verify_consistency(old_size, size, &new_root, &old_root, &proof).is_err());
                prop_assert!(verify_consistency(old_size, size * 2, &old_root, &new_root, &proof).is_err());
            }
            let long = [&proof[..], &[extra]].concat();
            prop_assert_eq!(
                verify_consistency(old_size, size, &old_root, &new_root, &long),
                Err(MerkleError::WrongProofLength { expected: proof.len(), actual: long.len() })
            );
            prop_assert!(verify_consistency(old_size, size, &old_root, &extra, &proof).is_err());
            if old_size != size {
                prop_assert_eq!(
                    verify_consistency(size, old_size, &new_root, &old_root, &proof),
                    Err(MerkleError::BadSizes { old_size: size, new_size: old_size })
                );
            }
        }

        #[test]
        fn huge_random_trees_prove_and_verify(
            size in 1..=u64::MAX,
            index_seed in any::<u64>(),
            old_seed in any::<u64>(),
        ) {
            let source = Uniform::new(size);
            let tree_root = root(&source, size).unwrap();
            let index = index_seed % size;
            let proof = inclusion_proof(&source, index, size).unwrap();
            prop_assert_eq!(
                verify_inclusion(&source.by_level[0], index, size, &proof, &tree_root),
                Ok(())
            );
            let old_size = old_seed % size + 1;
            let old_root = root(&source, old_size).unwrap();
            let proof = consistency_proof(&source, old_size, size).unwrap();
            prop_assert_eq!(
                verify_consistency(old_size, size, &old_root, &tree_root, &proof),
                Ok(())
            );
        }

        #[test]
        fn verify_inclusion_survives_garbage(
            leaf in any::<[u8; 32]>(),
            index in any::<u64>(),
            size in any::<u64>(),
            proof in garbage_proof(70),
            fit_length in any::<bool>(),
            tree_root in any::<[u8; 32]>(),
        ) {
            let mut proof = proof;
            if fit_length && index < size {
                // Make the length right, so the hashing loop runs on garbage too.
                proof.resize(inclusion_len(index, size), Digest(leaf));
            }
            let result = verify_inclusion(&Digest(leaf), index, size, &proof, &Digest(tree_root));
            prop_assert!(result.is_err());
        }

        #[test]
        fn verify_consistency_survives_garbage(
            old_size in any::<u64>(),
            new_size in any::<u64>(),
            old_root in any::<[u8; 32]>(),
            new_root in any::<[u8; 32]>(),
            proof in garbage_proof(70),
            fit_length in any::<bool>(),
        ) {
            let mut proof = proof;
            if fit_length && 0 < old_size && old_size < new_size {
                proof.resize(consistency_len(old_size, new_size), Digest(old_root));
            }
            let result = verify_consistency(
                old_size, new_size, &Digest(old_root), &Digest(new_root), &proof,
            );
            prop_assert!(result.is_err());
        }
    }
}
