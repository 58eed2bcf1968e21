//! Event-signature verification, per batch of 1,000 signatures by 10 signers: the strict
//! single check (ed25519-dalek's `verify_strict`) of each, ed25519-dalek 2.2's cofactorless
//! batch (what blocks used before `docs/PROTOCOL.md` §5.3's cofactored rule), and the ledger's
//! cofactored batch.
//!
//! Run with `cargo bench -p custody-ledger --bench signatures`. Figures go into README.md.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use custody_ledger::keys::{verify_batch, KeyCache, Keypair, PublicKey, Signature, SignedMessage};

const SIGNATURES_PER_BATCH: usize = 1_000;
const SIGNERS: usize = 10;

fn items() -> Vec<(PublicKey, Vec<u8>, Signature)> {
    let keys: Vec<Keypair> = (0..SIGNERS)
        .map(|n| Keypair::from_seed([n as u8 + 1; 32]))
        .collect();
    (0..SIGNATURES_PER_BATCH)
        .map(|i| {
            let key = &keys[i % SIGNERS];
            // About the size of a signed event's body.
            let message = format!("{i:0>300}").into_bytes();
            let signature = key.sign(&message);
            (key.public(), message, signature)
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let owned = items();
    let cache = KeyCache::new();
    let borrowed: Vec<SignedMessage<'_>> = owned
        .iter()
        .map(|(key, message, signature)| SignedMessage {
            key,
            message,
            signature,
        })
        .collect();
    let messages: Vec<&[u8]> = owned.iter().map(|(_, m, _)| m.as_slice()).collect();
    let dalek_signatures: Vec<ed25519_dalek::Signature> = owned
        .iter()
        .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0))
        .collect();
    let dalek_keys: Vec<_> = owned
        .iter()
        .map(|(k, _, _)| k.verifying_key().expect("valid key"))
        .collect();

    let mut group = c.benchmark_group("signatures");
    group.throughput(Throughput::Elements(SIGNATURES_PER_BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("strict single, 1000", |b| {
        b.iter(|| {
            for (key, message, signature) in &owned {
                cache.verify(key, message, signature).expect("verifies");
            }
        })
    });
    group.bench_function("dalek cofactorless batch, 1000", |b| {
        b.iter(|| {
            ed25519_dalek::verify_batch(&messages, &dalek_signatures, &dalek_keys)
                .expect("verifies")
        })
    });
    group.bench_function("cofactored batch, 1000", |b| {
        b.iter(|| verify_batch(&borrowed, &cache).expect("verifies"))
    });
    group.bench_function("cofactored single, 1000", |b| {
        b.iter(|| {
            for (key, message, signature) in &owned {
                cache
                    .verify_cofactored(key, message, signature)
                    .expect("verifies");
            }
        })
    });
    group.finish();

    // The same 1,000 signatures checked in batches of a given size: what the admission
    // queue pays per signature when its batches are small (one gossip message at a time)
    // rather than large.
    let mut sizes = c.benchmark_group("cofactored batch size");
    sizes.throughput(Throughput::Elements(SIGNATURES_PER_BATCH as u64));
    sizes.sample_size(10);
    sizes.measurement_time(Duration::from_secs(5));
    for size in [8, 32, 128, 1_000] {
        sizes.bench_function(format!("batches of {size}"), |b| {
            b.iter(|| {
                for chunk in borrowed.chunks(size) {
                    verify_batch(chunk, &cache).expect("verifies");
                }
            })
        });
    }
    sizes.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
