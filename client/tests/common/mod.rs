//! Ledgers built with the ledger's test kit, and the API views a node would serve of them.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use custody_ledger::bundle::{self, Bundle};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::ShipmentId;
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::view::BlockView;

/// A store with the lifecycles of shipments `B-A` and `B-B` over two blocks.
pub fn store_with_history(net: &TestNet) -> MemoryStore {
    let store = MemoryStore::new(net.genesis_hash());
    let a = net.lifecycle("B-A");
    let b = net.lifecycle("B-B");
    let first: Vec<EncodedEvent> = a[..5].iter().chain(&b[..3]).cloned().collect();
    let second: Vec<EncodedEvent> = a[5..].iter().chain(&b[3..]).cloned().collect();
    for events in [first, second] {
        let built = net.commit(&store, events, GENESIS_TIME).expect("commit");
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    }
    store
}

/// The bundle of `shipment` at the store's head.
pub fn bundle_of(net: &TestNet, store: &MemoryStore, shipment: &str) -> Bundle {
    bundle::build(store, &net.genesis, &ShipmentId::new(shipment))
        .expect("store")
        .expect("the shipment has events")
}

/// The block at `height` as `GET /v1/blocks/{height}` shows it.
pub fn block_view(store: &MemoryStore, height: u64) -> BlockView {
    let block = store.block(height).expect("store").expect("block exists");
    let certificate = store
        .certificate(height)
        .expect("store")
        .expect("certificate exists");
    BlockView {
        hash: block.hash(),
        event_ids: block.events.iter().map(|e| e.id()).collect(),
        events: block
            .events
            .iter()
            .map(|e| BASE64.encode(e.bytes()))
            .collect(),
        header: block.header,
        certificate,
    }
}
