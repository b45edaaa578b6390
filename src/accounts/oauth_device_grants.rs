//! The OAuth 2.0 API's device authorization grant (RFC 8628, MSC4341), how a device without
//! a browser signs in (and the new device of a QR login): it asks for a code, a signed-in
//! user approves the code on homekey's page, the device polls the token endpoint until its
//! session begins. The session is the same as the authorization code grant's
//! (`crate::store::NewOAuthSession`).

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::oauth_sessions::{GrantError, GrantedTokens, NewTokens};
use super::{Accounts, now_ms, tokens};
use crate::audit::Action;
use crate::oauth::client_metadata::{ClientMetadata, DEVICE_CODE};
use crate::oauth::scope::{Scope, ScopeRefusal};
use crate::store::token_forms::digest;
use crate::store::{
    DeviceDecision, DeviceGrant, DevicePoll, NewDeviceGrant, NewSession, StoreError, User,
};

/// How often a device may poll, at first (RFC 8628 §3.2's default).
pub const POLL_INTERVAL_MS: i64 = 5_000;
/// How much a device polling too often must slow down (RFC 8628 §3.5).
const SLOW_DOWN_MS: i64 = 5_000;
/// The user code's letters: no vowels (no words), none that look alike (RFC 8628 §6.1).
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A device authorization request's answer (RFC 8628 §3.2).
pub struct DeviceAuthorization {
    pub device_code: SecretString,
    /// As shown: `WXYZ-BCDF`.
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Why a device authorization request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceAuthorizationError {
    #[error("the client_id is not known to this server")]
    InvalidClient,
    #[error("this client did not register the device_code grant")]
    UnauthorizedClient,
    #[error("{0}")]
    InvalidScope(ScopeRefusal),
    #[error("too many requests from this address")]
    RateLimited { retry_after_ms: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a user code typed on the page found nothing to approve.
#[derive(Debug, thiserror::Error)]
pub enum UserCodeError {
    #[error("too many codes tried from this address")]
    RateLimited { retry_after_ms: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    /// `POST /oauth2/device`: a device asks to sign in as whoever approves its user code.
    /// An unauthenticated write: limited per address as client registrations are.
    pub async fn start_device_authorization(
        &self,
        client_id: &str,
        scope: &str,
        client_address: &str,
    ) -> Result<DeviceAuthorization, DeviceAuthorizationError> {
        self.client_registrations
            .attempt(client_address)
            .map_err(|retry_after_ms| DeviceAuthorizationError::RateLimited { retry_after_ms })?;
        let client = self
            .oauth_client(client_id)
            .await?
            .ok_or(DeviceAuthorizationError::InvalidClient)?;
        if !client.grant_types.iter().any(|grant| grant == DEVICE_CODE) {
            return Err(DeviceAuthorizationError::UnauthorizedClient);
        }
        let scope = Scope::parse(scope).map_err(DeviceAuthorizationError::InvalidScope)?;
        let now = now_ms();
        let device_code = tokens::new_authorization_code();
        let expires_ms = self.config.oauth.device_code_ms;
        loop {
            let user_code = new_user_code();
            let kept = self
                .store
                .keep_device_grant(&NewDeviceGrant {
                    device_code_digest: &digest(device_code.expose_secret()),
                    user_code: &user_code,
                    client_id,
                    scope: &scope.granted(),
                    requested_from: client_address,
                    now_ms: now,
                    expires_ms: now + expires_ms,
                    interval_ms: POLL_INTERVAL_MS,
                })
                .await?;
            if kept {
                return Ok(DeviceAuthorization {
                    device_code,
                    user_code: shown_user_code(&user_code),
                    expires_in: expires_ms / 1000,
                    interval: POLL_INTERVAL_MS / 1000,
                });
            }
        }
    }

    /// The request waiting for approval under the user code `typed` (any case, with or
    /// without the dash or spaces), with its client. Tries are limited per address, as a
    /// code is guessed only by many.
    pub async fn device_grant_to_approve(
        &self,
        typed: &str,
        client_address: &str,
    ) -> Result<Option<(DeviceGrant, ClientMetadata)>, UserCodeError> {
        self.user_code_entries
            .attempt(client_address)
            .map_err(|retry_after_ms| UserCodeError::RateLimited { retry_after_ms })?;
        let Some(user_code) = normalized_user_code(typed) else {
            return Ok(None);
        };
        let Some(grant) = self
            .store
            .pending_device_grant(&user_code, now_ms())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .oauth_client(&grant.client_id)
            .await?
            .map(|client| (grant, client)))
    }

    /// `user` allowed (or denied) the request under `user_code` on the approval page, with
    /// the audit record. `false`: it no longer waited (answered or expired meanwhile).
    pub async fn decide_device_grant(
        &self,
        user: &User,
        grant: &DeviceGrant,
        allow: bool,
    ) -> Result<bool, StoreError> {
        let scope = Scope::parse(&grant.scope).map(|scope| {
            if user.admin {
                scope
            } else {
                scope.without_admin()
            }
        });
        let (decision, record) = match (&scope, allow) {
            (Ok(scope), true) => {
                let granted = scope.granted();
                let record = crate::audit::record(
                    &user.name,
                    Action::OAuthGrant,
                    &user.name,
                    json!({"client_id": grant.client_id, "scope": granted, "grant": "device_code"}),
                );
                (Some(granted), record)
            }
            _ => (
                None,
                crate::audit::record(
                    &user.name,
                    Action::OAuthConsentRefused,
                    &user.name,
                    json!({"client_id": grant.client_id, "grant": "device_code"}),
                ),
            ),
        };
        let decision = match &decision {
            Some(scope) => DeviceDecision::Allowed {
                user_id: &user.name,
                scope,
            },
            None => DeviceDecision::Denied {
                user_id: &user.name,
            },
        };
        self.store
            .decide_device_grant(&grant.user_code, now_ms(), &decision, &record)
            .await
    }

    /// The token endpoint's device code grant: the device's poll.
    pub async fn poll_device_grant(
        &self,
        device_code: &str,
        client_id: &str,
    ) -> Result<GrantedTokens, GrantError> {
        let client = self
            .oauth_client(client_id)
            .await?
            .ok_or(GrantError::InvalidClient)?;
        let tokens = NewTokens::new();
        let mut began: Option<(NewSession, String)> = None;
        let poll = self
            .store
            .poll_device_grant(
                &digest(device_code),
                client_id,
                tokens.now,
                SLOW_DOWN_MS,
                |user_id, scope| {
                    // The scope was checked when it was asked for, and again when granted.
                    let device_id = Scope::parse(scope)
                        .map(|scope| scope.device_id)
                        .unwrap_or_default();
                    let new = self.oauth_session_rows(
                        &tokens,
                        (client_id, &client),
                        user_id,
                        scope,
                        device_id,
                    );
                    began = Some((new.access.clone(), new.scope.clone()));
                    new
                },
            )
            .await?;
        match poll {
            DevicePoll::Began { token_id } => {
                let (access, scope) = began.expect("a session began from the closure's answer");
                self.announce_session(&access, token_id).await?;
                Ok(self.granted(tokens, scope))
            }
            DevicePoll::Pending => Err(GrantError::AuthorizationPending),
            DevicePoll::SlowDown => Err(GrantError::SlowDown),
            DevicePoll::Expired => Err(GrantError::ExpiredToken),
            DevicePoll::Denied => Err(GrantError::AccessDenied),
            DevicePoll::AccountCannot => Err(GrantError::InvalidGrant(
                "the account cannot sign in (locked or deactivated)",
            )),
            DevicePoll::Unknown => Err(GrantError::InvalidGrant(
                "the device_code is unknown, another client's, or already used",
            )),
        }
    }
}

/// A new user code: 8 letters of [`USER_CODE_ALPHABET`] (20^8, about 2.6 × 10^10).
fn new_user_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())]))
        .collect()
}

/// The code as the page shows it: two groups of four.
pub fn shown_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// What the user typed, as the code is kept: upper case, without dashes and spaces; `None`
/// if it cannot be a code.
fn normalized_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_unambiguous_letters_typed_any_way() {
        let code = new_user_code();
        assert_eq!(code.len(), 8);
        assert!(
            code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)),
            "{code}"
        );
        let shown = shown_user_code(&code);
        assert_eq!(normalized_user_code(&shown).as_deref(), Some(code.as_str()));
        assert_eq!(
            normalized_user_code(" bcdf-ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        for wrong in ["BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ0", ""] {
            assert_eq!(normalized_user_code(wrong), None, "{wrong}");
        }
        assert_ne!(new_user_code(), new_user_code());
    }
}
