//! Whole networks of real `custody-node` processes on loopback: validators commit events
//! submitted over HTTP, agree on every block, survive a crash, stop when too few remain, and
//! refuse invalid events and strangers.
//!
//! Every test is bounded: each wait has a deadline, and nodes are killed when the test ends.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use custody_contracts::{load, ContractRules};
use custody_ledger::event::EncodedEvent;
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::Keypair;
use custody_ledger::model::EventKind;
use custody_ledger::store::{SledStore, Store};
use custody_ledger::testkit::TestNet;
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use custody_node::config::{BlockLimitsConfig, Config, HttpConfig, MempoolLimits, NetworkConfig};
use custody_node::keys::{peer_id, write_key};

/// A free loopback port, found by binding port 0 and releasing it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One node's files and ports.
struct NodeSpec {
    name: String,
    key: Keypair,
    consensus_port: u16,
    gossip_port: u16,
    dir: PathBuf,
}

/// A running node process.
struct NodeProc {
    child: Child,
    http: SocketAddr,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A network under test.
struct Network {
    _dir: tempfile::TempDir,
    net: TestNet,
    genesis: Genesis,
    specs: Vec<NodeSpec>,
    nodes: Vec<Option<NodeProc>>,
}

impl Network {
    /// Four validators (the test network's) and, if `auditor`, a full node of the auditor.
    fn new(auditor: bool) -> Network {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = TestNet::new();
        let mut genesis = net.genesis.clone();
        let mut specs = Vec::new();
        let validators = net.validator_keys();
        let names = ["seller", "carrier", "broker", "customs"];
        for (i, key) in validators.iter().enumerate() {
            specs.push(NodeSpec {
                name: names[i].into(),
                key: Keypair::from_signing_key(key.signing_key().clone()),
                consensus_port: free_port(),
                gossip_port: free_port(),
                dir: dir.path().join(names[i]),
            });
        }
        if auditor {
            let key = Keypair::from_seed([0xAD; 32]);
            let member = genesis
                .members
                .iter_mut()
                .find(|m| m.id.as_str() == "auditor-ivy")
                .expect("auditor");
            member.node_key = Some(key.public());
            specs.push(NodeSpec {
                name: "auditor".into(),
                key,
                consensus_port: free_port(),
                gossip_port: free_port(),
                dir: dir.path().join("auditor"),
            });
        }
        genesis.validate().expect("valid genesis");
        std::fs::write(
            dir.path().join("genesis.json"),
            serde_json::to_string_pretty(&genesis).expect("json"),
        )
        .expect("write genesis");
        let count = specs.len();
        let network = Network {
            _dir: dir,
            net,
            genesis,
            specs,
            nodes: (0..count).map(|_| None).collect(),
        };
        for i in 0..count {
            network.write_config(i);
        }
        network
    }

    fn addr(port: u16, key: &Keypair) -> String {
        format!(
            "/ip4/127.0.0.1/tcp/{port}/p2p/{}",
            peer_id(&key.public()).expect("peer id")
        )
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.specs[i].dir.join("node.toml")
    }

    fn write_config(&self, i: usize) {
        let spec = &self.specs[i];
        std::fs::create_dir_all(&spec.dir).expect("mkdir");
        write_key(&spec.dir.join("node.pem"), &spec.key).expect("key");
        let others = |port: fn(&NodeSpec) -> u16| -> Vec<String> {
            self.specs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| Network::addr(port(s), &s.key))
                .collect()
        };
        let config = Config {
            moniker: spec.name.clone(),
            data_dir: spec.dir.join("data"),
            key_file: spec.dir.join("node.pem"),
            genesis_file: self._dir.path().join("genesis.json"),
            consensus: NetworkConfig {
                listen: format!("/ip4/127.0.0.1/tcp/{}", spec.consensus_port),
                peers: others(|s| s.consensus_port),
            },
            gossip: NetworkConfig {
                listen: format!("/ip4/127.0.0.1/tcp/{}", spec.gossip_port),
                peers: others(|s| s.gossip_port),
            },
            http: HttpConfig {
                listen: "127.0.0.1:0".parse().expect("addr"),
            },
            mempool: MempoolLimits::default(),
            block: BlockLimitsConfig::default(),
        };
        std::fs::write(self.config_path(i), config.to_toml()).expect("config");
    }

    /// Starts node `i` and waits for it to print its HTTP address.
    fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_custody-node"))
            .arg("--config")
            .arg(self.config_path(i))
            .env("RUST_LOG", "warn,custody_node=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                self.specs[i].dir.join("node.log"),
            )?))
            .spawn()
            .context("spawning custody-node")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the node did not start in 60 s")?;
        let http = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .ok_or_else(|| anyhow!("unexpected first line {line:?}"))?
            .parse()?;
        self.nodes[i] = Some(NodeProc { child, http });
        Ok(())
    }

    /// Prints the end of every node's log, to explain a failure.
    fn dump_logs(&self) {
        for spec in &self.specs {
            let log = std::fs::read_to_string(spec.dir.join("node.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("--- {} ---", spec.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }

    fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.specs.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// SIGKILL.
    fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// SIGTERM, and the exit status.
    fn terminate(&mut self, i: usize) -> anyhow::Result<std::process::ExitStatus> {
        let mut node = self.nodes[i]
            .take()
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        let pid = node.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = node.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("node {i} did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn http(&self, i: usize) -> SocketAddr {
        self.nodes[i].as_ref().expect("running").http
    }

    fn status(&self, i: usize) -> anyhow::Result<serde_json::Value> {
        let (code, body) = http(self.http(i), "GET", "/v1/status", None)?;
        if code != 200 {
            bail!("status {code}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    fn height(&self, i: usize) -> u64 {
        self.status(i)
            .ok()
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    fn submit(&self, i: usize, event: &EncodedEvent, wait: bool) -> anyhow::Result<(u16, String)> {
        let body = serde_json::to_string(&event.event)?;
        let path = if wait {
            "/v1/events?wait=commit"
        } else {
            "/v1/events"
        };
        http(self.http(i), "POST", path, Some(&body))
    }

    /// Waits until every running node reports a log of at least `log_size` events.
    fn wait_log_size(&self, log_size: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let sizes: Vec<u64> = (0..self.specs.len())
                .filter(|i| self.nodes[*i].is_some())
                .map(|i| {
                    self.status(i)
                        .ok()
                        .and_then(|s| s["log_size"].as_u64())
                        .unwrap_or(0)
                })
                .collect();
            if sizes.iter().all(|s| *s >= log_size) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.dump_logs();
                bail!("log sizes {sizes:?} did not reach {log_size} in {within:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Publishes the sample reference data (needed to register shipments) and waits for it.
    fn publish_reference_data(&self) -> anyhow::Result<()> {
        for table in load::sample_tables(Timestamp(0)) {
            let event = self
                .net
                .sign("customs-qx", EventKind::ReferenceDataPublished(table));
            let (code, body) = self.submit(0, &event, true)?;
            if code != 200 {
                bail!("reference data not committed: {code} {body}");
            }
        }
        Ok(())
    }

    /// Stops every node and compares their stores block by block; returns the head height.
    fn stop_and_compare(&mut self) -> anyhow::Result<u64> {
        for i in 0..self.specs.len() {
            if self.nodes[i].is_some() {
                let status = self.terminate(i)?;
                if !status.success() {
                    bail!("node {i} exited with {status}");
                }
            }
        }
        let stores: Vec<SledStore> = self
            .specs
            .iter()
            .map(|s| SledStore::open(s.dir.join("data").join("ledger"), self.genesis.hash()))
            .collect::<Result<_, _>>()?;
        let heads: Vec<u64> = stores
            .iter()
            .map(|s| s.head().ok().flatten().map_or(0, |h| h.height))
            .collect();
        let height = *heads.iter().min().expect("nodes");
        for h in 1..=height {
            let hashes: Vec<_> = stores
                .iter()
                .map(|s| s.header(h).ok().flatten().map(|hd| hd.hash()))
                .collect();
            if hashes.windows(2).any(|w| w[0] != w[1]) {
                bail!("nodes disagree at height {h}: {hashes:?}");
            }
        }
        for store in &stores {
            verify_chain(store, &self.genesis, ContractRules::default(), |_, _| {})
                .map_err(|e| anyhow!("verification failed: {e}"))?;
        }
        Ok(height)
    }
}

/// A minimal HTTP/1.1 client over a loopback socket, enough for JSON requests.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(40)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad response {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // Chunked bodies: drop the chunk-size lines, which JSON never starts with.
    let body = if response
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.lines()
            .filter(|l| !l.chars().all(|c| c.is_ascii_hexdigit()) || l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        body
    };
    Ok((code, body))
}

fn registrations(net: &TestNet, count: usize, prefix: &str) -> Vec<EncodedEvent> {
    (0..count)
        .map(|i| net.register(&format!("{prefix}-{i}"), "CN", "FR"))
        .collect()
}

#[test]
fn four_validators_commit_events_submitted_to_all_of_them() -> anyhow::Result<()> {
    let mut network = Network::new(false);
    network.start_all()?;
    network.publish_reference_data()?;
    let events = registrations(&network.net, 1_000, "RR");
    for (i, event) in events.iter().enumerate() {
        let (code, body) = network.submit(i % 4, event, false)?;
        if code != 202 {
            bail!("event {i} refused: {code} {body}");
        }
    }
    network.wait_log_size(3 + 1_000, Duration::from_secs(120))?;
    let height = network.stop_and_compare()?;
    assert!(height >= 2);
    // Every event exactly once.
    let store = SledStore::open(
        network.specs[0].dir.join("data").join("ledger"),
        network.genesis.hash(),
    )?;
    for event in &events {
        assert!(store.contains_event(&event.id)?, "event {} lost", event.id);
    }
    assert_eq!(store.head()?.map(|h| h.log_size), Some(1_003));
    Ok(())
}

#[test]
fn invalid_events_are_rejected_where_they_are_sent_and_appear_nowhere() -> anyhow::Result<()> {
    let mut network = Network::new(false);
    network.start_all()?;
    network.publish_reference_data()?;
    let mut forged = network.net.register("BAD-SIG", "CN", "FR");
    forged.event.signature.0[10] ^= 1;
    let (code, body) = network.submit(1, &forged, false)?;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("signature.invalid"), "{body}");
    let mut bad_total = custody_ledger::testkit::registration("BAD-TOTAL", "CN", "FR");
    bad_total.invoice.total_minor += 1;
    let bad_total = network
        .net
        .sign("seller-acme", EventKind::ShipmentRegistered(bad_total));
    let (code, body) = network.submit(2, &bad_total, false)?;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("invoice.total_mismatch"), "{body}");
    let good = network.net.register("GOOD-1", "CN", "FR");
    let (code, body) = network.submit(3, &good, true)?;
    assert_eq!(code, 200, "{body}");
    network.wait_log_size(4, Duration::from_secs(60))?;
    network.stop_and_compare()?;
    for spec in &network.specs {
        let store = SledStore::open(spec.dir.join("data").join("ledger"), network.genesis.hash())?;
        assert!(!store.contains_event(&forged.id)? && !store.contains_event(&bad_total.id)?);
        assert!(store.contains_event(&good.id)?);
    }
    Ok(())
}

#[test]
fn a_killed_validator_catches_up_after_restart() -> anyhow::Result<()> {
    let mut network = Network::new(false);
    network.start_all()?;
    network.publish_reference_data()?;
    network.kill(3);
    let events = registrations(&network.net, 60, "KILL");
    for (i, event) in events.iter().enumerate() {
        let (code, body) = network.submit(i % 3, event, false)?;
        if code != 202 {
            bail!("event {i} refused: {code} {body}");
        }
    }
    network.wait_log_size(63, Duration::from_secs(60))?;
    network.start(3)?;
    let target = network.height(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while network.height(3) < target {
        if Instant::now() > deadline {
            bail!(
                "the restarted node stayed at {} below {target}",
                network.height(3)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    network.stop_and_compare()?;
    Ok(())
}

#[test]
fn with_two_of_four_stopped_nothing_commits_and_nothing_is_lost() -> anyhow::Result<()> {
    let mut network = Network::new(false);
    network.start_all()?;
    network.publish_reference_data()?;
    network.terminate(2)?;
    network.terminate(3)?;
    // A height already decided by all four may still land; after that, nothing moves.
    std::thread::sleep(Duration::from_secs(2));
    let before = network.height(0);
    let event = network.net.register("STALLED-1", "CN", "FR");
    let (code, body) = network.submit(0, &event, false)?;
    assert_eq!(code, 202, "{body}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        network.height(0),
        before,
        "two of four validators cannot commit"
    );
    assert_eq!(network.height(1), before);
    assert_eq!(
        network.status(0)?["log_size"].as_u64(),
        Some(3),
        "the event waits"
    );
    network.start(2)?;
    network.start(3)?;
    network.wait_log_size(4, Duration::from_secs(90))?;
    network.stop_and_compare()?;
    Ok(())
}

#[test]
fn a_stranger_cannot_join_and_an_auditor_follows() -> anyhow::Result<()> {
    let mut network = Network::new(true);
    network.start_all()?;
    network.publish_reference_data()?;
    let event = network.net.register("AUDITED-1", "CN", "FR");
    let (code, body) = network.submit(1, &event, true)?;
    assert_eq!(code, 200, "{body}");
    network.wait_log_size(4, Duration::from_secs(60))?;
    // The auditor's node (index 4) follows through sync and its chain verifies.
    let height = network.stop_and_compare()?;
    assert!(height >= 4);

    // A node whose key is not in genesis cannot start: it refuses to run as a stranger.
    let stranger = Keypair::from_seed([0x5E; 32]);
    let path = network.specs[0].dir.join("stranger.pem");
    write_key(&path, &stranger)?;
    let mut config: Config = Config::load(&network.config_path(0))?;
    config.key_file = path;
    config.data_dir = network.specs[0].dir.join("stranger-data");
    let config_path = network.specs[0].dir.join("stranger.toml");
    std::fs::write(&config_path, config.to_toml())?;
    let output = Command::new(env!("CARGO_BIN_EXE_custody-node"))
        .arg("--config")
        .arg(&config_path)
        .output()?;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a node key in genesis"));

    // Nor will a node take a consensus peer that is not a genesis node key.
    let mut config: Config = Config::load(&network.config_path(0))?;
    config.consensus.peers = vec![Network::addr(free_port(), &stranger)];
    config.data_dir = network.specs[0].dir.join("stranger-peer-data");
    std::fs::write(&config_path, config.to_toml())?;
    let output = Command::new(env!("CARGO_BIN_EXE_custody-node"))
        .arg("--config")
        .arg(&config_path)
        .output()?;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("genesis node key"));
    Ok(())
}
