//! The shipment map's nodes in the `map` tree, four levels to a record.
//!
//! A tile is rooted at a depth that is a multiple of four and holds the nodes of its root's
//! depth and the three below it, under its root's key prefix: at most 15 nodes. A block that
//! moves a shipment rewrites every node on the shipment's path, about `log2(shipments)` of
//! them; node by node that was one record each (about six per event at 32,000 shipments), and
//! every one was read first. By tiles it is a quarter of the records, and the block's updates
//! share the upper tiles.
//!
//! | key                                              | value                                  |
//! |--------------------------------------------------|----------------------------------------|
//! | tile root's depth (u16 BE) ‖ key prefix (32 B)   | (slot (u8) ‖ encoded node (65 B))*     |
//!
//! The key is the tile root's [`NodePath::to_bytes`]. Slots number a tile's places level by
//! level: slot `2^r − 1 + b` is the node `r` levels below the tile root whose `r` key bits
//! after the root's depth read `b`. Slots are strictly ascending and a stored tile holds at
//! least one node, so each tile has exactly one encoding.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{Store, StoreError, Tree};
use crate::smt::{MapNode, MapNodes, NodePath};

/// Levels of the map in one tile.
const TILE_DEPTHS: u16 = 4;
/// Places in one tile: 1 + 2 + 4 + 8.
const TILE_SLOTS: usize = (1 << TILE_DEPTHS) - 1;
/// Bytes of one stored slot: its number and the node's 65 bytes.
const SLOT_LEN_BYTES: usize = 1 + 65;

/// The key of a tile: its root's path, as a node would be keyed.
type TileKey = [u8; 34];

/// The nodes of one tile, by slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tile([Option<MapNode>; TILE_SLOTS]);

/// The tile holding the node at `path`, and the node's slot in it.
fn place(path: &NodePath) -> (TileKey, usize) {
    let depth = path.depth();
    let root_depth = depth - depth % TILE_DEPTHS;
    let below = depth - root_depth;
    let mut bits = 0usize;
    for index in root_depth..depth {
        let index = usize::from(index);
        let bit = (path.prefix()[index / 8] >> (7 - index % 8)) & 1;
        bits = (bits << 1) | usize::from(bit);
    }
    let root = NodePath::of(path.prefix(), root_depth);
    (root.to_bytes(), (1 << below) - 1 + bits)
}

fn corrupt(key: &TileKey, message: impl Into<String>) -> StoreError {
    let depth = u16::from_be_bytes([key[0], key[1]]);
    StoreError::Corrupt {
        record: format!("shipment map tile at depth {depth}"),
        message: message.into(),
    }
}

impl Tile {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SLOT_LEN_BYTES * 4);
        for (slot, node) in self.0.iter().enumerate() {
            if let Some(node) = node {
                out.push(u8::try_from(slot).expect("a slot is below 15"));
                out.extend_from_slice(&node.encode());
            }
        }
        out
    }

    fn decode(key: &TileKey, bytes: &[u8]) -> Result<Tile, StoreError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(SLOT_LEN_BYTES) {
            return Err(corrupt(
                key,
                format!("{} bytes are not whole slots", bytes.len()),
            ));
        }
        let mut tile = Tile::default();
        let mut last: Option<usize> = None;
        for chunk in bytes.chunks_exact(SLOT_LEN_BYTES) {
            let slot = usize::from(chunk[0]);
            if slot >= TILE_SLOTS || last.is_some_and(|last| slot <= last) {
                return Err(corrupt(
                    key,
                    format!("slot {slot} is out of order or range"),
                ));
            }
            let node = MapNode::decode(&chunk[1..]).map_err(|e| corrupt(key, e.to_string()))?;
            tile.0[slot] = Some(node);
            last = Some(slot);
        }
        Ok(tile)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

/// The shipment map as a store holds it, for `smt`'s functions. It remembers each tile it
/// reads, so a block's update reads each tile once, and [`MapSource::tile_writes`] turns the
/// update's node writes into tile writes without reading again.
pub struct MapSource<'a, S: ?Sized> {
    store: &'a S,
    read: RefCell<BTreeMap<TileKey, Option<Tile>>>,
}

impl<S: ?Sized> std::fmt::Debug for MapSource<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MapSource")
    }
}

/// A tile's key and its new bytes, or `None` to remove it.
pub(crate) type TileWrite = (Vec<u8>, Option<Vec<u8>>);

impl<'a, S: Store + ?Sized> MapSource<'a, S> {
    /// The map of `store`'s head.
    pub fn new(store: &'a S) -> Self {
        MapSource {
            store,
            read: RefCell::default(),
        }
    }

    /// `f` of the stored tile at `key`, which is read from the store once.
    fn with_tile<T>(
        &self,
        key: &TileKey,
        f: impl FnOnce(Option<&Tile>) -> T,
    ) -> Result<T, StoreError> {
        if !self.read.borrow().contains_key(key) {
            let tile = match self.store.get(Tree::Map, key)? {
                Some(bytes) => Some(Tile::decode(key, &bytes)?),
                None => None,
            };
            self.read.borrow_mut().insert(*key, tile);
        }
        Ok(f(self.read.borrow()[key].as_ref()))
    }

    /// The records that turn the stored map into the one `writes` (an update's node writes,
    /// [`crate::smt::MapUpdate::writes`]) describe: one per tile they touch.
    pub(crate) fn tile_writes(
        &self,
        writes: &[(NodePath, Option<MapNode>)],
    ) -> Result<Vec<TileWrite>, StoreError> {
        let mut tiles: BTreeMap<TileKey, Tile> = BTreeMap::new();
        for (path, node) in writes {
            let (key, slot) = place(path);
            let tile = match tiles.entry(key) {
                std::collections::btree_map::Entry::Occupied(tile) => tile.into_mut(),
                std::collections::btree_map::Entry::Vacant(place) => {
                    place.insert(self.with_tile(&key, |tile| tile.cloned().unwrap_or_default())?)
                }
            };
            tile.0[slot] = node.clone();
        }
        Ok(tiles
            .into_iter()
            .map(|(key, tile)| {
                let value = (!tile.is_empty()).then(|| tile.encode());
                (key.to_vec(), value)
            })
            .collect())
    }
}

impl<S: Store + ?Sized> MapNodes for MapSource<'_, S> {
    type Error = StoreError;
    fn map_node(&self, path: &NodePath) -> Result<Option<MapNode>, StoreError> {
        let (key, slot) = place(path);
        // One node of the remembered tile, not a copy of the whole tile.
        self.with_tile(&key, |tile| tile.and_then(|tile| tile.0[slot].clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Digest;
    use crate::smt::{self, MemoryMap};
    use crate::store::{MemoryStore, WriteBatch};

    fn key(n: u64) -> smt::MapKey {
        smt::key_of(&format!("SHIP-{n}"))
    }

    fn value(n: u64, round: u64) -> Digest {
        Digest::sha256(&[n.to_be_bytes(), round.to_be_bytes()].concat())
    }

    /// Applies `updates` to the tiled map in `store` and to `memory`, as a block does.
    fn apply(store: &MemoryStore, memory: &mut MemoryMap, updates: &[(smt::MapKey, Digest)]) {
        let source = MapSource::new(store);
        let update = smt::update(&source, updates).expect("update");
        let mut batch = WriteBatch::default();
        for (key, value) in source.tile_writes(&update.writes).expect("tiles") {
            match value {
                Some(value) => batch.put(Tree::Map, key, value),
                None => batch.delete(Tree::Map, key),
            }
        }
        store.commit(batch).expect("commit");
        memory.apply(&update);
        assert_eq!(update.root, smt::root(memory).expect("memory root"));
    }

    #[test]
    fn slots_number_a_tile_level_by_level() {
        let k = [0b1011_0110; 32];
        let at = |depth| place(&NodePath::of(&k, depth));
        assert_eq!(at(0), (NodePath::root().to_bytes(), 0));
        assert_eq!(at(1).1, 2, "right child of the root");
        assert_eq!(at(2).1, 3 + 0b10);
        assert_eq!(at(3).1, 7 + 0b101);
        let (tile, slot) = at(4);
        assert_eq!((tile, slot), (NodePath::of(&k, 4).to_bytes(), 0));
        assert_eq!(at(7), (NodePath::of(&k, 4).to_bytes(), 7 + 0b011));
        assert_eq!(at(256).1, 0);
    }

    #[test]
    fn a_tiled_map_reads_and_proves_what_a_node_by_node_map_does() {
        let store = MemoryStore::new(Digest::sha256(b"map tiles"));
        let mut memory = MemoryMap::default();
        for round in 0..6u64 {
            // New shipments each round, and some moved again.
            let updates: Vec<_> = (0..300u64)
                .map(|i| round * 200 + i)
                .map(|n| (key(n), value(n, round)))
                .collect();
            apply(&store, &mut memory, &updates);
        }
        let source = MapSource::new(&store);
        assert_eq!(smt::root(&source).unwrap(), smt::root(&memory).unwrap());
        for n in [0u64, 1, 199, 200, 777, 1299] {
            assert_eq!(
                smt::prove(&source, &key(n)).unwrap(),
                smt::prove(&memory, &key(n)).unwrap(),
                "shipment {n}"
            );
        }
    }

    #[test]
    fn a_block_of_distinct_shipments_writes_about_a_quarter_of_its_nodes() {
        let store = MemoryStore::new(Digest::sha256(b"map tiles"));
        let mut memory = MemoryMap::default();
        let all: Vec<_> = (0..20_000u64).map(|n| (key(n), value(n, 0))).collect();
        apply(&store, &mut memory, &all);
        let moved: Vec<_> = (0..1_000u64).map(|n| (key(n * 20), value(n, 1))).collect();
        let source = MapSource::new(&store);
        let update = smt::update(&source, &moved).expect("update");
        let tiles = source.tile_writes(&update.writes).expect("tiles");
        // About 15 levels deep: the top ten are shared, the rest are each shipment's own.
        assert!(update.writes.len() > 6_000, "{}", update.writes.len());
        assert!(tiles.len() * 3 < update.writes.len(), "{}", tiles.len());
    }

    #[test]
    fn a_damaged_tile_is_corrupt_not_a_panic() {
        let store = MemoryStore::new(Digest::sha256(b"map tiles"));
        let mut memory = MemoryMap::default();
        apply(
            &store,
            &mut memory,
            &[(key(1), value(1, 0)), (key(2), value(2, 0))],
        );
        let root = NodePath::root().to_bytes();
        let good = store.get(Tree::Map, &root).unwrap().expect("root tile");
        let mut out_of_order = good.clone();
        out_of_order[0] = 15;
        for bad in [
            vec![],
            good[..65].to_vec(),
            out_of_order,
            [good.clone(), good].concat(),
        ] {
            store.put_raw(Tree::Map, &root, bad.clone());
            let result = smt::root(&MapSource::new(&store));
            assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{bad:?}");
        }
    }
}
