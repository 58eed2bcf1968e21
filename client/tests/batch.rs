//! `POST /v1/events/batch` through the SDK and the CLI, against a node's API served over a
//! real socket (the node's own router and server over a sled store): every event's result
//! comes back in order, and a refused one is named without refusing the others.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use custody_client::{batch_chunks, Client};
use custody_contracts::load::sample_tables;
use custody_contracts::ContractRules;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::EventKind;
use custody_ledger::testkit::{TestNet, GENESIS_TIME};
use custody_ledger::view::{BatchStatus, BATCH_EVENTS_MAX};
use custody_node::api::{app, ApiState};
use custody_node::health::Health;
use custody_node::intake::{Intake, Judge};
use custody_node::mempool::{Mempool, MempoolConfig};
use custody_node::metrics::Metrics;
use custody_sled::SledStore;
use tokio::sync::{broadcast, mpsc, oneshot, Mutex};

/// A node's API over a store holding the reference tables, served until dropped.
struct Node {
    dir: tempfile::TempDir,
    net: TestNet,
    url: String,
    mempool: Arc<Mutex<Mempool>>,
    _stop: oneshot::Sender<()>,
    _outbound: mpsc::Receiver<Vec<u8>>,
}

async fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = TestNet::new();
    let store =
        Arc::new(SledStore::open(dir.path().join("ledger"), net.genesis_hash()).expect("store"));
    let tables: Vec<EncodedEvent> = sample_tables(GENESIS_TIME)
        .into_iter()
        .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
        .collect();
    let built = net
        .commit_with(
            store.as_ref(),
            &ContractRules::default(),
            tables,
            GENESIS_TIME,
        )
        .expect("commit");
    assert_eq!(built.rejected, vec![]);
    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
        count_max: 100,
        size_bytes_max: 1 << 20,
        signer_count_max: 50,
        signer_size_bytes_max: 1 << 20,
    })));
    let (outbound, outbound_rx) = mpsc::channel(100);
    let state_keys: Arc<custody_ledger::keys::KeyCache> = Default::default();
    let state_genesis = Arc::new(net.genesis.clone());
    let state_store = store;
    let state_rules = Arc::new(RwLock::new(built.into_rules()));
    let state_mempool = mempool.clone();
    let state = ApiState {
        intake: Intake::start(Judge {
            store: state_store.clone(),
            genesis: state_genesis.clone(),
            rules: state_rules.clone(),
            mempool: state_mempool.clone(),
            keys: state_keys.clone(),
        })
        .expect("the admission queue starts"),
        keys: state_keys.clone(),
        genesis: state_genesis.clone(),
        store: state_store.clone(),
        rules: state_rules.clone(),
        mempool: state_mempool.clone(),
        committed: broadcast::channel(16).0,
        outbound,
        node_key: net.validator_keys()[0].public(),
        validator: true,
        metrics: Arc::new(Metrics::new()),
        peers: Arc::new(AtomicUsize::new(0)),
        health: Arc::new(Health::new(4, 0, std::time::Instant::now())),
        epcis_gateway: None,
        epcis_subscriptions: Default::default(),
        personal: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(custody_node::http::serve(listener, app(state), async {
        let _ = stopped.await;
    }));
    Node {
        dir,
        net,
        url,
        mempool,
        _stop: stop,
        _outbound: outbound_rx,
    }
}

fn forged(net: &TestNet, shipment: &str) -> EncodedEvent {
    let mut event = net.register(shipment, "CN", "FR").into_event();
    event.signature.0[3] ^= 1;
    EncodedEvent::new(event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sends_a_batch_and_reads_each_events_result_in_order() {
    let node = node().await;
    let events = vec![
        node.net.register("B-1", "CN", "FR"),
        forged(&node.net, "B-2"),
        node.net.register("B-3", "CN", "FR"),
    ];
    let client = Client::new(&node.url).expect("client");
    let outcome = client.submit_batch(&events, false).await.expect("answered");
    let statuses: Vec<BatchStatus> = outcome.results.iter().map(|r| r.status).collect();
    use BatchStatus::*;
    assert_eq!(statuses, vec![Accepted, Refused, Accepted]);
    assert_eq!(
        outcome.results[1].code.as_deref(),
        Some("signature.invalid")
    );
    assert_eq!(outcome.results[1].event_id, Some(events[1].id()));
    assert_eq!(node.mempool.lock().await.len(), 2);
    // Sent again: waiting events are accepted again, nothing is added.
    let outcome = client.submit_batch(&events, false).await.expect("answered");
    assert_eq!(outcome.accepted, 2);
    assert_eq!(node.mempool.lock().await.len(), 2);
}

#[test]
fn batch_chunks_keep_order_and_the_nodes_event_limit() {
    let net = TestNet::new();
    let event = net.register("B-1", "CN", "FR");
    let events = vec![event; 2 * BATCH_EVENTS_MAX + 1];
    let chunks = batch_chunks(&events);
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    assert_eq!(sizes, vec![BATCH_EVENTS_MAX, BATCH_EVENTS_MAX, 1]);
    assert!(batch_chunks(&[]).is_empty());
}

/// Runs the `custody` binary against the node, off the runtime that serves it.
async fn custody(node: &Node, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custody"));
    command.arg("--node").arg(&node.url).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("custody runs"))
        .await
        .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_submits_a_file_of_events_as_a_batch_with_one_line_each() {
    let node = node().await;
    let (good, bad) = (
        node.net.register("B-4", "CN", "FR"),
        forged(&node.net, "B-5"),
    );
    let array = node.dir.path().join("events.json");
    let json = serde_json::to_string(&[good.event(), bad.event()]).expect("json");
    std::fs::write(&array, json).expect("write");
    let output = custody(&node, &["submit", "--file", array.to_str().unwrap()]).await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "a refused event: {text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!("0 {} accepted", good.id())),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("1 {} refused signature.invalid", bad.id())),
        "{text}"
    );

    // JSON lines, all good: exit 0.
    let more = [
        node.net.register("B-6", "CN", "FR"),
        node.net.register("B-7", "CN", "FR"),
    ];
    let lines_file = node.dir.path().join("events.jsonl");
    let text: Vec<String> = more
        .iter()
        .map(|e| serde_json::to_string(e.event()).expect("json"))
        .collect();
    std::fs::write(&lines_file, text.join("\n")).expect("write");
    let output = custody(
        &node,
        &["submit", "--file", lines_file.to_str().unwrap(), "--json"],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed["accepted"], 2);
    assert_eq!(printed["results"][1]["event_id"], more[1].id().to_hex());
    assert_eq!(node.mempool.lock().await.len(), 3);
}
