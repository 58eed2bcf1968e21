//! Mempool benchmark: what the proposer pays for the fair candidate order (issue 11) on a full
//! pool. Each proposal ranks every waiting event by its turn among its signer's events.
//!
//! Run with `cargo bench -p custody-node --bench mempool`. Figures go into README.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use custody_ledger::event::VerifiedEvent;
use custody_ledger::testkit::{verified, TestNet};
use custody_node::mempool::{Mempool, MempoolConfig};

/// Whole lifecycles (eleven events from five signers each) of this many shipments, arriving
/// interleaved: about 22,000 events, under the default pool bound of 50,000.
const SHIPMENTS: usize = 2_000;

/// A full block at the default limit.
const BLOCK_EVENTS: usize = 2_000;

fn pool(events: &[VerifiedEvent]) -> Mempool {
    let mut pool = Mempool::new(MempoolConfig {
        count_max: 50_000,
        size_bytes_max: 64 * 1024 * 1024,
        signer_count_max: 50_000,
        signer_size_bytes_max: 64 * 1024 * 1024,
    });
    for event in events {
        pool.insert(event.clone()).expect("room in the pool");
    }
    pool
}

fn candidates(c: &mut Criterion) {
    let net = TestNet::new();
    let lifecycles: Vec<Vec<VerifiedEvent>> = (0..SHIPMENTS)
        .map(|i| verified(net.lifecycle(&format!("MP-{i}"))))
        .collect();
    // Step k of every shipment, then step k + 1: the arrival order of a busy network.
    let steps = lifecycles[0].len();
    let arrival: Vec<VerifiedEvent> = (0..steps)
        .flat_map(|k| lifecycles.iter().map(move |l| l[k].clone()))
        .collect();
    let pool = pool(&arrival);
    let mut group = c.benchmark_group("mempool");
    group.throughput(Throughput::Elements(pool.len() as u64));
    group.bench_function(
        format!(
            "candidates for a {BLOCK_EVENTS}-event block from {} waiting",
            pool.len()
        ),
        |b| b.iter(|| pool.candidates(BLOCK_EVENTS, 4 * 1024 * 1024)),
    );
    group.finish();
}

criterion_group!(benches, candidates);
criterion_main!(benches);
