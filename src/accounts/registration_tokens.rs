//! Registration tokens: the invitations an admin (the Admin API's `registration_tokens`) or
//! the operator (`homekey registration-token`) makes, with Synapse's rules for them, and the
//! validity check a client makes before it asks for one (`rc_registration_token_validity`).
//!
//! A token admits sign-ups, so it is a secret: the audit log names it by a digest
//! ([`audit_target`]), never by its text.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Accounts, Actor, now_ms};
use crate::audit::Action;
use crate::store::{RegistrationToken, RegistrationTokenChanges, StoreError};

/// The longest token, and the longest generated one (Synapse's 64).
pub const MAX_TOKEN_LENGTH: usize = 64;
/// The length of a generated token when none is asked for (Synapse's 16).
pub const DEFAULT_TOKEN_LENGTH: i64 = 16;
/// The characters of a token (Synapse's: URL-safe without escaping, `[A-Za-z0-9._~-]`).
const TOKEN_CHARACTERS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
/// How many random tokens are tried before giving up on finding an unused one (Synapse's 3).
const GENERATION_ATTEMPTS: usize = 3;

/// Why a token was not made, changed or found: Synapse's messages (`M_INVALID_PARAM`, 400;
/// not found `M_NOT_FOUND`, 404).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationTokenError {
    #[error("token must not be empty and must not be longer than 64 characters")]
    TokenLength,
    #[error("token must consist only of characters matched by the regex [A-Za-z0-9-_]")]
    TokenCharacters,
    #[error("length must be greater than zero and not greater than 64")]
    Length,
    #[error("uses_allowed must be a non-negative integer or null")]
    UsesAllowed,
    /// Synapse's column is a 32-bit `INT`.
    #[error("uses_allowed must not be greater than {}", i32::MAX)]
    UsesAllowedTooLarge,
    #[error("expiry_time must not be in the past")]
    ExpiryInPast,
    #[error("Token already exists: {0}")]
    Exists(String),
    #[error("No such registration token: {0}")]
    NotFound(String),
    #[error("Unable to generate a unique registration token. Try again with a greater length")]
    NoUniqueToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which token a new one is: given, or generated with this many characters.
#[derive(Debug, Clone)]
pub enum NewTokenText {
    Given(String),
    Random { length: i64 },
}

/// A token to create: its text, how many sign-ups it admits (`None`: no limit), and until
/// when (ms since the epoch; `None`: no end).
#[derive(Debug, Clone)]
pub struct NewRegistrationToken {
    pub text: NewTokenText,
    pub uses_allowed: Option<i64>,
    pub expiry_time: Option<i64>,
}

/// Synapse's rule for a given token: 1 to 64 of `[A-Za-z0-9._~-]`.
pub fn check_token(token: &str) -> Result<(), RegistrationTokenError> {
    let length = token.chars().count();
    if length == 0 || length > MAX_TOKEN_LENGTH {
        return Err(RegistrationTokenError::TokenLength);
    }
    if !token.bytes().all(|b| TOKEN_CHARACTERS.contains(&b)) {
        return Err(RegistrationTokenError::TokenCharacters);
    }
    Ok(())
}

/// Synapse's rule for a generated token's length: 1 to 64.
pub fn check_length(length: i64) -> Result<(), RegistrationTokenError> {
    if !(1..=MAX_TOKEN_LENGTH as i64).contains(&length) {
        return Err(RegistrationTokenError::Length);
    }
    Ok(())
}

/// Synapse's rule for `uses_allowed` (non-negative; null is no limit), within its column.
pub fn check_uses_allowed(
    uses_allowed: Option<i64>,
) -> Result<Option<i32>, RegistrationTokenError> {
    match uses_allowed {
        None => Ok(None),
        Some(n) if n < 0 => Err(RegistrationTokenError::UsesAllowed),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| RegistrationTokenError::UsesAllowedTooLarge),
    }
}

/// Synapse's rule for `expiry_time`: not in the past (null is no end).
pub fn check_expiry_time(expiry_time: Option<i64>) -> Result<(), RegistrationTokenError> {
    match expiry_time {
        Some(time) if time < now_ms() => Err(RegistrationTokenError::ExpiryInPast),
        _ => Ok(()),
    }
}

/// How the audit log names a token without giving it away: the first 12 hex digits of its
/// SHA-256 (`printf %s TOKEN | sha256sum` finds it).
pub fn audit_target(token: &str) -> String {
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    format!("registration-token:{}", &digest[..12])
}

/// `length` random token characters, from the operating system's CSPRNG.
fn random_token(length: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(TOKEN_CHARACTERS[rng.random_range(0..TOKEN_CHARACTERS.len())]))
        .collect()
}

/// A token as Synapse's Admin API shows it (and the CLI's `--json`).
pub fn admin_json(token: &RegistrationToken) -> serde_json::Value {
    json!({
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry_time": token.expiry_time,
    })
}

/// The record's details: the limits, never the token.
fn limits(uses_allowed: Option<i32>, expiry_time: Option<i64>) -> serde_json::Value {
    json!({"uses_allowed": uses_allowed, "expiry_time": expiry_time})
}

impl Accounts {
    /// The tokens, all or only the valid (`Some(true)`) or the invalid ones, by token.
    pub async fn registration_tokens(
        &self,
        valid: Option<bool>,
    ) -> Result<Vec<RegistrationToken>, StoreError> {
        self.store.registration_tokens(valid, now_ms()).await
    }

    /// One token, if it exists.
    pub async fn registration_token(
        &self,
        token: &str,
    ) -> Result<Option<RegistrationToken>, StoreError> {
        self.store.registration_token(token).await
    }

    /// Makes a token with Synapse's rules; a generated one is tried three times for a text
    /// not in use. Audited.
    pub async fn create_registration_token(
        &self,
        actor: &Actor,
        new: NewRegistrationToken,
    ) -> Result<RegistrationToken, RegistrationTokenError> {
        if let NewTokenText::Given(token) = &new.text {
            check_token(token)?;
        }
        if let NewTokenText::Random { length } = new.text {
            check_length(length)?;
        }
        let uses_allowed = check_uses_allowed(new.uses_allowed)?;
        check_expiry_time(new.expiry_time)?;
        let attempts = match new.text {
            NewTokenText::Given(_) => 1,
            NewTokenText::Random { .. } => GENERATION_ATTEMPTS,
        };
        for _ in 0..attempts {
            let token = match &new.text {
                NewTokenText::Given(token) => token.clone(),
                NewTokenText::Random { length } => random_token(*length as usize),
            };
            let record = self.audit_record(
                actor,
                Action::CreateRegistrationToken,
                &audit_target(&token),
                limits(uses_allowed, new.expiry_time),
            );
            let created = self
                .store
                .create_registration_token(&token, uses_allowed, new.expiry_time, record.as_ref())
                .await?;
            if created {
                return Ok(RegistrationToken {
                    token,
                    uses_allowed,
                    pending: 0,
                    completed: 0,
                    expiry_time: new.expiry_time,
                });
            }
            if let NewTokenText::Given(_) = new.text {
                return Err(RegistrationTokenError::Exists(token));
            }
        }
        Err(RegistrationTokenError::NoUniqueToken)
    }

    /// Changes a token's limits (`uses_allowed`, `expiry_time`) with Synapse's rules;
    /// nothing to change reads the token. Audited when something changes.
    pub async fn update_registration_token(
        &self,
        actor: &Actor,
        token: &str,
        uses_allowed: Option<Option<i64>>,
        expiry_time: Option<Option<i64>>,
    ) -> Result<RegistrationToken, RegistrationTokenError> {
        let uses_allowed = match uses_allowed {
            Some(value) => Some(check_uses_allowed(value)?),
            None => None,
        };
        if let Some(value) = expiry_time {
            check_expiry_time(value)?;
        }
        let not_found = || RegistrationTokenError::NotFound(token.to_owned());
        if uses_allowed.is_none() && expiry_time.is_none() {
            return self
                .store
                .registration_token(token)
                .await?
                .ok_or_else(not_found);
        }
        let mut details = serde_json::Map::new();
        if let Some(value) = uses_allowed {
            details.insert("uses_allowed".into(), json!(value));
        }
        if let Some(value) = expiry_time {
            details.insert("expiry_time".into(), json!(value));
        }
        let record = self.audit_record(
            actor,
            Action::UpdateRegistrationToken,
            &audit_target(token),
            details.into(),
        );
        let changes = RegistrationTokenChanges {
            uses_allowed,
            expiry_time,
        };
        self.store
            .update_registration_token(token, changes, record.as_ref())
            .await?
            .ok_or_else(not_found)
    }

    /// Deletes a token (sign-ups that spent a use of it and are unfinished keep going).
    /// Audited.
    pub async fn delete_registration_token(
        &self,
        actor: &Actor,
        token: &str,
    ) -> Result<(), RegistrationTokenError> {
        let record = self.audit_record(
            actor,
            Action::DeleteRegistrationToken,
            &audit_target(token),
            json!({}),
        );
        if self
            .store
            .delete_registration_token(token, record.as_ref())
            .await?
        {
            Ok(())
        } else {
            Err(RegistrationTokenError::NotFound(token.to_owned()))
        }
    }

    /// Counts a client's validity check from `client_address` against
    /// `rc_registration_token_validity`; `Err` holds how long to wait, in milliseconds.
    pub fn count_token_validity_check(&self, client_address: &str) -> Result<(), u64> {
        self.token_validity_checks.attempt(client_address)
    }

    /// Whether `token` would admit a sign-up now (unknown: no). A text no token can have
    /// (Synapse's rule) is not looked up: PostgreSQL refuses a NUL in a query's text.
    pub async fn registration_token_is_valid(&self, token: &str) -> Result<bool, StoreError> {
        if check_token(token).is_err() {
            return Ok(false);
        }
        self.store
            .registration_token_is_valid(token, now_ms())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_synapses_rules() {
        assert!(check_token("abcd-._~XYZ019").is_ok());
        assert!(matches!(
            check_token(""),
            Err(RegistrationTokenError::TokenLength)
        ));
        assert!(check_token(&"a".repeat(64)).is_ok());
        assert!(matches!(
            check_token(&"a".repeat(65)),
            Err(RegistrationTokenError::TokenLength)
        ));
        for bad in ["a b", "a/b", "a+b", "é", "a\u{0}"] {
            assert!(
                matches!(
                    check_token(bad),
                    Err(RegistrationTokenError::TokenCharacters)
                ),
                "{bad:?}"
            );
        }
        assert!(check_length(1).is_ok() && check_length(64).is_ok());
        assert!(check_length(0).is_err() && check_length(65).is_err());
        assert_eq!(check_uses_allowed(Some(0)).unwrap(), Some(0));
        assert!(check_uses_allowed(Some(-1)).is_err());
        assert!(check_uses_allowed(Some(i64::from(i32::MAX) + 1)).is_err());
    }

    #[test]
    fn generated_tokens_pass_the_rule_and_differ() {
        let a = random_token(64);
        assert_eq!(a.len(), 64);
        check_token(&a).unwrap();
        assert_ne!(a, random_token(64));
    }

    #[test]
    fn the_audit_names_a_token_by_a_digest() {
        let target = audit_target("secret-invite");
        assert!(target.starts_with("registration-token:"));
        assert!(!target.contains("secret"));
        assert_eq!(target.len(), "registration-token:".len() + 12);
    }
}
