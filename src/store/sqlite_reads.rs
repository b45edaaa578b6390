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

use super::sessions::{FIND_SESSION, SessionRow};
use super::{Session, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

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

    /// [`super::Store::find_session`] on SQLite.
    pub(super) fn find_session(&self, access_token: &str) -> Result<Option<Session>, StoreError> {
        self.with_connection(|connection| {
            connection
                .prepare_cached(FIND_SESSION)?
                .query_row([access_token], |row| {
                    Ok(SessionRow {
                        id: row.get(0)?,
                        device_id: row.get(1)?,
                        valid_until_ms: row.get(2)?,
                        name: row.get(3)?,
                        admin: row.get(4)?,
                        is_guest: row.get(5)?,
                        deactivated: row.get(6)?,
                        locked: row.get(7)?,
                        has_password: row.get(8)?,
                        unused_refreshable: row.get(9)?,
                    })
                })
                .optional()
        })
        .map(|row| row.map(Session::from))
    }
}
