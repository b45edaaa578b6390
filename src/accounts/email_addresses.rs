//! A user adds an e-mail address of their own on the account page: a short code mailed to
//! the address (`email:` must be configured), typed back on the page, and only then the
//! address added, through [`Accounts::change_email`] as `homekey user email add` adds it
//! (the audit record, Synapse told beside Synapse). The page asks for the password before
//! the code is sent; removing goes straight to `change_email`.

use super::{AccountError, Accounts, Actor, now_ms};
use crate::store::token_forms::digest;
use crate::store::{CodeChecked, NewEmailCode};
use crate::threepid::Threepid;

/// How many wrong codes a sent code takes before it is gone.
pub const CODE_TRIES: i32 = 5;

/// The mail's subject (Synapse's default `subjects.email_validation`).
const SUBJECT: &str = "[%(server_name)s] Validate your email";

/// Why a code was not sent, or not taken.
#[derive(Debug, thiserror::Error)]
pub enum EmailCodeError {
    #[error("this server cannot send mail")]
    MailOff,
    #[error("not an e-mail address")]
    NotAnAddress,
    #[error("the address is already the user's")]
    AlreadyYours,
    /// Whose is not said.
    #[error("the address belongs to another account")]
    InUse,
    #[error("too many codes sent")]
    RateLimited { retry_after_ms: u64 },
    #[error("wrong code")]
    WrongCode { tries_left: i32 },
    #[error("no code is waiting")]
    NoCode,
    #[error("the mail could not be made: {0}")]
    Mail(String),
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<crate::store::StoreError> for EmailCodeError {
    fn from(err: crate::store::StoreError) -> EmailCodeError {
        EmailCodeError::Account(err.into())
    }
}

impl Accounts {
    /// Whether the account page can add an address (it can mail a code).
    pub fn can_mail_codes(&self) -> bool {
        self.config.email.is_some()
    }

    /// Mails a code to `address` for `user_id` to type back (replacing any earlier code),
    /// under `rc_3pid_validation` (per client address and per address, shared with the reset
    /// links; asking about an address taken counts too). Returns the address, canonical.
    pub async fn send_email_code(
        &self,
        user_id: &str,
        address: &str,
        client_address: &str,
    ) -> Result<String, EmailCodeError> {
        if self.config.email.is_none() {
            return Err(EmailCodeError::MailOff);
        }
        let threepid = Threepid::email(address).map_err(|_| EmailCodeError::NotAnAddress)?;
        // Limited before the address is looked up, as Synapse's `requestToken` for adding an
        // address: asking whether addresses are taken counts too.
        self.reset_limits
            .mail_to(threepid.medium.as_str(), client_address, &threepid.address)
            .map_err(|retry_after_ms| EmailCodeError::RateLimited { retry_after_ms })?;
        match self.store.user_by_threepid(&threepid).await? {
            Some(owner) if owner == user_id => return Err(EmailCodeError::AlreadyYours),
            Some(_) => return Err(EmailCodeError::InUse),
            None => {}
        }
        self.mail_code(user_id, &threepid.address, None).await?;
        Ok(threepid.address)
    }

    /// Makes a code for `key` (a user ID, or the sign-up page's key), keeps it with the
    /// sign-up page's user ID and form (JSON) when it is that page's, replacing any earlier
    /// code, and queues its mail to `address` (canonical) in the same transaction. The mail
    /// names the account's user ID, or the one the sign-up page will make.
    pub(super) async fn mail_code(
        &self,
        key: &str,
        address: &str,
        sign_up: Option<(&str, &str)>,
    ) -> Result<(), EmailCodeError> {
        let email = self.config.email.as_ref().ok_or(EmailCodeError::MailOff)?;
        let (user_id, form) = match sign_up {
            Some((user_id, form)) => (user_id, Some(form)),
            None => (key, None),
        };
        let code = six_digits();
        let templates = crate::mail::templates::Templates::for_mail(&self.config);
        let context = minijinja::context! {
            code => &code,
            user_id => user_id,
            sign_up => form.is_some(),
            app_name => &email.app_name,
            server_name => &self.config.server_name,
        };
        let render = |name: &str| {
            templates
                .render(name, &context)
                .map_err(|err| EmailCodeError::Mail(err.to_string()))
        };
        let mail = crate::store::NewMail {
            to: address.to_owned(),
            subject: crate::mail::percent_format(
                SUBJECT,
                &[("server_name", &self.config.server_name)],
            ),
            text: render("homekey_email_code.txt")?,
            html: render("homekey_email_code.html")?,
            only_if_address_known: false,
        };
        let now = now_ms();
        self.store
            .keep_email_code(
                &NewEmailCode {
                    user_id: key,
                    address,
                    code_digest: &digest(&code),
                    expires_ms: now + self.validation_token_lifetime_ms(),
                    tries: CODE_TRIES,
                    sign_up: form,
                },
                &mail,
                now,
            )
            .await?;
        self.mail_queued();
        Ok(())
    }

    /// The address `user_id` was sent a code for and can still type it for.
    pub async fn waiting_email_code(&self, user_id: &str) -> Result<Option<String>, AccountError> {
        Ok(self.store.waiting_email_code(user_id, now_ms()).await?)
    }

    /// The code typed back: if right, the address it was sent to is added to the account by
    /// `actor` (audited as `add_email`). Returns the address.
    pub async fn add_email_by_code(
        &self,
        actor: &Actor,
        user_id: &str,
        code: &str,
    ) -> Result<String, EmailCodeError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let address = match self
            .store
            .check_email_code(user_id, &digest(&code), now_ms())
            .await?
        {
            CodeChecked::Right { address, .. } => address,
            CodeChecked::Wrong { tries_left } => {
                return Err(EmailCodeError::WrongCode { tries_left });
            }
            CodeChecked::NoneWaiting => return Err(EmailCodeError::NoCode),
        };
        match self.change_email(actor, user_id, &address, true).await {
            Ok(_) => Ok(address),
            Err(AccountError::ThreepidInUse(_)) => Err(EmailCodeError::InUse),
            Err(err) => Err(err.into()),
        }
    }
}

/// A code of six digits, from the system's CSPRNG.
fn six_digits() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}
