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
use arc_malachitebft_app_channel::app::net::Multiaddr;
use arc_malachitebft_app_channel::{
    start_engine, ConsensusContext, NetworkContext, NetworkIdentity, RequestContext, SyncContext,
    WalContext,
};
use custody_contracts::{ContractRules, ReferenceBook};
use custody_ledger::event::EncodedEvent;
use custody_ledger::store::{SledStore, Store};
use tokio::sync::{broadcast, mpsc, oneshot, Mutex};
use tracing::{info, warn};

use crate::admission::{admit, Refusal};
use crate::api::{self, ApiState};
use crate::clock::now;
use crate::config::Config;
use crate::consensus::codec::CustodyCodec;
use crate::consensus::context::{Address, CustodyContext};
use crate::consensus::host::{BlockLimits, Committed, Host, HostParts};
use crate::consensus::proposals::ProposalStore;
use crate::consensus::signing::{CustodySigner, CustodyVerifier};
use crate::gossip::{self, GossipConfig, Verdict};
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
    shutdown: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Stops taking events, lets the block in flight finish, and waits for the node to stop.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.done
            .await
            .map_err(|e| anyhow!("node task failed: {e}"))?
    }

    /// Waits until the node stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done
            .await
            .map_err(|e| anyhow!("node task failed: {e}"))?
    }
}

fn multiaddr(text: &str) -> anyhow::Result<Multiaddr> {
    Multiaddr::from_str(text).with_context(|| format!("{text:?} is not a multiaddress"))
}

/// Starts a node from its configuration.
pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
    let genesis = Arc::new(keys::read_genesis(&config.genesis_file)?);
    let key = Arc::new(keys::read_key(&config.key_file)?);
    let node_key = key.public();
    let member = genesis
        .members
        .iter()
        .find(|m| m.node_key == Some(node_key))
        .ok_or_else(|| anyhow!("node key {node_key} is not a node key in genesis"))?;
    let validator = member.voting_power > 0;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Arc::new(SledStore::open(
        config.data_dir.join("ledger"),
        genesis.hash(),
    )?);
    let rules = ContractRules::new(ReferenceBook::load(store.as_ref())?);
    let shared_rules = Arc::new(RwLock::new(rules.clone()));
    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig {
        count_max: config.mempool.count_max,
        size_bytes_max: config.mempool.size_bytes_max,
    })));
    let (committed, _) = broadcast::channel::<Committed>(1024);
    let head = store.head()?.map_or(0, |h| h.height);
    info!(moniker = %config.moniker, %node_key, validator, head, "starting");

    // Event gossip: only genesis node keys may connect.
    let allowed_peers: Vec<libp2p::PeerId> = genesis
        .members
        .iter()
        .filter_map(|m| m.node_key)
        .filter_map(|k| keys::peer_id(&k))
        .collect();
    let (accepted_tx, mut accepted_rx) = mpsc::channel::<EncodedEvent>(4096);
    let validator_fn: gossip::Validator = {
        let (store, genesis, rules, mempool) = (
            store.clone(),
            genesis.clone(),
            shared_rules.clone(),
            mempool.clone(),
        );
        Arc::new(move |bytes: &[u8]| {
            let Ok(event) = EncodedEvent::decode(bytes) else {
                return Verdict::Reject("not a canonical signed event".into());
            };
            if mempool
                .try_lock()
                .is_ok_and(|pool| pool.contains(&event.id))
            {
                return Verdict::Ignore;
            }
            let rules = rules.read().expect("rules lock").clone();
            // Causal predecessors may still be in flight, so only shape, signature and the
            // committed state decide here; the proposer re-checks in order.
            match admit(store.as_ref(), &genesis, &rules, &[], &event, now()) {
                Ok(()) => Verdict::Accept(event),
                Err(Refusal::Duplicate) => Verdict::Ignore,
                Err(Refusal::Invalid(r)) if is_causal(r.code) => Verdict::Accept(event),
                Err(Refusal::Invalid(r)) => Verdict::Reject(r.to_string()),
                Err(Refusal::Unavailable(_)) => Verdict::Ignore,
            }
        })
    };
    let gossip = gossip::spawn(
        GossipConfig {
            keypair: keys::libp2p_keypair(&key),
            listen_addr: multiaddr(&config.gossip.listen)?,
            peers: config
                .gossip
                .peers
                .iter()
                .map(|p| multiaddr(p))
                .collect::<anyhow::Result<_>>()?,
            allowed_peers: allowed_peers.clone(),
            genesis_hash: genesis.hash(),
            message_size_bytes_max: custody_ledger::codec::EVENT_SIZE_BYTES_MAX + 1024,
        },
        validator_fn,
        accepted_tx,
    )
    .await?;
    let gossip_addrs = gossip.listen_addrs().await;
    {
        let mempool = mempool.clone();
        tokio::spawn(async move {
            while let Some(event) = accepted_rx.recv().await {
                if let Err(error) = mempool.lock().await.insert(event) {
                    warn!(%error, "gossiped event dropped");
                }
            }
        });
    }
    let (outbound_tx, outbound_rx) = mpsc::channel::<Vec<u8>>(4096);
    tokio::spawn(publish_batches(gossip.clone_handle(), outbound_rx));

    // Consensus.
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
            consensus: format!("/custody/{network_tag}/consensus/v1"),
            discovery_kad: format!("/custody/{network_tag}/discovery/kad/v1"),
            discovery_regres: format!("/custody/{network_tag}/discovery/reqres/v1"),
            sync: format!("/custody/{network_tag}/sync/v1"),
            validator_proof: format!("/custody/{network_tag}/validator-proof/v1"),
        },
        channel_names: ChannelNames {
            consensus: format!("/custody/{network_tag}/consensus"),
            proposal_parts: format!("/custody/{network_tag}/proposal_parts"),
            sync: format!("/custody/{network_tag}/sync"),
            liveness: format!("/custody/{network_tag}/liveness"),
        },
        ..P2pConfig::default()
    };
    let engine_config = EngineConfig {
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
    };
    let address = Address(node_key);
    let chain_id = genesis.chain_id.clone();
    let identity = NetworkIdentity::new(
        config.moniker.clone(),
        keys::libp2p_keypair(&key),
        validator.then(|| node_key.to_hex()),
    );
    let consensus_ctx = if validator {
        ConsensusContext::new_validator(
            address,
            Box::new(CustodyVerifier::new(chain_id.clone())),
            Box::new(CustodySigner::new(chain_id.clone(), key.clone())),
        )
    } else {
        ConsensusContext::new_full_node(address, Box::new(CustodyVerifier::new(chain_id.clone())))
    };
    let (mut channels, engine) = start_engine(
        CustodyContext,
        engine_config,
        WalContext::new(
            config.data_dir.join("wal").join("consensus.wal"),
            CustodyCodec,
        ),
        NetworkContext::new(identity, CustodyCodec),
        consensus_ctx,
        SyncContext::new(CustodyCodec),
        RequestContext::new(100),
    )
    .await
    .map_err(|e| anyhow!("starting the consensus engine: {e}"))?;

    let unchecked_event = match &config.faults.propose_unchecked_event {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the fault-injection event {}", path.display()))?;
            let event = EncodedEvent::decode(&bytes)
                .map_err(|e| anyhow!("the fault-injection event {}: {e}", path.display()))?;
            warn!(event = %event.id, "FAULT INJECTION: this node proposes an event without checking the rules");
            Some(event)
        }
    };
    let mut host = Host::new(HostParts {
        genesis: genesis.clone(),
        store: store.clone(),
        rules,
        shared_rules: shared_rules.clone(),
        address,
        signer: validator.then(|| CustodySigner::new(chain_id.clone(), key.clone())),
        mempool: mempool.clone(),
        limits: BlockLimits {
            events_max: config.block.events_max,
            size_bytes_max: config.block.size_bytes_max,
            empty_block_delay_ms: config.block.empty_block_delay_ms,
            interval_min_ms: config.block.interval_min_ms,
        },
        network: channels.network.clone(),
        committed: committed.clone(),
        unchecked_event,
        proposals: ProposalStore::open(&config.data_dir.join("proposals"))
            .with_context(|| format!("opening {}", config.data_dir.join("proposals").display()))?,
    });

    // HTTP.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let peers = Arc::new(AtomicUsize::new(0));
    {
        // Counts commits for the metrics, and keeps the gossip peer count fresh.
        let (metrics, peers, mut commits) = (metrics.clone(), peers.clone(), committed.subscribe());
        let gossip_handle = gossip.clone_handle();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                tokio::select! {
                    commit = commits.recv() => match commit {
                        Ok(commit) => {
                            metrics.events_committed.inc_by(commit.block.events.len() as u64);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tick.tick() => {
                        peers.store(gossip_handle.connected_peers().await.len(), Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let api_state = ApiState {
        genesis: genesis.clone(),
        store: store.clone(),
        rules: shared_rules,
        mempool,
        committed,
        outbound: outbound_tx,
        node_key,
        validator,
        metrics: metrics.clone(),
        peers: peers.clone(),
    };
    let (http_stop_tx, http_stop_rx) = oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(listener, api::app(api_state))
            .with_graceful_shutdown(async {
                let _ = http_stop_rx.await;
            })
            .await
    });
    info!(%http_addr, "serving the API");

    let (shutdown_tx, mut shutdown_rx) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut shutdown_rx => break,
                msg = channels.consensus.recv() => match msg {
                    // Each message is handled to completion, so a decided block is flushed
                    // before shutdown proceeds.
                    Some(msg) => host.handle(msg).await,
                    None => bail!("the consensus engine stopped"),
                },
            }
        }
        info!("shutting down");
        let _ = http_stop_tx.send(());
        let _ = http.await;
        engine.actor.stop(None);
        let _ = engine.handle.await;
        gossip.shutdown().await;
        Ok(())
    });
    Ok(RunningNode {
        http_addr,
        gossip_addrs,
        shutdown: shutdown_tx,
        done,
    })
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
async fn publish_batches(gossip: gossip::GossipHandle, mut outbound: mpsc::Receiver<Vec<u8>>) {
    let mut carried: Option<Vec<u8>> = None;
    loop {
        let first = match carried.take() {
            Some(bytes) => bytes,
            None => match outbound.recv().await {
                Some(bytes) => bytes,
                None => return,
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

/// Rejections that may only mean a causal predecessor has not arrived yet.
fn is_causal(code: &str) -> bool {
    use custody_ledger::reject::codes;
    matches!(
        code,
        codes::SHIPMENT_UNKNOWN
            | codes::CUSTODY_NO_PENDING_HANDOFF
            | codes::CUSTOMS_UNKNOWN_DECLARATION
            | codes::SHIPMENT_WRONG_STATE
            // A release, payment, arrival or return authorisation may be in a block this node
            // has not committed yet.
            | codes::DELIVERY_NOT_RELEASED
            | codes::CUSTOMS_UNPAID
            | codes::CUSTODY_HELD_BY_CUSTOMS
            | codes::RETURN_BAD_RMA
            | custody_contracts::payments::codes::NO_ARRIVAL
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_a_predecessor_is_causal_and_a_broken_rule_is_not() {
        for code in [
            "delivery.not_released",
            "customs.unpaid",
            "clearance.no_arrival",
        ] {
            assert!(is_causal(code), "{code}");
        }
        for code in [
            "signature.invalid",
            "invoice.total_mismatch",
            "event.malformed",
        ] {
            assert!(!is_causal(code), "{code}");
        }
    }
}
