//! The `tessera` binary: parse the command line and hand over to `tessera::cli`.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    tessera::cli::run(tessera::cli::Cli::parse())
}
