//! The one rule for new passwords, whatever the entry point (README, "Password rules"):
//! - everyone: at most 512 characters (Synapse's limit);
//! - a user changing their own password, and the operator at the server unless
//!   `--ignore-policy`: `password_config.policy` too (as in Synapse, an admin through the
//!   Admin API is not bound by the policy, nor is a shared-secret registration);
//! - on a Synapse database, never an argon2id hash: Synapse reads only bcrypt.
//!
//! Hashing runs on the blocking pool (see `password::PasswordHasher`), never on the async
//! workers.

use secrecy::{ExposeSecret, SecretString};

use super::{AccountError, Accounts, Actor, PasswordRefusal};
use crate::config::HashScheme;
use crate::password::PasswordPolicy;
use crate::password::policy::within_length_limit;
use crate::store::Flavour;

/// What an operator should know before a password is hashed (the CLI prints these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordNotice {
    /// bcrypt reads only the first 72 bytes of password + pepper, here as in Synapse.
    Truncated,
}

impl std::fmt::Display for PasswordNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordNotice::Truncated => f.write_str(
                "password + pepper is longer than 72 bytes; bcrypt, here as in Synapse, uses \
                 the first 72 bytes. Logging in works the same.",
            ),
        }
    }
}

impl Accounts {
    /// Whether `actor` may set `password`; entry points that must answer before anything
    /// else (Synapse checks a new password before user-interactive auth) call it first,
    /// and every operation that sets a password calls it again.
    pub fn check_new_password(
        &self,
        actor: &Actor,
        password: &SecretString,
    ) -> Result<(), PasswordRefusal> {
        let password = password.expose_secret();
        if !within_length_limit(password) {
            return Err(PasswordRefusal::TooLong);
        }
        if actor.bound_by_password_policy() {
            PasswordPolicy::new(self.config.password.policy.clone())
                .check(password)
                .map_err(PasswordRefusal::Policy)?;
        }
        self.check_hash_scheme_for_store(self.hasher.settings().scheme)
    }

    /// A hash that an entry point was given ready-made (an import's `password_hash`).
    pub fn check_given_hash(&self, hash: &SecretString) -> Result<(), PasswordRefusal> {
        let scheme = crate::password::scheme::scheme_of_well_formed(hash.expose_secret())
            .ok_or(PasswordRefusal::UnknownHashScheme)?;
        self.check_hash_scheme_for_store(scheme)
            .map_err(|_| PasswordRefusal::GivenHashUnreadableBySynapse)
    }

    fn check_hash_scheme_for_store(&self, scheme: HashScheme) -> Result<(), PasswordRefusal> {
        if self.store.flavour() == Flavour::Synapse && scheme != HashScheme::Bcrypt {
            return Err(PasswordRefusal::UnreadableBySynapse);
        }
        Ok(())
    }

    /// What the operator should be told about `password` before it is hashed.
    pub fn password_notices(&self, password: &SecretString) -> Vec<PasswordNotice> {
        let settings = self.hasher.settings();
        let truncated = settings.scheme == HashScheme::Bcrypt && settings.is_truncated(password);
        truncated
            .then_some(PasswordNotice::Truncated)
            .into_iter()
            .collect()
    }

    /// Checks `password` for `actor` and hashes it as the server does (scheme, cost, pepper).
    pub(super) async fn hash_new_password(
        &self,
        actor: &Actor,
        password: SecretString,
    ) -> Result<SecretString, AccountError> {
        self.check_new_password(actor, &password)?;
        Ok(self.hasher.hash(password).await?)
    }
}
