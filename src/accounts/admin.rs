//! What a server admin does to other accounts (the Admin API's operations). Each change is
//! one store transaction, which holds the change's audit record naming the admin.
//!
//! Where Synapse would let an admin lock everyone out, homekey refuses: the last admin who
//! can act may not be deactivated or locked.

use secrecy::SecretString;
use serde_json::{Value, json};

use super::{Accounts, LoginSuccess, Requester, now_ms, tokens};
use crate::audit;
use crate::ids::UserId;
use crate::store::{Logout, NewAuditRecord, NewUser, StoreError, User, UserChanges};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("User not found")]
    UserNotFound,
    #[error("Password change disabled")]
    PasswordChangeDisabled,
    #[error("You may not demote yourself.")]
    SelfDemotion,
    #[error("Cannot use admin API to login as self")]
    LoginAsSelf,
    /// The change would leave no admin who can act.
    #[error(
        "{0} is the last server admin who can act; make another user an admin first, or the server has no admin left"
    )]
    LastAdmin(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> AdminError {
        match err {
            StoreError::UserNotFound(_) => AdminError::UserNotFound,
            other => AdminError::Store(other),
        }
    }
}

/// A new account made by an admin (Admin API v2 `PUT`, shared-secret registration).
#[derive(Debug, Clone)]
pub struct Registration {
    pub user_id: UserId,
    pub password_hash: Option<SecretString>,
    pub admin: bool,
    pub user_type: Option<String>,
    pub displayname: Option<String>,
}

impl Accounts {
    /// Sets a user's password; with `logout_devices`, every device and token of the user goes
    /// in the same transaction. Unlike Synapse, a device of the user that happens to share
    /// the admin's device ID is not spared; only an admin changing their own password keeps
    /// their device.
    pub async fn reset_password(
        &self,
        admin: &Requester,
        user_id: &str,
        new_hash: SecretString,
        logout_devices: bool,
    ) -> Result<(), AdminError> {
        if !self.can_change_password() {
            return Err(AdminError::PasswordChangeDisabled);
        }
        let logout = password_logout(admin, user_id, logout_devices);
        let record = admin_record(
            admin,
            "reset_password",
            user_id,
            json!({"logout_devices": logout_devices}),
        );
        self.store
            .set_password_hash(user_id, Some(&new_hash), &logout, Some(&record))
            .await?;
        Ok(())
    }

    /// Creates an account, as the admin `actor` (a user ID, or what registered it).
    pub async fn register(&self, actor: &str, new: Registration) -> Result<User, StoreError> {
        // As Synapse: no display name given means the localpart; an empty one means none.
        let displayname = match new.displayname {
            None => Some(new.user_id.localpart().to_owned()),
            Some(name) if name.is_empty() => None,
            Some(name) => Some(name),
        };
        let record = audit::record(
            actor,
            "create_user",
            new.user_id.as_str(),
            json!({"admin": new.admin, "user_type": new.user_type}),
        );
        self.store
            .create_user(
                &NewUser {
                    user_id: new.user_id.clone(),
                    password_hash: new.password_hash,
                    creation_ts: now_ms() / 1000,
                    admin: new.admin,
                    is_guest: false,
                    user_type: new.user_type,
                    displayname,
                },
                Some(&record),
            )
            .await
    }

    /// Changes an existing account, all in one transaction (Synapse applies the changes one
    /// by one, so a failure halfway leaves half of them).
    pub async fn modify_user(
        &self,
        admin: &Requester,
        user: &User,
        mut changes: UserChanges,
        logout_devices: bool,
    ) -> Result<(), AdminError> {
        let user_id = UserId::parse(&user.name).map_err(|_| AdminError::UserNotFound)?;
        if changes.admin == Some(false) && user.admin && user.name == admin.user.name {
            return Err(AdminError::SelfDemotion);
        }
        if changes.password.is_some() && !self.can_change_password() {
            return Err(AdminError::PasswordChangeDisabled);
        }
        if let Some((_, logout)) = &mut changes.password {
            *logout = password_logout(admin, &user.name, logout_devices);
        }
        let stops_acting = changes.deactivated == Some(true) && !user.deactivated
            || changes.locked == Some(true) && !user.locked
            || changes.admin == Some(false) && user.admin;
        if stops_acting {
            self.refuse_losing_the_last_admin(user).await?;
        }
        let details = json!({
            "admin": changes.admin,
            "password_changed": changes.password.is_some(),
            "logout_devices": changes.password.is_some().then_some(logout_devices),
            "deactivated": changes.deactivated,
            "locked": changes.locked,
            "displayname_changed": changes.displayname.is_some(),
            "user_type_changed": changes.user_type.is_some(),
        });
        let record = admin_record(admin, "modify_user", &user.name, details);
        self.store
            .modify_user(&user_id, &changes, Some(&record))
            .await?;
        Ok(())
    }

    /// Grants or removes admin rights (`PUT /_synapse/admin/v1/users/<id>/admin`).
    pub async fn set_admin(
        &self,
        admin: &Requester,
        user_id: &str,
        make_admin: bool,
    ) -> Result<(), AdminError> {
        if !make_admin && user_id == admin.user.name {
            return Err(AdminError::SelfDemotion);
        }
        let record = admin_record(admin, "set_admin", user_id, json!({"admin": make_admin}));
        self.store
            .set_admin(user_id, make_admin, Some(&record))
            .await?;
        Ok(())
    }

    /// Deactivates an account (`POST /_synapse/admin/v1/deactivate/<id>`).
    pub async fn deactivate_user(
        &self,
        admin: &Requester,
        user: &User,
        erase: bool,
    ) -> Result<(), AdminError> {
        if !user.deactivated {
            self.refuse_losing_the_last_admin(user).await?;
        }
        let record = admin_record(admin, "deactivate", &user.name, json!({"erase": erase}));
        self.store
            .deactivate(&user.name, erase, Some(&record))
            .await?;
        Ok(())
    }

    /// An access token with which the admin acts as `user_id`, with no device.
    pub async fn login_as_user(
        &self,
        admin: &Requester,
        user_id: &str,
        valid_until_ms: Option<i64>,
    ) -> Result<SecretString, AdminError> {
        if user_id == admin.user.name {
            return Err(AdminError::LoginAsSelf);
        }
        // Synapse mints a token even for an account that does not exist; it could never work.
        if self.store.get_user(user_id).await?.is_none() {
            return Err(AdminError::UserNotFound);
        }
        let localpart = UserId::parse(user_id)
            .map(|id| id.localpart().to_owned())
            .unwrap_or_default();
        let token = tokens::new_access_token(&localpart);
        let record = admin_record(
            admin,
            "login_as_user",
            user_id,
            json!({"valid_until_ms": valid_until_ms}),
        );
        self.store
            .create_puppet_token(
                &admin.user.name,
                user_id,
                &token,
                valid_until_ms,
                now_ms(),
                &record,
            )
            .await?;
        Ok(token)
    }

    /// Deletes devices of a user, with their tokens (the Admin API's device endpoints).
    pub async fn delete_user_devices(
        &self,
        admin: &Requester,
        user_id: &str,
        device_ids: &[String],
    ) -> Result<(), AdminError> {
        let record = admin_record(
            admin,
            "delete_devices",
            user_id,
            json!({"devices": device_ids}),
        );
        self.store
            .delete_devices(user_id, device_ids, Some(&record))
            .await?;
        Ok(())
    }

    /// Registers and logs in at once (shared-secret registration).
    pub async fn register_and_log_in(
        &self,
        actor: &str,
        new: Registration,
    ) -> Result<LoginSuccess, StoreError> {
        let user = self.register(actor, new).await?;
        self.open_session(&user.name, None, None).await
    }

    /// Refuses a change that would leave the server without an admin who can act.
    async fn refuse_losing_the_last_admin(&self, user: &User) -> Result<(), AdminError> {
        if self.store.is_last_active_admin(user).await? {
            return Err(AdminError::LastAdmin(user.name.clone()));
        }
        Ok(())
    }
}

/// The audit record of a change `admin` is about to make to `user_id`.
fn admin_record(admin: &Requester, action: &str, user_id: &str, details: Value) -> NewAuditRecord {
    audit::record(&admin.user.name, action, user_id, details)
}

/// Which sessions a password change by an admin ends: with `logout_devices`, all of the
/// user's, except the admin's own device when admins change their own password.
fn password_logout(admin: &Requester, user_id: &str, logout_devices: bool) -> Logout {
    match (&admin.device_id, logout_devices) {
        (_, false) => Logout::Keep,
        (Some(device_id), true) if user_id == admin.user.name => {
            Logout::AllDevicesExcept(device_id.clone())
        }
        _ => Logout::AllDevices,
    }
}
