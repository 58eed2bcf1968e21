//! Standard output and error that treat a closed pipe as a reader who wants no more.
//!
//! Rust ignores SIGPIPE, so once the reader of `custody status | head -1` has gone, a write to
//! stdout fails with EPIPE, and `println!` panics on that (exit status 101). Every line goes
//! through [`out!`] and [`outln!`] instead. When stdout is a closed pipe the text is dropped,
//! and so is all later output, and the command runs to its end: its exit status is the one
//! it has when its output is read (a bundle found invalid still exits 1), and nothing is said
//! about the pipe. Any other failure to write (a full disk) is an error of the command.
//!
//! We do not restore the default SIGPIPE disposition (killed by the signal, status 141 in a
//! shell) instead: that needs `unsafe` and `libc`, and it would kill a command half-way, after
//! submitting an event but before saying so, or before a verdict's exit status.

use std::fmt;
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether stdout turned out to be a closed pipe.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout and flushes, so that a failure is seen here; dropped once stdout is closed.
pub(crate) fn stdout(text: fmt::Arguments<'_>) -> anyhow::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(error) => Err(anyhow::Error::new(error).context("writing to standard output")),
    }
}

/// Writes to stderr, best effort: with nowhere left to report to, there is nothing to do.
pub(crate) fn stderr(text: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(text);
}

/// `print!` to stdout, returning `anyhow::Result<()>` (see the module documentation).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!($($arg)*))
    };
}

/// `println!` to stdout, returning `anyhow::Result<()>` (see the module documentation).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that cannot panic.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
