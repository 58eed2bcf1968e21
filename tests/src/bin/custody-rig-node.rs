//! The devnet's command line under the rig's name, so that the rig's tests can start nodes
//! (`custody-rig-node node --config FILE`) and devnets: Cargo gives an integration test the
//! path of its own package's binaries only. It is built with custody-node's
//! `fault-injection` feature, so the `[faults]` table works here and nowhere in production.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    custody_devnet::cli::main()
}
