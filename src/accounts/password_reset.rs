//! The e-mail password reset of legacy clients, as Synapse runs it (README, "Forgot
//! password"): `requestToken` mails a link, the link's page confirms it, and a token-less
//! `POST /account/password` completes `m.login.email.identity` and sets the new password.
//!
//! Where homekey differs from Synapse, on purpose:
//! - The client secret and the link's token are kept as digests.
//! - With `request_token_inhibit_3pid_errors`, an address no account has runs the same code
//!   as a known one: a session and a queued mail, which the delivery drops (the mail is
//!   `only_if_address_known`). Synapse answers at once after a random pause instead.
//! - The new password is hashed only once the e-mail stage has passed (Synapse hashes the new
//!   password of every token-less request), and token-less requests are limited per client
//!   address. A password sent before the link was confirmed is not kept: the request that
//!   completes the stage carries it (clients send it every time).
//! - Sessions left without a live token are culled: the reset is completed within the
//!   link's lifetime (`email.validation_token_lifetime`).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::interactive_auth::{AuthSubmission, Authorised, Operation, StageFailure, UiAuthError};
use super::{AccountError, Accounts, Actor, now_ms};
use crate::audit::Action;
use crate::config::Config;
use crate::mail::MailError;
use crate::rate_limit::RateLimiter;
use crate::store::token_forms::digest;
use crate::store::{
    EMAIL_IDENTITY_STAGE, Flavour, LinkRefusal, Logout, NewThreepidToken, StoreError, TokenSent,
};
use crate::threepid::{Medium, Threepid};

/// Where the mailed link leads, under `public_baseurl` (Synapse's path).
pub const SUBMIT_TOKEN_PATH: &str = "/_synapse/client/password_reset/email/submit_token";

/// What a mailed link proves an address for: the mail it comes in and where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Validation {
    /// The password reset: Synapse's `password_reset` mail, dropped at delivery if no account
    /// has the address by then.
    PasswordReset,
    /// Sign-up: Synapse's `registration` mail, to an address no account has.
    SignUp,
}

/// The limits of the flow, kept in the process as `rc_login`'s are.
pub(super) struct ResetLimiters {
    /// `rc_3pid_validation` per (medium, client address).
    by_client: RateLimiter,
    /// `rc_3pid_validation` per (medium, address asked about).
    by_address: RateLimiter,
    /// Token-less `/account/password` per client address (with `rc_login.address`'s values).
    completions: RateLimiter,
}

impl ResetLimiters {
    pub(super) fn new(config: &Config) -> ResetLimiters {
        let rate = config.threepid_validation.rate_limit;
        ResetLimiters {
            by_client: RateLimiter::new(rate),
            by_address: RateLimiter::new(rate),
            completions: RateLimiter::new(config.rc_login.address),
        }
    }
}

impl ResetLimiters {
    /// `rc_3pid_validation` for one more mail to `address` asked from `client_address`
    /// (a reset link or the account page's code: one limit for both); `Err`: the ms to wait.
    pub(super) fn mail_to(
        &self,
        medium: &str,
        client_address: &str,
        address: &str,
    ) -> Result<(), u64> {
        self.by_client
            .attempt(&format!("{medium} {client_address}"))?;
        self.by_address.attempt(&format!("{medium} {address}"))
    }
}

/// A `requestToken` call, parsed.
pub struct TokenRequest {
    /// The address, canonical.
    pub email: Threepid,
    pub client_secret: String,
    pub send_attempt: i64,
    pub next_link: Option<String>,
    pub client_address: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestTokenError {
    #[error("'next_link' domain not included in whitelist, or not http(s)")]
    NextLinkRefused,
    #[error("Too many requests")]
    RateLimited { retry_after_ms: u64 },
    #[error("Email not found")]
    NotFound,
    /// Sign-up: `allowed_local_3pids` has no room for the address.
    #[error("Your email domain is not authorized to register on this server")]
    ThreepidDenied,
    /// Sign-up: an account has the address.
    #[error("Email is already in use")]
    ThreepidInUse,
    /// The mail could not be made (its templates): Synapse's 500.
    #[error("An error was encountered when sending the email")]
    Mail(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a completed e-mail stage proved: the address whose link was confirmed.
pub struct EmailProof {
    pub authorised: Authorised,
    pub threepid: Threepid,
}

impl Accounts {
    /// Whether the flow is on: an `email:` section (Synapse's `can_verify_email`), on
    /// homekey's own database (a Synapse database keeps its sessions in clear, its own way).
    pub fn email_reset_enabled(&self) -> bool {
        self.config.email.is_some() && self.store.flavour() == Flavour::Homekey
    }

    /// Synapse's `assert_valid_next_link`: not a `file:` URL, and a host the
    /// `next_link_domain_whitelist` names when there is one.
    pub fn check_next_link(&self, next_link: &str) -> Result<(), RequestTokenError> {
        let parsed = url::Url::parse(next_link).ok();
        if parsed.as_ref().is_some_and(|url| url.scheme() == "file") {
            return Err(RequestTokenError::NextLinkRefused);
        }
        if let Some(hosts) = &self.config.threepid_validation.next_link_hosts {
            let host = parsed.as_ref().and_then(|url| url.host_str());
            if !host.is_some_and(|host| hosts.iter().any(|allowed| allowed == host)) {
                return Err(RequestTokenError::NextLinkRefused);
            }
        }
        Ok(())
    }

    /// `requestToken`, after the body and `next_link` are checked: the rate limits, the
    /// address, then a session's token and its mail. Returns the session ID.
    pub async fn request_password_reset_token(
        &self,
        request: TokenRequest,
    ) -> Result<String, RequestTokenError> {
        let medium = request.email.medium.as_str();
        let address = request.email.address.as_str();
        let limited = |retry_after_ms| RequestTokenError::RateLimited { retry_after_ms };
        let limits = &self.reset_limits;
        limits
            .mail_to(medium, &request.client_address, address)
            .map_err(limited)?;
        let known = self.store.user_by_threepid(&request.email).await?.is_some();
        if !known && !self.config.threepid_validation.inhibit_errors {
            return Err(RequestTokenError::NotFound);
        }
        // From here a known and an unknown address run the same code: only the delivery
        // tells them apart (it drops a mail whose address no account has).
        self.send_validation_token(request, Validation::PasswordReset)
            .await
    }

    /// Synapse's `send_threepid_validation`: a session for (address, client secret) made or
    /// continued, and if `send_attempt` is new, a token kept and its mail queued in one
    /// transaction. Returns the session ID.
    pub(super) async fn send_validation_token(
        &self,
        request: TokenRequest,
        validation: Validation,
    ) -> Result<String, RequestTokenError> {
        let medium = request.email.medium.as_str();
        let address = request.email.address.as_str();
        let secret = digest(&request.client_secret);
        let existing = self
            .store
            .unvalidated_threepid_session(medium, address, &secret)
            .await?;
        if let Some((session_id, last)) = &existing
            && request.send_attempt <= *last
        {
            return Ok(session_id.clone());
        }
        let session_id = existing
            .map(|(session_id, _)| session_id)
            .unwrap_or_else(|| crate::secrets::random_alphanumeric(16));
        let token = crate::secrets::random_alphanumeric(32);
        type MakeMail = fn(&Config, &str, &str) -> Result<crate::store::NewMail, MailError>;
        let (path, made): (&str, MakeMail) = match validation {
            Validation::PasswordReset => (SUBMIT_TOKEN_PATH, crate::mail::password_reset_mail),
            Validation::SignUp => (
                super::sign_up_email::SUBMIT_TOKEN_PATH,
                crate::mail::registration_mail,
            ),
        };
        let link = submit_token_link(
            &self.config,
            path,
            &token,
            &request.client_secret,
            &session_id,
        );
        let mail = made(&self.config, address, &link)
            .map_err(|err| RequestTokenError::Mail(err.to_string()))?;
        let next_link = request
            .next_link
            .as_deref()
            .map(|next| with_sid(next, &session_id));
        let now = now_ms();
        let sent = self
            .store
            .send_threepid_token(
                &NewThreepidToken {
                    session_id: &session_id,
                    medium,
                    address,
                    client_secret_digest: &secret,
                    send_attempt: request.send_attempt,
                    token_digest: &digest(&token),
                    next_link: next_link.as_deref(),
                    expires_ms: now + self.validation_token_lifetime_ms(),
                },
                &mail,
                now,
            )
            .await?;
        Ok(match sent {
            TokenSent::Queued => {
                self.mail_queued();
                session_id
            }
            TokenSent::Repeat(session_id) => session_id,
        })
    }

    /// The link's page, before the user confirms: the `next_link` the confirmation will
    /// lead to, if the token is the session's. Reads only.
    pub async fn reset_link_next(
        &self,
        session_id: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .threepid_token_next_link(session_id, &digest(token))
            .await?
            .flatten())
    }

    /// The user confirmed the link: the session is validated. Returns its `next_link`.
    pub async fn confirm_reset_link(
        &self,
        session_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<Result<Option<String>, LinkRefusal>, StoreError> {
        self.store
            .confirm_threepid_link(session_id, &digest(client_secret), &digest(token), now_ms())
            .await
    }

    /// One request of user-interactive auth for a token-less `/account/password`: the one
    /// flow is `m.login.email.identity`, completed by a validated session (then spent).
    pub async fn email_identity_auth(
        &self,
        auth: Option<AuthSubmission>,
        operation: Operation<'_>,
        client_address: &str,
    ) -> Result<EmailProof, UiAuthError> {
        if let Err(retry_after_ms) = self.reset_limits.completions.attempt(client_address) {
            return Err(UiAuthError::RateLimited { retry_after_ms });
        }
        let auth = auth.unwrap_or_default();
        let (session, new) = self
            .ui_auth_session(auth.session.as_deref(), operation)
            .await?;
        let mut failure = None;
        match auth.stage.as_deref() {
            None => {}
            Some(EMAIL_IDENTITY_STAGE) => match &auth.threepid_creds {
                None => failure = Some(StageFailure::MissingThreepidCreds),
                Some(creds) => {
                    let spent = self
                        .store
                        .spend_validated_threepid_session(
                            &session.session_id,
                            &creds.sid,
                            &digest(creds.client_secret.expose_secret()),
                        )
                        .await?;
                    if spent.is_none() {
                        failure = Some(StageFailure::ThreepidNotValidated);
                    }
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
        if let Some(threepid) = completed
            .iter()
            .find(|(stage, _)| stage == EMAIL_IDENTITY_STAGE)
            .and_then(|(_, proof)| proved_threepid(proof))
        {
            return Ok(EmailProof {
                authorised: Authorised { session },
                threepid,
            });
        }
        let first_answer = new && auth.stage.is_none();
        Err(UiAuthError::Incomplete {
            session_id: session.session_id,
            flows: vec![vec![EMAIL_IDENTITY_STAGE]],
            params: serde_json::json!({}),
            completed: (!first_answer)
                .then(|| completed.into_iter().map(|(stage, _)| stage).collect()),
            failure,
        })
    }

    /// Checks a new password sent with a token-less `/account/password` before anything
    /// else, as Synapse does (the account is not known yet; the rule is the user's own).
    pub fn check_reset_password(
        &self,
        password: &SecretString,
    ) -> Result<(), super::PasswordRefusal> {
        self.check_new_password(&Actor::EmailReset(String::new()), password)
    }

    /// Sets the password of the account that has the address `proof` proved, once its
    /// e-mail stage is complete: the account found (gone: [`AccountError::EmailNotFound`]),
    /// password changes allowed, the password checked and only now hashed, and with
    /// `logout_devices` (default true) every device, token and page session ended. Recorded
    /// as a `reset_password` by the user; the user-interactive auth session is spent.
    pub async fn reset_password_by_email(
        &self,
        proof: &EmailProof,
        password: Option<SecretString>,
        logout_devices: Option<bool>,
    ) -> Result<String, AccountError> {
        let password = password.ok_or(AccountError::NoNewPassword)?;
        let user_id = self
            .store
            .user_by_threepid(&proof.threepid)
            .await?
            .ok_or(AccountError::EmailNotFound)?;
        let actor = Actor::EmailReset(user_id.clone());
        self.refuse_disabled_password_change(&actor)?;
        let user = self.existing_user(&user_id).await?;
        if user.deactivated {
            return Err(AccountError::DeactivatedGetsNoPassword(user.name));
        }
        let logout_devices = logout_devices.unwrap_or(true);
        if logout_devices {
            self.refuse_on_synapse(&user.name, super::OnSynapse::Logout)?;
        }
        let hash = self.hash_new_password(&actor, password).await?;
        let logout = if logout_devices {
            Logout::AllDevices
        } else {
            Logout::Keep
        };
        let record = self.audit_record(
            &actor,
            Action::ResetPassword,
            &user.name,
            json!({"logout_devices": logout_devices, "by_email": true}),
        );
        self.store
            .set_password_hash(&user.name, Some(&hash), &logout, record.as_ref())
            .await?;
        self.deliver_after_change(&user.name).await;
        self.finish_ui_auth(&proof.authorised).await?;
        Ok(user.name)
    }

    /// Deletes expired link tokens and the sessions left without one (every 30 minutes in
    /// `serve`, as Synapse); returns how many sessions went.
    /// The account page's expired e-mail codes go too.
    pub async fn cull_reset_links(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        self.store.cull_email_codes(now).await?;
        self.store.cull_threepid_validation(now).await
    }

    /// `email.validation_token_lifetime`, in milliseconds.
    pub(super) fn validation_token_lifetime_ms(&self) -> i64 {
        self.config
            .email
            .as_ref()
            .map_or(60 * 60 * 1000, |email| email.validation_token_lifetime_ms)
    }
}

/// The mailed link: `{public_baseurl}` and `path` (`_synapse/client/password_reset/…` or
/// `_matrix/client/unstable/registration/…`), `?token=&client_secret=&sid=` (Synapse's default
/// `public_baseurl` is `https://<server_name>/`).
fn submit_token_link(
    config: &Config,
    path: &str,
    token: &str,
    client_secret: &str,
    session_id: &str,
) -> String {
    let base = config
        .public_baseurl
        .clone()
        .unwrap_or_else(|| format!("https://{}/", config.server_name));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("client_secret", client_secret)
        .append_pair("sid", session_id)
        .finish();
    format!("{}{path}?{query}", base.trim_end_matches('/'))
}

/// `next_link` with the session ID added to its query, as Synapse adds it (the client gets
/// the ID only in the answer, after the mail is made).
fn with_sid(next_link: &str, session_id: &str) -> String {
    let separator = if next_link.contains('?') { '&' } else { '?' };
    let sid: String = form_urlencoded::byte_serialize(session_id.as_bytes()).collect();
    format!("{next_link}{separator}sid={sid}")
}

/// The address a completed e-mail stage proved (its stored result).
pub(super) fn proved_threepid(proof: &Value) -> Option<Threepid> {
    let medium = Medium::parse(proof.get("medium")?.as_str()?)?;
    let address = proof.get("address")?.as_str()?;
    Threepid::parse(medium.as_str(), address).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_and_next_link_carry_the_session_as_synapse_makes_them() {
        let mut config = Config::builtin();
        config.public_baseurl = Some("https://matrix.example.com/".into());
        assert_eq!(
            submit_token_link(&config, SUBMIT_TOKEN_PATH, "tok", "a=b", "sid1"),
            "https://matrix.example.com/_synapse/client/password_reset/email/submit_token\
             ?token=tok&client_secret=a%3Db&sid=sid1"
        );
        assert_eq!(
            submit_token_link(
                &config,
                crate::accounts::sign_up_email::SUBMIT_TOKEN_PATH,
                "tok",
                "s",
                "sid1"
            ),
            "https://matrix.example.com/_matrix/client/unstable/registration/email/submit_token\
             ?token=tok&client_secret=s&sid=sid1"
        );
        assert_eq!(
            with_sid("https://app.example/reset", "S"),
            "https://app.example/reset?sid=S"
        );
        assert_eq!(
            with_sid("https://app.example/reset?x=1", "S"),
            "https://app.example/reset?x=1&sid=S"
        );
    }
}
