//! A Byzantine validator among four, on the test rig: one of the validators is a real node
//! process run with a `[faults]` table (custody-node's `fault-injection` feature, which the
//! rig's node program has), and the three honest ones must keep the chain whole and moving.
//!
//! - a proposer that equivocates (two different signed blocks for one height and round);
//! - a validator that sends malformed consensus frames (garbage, truncated, oversize,
//!   wrong signatures) while staying connected;
//! - a proposer that puts an event the contracts refuse into its blocks;
//! - a validator whose consensus host panics, which must stop that node and only it.
//!
//! Every test is bounded: each wait has a deadline, and nodes are killed when the test ends.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::EventKind;
use custody_ledger::store::Store;
use custody_ledger::testkit::TestNet;
use custody_rig::{Network, NetworkBuilder, Program};

/// The misbehaving validator; 0, 1 and 2 are honest.
const BYZANTINE: usize = 3;

/// The honest validators.
const HONEST: [usize; 3] = [0, 1, 2];

/// Heights to reach under a Byzantine validator: with four validators proposing in turn,
/// enough for it to lead several of them.
const HEIGHTS_MIN: u64 = 16;

/// How long a whole test may wait for those heights.
const PROGRESS_TIMEOUT_S: u64 = 180;

fn program() -> Program {
    Program::devnet(env!("CARGO_BIN_EXE_custody-rig-node"))
}

/// Four validators, the last one Byzantine as `configure` makes it.
fn network(
    configure: impl Fn(&mut custody_node::config::Faults) + Send + 'static,
) -> NetworkBuilder {
    Network::builder(program()).configure(move |i, config| {
        if i == BYZANTINE {
            configure(&mut config.faults);
        }
    })
}

fn registrations(net: &TestNet, count: usize, prefix: &str) -> Vec<EncodedEvent> {
    (0..count)
        .map(|i| net.register(&format!("{prefix}-{i}"), "CN", "FR"))
        .collect()
}

/// How many lines of node `i`'s log contain every one of `needles`.
fn count_lines(network: &Network, i: usize, needles: &[&str]) -> usize {
    network
        .log(i)
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .count()
}

/// The same count summed over the honest validators.
fn count_honest(network: &Network, needles: &[&str]) -> usize {
    HONEST
        .iter()
        .map(|i| count_lines(network, *i, needles))
        .sum()
}

/// Submits `events` to the honest validators in turn, each until committed, then waits until
/// every node has [`HEIGHTS_MIN`] blocks and the block of the last event: a node commits a
/// decided block a moment after the one that answered, and one that voted nil or fell
/// behind catches up by sync.
fn commit_under_fault(network: &Network, events: &[EncodedEvent]) -> anyhow::Result<()> {
    let mut highest = 0;
    for (n, event) in events.iter().enumerate() {
        let (code, body) = network.submit(HONEST[n % HONEST.len()], event, true)?;
        if code != 200 {
            network.dump_logs();
            bail!("event {n} not committed: {code} {body}");
        }
        let receipt: serde_json::Value = serde_json::from_str(&body)?;
        let height = receipt["height"]
            .as_u64()
            .ok_or_else(|| anyhow!("a receipt without a height: {body}"))?;
        highest = highest.max(height);
    }
    let wanted = HEIGHTS_MIN.max(highest);
    network.wait_height(wanted, Duration::from_secs(PROGRESS_TIMEOUT_S))
}

/// Stops the network, checks that every store agrees on every height and verifies, and that
/// every node holds every event; the lowest head height.
fn stop_and_check(network: &mut Network, events: &[EncodedEvent]) -> anyhow::Result<u64> {
    let height = network.stop_and_compare()?;
    for i in 0..network.len() {
        let store = network.open_store(i)?;
        for event in events {
            if !store.contains_event(&event.id())? {
                bail!("node {} lacks event {}", network.name(i), event.id());
            }
        }
    }
    Ok(height)
}

/// The heights of `store` up to `height` that validator `i` proposed.
fn proposed_by(network: &Network, i: usize, height: u64) -> anyhow::Result<usize> {
    let key = network.node_key(i).public();
    let store = network.open_store(0)?;
    let mut count = 0;
    for h in 1..=height {
        let header = store.header(h)?.ok_or_else(|| anyhow!("no header {h}"))?;
        count += usize::from(header.proposer == key);
    }
    Ok(count)
}

/// Issue 16: at each of its turns the Byzantine proposer builds two different valid blocks
/// for the same height and round, streams both and signs a consensus proposal for each. The
/// honest validators vote for at most one of them (the engine keeps the second as evidence
/// and logs it), so they never fork, and the chain keeps committing what is submitted.
#[test]
fn an_equivocating_proposer_cannot_fork_the_chain() -> anyhow::Result<()> {
    let mut network = network(|faults| faults.equivocate = true).start()?;
    network.publish_reference_data(0)?;
    let events = registrations(network.testnet(), 24, "EQUIVOCATION");
    commit_under_fault(&network, &events)?;

    let sent = count_lines(&network, BYZANTINE, &["sending a second proposal"]);
    assert!(
        sent >= 2,
        "the Byzantine validator equivocated {sent} times; the test proved little"
    );
    // The engine's words (its version is pinned) for a second signed proposal it refused to
    // treat as a first.
    let seen = count_honest(&network, &["Received equivocating proposal"]);
    assert!(
        seen > 0,
        "no honest validator recorded the equivocation ({sent} sent)"
    );
    let height = stop_and_check(&mut network, &events)?;
    assert!(height >= HEIGHTS_MIN, "height {height}");
    Ok(())
}

/// Issue 16: the Byzantine validator damages every other vote it sends (a wrong signature,
/// truncated, garbage, past the size limit, a trailing byte) and follows each of its
/// proposals with a copy damaged frame by frame and a copy with a wrong signature, on the
/// same connections as its honest messages. The honest validators refuse each frame, never
/// panic, and the chain keeps committing.
#[test]
fn malformed_consensus_frames_are_refused_and_the_chain_goes_on() -> anyhow::Result<()> {
    let mut network = network(|faults| faults.malformed_consensus_frames = true).start()?;
    network.publish_reference_data(0)?;
    let events = registrations(network.testnet(), 24, "MALFORMED");
    commit_under_fault(&network, &events)?;

    // The frames reached the honest validators and were judged there, each kind by its check.
    let undecodable = count_honest(&network, &["Failed to decode consensus message"]);
    let wrong_signature = count_honest(&network, &["vote with invalid signature"]);
    let bad_stream = count_honest(&network, &["Failed to decode stream message"]);
    let bad_fin = count_honest(&network, &["proposal parts with a bad signature"]);
    assert!(
        undecodable > 0 && wrong_signature > 0 && bad_stream > 0 && bad_fin > 0,
        "frames refused: {undecodable} undecodable votes, {wrong_signature} votes with a wrong \
         signature, {bad_stream} undecodable proposal parts, {bad_fin} proposals with a wrong \
         signature"
    );
    for i in HONEST {
        let panics = count_lines(&network, i, &["panicked"]);
        assert_eq!(panics, 0, "{}:\n{}", network.name(i), network.log(i));
    }
    let height = stop_and_check(&mut network, &events)?;
    assert!(height >= HEIGHTS_MIN, "height {height}");
    // Its own proposals still commit: the damage comes beside its honest messages.
    assert!(proposed_by(&network, BYZANTINE, height)? > 0);
    Ok(())
}

/// A proposer that forces an event the contracts refuse into each of its blocks: the honest
/// validators refuse those blocks (naming the rule), and the event is committed nowhere.
#[test]
fn a_proposal_with_an_invalid_event_is_refused_by_the_honest_validators() -> anyhow::Result<()> {
    // Validator 3 proposes, first in every block, a registration whose invoice total is wrong:
    // the state machine takes it, the contracts refuse it (invoice.total_mismatch).
    let mut bad_total = custody_ledger::testkit::registration("BYZ-1", "CN", "FR");
    bad_total.invoice.total_minor += 1;
    let bad = TestNet::new().sign("seller-acme", EventKind::ShipmentRegistered(bad_total));
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("unchecked.event");
    std::fs::write(&path, bad.bytes())?;
    let mut network =
        network(move |faults| faults.propose_unchecked_event = Some(path.clone())).start()?;
    network.publish_reference_data(0)?;

    // Enough heights that the Byzantine validator is the proposer of several of them.
    let events = registrations(network.testnet(), 12, "HONEST");
    for event in &events {
        let (code, body) = network.submit(0, event, true)?;
        assert_eq!(code, 200, "{body}");
    }
    let refusals = count_honest(&network, &["invalid proposal", "invoice.total_mismatch"]);
    assert!(
        refusals > 0,
        "no honest validator saw the Byzantine proposal; the test proved nothing"
    );
    stop_and_check(&mut network, &events)?;
    for i in 0..network.len() {
        let store = network.open_store(i)?;
        assert!(
            !store.contains_event(&bad.id())?,
            "the invalid event was committed"
        );
    }
    Ok(())
}

/// Issue 11: the consensus host panicking used to leave a zombie: the API kept serving and
/// `/healthz` said ok. Now the supervisor marks the node unhealthy (503 naming the task),
/// exits non-zero, and the other validators go on.
#[test]
fn regression_issue_11_a_panicked_consensus_task_stops_the_node_and_healthz_says_so(
) -> anyhow::Result<()> {
    const PANIC_HEIGHT: u64 = 4;
    let mut network = network(|faults| faults.panic_at_height = Some(PANIC_HEIGHT)).start()?;
    let addr = network.http(BYZANTINE);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut unhealthy_body = None;
    let status = loop {
        if let Some(status) = network.exited(BYZANTINE)? {
            break status;
        }
        if unhealthy_body.is_none() {
            // The node may exit between the check above and this request.
            if let Ok(answer) = custody_rig::http::request(addr, "GET", "/healthz", None, &[]) {
                if answer.status == 503 {
                    unhealthy_body = Some(answer.text());
                } else {
                    assert_eq!(answer.status, 200, "{}", answer.text());
                }
            }
        }
        if Instant::now() > deadline {
            network.dump_logs();
            bail!("the node with the panicking host did not exit in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "exit status {status}");
    assert_ne!(status.code(), Some(101), "a panic escaped to the process");
    let body = unhealthy_body.ok_or_else(|| anyhow!("/healthz never answered 503"))?;
    assert!(body.contains("node.unhealthy"), "{body}");
    assert!(body.contains("consensus host"), "{body}");
    let log = network.log(BYZANTINE);
    assert!(log.contains("a critical task stopped"), "{log}");
    // The three others are a quorum and go on.
    network.publish_reference_data(0)?;
    assert!(network.height(0) >= PANIC_HEIGHT);
    network.stop_and_compare()?;
    Ok(())
}
