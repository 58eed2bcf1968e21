//! `custody verify consistency`: proof that a node's log at one height extends its log at an
//! earlier height, checked against the genesis, so that nothing committed by the earlier
//! checkpoint was rewritten later.
//!
//! Both checkpoints are the certified headers of `GET /v1/blocks/{height}` (the node serves
//! only the head's at `GET /v1/log/checkpoint`); the proof is the RFC 6962 consistency proof
//! of `GET /v1/log/consistency?from=&to=` between their log sizes, or a saved answer of that
//! endpoint (`--proof-file`).

use std::path::{Path, PathBuf};

use clap::Args;
use custody_ledger::block::BlockHeader;
use custody_ledger::genesis::Genesis;
use custody_ledger::view::ConsistencyView;
use custody_ledger::{codec, merkle, Digest};
use serde_json::json;

use crate::cli::{print_json, report_invalid, Verdict};
use crate::verify::{self, Checkpoint};
use crate::{Client, ClientError};

/// Largest `--proof-file` read: a proof has at most 2 × 64 hashes.
const PROOF_FILE_SIZE_BYTES_MAX: u64 = 1024 * 1024;

/// `custody verify consistency`.
#[derive(Debug, Args)]
pub(crate) struct ConsistencyArgs {
    /// The earlier height (at least 1).
    #[arg(long, value_name = "H1", value_parser = clap::value_parser!(u64).range(1..))]
    from: u64,
    /// The later height (at least H1).
    #[arg(long, value_name = "H2", value_parser = clap::value_parser!(u64).range(1..))]
    to: u64,
    /// The network's genesis file (JSON).
    #[arg(long, value_name = "FILE")]
    genesis: PathBuf,
    /// Check this saved answer of `GET /v1/log/consistency` instead of asking the node for
    /// the proof (the checkpoints still come from the node).
    #[arg(long, value_name = "FILE")]
    proof_file: Option<PathBuf>,
}

/// A fault in what the node (or the proof file) served: the verdict is "invalid".
struct Invalid {
    check: &'static str,
    message: String,
}

impl Invalid {
    fn new(check: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            check,
            message: message.into(),
        }
    }
}

/// What verification ended with: a fault of the data, or a failure of the tool.
enum Failure {
    Invalid(Invalid),
    Tool(anyhow::Error),
}

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Failure {
        Failure::Invalid(invalid)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Tool(error)
    }
}

/// What a valid proof establishes.
struct Established {
    old: (BlockHeader, Digest),
    new: (BlockHeader, Digest),
    proof_length: usize,
}

/// Runs the command: 0 valid, 1 invalid, an error (exit 2) when the tool could not decide.
pub(crate) async fn run(
    args: &ConsistencyArgs,
    client: &Client,
    json: bool,
) -> anyhow::Result<Verdict> {
    if args.from > args.to {
        anyhow::bail!(
            "--from {} is above --to {}: the earlier height comes first",
            args.from,
            args.to
        );
    }
    let genesis = verify::read_genesis(&args.genesis)?;
    match establish(args, client, &genesis).await {
        Ok(established) => {
            print_valid(&established, json)?;
            Ok(Verdict::Ok)
        }
        Err(Failure::Invalid(invalid)) => {
            report_invalid(json, invalid.check, &invalid.message)?;
            Ok(Verdict::Invalid)
        }
        Err(Failure::Tool(error)) => Err(error),
    }
}

async fn establish(
    args: &ConsistencyArgs,
    client: &Client,
    genesis: &Genesis,
) -> Result<Established, Failure> {
    let (old_checkpoint, new_checkpoint) =
        tokio::try_join!(checkpoint(client, args.from), checkpoint(client, args.to))?;
    let old = verified(&old_checkpoint, args.from, genesis)?;
    let new = verified(&new_checkpoint, args.to, genesis)?;
    if old.log_size > new.log_size {
        return Err(Invalid::new(
            "log.consistency_proof",
            format!(
                "the log shrank from {} events at height {} to {} at height {}",
                old.log_size, args.from, new.log_size, args.to
            ),
        )
        .into());
    }
    if old.log_size == 0 {
        // Every log extends the empty log; there is no proof to ask for.
        if old.log_root != merkle::empty_root() {
            return Err(Invalid::new(
                "checkpoint.header",
                format!(
                    "height {}: an empty log with a root other than the empty root",
                    args.from
                ),
            )
            .into());
        }
        return Ok(established(old, new, 0));
    }
    let answer = match &args.proof_file {
        Some(path) => read_proof(path)?,
        None => client
            .consistency(old.log_size, new.log_size)
            .await
            .map_err(|e| node_failure("consistency.json", e, "the consistency proof"))?,
    };
    check_answer(&answer, &old, &new)?;
    verify::verify_extension(&old_checkpoint, &new_checkpoint, &answer.proof, genesis)
        .map_err(|e| Invalid::new(e.check, e.message))?;
    Ok(established(old, new, answer.proof.len()))
}

fn established(old: BlockHeader, new: BlockHeader, proof_length: usize) -> Established {
    let (old_hash, new_hash) = (old.hash(), new.hash());
    Established {
        old: (old, old_hash),
        new: (new, new_hash),
        proof_length,
    }
}

/// The certified header of block `height`, as a checkpoint.
async fn checkpoint(client: &Client, height: u64) -> Result<Checkpoint, Failure> {
    let view = client
        .block(height)
        .await
        .map_err(|e| node_failure("checkpoint.json", e, &format!("block {height}")))?;
    Ok(Checkpoint {
        header_bytes: codec::encode(&view.header),
        header: view.header,
        certificate: view.certificate,
    })
}

/// Verifies a checkpoint against the genesis and that it is the one asked for.
fn verified(
    checkpoint: &Checkpoint,
    height: u64,
    genesis: &Genesis,
) -> Result<BlockHeader, Failure> {
    let header = verify::verify_checkpoint(checkpoint, genesis)
        .map_err(|e| Invalid::new(e.check, format!("height {height}: {}", e.message)))?;
    if header.height != height {
        return Err(Invalid::new(
            "checkpoint.header",
            format!(
                "asked for block {height}, the node served block {}",
                header.height
            ),
        )
        .into());
    }
    Ok(header)
}

/// The answer is about the two certified logs: same sizes, same roots.
fn check_answer(
    answer: &ConsistencyView,
    old: &BlockHeader,
    new: &BlockHeader,
) -> Result<(), Invalid> {
    if (answer.from, answer.to) != (old.log_size, new.log_size) {
        return Err(Invalid::new(
            "consistency.range",
            format!(
                "the proof is from log size {} to {}, the checkpoints have {} and {}",
                answer.from, answer.to, old.log_size, new.log_size
            ),
        ));
    }
    for (size, claimed, certified) in [
        (answer.from, answer.from_root, old.log_root),
        (answer.to, answer.to_root, new.log_root),
    ] {
        if claimed != certified {
            return Err(Invalid::new(
                "consistency.roots",
                format!(
                    "the answer gives root {claimed} for log size {size}, the certified root \
                     is {certified}"
                ),
            ));
        }
    }
    Ok(())
}

/// A saved `GET /v1/log/consistency` answer. A file that cannot be read is a tool error; one
/// whose content is not such an answer is invalid (`consistency.json`).
fn read_proof(path: &Path) -> Result<ConsistencyView, Failure> {
    let bytes = verify::read_capped(path, "consistency proof", PROOF_FILE_SIZE_BYTES_MAX)
        .map_err(anyhow::Error::new)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Invalid::new("consistency.json", format!("{}: {e}", path.display())).into())
}

/// An answer that arrived but is not what the API promises is the node's fault (invalid,
/// under `check`); anything else (unreachable, an error status) is a tool error.
fn node_failure(check: &'static str, error: ClientError, what: &str) -> Failure {
    match error {
        ClientError::Decode(message) => Invalid::new(check, format!("{what}: {message}")).into(),
        other => Failure::Tool(anyhow::Error::new(other).context(what.to_owned())),
    }
}

fn print_valid(established: &Established, json: bool) -> anyhow::Result<()> {
    let (old, old_hash) = &established.old;
    let (new, new_hash) = &established.new;
    if json {
        let side = |h: &BlockHeader, hash: &Digest| {
            json!({
                "height": h.height,
                "block_hash": hash,
                "time": h.time,
                "log_size": h.log_size,
                "log_root": h.log_root,
            })
        };
        return print_json(&json!({
            "valid": true,
            "from": side(old, old_hash),
            "to": side(new, new_hash),
            "proof_length": established.proof_length,
        }));
    }
    outln!(
        "valid: the log at height {} extends the log at height {}",
        new.height,
        old.height
    )?;
    for (name, h, hash) in [("from", old, old_hash), ("to", new, new_hash)] {
        outln!("  {name:<5} height {} (block {hash})", h.height)?;
        outln!("        log {} events, root {}", h.log_size, h.log_root)?;
    }
    outln!(
        "  proof {} hashes, both checkpoints certified by the genesis validators",
        established.proof_length
    )
}
