//! `hash_password` / `homekey hash-password`: Synapse's script, as a fast native command.
//!
//! Same flags as Synapse's (`-p`, `-c`), same input rules (a prompt twice without echo on a
//! terminal; otherwise one line of stdin, stripped of surrounding white space), same hash.
//! Unlike Synapse, stdout carries nothing but the hash: the notice about the 72-byte cut goes
//! to stderr, so `$(hash_password …)` in a script is always just the hash.

use secrecy::{ExposeSecret, SecretString};

use super::ConfigArgs;
use super::password_input::{self, PasswordInputError};
use crate::password::HashSettings;

/// `Debug` shows no password.
#[derive(clap::Args)]
pub struct HashPasswordArgs {
    /// The password to hash. Prompted for if omitted (or read from stdin when it is not a
    /// terminal). Careful: a password on the command line lands in the shell's history.
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,

    #[command(flatten)]
    pub config: ConfigArgs,
}

impl std::fmt::Debug for HashPasswordArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPasswordArgs")
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("config", &self.config)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashPasswordError {
    #[error(transparent)]
    Config(#[from] super::FindConfigError),
    #[error(transparent)]
    Input(#[from] PasswordInputError),
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
    /// A delegating Synapse's config (see [`crate::config::Config::refuse_delegating_synapse`]).
    #[error("{0}")]
    DelegatingSynapse(String),
}

/// Hashes the password as the config says and prints the hash (the only line on stdout).
pub fn run(args: HashPasswordArgs) -> Result<(), HashPasswordError> {
    let config = args.config.load()?;
    // A hash made with its pepper (not homekey's) would go to a table Synapse ignores.
    config
        .refuse_delegating_synapse()
        .map_err(HashPasswordError::DelegatingSynapse)?;
    let settings = HashSettings::from_config(&config);
    // As Synapse's script: a terminal is prompted, anything else is read as one line.
    let password = match args.password {
        Some(password) => password_input::refuse_blank(SecretString::from(password))?,
        None if password_input::stdin_is_terminal() => password_input::prompt_twice()?,
        None => password_input::read_stdin_line()?,
    };
    password_input::note_if_truncated(&settings, &password);
    let hash = settings.hash(&password)?;
    println!("{}", hash.expose_secret());
    Ok(())
}
