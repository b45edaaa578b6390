//! Why an operation of the account service was refused or failed: one typed error for every
//! entry point, which each maps once (HTTP to a status and errcode in `http::error`, the CLI
//! to a line and an exit code in `cli::operator`). Messages never hold a secret.

use crate::password::{MAX_PASSWORD_LENGTH, PasswordError, PolicyViolation};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("user {0} does not exist")]
    UserNotFound(String),
    #[error("user {0} already exists")]
    UserExists(String),
    /// A third-party ID (an e-mail address) that another account has.
    #[error("{0} is already in use")]
    ThreepidInUse(String),
    /// A third-party ID that is not one (Synapse's words).
    #[error(transparent)]
    Threepid(#[from] crate::threepid::ThreepidError),
    #[error(transparent)]
    Password(#[from] PasswordRefusal),
    /// `password_config` does not let passwords be changed (`enabled: false`,
    /// `only_for_reauth`, or `localdb_enabled: false`).
    #[error("Password change disabled")]
    PasswordChangeDisabled,
    /// A password change completed its authentication without a new password.
    #[error("Missing params: password")]
    NoNewPassword,
    /// The address a password reset proved is no account's (any longer).
    #[error("Email address not found")]
    EmailNotFound,
    #[error("user {0} is deactivated; a password would not let it log in")]
    DeactivatedGetsNoPassword(String),
    #[error("You may not demote yourself.")]
    SelfDemotion,
    #[error("Cannot use admin API to login as self")]
    LoginAsSelf,
    /// The change would leave the server without an admin who can act.
    #[error("{0} is the last server admin who can act")]
    LastAdmin(String),
    #[error("user {0} is deactivated")]
    Deactivated(String),
    #[error("user {0} is locked: unlock it first")]
    Locked(String),
    /// A suspended user may not change profiles (Synapse's rule).
    #[error("Updating profile while account is suspended is not allowed.")]
    Suspended(String),
    /// On a Synapse database (Synapse on its own auth), homekey ends no session and
    /// deactivates no account: Synapse does more than the tables show (see [`OnSynapse`]).
    #[error("this is a Synapse database: {what}")]
    RefusedOnSynapse { user: String, what: OnSynapse },
    /// Synapse did not take a new session (beside Synapse): nothing of it is left usable.
    #[error(transparent)]
    Synapse(#[from] crate::synapse::client::SynapseCallError),
    /// Beside Synapse: another homekey process held the user's delivery lease too long.
    #[error("another homekey process is delivering to Synapse for {0}; try again")]
    SynapseBusy(String),
    /// Beside Synapse: Synapse already had the user homekey just created.
    #[error(
        "Synapse already had {0} when homekey created it; homekey's new account is locked so that it cannot take over Synapse's (see `homekey synapse status`)"
    )]
    SynapseConflict(String),
    /// Beside Synapse: Synapse will not register this name (`M_EXCLUSIVE`: an application
    /// service's namespace; `M_INVALID_USERNAME`).
    #[error("Synapse will not register {user}: {errcode}")]
    SynapseRefusesName { user: String, errcode: String },
    /// Beside Synapse: a field Synapse keeps that homekey cannot change there.
    #[error(
        "{0} is kept by Synapse, and homekey cannot change it there; change it in Synapse's database, or not at all"
    )]
    NotCarriedToSynapse(&'static str),
    /// `homekey synapse …` without a `synapse:` section.
    #[error("this config has no synapse: section; homekey serves no Synapse")]
    NotBesideSynapse,
    /// A name with a NUL character, which PostgreSQL cannot store (Synapse answers it with
    /// a 500 there): refused on either database alike, before anything is written.
    #[error("{0} may not contain a NUL character")]
    NulInText(&'static str),
    #[error(transparent)]
    Store(StoreError),
    #[error("hashing failed: {0}")]
    Hash(#[from] PasswordError),
}

/// What homekey leaves to a running Synapse, on Synapse's own database. Synapse's device
/// deletion also removes the devices' end-to-end keys, one-time and fallback keys, to-device
/// inbox and pushers, and records a device-list change in its streams (numbered by counters
/// kept in its processes) so that other users' clients stop encrypting to them; its
/// deactivation also leaves rooms and removes third-party IDs. Deleting rows behind its back
/// would leave ghost devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OnSynapse {
    #[error(
        "homekey does not delete devices in it (Synapse's own logout also removes their keys, pushers and messages, and tells other users' clients); log the user out through the running Synapse"
    )]
    Logout,
    #[error(
        "homekey does not deactivate accounts in it (Synapse's own deactivation also removes devices and their keys, leaves rooms and tells other users' clients); deactivate through the running Synapse"
    )]
    Deactivation,
}

/// Why a new password may not be set. Holds no part of the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefusal {
    #[error("the password is longer than {MAX_PASSWORD_LENGTH} characters")]
    TooLong,
    #[error("password refused by the policy: {0}")]
    Policy(PolicyViolation),
    /// argon2id configured, on a Synapse database: Synapse reads only bcrypt.
    #[error(
        "password_config.scheme is argon2id, but this is a Synapse database and Synapse reads \
         only bcrypt hashes"
    )]
    UnreadableBySynapse,
    /// A given hash (an import's `password_hash`) of no scheme homekey knows.
    #[error("not a bcrypt or argon2id hash")]
    UnknownHashScheme,
    /// A given argon2id hash, on a Synapse database.
    #[error("argon2id, which Synapse cannot read")]
    GivenHashUnreadableBySynapse,
}

/// What a user or an admin is told when the last-admin guard refuses a change over HTTP
/// (the API's `M_FORBIDDEN` and the account page say the same).
pub fn last_admin_refusal(user: &str) -> String {
    format!(
        "{user} is the last server admin who can act; make another user an admin first, or \
         the server has no admin left"
    )
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> AccountError {
        match err {
            StoreError::UserNotFound(user) => AccountError::UserNotFound(user),
            StoreError::UserExists(user) => AccountError::UserExists(user),
            StoreError::ThreepidInUse(threepid) => AccountError::ThreepidInUse(threepid),
            StoreError::LastAdmin(user) => AccountError::LastAdmin(user),
            other => AccountError::Store(other),
        }
    }
}

/// Refuses `text` (the field `what`) when it holds a NUL ([`AccountError::NulInText`]).
pub fn refuse_nul(what: &'static str, text: Option<&str>) -> Result<(), AccountError> {
    match text {
        Some(text) if text.contains('\0') => Err(AccountError::NulInText(what)),
        _ => Ok(()),
    }
}
