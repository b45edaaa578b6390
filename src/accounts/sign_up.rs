//! Sign-up: a new account made by the person who will use it, through Synapse's
//! user-interactive `POST /register` (`synapse/rest/client/register.py`,
//! `handlers/registration.py`, `handlers/ui_auth/checkers.py`).
//!
//! The flows come from the config as Synapse computes them: `m.login.dummy` for open
//! sign-up, `m.login.email.identity` when mail is on (alone with `registrations_require_3pid:
//! [email]`; the link is `sign_up_email.rs`'s, and the account gets the proved address),
//! `m.login.registration_token` first when tokens are required, `m.login.terms` first when
//! the operator has terms (`branding.tos_uri`). The first request's parameters
//! (the name, the device, `inhibit_login`) and the password, only as its hash, are kept in
//! the session, so later requests may carry nothing but `auth`.
//!
//! Where homekey differs from Synapse, on purpose:
//! - A registration token's use is spent in the statement that checks it, so two sign-ups
//!   racing for its last use cannot both get it (Synapse checks, then counts).
//! - An unfinished sign-up's session, and the token use it holds, lasts
//!   `registration_session_lifetime` (an hour by default), not 48 hours.
//! - The account, its first session, the token's completed use and the end of the session
//!   are one transaction: a failure leaves no account and no spent token.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::changes::{NewAccount, NewAccountPassword};
use super::error::refuse_nul;
use super::interactive_auth::{AuthSubmission, Operation, StageFailure, UiAuthError};
use super::{AccountError, Accounts, Actor, LoginSuccess, now_ms};
use crate::audit::Action;
use crate::config::RateLimit;
use crate::ids::{UserId, UserIdError};
use crate::store::token_forms::digest;
use crate::store::{
    Admission, EMAIL_IDENTITY_STAGE, REGISTRATION_TOKEN_STAGE, StoreError, TokenStage,
};
use crate::threepid::Threepid;

pub const DUMMY_STAGE: &str = "m.login.dummy";
pub const TERMS_STAGE: &str = "m.login.terms";

/// Where a sign-up's session keeps the password's hash (Synapse's key) and the parameters.
const SESSION_PASSWORD_HASH: &str = "password_hash";
const SESSION_PARAMS: &str = "sign_up_params";

/// `register/available` checks per client address: about one a second, as Synapse's own
/// limiter of that endpoint lets them through, with a burst for a form checked as it is
/// typed. Not configurable in Synapse either.
pub const AVAILABILITY_CHECKS: RateLimit = RateLimit {
    per_second: 1.0,
    burst_count: 5.0,
};

/// How many generated numeric names are tried when others take them at the same moment.
const GENERATED_NAME_TRIES: i64 = 10;

/// What a `POST /register` asks for, its types already checked.
#[derive(Debug, Default)]
pub struct SignUpRequest {
    /// The operation's path, which the session is bound to.
    pub path: String,
    /// The wanted localpart, as sent (lowercased here, as Synapse does).
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub device_id: Option<String>,
    pub initial_device_display_name: Option<String>,
    pub inhibit_login: Option<bool>,
    /// Whether this request asks for a refresh token (read from this request only).
    pub refresh_token: bool,
    pub auth: Option<AuthSubmission>,
    /// The client's address, for `rc_registration` and the audit record.
    pub client_address: String,
}

/// A sign-up that made its account.
#[derive(Debug)]
pub struct SignedUp {
    pub user_id: String,
    /// The first session, unless the client asked for none (`inhibit_login`).
    pub login: Option<LoginSuccess>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("Registration has been disabled")]
    Disabled,
    #[error(transparent)]
    UiAuth(#[from] UiAuthError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("{0}")]
    InvalidUsername(UserIdError),
    #[error("Missing params: password")]
    MissingPassword,
    #[error("Too many requests")]
    RateLimited { retry_after_ms: u64 },
    /// The token the sign-up held was deleted before the account was made (or, on the
    /// sign-up page, the token given is unknown, expired or used up).
    #[error("Invalid registration token")]
    TokenGone,
    /// The sign-up page came without the registration token the server requires.
    #[error("Missing registration token")]
    MissingToken,
    /// The sign-up page came without the terms of service accepted.
    #[error("The terms of service were not accepted")]
    TermsNotAccepted,
    /// The proved address is outside `allowed_local_3pids` (checked again at the end).
    #[error("Third party identifiers (email/phone numbers) are not authorized on this server")]
    ThreepidDenied,
    /// An account got the proved address since it was asked for.
    #[error("email is already in use")]
    ThreepidInUse,
}

impl From<StoreError> for SignUpError {
    fn from(err: StoreError) -> SignUpError {
        match err {
            StoreError::RegistrationTokenGone => SignUpError::TokenGone,
            StoreError::ThreepidInUse(_) => SignUpError::ThreepidInUse,
            other => SignUpError::Account(other.into()),
        }
    }
}

/// The parameters a sign-up's session keeps between its requests.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Params {
    pub(super) username: Option<String>,
    pub(super) device_id: Option<String>,
    pub(super) initial_device_display_name: Option<String>,
    pub(super) inhibit_login: bool,
}

impl Params {
    fn to_json(&self) -> Value {
        json!({
            "username": self.username,
            "device_id": self.device_id,
            "initial_device_display_name": self.initial_device_display_name,
            "inhibit_login": self.inhibit_login,
        })
    }

    fn from_json(value: Option<&Value>) -> Params {
        let text = |key: &str| {
            value
                .and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Params {
            username: text("username"),
            device_id: text("device_id"),
            initial_device_display_name: text("initial_device_display_name"),
            inhibit_login: value
                .and_then(|v| v.get("inhibit_login"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

impl Accounts {
    /// Whether anyone may sign up (`enable_registration`).
    pub fn sign_up_enabled(&self) -> bool {
        self.config.registration.enable_registration
    }

    /// Whether homekey's sign-up page is offered ([`crate::config::RegistrationConfig::page_sign_up`]).
    pub fn sign_up_page_offered(&self) -> bool {
        self.config.registration.page_sign_up()
    }

    /// Checks `rc_registration` for `client_address` without counting (Synapse's first step
    /// of every `POST /register`): the count comes when an account is made.
    pub fn check_sign_up_rate(&self, client_address: &str) -> Result<(), SignUpError> {
        self.sign_ups
            .check(client_address)
            .map_err(|retry_after_ms| SignUpError::RateLimited { retry_after_ms })
    }

    /// Counts a `register/available` check from `client_address`, or refuses it with how
    /// long to wait (ms).
    pub fn count_availability_check(&self, client_address: &str) -> Result<(), u64> {
        self.availability_checks.attempt(client_address)
    }

    /// The sign-up's flows, as Synapse computes them from the config
    /// (`_calculate_registration_flows`): `m.login.dummy` unless an address is required,
    /// `m.login.email.identity` whenever an address can be verified, `m.login.registration_token`
    /// alone with `enable_registration_token_3pid_bypass`; the terms first in each, and a
    /// required token before them in each that has none.
    pub fn sign_up_flows(&self) -> Vec<Vec<&'static str>> {
        let registration = &self.config.registration;
        let mut flows = Vec::new();
        if !registration.require_email {
            flows.push(vec![DUMMY_STAGE]);
        }
        if self.sign_up_email_enabled() {
            flows.push(vec![EMAIL_IDENTITY_STAGE]);
        }
        if registration.token_bypasses_3pid {
            flows.push(vec![REGISTRATION_TOKEN_STAGE]);
        }
        for flow in &mut flows {
            if self.config.branding.tos_uri.is_some() {
                flow.insert(0, TERMS_STAGE);
            }
            if registration.registration_requires_token && !flow.contains(&REGISTRATION_TOKEN_STAGE)
            {
                flow.insert(0, REGISTRATION_TOKEN_STAGE);
            }
        }
        flows
    }

    /// What the stages need to be shown: the terms' link for `m.login.terms`.
    pub fn sign_up_params(&self) -> Value {
        match &self.config.branding.tos_uri {
            Some(url) => json!({
                TERMS_STAGE: {"policies": {"terms_of_service": {
                    "version": "1.0",
                    "en": {"name": "Terms of Service", "url": url},
                }}}
            }),
            None => json!({}),
        }
    }

    /// Whether `localpart` may be signed up for, in Synapse's order and words: the grammar,
    /// then (beside Synapse) Synapse's own check, then homekey's accounts ignoring case.
    /// A taken name is told unless `inhibit_user_in_use_error`.
    pub async fn check_sign_up_name(&self, localpart: &str) -> Result<UserId, SignUpError> {
        let user_id = UserId::parse_new_local(localpart, &self.config.server_name)
            .map_err(SignUpError::InvalidUsername)?;
        let taken = match self.check_name_with_synapse(user_id.as_str()).await {
            Ok(()) => !self
                .store
                .find_users_case_insensitive(user_id.as_str())
                .await?
                .is_empty(),
            Err(AccountError::UserExists(_)) => true,
            Err(other) => return Err(other.into()),
        };
        if taken && !self.config.registration.inhibit_user_in_use_error {
            return Err(AccountError::UserExists(user_id.as_str().to_owned()).into());
        }
        Ok(user_id)
    }

    /// One request of a sign-up: the next stage, or the new account.
    pub async fn sign_up(&self, request: SignUpRequest) -> Result<SignedUp, SignUpError> {
        if !self.sign_up_enabled() {
            return Err(SignUpError::Disabled);
        }
        // Before the session keeps them: PostgreSQL cannot store a NUL.
        refuse_nul("device_id", request.device_id.as_deref())?;
        refuse_nul(
            "initial_device_display_name",
            request.initial_device_display_name.as_deref(),
        )?;
        let actor = Actor::SignUp;
        if let Some(password) = &request.password {
            self.check_new_password(&actor, password)
                .map_err(AccountError::from)?;
        }
        let auth = request.auth.unwrap_or_default();
        let operation = Operation {
            method: "POST",
            path: &request.path,
            description: "register a new account",
        };
        let (session, new) = self
            .ui_auth_session(auth.session.as_deref(), operation)
            .await?;
        let session_id = session.session_id.clone();

        // As Synapse: a request with parameters replaces the session's; one without any
        // continues with them.
        let sent = Params {
            username: request.username.map(|name| name.to_lowercase()),
            device_id: request.device_id,
            initial_device_display_name: request.initial_device_display_name,
            inhibit_login: request.inhibit_login.unwrap_or(false),
        };
        let sent_any = sent != Params::default() || request.inhibit_login.is_some();
        let params = if sent_any {
            sent
        } else {
            Params::from_json(session.serverdict.get(SESSION_PARAMS))
        };
        if let Some(username) = &params.username {
            self.check_sign_up_name(username).await?;
        }

        let failure = self
            .sign_up_stage(&session_id, auth.session.is_some(), &auth)
            .await?;
        let completed = self.store.completed_ui_auth_stages(&session_id).await?;
        let done: Vec<&str> = completed.iter().map(|(stage, _)| stage.as_str()).collect();
        let flows = self.sign_up_flows();
        if !flows
            .iter()
            .any(|flow| flow.iter().all(|stage| done.contains(stage)))
        {
            let mut keep = Map::new();
            if sent_any {
                keep.insert(SESSION_PARAMS.into(), params.to_json());
            }
            if let Some(password) = request.password
                && !session.serverdict.contains_key(SESSION_PASSWORD_HASH)
            {
                let hash = self
                    .hasher
                    .hash(password)
                    .await
                    .map_err(AccountError::from)?;
                keep.insert(SESSION_PASSWORD_HASH.into(), json!(hash.expose_secret()));
            }
            if !keep.is_empty() {
                self.store
                    .set_ui_auth_session_data(&session_id, keep)
                    .await?;
            }
            let first_answer = new && auth.stage.is_none();
            return Err(UiAuthError::Incomplete {
                session_id,
                flows,
                params: self.sign_up_params(),
                completed: (!first_answer)
                    .then(|| completed.into_iter().map(|(stage, _)| stage).collect()),
                failure,
            }
            .into());
        }

        // As Synapse, again here: the address may have been asked for under older rules.
        let threepid = completed
            .iter()
            .find(|(stage, _)| stage == EMAIL_IDENTITY_STAGE)
            .and_then(|(_, proof)| super::password_reset::proved_threepid(proof));
        if let Some(threepid) = &threepid
            && !self.threepid_allowed_at_sign_up(threepid.medium.as_str(), &threepid.address)
        {
            return Err(SignUpError::ThreepidDenied);
        }
        let hash = match request.password {
            Some(password) => self
                .hasher
                .hash(password)
                .await
                .map_err(AccountError::from)?,
            None => session
                .serverdict
                .get(SESSION_PASSWORD_HASH)
                .and_then(Value::as_str)
                .map(SecretString::from)
                .ok_or(SignUpError::MissingPassword)?,
        };
        // Asked for twice and both links confirmed: the first account has it.
        if let Some(threepid) = &threepid
            && self.store.user_by_threepid(threepid).await?.is_some()
        {
            return Err(SignUpError::ThreepidInUse);
        }
        let token = completed
            .iter()
            .find(|(stage, _)| stage == REGISTRATION_TOKEN_STAGE)
            .and_then(|(_, held)| held.as_str().map(str::to_owned));
        self.sign_ups
            .attempt(&request.client_address)
            .map_err(|retry_after_ms| SignUpError::RateLimited { retry_after_ms })?;
        let admitted = Admitted {
            session_id: Some(&session_id),
            token: token.as_deref().map(AdmittingToken::Held),
            threepid,
            client_address: &request.client_address,
            refresh_token: request.refresh_token,
        };
        self.make_signed_up_account(params, hash, admitted).await
    }

    /// Runs the stage `auth` submits, if any: `Some` failure for the client to retry.
    async fn sign_up_stage(
        &self,
        session_id: &str,
        session_named: bool,
        auth: &AuthSubmission,
    ) -> Result<Option<StageFailure>, SignUpError> {
        let offered = |stage: &str| self.sign_up_flows().iter().flatten().any(|s| *s == stage);
        let stage = match auth.stage.as_deref() {
            None => return Ok(None),
            Some(stage) if offered(stage) => stage,
            Some(_) => {
                return Err(UiAuthError::BadSubmission {
                    errcode: "M_UNKNOWN",
                    message: "Unknown login type",
                }
                .into());
            }
        };
        if stage == EMAIL_IDENTITY_STAGE {
            // Synapse's `EmailIdentityAuthChecker`: a validated session of this client's,
            // spent as it completes the stage with what it proved.
            let Some(creds) = &auth.threepid_creds else {
                return Ok(Some(StageFailure::MissingThreepidCreds));
            };
            let spent = self
                .store
                .spend_validated_threepid_session(
                    session_id,
                    &creds.sid,
                    &digest(creds.client_secret.expose_secret()),
                )
                .await?;
            return Ok(spent
                .is_none()
                .then_some(StageFailure::ThreepidNotValidated));
        }
        if stage != REGISTRATION_TOKEN_STAGE {
            // The dummy stage and the terms (the client showed them) succeed as sent.
            self.store
                .complete_ui_auth_stage(session_id, stage, &json!(true))
                .await?;
            return Ok(None);
        }
        let token = match &auth.token {
            None => return Ok(Some(StageFailure::MissingToken)),
            Some(Value::String(token)) => token,
            Some(_) => return Ok(Some(StageFailure::TokenNotString)),
        };
        if !session_named {
            return Ok(Some(StageFailure::MissingSession));
        }
        if super::registration_tokens::check_token(token).is_err() {
            // No token has such a text (and PostgreSQL refuses a NUL in a query's text).
            return Ok(Some(StageFailure::InvalidToken));
        }
        Ok(
            match self
                .store
                .complete_registration_token_stage(session_id, token, now_ms())
                .await?
            {
                TokenStage::Spent | TokenStage::AlreadyHeld => None,
                TokenStage::Changed => Some(StageFailure::TokenChanged),
                TokenStage::Invalid => Some(StageFailure::InvalidToken),
            },
        )
    }

    /// Makes the account of a completed sign-up: its name (the one asked for, or the next
    /// free number as Synapse gives one), its first session unless `inhibit_login`, the
    /// token's use completed and the session spent, in one transaction; then Synapse is
    /// told before the client is.
    async fn make_signed_up_account(
        &self,
        params: Params,
        hash: SecretString,
        admitted: Admitted<'_>,
    ) -> Result<SignedUp, SignUpError> {
        let mut generated = None;
        for attempt in 0..GENERATED_NAME_TRIES {
            let user_id = match &params.username {
                // Checked in full at this request's start (`sign_up`); `create_signed_up`
                // asks Synapse once more and the store refuses a name taken in any case, so
                // a second full check would only ask Synapse again.
                Some(name) => UserId::parse_new_local(name, &self.config.server_name)
                    .map_err(SignUpError::InvalidUsername)?,
                None => {
                    let next = match generated {
                        None => self.store.largest_numeric_localpart().await? + 1,
                        Some(previous) => previous + 1,
                    };
                    generated = Some(next);
                    UserId::from_parts(&next.to_string(), &self.config.server_name)
                        .map_err(SignUpError::InvalidUsername)?
                }
            };
            match self
                .create_signed_up(&params, &hash, &admitted, user_id)
                .await
            {
                Err(SignUpError::Account(AccountError::UserExists(_)))
                    if params.username.is_none() && attempt + 1 < GENERATED_NAME_TRIES => {}
                other => return other,
            }
        }
        unreachable!("the last try returns")
    }

    pub(super) async fn create_signed_up(
        &self,
        params: &Params,
        hash: &SecretString,
        admitted: &Admitted<'_>,
        user_id: UserId,
    ) -> Result<SignedUp, SignUpError> {
        self.check_name_with_synapse(user_id.as_str()).await?;
        let now = now_ms();
        let expiry = self.login_expiry(admitted.refresh_token, now);
        let session = (!params.inhibit_login).then(|| {
            self.new_session(
                user_id.as_str(),
                params.device_id.clone(),
                params.initial_device_display_name.clone(),
                expiry.valid_until_ms,
            )
        });
        let refresh = (session.is_some() && expiry.refreshable)
            .then(|| self.new_refresh_token(user_id.as_str(), now, expiry.ultimate));
        let mut details = json!({"admin": false, "client_address": admitted.client_address});
        if let Some(token) = admitted.token.map(AdmittingToken::text) {
            details["registration_token"] = json!(super::registration_tokens::audit_target(token));
        }
        if let Some(threepid) = &admitted.threepid {
            details["threepids"] = json!([threepid.to_string()]);
        }
        let record = self.audit_record(
            &Actor::SignUp,
            Action::CreateUser,
            user_id.as_str(),
            details,
        );
        let new = super::changes::new_user(
            NewAccount {
                user_id,
                password: NewAccountPassword::Hash(hash.clone()),
                admin: false,
                user_type: None,
                displayname: None,
                avatar_url: None,
                threepids: admitted.threepid.iter().cloned().collect(),
            },
            Some(hash.clone()),
        );
        let admission = Admission {
            registration_token: match admitted.token {
                Some(AdmittingToken::Held(token)) => Some(token),
                _ => None,
            },
            registration_token_now: match admitted.token {
                Some(AdmittingToken::Now(token)) => Some((token, now)),
                _ => None,
            },
            ui_auth_session: admitted.session_id,
            refresh: refresh.as_ref(),
        };
        let (user, token_id) = self
            .store
            .create_user_with_session(&new, session.as_ref(), &admission, record.as_ref())
            .await?;
        self.provision_new_account(&user).await?;
        let login = match (session, token_id) {
            (Some(session), Some(token_id)) => {
                self.announce_session(&session, token_id)
                    .await
                    .map_err(AccountError::from)?;
                Some(LoginSuccess {
                    refresh_token: refresh.map(|refresh| refresh.token),
                    ..super::sessions::login_success(session)
                })
            }
            _ => None,
        };
        Ok(SignedUp {
            user_id: user.name,
            login,
        })
    }
}

/// What admitted a completed sign-up.
pub(super) struct Admitted<'a> {
    /// The user-interactive session (`POST /register`), spent with the account.
    pub(super) session_id: Option<&'a str>,
    pub(super) token: Option<AdmittingToken<'a>>,
    /// The address the e-mail stage proved: the account's.
    pub(super) threepid: Option<Threepid>,
    pub(super) client_address: &'a str,
    pub(super) refresh_token: bool,
}

/// The registration token of a sign-up.
#[derive(Clone, Copy)]
pub(super) enum AdmittingToken<'a> {
    /// Its use was spent at the token stage and is held by the session: now completed.
    Held(&'a str),
    /// Not spent yet (the sign-up page): spent and completed with the account.
    Now(&'a str),
}

impl<'a> AdmittingToken<'a> {
    fn text(self) -> &'a str {
        match self {
            AdmittingToken::Held(token) | AdmittingToken::Now(token) => token,
        }
    }
}
