//! Sharing personal data between the nodes of a shipment's parties, never by gossip: a node
//! whose member becomes a party asks its configured peers (`[personal] peers`, their API base
//! URLs) with the signed read of [`super::auth`], signed with its node key. A peer answers
//! only if that node key speaks for a party ([`super::parties`]), so nodes of other members
//! get a 403 and nothing else. Every disclosure received is checked against this node's own
//! ledger before it is kept.
//!
//! Fetches are jobs on a bounded queue (a full queue drops the job and says so), run a few at
//! a time, each request with a timeout and each job with a few retries after a back-off: a
//! peer may not have committed the block that made this node a party yet. Nothing here ever
//! holds up a commit.

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
    jobs: mpsc::Sender<ShipmentId>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Sharing {
    /// Sharing with `peers` (API base URLs, such as `http://127.0.0.1:8081`), signing with
    /// the node key; the receiver is the job queue for [`run_fetcher`].
    pub fn new(peers: Vec<String>, key: Arc<Keypair>) -> (Sharing, mpsc::Receiver<ShipmentId>) {
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

    /// Queues a fetch of a shipment's disclosures; drops it (and says so) when the queue is
    /// full. Whether it was queued.
    pub fn enqueue(&self, shipment: ShipmentId) -> bool {
        let queued = self.jobs.try_send(shipment).is_ok();
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
        let held = tokio::task::spawn_blocking(move || {
            // Only what this node's own ledger confirms is kept; one bad disclosure from a
            // peer does not spoil the others.
            let good: Vec<Disclosure> = found
                .into_iter()
                .filter(|d| {
                    matches!(
                        check_against_ledger(store.as_ref(), &shipment, std::slice::from_ref(d)),
                        Ok(Ok(()))
                    )
                })
                .collect();
            if good.is_empty() {
                return Ok(0);
            }
            match files.merge(&shipment, &good, || is_erased(&store, &shipment)) {
                // Erased meanwhile: there is nothing to keep, and that is not a failure.
                Err(super::FilesError::Erased) => Ok(0),
                other => other.map_err(|e| e.to_string()),
            }
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok(Fetched { held, answered })
    }

    /// One signed read of one peer.
    async fn ask(&self, peer: &str, shipment: &ShipmentId) -> Result<Vec<Disclosure>, String> {
        let read = auth::sign_read(&self.key, shipment, auth::now_ms());
        let url = format!("{peer}/v1/shipments/{}/personal", shipment.as_str());
        let mut response = self
            .client
            .get(&url)
            .header(SIGNER_HEADER, read.signer.to_hex())
            .header(TIME_HEADER, read.time_ms.to_string())
            .header(SIGNATURE_HEADER, hex::encode(read.signature.0))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > ANSWER_BYTES_MAX {
                return Err(format!("answer larger than {ANSWER_BYTES_MAX} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let view: PersonalView = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if &view.shipment_id != shipment {
            return Err(format!("answered for shipment {}", view.shipment_id));
        }
        Ok(view.disclosures)
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

/// Runs the fetch jobs of `personal`'s sharing until the queue's senders are gone: a few at a
/// time, each tried [`ATTEMPTS`] times with a doubling back-off.
pub async fn run_fetcher(
    personal: Arc<Personal>,
    store: Arc<SledStore>,
    mut jobs: mpsc::Receiver<ShipmentId>,
) {
    let permits = Arc::new(Semaphore::new(FETCHES_AT_ONCE));
    while let Some(shipment) = jobs.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (personal, store) = (personal.clone(), store.clone());
        tokio::spawn(async move {
            fetch_with_retries(&personal, &store, &shipment).await;
            drop(permit);
        });
    }
}

async fn fetch_with_retries(personal: &Personal, store: &Arc<SledStore>, shipment: &ShipmentId) {
    let (Some(sharing), Some(files)) = (&personal.sharing, &personal.files) else {
        return;
    };
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match sharing.fetch_once(store, files, shipment).await {
            Ok(Fetched {
                held: 0,
                answered: 0,
            }) => {}
            Ok(Fetched { held: 0, .. }) => {
                // A party's node answered and had nothing: nobody disclosed anything yet.
                debug!(%shipment, "party nodes hold no personal data for this shipment");
                return;
            }
            Ok(Fetched { held, .. }) => {
                info!(%shipment, held, attempt, "personal data fetched from party nodes");
                return;
            }
            Err(error) => warn!(%shipment, %error, attempt, "personal-data fetch failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    debug!(%shipment, "no party node had personal data for this shipment");
}
