//! Sessions: logging in with a password, finding who an access token belongs to, tokens
//! minted for an admin or the operator, logging out, and devices.

use secrecy::SecretString;
use serde_json::json;

use super::login_names::{LoginName, LoginNameError};
use super::{AccountError, Accounts, Actor, OnSynapse, Requester, now_ms, tokens};
use crate::audit::Action;
use crate::config::PasswordLogin;
use crate::ids::UserId;
use crate::store::{
    ClientSeen, DeviceContact, Logout, NewRefreshToken, NewSession, StoreError, User,
};
use crate::synapse::client::SynapseCallError;

/// What an access token is presented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    Any,
    /// `/logout` and `/logout/all`.
    Logout,
}

/// When a new login's tokens expire ([`Accounts::login_expiry`]).
pub(super) struct LoginExpiry {
    /// The access token's end (`None`: never).
    pub valid_until_ms: Option<i64>,
    /// The session's end (`session_lifetime`), whatever refreshes happen.
    pub ultimate: Option<i64>,
    /// Whether the login gets a refresh token.
    pub refreshable: bool,
}

/// A successful login.
#[derive(Debug)]
pub struct LoginSuccess {
    pub user_id: String,
    pub device_id: String,
    pub access_token: SecretString,
    /// When the access token expires (`None`: never).
    pub valid_until_ms: Option<i64>,
    /// With a login that asked for one (`refresh_token: true`).
    pub refresh_token: Option<SecretString>,
}

/// New tokens for a refresh token.
#[derive(Debug)]
pub struct Refreshed {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub valid_until_ms: Option<i64>,
}

/// Why a refresh token was not taken, with Synapse's words.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Not a refresh token's shape.
    #[error("invalid refresh token")]
    Malformed,
    /// No such refresh token (its session ended).
    #[error("refresh token does not exist")]
    UnknownToken,
    /// Its successor was refreshed in turn, or the successor's access token used.
    #[error("refresh token isn't valid anymore")]
    Spent,
    #[error("The supplied refresh token has expired")]
    Expired,
    #[error("The session has expired and can no longer be refreshed")]
    SessionOver,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A login attempt, already parsed from the request.
#[derive(Debug)]
pub struct PasswordLoginAttempt {
    /// What the client sent to name the user: a localpart, a full user ID, or a
    /// third-party ID.
    pub user: LoginName,
    pub password: SecretString,
    pub device_id: Option<String>,
    pub initial_device_display_name: Option<String>,
    /// Whether the client asked for a refresh token (handed out only where
    /// `refreshable_access_token_lifetime` is set).
    pub refresh_token: bool,
    /// Where the attempt came from, for `rc_login.address` and the device's last contact
    /// (what whois shows).
    pub client_address: String,
    /// The client's `User-Agent`, for the device's last contact.
    pub user_agent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password: one answer for both.
    #[error("Invalid username or password")]
    InvalidCredentials,
    /// The right password of a deactivated account (one whose hash was set again by hand):
    /// Synapse's answer. A wrong password there is [`LoginError::InvalidCredentials`].
    #[error("This account has been deactivated")]
    Deactivated,
    #[error("User account has been locked")]
    Locked,
    #[error("Password login has been disabled.")]
    PasswordLoginDisabled,
    /// A third-party ID's address that cannot be one (Synapse's 400).
    #[error(transparent)]
    BadAddress(crate::threepid::ThreepidError),
    /// `device_id` or `initial_device_display_name` with a NUL (see
    /// [`AccountError::NulInText`]).
    #[error("{0} may not contain a NUL character")]
    NulInText(&'static str),
    #[error("Too Many Requests")]
    RateLimited { retry_after_ms: u64 },
    /// Beside Synapse: Synapse did not take the new session, so no token was handed out.
    #[error(transparent)]
    Synapse(#[from] SynapseCallError),
    /// Beside Synapse: the new session could not be announced for a reason of homekey's own
    /// (another process delivering for the user held its lease too long); no token was
    /// handed out.
    #[error("the new session was not announced to Synapse: {0}")]
    NotAnnounced(String),
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

/// What a password check found.
pub(super) enum PasswordCheck {
    /// The password is the account's, and this is the hash it matched.
    Matches(User, SecretString),
    /// The password is that of a deactivated account.
    Deactivated,
    /// Unknown account, no password, or a wrong one.
    Fails,
}

/// Why a password could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub(super) enum PasswordCheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
}

impl From<LoginNameError> for LoginError {
    fn from(err: LoginNameError) -> LoginError {
        match err {
            LoginNameError::BadAddress(err) => LoginError::BadAddress(err),
            LoginNameError::Store(err) => LoginError::Store(err),
        }
    }
}

impl From<PasswordCheckError> for LoginError {
    fn from(err: PasswordCheckError) -> LoginError {
        match err {
            PasswordCheckError::Store(err) => LoginError::Store(err),
            PasswordCheckError::Hash(err) => LoginError::Hash(err),
        }
    }
}

/// Synapse's `NONCE_TIMEOUT`: how long a shared-secret registration nonce is good for.
const NONCE_LIFETIME_MS: i64 = 60 * 1000;

impl Accounts {
    /// Makes what a login of an unknown user verifies, so that the first such login takes
    /// no longer than the others.
    pub async fn prepare_logins(&self) -> Result<(), crate::password::PasswordError> {
        self.dummy_hash().await.map(drop)
    }

    async fn dummy_hash(&self) -> Result<SecretString, crate::password::PasswordError> {
        self.dummy_hash
            .get_or_try_init(|| {
                self.hasher
                    .hash(SecretString::from(crate::secrets::random_alphanumeric(32)))
            })
            .await
            .cloned()
    }

    /// Whether password login is on (the flows of `GET /login`).
    pub fn password_login_enabled(&self) -> bool {
        self.config.password.enabled == PasswordLogin::Enabled
            && self.config.password.localdb_enabled
    }

    /// `m.login.password`: checks the password and opens a session on a device.
    pub async fn login_with_password(
        &self,
        attempt: PasswordLoginAttempt,
    ) -> Result<LoginSuccess, LoginError> {
        if !self.password_login_enabled() {
            return Err(LoginError::PasswordLoginDisabled);
        }
        refuse_nul_in_device(&attempt.device_id, &attempt.initial_device_display_name)?;
        let (user, stored_hash) = self
            .check_login_password(
                &attempt.user,
                attempt.password.clone(),
                &attempt.client_address,
            )
            .await?;
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
        let now = now_ms();
        let LoginExpiry {
            valid_until_ms,
            ultimate,
            refreshable,
        } = self.login_expiry(attempt.refresh_token, now);
        let new = self.new_session(
            &user.name,
            attempt.device_id,
            attempt.initial_device_display_name,
            valid_until_ms,
        );
        // The token is written only if the password checked is still the account's: a reset
        // (or a deactivation) that committed since the check ends this login too.
        let (created, refresh_token) = if refreshable {
            let refresh = self.new_refresh_token(&user.name, now, ultimate);
            let created = self
                .store
                .create_refreshable_session_checked(&new, &refresh, &verified_hash)
                .await?;
            (created, Some(refresh.token))
        } else {
            let created = self
                .store
                .create_session_checked(&new, Some(&verified_hash))
                .await?;
            (created, None)
        };
        let token_id = created.ok_or(LoginError::InvalidCredentials)?;
        self.announce_session(&new, token_id).await?;
        self.record_login_contact(
            token_id,
            DeviceContact {
                user_id: new.user_id.clone(),
                device_id: new.device_id.clone(),
                // Now, not the login's start: the device row may have been made a moment later.
                seen_ms: now_ms(),
                client: Some(ClientSeen {
                    address: attempt.client_address.clone(),
                    user_agent: attempt.user_agent.clone(),
                }),
            },
        )
        .await;
        Ok(LoginSuccess {
            refresh_token,
            ..login_success(new)
        })
    }

    /// The sign-in pages' sign-in and the account page's confirmations (`crate::web`): the
    /// password checked exactly as a login checks it, under the same `rc_login` limits, but
    /// no device and no token are made. `given` is what was typed in the user field: a user
    /// name, a user ID, or an e-mail address ([`LoginName::typed`]). Returns the account.
    pub async fn verify_password_for_page(
        &self,
        given: &str,
        password: SecretString,
        client_address: &str,
    ) -> Result<User, LoginError> {
        if !self.password_login_enabled() {
            return Err(LoginError::PasswordLoginDisabled);
        }
        let (user, _) = self
            .check_login_password(&LoginName::typed(given), password, client_address)
            .await?;
        Ok(user)
    }

    /// A password login's checks, in Synapse's order, with `rc_login`: the account and the
    /// hash the password matched.
    async fn check_login_password(
        &self,
        given: &LoginName,
        password: SecretString,
        client_address: &str,
    ) -> Result<(User, SecretString), LoginError> {
        // Synapse's order: every attempt counts per address; the account named must not be
        // over its failed attempts even to try; a wrong password counts as a failure; a
        // success counts per account.
        let limited = |retry_after_ms| LoginError::RateLimited { retry_after_ms };
        self.limits
            .address
            .attempt(client_address)
            .map_err(limited)?;
        let given_user = &self.login_user_name(given).await?;
        let named_key = self.qualified_user_id(given_user).to_lowercase();
        self.limits
            .failed_attempts
            .check(&named_key)
            .map_err(limited)?;
        let (user, stored_hash) = match self.check_password(given_user, password).await? {
            PasswordCheck::Matches(user, hash) => (user, hash),
            PasswordCheck::Deactivated => return Err(LoginError::Deactivated),
            PasswordCheck::Fails => {
                self.limits.failed_attempts.record(&named_key);
                return Err(LoginError::InvalidCredentials);
            }
        };
        self.limits
            .account
            .attempt(&user.name.to_lowercase())
            .map_err(limited)?;
        if user.locked {
            return Err(LoginError::Locked);
        }
        Ok((user, stored_hash))
    }

    /// A new refresh token of `user_id`, with the configured lifetime from `now` and the
    /// login's end.
    pub(super) fn new_refresh_token(
        &self,
        user_id: &str,
        now: i64,
        ultimate: Option<i64>,
    ) -> NewRefreshToken {
        let localpart = localpart_of(user_id);
        let expiry = self
            .config
            .lifetimes
            .refresh_token_ms
            .map(|ms| cap(now.saturating_add(ms), ultimate));
        NewRefreshToken {
            token: tokens::new_refresh_token(&localpart),
            expiry_ts: expiry.or(ultimate),
            ultimate_session_expiry_ts: ultimate,
        }
    }

    /// `POST /refresh`: new tokens for a refresh token, as Synapse hands them out. The old
    /// refresh token stays usable until the new access token is used or the new refresh
    /// token refreshed, so that a client whose refresh was interrupted can try again.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, RefreshError> {
        if !tokens::is_refresh_token_shape(refresh_token) {
            return Err(RefreshError::Malformed);
        }
        let old = self
            .store
            .find_refresh_token(refresh_token)
            .await?
            .ok_or(RefreshError::UnknownToken)?;
        if old.superseded {
            return Err(RefreshError::Spent);
        }
        let now = now_ms();
        if old.expiry_ts.is_some_and(|expiry| expiry < now) {
            return Err(RefreshError::Expired);
        }
        let ultimate = old.ultimate_session_expiry_ts;
        if ultimate.is_some_and(|end| end < now) {
            return Err(RefreshError::SessionOver);
        }
        let valid_until_ms = self
            .config
            .lifetimes
            .refreshable_access_token_ms
            .map(|ms| cap(now.saturating_add(ms), ultimate))
            .or(ultimate);
        let access = self.new_session(
            &old.user_id,
            Some(old.device_id.clone()),
            None,
            valid_until_ms,
        );
        let refresh = self.new_refresh_token(&old.user_id, now, ultimate);
        self.store
            .refresh_session(&old, &access, &refresh)
            .await?
            .ok_or(RefreshError::UnknownToken)?;
        Ok(Refreshed {
            access_token: access.access_token,
            refresh_token: refresh.token,
            valid_until_ms,
        })
    }

    /// When a new login's access token expires, by the config's lifetimes: refreshable (and
    /// short) if the client asked for a refresh token and the config gives them.
    pub(super) fn login_expiry(&self, refresh_requested: bool, now: i64) -> LoginExpiry {
        let lifetimes = self.config.lifetimes;
        let ultimate = lifetimes.session_ms.map(|ms| now.saturating_add(ms));
        let refreshable = lifetimes
            .refreshable_access_token_ms
            .filter(|_| refresh_requested);
        LoginExpiry {
            valid_until_ms: match refreshable {
                Some(ms) => Some(cap(now.saturating_add(ms), ultimate)),
                None => ultimate,
            },
            ultimate,
            refreshable: refreshable.is_some(),
        }
    }

    /// The operator logs a user in on a new device (`homekey user login`): a new access
    /// token, valid until `valid_until_ms` if given, with its audit record.
    pub async fn open_session(
        &self,
        actor: &Actor,
        user_id: &str,
        device_display_name: &str,
        valid_until_ms: Option<i64>,
    ) -> Result<LoginSuccess, AccountError> {
        let user = self.existing_user(user_id).await?;
        if user.deactivated {
            return Err(AccountError::Deactivated(user.name));
        }
        if user.locked {
            return Err(AccountError::Locked(user.name));
        }
        let new = self.new_session(
            &user.name,
            None,
            Some(device_display_name.to_owned()),
            valid_until_ms,
        );
        let record = self.audit_record(
            actor,
            Action::NewSession,
            &user.name,
            json!({"device_id": new.device_id, "valid_until_ms": valid_until_ms}),
        );
        let token_id = self.store.create_session(&new, record.as_ref()).await?;
        self.announce_session(&new, token_id).await?;
        Ok(login_success(new))
    }

    /// A new session of `user_id`: a device (a new one unless `device_id` names one) and a
    /// new access token.
    pub(super) fn new_session(
        &self,
        user_id: &str,
        device_id: Option<String>,
        device_display_name: Option<String>,
        valid_until_ms: Option<i64>,
    ) -> NewSession {
        let localpart = localpart_of(user_id);
        NewSession {
            user_id: user_id.to_owned(),
            device_id: device_id.unwrap_or_else(tokens::new_device_id),
            device_display_name,
            access_token: tokens::new_access_token(&localpart),
            valid_until_ms,
            now_ms: now_ms(),
        }
    }

    /// The account `given` names, if `password` is its password, with the hash it matched.
    /// Takes as long for an unknown account, or one without a password, as for a wrong
    /// password.
    pub(super) async fn check_password(
        &self,
        given: &str,
        password: SecretString,
    ) -> Result<PasswordCheck, PasswordCheckError> {
        let user = self.find_login_user(given).await?;
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let checked_hash = match stored_hash.clone() {
            Some(hash) => hash,
            None => self.dummy_hash().await?,
        };
        let matches = self.hasher.verify(password, Some(checked_hash)).await;
        Ok(match (user, stored_hash, matches) {
            // Deactivation removes the hash; one set again by hand must not log in either.
            (Some(user), Some(_), true) if user.deactivated => PasswordCheck::Deactivated,
            (Some(user), Some(stored_hash), true) => PasswordCheck::Matches(user, stored_hash),
            _ => PasswordCheck::Fails,
        })
    }

    /// Whether `given` (a localpart or a full ID, as a login names an account) names the
    /// requester's own account, found as a login finds it.
    pub(super) async fn names_requester(
        &self,
        given: &str,
        requester: &Requester,
    ) -> Result<bool, StoreError> {
        let named = self.find_login_user(given).await?;
        Ok(named.is_some_and(|user| user.name == requester.user.name))
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
        self.account_as_login_finds(&user_id).await
    }

    /// The account `user_id` names as a login finds it: the ID ignoring case; of several
    /// such accounts, only the exact spelling (`homekey user show` finds accounts so too).
    pub async fn account_as_login_finds(
        &self,
        user_id: &UserId,
    ) -> Result<Option<User>, StoreError> {
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
        if session.unused_refreshable {
            self.store.mark_access_token_used(session.token_id).await?;
        }
        Ok(Requester {
            user: session.user,
            device_id: session.device_id,
            token_id: session.token_id,
            valid_until_ms: session.valid_until_ms,
            page_session: None,
            oauth: session.oauth,
            client_address: None,
        })
    }

    /// The owner of an access token that is usable now by a full account, as Synapse asks
    /// about it beside Synapse (`crate::synapse::introspection`): `None` for an unknown or
    /// expired token, a deactivated or locked account's, and a guest's (Synapse's delegated
    /// requests carry no guest flag, so a guest's token would act as a full account there).
    pub async fn usable_token_owner(
        &self,
        access_token: &str,
    ) -> Result<Option<Requester>, StoreError> {
        match self.authenticate_for(access_token, TokenUse::Any).await {
            Ok(requester) if requester.user.is_guest => Ok(None),
            Ok(requester) => Ok(Some(requester)),
            Err(AuthError::Store(err)) => Err(err),
            Err(AuthError::UnknownToken | AuthError::Expired | AuthError::Locked) => Ok(None),
        }
    }

    /// `/logout`: the requester's device goes, with its tokens; a token without a device
    /// goes alone.
    pub async fn logout(&self, requester: &Requester) -> Result<(), AccountError> {
        self.end_own_session(requester, None).await
    }

    /// The requester's session ended, as `/logout` ends it, with `audit`'s record if any.
    async fn end_own_session(
        &self,
        requester: &Requester,
        audit: Option<&crate::store::NewAuditRecord>,
    ) -> Result<(), AccountError> {
        self.refuse_on_synapse(&requester.user.name, OnSynapse::Logout)?;
        match &requester.device_id {
            Some(device_id) => {
                let device = Logout::Device(device_id.clone());
                self.store
                    .logout(&requester.user.name, &device, audit)
                    .await?;
                self.deliver_after_change(&requester.user.name).await;
            }
            None => {
                self.store.delete_access_token(requester.token_id).await?;
            }
        }
        Ok(())
    }

    /// RFC 7009's revocation of a token by whoever holds it (the OAuth API's revocation
    /// endpoint, for homekey's own access and refresh tokens): its session ends as `/logout`
    /// ends it, the device and all its tokens (beside Synapse, Synapse's device too). A token
    /// that names no live session (unknown, already revoked, a deactivated account's) ends
    /// nothing; `Ok(false)` then. `hint_refresh`: the client said it is a refresh token, so
    /// that is looked up first.
    pub async fn revoke_token(
        &self,
        token: &str,
        hint_refresh: bool,
    ) -> Result<bool, AccountError> {
        for refresh in [hint_refresh, !hint_refresh] {
            let requester = if refresh {
                match self.store.find_refresh_token(token).await? {
                    Some(found) => match self.store.get_user(&found.user_id).await? {
                        Some(user) if !user.deactivated => {
                            Requester::of_device(&user, &found.device_id)
                        }
                        _ => return Ok(false),
                    },
                    None => continue,
                }
            } else {
                match self.authenticate_for(token, TokenUse::Logout).await {
                    Ok(requester) => requester,
                    Err(AuthError::Store(err)) => return Err(err.into()),
                    Err(AuthError::UnknownToken | AuthError::Expired | AuthError::Locked) => {
                        continue;
                    }
                }
            };
            let user_id = &requester.user.name;
            let record = crate::audit::record(
                user_id,
                Action::RevokeToken,
                user_id,
                json!({
                    "device_id": requester.device_id,
                    "oauth": crate::store::token_forms::is_oauth_token(token),
                }),
            );
            self.end_own_session(&requester, Some(&record)).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Every device and token of `user_id` (`/logout/all` by the user, `homekey user logout`
    /// by the operator); returns how many access tokens went.
    pub async fn logout_everywhere(
        &self,
        actor: &Actor,
        user_id: &str,
    ) -> Result<u64, AccountError> {
        self.refuse_on_synapse(user_id, OnSynapse::Logout)?;
        // The record says what was asked; how many tokens went is known only once they went.
        let record = self.audit_record(actor, Action::Logout, user_id, json!({"devices": "all"}));
        let removed = self
            .store
            .logout(user_id, &Logout::AllDevices, record.as_ref())
            .await?;
        self.deliver_after_change(user_id).await;
        Ok(removed)
    }

    /// Deletes devices of `user_id` with their tokens (a user's own, or an admin's through
    /// the Admin API). Devices the user does not have are passed over, as Synapse does; an
    /// empty ID names no device.
    pub async fn delete_devices(
        &self,
        actor: &Actor,
        user_id: &str,
        device_ids: &[String],
    ) -> Result<(), AccountError> {
        self.refuse_on_synapse(user_id, OnSynapse::Logout)?;
        let record = self.audit_record(
            actor,
            Action::DeleteDevices,
            user_id,
            json!({"devices": device_ids}),
        );
        self.store
            .delete_devices(user_id, device_ids, record.as_ref())
            .await?;
        self.deliver_after_change(user_id).await;
        Ok(())
    }

    /// Renames a device; `false` if the user has no such device.
    pub async fn rename_device(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: &str,
    ) -> Result<bool, AccountError> {
        super::error::refuse_nul("display_name", Some(display_name))?;
        Ok(self
            .store
            .rename_device(user_id, device_id, display_name)
            .await?)
    }

    /// An access token with which the admin acts as `user_id`, with no device (the Admin
    /// API's login-as-user).
    pub async fn login_as_user(
        &self,
        admin: &Requester,
        user_id: &str,
        valid_until_ms: Option<i64>,
    ) -> Result<SecretString, AccountError> {
        if user_id == admin.user.name {
            return Err(AccountError::LoginAsSelf);
        }
        // Synapse mints a token even for an account that does not exist; it could never work.
        let user = self.existing_user(user_id).await?;
        let localpart = localpart_of(&user.name);
        let token = tokens::new_access_token(&localpart);
        let record = crate::audit::record(
            &admin.user.name,
            Action::LoginAsUser,
            &user.name,
            json!({"valid_until_ms": valid_until_ms}),
        );
        self.store
            .create_puppet_token(
                &admin.user.name,
                &user.name,
                &token,
                valid_until_ms,
                now_ms(),
                &record,
            )
            .await?;
        Ok(token)
    }

    /// A new nonce for shared-secret registration (64 random bytes as hex, as Synapse's
    /// `token_hex(64)`), good for one registration within a minute, on any instance.
    pub async fn new_registration_nonce(&self) -> Result<String, StoreError> {
        let nonce = hex::encode(rand::random::<[u8; 64]>());
        let now = now_ms();
        self.store
            .create_registration_nonce(&nonce, now, now - NONCE_LIFETIME_MS)
            .await?;
        Ok(nonce)
    }

    /// Spends a registration nonce: whether it was fresh. A nonce never serves twice.
    pub async fn take_registration_nonce(&self, nonce: &str) -> Result<bool, StoreError> {
        self.store
            .take_registration_nonce(nonce, now_ms() - NONCE_LIFETIME_MS)
            .await
    }

    /// The account with exactly this ID, or [`AccountError::UserNotFound`].
    pub(super) async fn existing_user(&self, user_id: &str) -> Result<User, AccountError> {
        self.store
            .get_user(user_id)
            .await?
            .ok_or_else(|| AccountError::UserNotFound(user_id.to_owned()))
    }
}

pub(super) fn login_success(session: NewSession) -> LoginSuccess {
    LoginSuccess {
        user_id: session.user_id,
        device_id: session.device_id,
        access_token: session.access_token,
        valid_until_ms: session.valid_until_ms,
        refresh_token: None,
    }
}

/// The localpart of a stored user ID (an unparsable one, which no account has, gives "").
pub(super) fn localpart_of(user_id: &str) -> String {
    UserId::parse(user_id)
        .map(|id| id.localpart().to_owned())
        .unwrap_or_default()
}

/// `at`, or the login's end if that comes first.
fn cap(at: i64, ultimate: Option<i64>) -> i64 {
    ultimate.map_or(at, |end| at.min(end))
}

/// Refuses a new session's `device_id` or `initial_device_display_name` holding a NUL, which
/// PostgreSQL cannot store ([`LoginError::NulInText`]): every login asks before anything.
pub(super) fn refuse_nul_in_device(
    device_id: &Option<String>,
    initial_device_display_name: &Option<String>,
) -> Result<(), LoginError> {
    for (what, text) in [
        ("device_id", device_id),
        ("initial_device_display_name", initial_device_display_name),
    ] {
        if text.as_deref().is_some_and(|text| text.contains('\0')) {
            return Err(LoginError::NulInText(what));
        }
    }
    Ok(())
}
