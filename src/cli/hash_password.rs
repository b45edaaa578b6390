//! `hash_password` / `homekey hash-password`: Synapse's script, as a fast native command.
//!
//! Same flags as Synapse's (`-p`, `-c`), same input rules (a prompt twice without echo on a
//! terminal; otherwise one line of stdin, stripped of surrounding white space), same hash.
//! Unlike Synapse, stdout carries nothing but the hash: the notice about the 72-byte cut goes
//! to stderr, so `$(hash_password …)` in a script is always just the hash.

use std::io::{BufRead, IsTerminal};

use secrecy::{ExposeSecret, SecretString};

use super::ConfigArgs;
use crate::password::HashSettings;

#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {
    /// The password to hash. Prompted for if omitted (or read from stdin when it is not a
    /// terminal). Careful: a password on the command line lands in the shell's history.
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,

    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum HashPasswordError {
    #[error(transparent)]
    Config(#[from] super::FindConfigError),
    #[error("Password cannot be blank.")]
    Blank,
    #[error("Passwords do not match.")]
    Mismatch,
    #[error("cannot read the password: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
}

/// Hashes the password as the config says and prints the hash (the only line on stdout).
pub fn run(args: HashPasswordArgs) -> Result<(), HashPasswordError> {
    let config = args.config.load()?;
    let settings = HashSettings::from_config(&config);
    let password = match args.password {
        Some(password) => SecretString::from(password),
        None => read_password()?,
    };
    if password.expose_secret().is_empty() {
        return Err(HashPasswordError::Blank);
    }
    if settings.is_truncated(&password) {
        eprintln!(
            "note: password + pepper is longer than 72 bytes; bcrypt, here as in Synapse, \
             uses the first 72 bytes. Logging in works the same."
        );
    }
    let hash = settings.hash(&password)?;
    println!("{}", hash.expose_secret());
    Ok(())
}

fn read_password() -> Result<SecretString, HashPasswordError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(HashPasswordError::Read)?;
        let password = SecretString::from(line.trim().to_owned());
        secrecy::zeroize::Zeroize::zeroize(&mut line);
        return Ok(password);
    }
    let first = SecretString::from(
        rpassword::prompt_password("Password: ").map_err(HashPasswordError::Read)?,
    );
    if first.expose_secret().is_empty() {
        return Err(HashPasswordError::Blank);
    }
    let second = SecretString::from(
        rpassword::prompt_password("Confirm password: ").map_err(HashPasswordError::Read)?,
    );
    if first.expose_secret() != second.expose_secret() {
        return Err(HashPasswordError::Mismatch);
    }
    Ok(first)
}
