//! Who changed which account: every change an admin (Admin API), the operator (CLI) or a
//! shared-secret registration makes leaves a record, which `homekey audit list` shows, and a
//! log line.
//!
//! The account service makes the record before the change, with [`record`], and hands it to
//! the store write that makes the change. The store inserts it in the change's own
//! transaction, so the change and its record are kept together or not at all, and writes the
//! log line (target `homekey::audit`) once they are committed. A Synapse database has no
//! audit table: there only the log line is written.

use serde_json::Value;

use crate::accounts::now_ms;
use crate::store::NewAuditRecord;

/// What a record says was done, by the names `homekey audit list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateUser,
    ResetPassword,
    SetAdmin,
    Deactivate,
    Lock,
    Unlock,
    /// `users.shadow_banned` set (the Admin API's `POST …/users/<id>/shadow_ban`).
    ShadowBan,
    /// `users.shadow_banned` cleared (`DELETE …/users/<id>/shadow_ban`).
    UnshadowBan,
    /// `users.suspended` set (`PUT …/v1/suspend/<id>` with `{"suspend": true}`).
    Suspend,
    /// `users.suspended` cleared (the same with `{"suspend": false}`).
    Unsuspend,
    /// Every device and token of a user ended.
    Logout,
    /// Some devices of a user deleted, with their tokens.
    DeleteDevices,
    /// Several fields changed at once (the Admin API's `PUT /v2/users/<id>`).
    ModifyUser,
    SetDisplayname,
    /// A token with which an admin acts as the user, on no device (the Admin API's
    /// login-as-user, Synapse's "puppet" token).
    LoginAsUser,
    /// A new device and access token for the user, minted by the operator
    /// (`homekey user login`).
    NewSession,
    /// A batch of accounts carried from an existing Synapse's database
    /// (`homekey migrate-from-synapse`), with their devices and tokens; or a batch of its
    /// registration tokens (details: how many, never which).
    CarryFromSynapse,
    /// An account homekey had of its own replaced by Synapse's of the same name, with its
    /// devices and tokens (`homekey migrate-from-synapse --replace-existing`).
    ReplaceFromSynapse,
    /// A new client of the Matrix OAuth 2.0 API that registered itself; the record's target
    /// is its client ID.
    RegisterClient,
    /// An e-mail address added to an account (`homekey user email add`).
    AddEmail,
    /// An e-mail address removed from an account (`homekey user email remove`).
    RemoveEmail,
    /// A user allowed an OAuth client to sign in as them (the consent page): an
    /// authorization code was issued.
    OAuthGrant,
    /// A user refused an OAuth client on the consent page.
    OAuthConsentRefused,
    /// A token revoked at the OAuth revocation endpoint, ending its session.
    RevokeToken,
    /// A registration token made (the record's target names it by a digest, never itself).
    CreateRegistrationToken,
    /// A registration token's `uses_allowed` or `expiry_time` changed.
    UpdateRegistrationToken,
    /// A registration token deleted.
    DeleteRegistrationToken,
    /// A password reset link mailed to a user's addresses by an admin or the operator
    /// (`send_reset_link`); the user sets the password.
    SendResetLink,
    /// A password set through a mailed reset link (homekey's own pages).
    ResetPasswordByLink,
    /// A registered OAuth client deleted by an admin, its sessions ended; the record's target
    /// is its client ID.
    DeleteClient,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CreateUser => "create_user",
            Action::ResetPassword => "reset_password",
            Action::SetAdmin => "set_admin",
            Action::Deactivate => "deactivate",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::ShadowBan => "shadow_ban",
            Action::UnshadowBan => "unshadow_ban",
            Action::Suspend => "suspend",
            Action::Unsuspend => "unsuspend",
            Action::Logout => "logout",
            Action::DeleteDevices => "delete_devices",
            Action::ModifyUser => "modify_user",
            Action::SetDisplayname => "set_displayname",
            Action::LoginAsUser => "login_as_user",
            Action::NewSession => "new_session",
            Action::CarryFromSynapse => "carry_from_synapse",
            Action::ReplaceFromSynapse => "replace_from_synapse",
            Action::RegisterClient => "register_client",
            Action::AddEmail => "add_email",
            Action::RemoveEmail => "remove_email",
            Action::OAuthGrant => "oauth_grant",
            Action::OAuthConsentRefused => "oauth_consent_refused",
            Action::RevokeToken => "revoke_token",
            Action::CreateRegistrationToken => "create_registration_token",
            Action::UpdateRegistrationToken => "update_registration_token",
            Action::DeleteRegistrationToken => "delete_registration_token",
            Action::SendResetLink => "send_reset_link",
            Action::ResetPasswordByLink => "reset_password_by_link",
            Action::DeleteClient => "delete_oauth_client",
        }
    }

    /// Every action, as a filter of the audit log offers them.
    pub const ALL: [Action; 30] = [
        Action::CreateUser,
        Action::ResetPassword,
        Action::SetAdmin,
        Action::Deactivate,
        Action::Lock,
        Action::Unlock,
        Action::ShadowBan,
        Action::UnshadowBan,
        Action::Suspend,
        Action::Unsuspend,
        Action::Logout,
        Action::DeleteDevices,
        Action::ModifyUser,
        Action::SetDisplayname,
        Action::LoginAsUser,
        Action::NewSession,
        Action::CarryFromSynapse,
        Action::ReplaceFromSynapse,
        Action::RegisterClient,
        Action::AddEmail,
        Action::RemoveEmail,
        Action::OAuthGrant,
        Action::OAuthConsentRefused,
        Action::RevokeToken,
        Action::CreateRegistrationToken,
        Action::UpdateRegistrationToken,
        Action::DeleteRegistrationToken,
        Action::SendResetLink,
        Action::ResetPasswordByLink,
        Action::DeleteClient,
    ];

    /// The action named `name` (as [`Action::as_str`] names it).
    pub fn named(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
    }
}

/// The record of a change `actor` is about to make to the account `target`, stamped now.
/// `details` says what changes, never a secret.
pub fn record(actor: &str, action: Action, target: &str, details: Value) -> NewAuditRecord {
    NewAuditRecord {
        ts_ms: now_ms(),
        actor: actor.to_owned(),
        action: action.as_str().to_owned(),
        target: Some(target.to_owned()),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    /// `ALL` holds each action once, and each is found again by its name.
    #[test]
    fn every_action_is_listed_once() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for action in Action::ALL {
            assert_eq!(Action::named(action.as_str()), Some(action));
        }
        assert_eq!(Action::named("drop_tables"), None);
    }
}
