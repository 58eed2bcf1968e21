//! The application side of consensus: proposes blocks from the mempool, validates received
//! proposals with the ledger and the rule modules, and commits decided blocks.
//!
//! Malachite drives this through [`AppMsg`]s; [`Host::handle`] answers each one. The host
//! keeps, per height, the blocks it proposed or validated (keyed by block hash), so that a
//! decision, a restream request or a sync request can be served without rebuilding anything;
//! the candidates of the height being decided are also kept on disk ([`super::proposals`]),
//! so that a restarted validator still holds what it proposed or voted for.
//! All ledger writes go through `Store::append_block`, which flushes before it returns: a
//! decision is acknowledged only once it is on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use arc_malachitebft_app_channel::app::streaming::StreamContent;
use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, ExtendedCommitCertificate, LinearTimeouts, Round, Validity,
    VoteExtensions,
};
use arc_malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::sync::RawDecidedValue;
use arc_malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId, ProposedValue};
use arc_malachitebft_app_channel::{AppMsg, NetworkMsg};
use bytes::Bytes;
use custody_contracts::ContractRules;
use custody_ledger::block::{self, Block, BlockHeader};
use custody_ledger::chain::{
    build_block, validate_block, validate_verified, BlockError, BuiltBlock, ValidatedBlock,
};
use custody_ledger::codec;
use custody_ledger::entry::LogEntry;
use custody_ledger::event::EncodedEvent;
use custody_ledger::event::{verify_events, VerifiedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::keys::KeyCache;
use custody_ledger::store::Store;
use custody_ledger::Digest;
use custody_sled::SledStore;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, Mutex};
use tracing::{debug, info, warn};

use super::context::{
    Address, BlockValue, CustodyContext, EventRef, Height, ProposalPart, ValidatorSet,
};
#[cfg(feature = "fault-injection")]
use super::faults::{self, HostFaults};
use super::fetch::{self, Fetched, Pending, ResolveError};
use super::proposals::{ProposalStore, StoredProposal};
use super::signing::{parts_message, CustodySigner};
use super::streams::{PartStreams, StreamKey};
use crate::admission;
use crate::clock::now;
use crate::gossip::GossipHandle;
use crate::mempool::Mempool;

/// Limits of a block this node proposes.
#[derive(Debug, Clone, Copy)]
pub struct BlockLimits {
    /// Most events.
    pub events_max: usize,
    /// Most bytes of events.
    pub size_bytes_max: usize,
    /// How long after the last block to wait for an event before proposing an empty block.
    pub empty_block_delay_ms: u64,
    /// The shortest time from the last block to a proposal that is not full.
    pub interval_min_ms: u64,
}

/// How often a proposer waiting for events looks at the mempool again.
const EMPTY_MEMPOOL_POLL_MS: u64 = 10;

/// Most events per proposal part: large enough to keep part counts low.
const EVENTS_PER_PART: usize = 200;

/// Most bytes of events per proposal part, unless one event alone is larger (an event is at
/// most 1 MiB): half the engine's 4 MiB limit on one consensus network message, so a part of
/// large events still goes out (issue 11: a part over the limit cannot be sent, and a
/// proposer that cannot send its block stalls every round it leads).
const PART_EVENT_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Splits a block's events (or their entries) into proposal parts, bounded by count and by
/// bytes.
fn part_chunks<T>(events: &[T], size_bytes_of: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut size_bytes = 0;
    // Bounded by the block's event count.
    for (i, event) in events.iter().enumerate() {
        let event_bytes = size_bytes_of(event);
        let full = i - start == EVENTS_PER_PART
            || (i > start && size_bytes + event_bytes > PART_EVENT_BYTES_MAX);
        if full {
            chunks.push(&events[start..i]);
            start = i;
            size_bytes = 0;
        }
        size_bytes += event_bytes;
    }
    if start < events.len() {
        chunks.push(&events[start..]);
    }
    chunks
}

/// How far in the future a proposed block time may be, by this node's clock.
const BLOCK_TIME_DRIFT_MS_MAX: u64 = 30_000;

/// Most mempool events re-checked after a commit; the proposer checks the rest when it builds
/// a block, so the bound only delays dropping them.
const RECHECK_EVENTS_MAX: usize = 20_000;

/// Most heights answered in one sync request.
const SYNC_BATCH_HEIGHTS_MAX: u64 = 50;

/// A block and what applying it produces, as proposed or validated at some round.
#[derive(Debug, Clone)]
struct Candidate {
    validated: ValidatedBlock<ContractRules>,
    round: Round,
    proposer: Address,
    parts: Vec<ProposalPart>,
}

/// A committed block, announced to the API and the mempool.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The block.
    pub block: Arc<Block>,
    /// Its certificate.
    pub certificate: Arc<block::CommitCertificate>,
    /// The ids of its events, so that each of the many requests waiting for a commit looks
    /// its event up instead of scanning the block.
    pub ids: Arc<BTreeSet<Digest>>,
    /// Its events' log entries, in block order: with `log_nodes`, what a waiting request
    /// needs to give its events their receipts without reading them back from the store.
    pub entries: Arc<Vec<LogEntry>>,
    /// The log nodes the block wrote, as (level, index, hash).
    pub log_nodes: Arc<Vec<(u32, u64, Digest)>>,
}

impl Committed {
    /// The announcement of a block appended with `certificate`, from what validating it
    /// computed.
    pub fn of<R>(validated: &ValidatedBlock<R>, certificate: block::CommitCertificate) -> Self {
        Committed::new(
            validated.block().clone(),
            certificate,
            validated.entries().to_vec(),
            validated.log_nodes().to_vec(),
        )
    }

    /// The announcement of `block`, with its entries and the log nodes it wrote.
    pub fn new(
        block: Block,
        certificate: block::CommitCertificate,
        entries: Vec<LogEntry>,
        log_nodes: Vec<(u32, u64, Digest)>,
    ) -> Self {
        assert_eq!(entries.len(), block.events.len(), "one entry per event");
        let ids = block.events.iter().map(|e| e.id()).collect();
        Committed {
            block: Arc::new(block),
            certificate: Arc::new(certificate),
            ids: Arc::new(ids),
            entries: Arc::new(entries),
            log_nodes: Arc::new(log_nodes),
        }
    }
}

/// A decided block as sync ships it: the header and the events' canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedBlock {
    /// The header.
    pub header: BlockHeader,
    /// The events, in block order.
    pub events: Vec<Vec<u8>>,
}

/// The consensus host.
pub struct Host {
    genesis: Arc<Genesis>,
    store: Arc<SledStore>,
    rules: ContractRules,
    shared_rules: Arc<RwLock<ContractRules>>,
    validator_set: ValidatorSet,
    address: Address,
    signer: Option<CustodySigner>,
    mempool: Arc<Mutex<Mempool>>,
    keys: Arc<KeyCache>,
    limits: BlockLimits,
    network: mpsc::Sender<NetworkMsg<CustodyContext>>,
    committed: broadcast::Sender<Committed>,
    /// Candidates of the current and future heights by block hash.
    candidates: BTreeMap<(Height, Digest), Candidate>,
    /// Our own proposal per (height, round), so that a repeated `GetValue` gets the same.
    proposed: BTreeMap<(Height, Round), Digest>,
    streams: PartStreams,
    height: Height,
    /// A height decided without its block here, to be restarted and synced.
    restart: Option<Height>,
    /// See [`HostParts::faults`].
    #[cfg(feature = "fault-injection")]
    faults: HostFaults,
    /// When this node last committed a block (or started), for the block interval.
    last_commit_at: tokio::time::Instant,
    /// Candidates of the height being decided, on disk.
    proposals: ProposalStore,
    /// Where missing events of a proposal are fetched from its proposer.
    gossip: GossipHandle,
    /// The proposal whose events are being fetched. The engine waits for the answer to the
    /// part that completed it before it sends the host anything else, so there is one at most.
    fetching: Option<Pending>,
    /// Answers of fetches, sent by their tasks; capacity one per fetch.
    fetched_tx: mpsc::Sender<Fetched>,
    fetched_rx: mpsc::Receiver<Fetched>,
    /// The number of the last fetch started.
    fetches: u64,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("address", &self.address)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// Everything a host needs.
#[derive(Debug)]
pub struct HostParts {
    /// The genesis.
    pub genesis: Arc<Genesis>,
    /// The store.
    pub store: Arc<SledStore>,
    /// The rules, with the reference data published up to the stored head.
    pub rules: ContractRules,
    /// The same rules, shared with the API and gossip, updated at every commit.
    pub shared_rules: Arc<RwLock<ContractRules>>,
    /// This node's address (node key).
    pub address: Address,
    /// The signer, for validators.
    pub signer: Option<CustodySigner>,
    /// The mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Parsed keys, shared with admission.
    pub keys: Arc<KeyCache>,
    /// Proposal limits.
    pub limits: BlockLimits,
    /// Where proposal parts are published.
    pub network: mpsc::Sender<NetworkMsg<CustodyContext>>,
    /// Where commits are announced.
    pub committed: broadcast::Sender<Committed>,
    /// Deliberate misbehaviour (the `[faults]` setting, test builds only); the default on an
    /// honest node.
    #[cfg(feature = "fault-injection")]
    pub faults: HostFaults,
    /// Where candidate blocks are kept across restarts.
    pub proposals: ProposalStore,
    /// Event gossip, to fetch the events of a proposal this node lacks.
    pub gossip: GossipHandle,
}

fn stream_id(height: Height, round: Round) -> StreamId {
    let mut bytes = height.0.to_be_bytes().to_vec();
    bytes.extend_from_slice(&round.as_i64().to_be_bytes());
    StreamId::new(Bytes::from(bytes))
}

/// The digest the proposer signs in `Fin`: the canonical bytes of every part before it.
fn parts_digest(parts: &[ProposalPart]) -> Digest {
    let mut bytes = Vec::new();
    for part in parts {
        match part {
            ProposalPart::Init {
                height,
                round,
                pol_round,
                proposer,
                header,
            } => {
                bytes.extend_from_slice(&codec::encode(&(
                    height.0,
                    round.as_i64(),
                    pol_round.as_i64(),
                    proposer.0,
                    header,
                )));
            }
            ProposalPart::Events(events) => bytes.extend_from_slice(&codec::encode(events)),
            ProposalPart::Fin { .. } => {}
        }
    }
    Digest::sha256(&bytes)
}

/// A proposal's parts: `init`, the entries in chunks bounded by count and bytes, and the
/// proposer's signature over everything before it.
fn signed_parts(
    chain_id: &str,
    signer: &CustodySigner,
    init: ProposalPart,
    entries: Vec<EventRef>,
) -> Vec<ProposalPart> {
    let ProposalPart::Init { height, round, .. } = init else {
        unreachable!("a stream opens with its Init part");
    };
    let mut parts = vec![init];
    for chunk in part_chunks(&entries, fetch::entry_size_bytes) {
        parts.push(ProposalPart::Events(chunk.to_vec()));
    }
    let digest = parts_digest(&parts);
    parts.push(ProposalPart::Fin {
        signature: signer.sign_bytes(&parts_message(chain_id, height, round, &digest)),
    });
    parts
}

/// What a complete proposal stream comes to.
// Lives from the assembly to the reply; boxing the answer would cost every proposal.
#[allow(clippy::large_enum_variant)]
enum Assembled {
    /// The engine's answer, now.
    Now(Option<ProposedValue<CustodyContext>>),
    /// A proposal of the current height naming events this node lacks: to be fetched.
    Lacking(Box<Lacking>),
}

/// A proposal waiting for events this node lacks; [`Pending`] once its fetch starts.
struct Lacking {
    height: Height,
    round: Round,
    pol_round: Round,
    proposer: Address,
    header: BlockHeader,
    resolution: fetch::Resolution,
    parts: Vec<ProposalPart>,
}

impl Host {
    /// A host at the store's head, holding again the candidates it kept for the next height.
    pub fn new(parts: HostParts) -> Host {
        let (fetched_tx, fetched_rx) = mpsc::channel(1);
        let height = Height(parts.store.head().ok().flatten().map_or(0, |h| h.height) + 1);
        let mut host = Host {
            validator_set: ValidatorSet::from_genesis(&parts.genesis),
            genesis: parts.genesis,
            store: parts.store,
            rules: parts.rules,
            shared_rules: parts.shared_rules,
            address: parts.address,
            signer: parts.signer,
            mempool: parts.mempool,
            keys: parts.keys,
            limits: parts.limits,
            #[cfg(feature = "fault-injection")]
            faults: parts.faults,
            network: parts.network,
            committed: parts.committed,
            candidates: BTreeMap::new(),
            proposed: BTreeMap::new(),
            streams: PartStreams::default(),
            height,
            restart: None,
            last_commit_at: tokio::time::Instant::now(),
            proposals: parts.proposals,
            gossip: parts.gossip,
            fetching: None,
            fetched_tx,
            fetched_rx,
            fetches: 0,
        };
        host.reload_candidates();
        host
    }

    /// Reads back the candidates kept for the current height, checking each again against
    /// the stored state (signatures included), and forgets those of committed heights.
    fn reload_candidates(&mut self) {
        let height = self.height;
        if let Err(error) = self.proposals.forget_up_to(height.0 - 1) {
            warn!(%error, "cannot clear the proposals of committed heights");
        }
        let (kept, unreadable) = match self.proposals.load(height.0) {
            Ok(found) => found,
            Err(error) => {
                warn!(%height, %error, "cannot read kept proposals");
                return;
            }
        };
        for path in unreadable {
            warn!(%height, path = %path.display(), "a kept proposal does not decode; ignoring it");
        }
        for stored in kept {
            let Some(block) = decode_block(stored.header, &stored.events) else {
                warn!(%height, "a kept proposal holds an event that does not decode; ignoring it");
                continue;
            };
            let round = Round::new(stored.round);
            let proposer = Address(stored.proposer);
            let hash = block.hash();
            match validate_block(
                self.store.as_ref(),
                &self.genesis,
                &self.rules,
                block,
                &self.keys,
            ) {
                Ok(validated) => {
                    let parts = if proposer == self.address && self.signer.is_some() {
                        self.proposed.insert((height, round), hash);
                        // Bodies only: after a restart, nobody's mempool can be counted on.
                        self.parts_for(height, round, Round::Nil, validated.block(), |_| false)
                    } else {
                        // Another proposer's block is only ever restreamed by us at a later
                        // round, with parts signed then.
                        Vec::new()
                    };
                    info!(%height, %round, %proposer, %hash, "holding a kept proposal again");
                    self.candidates.insert(
                        (height, hash),
                        Candidate {
                            validated,
                            round,
                            proposer,
                            parts,
                        },
                    );
                }
                Err(error) => {
                    warn!(%height, %round, %error, "a kept proposal no longer validates; ignoring it");
                }
            }
        }
    }

    /// Writes a candidate to disk before the engine can vote for it.
    fn keep(&self, height: Height, hash: &Digest) {
        let Some(c) = self.candidates.get(&(height, *hash)) else {
            return;
        };
        let round = c
            .round
            .as_u32()
            .expect("a candidate is proposed at a defined round");
        let stored = StoredProposal {
            round,
            proposer: c.proposer.0,
            header: c.validated.header().clone(),
            events: c
                .validated
                .block()
                .events
                .iter()
                .map(|e| e.bytes().to_vec())
                .collect(),
        };
        if let Err(error) = self.proposals.save(&stored) {
            // The node can still vote; it only loses the block if it also restarts before
            // the height commits.
            tracing::error!(%height, %hash, %error, "cannot keep a proposal on disk");
        }
    }

    fn params(&self) -> HeightParams<CustodyContext> {
        HeightParams::new(self.validator_set.clone(), LinearTimeouts::default(), None)
    }

    /// Answers one message from the engine. Every reply is sent; a dropped reply would stall
    /// the engine.
    pub async fn handle(&mut self, msg: AppMsg<CustodyContext>) {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                info!(height = %self.height, "consensus ready");
                let _ = reply.send((self.height, self.params()));
            }
            AppMsg::StartedRound {
                height,
                round,
                reply_value,
                ..
            } => {
                self.height = height;
                let values = self.proposed_values(height, round);
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height,
                round,
                reply,
                ..
            } => {
                let value = self.propose(height, round).await;
                let _ = reply.send(LocallyProposedValue::new(height, round, value.clone()));
                self.publish(height, round, &value.hash).await;
                #[cfg(feature = "fault-injection")]
                self.publish_second(height, round).await;
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                let _ = reply.send(
                    extensions
                        .into_iter()
                        .map(|(address, _)| (address, Ok(())))
                        .collect(),
                );
            }
            AppMsg::RestreamProposal {
                height,
                round,
                value_id,
                ..
            } => {
                self.publish(height, round, &value_id).await;
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => match self.received_part(published_by.unwrap_or(from), part).await {
                Assembled::Now(value) => {
                    let _ = reply.send(value);
                }
                Assembled::Lacking(lacking) => self.start_fetch(*lacking, reply),
            },
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                #[cfg(feature = "fault-injection")]
                self.faults.panic_if_due(certificate.height);
                if !self
                    .candidates
                    .contains_key(&(certificate.height, certificate.value_id))
                {
                    // Decided from the consensus WAL after a restart, for a block whose parts
                    // this node no longer holds: restart the height, and sync fetches the
                    // block from the peers that committed it.
                    warn!(height = %certificate.height, "decided block not held; syncing it");
                    self.restart = Some(certificate.height);
                } else if let Err(error) = self.commit(&certificate).await {
                    // The engine decided a block this node cannot store: stop rather than
                    // diverge from the network.
                    let error = anyhow::Error::from(error);
                    panic!(
                        "cannot commit decided height {}: {error:#}",
                        certificate.height
                    );
                }
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate, reply, ..
            } => {
                let next = match self.restart.take() {
                    Some(height) => Next::Restart(height, self.params()),
                    None => Next::Start(Height(certificate.height.0 + 1), self.params()),
                };
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let _ = reply.send(self.decided_values(range.start().0, range.end().0));
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let _ = reply.send(self.synced_value(height, round, proposer, &value_bytes));
            }
        }
    }

    fn proposed_values(&self, height: Height, round: Round) -> Vec<ProposedValue<CustodyContext>> {
        self.candidates
            .iter()
            .filter(|((h, _), c)| *h == height && c.round == round)
            .map(|(_, c)| ProposedValue {
                height,
                round,
                valid_round: Round::Nil,
                proposer: c.proposer,
                value: BlockValue::new(c.validated.header().clone()),
                validity: Validity::Valid,
            })
            .collect()
    }

    /// Builds (once per height and round) a block from the mempool.
    async fn propose(&mut self, height: Height, round: Round) -> BlockValue {
        if let Some(hash) = self.proposed.get(&(height, round)) {
            let c = &self.candidates[&(height, *hash)];
            return BlockValue::new(c.validated.header().clone());
        }
        self.wait_for_events().await;
        let candidates = self
            .mempool
            .lock()
            .await
            .candidates(self.limits.events_max, self.limits.size_bytes_max);
        #[cfg(feature = "fault-injection")]
        let second = self
            .faults
            .equivocate
            .is_some()
            .then(|| faults::second_candidates(&candidates));
        let built = self.build(candidates, now());
        if !built.rejected.is_empty() {
            let ids: Vec<Digest> = built.rejected.iter().map(|(id, _)| *id).collect();
            debug!(count = ids.len(), "dropping events that no longer apply");
            self.mempool.lock().await.remove(&ids);
        }
        info!(%height, %round, events = built.block().events.len(), "proposing");
        let widely_held = self.widely_held(built.block()).await;
        let value = self.hold_own(height, round, built, |id| widely_held.contains(id));
        self.proposed.insert((height, round), value.hash);
        self.keep(height, &value.hash);
        #[cfg(feature = "fault-injection")]
        if let Some(candidates) = second {
            let time = faults::second_time(
                self.candidates[&(height, value.hash)]
                    .validated
                    .header()
                    .time,
            );
            self.propose_second(height, round, candidates, time);
        }
        value
    }

    /// Holds a block this node built as a candidate of `height` and `round`, with the parts
    /// to stream it; its value.
    fn hold_own(
        &mut self,
        height: Height,
        round: Round,
        built: BuiltBlock<ContractRules>,
        widely_held: impl Fn(&Digest) -> bool,
    ) -> BlockValue {
        let value = BlockValue::new(built.header().clone());
        let parts = self.parts_for(height, round, Round::Nil, built.block(), widely_held);
        self.candidates.insert(
            (height, value.hash),
            Candidate {
                validated: built.validated,
                round,
                proposer: self.address,
                parts,
            },
        );
        value
    }

    /// A block of `candidates`, with the rules' verdicts.
    fn build(
        &self,
        candidates: Vec<VerifiedEvent>,
        time: custody_ledger::Timestamp,
    ) -> BuiltBlock<ContractRules> {
        #[cfg(feature = "fault-injection")]
        if let Some(forced) = &self.faults.unchecked_event {
            warn!("fault injection: proposing an event the rules did not check");
            return faults::build_unchecked(
                self.store.as_ref(),
                &self.genesis,
                &self.rules,
                forced,
                candidates,
                time,
                self.address,
                &self.keys,
            )
            .expect("the store answers while building a block");
        }
        // Every candidate comes from the mempool, which holds only verified events.
        build_block(
            self.store.as_ref(),
            &self.genesis,
            &self.rules,
            candidates,
            time,
            self.address.0,
        )
        .expect("the store answers while building a block")
    }

    /// The equivocation fault: builds a second block for the height and round, holds it as a
    /// candidate (so the node can commit it if the others decide it), and leaves its signed
    /// consensus proposal for the network codec to send.
    #[cfg(feature = "fault-injection")]
    fn propose_second(
        &mut self,
        height: Height,
        round: Round,
        candidates: Vec<VerifiedEvent>,
        time: custody_ledger::Timestamp,
    ) {
        let Some(slot) = self.faults.equivocate.clone() else {
            return;
        };
        let built = self.build(candidates, time);
        let events = built.block().events.len();
        let value = self.hold_own(height, round, built, |_| false);
        warn!(%height, %round, events, hash = %value.hash, "fault injection: proposing a second block");
        self.faults.seconds.insert((height, round), value.hash);
        let signer = self.signer.as_ref().expect("only validators propose");
        slot.fill(
            &self.genesis.chain_id,
            signer,
            faults::fresh_proposal(height, round, value, self.address),
        );
    }

    /// Streams the second block of an equivocation, if this node proposed one for the height
    /// and round, under its own stream id.
    #[cfg(feature = "fault-injection")]
    async fn publish_second(&mut self, height: Height, round: Round) {
        let Some(hash) = self.faults.seconds.get(&(height, round)).copied() else {
            return;
        };
        let Some(candidate) = self.candidates.get(&(height, hash)) else {
            return;
        };
        let parts = candidate.parts.clone();
        let id = faults::tagged(&stream_id(height, round), faults::StreamTag::Second);
        self.stream(id, parts).await;
    }

    /// Waits until a block is worth proposing: at once if the mempool holds a full block;
    /// else once `interval_min_ms` has passed since the last block and the mempool holds an
    /// event; else, with an empty mempool, `empty_block_delay_ms` after the last block. Both
    /// are under half the propose timeout, so the other validators never vote nil on a
    /// proposer that is only waiting.
    async fn wait_for_events(&self) {
        // The forced event is enough of a block.
        #[cfg(feature = "fault-injection")]
        if self.faults.unchecked_event.is_some() {
            return;
        }
        let worth_it = self.last_commit_at + Duration::from_millis(self.limits.interval_min_ms);
        let give_up = self.last_commit_at + Duration::from_millis(self.limits.empty_block_delay_ms);
        // Bounded by `give_up`.
        loop {
            let waiting = self.mempool.lock().await.len();
            let now = tokio::time::Instant::now();
            if waiting >= self.limits.events_max
                || (waiting > 0 && now >= worth_it)
                || now >= give_up
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(EMPTY_MEMPOOL_POLL_MS)).await;
        }
    }

    /// The ids of `block`'s events that every validator very likely holds already (see
    /// [`Mempool::is_widely_held`]), to be named by id in its proposal.
    async fn widely_held(&self, block: &Block) -> BTreeSet<Digest> {
        let now = std::time::Instant::now();
        let age_min = Duration::from_millis(fetch::LOCAL_EVENT_AGE_MIN_MS);
        let pool = self.mempool.lock().await;
        block
            .events
            .iter()
            .map(|e| e.id())
            .filter(|id| pool.is_widely_held(id, now, age_min))
            .collect()
    }

    /// The signed parts that stream `block`, naming by id the events `widely_held` says the
    /// validators have.
    fn parts_for(
        &self,
        height: Height,
        round: Round,
        pol_round: Round,
        block: &Block,
        widely_held: impl Fn(&Digest) -> bool,
    ) -> Vec<ProposalPart> {
        let init = ProposalPart::Init {
            height,
            round,
            pol_round,
            proposer: self.address,
            header: block.header.clone(),
        };
        let signer = self.signer.as_ref().expect("only validators propose");
        signed_parts(
            &self.genesis.chain_id,
            signer,
            init,
            fetch::entries(&block.events, widely_held),
        )
    }

    /// Publishes the parts of a candidate we hold, re-signed for this round.
    async fn publish(&mut self, height: Height, round: Round, hash: &Digest) {
        let Some(candidate) = self.candidates.get(&(height, *hash)) else {
            warn!(%height, %round, "asked to stream a proposal this node does not hold");
            return;
        };
        if self.signer.is_none() {
            // Only validators sign and stream proposals.
            return;
        }
        let parts = if candidate.round == round {
            candidate.parts.clone()
        } else {
            let block = candidate.validated.block();
            let widely_held = self.widely_held(block).await;
            self.parts_for(height, round, candidate.round, block, |id| {
                widely_held.contains(id)
            })
        };
        let id = stream_id(height, round);
        #[cfg(feature = "fault-injection")]
        let copies = self.faults.malformed.then(|| parts.clone());
        self.stream(id.clone(), parts).await;
        #[cfg(feature = "fault-injection")]
        if let Some(parts) = copies {
            // The malformed-frames fault: a copy the codec damages frame by frame, and a
            // well-framed copy with a wrong closing signature.
            use faults::StreamTag;
            warn!(%height, %round, "fault injection: streaming malformed copies of the proposal");
            let damaged = faults::tagged(&id, StreamTag::Damaged);
            self.stream(damaged, parts.clone()).await;
            let unsigned = faults::tagged(&id, StreamTag::BadSignature);
            self.stream(unsigned, faults::with_bad_signature(parts))
                .await;
        }
    }

    /// Sends the parts of one stream, then its end.
    async fn stream(&self, id: StreamId, parts: Vec<ProposalPart>) {
        let count = parts.len() as u64;
        for (sequence, part) in parts.into_iter().enumerate() {
            let msg = StreamMessage::new(id.clone(), sequence as u64, StreamContent::Data(part));
            if self
                .network
                .send(NetworkMsg::PublishProposalPart(msg))
                .await
                .is_err()
            {
                return;
            }
        }
        let fin = StreamMessage::new(id, count, StreamContent::Fin);
        let _ = self
            .network
            .send(NetworkMsg::PublishProposalPart(fin))
            .await;
    }

    async fn received_part(
        &mut self,
        from: PeerId,
        part: StreamMessage<ProposalPart>,
    ) -> Assembled {
        let Some(parts) = self
            .streams
            .insert(StreamKey::new(from, &part.stream_id), part)
        else {
            return Assembled::Now(None);
        };
        self.assemble(parts).await
    }

    /// Checks a complete stream, resolves its events and validates its block.
    async fn assemble(&mut self, parts: Vec<ProposalPart>) -> Assembled {
        let Some(ProposalPart::Init {
            height,
            round,
            pol_round,
            proposer,
            header,
        }) = parts.first().cloned()
        else {
            return Assembled::Now(None);
        };
        if !self.signed_by_validator(&parts, height, round, proposer) {
            return Assembled::Now(None);
        }
        let answer = |validity| {
            Assembled::Now(Some(ProposedValue {
                height,
                round,
                valid_round: pol_round,
                proposer,
                value: BlockValue::new(header.clone()),
                validity,
            }))
        };
        let resolution = match self.resolve(&parts).await {
            Ok(resolution) => resolution,
            Err(error) => {
                // A signed proposal with bytes that are no event (too long, not canonical):
                // judged invalid at once, so the round moves on without waiting for its
                // timeout.
                warn!(%height, %round, %proposer, %error, "proposal with an event that does not decode");
                return answer(Validity::Invalid);
            }
        };
        if height != self.height {
            // A proposal for a later height cannot be checked against a state we do not
            // have yet; the engine asks again when it gets there.
            return Assembled::Now(None);
        }
        if !resolution.missing().is_empty() {
            return Assembled::Lacking(Box::new(Lacking {
                height,
                round,
                pol_round,
                proposer,
                header,
                resolution,
                parts,
            }));
        }
        let events = resolution.complete().expect("nothing is missing");
        let validity = self.validate_and_keep(
            Block {
                header: header.clone(),
                events,
            },
            height,
            round,
            proposer,
            parts,
        );
        answer(validity)
    }

    /// Whether `parts` open with a validator's `Init` and close with its signature over them.
    fn signed_by_validator(
        &self,
        parts: &[ProposalPart],
        height: Height,
        round: Round,
        proposer: Address,
    ) -> bool {
        let Some(ProposalPart::Fin { signature }) = parts.last() else {
            return false;
        };
        if height < self.height {
            return false;
        }
        if self
            .validator_set
            .validators()
            .iter()
            .all(|v| v.address != proposer)
        {
            warn!(%height, %round, %proposer, "proposal parts from a non-validator");
            return false;
        }
        let digest = parts_digest(&parts[..parts.len() - 1]);
        if proposer
            .0
            .verify(
                &parts_message(&self.genesis.chain_id, height, round, &digest),
                signature,
            )
            .is_err()
        {
            warn!(%height, %round, %proposer, "proposal parts with a bad signature");
            return false;
        }
        true
    }

    /// The events of a signed stream's middle parts: bodies decoded, ids taken from the
    /// mempool (looked up under one short lock), the rest listed as missing.
    async fn resolve(&self, parts: &[ProposalPart]) -> Result<fetch::Resolution, ResolveError> {
        let mut entries = Vec::new();
        for part in &parts[1..parts.len() - 1] {
            let ProposalPart::Events(chunk) = part else {
                // Another Init or Fin inside the stream: not a block.
                return Err(ResolveError::Undecodable {
                    index: entries.len(),
                });
            };
            entries.extend(chunk.iter().cloned());
        }
        let named = fetch::named_ids(parts);
        let held: BTreeMap<Digest, VerifiedEvent> = {
            let pool = self.mempool.lock().await;
            named
                .iter()
                .filter_map(|id| pool.get(id).map(|event| (*id, event)))
                .collect()
        };
        fetch::resolve(entries, &held)
    }

    /// Validates a proposal's block and, if valid, keeps it on disk before the engine votes.
    fn validate_and_keep(
        &mut self,
        block: Block,
        height: Height,
        round: Round,
        proposer: Address,
        parts: Vec<ProposalPart>,
    ) -> Validity {
        let hash = block.hash();
        let validity = self.validate(block, height, round, proposer, parts);
        if validity == Validity::Valid {
            self.keep(height, &hash);
        }
        validity
    }

    /// Starts fetching the events a proposal lacks from its proposer, keeping the engine's
    /// reply until the answer comes ([`Host::fetched`]).
    fn start_fetch(
        &mut self,
        lacking: Lacking,
        reply: tokio::sync::oneshot::Sender<Option<ProposedValue<CustodyContext>>>,
    ) {
        let Lacking {
            height,
            round,
            pol_round,
            proposer,
            header,
            resolution,
            parts,
        } = lacking;
        if self.fetching.is_some() {
            // The engine waits for each answer, so this does not happen; if a future engine
            // stopped waiting, one fetch at a time still bounds the work, at a nil vote.
            warn!(%height, %round, "a second proposal lacks events while one is fetched; voting nil");
            let _ = reply.send(Some(ProposedValue {
                height,
                round,
                valid_round: pol_round,
                proposer,
                value: BlockValue::new(header),
                validity: Validity::Invalid,
            }));
            return;
        }
        self.fetches += 1;
        let ids = resolution.missing().to_vec();
        info!(%height, %round, %proposer, missing = ids.len(), "fetching the proposal's events this node lacks");
        fetch::spawn_fetch(
            self.gossip.clone_handle(),
            proposer,
            ids,
            self.fetches,
            self.fetched_tx.clone(),
        );
        self.fetching = Some(Pending {
            fetch: self.fetches,
            height,
            round,
            pol_round,
            proposer,
            header,
            resolution,
            parts,
            reply,
        });
    }

    /// The answer of the next fetch to end; pending while none runs. For the host's loop to
    /// wait on beside the engine's messages, then to hand to [`Host::fetched`].
    pub async fn next_fetched(&mut self) -> Fetched {
        match self.fetched_rx.recv().await {
            Some(fetched) => fetched,
            // The host holds a sender, so the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// Completes the proposal a fetch was for: checks the fetched events against their ids,
    /// validates the block and answers the engine. A failed fetch, or events that do not
    /// match, make the proposal invalid here, so this validator votes nil.
    pub fn fetched(&mut self, fetched: Fetched) {
        let Some(pending) = self.fetching.take_if(|p| p.fetch == fetched.fetch) else {
            return;
        };
        let Pending {
            height,
            round,
            pol_round,
            proposer,
            header,
            resolution,
            parts,
            reply,
            ..
        } = pending;
        let filled = fetched
            .bodies
            .map_err(ResolveError::from)
            .and_then(|bodies| resolution.fill(bodies));
        let validity = match filled {
            Ok(_) if height != self.height => {
                // The engine moved on meanwhile; it asks again if it needs the value.
                let _ = reply.send(None);
                return;
            }
            Ok(events) => {
                info!(%height, %round, %proposer, "fetched the proposal's missing events");
                let block = Block {
                    header: header.clone(),
                    events,
                };
                self.validate_and_keep(block, height, round, proposer, parts)
            }
            Err(error) => {
                warn!(%height, %round, %proposer, %error, "cannot get the proposal's missing events; voting nil");
                Validity::Invalid
            }
        };
        let _ = reply.send(Some(ProposedValue {
            height,
            round,
            valid_round: pol_round,
            proposer,
            value: BlockValue::new(header),
            validity,
        }));
    }

    fn validate(
        &mut self,
        block: Block,
        height: Height,
        round: Round,
        proposer: Address,
        parts: Vec<ProposalPart>,
    ) -> Validity {
        if block.header.time.0 > now().0.saturating_add(BLOCK_TIME_DRIFT_MS_MAX) {
            warn!(%height, %round, "proposal from the future");
            return Validity::Invalid;
        }
        let hash = block.hash();
        match self.verify_and_validate(block) {
            Ok(validated) => {
                self.candidates.insert(
                    (height, hash),
                    Candidate {
                        validated,
                        round,
                        proposer,
                        parts,
                    },
                );
                Validity::Valid
            }
            Err(error) => {
                warn!(%height, %round, %proposer, %error, "invalid proposal");
                Validity::Invalid
            }
        }
    }

    /// Checks the signatures of a block's events, taking those this node holds in its mempool
    /// as they are (they were verified on arrival, and an id is the hash of the signed bytes;
    /// if the pool is busy, everything is checked), then validates the block.
    fn verify_and_validate(
        &self,
        block: Block,
    ) -> Result<ValidatedBlock<ContractRules>, BlockError> {
        let Block { header, events } = block;
        let events = match self.mempool.try_lock() {
            Ok(pool) => verify_events(events, |id| pool.get(id), &self.keys),
            Err(_) => verify_events(events, |_| None, &self.keys),
        }?;
        validate_verified(
            self.store.as_ref(),
            &self.genesis,
            &self.rules,
            header,
            events,
        )
    }

    /// Stores a decided block with its certificate, then tells everyone.
    async fn commit(
        &mut self,
        certificate: &CommitCertificate<CustodyContext>,
    ) -> Result<(), CommitError> {
        let height = certificate.height;
        let candidate = self
            .candidates
            .remove(&(height, certificate.value_id))
            .ok_or(CommitError::NoCandidate(certificate.value_id))?;
        let ledger_cert = to_ledger_certificate(certificate)?;
        block::verify_certificate(
            &ledger_cert,
            &self.genesis.chain_id,
            height.0,
            &candidate.validated.hash(),
            &self.genesis.validators(),
        )?;
        self.store
            .append_block(&candidate.validated, &ledger_cert)?;
        let entries = candidate.validated.entries().to_vec();
        let log_nodes = candidate.validated.log_nodes().to_vec();
        let (block, rules) = candidate.validated.into_parts();
        info!(%height, events = block.events.len(), hash = %block.hash(), "committed");
        self.rules = rules;
        *self.shared_rules.write().expect("rules lock") = self.rules.clone();
        let committed = Committed::new(block, ledger_cert, entries, log_nodes);
        self.mempool
            .lock()
            .await
            .remove(&committed.ids.iter().copied().collect::<Vec<_>>());
        self.drop_stale(&committed.block).await;
        self.candidates.retain(|(h, _), _| *h > height);
        self.proposed.retain(|(h, _), _| *h > height);
        #[cfg(feature = "fault-injection")]
        self.faults.seconds.retain(|(h, _), _| *h > height);
        self.streams.forget_below(height.0 + 1);
        if let Err(error) = self.proposals.forget_up_to(height.0) {
            warn!(%height, %error, "cannot clear the kept proposals of a committed height");
        }
        self.height = Height(height.0 + 1);
        self.last_commit_at = tokio::time::Instant::now();
        let _ = self.committed.send(committed);
        Ok(())
    }

    /// Re-checks the mempool's events that `block` may have made invalid and drops those the
    /// next block would refuse, so that a client's `?wait=commit` does not wait for an event
    /// that can no longer commit and the pool does not fill with dead events.
    async fn drop_stale(&mut self, block: &Block) {
        let mut shipments = BTreeSet::new();
        let mut everything = false;
        for event in &block.events {
            match event.event().event.kind.shipment_id() {
                Some(id) => {
                    shipments.insert(id.clone());
                }
                None => everything = true,
            }
        }
        let waiting =
            self.mempool
                .lock()
                .await
                .affected_by(&shipments, everything, RECHECK_EVENTS_MAX);
        if waiting.is_empty() {
            return;
        }
        let refused = admission::stale(
            self.store.as_ref(),
            &self.genesis,
            &self.rules,
            &waiting,
            now(),
        )
        .expect("the store answers while re-checking the mempool");
        if !refused.is_empty() {
            let ids: Vec<Digest> = refused.iter().map(|(id, _)| *id).collect();
            for (id, rejection) in &refused {
                debug!(%id, code = rejection.code.as_str(), "dropping an event the last block made invalid");
            }
            self.mempool.lock().await.remove(&ids);
        }
    }

    fn decided_values(&self, from: u64, to: u64) -> Vec<RawDecidedValue<CustodyContext>> {
        let to = to.min(from.saturating_add(SYNC_BATCH_HEIGHTS_MAX - 1));
        let mut out = Vec::new();
        for height in from..=to {
            let (Ok(Some(block)), Ok(Some(cert))) =
                (self.store.block(height), self.store.certificate(height))
            else {
                break;
            };
            let synced = SyncedBlock {
                header: block.header,
                events: block
                    .events
                    .into_iter()
                    .map(EncodedEvent::into_bytes)
                    .collect(),
            };
            let certificate = from_ledger_certificate(&cert);
            out.push(RawDecidedValue::new(
                Bytes::from(codec::encode(&synced)),
                ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate,
                    VoteExtensions::default(),
                ),
            ));
        }
        out
    }

    fn synced_value(
        &mut self,
        height: Height,
        round: Round,
        proposer: Address,
        bytes: &[u8],
    ) -> SyncedValueOutcome<CustodyContext> {
        let Ok(synced) = codec::decode::<SyncedBlock>(bytes, codec::BLOCK_SIZE_BYTES_MAX) else {
            return SyncedValueOutcome::PeerFault;
        };
        let Some(block) = decode_block(synced.header, &synced.events) else {
            return SyncedValueOutcome::PeerFault;
        };
        let value = BlockValue::new(block.header.clone());
        self.height = height;
        let validity = self.validate(block, height, round, proposer, Vec::new());
        SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value,
            validity,
        })
    }
}

/// A block from its header and its events' canonical bytes; `None` if an event does not
/// decode.
fn decode_block(header: BlockHeader, events: &[Vec<u8>]) -> Option<Block> {
    let events = events
        .iter()
        .map(|bytes| EncodedEvent::decode(bytes).ok())
        .collect::<Option<Vec<_>>>()?;
    Some(Block { header, events })
}

/// Why a decided block could not be committed. Each stops the node: it must not diverge from
/// the network.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The engine decided a block this node never held as a candidate.
    #[error("no candidate block {0}")]
    NoCandidate(Digest),
    /// The decision's round is undefined.
    #[error("a decision without a defined round")]
    NoRound,
    /// The decision's precommits do not certify the block.
    #[error("the certificate does not certify the block")]
    Certificate(#[from] block::CertificateError),
    /// The store refused or failed to append the block.
    #[error("the store did not append the block")]
    Store(#[from] custody_ledger::store::StoreError),
}

/// The engine's certificate as the ledger stores it.
pub fn to_ledger_certificate(
    cert: &CommitCertificate<CustodyContext>,
) -> Result<block::CommitCertificate, CommitError> {
    let round = cert.round.as_u32().ok_or(CommitError::NoRound)?;
    Ok(block::CommitCertificate {
        height: cert.height.0,
        round,
        block_hash: cert.value_id,
        signatures: cert
            .commit_signatures
            .iter()
            .map(|s| block::CommitSignature {
                validator: s.address.0,
                signature: s.signature,
            })
            .collect(),
    })
}

/// A ledger certificate as the engine's.
pub fn from_ledger_certificate(
    cert: &block::CommitCertificate,
) -> CommitCertificate<CustodyContext> {
    CommitCertificate {
        height: Height(cert.height),
        round: Round::new(cert.round),
        value_id: cert.block_hash,
        commit_signatures: cert
            .signatures
            .iter()
            .map(|s| CommitSignature::new(Address(s.validator), s.signature))
            .collect(),
    }
}

/// How long the API waits for a commit before answering 202.
pub const COMMIT_WAIT_MAX: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use custody_ledger::testkit::TestNet;

    use super::*;

    /// The registration `template` with its first line's description padded so that the
    /// event is about `size_bytes` long (bytes only count here, not validity).
    fn sized(template: &EncodedEvent, size_bytes: usize) -> EncodedEvent {
        let mut signed = template.event().clone();
        let custody_ledger::model::EventKind::ShipmentRegistered(r) = &mut signed.event.kind else {
            panic!("the template is a registration");
        };
        let padding = size_bytes.saturating_sub(template.bytes().len());
        r.invoice.lines[0]
            .description
            .push_str(&"x".repeat(padding));
        EncodedEvent::new(signed)
    }

    fn event_bytes(event: &EncodedEvent) -> usize {
        event.bytes().len()
    }

    /// A header for `events`: the stream only carries it, so its roots need not match.
    fn header(events: &[EncodedEvent], proposer: custody_ledger::keys::PublicKey) -> BlockHeader {
        BlockHeader {
            chain_id: "custody-test".into(),
            height: 7,
            prev_hash: Digest::sha256(b"prev"),
            time: custody_ledger::Timestamp(1_700_000_000_000),
            proposer,
            event_count: u32::try_from(events.len()).expect("few events"),
            events_root: Digest::sha256(b"events"),
            log_size: 0,
            log_root: Digest::sha256(b""),
            state_root: Digest::sha256(b"state"),
            shipments_root: Digest::sha256(b"shipments"),
        }
    }

    /// The stream of a proposal as the network codec puts it on the wire.
    fn wire(parts: &[ProposalPart]) -> Vec<Bytes> {
        use arc_malachitebft_app_channel::app::types::codec::Codec as _;
        let id = stream_id(Height(7), Round::new(0));
        let mut messages: Vec<StreamMessage<ProposalPart>> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p.clone())))
            .collect();
        messages.push(StreamMessage::new(
            id,
            parts.len() as u64,
            StreamContent::Fin,
        ));
        messages
            .iter()
            .map(|m| {
                super::super::codec::CustodyCodec
                    .encode(m)
                    .expect("encodes")
            })
            .collect()
    }

    /// Decodes a wire stream and resolves its events against `held`, as a validator does;
    /// how many events it yields.
    fn receive(wire: &[Bytes], held: &BTreeMap<Digest, VerifiedEvent>) -> usize {
        use arc_malachitebft_app_channel::app::types::codec::Codec as _;
        let mut entries = Vec::new();
        for bytes in wire {
            let message: StreamMessage<ProposalPart> = super::super::codec::CustodyCodec
                .decode(bytes.clone())
                .expect("decodes");
            if let StreamContent::Data(ProposalPart::Events(chunk)) = message.content {
                entries.extend(chunk);
            }
        }
        let resolution = fetch::resolve(entries, held).expect("resolves");
        resolution.complete().expect("every event held").len()
    }

    /// Issue 17: the proposal stream of a 1,000-event block, whole and with every event named
    /// by id, in bytes, and the time a validator spends decoding and resolving each event.
    #[test]
    fn a_proposal_naming_held_events_by_id_is_far_smaller_and_cheaper_to_read() {
        const EVENTS: usize = 1_000;
        let net = TestNet::new();
        let events: Vec<EncodedEvent> = (0..EVENTS)
            .map(|i| net.register(&format!("SIZE-{i}"), "CN", "FR"))
            .collect();
        let held: BTreeMap<Digest, VerifiedEvent> =
            custody_ledger::testkit::verified(events.clone())
                .into_iter()
                .map(|e| (e.id(), e))
                .collect();
        let key = Arc::new(custody_ledger::keys::Keypair::from_seed([3; 32]));
        let signer = CustodySigner::new("custody-test", key.clone());
        let init = ProposalPart::Init {
            height: Height(7),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer: Address(key.public()),
            header: header(&events, key.public()),
        };
        let mut figures = Vec::new();
        for by_id in [false, true] {
            let entries = fetch::entries(&events, |_| by_id);
            let parts = signed_parts("custody-test", &signer, init.clone(), entries);
            let wire = wire(&parts);
            let size_bytes: usize = wire.iter().map(Bytes::len).sum();
            let started = std::time::Instant::now();
            assert_eq!(receive(&wire, &held), EVENTS);
            let per_event_us = started.elapsed().as_secs_f64() * 1e6 / EVENTS as f64;
            println!(
                "{EVENTS}-event proposal, {}: {size_bytes} bytes in {} messages, \
                 {per_event_us:.2} us per event to decode and resolve",
                if by_id {
                    "all named by id"
                } else {
                    "all bodies"
                },
                wire.len()
            );
            figures.push((size_bytes, per_event_us));
        }
        let (whole, named) = (figures[0], figures[1]);
        // An id costs 34 bytes where a registration costs several hundred.
        assert!(named.0 * 5 < whole.0, "{named:?} vs {whole:?}");
        assert!(
            named.0 < EVENTS * (fetch::ID_SIZE_BYTES + 4) + 2_000,
            "{named:?}"
        );
    }

    #[test]
    fn parts_are_bounded_by_count_and_bytes_and_keep_every_event_in_order() {
        let net = TestNet::new();
        let template = net.register("PART", "CN", "FR");
        let small: Vec<EncodedEvent> = (0..450).map(|_| template.clone()).collect();
        let lengths: Vec<usize> = part_chunks(&small, event_bytes)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(lengths, [200, 200, 50]);

        let mib = 1024 * 1024;
        let large = [
            sized(&template, mib),
            sized(&template, mib),
            sized(&template, 100),
            sized(&template, mib),
        ];
        let chunks = part_chunks(&large, event_bytes);
        for chunk in &chunks {
            let bytes: usize = chunk.iter().map(|e| e.bytes().len()).sum();
            assert!(chunk.len() == 1 || bytes <= PART_EVENT_BYTES_MAX, "{bytes}");
        }
        let flat: Vec<&EncodedEvent> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(flat, large.iter().collect::<Vec<_>>());
        assert!(part_chunks(&[], event_bytes).is_empty());
    }
}
