//! Beside Synapse, the work homekey owes Synapse (`homekey_synapse_owed`: "bring user X in
//! line"), the per-user lease of whoever delivers it, and the mirror of what homekey has made
//! exist in Synapse (`homekey_synapse_users`, `homekey_synapse_devices`). A change that
//! Synapse must follow writes its row with [`owe_synapse!`] inside its own transaction, so the
//! work is owed exactly when the change is committed, even if the process dies right after.
//! Each `serve` process says it is alive in `homekey_synapse_instances`, so that the leases of
//! one that died are not waited for.

use super::{BeginWrite, Store, StoreError, with_pool};

/// Work owed to Synapse for one user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OwedWork {
    pub user_id: String,
    /// How many changes owed it: delivery settles the row only at the count it read.
    pub changes: i64,
    pub owed_since_ms: i64,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub alarm: bool,
}

/// What homekey last made Synapse have for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirroredUser {
    pub deactivated: bool,
    /// `None`: not known (found in Synapse rather than made by homekey).
    pub locked: Option<bool>,
}

const OWED_COLUMNS: &str =
    "user_id, changes, owed_since_ms, attempts, next_attempt_ms, last_error, alarm";

/// Records, inside the caller's write transaction of `$store`, that Synapse is owed the
/// current state of `$user_id`. Nothing when homekey serves no Synapse.
macro_rules! owe_synapse {
    ($tx:expr, $store:expr, $user_id:expr) => {{
        if $store.owes_synapse {
            let tx = $tx;
            let now = $crate::accounts::now_ms();
            sqlx::query(
                "INSERT INTO homekey_synapse_owed (user_id, changes, owed_since_ms, next_attempt_ms) \
                 VALUES ($1, 1, $2, $2) ON CONFLICT (user_id) DO UPDATE \
                 SET changes = homekey_synapse_owed.changes + 1, next_attempt_ms = $2",
            )
            .bind($user_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }};
}
pub(super) use owe_synapse;

/// The digest homekey keeps of the e-mail addresses it gave Synapse for a user
/// (`homekey_synapse_users.emails_digest`): of the sorted list, so that the order never
/// matters.
pub fn emails_digest<'a>(emails: impl IntoIterator<Item = &'a str>) -> String {
    let mut emails: Vec<&str> = emails.into_iter().collect();
    emails.sort_unstable();
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        emails.join("\n").as_bytes(),
    ))
}

impl Store {
    /// From now on, changes that Synapse must follow owe it their user's state (beside
    /// Synapse, on homekey's own database).
    pub fn owe_synapse(&mut self, on: bool) {
        self.owes_synapse = on;
    }

    /// The work owed for `user_id`, if any.
    pub async fn owed_for(&self, user_id: &str) -> Result<Option<OwedWork>, StoreError> {
        let sql = format!("SELECT {OWED_COLUMNS} FROM homekey_synapse_owed WHERE user_id = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Work due by `now_ms`, the longest waiting first, at most `limit` rows.
    pub async fn due_owed(&self, now_ms: i64, limit: i64) -> Result<Vec<OwedWork>, StoreError> {
        let sql = format!(
            "SELECT {OWED_COLUMNS} FROM homekey_synapse_owed WHERE next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms LIMIT $2"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Everything owed, the oldest first (`homekey synapse status`).
    pub async fn list_owed(&self) -> Result<Vec<OwedWork>, StoreError> {
        let sql = format!("SELECT {OWED_COLUMNS} FROM homekey_synapse_owed ORDER BY owed_since_ms");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// Removes the work owed for `user_id` if no change owed more since it was read at
    /// `changes`; `false` if one did (the row stays, due at once).
    pub async fn settle_owed(&self, user_id: &str, changes: i64) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM homekey_synapse_owed WHERE user_id = $1 AND changes = $2")
                .bind(user_id)
                .bind(changes)
                .execute(pool)
                .await?
                .rows_affected()
                > 0
        }))
    }

    /// A failed delivery: tried again at `next_attempt_ms` (unless a change makes it due
    /// sooner), with the error that an operator sees.
    pub async fn postpone_owed(
        &self,
        user_id: &str,
        next_attempt_ms: i64,
        error: &str,
        alarm: bool,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE homekey_synapse_owed SET attempts = attempts + 1, \
                 next_attempt_ms = $2, last_error = $3, alarm = $4 WHERE user_id = $1",
            )
            .bind(user_id)
            .bind(next_attempt_ms)
            .bind(error)
            .bind(alarm)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Owes Synapse `user_id`'s state, outside any change (`homekey synapse reconcile`).
    pub async fn owe_synapse_now(&self, user_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let store = Store {
                owes_synapse: true,
                ..self.clone()
            };
            owe_synapse!(&mut tx, store, user_id);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Locks an account homekey has just created whose name Synapse already had, with its
    /// audit record, owing Synapse nothing: Synapse's own user must not be changed.
    pub async fn lock_after_conflict(
        &self,
        user_id: &str,
        audit: &super::NewAuditRecord,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE users SET locked = TRUE WHERE name = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            super::audit::commit_audited!(tx, self, Some(audit));
        });
        Ok(())
    }

    /// Takes the lease on delivering for `user_id` until `until_ms`, if no one else holds a
    /// live one; `true` if taken. `process` is the `serve` process taking it (`None`: a
    /// command). A lease is dead once expired, or when it was taken by a `serve` process
    /// that is no longer its instance's (the instance restarted) or whose last heartbeat is
    /// older than `stale_before_ms` (it died).
    pub async fn take_synapse_lease(
        &self,
        user_id: &str,
        holder: &str,
        process: Option<&str>,
        now_ms: i64,
        until_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO homekey_synapse_leases (user_id, holder, process, until_ms) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id) DO UPDATE SET holder = $2, process = $3, until_ms = $4 \
                 WHERE homekey_synapse_leases.until_ms < $5 \
                 OR (homekey_synapse_leases.process IS NOT NULL AND NOT EXISTS (\
                     SELECT 1 FROM homekey_synapse_instances i \
                     WHERE i.process = homekey_synapse_leases.process AND i.heartbeat_ms >= $6))",
            )
            .bind(user_id)
            .bind(holder)
            .bind(process)
            .bind(until_ms)
            .bind(now_ms)
            .bind(stale_before_ms)
            .execute(pool)
            .await?
            .rows_affected()
                > 0
        }))
    }

    /// `process` now serves as `instance`, alive at `now_ms`: the process that served under
    /// that name before (if any, returned) is taken for dead, and its leases with it. Rows of
    /// instances silent for longer than `forget_before_ms` are removed.
    pub async fn announce_synapse_instance(
        &self,
        instance: &str,
        process: &str,
        now_ms: i64,
        forget_before_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let before: Option<String> = sqlx::query_scalar(
                "SELECT process FROM homekey_synapse_instances WHERE instance = $1",
            )
            .bind(instance)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO homekey_synapse_instances (instance, process, heartbeat_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (instance) DO UPDATE \
                 SET process = $2, heartbeat_ms = $3",
            )
            .bind(instance)
            .bind(process)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM homekey_synapse_instances WHERE heartbeat_ms < $1")
                .bind(forget_before_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            before
        }))
    }

    /// `process`, serving as `instance`, is alive at `now_ms`; `false` if another process
    /// has taken the instance's name since (a second `serve` with the same name).
    pub async fn synapse_instance_heartbeat(
        &self,
        instance: &str,
        process: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE homekey_synapse_instances SET heartbeat_ms = $3 \
                 WHERE instance = $1 AND process = $2",
            )
            .bind(instance)
            .bind(process)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
                > 0
        }))
    }

    /// Gives the lease back, if `holder` still has it.
    pub async fn release_synapse_lease(
        &self,
        user_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM homekey_synapse_leases WHERE user_id = $1 AND holder = $2")
                .bind(user_id)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// What homekey made Synapse have for `user_id`: the user (if homekey knows) and the
    /// device IDs.
    pub async fn synapse_mirror(
        &self,
        user_id: &str,
    ) -> Result<(Option<MirroredUser>, Vec<String>), StoreError> {
        with_pool!(self, |pool| {
            let user: Option<(bool, Option<bool>)> = sqlx::query_as(
                "SELECT deactivated, locked FROM homekey_synapse_users WHERE user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            let devices: Vec<String> = sqlx::query_scalar(
                "SELECT device_id FROM homekey_synapse_devices WHERE user_id = $1 ORDER BY device_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            Ok((
                user.map(|(deactivated, locked)| MirroredUser {
                    deactivated,
                    locked,
                }),
                devices,
            ))
        })
    }

    /// Synapse now has `user` for `user_id`.
    pub async fn mirror_synapse_user(
        &self,
        user_id: &str,
        user: MirroredUser,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO homekey_synapse_users (user_id, deactivated, locked) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET deactivated = $2, locked = $3",
            )
            .bind(user_id)
            .bind(user.deactivated)
            .bind(user.locked)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The digest of the e-mail addresses homekey last gave Synapse for `user_id`; `None`
    /// if it never did.
    pub async fn synapse_mirrored_emails(
        &self,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let digest: Option<Option<String>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT emails_digest FROM homekey_synapse_users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(digest.flatten())
    }

    /// Synapse now has the e-mail addresses whose digest is `digest` for `user_id` (whose
    /// mirror row exists).
    pub async fn mirror_synapse_emails(
        &self,
        user_id: &str,
        digest: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE homekey_synapse_users SET emails_digest = $2 WHERE user_id = $1")
                .bind(user_id)
                .bind(digest)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Synapse now has exactly `device_ids` for `user_id` (of the devices homekey made).
    pub async fn mirror_synapse_devices(
        &self,
        user_id: &str,
        device_ids: &[String],
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM homekey_synapse_devices WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for device_id in device_ids {
                sqlx::query(
                    "INSERT INTO homekey_synapse_devices (user_id, device_id) VALUES ($1, $2)",
                )
                .bind(user_id)
                .bind(device_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Synapse now has the device `device_id` of `user_id` (`true`) or not (`false`).
    pub async fn mirror_synapse_device(
        &self,
        user_id: &str,
        device_id: &str,
        present: bool,
    ) -> Result<(), StoreError> {
        let sql = if present {
            "INSERT INTO homekey_synapse_devices (user_id, device_id) VALUES ($1, $2) \
             ON CONFLICT (user_id, device_id) DO NOTHING"
        } else {
            "DELETE FROM homekey_synapse_devices WHERE user_id = $1 AND device_id = $2"
        };
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(user_id)
                .bind(device_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every account's ID, in order (`homekey synapse reconcile --all`).
    pub async fn all_user_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT name FROM users ORDER BY name")
                .fetch_all(pool)
                .await?
        }))
    }
}
