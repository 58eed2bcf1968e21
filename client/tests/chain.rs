//! Chain replay from block views, as `verify chain` downloads them: valid chains replay to
//! the same head, and each kind of fault is refused at its height with the check named.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use custody_client::verify::{block_from_view, ChainError, ChainReplay};
use custody_contracts::{load, ContractRules};
use custody_ledger::chain::build_block;
use custody_ledger::model::{EventKind, ShipmentId};
use custody_ledger::rules::NoRules;
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::{self, TestNet};
use custody_ledger::view::BlockView;
use custody_ledger::Timestamp;

fn at(day: u32) -> Timestamp {
    Timestamp::from_date(2026, 11, day).expect("date")
}

fn invalid(result: Result<(), ChainError>) -> (u64, &'static str, String) {
    match result {
        Err(ChainError::Invalid {
            height,
            check,
            reason,
        }) => (height, check, reason),
        other => panic!("expected an invalid block, got {other:?}"),
    }
}

/// Replays height 1 of the history, then offers the view of height 2 after `tamper`.
fn replay_with(tamper: impl FnOnce(&mut BlockView)) -> (u64, &'static str, String) {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let mut replay = ChainReplay::new(&net.genesis, NoRules).expect("genesis");
    replay
        .apply(&common::block_view(&store, 1))
        .expect("height 1");
    let mut view = common::block_view(&store, 2);
    tamper(&mut view);
    invalid(replay.apply(&view))
}

#[test]
fn a_valid_history_replays_to_the_stored_head() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let mut replay = ChainReplay::new(&net.genesis, NoRules).expect("genesis");
    let empty = replay.report();
    assert_eq!((empty.height, empty.log_size), (0, 0));
    assert_eq!(empty.head_hash, net.genesis_hash());
    for height in 1..=2 {
        replay
            .apply(&common::block_view(&store, height))
            .unwrap_or_else(|e| panic!("height {height}: {e}"));
    }
    let head = store.head().expect("store").expect("head");
    let report = replay.report();
    assert_eq!(report.height, 2);
    assert_eq!(report.head_hash, head.block_hash);
    assert_eq!(report.log_size, 22);
    assert_eq!(report.log_root, head.log_root);
    assert_eq!(report.state_root, head.state_root);
    let id = ShipmentId::new("B-A");
    assert_eq!(
        replay.store().shipment(&id).expect("store"),
        store.shipment(&id).expect("store")
    );
}

#[test]
fn faults_in_a_block_view_are_named_with_their_height() {
    let (height, check, _) = replay_with(|view| {
        let mut bytes = BASE64.decode(&view.events[3]).expect("base64");
        let last = bytes.len() - 70;
        bytes[last] ^= 1;
        view.events[3] = BASE64.encode(bytes);
    });
    assert_eq!(height, 2);
    assert!(
        matches!(check, "block.event_id" | "block.event_bytes"),
        "{check}"
    );

    let (_, check, reason) = replay_with(|view| view.event_ids.swap(0, 1));
    assert_eq!(check, "block.event_id", "{reason}");

    let (_, check, _) = replay_with(|view| view.events[0] = "not base64!".into());
    assert_eq!(check, "block.event_bytes");

    let (_, check, _) = replay_with(|view| {
        view.events.pop();
        view.event_ids.pop();
    });
    assert_eq!(check, "block.event_count");

    let (_, check, _) = replay_with(|view| view.hash.0[0] ^= 1);
    assert_eq!(check, "block.hash");

    let (_, check, reason) = replay_with(|view| view.certificate.signatures[1].signature.0[9] ^= 1);
    assert_eq!(check, "block.certificate", "{reason}");

    let (_, check, _) = replay_with(|view| {
        view.certificate.signatures.truncate(2);
    });
    assert_eq!(check, "block.certificate");

    let (_, check, _) = replay_with(|view| view.header.height = 3);
    assert_eq!(check, "block.height");
}

#[test]
fn a_certified_block_whose_roots_lie_is_refused_by_replay() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let mut replay = ChainReplay::new(&net.genesis, NoRules).expect("genesis");
    replay
        .apply(&common::block_view(&store, 1))
        .expect("height 1");
    let mut block = store.block(2).expect("store").expect("block");
    block.header.state_root.0[0] ^= 1;
    // Every validator signs it: the certificate is good, the state root is not.
    let certificate = net.certify(&block);
    let mut view = common::block_view(&store, 2);
    view.hash = block.hash();
    view.header = block.header;
    view.certificate = certificate;
    let (height, check, reason) = invalid(replay.apply(&view));
    assert_eq!((height, check), (2, "block.header"));
    assert!(reason.contains("state_root"), "{reason}");
}

/// Reference data, then a registration and two handoffs, under the contract rules.
fn contract_chain(net: &TestNet) -> MemoryStore {
    let store = MemoryStore::new(net.genesis_hash());
    let reference: Vec<_> = load::sample_tables(Timestamp::from_date(2026, 1, 1).expect("date"))
        .into_iter()
        .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
        .collect();
    let built = net
        .commit_with(&store, &ContractRules::default(), reference, at(1))
        .expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let events = net.lifecycle("RULES-1");
    let built = net
        .commit_with(&store, built.rules(), events[..3].to_vec(), at(2))
        .expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    store
}

#[test]
fn replay_runs_the_contract_rules_with_reference_data_from_the_chain() {
    let net = TestNet::new();
    let store = contract_chain(&net);
    let mut replay = ChainReplay::new(&net.genesis, ContractRules::default()).expect("genesis");
    for height in 1..=2 {
        replay
            .apply(&common::block_view(&store, height))
            .unwrap_or_else(|e| panic!("height {height}: {e}"));
    }
    assert_eq!(replay.report().log_size, 6);

    // A proposer without the rules commits a registration whose invoice does not add up; the
    // ledger alone accepts it, a replay under the rules does not.
    let mut bad = testkit::registration("RULES-BAD", "CN", "FR");
    bad.invoice.total_minor += 1;
    let bad = net.sign("seller-acme", EventKind::ShipmentRegistered(bad));
    let built = build_block(
        &store,
        &net.genesis,
        &NoRules,
        testkit::verified([bad.clone()]),
        at(3),
        net.validator_keys()[0].public(),
    )
    .expect("build");
    assert_eq!(built.block().events.len(), 1, "the ledger alone accepts it");
    let certificate = net.certify(built.block());
    store
        .append_block(&built.validated, &certificate)
        .expect("append");
    let (height, check, reason) = invalid(replay.apply(&common::block_view(&store, 3)));
    assert_eq!((height, check), (3, "block.event"));
    assert!(reason.contains("invoice.total_mismatch"), "{reason}");
    assert!(reason.contains(&bad.id().to_hex()), "{reason}");
}

#[test]
fn a_view_decodes_to_the_stored_block() {
    let net = TestNet::new();
    let store = common::store_with_history(&net);
    let block = block_from_view(&common::block_view(&store, 2)).expect("consistent view");
    assert_eq!(block, store.block(2).expect("store").expect("block"));
}
