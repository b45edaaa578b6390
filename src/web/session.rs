//! The web pages' sessions and their CSRF tokens, kept in homekey's database
//! (`homekey_web_sessions`, migration 0008), for any page group (the account page today, an
//! admin console later).
//!
//! A browser holds an opaque random ID in the cookie [`COOKIE`] (`HttpOnly; SameSite=Strict`,
//! `Secure` unless `public_baseurl` is `http://`, `Path=/_homekey/`); the table holds only its
//! SHA-256, so a copy of the database signs no one in. A session ends after [`IDLE_MS`]
//! without a request, and [`LIFETIME_MS`] after it began whatever happens. Each session has
//! its own CSRF token, which every form carries and every POST must bring back. Signing in
//! replaces the session (a new ID and a new token), so an ID planted before sign-in is
//! worth nothing after it. Neither the ID nor the token is ever logged.
//!
//! The table is the web layer's own and touches no account: it is reached through a small
//! pool of its own, opened lazily on the same database (`Store::open` has migrated it by
//! then). On a Synapse database (no homekey schema) there is no such table and every page
//! answers that it is unavailable.

use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use subtle::ConstantTimeEq;

use crate::accounts::now_ms;
use crate::config::DatabaseConfig;

/// The cookie's name.
pub const COOKIE: &str = "homekey_session";
/// The cookie's path: every page of homekey's, none of the Matrix APIs.
pub const COOKIE_PATH: &str = "/_homekey/";
/// A session ends after 15 minutes without a request.
pub const IDLE_MS: i64 = 15 * 60 * 1000;
/// ...and 8 hours after it began, however busy.
pub const LIFETIME_MS: i64 = 8 * 60 * 60 * 1000;
/// Within this long after the password was given, ending a session asks for it no more.
pub const RECENTLY_VERIFIED_MS: i64 = 5 * 60 * 1000;

/// The sessions' table, on the server's database.
#[derive(Clone)]
pub struct SessionStore {
    pool: Pool,
    secure: bool,
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to either concrete pool (the SQL is the same).
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// One browser's session, as a request found (or began) it.
#[derive(Clone)]
pub struct Session {
    id_hash: String,
    /// Who signed in; `None` before sign-in.
    pub user_id: Option<String>,
    csrf_token: String,
    /// When the password was last given.
    pub verified_ms: Option<i64>,
    /// The `Set-Cookie` of a session begun by this request.
    pub set_cookie: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the ID's hash nor the CSRF token.
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The CSRF token to put in this session's forms.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// Whether a form brought this session's CSRF token back.
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.csrf_token.as_bytes())))
    }

    /// Whether the password was given within [`RECENTLY_VERIFIED_MS`].
    pub fn recently_verified(&self) -> bool {
        self.verified_ms
            .is_some_and(|at| now_ms() - at < RECENTLY_VERIFIED_MS)
    }
}

impl SessionStore {
    /// The store on `database`, connected at first use. `secure`: whether the cookie is
    /// `Secure` (the pages are reached over HTTPS).
    pub fn new(database: &DatabaseConfig, secure: bool) -> SessionStore {
        const TIMEOUT: Duration = Duration::from_secs(5);
        let pool = match database {
            DatabaseConfig::Sqlite { path } => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(TIMEOUT)
                    .connect_lazy_with(
                        SqliteConnectOptions::new()
                            .filename(path)
                            .busy_timeout(TIMEOUT),
                    ),
            ),
            DatabaseConfig::Postgres {
                host,
                port,
                user,
                password,
                dbname,
            } => {
                let mut options = PgConnectOptions::new();
                if let Some(host) = host {
                    options = if host.starts_with('/') {
                        options.socket(host)
                    } else {
                        options.host(host)
                    };
                }
                if let Some(port) = port {
                    options = options.port(*port);
                }
                if let Some(user) = user {
                    options = options.username(user);
                }
                if let Some(password) = password {
                    options = options.password(password);
                }
                if let Some(dbname) = dbname {
                    options = options.database(dbname);
                }
                Pool::Postgres(postgres_pool(options))
            }
            DatabaseConfig::PostgresUrl(url) => Pool::Postgres(postgres_pool(
                // `serve` has connected with this URL already.
                PgConnectOptions::from_str(url).unwrap_or_default(),
            )),
        };
        SessionStore { pool, secure }
    }

    /// The session the request's cookie names, if it is still alive (its last use is now);
    /// otherwise a new one, not signed in, whose cookie the response must set.
    pub async fn find_or_begin(&self, headers: &HeaderMap) -> Result<Session, sqlx::Error> {
        match self.find(headers).await? {
            Some(session) => Ok(session),
            None => self.begin(None).await,
        }
    }

    /// The session the request's cookie names, if it is still alive.
    pub async fn find(&self, headers: &HeaderMap) -> Result<Option<Session>, sqlx::Error> {
        let Some(id) = cookie_value(headers) else {
            return Ok(None);
        };
        let id_hash = hash_id(&id);
        let now = now_ms();
        let row: Option<(Option<String>, String, Option<i64>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE homekey_web_sessions SET last_seen_ms = $2 \
                 WHERE id_hash = $1 AND last_seen_ms > $3 AND created_ms > $4 \
                 RETURNING user_id, csrf_token, verified_ms",
            )
            .bind(&id_hash)
            .bind(now)
            .bind(now - IDLE_MS)
            .bind(now - LIFETIME_MS)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(user_id, csrf_token, verified_ms)| Session {
            id_hash,
            user_id,
            csrf_token,
            verified_ms,
            set_cookie: None,
        }))
    }

    /// A new session (signed in as `user_id`, its password given now, if given), with a new
    /// ID and CSRF token. Sessions past their time are deleted on the way.
    pub async fn begin(&self, user_id: Option<&str>) -> Result<Session, sqlx::Error> {
        let id = crate::secrets::random_alphanumeric(43);
        let id_hash = hash_id(&id);
        let csrf_token = crate::secrets::random_alphanumeric(43);
        let now = now_ms();
        let verified_ms = user_id.map(|_| now);
        with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM homekey_web_sessions WHERE last_seen_ms <= $1 OR created_ms <= $2",
            )
            .bind(now - IDLE_MS)
            .bind(now - LIFETIME_MS)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO homekey_web_sessions \
                 (id_hash, user_id, csrf_token, created_ms, last_seen_ms, verified_ms) \
                 VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind(&id_hash)
            .bind(user_id)
            .bind(&csrf_token)
            .bind(now)
            .bind(verified_ms)
            .execute(pool)
            .await?;
        });
        Ok(Session {
            id_hash,
            user_id: user_id.map(str::to_owned),
            csrf_token,
            verified_ms,
            set_cookie: Some(self.cookie(&id)),
        })
    }

    /// Ends a session (sign-out, or replaced at sign-in).
    pub async fn end(&self, session: &Session) -> Result<(), sqlx::Error> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM homekey_web_sessions WHERE id_hash = $1")
                .bind(&session.id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends every other session of the session's user (after a password change that signs
    /// the other devices out: a browser elsewhere is one of them).
    pub async fn end_others(&self, session: &Session) -> Result<(), sqlx::Error> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM homekey_web_sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind(&session.user_id)
                .bind(&session.id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Notes that the password was given again now.
    pub async fn verified_now(&self, session: &mut Session) -> Result<(), sqlx::Error> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query("UPDATE homekey_web_sessions SET verified_ms = $2 WHERE id_hash = $1")
                .bind(&session.id_hash)
                .bind(now)
                .execute(pool)
                .await?;
        });
        session.verified_ms = Some(now);
        Ok(())
    }

    /// The `Set-Cookie` of a session ID.
    fn cookie(&self, id: &str) -> String {
        format!(
            "{COOKIE}={id}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` that makes the browser forget its session.
    pub fn cleared_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

fn postgres_pool(options: PgConnectOptions) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(true)
        .connect_lazy_with(options)
}

/// The session ID in the request's cookies (the first, if sent twice), if it has the shape
/// of one.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}
