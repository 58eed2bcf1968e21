//! Which event ids a store holds, as Bloom filters in memory.
//!
//! Admission and block validation ask, for every event, whether it is already committed, and
//! the answer is nearly always no. sled answers an absent key by walking its tree to a leaf,
//! which on a devnet under load was a tenth of every node's CPU. A filter answers "not held"
//! from memory; "maybe held" still goes to sled, so a false positive costs one read and never
//! a wrong answer.
//!
//! Event ids are SHA-256 digests, so their bytes already are uniform hashes: a filter's probe
//! positions are taken from them (double hashing over two of the id's 64-bit words). An id
//! ground to share probe positions with committed ones only makes its own check read sled.
//!
//! The filters grow with the ledger without a rebuild: when the newest is full (its design
//! load), a new one of twice the capacity takes new ids, and a query asks each. With 16 bits
//! per id and 11 probes, each filter at its design load answers "maybe" for about one absent
//! id in 2,000; filters of doubling size keep their number logarithmic in the ledger.

/// Bits per id at a filter's design load.
const BITS_PER_ID: u64 = 16;
/// Probes per id: about `BITS_PER_ID × ln 2`, the number that minimises false positives.
const PROBES: u64 = 11;

/// The bit positions of `id` in a filter of `mask + 1` bits.
fn probes(id: &[u8; 32], mask: u64) -> impl Iterator<Item = u64> {
    let first = u64::from_le_bytes(id[..8].try_into().expect("8 bytes"));
    // Odd, so the probes of one id are distinct modulo a power of two.
    let step = u64::from_le_bytes(id[8..16].try_into().expect("8 bytes")) | 1;
    (0..PROBES).map(move |i| first.wrapping_add(i.wrapping_mul(step)) & mask)
}

/// One Bloom filter of a fixed size.
#[derive(Debug)]
struct Bloom {
    words: Vec<u64>,
    /// The number of bits minus one; the size is a power of two.
    mask: u64,
    capacity: u64,
    held: u64,
}

impl Bloom {
    fn with_capacity(capacity: u64) -> Bloom {
        let bits = (capacity * BITS_PER_ID).next_power_of_two().max(64);
        Bloom {
            words: vec![0; usize::try_from(bits / 64).expect("a filter fits in memory")],
            mask: bits - 1,
            capacity,
            held: 0,
        }
    }

    fn insert(&mut self, id: &[u8; 32]) {
        for bit in probes(id, self.mask) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.held += 1;
    }

    fn may_hold(&self, id: &[u8; 32]) -> bool {
        probes(id, self.mask).all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

/// A growing set of Bloom filters over event ids.
#[derive(Debug)]
pub(crate) struct IdFilter {
    filters: Vec<Bloom>,
}

impl IdFilter {
    /// An empty set whose first filter is designed for `capacity` ids.
    pub(crate) fn new(capacity: u64) -> IdFilter {
        assert!(capacity > 0, "a filter holds at least one id");
        IdFilter {
            filters: vec![Bloom::with_capacity(capacity)],
        }
    }

    /// Adds an id.
    pub(crate) fn insert(&mut self, id: &[u8; 32]) {
        let newest = self.filters.last().expect("there is always a filter");
        if newest.held >= newest.capacity {
            let capacity = newest.capacity * 2;
            self.filters.push(Bloom::with_capacity(capacity));
        }
        self.filters
            .last_mut()
            .expect("there is always a filter")
            .insert(id);
    }

    /// `false` if the id was never added; `true` if it was, or, rarely, if it was not.
    pub(crate) fn may_hold(&self, id: &[u8; 32]) -> bool {
        self.filters.iter().any(|f| f.may_hold(id))
    }

    /// Filters in use, for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.filters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::hash::Digest;

    fn id(n: u64) -> [u8; 32] {
        Digest::sha256(&n.to_be_bytes()).0
    }

    #[test]
    fn every_added_id_is_maybe_held_and_few_others_are() {
        let mut filter = IdFilter::new(1_000);
        for n in 0..20_000 {
            filter.insert(&id(n));
        }
        // 1,000 + 2,000 + 4,000 + 8,000 + 16,000 ≥ 20,000: five filters.
        assert_eq!(filter.len(), 5);
        assert!(
            (0..20_000).all(|n| filter.may_hold(&id(n))),
            "no false negative"
        );
        let false_positives = (20_000..120_000)
            .filter(|n| filter.may_hold(&id(*n)))
            .count();
        // Five filters at or under their design load: about 5 in 2,000 at worst.
        assert!(false_positives < 500, "{false_positives} of 100,000");
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        let filter = IdFilter::new(1);
        assert!(!(0..1_000).any(|n| filter.may_hold(&id(n))));
    }
}
