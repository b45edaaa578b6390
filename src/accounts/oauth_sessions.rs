//! The grants of the Matrix OAuth 2.0 API (`crate::oauth`): a user's consent turned into an
//! authorization code, the code exchanged for a session, a session's tokens refreshed. A
//! session is a device of the user like any other (`crate::store::NewOAuthSession`): every
//! logout, reset, lock and deactivation treats it as it treats a password login.
//!
//! The rules each step checks are the protocol's (`crate::oauth`); this is where they are
//! applied to the accounts, each change in one transaction with its audit record.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::beside_synapse::DeliveryFailure;
use super::{Accounts, now_ms, tokens};
use crate::audit::Action;
use crate::oauth::authorization_request::AuthorizationRequest;
use crate::oauth::client_metadata::{ClientMetadata, Rules};
use crate::oauth::scope::Scope;
use crate::store::token_forms::digest;
use crate::store::{
    CodeExchange, NewOAuthCode, NewOAuthSession, NewRefreshToken, NewSession, OAuthSession,
    StoreError, User,
};

/// The tokens of a grant, as the token endpoint answers them.
#[derive(Debug)]
pub struct GrantedTokens {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    /// Seconds the access token lasts.
    pub expires_in: i64,
    /// The scope granted, in the client's spelling.
    pub scope: String,
}

/// Why a grant at the token endpoint was refused: OAuth's errors (RFC 6749 §5.2), with a
/// description for the client's developer (never a secret).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The code, refresh token or verifier is not (or no longer) good.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// No such client.
    #[error("the client_id is not known to this server")]
    InvalidClient,
    #[error("the database could not answer")]
    Store(#[from] StoreError),
    /// The device grant's user has not answered yet (RFC 8628 §3.5).
    #[error("the user has not answered yet")]
    AuthorizationPending,
    /// The device polls too often: its interval grows.
    #[error("polling too often")]
    SlowDown,
    /// The device code expired.
    #[error("the device code expired")]
    ExpiredToken,
    /// The user refused the device.
    #[error("the user refused")]
    AccessDenied,
    /// Synapse did not take the session's device: nothing usable was handed out.
    #[error("Synapse did not take the new session")]
    Synapse(#[from] DeliveryFailure),
}

/// The tokens of a session about to begin, made before its transaction, and when.
pub(super) struct NewTokens {
    access: SecretString,
    refresh: SecretString,
    pub(super) now: i64,
}

impl NewTokens {
    pub(super) fn new() -> NewTokens {
        NewTokens {
            access: tokens::new_oauth_access_token(),
            refresh: tokens::new_oauth_refresh_token(),
            now: now_ms(),
        }
    }
}

/// An authorization code grant's form (RFC 6749 §4.1.3 with PKCE).
pub struct CodeGrant<'a> {
    pub code: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: &'a str,
}

impl Accounts {
    /// The client `client_id`, with the metadata it registered, if homekey knows it.
    pub async fn oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientMetadata>, StoreError> {
        let Some(kept) = self.store.oauth_client_metadata(client_id).await? else {
            return Ok(None);
        };
        // Kept metadata passed these rules when it was registered; a client whose metadata
        // no longer passes (the insecure URIs allowed then and not now) is not served.
        let rules = Rules {
            allow_insecure_uris: self.config.oauth.allow_insecure_client_uris,
        };
        let parsed = serde_json::from_str(&kept)
            .ok()
            .and_then(|kept| ClientMetadata::from_registration(&kept, rules).ok());
        Ok(parsed)
    }

    /// The scope `user` can be granted of what `request` asks: Synapse's admin rights only
    /// for a server admin.
    pub fn grantable_scope(&self, user: &User, request: &AuthorizationRequest) -> Scope {
        if user.admin {
            request.scope.clone()
        } else {
            request.scope.without_admin()
        }
    }

    /// `user` allowed the client of `request` on the consent page: a new authorization code,
    /// with the record of the grant.
    pub async fn grant_authorization_code(
        &self,
        user: &User,
        request: &AuthorizationRequest,
    ) -> Result<SecretString, StoreError> {
        let code = tokens::new_authorization_code();
        let scope = self.grantable_scope(user, request).granted();
        let now = now_ms();
        let record = crate::audit::record(
            &user.name,
            Action::OAuthGrant,
            &user.name,
            json!({"client_id": request.client_id, "scope": scope}),
        );
        self.store
            .keep_oauth_code(
                &NewOAuthCode {
                    code_digest: &digest(code.expose_secret()),
                    client_id: &request.client_id,
                    redirect_uri: &request.redirect_uri,
                    code_challenge: &request.code_challenge,
                    user_id: &user.name,
                    scope: &scope,
                    expires_ms: now + self.config.oauth.code_ms,
                    now_ms: now,
                },
                &record,
            )
            .await?;
        Ok(code)
    }

    /// `user` refused the client `client_id` on the consent page: recorded.
    pub async fn refuse_consent(&self, user: &User, client_id: &str) -> Result<(), StoreError> {
        let record = crate::audit::record(
            &user.name,
            Action::OAuthConsentRefused,
            &user.name,
            json!({"client_id": client_id}),
        );
        self.store.record_audit(&record).await
    }

    /// The token endpoint's `authorization_code` grant: the code spent, checked against the
    /// client, the redirect URI and the PKCE verifier, and a session begun on the device the
    /// scope names (beside Synapse, the device made in Synapse before the answer). A code
    /// used twice is refused, and the session it began ends.
    pub async fn exchange_authorization_code(
        &self,
        grant: CodeGrant<'_>,
    ) -> Result<GrantedTokens, GrantError> {
        let client = self
            .oauth_client(grant.client_id)
            .await?
            .ok_or(GrantError::InvalidClient)?;
        let tokens = NewTokens::new();
        let mut began: Option<(NewSession, String)> = None;
        let exchange = self
            .store
            .exchange_oauth_code(&digest(grant.code), tokens.now, |code| {
                if code.client_id != grant.client_id {
                    return Err("the code was issued to another client");
                }
                if grant
                    .redirect_uri
                    .is_some_and(|given| given != code.redirect_uri)
                {
                    return Err("redirect_uri is not the one the authorization used");
                }
                if !pkce_matches(grant.code_verifier, &code.code_challenge) {
                    return Err("code_verifier does not match the code_challenge");
                }
                let scope = Scope::parse(&code.scope)
                    .map_err(|_| "the code's scope is no longer one this server grants")?;
                let new = self.oauth_session_rows(
                    &tokens,
                    (&code.client_id, &client),
                    &code.user_id,
                    &code.scope,
                    scope.device_id,
                );
                began = Some((new.access.clone(), new.scope.clone()));
                Ok(new)
            })
            .await?;
        match exchange {
            CodeExchange::Began { token_id, .. } => {
                let (access, scope) = began.expect("a session began from the check's answer");
                self.announce_session(&access, token_id).await?;
                Ok(self.granted(tokens, scope))
            }
            CodeExchange::Refused(why) => Err(GrantError::InvalidGrant(why)),
            CodeExchange::Replayed {
                user_id,
                ended_device,
            } => {
                if let Some(device) = ended_device {
                    tracing::warn!(user = %user_id, device = %device, "an authorization code was used twice; the session it began was ended");
                    self.deliver_after_change(&user_id).await;
                }
                Err(GrantError::InvalidGrant("the code was already used"))
            }
            CodeExchange::Unknown => {
                Err(GrantError::InvalidGrant("the code is unknown or expired"))
            }
            CodeExchange::AccountCannot => Err(GrantError::InvalidGrant(
                "the account cannot sign in (locked or deactivated)",
            )),
        }
    }

    /// The token endpoint's `refresh_token` grant for an OAuth session: new tokens, the old
    /// refresh token usable again until the new ones are first used (a client whose answer
    /// was lost retries); a refresh token used after that is refused and the session is left
    /// alone (a client's second process refreshing with a stale token must not log it out).
    pub async fn refresh_oauth_session(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<GrantedTokens, GrantError> {
        let invalid = GrantError::InvalidGrant;
        let old = self
            .store
            .find_refresh_token(refresh_token)
            .await?
            .ok_or(invalid("the refresh token is unknown or revoked"))?;
        let session = self
            .store
            .oauth_session_of(&old.user_id, &old.device_id)
            .await?
            .filter(|_| crate::store::token_forms::is_oauth_token(refresh_token))
            .ok_or(invalid("the refresh token is not one of an OAuth session"))?;
        if session.client_id != client_id {
            return Err(invalid("the refresh token was issued to another client"));
        }
        if old.superseded {
            return Err(invalid("the refresh token was already used"));
        }
        let now = now_ms();
        if old.expiry_ts.is_some_and(|expiry| expiry < now) {
            return Err(invalid("the refresh token expired"));
        }
        if !self.store.can_sign_in(&old.user_id).await? {
            return Err(invalid(
                "the account cannot sign in (locked or deactivated)",
            ));
        }
        let access_token = tokens::new_oauth_access_token();
        let new_refresh_token = tokens::new_oauth_refresh_token();
        let settings = &self.config.oauth;
        let access = NewSession {
            user_id: old.user_id.clone(),
            device_id: old.device_id.clone(),
            device_display_name: None,
            access_token: SecretString::from(digest(access_token.expose_secret())),
            valid_until_ms: Some(now + settings.access_token_ms),
            now_ms: now,
        };
        let refresh = self.new_oauth_refresh_row(&new_refresh_token, now);
        self.store
            .refresh_session(&old, &access, &refresh)
            .await?
            .ok_or(invalid("the session ended"))?;
        Ok(GrantedTokens {
            access_token,
            refresh_token: new_refresh_token,
            expires_in: settings.access_token_ms / 1000,
            scope: session.scope,
        })
    }

    /// The OAuth session of the requester's device, if its token is an OAuth one.
    pub async fn oauth_session_of(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<OAuthSession>, StoreError> {
        self.store.oauth_session_of(user_id, device_id).await
    }

    /// The apps of `user_id`'s OAuth sessions, by device ID: each client's name (its ID if
    /// it gave none). A device missing here is a password login's.
    pub async fn session_apps(
        &self,
        user_id: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut apps = std::collections::HashMap::new();
        for session in self.store.oauth_sessions_of(user_id).await? {
            let name = self
                .oauth_client(&session.client_id)
                .await?
                .and_then(|client| client.client_name)
                .unwrap_or(session.client_id);
            apps.insert(session.device_id, name);
        }
        Ok(apps)
    }

    /// The rows of a new session of `user_id` on `device_id` for the client `(id, metadata)`
    /// with the granted `scope`: its device named after the client, its tokens as digests.
    pub(super) fn oauth_session_rows(
        &self,
        tokens: &NewTokens,
        (client_id, client): (&str, &ClientMetadata),
        user_id: &str,
        scope: &str,
        device_id: String,
    ) -> NewOAuthSession {
        NewOAuthSession {
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            access: NewSession {
                user_id: user_id.to_owned(),
                device_id,
                device_display_name: client.client_name.clone(),
                access_token: SecretString::from(digest(tokens.access.expose_secret())),
                valid_until_ms: Some(tokens.now + self.config.oauth.access_token_ms),
                now_ms: tokens.now,
            },
            refresh: self.new_oauth_refresh_row(&tokens.refresh, tokens.now),
        }
    }

    /// The token endpoint's answer for a session begun with `tokens` and `scope`.
    pub(super) fn granted(&self, tokens: NewTokens, scope: String) -> GrantedTokens {
        GrantedTokens {
            access_token: tokens.access,
            refresh_token: tokens.refresh,
            expires_in: self.config.oauth.access_token_ms / 1000,
            scope,
        }
    }

    /// The row of an OAuth refresh token `token`, unused for at most the configured time.
    pub(super) fn new_oauth_refresh_row(&self, token: &SecretString, now: i64) -> NewRefreshToken {
        NewRefreshToken {
            token: SecretString::from(digest(token.expose_secret())),
            expiry_ts: Some(now + self.config.oauth.refresh_token_unused_ms),
            ultimate_session_expiry_ts: None,
        }
    }
}

/// PKCE's S256 (RFC 7636 §4.6): the challenge is the unpadded URL-safe base64 of the
/// verifier's SHA-256, compared in constant time. A verifier of the wrong shape never
/// matches.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636s_example_and_nothing_else() {
        // RFC 7636, Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(verifier, &challenge[1..]));
    }
}
