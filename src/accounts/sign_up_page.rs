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

use secrecy::SecretString;

use super::sign_up::{Admitted, AdmittingToken, Params, SignUpError};
use super::{AccountError, Accounts, Actor};

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
    /// For `rc_registration`, the token's guesses and the audit record.
    pub client_address: String,
}

impl Accounts {
    /// Makes the account the sign-up page asks for; its user ID.
    pub async fn sign_up_on_page(&self, form: SignUpForm) -> Result<String, SignUpError> {
        if !self.sign_up_page_offered() {
            return Err(SignUpError::Disabled);
        }
        self.check_sign_up_rate(&form.client_address)?;
        let user_id = self
            .check_sign_up_name(&form.username.trim().to_lowercase())
            .await?;
        self.check_new_password(&Actor::SignUp, &form.password)
            .map_err(AccountError::from)?;
        if self.config.branding.tos_uri.is_some() && !form.terms_accepted {
            return Err(SignUpError::TermsNotAccepted);
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
                return Err(SignUpError::TokenGone);
            }
            Some(token)
        } else {
            None
        };
        self.sign_ups
            .attempt(&form.client_address)
            .map_err(|retry_after_ms| SignUpError::RateLimited { retry_after_ms })?;
        let hash = self
            .hasher
            .hash(form.password)
            .await
            .map_err(AccountError::from)?;
        let params = Params {
            username: Some(user_id.localpart().to_owned()),
            inhibit_login: true,
            ..Params::default()
        };
        let admitted = Admitted {
            session_id: None,
            token: token.map(AdmittingToken::Now),
            threepid: None,
            client_address: &form.client_address,
            refresh_token: false,
        };
        let signed_up = self
            .create_signed_up(&params, &hash, &admitted, user_id)
            .await?;
        Ok(signed_up.user_id)
    }
}
