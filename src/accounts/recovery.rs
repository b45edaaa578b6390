//! Password recovery on homekey's own pages: a link mailed to an account's address (asked
//! for on "Forgot password?", or sent by an admin or the operator) opens a page that sets a
//! new password. Not Synapse's flow for legacy clients (`requestToken`, `submit_token`):
//! its own table (`store/reset_links.rs`), its own page (`web/recovery.rs`).
//!
//! A request for an address no account has takes the very path of a known one: a link kept
//! and a mail queued with `only_if_address_known`, which the delivery drops. So the answer
//! and its timing tell nobody whether the address is known.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::actor::Actor;
use super::error::AccountError;
use super::{Accounts, OnSynapse, now_ms};
use crate::audit::Action;
use crate::store::token_forms::digest;
use crate::store::{Logout, NewResetLink, ResetLink, StoreError};
use crate::threepid::{Medium, Threepid};

/// The page a reset link opens (the token in its query).
pub const RESET_PAGE_PATH: &str = "/_homekey/recovery/reset";

/// Why a link was not made or a password not set.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// No `email:` section: no mail can carry a link.
    #[error("e-mail is not configured on this server (the config has no email: section)")]
    MailOff,
    /// Too many requests from this client address or for this e-mail address
    /// (`rc_3pid_validation`).
    #[error("too many requests; try again later")]
    RateLimited { retry_after_ms: u64 },
    #[error("that is not an e-mail address")]
    NotAnAddress,
    /// Synapse's own database: homekey's links and pages need homekey's.
    #[error(
        "this is a Synapse database: homekey's reset links live in its own database (Synapse's own e-mail reset is Synapse's business)"
    )]
    SynapseDatabase,
    #[error("{0} has no e-mail address to send a reset link to")]
    NoAddress(String),
    #[error("{address} is not an e-mail address of {user}")]
    NotTheUsersAddress { user: String, address: String },
    /// The link was used, expired, or its address left the account.
    #[error("this link was already used or has expired")]
    LinkSpent,
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<StoreError> for RecoveryError {
    fn from(err: StoreError) -> RecoveryError {
        RecoveryError::Account(err.into())
    }
}

/// A link to be sent: where it goes and what it does.
struct Link<'a> {
    address: String,
    return_to: Option<&'a str>,
    logout_devices: Option<bool>,
    by_operator: bool,
}

impl Accounts {
    /// Whether "Forgot password?" is offered: the config can send mail and the database is
    /// homekey's own (a Synapse database keeps no links).
    /// The same condition as Synapse's flow for legacy clients, whose routes bring the
    /// stylesheets when served on their own.
    pub fn recovery_enabled(&self) -> bool {
        self.email_reset_enabled()
    }

    /// "Forgot password?": mails a link to `address` if an account has it, and answers the
    /// same either way. `return_to` is a path on homekey's pages the caller checked (where
    /// the user was going). Rate-limited per client address and per e-mail address
    /// (`rc_3pid_validation`, kept in the process as `rc_login`).
    pub async fn request_password_recovery(
        &self,
        address: &str,
        client_address: &str,
        return_to: Option<&str>,
    ) -> Result<(), RecoveryError> {
        if !self.recovery_enabled() {
            return Err(RecoveryError::MailOff);
        }
        let threepid = Threepid::email(address).map_err(|_| RecoveryError::NotAnAddress)?;
        // The very limit of `requestToken`: both send a validation mail.
        self.reset_limits
            .mail_to(threepid.medium.as_str(), client_address, &threepid.address)
            .map_err(|retry_after_ms| RecoveryError::RateLimited { retry_after_ms })?;
        let link = Link {
            address: threepid.address,
            return_to,
            logout_devices: None,
            by_operator: false,
        };
        self.send_links(&[link], None).await
    }

    /// An admin or the operator sends `user_id` a reset link, to each of the account's
    /// e-mail addresses or to `address` alone (one of them). `logout_devices`: every device
    /// is signed out when the user sets the password. Returns the addresses mailed.
    pub async fn send_reset_link(
        &self,
        actor: &Actor,
        user_id: &str,
        address: Option<&str>,
        logout_devices: bool,
    ) -> Result<Vec<String>, RecoveryError> {
        if self.store.flavour() == crate::store::Flavour::Synapse {
            return Err(RecoveryError::SynapseDatabase);
        }
        if !self.recovery_enabled() {
            return Err(RecoveryError::MailOff);
        }
        let user = self.existing_user(user_id).await?;
        if user.deactivated {
            return Err(AccountError::Deactivated(user.name).into());
        }
        let mut addresses: Vec<String> = self
            .store
            .user_threepids(&user.name)
            .await?
            .into_iter()
            .filter(|t| t.threepid.medium == Medium::Email)
            .map(|t| t.threepid.address)
            .collect();
        if let Some(wanted) = address {
            let wanted = Threepid::email(wanted).map_err(|_| RecoveryError::NotAnAddress)?;
            if !addresses.contains(&wanted.address) {
                return Err(RecoveryError::NotTheUsersAddress {
                    user: user.name,
                    address: wanted.address,
                });
            }
            addresses = vec![wanted.address];
        }
        if addresses.is_empty() {
            return Err(RecoveryError::NoAddress(user.name));
        }
        let links: Vec<Link> = addresses
            .iter()
            .map(|address| Link {
                address: address.clone(),
                return_to: None,
                logout_devices: Some(logout_devices),
                by_operator: true,
            })
            .collect();
        let record = self.audit_record(
            actor,
            Action::SendResetLink,
            &user.name,
            json!({"addresses": addresses.len(), "logout_devices": logout_devices}),
        );
        self.send_links(&links, record.as_ref()).await?;
        Ok(addresses)
    }

    /// Makes a token for each link, keeps their digests and queues their mail in one
    /// transaction, then wakes the delivery.
    async fn send_links(
        &self,
        links: &[Link<'_>],
        audit: Option<&crate::store::NewAuditRecord>,
    ) -> Result<(), RecoveryError> {
        let email = self.config.email.as_ref().ok_or(RecoveryError::MailOff)?;
        let now = now_ms();
        let base = self
            .config
            .public_baseurl
            .clone()
            .unwrap_or_else(|| format!("https://{}/", self.config.server_name));
        let base = base.trim_end_matches('/');
        let mut kept = Vec::with_capacity(links.len());
        for link in links {
            let token = SecretString::from(crate::secrets::random_alphanumeric(43));
            let url = format!("{base}{RESET_PAGE_PATH}?token={}", token.expose_secret());
            let mail = crate::mail::password_recovery_mail(
                &self.config,
                &link.address,
                &url,
                link.by_operator,
            )
            .map_err(|err| {
                tracing::error!(error = %err, "the reset link's mail cannot be made");
                RecoveryError::MailOff
            })?;
            kept.push(NewResetLink {
                token_digest: digest(token.expose_secret()),
                address: link.address.clone(),
                return_to: link.return_to,
                logout_devices: link.logout_devices,
                expires_ms: now + email.validation_token_lifetime_ms,
                mail,
            });
        }
        self.store.keep_reset_links(&kept, now, audit).await?;
        self.mail_queued();
        Ok(())
    }

    /// The link of `token`, if it can still set a password.
    pub async fn reset_link(&self, token: &str) -> Result<Option<ResetLink>, RecoveryError> {
        if !self.recovery_enabled() {
            return Ok(None);
        }
        Ok(self
            .store
            .usable_reset_link(&digest(token), now_ms())
            .await?)
    }

    /// Sets the password of the link's account, checked against the policy, hashed only
    /// once the link is known to be usable; the link is spent in the same transaction.
    /// `sign_out_others` (the user's choice) or the operator's `logout_devices` signs every
    /// device out. Returns the link as it was (its account and where the user was going).
    pub async fn reset_password_with_link(
        &self,
        token: &str,
        password: SecretString,
        sign_out_others: bool,
    ) -> Result<ResetLink, RecoveryError> {
        let link = self
            .reset_link(token)
            .await?
            .ok_or(RecoveryError::LinkSpent)?;
        let user = self.existing_user(&link.user_id).await?;
        let actor = Actor::EmailReset(user.name.clone());
        self.refuse_disabled_password_change(&actor)?;
        if user.deactivated || user.locked {
            return Err(RecoveryError::LinkSpent);
        }
        let logout_devices = sign_out_others || link.logout_devices == Some(true);
        if logout_devices {
            self.refuse_on_synapse(&user.name, OnSynapse::Logout)?;
        }
        let hash = self.hash_new_password(&actor, password).await?;
        let logout = if logout_devices {
            Logout::AllDevices
        } else {
            Logout::Keep
        };
        let record = self.audit_record(
            &actor,
            Action::ResetPasswordByLink,
            &user.name,
            json!({"logout_devices": logout_devices}),
        );
        let done = self
            .store
            .complete_password_reset(
                &digest(token),
                &user.name,
                &hash,
                &logout,
                now_ms(),
                record.as_ref(),
            )
            .await?;
        if !done {
            return Err(RecoveryError::LinkSpent);
        }
        self.deliver_after_change(&user.name).await;
        Ok(link)
    }
}
