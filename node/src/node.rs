//! A running node: the store, the rules, the mempool, the consensus engine and its host,
//! event gossip and the HTTP API, wired together.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use anyhow::{anyhow, bail, Context as _};
use arc_malachitebft_app_channel::app::config::{
    ChannelNames, ConsensusConfig, DiscoveryConfig, P2pConfig, ProtocolNames, PubSubProtocol,
    ValueSyncConfig,
};
use arc_malachitebft_app_channel::app::engine::util::events::Event as EngineEvent;
use arc_malachitebft_app_channel::app::net::Multiaddr;
use arc_malachitebft_app_channel::app::types::SignedConsensusMsg;
use arc_malachitebft_app_channel::{
    start_engine, Channels, ConsensusContext, EngineHandle, NetworkContext, NetworkIdentity,
    RequestContext, SyncContext, WalContext,
};
use custody_contracts::{ContractRules, ReferenceBook};
use custody_ledger::event::VerifiedEvent;
use custody_ledger::keys::KeyCache;
use custody_ledger::store::Store;
use custody_sled::SledStore;
use tokio::sync::{broadcast, mpsc, oneshot, Mutex};
use tracing::{error, info, warn};

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::consensus::codec::CustodyCodec;
use crate::consensus::context::{Address, CustodyContext};
use crate::consensus::host::{BlockLimits, Committed, Host, HostParts};
use crate::consensus::proposals::ProposalStore;
use crate::consensus::signing::{CustodySigner, CustodyVerifier};
use crate::gossip::{self, GossipConfig};
use crate::health::{Health, TaskFailure};
use crate::intake::{Intake, Judge};
use crate::keys;
use crate::mempool::{Mempool, MempoolConfig};
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Malachite's view of our configuration.
#[derive(Debug, Clone)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl arc_malachitebft_app_channel::app::config::NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    /// The HTTP API's bound address.
    pub http_addr: SocketAddr,
    /// The gossip network's bound addresses.
    pub gossip_addrs: Vec<Multiaddr>,
    /// Whether the node is doing its work.
    pub health: Arc<Health>,
    shutdown: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Stops taking events, lets the block in flight finish, and waits for the node to stop.
    /// An error if a critical task had already failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.done
            .await
            .map_err(|e| anyhow!("the node's supervisor failed: {e}"))?
    }

    /// Waits until the node stops by itself, which it does only when a critical task ends
    /// or panics: then the error says which and why.
    pub async fn wait(&mut self) -> anyhow::Error {
        match (&mut self.done).await {
            Ok(Ok(())) => anyhow!("the node stopped"),
            Ok(Err(error)) => error,
            Err(error) => anyhow!("the node's supervisor failed: {error}"),
        }
    }
}

/// Runs a node until `stop` resolves (a signal) or a critical task fails, and prints the
/// bound addresses once it is up. Both binaries that run a node (`custody-node` and the
/// devnet's `node` subcommand) call this, so they stop the same way: `Ok` after an orderly
/// stop, an error naming the failed task otherwise (the process should exit non-zero so a
/// process manager restarts it).
pub async fn run(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut node = start(config).await.context("starting the node")?;
    // Tests and scripts read the bound addresses from this line.
    println!(
        "custody-node http={} gossip={:?}",
        node.http_addr, node.gossip_addrs
    );
    tokio::select! {
        () = stop => node.stop().await,
        error = node.wait() => Err(error),
    }
}

/// The tasks a node cannot work without, by name, watched by the supervisor.
struct Critical {
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    names: Vec<(tokio::task::Id, &'static str)>,
}

impl Critical {
    fn new() -> Critical {
        Critical {
            tasks: tokio::task::JoinSet::new(),
            names: Vec::new(),
        }
    }

    fn spawn(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(task);
        self.names.push((handle.id(), name));
    }

    fn name(&self, id: tokio::task::Id) -> &'static str {
        self.names
            .iter()
            .find(|(task, _)| *task == id)
            .map_or("unknown task", |(_, name)| name)
    }

    /// Waits for the first critical task to end, and says which and why. Pending forever
    /// when there are none (so a `select!` on it waits for the other branch).
    async fn first_end(&mut self) -> TaskFailure {
        let Some(joined) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        match joined {
            Ok((id, Ok(()))) => TaskFailure {
                task: self.name(id),
                reason: "it ended".into(),
            },
            Ok((id, Err(error))) => TaskFailure {
                task: self.name(id),
                reason: format!("{error:#}"),
            },
            Err(error) => TaskFailure {
                task: self.name(error.id()),
                reason: panic_reason(error),
            },
        }
    }
}

/// The message of a task's panic, or why it was cancelled.
fn panic_reason(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return format!("cancelled: {error}");
    }
    let payload = error.into_panic();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into());
    format!("panicked: {message}")
}

/// How long a node whose critical task failed keeps answering `/healthz` (503, with the
/// reason) before it exits, so a monitor polling it sees why.
const FAILURE_EXIT_DELAY_MS: u64 = 1_000;

/// How long an orderly stop waits for the consensus host to finish the message in hand and
/// for the API to finish its requests.
const SHUTDOWN_WAIT_MS: u64 = 10_000;

fn multiaddr(text: &str) -> anyhow::Result<Multiaddr> {
    Multiaddr::from_str(text).with_context(|| format!("{text:?} is not a multiaddress"))
}

/// Starts a node from its configuration.
pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
    let genesis = Arc::new(keys::read_genesis(&config.genesis_file)?);
    let key = Arc::new(keys::read_key(&config.key_file)?);
    // Read before anything starts, so that a bad gateway key stops the node at once.
    let epcis_gateway = match &config.epcis_gateway {
        Some(gateway) => Some(Arc::new(crate::epcis::capture::Gateway::new(gateway)?)),
        None => None,
    };
    let identity = Identity::new(genesis, key)?;
    let ledger = open_ledger(&config, &identity)?;
    let mut critical = Critical::new();
    critical.spawn("admission queue", {
        let intake = ledger.intake.clone();
        async move {
            intake.stopped().await;
            bail!("the admission queue's worker stopped")
        }
    });
    let gossip = start_gossip(&config, &identity, &ledger, &mut critical).await?;
    let mut consensus = start_consensus(&config, &identity, &gossip.allowed_peers).await?;
    let host = build_host(&config, &identity, &ledger, &mut consensus, &gossip.handle)?;
    let personal = start_personal(
        &config,
        &ledger.store,
        &identity.genesis,
        &identity.key,
        &identity.member,
        &ledger.committed,
    )
    .await?;
    let api = prepare_api(
        &config,
        &identity,
        ledger,
        &gossip,
        &consensus,
        epcis_gateway,
        personal,
    )
    .await?;
    let (http_addr, health) = (api.http_addr, api.health.clone());
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let supervised = spawn_critical(critical, api, consensus, host, gossip.handle, shutdown_rx);
    let done = tokio::spawn(supervise(supervised));
    Ok(RunningNode {
        http_addr,
        gossip_addrs: gossip.addrs,
        health,
        shutdown: shutdown_tx,
        done,
    })
}

/// Who this node is in its network.
struct Identity {
    genesis: Arc<custody_ledger::genesis::Genesis>,
    key: Arc<custody_ledger::keys::Keypair>,
    node_key: custody_ledger::keys::PublicKey,
    /// The member whose node key this node holds.
    member: custody_ledger::model::MemberId,
    validator: bool,
}

impl Identity {
    fn new(
        genesis: Arc<custody_ledger::genesis::Genesis>,
        key: Arc<custody_ledger::keys::Keypair>,
    ) -> anyhow::Result<Identity> {
        let node_key = key.public();
        let member = genesis
            .members
            .iter()
            .find(|m| m.node_key == Some(node_key))
            .ok_or_else(|| anyhow!("node key {node_key} is not a node key in genesis"))?;
        let (member, validator) = (member.id.clone(), member.voting_power > 0);
        Ok(Identity {
            genesis,
            key,
            node_key,
            member,
            validator,
        })
    }
}

/// The ledger and what the node keeps beside it.
struct Ledger {
    store: Arc<SledStore>,
    /// Parsed keys, for everything on this node that verifies signatures.
    keys: Arc<KeyCache>,
    /// The rules as of the committed head, for the consensus host.
    rules: ContractRules,
    /// The same, as the host updates them, for gossip and the API.
    shared_rules: Arc<RwLock<ContractRules>>,
    mempool: Arc<Mutex<Mempool>>,
    /// The admission queue, for the API and gossip.
    intake: Intake,
    committed: broadcast::Sender<Committed>,
    /// Height of the committed head.
    head: u64,
}

/// Repairs the data folder if it must, and opens the store, the rules and the mempool.
fn open_ledger(config: &Config, identity: &Identity) -> anyhow::Result<Ledger> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    // Before the store is opened: the check opens sled's files itself.
    for line in crate::repair::prepare_data_dir(config)? {
        warn!("repaired on start: {line}");
    }
    let store = Arc::new(crate::repair::open_ledger(config, identity.genesis.hash())?);
    let rules = ContractRules::new(ReferenceBook::load(store.as_ref())?);
    let shared_rules = Arc::new(RwLock::new(rules.clone()));
    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
        count_max: config.mempool.count_max,
        size_bytes_max: config.mempool.size_bytes_max,
        signer_count_max: config.mempool.signer_count_max,
        signer_size_bytes_max: config.mempool.signer_size_bytes_max,
    })));
    let (committed, _) = broadcast::channel::<Committed>(1024);
    let head = store.head()?.map_or(0, |h| h.height);
    info!(moniker = %config.moniker, node_key = %identity.node_key, validator = identity.validator, head, "starting");
    let keys = Arc::new(KeyCache::new());
    let intake = Intake::start(Judge {
        store: store.clone(),
        genesis: identity.genesis.clone(),
        rules: shared_rules.clone(),
        mempool: mempool.clone(),
        keys: keys.clone(),
    })
    .context("starting the admission queue")?;
    Ok(Ledger {
        store,
        keys,
        rules,
        shared_rules,
        mempool,
        intake,
        committed,
        head,
    })
}

/// Event gossip, running.
struct Gossip {
    handle: gossip::GossipHandle,
    /// Its bound addresses.
    addrs: Vec<Multiaddr>,
    /// Where the API sends the events it admits, to be published in batches.
    outbound: mpsc::Sender<Vec<u8>>,
    /// The peers of the genesis node keys, the only ones gossip and consensus accept.
    allowed_peers: Vec<libp2p::PeerId>,
}

/// Starts event gossip, with its swarm, its intake into the mempool and its batch publisher
/// as critical tasks.
async fn start_gossip(
    config: &Config,
    identity: &Identity,
    ledger: &Ledger,
    critical: &mut Critical,
) -> anyhow::Result<Gossip> {
    // Event gossip: only genesis node keys may connect.
    let allowed_peers: Vec<libp2p::PeerId> = identity
        .genesis
        .members
        .iter()
        .filter_map(|m| m.node_key)
        .filter_map(|k| keys::peer_id(&k))
        .collect();
    let (accepted_tx, mut accepted_rx) = mpsc::channel::<VerifiedEvent>(4096);
    let handle = gossip::spawn(
        GossipConfig {
            keypair: keys::libp2p_keypair(&identity.key),
            listen_addr: multiaddr(&config.gossip.listen)?,
            peers: config
                .gossip
                .peers
                .iter()
                .map(|p| multiaddr(p))
                .collect::<anyhow::Result<_>>()?,
            allowed_peers: allowed_peers.clone(),
            genesis_hash: identity.genesis.hash(),
            message_size_bytes_max: custody_ledger::codec::EVENT_SIZE_BYTES_MAX + 1024,
        },
        ledger.intake.gossip_validator(),
        accepted_tx,
        event_source(ledger),
    )
    .await?;
    let addrs = handle.listen_addrs().await;
    if let Some(swarm) = handle.take_task() {
        critical.spawn("gossip swarm", async move {
            swarm.await?;
            Ok(())
        });
    }
    let mempool = ledger.mempool.clone();
    #[cfg(feature = "fault-injection")]
    let drop_gossiped = config.faults.drop_gossiped_events;
    #[cfg(feature = "fault-injection")]
    if drop_gossiped {
        warn!("FAULT INJECTION: this node drops every event it receives by gossip");
    }
    critical.spawn("gossip intake", async move {
        while let Some(event) = accepted_rx.recv().await {
            #[cfg(feature = "fault-injection")]
            if drop_gossiped {
                continue;
            }
            if let Err(error) = mempool.lock().await.insert_gossiped(event) {
                warn!(%error, "gossiped event dropped");
            }
        }
        Ok(())
    });
    let (outbound, outbound_rx) = mpsc::channel::<Vec<u8>>(4096);
    critical.spawn(
        "gossip publish",
        publish_batches(handle.clone_handle(), outbound_rx),
    );
    Ok(Gossip {
        handle,
        addrs,
        outbound,
        allowed_peers,
    })
}

/// What this node answers a member asking for events by id: those in its mempool, else in
/// its store (a block may commit while a validator still fetches its events).
fn event_source(ledger: &Ledger) -> crate::event_fetch::EventSource {
    let (mempool, store) = (ledger.mempool.clone(), ledger.store.clone());
    Arc::new(move |ids| {
        let (mempool, store) = (mempool.clone(), store.clone());
        Box::pin(async move {
            let held: std::collections::BTreeMap<_, _> = {
                let pool = mempool.lock().await;
                ids.iter()
                    .filter_map(|id| pool.get(id).map(|event| (*id, event)))
                    .collect()
            };
            // The store's reads run off the tokio workers.
            let answer = tokio::task::spawn_blocking(move || {
                crate::event_fetch::answer(&ids, |id| match held.get(id) {
                    Some(event) => Some(event.bytes().to_vec()),
                    None => stored_event(store.as_ref(), id),
                })
            });
            // A lookup that panicked answers nothing; the asker votes nil or retries.
            answer.await.unwrap_or_default()
        })
    })
}

/// A committed event's canonical bytes, looked up by id.
fn stored_event(store: &SledStore, id: &custody_ledger::model::EventId) -> Option<Vec<u8>> {
    let stored = store.event(id).ok().flatten()?;
    Some(stored.event.into_bytes())
}

/// The consensus engine, started, and the faults its host is to inject (test builds).
struct Consensus {
    channels: Channels<CustodyContext>,
    engine: EngineHandle,
    #[cfg(feature = "fault-injection")]
    host_faults: crate::consensus::faults::HostFaults,
}

/// Starts the consensus engine.
async fn start_consensus(
    config: &Config,
    identity: &Identity,
    allowed_peers: &[libp2p::PeerId],
) -> anyhow::Result<Consensus> {
    let engine_config = engine_config(config, &identity.genesis, allowed_peers)?;
    let address = Address(identity.node_key);
    let chain_id = identity.genesis.chain_id.clone();
    let network_identity = NetworkIdentity::new(
        config.moniker.clone(),
        keys::libp2p_keypair(&identity.key),
        identity.validator.then(|| identity.node_key.to_hex()),
    );
    let consensus_ctx = if identity.validator {
        ConsensusContext::new_validator(
            address,
            Box::new(CustodyVerifier::new(chain_id.clone())),
            Box::new(CustodySigner::new(chain_id, identity.key.clone())),
        )
    } else {
        ConsensusContext::new_full_node(address, Box::new(CustodyVerifier::new(chain_id)))
    };
    // The faults of a test build sit in the host and in the codec of the consensus network
    // (see `consensus::faults`); the write-ahead log and sync keep the honest codec.
    #[cfg(feature = "fault-injection")]
    let (host_faults, network_codec) = crate::consensus::faults::arm(&config.faults)?;
    #[cfg(not(feature = "fault-injection"))]
    let network_codec = CustodyCodec;
    let (channels, engine) = start_engine(
        CustodyContext,
        engine_config,
        WalContext::new(crate::repair::wal_path(&config.data_dir), CustodyCodec),
        NetworkContext::new(network_identity, network_codec),
        consensus_ctx,
        SyncContext::new(CustodyCodec),
        RequestContext::new(100),
    )
    .await
    .map_err(|e| anyhow!("starting the consensus engine: {e}"))?;
    Ok(Consensus {
        channels,
        engine,
        #[cfg(feature = "fault-injection")]
        host_faults,
    })
}

/// The engine's configuration: consensus peers and protocol names of this network.
fn engine_config(
    config: &Config,
    genesis: &custody_ledger::genesis::Genesis,
    allowed_peers: &[libp2p::PeerId],
) -> anyhow::Result<EngineConfig> {
    // Only genesis node keys may be consensus peers, and the protocol names carry the genesis
    // hash, so nodes of different networks never speak consensus with each other.
    let consensus_peers: Vec<Multiaddr> = config
        .consensus
        .peers
        .iter()
        .map(|p| multiaddr(p))
        .collect::<anyhow::Result<_>>()?;
    for peer in &consensus_peers {
        let id = peer.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        });
        match id {
            Some(id) if allowed_peers.contains(&id) => {}
            _ => bail!("consensus peer {peer} does not end in the /p2p/ id of a genesis node key"),
        }
    }
    let network_tag = &genesis.hash().to_hex()[..16];
    let mut consensus = ConsensusConfig::default();
    consensus.p2p = P2pConfig {
        listen_addr: multiaddr(&config.consensus.listen)?,
        persistent_peers: consensus_peers,
        persistent_peers_only: true,
        discovery: DiscoveryConfig::default(),
        // Every node keeps a connection to every other (the persistent peers are the whole
        // genesis), so a message needs no relaying: broadcast sends it once to each peer over
        // the authenticated connection. Gossipsub would sign every vote and proposal part
        // and have each node check the signature of every copy it receives from each
        // forwarder, which cost a loaded validator about a seventh of its CPU.
        protocol: PubSubProtocol::Broadcast,
        protocol_names: ProtocolNames {
            // v2: proposal parts name events by id (compact proposals).
            consensus: format!("/custody/{network_tag}/consensus/v2"),
            discovery_kad: format!("/custody/{network_tag}/discovery/kad/v2"),
            discovery_regres: format!("/custody/{network_tag}/discovery/reqres/v2"),
            sync: format!("/custody/{network_tag}/sync/v2"),
            validator_proof: format!("/custody/{network_tag}/validator-proof/v2"),
        },
        channel_names: ChannelNames {
            consensus: format!("/custody/{network_tag}/consensus"),
            proposal_parts: format!("/custody/{network_tag}/proposal_parts"),
            sync: format!("/custody/{network_tag}/sync"),
            liveness: format!("/custody/{network_tag}/liveness"),
        },
        ..P2pConfig::default()
    };
    Ok(EngineConfig {
        moniker: config.moniker.clone(),
        consensus,
        value_sync: ValueSyncConfig {
            // A validator that missed a block learns that it is behind from its peers' status
            // messages; the engine's default of one every 10 s left such a validator idle for
            // up to 10 s (and its turns as proposer failing) under load. A status message is a
            // few bytes.
            status_update_interval: std::time::Duration::from_millis(SYNC_STATUS_INTERVAL_MS),
            ..ValueSyncConfig::default()
        },
    })
}

/// The consensus host: what builds, validates and commits blocks for the engine.
fn build_host(
    config: &Config,
    identity: &Identity,
    ledger: &Ledger,
    consensus: &mut Consensus,
    gossip: &gossip::GossipHandle,
) -> anyhow::Result<Host> {
    let chain_id = identity.genesis.chain_id.clone();
    let proposals = config.data_dir.join("proposals");
    Ok(Host::new(HostParts {
        genesis: identity.genesis.clone(),
        store: ledger.store.clone(),
        rules: ledger.rules.clone(),
        shared_rules: ledger.shared_rules.clone(),
        address: Address(identity.node_key),
        signer: identity
            .validator
            .then(|| CustodySigner::new(chain_id, identity.key.clone())),
        mempool: ledger.mempool.clone(),
        keys: ledger.keys.clone(),
        limits: BlockLimits {
            events_max: config.block.events_max,
            size_bytes_max: config.block.size_bytes_max,
            empty_block_delay_ms: config.block.empty_block_delay_ms,
            interval_min_ms: config.block.interval_min_ms,
        },
        network: consensus.channels.network.clone(),
        committed: ledger.committed.clone(),
        #[cfg(feature = "fault-injection")]
        faults: std::mem::take(&mut consensus.host_faults),
        proposals: ProposalStore::open(&proposals)
            .with_context(|| format!("opening {}", proposals.display()))?,
        gossip: gossip.clone_handle(),
    }))
}

/// The HTTP API, bound but not yet serving, with the node's health and what feeds it.
struct Api {
    listener: tokio::net::TcpListener,
    http_addr: SocketAddr,
    health: Arc<Health>,
    state: ApiState,
}

/// Binds the API, starts what keeps its metrics and the node's health fresh, and the
/// delivery of EPCIS subscriptions.
async fn prepare_api(
    config: &Config,
    identity: &Identity,
    ledger: Ledger,
    gossip: &Gossip,
    consensus: &Consensus,
    epcis_gateway: Option<Arc<crate::epcis::capture::Gateway>>,
    personal: Arc<crate::personal::Personal>,
) -> anyhow::Result<Api> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let peers = Arc::new(AtomicUsize::new(0));
    let health = Arc::new(Health::new(
        identity.genesis.validators().len(),
        ledger.head,
        std::time::Instant::now(),
    ));
    tokio::spawn(watch_peer_heights(
        consensus.channels.events.subscribe(),
        health.clone(),
    ));
    tokio::spawn(count_commits(
        metrics.clone(),
        peers.clone(),
        ledger.committed.subscribe(),
        gossip.handle.clone_handle(),
        health.clone(),
    ));
    let state = ApiState {
        genesis: identity.genesis.clone(),
        store: ledger.store,
        rules: ledger.shared_rules,
        mempool: ledger.mempool,
        keys: ledger.keys,
        intake: ledger.intake,
        committed: ledger.committed,
        outbound: gossip.outbound.clone(),
        node_key: identity.node_key,
        validator: identity.validator,
        metrics,
        peers,
        health: health.clone(),
        epcis_gateway,
        epcis_subscriptions: crate::epcis::subscriptions::Subscriptions::open(
            &config.data_dir,
            crate::epcis::subscriptions::Backoff::default(),
        )?,
        personal,
    };
    crate::epcis::subscriptions::spawn_delivery(&state);
    Ok(Api {
        listener,
        http_addr,
        health,
        state,
    })
}

/// Counts commits for the metrics and the node's health, and keeps the gossip peer count
/// fresh. Ends when the commit channel closes.
async fn count_commits(
    metrics: Arc<Metrics>,
    peers: Arc<AtomicUsize>,
    mut commits: broadcast::Receiver<Committed>,
    gossip: gossip::GossipHandle,
    health: Arc<Health>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tokio::select! {
            commit = commits.recv() => match commit {
                Ok(commit) => {
                    metrics.events_committed.inc_by(commit.block.events.len() as u64);
                    health.committed(commit.block.header.height, std::time::Instant::now());
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                peers.store(gossip.connected_peers().await.len(), Ordering::Relaxed);
            }
        }
    }
}

/// Spawns the API, the consensus engine and its host as critical tasks, and says what the
/// supervisor is to watch and stop.
fn spawn_critical(
    mut critical: Critical,
    api: Api,
    consensus: Consensus,
    mut host: Host,
    gossip: gossip::GossipHandle,
    shutdown: oneshot::Receiver<()>,
) -> Supervised {
    let Api {
        listener,
        http_addr,
        health,
        state,
    } = api;
    // An orderly stop: the host finishes the message in hand, the API its requests.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    critical.spawn("http", {
        let stop = stopped(stop_rx.clone());
        async move {
            crate::http::serve(listener, api::app(state), stop).await?;
            Ok(())
        }
    });
    info!(%http_addr, "serving the API");
    let Consensus {
        mut channels,
        engine,
        ..
    } = consensus;
    let engine_actor = engine.actor.clone();
    critical.spawn("consensus engine", async move {
        engine.handle.await?;
        bail!("the consensus engine stopped")
    });
    // The host reads and writes sled, fsyncs, checks signatures and validates blocks: it runs
    // on a thread of its own, never on a tokio worker (ARCHITECTURE.md, the ledger's owners).
    critical.spawn("consensus host", {
        let mut stop_rx = stop_rx.clone();
        on_own_thread("custody-host", async move {
            loop {
                tokio::select! {
                    // The only change ever sent is the stop; a dropped sender means stop too.
                    _ = stop_rx.changed() => return Ok(()),
                    msg = channels.consensus.recv() => match msg {
                        // Each message is handled to completion, so a decided block is
                        // flushed before shutdown proceeds.
                        Some(msg) => host.handle(msg).await,
                        None => bail!("the consensus engine closed its channel to the host"),
                    },
                    // Events fetched for a proposal, whose answer the engine awaits.
                    fetched = host.next_fetched() => host.fetched(fetched),
                }
            }
        })
    });
    Supervised {
        critical,
        health,
        shutdown,
        stop: stop_tx,
        engine: engine_actor,
        gossip,
    }
}

/// Opens the off-ledger personal data and starts what keeps it: the sweep of shipments erased
/// while this node was down (before any request can read them), the follower that deletes on
/// every appended block, and, with `[personal] peers`, the fetcher. Subscribes to commits
/// before the consensus host starts, so no block is missed.
async fn start_personal(
    config: &Config,
    store: &Arc<custody_sled::SledStore>,
    genesis: &Arc<custody_ledger::genesis::Genesis>,
    key: &Arc<custody_ledger::keys::Keypair>,
    member: &custody_ledger::model::MemberId,
    committed: &broadcast::Sender<Committed>,
) -> anyhow::Result<Arc<crate::personal::Personal>> {
    use crate::personal::{self, Personal, PersonalFiles, Sharing};
    let data_dir = config.data_dir.clone();
    let files = tokio::task::spawn_blocking(move || PersonalFiles::open(&data_dir))
        .await
        .map_err(|e| anyhow!("opening the personal-data folder: {e}"))??;
    personal::sweep_async(&files, store).await;
    let (sharing, jobs) = if config.personal.peers.is_empty() {
        (None, None)
    } else {
        let (sharing, jobs) = Sharing::new(config.personal.peers.clone(), key.clone());
        (Some(sharing), Some(jobs))
    };
    let personal = Arc::new(Personal::new(files, sharing, Some(member.clone())));
    if let Some(jobs) = jobs {
        tokio::spawn(personal::share::run_fetcher(
            personal.clone(),
            store.clone(),
            jobs,
        ));
    }
    tokio::spawn(personal::follow_commits(
        personal.clone(),
        store.clone(),
        genesis.clone(),
        committed.subscribe(),
    ));
    Ok(personal)
}

/// Runs `work` to its end on a new thread named `name`, driven by the current runtime's
/// handle, and resolves to its result: the way a task that blocks (sled, fsync, signature
/// checks, block validation) stays off the tokio workers while still awaiting channels. A
/// panic on that thread is resumed in the task awaiting this, so a critical task's death is
/// reported as its panic.
fn on_own_thread(
    name: &'static str,
    work: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    let runtime = tokio::runtime::Handle::current();
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(work)));
            // Nobody waits any more only when the node is being torn down.
            let _ = done_tx.send(outcome);
        });
    async move {
        spawned.with_context(|| format!("starting thread {name}"))?;
        match done_rx.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => bail!("thread {name} ended without its result"),
        }
    }
}

/// What the supervisor watches and what it stops.
struct Supervised {
    critical: Critical,
    health: Arc<Health>,
    shutdown: oneshot::Receiver<()>,
    stop: tokio::sync::watch::Sender<bool>,
    engine: arc_malachitebft_app_channel::app::engine::node::NodeRef,
    gossip: gossip::GossipHandle,
}

/// Watches the critical tasks until a shutdown is asked for. If one ends or panics first,
/// the node is unhealthy from then on, logs which task and why, and returns the error after
/// [`FAILURE_EXIT_DELAY_MS`] so the process exits non-zero: a node whose consensus is dead
/// must not go on serving as if it were alive.
async fn supervise(mut s: Supervised) -> anyhow::Result<()> {
    tokio::select! {
        _ = &mut s.shutdown => {}
        failure = s.critical.first_end() => {
            error!(task = failure.task, reason = %failure.reason, "a critical task stopped; the node exits");
            s.health.task_failed(failure.clone());
            tokio::time::sleep(std::time::Duration::from_millis(FAILURE_EXIT_DELAY_MS)).await;
            s.engine.stop(None);
            return Err(anyhow!("critical task {} stopped: {}", failure.task, failure.reason));
        }
    }
    info!("shutting down");
    let _ = s.stop.send(true);
    let wait = std::time::Duration::from_millis(SHUTDOWN_WAIT_MS);
    let mut pending = vec!["consensus host", "http"];
    let drained = tokio::time::timeout(wait, async {
        // Bounded by the number of critical tasks.
        while !pending.is_empty() {
            let Some(joined) = s.critical.tasks.join_next_with_id().await else {
                break;
            };
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(error) => error.id(),
            };
            let name = s.critical.name(id);
            pending.retain(|p| *p != name);
        }
    })
    .await;
    if drained.is_err() {
        warn!("the consensus host or the API did not stop in time");
    }
    s.engine.stop(None);
    s.gossip.shutdown().await;
    s.critical.tasks.shutdown().await;
    Ok(())
}

/// Follows the engine's events for the heights the other validators are at, for the node's
/// health. Ends with the engine.
async fn watch_peer_heights(
    mut events: tokio::sync::broadcast::Receiver<EngineEvent<CustodyContext>>,
    health: Arc<Health>,
) {
    use tokio::sync::broadcast::error::RecvError;
    // Ends when the engine drops its sender.
    loop {
        match events.recv().await {
            Ok(EngineEvent::Received(msg)) => {
                let validator = match &msg {
                    SignedConsensusMsg::Vote(vote) => vote.validator,
                    SignedConsensusMsg::Proposal(proposal) => proposal.proposer,
                };
                health.peer_at(validator.0, msg.height().0);
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// How often a node tells its peers its height, so that one that fell behind starts syncing.
const SYNC_STATUS_INTERVAL_MS: u64 = 1_000;

/// How long the first event of a gossip batch waits for company. Under load a batch fills
/// in this time (at 1,000 submissions per second a node sends about ten events per message);
/// when idle, an event leaves after at most this delay.
const GOSSIP_LINGER_MS: u64 = 10;

/// Most bytes of events in one gossip message; an event larger than this travels alone.
const GOSSIP_BATCH_BYTES_MAX: usize = 256 * 1024;

/// Most events in one gossip message.
const GOSSIP_BATCH_EVENTS_MAX: usize = 512;

/// Publishes the events admitted through the API in batches: the first event of a batch
/// waits up to [`GOSSIP_LINGER_MS`] for others, and a batch goes out when it is full by
/// count or size. Ends when the API's sender is dropped.
async fn publish_batches(
    gossip: gossip::GossipHandle,
    mut outbound: mpsc::Receiver<Vec<u8>>,
) -> anyhow::Result<()> {
    let mut carried: Option<Vec<u8>> = None;
    loop {
        let first = match carried.take() {
            Some(bytes) => bytes,
            None => match outbound.recv().await {
                Some(bytes) => bytes,
                None => return Ok(()),
            },
        };
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(GOSSIP_LINGER_MS);
        let mut size_bytes = first.len();
        let mut batch = vec![first];
        while batch.len() < GOSSIP_BATCH_EVENTS_MAX {
            let Ok(Some(bytes)) = tokio::time::timeout_at(deadline, outbound.recv()).await else {
                break;
            };
            if size_bytes + bytes.len() > GOSSIP_BATCH_BYTES_MAX {
                carried = Some(bytes);
                break;
            }
            size_bytes += bytes.len();
            batch.push(bytes);
        }
        if let Err(error) = gossip.publish(&batch).await {
            warn!(%error, events = batch.len(), "gossip publish failed");
        }
    }
}
