//! The account service: every change to an account or its sessions, from any entry point
//! (client API, Admin API, shared-secret registration, `homekey user …`, `user import`), is
//! one method here, called with its [`Actor`]. The service checks the rules (the password
//! rule in [`passwords`], the guards), hashes off the async workers, and makes the change in
//! one store transaction with its audit record. The store is private to it: entry points
//! parse input, call one operation, and render the result or the [`AccountError`].
//!
//! - [`sessions`]: logging in, authenticating a token, logging out, devices.
//! - [`device_activity`]: when each device was last in use.
//! - [`changes`]: creating accounts and changing them (password, admin, lock, deactivation).
//! - [`passwords`]: the one rule for new passwords.
//! - [`beside_synapse`]: Synapse's users and devices kept in line with homekey's.
//! - [`interactive_auth`]: re-authentication before a sensitive operation.
//! - [`mail_delivery`]: the queued mail, delivered by `serve`.
//! - [`migration`]: an existing Synapse's accounts carried into homekey, and back.
//! - [`oauth_clients`]: the OAuth clients that register themselves.
//! - [`oauth_sessions`]: the OAuth API's grants: codes, tokens, their sessions.
//! - [`oauth_device_grants`]: the device authorization grant (a device without a browser).
//! - [`password_reset`]: the e-mail password reset of legacy clients (Synapse's flow).
//! - [`registration_tokens`]: the invitations to sign up, and their validity check.
//! - [`sign_up`]: sign-up over `POST /register`; [`sign_up_page`]: on homekey's own page.
//! - [`actor`], [`error`], [`tokens`]: who acts, what can go wrong, what tokens look like.

pub mod actor;
pub mod appservice_login;
pub mod beside_synapse;
pub mod changes;
pub mod device_activity;
pub mod email_addresses;
pub mod error;
pub mod interactive_auth;
pub mod login_names;
pub mod mail_delivery;
pub mod migration;
pub mod oauth_clients;
pub mod oauth_device_grants;
pub mod oauth_sessions;
pub mod password_reset;
pub mod passwords;
pub mod recovery;
pub mod registration_tokens;
pub mod sessions;
pub mod sign_up;
pub mod sign_up_email;
pub mod sign_up_page;
pub mod tokens;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

pub use actor::{Actor, OperatorActor};
pub use changes::{AccountChanges, NewAccount, NewAccountPassword, Outcome};
pub use error::{AccountError, OnSynapse, PasswordRefusal};
pub use login_names::LoginName;
pub use sessions::{
    AuthError, LoginError, LoginSuccess, PasswordLoginAttempt, RefreshError, Refreshed, TokenUse,
};

use crate::config::Config;
use crate::password::{HashSettings, PasswordHasher};
use crate::rate_limit::{LoginLimiters, RateLimiter};
use crate::store::{
    AuditFilter, AuditRecord, Device, Flavour, Store, StoreError, TokenUser, User, UserFilter,
    UserPage,
};
use crate::synapse::client::SynapseClient;

/// The account service, shared by every request.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: PasswordHasher,
    pub config: Arc<Config>,
    /// `rc_login`: kept in the process, as Synapse keeps them.
    limits: Arc<LoginLimiters>,
    /// `rc_client_registration`, per client address, kept in the process as `rc_login`.
    client_registrations: Arc<RateLimiter>,
    /// User codes typed on the device grant's page, per client address (the same limits as
    /// `rc_client_registration`): 8 letters are guessed only by many tries.
    user_code_entries: Arc<RateLimiter>,
    /// The e-mail password reset's limits ([`password_reset`]), kept in the process.
    reset_limits: Arc<password_reset::ResetLimiters>,
    /// `rc_registration_token_validity`, per client address: a token is guessed only by
    /// many tries.
    token_validity_checks: Arc<RateLimiter>,
    /// `rc_registration`: accounts signed up per client address.
    sign_ups: Arc<RateLimiter>,
    /// `register/available` checks per client address ([`sign_up::AVAILABILITY_CHECKS`]).
    availability_checks: Arc<RateLimiter>,
    /// Verified when a login names no usable account, so that "no such user" takes as long
    /// as "wrong password" and the two cannot be told apart by timing. Made on first use
    /// (`serve` makes it before it listens): a command that checks no password never pays
    /// for it.
    dummy_hash: Arc<tokio::sync::OnceCell<SecretString>>,
    /// Beside Synapse (the config's `synapse:` section): where each new session is made to
    /// exist before its token is handed out, and where changes are delivered
    /// ([`beside_synapse`]).
    synapse: Option<SynapseClient>,
    /// Beside Synapse, in `serve`: this process as the others on the database know it, named
    /// in the delivery leases it takes ([`Accounts::serve_as_instance`]).
    instance: Option<Arc<beside_synapse::ServingInstance>>,
    /// The devices' contacts noted and not written yet ([`device_activity`]).
    activity: Arc<device_activity::DeviceActivity>,
    /// Wakes this process's mail delivery when it queued mail ([`mail_delivery`]).
    mail_wakeup: Arc<mail_delivery::MailWakeup>,
}

/// Who made a request: the owner of a valid access token.
#[derive(Debug, Clone)]
pub struct Requester {
    pub user: TokenUser,
    pub device_id: Option<String>,
    pub token_id: i64,
    /// When the token stops working (ms since the epoch); `None`: never.
    pub valid_until_ms: Option<i64>,
    /// The sign-in to homekey's account page the request came from (its ID's hash), which a
    /// change that signs every other device out spares.
    pub page_session: Option<String>,
    /// The token is one of the OAuth 2.0 API's: what its session was granted.
    pub oauth: Option<crate::store::OAuthGrant>,
    /// The address an admin acts from, recorded with the change (the admin console, whose
    /// audit page shows it; `x_forwarded` decides whose address it is).
    pub client_address: Option<String>,
}

impl Requester {
    /// `user` acting on their own account with no device and no token, from the account
    /// page's sign-in whose ID hashes to `page_session` (after giving the password).
    pub fn on_page(user: &User, page_session: &str) -> Requester {
        Requester {
            page_session: Some(page_session.to_owned()),
            ..Requester::without_token(user)
        }
    }

    /// The same requester, acting from `address`.
    pub fn from_address(self, address: &str) -> Requester {
        Requester {
            client_address: Some(address.to_owned()),
            ..self
        }
    }

    /// `user` acting for their device `device_id` with something other than an access token
    /// (its refresh token, being revoked).
    pub fn of_device(user: &User, device_id: &str) -> Requester {
        Requester {
            device_id: Some(device_id.to_owned()),
            ..Requester::without_token(user)
        }
    }

    /// `user`, with no device, no access token (`token_id` 0 names none: ids start at 1)
    /// and no page session.
    fn without_token(user: &User) -> Requester {
        Requester {
            user: TokenUser {
                name: user.name.clone(),
                admin: user.admin,
                is_guest: user.is_guest,
                deactivated: user.deactivated,
                locked: user.locked,
                has_password: user.password_hash.is_some(),
            },
            device_id: None,
            token_id: 0,
            valid_until_ms: None,
            page_session: None,
            oauth: None,
            client_address: None,
        }
    }
}

/// Milliseconds since the epoch, as Synapse's `*_ms` / `*_ts` columns count them.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Accounts {
    pub fn new(mut store: Store, config: Arc<Config>) -> Accounts {
        // Only homekey's own database serves a Synapse: a Synapse database is Synapse's.
        let beside_synapse = config.synapse.is_some() && store.flavour() == Flavour::Homekey;
        store.owe_synapse(beside_synapse);
        Accounts {
            store,
            hasher: PasswordHasher::new(HashSettings::from_config(&config)),
            limits: Arc::new(LoginLimiters::new(&config.rc_login)),
            client_registrations: Arc::new(RateLimiter::new(config.rc_client_registration)),
            user_code_entries: Arc::new(RateLimiter::new(config.rc_client_registration)),
            reset_limits: Arc::new(password_reset::ResetLimiters::new(&config)),
            token_validity_checks: Arc::new(RateLimiter::new(
                config.registration.rc_registration_token_validity,
            )),
            sign_ups: Arc::new(RateLimiter::new(config.registration.rc_registration)),
            availability_checks: Arc::new(RateLimiter::new(sign_up::AVAILABILITY_CHECKS)),
            synapse: config
                .synapse
                .as_ref()
                .filter(|_| beside_synapse)
                .map(SynapseClient::new),
            instance: None,
            config,
            dummy_hash: Arc::new(tokio::sync::OnceCell::new()),
            activity: Arc::default(),
            mail_wakeup: Arc::default(),
        }
    }

    /// Beside Synapse, homekey's client of Synapse's listener.
    pub fn synapse(&self) -> Option<&SynapseClient> {
        self.synapse.as_ref()
    }

    /// The web pages' sessions: a table of their own on the same database, not accounts
    /// (`crate::web::session` keeps them).
    pub fn web_sessions(&self) -> crate::store::WebSessionTable {
        self.store.web_sessions()
    }

    /// Whose schema the database has.
    pub fn flavour(&self) -> Flavour {
        self.store.flavour()
    }

    /// Waits for running operations and closes the database.
    pub async fn close(&self) {
        self.store.close().await
    }

    /// The account with exactly this ID.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.store.get_user(user_id).await
    }

    /// The accounts whose ID equals `user_id` ignoring case (historical databases may hold
    /// several), as Synapse finds them at login and registration.
    pub async fn find_users_case_insensitive(
        &self,
        user_id: &str,
    ) -> Result<Vec<User>, StoreError> {
        self.store.find_users_case_insensitive(user_id).await
    }

    /// Which of `user_ids` an account has, ignoring case.
    pub async fn taken_user_ids(&self, user_ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        self.store.existing_user_ids(user_ids).await
    }

    /// A page of the users matching `filter`.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        from: i64,
        limit: i64,
    ) -> Result<UserPage, StoreError> {
        self.store.list_users(filter, from, limit).await
    }

    /// A user's devices, by device ID.
    pub async fn list_devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError> {
        self.store.list_devices(user_id).await
    }

    /// One device of a user.
    pub async fn get_device(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<Device>, StoreError> {
        self.store.get_device(user_id, device_id).await
    }

    /// The audit records matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.store.list_audit(filter).await
    }

    /// How many audit records match `filter`, its page aside.
    pub async fn count_audit(&self, filter: &AuditFilter) -> Result<i64, StoreError> {
        self.store.count_audit(filter).await
    }

    /// Refuses, on a Synapse database, a change that would end sessions or deactivate
    /// `user_id` (see [`OnSynapse`]); entry points may ask first, before prompting for
    /// anything, and the operations ask again.
    pub fn refuse_on_synapse(&self, user_id: &str, what: OnSynapse) -> Result<(), AccountError> {
        if self.store.flavour() == Flavour::Synapse {
            return Err(AccountError::RefusedOnSynapse {
                user: user_id.to_owned(),
                what,
            });
        }
        Ok(())
    }

    /// The audit record of `actor`'s change, if that actor's changes are recorded.
    fn audit_record(
        &self,
        actor: &Actor,
        action: crate::audit::Action,
        target: &str,
        details: serde_json::Value,
    ) -> Option<crate::store::NewAuditRecord> {
        let mut details = details;
        if let Actor::Admin(Requester {
            client_address: Some(address),
            ..
        }) = actor
            && let Some(fields) = details.as_object_mut()
        {
            fields.insert("client_address".into(), address.as_str().into());
        }
        actor
            .audit_name()
            .map(|name| crate::audit::record(name, action, target, details))
    }
}
