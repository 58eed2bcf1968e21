//! The explorer in a real browser. A devnet runs the demo; headless Chromium, driven over the
//! W3C WebDriver protocol by chromedriver, opens the network page and a block page, searches a
//! demo shipment by id and by a parcel's SSCC, follows the result to the shipment page and
//! waits for the in-browser verifier to verify its bundle, each event shown with the block
//! height and time its log entry proves; the same page served through a proxy that tampers
//! with the bundle (a changed or forged event, an event left out in the middle or at the end, a
//! block time or height changed, a false disclosure of personal data) must fail with the check
//! the reference verifier names, without calling verified an event the tampering cut off from
//! the checkpoint; a pasted genesis of another chain fails `bundle.genesis`; the shipment page
//! fits a 360 px screen; unknown shipments, members and blocks get the not-found page; a member
//! page renders; and the browser's console holds no error on any page that should be clean.
//! Screenshots of every page go to `target/explorer-screenshots/` (with
//! `CUSTODY_UPDATE_SCREENSHOT=1`, the shipment page also to `docs/explorer-shipment.png`).
//!
//! Chromium and chromedriver must be installed (Debian: `apt-get install chromium
//! chromium-driver`): the test fails, naming what is missing, when they are not, rather than
//! passing without having looked at a page. Every wait has a deadline; guards stop the
//! browser, the driver and the devnet whatever happens.

// The test's own modules, beside it (a file directly in tests/ would be a test of its own).
#[path = "explorer/proxy.rs"]
mod proxy;
#[path = "explorer/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use custody_client::verify::read_genesis;
use custody_client::Client;
use custody_devnet::demo::DemoRecord;
use custody_devnet::layout::Layout;
use custody_devnet::process;
use custody_devnet::runstate::{self, RunState};
use custody_ledger::bundle;
use custody_ledger::genesis::Genesis;
use custody_ledger::model::ShipmentId;
use serde_json::{json, Value};

use proxy::{TamperProxy, Tampering};
use webdriver::{ChromeDriver, Session, CHROMEDRIVER, CHROMIUM, COMMAND_TIMEOUT, WINDOW};

/// How to get the browser and its driver.
const INSTALL_HINT: &str = "install them with `sudo apt-get update && sudo apt-get install -y \
                            chromium chromium-driver` (Debian/Ubuntu package names)";

/// Deadline of `up --demo` (it builds a network and runs four shipments through it).
const UP_TIMEOUT: Duration = Duration::from_secs(240);
/// Deadline of `down`.
const DOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the in-browser verifier may take over a demo shipment's bundle.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// The window of the README's screenshot of a shipment page.
const README_SHOT: (u64, u64) = (1200, 1500);
/// The narrowest screen the pages must work on.
const NARROW_WIDTH: u64 = 360;

// ---------------------------------------------------------------------------------------------
// Paths

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the devnet crate sits in the workspace")
        .to_owned()
}

/// `target/explorer-screenshots/` of the target directory cargo builds into.
fn artefact_dir() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_relative() {
                workspace().join(t)
            } else {
                t
            }
        })
        .unwrap_or_else(|| workspace().join("target"));
    let dir = target.join("explorer-screenshots");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Fails, naming what is missing and how to install it, unless both programs are there.
fn require_browser() -> anyhow::Result<()> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    ensure!(
        missing.is_empty(),
        "the explorer's browser tests need Chromium and chromedriver, and {} missing; {INSTALL_HINT}",
        missing
            .iter()
            .map(|p| format!("{p} is"))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The devnet

/// Runs the devnet binary with `args` on the test rig, killing it if it runs longer than
/// `within`; its status and its output (stdout, then stderr).
fn devnet_command(
    scratch: &Path,
    args: &[&str],
    within: Duration,
) -> anyhow::Result<(ExitStatus, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custody-devnet"));
    command.args(args);
    let ran = custody_rig::command::run(command, scratch, within)?;
    Ok((ran.status, format!("{}{}", ran.stdout, ran.stderr)))
}

/// A detached devnet that ran the demo; `down` when dropped, then SIGKILL for any node
/// process still running.
struct Devnet {
    scratch: tempfile::TempDir,
    dir: PathBuf,
}

impl Devnet {
    fn up() -> anyhow::Result<Devnet> {
        let scratch = tempfile::tempdir()?;
        let dir = scratch.path().join("net");
        let devnet = Devnet { scratch, dir };
        let dir_arg = devnet.dir_arg()?;
        let (status, output) = devnet_command(
            devnet.scratch.path(),
            &["up", "--dir", dir_arg, "--demo", "--detach"],
            UP_TIMEOUT,
        )?;
        ensure!(
            status.success(),
            "custody-devnet up --demo failed ({status}):\n{output}"
        );
        Ok(devnet)
    }

    fn dir_arg(&self) -> anyhow::Result<&str> {
        self.dir.to_str().context("the scratch path is not UTF-8")
    }

    fn state(&self) -> anyhow::Result<RunState> {
        runstate::read(&Layout::new(&self.dir))?.context("the devnet wrote no state.json")
    }

    fn record(&self) -> anyhow::Result<DemoRecord> {
        let bytes = std::fs::read(self.dir.join("demo.json")).context("reading demo.json")?;
        serde_json::from_slice(&bytes).context("demo.json")
    }

    fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if let Ok(dir) = self.dir_arg() {
            let _ = devnet_command(self.scratch.path(), &["down", "--dir", dir], DOWN_TIMEOUT);
        }
        let Ok(Some(state)) = runstate::read(&Layout::new(&self.dir)) else {
            return;
        };
        for node in state.nodes.iter().filter(|n| n.is_running()) {
            let _ = process::signal(node.pid, "KILL");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pages

/// What the checks share.
struct Fixture {
    /// The node the browser talks to.
    node: String,
    api: Client,
    http: reqwest::Client,
    genesis: Genesis,
    /// The genesis file as the devnet wrote it.
    genesis_text: String,
    /// The demo shipment the checks look at.
    shipment: String,
    /// The height of the demo's last event.
    demo_height: u64,
    /// The seller's event-signing key file, for the erasure at the end.
    seller_key: PathBuf,
}

impl Fixture {
    async fn api_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.node))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// The shipment's event ids in log order, as the API lists them.
    async fn event_ids(&self) -> anyhow::Result<Vec<String>> {
        let events = self
            .api
            .all_shipment_events(&ShipmentId::new(self.shipment.clone()))
            .await?;
        Ok(events.iter().map(|e| e.event_id.to_string()).collect())
    }
}

/// The network page shows the chain the node serves; a recent block's row leads to its page.
async fn network_and_block_pages(s: &Session, fx: &Fixture) -> anyhow::Result<()> {
    let network = fx.api_json("/v1/network").await?;
    s.goto(&format!("{}/", fx.node)).await?;
    s.wait_page("network").await?;
    s.screenshot("network").await?;
    let chain_id = network["chain_id"]
        .as_str()
        .context("/v1/network chain_id")?;
    ensure!(
        s.text("#chain-id").await?.as_deref() == Some(chain_id),
        "#chain-id shows {:?}, /v1/network says {chain_id:?}",
        s.text("#chain-id").await?
    );
    let genesis_hash = fx.genesis.hash().to_string();
    let shown = s.text("#genesis-hash").await?.unwrap_or_default();
    ensure!(
        shown.contains(&genesis_hash),
        "#genesis-hash shows {shown:?}, not {genesis_hash}"
    );
    let height: String = s
        .text("#height")
        .await?
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    ensure!(
        height.parse::<u64>().is_ok_and(|h| h >= fx.demo_height),
        "#height shows {height:?}, below the demo's last block {}",
        fx.demo_height
    );
    for css in ["table#validators", "#events-per-minute", "#health"] {
        ensure!(
            s.text(css).await?.is_some(),
            "the network page has no {css}"
        );
    }
    let validators = network["validators"].as_array().map_or(0, Vec::len);
    let rows = s
        .script(
            "return document.querySelectorAll('table#validators tbody tr').length;",
            json!([]),
        )
        .await?;
    ensure!(
        rows == validators,
        "table#validators has {rows} body rows for {validators} validators of /v1/network"
    );
    s.assert_clean_console("network page").await?;

    let height = s
        .attribute("table#recent-blocks tr[data-height]", "data-height")
        .await?
        .context("table#recent-blocks has no tr[data-height] row")?;
    let link = s.link_to(&format!("/b/{height}")).await?;
    s.leave().await?;
    s.click(&link).await?;
    s.wait_page("block").await?;
    ensure!(
        s.location().await? == format!("/b/{height}"),
        "the recent block's link led to {}",
        s.location().await?
    );
    let text = s.text("main#page").await?.unwrap_or_default();
    ensure!(
        text.contains(&height),
        "the block page of {height} does not show its height"
    );
    s.screenshot("block").await?;
    s.assert_clean_console("block page").await
}

/// Types `query` in the search form, submits it, follows the result for the shipment and
/// lands on its page.
async fn search_to_shipment(
    s: &Session,
    fx: &Fixture,
    query: &str,
    shot: &str,
) -> anyhow::Result<()> {
    let input = s.find("form#search input#search-q").await?;
    s.type_text(&input, query).await?;
    // U+E007 is WebDriver's Enter key: the form submits as a person's would.
    s.leave().await?;
    s.type_text(&input, "\u{E007}").await?;
    s.wait_page("search").await?;
    let wanted = format!("/search?q={}", query);
    let at = s.location().await?;
    ensure!(at == wanted, "the search form went to {at}, not {wanted}");
    s.screenshot(shot).await?;
    s.assert_clean_console(&format!("search page for {query}"))
        .await?;
    let result = match s
        .find(&format!("a[data-shipment=\"{}\"]", fx.shipment))
        .await
    {
        Ok(result) => result,
        Err(e) => bail!(
            "searching {query}: {e:#}; the page shows:\n{}",
            s.describe().await
        ),
    };
    s.leave().await?;
    s.click(&result).await?;
    s.wait_page("shipment").await?;
    let at = s.location().await?;
    ensure!(
        at == format!("/s/{}", fx.shipment),
        "the search result led to {at}"
    );
    Ok(())
}

/// Waits until `#verdict` is no longer pending; its verdict.
async fn settled_verdict(s: &Session) -> anyhow::Result<String> {
    let verdict = s
        .wait_for(
            "main#page[data-ready=true] with a #verdict other than pending",
            "const m = document.querySelector('main#page');\
             const v = document.querySelector('#verdict');\
             return m && m.dataset.ready === 'true' && v && v.dataset.verdict \
             && v.dataset.verdict !== 'pending' ? v.dataset.verdict : null;",
            json!([]),
            VERIFY_TIMEOUT,
        )
        .await?;
    Ok(verdict.as_str().unwrap_or_default().to_owned())
}

/// `[event id, badge verdict]` of each timeline row, in order.
async fn timeline(s: &Session) -> anyhow::Result<Vec<(String, String)>> {
    let rows = s
        .script(
            "return Array.from(document.querySelectorAll('ol#timeline li[data-event-id]'))\
             .map(li => { const b = li.querySelector('.badge[data-verdict]');\
             return [li.dataset.eventId, b ? b.dataset.verdict : '(no badge)']; });",
            json!([]),
        )
        .await?;
    Ok(serde_json::from_value(rows)?)
}

/// The shipment page lists the API's events in order and verifies every one.
async fn shipment_page(s: &Session, fx: &Fixture, sscc: &str) -> anyhow::Result<()> {
    let verdict = settled_verdict(s).await?;
    s.screenshot("shipment").await?;
    let text = s.text("#verdict").await?.unwrap_or_default();
    ensure!(
        verdict == "verified",
        "#verdict is {verdict} ({text:?}, data-check {:?}) for an untouched bundle",
        s.attribute("#verdict", "data-check").await?
    );
    ensure!(text.contains("Verified"), "#verdict reads {text:?}");
    let rows = timeline(s).await?;
    let shown: Vec<&String> = rows.iter().map(|(id, _)| id).collect();
    let listed = fx.event_ids().await?;
    ensure!(
        shown == listed.iter().collect::<Vec<_>>(),
        "the timeline's li[data-event-id] are {shown:?}, the API lists {listed:?}"
    );
    let unverified: Vec<_> = rows.iter().filter(|(_, v)| v != "verified").collect();
    ensure!(
        unverified.is_empty(),
        "timeline badges not verified: {unverified:?}"
    );
    block_heights_and_times(s, fx).await?;
    let trusted = s.text("#trusted-genesis").await?.unwrap_or_default();
    let hash = fx.genesis.hash().to_string();
    ensure!(
        trusted.contains(&hash),
        "#trusted-genesis shows {trusted:?}, not {hash}"
    );
    for css in [
        "#custody-chain",
        "#parcels",
        "#invoice-lines",
        "#customs",
        "#documents",
        "#returns",
        "#scans",
        "textarea#genesis-input",
        "button#genesis-apply",
    ] {
        ensure!(
            s.text(css).await?.is_some(),
            "the shipment page has no {css}"
        );
    }
    let parcels = s.text("#parcels").await?.unwrap_or_default();
    ensure!(
        parcels.contains(sscc),
        "#parcels does not show the SSCC {sscc}: {parcels:?}"
    );
    // The demo declares every parcel as a courier import (the mode decides Canada's
    // thresholds from rules version 2 on), and the page shows what the declaration says.
    let customs = s.text("#customs").await?.unwrap_or_default();
    ensure!(
        customs.contains("Transport") && customs.contains("Courier"),
        "#customs does not show the declaration's transport mode: {customs:?}"
    );
    ensure!(
        s.attribute("a#bundle-download", "download")
            .await?
            .is_some(),
        "no a#bundle-download[download]"
    );
    s.assert_clean_console("shipment page").await?;
    if std::env::var_os("CUSTODY_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        // The top of the page: the facts, the verdict and the start of the timeline.
        s.resize(README_SHOT.0, README_SHOT.1).await?;
        let shot = s.capture("shipment-readme", false).await;
        s.resize(WINDOW.0, WINDOW.1).await?;
        let shot = shot?;
        let readme = workspace().join("docs/explorer-shipment.png");
        std::fs::copy(&shot, &readme).with_context(|| format!("writing {}", readme.display()))?;
    }
    narrow_screen(s).await
}

/// Each event shows the block height and time the bundle's log entries prove, and they are
/// the ones the node lists.
async fn block_heights_and_times(s: &Session, fx: &Fixture) -> anyhow::Result<()> {
    let shown = s
        .script(
            "return Array.from(document.querySelectorAll('ol#timeline li[data-event-id] p.meta'))\
             .map(p => [p.dataset.height, p.dataset.time, p.textContent]);",
            json!([]),
        )
        .await?;
    let shown: Vec<(String, String, String)> = serde_json::from_value(shown)?;
    let listed = fx
        .api
        .all_shipment_events(&ShipmentId::new(fx.shipment.clone()))
        .await?;
    ensure!(
        shown.len() == listed.len(),
        "{} timeline rows for {} events",
        shown.len(),
        listed.len()
    );
    for ((height, time, text), event) in shown.iter().zip(&listed) {
        let expected = (event.height.to_string(), event.recorded_at.to_string());
        ensure!(
            (height, time) == (&expected.0, &expected.1),
            "event {} shows block {height} at {time}, the node lists block {} at {}",
            event.event_id,
            expected.0,
            expected.1
        );
        ensure!(
            text.contains(&format!("in block #{height}")) && text.contains("recorded"),
            "the timeline row of {} reads {text:?}",
            event.event_id
        );
    }
    Ok(())
}

/// At the width of a small phone the page does not scroll sideways (wide tables scroll in
/// their own box).
async fn narrow_screen(s: &Session) -> anyhow::Result<()> {
    s.resize(NARROW_WIDTH, WINDOW.1).await?;
    // The layout settles on the next frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let widths = s
        .script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            json!([]),
        )
        .await;
    let shot = s.capture("shipment-360px", false).await;
    s.resize(WINDOW.0, WINDOW.1).await?;
    shot?;
    let (scroll, client): (u64, u64) = serde_json::from_value(widths?)?;
    ensure!(
        scroll <= client,
        "at {NARROW_WIDTH} px the shipment page is {scroll} px wide (viewport {client} px)"
    );
    Ok(())
}

/// Pasting another chain's genesis makes the page distrust the bundle (`bundle.genesis`);
/// pasting the real one verifies it again.
async fn pasted_genesis(s: &Session, fx: &Fixture) -> anyhow::Result<()> {
    let mut other: Genesis = serde_json::from_str(&fx.genesis_text)?;
    other.chain_id.push_str("-other");
    other.validate().context("the changed genesis")?;
    let bundle = fx.api.bundle(&ShipmentId::new(fx.shipment.clone())).await?;
    let refused = bundle::verify(&bundle, &other)
        .err()
        .context("the reference verifier accepts a bundle under another genesis")?;
    paste_genesis(s, &serde_json::to_string_pretty(&other)?).await?;
    let verdict = settled_verdict(s).await?;
    s.screenshot("shipment-other-genesis").await?;
    let check = s.attribute("#verdict", "data-check").await?;
    ensure!(
        verdict == "failed" && check.as_deref() == Some(refused.check),
        "under another chain's genesis #verdict is {verdict} with data-check {check:?}, \
         expected failed with {}",
        refused.check
    );
    let trusted = s.text("#trusted-genesis").await?.unwrap_or_default();
    ensure!(
        trusted.contains(&other.hash().to_string()),
        "#trusted-genesis shows {trusted:?} after pasting a genesis of hash {}",
        other.hash()
    );
    paste_genesis(s, &fx.genesis_text).await?;
    let verdict = settled_verdict(s).await?;
    ensure!(
        verdict == "verified",
        "the real genesis pasted back gives {verdict}:\n{}",
        s.describe().await
    );
    s.assert_clean_console("shipment page with a pasted genesis")
        .await
}

/// Puts `text` in the genesis box and applies it.
async fn paste_genesis(s: &Session, text: &str) -> anyhow::Result<()> {
    // Typing a whole genesis key by key is slow; the box gets its value as a paste would.
    s.script(
        "const t = document.querySelector('textarea#genesis-input');\
         t.value = arguments[0];\
         t.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([text]),
    )
    .await?;
    s.click(&s.find("button#genesis-apply").await?).await
}

/// Through the proxy, the shipment page fails verification with the check the reference
/// verifier names for the same tampered bundle, and no event the tampering cuts off from the
/// checkpoint is shown as verified.
async fn tampered_page(s: &Session, fx: &Fixture, tampering: Tampering) -> anyhow::Result<()> {
    let id = ShipmentId::new(fx.shipment.clone());
    let original = fx.api.bundle(&id).await?;
    let expected = (
        tampering.expected_check(),
        tampering.expected_index(original.events.len()),
    );
    let tampered = tampering.apply(original.clone())?;
    let refused = bundle::verify(&tampered, &fx.genesis)
        .err()
        .context("the reference verifier accepts the tampered bundle")?;
    ensure!(
        (refused.check, refused.index) == expected,
        "{tampering:?}: the reference verifier reports {refused}, expected {expected:?}"
    );
    let proxy = TamperProxy::start(&fx.node, tampering).await?;
    s.goto(&format!("{}/s/{}", proxy.url, fx.shipment)).await?;
    s.wait_page("shipment").await?;
    let verdict = settled_verdict(s).await?;
    s.screenshot(&format!("shipment-tampered-{}", tampering.name()))
        .await?;
    ensure!(
        proxy.tampered.load(Ordering::SeqCst) > 0,
        "the page never fetched the bundle through the proxy"
    );
    let check = s.attribute("#verdict", "data-check").await?;
    let text = s.text("#verdict").await?.unwrap_or_default();
    ensure!(
        verdict == "failed" && check.as_deref() == Some(expected.0),
        "{tampering:?}: #verdict is {verdict} with data-check {check:?} ({text:?}), expected \
         failed with {}",
        expected.0
    );
    ensure!(text.contains(expected.0), "#verdict reads {text:?}");
    let rows = timeline(s).await?;
    let badge = |id: &str| {
        rows.iter()
            .find(|(row, _)| row == id)
            .map_or("(no row)", |(_, v)| v.as_str())
    };
    // The events the page must not call verified: with a broken chain, every event up to the
    // break (nothing ties them to the checkpoint any more); with no proven head, all of them.
    let unproven = if expected.0.starts_with("disclosure.") {
        0
    } else {
        expected.1.map_or(tampered.events.len(), |index| index + 1)
    };
    let wrongly: Vec<_> = tampered.events[..unproven]
        .iter()
        .map(|e| e.event_id.to_string())
        .filter(|id| badge(id) != "failed")
        .collect();
    ensure!(
        wrongly.is_empty(),
        "{tampering:?}: these events are not shown as failed: {wrongly:?}\n{rows:?}"
    );
    // An event the bundle leaves out is still on the page (the node lists it), as failed.
    for left_out in original
        .events
        .iter()
        .filter(|e| !tampered.events.contains(e))
    {
        let id = left_out.event_id.to_string();
        ensure!(
            badge(&id) == "failed",
            "{tampering:?}: the left-out event {id} shows {:?}",
            badge(&id)
        );
    }
    // A false disclosure says nothing against the events themselves.
    if unproven == 0 {
        ensure!(
            rows.iter().all(|(_, v)| v == "verified"),
            "{tampering:?}: an event is not verified: {rows:?}"
        );
    }
    // A failed verification may well be logged; only the normal pages must be clean.
    s.console().await?;
    Ok(())
}

/// Unknown shipments, members and blocks get the not-found page with a link home. The
/// shipment page looks its id up by search, so an unknown one leaves the console clean; the
/// others are 404 answers of the API, which the browser logs.
async fn not_found_pages(s: &Session, fx: &Fixture) -> anyhow::Result<()> {
    let cases = [
        ("shipment", "/s/SHP-NO-SUCH-SHIPMENT", "Shipment not found"),
        ("member", "/m/no-such-member", "Member not found"),
        ("block", "/b/999999999", "Block not found"),
    ];
    for (what, path, heading) in cases {
        s.goto(&format!("{}{path}", fx.node)).await?;
        s.wait_page("not-found")
            .await
            .with_context(|| format!("at {path}"))?;
        s.screenshot(&format!("not-found-{what}")).await?;
        let h1 = s.text("main#page h1").await?;
        ensure!(
            h1.as_deref() == Some(heading),
            "the not-found page of {path} has the h1 {h1:?}"
        );
        s.link_to("/")
            .await
            .with_context(|| format!("the not-found page of {path}"))?;
        if what == "shipment" {
            s.assert_clean_console("not-found page of a shipment")
                .await?;
        } else {
            s.console().await?;
        }
    }
    Ok(())
}

/// A member page, reached from a link on the shipment page.
async fn member_page(s: &Session, member: &str) -> anyhow::Result<()> {
    let link = s
        .link_to(&format!("/m/{member}"))
        .await
        .context("the shipment page")?;
    s.leave().await?;
    s.click(&link).await?;
    s.wait_page("member").await?;
    let text = s.text("main#page").await?.unwrap_or_default();
    ensure!(
        text.contains(member),
        "the member page does not show {member}"
    );
    s.screenshot("member").await?;
    s.assert_clean_console("member page").await
}

/// The first parcel SSCC in a shipment's events, wherever its JSON form puts it.
fn first_sscc(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map
            .get("sscc")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| map.values().find_map(first_sscc)),
        Value::Array(items) => items.iter().find_map(first_sscc),
        _ => None,
    }
}

/// Every check, in one browser session.
async fn explore(s: &Session, fx: &Fixture) -> anyhow::Result<()> {
    network_and_block_pages(s, fx).await?;

    search_to_shipment(s, fx, &fx.shipment, "search-by-id").await?;
    let events = fx
        .api
        .all_shipment_events(&ShipmentId::new(fx.shipment.clone()))
        .await?;
    let sscc = first_sscc(&serde_json::to_value(&events)?).context("no SSCC in the events")?;
    shipment_page(s, fx, &sscc).await?;
    pasted_genesis(s, fx).await?;
    let seller = fx
        .api
        .shipment(&ShipmentId::new(fx.shipment.clone()))
        .await?
        .seller;
    member_page(s, seller.as_str()).await?;

    search_to_shipment(s, fx, &sscc, "search-by-sscc").await?;
    s.assert_clean_console("shipment page").await?;

    not_found_pages(s, fx).await?;
    for tampering in [
        Tampering::FlipByte,
        Tampering::ForgeSignature,
        Tampering::OmitMiddle,
        Tampering::OmitLast,
        Tampering::Retime,
        Tampering::Reheight,
        Tampering::FalseDisclosure,
    ] {
        tampered_page(s, fx, tampering).await?;
    }
    erased_page(s, fx).await
}

/// Issue 15: the seller erases the shipment's personal data; the page then says "erased"
/// where it said "private", and the bundle, erasure event included, still verifies.
async fn erased_page(s: &Session, fx: &Fixture) -> anyhow::Result<()> {
    let url = format!("{}/s/{}", fx.node, fx.shipment);
    s.goto(&url).await?;
    s.wait_page("shipment").await?;
    ensure!(
        s.attribute("#personal-data", "data-erased").await? == Some("false".into()),
        "before erasure #personal-data reads {:?}",
        s.text("#personal-data").await?
    );
    let key = custody_client::keyfile::read_key(&fx.seller_key)?;
    let signer = custody_client::build::Signer::new(key, fx.genesis.chain_id.clone());
    let submitted = fx
        .api
        .erase(&signer, &ShipmentId::new(fx.shipment.clone()))
        .await?;
    ensure!(
        matches!(submitted, custody_client::Submitted::Committed(_)),
        "the erasure did not commit: {submitted:?}"
    );
    s.goto(&url).await?;
    s.wait_page("shipment").await?;
    let verdict = settled_verdict(s).await?;
    s.screenshot("shipment-erased").await?;
    ensure!(
        verdict == "verified",
        "after erasure the bundle reads {verdict}"
    );
    let shown = s.text("#personal-data").await?.unwrap_or_default();
    ensure!(
        s.attribute("#personal-data", "data-erased").await? == Some("true".into())
            && shown.contains("erased"),
        "after erasure #personal-data reads {shown:?}"
    );
    let invoice = s.text("#invoice-lines").await?.unwrap_or_default();
    ensure!(
        invoice.contains("erased"),
        "the buyer does not read erased: {invoice:?}"
    );
    s.assert_clean_console("erased shipment page").await
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[test]
fn the_explorer_shows_and_verifies_the_demo_in_a_real_browser() -> anyhow::Result<()> {
    let started = Instant::now();
    require_browser()?;
    let artefacts = artefact_dir()?;
    let devnet = Devnet::up()?;
    let record = devnet.record()?;
    let state = devnet.state()?;
    // The auditor's full node: the explorer works on any node, voting or not.
    let node = state
        .nodes
        .iter()
        .find(|n| n.name == "auditor")
        .context("no auditor node")?
        .url();
    let shipment = record
        .shipments
        .iter()
        .find(|s| s.id.ends_with("-PAR"))
        .context("no Paris shipment in the demo")?
        .id
        .clone();
    let fixture = Fixture {
        api: Client::new(&node)?,
        node,
        http: reqwest::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .build()?,
        genesis: read_genesis(&devnet.genesis_path())?,
        genesis_text: std::fs::read_to_string(devnet.genesis_path())?,
        shipment,
        demo_height: record.height,
        seller_key: Layout::new(&devnet.dir).member_key("seller-acme"),
    };
    let driver = ChromeDriver::start(&artefacts)?;
    let outcome = runtime()?.block_on(async {
        let session = Session::open(&driver, &artefacts).await?;
        let checked = match session.assert_console_is_recorded().await {
            Ok(()) => explore(&session, &fixture).await,
            Err(e) => Err(e),
        };
        let closed = session.close().await;
        checked.and(closed)
    });
    drop(driver);
    drop(devnet);
    eprintln!(
        "explorer browser test: {:?}, screenshots in {}",
        started.elapsed(),
        artefacts.display()
    );
    outcome
}
