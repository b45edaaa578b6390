//! What the operator's commands on the database (`homekey user …`, `homekey audit list`)
//! share: finding the database and the server's settings, naming users, checking and hashing
//! new passwords, the audit records, the notice on a Synapse database, and the exit codes.

use secrecy::SecretString;
use serde_json::Value;

use super::{ConfigArgs, DatabaseArgs};
use crate::config::Config;
use crate::ids::{UserId, UserIdError};
use crate::password::{HashSettings, PasswordHasher, PasswordPolicy};
use crate::store::{Flavour, NewAuditRecord, OpenMode, Store, StoreError, User};

/// The exit codes of the operator's commands, for `--help`.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 done; 1 refused (unknown user, user exists, \
     password policy…) or failed; 2 bad usage (arguments, no database named); 3 database \
     unreachable.";

/// Where an operator's command finds the database and the server's settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseSelection {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Why an operator's command did not do its work; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The operation is refused or failed: unknown user, user exists, policy, database error.
    #[error("{0}")]
    Refused(String),
    /// The command line does not say what to do.
    #[error("{0}")]
    Usage(String),
    /// The database cannot be reached or opened.
    #[error("{0}")]
    Unreachable(String),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Refused(_) => 1,
            CommandError::Usage(_) => 2,
            CommandError::Unreachable(_) => 3,
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> CommandError {
        match err {
            StoreError::Unavailable(_) => CommandError::Unreachable(err.to_string()),
            other => CommandError::Refused(other.to_string()),
        }
    }
}

impl From<super::password_input::PasswordInputError> for CommandError {
    fn from(err: super::password_input::PasswordInputError) -> CommandError {
        match err {
            super::password_input::PasswordInputError::NoTerminal => {
                CommandError::Usage(err.to_string())
            }
            other => CommandError::Refused(other.to_string()),
        }
    }
}

/// An opened database with the settings of the server it belongs to, and who is acting.
pub struct Operator {
    pub store: Store,
    pub config: Config,
    /// Whether a config file was read. Without one (`--database` alone) the server name is
    /// unknown, and no pepper, cost or policy of the server's applies.
    has_config_file: bool,
    pub hasher: PasswordHasher,
    /// `cli:` and the operating-system user, as the audit log names the CLI's changes.
    pub actor: String,
}

impl DatabaseSelection {
    /// Reads the config (if any), opens the database it or `--database` names (which must
    /// exist), and says which it is when neither names one.
    pub async fn open(&self) -> Result<Operator, CommandError> {
        let file = self
            .config
            .load_optional()
            .map_err(|err| CommandError::Refused(err.to_string()))?;
        let has_config_file = file.is_some();
        let mut config = match (file, &self.database.database) {
            (Some(config), _) => config,
            (None, Some(_)) => Config::builtin(),
            (None, None) => {
                return Err(CommandError::Usage(
                    "no database: give -c homeserver.yaml, --database sqlite:PATH or \
                     --database postgres://…, set HOMEKEY_CONFIG, or run where \
                     ./homeserver.yaml is"
                        .into(),
                ));
            }
        };
        if let Some(database) = &self.database.database {
            config.database = database.clone();
        }
        let store = Store::open(&config.database, OpenMode::MustExist).await?;
        Ok(Operator {
            store,
            hasher: PasswordHasher::new(HashSettings::from_config(&config)),
            config,
            has_config_file,
            actor: cli_actor(),
        })
    }
}

/// `cli:<user>`: the operating-system user from `$USER` or `$LOGNAME`, else the name of the
/// process's user ID in `/etc/passwd` (as `whoami` finds it), else `cli:unknown`.
fn cli_actor() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .or_else(user_name_of_process)
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

/// The login name of this process's real user ID, on Linux.
fn user_name_of_process() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// Writes a command's result to stdout. A reader that went away (`… | head`) is not an
/// error worth a panic: the rest is dropped.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

impl Operator {
    /// The user an operator named: a localpart of this server or a full user ID. Any
    /// localpart that may exist is accepted (historical ones too).
    pub fn user_id(&self, given: &str) -> Result<UserId, CommandError> {
        let parsed = if self.has_config_file {
            UserId::parse_local(given, &self.config.server_name)
        } else if given.starts_with('@') {
            // Without a config the operator's full ID is all there is to go by.
            UserId::parse(given)
        } else {
            return Err(CommandError::Usage(format!(
                "'{given}': a bare localpart needs the server name: give the full user ID \
                 (@{given}:example.com) or -c homeserver.yaml"
            )));
        };
        parsed.map_err(|err| match err {
            UserIdError::NotLocal { .. } => CommandError::Refused(err.to_string()),
            other => CommandError::Usage(format!("'{given}': {other}")),
        })
    }

    /// The ID of an account about to be created: the strict grammar and Synapse's rules.
    pub fn new_user_id(&self, given: &str) -> Result<UserId, CommandError> {
        let user_id = self.user_id(given)?;
        crate::ids::validate_new_localpart(user_id.localpart())
            .map_err(|err| CommandError::Refused(format!("cannot create {user_id}: {err}")))?;
        Ok(user_id)
    }

    /// The existing account `given` names, exactly; if only another spelling of it exists,
    /// the refusal names that one.
    pub async fn existing_user(&self, given: &str) -> Result<User, CommandError> {
        let user_id = self.user_id(given)?;
        if let Some(user) = self.store.get_user(user_id.as_str()).await? {
            return Ok(user);
        }
        let others = self
            .store
            .find_users_case_insensitive(user_id.as_str())
            .await?;
        Err(CommandError::Refused(match others.first() {
            Some(other) => format!(
                "user {user_id} does not exist (did you mean {}?)",
                other.name
            ),
            None => format!("user {user_id} does not exist"),
        }))
    }

    /// Checks a new password against the 512-character limit and the config's policy, and
    /// hashes it as the server would (scheme, cost, pepper). Errors never hold the password.
    pub async fn hash_new_password(
        &self,
        password: &SecretString,
    ) -> Result<SecretString, CommandError> {
        self.check_new_password(password)
            .map_err(CommandError::Refused)?;
        self.check_hash_scheme()?;
        self.note_without_config();
        super::password_input::note_if_truncated(self.hasher.settings(), password);
        self.hasher
            .hash(password.clone())
            .await
            .map_err(|err| CommandError::Refused(err.to_string()))
    }

    /// Refuses to write argon2id hashes into a Synapse database: Synapse reads only bcrypt,
    /// so the user could no longer log in there.
    pub fn check_hash_scheme(&self) -> Result<(), CommandError> {
        if self.store.flavour() == Flavour::Synapse
            && self.hasher.settings().scheme != crate::config::HashScheme::Bcrypt
        {
            return Err(CommandError::Refused(
                "password_config.scheme is argon2id, but this is a Synapse database and Synapse \
                 reads only bcrypt hashes"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Says, before a password is hashed without a config file, that none of the server's
    /// hash settings are known.
    pub fn note_without_config(&self) {
        if !self.has_config_file {
            eprintln!(
                "note: no config file, so no pepper, bcrypt_rounds or password policy of the \
                 server's applies (bcrypt, cost {}); give -c homeserver.yaml if it has them",
                self.config.bcrypt_rounds
            );
        }
    }

    /// Whether a password may be set: Synapse's 512-character limit and the policy.
    pub fn check_new_password(&self, password: &SecretString) -> Result<(), String> {
        use secrecy::ExposeSecret;
        let password = password.expose_secret();
        if !crate::password::policy::within_length_limit(password) {
            return Err(format!(
                "the password is longer than {} characters",
                crate::password::MAX_PASSWORD_LENGTH
            ));
        }
        PasswordPolicy::new(self.config.password.policy.clone())
            .check(password)
            .map_err(|violation| format!("password refused by the policy: {violation}"))
    }

    /// The audit record of a change the operator is about to make to `user_id`, naming them
    /// as the actor. The store write that makes the change takes it and commits it with the
    /// change: if it cannot be written, the change is not made and the command fails.
    pub fn record(&self, action: &str, user_id: &str, details: Value) -> NewAuditRecord {
        crate::audit::record(&self.actor, action, user_id, details)
    }

    /// After a change (committed with its audit record): the result for the operator on
    /// stdout, and on a Synapse database the notice about Synapse's caches.
    pub fn changed(&self, result: &str) {
        print_stdout(&format!("{result}\n"));
        self.note_synapse_caches();
    }

    /// After a change on a Synapse database: what a running Synapse will and won't see.
    pub fn note_synapse_caches(&self) {
        if self.store.flavour() == Flavour::Synapse {
            eprintln!(
                "note: this is a Synapse database. Synapse caches users and access tokens in its \
                 processes, so a running Synapse may not see this change until it restarts; to \
                 change a running Synapse, use its Admin API instead."
            );
        }
    }
}

/// `println!` for a command's result, through [`print_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::operator::print_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use out;
