//! What the benchmark's throughput costs the nodes, and how far it is from the floor.
//!
//! Every node checks every event's signature at least once: the floor of a node's work. So
//! a machine of `cores` cores running `nodes` full replicas commits at most `cores ×
//! batch-verify/s ÷ nodes` events per second however little else a node does: the floor's
//! rate. The efficiency is the committed rate's share of it. Batch verification is measured on one thread of this
//! process, before the load, so that it runs on the same machine in the same state as the
//! run it is compared with.
//!
//! Everything is integer arithmetic: shares are in thousandths (per mille), CPU in whole
//! microseconds or clock ticks.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use custody_ledger::event::EncodedEvent;
use custody_ledger::keys::{verify_batch, KeyCache, SignedMessage};
use custody_ledger::{PublicKey, Signature};

use crate::process;

/// How often the nodes' CPU time is read during the run. The steady window is known only
/// once the run is over, so the readings nearest its ends are picked afterwards; at this
/// interval they are off by at most a tenth of a second.
const CPU_SAMPLE_INTERVAL_MS: u64 = 100;

/// One signature a node checks: the signer's key, the exact signed bytes and the signature.
#[derive(Debug, Clone)]
pub(super) struct SignedBytes {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
}

impl SignedBytes {
    /// What a node checks for `event`.
    pub(super) fn of_event(event: &EncodedEvent) -> SignedBytes {
        SignedBytes {
            key: event.event().signer,
            message: event.signing_message(),
            signature: event.event().signature,
        }
    }
}

/// Batch verification on one thread: how many signatures, and how long it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct VerifyMeasure {
    /// Signatures in batches that verified.
    pub(super) verified: u64,
    /// Signatures in batches that failed; they are not counted in the rate, but the time
    /// spent on them is.
    pub(super) refused: u64,
    /// Time spent verifying.
    pub(super) elapsed_us: u64,
    /// Signatures per batch: the batch asked, or all there were if fewer.
    pub(super) batch_events: u64,
}

impl VerifyMeasure {
    /// Signatures verified per second.
    pub(super) fn per_s(&self) -> u64 {
        self.verified
            .saturating_mul(1_000_000)
            .checked_div(self.elapsed_us)
            .unwrap_or(0)
    }
}

/// Verifies `signed` with `keys::verify_batch` in batches of `batch`, on the calling thread,
/// cycling over them until `budget` has passed or `batches_max` batches were checked.
///
/// One key cache serves the whole measure, as a node keeps one: a network has few signers,
/// so after the first batch no key is parsed again. The signed messages are built before the
/// clock starts; only the signature checks are timed.
pub(super) fn measure_batch_verify(
    signed: &[SignedBytes],
    batch: usize,
    budget: Duration,
    batches_max: usize,
) -> VerifyMeasure {
    let items: Vec<SignedMessage<'_>> = signed
        .iter()
        .map(|s| SignedMessage {
            key: &s.key,
            message: &s.message,
            signature: &s.signature,
        })
        .collect();
    let cache = KeyCache::new();
    let mut measure = VerifyMeasure {
        batch_events: batch.max(1).min(items.len()) as u64,
        ..VerifyMeasure::default()
    };
    let start = Instant::now();
    for chunk in items.chunks(batch.max(1)).cycle().take(batches_max) {
        let size = chunk.len() as u64;
        match verify_batch(chunk, &cache) {
            Ok(()) => measure.verified += size,
            Err(_) => measure.refused += size,
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    measure.elapsed_us = micros(start.elapsed());
    measure
}

/// The nodes' CPU time at one moment of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CpuSample {
    /// Microseconds since the run's start.
    pub(super) at_us: u64,
    /// Each node's user plus system time in clock ticks; `None` if it could not be read.
    pub(super) ticks: Vec<Option<u64>>,
}

fn sample(pids: &[u32], start: Instant) -> CpuSample {
    CpuSample {
        at_us: micros(start.elapsed()),
        ticks: pids.iter().map(|pid| process::cpu_ticks(*pid)).collect(),
    }
}

/// Reads the nodes' CPU time every [`CPU_SAMPLE_INTERVAL_MS`] on a thread of its own (so a
/// loaded async runtime does not delay the readings), from when it starts to when it is
/// finished or dropped.
#[derive(Debug)]
pub(super) struct CpuSampler {
    /// Dropping it wakes the thread at once for its last reading.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Vec<CpuSample>>,
}

impl CpuSampler {
    /// Takes a first reading now, then one per interval; times count from `start`.
    pub(super) fn start(pids: Vec<u32>, start: Instant) -> CpuSampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let interval = Duration::from_millis(CPU_SAMPLE_INTERVAL_MS);
        let thread = std::thread::spawn(move || {
            let mut samples = vec![sample(&pids, start)];
            loop {
                let last = !matches!(
                    stopped.recv_timeout(interval),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                samples.push(sample(&pids, start));
                if last {
                    return samples;
                }
            }
        });
        CpuSampler { stop, thread }
    }

    /// Stops the readings and returns them all, the last one taken now.
    pub(super) fn finish(self) -> Vec<CpuSample> {
        drop(self.stop);
        self.thread.join().unwrap_or_default()
    }
}

/// The readings that bracket `from_us..=to_us`: the last taken at or before its start and
/// the first taken at or after its end (the first and last readings when none is).
fn bracket(samples: &[CpuSample], from_us: u64, to_us: u64) -> Option<(&CpuSample, &CpuSample)> {
    let first = samples
        .iter()
        .rev()
        .find(|s| s.at_us <= from_us)
        .or(samples.first())?;
    let last = samples
        .iter()
        .find(|s| s.at_us >= to_us)
        .or(samples.last())?;
    Some((first, last))
}

/// CPU microseconds per event: `ticks` of CPU time over `events`; `None` for no event.
pub(super) fn cpu_us_per_event(ticks: u64, ticks_per_second: u64, events: u64) -> Option<u64> {
    ticks
        .saturating_mul(1_000_000)
        .checked_div(ticks_per_second.max(1).saturating_mul(events))
}

/// What the nodes' CPU cost per committed event over the readings bracketing the steady
/// window: their CPU time between those readings over the commits between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WindowCost {
    /// The readings' times, microseconds since the run's start.
    pub(super) from_us: u64,
    pub(super) to_us: u64,
    /// Commits answered between the two readings.
    pub(super) events: u64,
    /// Each node's CPU microseconds per event; `None` for a node that could not be read.
    pub(super) by_node: Vec<Option<u64>>,
    /// All nodes' CPU microseconds per event, over the nodes read.
    pub(super) per_node: Option<u64>,
}

/// The CPU cost over the readings bracketing `window` (microseconds since the start), with
/// `commit_times` the times commits were answered.
pub(super) fn window_cost(
    samples: &[CpuSample],
    commit_times: &[u64],
    window: (u64, u64),
    ticks_per_second: u64,
) -> Option<WindowCost> {
    let (first, last) = bracket(samples, window.0, window.1)?;
    let span = first.at_us..=last.at_us;
    let events = commit_times.iter().filter(|t| span.contains(t)).count() as u64;
    let ticks: Vec<Option<u64>> = first
        .ticks
        .iter()
        .zip(&last.ticks)
        .map(|(before, after)| Some((*after)?.saturating_sub((*before)?)))
        .collect();
    let read: Vec<u64> = ticks.iter().flatten().copied().collect();
    let per_node = cpu_us_per_event(read.iter().sum(), ticks_per_second, events)
        .and_then(|all| all.checked_div(read.len() as u64));
    Some(WindowCost {
        from_us: first.at_us,
        to_us: last.at_us,
        events,
        by_node: ticks
            .iter()
            .map(|t| cpu_us_per_event((*t)?, ticks_per_second, events))
            .collect(),
        per_node,
    })
}

/// The floor's rate: `cores × verify_per_s ÷ nodes` events per second.
pub(super) fn floor_events_per_s(cores: u64, verify_per_s: u64, nodes: u64) -> u64 {
    cores
        .saturating_mul(verify_per_s)
        .checked_div(nodes)
        .unwrap_or(0)
}

/// The committed rate's share of the floor's rate, in thousandths: `committed × nodes ×
/// 1000 ÷ (cores × verify_per_s)`, computed whole so the floor's rounding does not count;
/// `None` when nothing was verified.
pub(super) fn efficiency_permille(
    committed_per_s: u64,
    cores: u64,
    verify_per_s: u64,
    nodes: u64,
) -> Option<u64> {
    committed_per_s
        .saturating_mul(nodes)
        .saturating_mul(1_000)
        .checked_div(cores.saturating_mul(verify_per_s))
}

/// Thousandths as a decimal: `50` → `0.050`.
pub(super) fn thousandths(x: u64) -> String {
    format!("{}.{:03}", x / 1_000, x % 1_000)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::Keypair;

    /// `count` messages of event size, signed by a few keys, as a workload's are.
    fn signed(count: usize) -> Vec<SignedBytes> {
        let keys: Vec<Keypair> = (1..=3u8).map(|n| Keypair::from_seed([n; 32])).collect();
        (0..count)
            .map(|i| {
                let key = &keys[i % keys.len()];
                let message = format!("event {i} {}", "x".repeat(600)).into_bytes();
                SignedBytes {
                    key: key.public(),
                    signature: key.sign(&message),
                    message,
                }
            })
            .collect()
    }

    #[test]
    fn batch_verification_counts_only_batches_that_verify() {
        let good = measure_batch_verify(&signed(8), 4, Duration::from_secs(60), 6);
        assert_eq!((good.verified, good.refused, good.batch_events), (24, 0, 4));
        assert!(good.elapsed_us > 0);
        assert!(good.per_s() > 0);

        // One signature of the second batch is over other bytes: that batch never counts.
        let mut tampered = signed(8);
        tampered[5].message[0] ^= 1;
        let bad = measure_batch_verify(&tampered, 4, Duration::from_secs(60), 6);
        assert_eq!((bad.verified, bad.refused), (12, 12));

        let none = measure_batch_verify(&tampered[4..], 4, Duration::from_secs(60), 3);
        assert_eq!((none.verified, none.refused, none.per_s()), (0, 12, 0));
    }

    #[test]
    fn batch_verification_stops_at_its_budget() {
        let measure = measure_batch_verify(&signed(3), 4, Duration::ZERO, 1_000);
        assert_eq!(measure.verified, 3, "one batch, then the budget is spent");
        assert_eq!(
            measure.batch_events, 3,
            "a batch holds at most what there is"
        );
        assert!(measure.per_s() > 0);
        let empty = measure_batch_verify(&[], 4, Duration::from_secs(60), 1_000);
        assert_eq!(
            empty,
            VerifyMeasure {
                elapsed_us: empty.elapsed_us,
                ..VerifyMeasure::default()
            }
        );
    }

    fn at(at_us: u64, ticks: &[Option<u64>]) -> CpuSample {
        CpuSample {
            at_us,
            ticks: ticks.to_vec(),
        }
    }

    #[test]
    fn the_cpu_window_is_the_readings_around_the_steady_window() {
        let samples = [
            at(0, &[Some(0), Some(0)]),
            at(100, &[Some(10), Some(20)]),
            at(200, &[Some(30), Some(60)]),
            at(300, &[Some(50), Some(100)]),
            at(400, &[Some(60), Some(120)]),
        ];
        // Commits at 150..=290 lie between the readings at 100 and 300.
        let commits = [50, 150, 160, 250, 290, 350];
        let cost = window_cost(&samples, &commits, (150, 290), 100).expect("readings");
        assert_eq!((cost.from_us, cost.to_us, cost.events), (100, 300, 4));
        // 40 and 80 ticks of 10 ms over 4 events: 100,000 and 200,000 µs per event.
        assert_eq!(cost.by_node, vec![Some(100_000), Some(200_000)]);
        assert_eq!(cost.per_node, Some(150_000));

        // A window past the readings takes the nearest; a node not read is left out.
        let gone = [at(0, &[Some(0), Some(0)]), at(100, &[Some(10), None])];
        let cost = window_cost(&gone, &[20, 40], (10, 500), 100).expect("readings");
        assert_eq!((cost.from_us, cost.to_us, cost.events), (0, 100, 2));
        assert_eq!(cost.by_node, vec![Some(50_000), None]);
        assert_eq!(cost.per_node, Some(50_000));
        assert_eq!(window_cost(&[], &[1], (0, 1), 100), None);
        assert_eq!(cpu_us_per_event(5, 100, 0), None);
    }

    #[test]
    fn efficiency_is_the_share_of_the_floor_in_thousandths() {
        // 2 cores verifying 40,000 a second each, 5 nodes: a floor of 16,000 events/s.
        assert_eq!(floor_events_per_s(2, 40_000, 5), 16_000);
        assert_eq!(efficiency_permille(800, 2, 40_000, 5), Some(50));
        assert_eq!(efficiency_permille(16_000, 2, 40_000, 5), Some(1_000));
        assert_eq!(efficiency_permille(800, 2, 0, 5), None);
        assert_eq!(floor_events_per_s(2, 40_000, 0), 0);
        assert_eq!(thousandths(50), "0.050");
        assert_eq!(thousandths(1_234), "1.234");
    }

    #[test]
    fn the_sampler_reads_this_process_until_finished() {
        let sampler = CpuSampler::start(vec![std::process::id()], Instant::now());
        std::thread::sleep(Duration::from_millis(3 * CPU_SAMPLE_INTERVAL_MS));
        let samples = sampler.finish();
        assert!(samples.len() >= 2, "{samples:?}");
        assert!(samples.windows(2).all(|w| w[0].at_us <= w[1].at_us));
        assert!(samples.iter().all(|s| s.ticks[0].is_some()));
    }
}
