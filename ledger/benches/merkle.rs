//! Benchmarks of Merkle proof generation and verification on a log of a million leaves,
//! the scale a busy Custody network reaches, to show that proof work grows with log2 of the
//! log rather than with its size.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use custody_ledger::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion, MemoryLog,
};

/// Number of leaves in the benchmark log.
const LOG_SIZE: u64 = 1_000_000;

/// Earlier tree size for the consistency benchmarks: half the log, as when a client last
/// synced long ago.
const OLD_SIZE: u64 = 500_000;

/// Leaves to prove: the first, one deep inside the left subtree, one on the right edge of
/// the uneven tree, and the last.
const INDICES: [u64; 4] = [0, 123_456, 765_432, LOG_SIZE - 1];

/// Builds the benchmark log; leaf `i` is the leaf hash of `i` as 8 big-endian bytes.
fn build_log() -> MemoryLog {
    (0..LOG_SIZE)
        .map(|index| leaf_hash(&index.to_be_bytes()))
        .collect()
}

fn merkle_benches(c: &mut Criterion) {
    let log = build_log();
    let root = log.root();

    let mut group = c.benchmark_group("inclusion_proof_1M");
    for index in INDICES {
        group.bench_with_input(BenchmarkId::from_parameter(index), &index, |b, &index| {
            b.iter(|| inclusion_proof(&log, black_box(index), black_box(LOG_SIZE)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify_inclusion_1M");
    for index in INDICES {
        let proof = log
            .inclusion_proof(index, LOG_SIZE)
            .expect("index is inside the log");
        let leaf = leaf_hash(&index.to_be_bytes());
        group.bench_with_input(BenchmarkId::from_parameter(index), &index, |b, &index| {
            b.iter(|| {
                verify_inclusion(
                    black_box(&leaf),
                    black_box(index),
                    black_box(LOG_SIZE),
                    black_box(&proof),
                    black_box(&root),
                )
                .expect("a generated proof verifies")
            })
        });
    }
    group.finish();

    let old_root = log.root_at(OLD_SIZE).expect("old size is inside the log");
    let proof = log
        .consistency_proof(OLD_SIZE, LOG_SIZE)
        .expect("sizes are valid");
    c.bench_function("consistency_proof_500k_to_1M", |b| {
        b.iter(|| consistency_proof(&log, black_box(OLD_SIZE), black_box(LOG_SIZE)))
    });
    c.bench_function("verify_consistency_500k_to_1M", |b| {
        b.iter(|| {
            verify_consistency(
                black_box(OLD_SIZE),
                black_box(LOG_SIZE),
                black_box(&old_root),
                black_box(&root),
                black_box(&proof),
            )
            .expect("a generated proof verifies")
        })
    });
}

criterion_group!(benches, merkle_benches);
criterion_main!(benches);
