//! The `rmtk` binary: parse the command line, run the library, report errors.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rmtk::cli::Cli::parse();
    match rmtk::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", rmtk::cli::render_error(&err));
            ExitCode::FAILURE
        }
    }
}
