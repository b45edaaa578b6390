//! The single-use nonces of shared-secret registration.

use super::{BeginWrite, Store, StoreError, with_pool};

impl Store {
    /// Keeps a new nonce, and forgets those created before `expired_before_ms`.
    pub async fn create_registration_nonce(
        &self,
        nonce: &str,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM homekey_registration_nonces WHERE created_ms < $1")
                .bind(expired_before_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO homekey_registration_nonces (nonce, created_ms) VALUES ($1, $2)",
            )
            .bind(nonce)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Uses up a nonce: `true` if it existed and was created at `not_before_ms` or later.
    /// Either way it is gone afterwards, so no nonce is accepted twice.
    pub async fn take_registration_nonce(
        &self,
        nonce: &str,
        not_before_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let created: Option<i64> = sqlx::query_scalar(
                "DELETE FROM homekey_registration_nonces WHERE nonce = $1 RETURNING created_ms",
            )
            .bind(nonce)
            .fetch_optional(pool)
            .await?;
            Ok(created.is_some_and(|created| created >= not_before_ms))
        })
    }
}
