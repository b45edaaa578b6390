//! User-interactive authentication: a logged-in user proves again who they are before a
//! sensitive operation (changing the password, deactivating, deleting devices), as Synapse
//! runs it. homekey offers one flow of one stage, `m.login.password`.
//!
//! The first request usually carries no `auth`: it gets 401 with the flows and a new session.
//! The client repeats the request with `auth` (the stage and the session), and the operation
//! goes ahead once the stage is complete. Sessions live in the database (Synapse's
//! `ui_auth_sessions`), so every instance on one database shares them.
//!
//! Where homekey differs from Synapse, on purpose:
//! - A session is bound to the request's path and method, without the query string (Synapse
//!   keeps the whole URI, so a `?access_token=` would be stored in the database).
//! - A session is spent once its operation has been carried out; Synapse lets a completed
//!   session authorise the same operation again until it expires.
//! - Wrong passwords count against `rc_login.failed_attempts` (Synapse checks that limit here
//!   but never records a failure, so it cannot stop guessing).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::login_names::{LoginName, LoginNameError};
use super::sessions::{PasswordCheck, PasswordCheckError};
use super::{AccountError, Accounts, Requester, now_ms};
use crate::config::PasswordLogin;
use crate::store::{StoreError, UiAuthSession};

/// Where a session keeps a new password sent before the authentication was complete (the
/// key is Synapse's), and the `logout_devices` that came with it.
const SESSION_PASSWORD_HASH: &str = "password_hash";
const SESSION_LOGOUT_DEVICES: &str = "logout_devices";

/// What a password change's earlier requests kept in its session.
pub(super) struct KeptPasswordChange {
    pub hash: Option<SecretString>,
    pub logout_devices: Option<bool>,
}

/// The one stage homekey offers.
pub const PASSWORD_STAGE: &str = "m.login.password";

/// Synapse deletes sessions 48 hours after they were created.
const SESSION_LIFETIME_MS: i64 = 48 * 60 * 60 * 1000;

/// The operation a session authorises; it may not change between the session's requests.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// What the user is asked to authorise, in words ("modify your account password").
    pub description: &'a str,
}

/// The request's `auth` object.
#[derive(Debug, Default)]
pub struct AuthSubmission {
    pub session: Option<String>,
    /// The stage being completed (`type`); none just asks for the session's state.
    pub stage: Option<String>,
    /// The account the stage names: a localpart, a full user ID or a third-party ID.
    pub user: Option<LoginName>,
    pub password: Option<SecretString>,
    /// `m.login.email.identity`'s `threepid_creds` (or the older `threepidCreds`).
    pub threepid_creds: Option<ThreepidCreds>,
    /// `m.login.registration_token`'s `token`, as sent (its type is checked by the stage).
    pub token: Option<Value>,
}

/// The e-mail validation session a client names: its ID and the client's secret.
#[derive(Debug, Clone)]
pub struct ThreepidCreds {
    pub sid: String,
    pub client_secret: SecretString,
}

/// A completed authentication: the session it happened in.
#[derive(Debug, Clone)]
pub struct Authorised {
    pub session: UiAuthSession,
}

#[derive(Debug, thiserror::Error)]
pub enum UiAuthError {
    /// More to do: 401 with the flows, the session and why the last stage failed, if it did.
    #[error("user-interactive authentication is incomplete")]
    Incomplete {
        session_id: String,
        /// Each flow's stages, in order.
        flows: Vec<Vec<&'static str>>,
        /// What the stages need to be shown (`m.login.terms`' policies); an object.
        params: Value,
        /// `None` on the session's first answer, which Synapse sends without `completed`.
        completed: Option<Vec<String>>,
        failure: Option<StageFailure>,
    },
    #[error("Unknown session ID: {0}")]
    UnknownSession(String),
    #[error("Requested operation has changed during the UI authentication session.")]
    OperationChanged,
    /// The stage proved another user's identity.
    #[error("Invalid auth")]
    OtherUser,
    /// A stage's submission is malformed (400, not a 401: the client has a bug).
    #[error("{message}")]
    BadSubmission {
        errcode: &'static str,
        message: &'static str,
    },
    #[error("Too many failed attempts")]
    RateLimited { retry_after_ms: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crate::password::PasswordError),
}

/// Why a stage failed; the client may try again in the same session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageFailure {
    InvalidPassword,
    /// `m.login.email.identity` without `threepid_creds`.
    MissingThreepidCreds,
    /// The session's link is not confirmed (yet), or the session is unknown or spent.
    ThreepidNotValidated,
    /// `m.login.registration_token` without `token`.
    MissingToken,
    /// A `token` that is not a string.
    TokenNotString,
    /// A registration token stage outside a session.
    MissingSession,
    /// Another token than the one the session already holds.
    TokenChanged,
    /// Unknown, expired or used up.
    InvalidToken,
}

impl StageFailure {
    pub fn errcode(self) -> &'static str {
        match self {
            StageFailure::InvalidPassword => "M_FORBIDDEN",
            StageFailure::MissingThreepidCreds => "M_MISSING_PARAM",
            StageFailure::ThreepidNotValidated => "M_UNAUTHORIZED",
            StageFailure::MissingToken | StageFailure::MissingSession => "M_MISSING_PARAM",
            StageFailure::TokenNotString | StageFailure::TokenChanged => "M_INVALID_PARAM",
            StageFailure::InvalidToken => "M_UNAUTHORIZED",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            StageFailure::InvalidPassword => "Invalid username or password",
            StageFailure::MissingThreepidCreds => "Missing threepid_creds",
            StageFailure::ThreepidNotValidated => "Unable to get validated threepid",
            StageFailure::MissingToken => "Missing registration token",
            StageFailure::TokenNotString => "Registration token must be a string",
            StageFailure::MissingSession => "Missing UIA session",
            StageFailure::TokenChanged => "Registration token has changed",
            StageFailure::InvalidToken => "Invalid registration token",
        }
    }
}

impl Accounts {
    /// Runs one request of user-interactive authentication for `operation`. `Ok` means the
    /// requester has proved who they are, in the returned session.
    pub async fn user_interactive_auth(
        &self,
        requester: &Requester,
        auth: Option<AuthSubmission>,
        operation: Operation<'_>,
    ) -> Result<Authorised, UiAuthError> {
        let user_key = requester.user.name.to_lowercase();
        if let Err(retry_after_ms) = self.limits.failed_attempts.check(&user_key) {
            return Err(UiAuthError::RateLimited { retry_after_ms });
        }
        let auth = auth.unwrap_or_default();
        let flows = self.ui_auth_stages(requester);
        let (session, new) = self
            .ui_auth_session(auth.session.as_deref(), operation)
            .await?;

        let mut failure = None;
        match auth.stage.as_deref() {
            None => {}
            Some(PASSWORD_STAGE) => match self.check_password_stage(requester, &auth).await? {
                Some(user_id) => {
                    self.store
                        .complete_ui_auth_stage(
                            &session.session_id,
                            PASSWORD_STAGE,
                            &json!(user_id),
                        )
                        .await?;
                }
                None => {
                    self.limits.failed_attempts.record(&user_key);
                    failure = Some(StageFailure::InvalidPassword);
                }
            },
            Some(_) => {
                return Err(UiAuthError::BadSubmission {
                    errcode: "M_UNKNOWN",
                    message: "Unknown login type",
                });
            }
        }

        let completed = self
            .store
            .completed_ui_auth_stages(&session.session_id)
            .await?;
        if let Some((_, proved)) = completed
            .iter()
            .find(|(stage, _)| flows.contains(&stage.as_str()))
        {
            if proved.as_str() != Some(requester.user.name.as_str()) {
                return Err(UiAuthError::OtherUser);
            }
            return Ok(Authorised { session });
        }
        let first_answer = new && auth.stage.is_none();
        Err(UiAuthError::Incomplete {
            session_id: session.session_id,
            flows: flows.iter().map(|stage| vec![*stage]).collect(),
            params: json!({}),
            completed: (!first_answer)
                .then(|| completed.into_iter().map(|(stage, _)| stage).collect()),
            failure,
        })
    }

    /// Keeps what a password change's request brought for the request that completes its
    /// session, which may not repeat it: the new password only as a hash, as Synapse does
    /// (checked by the rule first), and `logout_devices`.
    pub async fn keep_for_password_change(
        &self,
        requester: &Requester,
        session_id: &str,
        password: Option<SecretString>,
        logout_devices: Option<bool>,
    ) -> Result<(), AccountError> {
        let mut keep = Map::new();
        if let Some(password) = password {
            let actor = super::Actor::User(requester.clone());
            let hash = self.hash_new_password(&actor, password).await?;
            keep.insert(SESSION_PASSWORD_HASH.into(), json!(hash.expose_secret()));
        }
        if let Some(logout_devices) = logout_devices {
            keep.insert(SESSION_LOGOUT_DEVICES.into(), json!(logout_devices));
        }
        if !keep.is_empty() {
            self.store
                .set_ui_auth_session_data(session_id, keep)
                .await?;
        }
        Ok(())
    }

    /// What [`Accounts::keep_for_password_change`] kept in `authorised`'s session.
    pub(super) fn kept_password_change(&self, authorised: &Authorised) -> KeptPasswordChange {
        let data = &authorised.session.serverdict;
        KeptPasswordChange {
            hash: data
                .get(SESSION_PASSWORD_HASH)
                .and_then(Value::as_str)
                .map(SecretString::from),
            logout_devices: data.get(SESSION_LOGOUT_DEVICES).and_then(Value::as_bool),
        }
    }

    /// Spends a session whose operation has been carried out (the account service does it
    /// for the operations it authorises itself).
    pub async fn finish_ui_auth(&self, authorised: &Authorised) -> Result<(), StoreError> {
        self.store
            .delete_ui_auth_session(&authorised.session.session_id)
            .await
    }

    /// Deletes sessions older than Synapse's 48 hours, and unfinished sign-ups older than
    /// `registration_session_lifetime` (giving back the registration token uses they held);
    /// returns how many went.
    pub async fn delete_expired_ui_auth_sessions(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        self.store
            .delete_expired_ui_auth_sessions(
                now - SESSION_LIFETIME_MS,
                now - self.config.registration.session_lifetime_ms,
            )
            .await
    }

    /// How long a session of `path` lasts: a sign-up's as configured, Synapse's 48 hours
    /// for the others.
    fn ui_auth_session_lifetime_ms(&self, path: &str) -> i64 {
        if path.ends_with("/register") {
            self.config.registration.session_lifetime_ms
        } else {
            SESSION_LIFETIME_MS
        }
    }

    /// The stages this user can complete: the password, if passwords may be used to
    /// re-authenticate and the user has one (as Synapse: no stage at all otherwise).
    fn ui_auth_stages(&self, requester: &Requester) -> Vec<&'static str> {
        let password = &self.config.password;
        if password.enabled != PasswordLogin::Disabled
            && password.localdb_enabled
            && requester.user.has_password
        {
            vec![PASSWORD_STAGE]
        } else {
            Vec::new()
        }
    }

    /// The session a request names (live, and for this operation), or a new one; `true`
    /// when new.
    pub(super) async fn ui_auth_session(
        &self,
        session_id: Option<&str>,
        operation: Operation<'_>,
    ) -> Result<(UiAuthSession, bool), UiAuthError> {
        let Some(session_id) = session_id.filter(|s| !s.is_empty()) else {
            return Ok((self.start_ui_auth_session(operation).await?, true));
        };
        let session = self
            .store
            .get_ui_auth_session(session_id)
            .await?
            .filter(|s| s.creation_time_ms > now_ms() - self.ui_auth_session_lifetime_ms(&s.uri))
            .ok_or_else(|| UiAuthError::UnknownSession(session_id.to_owned()))?;
        if (session.method.as_str(), session.uri.as_str()) != (operation.method, operation.path) {
            return Err(UiAuthError::OperationChanged);
        }
        Ok((session, false))
    }

    async fn start_ui_auth_session(
        &self,
        operation: Operation<'_>,
    ) -> Result<UiAuthSession, StoreError> {
        let session_id = crate::secrets::random_alphanumeric(24);
        let now = now_ms();
        self.store
            .create_ui_auth_session(
                &session_id,
                now,
                operation.method,
                operation.path,
                operation.description,
            )
            .await?;
        Ok(UiAuthSession {
            session_id,
            creation_time_ms: now,
            uri: operation.path.to_owned(),
            method: operation.method.to_owned(),
            serverdict: Map::new(),
        })
    }

    /// Checks an `m.login.password` stage: the user ID it proves, or `None` for a wrong
    /// password or a user that cannot log in. Only the requester's own password is checked:
    /// a stage naming another account is answered as a wrong password before any password is
    /// looked at (Synapse checks it, which lets a signed-in user guess another account's
    /// password outside that account's own login limits).
    async fn check_password_stage(
        &self,
        requester: &Requester,
        auth: &AuthSubmission,
    ) -> Result<Option<String>, UiAuthError> {
        if self.config.password.enabled == PasswordLogin::Disabled {
            return Err(UiAuthError::BadSubmission {
                errcode: "M_UNKNOWN",
                message: "Password login has been disabled.",
            });
        }
        let Some(password) = auth.password.clone() else {
            return Err(UiAuthError::BadSubmission {
                errcode: "M_INVALID_PARAM",
                message: "Bad parameter: password",
            });
        };
        let Some(name) = auth.user.as_ref() else {
            return Err(UiAuthError::BadSubmission {
                errcode: "M_INVALID_PARAM",
                message: "Invalid login submission",
            });
        };
        // An e-mail address is found as a login finds it (one no account has names nobody).
        let user = match self.login_user_name(name).await {
            Ok(user) => user,
            Err(LoginNameError::BadAddress(_)) => {
                return Err(UiAuthError::BadSubmission {
                    errcode: "M_UNKNOWN",
                    message: "Unable to parse email address",
                });
            }
            Err(LoginNameError::Store(err)) => return Err(err.into()),
        };
        if !self.names_requester(&user, requester).await? {
            return Ok(None);
        }
        match self.check_password(&user, password).await {
            Ok(PasswordCheck::Matches(user, _)) => Ok(Some(user.name)),
            Ok(PasswordCheck::Deactivated | PasswordCheck::Fails) => Ok(None),
            Err(PasswordCheckError::Store(err)) => Err(err.into()),
            Err(PasswordCheckError::Hash(err)) => Err(err.into()),
        }
    }
}
