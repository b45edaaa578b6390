//! Devices and access tokens: logging in, finding who a token belongs to, logging out.

use secrecy::{ExposeSecret, SecretString};

use super::audit::commit_audited;
use super::synapse_queue::owe_synapse;
use super::token_forms;
use super::transaction::{delete_sessions, fetch_user, lock_user};
use super::{
    BeginWrite, Device, Flavour, Logout, NewAuditRecord, NewRefreshToken, NewSession, OAuthGrant,
    RefreshTokenInfo, Session, Store, StoreError, TokenUser, with_pool,
};

/// Who a legacy token belongs to: the columns of [`SessionRow`], `$1` the token. A puppet
/// token (`puppets_user_id`, an admin's "login as user") acts for the user it puppets.
pub(super) const FIND_SESSION: &str = "SELECT t.id, t.device_id, t.valid_until_ms, u.name, \
     u.admin, u.is_guest, u.deactivated, u.locked, \
     (u.password_hash IS NOT NULL AND u.password_hash <> '') AS has_password, \
     (t.refresh_token_id IS NOT NULL AND (t.used IS NULL OR t.used = FALSE)) \
     AS unused_refreshable, CAST(NULL AS TEXT) AS client_id, CAST(NULL AS TEXT) AS scope \
     FROM access_tokens t JOIN users u ON u.name = COALESCE(t.puppets_user_id, t.user_id) \
     WHERE t.token = $1";

/// The same for an OAuth token (`$1` its digest), with its session's client and scope in
/// the same read: a token whose session is gone is no one's.
pub(super) const FIND_OAUTH_SESSION_TOKEN: &str = "SELECT t.id, t.device_id, t.valid_until_ms, \
     u.name, u.admin, u.is_guest, u.deactivated, u.locked, \
     (u.password_hash IS NOT NULL AND u.password_hash <> '') AS has_password, \
     (t.refresh_token_id IS NOT NULL AND (t.used IS NULL OR t.used = FALSE)) \
     AS unused_refreshable, s.client_id, s.scope \
     FROM access_tokens t JOIN users u ON u.name = t.user_id \
     JOIN homekey_oauth_sessions s ON s.user_id = t.user_id AND s.device_id = t.device_id \
     WHERE t.token = $1";

/// A device's contact with the server: a login, a request with its token, or Synapse asking
/// about its token (beside Synapse: no address or user agent then, only the time).
#[derive(Debug, Clone)]
pub struct DeviceContact {
    pub user_id: String,
    pub device_id: String,
    pub seen_ms: i64,
    /// The client, when the request was its own.
    pub client: Option<ClientSeen>,
}

/// Where a request came from and what made it.
#[derive(Debug, Clone)]
pub struct ClientSeen {
    pub address: String,
    /// `None`: the request named none.
    pub user_agent: Option<String>,
}

/// A row of [`FIND_SESSION`], in the database's own types (Synapse keeps `admin`,
/// `is_guest` and `deactivated` as `SMALLINT` 0/1, `locked` as a `BOOLEAN` that may be NULL).
#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    pub id: i64,
    pub device_id: Option<String>,
    pub valid_until_ms: Option<i64>,
    pub name: String,
    pub admin: i16,
    pub is_guest: i16,
    pub deactivated: i16,
    pub locked: Option<bool>,
    pub has_password: bool,
    pub unused_refreshable: bool,
    /// An OAuth session's client and scope; `None` for a legacy token.
    pub client_id: Option<String>,
    pub scope: Option<String>,
}

/// [`FIND_SESSION`]'s columns, in order: the fields of [`SessionRow`].
const SESSION_COLUMNS: [&str; 12] = [
    "id",
    "device_id",
    "valid_until_ms",
    "name",
    "admin",
    "is_guest",
    "deactivated",
    "locked",
    "has_password",
    "unused_refreshable",
    "client_id",
    "scope",
];

impl SessionRow {
    /// The same row read by rusqlite ([`super::sqlite_reads`]), each column by its place.
    /// (By its name, as the `FromRow` derive reads it, rusqlite compares every column's name
    /// for each: a tenth of a whoami's instructions, bench/README.md.) The debug builds, so
    /// every test, check that the places are still [`SESSION_COLUMNS`].
    pub(super) fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
        debug_assert_eq!(row.as_ref().column_names(), SESSION_COLUMNS);
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
            client_id: row.get(10)?,
            scope: row.get(11)?,
        })
    }
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Session {
        Session {
            token_id: row.id,
            device_id: row.device_id,
            valid_until_ms: row.valid_until_ms,
            unused_refreshable: row.unused_refreshable,
            oauth: match (row.client_id, row.scope) {
                (Some(client_id), Some(scope)) => Some(OAuthGrant { client_id, scope }),
                _ => None,
            },
            user: TokenUser {
                name: row.name,
                admin: row.admin != 0,
                is_guest: row.is_guest != 0,
                deactivated: row.deactivated != 0,
                locked: row.locked.unwrap_or(false),
                has_password: row.has_password,
            },
        }
    }
}

impl Store {
    /// Records a login: the device (created if the user does not have it yet, otherwise
    /// kept as it is) and a new access token for it, with the audit record of an operator
    /// minting it. Returns the token's row ID.
    pub async fn create_session(
        &self,
        new: &NewSession,
        audit: Option<&NewAuditRecord>,
    ) -> Result<i64, StoreError> {
        self.insert_session(new, None, audit)
            .await?
            .ok_or_else(|| StoreError::UserNotFound(new.user_id.clone()))
    }

    /// [`Store::create_session`] for a user's own login (not audited): with `verified_hash`,
    /// the token is written only if the user's password hash is still that one, the one the
    /// password was checked against; otherwise nothing is written and the answer is `None`.
    /// The check and the insert are one transaction holding the user's row, so a login that
    /// checked the old password while a reset was committing never leaves a token behind the
    /// reset.
    pub async fn create_session_checked(
        &self,
        new: &NewSession,
        verified_hash: Option<&SecretString>,
    ) -> Result<Option<i64>, StoreError> {
        self.insert_session(new, verified_hash, None).await
    }

    /// [`Store::create_session_checked`] with a refresh token: the access token is tied to
    /// it (`access_tokens.refresh_token_id`), and both are written in one transaction.
    pub async fn create_refreshable_session_checked(
        &self,
        new: &NewSession,
        refresh: &NewRefreshToken,
        verified_hash: &SecretString,
    ) -> Result<Option<i64>, StoreError> {
        self.refuse_minting_on_synapse()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let current_hash = lock_user!(&mut tx, &new.user_id);
            if current_hash.flatten().as_deref() != Some(verified_hash.expose_secret()) {
                return Ok(None);
            }
            let token_id = insert_session_rows!(&mut tx, new);
            let refresh_id = insert_refresh_token!(&mut tx, &new.user_id, &new.device_id, refresh);
            sqlx::query("UPDATE access_tokens SET refresh_token_id = $2 WHERE id = $1")
                .bind(token_id)
                .bind(refresh_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(token_id))
        })
    }

    /// A refresh token, and whether it was superseded, as Synapse looks one up: its
    /// successor (if any) refreshed in turn, or the successor's access token used.
    pub async fn find_refresh_token(
        &self,
        token: &str,
    ) -> Result<Option<RefreshTokenInfo>, StoreError> {
        let Some(token) = token_forms::stored_form(token) else {
            return Ok(None);
        };
        let token = token.as_ref();
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT rt.id, rt.user_id, rt.device_id, \
                 (nrt.next_token_id IS NOT NULL OR COALESCE(at.used, FALSE)) AS superseded, \
                 rt.expiry_ts, rt.ultimate_session_expiry_ts \
                 FROM refresh_tokens rt \
                 LEFT JOIN refresh_tokens nrt ON rt.next_token_id = nrt.id \
                 LEFT JOIN access_tokens at ON at.refresh_token_id = nrt.id \
                 WHERE rt.token = $1",
            )
            .bind(token)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Replaces refresh token `old` by a new one and its access token, in one transaction,
    /// as Synapse does: `old` points to its successor (a successor it had before goes, with
    /// its access token), and its own predecessor goes (only the last two are kept, so that a
    /// client whose refresh was interrupted can use `old` again). `None` if `old` is gone
    /// (its session ended meanwhile): nothing is written then.
    pub async fn refresh_session(
        &self,
        old: &RefreshTokenInfo,
        access: &NewSession,
        refresh: &NewRefreshToken,
    ) -> Result<Option<i64>, StoreError> {
        self.refuse_minting_on_synapse()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // One at a time with the user's logouts (see `lock_user!`).
            lock_user!(&mut tx, &old.user_id);
            let previous_next: Option<Option<i64>> =
                sqlx::query_scalar("SELECT next_token_id FROM refresh_tokens WHERE id = $1")
                    .bind(old.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(previous_next) = previous_next else {
                return Ok(None);
            };
            let refresh_id = insert_refresh_token!(&mut tx, &old.user_id, &old.device_id, refresh);
            let token_id: i64 = sqlx::query_scalar(
                "INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, \
                 last_validated, refresh_token_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(&old.user_id)
            .bind(&old.device_id)
            .bind(access.access_token.expose_secret())
            .bind(access.valid_until_ms)
            .bind(access.now_ms)
            .bind(refresh_id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE refresh_tokens SET next_token_id = $2 WHERE id = $1")
                .bind(old.id)
                .bind(refresh_id)
                .execute(&mut *tx)
                .await?;
            // Access tokens first: they reference refresh tokens (and SQLite's cascade
            // needs no help then).
            let doomed = "SELECT id FROM refresh_tokens WHERE id = $1 OR next_token_id = $2";
            sqlx::query(&format!(
                "DELETE FROM access_tokens WHERE refresh_token_id IN ({doomed})"
            ))
            .bind(previous_next)
            .bind(old.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE id = $1 OR next_token_id = $2")
                .bind(previous_next)
                .bind(old.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(token_id))
        })
    }

    /// Records the first use of an access token handed out with a refresh token: from then
    /// on the refresh token it came from is spent.
    pub async fn mark_access_token_used(&self, token_id: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE access_tokens SET used = TRUE WHERE id = $1")
                .bind(token_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The device and token of [`Store::create_session`] and
    /// [`Store::create_session_checked`], in one transaction with `audit`.
    async fn insert_session(
        &self,
        new: &NewSession,
        verified_hash: Option<&SecretString>,
        audit: Option<&NewAuditRecord>,
    ) -> Result<Option<i64>, StoreError> {
        self.refuse_minting_on_synapse()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let Some(current_hash) = lock_user!(&mut tx, &new.user_id) else {
                return Err(StoreError::UserNotFound(new.user_id.clone()));
            };
            if let Some(verified) = verified_hash
                && current_hash.as_deref() != Some(verified.expose_secret())
            {
                return Ok(None);
            }
            let token_id = insert_session_rows!(&mut tx, new);
            commit_audited!(tx, self, audit);
            Ok(Some(token_id))
        })
    }

    /// Synapse hands out `access_tokens.id` from a counter it reads at start-up: a row written
    /// behind its back can collide with the next one it writes.
    pub(super) fn refuse_minting_on_synapse(&self) -> Result<(), StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "homekey does not mint access tokens in it; use the Admin API's login-as-user",
            ));
        }
        Ok(())
    }

    /// Mints a token with which `admin_id` acts as `user_id` (the Admin API's login as a
    /// user), with its audit record. As in Synapse the row is the admin's, with
    /// `puppets_user_id` naming the user, and no device is made: the user's device list does
    /// not change.
    pub async fn create_puppet_token(
        &self,
        admin_id: &str,
        user_id: &str,
        access_token: &SecretString,
        valid_until_ms: Option<i64>,
        now_ms: i64,
        audit: &NewAuditRecord,
    ) -> Result<(), StoreError> {
        self.refuse_minting_on_synapse()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, \
                 puppets_user_id, last_validated) VALUES ($1, NULL, $2, $3, $4, $5)",
            )
            .bind(admin_id)
            .bind(access_token.expose_secret())
            .bind(valid_until_ms)
            .bind(user_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            commit_audited!(tx, self, Some(audit));
            Ok(())
        })
    }

    /// Who an access token belongs to (for a puppet token, the user it acts as), or `None` for a token that does not exist. Expiry is
    /// the caller's to judge (`valid_until_ms`), with its own clock.
    pub async fn find_session(&self, access_token: &str) -> Result<Option<Session>, StoreError> {
        let Some(stored) = token_forms::stored_form(access_token) else {
            return Ok(None);
        };
        // An OAuth token's session is read with it; a Synapse database has none.
        let sql = if token_forms::is_oauth_token(access_token) {
            if self.flavour == Flavour::Synapse {
                return Ok(None);
            }
            FIND_OAUTH_SESSION_TOKEN
        } else {
            FIND_SESSION
        };
        let access_token = stored.as_ref();
        if let Some(reads) = &self.sqlite_reads {
            return reads.find_session(sql, access_token).await;
        }
        with_pool!(self, |pool| {
            let row: Option<SessionRow> = sqlx::query_as(sql)
                .bind(access_token)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(Session::from))
        })
    }

    /// A user's devices, by device ID.
    pub async fn list_devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT user_id, device_id, display_name, last_seen, ip, user_agent FROM devices \
                 WHERE user_id = $1 AND (hidden IS NULL OR hidden = FALSE) ORDER BY device_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// One device of a user.
    pub async fn get_device(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<Device>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT user_id, device_id, display_name, last_seen, ip, user_agent FROM devices \
                 WHERE user_id = $1 AND device_id = $2 AND (hidden IS NULL OR hidden = FALSE)",
            )
            .bind(user_id)
            .bind(device_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Records the devices' last contacts, in one transaction: when, and the client's address
    /// and user agent when the request was the client's. A contact older than the one
    /// recorded changes nothing.
    pub async fn record_device_contacts(
        &self,
        contacts: &[DeviceContact],
    ) -> Result<(), StoreError> {
        if contacts.is_empty() {
            return Ok(());
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for contact in contacts {
                let update = match &contact.client {
                    Some(client) => sqlx::query(
                        "UPDATE devices SET last_seen = $3, ip = $4, user_agent = $5 \
                         WHERE user_id = $1 AND device_id = $2 \
                         AND (last_seen IS NULL OR last_seen <= $3)",
                    )
                    .bind(&contact.user_id)
                    .bind(&contact.device_id)
                    .bind(contact.seen_ms)
                    .bind(&client.address)
                    .bind(client.user_agent.as_deref()),
                    None => sqlx::query(
                        "UPDATE devices SET last_seen = $3 \
                         WHERE user_id = $1 AND device_id = $2 \
                         AND (last_seen IS NULL OR last_seen <= $3)",
                    )
                    .bind(&contact.user_id)
                    .bind(&contact.device_id)
                    .bind(contact.seen_ms),
                };
                update.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Renames a device; `false` if the user has no such device.
    pub async fn rename_device(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: &str,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE devices SET display_name = $3 \
                 WHERE user_id = $1 AND device_id = $2 AND (hidden IS NULL OR hidden = FALSE)",
            )
            .bind(user_id)
            .bind(device_id)
            .bind(display_name)
            .execute(pool)
            .await?;
            Ok(updated.rows_affected() > 0)
        })
    }

    /// Deletes devices of a user with their access and refresh tokens, in one transaction
    /// with the audit record (`None` for a user deleting their own devices). IDs the user has
    /// no device for are passed over. Returns how many tokens went.
    pub async fn delete_devices(
        &self,
        user_id: &str,
        device_ids: &[String],
        audit: Option<&NewAuditRecord>,
    ) -> Result<u64, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut removed = 0;
            for device_id in device_ids {
                let device = Logout::Device(device_id.clone());
                removed += delete_sessions!(&mut tx, self, user_id, &device);
            }
            owe_synapse!(&mut tx, self, user_id);
            commit_audited!(tx, self, audit);
            Ok(removed)
        })
    }

    /// Logs a user out of devices as `logout` says, in one transaction with the audit record
    /// (`None` for a user's own logout); returns how many access tokens went.
    pub async fn logout(
        &self,
        user_id: &str,
        logout: &Logout,
        audit: Option<&NewAuditRecord>,
    ) -> Result<u64, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if fetch_user!(&mut *tx, user_id).is_none() {
                return Err(StoreError::UserNotFound(user_id.to_owned()));
            }
            let removed = delete_sessions!(&mut tx, self, user_id, logout);
            owe_synapse!(&mut tx, self, user_id);
            commit_audited!(tx, self, audit);
            Ok(removed)
        })
    }

    /// Takes back a token just handed out, with the refresh token that came with it (a
    /// login that Synapse did not take): neither can be used afterwards.
    pub async fn withdraw_access_token(&self, token_id: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let refresh: Option<Option<i64>> =
                sqlx::query_scalar("SELECT refresh_token_id FROM access_tokens WHERE id = $1")
                    .bind(token_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query("DELETE FROM access_tokens WHERE id = $1")
                .bind(token_id)
                .execute(&mut *tx)
                .await?;
            if let Some(refresh_id) = refresh.flatten() {
                sqlx::query("DELETE FROM refresh_tokens WHERE id = $1")
                    .bind(refresh_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes one access token (a client's `/logout` of its own session, without the device).
    pub async fn delete_access_token(&self, token_id: i64) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let deleted = sqlx::query("DELETE FROM access_tokens WHERE id = $1")
                .bind(token_id)
                .execute(pool)
                .await?;
            Ok(deleted.rows_affected() > 0)
        })
    }
}

/// Writes a login's device (created if the user does not have it yet, otherwise kept as it
/// is) and its access token inside the caller's transaction; evaluates to the token's row ID.
/// An OAuth session that held the device ends: its tokens go (homekey's own database only:
/// no token is minted in Synapse's).
macro_rules! insert_session_rows {
    ($tx:expr, $new:expr) => {{
        let tx = $tx;
        let new: &$crate::store::NewSession = $new;
        let held: Option<i64> = sqlx::query_scalar(
            "DELETE FROM homekey_oauth_sessions WHERE user_id = $1 AND device_id = $2 \
             RETURNING id",
        )
        .bind(&new.user_id)
        .bind(&new.device_id)
        .fetch_optional(&mut **tx)
        .await?;
        if held.is_some() {
            for sql in [
                "DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2",
                "DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(&new.user_id)
                    .bind(&new.device_id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO devices (user_id, device_id, display_name, last_seen, hidden) \
             VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT (user_id, device_id) DO NOTHING",
        )
        .bind(&new.user_id)
        .bind(&new.device_id)
        .bind(new.device_display_name.as_deref())
        .bind(new.now_ms)
        .execute(&mut **tx)
        .await?;
        let token_id: i64 = sqlx::query_scalar(
            "INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, \
             last_validated) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&new.user_id)
        .bind(&new.device_id)
        .bind(secrecy::ExposeSecret::expose_secret(&new.access_token))
        .bind(new.valid_until_ms)
        .bind(new.now_ms)
        .fetch_one(&mut **tx)
        .await?;
        token_id
    }};
}
pub(super) use insert_session_rows;

/// Writes a refresh token of `user_id`'s device inside the caller's transaction; evaluates
/// to its row ID.
macro_rules! insert_refresh_token {
    ($tx:expr, $user_id:expr, $device_id:expr, $refresh:expr) => {{
        let tx = $tx;
        let refresh: &$crate::store::NewRefreshToken = $refresh;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO refresh_tokens (user_id, device_id, token, expiry_ts, \
             ultimate_session_expiry_ts) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind($user_id)
        .bind($device_id)
        .bind(secrecy::ExposeSecret::expose_secret(&refresh.token))
        .bind(refresh.expiry_ts)
        .bind(refresh.ultimate_session_expiry_ts)
        .fetch_one(&mut **tx)
        .await?;
        id
    }};
}
pub(super) use insert_refresh_token;
