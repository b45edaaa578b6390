//! The access-token lookup on SQLite, on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and passes every query and every
//! row across threads: for `GET /account/whoami` that hand-off (three context switches a
//! request) cost more than the rest of the request together (bench/README.md has the
//! profile). The lookup of a token is one read by a unique index, a few microseconds, so it
//! runs right where it is asked for, on a small set of connections of its own with the
//! statement prepared once per connection. It reads the database at every request, as before:
//! nothing is cached, so a change made in the database by hand counts at once.
//!
//! In WAL mode a reader never waits for a writer; only a recovery after a crash can hold it,
//! up to the busy timeout.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use secrecy::SecretString;

use super::{Session, StoreError, User};

/// Idle connections kept; more are opened when requests overlap, and closed after.
const IDLE_CONNECTIONS: usize = 8;

pub(super) struct SqliteReads {
    path: PathBuf,
    busy_timeout: std::time::Duration,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReads {
    pub(super) fn new(path: PathBuf, busy_timeout: std::time::Duration) -> SqliteReads {
        SqliteReads {
            path,
            busy_timeout,
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
        connection.busy_timeout(self.busy_timeout)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }

    /// Runs `read` on an idle connection (or a new one), and keeps the connection for the
    /// next read unless it failed.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self
                .open()
                .map_err(|err| StoreError::Unavailable(format!("SQLite: {err}")))?,
        };
        let result = read(&connection);
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(connection);
            }
        }
        result.map_err(StoreError::Sqlite)
    }

    /// [`super::Store::find_session`] on SQLite: `sql` selects the token's columns and then
    /// the user's, in [`super::accounts::USER_COLUMNS`]' order.
    pub(super) fn find_session(
        &self,
        sql: &str,
        access_token: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.with_connection(|connection| {
            connection
                .prepare_cached(sql)?
                .query_row([access_token], |row| {
                    Ok(Session {
                        token_id: row.get(0)?,
                        device_id: row.get(1)?,
                        valid_until_ms: row.get(2)?,
                        user: User {
                            name: row.get(3)?,
                            password_hash: row.get::<_, Option<String>>(4)?.map(SecretString::from),
                            creation_ts: row.get::<_, Option<i64>>(5)?.unwrap_or(0),
                            admin: row.get::<_, i64>(6)? != 0,
                            is_guest: row.get::<_, i64>(7)? != 0,
                            deactivated: row.get::<_, i64>(8)? != 0,
                            locked: row.get::<_, Option<bool>>(9)?.unwrap_or(false),
                            shadow_banned: row.get::<_, Option<bool>>(10)?.unwrap_or(false),
                            // As in `UserRow`: a NULL `approved` is approved.
                            approved: row.get::<_, Option<bool>>(11)?.unwrap_or(true),
                            user_type: row.get(12)?,
                            appservice_id: row.get(13)?,
                            displayname: row.get(14)?,
                            avatar_url: row.get(15)?,
                        },
                    })
                })
                .optional()
        })
    }
}
