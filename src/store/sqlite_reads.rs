//! Reads on SQLite without sqlx's hand-off of every row between threads: the access-token
//! lookup, on the calling thread, and the migrations' batches of accounts
//! ([`SqliteReads::account_batch`]), on a blocking thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and passes every query and every
//! row across threads: for `GET /account/whoami` that hand-off (three context switches a
//! request) cost more than the rest of the request together (bench/README.md has the
//! profile). The lookup of a token is one read by a unique index, a few microseconds, so it
//! runs right where it is asked for, on a small set of connections of its own with the
//! statement prepared once per connection. It reads the database at every request, as before:
//! nothing is cached, so a change made in the database by hand counts at once.
//!
//! The calling thread is an async worker, which must never wait long: in WAL mode a reader
//! does not wait for a writer, but it does wait while another process recovers the WAL after
//! a crash (or holds SQLite's locks by hand). So the lookup here waits at most
//! [`LOOKUP_BUSY_TIMEOUT`]; if SQLite is still busy, the same query goes to sqlx's pool, whose
//! connections wait on their own threads, for at most [`POOL_FALLBACK_WAIT`]. A database still
//! locked then is [`StoreError::Unavailable`] (503 with `Retry-After`), as sqlx's own
//! `SQLITE_BUSY` is.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::oauth_sessions::FIND_OAUTH_SESSION;
use super::sessions::SessionRow;
use super::synapse_migration::{
    ACCESS_TOKEN_BATCH, AccountBatch, DEVICE_BATCH, MigratedAccessToken, MigratedDevice,
    MigratedRefreshToken, MigratedThreepid, MigratedUser, REFRESH_TOKEN_BATCH, THREEPID_BATCH,
    THREEPIDS_GIVEN_BATCH, USER_BATCH,
};
use super::{OAuthSession, Session, StoreError};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

/// Idle connections kept; more are opened when requests overlap, and closed after.
const IDLE_CONNECTIONS: usize = 8;

/// How long a lookup on the calling thread waits for a busy database: long enough for a
/// lock that is about to go, short enough not to stall the other requests of the worker.
pub(super) const LOOKUP_BUSY_TIMEOUT: Duration = Duration::from_millis(20);

/// How long a lookup that found SQLite busy waits for sqlx's pool before answering that the
/// database is unavailable.
pub(super) const POOL_FALLBACK_WAIT: Duration = Duration::from_millis(250);

pub(super) struct SqliteReads {
    path: PathBuf,
    /// The pool the lookup falls back to when SQLite is busy.
    pool: sqlx::SqlitePool,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReads {
    pub(super) fn new(path: PathBuf, pool: sqlx::SqlitePool) -> SqliteReads {
        SqliteReads {
            path,
            pool,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Closes the idle connections (a read in flight closes its own when done).
    pub(super) fn close(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(LOOKUP_BUSY_TIMEOUT)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }

    /// Runs `read` on an idle connection (or a new one), and keeps the connection for the
    /// next read unless it failed.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection);
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(connection);
            }
        }
        result
    }

    /// [`super::Store::find_session`] on SQLite.
    pub(super) async fn find_session(
        &self,
        sql: &'static str,
        access_token: &str,
    ) -> Result<Option<Session>, StoreError> {
        let here = self.with_connection(|connection| {
            connection
                .prepare_cached(sql)?
                .query_row([access_token], SessionRow::from_sqlite_row)
                .optional()
        });
        match here {
            Ok(row) => Ok(row.map(Session::from)),
            Err(err) if is_busy(&err) => {
                tracing::debug!(error = %err, "token lookup: SQLite busy, asking the pool");
                self.find_session_on_pool(sql, access_token).await
            }
            Err(err) => Err(store_error(err)),
        }
    }

    /// The lookup through sqlx's pool, waiting at most [`POOL_FALLBACK_WAIT`].
    async fn find_session_on_pool(
        &self,
        sql: &'static str,
        access_token: &str,
    ) -> Result<Option<Session>, StoreError> {
        let query = sqlx::query_as::<_, SessionRow>(sql)
            .bind(access_token)
            .fetch_optional(&self.pool);
        match tokio::time::timeout(POOL_FALLBACK_WAIT, query).await {
            Ok(row) => Ok(row?.map(Session::from)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "SQLite stayed busy for {} ms (token lookup)",
                (LOOKUP_BUSY_TIMEOUT + POOL_FALLBACK_WAIT).as_millis()
            ))),
        }
    }

    /// [`super::Store::oauth_session_of`] on SQLite, as [`SqliteReads::find_session`] reads.
    pub(super) async fn oauth_session_of(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<OAuthSession>, StoreError> {
        let here = self.with_connection(|connection| {
            connection
                .prepare_cached(FIND_OAUTH_SESSION)?
                .query_row([user_id, device_id], OAuthSession::from_sqlite_row)
                .optional()
        });
        match here {
            Ok(row) => Ok(row),
            Err(err) if is_busy(&err) => {
                tracing::debug!(error = %err, "OAuth session lookup: SQLite busy, asking the pool");
                let query = sqlx::query_as::<_, OAuthSession>(FIND_OAUTH_SESSION)
                    .bind(user_id)
                    .bind(device_id)
                    .fetch_optional(&self.pool);
                match tokio::time::timeout(POOL_FALLBACK_WAIT, query).await {
                    Ok(row) => Ok(row?),
                    Err(_) => Err(StoreError::Unavailable(format!(
                        "SQLite stayed busy for {} ms (OAuth session lookup)",
                        (LOOKUP_BUSY_TIMEOUT + POOL_FALLBACK_WAIT).as_millis()
                    ))),
                }
            }
            Err(err) => Err(store_error(err)),
        }
    }
}

impl SqliteReads {
    /// [`super::Store::read_account_batch`] on SQLite: half a million rows of a migration
    /// went through sqlx's channel one by one, which took longer than SQLite's own work
    /// (bench/README.md, the migrate row). On a connection of its own, in one snapshot, on
    /// the blocking thread it is called on.
    pub(super) fn account_batch(
        &self,
        after: &str,
        limit: i64,
        homekey_database: bool,
    ) -> Result<AccountBatch, StoreError> {
        let read = || -> rusqlite::Result<AccountBatch> {
            let connection = self.open()?;
            connection.busy_timeout(Duration::from_secs(5))?;
            let snapshot = connection.unchecked_transaction()?;
            let users: Vec<MigratedUser> = snapshot
                .prepare(USER_BATCH)?
                .query_map(rusqlite::params![after, limit], |row| {
                    Ok(MigratedUser {
                        name: row.get(0)?,
                        password_hash: row.get(1)?,
                        creation_ts: row.get(2)?,
                        admin: row.get(3)?,
                        upgrade_ts: row.get(4)?,
                        is_guest: row.get(5)?,
                        appservice_id: row.get(6)?,
                        consent_version: row.get(7)?,
                        consent_server_notice_sent: row.get(8)?,
                        user_type: row.get(9)?,
                        deactivated: row.get(10)?,
                        shadow_banned: row.get(11)?,
                        consent_ts: row.get(12)?,
                        approved: row.get(13)?,
                        locked: row.get(14)?,
                        suspended: row.get(15)?,
                        erased: row.get(16)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let Some(last) = users.last().map(|u| u.name.clone()) else {
                return Ok(AccountBatch::default());
            };
            let range = rusqlite::params![after, last];
            let devices = snapshot
                .prepare(DEVICE_BATCH)?
                .query_map(range, |row| {
                    Ok(MigratedDevice {
                        user_id: row.get(0)?,
                        device_id: row.get(1)?,
                        display_name: row.get(2)?,
                        last_seen: row.get(3)?,
                        ip: row.get(4)?,
                        user_agent: row.get(5)?,
                        hidden: row.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let access_tokens = snapshot
                .prepare(ACCESS_TOKEN_BATCH)?
                .query_map(range, |row| {
                    Ok(MigratedAccessToken {
                        id: row.get(0)?,
                        user_id: row.get(1)?,
                        device_id: row.get(2)?,
                        token: row.get(3)?,
                        valid_until_ms: row.get(4)?,
                        puppets_user_id: row.get(5)?,
                        last_validated: row.get(6)?,
                        refresh_token_id: row.get(7)?,
                        used: row.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let refresh_tokens = snapshot
                .prepare(REFRESH_TOKEN_BATCH)?
                .query_map(range, |row| {
                    Ok(MigratedRefreshToken {
                        id: row.get(0)?,
                        user_id: row.get(1)?,
                        device_id: row.get(2)?,
                        token: row.get(3)?,
                        next_token_id: row.get(4)?,
                        expiry_ts: row.get(5)?,
                        ultimate_session_expiry_ts: row.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let threepids = snapshot
                .prepare(THREEPID_BATCH)?
                .query_map(range, |row| {
                    Ok(MigratedThreepid {
                        user_id: row.get(0)?,
                        medium: row.get(1)?,
                        address: row.get(2)?,
                        validated_at: row.get(3)?,
                        added_at: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let threepids_given = if homekey_database {
                snapshot
                    .prepare(THREEPIDS_GIVEN_BATCH)?
                    .query_map(range, |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            } else {
                Default::default()
            };
            snapshot.commit()?;
            Ok(AccountBatch {
                users,
                devices,
                access_tokens,
                refresh_tokens,
                threepids,
                threepids_given,
            })
        };
        read().map_err(store_error)
    }
}

/// Whether SQLite refused for a while: another connection holds a lock it needs
/// (`SQLITE_BUSY`, `SQLITE_LOCKED`, with any extended code).
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A rusqlite error as sqlx's would be ([`StoreError`]'s `From<sqlx::Error>`): a database
/// that is locked or cannot be opened is unavailable for a while (503); anything else is an
/// error of the database (500).
fn store_error(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen) => {
            StoreError::Unavailable(format!("SQLite: {err}"))
        }
        _ => StoreError::Sqlite(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_are_unavailable_as_sqlx_maps_them() {
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_RECOVERY, SQLITE_LOCKED_SHAREDCACHE,
        // SQLITE_CANTOPEN.
        for code in [5, 6, 5 | (1 << 8), 6 | (1 << 8), 14] {
            assert!(
                matches!(store_error(sqlite_error(code)), StoreError::Unavailable(_)),
                "{code}"
            );
        }
        for code in [5, 6, 5 | (1 << 8)] {
            assert!(is_busy(&sqlite_error(code)), "{code}");
        }
        // SQLITE_CORRUPT, SQLITE_ERROR: a fault, not a wait.
        for code in [11, 1] {
            assert!(!is_busy(&sqlite_error(code)));
            assert!(matches!(
                store_error(sqlite_error(code)),
                StoreError::Sqlite(_)
            ));
        }
    }
}
