//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Counters and histograms are updated where things happen (a commit, a refused event, an
//! answered request); gauges that mirror state (height, mempool size, peers) are read when
//! scraped, so they cannot go stale.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label of refused events: the stable rejection code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CodeLabel {
    /// The code, such as `invoice.total_mismatch`.
    pub code: String,
}

/// Label of store writes: the ledger tree written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TreeLabel {
    /// The tree's name on disk, such as `events`.
    pub tree: String,
}

/// Labels of HTTP requests: the route template and the status class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route, such as `/v1/events/{id}` (`unmatched` for no route), so that ids in
    /// paths cannot blow up the label set.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// Every metric of a node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Head height.
    pub height: Gauge,
    /// Events in the log.
    pub log_size: Gauge,
    /// Events committed since this process started.
    pub events_committed: Counter,
    /// Events waiting in the mempool.
    pub mempool_size: Gauge,
    /// Connected gossip peers.
    pub peers: Gauge,
    /// Events refused at this node, by code.
    pub rejected: Family<CodeLabel, Counter>,
    /// HTTP request latency in seconds.
    pub http_latency: Family<RequestLabels, Histogram>,
    /// sled inserts and removals committed since the node started, by tree: what the ledger
    /// costs the database per event (issue 17).
    pub store_writes: Family<TreeLabel, Gauge>,
    /// Encoding is not reentrant on one registry.
    encode_lock: Mutex<()>,
}

/// Latency buckets in seconds, from 1 ms to the commit wait's 20 s.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 20.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under the `custody` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("custody");
        let height = Gauge::default();
        let log_size = Gauge::default();
        let events_committed = Counter::default();
        let mempool_size = Gauge::default();
        let peers = Gauge::default();
        let rejected = Family::<CodeLabel, Counter>::default();
        let http_latency =
            Family::<RequestLabels, Histogram>::new_with_constructor(|| -> Histogram {
                Histogram::new(LATENCY_BUCKETS_S)
            });
        registry.register("height", "Head block height", height.clone());
        registry.register("log_size_events", "Events in the log", log_size.clone());
        registry.register(
            "events_committed",
            "Events committed since the node started",
            events_committed.clone(),
        );
        registry.register(
            "mempool_size_events",
            "Events waiting in the mempool",
            mempool_size.clone(),
        );
        registry.register("peers", "Connected gossip peers", peers.clone());
        registry.register(
            "events_rejected",
            "Events refused by this node, by rejection code",
            rejected.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_latency.clone(),
        );
        let store_writes = Family::<TreeLabel, Gauge>::default();
        registry.register(
            "store_writes",
            "Store inserts and removals committed since the node started, by tree",
            store_writes.clone(),
        );
        Metrics {
            registry,
            height,
            log_size,
            events_committed,
            mempool_size,
            peers,
            rejected,
            http_latency,
            store_writes,
            encode_lock: Mutex::new(()),
        }
    }

    /// Counts a refused event.
    pub fn reject(&self, code: &str) {
        self.rejected
            .get_or_create(&CodeLabel { code: code.into() })
            .inc();
    }

    /// Mirrors the store's write counts, in [`custody_ledger::store::Tree::ALL`] order.
    pub fn set_store_writes(&self, counts: [u64; custody_ledger::store::Tree::ALL.len()]) {
        for (tree, count) in custody_ledger::store::Tree::ALL.iter().zip(counts) {
            let label = TreeLabel {
                tree: tree.name().into(),
            };
            self.store_writes
                .get_or_create(&label)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let _guard = self.encode_lock.lock().expect("metrics lock");
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_names_labels_and_values() {
        let metrics = Metrics::new();
        metrics.height.set(7);
        metrics.reject("invoice.total_mismatch");
        metrics.reject("invoice.total_mismatch");
        metrics
            .http_latency
            .get_or_create(&RequestLabels {
                route: "/v1/status".into(),
                method: "GET".into(),
                status: 200,
            })
            .observe(0.003);
        metrics.set_store_writes([1, 2, 3, 4, 5, 6, 7]);
        let text = metrics.render();
        assert!(
            text.contains("custody_store_writes{tree=\"events\"} 3"),
            "{text}"
        );
        assert!(text.contains("custody_height 7"), "{text}");
        assert!(
            text.contains("custody_events_rejected_total{code=\"invoice.total_mismatch\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("custody_http_request_duration_seconds_count{route=\"/v1/status\",method=\"GET\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
