//! The OAuth clients that registered themselves (`homekey_oauth_clients`, migration 0012):
//! their kept metadata, found again by its digest when a client registers the same metadata
//! again (clients register at the start of every sign-in).

use super::audit::commit_audited;
use super::synapse_queue::owe_synapse;
use super::transaction::delete_sessions;
use super::{BeginWrite, Flavour, Logout, NewAuditRecord, Store, StoreError, with_pool};

/// A registered client as the admin console lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OAuthClientRow {
    pub client_id: String,
    /// The kept metadata, as JSON text.
    pub metadata: String,
    pub registered_ms: i64,
    pub last_registered_ms: i64,
    /// When it began its first session; `None`: never (it is forgotten in time).
    pub first_session_ms: Option<i64>,
    /// Its sessions now.
    pub sessions: i64,
}

/// What deleting a client ended: the sessions (user and device) it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDeleted {
    pub sessions: Vec<(String, String)>,
}

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

    /// Every registered client with its number of sessions, the newest first. Refused on a
    /// Synapse database (it keeps none).
    pub async fn list_oauth_clients(&self) -> Result<Vec<OAuthClientRow>, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "OAuth clients are kept only in homekey's database",
            ));
        }
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT c.client_id, c.metadata, c.registered_ms, c.last_registered_ms, \
                 c.first_session_ms, (SELECT COUNT(*) FROM homekey_oauth_sessions s \
                 WHERE s.client_id = c.client_id) AS sessions \
                 FROM homekey_oauth_clients c ORDER BY c.registered_ms DESC, c.client_id",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Deletes the client `client_id` in one transaction with `audit`'s record: its
    /// sessions end as a logout of their devices ends them (the devices and their tokens go,
    /// and Synapse is owed the change of each user), its pending authorization codes and
    /// device grants go, then the client. `None`: no such client (nothing changed).
    pub async fn delete_oauth_client(
        &self,
        client_id: &str,
        audit: Option<&NewAuditRecord>,
    ) -> Result<Option<ClientDeleted>, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "OAuth clients are kept only in homekey's database",
            ));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // By user, so that two transactions lock the users in the same order.
            let sessions: Vec<(String, String)> = sqlx::query_as(
                "SELECT user_id, device_id FROM homekey_oauth_sessions WHERE client_id = $1 \
                 ORDER BY user_id, device_id",
            )
            .bind(client_id)
            .fetch_all(&mut *tx)
            .await?;
            for (user_id, device_id) in &sessions {
                let device = Logout::Device(device_id.clone());
                delete_sessions!(&mut tx, self, user_id, &device);
                owe_synapse!(&mut tx, self, user_id);
            }
            for sql in [
                "DELETE FROM homekey_oauth_codes WHERE client_id = $1",
                "DELETE FROM homekey_oauth_device_grants WHERE client_id = $1",
            ] {
                sqlx::query(sql).bind(client_id).execute(&mut *tx).await?;
            }
            let deleted = sqlx::query("DELETE FROM homekey_oauth_clients WHERE client_id = $1")
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(None);
            }
            commit_audited!(tx, self, audit);
            Ok(Some(ClientDeleted { sessions }))
        })
    }
}
