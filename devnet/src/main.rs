//! `custody-devnet`: a whole Custody network on this machine. See the crate documentation of
//! `custody_devnet` and `custody-devnet --help`.

/// Every node of a devnet runs inside this binary (its hidden `node` subcommand), so it uses
/// the node's allocator too; see `custody-node`'s `main.rs`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    custody_devnet::cli::main()
}
