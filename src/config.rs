//! Synapse's `homeserver.yaml`, read into a typed, validated [`Config`].
//!
//! homekey reads the very file an operator's Synapse reads. Several files may be given (Debian
//! keeps `server_name` in `conf.d/`); as in Synapse, a later file replaces whole top-level keys
//! of an earlier one. Keys homekey does not use are ignored. Every error names the file, the key
//! and what was expected, and never echoes the value of a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::ids;

pub mod admin_console;
pub mod appservices;
pub mod branding;
pub mod email;
pub mod oauth;
pub mod registration;
pub mod threepid_validation;
pub use admin_console::AdminConsoleConfig;
pub use appservices::AppService;
pub use branding::BrandingConfig;
pub use email::EmailConfig;
pub use oauth::OAuthConfig;
pub use registration::RegistrationConfig;
pub use threepid_validation::ThreepidValidationConfig;

/// Synapse's default `bcrypt_rounds`.
pub const DEFAULT_BCRYPT_ROUNDS: u32 = 12;
/// Where the built-in configuration (no file at all) keeps its data.
pub const DEFAULT_DATA_DIR: &str = "homekey-data";

#[derive(Debug, Clone)]
pub struct Config {
    pub server_name: String,
    pub database: DatabaseConfig,
    pub listeners: Vec<Listener>,
    pub registration_shared_secret: Option<SecretString>,
    pub macaroon_secret_key: Option<SecretString>,
    pub bcrypt_rounds: u32,
    pub password: PasswordConfig,
    pub rc_login: LoginRateLimits,
    pub public_baseurl: Option<String>,
    pub lifetimes: SessionLifetimes,
    /// Synapse's `admin_contact`: how users reach the operator (shown on the account page).
    pub admin_contact: Option<String>,
    /// Synapse's `pid_file`: where a running Synapse writes its process ID.
    pub pid_file: Option<PathBuf>,
    /// homekey's own `synapse:` section: homekey is the authentication service of this
    /// Synapse (in the place of MAS).
    pub synapse: Option<SynapseConfig>,
    /// The file that set Synapse's own `matrix_authentication_service.enabled: true`, if one
    /// did: this is then a delegating Synapse's config, whose account tables Synapse ignores.
    pub delegating_synapse_file: Option<PathBuf>,
    /// The files this configuration was read from, in order; empty for the built-in one.
    pub files: Vec<PathBuf>,
    /// homekey's own `oauth:` section ([`oauth`]).
    pub oauth: OAuthConfig,
    /// homekey's own `rc_client_registration`: OAuth client registrations per address.
    pub rc_client_registration: RateLimit,
    /// Synapse's `app_service_config_files`, read beside Synapse only ([`appservices`]):
    /// the application services that may log their users in on homekey's `/login`.
    pub appservices: Vec<AppService>,
    /// homekey's own `branding:` section ([`branding`]): how its pages present the service.
    pub branding: BrandingConfig,
    /// Synapse's `rc_3pid_validation`, `request_token_inhibit_3pid_errors` and
    /// `next_link_domain_whitelist` ([`threepid_validation`]).
    pub threepid_validation: ThreepidValidationConfig,
    /// Synapse's `email:` section ([`email`]): `None` when absent or empty, and then nothing
    /// that needs mail (the password reset by e-mail) is offered.
    pub email: Option<EmailConfig>,
    /// Synapse's `templates.custom_template_directory`: an operator's templates, looked up
    /// before homekey's own.
    pub custom_template_directory: Option<PathBuf>,
    /// Sign-up, with Synapse's keys ([`registration`]).
    pub registration: RegistrationConfig,
    /// homekey's own `admin_console:` section ([`admin_console`]).
    pub admin_console: AdminConsoleConfig,
}

/// How long sessions last, with Synapse's keys and defaults, in milliseconds (`None`: no
/// limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    /// `refreshable_access_token_lifetime` (default 5 minutes): an access token handed out
    /// with a refresh token lasts this long. `None` (the key set to null): no refresh tokens.
    pub refreshable_access_token_ms: Option<i64>,
    /// `refresh_token_lifetime`: how long an unused refresh token stays usable.
    pub refresh_token_ms: Option<i64>,
    /// `session_lifetime`: when a login ends, however it is refreshed.
    pub session_ms: Option<i64>,
}

impl Default for SessionLifetimes {
    fn default() -> SessionLifetimes {
        SessionLifetimes {
            refreshable_access_token_ms: Some(5 * 60 * 1000),
            refresh_token_ms: None,
            session_ms: None,
        }
    }
}

/// The shortest shared secret homekey accepts between itself and Synapse.
pub const MIN_SYNAPSE_SECRET_LENGTH: usize = 32;

/// homekey's `synapse:` section: the Synapse whose authentication homekey serves.
#[derive(Debug, Clone)]
pub struct SynapseConfig {
    /// Synapse's main client listener (for `/_synapse/mas/*`), with a trailing slash.
    pub endpoint: String,
    /// The secret of Synapse's `matrix_authentication_service.secret`, in both directions.
    pub secret: SecretString,
}

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        /// Kept out of `Debug` and `Display` output by hand (see the impls below).
        password: Option<String>,
        dbname: Option<String>,
    },
    /// A `postgres://` URL given on the command line (`--database`). It may hold a password:
    /// kept out of `Debug` and `Display`.
    PostgresUrl(String),
}

impl DatabaseConfig {
    /// Reads `--database`: `sqlite:PATH` or a `postgres://` / `postgresql://` URL.
    pub fn from_url(url: &str) -> Result<DatabaseConfig, String> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:/data/homeserver.db".into());
            }
            Ok(DatabaseConfig::Sqlite { path: path.into() })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseConfig::PostgresUrl(url.to_owned()))
        } else {
            Err("expected sqlite:PATH or a postgres:// URL".into())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub bind_addresses: Vec<String>,
    pub kind: String,
    /// `x_forwarded`: the listener is behind a reverse proxy, and a request's client is the
    /// address the proxy puts in `X-Forwarded-For` (see `http::client_address`).
    pub x_forwarded: bool,
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// `password_config.enabled`: whether passwords may be used at all.
    pub enabled: PasswordLogin,
    pub localdb_enabled: bool,
    pub pepper: SecretString,
    pub scheme: HashScheme,
    pub policy: PasswordPolicyConfig,
}

/// `password_config.enabled`: `true`, `false`, or `only_for_reauth` (passwords confirm an
/// already logged-in user but cannot log in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordLogin {
    Enabled,
    Disabled,
    OnlyForReauth,
}

/// The scheme new hashes are written in. bcrypt is what Synapse reads; argon2id is homekey's
/// opt-in for deployments that Synapse will never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashScheme {
    #[default]
    Bcrypt,
    Argon2id,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PasswordPolicyConfig {
    pub enabled: bool,
    pub minimum_length: u32,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst_count: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginRateLimits {
    pub address: RateLimit,
    pub account: RateLimit,
    pub failed_attempts: RateLimit,
}

impl Default for LoginRateLimits {
    /// Synapse's defaults (`synapse/config/ratelimiting.py`).
    fn default() -> Self {
        LoginRateLimits {
            address: RateLimit {
                per_second: 0.003,
                burst_count: 5.0,
            },
            account: RateLimit {
                per_second: 0.003,
                burst_count: 5.0,
            },
            failed_attempts: RateLimit {
                per_second: 0.17,
                burst_count: 3.0,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid YAML: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    #[error("{}: `{key}`: {message}", path.display())]
    Key {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{}: `{key}` is required: {message}", path.display())]
    Missing {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Keys whose values are secrets: an error about them never shows the value.
const SECRET_KEYS: &[&str] = &[
    "registration_shared_secret",
    "macaroon_secret_key",
    "form_secret",
    "password_config.pepper",
    "database.args.password",
    "synapse.secret",
    "matrix_authentication_service.secret",
    "email.smtp_pass",
];

/// Mappings that hold a secret: a value of the wrong type there is not shown either.
const MAPPINGS_WITH_SECRETS: &[&str] = &["synapse", "matrix_authentication_service", "email"];

impl Config {
    /// The application service whose `as_token` this is.
    pub fn appservice_by_token(&self, token: &str) -> Option<&AppService> {
        self.appservices
            .iter()
            .find(|service| service.has_token(token))
    }

    /// The configuration used when no file is given: server `localhost`, SQLite in
    /// `./homekey-data`, one listener on 127.0.0.1:8008.
    pub fn builtin() -> Config {
        Config {
            server_name: "localhost".into(),
            database: DatabaseConfig::Sqlite {
                path: Path::new(DEFAULT_DATA_DIR).join("homeserver.db"),
            },
            listeners: vec![Listener {
                port: 8008,
                bind_addresses: vec!["127.0.0.1".into()],
                kind: "http".into(),
                x_forwarded: false,
            }],
            registration_shared_secret: None,
            macaroon_secret_key: None,
            bcrypt_rounds: DEFAULT_BCRYPT_ROUNDS,
            password: PasswordConfig {
                enabled: PasswordLogin::Enabled,
                localdb_enabled: true,
                pepper: SecretString::from(""),
                scheme: HashScheme::Bcrypt,
                policy: PasswordPolicyConfig::default(),
            },
            rc_login: LoginRateLimits::default(),
            public_baseurl: None,
            lifetimes: SessionLifetimes::default(),
            admin_contact: None,
            pid_file: None,
            synapse: None,
            delegating_synapse_file: None,
            files: Vec::new(),
            oauth: OAuthConfig::default(),
            rc_client_registration: oauth::DEFAULT_RC_CLIENT_REGISTRATION,
            appservices: Vec::new(),
            branding: BrandingConfig::plain("localhost"),
            threepid_validation: ThreepidValidationConfig::default(),
            email: None,
            custom_template_directory: None,
            registration: RegistrationConfig::default(),
            admin_console: AdminConsoleConfig::default(),
        }
    }

    /// Reads one or more config files (a directory means every `*.yaml` file in it, sorted),
    /// later ones replacing top-level keys of earlier ones, as Synapse does.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Config, ConfigError> {
        let mut files = Vec::new();
        for path in paths {
            files.extend(expand_config_path(path.as_ref())?);
        }
        let mut merged = serde_yaml_ng::Mapping::new();
        let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
                path: file.clone(),
                source,
            })?;
            let value: Value = serde_yaml_ng::from_str(&text).map_err(|err| ConfigError::Yaml {
                path: file.clone(),
                message: err.to_string(),
            })?;
            match value {
                Value::Mapping(map) => {
                    for (key, value) in map {
                        if let Value::String(name) = &key {
                            origin.insert(name.clone(), file.clone());
                        }
                        merged.insert(key, value);
                    }
                }
                // An empty file is an empty config, as in Synapse.
                Value::Null => {}
                _ => {
                    return Err(ConfigError::Yaml {
                        path: file.clone(),
                        message: "the top level must be a mapping of keys to values".into(),
                    });
                }
            }
        }
        let last_file = files.last().cloned().unwrap_or_default();
        let file_of = |key: &str| {
            let top = key.split('.').next().unwrap_or(key);
            origin
                .get(top)
                .cloned()
                .unwrap_or_else(|| last_file.clone())
        };
        let raw: RawConfig = serde_path_to_error::deserialize(Value::Mapping(merged.clone()))
            .map_err(|err| {
                let key = err.path().to_string();
                ConfigError::Key {
                    path: file_of(&key),
                    message: describe_serde_error(&key, err.inner()),
                    key,
                }
            })?;
        for key in merged.keys().filter_map(Value::as_str) {
            if !KNOWN_KEYS.contains(&key) && !registration::KEYS.contains(&key) {
                tracing::debug!(key, "ignoring a config key homekey does not use");
            }
        }
        raw.validate(files, &file_of)
    }
}

/// Top-level keys homekey reads; anything else is Synapse's business and ignored.
const KNOWN_KEYS: &[&str] = &[
    "server_name",
    "database",
    "listeners",
    "registration_shared_secret",
    "registration_shared_secret_path",
    "macaroon_secret_key",
    "bcrypt_rounds",
    "password_config",
    "rc_login",
    "public_baseurl",
    "refreshable_access_token_lifetime",
    "refresh_token_lifetime",
    "session_lifetime",
    "admin_contact",
    "pid_file",
    "synapse",
    "matrix_authentication_service",
    "oauth",
    "rc_client_registration",
    "app_service_config_files",
    "branding",
    "rc_3pid_validation",
    "request_token_inhibit_3pid_errors",
    "next_link_domain_whitelist",
    "email",
    "templates",
    "admin_console",
];

fn expand_config_path(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let file = entry.map_err(read_error)?.path();
        if file.extension().is_some_and(|ext| ext == "yaml") && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Serde's message, unless the key is a secret: then only what was expected.
fn describe_serde_error(key: &str, err: &serde_yaml_ng::Error) -> String {
    if SECRET_KEYS.iter().any(|secret| key.starts_with(secret)) {
        "expected a string (the value is not shown: it is a secret)".into()
    } else if MAPPINGS_WITH_SECRETS.contains(&key) {
        "expected a mapping of keys to values (the value is not shown: it may hold a secret)".into()
    } else {
        // serde_yaml_ng appends the position in the merged document, which means nothing to
        // the reader of the original file.
        let message = err.to_string();
        match message.find(" at line ") {
            Some(at) => message[..at].to_string(),
            None => message,
        }
    }
}

/// The file's shape, before validation. Field names are Synapse's.
#[derive(Deserialize)]
struct RawConfig {
    server_name: Option<String>,
    database: Option<RawDatabase>,
    listeners: Option<Vec<RawListener>>,
    registration_shared_secret: Option<String>,
    registration_shared_secret_path: Option<PathBuf>,
    macaroon_secret_key: Option<String>,
    bcrypt_rounds: Option<u32>,
    #[serde(default)]
    password_config: RawPasswordConfig,
    #[serde(default)]
    rc_login: RawLoginRateLimits,
    public_baseurl: Option<String>,
    /// Absent (the default) and null (no refresh tokens) differ.
    #[serde(default, deserialize_with = "present")]
    refreshable_access_token_lifetime: Option<Option<RawDuration>>,
    refresh_token_lifetime: Option<RawDuration>,
    session_lifetime: Option<RawDuration>,
    admin_contact: Option<String>,
    pid_file: Option<PathBuf>,
    synapse: Option<RawSynapse>,
    matrix_authentication_service: Option<RawMas>,
    #[serde(default)]
    oauth: oauth::RawOAuth,
    rc_client_registration: Option<RateLimit>,
    app_service_config_files: Option<Vec<PathBuf>>,
    #[serde(default)]
    branding: branding::RawBranding,
    rc_3pid_validation: Option<threepid_validation::RawPartialRateLimit>,
    request_token_inhibit_3pid_errors: Option<bool>,
    next_link_domain_whitelist: Option<Vec<String>>,
    /// Read as it is: whether it is empty decides whether mail is on ([`email`]).
    email: Option<Value>,
    templates: Option<email::RawTemplates>,
    #[serde(default)]
    admin_console: admin_console::RawAdminConsole,
    #[serde(flatten)]
    registration: registration::RawRegistration,
}

/// A key that is there, even as null: `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A duration as Synapse reads one: an integer of milliseconds, or a string of digits with
/// an optional unit `s`, `m`, `h`, `d`, `w` or `y` (none: milliseconds).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawDuration {
    Ms(i64),
    Text(String),
}

impl RawDuration {
    pub(crate) fn to_ms(&self) -> Result<i64, String> {
        let text = match self {
            RawDuration::Ms(ms) => return Ok(*ms),
            RawDuration::Text(text) => text,
        };
        let (number, unit_ms) = match text.char_indices().last() {
            Some((at, unit)) if !unit.is_ascii_digit() => {
                let unit_ms: i64 = match unit {
                    's' => 1_000,
                    'm' => 60_000,
                    'h' => 3_600_000,
                    'd' => 86_400_000,
                    'w' => 7 * 86_400_000,
                    'y' => 365 * 86_400_000,
                    _ => return Err(format!("\"{text}\": the unit must be s, m, h, d, w or y")),
                };
                (&text[..at], unit_ms)
            }
            _ => (text.as_str(), 1),
        };
        number
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .ok_or_else(|| format!("\"{text}\" is not a duration, e.g. 5m or 300000"))
    }
}

/// homekey's `synapse:` section.
#[derive(Deserialize)]
struct RawSynapse {
    endpoint: Option<String>,
    secret: Option<String>,
    secret_path: Option<PathBuf>,
}

/// Synapse's own `matrix_authentication_service` section: only whether it is on.
#[derive(Deserialize)]
struct RawMas {
    #[serde(default)]
    enabled: bool,
}

#[derive(Deserialize)]
struct RawDatabase {
    #[serde(default = "default_database_name")]
    name: String,
    #[serde(default)]
    args: RawDatabaseArgs,
}

#[derive(Deserialize, Default)]
struct RawDatabaseArgs {
    database: Option<String>,
    dbname: Option<String>,
    user: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize)]
struct RawListener {
    port: u16,
    bind_addresses: Option<Vec<String>>,
    #[serde(rename = "type", default = "default_listener_type")]
    kind: String,
    #[serde(default)]
    x_forwarded: bool,
}

fn default_database_name() -> String {
    "sqlite3".into()
}

fn default_listener_type() -> String {
    "http".into()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPasswordConfig {
    enabled: Option<BoolOrString>,
    localdb_enabled: Option<bool>,
    pepper: Option<String>,
    scheme: Option<String>,
    policy: PasswordPolicyConfig,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrString {
    Bool(bool),
    String(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLoginRateLimits {
    address: Option<RateLimit>,
    account: Option<RateLimit>,
    failed_attempts: Option<RateLimit>,
}

impl RawConfig {
    fn validate(
        self,
        files: Vec<PathBuf>,
        file_of: &dyn Fn(&str) -> PathBuf,
    ) -> Result<Config, ConfigError> {
        let key_error = |key: &str, message: String| ConfigError::Key {
            path: file_of(key),
            key: key.to_owned(),
            message,
        };
        let server_name = self.server_name.ok_or_else(|| ConfigError::Missing {
            path: file_of("server_name"),
            key: "server_name".into(),
            message: "the domain of this server's user IDs, e.g. example.com".into(),
        })?;
        ids::validate_server_name(&server_name)
            .map_err(|err| key_error("server_name", err.to_string()))?;

        let database = match self.database {
            None => DatabaseConfig::Sqlite {
                path: PathBuf::from("homeserver.db"),
            },
            Some(db) => match db.name.as_str() {
                "sqlite3" => DatabaseConfig::Sqlite {
                    path: PathBuf::from(db.args.database.ok_or_else(|| ConfigError::Missing {
                        path: file_of("database"),
                        key: "database.args.database".into(),
                        message: "the path of the SQLite database file".into(),
                    })?),
                },
                "psycopg2" | "psycopg" => DatabaseConfig::Postgres {
                    host: db.args.host,
                    port: db.args.port,
                    user: db.args.user,
                    password: db.args.password,
                    dbname: db.args.dbname.or(db.args.database),
                },
                other => {
                    return Err(key_error(
                        "database.name",
                        format!(
                            "Unsupported database type \"{other}\": expected \"sqlite3\" or \"psycopg2\""
                        ),
                    ));
                }
            },
        };

        let listeners = match self.listeners {
            None => Config::builtin().listeners,
            Some(raw) => raw
                .into_iter()
                .map(|l| Listener {
                    port: l.port,
                    // Synapse's default when a listener names no address: every interface.
                    bind_addresses: l
                        .bind_addresses
                        .unwrap_or_else(|| vec!["::".into(), "0.0.0.0".into()]),
                    kind: l.kind,
                    x_forwarded: l.x_forwarded,
                })
                .collect(),
        };

        let registration_shared_secret = match (
            self.registration_shared_secret,
            self.registration_shared_secret_path,
        ) {
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "registration_shared_secret_path",
                    "give either registration_shared_secret or registration_shared_secret_path, not both".into(),
                ));
            }
            (Some(secret), None) => Some(SecretString::from(secret)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    key_error(
                        "registration_shared_secret_path",
                        format!("cannot read {}: {err}", path.display()),
                    )
                })?;
                Some(SecretString::from(text.trim().to_owned()))
            }
            (None, None) => None,
        };

        let bcrypt_rounds = self.bcrypt_rounds.unwrap_or(DEFAULT_BCRYPT_ROUNDS);
        if !(4..=31).contains(&bcrypt_rounds) {
            return Err(key_error(
                "bcrypt_rounds",
                format!("expected a cost between 4 and 31, found {bcrypt_rounds}"),
            ));
        }

        let raw_password = self.password_config;
        let enabled = match raw_password.enabled {
            None | Some(BoolOrString::Bool(true)) => PasswordLogin::Enabled,
            Some(BoolOrString::Bool(false)) => PasswordLogin::Disabled,
            Some(BoolOrString::String(s)) if s == "only_for_reauth" => PasswordLogin::OnlyForReauth,
            Some(BoolOrString::String(other)) => {
                return Err(key_error(
                    "password_config.enabled",
                    format!("expected true, false or \"only_for_reauth\", found \"{other}\""),
                ));
            }
        };
        let scheme = match raw_password.scheme.as_deref() {
            None | Some("bcrypt") => HashScheme::Bcrypt,
            Some("argon2id") => HashScheme::Argon2id,
            Some(other) => {
                return Err(key_error(
                    "password_config.scheme",
                    format!("expected \"bcrypt\" or \"argon2id\", found \"{other}\""),
                ));
            }
        };

        let public_baseurl = match self.public_baseurl {
            None => None,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                // Synapse stores it with a trailing slash.
                Some(if url.ends_with('/') { url } else { url + "/" })
            }
            Some(other) => {
                return Err(key_error(
                    "public_baseurl",
                    format!("expected an http:// or https:// URL, found \"{other}\""),
                ));
            }
        };

        let duration = |key: &str, raw: Option<&RawDuration>| {
            raw.map(|raw| raw.to_ms().map_err(|message| key_error(key, message)))
                .transpose()
        };
        let lifetimes = SessionLifetimes {
            refreshable_access_token_ms: match &self.refreshable_access_token_lifetime {
                None => SessionLifetimes::default().refreshable_access_token_ms,
                Some(raw) => duration("refreshable_access_token_lifetime", raw.as_ref())?,
            },
            refresh_token_ms: duration(
                "refresh_token_lifetime",
                self.refresh_token_lifetime.as_ref(),
            )?,
            session_ms: duration("session_lifetime", self.session_lifetime.as_ref())?,
        };
        let synapse = match self.synapse {
            None => None,
            Some(raw) => {
                if public_baseurl.is_none() {
                    return Err(ConfigError::Missing {
                        path: file_of("synapse"),
                        key: "public_baseurl".into(),
                        message: "beside Synapse (the `synapse:` section) it is the issuer \
                                  Synapse announces: Synapse's own public_baseurl"
                            .into(),
                    });
                }
                Some(raw.validate(&key_error, file_of)?)
            }
        };
        // Only beside Synapse: a standalone homekey has no application services.
        let appservices = match (&synapse, &self.app_service_config_files) {
            (Some(_), Some(paths)) => {
                appservices::load(paths, &server_name, &file_of("app_service_config_files"))?
            }
            _ => Vec::new(),
        };
        let delegating_synapse_file = self
            .matrix_authentication_service
            .is_some_and(|mas| mas.enabled)
            .then(|| file_of("matrix_authentication_service"));

        let oauth = self
            .oauth
            .validate()
            .map_err(|(key, message)| ConfigError::Key {
                path: file_of("oauth"),
                key: key.to_owned(),
                message,
            })?;
        let branding = self
            .branding
            .validate(&server_name)
            .map_err(|(key, message)| ConfigError::Key {
                path: file_of("branding"),
                key: key.to_owned(),
                message,
            })?;
        let email = email::validate(self.email, &server_name).map_err(|(key, message)| {
            ConfigError::Key {
                path: file_of("email"),
                key,
                message,
            }
        })?;
        let registration =
            self.registration
                .validate(email.is_some())
                .map_err(|(key, message)| ConfigError::Key {
                    path: file_of(key),
                    key: key.to_owned(),
                    message,
                })?;
        let custom_template_directory =
            self.templates
                .unwrap_or_default()
                .validate()
                .map_err(|(key, message)| ConfigError::Key {
                    path: file_of("templates"),
                    key,
                    message,
                })?;
        let admin_console =
            self.admin_console
                .validate()
                .map_err(|(key, message)| ConfigError::Key {
                    path: file_of("admin_console"),
                    key: key.to_owned(),
                    message,
                })?;
        let defaults = LoginRateLimits::default();
        let rc_login = LoginRateLimits {
            address: self.rc_login.address.unwrap_or(defaults.address),
            account: self.rc_login.account.unwrap_or(defaults.account),
            failed_attempts: self
                .rc_login
                .failed_attempts
                .unwrap_or(defaults.failed_attempts),
        };

        Ok(Config {
            server_name,
            database,
            listeners,
            registration_shared_secret,
            macaroon_secret_key: self.macaroon_secret_key.map(SecretString::from),
            bcrypt_rounds,
            password: PasswordConfig {
                enabled,
                localdb_enabled: raw_password.localdb_enabled.unwrap_or(true),
                pepper: SecretString::from(raw_password.pepper.unwrap_or_default()),
                scheme,
                policy: raw_password.policy,
            },
            rc_login,
            public_baseurl,
            lifetimes,
            admin_contact: self.admin_contact,
            pid_file: self.pid_file,
            synapse,
            delegating_synapse_file,
            files,
            oauth,
            rc_client_registration: self
                .rc_client_registration
                .unwrap_or(oauth::DEFAULT_RC_CLIENT_REGISTRATION),
            appservices,
            branding,
            threepid_validation: threepid_validation::RawThreepidValidation {
                rc_3pid_validation: self.rc_3pid_validation,
                request_token_inhibit_3pid_errors: self.request_token_inhibit_3pid_errors,
                next_link_domain_whitelist: self.next_link_domain_whitelist,
            }
            .validate(),
            email,
            custom_template_directory,
            registration,
            admin_console,
        })
    }
}

impl RawSynapse {
    fn validate(
        self,
        key_error: &dyn Fn(&str, String) -> ConfigError,
        file_of: &dyn Fn(&str) -> PathBuf,
    ) -> Result<SynapseConfig, ConfigError> {
        let endpoint = match self.endpoint {
            None => {
                return Err(ConfigError::Missing {
                    path: file_of("synapse"),
                    key: "synapse.endpoint".into(),
                    message: "Synapse's main client listener, e.g. http://127.0.0.1:8008/".into(),
                });
            }
            Some(url) if is_http_url(&url) => {
                if url.ends_with('/') {
                    url
                } else {
                    url + "/"
                }
            }
            Some(other) => {
                return Err(key_error(
                    "synapse.endpoint",
                    format!("expected an http:// or https:// URL, found \"{other}\""),
                ));
            }
        };
        let (key, secret) = match (self.secret, self.secret_path) {
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "synapse.secret_path",
                    "give either synapse.secret or synapse.secret_path, not both".into(),
                ));
            }
            (Some(secret), None) => ("synapse.secret", secret),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    key_error(
                        "synapse.secret_path",
                        format!("cannot read {}: {err}", path.display()),
                    )
                })?;
                // As Synapse reads its `secret_path`: surrounding white space stripped.
                ("synapse.secret_path", text.trim().to_owned())
            }
            (None, None) => {
                return Err(ConfigError::Missing {
                    path: file_of("synapse"),
                    key: "synapse.secret".into(),
                    message: "the secret of Synapse's matrix_authentication_service \
                              (or synapse.secret_path, a file holding it)"
                        .into(),
                });
            }
        };
        if secret.chars().count() < MIN_SYNAPSE_SECRET_LENGTH {
            return Err(key_error(
                key,
                format!(
                    "the secret shared with Synapse must be at least \
                     {MIN_SYNAPSE_SECRET_LENGTH} characters long (the value is not shown)"
                ),
            ));
        }
        Ok(SynapseConfig {
            endpoint,
            secret: SecretString::from(secret),
        })
    }
}

fn is_http_url(url: &str) -> bool {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

impl Config {
    /// Refuses a delegating Synapse's own config (`matrix_authentication_service.enabled:
    /// true`) as the config of a command on accounts or passwords (`hash_password` too):
    /// Synapse then takes its accounts from its authentication service and ignores its own
    /// tables, so a hash made with its settings would land where nothing reads it.
    pub fn refuse_delegating_synapse(&self) -> Result<(), String> {
        match &self.delegating_synapse_file {
            None => Ok(()),
            Some(file) => Err(format!(
                "{}: this is the config of a Synapse with matrix_authentication_service \
                 enabled, which ignores its own account tables and password hashes: homekey \
                 changes no account and hashes no password for it. Give homekey's own config \
                 (the file with the `synapse:` section) with -c",
                file.display()
            )),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseConfig::Sqlite { path } => {
                f.debug_struct("Sqlite").field("path", path).finish()
            }
            DatabaseConfig::Postgres {
                host,
                port,
                user,
                password,
                dbname,
            } => f
                .debug_struct("Postgres")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .field("password", &password.as_ref().map(|_| "[REDACTED]"))
                .field("dbname", dbname)
                .finish(),
            DatabaseConfig::PostgresUrl(_) => f.write_str("PostgresUrl([REDACTED])"),
        }
    }
}

impl fmt::Display for DatabaseConfig {
    /// A description for people: where the data is, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseConfig::Sqlite { path } => write!(f, "SQLite at {}", path.display()),
            DatabaseConfig::Postgres {
                host,
                port,
                user,
                dbname,
                ..
            } => write!(
                f,
                "PostgreSQL database {} on {}:{} as {}",
                dbname.as_deref().unwrap_or("(default)"),
                host.as_deref().unwrap_or("localhost"),
                port.unwrap_or(5432),
                user.as_deref().unwrap_or("(current user)"),
            ),
            DatabaseConfig::PostgresUrl(_) => f.write_str("PostgreSQL (from --database)"),
        }
    }
}

/// Writes a commented starter `homeserver.yaml` with fresh secrets; refuses to overwrite.
pub fn generate(path: &Path, server_name: &str, data_dir: &Path) -> Result<(), GenerateError> {
    generate_with(path, server_name, data_dir, default_listen(false), None)
}

/// What `generate-config --for-synapse` adds: the Synapse homekey serves.
#[derive(Debug, Clone)]
pub struct ForSynapse {
    /// Synapse's main client listener, for `synapse.endpoint`.
    pub endpoint: String,
    /// Synapse's `public_baseurl`, the issuer.
    pub public_baseurl: String,
}

/// Where a config written for Synapse has homekey listen unless told otherwise (Synapse
/// itself takes 8008).
pub const FOR_SYNAPSE_PORT: u16 = 8081;

/// Where a generated config has homekey listen unless `--listen` says: 127.0.0.1, port 8008
/// on its own, [`FOR_SYNAPSE_PORT`] beside Synapse.
pub fn default_listen(for_synapse: bool) -> std::net::SocketAddr {
    let port = if for_synapse { FOR_SYNAPSE_PORT } else { 8008 };
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// `--listen`: an address and a port to listen on, `127.0.0.1:8081` or `[::1]:8081`.
pub fn parse_listen(given: &str) -> Result<std::net::SocketAddr, String> {
    let listen: std::net::SocketAddr = given.parse().map_err(|_| {
        "expected ADDR:PORT, an IP address and a port, e.g. 127.0.0.1:8081 or [::1]:8081".to_owned()
    })?;
    if listen.port() == 0 {
        return Err("the port must not be 0".into());
    }
    Ok(listen)
}

/// The URL at which something on this host reaches homekey listening at `listen`: the
/// loopback address when homekey listens on every address.
pub fn local_url(listen: std::net::SocketAddr) -> String {
    let mut reach = listen;
    if reach.ip().is_unspecified() {
        reach.set_ip(match reach.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{reach}/")
}

/// [`generate`], with the `synapse:` section (and a fresh secret for it) when `for_synapse`
/// is given.
pub fn generate_with(
    path: &Path,
    server_name: &str,
    data_dir: &Path,
    listen: std::net::SocketAddr,
    for_synapse: Option<&ForSynapse>,
) -> Result<(), GenerateError> {
    ids::validate_server_name(server_name)
        .map_err(|err| GenerateError::ServerName(err.to_string()))?;
    if let Some(setup) = for_synapse {
        if !is_http_url(&setup.endpoint) {
            return Err(GenerateError::Url(
                "--for-synapse",
                format!(
                    "expected Synapse's http:// or https:// URL, found \"{}\"",
                    setup.endpoint
                ),
            ));
        }
        if !is_http_url(&setup.public_baseurl) {
            return Err(GenerateError::Url(
                "--public-baseurl",
                format!(
                    "expected an http:// or https:// URL, found \"{}\"",
                    setup.public_baseurl
                ),
            ));
        }
    }
    let data_dir = std::path::absolute(data_dir).map_err(GenerateError::Io)?;
    // Beside Synapse, the shared secret goes in a file of its own that both read
    // (`secret_path`), so that it is never printed or copied by hand.
    if path.exists() {
        return Err(GenerateError::Exists(path.to_path_buf()));
    }
    let secret_file = match for_synapse {
        Some(_) => {
            let file = synapse_secret_file(path).map_err(GenerateError::Io)?;
            write_new_private_file(&file, &crate::secrets::random_alphanumeric(48))?;
            Some(file)
        }
        None => None,
    };
    let text = starter_config(
        server_name,
        &data_dir,
        listen,
        for_synapse,
        secret_file.as_deref(),
    );
    write_new_private_file(path, &text)
}

/// Where `generate-config --for-synapse` puts the shared secret: beside the config file,
/// named after it (`homekey.yaml` → `homekey.synapse-secret`).
pub fn synapse_secret_file(config: &Path) -> std::io::Result<PathBuf> {
    let config = std::path::absolute(config)?;
    let stem = config.file_stem().unwrap_or_default().to_string_lossy();
    Ok(config.with_file_name(format!("{stem}.synapse-secret")))
}

/// Writes `text` to a new file readable by its owner only; never overwrites.
fn write_new_private_file(path: &Path, text: &str) -> Result<(), GenerateError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        // The file holds secrets: readable by its owner only.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::AlreadyExists => GenerateError::Exists(path.to_path_buf()),
        _ => GenerateError::Io(err),
    })?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(GenerateError::Io)
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{} already exists; homekey does not overwrite it", .0.display())]
    Exists(PathBuf),
    #[error("--server-name: {0}")]
    ServerName(String),
    #[error("{0}: {1}")]
    Url(&'static str, String),
    #[error("cannot write the config file: {0}")]
    Io(std::io::Error),
}

fn starter_config(
    server_name: &str,
    data_dir: &Path,
    listen: std::net::SocketAddr,
    for_synapse: Option<&ForSynapse>,
    secret_file: Option<&Path>,
) -> String {
    use crate::secrets::random_alphanumeric;
    let database = data_dir.join("homeserver.db");
    let (port, address) = (listen.port(), listen.ip());
    let (listener_note, shared_secret_note, synapse_section) = match for_synapse {
        None => ("", "", String::new()),
        Some(setup) => (
            "\n# Synapse calls homekey here (its matrix_authentication_service.endpoint): keep it off\n\
             # the public side of the reverse proxy, except the account routes.",
            "\n# Beside Synapse: the same value as Synapse's registration_shared_secret.",
            format!(
                r#"
# Synapse's public_baseurl: the issuer homekey announces to Synapse and its clients.
public_baseurl: "{public_baseurl}"

# Who to contact about an account (shown on homekey's account page), e.g. mailto:admin@{server_name}
# admin_contact: "mailto:admin@{server_name}"

# homekey is this Synapse's authentication service (in the place of MAS).
synapse:
  # Synapse's main client listener.
  endpoint: "{endpoint}"
  # The shared secret, in a file Synapse reads too (its matrix_authentication_service.secret_path).
  secret_path: "{secret_file}"
"#,
                public_baseurl = setup.public_baseurl,
                endpoint = setup.endpoint,
                secret_file = secret_file
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            ),
        ),
    };
    format!(
        r#"# homeserver.yaml, written by `homekey generate-config`.
# homekey reads Synapse's config format: this file also suits Synapse, and homekey can read
# an existing Synapse homeserver.yaml. Keys homekey does not use are ignored.

# The domain of this server's user IDs (@alice:{server_name}). It cannot change later.
server_name: "{server_name}"

# Where accounts are kept. For PostgreSQL:
#   database:
#     name: psycopg2
#     args: {{user: homekey, password: "...", dbname: homekey, host: localhost, port: 5432}}
database:
  name: sqlite3
  args:
    database: "{database}"

# Where `homekey serve` listens. Put a TLS-terminating reverse proxy in front of it.{listener_note}
listeners:
  - port: {port}
    type: http
    bind_addresses: ["{address}"]
    # Behind a reverse proxy that sets X-Forwarded-For (see homekey's README), let the
    # rate limits see each client's address instead of the proxy's:
    # x_forwarded: true
    resources:
      - names: [client]

# Lets `register_new_matrix_user` and the admin registration API create accounts. Keep it secret.{shared_secret_note}
registration_shared_secret: "{shared_secret}"

# Synapse signs tokens with this key. Keep it secret.
macaroon_secret_key: "{macaroon_key}"

# The bcrypt cost of new password hashes (Synapse's default: 12).
bcrypt_rounds: 12

password_config:
  enabled: true
  # Appended to every password before hashing. Changing it invalidates every password.
  pepper: "{pepper}"
  # bcrypt (readable by Synapse) or argon2id (homekey only).
  scheme: bcrypt
  policy:
    enabled: false
    minimum_length: 10
    require_digit: true
    require_symbol: true
    require_lowercase: true
    require_uppercase: true

# A mailed password reset link (the `email:` section; see homekey's README, "Forgot
# password") may send the browser on to a `next_link` the client chose. Without this list,
# as in Synapse, it may lead anywhere; with it, only to these hosts (add your web client's,
# e.g. "app.element.io").
next_link_domain_whitelist: ["{public_host}"]
{synapse_section}"#,
        public_host = for_synapse
            .and_then(|setup| url::Url::parse(&setup.public_baseurl).ok())
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| server_name.to_owned()),
        database = database.display(),
        shared_secret = random_alphanumeric(48),
        macaroon_key = random_alphanumeric(48),
        pepper = random_alphanumeric(32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn session_lifetimes_are_read_as_synapse_reads_durations() {
        let dir = tempfile::tempdir().unwrap();
        let load = |extra: &str| {
            let file = write(
                dir.path(),
                "homeserver.yaml",
                &format!("server_name: example.com\n{extra}"),
            );
            Config::load(&[file])
        };
        let defaults = load("").unwrap().lifetimes;
        assert_eq!(defaults, SessionLifetimes::default());
        assert_eq!(defaults.refreshable_access_token_ms, Some(300_000));
        let set = load(
            "refreshable_access_token_lifetime: 90s\nrefresh_token_lifetime: 2d\n\
             session_lifetime: 1500\n",
        )
        .unwrap()
        .lifetimes;
        assert_eq!(set.refreshable_access_token_ms, Some(90_000));
        assert_eq!(set.refresh_token_ms, Some(2 * 86_400_000));
        assert_eq!(set.session_ms, Some(1500));
        let off = load("refreshable_access_token_lifetime: null\n").unwrap();
        assert_eq!(off.lifetimes.refreshable_access_token_ms, None);
        let err = load("session_lifetime: 5 minutes\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("session_lifetime"), "{err}");
        let err = load("refresh_token_lifetime: 3q\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("the unit must be"), "{err}");
    }

    #[test]
    fn reads_a_synapse_config_with_synapse_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "homeserver.yaml",
            "server_name: example.com\n\
             database: {name: psycopg2, args: {user: synapse, password: s3cret, database: synapse, host: db, cp_min: 5}}\n\
             report_stats: false\n\
             password_config: {pepper: pep}\n",
        );
        let config = Config::load(&[&file]).unwrap();
        assert_eq!(config.server_name, "example.com");
        assert_eq!(config.bcrypt_rounds, 12);
        assert_eq!(config.password.enabled, PasswordLogin::Enabled);
        assert_eq!(config.password.scheme, HashScheme::Bcrypt);
        assert_eq!(config.password.pepper.expose_secret(), "pep");
        assert_eq!(config.rc_login, LoginRateLimits::default());
        assert_eq!(
            config.database,
            DatabaseConfig::Postgres {
                host: Some("db".into()),
                port: None,
                user: Some("synapse".into()),
                password: Some("s3cret".into()),
                dbname: Some("synapse".into()),
            }
        );
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("\"pep\"") && !debug.contains("s3cret"),
            "{debug}"
        );
    }

    #[test]
    fn x_forwarded_is_read_per_listener_and_off_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "homeserver.yaml",
            "server_name: example.com\n\
             listeners:\n\
             - {port: 8008, bind_addresses: ['127.0.0.1'], x_forwarded: true}\n\
             - {port: 8009, bind_addresses: ['127.0.0.1']}\n",
        );
        let config = Config::load(&[&file]).unwrap();
        let flags: Vec<bool> = config.listeners.iter().map(|l| l.x_forwarded).collect();
        assert_eq!(flags, [true, false]);
        assert!(!Config::builtin().listeners[0].x_forwarded);
        let err =
            load_error("server_name: x.org\nlisteners: [{port: 8008, x_forwarded: sometimes}]\n");
        assert!(err.contains("`listeners[0].x_forwarded`"), "{err}");
    }

    #[test]
    fn later_files_replace_top_level_keys() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "a.yaml",
            "server_name: old.org\nbcrypt_rounds: 10\n",
        );
        let extra = write(dir.path(), "b.yaml", "server_name: new.org\n");
        let config = Config::load(&[&base, &extra]).unwrap();
        assert_eq!(config.server_name, "new.org");
        assert_eq!(config.bcrypt_rounds, 10);
    }

    #[test]
    fn only_for_reauth_is_a_valid_enabled_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "h.yaml",
            "server_name: x.org\npassword_config: {enabled: only_for_reauth}\n",
        );
        assert_eq!(
            Config::load(&[&file]).unwrap().password.enabled,
            PasswordLogin::OnlyForReauth
        );
    }

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "homeserver.yaml", text);
        Config::load(&[&file]).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_expectation() {
        let err = load_error("server_name: x.org\nbcrypt_rounds: many\n");
        assert!(
            err.contains("homeserver.yaml: `bcrypt_rounds`: invalid type"),
            "{err}"
        );
        assert!(err.contains("expected u32"), "{err}");

        let err = load_error("server_name: x.org\nbcrypt_rounds: 99\n");
        assert!(
            err.ends_with("`bcrypt_rounds`: expected a cost between 4 and 31, found 99"),
            "{err}"
        );

        let err =
            load_error("server_name: x.org\npassword_config: {policy: {minimum_length: -1}}\n");
        assert!(
            err.contains("`password_config.policy.minimum_length`"),
            "{err}"
        );

        let err = load_error("server_name: x.org\npassword_config: {enabled: sometimes}\n");
        assert!(
            err.contains("expected true, false or \"only_for_reauth\""),
            "{err}"
        );

        let err = load_error("server_name: x.org\ndatabase: {name: mysql}\n");
        assert!(err.contains("`database.name`: Unsupported database type \"mysql\": expected \"sqlite3\" or \"psycopg2\""), "{err}");

        let err = load_error("bcrypt_rounds: 12\n");
        assert!(err.contains("`server_name` is required"), "{err}");

        let err = load_error("server_name: 'bad name'\n");
        assert!(
            err.contains("`server_name`: 'bad name' is not a valid server name"),
            "{err}"
        );

        let err = load_error("server_name: x.org\n  bad: [indent\n");
        assert!(err.contains("homeserver.yaml: not valid YAML"), "{err}");

        let missing = Config::load(&["/nonexistent/homeserver.yaml"])
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/homeserver.yaml: cannot read the config file"),
            "{missing}"
        );
    }

    #[test]
    fn sign_up_may_require_an_email_address_as_synapse_allows() {
        let email = "email:\n  notif_from: noreply@x.org\n";
        // Without an email: section, Synapse's refusal, naming the key.
        let err = load_error(
            "server_name: x.org\nenable_registration: true\nregistrations_require_3pid: [email]\n",
        );
        assert!(err.contains("`registrations_require_3pid`"), "{err}");
        assert!(
            err.contains("Configuration requires email address at registration, but email validation is not configured"),
            "{err}"
        );
        // No text messages, ever.
        let err = load_error(&format!(
            "server_name: x.org\nenable_registration: true\nregistrations_require_3pid: [msisdn]\n{email}"
        ));
        assert!(err.contains("sends no text messages"), "{err}");
        // A bad pattern is found at start-up.
        let err = load_error(
            "server_name: x.org\nallowed_local_3pids:\n  - {medium: email, pattern: '(unclosed'}\n",
        );
        assert!(err.contains("`allowed_local_3pids`"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "homeserver.yaml",
            &format!(
                "server_name: x.org\nenable_registration: true\nregistrations_require_3pid: [email]\n\
                 allowed_local_3pids:\n  - {{medium: email, pattern: '.*@x\\.org'}}\n\
                 enable_registration_token_3pid_bypass: true\n{email}"
            ),
        );
        // A required address is verification enough: open sign-up starts.
        let config = Config::load(&[&file]).unwrap();
        let registration = &config.registration;
        assert!(registration.require_email && registration.token_bypasses_3pid);
        // Python's re.match: anchored at the start only.
        assert!(registration.threepid_allowed("email", "a@x.org"));
        assert!(registration.threepid_allowed("email", "a@x.org.evil.com"));
        assert!(!registration.threepid_allowed("email", "a@y.org"));
        assert!(!registration.threepid_allowed("email", "a@x-org.com"));
        assert!(!registration.threepid_allowed("msisdn", "a@x.org"));
        assert!(RegistrationConfig::default().threepid_allowed("email", "a@y.org"));
    }

    #[test]
    fn an_error_about_a_secret_does_not_show_it() {
        let err = load_error("server_name: x.org\npassword_config: {pepper: [hunter2-pepper]}\n");
        assert!(err.contains("`password_config.pepper`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err =
            load_error("server_name: x.org\nregistration_shared_secret: {a: sharedsecretvalue}\n");
        assert!(!err.contains("sharedsecretvalue"), "{err}");
    }

    #[test]
    fn the_shared_secret_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "secret", "  from-a-file\n");
        let file = write(
            dir.path(),
            "h.yaml",
            &format!(
                "server_name: x.org\nregistration_shared_secret_path: {}\n",
                secret.display()
            ),
        );
        let config = Config::load(&[&file]).unwrap();
        assert_eq!(
            config.registration_shared_secret.unwrap().expose_secret(),
            "from-a-file"
        );
    }

    #[test]
    fn generated_config_loads_back_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("homeserver.yaml");
        generate(&path, "example.com", &dir.path().join("data")).unwrap();
        let config = Config::load(&[&path]).unwrap();
        assert_eq!(config.server_name, "example.com");
        assert_eq!(config.password.pepper.expose_secret().len(), 32);
        assert_eq!(
            config.database,
            DatabaseConfig::Sqlite {
                path: dir.path().join("data").join("homeserver.db")
            }
        );
        assert_eq!(config.listeners[0].port, 8008);
        assert_eq!(config.listeners[0].bind_addresses, vec!["127.0.0.1"]);
        // A reset link's next_link may lead only to the server's own host until the
        // operator adds a web client's.
        assert_eq!(
            config.threepid_validation.next_link_hosts,
            Some(vec!["example.com".to_owned()])
        );

        let before = std::fs::read_to_string(&path).unwrap();
        let err = generate(&path, "other.org", dir.path()).unwrap_err();
        assert!(matches!(err, GenerateError::Exists(_)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

        let second = dir.path().join("second.yaml");
        generate(&second, "example.com", dir.path()).unwrap();
        let other = Config::load(&[&second]).unwrap();
        assert_ne!(
            other.password.pepper.expose_secret(),
            config.password.pepper.expose_secret()
        );
    }

    #[test]
    fn debug_output_hides_every_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "homeserver.yaml",
            "server_name: example.com\n\
             database: {name: psycopg2, args: {user: synapse, password: db-secret-1}}\n\
             registration_shared_secret: shared-secret-2\n\
             macaroon_secret_key: macaroon-secret-3\n\
             password_config: {pepper: pepper-secret-4}\n\
             public_baseurl: https://matrix.example.com\n\
             synapse: {endpoint: 'http://127.0.0.1:8008', secret: synapse-secret-6-0123456789abcdefghij}\n\
             matrix_authentication_service: {enabled: false, secret: mas-secret-7}\n\
             email: {notif_from: 'x@example.com', smtp_user: u, smtp_pass: smtp-secret-8}\n",
        );
        let config = Config::load(&[&file]).unwrap();
        assert!(config.synapse.is_some());
        let mut shown = format!("{config:?} {config:#?} {}", config.database);
        let url = DatabaseConfig::from_url("postgres://u:url-secret-5@h/db").unwrap();
        shown.push_str(&format!("{url:?} {url}"));
        for secret in [
            "db-secret-1",
            "shared-secret-2",
            "macaroon-secret-3",
            "pepper-secret-4",
            "url-secret-5",
            "synapse-secret-6",
            "mas-secret-7",
            "smtp-secret-8",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::json;

        use super::*;
        use crate::property_testing::json_value;

        const SECRET: &str = "SENTINEL-s3cret";

        /// Text that looks like YAML: keys homekey reads, YAML's punctuation, anchors, tags,
        /// indentation, and random text.
        fn yaml_ish() -> impl Strategy<Value = String> {
            let token = prop_oneof![
                prop::sample::select(vec![
                    "server_name",
                    "database",
                    "name",
                    "args",
                    "sqlite3",
                    "psycopg2",
                    "listeners",
                    "port",
                    "bind_addresses",
                    "type",
                    "bcrypt_rounds",
                    "password_config",
                    "enabled",
                    "pepper",
                    "policy",
                    "minimum_length",
                    "rc_login",
                    "address",
                    "per_second",
                    "burst_count",
                    "public_baseurl",
                    "macaroon_secret_key",
                    "registration_shared_secret",
                    ":",
                    ": ",
                    "- ",
                    "\n",
                    "\n  ",
                    "\n    ",
                    "{",
                    "}",
                    "[",
                    "]",
                    ",",
                    "'",
                    "\"",
                    "&a ",
                    "*a",
                    "!!str ",
                    "!!binary ",
                    "<<: ",
                    "~",
                    "null",
                    "true",
                    "only_for_reauth",
                    "12",
                    "-1",
                    "1e999",
                    "0x1F",
                    ".nan",
                    "#",
                    "---",
                    "...",
                    "|",
                    ">",
                    "?",
                    "%YAML 1.2\n",
                    "\t",
                    "\u{0}",
                    "\u{feff}",
                ])
                .prop_map(str::to_owned),
                any::<String>(),
            ];
            prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
        }

        /// A value for a known key: a plausible one or any JSON, as YAML.
        fn value_for(plausible: serde_json::Value) -> impl Strategy<Value = serde_json::Value> {
            prop_oneof![Just(plausible), json_value()]
        }

        /// A config of known keys, each present or not, with plausible or random values; the
        /// secrets hold `SECRET`, wherever they are put.
        fn known_keys() -> impl Strategy<Value = serde_json::Value> {
            let secret = || {
                prop_oneof![
                    Just(json!(SECRET)),
                    Just(json!([SECRET])),
                    Just(json!({"k": SECRET})),
                    Just(json!(format!("{SECRET}\n"))),
                ]
            };
            (
                (
                    prop::option::of(value_for(json!("example.com"))),
                    prop::option::of(prop_oneof![
                        value_for(json!({"name": "sqlite3", "args": {"database": "/tmp/x.db"}})),
                        secret().prop_map(|password| json!({"name": "psycopg2", "args": {"user": "u", "password": password}})),
                    ]),
                    prop::option::of(value_for(json!([{"port": 8008, "bind_addresses": ["127.0.0.1"]}]))),
                    prop::option::of(secret()),
                    prop::option::of(secret()),
                ),
                (
                    prop::option::of(value_for(json!(12))),
                    prop::option::of(prop_oneof![
                        secret().prop_map(|pepper| json!({"pepper": pepper})),
                        value_for(json!({"enabled": "only_for_reauth", "policy": {"enabled": true, "minimum_length": 8}})),
                    ]),
                    prop::option::of(value_for(json!({"address": {"per_second": 1, "burst_count": 5}}))),
                    prop::option::of(value_for(json!("https://matrix.example.com"))),
                ),
            )
                .prop_map(|((server_name, database, listeners, shared, macaroon), (rounds, password, rc, baseurl))| {
                    let mut config = serde_json::Map::new();
                    for (key, value) in [
                        ("server_name", server_name),
                        ("database", database),
                        ("listeners", listeners),
                        ("registration_shared_secret", shared),
                        ("macaroon_secret_key", macaroon),
                        ("bcrypt_rounds", rounds),
                        ("password_config", password),
                        ("rc_login", rc),
                        ("public_baseurl", baseurl),
                    ] {
                        if let Some(value) = value {
                            config.insert(key.to_owned(), value);
                        }
                    }
                    serde_json::Value::Object(config)
                })
        }

        proptest! {
            #![proptest_config(crate::property_testing::config(256))]

            /// Whatever the file holds, loading it answers a config or an error, never a panic.
            #[test]
            fn any_yaml_ish_text_loads_or_is_refused(text in yaml_ish()) {
                let dir = tempfile::tempdir().unwrap();
                let file = write(dir.path(), "homeserver.yaml", &text);
                let _ = Config::load(&[&file]);
            }

            /// Known keys with any values: no panic, and a secret's value is never shown,
            /// neither in an error nor in the `Debug` of the config.
            #[test]
            fn known_keys_with_any_values_never_show_a_secret(config in known_keys()) {
                let dir = tempfile::tempdir().unwrap();
                let text = serde_yaml_ng::to_string(&config).unwrap();
                let file = write(dir.path(), "homeserver.yaml", &text);
                let shown = match Config::load(&[&file]) {
                    Ok(config) => format!("{config:?}"),
                    Err(err) => format!("{err} {err:?}"),
                };
                prop_assert!(!shown.contains("SENTINEL"), "{}\n{}", text, shown);
            }
        }
    }
}
