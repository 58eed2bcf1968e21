//! Ledger benchmarks: sled append throughput with blocks of 1,000 events, block validation
//! (batch signature verification and the state machine), full chain verification, and
//! inclusion proofs served from the sled store.
//!
//! Run with `cargo bench -p custody-ledger --bench ledger`. Figures go into README.md.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use custody_ledger::bundle;
use custody_ledger::chain::{build_block, validate_block};
use custody_ledger::event::EncodedEvent;
use custody_ledger::keys::KeyCache;
use custody_ledger::merkle::verify_inclusion;
use custody_ledger::rules::NoRules;
use custody_ledger::store::{Store, Tree};
use custody_ledger::testkit::{verified, TestNet, GENESIS_TIME};
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use custody_sled::SledStore;

const EVENTS_PER_BLOCK: usize = 1_000;

/// A realistic block: the full lifecycles (eleven events each) of 90 shipments plus ten
/// document attestations: 1,000 events, each valid after the ones before it.
fn block_events(net: &TestNet, block: u64) -> Vec<EncodedEvent> {
    let mut events = Vec::with_capacity(EVENTS_PER_BLOCK);
    for i in 0..90 {
        events.extend(net.lifecycle(&format!("B{block}-{i}")));
    }
    for i in 0..10 {
        events.push(net.sign(
            "auditor-ivy",
            custody_ledger::model::EventKind::DocumentAttested(
                custody_ledger::model::DocumentAttested {
                    shipment_id: custody_ledger::model::ShipmentId::new(format!("B{block}-{i}")),
                    document_type: "inspection_report".into(),
                    document_hash: custody_ledger::Digest::sha256(&block.to_be_bytes()),
                    reference: format!("INSP-{block}-{i}"),
                },
            ),
        ));
    }
    assert_eq!(events.len(), EVENTS_PER_BLOCK);
    events
}

fn time(block: u64) -> Timestamp {
    Timestamp(GENESIS_TIME.0 + block * 1000)
}

/// The sled inserts and removals the appended blocks made, per block and tree: the store's
/// cost per event, apart from the bytes.
fn print_writes_per_block(store: &SledStore, at_open: [u64; Tree::ALL.len()], blocks: u64) {
    let now = store.write_counts();
    let mut total = 0;
    let mut line = String::new();
    for tree in Tree::ALL {
        let per_block = (now[tree.position()] - at_open[tree.position()]) / blocks;
        total += per_block;
        line.push_str(&format!(" {} {per_block},", tree.name()));
    }
    let per_event_hundredths = total * 100 / EVENTS_PER_BLOCK as u64;
    println!(
        "sled writes per {EVENTS_PER_BLOCK}-event block:{line} total {total} ({}.{:02} per event)",
        per_event_hundredths / 100,
        per_event_hundredths % 100
    );
}

fn append(c: &mut Criterion) {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
    let writes_at_open = store.write_counts();
    let mut group = c.benchmark_group("sled");
    group.throughput(Throughput::Elements(EVENTS_PER_BLOCK as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    let proposer = net.validator_keys()[0].public();
    let mut next = 1u64;
    group.bench_function("append_block_1000_events", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let built = build_block(
                    &store,
                    &net.genesis,
                    &NoRules,
                    verified(block_events(&net, next)),
                    time(next),
                    proposer,
                )
                .expect("build");
                let cert = net.certify(built.block());
                let start = Instant::now();
                store.append_block(&built.validated, &cert).expect("append");
                total += start.elapsed();
                next += 1;
            }
            total
        })
    });
    let keys = KeyCache::new();
    group.bench_function("validate_block_1000_events", |b| {
        b.iter_batched(
            || {
                build_block(
                    &store,
                    &net.genesis,
                    &NoRules,
                    verified(block_events(&net, 1_000_000 + next)),
                    time(next),
                    proposer,
                )
                .expect("build")
                .block()
                .clone()
            },
            |block| validate_block(&store, &net.genesis, &NoRules, block, &keys).expect("valid"),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    // A filter that skipped the append benchmark leaves nothing to verify.
    let Some(head) = store.head().expect("head") else {
        return;
    };
    print_writes_per_block(&store, writes_at_open, head.height);
    let size_bytes = store.size_on_disk_bytes().expect("size");
    println!(
        "sled store after the append benchmark: {} blocks, {} events, {} bytes on disk ({} bytes per event)",
        head.height,
        head.log_size,
        size_bytes,
        size_bytes / head.log_size.max(1)
    );

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(head.log_size));
    group.sample_size(10);
    group.bench_function("verify_chain", |b| {
        b.iter(|| verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect("verifies"))
    });
    group.finish();

    let mut group = c.benchmark_group("store_proofs");
    let id = store
        .block(head.height / 2)
        .expect("read")
        .expect("block")
        .events[7]
        .id();
    let location = store.event(&id).expect("read").expect("event").location;
    group.bench_function(
        format!("inclusion_proof_at_{}_events", head.log_size),
        |b| {
            b.iter(|| {
                store
                    .inclusion_proof(location.log_index, head.log_size)
                    .expect("proof")
            })
        },
    );
    let proof = store
        .inclusion_proof(location.log_index, head.log_size)
        .expect("proof");
    let leaf = store.log_entry(&id).expect("read").expect("entry").hash();
    group.bench_function(
        format!("verify_inclusion_at_{}_events", head.log_size),
        |b| {
            b.iter(|| {
                verify_inclusion(
                    &leaf,
                    location.log_index,
                    head.log_size,
                    &proof,
                    &head.log_root,
                )
                .expect("valid")
            })
        },
    );
    group.finish();
}

/// Blocks committed before the bundle benchmark: 20 blocks of 90 lifecycles, so the shipment
/// map holds 1,800 shipments and a map proof is about eleven hashes.
const BUNDLE_BLOCKS: u64 = 20;

/// A shipment's bundle: its size per event, and the time to build and to verify it
/// (`bundle::verify`, what `custody verify bundle` runs).
fn bundles(c: &mut Criterion) {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
    for block in 1..=BUNDLE_BLOCKS {
        let built = net
            .commit(&store, block_events(&net, block), time(block))
            .expect("commit");
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    }
    let store = &store;
    let net = &net;
    let shipment = custody_ledger::model::ShipmentId::new("B1-7");
    let built = bundle::build(store, &net.genesis, &shipment)
        .expect("read")
        .expect("the shipment has events");
    let events = built.events.len();
    let json = serde_json::to_vec(&built).expect("json");
    let proof_bytes = serde_json::to_vec(&built.shipment_proof)
        .expect("json")
        .len();
    // Proof data: what a bundle carries beyond the events themselves (their bytes and readable
    // copies): the map proof, and each event's entry fields.
    let entries: Vec<_> = built
        .events
        .iter()
        .map(|e| (e.height, e.time, e.log_index, e.shipment_prev))
        .collect();
    let entry_bytes = serde_json::to_vec(&entries).expect("json").len();
    let shipments = store.shipments(None, usize::MAX).expect("read").len();
    println!(
        "bundle of {shipment} ({events} events, map of {shipments} shipments): {} bytes of compact JSON, {} per event; map proof {} siblings, {proof_bytes} bytes; proof data (map proof and entries) {} bytes per event",
        json.len(),
        json.len() / events,
        built.shipment_proof.siblings.len(),
        (proof_bytes + entry_bytes) / events,
    );
    let mut group = c.benchmark_group("bundle");
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function("build", |b| {
        b.iter(|| bundle::build(store, &net.genesis, &shipment).expect("read"))
    });
    group.bench_function("verify", |b| {
        b.iter(|| bundle::verify(&built, &net.genesis).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, append, bundles);
criterion_main!(benches);
