//! The sessions of the Matrix OAuth 2.0 API and their authorization codes
//! (`homekey_oauth_sessions`, `homekey_oauth_codes`, migration 0014).
//!
//! An OAuth session is a device of the user held by a client, with the scope it was granted;
//! its tokens are ordinary `access_tokens` and `refresh_tokens` rows kept as digests
//! ([`super::token_forms`]), so logging out, refreshing, locking and deactivating treat
//! them as they treat every other session. A device is held by one session at a time: a
//! grant on a device ends the device's older tokens (the device and its keys stay), a legacy
//! login on it ends the OAuth session (`insert_session_rows!`).

use super::audit::commit_audited;
use super::transaction::{delete_sessions, lock_user};
use super::{
    BeginWrite, Logout, NewAuditRecord, NewRefreshToken, NewSession, Store, StoreError, with_pool,
};

/// An authorization code to keep, by its digest.
pub struct NewOAuthCode<'a> {
    pub code_digest: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub user_id: &'a str,
    /// The scope granted, as the token answer will say it.
    pub scope: &'a str,
    pub expires_ms: i64,
    pub now_ms: i64,
}

/// A kept authorization code, as the token endpoint checks it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub user_id: String,
    pub scope: String,
}

/// A session to begin: its device, access token and refresh token (the tokens as digests).
pub struct NewOAuthSession {
    pub client_id: String,
    pub scope: String,
    pub access: NewSession,
    pub refresh: NewRefreshToken,
}

/// What exchanging a code came to.
pub enum CodeExchange<E> {
    /// The session began: its ID and its access token's row ID.
    Began { session_id: i64, token_id: i64 },
    /// The code was refused by the caller's check (spent all the same).
    Refused(E),
    /// The code had been exchanged before: the session it began, if it was still there, is
    /// ended (its device named).
    Replayed {
        user_id: String,
        ended_device: Option<String>,
    },
    /// No such code, or it expired.
    Unknown,
    /// The account cannot sign in now (deactivated, locked, gone).
    AccountCannot,
}

/// An OAuth session as found.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OAuthSession {
    pub id: i64,
    pub user_id: String,
    pub device_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_ms: i64,
}

/// Begins an OAuth session inside the caller's transaction, with the user's row locked and
/// able to sign in: the device's older tokens and session end, the device is made if the
/// user does not have it, and the session, its refresh token and its access token are
/// written. Evaluates to `(session ID, access token row ID)`.
macro_rules! begin_oauth_session {
    ($tx:expr, $new:expr) => {{
        let tx = $tx;
        let new: &$crate::store::NewOAuthSession = $new;
        let (user_id, device_id) = (&new.access.user_id, &new.access.device_id);
        for sql in [
            "DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2",
            "DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2",
            "DELETE FROM homekey_oauth_sessions WHERE user_id = $1 AND device_id = $2",
        ] {
            sqlx::query(sql)
                .bind(user_id)
                .bind(device_id)
                .execute(&mut **tx)
                .await?;
        }
        let token_id = $crate::store::sessions::insert_session_rows!(&mut *tx, &new.access);
        let refresh_id = $crate::store::sessions::insert_refresh_token!(
            &mut *tx,
            user_id,
            device_id,
            &new.refresh
        );
        sqlx::query("UPDATE access_tokens SET refresh_token_id = $2 WHERE id = $1")
            .bind(token_id)
            .bind(refresh_id)
            .execute(&mut **tx)
            .await?;
        let session_id: i64 = sqlx::query_scalar(
            "INSERT INTO homekey_oauth_sessions \
             (user_id, device_id, client_id, scope, created_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user_id)
        .bind(device_id)
        .bind(&new.client_id)
        .bind(&new.scope)
        .bind(new.access.now_ms)
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE homekey_oauth_clients SET first_session_ms = $2 \
             WHERE client_id = $1 AND first_session_ms IS NULL",
        )
        .bind(&new.client_id)
        .bind(new.access.now_ms)
        .execute(&mut **tx)
        .await?;
        (session_id, token_id)
    }};
}

/// Whether the user can begin a session: exists, not deactivated, not locked (the user's
/// row locked first, as every change of sessions does).
macro_rules! can_sign_in {
    ($tx:expr, $user_id:expr) => {{
        let tx = $tx;
        let user_id: &str = $user_id;
        if lock_user!(&mut *tx, user_id).is_none() {
            false
        } else {
            let flags: (i16, Option<bool>) =
                sqlx::query_as("SELECT deactivated, locked FROM users WHERE name = $1")
                    .bind(user_id)
                    .fetch_one(&mut **tx)
                    .await?;
            flags.0 == 0 && !flags.1.unwrap_or(false)
        }
    }};
}

impl Store {
    /// Keeps a new authorization code with the record of the user's grant (and forgets the
    /// codes that expired).
    pub async fn keep_oauth_code(
        &self,
        code: &NewOAuthCode<'_>,
        audit: &NewAuditRecord,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM homekey_oauth_codes WHERE expires_ms < $1")
                .bind(code.now_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO homekey_oauth_codes (code_digest, client_id, redirect_uri, \
                 code_challenge, user_id, scope, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(code.code_digest)
            .bind(code.client_id)
            .bind(code.redirect_uri)
            .bind(code.code_challenge)
            .bind(code.user_id)
            .bind(code.scope)
            .bind(code.expires_ms)
            .execute(&mut *tx)
            .await?;
            commit_audited!(tx, self, Some(audit));
            Ok(())
        })
    }

    /// Exchanges the code with this digest, in one transaction: the code is spent, `check`
    /// decides on the kept code (the client, the redirect URI, PKCE) and gives the session to
    /// begin, and the session begins. Two exchanges of one code run one after the other: the
    /// second finds it spent, and ends the session the first began.
    pub async fn exchange_oauth_code<E>(
        &self,
        code_digest: &str,
        now_ms: i64,
        check: impl FnOnce(&OAuthCode) -> Result<NewOAuthSession, E>,
    ) -> Result<CodeExchange<E>, StoreError> {
        self.refuse_minting_on_synapse()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // Spends the code, or waits for whoever is spending it (PostgreSQL's row lock).
            let fresh: Option<OAuthCode> = sqlx::query_as(
                "UPDATE homekey_oauth_codes SET exchanged = TRUE \
                 WHERE code_digest = $1 AND exchanged = FALSE AND expires_ms >= $2 \
                 RETURNING client_id, redirect_uri, code_challenge, user_id, scope",
            )
            .bind(code_digest)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(code) = fresh else {
                let spent: Option<(String, Option<i64>)> = sqlx::query_as(
                    "SELECT user_id, exchanged_session_id FROM homekey_oauth_codes \
                     WHERE code_digest = $1 AND exchanged = TRUE",
                )
                .bind(code_digest)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((user_id, session_id)) = spent else {
                    return Ok(CodeExchange::Unknown);
                };
                let mut ended_device = None;
                if let Some(session_id) = session_id {
                    let device: Option<String> = sqlx::query_scalar(
                        "SELECT device_id FROM homekey_oauth_sessions WHERE id = $1",
                    )
                    .bind(session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(device) = device {
                        let logout = Logout::Device(device.clone());
                        delete_sessions!(&mut tx, self, &user_id, &logout);
                        super::synapse_queue::owe_synapse!(&mut tx, self, &user_id);
                        ended_device = Some(device);
                    }
                }
                tx.commit().await?;
                return Ok(CodeExchange::Replayed {
                    user_id,
                    ended_device,
                });
            };
            let new = match check(&code) {
                Ok(new) => new,
                Err(refusal) => {
                    tx.commit().await?;
                    return Ok(CodeExchange::Refused(refusal));
                }
            };
            if !can_sign_in!(&mut tx, &code.user_id) {
                tx.commit().await?;
                return Ok(CodeExchange::AccountCannot);
            }
            let (session_id, token_id) = begin_oauth_session!(&mut tx, &new);
            sqlx::query(
                "UPDATE homekey_oauth_codes SET exchanged_session_id = $2 WHERE code_digest = $1",
            )
            .bind(code_digest)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(CodeExchange::Began {
                session_id,
                token_id,
            })
        })
    }

    /// The OAuth session holding `user_id`'s device, if one does.
    pub async fn oauth_session_of(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<OAuthSession>, StoreError> {
        if self.flavour == super::Flavour::Synapse {
            return Ok(None);
        }
        // Asked at every introspection of an OAuth token: on SQLite, where the token itself
        // was looked up (`sqlite_reads`).
        if let Some(reads) = &self.sqlite_reads {
            return reads.oauth_session_of(user_id, device_id).await;
        }
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(FIND_OAUTH_SESSION)
                .bind(user_id)
                .bind(device_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Whether `user_id` can sign in now: exists, neither deactivated nor locked (read
    /// alone: an account's full row sums up its devices).
    pub async fn can_sign_in(&self, user_id: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let flags: Option<(i16, Option<bool>)> =
                sqlx::query_as("SELECT deactivated, locked FROM users WHERE name = $1")
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?;
            Ok(flags
                .is_some_and(|(deactivated, locked)| deactivated == 0 && !locked.unwrap_or(false)))
        })
    }

    /// Every OAuth session of `user_id`, by device ID.
    pub async fn oauth_sessions_of(&self, user_id: &str) -> Result<Vec<OAuthSession>, StoreError> {
        // A Synapse database has no OAuth session of homekey's.
        if self.flavour == super::Flavour::Synapse {
            return Ok(Vec::new());
        }
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, user_id, device_id, client_id, scope, created_ms \
                 FROM homekey_oauth_sessions WHERE user_id = $1 ORDER BY device_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }
}

/// A device authorization request to keep (RFC 8628 §3.2).
pub struct NewDeviceGrant<'a> {
    pub device_code_digest: &'a str,
    pub user_code: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub requested_from: &'a str,
    pub now_ms: i64,
    pub expires_ms: i64,
    pub interval_ms: i64,
}

/// A device authorization request, as its approval page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceGrant {
    pub user_code: String,
    pub client_id: String,
    /// The scope asked for.
    pub scope: String,
    pub requested_ms: i64,
    pub requested_from: String,
    pub expires_ms: i64,
}

/// A user's answer on the approval page.
pub enum DeviceDecision<'a> {
    Allowed { user_id: &'a str, scope: &'a str },
    Denied { user_id: &'a str },
}

/// What a device's poll of the token endpoint came to (RFC 8628 §3.5).
pub enum DevicePoll {
    /// No such device code, another client's, or tokens already handed out.
    Unknown,
    /// Not answered yet.
    Pending,
    /// Polled sooner than its interval: the interval grows.
    SlowDown,
    Expired,
    Denied,
    /// The user allowed it, but the account cannot sign in now.
    AccountCannot,
    /// The session began: its access token's row ID.
    Began {
        token_id: i64,
    },
}

/// The OAuth session holding a device: the columns of [`OAuthSession`], in order; `$1` the
/// user, `$2` the device.
pub(super) const FIND_OAUTH_SESSION: &str = "SELECT id, user_id, device_id, client_id, scope, \
     created_ms FROM homekey_oauth_sessions WHERE user_id = $1 AND device_id = $2";

impl OAuthSession {
    /// The same row read by rusqlite ([`super::sqlite_reads`]), each column by its place.
    pub(super) fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OAuthSession> {
        Ok(OAuthSession {
            id: row.get(0)?,
            user_id: row.get(1)?,
            device_id: row.get(2)?,
            client_id: row.get(3)?,
            scope: row.get(4)?,
            created_ms: row.get(5)?,
        })
    }
}

/// The columns of [`DeviceGrant`].
const DEVICE_GRANT: &str = "SELECT user_code, client_id, scope, requested_ms, requested_from, \
     expires_ms FROM homekey_oauth_device_grants";

impl Store {
    /// Keeps a device authorization request (and forgets those that expired). `false`: the
    /// user code is taken (the caller draws another).
    pub async fn keep_device_grant(&self, grant: &NewDeviceGrant<'_>) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM homekey_oauth_device_grants WHERE expires_ms < $1")
                .bind(grant.now_ms)
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO homekey_oauth_device_grants (device_code_digest, user_code, \
                 client_id, scope, requested_ms, requested_from, expires_ms, interval_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(grant.device_code_digest)
            .bind(grant.user_code)
            .bind(grant.client_id)
            .bind(grant.scope)
            .bind(grant.now_ms)
            .bind(grant.requested_from)
            .bind(grant.expires_ms)
            .bind(grant.interval_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(inserted == 1)
        })
    }

    /// The request with this user code, if it still waits for an answer.
    pub async fn pending_device_grant(
        &self,
        user_code: &str,
        now_ms: i64,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(&format!(
                "{DEVICE_GRANT} WHERE user_code = $1 AND decision IS NULL AND expires_ms >= $2"
            ))
            .bind(user_code)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Records the user's answer to a request still waiting for one, with its audit record.
    /// `false`: it no longer waits (answered meanwhile, or expired).
    pub async fn decide_device_grant(
        &self,
        user_code: &str,
        now_ms: i64,
        decision: &DeviceDecision<'_>,
        audit: &NewAuditRecord,
    ) -> Result<bool, StoreError> {
        let (decision, user_id, scope) = match decision {
            DeviceDecision::Allowed { user_id, scope } => ("allowed", *user_id, Some(*scope)),
            DeviceDecision::Denied { user_id } => ("denied", *user_id, None),
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let decided = sqlx::query(
                "UPDATE homekey_oauth_device_grants \
                 SET decision = $3, user_id = $4, granted_scope = $5 \
                 WHERE user_code = $1 AND decision IS NULL AND expires_ms >= $2",
            )
            .bind(user_code)
            .bind(now_ms)
            .bind(decision)
            .bind(user_id)
            .bind(scope)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if decided == 0 {
                return Ok(false);
            }
            commit_audited!(tx, self, Some(audit));
            Ok(true)
        })
    }

    /// A device's poll with `device_code_digest`, as `client_id`, in one transaction: too
    /// soon (the interval grows by `slow_down_ms`), still waiting, refused, expired, or
    /// allowed, when `session_for` gives the session to begin (the user and the granted
    /// scope) and it begins. Tokens are handed out once.
    pub async fn poll_device_grant(
        &self,
        device_code_digest: &str,
        client_id: &str,
        now_ms: i64,
        slow_down_ms: i64,
        session_for: impl FnOnce(&str, &str) -> NewOAuthSession,
    ) -> Result<DevicePoll, StoreError> {
        self.refuse_minting_on_synapse()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            type Row = (
                String,
                i64,
                i64,
                Option<i64>,
                Option<String>,
                Option<String>,
                Option<String>,
            );
            let row: Option<Row> = sqlx::query_as(&format!(
                "SELECT client_id, expires_ms, interval_ms, last_poll_ms, decision, user_id, \
                 granted_scope FROM homekey_oauth_device_grants \
                 WHERE device_code_digest = $1{}",
                super::transaction::for_update(&tx)
            ))
            .bind(device_code_digest)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((owner, expires_ms, interval_ms, last_poll_ms, decision, user_id, scope)) =
                row
            else {
                return Ok(DevicePoll::Unknown);
            };
            if owner != client_id || decision.as_deref() == Some("exchanged") {
                return Ok(DevicePoll::Unknown);
            }
            if expires_ms < now_ms {
                return Ok(DevicePoll::Expired);
            }
            let too_soon = last_poll_ms.is_some_and(|last| now_ms - last < interval_ms);
            let interval_ms = if too_soon {
                interval_ms + slow_down_ms
            } else {
                interval_ms
            };
            sqlx::query(
                "UPDATE homekey_oauth_device_grants SET last_poll_ms = $2, interval_ms = $3 \
                 WHERE device_code_digest = $1",
            )
            .bind(device_code_digest)
            .bind(now_ms)
            .bind(interval_ms)
            .execute(&mut *tx)
            .await?;
            let poll = match (decision.as_deref(), user_id, scope) {
                _ if too_soon => DevicePoll::SlowDown,
                (None, _, _) => DevicePoll::Pending,
                (Some("allowed"), Some(user_id), Some(scope)) => {
                    if !can_sign_in!(&mut tx, &user_id) {
                        DevicePoll::AccountCannot
                    } else {
                        let new = session_for(&user_id, &scope);
                        let (_, token_id) = begin_oauth_session!(&mut tx, &new);
                        sqlx::query(
                            "UPDATE homekey_oauth_device_grants SET decision = 'exchanged' \
                             WHERE device_code_digest = $1",
                        )
                        .bind(device_code_digest)
                        .execute(&mut *tx)
                        .await?;
                        DevicePoll::Began { token_id }
                    }
                }
                _ => DevicePoll::Denied,
            };
            tx.commit().await?;
            Ok(poll)
        })
    }
}
