//! `hash_password`: a drop-in for Synapse's script of the same name (`-p`, `-c`).

use std::process::ExitCode;

use clap::Parser;
use homekey::cli::hash_password::{self, HashPasswordArgs};

#[derive(Parser)]
#[command(
    name = "hash_password",
    version,
    about = "Calculate the hash of a new password, so that passwords can be reset"
)]
struct Cli {
    #[command(flatten)]
    args: HashPasswordArgs,
}

fn main() -> ExitCode {
    match hash_password::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "hash_password: {}",
                homekey::cli::one_line(&err.to_string())
            );
            ExitCode::FAILURE
        }
    }
}
