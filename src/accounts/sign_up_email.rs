//! Sign-up with a verified e-mail address, as Synapse runs it for legacy clients
//! (`EmailRegisterRequestTokenRestServlet`, `RegistrationSubmitTokenServlet`,
//! `EmailIdentityAuthChecker`): `register/email/requestToken` mails a link, the link's page
//! validates the session, and `POST /register` with `m.login.email.identity` spends it; the
//! account then gets the address (`accounts::sign_up`).
//!
//! The sessions, tokens and their mail are the password reset's (`password_reset.rs`,
//! `send_validation_token`), with Synapse's `registration` mail and link.
//!
//! Where homekey differs from Synapse, on purpose:
//! - The link's page confirms nothing until its form is posted, as the reset's: a mail
//!   scanner following the link must not prove an address for whoever asked.
//! - `next_link` follows `next_link_domain_whitelist` here too (Synapse checks it only for the
//!   password reset).
//! - With `request_token_inhibit_3pid_errors`, an address in use is answered with a made-up
//!   session ID and its "already in use" mail is queued, as Synapse does, without Synapse's
//!   random pause (the mail is queued in a transaction as a real one is).

use super::Accounts;
use super::password_reset::{RequestTokenError, TokenRequest, Validation};
use crate::store::StoreError;

/// Where the sign-up's mailed link leads, under `public_baseurl` (Synapse's path).
pub const SUBMIT_TOKEN_PATH: &str = "/_matrix/client/unstable/registration/email/submit_token";

impl Accounts {
    /// Whether an e-mail address can be verified at sign-up: the `email:` section, on
    /// homekey's own database (as the password reset by e-mail).
    pub fn sign_up_email_enabled(&self) -> bool {
        self.email_reset_enabled()
    }

    /// Synapse's `check_3pid_allowed(…, registration=True)`.
    pub fn threepid_allowed_at_sign_up(&self, medium: &str, address: &str) -> bool {
        self.config.registration.threepid_allowed(medium, address)
    }

    /// `register/email/requestToken`, after the body and `next_link` are checked, in
    /// Synapse's order: `allowed_local_3pids`, `rc_3pid_validation`, an account with the
    /// address, then a session's token and its `registration` mail. Returns the session ID.
    pub async fn request_sign_up_token(
        &self,
        request: TokenRequest,
    ) -> Result<String, RequestTokenError> {
        let medium = request.email.medium.as_str();
        let address = request.email.address.as_str();
        if !self.threepid_allowed_at_sign_up(medium, address) {
            return Err(RequestTokenError::ThreepidDenied);
        }
        self.reset_limits
            .mail_to(medium, &request.client_address, address)
            .map_err(|retry_after_ms| RequestTokenError::RateLimited { retry_after_ms })?;
        if self.store.user_by_threepid(&request.email).await?.is_some() {
            if !self.config.threepid_validation.inhibit_errors {
                return Err(RequestTokenError::ThreepidInUse);
            }
            // The asker is not told; the address's owner is.
            let mail = crate::mail::already_in_use_mail(&self.config, address)
                .map_err(|err| RequestTokenError::Mail(err.to_string()))?;
            self.store.queue_mail(&mail).await?;
            self.mail_queued();
            return Ok(crate::secrets::random_alphanumeric(16));
        }
        self.send_validation_token(request, Validation::SignUp)
            .await
    }

    /// The user confirmed a sign-up's link: the session is validated, as a reset's link
    /// validates its own (the page before it reads with `reset_link_next`). Returns its
    /// `next_link`.
    pub async fn confirm_sign_up_link(
        &self,
        session_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<Result<Option<String>, crate::store::LinkRefusal>, StoreError> {
        self.confirm_reset_link(session_id, client_secret, token)
            .await
    }
}
