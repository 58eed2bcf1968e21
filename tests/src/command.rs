//! Running a command-line program with a deadline, as the devnet and CLI tests do.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Ran {
    /// The command, its status and outputs, to explain a failed assertion.
    pub fn describe(&self, program: &str, args: &[&str]) -> String {
        format!(
            "{program} {}\nstatus {:?}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `command` with its outputs in files under `scratch` (so a program that leaves
/// children holding a pipe cannot block the test), killing it after `within`.
pub fn run(mut command: Command, scratch: &Path, within: Duration) -> anyhow::Result<Ran> {
    let out = scratch.join("command.out");
    let err = scratch.join("command.err");
    let program = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{program} did not finish within {within:?}; stdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Ran {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    })
}
