//! The account service: what a user or an operator can do to an account, each operation one
//! call, whatever the entry point (HTTP route or CLI command).

pub mod admin;
pub mod interactive_auth;
pub mod tokens;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::config::{Config, PasswordLogin};
use crate::ids::UserId;
use crate::password::{HashSettings, PasswordHasher};
use crate::rate_limit::LoginLimiters;
use crate::store::{Logout, NewSession, Store, StoreError, TokenUser, User};

/// The account service, shared by every request.
#[derive(Clone)]
pub struct Accounts {
    pub store: Store,
    pub hasher: PasswordHasher,
    pub config: Arc<Config>,
    /// `rc_login`: kept in the process, as Synapse keeps them.
    pub limits: Arc<LoginLimiters>,
    /// Verified when a login names no usable account, so that "no such user" takes as long
    /// as "wrong password" and the two cannot be told apart by timing.
    dummy_hash: SecretString,
}

/// Who made a request: the owner of a valid access token.
#[derive(Debug, Clone)]
pub struct Requester {
    pub user: TokenUser,
    pub device_id: Option<String>,
    pub token_id: i64,
}

/// What an access token is presented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    Any,
    /// `/logout` and `/logout/all`.
    Logout,
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
    /// Where the attempt came from, for `rc_login.address`.
    pub client_address: String,
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
    #[error("Too Many Requests")]
    RateLimited { retry_after_ms: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("Password change disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
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
            limits: Arc::new(LoginLimiters::new(&config.rc_login)),
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
        // Synapse's order: every attempt counts per address; the account named must not be
        // over its failed attempts even to try; a wrong password counts as a failure; a
        // success counts per account.
        let limited = |retry_after_ms| LoginError::RateLimited { retry_after_ms };
        self.limits
            .address
            .attempt(&attempt.client_address)
            .map_err(limited)?;
        let named_key = self.qualified_user_id(&attempt.user).to_lowercase();
        self.limits
            .failed_attempts
            .check(&named_key)
            .map_err(limited)?;
        let Some((user, stored_hash)) = self
            .check_password(&attempt.user, attempt.password.clone())
            .await?
        else {
            self.limits.failed_attempts.record(&named_key);
            return Err(LoginError::InvalidCredentials);
        };
        self.limits
            .account
            .attempt(&user.name.to_lowercase())
            .map_err(limited)?;
        if user.locked {
            return Err(LoginError::Locked);
        }
        let mut verified_hash = stored_hash;
        if self.hasher.settings().needs_rehash(&verified_hash) {
            let upgraded = self.hasher.hash(attempt.password).await?;
            if self
                .store
                .upgrade_password_hash(&user.name, &verified_hash, &upgraded)
                .await?
            {
                verified_hash = upgraded;
            }
        }
        // The token is written only if the password checked is still the account's: a reset
        // (or a deactivation) that committed since the check ends this login too.
        self.open_session_checked(
            &user.name,
            attempt.device_id,
            attempt.initial_device_display_name,
            Some(&verified_hash),
        )
        .await?
        .ok_or(LoginError::InvalidCredentials)
    }

    /// Logs a user in on a device (a new one unless `device_id` names one): a new access token.
    pub async fn open_session(
        &self,
        user_id: &str,
        device_id: Option<String>,
        device_display_name: Option<String>,
    ) -> Result<LoginSuccess, StoreError> {
        self.open_session_checked(user_id, device_id, device_display_name, None)
            .await?
            .ok_or_else(|| StoreError::UserNotFound(user_id.to_owned()))
    }

    /// [`Accounts::open_session`], only while the user's password hash is `verified_hash`
    /// (when given); `None` if it changed.
    async fn open_session_checked(
        &self,
        user_id: &str,
        device_id: Option<String>,
        device_display_name: Option<String>,
        verified_hash: Option<&SecretString>,
    ) -> Result<Option<LoginSuccess>, StoreError> {
        let localpart = UserId::parse(user_id)
            .map(|id| id.localpart().to_owned())
            .unwrap_or_default();
        let device_id = device_id.unwrap_or_else(tokens::new_device_id);
        let access_token = tokens::new_access_token(&localpart);
        let created = self
            .store
            .create_session_checked(
                &NewSession {
                    user_id: user_id.to_owned(),
                    device_id: device_id.clone(),
                    device_display_name,
                    access_token: access_token.clone(),
                    valid_until_ms: None,
                    now_ms: now_ms(),
                },
                verified_hash,
            )
            .await?;
        Ok(created.map(|_| LoginSuccess {
            user_id: user_id.to_owned(),
            device_id,
            access_token,
        }))
    }

    /// The account `given` names and its stored hash, if `password` is that account's
    /// password. Takes as long for an unknown or deactivated account as for a wrong password.
    async fn check_password(
        &self,
        given: &str,
        password: SecretString,
    ) -> Result<Option<(User, SecretString)>, StoreError> {
        let user = self.find_login_user(given).await?;
        // Deactivated accounts have no hash (Synapse removes it); one left behind by hand
        // must not log in either.
        let stored_hash = user
            .as_ref()
            .filter(|u| !u.deactivated)
            .and_then(|u| u.password_hash.clone());
        let checked_hash = stored_hash
            .clone()
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self.hasher.verify(password, Some(checked_hash)).await;
        Ok(match (user, stored_hash, matches) {
            (Some(user), Some(stored_hash), true) => Some((user, stored_hash)),
            _ => None,
        })
    }

    /// A user named by a localpart or a full ID, as a full ID (as typed, not validated).
    fn qualified_user_id(&self, given: &str) -> String {
        if given.starts_with('@') {
            given.to_owned()
        } else {
            format!("@{given}:{}", self.config.server_name)
        }
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
        self.authenticate_for(access_token, TokenUse::Any).await
    }

    /// The owner of an access token, for `use_`: a logout also accepts an expired token or a
    /// locked account's, as Synapse does, so a client can always end its session.
    pub async fn authenticate_for(
        &self,
        access_token: &str,
        use_: TokenUse,
    ) -> Result<Requester, AuthError> {
        let session = self
            .store
            .find_session(access_token)
            .await?
            .ok_or(AuthError::UnknownToken)?;
        let logout = use_ == TokenUse::Logout;
        if !logout
            && session
                .valid_until_ms
                .is_some_and(|until| until <= now_ms())
        {
            return Err(AuthError::Expired);
        }
        if session.user.deactivated {
            return Err(AuthError::UnknownToken);
        }
        if !logout && session.user.locked {
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
                    .logout(
                        &requester.user.name,
                        &Logout::Device(device_id.clone()),
                        None,
                    )
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
            .logout(&requester.user.name, &Logout::AllDevices, None)
            .await
            .map(|_| ())
    }

    /// Whether passwords can be changed (`m.change_password`): as Synapse, only where they
    /// log in (`only_for_reauth` re-authenticates with a password but never changes one).
    pub fn can_change_password(&self) -> bool {
        self.config.password.enabled == PasswordLogin::Enabled
            && self.config.password.localdb_enabled
    }

    /// The requester's new password (already hashed). With `logout_devices`, every other
    /// device and its tokens go, in the same transaction; the requester's device stays.
    pub async fn change_own_password(
        &self,
        requester: &Requester,
        new_hash: &SecretString,
        logout_devices: bool,
    ) -> Result<(), PasswordChangeError> {
        if !self.can_change_password() {
            return Err(PasswordChangeError::Disabled);
        }
        let logout = match (&requester.device_id, logout_devices) {
            (_, false) => Logout::Keep,
            (Some(device_id), true) => Logout::AllDevicesExcept(device_id.clone()),
            (None, true) => Logout::AllDevices,
        };
        self.store
            .set_password_hash(&requester.user.name, Some(new_hash), &logout, None)
            .await?;
        Ok(())
    }

    /// The requester deactivates their own account: no password, no devices, no tokens.
    /// The display name stays unless `erase`, as in Synapse.
    pub async fn deactivate_own_account(
        &self,
        requester: &Requester,
        erase: bool,
    ) -> Result<(), StoreError> {
        self.store
            .deactivate(&requester.user.name, erase, None)
            .await
    }
}
