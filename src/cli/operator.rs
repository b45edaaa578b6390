//! What the operator's commands on the database (`homekey user …`, `homekey audit list`)
//! share: finding the database and the server's settings, naming users, checking and hashing
//! new passwords, the audit records, the notice on a Synapse database, and the exit codes.

use std::sync::Arc;

use secrecy::SecretString;

use super::{ConfigArgs, DatabaseArgs};
use crate::accounts::{AccountError, Accounts, Actor, OnSynapse, OperatorActor};
use crate::config::Config;
use crate::ids::{UserId, UserIdError};
use crate::store::{Flavour, OpenMode, Store, StoreError, User};

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

/// The one mapping of the account service's errors to the operator's line and exit code.
impl From<AccountError> for CommandError {
    fn from(err: AccountError) -> CommandError {
        match err {
            AccountError::Store(err) => err.into(),
            AccountError::LastAdmin(user) => CommandError::Refused(format!(
                "{user} is the last server admin who can act; make another user an admin \
                 first, or give --force"
            )),
            AccountError::RefusedOnSynapse { ref user, what } => {
                let instead = match what {
                    OnSynapse::Logout => {
                        format!("`homekey admin logout {user}` (its Admin API's delete_devices)")
                    }
                    OnSynapse::Deactivation => format!("`homekey admin deactivate {user}`"),
                };
                CommandError::Refused(format!("{err}: {instead}; nothing was changed"))
            }
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

/// The account service on an opened database, with the settings of the server it belongs
/// to, and who is acting.
pub struct Operator {
    pub accounts: Accounts,
    pub config: Arc<Config>,
    /// Whether a config file was read. Without one (`--database` alone) the server name is
    /// unknown, and no pepper, cost or policy of the server's applies.
    has_config_file: bool,
    /// `cli:` and the operating-system user, as the audit log names the CLI's changes.
    name: String,
}

impl DatabaseSelection {
    /// Reads the config (if any), opens the database it or `--database` names (which must
    /// exist), and says which it is when neither names one.
    pub async fn open(&self) -> Result<Operator, CommandError> {
        self.open_with(OpenMode::MustExist).await
    }

    /// [`DatabaseSelection::open`], creating homekey's database if `mode` allows it.
    pub async fn open_with(&self, mode: OpenMode) -> Result<Operator, CommandError> {
        self.config_selected()?.open(mode).await
    }

    /// The config (if any) with the database `--database` names, read and checked, before
    /// any database is opened.
    pub fn config_selected(&self) -> Result<SelectedConfig, CommandError> {
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
        config
            .refuse_delegating_synapse()
            .map_err(CommandError::Refused)?;
        Ok(SelectedConfig {
            config,
            has_config_file,
        })
    }
}

/// A config read for a command, its database not opened yet.
pub struct SelectedConfig {
    pub config: Config,
    has_config_file: bool,
}

impl SelectedConfig {
    /// Opens the config's database (creating homekey's if `mode` allows it).
    pub async fn open(self, mode: OpenMode) -> Result<Operator, CommandError> {
        let store = Store::open(&self.config.database, mode).await?;
        let config = Arc::new(self.config);
        Ok(Operator {
            accounts: Accounts::new(store, config.clone()),
            config,
            has_config_file: self.has_config_file,
            name: cli_actor(),
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

    /// The operator as the actor of a change, with what they chose to override.
    pub fn actor(&self, force: bool, ignore_policy: bool) -> Actor {
        Actor::Operator(OperatorActor {
            name: self.name.clone(),
            force,
            ignore_policy,
        })
    }

    /// The existing account `given` names, exactly; if only another spelling of it exists,
    /// the refusal names that one.
    pub async fn existing_user(&self, given: &str) -> Result<User, CommandError> {
        let user_id = self.user_id(given)?;
        if let Some(user) = self.accounts.get_user(user_id.as_str()).await? {
            return Ok(user);
        }
        let others = self
            .accounts
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

    /// The account `given` names, found as a login finds it (Synapse's rule): the exact ID,
    /// else the only account whose ID differs from it in case only. For commands that only
    /// read; a change needs the exact ID ([`Operator::existing_user`]).
    pub async fn user_as_login_finds(&self, given: &str) -> Result<User, CommandError> {
        let user_id = self.user_id(given)?;
        match self.accounts.account_as_login_finds(&user_id).await? {
            Some(user) => Ok(user),
            None => self.existing_user(given).await,
        }
    }

    /// Before a new password is hashed: the account service's checks for `actor` (so that a
    /// refusal comes before any work), and what the operator should know.
    pub fn check_new_password(
        &self,
        actor: &Actor,
        password: &SecretString,
    ) -> Result<(), CommandError> {
        self.accounts
            .check_new_password(actor, password)
            .map_err(|refusal| CommandError::from(AccountError::from(refusal)))?;
        self.note_without_config();
        for notice in self.accounts.password_notices(password) {
            eprintln!("note: {notice}");
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

    /// After a change (committed with its audit record): the result for the operator on
    /// stdout, and on a Synapse database the notice about Synapse's caches.
    pub fn changed(&self, result: &str) {
        print_stdout(&format!("{result}\n"));
        self.note_synapse_caches();
    }

    /// After a change on a Synapse database: what a running Synapse will and won't see.
    pub fn note_synapse_caches(&self) {
        if self.accounts.flavour() == Flavour::Synapse {
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
