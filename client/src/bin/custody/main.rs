//! `custody`: the command line over the Custody SDK. It lives in the library as
//! [`custody_client::cli`], whose documentation lists the exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    custody_client::cli::main()
}
