//! What the command-line entry points share: finding the config, and the commands that both
//! `homekey` and the drop-in binaries run.
//!
//! - [`hash_password`]: Synapse's script, natively.
//! - [`user`], [`user_import`] and [`audit_list`]: the operator's commands straight on the
//!   database, with what they share in [`operator`].
//! - [`email`]: a test mail, and the mail `serve` has not sent.
//! - [`registration_token`]: the invitations to sign up, on the database or through the
//!   Admin API.
//! - [`synapse`]: beside Synapse, what is owed to it, and reconciling with it.
//! - [`migrate_synapse`]: an existing Synapse's accounts and sessions into homekey, and back.
//! - [`password_input`]: reading a new password (prompt, stdin, or `-p`).
//! - [`time`]: durations and timestamps as an operator types and reads them.

pub mod admin;
pub mod audit_list;
pub mod email;
pub mod hash_password;
pub mod migrate_synapse;
pub mod operator;
pub mod password_input;
pub mod registration_token;
pub mod synapse;
pub mod time;
pub mod user;
pub mod user_email;
pub mod user_import;

use std::path::PathBuf;

use crate::config::{Config, ConfigError, DatabaseConfig};

/// A command's error as the one line printed on the terminal: each run of white space (a
/// database's message may span lines) becomes one space, and any other control character
/// (ESC, BEL, backspace, DEL, C1, and the bidirectional overrides) is shown escaped as Rust
/// writes it (`\u{1b}`), so that a name or a value given by someone cannot drive the terminal.
pub fn one_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len());
    for word in message.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        for c in word.chars() {
            if c.is_control() || is_bidi_control(c) {
                line.extend(c.escape_debug());
            } else {
                line.push(c);
            }
        }
    }
    line
}

/// The characters that reorder text on display (Unicode's Bidi_Control).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Where a command takes its configuration from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Synapse's homeserver.yaml (or homekey's). Repeat to layer files: later ones win.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "PATH",
        env = "HOMEKEY_CONFIG"
    )]
    pub config: Vec<PathBuf>,
}

/// The file used when neither `-c` nor `$HOMEKEY_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "homeserver.yaml";

#[derive(Debug, thiserror::Error)]
pub enum FindConfigError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "no config: give -c homeserver.yaml, set HOMEKEY_CONFIG, or run where ./homeserver.yaml is"
    )]
    NoConfig,
}

impl ConfigArgs {
    /// The config named by `-c`, by `$HOMEKEY_CONFIG`, or `./homeserver.yaml`; `None` if
    /// none of them exists.
    pub fn load_optional(&self) -> Result<Option<Config>, ConfigError> {
        if !self.config.is_empty() {
            return Config::load(&self.config).map(Some);
        }
        let default = PathBuf::from(DEFAULT_CONFIG_FILE);
        if default.exists() {
            return Config::load(&[default]).map(Some);
        }
        Ok(None)
    }

    /// Like [`ConfigArgs::load_optional`], but a config is required.
    pub fn load(&self) -> Result<Config, FindConfigError> {
        self.load_optional()?.ok_or(FindConfigError::NoConfig)
    }
}

/// `--database`, for commands that can work on a database without a config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// The database, instead of the config's: sqlite:PATH or postgres://USER@HOST/DB
    #[arg(long = "database", value_name = "URL", value_parser = parse_database_url)]
    pub database: Option<DatabaseConfig>,
}

fn parse_database_url(url: &str) -> Result<DatabaseConfig, String> {
    DatabaseConfig::from_url(url)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_joins_lines_and_escapes_what_would_drive_a_terminal() {
        assert_eq!(one_line("  a\n  b\tc\r\n"), "a b c");
        assert_eq!(
            one_line("user @\u{1b}[31mred\u{7}\u{8}\u{7f}\u{9b}x does not exist"),
            "user @\\u{1b}[31mred\\u{7}\\u{8}\\u{7f}\\u{9b}x does not exist"
        );
        assert_eq!(one_line("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(one_line("café ünïcode 名前"), "café ünïcode 名前");
    }
}
