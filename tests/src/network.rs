//! A network under test: real node processes, their files, and the proxies between them.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use custody_contracts::ContractRules;
use custody_devnet::scenario::{self, Cast, Part};
use custody_ledger::event::EncodedEvent;
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::Keypair;
use custody_ledger::store::Store;
use custody_ledger::testkit::TestNet;
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use custody_node::config::Config;
use custody_node::keys::{peer_id, write_key};
use custody_sled::SledStore;

use crate::connectivity::{Connectivity, Timeline};
use crate::http::{self, Response};
use crate::proxy::{LinkMode, Proxy};
use crate::slots::Slot;
use crate::wait::wait_until;

/// How long a node may take to print its ready line.
const READY_TIMEOUT_MS: u64 = 60_000;

/// How long a node may take to stop after SIGTERM.
const TERMINATE_TIMEOUT_MS: u64 = 30_000;

/// Attempts to start a node whose consensus port turned out to be taken.
const START_ATTEMPTS_MAX: u32 = 3;

/// How long every node gets to commit the reference data that one node committed.
const REFERENCE_WAIT_MS: u64 = 60_000;

/// The log filter of a node unless `CUSTODY_TEST_LOG` says otherwise. `committed` lines
/// (info, from the consensus host) are what [`Network::commits`] reads.
const LOG_FILTER: &str = "warn,custody_node=info";

/// The program a node runs as.
#[derive(Debug, Clone)]
pub struct Program {
    path: PathBuf,
    /// Arguments before `--config FILE`.
    args: Vec<String>,
}

impl Program {
    /// A binary with the devnet's command line (`custody-rig-node`, `custody-devnet`): runs
    /// `PATH node --exit-with-parent --config FILE`, so a node never outlives the test.
    pub fn devnet(path: impl Into<PathBuf>) -> Program {
        Program {
            path: path.into(),
            args: vec!["node".into(), "--exit-with-parent".into()],
        }
    }

    /// The `custody-node` binary: `PATH --config FILE`.
    pub fn custody_node(path: impl Into<PathBuf>) -> Program {
        Program {
            path: path.into(),
            args: Vec::new(),
        }
    }
}

/// The three networks between nodes, each through its own proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Net {
    /// Malachite's consensus network.
    Consensus,
    /// Event gossip.
    Gossip,
    /// The HTTP API, as `[personal] peers` reach it.
    Http,
}

impl Net {
    const ALL: [Net; 3] = [Net::Consensus, Net::Gossip, Net::Http];
}

/// One node's identity and files.
#[derive(Debug)]
struct NodeSpec {
    name: String,
    key: Keypair,
    validator: bool,
    dir: PathBuf,
}

/// A running node process.
#[derive(Debug)]
struct NodeProc {
    child: Child,
    http: SocketAddr,
    gossip: SocketAddr,
    consensus: SocketAddr,
    paused: bool,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        // SIGKILL works on a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Configure = Box<dyn Fn(usize, &mut Config) + Send>;

/// Builds a [`Network`].
pub struct NetworkBuilder {
    program: Program,
    testnet: Option<TestNet>,
    auditor: bool,
    personal_peers: bool,
    configure: Option<Configure>,
    start: bool,
}

impl std::fmt::Debug for NetworkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkBuilder")
            .field("program", &self.program)
            .field("auditor", &self.auditor)
            .field("personal_peers", &self.personal_peers)
            .finish_non_exhaustive()
    }
}

impl NetworkBuilder {
    /// The test network's genesis and validator keys (the default is `TestNet::new()`).
    pub fn testnet(mut self, testnet: TestNet) -> NetworkBuilder {
        self.testnet = Some(testnet);
        self
    }

    /// Adds a full node of the auditor (`auditor-ivy`), after the four validators.
    pub fn auditor(mut self, auditor: bool) -> NetworkBuilder {
        self.auditor = auditor;
        self
    }

    /// Names every other node's HTTP API (through the rig's proxies) in `[personal] peers`.
    pub fn personal_peers(mut self, personal_peers: bool) -> NetworkBuilder {
        self.personal_peers = personal_peers;
        self
    }

    /// Edits node `i`'s configuration before each start (limits, faults).
    pub fn configure(mut self, configure: impl Fn(usize, &mut Config) + Send + 'static) -> Self {
        self.configure = Some(Box::new(configure));
        self
    }

    /// Writes the files but starts no node (the test starts them with [`Network::start`]).
    pub fn stopped(mut self) -> NetworkBuilder {
        self.start = false;
        self
    }

    /// Creates the files, the proxies, and (unless [`NetworkBuilder::stopped`]) starts every
    /// node, returning once each has printed its ready line.
    pub fn start(self) -> anyhow::Result<Network> {
        let slot = Slot::take();
        let dir = tempfile::Builder::new().prefix("custody-rig-").tempdir()?;
        let testnet = self.testnet.unwrap_or_default();
        let mut genesis = testnet.genesis.clone();
        let names = ["seller", "carrier", "broker", "customs"];
        let mut specs: Vec<NodeSpec> = testnet
            .validator_keys()
            .iter()
            .enumerate()
            .map(|(i, key)| NodeSpec {
                name: names
                    .get(i)
                    .map_or(format!("validator-{i}"), |n| (*n).into()),
                key: Keypair::from_signing_key(key.signing_key().clone()),
                validator: true,
                dir: dir
                    .path()
                    .join(names.get(i).copied().unwrap_or("validator")),
            })
            .collect();
        if self.auditor {
            let key = Keypair::from_seed([0xAD; 32]);
            let member = genesis
                .members
                .iter_mut()
                .find(|m| m.id.as_str() == "auditor-ivy")
                .ok_or_else(|| anyhow!("the test genesis has no auditor-ivy"))?;
            member.node_key = Some(key.public());
            specs.push(NodeSpec {
                name: "auditor".into(),
                key,
                validator: false,
                dir: dir.path().join("auditor"),
            });
        }
        genesis.validate().map_err(|e| anyhow!("genesis: {e}"))?;
        let genesis_file = dir.path().join("genesis.json");
        std::fs::write(&genesis_file, serde_json::to_string_pretty(&genesis)?)?;
        let mut proxies = BTreeMap::new();
        for i in 0..specs.len() {
            std::fs::create_dir_all(&specs[i].dir)?;
            write_key(&specs[i].dir.join("node.pem"), &specs[i].key)?;
            for j in 0..specs.len() {
                if i != j {
                    for net in Net::ALL {
                        proxies.insert((net, i, j), Proxy::start()?);
                    }
                }
            }
        }
        let count = specs.len();
        let mut network = Network {
            program: self.program,
            genesis,
            genesis_file,
            testnet,
            specs,
            nodes: (0..count).map(|_| None).collect(),
            proxies,
            personal_peers: self.personal_peers,
            configure: self.configure,
            timeline: Arc::new(Mutex::new(Timeline::default())),
            _dir: dir,
            _slot: slot,
        };
        network.record();
        if self.start {
            for i in 0..count {
                network.start(i)?;
            }
        }
        Ok(network)
    }
}

/// A network under test: the test network's four validators (and the auditor's full node)
/// as real processes on loopback, each with its own sled store, every connection between
/// them through a [`Proxy`] the test controls. Dropping it kills every node.
pub struct Network {
    program: Program,
    genesis: Genesis,
    genesis_file: PathBuf,
    testnet: TestNet,
    specs: Vec<NodeSpec>,
    nodes: Vec<Option<NodeProc>>,
    /// `(net, from, to)`: the proxy `from` dials to reach `to`.
    proxies: BTreeMap<(Net, usize, usize), Proxy>,
    personal_peers: bool,
    configure: Option<Configure>,
    timeline: Arc<Mutex<Timeline>>,
    _dir: tempfile::TempDir,
    /// Declared last: released after the nodes are killed and the files removed.
    _slot: Slot,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("dir", &self._dir.path())
            .field("nodes", &self.specs.len())
            .finish_non_exhaustive()
    }
}

impl Network {
    /// A builder of a network whose nodes run `program`.
    pub fn builder(program: Program) -> NetworkBuilder {
        NetworkBuilder {
            program,
            testnet: None,
            auditor: false,
            personal_peers: false,
            configure: None,
            start: true,
        }
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the network has no node (never).
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The indexes of the validators.
    pub fn validators(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|i| self.specs[*i].validator)
            .collect()
    }

    /// Node `i`'s name (`seller`, `carrier`, `broker`, `customs`, `auditor`).
    pub fn name(&self, i: usize) -> &str {
        &self.specs[i].name
    }

    /// The test network whose keys sign the events.
    pub fn testnet(&self) -> &TestNet {
        &self.testnet
    }

    /// The genesis every node runs.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The genesis file.
    pub fn genesis_file(&self) -> &Path {
        &self.genesis_file
    }

    /// Node `i`'s key.
    pub fn node_key(&self, i: usize) -> &Keypair {
        &self.specs[i].key
    }

    /// Node `i`'s folder (configuration, key, log).
    pub fn node_dir(&self, i: usize) -> &Path {
        &self.specs[i].dir
    }

    /// Node `i`'s data folder (sled store, WAL, personal data).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.specs[i].dir.join("data")
    }

    /// Node `i`'s configuration file, as last written.
    pub fn config_file(&self, i: usize) -> PathBuf {
        self.specs[i].dir.join("node.toml")
    }

    /// Whether node `i` runs (possibly paused).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// Node `i`'s HTTP address. Panics if it is not running.
    pub fn http(&self, i: usize) -> SocketAddr {
        self.proc(i).http
    }

    /// Node `i`'s API base URL.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.http(i))
    }

    /// An SDK client of node `i`.
    pub fn client(&self, i: usize) -> custody_client::Client {
        custody_client::Client::new(&self.url(i)).expect("a loopback URL is valid")
    }

    fn proc(&self, i: usize) -> &NodeProc {
        self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.specs[i].name))
    }

    /// The proxy `from` dials to reach `to` on `net`.
    fn proxy(&self, net: Net, from: usize, to: usize) -> &Proxy {
        &self.proxies[&(net, from, to)]
    }

    /// The multiaddress node `from` dials to reach `to` on `net`.
    fn peer_addr(&self, net: Net, from: usize, to: usize) -> anyhow::Result<String> {
        let port = self.proxy(net, from, to).listen_addr().port();
        let id = peer_id(&self.specs[to].key.public()).ok_or_else(|| anyhow!("peer id"))?;
        Ok(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}"))
    }

    /// Writes node `i`'s configuration for a start whose consensus listener is `consensus`.
    fn write_config(&self, i: usize, consensus: SocketAddr) -> anyhow::Result<()> {
        let spec = &self.specs[i];
        let others: Vec<usize> = (0..self.len()).filter(|j| *j != i).collect();
        let peers = |net: Net| -> anyhow::Result<String> {
            let list: Vec<String> = others
                .iter()
                .map(|j| self.peer_addr(net, i, *j))
                .collect::<anyhow::Result<_>>()?;
            Ok(serde_json::to_string(&list)?)
        };
        let personal: Vec<String> = if self.personal_peers {
            others
                .iter()
                .map(|j| format!("http://{}", self.proxy(Net::Http, i, *j).listen_addr()))
                .collect()
        } else {
            Vec::new()
        };
        let text = format!(
            "moniker = {moniker:?}\ndata_dir = {data:?}\nkey_file = {key:?}\ngenesis_file = {genesis:?}\n\
             [consensus]\nlisten = \"/ip4/127.0.0.1/tcp/{cport}\"\npeers = {cpeers}\n\
             [gossip]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\npeers = {gpeers}\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [personal]\npeers = {personal}\n",
            moniker = spec.name,
            data = spec.dir.join("data"),
            key = spec.dir.join("node.pem"),
            genesis = self.genesis_file,
            cport = consensus.port(),
            cpeers = peers(Net::Consensus)?,
            gpeers = peers(Net::Gossip)?,
            personal = serde_json::to_string(&personal)?,
        );
        let mut config = Config::parse(&text).map_err(|e| anyhow!("rig config: {e}"))?;
        if let Some(configure) = &self.configure {
            configure(i, &mut config);
        }
        std::fs::write(self.config_file(i), config.to_toml())?;
        Ok(())
    }

    /// Starts node `i` and waits for its ready line; points every proxy to it at its new
    /// addresses.
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        if self.nodes[i].is_some() {
            bail!("node {} is already running", self.specs[i].name);
        }
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            match self.spawn(i) {
                Ok(node) => {
                    for j in (0..self.len()).filter(|j| *j != i) {
                        self.proxy(Net::Consensus, j, i)
                            .set_target(Some(node.consensus));
                        self.proxy(Net::Gossip, j, i).set_target(Some(node.gossip));
                        self.proxy(Net::Http, j, i).set_target(Some(node.http));
                    }
                    self.nodes[i] = Some(node);
                    self.record();
                    return Ok(());
                }
                Err(error) => last_error = Some(error),
            }
        }
        self.dump_logs();
        Err(last_error.unwrap_or_else(|| anyhow!("no attempt")))
    }

    /// One attempt at starting node `i`.
    ///
    /// The node binds its HTTP and gossip listeners on port 0 and prints where; the consensus
    /// engine does not report its listener, so the rig picks a free port for it. No other
    /// node's configuration names that port (peers dial the rig's proxy), so if it is taken
    /// between picking and binding, the node fails to start and is started again on another.
    fn spawn(&self, i: usize) -> anyhow::Result<NodeProc> {
        let consensus = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        self.write_config(i, consensus)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(i))?;
        let mut child = Command::new(&self.program.path)
            .args(&self.program.args)
            .arg("--config")
            .arg(self.config_file(i))
            .env(
                "RUST_LOG",
                std::env::var("CUSTODY_TEST_LOG").unwrap_or_else(|_| LOG_FILTER.into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {}", self.program.path.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keeps reading so the node never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(Duration::from_millis(READY_TIMEOUT_MS)) {
            Ok(line) if !line.is_empty() => line,
            _ => {
                let _ = child.kill();
                let status = child.wait()?;
                bail!(
                    "node {} did not start ({status}); its log ends:\n{}",
                    self.specs[i].name,
                    self.log_tail(i, 20)
                );
            }
        };
        let (http, gossip) = parse_ready_line(&line)?;
        Ok(NodeProc {
            child,
            http,
            gossip,
            consensus,
            paused: false,
        })
    }

    /// Starts every node that is not running.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.len() {
            if self.nodes[i].is_none() {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// SIGKILL: the node dies at once, mid-write if it was writing.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
        self.unroute(i);
        self.record();
    }

    /// SIGKILL and start again.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.start(i)
    }

    /// SIGTERM, and the exit status once it stopped (bounded).
    pub fn terminate(&mut self, i: usize) -> anyhow::Result<ExitStatus> {
        let mut node = self.nodes[i]
            .take()
            .ok_or_else(|| anyhow!("node {} is not running", self.specs[i].name))?;
        if node.paused {
            signal(node.child.id(), "CONT")?;
        }
        signal(node.child.id(), "TERM")?;
        let deadline = Instant::now() + Duration::from_millis(TERMINATE_TIMEOUT_MS);
        let status = loop {
            if let Some(status) = node.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} did not stop within {TERMINATE_TIMEOUT_MS} ms of SIGTERM",
                    self.specs[i].name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.unroute(i);
        self.record();
        Ok(status)
    }

    /// SIGSTOP: the process freezes; its sockets stay open, nothing answers.
    pub fn pause(&mut self, i: usize) -> anyhow::Result<()> {
        let node = self.nodes[i]
            .as_mut()
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        signal(node.child.id(), "STOP")?;
        node.paused = true;
        self.record();
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, i: usize) -> anyhow::Result<()> {
        let node = self.nodes[i]
            .as_mut()
            .ok_or_else(|| anyhow!("node {i} is not running"))?;
        signal(node.child.id(), "CONT")?;
        node.paused = false;
        self.record();
        Ok(())
    }

    /// If node `i` has exited by itself, its exit status (the node is then down); `None`
    /// while it runs.
    pub fn exited(&mut self, i: usize) -> anyhow::Result<Option<ExitStatus>> {
        let Some(node) = self.nodes[i].as_mut() else {
            bail!("node {} is not running", self.specs[i].name);
        };
        let status = node.child.try_wait()?;
        if status.is_some() {
            self.nodes[i] = None;
            self.unroute(i);
            self.record();
        }
        Ok(status)
    }

    /// Node `i`'s own consensus listener (not through a proxy), for tests that dial it as a
    /// stranger would.
    pub fn consensus_addr(&self, i: usize) -> SocketAddr {
        self.proc(i).consensus
    }

    /// Node `i`'s own gossip listener (not through a proxy).
    pub fn gossip_addr(&self, i: usize) -> SocketAddr {
        self.proc(i).gossip
    }

    /// The libp2p multiaddress of `addr` with node `i`'s peer id.
    pub fn multiaddr(&self, i: usize, addr: SocketAddr) -> String {
        let id = peer_id(&self.specs[i].key.public()).expect("a node key has a peer id");
        format!("/ip4/{}/tcp/{}/p2p/{id}", addr.ip(), addr.port())
    }

    /// Whether node `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].as_ref().is_some_and(|n| n.paused)
    }

    /// Points the proxies to node `i` at nothing while it is down.
    fn unroute(&self, i: usize) {
        for j in (0..self.len()).filter(|j| *j != i) {
            for net in Net::ALL {
                self.proxy(net, j, i).set_target(None);
            }
        }
    }

    fn set_link(&self, a: usize, b: usize, edit: impl Fn(&mut LinkMode, bool)) {
        for net in Net::ALL {
            // `edit(mode, forward_is_a_to_b)`.
            let ab = self.proxy(net, a, b);
            let mut mode = ab.mode();
            edit(&mut mode, true);
            ab.set_mode(mode);
            let ba = self.proxy(net, b, a);
            let mut mode = ba.mode();
            edit(&mut mode, false);
            ba.set_mode(mode);
        }
    }

    /// Cuts every connection between `a` and `b`, both ways, on every network.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.set_link(a, b, |mode, _| mode.cut = true);
        self.record();
    }

    /// Loses everything `from` sends to `to`, while `to` still reaches `from`.
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        // On `from`'s own connection the forward way carries from → to; on `to`'s, the back.
        self.set_link(from, to, |mode, forward| {
            if forward {
                mode.drop_forward = true;
            } else {
                mode.drop_back = true;
            }
        });
        self.record();
    }

    /// Holds every chunk between `a` and `b` for `delay_ms`, both ways.
    pub fn delay(&mut self, a: usize, b: usize, delay_ms: u64) {
        self.set_link(a, b, |mode, _| mode.delay_ms = delay_ms);
        self.record();
    }

    /// Cuts every link between nodes of different groups; nodes in no group are cut from
    /// everyone.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        for a in 0..self.len() {
            for b in (a + 1)..self.len() {
                let together = matches!((group_of(a), group_of(b)), (Some(x), Some(y)) if x == y);
                if !together {
                    self.set_link(a, b, |mode, _| mode.cut = true);
                }
            }
        }
        self.record();
    }

    /// Every link open again.
    pub fn heal(&mut self) {
        for proxy in self.proxies.values() {
            proxy.set_mode(LinkMode::default());
        }
        self.record();
    }

    /// What can reach what now (consensus network), and who is up.
    pub fn connectivity(&self) -> Connectivity {
        let count = self.len();
        let up = (0..count)
            .map(|i| self.nodes[i].as_ref().is_some_and(|n| !n.paused))
            .collect();
        let mut can_send = vec![vec![false; count]; count];
        for (from, row) in can_send.iter_mut().enumerate() {
            for (to, cell) in row.iter_mut().enumerate() {
                if from == to {
                    *cell = true;
                    continue;
                }
                // Either connection may carry it: the one `from` dialed or the one `to` did.
                let own = self.proxy(Net::Consensus, from, to).mode();
                let theirs = self.proxy(Net::Consensus, to, from).mode();
                *cell = (!own.cut && !own.drop_forward) || (!theirs.cut && !theirs.drop_back);
            }
        }
        Connectivity {
            up,
            can_send,
            validators: self.specs.iter().map(|s| s.validator).collect(),
        }
    }

    /// Appends the connectivity now to the timeline.
    fn record(&self) {
        let now = crate::wait::now_ms();
        let state = self.connectivity();
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(now, state);
    }

    /// Every change of connectivity since the network was built, with its time.
    pub fn timeline(&self) -> Timeline {
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One HTTP request to node `i`.
    pub fn request(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        http::request(self.http(i), method, path, body, headers)
    }

    /// `GET /v1/status` of node `i`.
    pub fn status(&self, i: usize) -> anyhow::Result<serde_json::Value> {
        let answer = self.request(i, "GET", "/v1/status", None, &[])?;
        if answer.status != 200 {
            bail!("status {}: {}", answer.status, answer.text());
        }
        answer.json()
    }

    /// Node `i`'s height (0 if it does not answer).
    pub fn height(&self, i: usize) -> u64 {
        self.status(i)
            .ok()
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    /// Node `i`'s log size (0 if it does not answer).
    pub fn log_size(&self, i: usize) -> u64 {
        self.status(i)
            .ok()
            .and_then(|s| s["log_size"].as_u64())
            .unwrap_or(0)
    }

    /// Submits an event as JSON to node `i` (`?wait=commit` if `wait`); status and body.
    pub fn submit(
        &self,
        i: usize,
        event: &EncodedEvent,
        wait: bool,
    ) -> anyhow::Result<(u16, String)> {
        let body = serde_json::to_vec(&event.event())?;
        let path = if wait {
            "/v1/events?wait=commit"
        } else {
            "/v1/events"
        };
        let answer = self.request(i, "POST", path, Some(&body), &[])?;
        Ok((answer.status, answer.text()))
    }

    /// Submits each event to node `i` until committed; fails on the first refusal.
    pub fn commit_all(&self, i: usize, events: &[EncodedEvent]) -> anyhow::Result<()> {
        for event in events {
            let (status, body) = self.submit(i, event, true)?;
            if status != 200 {
                bail!("event {} not committed: {status} {body}", event.id());
            }
        }
        Ok(())
    }

    /// Publishes the sample reference data (needed to register shipments) and waits until
    /// every running node has committed it: a node that commits the block a moment after node
    /// `i` answered would otherwise judge a registration without the tables.
    pub fn publish_reference_data(&self, i: usize) -> anyhow::Result<()> {
        let events: Vec<EncodedEvent> = custody_contracts::load::sample_tables(Timestamp(0))
            .into_iter()
            .map(|table| {
                self.testnet.sign(
                    "customs-qx",
                    custody_ledger::model::EventKind::ReferenceDataPublished(table),
                )
            })
            .collect();
        self.commit_all(i, &events)?;
        self.wait_log_size(self.log_size(i), Duration::from_millis(REFERENCE_WAIT_MS))
    }

    /// The cast of the shipment scenario (the demo's and the benchmark's) on this network:
    /// the test network's seller, carriers, broker and customs authority.
    pub fn cast(&self) -> Cast {
        Cast::new(custody_ledger::testkit::CHAIN_ID, |part| {
            let id = match part {
                Part::Customs => "customs-qx",
                other => other.devnet_member(),
            };
            let key = Keypair::from_seed(self.testnet.key(id).signing_key().to_bytes());
            (id.to_owned(), key)
        })
    }

    /// Publishes the scenario's reference data at `now` (through node `i`) and returns `count`
    /// events of scenario shipment lifecycles, each shipment's events in order, spread over
    /// the validators.
    pub fn scenario(
        &self,
        i: usize,
        count: usize,
        now: Timestamp,
    ) -> anyhow::Result<Vec<scenario::ShipmentPlan>> {
        let cast = self.cast();
        self.commit_all(i, &scenario::reference_events(&cast, now))?;
        scenario::workload(&cast, count, self.validators().len(), now)
    }

    /// Waits until every running node, paused ones aside, reports at least `height`.
    pub fn wait_height(&self, height: u64, within: Duration) -> anyhow::Result<()> {
        self.wait_all(&format!("height {height}"), within, |i| {
            self.height(i) >= height
        })
    }

    /// Waits until every running node, paused ones aside, has `log_size` events or more.
    pub fn wait_log_size(&self, log_size: u64, within: Duration) -> anyhow::Result<()> {
        self.wait_all(&format!("log size {log_size}"), within, |i| {
            self.log_size(i) >= log_size
        })
    }

    fn wait_all(
        &self,
        what: &str,
        within: Duration,
        reached: impl Fn(usize) -> bool,
    ) -> anyhow::Result<()> {
        let live: Vec<usize> = (0..self.len())
            .filter(|i| self.is_running(*i) && !self.is_paused(*i))
            .collect();
        let result = wait_until(what, within, || live.iter().all(|i| reached(*i)));
        if result.is_err() {
            let heights: Vec<(String, u64, u64)> = live
                .iter()
                .map(|i| {
                    (
                        self.specs[*i].name.clone(),
                        self.height(*i),
                        self.log_size(*i),
                    )
                })
                .collect();
            self.dump_logs();
            return result.with_context(|| format!("(name, height, log size): {heights:?}"));
        }
        Ok(())
    }

    /// Node `i`'s log file (appended across restarts).
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.specs[i].dir.join("node.log")
    }

    /// Node `i`'s whole log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_file(i)).unwrap_or_default()
    }

    fn log_tail(&self, i: usize, lines: usize) -> String {
        let log = self.log(i);
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Prints the end of every node's log, to explain a failure.
    pub fn dump_logs(&self) {
        for i in 0..self.len() {
            eprintln!("--- {} ---\n{}", self.specs[i].name, self.log_tail(i, 15));
        }
    }

    /// The heights node `i` committed and when (Unix ms), from its log's `committed` lines,
    /// across restarts.
    pub fn commits(&self, i: usize) -> Vec<(u64, u64)> {
        self.log(i).lines().filter_map(parse_commit_line).collect()
    }

    /// Opens node `i`'s store (the node must be stopped: sled locks its directory).
    pub fn open_store(&self, i: usize) -> anyhow::Result<SledStore> {
        if self.is_running(i) {
            bail!(
                "node {} runs: stop it before opening its store",
                self.specs[i].name
            );
        }
        Ok(SledStore::open(
            custody_node::repair::ledger_path(&self.data_dir(i)),
            self.genesis.hash(),
        )?)
    }

    /// Stops every node (SIGTERM, each must exit 0), checks that all stores agree on every
    /// height they share and that each chain verifies from the genesis with the contract
    /// rules; returns the lowest head height.
    pub fn stop_and_compare(&mut self) -> anyhow::Result<u64> {
        for i in 0..self.len() {
            if self.nodes[i].is_some() {
                let status = self.terminate(i)?;
                if !status.success() {
                    bail!("node {} exited with {status}", self.specs[i].name);
                }
            }
        }
        let stores: Vec<SledStore> = (0..self.len())
            .map(|i| self.open_store(i))
            .collect::<anyhow::Result<_>>()?;
        compare_stores(&stores, &self.genesis)
    }
}

/// Damage done to a stopped node's data folder, as a crash or a failing disk leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The sled `db` file cut to this per cent of its length.
    TruncateStore {
        /// How much of the file stays, in per cent.
        keep_percent: u64,
    },
    /// Bytes of the sled `db` file inverted, ending `from_end` bytes before its end.
    FlipStoreBytes {
        /// Where the damage ends, counted from the end of the file.
        from_end: u64,
        /// How many bytes.
        count: u64,
    },
    /// The last bytes of the consensus WAL dropped (a torn write).
    TearWal {
        /// How many bytes.
        bytes: u64,
    },
}

/// A change to a file's bytes.
type Edit = Box<dyn Fn(&mut Vec<u8>)>;

impl Network {
    /// Damages node `i`'s data folder; the node must be stopped.
    pub fn damage_store(&self, i: usize, damage: Damage) -> anyhow::Result<()> {
        if self.is_running(i) {
            bail!(
                "node {} runs: stop it before damaging its files",
                self.specs[i].name
            );
        }
        let data = self.data_dir(i);
        let (path, edit): (PathBuf, Edit) = match damage {
            Damage::TruncateStore { keep_percent } => (
                custody_node::repair::ledger_path(&data).join("db"),
                Box::new(move |bytes| {
                    let keep = bytes.len() as u64 * keep_percent.min(100) / 100;
                    bytes.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
                }),
            ),
            Damage::FlipStoreBytes { from_end, count } => (
                custody_node::repair::ledger_path(&data).join("db"),
                Box::new(move |bytes| {
                    let len = bytes.len();
                    let end = len.saturating_sub(usize::try_from(from_end).unwrap_or(len));
                    let start = end.saturating_sub(usize::try_from(count).unwrap_or(end));
                    for byte in &mut bytes[start..end] {
                        *byte = !*byte;
                    }
                }),
            ),
            Damage::TearWal { bytes: dropped } => (
                custody_node::repair::wal_path(&data),
                Box::new(move |bytes| {
                    let keep = bytes
                        .len()
                        .saturating_sub(usize::try_from(dropped).unwrap_or(0));
                    bytes.truncate(keep);
                }),
            ),
        };
        let mut bytes =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        edit(&mut bytes);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Kill the nodes before the proxies and files go.
        for node in &mut self.nodes {
            *node = None;
        }
    }
}

/// Checks that the stores agree on every height they share and that each verifies; the
/// lowest head height.
pub fn compare_stores(stores: &[SledStore], genesis: &Genesis) -> anyhow::Result<u64> {
    let heads: Vec<u64> = stores
        .iter()
        .map(|s| s.head().ok().flatten().map_or(0, |h| h.height))
        .collect();
    let height = heads.iter().copied().min().unwrap_or(0);
    for h in 1..=height {
        let hashes: Vec<_> = stores
            .iter()
            .map(|s| s.header(h).ok().flatten().map(|hd| hd.hash()))
            .collect();
        if hashes.windows(2).any(|w| w[0] != w[1]) {
            bail!("nodes disagree at height {h}: {hashes:?}");
        }
    }
    for store in stores {
        verify_chain(store, genesis, ContractRules::default(), |_, _| {})
            .map_err(|e| anyhow!("verification failed: {e}"))?;
    }
    Ok(height)
}

/// The HTTP and gossip addresses of a node's ready line,
/// `custody-node http=127.0.0.1:PORT gossip=["/ip4/127.0.0.1/tcp/PORT"]`.
fn parse_ready_line(line: &str) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let http: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .ok_or_else(|| anyhow!("unexpected ready line {line:?}"))?
        .parse()?;
    let gossip_port: u16 = line
        .split("/tcp/")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| anyhow!("no gossip port in the ready line {line:?}"))?;
    Ok((http, SocketAddr::from(([127, 0, 0, 1], gossip_port))))
}

/// `(height, unix ms)` of a log line such as
/// `2026-12-02T08:03:01.123456Z  INFO custody_node::consensus::host: committed height=5 …`.
fn parse_commit_line(line: &str) -> Option<(u64, u64)> {
    let (_, fields) = line.split_once(": committed height=")?;
    let height = fields.split_whitespace().next()?.parse().ok()?;
    let stamp = line.split_whitespace().next()?;
    // The log has microseconds; the ledger's parser takes milliseconds.
    let millis = format!("{}Z", stamp.get(..23)?);
    Some((height, Timestamp::parse_rfc3339(&millis)?.0))
}

/// Sends a signal with `kill(1)` (the workspace forbids the unsafe `libc::kill`).
fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .context("running kill(1)")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_commit_lines_parse() {
        let (http, gossip) = parse_ready_line(
            "custody-node http=127.0.0.1:4100 gossip=[\"/ip4/127.0.0.1/tcp/4200\"]\n",
        )
        .expect("parses");
        assert_eq!((http.port(), gossip.port()), (4100, 4200));
        let line = "2026-12-02T08:03:01.123456Z  INFO custody_node::consensus::host: committed height=5 events=3 hash=ab";
        let (height, ms) = parse_commit_line(line).expect("parses");
        assert_eq!(height, 5);
        assert_eq!(Timestamp(ms).to_rfc3339(), "2026-12-02T08:03:01.123Z");
        assert!(
            parse_commit_line("2026-12-02T08:03:01.123456Z  INFO x: proposing height=5").is_none()
        );
    }
}
