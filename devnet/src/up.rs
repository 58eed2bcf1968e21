//! `up`, `down`, `demo` and `status`: running a devnet from the command line.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use crate::demo;
use crate::layout::Layout;
use crate::network::{
    self, Endpoint, Network, Readiness, READY_TIMEOUT_MS, STALL_TIMEOUT_MS, STOP_TIMEOUT_MS,
};
use crate::process;
use crate::runstate::{self, RunState};
use crate::setup::{self, Devnet};

/// How often the foreground supervisor checks that its nodes still run.
const SUPERVISE_INTERVAL_MS: u64 = 1_000;
/// How long `down` waits for a foreground supervisor to stop its nodes.
const SUPERVISOR_STOP_TIMEOUT_MS: u64 = STOP_TIMEOUT_MS + 10_000;

/// What `up` was asked.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The devnet directory.
    pub dir: std::path::PathBuf,
    /// Validators for a new devnet (must match an existing one).
    pub validators: Option<usize>,
    /// Run the demo once the network is up.
    pub demo: bool,
    /// Return once the network is up (and the demo done), leaving the nodes running.
    pub detach: bool,
}

/// Resolves when this process is asked to stop: SIGINT (Ctrl-C), SIGTERM or SIGHUP. Names
/// the signal.
pub async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        // Without handlers, only Ctrl-C can be awaited.
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

/// A devnet already running in `layout`'s directory is an error naming its processes.
fn refuse_if_running(layout: &Layout) -> anyhow::Result<()> {
    if let Some(state) = runstate::running(layout)? {
        let pids: Vec<String> = state
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| format!("{} (pid {})", n.name, n.pid))
            .collect();
        bail!(
            "a devnet already runs in {}: {}. Stop it with `custody-devnet down --dir {}`.",
            layout.dir().display(),
            pids.join(", "),
            layout.dir().display()
        );
    }
    Ok(())
}

/// `up`: creates or resumes the devnet, starts its nodes, waits until they commit, optionally
/// runs the demo, then supervises them until Ctrl-C (or returns, with `detach`).
pub async fn up(options: UpOptions) -> anyhow::Result<ExitCode> {
    let layout = Layout::create(&options.dir)?;
    refuse_if_running(&layout)?;
    let (devnet, created) = setup::open_or_create(&layout, options.validators, setup::now())?;
    if created {
        println!(
            "Created a new devnet in {}: chain {}, {} validators.",
            layout.dir().display(),
            devnet.genesis.chain_id,
            devnet.validators().count()
        );
    } else {
        println!(
            "Resuming the devnet in {}: chain {} (created {}).",
            layout.dir().display(),
            devnet.genesis.chain_id,
            devnet.manifest.created_at
        );
    }
    let mut network = Network::start(devnet, !options.detach)?;
    let supervisor = (!options.detach).then(std::process::id);
    runstate::write(&layout, &network.run_state(supervisor))?;
    println!("Starting {} nodes…", network.devnet.nodes.len());

    let started = tokio::select! {
        result = start(&mut network, options.demo) => Some(result),
        signal = interrupted() => {
            println!("{signal}: stopping the devnet.");
            None
        }
    };
    match started {
        Some(Ok(())) => {}
        Some(Err(error)) => {
            eprintln!("custody-devnet: {error:#}");
            eprintln!("Stopping the nodes…");
            network::report_stopped(&network.stop(Duration::from_millis(STOP_TIMEOUT_MS)));
            runstate::remove(&layout)?;
            return Ok(ExitCode::FAILURE);
        }
        None => {
            let clean =
                network::report_stopped(&network.stop(Duration::from_millis(STOP_TIMEOUT_MS)));
            runstate::remove(&layout)?;
            return Ok(exit(clean));
        }
    }

    if options.detach {
        network.detach();
        println!();
        println!(
            "Detached: the nodes keep running. Stop them with `custody-devnet down --dir {}`.",
            layout.dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    println!("Press Ctrl-C to stop the devnet.");
    let signal = supervise(&mut network).await;
    println!(
        "{signal}: stopping every node (SIGTERM, then up to {} s)…",
        STOP_TIMEOUT_MS / 1000
    );
    let clean = network::report_stopped(&network.stop(Duration::from_millis(STOP_TIMEOUT_MS)));
    runstate::remove(&layout)?;
    if clean {
        println!(
            "The devnet stopped cleanly. `custody-devnet up --dir {}` resumes it.",
            layout.dir().display()
        );
    }
    Ok(exit(clean))
}

fn exit(clean: bool) -> ExitCode {
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Waits for the nodes, prints where everything is, and runs the demo if asked.
async fn start(network: &mut Network, with_demo: bool) -> anyhow::Result<()> {
    let within = Duration::from_millis(READY_TIMEOUT_MS);
    match network.wait_ready(within).await? {
        Readiness::Ready => {}
        Readiness::Stalled { height } => bail!(
            "every node serves, but none has committed a block past height {height} for {} s; \
             see the logs in {}",
            STALL_TIMEOUT_MS / 1000,
            network.devnet.layout.nodes_dir().display()
        ),
    }
    let endpoints = network.endpoints()?;
    print_ready(&network.devnet, &endpoints);
    if with_demo {
        demo::run(&network.devnet, &endpoints).await?;
    }
    Ok(())
}

/// Watches the nodes until a signal comes, reporting any that exit. Returns the signal.
async fn supervise(network: &mut Network) -> &'static str {
    let stop = interrupted();
    tokio::pin!(stop);
    let mut reported = std::collections::BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(SUPERVISE_INTERVAL_MS));
    // Ends with the signal; each turn waits at least one tick.
    loop {
        tokio::select! {
            signal = &mut stop => return signal,
            _ = tick.tick() => {
                for (name, status) in network.exited() {
                    if reported.insert(name.clone()) {
                        eprintln!(
                            "warning: node `{name}` exited ({status}); see {}",
                            network.devnet.layout.node_log(&name).display()
                        );
                    }
                }
            }
        }
    }
}

/// Prints the network's nodes, and where its keys, genesis and logs are.
fn print_ready(devnet: &Devnet, endpoints: &[Endpoint]) {
    let layout = &devnet.layout;
    println!();
    let full_nodes = devnet.nodes.len() - devnet.validators().count();
    println!(
        "Custody devnet {} is up: {} validators and {full_nodes} full node{} on 127.0.0.1.",
        devnet.genesis.chain_id,
        devnet.validators().count(),
        if full_nodes == 1 { "" } else { "s" }
    );
    println!(
        "  {:<14} {:<10} {:<18} {:<24} pid",
        "node", "role", "member", "API"
    );
    for e in endpoints {
        println!(
            "  {:<14} {:<10} {:<18} {:<24} {}",
            e.name,
            if e.validator {
                "validator"
            } else {
                "full node"
            },
            e.member,
            e.url,
            e.pid
        );
    }
    println!(
        "  genesis  {} (hash {})",
        layout.genesis().display(),
        devnet.genesis.hash()
    );
    println!(
        "  keys     {}/<member>.pem: members' signing keys (PKCS#8 PEM); node keys in {}/<node>/node.pem",
        layout.keys_dir().display(),
        layout.nodes_dir().display()
    );
    println!(
        "  logs     {}/<node>/node.log; configs in {}/<node>/node.toml",
        layout.nodes_dir().display(),
        layout.nodes_dir().display()
    );
}

/// The running devnet in `dir`, or an error saying how to start one.
pub fn running(dir: &Path) -> anyhow::Result<(Devnet, RunState, Vec<Endpoint>)> {
    let hint = |why: &str| {
        anyhow::anyhow!(
            "{why}; start one with `custody-devnet up --detach --dir {}`",
            dir.display()
        )
    };
    let layout =
        Layout::existing(dir).ok_or_else(|| hint(&format!("{} does not exist", dir.display())))?;
    let state = runstate::running(&layout)?.ok_or_else(|| {
        hint(&format!(
            "no devnet is running in {}",
            layout.dir().display()
        ))
    })?;
    let devnet = setup::load(&layout)?;
    let endpoints = network::endpoints(&devnet, &state)?;
    Ok((devnet, state, endpoints))
}

/// `demo`: runs the demo against the devnet running in `dir`.
pub async fn demo(dir: &Path) -> anyhow::Result<ExitCode> {
    let (devnet, _, endpoints) = running(dir)?;
    demo::run(&devnet, &endpoints).await?;
    Ok(ExitCode::SUCCESS)
}

/// `status`: what runs in `dir`, with each node's height.
pub async fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let (devnet, state, endpoints) = running(dir)?;
    println!(
        "Devnet {} in {} (started {}):",
        devnet.genesis.chain_id,
        devnet.layout.dir().display(),
        state.started_at
    );
    for e in &endpoints {
        let running = state
            .nodes
            .iter()
            .any(|n| n.name == e.name && n.is_running());
        let detail = match (running, e.client()?.status().await) {
            (false, _) => "not running".to_owned(),
            (true, Ok(s)) => format!(
                "height {}, {} events, mempool {}",
                s.height, s.log_size, s.mempool_size
            ),
            (true, Err(err)) => format!("running, API unreachable: {err}"),
        };
        println!("  {:<14} {:<24} pid {:<8} {detail}", e.name, e.url, e.pid);
    }
    Ok(ExitCode::SUCCESS)
}

/// `down`: stops the devnet running in `dir` (SIGTERM, a bounded wait, then SIGKILL) and
/// reports what it stopped.
pub fn down(dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(layout) = Layout::existing(dir) else {
        println!("{} does not exist: nothing to stop.", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let Some(state) = runstate::read(&layout)? else {
        println!(
            "No devnet runs in {} (no state.json): nothing to stop.",
            layout.dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let was_running: Vec<_> = state.nodes.iter().filter(|n| n.is_running()).collect();
    println!("Stopping the devnet in {}:", layout.dir().display());
    // A foreground `up` stops its own nodes, in order, when asked.
    let mut by_supervisor = false;
    if let (true, Some(pid)) = (state.supervisor_running(), state.supervisor) {
        println!("  asking the supervising `custody-devnet up` (pid {pid}) to stop its nodes…");
        let _ = process::signal(pid, "TERM");
        by_supervisor = process::wait_gone(pid, Duration::from_millis(SUPERVISOR_STOP_TIMEOUT_MS));
        if !by_supervisor {
            println!("  it did not stop in time; stopping the nodes directly");
        }
    }
    let left_running: Vec<_> = was_running.iter().filter(|n| n.is_running()).collect();
    for node in &left_running {
        let _ = process::signal(node.pid, "TERM");
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(STOP_TIMEOUT_MS);
    let mut all_gone = true;
    for node in &state.nodes {
        let label = format!("  {:<14} pid {:<8}", node.name, node.pid);
        if !was_running.iter().any(|r| r.pid == node.pid) {
            println!("{label} was not running");
            continue;
        }
        if !left_running.iter().any(|r| r.pid == node.pid) {
            let by = if by_supervisor {
                "by the supervisor"
            } else {
                "by itself"
            };
            println!("{label} stopped ({by})");
            continue;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if process::wait_gone(node.pid, left) || !node.is_running() {
            println!("{label} stopped (SIGTERM)");
            continue;
        }
        let _ = process::signal(node.pid, "KILL");
        let gone = process::wait_gone(node.pid, Duration::from_millis(5_000));
        all_gone &= gone;
        println!(
            "{label} did not stop within {} s of SIGTERM; {}",
            STOP_TIMEOUT_MS / 1000,
            if gone {
                "killed (SIGKILL)"
            } else {
                "STILL RUNNING after SIGKILL"
            }
        );
    }
    if all_gone {
        runstate::remove(&layout)?;
    }
    Ok(exit(all_gone))
}
