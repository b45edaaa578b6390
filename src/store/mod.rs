//! Storage of accounts, devices and access tokens, on SQLite or PostgreSQL.
//!
//! One [`Store`] API for both databases. The SQL is written once: SQLite accepts PostgreSQL's
//! `$1` placeholders, and the schemas (in `migrations/`) use the same names and types, so each
//! operation's body is compiled once per backend by [`with_pool!`]. Every operation runs in a
//! single transaction: it happens completely or not at all. A write made by an admin or an
//! operator takes its audit record as a parameter and commits it in that same transaction
//! (see `commit_audited!` in `audit.rs`).
//!
//! The tables are Synapse's (see docs/DESIGN.md), so the same code opens an existing Synapse
//! database. homekey never migrates a Synapse database, and does not mint tokens in one
//! (Synapse allocates `access_tokens.id` in its own processes).

mod accounts;
mod appservice_users;
mod audit;
mod bulk_rows;
mod connect;
mod email_codes;
mod interactive_auth;
pub mod mail_outbox;
mod oauth_clients;
mod oauth_sessions;
mod registration_nonces;
pub(crate) mod registration_tokens;
mod reset_links;
mod sessions;
mod sqlite_reads;
mod synapse_migration;
mod synapse_queue;
mod threepid_validation;
mod threepids;
pub mod token_forms;
mod transaction;
mod web_sessions;

use secrecy::SecretString;

pub use accounts::{Admission, Deactivation};
pub use audit::{AuditFilter, AuditRecord, NewAuditRecord};
pub use connect::OpenMode;
pub use email_codes::{CodeChecked, NewEmailCode};
pub use interactive_auth::{REGISTRATION_TOKEN_STAGE, TokenStage, UiAuthSession};
pub use mail_outbox::{LeasedMail, MailOutcome, MailStatus, NewMail};
pub use oauth_clients::{ClientDeleted, ClientRegistered, NewOAuthClient, OAuthClientRow};
pub use oauth_sessions::{
    CodeExchange, DeviceDecision, DeviceGrant, DevicePoll, NewDeviceGrant, NewOAuthCode,
    NewOAuthSession, OAuthCode, OAuthSession,
};
pub use registration_tokens::{RegistrationToken, RegistrationTokenChanges, TokensCarried};
pub use reset_links::{NewResetLink, ResetLink};
pub use sessions::{ClientSeen, DeviceContact};
pub use synapse_migration::{
    AccountBatch, CarriedBefore, CarryOptions, MigratedAccessToken, MigratedDevice,
    MigratedRefreshToken, MigratedThreepid, MigratedUser, Restored,
};
pub use synapse_queue::{MirroredUser, OwedWork, emails_digest};
pub use threepid_validation::{EMAIL_IDENTITY_STAGE, LinkRefusal, NewThreepidToken, TokenSent};
pub use threepids::AccountThreepid;
pub use web_sessions::{WebSessionRow, WebSessionTable};

/// The database, and which kind of database it is.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    flavour: Flavour,
    /// On SQLite, the token lookup without sqlx's thread hop (see [`sqlite_reads`]).
    sqlite_reads: Option<std::sync::Arc<sqlite_reads::SqliteReads>>,
    /// Beside Synapse: changes that Synapse must follow owe it work (see [`synapse_queue`]).
    owes_synapse: bool,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Whose schema the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// homekey's own: created and migrated by homekey.
    Homekey,
    /// An existing Synapse database: homekey reads and changes accounts, never the schema.
    Synapse,
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend. The body is the
/// same source compiled twice, once per database type.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The columns of [`UserRow`]: `users` joined with `profiles` on the full user ID, the
/// latest `last_seen` of the user's devices (one probe of the devices' unique index), and
/// whether `erased_users` marks the user (one probe of its unique index).
const USER_COLUMNS: &str = "u.name, u.password_hash, u.creation_ts, u.admin, \
     u.is_guest, u.deactivated, u.locked, u.shadow_banned, u.suspended, u.approved, \
     u.user_type, u.appservice_id, p.displayname, p.avatar_url, \
     (SELECT MAX(d.last_seen) FROM devices d WHERE d.user_id = u.name) AS last_seen_ts, \
     EXISTS (SELECT 1 FROM erased_users e WHERE e.user_id = u.name) AS erased";
const USERS_WITH_PROFILES: &str = "users u LEFT JOIN profiles p ON p.full_user_id = u.name";

/// An account, as stored in Synapse's `users` table (with the display name from `profiles`).
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password_hash: Option<SecretString>,
    /// Seconds since the epoch, as Synapse stores it.
    pub creation_ts: i64,
    pub admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub locked: bool,
    pub shadow_banned: bool,
    pub suspended: bool,
    pub approved: bool,
    pub user_type: Option<String>,
    pub appservice_id: Option<String>,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    /// The latest `last_seen` of the user's devices, in milliseconds; `None` without any.
    pub last_seen_ts: Option<i64>,
    /// Deactivated with erasure (a row of Synapse's `erased_users`), until reactivated.
    pub erased: bool,
}

/// A row of `users` joined with `profiles`, in the database's own types: Synapse keeps
/// `admin`, `is_guest` and `deactivated` as `SMALLINT` 0/1, the newer flags as `BOOLEAN`.
#[derive(sqlx::FromRow)]
struct UserRow {
    name: String,
    password_hash: Option<String>,
    creation_ts: Option<i64>,
    admin: i16,
    is_guest: i16,
    deactivated: i16,
    locked: Option<bool>,
    shadow_banned: Option<bool>,
    suspended: Option<bool>,
    approved: Option<bool>,
    user_type: Option<String>,
    appservice_id: Option<String>,
    displayname: Option<String>,
    avatar_url: Option<String>,
    last_seen_ts: Option<i64>,
    erased: bool,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> User {
        User {
            name: row.name,
            password_hash: row.password_hash.map(SecretString::from),
            creation_ts: row.creation_ts.unwrap_or(0),
            admin: row.admin != 0,
            is_guest: row.is_guest != 0,
            deactivated: row.deactivated != 0,
            locked: row.locked.unwrap_or(false),
            shadow_banned: row.shadow_banned.unwrap_or(false),
            suspended: row.suspended.unwrap_or(false),
            // Synapse reads a NULL `approved` as approved (accounts from before the column).
            approved: row.approved.unwrap_or(true),
            user_type: row.user_type,
            appservice_id: row.appservice_id,
            displayname: row.displayname,
            avatar_url: row.avatar_url,
            last_seen_ts: row.last_seen_ts,
            erased: row.erased,
        }
    }
}

/// What a new account starts with.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: crate::ids::UserId,
    pub password_hash: Option<SecretString>,
    pub creation_ts: i64,
    pub admin: bool,
    pub is_guest: bool,
    pub user_type: Option<String>,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    /// Its third-party IDs (e-mail addresses), if any.
    pub threepids: Vec<crate::threepid::Threepid>,
}

/// Whether a change that can end an admin's power (demote, lock, deactivate) must leave the
/// server an admin who can act. The store decides inside the change's own transaction, so
/// two admins doing it to each other at once cannot both pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminGuard {
    /// Refuse with [`StoreError::LastAdmin`] if the server had such an admin and would have
    /// none.
    KeepOne,
    /// No check (the operator's `--force`, or a change that cannot end an admin's power).
    Off,
}

/// Changes to one account, applied together in one transaction (`None`: leave as it is).
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// `Some(None)` clears the display name.
    pub displayname: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub admin: Option<bool>,
    /// A new password hash, and which devices to log out with it.
    pub password: Option<(SecretString, Logout)>,
    /// `true` deactivates as [`Store::deactivate`] does; `false` reactivates (without a
    /// password: one must be set to log in again).
    pub deactivated: Option<bool>,
    pub locked: Option<bool>,
    pub user_type: Option<Option<String>>,
    /// The whole set of third-party IDs (the Admin API's `threepids`).
    pub threepids: Option<Vec<crate::threepid::Threepid>>,
}

/// Which users a listing includes, as the Admin API's `GET /_synapse/admin/v2/users` asks.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// A text found in the localpart or the display name, ignoring case (Synapse's `name`).
    pub name_contains: Option<String>,
    /// A text found in the user ID, ignoring case (Synapse's `user_id`).
    pub user_id_contains: Option<String>,
    /// A text found in one of the account's e-mail addresses, ignoring case (the admin
    /// console's search; the Admin API has no such filter).
    pub email_contains: Option<String>,
    /// Only admins (`Some(true)`), only non-admins (`Some(false)`), or both.
    pub admins: Option<bool>,
    pub include_guests: bool,
    pub include_deactivated: bool,
    /// Only deactivated accounts (the v3 listing's `deactivated=true`).
    pub only_deactivated: bool,
    pub include_locked: bool,
    /// User types left out (Synapse's repeatable `not_user_type`; `""` is "no type"). Empty:
    /// none left out.
    pub not_user_types: Vec<String>,
    pub order_by: UserOrder,
    pub descending: bool,
}

/// The column a listing is sorted by (then by name), as Synapse's `order_by` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    #[default]
    Name,
    Displayname,
    IsGuest,
    Admin,
    Deactivated,
    UserType,
    AvatarUrl,
    ShadowBanned,
    CreationTs,
    LastSeenTs,
    Locked,
}

impl UserOrder {
    /// Synapse's names, in the order its error message lists them.
    pub const ALL: [(&'static str, UserOrder); 11] = [
        ("name", UserOrder::Name),
        ("displayname", UserOrder::Displayname),
        ("is_guest", UserOrder::IsGuest),
        ("admin", UserOrder::Admin),
        ("deactivated", UserOrder::Deactivated),
        ("user_type", UserOrder::UserType),
        ("avatar_url", UserOrder::AvatarUrl),
        ("shadow_banned", UserOrder::ShadowBanned),
        ("creation_ts", UserOrder::CreationTs),
        ("last_seen_ts", UserOrder::LastSeenTs),
        ("locked", UserOrder::Locked),
    ];

    /// The SQL expression sorted on (a fixed string: never built from input).
    fn sql(self) -> &'static str {
        match self {
            UserOrder::Name => "u.name",
            UserOrder::Displayname => "p.displayname",
            UserOrder::IsGuest => "u.is_guest",
            UserOrder::Admin => "u.admin",
            UserOrder::Deactivated => "u.deactivated",
            UserOrder::UserType => "u.user_type",
            UserOrder::AvatarUrl => "p.avatar_url",
            UserOrder::ShadowBanned => "u.shadow_banned",
            UserOrder::CreationTs => "u.creation_ts",
            UserOrder::LastSeenTs => {
                "(SELECT MAX(d.last_seen) FROM devices d WHERE d.user_id = u.name)"
            }
            UserOrder::Locked => "u.locked",
        }
    }
}

/// A page of a listing: the users from `from` (an offset), at most `limit` of them, by name.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    /// How many users match the filter, on every page.
    pub total: i64,
}

/// Which of a user's devices and tokens an operation removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logout {
    /// None: the user stays logged in everywhere.
    Keep,
    /// Every device, access token and refresh token of the user.
    AllDevices,
    /// All of them but this device and its tokens (the device asking for the change).
    AllDevicesExcept(String),
    /// Every device and token, and every sign-in to the account page but the one whose ID
    /// hashes to this (the page asking for the change).
    AllDevicesAndPagesExcept(String),
    /// Only this device and its tokens (a client's `/logout`).
    Device(String),
}

/// The account an access token acts for, as much of it as authenticating a request needs.
/// Read at every authenticated request, so nothing more: not the hash (which then never
/// reaches memory on a request that does not check a password) nor the profile.
#[derive(Debug, Clone)]
pub struct TokenUser {
    pub name: String,
    pub admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub locked: bool,
    /// Whether the account has a password (re-authentication offers the password stage).
    pub has_password: bool,
}

/// A new login: the device (created if the user does not have it yet) and its access token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: String,
    pub device_id: String,
    pub device_display_name: Option<String>,
    pub access_token: SecretString,
    pub valid_until_ms: Option<i64>,
    pub now_ms: i64,
}

/// Who an access token belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: TokenUser,
    pub token_id: i64,
    pub device_id: Option<String>,
    pub valid_until_ms: Option<i64>,
    /// A token handed out with a refresh token, not used before: its first use spends the
    /// refresh token it came from (see [`Store::mark_access_token_used`]).
    pub unused_refreshable: bool,
    /// An OAuth 2.0 session's token: its client and granted scope.
    pub oauth: Option<OAuthGrant>,
}

/// What an OAuth 2.0 session was granted: by which client, with which scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthGrant {
    pub client_id: String,
    /// As granted, in the client's spelling.
    pub scope: String,
}

/// A refresh token to write with a new access token.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token: SecretString,
    /// When it can no longer be used; `None`: until it is used.
    pub expiry_ts: Option<i64>,
    /// When the login ends, however often it is refreshed; `None`: never.
    pub ultimate_session_expiry_ts: Option<i64>,
}

/// A refresh token as found, with what decides whether it may be used (Synapse's
/// `lookup_refresh_token`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenInfo {
    pub id: i64,
    pub user_id: String,
    pub device_id: String,
    /// Its successor has been refreshed in turn, or the successor's access token used.
    pub superseded: bool,
    pub expiry_ts: Option<i64>,
    pub ultimate_session_expiry_ts: Option<i64>,
}

/// A device of a user, from Synapse's `devices` table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Device {
    pub user_id: String,
    pub device_id: String,
    pub display_name: Option<String>,
    pub last_seen: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("user {0} does not exist")]
    UserNotFound(String),
    #[error("user {0} already exists")]
    UserExists(String),
    /// A third-party ID another account has.
    #[error("{0} is already in use")]
    ThreepidInUse(String),
    /// The change would leave the server without an admin who can act (see [`AdminGuard`]).
    #[error("{0} is the last server admin who can act")]
    LastAdmin(String),
    #[error("this is a Synapse database: {0}")]
    RefusedOnSynapse(&'static str),
    /// The registration token a sign-up spent a use of was deleted before its account was
    /// made: the account is not made.
    #[error("the registration token was deleted during the sign-up")]
    RegistrationTokenGone,
    #[error("the database cannot be opened: {0}")]
    Unavailable(String),
    #[error("{0}")]
    NotAccountDatabase(String),
    /// homekey's schema, but not the version this homekey reads and writes.
    #[error("{0}")]
    SchemaNotCurrent(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The change's audit record could not be written, so the change was not made either.
    #[error("the change was not made: its audit record could not be written: {0}")]
    AuditNotWritten(sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("migrating the database failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
            ref db if is_transient_database_error(db) => StoreError::Unavailable(err.to_string()),
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// The error of a failed audit insert: [`StoreError::AuditNotWritten`], unless the
    /// database is away for a while ([`StoreError::Unavailable`], which callers may retry).
    fn audit_not_written(err: sqlx::Error) -> StoreError {
        match StoreError::from(err) {
            StoreError::Database(err) => StoreError::AuditNotWritten(err),
            other => other,
        }
    }
}

/// Whether the database refused for a while rather than for good: PostgreSQL shutting down,
/// starting up, out of connections or losing the connection (SQLSTATE class 08, 57P01–57P03,
/// 53300), or SQLite still locked by another writer once `busy_timeout` has run out
/// (`SQLITE_BUSY`, `SQLITE_LOCKED`). Nothing was changed: the client may try again.
fn is_transient_database_error(err: &sqlx::Error) -> bool {
    let Some(db) = err.as_database_error() else {
        return false;
    };
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let code = pg.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // The extended result code; its low byte is the primary one.
        let primary = db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .map(|code| code & 0xff);
        return matches!(primary, Some(5 | 6));
    }
    false
}

impl Store {
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// Which database engine this is, for messages.
    pub fn engine(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// Waits for running operations and closes every connection.
    pub async fn close(&self) {
        if let Some(reads) = &self.sqlite_reads {
            reads.close();
        }
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Starting a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a transaction that reads first and upgrades later fails with
/// `SQLITE_BUSY` when another writer got there in between, instead of waiting its turn.
trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

impl StoreError {
    /// Whether the database refused a duplicate in a unique column (someone else wrote the
    /// same row meanwhile).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StoreError::Database(err) if is_unique_violation(err))
    }
}

/// Whether an error is the database refusing a duplicate in a unique column.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}
