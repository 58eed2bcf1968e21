//! Processes: starting a node as a child of this binary, signalling processes with `kill(1)`,
//! and reading what Linux's `/proc` says about them (liveness, command line, CPU time).
//!
//! The workspace forbids unsafe code, so signals go through the `kill` command rather than
//! `libc::kill`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::layout::Layout;
use crate::setup::NodeInfo;

/// The hidden subcommand that runs one node.
pub const NODE_SUBCOMMAND: &str = "node";

/// The log filter a node runs with unless `RUST_LOG` says otherwise.
pub const NODE_LOG_FILTER: &str = "info,libp2p=warn,malachitebft=warn";

/// The environment a node starts with, each variable unless this process's environment
/// already sets it (the caller's choice wins):
///
/// - `RUST_LOG`: [`NODE_LOG_FILTER`].
/// - `MIMALLOC_PURGE_DELAY=-1`: mimalloc never hands freed memory back to the OS. By default
///   it does so a second after it is freed, and a loaded node, whose memory use is steady,
///   asks for it again at once and the kernel faults the pages in again: about 10,000 page
///   faults a second across the devnet's nodes under load against a few dozen without
///   purging, and about 8 % more CPU per event (README, Performance). The cost is that a
///   node's resident memory stays at its peak. The allocator reads the variable when the
///   process starts; the workspace forbids the unsafe call that would set it from inside.
pub const NODE_ENV_DEFAULTS: [(&str, &str); 2] = [
    ("RUST_LOG", NODE_LOG_FILTER),
    ("MIMALLOC_PURGE_DELAY", "-1"),
];

/// The entries of [`NODE_ENV_DEFAULTS`] that `is_set` says are not set already.
fn node_env(is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    NODE_ENV_DEFAULTS
        .into_iter()
        .filter(|(name, _)| !is_set(name))
        .collect()
}

/// Starts `node` as a child process of this binary (`custody-devnet node --config FILE`),
/// in its own process group (so a Ctrl-C in the terminal reaches only the supervisor, which
/// stops the nodes in order), appending its stdout and stderr to its log file. With
/// `exit_with_parent`, the node stops by itself when this process goes away.
pub fn spawn_node(
    layout: &Layout,
    node: &NodeInfo,
    exit_with_parent: bool,
) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().context("locating the custody-devnet binary")?;
    let log_path = layout.node_log(node.name());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut command = Command::new(exe);
    command
        .arg(NODE_SUBCOMMAND)
        .arg("--config")
        .arg(&node.config_file)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0);
    if exit_with_parent {
        command.arg("--exit-with-parent");
    }
    command.envs(node_env(|name| std::env::var_os(name).is_some()));
    command
        .spawn()
        .with_context(|| format!("starting node `{}`", node.name()))
}

/// Sends a signal (`TERM`, `KILL`, `INT`) to a process.
pub fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running kill(1)")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed ({status}): the process is gone or not ours");
    }
    Ok(())
}

/// The fields of `/proc/<pid>/stat` after the command name, which may hold spaces and is in
/// parentheses.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process exists and has not exited (a zombie waiting for its parent counts as
/// exited).
pub fn is_alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z" && state != "X"))
}

/// A process's command line, its arguments joined by spaces (empty if it is gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Whether `pid` is alive and runs the node of `config_file` (so a recycled pid is never
/// signalled by mistake).
pub fn is_node_process(pid: u32, config_file: &Path) -> bool {
    is_alive(pid) && {
        let line = cmdline(pid);
        line.contains(&format!(" {NODE_SUBCOMMAND} "))
            && line.contains(&config_file.display().to_string())
    }
}

/// CPU time a process has used (user plus system), in clock ticks; `None` if it is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    // Fields 14 and 15 of proc(5), counted from the state (field 3) at index 0.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's usual value, if that fails).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// Waits until `pid` has exited, polling, for at most `within`. Returns whether it did.
pub fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !is_alive(pid)
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// How a stopped child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It exited by itself after SIGTERM, with this status.
    Exited(std::process::ExitStatus),
    /// It did not exit in time and was killed.
    Killed,
    /// It had already exited before it was asked to, with this status.
    AlreadyExited(std::process::ExitStatus),
}

impl Stopped {
    /// Whether the node stopped cleanly (exit status 0 after SIGTERM).
    pub fn is_clean(&self) -> bool {
        matches!(self, Stopped::Exited(s) if s.success())
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Exited(s) if s.success() => write!(f, "stopped cleanly"),
            Stopped::Exited(s) => write!(f, "stopped with {s}"),
            Stopped::Killed => write!(f, "did not stop in time; killed (SIGKILL)"),
            Stopped::AlreadyExited(s) => write!(f, "had already exited ({s})"),
        }
    }
}

/// Stops child processes: SIGTERM to each, then waits up to `within` for all of them, then
/// SIGKILL to those still running. Returns how each ended, in order.
pub fn stop_children(children: &mut [&mut Child], within: Duration) -> Vec<Stopped> {
    let mut outcomes: Vec<Option<Stopped>> = children
        .iter_mut()
        .map(|child| match child.try_wait() {
            Ok(Some(status)) => Some(Stopped::AlreadyExited(status)),
            _ => {
                // A failure here means it exited meanwhile; the wait below sees that.
                let _ = signal(child.id(), "TERM");
                None
            }
        })
        .collect();
    let deadline = Instant::now() + within;
    loop {
        for (child, outcome) in children.iter_mut().zip(outcomes.iter_mut()) {
            if outcome.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    *outcome = Some(Stopped::Exited(status));
                }
            }
        }
        if outcomes.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    children
        .iter_mut()
        .zip(outcomes)
        .map(|(child, outcome)| {
            outcome.unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                Stopped::Killed
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_gets_the_default_environment_except_what_is_set_already() {
        assert_eq!(node_env(|_| false), NODE_ENV_DEFAULTS.to_vec());
        assert_eq!(
            node_env(|name| name == "RUST_LOG"),
            vec![("MIMALLOC_PURGE_DELAY", "-1")]
        );
        assert!(node_env(|_| true).is_empty());
    }

    #[test]
    fn this_process_is_alive_and_uses_cpu_time() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(cpu_ticks(me).is_some());
        assert!(!cmdline(me).is_empty());
        assert!(clock_ticks_per_second() > 0);
    }

    #[test]
    fn children_are_stopped_with_sigterm_and_killed_if_they_ignore_it() {
        let mut polite = Command::new("sleep").arg("30").spawn().expect("sleep");
        // A process that ignores SIGTERM (ignored signals stay ignored across exec) must be
        // killed.
        let mut stubborn = Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .spawn()
            .expect("sh");
        let pids = [polite.id(), stubborn.id()];
        // Give the shell time to install its trap before the signal comes.
        std::thread::sleep(Duration::from_millis(300));
        let outcomes = stop_children(
            &mut [&mut polite, &mut stubborn],
            Duration::from_millis(500),
        );
        assert!(matches!(outcomes[0], Stopped::Exited(_)), "{outcomes:?}");
        assert_eq!(outcomes[1], Stopped::Killed);
        for pid in pids {
            assert!(!is_alive(pid));
        }
        assert!(
            signal(pids[0], "TERM").is_err(),
            "a gone process cannot be signalled"
        );
    }
}
