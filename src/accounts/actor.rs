//! Who asks for a change: every operation of the account service names its actor, and the
//! actor decides the rules that bind the change (which password checks apply, whether the
//! last-admin guard may be overridden), who the audit record names, and which device a
//! password change spares.

use super::Requester;
use crate::store::AdminGuard;

/// The one who asks for an operation.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A user acting on their own account through the client API, with their access token.
    /// These changes leave no audit record (the access log has them).
    User(Requester),
    /// A server admin through the Admin API, with their access token.
    Admin(Requester),
    /// Whoever holds the registration shared secret (`/_synapse/admin/v1/register`).
    SharedSecret,
    /// The operator at the server (`homekey user …`), with what they chose to override.
    Operator(OperatorActor),
    /// Whoever confirmed the link mailed to an address of this account (its user ID): the
    /// e-mail password reset of legacy clients, or homekey's own reset link
    /// (`recovery`). Recorded under the user's own name.
    EmailReset(String),
    /// Somebody signing up (`POST /register`, the sign-up page): recorded as `sign-up`,
    /// the record naming what admitted them.
    SignUp,
}

/// The operator at the server: named `cli:<OS user>` in the audit log.
#[derive(Debug, Clone)]
pub struct OperatorActor {
    pub name: String,
    /// `--force`: leave the server without an admin who can act, if that is what it takes.
    pub force: bool,
    /// `--ignore-policy`: set a password that `password_config.policy` would refuse.
    pub ignore_policy: bool,
}

impl Actor {
    /// The operator with no override.
    pub fn operator(name: impl Into<String>) -> Actor {
        Actor::Operator(OperatorActor {
            name: name.into(),
            force: false,
            ignore_policy: false,
        })
    }

    /// Who the audit record of this actor's change names; `None`: no record.
    pub(super) fn audit_name(&self) -> Option<&str> {
        match self {
            Actor::User(_) => None,
            Actor::Admin(admin) => Some(&admin.user.name),
            Actor::SharedSecret => Some("shared-secret registration"),
            Actor::Operator(operator) => Some(&operator.name),
            Actor::EmailReset(user_id) => Some(user_id),
            Actor::SignUp => Some("sign-up"),
        }
    }

    /// Whether `password_config.policy` binds this actor's new passwords: a user's own, and
    /// the operator's unless overridden. As in Synapse, not an admin's (nor a registration
    /// by shared secret): the 512-character limit binds everyone.
    pub(super) fn bound_by_password_policy(&self) -> bool {
        match self {
            Actor::User(_) | Actor::EmailReset(_) | Actor::SignUp => true,
            Actor::Admin(_) | Actor::SharedSecret => false,
            Actor::Operator(operator) => !operator.ignore_policy,
        }
    }

    /// Whether this actor's change must leave the server an admin who can act.
    pub(super) fn admin_guard(&self) -> AdminGuard {
        match self {
            Actor::Operator(OperatorActor { force: true, .. }) => AdminGuard::Off,
            _ => AdminGuard::KeepOne,
        }
    }

    /// The device that a password change of `user_id` with logout spares: the actor's own,
    /// when the actor changes their own password through a token. Unlike Synapse, an admin's
    /// device ID that happens to match one of another user's devices spares nothing.
    pub(super) fn own_device_of(&self, user_id: &str) -> Option<&str> {
        match self {
            Actor::User(requester) | Actor::Admin(requester) if requester.user.name == user_id => {
                requester.device_id.as_deref()
            }
            _ => None,
        }
    }

    /// The account page's sign-in that a password change of `user_id` with logout spares:
    /// the one the user changes their own password from.
    pub(super) fn own_page_session_of(&self, user_id: &str) -> Option<&str> {
        match self {
            Actor::User(requester) if requester.user.name == user_id => {
                requester.page_session.as_deref()
            }
            _ => None,
        }
    }

    /// The admin's own account, for the guards that stop admins acting on themselves.
    pub(super) fn admin_name(&self) -> Option<&str> {
        match self {
            Actor::Admin(admin) => Some(&admin.user.name),
            _ => None,
        }
    }
}
