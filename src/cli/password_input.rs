//! Reading a new password from the operator: twice without echo on a terminal, or one line of
//! stdin for scripts. Shared by `hash-password` and the `user` commands, so both read
//! passwords the same way (and the same way Synapse's `hash_password` does).

use std::io::{BufRead, IsTerminal};

use secrecy::{ExposeSecret, SecretString};

use crate::password::HashSettings;

#[derive(Debug, thiserror::Error)]
pub enum PasswordInputError {
    #[error("Password cannot be blank.")]
    Blank,
    #[error("Passwords do not match.")]
    Mismatch,
    #[error("cannot read the password: {0}")]
    Read(std::io::Error),
    #[error(
        "stdin is not a terminal to ask for the password on: give --password-stdin to read it from stdin"
    )]
    NoTerminal,
}

/// How a command that sets a password gets it: prompted for on a terminal (the default),
/// read from stdin, or, only when asked for explicitly, from the command line. `Debug` shows
/// no password.
#[derive(Clone, Default, clap::Args)]
pub struct NewPasswordArgs {
    /// Read the password from the first line of stdin (for scripts; the white space around
    /// it is stripped). Without this or -p, the password is prompted for twice.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password itself. Careful: it lands in the shell's history and the process list;
    /// prefer the prompt or --password-stdin.
    #[arg(short = 'p', long = "password", value_name = "PASSWORD")]
    pub password: Option<String>,
}

impl std::fmt::Debug for NewPasswordArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPasswordArgs")
            .field("password_stdin", &self.password_stdin)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl NewPasswordArgs {
    /// The new password, from where the flags say. Blank is refused.
    pub fn read(&self) -> Result<SecretString, PasswordInputError> {
        if let Some(password) = &self.password {
            eprintln!(
                "warning: a password given with -p lands in the shell's history; prefer the \
                 prompt or --password-stdin"
            );
            return refuse_blank(SecretString::from(password.clone()));
        }
        if self.password_stdin {
            return read_stdin_line();
        }
        if !stdin_is_terminal() {
            return Err(PasswordInputError::NoTerminal);
        }
        prompt_twice()
    }
}

/// Whether stdin is a terminal, where a password is prompted for rather than read.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The first line of stdin, without the white space around it (as Synapse's script strips
/// it). Blank is refused.
pub fn read_stdin_line() -> Result<SecretString, PasswordInputError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(PasswordInputError::Read)?;
    let password = SecretString::from(line.trim().to_owned());
    secrecy::zeroize::Zeroize::zeroize(&mut line);
    refuse_blank(password)
}

/// Asks twice on the terminal, without echo; a blank first answer or a mismatch is refused.
pub fn prompt_twice() -> Result<SecretString, PasswordInputError> {
    let first = SecretString::from(
        rpassword::prompt_password("Password: ").map_err(PasswordInputError::Read)?,
    );
    let first = refuse_blank(first)?;
    let second = SecretString::from(
        rpassword::prompt_password("Confirm password: ").map_err(PasswordInputError::Read)?,
    );
    if first.expose_secret() != second.expose_secret() {
        return Err(PasswordInputError::Mismatch);
    }
    Ok(first)
}

/// `password`, unless it is empty.
pub fn refuse_blank(password: SecretString) -> Result<SecretString, PasswordInputError> {
    if password.expose_secret().is_empty() {
        Err(PasswordInputError::Blank)
    } else {
        Ok(password)
    }
}

/// Says on stderr when bcrypt will see only the first 72 bytes of password + pepper: worth
/// knowing, never an error (Synapse cuts the same way, so logging in works the same).
pub fn note_if_truncated(settings: &HashSettings, password: &SecretString) {
    if settings.scheme == crate::config::HashScheme::Bcrypt && settings.is_truncated(password) {
        eprintln!(
            "note: password + pepper is longer than 72 bytes; bcrypt, here as in Synapse, \
             uses the first 72 bytes. Logging in works the same."
        );
    }
}
