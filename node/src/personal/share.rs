//! Sharing personal data between the nodes of a shipment's parties, never by gossip: a node
//! whose member becomes a party asks its configured peers (`[personal] peers`, their API base
//! URLs) with the signed read of [`super::auth`], signed with its node key. A peer answers
//! only if that node key speaks for a party ([`super::parties`]), so nodes of other members
//! get a 403 and nothing else. Every disclosure received is checked against this node's own
//! ledger before it is kept.
//!
//! Fetches that follow commits are one job per block on a bounded queue (a full queue drops
//! the job and says so): one signed batch read (`POST /v1/personal/batch`) per peer names the
//! block's shipments worth asking about, so the cost is per block and peer, not per shipment
//! and peer. Jobs run a few at a time, each request with a timeout; a peer whose committed
//! height is below the job's block may not see this node as a party yet and is asked again
//! after a back-off, a few times. A person's read that finds nothing held asks the peers about
//! its one shipment with the signed `GET`. Nothing here ever holds up a commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use custody_ledger::keys::Keypair;
use custody_ledger::model::ShipmentId;
use custody_ledger::personal::Disclosure;
use custody_ledger::store::Store;
use custody_sled::SledStore;
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, warn};

use super::auth::{self, SIGNATURE_HEADER, SIGNER_HEADER, TIME_HEADER};
use super::{is_erased, Personal, PersonalFiles, PersonalView, DISCLOSURES_MAX};

/// Fetch jobs waiting at most.
pub const FETCH_QUEUE_MAX: usize = 256;
/// Fetch jobs running at once.
const FETCHES_AT_ONCE: usize = 4;
/// Longest wait for one peer's answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per job.
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled before each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Largest answer read from a peer.
const ANSWER_BYTES_MAX: usize = 512 * 1024;
/// Largest answer to a batch read read from a peer.
const BATCH_ANSWER_BYTES_MAX: usize = 8 * 1024 * 1024;

/// A fetch job: the shipments of the block at `height` worth asking the peers about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The committed block that made the shipments worth asking about.
    pub height: u64,
    /// At most [`auth::READ_BATCH_SHIPMENTS_MAX`].
    pub shipments: Vec<ShipmentId>,
}

/// Why a disclosure is not kept: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `disclosure.event`, `disclosure.field`, `disclosure.commitment` or `disclosure.value`.
    pub code: &'static str,
    /// Which disclosure (its place in the list).
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Checks disclosures against the ledger: each names a committed event of `shipment`, and
/// opens that event's commitment.
pub fn check_against_ledger<S: Store + ?Sized>(
    store: &S,
    shipment: &ShipmentId,
    disclosures: &[Disclosure],
) -> Result<Result<(), Refused>, custody_ledger::store::StoreError> {
    for (index, d) in disclosures.iter().enumerate() {
        let Some(stored) = store.event(&d.event_id)? else {
            return Ok(Err(Refused {
                code: "disclosure.event",
                index,
                message: format!("no committed event {}", d.event_id),
            }));
        };
        let kind = &stored.event.event().event.kind;
        if kind.shipment_id() != Some(shipment) {
            return Ok(Err(Refused {
                code: "disclosure.event",
                index,
                message: format!("event {} is not about shipment {shipment}", d.event_id),
            }));
        }
        if let Err(error) = d.check(kind) {
            return Ok(Err(Refused {
                code: error.code(),
                index,
                message: error.to_string(),
            }));
        }
    }
    Ok(Ok(()))
}

/// This node's side of sharing: its peers, its node key and the job queue.
#[derive(Debug)]
pub struct Sharing {
    peers: Vec<String>,
    client: reqwest::Client,
    key: Arc<Keypair>,
    jobs: mpsc::Sender<Job>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Sharing {
    /// Sharing with `peers` (API base URLs, such as `http://127.0.0.1:8081`), signing with
    /// the node key; the receiver is the job queue for [`run_fetcher`].
    pub fn new(peers: Vec<String>, key: Arc<Keypair>) -> (Sharing, mpsc::Receiver<Job>) {
        let (jobs, queue) = mpsc::channel(FETCH_QUEUE_MAX);
        let client = reqwest::Client::builder()
            .timeout(PEER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds");
        let peers = peers
            .into_iter()
            .map(|p| p.trim_end_matches('/').to_owned())
            .collect();
        (
            Sharing {
                peers,
                client,
                key,
                jobs,
                dropped: Default::default(),
            },
            queue,
        )
    }

    /// The node key requests are signed with.
    pub fn node_key(&self) -> custody_ledger::PublicKey {
        self.key.public()
    }

    /// Queues a fetch of the disclosures of a block's shipments (at most
    /// [`auth::READ_BATCH_SHIPMENTS_MAX`]); drops it (and says so) when the queue is full.
    /// Whether it was queued.
    pub fn enqueue(&self, job: Job) -> bool {
        assert!(
            job.shipments.len() <= auth::READ_BATCH_SHIPMENTS_MAX,
            "a fetch job names at most one batch read's shipments"
        );
        let queued = self.jobs.try_send(job).is_ok();
        if !queued {
            // Said once per thousand drops, so a burst does not flood the log.
            let dropped = self
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if dropped.is_multiple_of(1_000) {
                warn!(
                    dropped = dropped + 1,
                    "personal-data fetch queue full; jobs dropped"
                );
            }
        }
        queued
    }

    /// Asks every peer once and keeps what checks out.
    pub async fn fetch_once(
        &self,
        store: &Arc<SledStore>,
        files: &PersonalFiles,
        shipment: &ShipmentId,
    ) -> Result<Fetched, String> {
        let mut found: Vec<Disclosure> = Vec::new();
        let mut answered = 0;
        for peer in &self.peers {
            match self.ask(peer, shipment).await {
                Ok(disclosures) => {
                    answered += 1;
                    for d in disclosures {
                        if !found
                            .iter()
                            .any(|f| (f.event_id, f.field) == (d.event_id, d.field))
                        {
                            found.push(d);
                        }
                    }
                }
                Err(reason) => debug!(%peer, %shipment, %reason, "peer gave no personal data"),
            }
        }
        found.truncate(DISCLOSURES_MAX);
        if found.is_empty() {
            return Ok(Fetched { held: 0, answered });
        }
        let (store, files, shipment) = (store.clone(), files.clone(), shipment.clone());
        let held = tokio::task::spawn_blocking(move || keep(&store, &files, &shipment, found))
            .await
            .map_err(|e| e.to_string())??;
        Ok(Fetched { held, answered })
    }

    /// Asks every peer about a block's shipments with one batch read each, again (after a
    /// back-off) those that answered from below the block's height or failed, and keeps what
    /// checks out. How many shipments it now holds disclosures of.
    pub async fn fetch_block(
        &self,
        store: &Arc<SledStore>,
        files: &PersonalFiles,
        job: &Job,
    ) -> usize {
        let mut found: BTreeMap<ShipmentId, Vec<Disclosure>> = BTreeMap::new();
        let mut pending: Vec<&str> = self.peers.iter().map(String::as_str).collect();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let mut behind = Vec::new();
            for peer in pending {
                match self.ask_batch(peer, &job.shipments).await {
                    Ok(answer) => {
                        if answer.height < job.height {
                            behind.push(peer);
                        }
                        gather(&mut found, &job.shipments, answer.shipments);
                    }
                    Err(reason) => {
                        debug!(%peer, height = job.height, %reason, "batch read failed");
                        behind.push(peer);
                    }
                }
            }
            pending = behind;
            if pending.is_empty() || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        if found.is_empty() {
            return 0;
        }
        let (store, files) = (store.clone(), files.clone());
        let kept = tokio::task::spawn_blocking(move || {
            let mut kept = 0;
            for (shipment, disclosures) in found {
                match keep(&store, &files, &shipment, disclosures) {
                    Ok(0) => {}
                    Ok(held) => {
                        info!(%shipment, held, "personal data fetched from party nodes");
                        kept += 1;
                    }
                    Err(error) => warn!(%shipment, %error, "cannot keep fetched personal data"),
                }
            }
            kept
        })
        .await;
        kept.unwrap_or_else(|error| {
            warn!(%error, "keeping fetched personal data failed");
            0
        })
    }

    /// One signed batch read of one peer.
    async fn ask_batch(
        &self,
        peer: &str,
        shipments: &[ShipmentId],
    ) -> Result<auth::ReadBatchAnswer, String> {
        let read = auth::sign_read_batch(&self.key, shipments.to_vec(), auth::now_ms());
        let request = self
            .client
            .post(format!("{peer}/v1/personal/batch"))
            .json(&read);
        let body = answer_of(request, BATCH_ANSWER_BYTES_MAX).await?;
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }

    /// One signed read of one peer.
    async fn ask(&self, peer: &str, shipment: &ShipmentId) -> Result<Vec<Disclosure>, String> {
        let read = auth::sign_read(&self.key, shipment, auth::now_ms());
        let url = format!("{peer}/v1/shipments/{}/personal", shipment.as_str());
        let request = self
            .client
            .get(&url)
            .header(SIGNER_HEADER, read.signer.to_hex())
            .header(TIME_HEADER, read.time_ms.to_string())
            .header(SIGNATURE_HEADER, hex::encode(read.signature.0));
        let body = answer_of(request, ANSWER_BYTES_MAX).await?;
        let view: PersonalView = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if &view.shipment_id != shipment {
            return Err(format!("answered for shipment {}", view.shipment_id));
        }
        Ok(view.disclosures)
    }
}

/// Sends a request to a peer and reads its successful answer, at most `bytes_max` of it.
async fn answer_of(request: reqwest::RequestBuilder, bytes_max: usize) -> Result<Vec<u8>, String> {
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > bytes_max {
            return Err(format!("answer larger than {bytes_max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Adds a peer's answer to what was found: only shipments that were asked about, each
/// (event, field) once, at most [`DISCLOSURES_MAX`] per shipment.
fn gather(
    found: &mut BTreeMap<ShipmentId, Vec<Disclosure>>,
    asked: &[ShipmentId],
    answered: Vec<PersonalView>,
) {
    for view in answered {
        if !asked.contains(&view.shipment_id) {
            continue;
        }
        let held = found.entry(view.shipment_id).or_default();
        for d in view.disclosures {
            if held.len() < DISCLOSURES_MAX
                && !held
                    .iter()
                    .any(|h| (h.event_id, h.field) == (d.event_id, d.field))
            {
                held.push(d);
            }
        }
    }
}

/// Keeps those of a peer's disclosures that this node's own ledger confirms (one bad
/// disclosure does not spoil the others); how many the shipment's file then holds.
fn keep(
    store: &Arc<SledStore>,
    files: &PersonalFiles,
    shipment: &ShipmentId,
    found: Vec<Disclosure>,
) -> Result<usize, String> {
    let good: Vec<Disclosure> = found
        .into_iter()
        .filter(|d| {
            matches!(
                check_against_ledger(store.as_ref(), shipment, std::slice::from_ref(d)),
                Ok(Ok(()))
            )
        })
        .collect();
    if good.is_empty() {
        return Ok(0);
    }
    match files.merge(shipment, &good, || is_erased(store, shipment)) {
        // Erased meanwhile: there is nothing to keep, and that is not a failure.
        Err(super::FilesError::Erased) => Ok(0),
        other => other.map_err(|e| e.to_string()),
    }
}

/// What one round of asking the peers found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// How many disclosures this node holds for the shipment afterwards (0 if none came).
    pub held: usize,
    /// How many peers answered as party nodes (a 200, even with nothing).
    pub answered: usize,
}

/// Runs the fetch jobs of `personal`'s sharing until the queue's senders are gone, a few at a
/// time ([`Sharing::fetch_block`]).
pub async fn run_fetcher(
    personal: Arc<Personal>,
    store: Arc<SledStore>,
    mut jobs: mpsc::Receiver<Job>,
) {
    let permits = Arc::new(Semaphore::new(FETCHES_AT_ONCE));
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (personal, store) = (personal.clone(), store.clone());
        tokio::spawn(async move {
            if let (Some(sharing), Some(files)) = (&personal.sharing, &personal.files) {
                let kept = sharing.fetch_block(&store, files, &job).await;
                debug!(
                    height = job.height,
                    shipments = job.shipments.len(),
                    kept,
                    "asked the peers about a block's shipments"
                );
            }
            drop(permit);
        });
    }
}
