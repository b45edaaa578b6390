//! Devices and access tokens: logging in, finding who a token belongs to, logging out.

use secrecy::{ExposeSecret, SecretString};

use super::accounts::fetch_user;
use super::audit::commit_audited;
use super::{
    BeginWrite, Device, Flavour, Logout, NewAuditRecord, NewSession, Session, Store, StoreError,
    TokenUser, lock_user, with_pool,
};

/// Who a token belongs to: the columns of [`SessionRow`], `$1` the token. A puppet token
/// (`puppets_user_id`, an admin's "login as user") acts for the user it puppets.
pub(super) const FIND_SESSION: &str = "SELECT t.id, t.device_id, t.valid_until_ms, u.name, \
     u.admin, u.is_guest, u.deactivated, u.locked, \
     (u.password_hash IS NOT NULL AND u.password_hash <> '') AS has_password \
     FROM access_tokens t JOIN users u ON u.name = COALESCE(t.puppets_user_id, t.user_id) \
     WHERE t.token = $1";

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
}

impl SessionRow {
    /// The same row read by rusqlite ([`super::sqlite_reads`]), each column by its name, as
    /// the `FromRow` derive reads it: the two cannot drift apart.
    pub(super) fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
        Ok(SessionRow {
            id: row.get("id")?,
            device_id: row.get("device_id")?,
            valid_until_ms: row.get("valid_until_ms")?,
            name: row.get("name")?,
            admin: row.get("admin")?,
            is_guest: row.get("is_guest")?,
            deactivated: row.get("deactivated")?,
            locked: row.get("locked")?,
            has_password: row.get("has_password")?,
        })
    }
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Session {
        Session {
            token_id: row.id,
            device_id: row.device_id,
            valid_until_ms: row.valid_until_ms,
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

    /// The device and token of [`Store::create_session`] and
    /// [`Store::create_session_checked`], in one transaction with `audit`.
    async fn insert_session(
        &self,
        new: &NewSession,
        verified_hash: Option<&SecretString>,
        audit: Option<&NewAuditRecord>,
    ) -> Result<Option<i64>, StoreError> {
        if self.flavour == Flavour::Synapse {
            // Synapse hands out access_tokens.id from a counter it reads at start-up: a row
            // written behind its back can collide with the next one it writes.
            return Err(StoreError::RefusedOnSynapse(
                "homekey does not mint access tokens in it; use the Admin API's login-as-user",
            ));
        }
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
            sqlx::query(
                "INSERT INTO devices (user_id, device_id, display_name, last_seen, hidden) \
                 VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT (user_id, device_id) DO NOTHING",
            )
            .bind(&new.user_id)
            .bind(&new.device_id)
            .bind(new.device_display_name.as_deref())
            .bind(new.now_ms)
            .execute(&mut *tx)
            .await?;
            let token_id: i64 = sqlx::query_scalar(
                "INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, last_validated) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&new.user_id)
            .bind(&new.device_id)
            .bind(new.access_token.expose_secret())
            .bind(new.valid_until_ms)
            .bind(new.now_ms)
            .fetch_one(&mut *tx)
            .await?;
            commit_audited!(tx, self, audit);
            Ok(Some(token_id))
        })
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
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "homekey does not mint access tokens in it; use the Admin API's login-as-user",
            ));
        }
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
        if let Some(reads) = &self.sqlite_reads {
            return reads.find_session(access_token).await;
        }
        with_pool!(self, |pool| {
            let row: Option<SessionRow> = sqlx::query_as(FIND_SESSION)
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
                removed += delete_sessions!(&mut tx, user_id, &device);
            }
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
            let removed = delete_sessions!(&mut tx, user_id, logout);
            commit_audited!(tx, self, audit);
            Ok(removed)
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

/// Deletes the devices, access tokens and refresh tokens of `user_id` that `logout` names,
/// inside the caller's transaction; evaluates to how many access tokens were removed. (A
/// macro for the same reason as `fetch_user!`.)
macro_rules! delete_sessions {
    ($tx:expr, $user_id:expr, $logout:expr) => {{
        let tx = $tx;
        let user_id: &str = $user_id;
        // `$2` limits the deletion to one device, `$3` spares one; '' means no limit / spare
        // nothing (device IDs are never empty).
        let limits = match $logout {
            $crate::store::Logout::Keep => None,
            $crate::store::Logout::AllDevices => Some(("", "")),
            $crate::store::Logout::AllDevicesExcept(device_id) => Some(("", device_id.as_str())),
            $crate::store::Logout::Device(device_id) => Some((device_id.as_str(), "")),
        };
        let mut tokens = 0;
        if let Some((only, spare)) = limits {
            // One at a time with the user's logins (see `lock_user!`).
            $crate::store::lock_user!(&mut *tx, user_id);
            let device_condition = "($2 = '' OR device_id = $2) AND ($3 = '' OR device_id <> $3)";
            // Access tokens first: they reference refresh tokens. A token without a device
            // goes with "all devices" and "all but one": it belongs to no device that is kept.
            tokens = sqlx::query(&format!(
                "DELETE FROM access_tokens WHERE user_id = $1 AND ({device_condition} \
                 OR (device_id IS NULL AND $2 = ''))"
            ))
            .bind(user_id)
            .bind(only)
            .bind(spare)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            for table in ["refresh_tokens", "devices"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE user_id = $1 AND {device_condition}"
                ))
                .bind(user_id)
                .bind(only)
                .bind(spare)
                .execute(&mut **tx)
                .await?;
            }
        }
        tokens
    }};
}
pub(super) use delete_sessions;
