//! The `custody` command line under the rig's name, for the rig's end-to-end tests (Cargo
//! gives an integration test the path of its own package's binaries only).

fn main() -> std::process::ExitCode {
    custody_client::cli::main()
}
