//! Registration tokens (Synapse's `registration_tokens`, migration 0018 on homekey's
//! database): what an admin hands out so that someone may sign up.
//!
//! A sign-up spends a use in three moves, each one statement that checks and counts at once
//! (Synapse reads, checks, then writes, so that two sign-ups racing for a token's last use
//! both get it; here the database decides and exactly one does):
//! - [`spend_registration_token!`]: `pending + 1`, only while the token is valid;
//! - [`complete_registration_token!`]: `pending - 1, completed + 1`, once the account exists;
//! - [`release_registration_token!`]: `pending - 1`, when the sign-up is given up.
//!
//! The sign-up page holds no use between requests: [`use_registration_token_now!`] spends
//! and completes one in the statement that checks it, in the transaction making the account.
//!
//! Each is a macro that runs inside the caller's transaction (the sign-up's own), and a
//! [`Store`] method that runs it in a transaction of its own.

use super::audit::commit_audited;
use super::{BeginWrite, NewAuditRecord, Store, StoreError, with_pool};

/// A token as Synapse's Admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegistrationToken {
    pub token: String,
    /// How many sign-ups it may admit; `None`: no limit.
    pub uses_allowed: Option<i32>,
    /// Sign-ups that spent a use and are not finished.
    pub pending: i32,
    /// Sign-ups that made an account with it.
    pub completed: i32,
    /// When it stops being valid (ms since the epoch); `None`: never.
    pub expiry_time: Option<i64>,
}

impl RegistrationToken {
    /// Whether a sign-up may spend a use of it at `now_ms`: not expired, and a use left.
    /// `uses_allowed: 0` admits nobody, as Synapse's listing counts it (its token check reads
    /// 0 as "no limit", a falsy test that homekey does not copy).
    pub fn is_valid(&self, now_ms: i64) -> bool {
        let unexpired = self.expiry_time.is_none_or(|expiry| expiry > now_ms);
        let use_left = self.uses_allowed.is_none_or(|allowed| {
            i64::from(self.pending) + i64::from(self.completed) < i64::from(allowed)
        });
        unexpired && use_left
    }
}

/// What an update changes (`None`: leave it; `Some(None)`: set it to null).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrationTokenChanges {
    pub uses_allowed: Option<Option<i32>>,
    pub expiry_time: Option<Option<i64>>,
}

const COLUMNS: &str = "token, uses_allowed, pending, completed, expiry_time";

/// The condition of a token valid at the time bound as `now` (a placeholder, `$2`), in SQL:
/// the same as [`RegistrationToken::is_valid`].
pub(crate) fn valid_at(now: &str) -> String {
    format!(
        "(uses_allowed IS NULL OR pending + completed < uses_allowed) \
         AND (expiry_time IS NULL OR expiry_time > {now})"
    )
}

/// Spends a use of the token `$token` at `$now_ms` inside the caller's transaction `$tx` (a
/// `&mut Transaction`): evaluates to `true` if the token was valid and now counts one more
/// pending use, `false` if it is unknown, expired or used up (nothing changed). The check and
/// the count are one statement, so two transactions cannot both take a token's last use.
macro_rules! spend_registration_token {
    ($tx:expr, $token:expr, $now_ms:expr) => {{
        let tx = $tx;
        let token: &str = $token;
        let now_ms: i64 = $now_ms;
        let sql = format!(
            "UPDATE registration_tokens SET pending = pending + 1 WHERE token = $1 AND {}",
            $crate::store::registration_tokens::valid_at("$2")
        );
        sqlx::query(&sql)
            .bind(token)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1
    }};
}
pub(crate) use spend_registration_token;

/// Completes a pending use of `$token` inside `$tx` (the sign-up made its account):
/// `pending - 1, completed + 1`. `false` if there was no pending use (the token was deleted
/// meanwhile): nothing changed.
macro_rules! complete_registration_token {
    ($tx:expr, $token:expr) => {{
        let tx = $tx;
        let token: &str = $token;
        sqlx::query(
            "UPDATE registration_tokens SET pending = pending - 1, completed = completed + 1 \
             WHERE token = $1 AND pending > 0",
        )
        .bind(token)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1
    }};
}
pub(crate) use complete_registration_token;

/// Spends and completes a use of `$token` at `$now_ms` inside `$tx` at once (a sign-up
/// whose account is made in the same transaction, with no use held before): `completed + 1`,
/// only while the token is valid. `false` if it is unknown, expired or used up (nothing
/// changed). As [`spend_registration_token!`], the check and the count are one statement.
macro_rules! use_registration_token_now {
    ($tx:expr, $token:expr, $now_ms:expr) => {{
        let tx = $tx;
        let token: &str = $token;
        let now_ms: i64 = $now_ms;
        let sql = format!(
            "UPDATE registration_tokens SET completed = completed + 1 WHERE token = $1 AND {}",
            $crate::store::registration_tokens::valid_at("$2")
        );
        sqlx::query(&sql)
            .bind(token)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1
    }};
}
pub(crate) use use_registration_token_now;

/// Gives a pending use of `$token` back inside `$tx` (the sign-up was abandoned or its
/// session expired): `pending - 1`. `false` if there was none.
macro_rules! release_registration_token {
    ($tx:expr, $token:expr) => {{
        let tx = $tx;
        let token: &str = $token;
        sqlx::query(
            "UPDATE registration_tokens SET pending = pending - 1 WHERE token = $1 AND pending > 0",
        )
        .bind(token)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1
    }};
}
pub(crate) use release_registration_token;

impl Store {
    /// The tokens, by token: all of them (`valid: None`), only the valid ones at `now_ms`, or
    /// only the others (expired or used up), as Synapse's listing filters them.
    pub async fn registration_tokens(
        &self,
        valid: Option<bool>,
        now_ms: i64,
    ) -> Result<Vec<RegistrationToken>, StoreError> {
        let filter = match valid {
            None => String::new(),
            Some(true) => format!("WHERE {}", valid_at("$1")),
            Some(false) => format!("WHERE NOT ({})", valid_at("$1")),
        };
        let sql = format!("SELECT {COLUMNS} FROM registration_tokens {filter} ORDER BY token");
        Ok(with_pool!(self, |pool| {
            let query = sqlx::query_as(&sql);
            let query = if valid.is_some() {
                query.bind(now_ms)
            } else {
                query
            };
            query.fetch_all(pool).await?
        }))
    }

    /// One token, if it exists.
    pub async fn registration_token(
        &self,
        token: &str,
    ) -> Result<Option<RegistrationToken>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM registration_tokens WHERE token = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(token)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Whether a sign-up could spend a use of `token` at `now_ms` (unknown: no).
    pub async fn registration_token_is_valid(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .registration_token(token)
            .await?
            .is_some_and(|found| found.is_valid(now_ms)))
    }

    /// Keeps a new token with no use spent, with its audit record. `false`: a token with this
    /// text exists (nothing changed).
    pub async fn create_registration_token(
        &self,
        token: &str,
        uses_allowed: Option<i32>,
        expiry_time: Option<i64>,
        record: Option<&NewAuditRecord>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO registration_tokens \
                 (token, uses_allowed, pending, completed, expiry_time) VALUES ($1, $2, 0, 0, $3) \
                 ON CONFLICT (token) DO NOTHING",
            )
            .bind(token)
            .bind(uses_allowed)
            .bind(expiry_time)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(false);
            }
            commit_audited!(tx, self, record);
            Ok(true)
        })
    }

    /// Changes a token's limits, with the audit record; the token as it is afterwards, or
    /// `None` if there is no such token (nothing changed).
    pub async fn update_registration_token(
        &self,
        token: &str,
        changes: RegistrationTokenChanges,
        record: Option<&NewAuditRecord>,
    ) -> Result<Option<RegistrationToken>, StoreError> {
        let sql = format!(
            "UPDATE registration_tokens SET \
             uses_allowed = CASE WHEN $2 THEN $3 ELSE uses_allowed END, \
             expiry_time = CASE WHEN $4 THEN $5 ELSE expiry_time END \
             WHERE token = $1 RETURNING {COLUMNS}"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated: Option<RegistrationToken> = sqlx::query_as(&sql)
                .bind(token)
                .bind(changes.uses_allowed.is_some())
                .bind(changes.uses_allowed.flatten())
                .bind(changes.expiry_time.is_some())
                .bind(changes.expiry_time.flatten())
                .fetch_optional(&mut *tx)
                .await?;
            if updated.is_none() {
                return Ok(None);
            }
            commit_audited!(tx, self, record);
            Ok(updated)
        })
    }

    /// Deletes a token, with the audit record. `false`: there was none.
    pub async fn delete_registration_token(
        &self,
        token: &str,
        record: Option<&NewAuditRecord>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM registration_tokens WHERE token = $1")
                .bind(token)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(false);
            }
            commit_audited!(tx, self, record);
            Ok(true)
        })
    }

    /// [`spend_registration_token!`] in a transaction of its own.
    pub async fn spend_registration_token(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let spent = spend_registration_token!(&mut tx, token, now_ms);
            tx.commit().await?;
            Ok(spent)
        })
    }

    /// [`complete_registration_token!`] in a transaction of its own.
    pub async fn complete_registration_token(&self, token: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let completed = complete_registration_token!(&mut tx, token);
            tx.commit().await?;
            Ok(completed)
        })
    }

    /// [`release_registration_token!`] in a transaction of its own.
    pub async fn release_registration_token(&self, token: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let released = release_registration_token!(&mut tx, token);
            tx.commit().await?;
            Ok(released)
        })
    }
}

/// What [`Store::carry_registration_tokens`] did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokensCarried {
    /// Tokens this database did not have: written, with `pending` 0.
    pub new: u64,
    /// Tokens it had already: left as they were, or given the source's limits and count
    /// (`overwrite`).
    pub already_there: u64,
}

impl Store {
    /// Up to `limit` tokens after `after`, by token, with every column, as this database has
    /// them (homekey's or Synapse's: the table is the same). For moving them to the other.
    pub async fn registration_token_batch(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<RegistrationToken>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM registration_tokens WHERE token > $1 ORDER BY token LIMIT $2"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// How many tokens this database has.
    pub async fn count_registration_tokens(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM registration_tokens")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Writes `tokens`, read from the other database, into this one in one transaction, with
    /// the audit record (homekey's database only): each new one with its `uses_allowed`,
    /// `completed` and `expiry_time`, and `pending` 0 (the unfinished sign-ups holding its
    /// uses do not move, so nothing here would ever give those uses back). One this database
    /// has already is left as it is, or with `overwrite` given the source's `uses_allowed`,
    /// `completed` and `expiry_time`, its own `pending` kept (its own unfinished sign-ups give
    /// theirs back as they expire). With `dry_run` the same work is done and rolled back.
    pub async fn carry_registration_tokens(
        &self,
        tokens: &[RegistrationToken],
        overwrite: bool,
        dry_run: bool,
        record: Option<&NewAuditRecord>,
    ) -> Result<TokensCarried, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut carried = TokensCarried::default();
            for token in tokens {
                let inserted = sqlx::query(
                    "INSERT INTO registration_tokens \
                     (token, uses_allowed, pending, completed, expiry_time) \
                     VALUES ($1, $2, 0, $3, $4) ON CONFLICT (token) DO NOTHING",
                )
                .bind(&token.token)
                .bind(token.uses_allowed)
                .bind(token.completed)
                .bind(token.expiry_time)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    carried.new += 1;
                    continue;
                }
                carried.already_there += 1;
                if overwrite {
                    sqlx::query(
                        "UPDATE registration_tokens SET uses_allowed = $2, completed = $3, \
                         expiry_time = $4 WHERE token = $1",
                    )
                    .bind(&token.token)
                    .bind(token.uses_allowed)
                    .bind(token.completed)
                    .bind(token.expiry_time)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if dry_run {
                tx.rollback().await?;
            } else {
                commit_audited!(tx, self, record.filter(|_| carried.new > 0));
            }
            Ok(carried)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RegistrationToken;

    fn token(
        uses_allowed: Option<i32>,
        pending: i32,
        completed: i32,
        expiry: Option<i64>,
    ) -> RegistrationToken {
        RegistrationToken {
            token: "t".into(),
            uses_allowed,
            pending,
            completed,
            expiry_time: expiry,
        }
    }

    #[test]
    fn a_token_is_valid_while_unexpired_with_a_use_left() {
        assert!(token(None, 5, 9, None).is_valid(1000));
        assert!(token(Some(2), 1, 0, Some(1001)).is_valid(1000));
        assert!(!token(Some(2), 1, 1, None).is_valid(1000), "used up");
        assert!(
            !token(Some(0), 0, 0, None).is_valid(1000),
            "0 admits nobody"
        );
        assert!(
            !token(None, 0, 0, Some(1000)).is_valid(1000),
            "expired at its time"
        );
    }
}
