//! The `tessera` binary: parse the command line and hand over to `tessera::cli`.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    match tessera::cli::Cli::try_parse() {
        Ok(cli) => tessera::cli::run(cli),
        Err(e) => tessera::cli::usage_error(&e),
    }
}
