//! The `rmtk` binary: parse the command line, run the library, report errors.

use std::process::ExitCode;

fn main() -> ExitCode {
    rmtk::util::tune_allocator();
    let cli = match rmtk::cli::Cli::parse_args(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("error: {}", rmtk::cli::render_error(&err));
            return ExitCode::FAILURE;
        }
    };
    match rmtk::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", rmtk::cli::render_error(&err));
            ExitCode::FAILURE
        }
    }
}
