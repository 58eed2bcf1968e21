//! The devnet through its binary: `up --demo --detach` starts real node processes and runs
//! the demo; every node then agrees on every demo shipment's final state and on the chain,
//! which verifies from the genesis; a small benchmark checks itself; `down` stops every
//! process; a second `up` resumes the same chain on the same ports; a busy port is named;
//! Ctrl-C stops a foreground devnet cleanly; a benchmark with no devnet running starts and
//! stops its own.
//!
//! Every command and wait has a deadline, and a guard kills any node left behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custody_client::verify::{read_genesis, verify_chain};
use custody_client::Client;
use custody_devnet::demo::DemoRecord;
use custody_devnet::layout::Layout;
use custody_devnet::process;
use custody_devnet::runstate::{self, RunState};
use custody_ledger::model::ShipmentId;
use custody_rig::command::Ran;
use serde_json::Value;

/// The tests each run a whole network; on a small machine they take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Deadline of one `up` (with the demo) or `bench` command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the binary with `args` on the test rig, killing it if it runs longer than `within`.
fn run(scratch: &Path, args: &[&str], within: Duration) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custody-devnet"));
    command.args(args);
    custody_rig::command::run(command, scratch, within).expect("custody-devnet ran")
}

/// Runs the binary and requires success.
fn ok(scratch: &Path, args: &[&str]) -> Ran {
    let ran = run(scratch, args, COMMAND_TIMEOUT);
    assert!(ran.status.success(), "{}", describe(&ran, args));
    ran
}

fn describe(ran: &Ran, args: &[&str]) -> String {
    ran.describe("custody-devnet", args)
}

/// Kills, when dropped, every node process a devnet directory's state file names.
struct Guard {
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Ok(Some(state)) = runstate::read(&Layout::new(&self.dir)) else {
            return;
        };
        for node in &state.nodes {
            if node.is_running() {
                let _ = process::signal(node.pid, "KILL");
            }
        }
        if let Some(pid) = state.supervisor.filter(|_| state.supervisor_running()) {
            let _ = process::signal(pid, "KILL");
        }
    }
}

fn state(dir: &Path) -> RunState {
    runstate::read(&Layout::new(dir))
        .expect("state file readable")
        .expect("a state file")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits until the node has committed `height`.
async fn wait_height(client: &Client, height: u64) {
    custody_devnet::submit::wait_height(client, height, Duration::from_secs(60))
        .await
        .expect("the node reaches the height");
}

/// The status each demo shipment must end in, by the suffix of its id.
fn expected_status(id: &str) -> &'static str {
    match id.rsplit('-').next() {
        Some("PAR") | Some("QY") => "delivered",
        Some("QX") => "released",
        Some("LYS") => "returned",
        other => panic!("unknown demo shipment {id} ({other:?})"),
    }
}

/// Every node holds every demo shipment in its final state and the same block at a common
/// height; the chain verifies from the genesis file on two nodes. Returns the common height.
fn check_network(dir: &Path, record: &DemoRecord) -> u64 {
    let state = state(dir);
    let genesis = read_genesis(&dir.join("genesis.json")).expect("genesis");
    runtime().block_on(async {
        let clients: Vec<Client> = state
            .nodes
            .iter()
            .map(|n| Client::new(&n.url()).expect("client"))
            .collect();
        for client in &clients {
            wait_height(client, record.height).await;
            for shipment in &record.shipments {
                let held = client
                    .shipment(&ShipmentId::new(shipment.id.clone()))
                    .await
                    .expect("shipment");
                assert_eq!(
                    held.status.as_str(),
                    expected_status(&shipment.id),
                    "{} at {}",
                    shipment.id,
                    client.base_url()
                );
                assert_eq!(held.event_count, shipment.events, "{}", shipment.id);
            }
        }
        let mut heights = Vec::new();
        for client in &clients {
            heights.push(client.status().await.expect("status").height);
        }
        let common = *heights.iter().min().expect("nodes");
        let mut hashes = Vec::new();
        for client in &clients {
            hashes.push(client.block(common).await.expect("block").hash);
        }
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree at height {common}: {hashes:?}"
        );
        // The auditor's full node and a validator both serve a chain that verifies.
        for name in ["auditor", "seller"] {
            let node = state.nodes.iter().find(|n| n.name == name).expect("node");
            let client = Client::new(&node.url()).expect("client");
            let report = verify_chain(&client, &genesis, |_, _| {})
                .await
                .unwrap_or_else(|e| panic!("the chain of {name} does not verify: {e}"));
            assert!(report.height >= record.height, "{name}: {report:?}");
        }
        verify_chain_with_the_cli(dir, &state, record.height);
        common
    })
}

/// Runs `custody verify chain` against the auditor, as a user would, and requires exit 0 and
/// a report reaching the demo's height. The `custody` binary belongs to another package, so
/// it is found beside this test's own target directory: `cargo test --workspace` (the
/// README's test command) builds it before any test runs. Run alone (`cargo test -p
/// custody-devnet`), the binary may not exist yet; the SDK check above, which is the code the
/// CLI runs, still covers the chain, and this says so.
fn verify_chain_with_the_cli(dir: &Path, state: &RunState, min_height: u64) {
    let exe = std::env::current_exe().expect("test executable");
    let Some(cli) = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile_dir| profile_dir.join("custody"))
        .filter(|cli| cli.exists())
    else {
        eprintln!("the custody CLI is not built; `cargo test --workspace` runs this check");
        return;
    };
    let auditor = state
        .nodes
        .iter()
        .find(|n| n.name == "auditor")
        .expect("auditor");
    let output = Command::new(&cli)
        .args([
            "--node",
            &auditor.url(),
            "--json",
            "verify",
            "chain",
            "--genesis",
        ])
        .arg(dir.join("genesis.json"))
        .output()
        .expect("run custody");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "custody verify chain failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["valid"], true, "{report}");
    assert!(
        report["height"].as_u64().is_some_and(|h| h >= min_height),
        "verified only to {report}"
    );
}

/// Waits until none of the state's node processes runs.
fn assert_stopped(state: &RunState) {
    for node in &state.nodes {
        assert!(
            process::wait_gone(node.pid, Duration::from_secs(10)),
            "node {} (pid {}) still runs",
            node.name,
            node.pid
        );
    }
}

#[test]
fn a_detached_devnet_runs_the_demo_benchmarks_stops_and_resumes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("net");
    let dir_arg = dir.to_str().expect("utf-8 path");
    let _guard = Guard { dir: dir.clone() };

    // Up, with the demo, detached.
    let up = ok(
        scratch.path(),
        &["up", "--dir", dir_arg, "--demo", "--detach"],
    );
    assert!(up.stdout.contains("is up"), "{}", up.stdout);
    assert!(up.stdout.contains("Demo done"), "{}", up.stdout);
    // Issue 12: the carrier's hub posts two tracking scans through its node's EPCIS gateway,
    // and an EPCIS query reads them back.
    assert!(
        up.stdout
            .contains("hub systems posted 2 EPCIS scans to its gateway"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("GET /epcis/events?MATCH_epc="),
        "{}",
        up.stdout
    );
    assert!(up.stdout.contains("genesis.json"), "{}", up.stdout);
    let first = state(&dir);
    assert_eq!(first.nodes.len(), 5);
    assert!(first.supervisor.is_none());
    assert!(first.nodes.iter().all(|n| n.is_running()));
    let record: DemoRecord =
        serde_json::from_slice(&std::fs::read(dir.join("demo.json")).expect("demo.json"))
            .expect("demo record");
    assert_eq!(record.shipments.len(), 4);
    let common = check_network(&dir, &record);

    // A second `up` on a running devnet is refused, naming it.
    let again = run(scratch.path(), &["up", "--dir", dir_arg], COMMAND_TIMEOUT);
    assert!(!again.status.success());
    assert!(again.stderr.contains("already runs"), "{}", again.stderr);

    // A small benchmark against the running devnet checks itself.
    let bench = ok(
        scratch.path(),
        &["bench", "--dir", dir_arg, "--events", "500", "--json"],
    );
    let report: Value = serde_json::from_str(bench.stdout.trim()).expect("one JSON object");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["own_network"], false, "{report}");
    assert_eq!(report["events"], 500);
    assert_eq!(report["committed"], 500, "{report}");
    assert_eq!(
        report["check"]["every_event_committed_once"], true,
        "{report}"
    );
    assert_eq!(report["check"]["heads_agree"], true, "{report}");
    assert_eq!(report["latency_ms"]["count"], 500, "{report}");
    assert!(report["cpu"]["per_node"]
        .as_array()
        .is_some_and(|a| a.len() == 5));
    assert!(report["disk"]["ledger_bytes_per_event"].as_u64() > Some(0));
    let efficiency = &report["efficiency"];
    assert!(
        efficiency["batch_verify_per_s_single_core"].as_u64() > Some(0),
        "{report}"
    );
    assert!(efficiency["efficiency_permille"].is_u64(), "{report}");
    assert!(
        efficiency["cpu_us_per_event_per_node"].as_u64() > Some(0),
        "{report}"
    );
    assert!(efficiency["cpu_us_per_event_by_node"]
        .as_object()
        .is_some_and(|m| m.len() == 5));
    assert!(report["cpu"]["idle_cpu_percent_of_one_core"].is_number());

    // Down stops every node.
    let genesis_bytes = std::fs::read(dir.join("genesis.json")).expect("genesis");
    let key_bytes = std::fs::read(dir.join("keys/seller-acme.pem")).expect("key");
    let down = ok(scratch.path(), &["down", "--dir", dir_arg]);
    assert_eq!(down.stdout.matches("stopped").count(), 5, "{}", down.stdout);
    assert_stopped(&first);
    assert!(!dir.join("state.json").exists());

    // A busy port is named with its node, and nothing starts.
    let broker = first
        .nodes
        .iter()
        .find(|n| n.name == "broker")
        .expect("broker");
    let held = TcpListener::bind(broker.http).expect("hold the broker's port");
    let busy = run(
        scratch.path(),
        &["up", "--dir", dir_arg, "--detach"],
        COMMAND_TIMEOUT,
    );
    assert!(!busy.status.success());
    assert!(
        busy.stderr.contains("`broker`") && busy.stderr.contains(&broker.http.port().to_string()),
        "{}",
        busy.describe("custody-devnet", &["up"])
    );
    assert!(!dir.join("state.json").exists());
    drop(held);

    // Up again resumes the same chain, keys and ports.
    let resumed = ok(scratch.path(), &["up", "--dir", dir_arg, "--detach"]);
    assert!(resumed.stdout.contains("Resuming"), "{}", resumed.stdout);
    assert_eq!(
        std::fs::read(dir.join("genesis.json")).expect("genesis"),
        genesis_bytes
    );
    assert_eq!(
        std::fs::read(dir.join("keys/seller-acme.pem")).expect("key"),
        key_bytes
    );
    let second = state(&dir);
    let addresses = |s: &RunState| {
        s.nodes
            .iter()
            .map(|n| (n.name.clone(), n.http))
            .collect::<Vec<_>>()
    };
    assert_eq!(addresses(&second), addresses(&first));
    let genesis = read_genesis(&dir.join("genesis.json")).expect("genesis");
    runtime().block_on(async {
        for node in &second.nodes {
            let client = Client::new(&node.url()).expect("client");
            let status = client.status().await.expect("status");
            assert_eq!(status.genesis_hash, genesis.hash());
            assert!(status.height > common, "{}: {status:?}", node.name);
        }
    });
    check_network(&dir, &record);
    ok(scratch.path(), &["down", "--dir", dir_arg]);
    assert_stopped(&second);
}

#[test]
fn ctrl_c_stops_a_foreground_devnet_cleanly() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("net");
    let _guard = Guard { dir: dir.clone() };
    let out = scratch.path().join("up.out");
    let mut up = Command::new(env!("CARGO_BIN_EXE_custody-devnet"))
        .args(["up", "--dir", dir.to_str().expect("utf-8")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start up");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("Press Ctrl-C")
    {
        if Instant::now() > deadline || up.try_wait().expect("wait").is_some() {
            let _ = up.kill();
            panic!(
                "the devnet did not come up:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let running = state(&dir);
    assert_eq!(running.supervisor, Some(up.id()));
    assert!(running.nodes.iter().all(|n| n.is_running()));

    process::signal(up.id(), "INT").expect("SIGINT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = up.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = up.kill();
            panic!("up did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(status.success(), "{status}: {text}");
    let nodes_stopped = text
        .lines()
        .filter(|l| l.starts_with("  ") && l.ends_with("stopped cleanly"))
        .count();
    assert_eq!(nodes_stopped, 5, "{text}");
    assert!(text.contains("The devnet stopped cleanly"), "{text}");
    assert_stopped(&running);
    assert!(!dir.join("state.json").exists());
}

#[test]
fn a_benchmark_with_no_devnet_running_starts_and_stops_its_own() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = tempfile::tempdir().expect("tempdir");
    let empty = scratch.path().join("nothing-here");
    let bench = ok(
        scratch.path(),
        &[
            "bench",
            "--dir",
            empty.to_str().expect("utf-8"),
            "--events",
            "300",
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(bench.stdout.trim()).expect("one JSON object");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["own_network"], true, "{report}");
    assert_eq!(report["committed"], 300, "{report}");
    // Its network is gone: no process runs from its directory, which is deleted.
    let network_dir = report["network_dir"]
        .as_str()
        .expect("network dir")
        .to_owned();
    assert!(
        !Path::new(&network_dir).exists(),
        "{network_dir} was not removed"
    );
    let leftovers: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process::is_alive(*pid) && process::cmdline(*pid).contains(&network_dir))
        .map(|pid| format!("{pid}: {}", process::cmdline(pid)))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!empty.exists(), "the benchmark created nothing in --dir");
}
