//! The web pages' sessions (`homekey_web_sessions`, migration 0008): the one part of the store
//! the web layer reaches, through [`WebSessionTable`], which writes no account. What a session
//! means (cookies, CSRF, lifetimes) is `crate::web::session`'s; this is only its SQL.

use super::{Store, with_pool};

/// The sessions' table, on the server's database, seen as one kind of session (the
/// `kind` column, migration 0022): the account page's (`account`) or the admin console's
/// (`admin`).
#[derive(Clone)]
pub struct WebSessionTable(Store, &'static str);

/// A live session's row.
pub struct WebSessionRow {
    pub user_id: Option<String>,
    pub csrf_token: String,
    pub verified_ms: Option<i64>,
}

impl Store {
    /// The web pages' sessions on this database.
    pub fn web_sessions(&self) -> WebSessionTable {
        WebSessionTable(self.clone(), "account")
    }
}

impl WebSessionTable {
    /// The same table, seen as the sessions of `kind`.
    pub fn of_kind(self, kind: &'static str) -> WebSessionTable {
        WebSessionTable(self.0, kind)
    }

    /// The session whose ID hashes to `id_hash`, if it was last seen after `idle_since` and
    /// began after `born_since`; it is seen at `now`.
    pub async fn touch(
        &self,
        id_hash: &str,
        now: i64,
        idle_since: i64,
        born_since: i64,
    ) -> Result<Option<WebSessionRow>, sqlx::Error> {
        let row: Option<(Option<String>, String, Option<i64>)> = with_pool!(self.0, |pool| {
            sqlx::query_as(
                "UPDATE homekey_web_sessions SET last_seen_ms = $2 \
                 WHERE id_hash = $1 AND last_seen_ms > $3 AND created_ms > $4 AND kind = $5 \
                 RETURNING user_id, csrf_token, verified_ms",
            )
            .bind(id_hash)
            .bind(now)
            .bind(idle_since)
            .bind(born_since)
            .bind(self.1)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(user_id, csrf_token, verified_ms)| WebSessionRow {
            user_id,
            csrf_token,
            verified_ms,
        }))
    }

    /// A new session begun at `now`; the sessions not seen since `idle_since` or begun before
    /// `born_since` are deleted on the way.
    pub async fn insert(
        &self,
        id_hash: &str,
        row: &WebSessionRow,
        now: i64,
        idle_since: i64,
        born_since: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self.0, |pool| {
            sqlx::query(
                "DELETE FROM homekey_web_sessions \
                 WHERE kind = $3 AND (last_seen_ms <= $1 OR created_ms <= $2)",
            )
            .bind(idle_since)
            .bind(born_since)
            .bind(self.1)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO homekey_web_sessions \
                 (id_hash, user_id, csrf_token, created_ms, last_seen_ms, verified_ms, kind) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6)",
            )
            .bind(id_hash)
            .bind(row.user_id.as_deref())
            .bind(&row.csrf_token)
            .bind(now)
            .bind(row.verified_ms)
            .bind(self.1)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Ends one session.
    pub async fn delete(&self, id_hash: &str) -> Result<(), sqlx::Error> {
        with_pool!(self.0, |pool| {
            sqlx::query("DELETE FROM homekey_web_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The key named `name` that every instance shares, made (from `fresh`) by the first
    /// instance that asks.
    pub async fn server_key(&self, name: &str, fresh: &str) -> Result<String, sqlx::Error> {
        let key: String = with_pool!(self.0, |pool| {
            sqlx::query(
                "INSERT INTO homekey_server_keys (name, key, created_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(fresh)
            .bind(crate::accounts::now_ms())
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT key FROM homekey_server_keys WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?
        });
        Ok(key)
    }

    /// Notes that the session's password was given again at `now`.
    pub async fn set_verified(&self, id_hash: &str, now: i64) -> Result<(), sqlx::Error> {
        with_pool!(self.0, |pool| {
            sqlx::query("UPDATE homekey_web_sessions SET verified_ms = $2 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
