//! The store: blocks, indexes, proofs, reopening, refusal of broken chains, and full
//! verification catching tampering at exactly the tampered height.

use custody_ledger::block::BlockHeader;
use custody_ledger::chain::{build_block, validate_block, BlockError};
use custody_ledger::event::verify_events;
use custody_ledger::event::EncodedEvent;
use custody_ledger::keys::KeyCache;
use custody_ledger::merkle::{verify_consistency, verify_inclusion};
use custody_ledger::model::*;
use custody_ledger::reject::codes;
use custody_ledger::rules::NoRules;
use custody_ledger::smt;
use custody_ledger::state::ShipmentStatus;
use custody_ledger::store::{MapSource, MemoryStore, Store, StoreError, Tree, STORE_FORMAT};
use custody_ledger::testkit::verified;
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use custody_sled::SledStore;

fn at(seconds: u64) -> Timestamp {
    Timestamp(GENESIS_TIME.0 + seconds * 1000)
}

/// Commits the lifecycles of `shipments` shipments, one lifecycle step per block across all
/// shipments: 11 blocks. Returns the heights' event counts.
fn fill<S: Store + ?Sized>(net: &TestNet, store: &S, shipments: usize) {
    let lifecycles: Vec<Vec<_>> = (0..shipments)
        .map(|i| net.lifecycle(&format!("SHP-{i}")))
        .collect();
    for step in 0..11 {
        let events = lifecycles.iter().map(|l| l[step].clone()).collect();
        let built = net
            .commit(store, events, at(step as u64 + 1))
            .expect("commit");
        assert!(
            built.rejected.is_empty(),
            "step {step}: {:?}",
            built.rejected
        );
    }
}

fn exercise<S: Store + ?Sized>(store: &S) {
    let net = TestNet::new();
    fill(&net, store, 5);
    let head = store.head().expect("head").expect("has a head");
    assert_eq!(head.height, 11);
    assert_eq!(head.log_size, 55);

    // Current state and indexes.
    let s = store
        .shipment(&ShipmentId::new("SHP-3"))
        .expect("read")
        .expect("exists");
    assert_eq!(s.status, ShipmentStatus::Returned);
    assert_eq!(s.custodian.as_str(), "carrier-lastmile");
    let history = store
        .shipment_events(&ShipmentId::new("SHP-3"), None, 100)
        .expect("index");
    assert_eq!(history.len(), 11);
    let page = store
        .shipment_events(&ShipmentId::new("SHP-3"), Some(history[4].0), 3)
        .expect("page");
    assert_eq!(page, history[5..8].to_vec());
    let by_broker = store
        .member_events(&net.key("broker-clear").public(), None, 1000)
        .expect("index");
    assert_eq!(
        by_broker.len(),
        10,
        "declaration and clearance of 5 shipments"
    );

    // Proofs built together (as a batch's receipts are) are the proofs built one by one, at
    // the head's size and at an earlier one, and the event's position is its record's.
    let sizes = [head.log_size, head.log_size / 2 + 1];
    let wanted: Vec<(u64, u64)> = history
        .iter()
        .flat_map(|(log_index, _)| sizes.map(|size| (*log_index, size)))
        .filter(|(log_index, size)| log_index < size)
        .collect();
    let together = store.inclusion_proofs(&wanted).expect("proofs");
    assert_eq!(together.len(), wanted.len());
    for ((log_index, size), proof) in wanted.iter().zip(&together) {
        assert_eq!(
            &store.inclusion_proof(*log_index, *size).expect("proof"),
            proof
        );
    }
    assert!(store.inclusion_proofs(&[(0, head.log_size + 1)]).is_err());
    for (log_index, id) in &history {
        let (location, prev) = store.event_position(id).expect("read").expect("present");
        let entry = store.log_entry(id).expect("read").expect("entry");
        assert_eq!(
            (location.log_index, prev),
            (*log_index, entry.shipment_prev)
        );
    }

    // Every event is found with its location, and its inclusion proof verifies against
    // the head's log root.
    for (log_index, id) in &history {
        let stored = store.event(id).expect("read").expect("present");
        assert_eq!(stored.location.log_index, *log_index);
        let proof = store
            .inclusion_proof(*log_index, head.log_size)
            .expect("proof");
        assert!(proof.len() <= 6, "O(log n) proof");
        let entry = store.log_entry(id).expect("read").expect("entry");
        assert_eq!(
            (entry.event_id, entry.height, entry.log_index),
            (*id, stored.location.height, *log_index)
        );
        verify_inclusion(
            &entry.hash(),
            *log_index,
            head.log_size,
            &proof,
            &head.log_root,
        )
        .expect("inclusion proof verifies");
    }
    // Every shipment's chain of entries ends at the head the header's shipment map proves.
    let header = store
        .header(head.height)
        .expect("read")
        .expect("head header");
    for n in 0..5 {
        let id = ShipmentId::new(format!("SHP-{n}"));
        let events = store.shipment_events(&id, None, 1000).expect("index");
        let mut prev = None;
        for (_, event) in &events {
            let entry = store.log_entry(event).expect("read").expect("entry");
            assert_eq!(entry.shipment_prev, prev, "{id}: entries chain");
            prev = Some(entry.hash());
        }
        let state = store.shipment(&id).expect("read").expect("exists");
        assert_eq!(
            state.head_entry, prev,
            "{id}: the state's head is the last entry"
        );
        let key = smt::key_of(&id.0);
        let (value, proof) = smt::prove(&MapSource::new(store), &key)
            .expect("read")
            .expect("in the map");
        assert_eq!(Some(value), prev);
        smt::verify(&header.shipments_root, &key, &value, &proof).expect("map proof verifies");
    }

    // Consistency from every earlier header to the head.
    for h in 1..head.height {
        let old = store.header(h).expect("read").expect("present");
        let proof = store
            .consistency_proof(old.log_size, head.log_size)
            .expect("proof");
        verify_consistency(
            old.log_size,
            head.log_size,
            &old.log_root,
            &head.log_root,
            &proof,
        )
        .expect("consistency proof verifies");
    }
    assert!(matches!(
        store.inclusion_proof(0, head.log_size + 1),
        Err(StoreError::ProofRange(_))
    ));

    // Block iteration, bounded and stopping at the head.
    let blocks = store.blocks(9, 10).expect("blocks");
    assert_eq!(
        blocks.iter().map(|b| b.header.height).collect::<Vec<_>>(),
        vec![9, 10, 11]
    );
    assert_eq!(store.blocks(1, 2).expect("blocks").len(), 2);
    assert_eq!(blocks[2].hash(), head.block_hash);

    // The whole chain verifies.
    let summary = verify_chain(store, &net.genesis, NoRules, |_, _| {}).expect("chain verifies");
    assert_eq!(summary.height, 11);
    assert_eq!(summary.log_root, head.log_root);
    assert_eq!(summary.head_hash, head.block_hash);

    // A block that does not extend the head is refused and nothing is written: one
    // validated on another store, at height 1.
    let other = MemoryStore::new(net.genesis_hash());
    let first = net
        .commit(&other, vec![net.register("SHP-OTHER", "CN", "FR")], at(1))
        .expect("commit");
    let cert = net.certify(first.block());
    let err = store
        .append_block(&first.validated, &cert)
        .expect_err("not next");
    assert!(matches!(
        err,
        StoreError::NotNext {
            height: 1,
            head_height: 11,
            ..
        }
    ));
    assert_eq!(store.head().expect("head").expect("head").height, 11);
}

#[test]
fn memory_store_keeps_blocks_indexes_and_proofs() {
    let net = TestNet::new();
    exercise(&MemoryStore::new(net.genesis_hash()));
}

#[test]
fn sled_store_keeps_blocks_indexes_and_proofs_across_reopen() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
        exercise(&store);
    }
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("reopen");
    assert_eq!(store.head().expect("head").expect("head").height, 11);
    verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect("verifies after reopen");
    drop(store);
    let other = custody_ledger::Digest::sha256(b"another network");
    assert!(matches!(
        SledStore::open(dir.path(), other),
        Err(StoreError::GenesisMismatch { .. })
    ));
}

/// Issue 17: loading the state for a batch reads each shipment once, also one that the batch
/// itself registers (the store has no record of it, and every later event of it asked again).
#[test]
fn the_state_for_a_batch_reads_each_shipment_once() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let new = net.lifecycle("NEW-1");
    let before = store.gets(Tree::State);
    let state = store.load_state(&net.genesis, &new).expect("load");
    let reads = store.gets(Tree::State) - before;
    assert!(
        reads <= 1,
        "{reads} state reads for one shipment's {} events",
        new.len()
    );
    assert!(state.shipment(&ShipmentId::new("NEW-1")).is_none());
}

/// Issue 17: a batch's receipts build their proofs from the nodes the committing block wrote,
/// held in memory, and read only older ones; the proofs are the ones the store gives.
#[test]
fn proofs_given_a_blocks_log_nodes_are_the_proofs_read_from_the_store() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    fill(&net, &store, 3);
    let events = (0..20)
        .map(|i| net.lifecycle(&format!("KNOWN-{i}"))[0].clone())
        .collect();
    let built = net.commit(&store, events, at(20)).expect("commit");
    let size = store.head().expect("head").expect("head").log_size;
    let wanted: Vec<(u64, u64)> = built
        .validated
        .entries()
        .iter()
        .map(|e| (e.log_index, size))
        .collect();
    let known = built.validated.log_nodes();
    assert!(known.len() >= 19, "a block of 20 creates at least 19 nodes");
    assert_eq!(
        store.inclusion_proofs_with(&wanted, known).expect("proofs"),
        store.inclusion_proofs(&wanted).expect("proofs")
    );
}

/// Issue 17: sled answers "is this event committed?" from a filter of the stored ids for
/// absent events; the answer must stay exact across commits and a reopen, which rebuilds it.
#[test]
fn sled_store_knows_its_committed_events_across_reopen() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let lifecycle = net.lifecycle("FILTERED");
    let (committed, waiting) = lifecycle.split_at(4);
    {
        let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
        assert!(!store.contains_event(&committed[0].id()).expect("read"));
        net.commit(&store, committed.to_vec(), at(1))
            .expect("commit");
        for e in committed {
            assert!(store.contains_event(&e.id()).expect("read"), "after commit");
        }
        assert!(!store.contains_event(&waiting[0].id()).expect("read"));
    }
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("reopen");
    for e in committed {
        assert!(store.contains_event(&e.id()).expect("read"), "after reopen");
    }
    for e in waiting {
        assert!(
            !store.contains_event(&e.id()).expect("read"),
            "never committed"
        );
    }
}

/// Opening a store laid out as before format v7 (a `meta` sled tree of its own)
/// holding `genesis` and, from format v4, a format record: refused, with the error's message.
fn refusal_of_old_layout(genesis: &custody_ledger::Digest, format: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = custody_sled::sled::open(dir.path()).expect("sled");
        let meta = db.open_tree("meta").expect("meta");
        meta.insert("genesis", genesis.as_bytes().to_vec())
            .expect("insert");
        if let Some(format) = format {
            meta.insert("format", format).expect("insert");
        }
        db.flush().expect("flush");
    }
    let error = SledStore::open(dir.path(), *genesis).expect_err("refused");
    assert!(matches!(error, StoreError::Format { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(STORE_FORMAT), "{message}");
    message
}

/// Issue 15, migration: a data directory written before format v4 (no format record) is
/// refused at open, naming both formats, instead of being misread.
#[test]
fn regression_issue_15_a_store_of_an_earlier_format_is_refused_at_open() {
    let net = TestNet::new();
    let message = refusal_of_old_layout(&net.genesis_hash(), None);
    assert!(message.contains("format v3 or earlier"), "{message}");
}

/// Issue 17, format v7: a directory of format v6, which kept each tree in a sled tree of its
/// own, is refused at open, naming its format, instead of being taken for a new store.
#[test]
fn regression_issue_17_a_store_with_one_sled_tree_per_tree_is_refused_at_open() {
    let net = TestNet::new();
    let message = refusal_of_old_layout(&net.genesis_hash(), Some("custody-store/v6"));
    assert!(message.contains("custody-store/v6"), "{message}");
}

#[test]
fn a_proposal_with_an_invalid_event_is_rejected_and_the_proposer_leaves_it_out() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let reg = net.register("SHP-X", "CN", "FR");
    let bad = net.deliver("carrier-swift", "SHP-X");
    let built = build_block(
        &store,
        &net.genesis,
        &NoRules,
        verified(vec![reg.clone(), bad.clone()]),
        at(1),
        net.validator_keys()[0].public(),
    )
    .expect("build");
    assert_eq!(built.block().events.len(), 1);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1.code, codes::CUSTODY_NOT_CUSTODIAN);

    // A Byzantine proposer includes the invalid event anyway: validators name it.
    let mut byzantine = built.block().clone();
    byzantine.events.push(bad);
    byzantine.header.event_count = 2;
    match validate_block(
        &store,
        &net.genesis,
        &NoRules,
        byzantine.clone(),
        &KeyCache::new(),
    ) {
        Err(BlockError::Event {
            index: 1,
            rejection,
            ..
        }) => assert_eq!(rejection.code, codes::CUSTODY_NOT_CUSTODIAN),
        other => panic!("expected event 1 to be rejected, got {other:?}"),
    }
    // A bad signature is named too.
    let mut forged = built.block().clone();
    forged.events[0] = forge(&forged.events[0], 5);
    match validate_block(
        &store,
        &net.genesis,
        &NoRules,
        forged.clone(),
        &KeyCache::new(),
    ) {
        Err(BlockError::Event {
            index: 0,
            rejection,
            ..
        }) => assert_eq!(rejection.code, codes::SIGNATURE_INVALID),
        other => panic!("expected a signature rejection, got {other:?}"),
    }
    // Skipping the check of signatures a node already verified still names the bad one, at
    // its position in the block, among those not skipped.
    let mut two = build_block(
        &store,
        &net.genesis,
        &NoRules,
        verified(vec![reg.clone(), net.register("SHP-Y", "CN", "FR")]),
        at(1),
        net.validator_keys()[0].public(),
    )
    .expect("build")
    .block()
    .clone();
    let trusted = verified([two.events[0].clone()]).remove(0);
    two.events[1] = forge(&two.events[1], 7);
    let held = |id: &EventId| (*id == trusted.id()).then(|| trusted.clone());
    let events = verify_events(two.events.clone(), held, &KeyCache::new());
    match events.map_err(BlockError::from) {
        Err(BlockError::Event {
            index: 1,
            rejection,
            ..
        }) => assert_eq!(rejection.code, codes::SIGNATURE_INVALID),
        other => panic!("expected event 1's signature to be rejected, got {other:?}"),
    }
    // A wrong root is caught.
    let mut wrong_root = built.block().clone();
    wrong_root.header.state_root = custody_ledger::Digest::ZERO;
    assert!(matches!(
        validate_block(
            &store,
            &net.genesis,
            &NoRules,
            wrong_root.clone(),
            &KeyCache::new()
        ),
        Err(BlockError::Header {
            field: "state_root",
            ..
        })
    ));
    // The honest block validates to the same delta.
    assert_eq!(
        validate_block(
            &store,
            &net.genesis,
            &NoRules,
            built.block().clone(),
            &KeyCache::new()
        )
        .expect("valid")
        .delta(),
        built.delta()
    );
}

/// `event` with one bit of its signature flipped, at byte `at`.
fn forge(event: &EncodedEvent, at: usize) -> EncodedEvent {
    let mut signed = event.event().clone();
    signed.signature.0[at] ^= 1;
    EncodedEvent::new(signed)
}

fn flip(store: &SledStore, tree: Tree, key: &[u8], offset_from_end: usize) {
    let mut value = store.get(tree, key).expect("read").expect("present");
    let i = value.len() - offset_from_end;
    value[i] ^= 0x01;
    store.raw_put(tree, key, value).expect("write");
}

fn height_key(height: u64, tag: u8) -> Vec<u8> {
    let mut key = height.to_be_bytes().to_vec();
    key.push(tag);
    key
}

#[test]
fn a_flipped_byte_in_a_stored_event_is_reported_at_its_height() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
    fill(&net, &store, 3);
    // Tamper with the second event of block 7, in the middle of its bytes in the block's first
    // body record (each event there is its length, u32 BE, then its bytes).
    let block = store.block(7).expect("read").expect("present");
    assert!(block.events.len() >= 2);
    let after: usize = block.events[2..].iter().map(|e| 4 + e.bytes().len()).sum();
    let mut body_key = height_key(7, 3);
    body_key.extend_from_slice(&0u32.to_be_bytes());
    flip(
        &store,
        Tree::Blocks,
        &body_key,
        after + block.events[1].bytes().len() / 2,
    );
    let err =
        verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect_err("tampering is detected");
    assert_eq!(err.height, 7, "{err}");
    assert!(err.to_string().contains("event 1"), "{err}");
}

/// Format v7: a block's event bytes are stored 16 to a body record. Blocks of 40 events
/// (records of 16, 16 and 8) read back whole, and every event reads back by id, at its place.
#[test]
fn events_read_back_from_body_records_by_block_and_by_id() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    fill(&net, &store, 40);
    let head = store.head().expect("read").expect("head");
    for height in 1..=head.height {
        let block = store.block(height).expect("read").expect("present");
        assert_eq!(block.events.len(), 40, "height {height}");
        for (i, e) in block.events.iter().enumerate() {
            let stored = store.event(&e.id()).expect("read").expect("present");
            assert_eq!(stored.event, *e);
            assert_eq!(stored.location.height, height);
            assert_eq!(stored.location.index_in_block as usize, i);
        }
    }
    verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect("verifies");
}

/// A block whose last body record is gone fails verification at its height, naming the first
/// event whose bytes are missing, and reading one of those events by id is an error.
#[test]
fn a_missing_body_record_is_reported_at_its_height() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    fill(&net, &store, 40);
    let mut key = height_key(5, 3);
    key.extend_from_slice(&2u32.to_be_bytes());
    assert!(store.get(Tree::Blocks, &key).expect("read").is_some());
    let last_event = store.block(5).expect("read").expect("present").events[39].id();
    store.delete_raw(Tree::Blocks, &key);
    assert!(matches!(
        store.event(&last_event),
        Err(StoreError::Corrupt { .. })
    ));
    let err =
        verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect_err("damage is detected");
    assert_eq!(err.height, 5, "{err}");
    assert!(err.to_string().contains("event 32 "), "{err}");
    let lost = store.header(5).expect("read").expect("present");
    assert_eq!(lost.event_count, 40);
    assert!(matches!(store.block(5), Err(StoreError::Corrupt { .. })));
}

#[test]
fn a_flipped_byte_in_a_stored_header_is_reported_at_its_height() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
        fill(&net, &store, 2);
        // A byte inside the state root, so the header still decodes.
        flip(&store, Tree::Blocks, &height_key(4, 0), 10);
        let header = BlockHeader::decode(
            &store
                .get(Tree::Blocks, &height_key(4, 0))
                .expect("r")
                .expect("p"),
        );
        assert!(header.is_ok(), "the tampered header still decodes");
        let err = verify_chain(&store, &net.genesis, NoRules, |_, _| {})
            .expect_err("tampering is detected");
        assert_eq!(err.height, 4, "{err}");
    }
    // The store refuses to open on the broken chain, naming the height.
    match SledStore::open(dir.path(), net.genesis_hash()) {
        Err(StoreError::BrokenChain { height, .. }) => assert_eq!(height, 4),
        other => panic!("expected a broken chain at 4, got {other:?}"),
    }
}

#[test]
fn a_tampered_certificate_or_event_list_is_reported_at_its_height() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    fill(&net, &store, 2);
    // Flip a byte of a validator signature in the certificate of block 9.
    let key = height_key(9, 1);
    let mut cert = store
        .get(Tree::Blocks, &key)
        .expect("read")
        .expect("present");
    let n = cert.len();
    cert[n - 3] ^= 0x80;
    store.put_raw(Tree::Blocks, &key, cert);
    let err = verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect_err("detected");
    assert_eq!(err.height, 9, "{err}");

    let store = MemoryStore::new(net.genesis_hash());
    fill(&net, &store, 2);
    // Reorder the event list of block 3.
    let key = height_key(3, 2);
    let mut ids: Vec<EventId> = custody_ledger::codec::decode(
        &store.get(Tree::Blocks, &key).expect("r").expect("p"),
        1 << 20,
    )
    .expect("ids");
    ids.swap(0, 1);
    store.put_raw(Tree::Blocks, &key, custody_ledger::codec::encode(&ids));
    let err = verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect_err("detected");
    assert_eq!(err.height, 3, "{err}");
}

/// Issue 11: an event no block may carry is dropped by the proposer, which proposes the rest,
/// and a block that carries it anyway is invalid at the event's index.
#[test]
fn regression_issue_11_an_oversize_candidate_is_dropped_and_a_block_with_it_is_invalid() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let oversize = net.oversize_publication();
    let reg = net.register("SHP-BIG", "CN", "FR");
    let built = build_block(
        &store,
        &net.genesis,
        &NoRules,
        verified(vec![oversize.clone(), reg.clone()]),
        at(1),
        net.validator_keys()[0].public(),
    )
    .expect("build");
    assert_eq!(built.block().events, vec![reg.clone()]);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1.code, codes::EVENT_TOO_LARGE);

    let mut carrying = built.block().clone();
    carrying.events.insert(0, oversize);
    carrying.header.event_count = 2;
    match validate_block(
        &store,
        &net.genesis,
        &NoRules,
        carrying.clone(),
        &KeyCache::new(),
    ) {
        Err(BlockError::Event {
            index: 0,
            rejection,
            ..
        }) => assert_eq!(rejection.code, codes::EVENT_TOO_LARGE),
        other => panic!("expected the oversize event to be named, got {other:?}"),
    }
}

/// Issue 11: `occurred_at` must be plausible against the ledger: not more than ten minutes
/// after the block time, not more than 366 days before the genesis (1970 and 9999 were taken).
#[test]
fn regression_issue_11_an_implausible_occurred_at_is_refused_in_blocks() {
    use custody_ledger::event::{OCCURRED_AT_BEFORE_GENESIS_MS_MAX, OCCURRED_AT_FUTURE_MS_MAX};
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let block_time = at(60);
    let kind = |id: &str| {
        EventKind::ShipmentRegistered(custody_ledger::testkit::registration(id, "CN", "FR"))
    };
    let cases = [
        (Timestamp(0), false),
        (Timestamp(253_402_300_799_999), false),
        (
            Timestamp(block_time.0 + OCCURRED_AT_FUTURE_MS_MAX + 1),
            false,
        ),
        (Timestamp(block_time.0 + OCCURRED_AT_FUTURE_MS_MAX), true),
        (
            Timestamp(GENESIS_TIME.0 - OCCURRED_AT_BEFORE_GENESIS_MS_MAX),
            true,
        ),
        (
            Timestamp(GENESIS_TIME.0 - OCCURRED_AT_BEFORE_GENESIS_MS_MAX - 1),
            false,
        ),
    ];
    for (i, (occurred_at, plausible)) in cases.into_iter().enumerate() {
        let event = net.sign_at("seller-acme", kind(&format!("TIME-{i}")), occurred_at);
        let built = build_block(
            &store,
            &net.genesis,
            &NoRules,
            verified(vec![event.clone()]),
            block_time,
            net.validator_keys()[0].public(),
        )
        .expect("build");
        assert_eq!(
            built.block().events.len() == 1,
            plausible,
            "occurred_at {occurred_at}"
        );
        if !plausible {
            assert_eq!(built.rejected[0].1.code, codes::EVENT_IMPLAUSIBLE_TIME);
            let mut carrying = built.block().clone();
            carrying.events.push(event);
            carrying.header.event_count = 1;
            match validate_block(
                &store,
                &net.genesis,
                &NoRules,
                carrying.clone(),
                &KeyCache::new(),
            ) {
                Err(BlockError::Event { rejection, .. }) => {
                    assert_eq!(rejection.code, codes::EVENT_IMPLAUSIBLE_TIME)
                }
                other => panic!("expected an implausible time, got {other:?}"),
            }
        }
    }
}

#[test]
fn a_scheduled_rules_version_is_stored_loaded_and_committed_to_by_the_state_root() {
    use custody_ledger::event::approve;
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let change = MembershipChange::ScheduleRules {
        activation: RulesActivation {
            version: 2,
            from_height: 3,
        },
    };
    let event = net.sign(
        "admin-1",
        EventKind::MembershipChanged(MembershipChanged {
            approvals: vec![approve(
                custody_ledger::testkit::CHAIN_ID,
                &change,
                net.key("admin-2"),
            )],
            change,
        }),
    );
    let built = net.commit(&store, vec![event], at(1)).expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    assert_eq!(built.delta().rules_schedule.len(), 1);

    // A node loads the state for its next block from the store: the activation is there.
    let state = store.load_base_state(&net.genesis).expect("load");
    assert_eq!(
        (1..=4)
            .map(|h| state.rules_version_at(h))
            .collect::<Vec<_>>(),
        [1, 1, 2, 2]
    );
    net.commit(&store, vec![net.register("SHP-V", "CN", "FR")], at(2))
        .expect("commit");
    assert_eq!(
        verify_chain(&store, &net.genesis, NoRules, |_, _| {})
            .expect("verifies")
            .height,
        2
    );
}

#[test]
fn consensus_reads_beyond_their_bound_are_errors_not_truncations() {
    use custody_ledger::store::{WriteBatch, MEMBERS_MAX, REFERENCE_VERSIONS_MAX};
    let net = TestNet::new();

    // One member record more than the bound: reading the members (as every block's state
    // load does) fails rather than judging the block without the last ones.
    let store = MemoryStore::new(net.genesis_hash());
    let mut batch = WriteBatch::default();
    for i in 0..=MEMBERS_MAX {
        batch.put(Tree::State, format!("M{i:08}").into_bytes(), vec![0]);
    }
    store.commit(batch).expect("write");
    assert!(matches!(
        store.stored_members(),
        Err(StoreError::LimitExceeded { max, .. }) if max == MEMBERS_MAX
    ));
    assert!(matches!(
        store.load_base_state(&net.genesis),
        Err(StoreError::LimitExceeded { .. })
    ));

    // One version of a reference table more than the bound: the latest (the one in force)
    // would be the one cut off.
    let store = MemoryStore::new(net.genesis_hash());
    let mut batch = WriteBatch::default();
    for i in 0..=REFERENCE_VERSIONS_MAX as u64 {
        let mut key = b"Rtariff/FR\0".to_vec();
        key.extend_from_slice(&i.to_be_bytes());
        batch.put(Tree::Index, key, vec![0x11; 32]);
    }
    store.commit(batch).expect("write");
    assert!(matches!(
        store.reference_versions("tariff/FR"),
        Err(StoreError::LimitExceeded { max, .. }) if max == REFERENCE_VERSIONS_MAX
    ));
    assert!(matches!(
        store.reference_entries(),
        Err(StoreError::LimitExceeded { .. })
    ));
    // At the bound exactly, all are read.
    let store = MemoryStore::new(net.genesis_hash());
    let mut batch = WriteBatch::default();
    for i in 0..REFERENCE_VERSIONS_MAX as u64 {
        let mut key = b"Rtariff/FR\0".to_vec();
        key.extend_from_slice(&i.to_be_bytes());
        batch.put(Tree::Index, key, vec![0x11; 32]);
    }
    store.commit(batch).expect("write");
    assert_eq!(
        store.reference_versions("tariff/FR").expect("read").len(),
        REFERENCE_VERSIONS_MAX
    );
}

/// Issue 17: what appending a block costs sled, counted per tree. One record per event (its
/// location, previous entry and bytes), one list record per shipment and per signer of the
/// block, and the log's bottom levels by tiles of 16 leaves: a regression that writes a
/// per-event copy or index entry again, or the log node by node, fails here.
#[test]
fn a_block_writes_one_record_per_event_and_one_list_record_per_shipment_and_signer() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
    // A first block leaves the log inside a tile, so the measured block completes one that
    // an earlier block began.
    let first = net.lifecycle("FIRST");
    net.commit(&store, first[..3].to_vec(), at(1))
        .expect("first");
    let shipments = 20;
    let events: Vec<EncodedEvent> = (0..shipments)
        .flat_map(|i| net.lifecycle(&format!("COUNT-{i}")))
        .collect();
    let n = events.len() as u64;
    let signers: std::collections::BTreeSet<_> = events.iter().map(|e| e.event().signer).collect();
    let lists_before = list_records(&store);
    let before = store.write_counts();
    let built = net.commit(&store, events, at(2)).expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let after = store.write_counts();
    let writes = |tree: Tree| after[tree.position()] - before[tree.position()];

    assert_eq!(writes(Tree::Events), n, "one record per event");
    assert_eq!(
        list_records(&store) - lists_before,
        shipments + signers.len() as u64,
        "one list record per shipment and per signer"
    );
    // Tiles completed (n/16 + 1), nodes of level 5 and above (under n/16 + 59: at most
    // n/2^l + 1 on each level l from 5 to 63) and the last, partial tile's lone nodes (30).
    assert!(
        writes(Tree::Log) <= n / 8 + 90,
        "log: {}",
        writes(Tree::Log)
    );
    let total: u64 = Tree::ALL.iter().map(|t| writes(*t)).sum();
    // With per-event index entries and the log node by node (format v4), this block wrote
    // 1,552 records, 7.05 per event; now 530, 2.41 per event.
    assert!(total <= 3 * n, "{total} writes for {n} events");
}

/// The records of the shipment (`S`) and signer (`M`) event lists.
fn list_records(store: &SledStore) -> u64 {
    let count = |prefix: &[u8]| {
        store
            .scan(Tree::Index, prefix, None, usize::MAX)
            .expect("scan")
            .len() as u64
    };
    count(b"S") + count(b"M")
}
