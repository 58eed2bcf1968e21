//! Event gossip: a libp2p swarm of our own, beside Malachite's consensus network, that spreads
//! submitted events to every member's mempool before any of them proposes a block.
//!
//! The swarm is built so that a bad peer can do little harm:
//!
//! - Only genesis members get in. Connections from keys outside the allow-list are refused
//!   once the noise handshake has proven the remote's key, so the rest of the stack never
//!   sees them.
//! - Only peers of the same chain stay. Identify announces `custody/<genesis hex>` and a
//!   peer announcing anything else is disconnected; the gossipsub protocol id and the topic
//!   also carry the genesis hash, so two chains cannot exchange events even before identify
//!   has run.
//! - Nothing is forwarded unjudged. Gossipsub runs with signed messages, strict validation
//!   and manual validation: every event of a received message goes through the node's
//!   [`Validator`] — off the swarm's task: the swarm hands the events on and reports the
//!   verdict when it comes back — and the message is forwarded only if no event in it is
//!   rejected; a node too busy to judge it ignores it. A
//!   rejected event lowers the sender's peer score, so a peer that keeps sending garbage is
//!   pruned from the mesh and eventually ignored.
//! - A message carries a batch of events (see [`encode_batch`]): signing and verifying a
//!   gossipsub message costs about as much as checking an event's own signature, so one
//!   message per event would double the signature work of every node under load.
//! - Identical messages dedupe across publishers, because a message's id is the SHA-256 of
//!   its bytes rather than the default (author, sequence number).
//!
//! - Events can be asked for by id ([`crate::event_fetch`]): a validator missing events a
//!   proposal names fetches them from the proposer. Only the genesis members that the
//!   allow-list lets connect can ask, a few requests are served at a time, and each answer
//!   is bounded.
//!
//! The swarm runs on one tokio task; callers talk to it through a cloneable
//! [`GossipHandle`] over a bounded command queue, and accepted events leave through a
//! bounded channel that the swarm never waits on.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use custody_ledger::event::VerifiedEvent;
use custody_ledger::Digest;
use futures::StreamExt;
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, PeerScoreParams,
    PeerScoreThresholds, PublishError, TopicScoreParams, ValidationMode,
};
use libp2p::identify;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::event_fetch::{self, EventSource, EventsCodec, FetchError};

/// Peers each node relays a message to (gossipsub's D), and the bounds of its mesh.
const MESH_PEERS: usize = 2;
const MESH_PEERS_MIN: usize = 2;
const MESH_PEERS_MAX: usize = 4;

/// Gossipsub heartbeat. Short, so that meshes form and heal within a second on a small,
/// permissioned network, where the extra control traffic costs nothing.
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// Delay before the first heartbeat; the default of five seconds would leave a freshly
/// started node without a mesh for that long.
const HEARTBEAT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// Capacity of the command queue between handles and the swarm task. Callers wait when it
/// is full; the swarm never does.
const COMMAND_QUEUE_CAPACITY: usize = 256;

/// How often the swarm task looks for dial targets whose backoff has expired.
const REDIAL_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// First wait before redialling a lost or failed peer.
const REDIAL_BACKOFF_MIN: Duration = Duration::from_millis(500);

/// Longest wait between redials, so that a peer coming back after an outage is found
/// within half a minute.
const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long [`spawn`] waits for the listener to report its bound address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections with nothing to do are closed after this long. Gossipsub keeps mesh
/// connections alive by itself; this only bounds connections to peers outside the mesh.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// Room for gossipsub's envelope around an event (author, sequence number, topic,
/// signature, protobuf tags): the event limit is ours, the wire limit must exceed it by this.
const ENVELOPE_BYTES_MAX: usize = 1024;

/// Smallest frame limit, so that control traffic (long IHAVE lists) still fits when events
/// are limited to a few kilobytes. This is gossipsub's default.
const FRAME_BYTES_MIN: usize = 65_536;

/// Most fetches of events this node waits on at once; more are refused at once
/// ([`FetchError::Busy`]). A validator fetches for one proposal at a time.
const FETCHES_IN_FLIGHT_MAX: usize = 8;

/// Most requests for events served at once; more are dropped unanswered, which the asking
/// peer sees as a failed fetch.
const SERVING_MAX: usize = 8;

/// How long a fetch of events waits for its answer in the swarm; the consensus host gives up
/// sooner (`consensus::fetch::FETCH_TIMEOUT_MS`), this only frees the slot.
const FETCH_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a node needs to join event gossip.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// The node's ed25519 key, whose public half is its node key in genesis; it signs every
    /// message we publish and proves our identity to peers.
    pub keypair: Keypair,
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/26660`; port 0 picks a free port.
    pub listen_addr: Multiaddr,
    /// Peers to dial and keep dialling (with backoff) whenever the connection is lost. An
    /// address should end in `/p2p/<peer id>` so that a connection already opened by the
    /// other side is recognised and not duplicated.
    pub peers: Vec<Multiaddr>,
    /// The genesis members' node keys; every other peer is refused at connection level.
    pub allowed_peers: Vec<PeerId>,
    /// The chain's genesis hash; it scopes the topic, the gossipsub protocol and the identify
    /// protocol version, so that nodes of different chains never exchange events.
    pub genesis_hash: Digest,
    /// Largest message (a batch of events) accepted for gossip; larger ones are refused when
    /// published and rejected (with a score penalty) when received.
    pub message_size_bytes_max: usize,
}

/// A validator's judgement of one received event, which decides (with those of the other
/// events of its message) whether gossipsub forwards the message and whether its sender is
/// penalised.
// A verdict lives only from the validator's return to the swarm's next line, so the
// event's size costs nothing, while boxing it would cost every validator an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid, new event: forward it and hand it to the node.
    Accept(VerifiedEvent),
    /// An invalid message (undecodable, bad signature, breaks the rules): drop it and lower
    /// the sender's score. The reason is only logged.
    Reject(String),
    /// A message that is not wrong but not useful either (e.g. an event already known): drop
    /// it without penalty.
    Ignore,
}

/// Where the swarm sends the verdicts on one message's events, in order.
pub type VerdictReply = Box<dyn FnOnce(Vec<Verdict>) + Send>;

/// Takes the events of one received message (their bytes, in order) to judge — decode,
/// signature, rules; duplicates are [`Verdict::Ignore`] — and answers through the reply,
/// later and from elsewhere. It is called on the swarm task, so it must only hand the work
/// on, never do it or wait: `false` when it cannot take more now, and the message is then
/// ignored (not forwarded, no penalty).
pub type Validator = Arc<dyn Fn(Vec<Vec<u8>>, VerdictReply) -> bool + Send + Sync>;

/// A validator that judges each event at once with `judge`, on the caller's task: for tests
/// and for judges that are cheap by construction.
pub fn immediate_validator(judge: impl Fn(&[u8]) -> Verdict + Send + Sync + 'static) -> Validator {
    Arc::new(move |events: Vec<Vec<u8>>, reply: VerdictReply| {
        reply(events.iter().map(|bytes| judge(bytes)).collect());
        true
    })
}

/// The verdicts on one message, back at the swarm.
struct Judged {
    message_id: MessageId,
    source: PeerId,
    verdicts: Vec<Verdict>,
}

/// Why gossip could not start or an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The configuration cannot work (e.g. a zero message size).
    #[error("invalid gossip configuration: {0}")]
    Config(String),
    /// The TCP, noise or yamux layer could not be set up.
    #[error("cannot set up the gossip transport: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The configured listen address.
        address: Multiaddr,
        /// What went wrong.
        reason: String,
    },
    /// The batch exceeds the configured gossip size limit.
    #[error("the batch is {size} bytes, over the gossip limit of {max} bytes")]
    TooLarge {
        /// The event's size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// Gossipsub refused the event for another reason (e.g. every peer's queue is full).
    #[error("cannot publish the event: {0}")]
    Publish(#[source] PublishError),
    /// The swarm task has shut down.
    #[error("the gossip swarm has stopped")]
    Stopped,
}

/// A cloneable handle on the running swarm; every method is a message to the swarm task.
#[derive(Debug, Clone)]
pub struct GossipHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    /// The swarm's task, until a supervisor takes it ([`GossipHandle::take_task`]).
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl GossipHandle {
    /// Asks `peer` for the canonical bytes of the events `ids`, in that order; the answer may
    /// stop early at an event the peer does not hold, and is not checked here.
    pub async fn fetch_events(
        &self,
        peer: PeerId,
        ids: Vec<custody_ledger::model::EventId>,
    ) -> Result<Vec<Vec<u8>>, FetchError> {
        self.request(|reply| Command::FetchEvents { peer, ids, reply })
            .await
            .unwrap_or(Err(FetchError::Stopped))
    }

    /// Publishes a batch of events' canonical bytes to the mesh, as one message.
    ///
    /// Having no subscribed peer yet, or having seen the same bytes already, is not an error:
    /// the events are in the local mempool anyway and the network either will propose them or
    /// already has them, so both are logged and reported as success.
    pub async fn publish(&self, events: &[Vec<u8>]) -> Result<(), GossipError> {
        let data = encode_batch(events);
        self.request(|reply| Command::Publish { data, reply })
            .await
            .unwrap_or(Err(GossipError::Stopped))
    }

    /// Another handle on the same swarm, e.g. for a publishing task; the same as `clone`.
    pub fn clone_handle(&self) -> GossipHandle {
        self.clone()
    }

    /// The peer id derived from the node key, as other members see us.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The addresses actually bound, with port 0 resolved, so that tests and operators can
    /// tell peers where to dial. Empty once the swarm has stopped.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.request(Command::ListenAddrs).await.unwrap_or_default()
    }

    /// Peers connected and confirmed to run the same chain (identify announced our genesis
    /// hash), sorted. Peers still being identified, and peers refused, are not included.
    pub async fn connected_peers(&self) -> Vec<PeerId> {
        self.request(Command::ConnectedPeers)
            .await
            .unwrap_or_default()
    }

    /// Peers in our gossipsub mesh for the events topic, sorted; the peers an accepted event
    /// is forwarded to, which tells whether the node is ready to gossip.
    pub async fn mesh_peers(&self) -> Vec<PeerId> {
        self.request(Command::MeshPeers).await.unwrap_or_default()
    }

    /// A peer's current gossipsub score, for health checks and for seeing that misbehaving
    /// peers are penalised. `None` if the peer is unknown or the swarm has stopped.
    pub async fn peer_score(&self, peer: PeerId) -> Option<f64> {
        self.request(|reply| Command::PeerScore { peer, reply })
            .await
            .flatten()
    }

    /// The swarm's task, for a supervisor to watch; `None` once taken.
    pub fn take_task(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.task.lock().expect("gossip task lock").take()
    }

    /// Stops the swarm, closing every connection, and returns once it is gone. Other clones
    /// of the handle see [`GossipError::Stopped`] afterwards.
    pub async fn shutdown(self) {
        // An error means the task is already gone, which is what we want.
        let _ = self.request(Command::Shutdown).await;
    }

    async fn request<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// Requests from handles to the swarm task, each with a one-shot reply.
enum Command {
    Publish {
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    MeshPeers(oneshot::Sender<Vec<PeerId>>),
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
    FetchEvents {
        peer: PeerId,
        ids: Vec<custody_ledger::model::EventId>,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, FetchError>>,
    },
    Shutdown(oneshot::Sender<()>),
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Event bytes would swamp logs; their size is what matters.
        match self {
            Command::Publish { data, .. } => write!(f, "Publish({} bytes)", data.len()),
            Command::ListenAddrs(_) => f.write_str("ListenAddrs"),
            Command::ConnectedPeers(_) => f.write_str("ConnectedPeers"),
            Command::MeshPeers(_) => f.write_str("MeshPeers"),
            Command::PeerScore { peer, .. } => write!(f, "PeerScore({peer})"),
            Command::FetchEvents { peer, ids, .. } => {
                write!(f, "FetchEvents({} from {peer})", ids.len())
            }
            Command::Shutdown(_) => f.write_str("Shutdown"),
        }
    }
}

/// The composed behaviour. The allow-list comes first so that a refused connection is
/// denied before the other behaviours set up handlers for it.
#[derive(NetworkBehaviour)]
struct Behaviour {
    allowed: allow_block_list::Behaviour<AllowedPeers>,
    identify: identify::Behaviour,
    gossipsub: gossipsub::Behaviour,
    fetch: request_response::Behaviour<EventsCodec>,
}

/// Starts event gossip on the current tokio runtime and returns once the listener is bound.
///
/// Accepted events go to `accepted`; when that channel is full the event is dropped and
/// logged, because stalling the swarm would stall gossip for every peer. (The event is still
/// forwarded, and the network will propose it regardless.)
pub async fn spawn(
    config: GossipConfig,
    validator: Validator,
    accepted: mpsc::Sender<VerifiedEvent>,
    source: EventSource,
) -> Result<GossipHandle, GossipError> {
    if config.message_size_bytes_max == 0 {
        return Err(GossipError::Config(
            "message_size_bytes_max must be positive".into(),
        ));
    }
    let genesis_hex = config.genesis_hash.to_hex();
    let topic = IdentTopic::new(format!("custody/events/{genesis_hex}"));
    let protocol_version = format!("custody/{genesis_hex}");
    let behaviour = build_behaviour(&config, &topic, &genesis_hex, &protocol_version)?;

    let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|error| GossipError::Transport(Box::new(error)))?
        .with_behaviour(|_| behaviour)
        .unwrap_or_else(|never| match never {})
        .with_swarm_config(|swarm_config| {
            swarm_config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
        })
        .build();
    let local_peer_id = *swarm.local_peer_id();

    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|error| GossipError::Config(format!("cannot subscribe to {topic}: {error}")))?;
    swarm
        .listen_on(config.listen_addr.clone())
        .map_err(|error| GossipError::Listen {
            address: config.listen_addr.clone(),
            reason: error.to_string(),
        })?;

    let allowed: HashSet<PeerId> = config.allowed_peers.iter().copied().collect();
    let dials = dial_targets(&config.peers, &allowed, local_peer_id);
    let (judged_tx, judged) = mpsc::unbounded_channel();
    let mut driver = Driver {
        swarm,
        topic,
        protocol_version,
        allowed,
        validator,
        accepted,
        judged_tx,
        judged,
        message_size_bytes_max: config.message_size_bytes_max,
        dials,
        admitted: HashSet::new(),
        fetches: Fetches::new(source),
    };
    driver.wait_until_listening(&config.listen_addr).await?;
    driver.redial_due();
    tracing::info!(
        peer = %local_peer_id,
        listen = ?driver.swarm.listeners().collect::<Vec<_>>(),
        topic = %driver.topic,
        "event gossip started"
    );

    let (commands, command_queue) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
    let task = tokio::spawn(driver.run(command_queue));
    Ok(GossipHandle {
        commands,
        local_peer_id,
        task: Arc::new(std::sync::Mutex::new(Some(task))),
    })
}

/// Builds the allow-list, identify and gossipsub behaviours from the configuration.
fn build_behaviour(
    config: &GossipConfig,
    topic: &IdentTopic,
    genesis_hex: &str,
    protocol_version: &str,
) -> Result<Behaviour, GossipError> {
    let mut allowed = allow_block_list::Behaviour::<AllowedPeers>::default();
    for peer in &config.allowed_peers {
        allowed.allow_peer(*peer);
    }

    let identify = identify::Behaviour::new(
        identify::Config::new(protocol_version.to_owned(), config.keypair.public())
            .with_agent_version(format!("custody-node/{}", env!("CARGO_PKG_VERSION"))),
    );

    let message_bytes_max = config
        .message_size_bytes_max
        .saturating_add(ENVELOPE_BYTES_MAX);
    let frame_bytes_max = message_bytes_max
        .saturating_add(ENVELOPE_BYTES_MAX)
        .max(FRAME_BYTES_MIN);
    let gossip_config = gossipsub::ConfigBuilder::default()
        // Peers of another chain do not even speak the same gossipsub protocol.
        .protocol_id_prefix(format!("/custody/{genesis_hex}/meshsub"))
        .heartbeat_initial_delay(HEARTBEAT_INITIAL_DELAY)
        .heartbeat_interval(HEARTBEAT_INTERVAL)
        // A publisher sends its message to every subscribed peer itself (flood publishing),
        // and every peer checks the signature of each copy it receives before it can tell a
        // duplicate. On a network where every member connects to every other, a small mesh
        // keeps a relay path for a peer the publisher cannot reach without each message
        // arriving once per member.
        .flood_publish(true)
        .mesh_n(MESH_PEERS)
        .mesh_n_low(MESH_PEERS_MIN)
        .mesh_n_high(MESH_PEERS_MAX)
        .mesh_outbound_min(1)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(content_message_id)
        // Per message, checked when decoding, so an oversized message counts against its
        // sender's score; the frame limit only bounds what a peer can make us buffer.
        .set_topic_max_transmit_size(topic.hash(), message_bytes_max)
        .max_transmit_size(frame_bytes_max)
        .build()
        .map_err(|error| GossipError::Config(format!("gossipsub: {error}")))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        MessageAuthenticity::Signed(config.keypair.clone()),
        gossip_config,
    )
    .map_err(|error| GossipError::Config(format!("gossipsub: {error}")))?;
    let (score_params, score_thresholds) = peer_scoring(topic);
    gossipsub
        .with_peer_score(score_params, score_thresholds)
        .map_err(|error| GossipError::Config(format!("gossipsub peer scoring: {error}")))?;

    let fetch = request_response::Behaviour::with_codec(
        EventsCodec,
        [(event_fetch::protocol(genesis_hex), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(FETCH_REQUEST_TIMEOUT)
            .with_max_concurrent_streams(SERVING_MAX),
    );
    Ok(Behaviour {
        allowed,
        identify,
        gossipsub,
        fetch,
    })
}

/// A message's id is the hash of its bytes alone, so the same event published by two
/// members (or resubmitted) is one message to gossipsub and is delivered once.
fn content_message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::new(Digest::sha256(&message.data).as_bytes())
}

/// The bytes of a gossip message carrying `events`: the canonical encoding (as everywhere in
/// the ledger) of the list of the events' canonical bytes.
pub fn encode_batch(events: &[Vec<u8>]) -> Vec<u8> {
    custody_ledger::codec::encode(events)
}

/// The events' bytes in a gossip message of at most `size_bytes_max` bytes; a message that is
/// not exactly such a list (truncated, trailing bytes, a length beyond the message) is
/// refused whole.
pub fn decode_batch(data: &[u8], size_bytes_max: usize) -> Result<Vec<Vec<u8>>, String> {
    custody_ledger::codec::decode::<Vec<Vec<u8>>>(data, size_bytes_max)
        .map_err(|error| format!("not a batch of events: {error}"))
}

/// Peer scoring tuned for a small permissioned network.
///
/// Invalid messages (P4) are what matters: they cost `20 × count²`, with the count fading
/// over about ten minutes. Honest peers earn a little for time in the mesh and first
/// deliveries, at most 11 points, so that good behaviour cannot bank enough credit to hide
/// abuse: a single bad event takes any peer below zero (it is pruned from the mesh), two
/// below the publish threshold, three below the graylist threshold (everything it sends is
/// ignored). Mesh delivery quotas (P3) are
/// off because event traffic is bursty and an idle network is not a faulty one; IP
/// colocation (P6) is off because members are admitted by key, and in tests all share
/// 127.0.0.1.
fn peer_scoring(topic: &IdentTopic) -> (PeerScoreParams, PeerScoreThresholds) {
    let topic_params = TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.1,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(60)),
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(
            600,
        )),
        ..TopicScoreParams::default()
    };
    let mut params = PeerScoreParams {
        topic_score_cap: 20.0,
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    params.topics.insert(topic.hash(), topic_params);
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -30.0,
        publish_threshold: -60.0,
        graylist_threshold: -120.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 1.0,
    };
    (params, thresholds)
}

/// A configured peer we keep dialling.
#[derive(Debug)]
struct DialTarget {
    address: Multiaddr,
    /// From the address's `/p2p/` suffix, or learnt from the first connection.
    peer: Option<PeerId>,
    /// The dial in flight, so its outcome can be matched to this target.
    pending: Option<ConnectionId>,
    next_attempt: Instant,
    backoff: Duration,
}

/// Turns configured addresses into dial targets, leaving out ourselves and warning about
/// peers the allow-list would refuse anyway.
fn dial_targets(
    addresses: &[Multiaddr],
    allowed: &HashSet<PeerId>,
    local_peer_id: PeerId,
) -> Vec<DialTarget> {
    let now = Instant::now();
    addresses
        .iter()
        .filter_map(|address| {
            let peer = match address.iter().last() {
                Some(Protocol::P2p(peer)) => Some(peer),
                _ => None,
            };
            if peer == Some(local_peer_id) {
                tracing::debug!(%address, "not dialling our own address");
                return None;
            }
            if let Some(peer) = peer.filter(|peer| !allowed.contains(peer)) {
                tracing::warn!(%address, %peer, "configured gossip peer is not a genesis member; it will be refused");
            }
            Some(DialTarget {
                address: address.clone(),
                peer,
                pending: None,
                next_attempt: now,
                backoff: REDIAL_BACKOFF_MIN,
            })
        })
        .collect()
}

/// The swarm task's state.
struct Driver {
    swarm: Swarm<Behaviour>,
    topic: IdentTopic,
    protocol_version: String,
    /// Genesis node keys; messages must be authored by one of them.
    allowed: HashSet<PeerId>,
    validator: Validator,
    accepted: mpsc::Sender<VerifiedEvent>,
    /// Verdicts coming back from the validator. Unbounded, yet bounded in effect: a verdict
    /// answers a message the validator took, and the validator takes only what its own
    /// bounded queue holds.
    judged_tx: mpsc::UnboundedSender<Judged>,
    judged: mpsc::UnboundedReceiver<Judged>,
    message_size_bytes_max: usize,
    dials: Vec<DialTarget>,
    /// Connected peers whose identify announced our genesis.
    admitted: HashSet<PeerId>,
    fetches: Fetches,
}

/// Fetches of events in flight, both ways.
struct Fetches {
    source: EventSource,
    /// Our requests awaiting answers, bounded by [`FETCHES_IN_FLIGHT_MAX`].
    waiting: std::collections::HashMap<OutboundRequestId, FetchReply>,
    /// Answers looked up by serving tasks, for the swarm to send.
    answered_tx: mpsc::Sender<Answer>,
    answered_rx: mpsc::Receiver<Answer>,
    /// Requests being looked up, bounded by [`SERVING_MAX`].
    serving: usize,
}

type FetchReply = oneshot::Sender<Result<Vec<Vec<u8>>, FetchError>>;

/// A request's channel with the bodies to answer it with.
type Answer = (ResponseChannel<Vec<Vec<u8>>>, Vec<Vec<u8>>);

impl Fetches {
    fn new(source: EventSource) -> Fetches {
        let (answered_tx, answered_rx) = mpsc::channel(SERVING_MAX);
        Fetches {
            source,
            waiting: std::collections::HashMap::new(),
            answered_tx,
            answered_rx,
            serving: 0,
        }
    }
}

impl Driver {
    /// Drives the swarm until a listener is bound, so that [`spawn`] reports bind failures
    /// and [`GossipHandle::listen_addrs`] is meaningful from the start.
    async fn wait_until_listening(&mut self, address: &Multiaddr) -> Result<(), GossipError> {
        let listen_error = |reason: String| GossipError::Listen {
            address: address.clone(),
            reason,
        };
        let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
        tokio::pin!(deadline);
        while self.swarm.listeners().next().is_none() {
            tokio::select! {
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(listen_error(error.to_string()));
                    }
                    SwarmEvent::ListenerClosed { reason, .. } => {
                        let reason = match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(error) => error.to_string(),
                        };
                        return Err(listen_error(reason));
                    }
                    other => self.on_swarm_event(other),
                },
                () = &mut deadline => {
                    return Err(listen_error("no address bound in time".to_owned()));
                }
            }
        }
        Ok(())
    }

    /// The swarm task: swarm events, commands and redials, until shut down or every handle
    /// is dropped.
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut redial = tokio::time::interval(REDIAL_CHECK_INTERVAL);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let acknowledge = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                // Never closed: the driver holds a sender.
                Some(judged) = self.judged.recv() => self.on_judged(judged),
                Some((channel, bodies)) = self.fetches.answered_rx.recv() => {
                    self.fetches.serving -= 1;
                    // Err means the asker is gone; nothing to do.
                    let _ = self.swarm.behaviour_mut().fetch.send_response(channel, bodies);
                }
                command = commands.recv() => match command {
                    Some(Command::Shutdown(acknowledge)) => break Some(acknowledge),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                _ = redial.tick() => self.redial_due(),
            }
        };
        let local_peer_id = *self.swarm.local_peer_id();
        // Dropping the swarm closes listeners and connections before we acknowledge.
        drop(self);
        tracing::info!(peer = %local_peer_id, "event gossip stopped");
        if let Some(acknowledge) = acknowledge {
            let _ = acknowledge.send(());
        }
    }

    fn on_command(&mut self, command: Command) {
        // A caller that stopped waiting has dropped its receiver; nothing to do about it.
        match command {
            Command::Publish { data, reply } => {
                let _ = reply.send(self.publish(data));
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers(reply) => {
                let mut peers: Vec<PeerId> = self.admitted.iter().copied().collect();
                peers.sort();
                let _ = reply.send(peers);
            }
            Command::MeshPeers(reply) => {
                let topic = self.topic.hash();
                let mut peers: Vec<PeerId> = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .mesh_peers(&topic)
                    .copied()
                    .collect();
                peers.sort();
                let _ = reply.send(peers);
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::FetchEvents { peer, ids, reply } => self.fetch(peer, ids, reply),
            // Handled by the loop, which has to stop.
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn publish(&mut self, data: Vec<u8>) -> Result<(), GossipError> {
        if data.len() > self.message_size_bytes_max {
            return Err(GossipError::TooLarge {
                size: data.len(),
                max: self.message_size_bytes_max,
            });
        }
        let id = Digest::sha256(&data);
        let topic = self.topic.clone();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) => {
                tracing::debug!(message = %id, "events published");
                Ok(())
            }
            Err(PublishError::NoPeersSubscribedToTopic) => {
                tracing::info!(message = %id, "no gossip peer subscribed; events not gossiped");
                Ok(())
            }
            Err(PublishError::Duplicate) => {
                tracing::debug!(message = %id, "events already gossiped");
                Ok(())
            }
            Err(error) => {
                tracing::warn!(message = %id, %error, "cannot publish events");
                Err(GossipError::Publish(error))
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossipsub(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Allowed(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Fetch(event)) => self.on_fetch(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "gossip connection established");
                if let Some(target) = self
                    .dials
                    .iter_mut()
                    .find(|target| target.pending == Some(connection_id))
                {
                    target.pending = None;
                    target.peer.get_or_insert(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, %error, "gossip dial failed");
                if let Some(target) = self
                    .dials
                    .iter_mut()
                    .find(|target| target.pending == Some(connection_id))
                {
                    target.pending = None;
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, cause = ?cause, "gossip connection closed");
                if num_established == 0 {
                    self.admitted.remove(&peer_id);
                    // Not at once: a peer that keeps dropping us (or that we drop, for
                    // running another chain) is retried ever more slowly.
                    let now = Instant::now();
                    for target in self
                        .dials
                        .iter_mut()
                        .filter(|target| target.peer == Some(peer_id))
                    {
                        target.next_attempt = target.next_attempt.max(now + target.backoff);
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                peer_id,
                error,
                ..
            } => {
                // Refused non-members end up here.
                tracing::debug!(peer = ?peer_id, address = %send_back_addr, %error, "gossip connection refused or failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!(%address, "gossip listening");
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::warn!(?addresses, ?reason, "gossip listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "gossip listener error");
            }
            _ => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                if info.protocol_version == self.protocol_version {
                    if self.admitted.insert(peer_id) {
                        tracing::info!(peer = %peer_id, agent = %info.agent_version, "gossip peer admitted");
                    }
                    // A healthy connection: if it drops, redial promptly.
                    for target in self
                        .dials
                        .iter_mut()
                        .filter(|target| target.peer == Some(peer_id))
                    {
                        target.backoff = REDIAL_BACKOFF_MIN;
                    }
                } else {
                    tracing::warn!(
                        peer = %peer_id,
                        theirs = %info.protocol_version,
                        ours = %self.protocol_version,
                        "gossip peer runs another chain; disconnecting"
                    );
                    self.admitted.remove(&peer_id);
                    // Err means it is already gone.
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                }
            }
            identify::Event::Error { peer_id, error, .. } => {
                tracing::debug!(peer = %peer_id, %error, "identify failed");
            }
            identify::Event::Sent { .. } | identify::Event::Pushed { .. } => {}
        }
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_message(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "gossip peer subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "gossip peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak our gossip protocol");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::warn!(peer = %peer_id, ?failed_messages, "gossip peer is slow");
            }
        }
    }

    /// A received message: the checks that belong to the network here, the node's own on
    /// every event off this task (the validator); the verdict is reported when they answer.
    fn on_message(&mut self, source: PeerId, message_id: MessageId, message: gossipsub::Message) {
        let events = match self.frame(&message) {
            Ok(events) => events,
            Err(reason) => {
                tracing::warn!(message = %message_id, from = %source, author = ?message.source, %reason, "gossiped message rejected");
                self.report(&message_id, &source, MessageAcceptance::Reject);
                return;
            }
        };
        let judged = self.judged_tx.clone();
        let id = message_id.clone();
        let reply: VerdictReply = Box::new(move |verdicts| {
            // Fails only once the swarm has stopped, when nothing is left to report.
            let _ = judged.send(Judged {
                message_id: id,
                source,
                verdicts,
            });
        });
        if !(self.validator)(events, reply) {
            tracing::debug!(message = %message_id, from = %source, "node busy; gossiped message ignored");
            self.report(&message_id, &source, MessageAcceptance::Ignore);
        }
    }

    /// The checks that belong to the network: topic, author, size, batch framing. The
    /// events' bytes, or why the message must not be forwarded.
    fn frame(&self, message: &gossipsub::Message) -> Result<Vec<Vec<u8>>, String> {
        if message.topic != self.topic.hash() {
            return Err(format!("unexpected topic {}", message.topic));
        }
        match message.source {
            Some(author) if self.allowed.contains(&author) => {}
            Some(author) => return Err(format!("published by {author}, not a genesis member")),
            None => return Err("unsigned message".to_owned()),
        }
        decode_batch(&message.data, self.message_size_bytes_max)
    }

    /// The verdicts on a message's events: the good ones go to the node (even from a
    /// rejected batch: they are still good), and the message is forwarded only if none was
    /// rejected.
    fn on_judged(&mut self, judged: Judged) {
        let Judged {
            message_id,
            source,
            verdicts,
        } = judged;
        let mut accepted = Vec::with_capacity(verdicts.len());
        let mut rejected = None;
        for verdict in verdicts {
            match verdict {
                Verdict::Accept(event) => accepted.push(event),
                Verdict::Reject(reason) => {
                    rejected.get_or_insert(reason);
                }
                Verdict::Ignore => {}
            }
        }
        let acceptance = match (&rejected, accepted.is_empty()) {
            (Some(reason), _) => {
                tracing::warn!(message = %message_id, from = %source, %reason, "gossiped message rejected");
                MessageAcceptance::Reject
            }
            (None, true) => {
                tracing::trace!(message = %message_id, from = %source, "gossiped events already known");
                MessageAcceptance::Ignore
            }
            (None, false) => {
                tracing::debug!(message = %message_id, from = %source, events = accepted.len(), "gossiped events accepted");
                MessageAcceptance::Accept
            }
        };
        for event in accepted {
            self.deliver(event);
        }
        self.report(&message_id, &source, acceptance);
    }

    /// Tells gossipsub whether to forward a message and how to score its sender.
    fn report(&mut self, message_id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        // False if the message left gossipsub's cache meanwhile (the verdict came late):
        // then it is simply not forwarded.
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, source, acceptance);
    }

    /// Sends a request for events, unless too many are in flight already.
    fn fetch(&mut self, peer: PeerId, ids: Vec<custody_ledger::model::EventId>, reply: FetchReply) {
        if self.fetches.waiting.len() >= FETCHES_IN_FLIGHT_MAX {
            let _ = reply.send(Err(FetchError::Busy));
            return;
        }
        let request = self.swarm.behaviour_mut().fetch.send_request(&peer, ids);
        self.fetches.waiting.insert(request, reply);
    }

    fn on_fetch(
        &mut self,
        event: request_response::Event<Vec<custody_ledger::model::EventId>, Vec<Vec<u8>>>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.serve(peer, request, channel),
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.fetches.waiting.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "fetching events failed");
                if let Some(reply) = self.fetches.waiting.remove(&request_id) {
                    let _ = reply.send(Err(FetchError::Failed(error.to_string())));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "serving events failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Looks the events up on a task of its own (the source may wait for the mempool), and
    /// leaves the answer for the swarm loop to send. Beyond [`SERVING_MAX`] at once, or from a
    /// peer outside the genesis (which the allow-list already keeps out), the request is
    /// dropped unanswered.
    fn serve(
        &mut self,
        peer: PeerId,
        ids: Vec<custody_ledger::model::EventId>,
        channel: ResponseChannel<Vec<Vec<u8>>>,
    ) {
        if !self.allowed.contains(&peer) || self.fetches.serving >= SERVING_MAX {
            tracing::debug!(%peer, "request for events dropped");
            return;
        }
        self.fetches.serving += 1;
        let lookup = (self.fetches.source)(ids);
        let answered = self.fetches.answered_tx.clone();
        tokio::spawn(async move {
            let bodies = lookup.await;
            // Capacity is SERVING_MAX and at most that many tasks run, so this never waits
            // long; an error means the swarm stopped.
            let _ = answered.send((channel, bodies)).await;
        });
    }

    /// Hands an accepted event to the node without ever waiting for it.
    fn deliver(&self, event: VerifiedEvent) {
        match self.accepted.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                tracing::warn!(event = %event.id(), "accepted-event queue full; dropping gossiped event");
            }
            Err(mpsc::error::TrySendError::Closed(event)) => {
                tracing::debug!(event = %event.id(), "nobody takes accepted events; dropping gossiped event");
            }
        }
    }

    /// Dials every target that is neither connected, nor being dialled, nor backing off.
    fn redial_due(&mut self) {
        let now = Instant::now();
        for target in &mut self.dials {
            if target.pending.is_some() || target.next_attempt > now {
                continue;
            }
            if target
                .peer
                .is_some_and(|peer| self.swarm.is_connected(&peer))
            {
                continue;
            }
            let opts = match target.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![target.address.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id()
                    .address(target.address.clone())
                    .build(),
            };
            let connection_id = opts.connection_id();
            target.next_attempt = now + target.backoff;
            target.backoff = target.backoff.saturating_mul(2).min(REDIAL_BACKOFF_MAX);
            match self.swarm.dial(opts) {
                Ok(()) => {
                    tracing::debug!(address = %target.address, "dialling gossip peer");
                    target.pending = Some(connection_id);
                }
                Err(error) => {
                    tracing::debug!(address = %target.address, %error, "cannot dial gossip peer");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Mutex;

    use custody_ledger::testkit::TestNet;
    use tokio::time::{sleep, timeout};

    use super::*;
    use custody_ledger::event::EncodedEvent;

    /// Every test finishes well within this, or fails instead of hanging.
    const TEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// How long we watch for something that must not happen: several heartbeats and far
    /// longer than a delivery over loopback takes.
    const QUIET_PERIOD: Duration = Duration::from_millis(1500);

    /// Generous next to real events, small enough to exercise the limit.
    const MESSAGE_SIZE_BYTES_MAX: usize = 16 * 1024;

    /// A node key from a fixed seed, so runs are reproducible.
    fn node_key(seed: u8) -> Keypair {
        Keypair::ed25519_from_bytes([seed; 32]).expect("a 32-byte seed is a valid ed25519 key")
    }

    /// Every message bytes a validator has judged, in order.
    type Judged = Arc<Mutex<Vec<Vec<u8>>>>;

    /// The node's validator in miniature: decode, signature, duplicate check; it records what
    /// it judged so tests can tell what reached a node, not just what it accepted.
    fn ledger_validator() -> (Validator, Judged) {
        let judged: Judged = Arc::default();
        let log = Arc::clone(&judged);
        let known = Mutex::new(HashSet::new());
        let keys = custody_ledger::keys::KeyCache::new();
        let validator: Validator = immediate_validator(move |bytes: &[u8]| {
            log.lock().expect("judged log").push(bytes.to_vec());
            let event = match EncodedEvent::decode(bytes) {
                Ok(event) => event,
                Err(error) => return Verdict::Reject(format!("malformed: {error}")),
            };
            let event = match event.verify(&keys) {
                Ok(event) => event,
                Err(rejection) => return Verdict::Reject(rejection.to_string()),
            };
            if !known.lock().expect("known ids").insert(event.id()) {
                return Verdict::Ignore;
            }
            Verdict::Accept(event)
        });
        (validator, judged)
    }

    struct Node {
        handle: GossipHandle,
        accepted: mpsc::Receiver<VerifiedEvent>,
        judged: Judged,
    }

    impl Node {
        async fn start(
            key: Keypair,
            genesis_hash: Digest,
            allowed_peers: &[PeerId],
            peers: Vec<Multiaddr>,
        ) -> Node {
            let (validator, judged) = ledger_validator();
            let (sender, accepted) = mpsc::channel(16);
            let config = GossipConfig {
                keypair: key,
                listen_addr: "/ip4/127.0.0.1/tcp/0".parse().expect("listen address"),
                peers,
                allowed_peers: allowed_peers.to_vec(),
                genesis_hash,
                message_size_bytes_max: MESSAGE_SIZE_BYTES_MAX,
            };
            let handle = spawn(config, validator, sender, known_source())
                .await
                .expect("gossip starts");
            Node {
                handle,
                accepted,
                judged,
            }
        }

        /// Where others dial this node: its bound address with its peer id.
        async fn dial_address(&self) -> Multiaddr {
            let address = self
                .handle
                .listen_addrs()
                .await
                .into_iter()
                .next()
                .expect("a bound address");
            address.with(Protocol::P2p(self.handle.local_peer_id()))
        }

        fn peer_id(&self) -> PeerId {
            self.handle.local_peer_id()
        }

        fn judged_count(&self, bytes: &[u8]) -> usize {
            let judged = self.judged.lock().expect("judged log");
            judged
                .iter()
                .filter(|seen| seen.as_slice() == bytes)
                .count()
        }

        async fn shutdown(self) {
            self.handle.shutdown().await;
        }
    }

    /// Polls `condition` until it holds; the test's overall timeout bounds the wait.
    async fn eventually<F, Fut>(mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        while !condition().await {
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `judge` scores `sender` below zero: it has rejected something of theirs.
    async fn wait_until_penalised(judge: &Node, sender: PeerId) {
        eventually(|| async {
            judge
                .handle
                .peer_score(sender)
                .await
                .is_some_and(|score| score < 0.0)
        })
        .await;
    }

    /// An event's bytes with the last signature byte flipped: still decodable, badly signed.
    fn forge(event: &EncodedEvent) -> Vec<u8> {
        let mut bytes = event.bytes().to_vec();
        *bytes.last_mut().expect("non-empty event") ^= 0x01;
        bytes
    }

    /// Waits until `node`'s mesh holds all of `peers`, after which a publish reaches them.
    async fn wait_for_mesh(node: &Node, peers: &[PeerId]) {
        eventually(|| async {
            let mesh = node.handle.mesh_peers().await;
            peers.iter().all(|peer| mesh.contains(peer))
        })
        .await;
    }

    /// Three members in a line, A - B - C: A and C only know B, so anything C gets from A
    /// was forwarded by B.
    async fn line(net: &TestNet) -> (Node, Node, Node) {
        let keys = [node_key(1), node_key(2), node_key(3)];
        let allowed: Vec<PeerId> = keys.iter().map(|key| key.public().to_peer_id()).collect();
        let [a, b, c] = keys;
        let genesis = net.genesis_hash();
        let b = Node::start(b, genesis, &allowed, vec![]).await;
        let b_address = b.dial_address().await;
        let a = Node::start(a, genesis, &allowed, vec![b_address.clone()]).await;
        let c = Node::start(c, genesis, &allowed, vec![b_address]).await;
        wait_for_mesh(&a, &[b.peer_id()]).await;
        wait_for_mesh(&c, &[b.peer_id()]).await;
        wait_for_mesh(&b, &[a.peer_id(), c.peer_id()]).await;
        (a, b, c)
    }

    /// A source that holds every id whose first byte is even, its body being the id's bytes.
    fn known_source() -> EventSource {
        Arc::new(|ids: Vec<Digest>| {
            let bodies = event_fetch::answer(&ids, |id| (id.0[0] % 2 == 0).then(|| id.0.to_vec()));
            Box::pin(async move { bodies })
        })
    }

    /// An id whose first byte is `first`.
    fn id_starting(first: u8) -> Digest {
        let mut id = Digest::sha256(&[first]);
        id.0[0] = first;
        id
    }

    #[tokio::test]
    async fn events_are_fetched_by_id_from_a_member_and_not_from_a_stranger() {
        within_timeout(async {
            let net = TestNet::new();
            let (a, b, c) = line(&net).await;
            let ids = vec![
                id_starting(2),
                id_starting(4),
                id_starting(5),
                id_starting(6),
            ];
            let bodies = a
                .handle
                .fetch_events(b.peer_id(), ids.clone())
                .await
                .expect("answered");
            // The answer stops at the first id B does not hold.
            assert_eq!(bodies, vec![ids[0].0.to_vec(), ids[1].0.to_vec()]);
            // A is not connected to C: the request fails rather than hanging.
            assert!(matches!(
                a.handle.fetch_events(c.peer_id(), ids).await,
                Err(FetchError::Failed(_))
            ));
            for node in [a, b, c] {
                node.shutdown().await;
            }
        })
        .await;
    }

    async fn within_timeout(test: impl Future<Output = ()>) {
        timeout(TEST_TIMEOUT, test)
            .await
            .expect("test finished in time");
    }

    #[tokio::test]
    async fn an_event_crosses_the_line_through_the_middle_node() {
        within_timeout(async {
            let net = TestNet::new();
            let (a, mut b, mut c) = line(&net).await;
            assert_eq!(a.handle.connected_peers().await, vec![b.peer_id()]);

            let event = net.register("SHP-1", "CN", "DE");
            a.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("published");

            assert_eq!(
                c.accepted.recv().await.map(VerifiedEvent::into_encoded),
                Some(event.clone())
            );
            assert_eq!(
                b.accepted.recv().await.map(VerifiedEvent::into_encoded),
                Some(event)
            );
            for node in [a, b, c] {
                node.shutdown().await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_forged_event_is_rejected_not_forwarded_and_costs_its_sender() {
        within_timeout(async {
            let net = TestNet::new();
            let (a, mut b, mut c) = line(&net).await;

            let forged_bytes = forge(&net.register("SHP-1", "CN", "DE"));
            let decoded = EncodedEvent::decode(&forged_bytes).expect("still decodes");
            assert!(
                decoded.verify_signature().is_err(),
                "only the signature is broken"
            );

            a.handle
                .publish(std::slice::from_ref(&forged_bytes))
                .await
                .expect("published");
            eventually(|| async { b.judged_count(&forged_bytes) == 1 }).await;
            wait_until_penalised(&b, a.peer_id()).await;
            sleep(QUIET_PERIOD).await;
            assert_eq!(c.judged_count(&forged_bytes), 0, "B must not forward it");
            assert!(b.accepted.try_recv().is_err());

            let genuine = net.register("SHP-2", "CN", "DE");
            a.handle
                .publish(&[genuine.bytes().to_vec()])
                .await
                .expect("published");
            assert_eq!(
                c.accepted.recv().await.map(VerifiedEvent::into_encoded),
                Some(genuine)
            );
            assert!(c.accepted.try_recv().is_err());
            assert_eq!(c.judged_count(&forged_bytes), 0);
            for node in [a, b, c] {
                node.shutdown().await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_batch_with_one_forged_event_keeps_the_good_one_and_is_not_forwarded() {
        within_timeout(async {
            let net = TestNet::new();
            let (a, mut b, mut c) = line(&net).await;

            let genuine = net.register("SHP-1", "CN", "DE");
            let forged = forge(&net.register("SHP-2", "CN", "DE"));
            a.handle
                .publish(&[genuine.bytes().to_vec(), forged.clone()])
                .await
                .expect("published");

            assert_eq!(
                b.accepted.recv().await.map(VerifiedEvent::into_encoded),
                Some(genuine.clone())
            );
            wait_until_penalised(&b, a.peer_id()).await;
            sleep(QUIET_PERIOD).await;
            assert_eq!(b.judged_count(&forged), 1);
            assert!(b.accepted.try_recv().is_err());
            assert_eq!(
                c.judged_count(genuine.bytes()),
                0,
                "B must not forward the batch"
            );
            assert_eq!(c.judged_count(&forged), 0);
            assert!(c.accepted.try_recv().is_err());
            for node in [a, b, c] {
                node.shutdown().await;
            }
        })
        .await;
    }

    #[test]
    fn a_batch_decodes_exactly_and_every_malformed_framing_is_refused() {
        let net = TestNet::new();
        let events = vec![
            net.register("SHP-1", "CN", "DE").bytes().to_vec(),
            net.register("SHP-2", "CN", "DE").bytes().to_vec(),
        ];
        let data = encode_batch(&events);
        assert_eq!(decode_batch(&data, data.len()), Ok(events));
        for cut in 0..data.len() {
            assert!(
                decode_batch(&data[..cut], data.len()).is_err(),
                "cut at {cut}"
            );
        }
        let mut trailing = data.clone();
        trailing.push(0);
        assert!(decode_batch(&trailing, trailing.len()).is_err());
        assert!(
            decode_batch(&data, data.len() - 1).is_err(),
            "over the limit"
        );
        // A list claiming 2^60 events of 2^60 bytes, in a few bytes.
        let huge = encode_batch(&[]);
        let mut claim = vec![0xfd];
        claim.extend_from_slice(&(1u64 << 60).to_le_bytes());
        claim.extend_from_slice(&claim.clone());
        assert_eq!(huge, vec![0]);
        assert!(decode_batch(&claim, 1024).is_err());
    }

    #[tokio::test]
    async fn a_peer_outside_genesis_is_refused() {
        within_timeout(async {
            let net = TestNet::new();
            let genesis = net.genesis_hash();
            let (a_key, b_key, outsider_key) = (node_key(11), node_key(12), node_key(13));
            let members = [a_key.public().to_peer_id(), b_key.public().to_peer_id()];
            let b = Node::start(b_key, genesis, &members, vec![]).await;
            let b_address = b.dial_address().await;
            let a = Node::start(a_key, genesis, &members, vec![b_address.clone()]).await;
            // The outsider would accept B; B must be the one refusing.
            let outsider_allows = [members[1], outsider_key.public().to_peer_id()];
            let mut outsider =
                Node::start(outsider_key, genesis, &outsider_allows, vec![b_address]).await;
            wait_for_mesh(&b, &[a.peer_id()]).await;

            let event = net.register("SHP-1", "CN", "DE");
            a.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("published");
            // The outsider also tries to push an event of its own.
            let intruding = net.register("SHP-2", "CN", "DE");
            outsider
                .handle
                .publish(&[intruding.bytes().to_vec()])
                .await
                .expect("no peers is not an error");

            let deadline = Instant::now() + QUIET_PERIOD;
            while Instant::now() < deadline {
                assert!(!b
                    .handle
                    .connected_peers()
                    .await
                    .contains(&outsider.peer_id()));
                assert!(outsider.handle.connected_peers().await.is_empty());
                assert!(outsider.handle.mesh_peers().await.is_empty());
                sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(b.judged_count(event.bytes()), 1);
            assert_eq!(b.judged_count(intruding.bytes()), 0);
            assert!(outsider.judged.lock().expect("judged log").is_empty());
            assert!(outsider.accepted.try_recv().is_err());
            for node in [a, b, outsider] {
                node.shutdown().await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_node_of_another_chain_is_disconnected() {
        within_timeout(async {
            let net = TestNet::new();
            let genesis = net.genesis_hash();
            let other_genesis = Digest::sha256(b"another chain");
            let (a_key, b_key, stranger_key) = (node_key(21), node_key(22), node_key(23));
            // Same keys everywhere, so only the genesis hash tells them apart.
            let everyone = [
                a_key.public().to_peer_id(),
                b_key.public().to_peer_id(),
                stranger_key.public().to_peer_id(),
            ];
            let b = Node::start(b_key, genesis, &everyone, vec![]).await;
            let b_address = b.dial_address().await;
            let a = Node::start(a_key, genesis, &everyone, vec![b_address.clone()]).await;
            let mut stranger =
                Node::start(stranger_key, other_genesis, &everyone, vec![b_address]).await;
            wait_for_mesh(&b, &[a.peer_id()]).await;

            let event = net.register("SHP-1", "CN", "DE");
            a.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("published");
            let foreign = net.register("SHP-2", "CN", "DE");
            stranger
                .handle
                .publish(&[foreign.bytes().to_vec()])
                .await
                .expect("no peers is not an error");

            let deadline = Instant::now() + QUIET_PERIOD;
            while Instant::now() < deadline {
                assert!(!b
                    .handle
                    .connected_peers()
                    .await
                    .contains(&stranger.peer_id()));
                assert!(stranger.handle.connected_peers().await.is_empty());
                sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(b.judged_count(event.bytes()), 1);
            assert_eq!(b.judged_count(foreign.bytes()), 0);
            assert!(stranger.judged.lock().expect("judged log").is_empty());
            assert!(stranger.accepted.try_recv().is_err());
            for node in [a, b, stranger] {
                node.shutdown().await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn the_same_event_published_twice_is_delivered_once() {
        within_timeout(async {
            let net = TestNet::new();
            let (a, mut b, mut c) = line(&net).await;

            let event = net.register("SHP-1", "CN", "DE");
            a.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("first");
            a.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("second");
            assert_eq!(
                c.accepted.recv().await.map(VerifiedEvent::into_encoded),
                Some(event.clone())
            );
            // C resubmitting what it already has is no error and sends nothing.
            c.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("third");
            assert_eq!(
                b.accepted.recv().await.map(VerifiedEvent::into_encoded),
                Some(event.clone())
            );

            sleep(QUIET_PERIOD).await;
            assert!(b.accepted.try_recv().is_err());
            assert!(c.accepted.try_recv().is_err());
            // Deduplicated by gossipsub itself: the validators saw it once.
            assert_eq!(b.judged_count(event.bytes()), 1);
            assert_eq!(c.judged_count(event.bytes()), 1);
            for node in [a, b, c] {
                node.shutdown().await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn an_oversized_event_is_refused_and_a_lone_node_publishes_quietly() {
        within_timeout(async {
            let net = TestNet::new();
            let key = node_key(31);
            let alone = [key.public().to_peer_id()];
            let node = Node::start(key, net.genesis_hash(), &alone, vec![]).await;

            let event = net.register("SHP-1", "CN", "DE");
            node.handle
                .publish(&[event.bytes().to_vec()])
                .await
                .expect("no peers is not an error");
            let oversized = vec![0; MESSAGE_SIZE_BYTES_MAX + 1];
            assert!(matches!(
                node.handle.publish(&[oversized]).await,
                Err(GossipError::TooLarge { .. })
            ));

            let handle = node.handle.clone();
            node.shutdown().await;
            assert!(matches!(
                handle.publish(&[vec![1]]).await,
                Err(GossipError::Stopped)
            ));
            assert!(handle.listen_addrs().await.is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn an_unusable_listen_address_fails_spawn() {
        within_timeout(async {
            let net = TestNet::new();
            let key = node_key(41);
            let (validator, _) = ledger_validator();
            let (sender, _accepted) = mpsc::channel(1);
            let config = GossipConfig {
                allowed_peers: vec![key.public().to_peer_id()],
                keypair: key,
                // Only TCP is built in.
                listen_addr: "/ip4/127.0.0.1/udp/0".parse().expect("listen address"),
                peers: vec![],
                genesis_hash: net.genesis_hash(),
                message_size_bytes_max: MESSAGE_SIZE_BYTES_MAX,
            };
            assert!(matches!(
                spawn(config, validator, sender, known_source()).await,
                Err(GossipError::Listen { .. })
            ));
        })
        .await;
    }
}
