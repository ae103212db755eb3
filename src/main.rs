//! The `slaprobe` binary: parse the command line, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    slaprobe::cli::main(slaprobe::cli::Cli::parse())
}
