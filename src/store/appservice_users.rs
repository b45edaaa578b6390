//! Application services' users beside Synapse: Synapse registered them (with the
//! application service's token, which homekey never sees), and homekey keeps a row of its own
//! for each one that logs in on homekey's `/login`, so that its sessions have an owner.

use super::{BeginWrite, Store, StoreError, with_pool};

impl Store {
    /// Keeps a row for `user_id`, a user of application service `appservice_id` that
    /// Synapse has, if homekey has none of that name: no password, never an admin, and
    /// mirrored as Synapse has it (active, not locked), so that no delivery provisions it.
    /// An existing row is left as it is.
    pub async fn adopt_appservice_user(
        &self,
        user_id: &str,
        appservice_id: &str,
        creation_ts: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO users (name, password_hash, creation_ts, admin, is_guest, \
                 appservice_id, deactivated, locked, approved) \
                 VALUES ($1, NULL, $2, 0, 0, $3, 0, FALSE, TRUE) ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(creation_ts)
            .bind(appservice_id)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO homekey_synapse_users (user_id, deactivated, locked) \
                     VALUES ($1, FALSE, FALSE) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
