//! `custody-devnet`: a whole Custody network on this machine. See the crate documentation of
//! `custody_devnet` and `custody-devnet --help`.

fn main() -> std::process::ExitCode {
    custody_devnet::cli::main()
}
