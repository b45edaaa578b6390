//! Sign-up on homekey's own page (`web/sign_up.rs`), where an OAuth 2.0 client sends a user
//! with `prompt=create`: the same rules as `POST /register` ([`super::sign_up`]) in one
//! request, with no user-interactive session between steps.
//!
//! - `rc_registration` per client address: checked first, counted once the form is good
//!   (as an account made through `POST /register` counts);
//! - the name by `check_sign_up_name` (Synapse's grammar, Synapse's own check, homekey's
//!   accounts ignoring case), the password by the policy (`Actor::SignUp`), the terms when
//!   the operator has some;
//! - the registration token, when required: a guess counted against
//!   `rc_registration_token_validity`, then its use spent **and** completed in the
//!   transaction that makes the account, in one statement that checks and counts (a token
//!   used up meanwhile makes nothing);
//! - audited as `POST /register`'s accounts (actor "sign-up", the token's digest, the
//!   address), and provisioned in Synapse before the page signs the user in. No device: the
//!   OAuth grant that follows makes it.
//!
//! When `registrations_require_3pid: [email]`, the form asks for an address too, and a good
//! form makes no account yet: the address is checked as `register/email/requestToken`
//! checks it (`allowed_local_3pids`, `rc_3pid_validation`, not in use), and a code is mailed
//! to it as the account page's ([`super::email_addresses`]: same mail, tries and lifetime).
//! The form waits with the code (the name, the password's hash, the token), keyed by the
//! page's session; the right code makes the account as above, with the address.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::email_addresses::EmailCodeError;
use super::sign_up::{Admitted, AdmittingToken, Params, SignUpError};
use super::{AccountError, Accounts, Actor, now_ms};
use crate::ids::UserId;
use crate::store::CodeChecked;
use crate::store::token_forms::digest;
use crate::threepid::Threepid;

/// What the sign-up page's form sends, its passwords already found equal.
#[derive(Debug)]
pub struct SignUpForm {
    /// The wanted name, as typed (lowercased here, as Synapse does).
    pub username: String,
    pub password: SecretString,
    /// Only read when the server requires a token.
    pub registration_token: Option<String>,
    /// The terms' box ticked (only read when the operator has terms).
    pub terms_accepted: bool,
    /// Only read when the server requires an address.
    pub email: Option<String>,
    /// For `rc_registration`, the token's guesses and the audit record.
    pub client_address: String,
}

/// What a good form did.
#[derive(Debug)]
pub enum PageSignUp {
    /// The account, made: its user ID.
    Made(String),
    /// An address is required: a code was mailed to it (canonical), nothing made yet.
    CodeMailed(String),
}

/// Why the page's sign-up stopped: the sign-up's rules, or the address's code.
#[derive(Debug, thiserror::Error)]
pub enum PageSignUpError {
    #[error(transparent)]
    SignUp(#[from] SignUpError),
    #[error(transparent)]
    Code(#[from] EmailCodeError),
}

impl From<AccountError> for PageSignUpError {
    fn from(err: AccountError) -> PageSignUpError {
        PageSignUpError::SignUp(err.into())
    }
}

impl From<crate::store::StoreError> for PageSignUpError {
    fn from(err: crate::store::StoreError) -> PageSignUpError {
        PageSignUpError::SignUp(err.into())
    }
}

/// The form waiting with its code (the code row's `sign_up`): never the password itself.
#[derive(Serialize, Deserialize)]
struct Waiting {
    localpart: String,
    password_hash: String,
    registration_token: Option<String>,
}

/// The key the page's code waits under: not a user ID (those start with `@`).
pub fn code_key(page_session: &str) -> String {
    format!("sign-up:{page_session}")
}

impl Accounts {
    /// Whether the sign-up page asks for an e-mail address (and mails it a code).
    pub fn sign_up_page_needs_email(&self) -> bool {
        self.config.registration.require_email
    }

    /// Makes the account the sign-up page asks for, or, when an address is required, mails
    /// the code that will (kept under [`code_key`] of `page_session`).
    pub async fn sign_up_on_page(
        &self,
        form: SignUpForm,
        page_session: &str,
    ) -> Result<PageSignUp, PageSignUpError> {
        if !self.sign_up_page_offered() {
            return Err(SignUpError::Disabled.into());
        }
        self.check_sign_up_rate(&form.client_address)?;
        let user_id = self
            .check_sign_up_name(&form.username.trim().to_lowercase())
            .await?;
        self.check_new_password(&Actor::SignUp, &form.password)
            .map_err(AccountError::from)?;
        if self.config.branding.tos_uri.is_some() && !form.terms_accepted {
            return Err(SignUpError::TermsNotAccepted.into());
        }
        let token = if self.config.registration.registration_requires_token {
            let token = form
                .registration_token
                .as_deref()
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or(SignUpError::MissingToken)?;
            // Each token tried is a guess: limited as the validity check limits them.
            self.count_token_validity_check(&form.client_address)
                .map_err(|retry_after_ms| SignUpError::RateLimited { retry_after_ms })?;
            if !self.registration_token_is_valid(token).await? {
                return Err(SignUpError::TokenGone.into());
            }
            Some(token)
        } else {
            None
        };
        if self.sign_up_page_needs_email() {
            let address = form.email.as_deref().unwrap_or("");
            return self
                .mail_sign_up_code(&form, user_id, token, address, page_session)
                .await
                .map(PageSignUp::CodeMailed);
        }
        self.sign_ups
            .attempt(&form.client_address)
            .map_err(|retry_after_ms| SignUpError::RateLimited { retry_after_ms })?;
        let hash = self
            .hasher
            .hash(form.password)
            .await
            .map_err(AccountError::from)?;
        self.make_page_account(&hash, token, None, user_id, &form.client_address)
            .await
            .map(PageSignUp::Made)
    }

    /// A good form's address, checked as `register/email/requestToken` checks it
    /// (`allowed_local_3pids`, `rc_3pid_validation`, then an account with it), mailed a code
    /// that waits with the form. Returns the address, canonical.
    async fn mail_sign_up_code(
        &self,
        form: &SignUpForm,
        user_id: UserId,
        token: Option<&str>,
        address: &str,
        page_session: &str,
    ) -> Result<String, PageSignUpError> {
        if !self.can_mail_codes() {
            return Err(EmailCodeError::MailOff.into());
        }
        let threepid = Threepid::email(address.trim()).map_err(|_| EmailCodeError::NotAnAddress)?;
        if !self.threepid_allowed_at_sign_up(threepid.medium.as_str(), &threepid.address) {
            return Err(SignUpError::ThreepidDenied.into());
        }
        self.reset_limits
            .mail_to(
                threepid.medium.as_str(),
                &form.client_address,
                &threepid.address,
            )
            .map_err(|retry_after_ms| EmailCodeError::RateLimited { retry_after_ms })?;
        if self.store.user_by_threepid(&threepid).await?.is_some() {
            return Err(SignUpError::ThreepidInUse.into());
        }
        let hash = self
            .hasher
            .hash(form.password.clone())
            .await
            .map_err(AccountError::from)?;
        let waiting = Waiting {
            localpart: user_id.localpart().to_owned(),
            password_hash: hash.expose_secret().to_owned(),
            registration_token: token.map(str::to_owned),
        };
        let waiting =
            serde_json::to_string(&waiting).map_err(|err| EmailCodeError::Mail(err.to_string()))?;
        self.mail_code(
            &code_key(page_session),
            &threepid.address,
            Some((user_id.as_str(), &waiting)),
        )
        .await?;
        Ok(threepid.address)
    }

    /// The address the page session's code was mailed to, while it can still be typed.
    pub async fn waiting_sign_up_code(
        &self,
        page_session: &str,
    ) -> Result<Option<String>, AccountError> {
        Ok(self
            .store
            .waiting_email_code(&code_key(page_session), now_ms())
            .await?)
    }

    /// The code typed back on the sign-up page: if right, the form that waited with it makes
    /// the account, the address its own (checked again: the rules may have changed, the name
    /// or the address been taken meanwhile). Its user ID.
    pub async fn finish_sign_up_on_page(
        &self,
        page_session: &str,
        code: &str,
        client_address: &str,
    ) -> Result<String, PageSignUpError> {
        if !self.sign_up_page_offered() {
            return Err(SignUpError::Disabled.into());
        }
        self.check_sign_up_rate(client_address)?;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let (address, waiting) = match self
            .store
            .check_email_code(&code_key(page_session), &digest(&code), now_ms())
            .await?
        {
            CodeChecked::Right {
                address,
                sign_up: Some(waiting),
            } => (address, waiting),
            CodeChecked::Wrong { tries_left } => {
                return Err(EmailCodeError::WrongCode { tries_left }.into());
            }
            CodeChecked::Right { sign_up: None, .. } | CodeChecked::NoneWaiting => {
                return Err(EmailCodeError::NoCode.into());
            }
        };
        let waiting: Waiting =
            serde_json::from_str(&waiting).map_err(|err| EmailCodeError::Mail(err.to_string()))?;
        let user_id = self.check_sign_up_name(&waiting.localpart).await?;
        let threepid = Threepid::email(&address).map_err(|_| EmailCodeError::NotAnAddress)?;
        if !self.threepid_allowed_at_sign_up(threepid.medium.as_str(), &threepid.address) {
            return Err(SignUpError::ThreepidDenied.into());
        }
        if self.store.user_by_threepid(&threepid).await?.is_some() {
            return Err(SignUpError::ThreepidInUse.into());
        }
        self.sign_ups
            .attempt(client_address)
            .map_err(|retry_after_ms| SignUpError::RateLimited { retry_after_ms })?;
        let hash = SecretString::from(waiting.password_hash);
        self.make_page_account(
            &hash,
            waiting.registration_token.as_deref(),
            Some(threepid),
            user_id,
            client_address,
        )
        .await
    }

    /// The account, its token (if any) spent and completed with it, audited and provisioned.
    async fn make_page_account(
        &self,
        hash: &SecretString,
        token: Option<&str>,
        threepid: Option<Threepid>,
        user_id: UserId,
        client_address: &str,
    ) -> Result<String, PageSignUpError> {
        let params = Params {
            username: Some(user_id.localpart().to_owned()),
            inhibit_login: true,
            ..Params::default()
        };
        let admitted = Admitted {
            session_id: None,
            token: token.map(AdmittingToken::Now),
            threepid,
            client_address,
            refresh_token: false,
        };
        let signed_up = self
            .create_signed_up(&params, hash, &admitted, user_id)
            .await?;
        Ok(signed_up.user_id)
    }
}
