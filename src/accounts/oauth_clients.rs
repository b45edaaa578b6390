//! OAuth clients that register themselves (the Matrix OAuth 2.0 API, `crate::oauth`): kept
//! in homekey's database under `rc_client_registration`, one client for one set of
//! metadata, an audit record for each new one, and the unused ones forgotten in time.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{AccountError, Accounts, Actor};
use crate::audit::Action;
use crate::oauth::client_metadata::ClientMetadata;
use crate::store::{ClientRegistered, NewOAuthClient, OAuthClientRow, StoreError};

/// Why a registration was not kept.
#[derive(Debug, thiserror::Error)]
pub enum ClientRegistrationError {
    /// Too many registrations from the client's address (`rc_client_registration`).
    #[error("too many client registrations from this address")]
    RateLimited { retry_after_ms: u64 },
    /// `oauth.max_unused_clients` clients have begun no session yet.
    #[error("too many registered clients have begun no session")]
    TooManyUnused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    /// Keeps a client's checked `metadata`, registered from `client_address`: the client
    /// that registered the same metadata before, or a new one. Returns its ID and whether it
    /// is new.
    pub async fn register_oauth_client(
        &self,
        metadata: &ClientMetadata,
        client_address: &str,
    ) -> Result<(String, bool), ClientRegistrationError> {
        self.client_registrations
            .attempt(client_address)
            .map_err(|retry_after_ms| ClientRegistrationError::RateLimited { retry_after_ms })?;
        let kept = metadata.to_json().to_string();
        let digest = hex::encode(Sha256::digest(kept.as_bytes()));
        let fresh_id = crate::secrets::random_alphanumeric(24);
        let now = super::now_ms();
        let settings = &self.config.oauth;
        let record = crate::audit::record(
            &format!("client registration from {client_address}"),
            Action::RegisterClient,
            &fresh_id,
            json!({
                "client_name": metadata.client_name,
                "client_uri": metadata.client_uri,
                "application_type": metadata.application_type,
                "redirect_uris": metadata.redirect_uris,
            }),
        );
        let registered = self
            .store
            .register_oauth_client(
                &NewOAuthClient {
                    fresh_id: &fresh_id,
                    metadata: &kept,
                    metadata_digest: &digest,
                    now_ms: now,
                    forget_unused_before_ms: now - settings.unused_client_ms,
                    max_unused: settings.max_unused_clients,
                },
                Some(&record),
            )
            .await?;
        match registered {
            ClientRegistered::Kept { client_id, new } => Ok((client_id, new)),
            ClientRegistered::TooManyUnused => Err(ClientRegistrationError::TooManyUnused),
        }
    }

    /// Every registered client, with its number of sessions.
    pub async fn list_oauth_clients(&self) -> Result<Vec<OAuthClientRow>, StoreError> {
        self.store.list_oauth_clients().await
    }

    /// Deletes a registered client (an admin, from the console): its sessions end, each as
    /// a logout of its device (beside Synapse, Synapse's devices too), in one transaction
    /// with the client's deletion and its audit record. Returns how many sessions ended;
    /// `None`: no such client.
    pub async fn delete_oauth_client(
        &self,
        actor: &Actor,
        client_id: &str,
    ) -> Result<Option<usize>, AccountError> {
        if self.store.flavour() == crate::store::Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "OAuth clients are kept only in homekey's database",
            )
            .into());
        }
        let name = match self.store.oauth_client_metadata(client_id).await? {
            Some(metadata) => serde_json::from_str::<serde_json::Value>(&metadata)
                .ok()
                .and_then(|metadata| metadata["client_name"].as_str().map(str::to_owned)),
            None => return Ok(None),
        };
        let record = self.audit_record(
            actor,
            Action::DeleteClient,
            client_id,
            json!({"client_name": name}),
        );
        let Some(deleted) = self
            .store
            .delete_oauth_client(client_id, record.as_ref())
            .await?
        else {
            return Ok(None);
        };
        let mut users: Vec<&str> = deleted
            .sessions
            .iter()
            .map(|(user, _)| user.as_str())
            .collect();
        users.dedup();
        for user_id in users {
            self.deliver_after_change(user_id).await;
        }
        Ok(Some(deleted.sessions.len()))
    }
}
