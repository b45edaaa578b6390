//! The account service: what a user or an operator can do to an account, each operation one
//! call, whatever the entry point (HTTP route or CLI command).

pub mod tokens;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::config::{Config, PasswordLogin};
use crate::ids::UserId;
use crate::password::{HashSettings, PasswordHasher};
use crate::store::{Logout, NewSession, Store, StoreError, User};

/// The account service, shared by every request.
#[derive(Clone)]
pub struct Accounts {
    pub store: Store,
    pub hasher: PasswordHasher,
    pub config: Arc<Config>,
    /// Verified when a login names no usable account, so that "no such user" takes as long
    /// as "wrong password" and the two cannot be told apart by timing.
    dummy_hash: SecretString,
}

/// Who made a request: the owner of a valid access token.
#[derive(Debug, Clone)]
pub struct Requester {
    pub user: User,
    pub device_id: Option<String>,
    pub token_id: i64,
}

/// A successful login.
#[derive(Debug)]
pub struct LoginSuccess {
    pub user_id: String,
    pub device_id: String,
    pub access_token: SecretString,
}

/// A login attempt, already parsed from the request.
#[derive(Debug)]
pub struct PasswordLoginAttempt {
    /// What the client sent to name the user: a localpart or a full user ID.
    pub user: String,
    pub password: SecretString,
    pub device_id: Option<String>,
    pub initial_device_display_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password, deactivated account: one answer for all of them.
    #[error("Invalid username or password")]
    InvalidCredentials,
    #[error("User account has been locked")]
    Locked,
    #[error("Password login has been disabled.")]
    PasswordLoginDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Unrecognised access token")]
    UnknownToken,
    #[error("Access token has expired")]
    Expired,
    #[error("User account has been locked")]
    Locked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Milliseconds since the epoch, as Synapse's `*_ms` / `*_ts` columns count them.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Accounts {
    pub async fn new(
        store: Store,
        config: Arc<Config>,
    ) -> Result<Accounts, crate::password::PasswordError> {
        let hasher = PasswordHasher::new(HashSettings::from_config(&config));
        let dummy_hash = hasher
            .hash(SecretString::from(crate::secrets::random_alphanumeric(32)))
            .await?;
        Ok(Accounts {
            store,
            hasher,
            config,
            dummy_hash,
        })
    }

    /// `m.login.password`: checks the password and opens a session on a device.
    pub async fn login_with_password(
        &self,
        attempt: PasswordLoginAttempt,
    ) -> Result<LoginSuccess, LoginError> {
        if self.config.password.enabled != PasswordLogin::Enabled
            || !self.config.password.localdb_enabled
        {
            return Err(LoginError::PasswordLoginDisabled);
        }
        let user = self.find_login_user(&attempt.user).await?;
        // Deactivated accounts have no hash (Synapse removes it); one left behind by hand
        // must not log in either.
        let stored_hash = user
            .as_ref()
            .filter(|u| !u.deactivated)
            .and_then(|u| u.password_hash.clone());
        let checked_hash = stored_hash
            .clone()
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .hasher
            .verify(attempt.password.clone(), Some(checked_hash))
            .await;
        let (Some(user), Some(stored_hash), true) = (user, stored_hash, matches) else {
            return Err(LoginError::InvalidCredentials);
        };
        if user.locked {
            return Err(LoginError::Locked);
        }
        if self.hasher.settings().needs_rehash(&stored_hash) {
            let upgraded = self.hasher.hash(attempt.password).await?;
            self.store
                .upgrade_password_hash(&user.name, &stored_hash, &upgraded)
                .await?;
        }
        let localpart = UserId::parse(&user.name)
            .map(|id| id.localpart().to_owned())
            .unwrap_or_default();
        let device_id = attempt.device_id.unwrap_or_else(tokens::new_device_id);
        let access_token = tokens::new_access_token(&localpart);
        self.store
            .create_session(&NewSession {
                user_id: user.name.clone(),
                device_id: device_id.clone(),
                device_display_name: attempt.initial_device_display_name,
                access_token: access_token.clone(),
                valid_until_ms: None,
                now_ms: now_ms(),
            })
            .await?;
        Ok(LoginSuccess {
            user_id: user.name,
            device_id,
            access_token,
        })
    }

    /// The local account a login names, found as Synapse finds it: the ID ignoring case; of
    /// several such accounts, only the exact spelling.
    async fn find_login_user(&self, given: &str) -> Result<Option<User>, StoreError> {
        let server_name = &self.config.server_name;
        let Ok(user_id) = UserId::parse_local(given, server_name) else {
            return Ok(None);
        };
        let mut candidates = self
            .store
            .find_users_case_insensitive(user_id.as_str())
            .await?;
        if candidates.len() == 1 {
            return Ok(candidates.pop());
        }
        Ok(candidates.into_iter().find(|u| u.name == user_id.as_str()))
    }

    /// The owner of an access token, if the token is valid now.
    pub async fn authenticate(&self, access_token: &str) -> Result<Requester, AuthError> {
        let session = self
            .store
            .find_session(access_token)
            .await?
            .ok_or(AuthError::UnknownToken)?;
        if session
            .valid_until_ms
            .is_some_and(|until| until <= now_ms())
        {
            return Err(AuthError::Expired);
        }
        if session.user.deactivated {
            return Err(AuthError::UnknownToken);
        }
        if session.user.locked {
            return Err(AuthError::Locked);
        }
        Ok(Requester {
            user: session.user,
            device_id: session.device_id,
            token_id: session.token_id,
        })
    }

    /// `/logout`: the requester's device goes, with its tokens; a token without a device
    /// goes alone.
    pub async fn logout(&self, requester: &Requester) -> Result<(), StoreError> {
        match &requester.device_id {
            Some(device_id) => {
                self.store
                    .logout(&requester.user.name, &Logout::Device(device_id.clone()))
                    .await?;
            }
            None => {
                self.store.delete_access_token(requester.token_id).await?;
            }
        }
        Ok(())
    }

    /// `/logout/all`: every device and token of the requester.
    pub async fn logout_all(&self, requester: &Requester) -> Result<(), StoreError> {
        self.store
            .logout(&requester.user.name, &Logout::AllDevices)
            .await
            .map(|_| ())
    }

    /// Whether passwords can be changed (`m.change_password`).
    pub fn can_change_password(&self) -> bool {
        self.config.password.enabled != PasswordLogin::Disabled
            && self.config.password.localdb_enabled
    }
}
