//! Creating accounts and changing them: passwords, the admin flag, locks, deactivation,
//! several fields at once, display names. Each change is one store transaction holding its
//! audit record; the changes that can end an admin's power are decided inside it (see
//! `store::AdminGuard`).

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::error::refuse_nul;
use super::interactive_auth::Authorised;
use super::{AccountError, Accounts, Actor, LoginSuccess, OnSynapse, Requester, now_ms};
use crate::audit::Action;
use crate::config::PasswordLogin;
use crate::ids::UserId;
use crate::store::{
    AccountThreepid, AdminGuard, Admission, Deactivation, Logout, NewAuditRecord, NewUser, User,
    UserChanges,
};
use crate::threepid::Threepid;

/// A new account, as an entry point asks for it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user_id: UserId,
    pub password: NewAccountPassword,
    pub admin: bool,
    pub user_type: Option<String>,
    /// As Synapse: none given means the localpart; an empty one means no display name.
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    /// Its third-party IDs (e-mail addresses).
    pub threepids: Vec<Threepid>,
}

/// The password a new account starts with.
#[derive(Debug, Clone)]
pub enum NewAccountPassword {
    /// No password: the account cannot log in with one (SSO, bots with tokens).
    None,
    /// Checked by the password rule and hashed by the service.
    Plain(SecretString),
    /// A hash made elsewhere (an import): only its scheme is checked.
    Hash(SecretString),
}

/// Whether a change had anything to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    /// The account already was as asked: nothing was written, nothing recorded.
    Unchanged,
}

/// What an admin's `PUT /_synapse/admin/v2/users/<id>` asks of an existing account (`None`:
/// leave it as it is).
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    /// `Some(None)` or `Some(Some(""))` clears the display name.
    pub displayname: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub admin: Option<bool>,
    pub password: Option<SecretString>,
    /// With a new password: whether the user's other sessions end.
    pub logout_devices: bool,
    pub deactivated: Option<bool>,
    pub locked: Option<bool>,
    pub user_type: Option<Option<String>>,
    /// The whole set of third-party IDs, replacing the account's.
    pub threepids: Option<Vec<Threepid>>,
}

impl Accounts {
    /// Creates an account (its password checked and hashed by the rule for `actor`).
    pub async fn create_user(&self, actor: &Actor, new: NewAccount) -> Result<User, AccountError> {
        self.check_name_with_synapse(new.user_id.as_str()).await?;
        let (user, record) = self.prepare_new_user(actor, new).await?;
        let user = self.store.create_user(&user, record.as_ref()).await?;
        self.provision_new_account(&user).await?;
        Ok(user)
    }

    /// Registers an account and logs it in on a new device in one transaction (shared-secret
    /// registration): a failure leaves neither, so the client's retry is not `M_USER_IN_USE`.
    pub async fn register_and_log_in(
        &self,
        actor: &Actor,
        new: NewAccount,
    ) -> Result<LoginSuccess, AccountError> {
        self.check_name_with_synapse(new.user_id.as_str()).await?;
        let (user, record) = self.prepare_new_user(actor, new).await?;
        let session = self.new_session(user.user_id.as_str(), None, None, None);
        let (user, token_id) = self
            .store
            .create_user_with_session(
                &user,
                Some(&session),
                &Admission::default(),
                record.as_ref(),
            )
            .await?;
        self.provision_new_account(&user).await?;
        if let Some(token_id) = token_id {
            self.announce_session(&session, token_id).await?;
        }
        Ok(LoginSuccess {
            user_id: session.user_id,
            device_id: session.device_id,
            access_token: session.access_token,
            valid_until_ms: None,
            refresh_token: None,
        })
    }

    /// Creates the accounts whose names are not taken (ignoring case), all in one
    /// transaction, each with its record; the others are passed over. Plain passwords are
    /// hashed on every core at once. Returns which were created, in order (`user import`).
    pub async fn create_users(
        &self,
        actor: &Actor,
        accounts: Vec<NewAccount>,
    ) -> Result<Vec<bool>, AccountError> {
        for account in &accounts {
            self.check_name_with_synapse(account.user_id.as_str())
                .await?;
        }
        let mut hashing = tokio::task::JoinSet::new();
        for (index, account) in accounts.iter().enumerate() {
            if let NewAccountPassword::Plain(password) = &account.password {
                self.check_new_password(actor, password)?;
                let hasher = self.hasher.clone();
                let password = password.clone();
                hashing.spawn(async move { (index, hasher.hash(password).await) });
            }
        }
        let mut hashes = vec![None; accounts.len()];
        while let Some(joined) = hashing.join_next().await {
            let (index, hash) = joined.expect("hashing does not panic");
            hashes[index] = Some(hash?);
        }
        let mut rows = Vec::with_capacity(accounts.len());
        for (account, hash) in accounts.into_iter().zip(hashes) {
            let hash = match &account.password {
                NewAccountPassword::Hash(given) => {
                    self.check_given_hash(given)?;
                    Some(given.clone())
                }
                _ => hash,
            };
            let details = json!({"admin": account.admin, "import": true});
            let record =
                self.audit_record(actor, Action::CreateUser, account.user_id.as_str(), details);
            rows.push((new_user(account, hash), record));
        }
        Ok(self.store.create_users(&rows).await?)
    }

    /// The row of a new account and its audit record, its password checked and hashed.
    async fn prepare_new_user(
        &self,
        actor: &Actor,
        new: NewAccount,
    ) -> Result<(NewUser, Option<NewAuditRecord>), AccountError> {
        refuse_nul("displayname", new.displayname.as_deref())?;
        let hash = match &new.password {
            NewAccountPassword::None => None,
            NewAccountPassword::Plain(password) => {
                Some(self.hash_new_password(actor, password.clone()).await?)
            }
            NewAccountPassword::Hash(hash) => {
                self.check_given_hash(hash)?;
                Some(hash.clone())
            }
        };
        let mut details = json!({"admin": new.admin});
        if let Some(user_type) = &new.user_type {
            details["user_type"] = json!(user_type);
        }
        let record = self.audit_record(actor, Action::CreateUser, new.user_id.as_str(), details);
        Ok((new_user(new, hash), record))
    }

    /// Whether passwords can be changed through the API (`m.change_password`): as Synapse,
    /// only where they log in (`only_for_reauth` re-authenticates with a password but never
    /// changes one).
    pub fn can_change_password(&self) -> bool {
        self.config.password.enabled == PasswordLogin::Enabled
            && self.config.password.localdb_enabled
    }

    /// Whether `actor` may change passwords at all: over HTTP only where
    /// [`Accounts::can_change_password`]; the operator at the server always.
    pub(super) fn refuse_disabled_password_change(
        &self,
        actor: &Actor,
    ) -> Result<(), AccountError> {
        if !matches!(actor, Actor::Operator(_)) && !self.can_change_password() {
            return Err(AccountError::PasswordChangeDisabled);
        }
        Ok(())
    }

    /// Sets a user's password (an admin's reset, the operator's `set-password`). With
    /// `logout_devices`, every device and token of the user goes in the same transaction,
    /// except the actor's own device when they change their own password.
    pub async fn set_password(
        &self,
        actor: &Actor,
        user_id: &str,
        password: SecretString,
        logout_devices: bool,
    ) -> Result<(), AccountError> {
        self.refuse_disabled_password_change(actor)?;
        let user = self.existing_user(user_id).await?;
        if user.deactivated {
            return Err(AccountError::DeactivatedGetsNoPassword(user.name));
        }
        if logout_devices {
            self.refuse_on_synapse(&user.name, OnSynapse::Logout)?;
        }
        let hash = self.hash_new_password(actor, password).await?;
        let logout = self.password_logout(actor, &user.name, logout_devices);
        let record = self.audit_record(
            actor,
            Action::ResetPassword,
            &user.name,
            json!({"logout_devices": logout_devices}),
        );
        self.store
            .set_password_hash(&user.name, Some(&hash), &logout, record.as_ref())
            .await?;
        self.deliver_after_change(&user.name).await;
        Ok(())
    }

    /// The requester's new password, once user-interactive auth is complete: the one in this
    /// request, or the one kept in the session by an earlier request of it. With
    /// `logout_devices` (default true) every other device and its tokens go in the same
    /// transaction; the requester's device stays. The session is spent.
    pub async fn change_own_password(
        &self,
        requester: &Requester,
        authorised: &Authorised,
        password: Option<SecretString>,
        logout_devices: Option<bool>,
    ) -> Result<(), AccountError> {
        let actor = Actor::User(requester.clone());
        self.refuse_disabled_password_change(&actor)?;
        let kept = self.kept_password_change(authorised);
        let hash = match password {
            Some(password) => self.hash_new_password(&actor, password).await?,
            None => kept.hash.ok_or(AccountError::NoNewPassword)?,
        };
        let logout_devices = logout_devices.or(kept.logout_devices).unwrap_or(true);
        if logout_devices {
            self.refuse_on_synapse(&requester.user.name, OnSynapse::Logout)?;
        }
        let logout = self.password_logout(&actor, &requester.user.name, logout_devices);
        self.store
            .set_password_hash(&requester.user.name, Some(&hash), &logout, None)
            .await?;
        self.deliver_after_change(&requester.user.name).await;
        self.finish_ui_auth(authorised).await?;
        Ok(())
    }

    /// Which sessions a password change by `actor` ends.
    fn password_logout(&self, actor: &Actor, user_id: &str, logout_devices: bool) -> Logout {
        if !logout_devices {
            return Logout::Keep;
        }
        if let Some(page) = actor.own_page_session_of(user_id) {
            return Logout::AllDevicesAndPagesExcept(page.to_owned());
        }
        match actor.own_device_of(user_id) {
            Some(device_id) => Logout::AllDevicesExcept(device_id.to_owned()),
            None => Logout::AllDevices,
        }
    }

    /// Grants or removes server admin rights. Admins may not demote themselves; removing the
    /// rights of the last admin who can act is refused unless the operator forces it.
    pub async fn set_admin(
        &self,
        actor: &Actor,
        user_id: &str,
        admin: bool,
    ) -> Result<Outcome, AccountError> {
        if !admin && actor.admin_name() == Some(user_id) {
            return Err(AccountError::SelfDemotion);
        }
        let user = self.existing_user(user_id).await?;
        if user.admin == admin {
            return Ok(Outcome::Unchanged);
        }
        let guard = if admin {
            AdminGuard::Off
        } else {
            actor.admin_guard()
        };
        let record = self.audit_record(actor, Action::SetAdmin, user_id, json!({"admin": admin}));
        self.store
            .set_admin(&user.name, admin, guard, record.as_ref())
            .await?;
        Ok(Outcome::Changed)
    }

    /// Locks or unlocks an account (a locked user's requests are refused; tokens survive).
    /// Locking the last admin who can act is refused unless the operator forces it.
    pub async fn set_locked(
        &self,
        actor: &Actor,
        user_id: &str,
        locked: bool,
    ) -> Result<(), AccountError> {
        let (action, guard) = if locked {
            (Action::Lock, actor.admin_guard())
        } else {
            (Action::Unlock, AdminGuard::Off)
        };
        let record = self.audit_record(actor, action, user_id, json!({}));
        self.store
            .set_locked(user_id, locked, guard, record.as_ref())
            .await?;
        self.deliver_after_change(user_id).await;
        Ok(())
    }

    /// Deactivates an account: no password, no devices, no tokens, and with `erase` no
    /// display name or avatar. The last admin who can act is refused (their own deactivation
    /// too) unless the operator forces it.
    pub async fn deactivate(
        &self,
        actor: &Actor,
        user_id: &str,
        erase: bool,
    ) -> Result<Deactivation, AccountError> {
        self.refuse_on_synapse(user_id, OnSynapse::Deactivation)?;
        let record = self.audit_record(actor, Action::Deactivate, user_id, json!({"erase": erase}));
        let deactivation = self
            .store
            .deactivate(user_id, erase, actor.admin_guard(), record.as_ref())
            .await?;
        self.deliver_after_change(user_id).await;
        Ok(deactivation)
    }

    /// Changes an existing account, all in one transaction (Synapse applies the changes one
    /// by one, so a failure halfway leaves half of them). Only what differs from the account
    /// counts, as in Synapse.
    pub async fn modify_user(
        &self,
        actor: &Actor,
        user: &User,
        changes: AccountChanges,
    ) -> Result<(), AccountError> {
        let user_id =
            UserId::parse(&user.name).map_err(|_| AccountError::UserNotFound(user.name.clone()))?;
        refuse_nul(
            "displayname",
            changes.displayname.as_ref().and_then(Option::as_deref),
        )?;
        let admin = changes.admin.filter(|admin| *admin != user.admin);
        let deactivated = changes.deactivated.filter(|d| *d != user.deactivated);
        let locked = changes.locked.filter(|l| *l != user.locked);
        if admin == Some(false) && actor.admin_name() == Some(user.name.as_str()) {
            return Err(AccountError::SelfDemotion);
        }
        let password = match changes.password {
            None => None,
            Some(password) => {
                self.refuse_disabled_password_change(actor)?;
                if user.deactivated && deactivated != Some(false) {
                    return Err(AccountError::DeactivatedGetsNoPassword(user.name.clone()));
                }
                let hash = self.hash_new_password(actor, password).await?;
                let logout = self.password_logout(actor, &user.name, changes.logout_devices);
                Some((hash, logout))
            }
        };
        if deactivated == Some(true) {
            self.refuse_on_synapse(&user.name, OnSynapse::Deactivation)?;
        }
        if changes.user_type.is_some() {
            self.refuse_beside_synapse("user_type")?;
        }
        if password.is_some() && changes.logout_devices {
            self.refuse_on_synapse(&user.name, OnSynapse::Logout)?;
        }
        let ends_admin_power =
            deactivated == Some(true) || locked == Some(true) || admin == Some(false);
        let guard = if ends_admin_power {
            actor.admin_guard()
        } else {
            AdminGuard::Off
        };
        let details = json!({
            "admin": admin,
            "password_changed": password.is_some(),
            "logout_devices": password.is_some().then_some(changes.logout_devices),
            "deactivated": deactivated,
            "locked": locked,
            "displayname_changed": changes.displayname.is_some(),
            "avatar_url_changed": changes.avatar_url.is_some(),
            "user_type_changed": changes.user_type.is_some(),
            "threepids": changes.threepids.as_ref().map(|t| t.iter().map(ToString::to_string).collect::<Vec<_>>()),
        });
        let record = self.audit_record(actor, Action::ModifyUser, &user.name, details);
        fn clear_empty(value: &Option<String>) -> Option<&str> {
            value.as_deref().filter(|v| !v.is_empty())
        }
        self.change_profile_in_synapse(
            &user.name,
            changes.displayname.as_ref().map(clear_empty),
            changes.avatar_url.as_ref().map(clear_empty),
        )
        .await?;
        let changes = UserChanges {
            // An empty display name clears it.
            displayname: changes
                .displayname
                .map(|name| name.filter(|n| !n.is_empty())),
            avatar_url: changes.avatar_url,
            admin,
            password,
            deactivated,
            locked,
            user_type: changes.user_type,
            threepids: changes.threepids,
        };
        self.store
            .modify_user(&user_id, &changes, guard, record.as_ref())
            .await?;
        self.deliver_after_change(user_id.as_str()).await;
        Ok(())
    }

    /// Refuses a profile change asked by a suspended user (their own, or as an admin
    /// another's), as Synapse does; entry points ask first, in Synapse's order of checks.
    pub async fn refuse_suspended_requester(
        &self,
        requester: &Requester,
    ) -> Result<(), AccountError> {
        let user = self.existing_user(&requester.user.name).await?;
        if user.suspended {
            return Err(AccountError::Suspended(user.name));
        }
        Ok(())
    }

    /// Sets (or with `None` clears) a user's display name: the user's own, or another's by
    /// an admin (recorded). A suspended requester is refused.
    pub async fn set_displayname(
        &self,
        actor: &Actor,
        user_id: &UserId,
        displayname: Option<&str>,
    ) -> Result<(), AccountError> {
        refuse_nul("displayname", displayname)?;
        if let Actor::User(requester) | Actor::Admin(requester) = actor {
            self.refuse_suspended_requester(requester).await?;
        }
        let record = self.audit_record(
            actor,
            Action::SetDisplayname,
            user_id.as_str(),
            json!({"cleared": displayname.is_none()}),
        );
        let changes = UserChanges {
            displayname: Some(displayname.map(str::to_owned)),
            ..UserChanges::default()
        };
        self.store
            .modify_user(user_id, &changes, AdminGuard::Off, record.as_ref())
            .await?;
        self.deliver_after_change(user_id.as_str()).await;
        Ok(())
    }

    /// Shadow-bans a user or lifts the ban (Synapse's `users.shadow_banned`), recorded as
    /// `shadow_ban` or `unshadow_ban`. Written and recorded even when the flag was already
    /// so, as Synapse writes it. Synapse hides a shadow-banned user's events from rooms;
    /// homekey has no rooms, so here it is a mark that the Admin API shows.
    pub async fn set_shadow_banned(
        &self,
        actor: &Actor,
        user_id: &str,
        shadow_banned: bool,
    ) -> Result<(), AccountError> {
        let action = if shadow_banned {
            Action::ShadowBan
        } else {
            Action::UnshadowBan
        };
        let record = self.audit_record(actor, action, user_id, json!({}));
        self.refuse_beside_synapse("shadow_banned")?;
        self.store
            .set_shadow_banned(user_id, shadow_banned, record.as_ref())
            .await?;
        Ok(())
    }

    /// Suspends or unsuspends a user (Synapse's `users.suspended`), recorded as `suspend` or
    /// `unsuspend`; written and recorded even when the flag was already so, as Synapse does.
    pub async fn set_suspended(
        &self,
        actor: &Actor,
        user_id: &str,
        suspended: bool,
    ) -> Result<(), AccountError> {
        let action = if suspended {
            Action::Suspend
        } else {
            Action::Unsuspend
        };
        let record = self.audit_record(actor, action, user_id, json!({}));
        self.refuse_beside_synapse("suspended")?;
        self.store
            .set_suspended(user_id, suspended, record.as_ref())
            .await?;
        Ok(())
    }
}

impl Accounts {
    /// An account's third-party IDs (e-mail addresses), in the order they were added.
    pub async fn user_threepids(
        &self,
        user_id: &str,
    ) -> Result<Vec<AccountThreepid>, AccountError> {
        Ok(self.store.user_threepids(user_id).await?)
    }

    /// The account that has `threepid`, if one does.
    pub async fn user_by_threepid(
        &self,
        threepid: &Threepid,
    ) -> Result<Option<String>, AccountError> {
        Ok(self.store.user_by_threepid(threepid).await?)
    }

    /// Adds an e-mail address to an account (`add`) or removes it (`homekey user email`);
    /// beside Synapse, Synapse gets the account's new list. Returns whether anything
    /// changed.
    pub async fn change_email(
        &self,
        actor: &Actor,
        user_id: &str,
        address: &str,
        add: bool,
    ) -> Result<bool, AccountError> {
        let threepid = Threepid::email(address)?;
        let action = if add {
            Action::AddEmail
        } else {
            Action::RemoveEmail
        };
        let details = json!({"address": threepid.address});
        // A user's own changes are not audited, but their addresses are (the account page's
        // adds and removes, as the operator's): an address is how the account is recovered.
        let record = match actor {
            Actor::User(requester) => Some(crate::audit::record(
                &requester.user.name,
                action,
                user_id,
                details,
            )),
            _ => self.audit_record(actor, action, user_id, details),
        };
        let changed = self
            .store
            .change_threepid(user_id, &threepid, add, now_ms(), record.as_ref())
            .await?;
        if changed {
            self.deliver_after_change(user_id).await;
        }
        Ok(changed)
    }
}

/// The row of a new account, with Synapse's display-name default.
pub(super) fn new_user(new: NewAccount, password_hash: Option<SecretString>) -> NewUser {
    let displayname = match new.displayname {
        None => Some(new.user_id.localpart().to_owned()),
        Some(name) if name.is_empty() => None,
        Some(name) => Some(name),
    };
    NewUser {
        user_id: new.user_id,
        password_hash: password_hash.filter(|hash| !hash.expose_secret().is_empty()),
        creation_ts: now_ms() / 1000,
        admin: new.admin,
        is_guest: false,
        user_type: new.user_type,
        displayname,
        avatar_url: new.avatar_url.filter(|url| !url.is_empty()),
        threepids: new.threepids,
    }
}
