//! Submitting events and waiting for commits, through the SDK, with every wait bounded.

use std::time::{Duration, Instant};

use anyhow::bail;
use custody_client::{Client, ClientError, Submitted};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::EventId;

/// How long an event may take to commit before a submission is given up.
pub const COMMIT_TIMEOUT_MS: u64 = 120_000;
/// How often a pending event or a node's height is polled.
const POLL_INTERVAL_MS: u64 = 100;

/// Submits `event` and waits until it is committed; returns the height of the block that
/// committed it. A node that answers "pending" (the commit took longer than its own wait) is
/// asked again until the event is committed, for at most [`COMMIT_TIMEOUT_MS`].
pub async fn committed(client: &Client, event: &EncodedEvent) -> anyhow::Result<u64> {
    match client.submit(event, true).await? {
        Submitted::Committed(receipt) => Ok(receipt.height),
        Submitted::Pending(_) => {
            wait_committed(
                client,
                &event.id(),
                Duration::from_millis(COMMIT_TIMEOUT_MS),
            )
            .await
        }
    }
}

/// Waits until the node holds event `id` committed, for at most `within`; the height of the
/// block that committed it.
pub async fn wait_committed(
    client: &Client,
    id: &EventId,
    within: Duration,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + within;
    loop {
        match client.event(id).await {
            Ok(view) => return Ok(view.height),
            Err(ClientError::Problem { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            bail!(
                "event {id} was not committed at {} within {} s",
                client.base_url(),
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

/// Waits until the node has committed height `height`, for at most `within`.
pub async fn wait_height(client: &Client, height: u64, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let current = client.status().await?.height;
        if current >= height {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} stayed at height {current}, below {height}, for {} s",
                client.base_url(),
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}
