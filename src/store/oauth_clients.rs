//! The OAuth clients that registered themselves (`homekey_oauth_clients`, migration 0012):
//! their kept metadata, found again by its digest when a client registers the same metadata
//! again (clients register at the start of every sign-in).

use super::audit::commit_audited;
use super::{BeginWrite, NewAuditRecord, Store, StoreError, with_pool};

/// A registration to keep.
pub struct NewOAuthClient<'a> {
    /// The ID the client gets if no client with the same metadata exists.
    pub fresh_id: &'a str,
    /// The kept metadata, as JSON text, and its digest.
    pub metadata: &'a str,
    pub metadata_digest: &'a str,
    pub now_ms: i64,
    /// Clients that began no session and last registered before this are forgotten.
    pub forget_unused_before_ms: i64,
    /// The most clients kept without a session.
    pub max_unused: i64,
}

/// What became of a registration.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientRegistered {
    /// The client, and whether it is new (else: the same metadata was registered before).
    Kept { client_id: String, new: bool },
    /// Too many clients have begun no session: none is added until some are forgotten.
    TooManyUnused,
}

impl Store {
    /// Keeps `client` in one transaction: the unused clients past their time forgotten, then
    /// the client with the same metadata, if there is one, else a new one with `audit`'s
    /// record (unless there are already `max_unused` clients without a session).
    pub async fn register_oauth_client(
        &self,
        client: &NewOAuthClient<'_>,
        audit: Option<&NewAuditRecord>,
    ) -> Result<ClientRegistered, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "DELETE FROM homekey_oauth_clients \
                 WHERE first_session_ms IS NULL AND last_registered_ms < $1",
            )
            .bind(client.forget_unused_before_ms)
            .execute(&mut *tx)
            .await?;
            let known: Option<String> = sqlx::query_scalar(
                "UPDATE homekey_oauth_clients SET last_registered_ms = $2 \
                 WHERE metadata_digest = $1 RETURNING client_id",
            )
            .bind(client.metadata_digest)
            .bind(client.now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(client_id) = known {
                tx.commit().await?;
                return Ok(ClientRegistered::Kept {
                    client_id,
                    new: false,
                });
            }
            let unused: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM homekey_oauth_clients WHERE first_session_ms IS NULL",
            )
            .fetch_one(&mut *tx)
            .await?;
            if unused >= client.max_unused {
                return Ok(ClientRegistered::TooManyUnused);
            }
            // The same metadata registered by someone else meanwhile (PostgreSQL) is theirs.
            let client_id: String = sqlx::query_scalar(
                "INSERT INTO homekey_oauth_clients \
                 (client_id, metadata, metadata_digest, registered_ms, last_registered_ms) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (metadata_digest) \
                 DO UPDATE SET last_registered_ms = $4 RETURNING client_id",
            )
            .bind(client.fresh_id)
            .bind(client.metadata)
            .bind(client.metadata_digest)
            .bind(client.now_ms)
            .fetch_one(&mut *tx)
            .await?;
            let new = client_id == client.fresh_id;
            if new {
                commit_audited!(tx, self, audit);
            } else {
                tx.commit().await?;
            }
            Ok(ClientRegistered::Kept { client_id, new })
        })
    }

    /// The kept metadata (JSON text) of the client `client_id`, if homekey knows it.
    pub async fn oauth_client_metadata(
        &self,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT metadata FROM homekey_oauth_clients WHERE client_id = $1",
            )
            .bind(client_id)
            .fetch_optional(pool)
            .await?)
        })
    }
}
