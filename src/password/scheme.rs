//! The hash schemes: Synapse's bcrypt (the default, and what Synapse reads) and argon2id
//! (opt-in, for homekey-only deployments).
//!
//! Synapse's rule (`synapse/handlers/auth.py`), applied on hashing *and* verifying: the
//! password is NFKC-normalised, the raw pepper is appended (not normalised), and bcrypt sees
//! the first 72 bytes of that, silently. A long password is never an error: refusing it would
//! lock out users whose hashes Synapse made from their first 72 bytes.

use argon2::password_hash::{PasswordHash as PhcHash, PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

use crate::config::{Config, HashScheme};

/// bcrypt reads at most this many bytes of its input.
pub const BCRYPT_MAX_INPUT_BYTES: usize = 72;

/// OWASP's recommended argon2id parameters: 19 MiB, 2 iterations, 1 lane.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// What a new hash is made with: the scheme, the bcrypt cost and the pepper.
pub struct HashSettings {
    pub scheme: HashScheme,
    pub bcrypt_rounds: u32,
    pepper: SecretString,
}

impl std::fmt::Debug for HashSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSettings")
            .field("scheme", &self.scheme)
            .field("bcrypt_rounds", &self.bcrypt_rounds)
            .field("pepper", &"[REDACTED]")
            .finish()
    }
}

impl HashSettings {
    pub fn new(scheme: HashScheme, bcrypt_rounds: u32, pepper: SecretString) -> HashSettings {
        HashSettings {
            scheme,
            bcrypt_rounds,
            pepper,
        }
    }

    pub fn from_config(config: &Config) -> HashSettings {
        HashSettings::new(
            config.password.scheme,
            config.bcrypt_rounds,
            config.password.pepper.clone(),
        )
    }

    /// The bytes a hash is computed over: NFKC(password) ++ pepper.
    fn hash_input(&self, password: &SecretString) -> SecretBytes {
        let mut input: Vec<u8> = password
            .expose_secret()
            .nfkc()
            .collect::<String>()
            .into_bytes();
        input.extend_from_slice(self.pepper.expose_secret().as_bytes());
        SecretBytes(input)
    }

    /// Whether Synapse's rule cuts this password (with the pepper) short. Only worth a notice.
    pub fn is_truncated(&self, password: &SecretString) -> bool {
        self.hash_input(password).0.len() > BCRYPT_MAX_INPUT_BYTES
    }

    /// A new hash of `password` in the configured scheme.
    pub fn hash(&self, password: &SecretString) -> Result<SecretString, PasswordError> {
        let input = self.hash_input(password);
        let hash = match self.scheme {
            HashScheme::Bcrypt => bcrypt::hash(input.bcrypt_part(), self.bcrypt_rounds)
                .map_err(|err| PasswordError::Hash(err.to_string()))?,
            HashScheme::Argon2id => {
                let salt = argon2::password_hash::SaltString::generate(
                    &mut argon2::password_hash::rand_core::OsRng,
                );
                argon2id()
                    .hash_password(&input.0, &salt)
                    .map_err(|err| PasswordError::Hash(err.to_string()))?
                    .to_string()
            }
        };
        Ok(SecretString::from(hash))
    }

    /// Whether `password` matches `stored_hash`, whatever scheme made it. A missing, empty or
    /// malformed hash never matches (Synapse treats an empty hash the same way).
    pub fn verify(&self, password: &SecretString, stored_hash: Option<&SecretString>) -> bool {
        let Some(stored) = stored_hash.map(|h| h.expose_secret()) else {
            return false;
        };
        let input = self.hash_input(password);
        match scheme_of(stored) {
            Some(HashScheme::Bcrypt) => {
                bcrypt::verify(input.bcrypt_part(), stored).unwrap_or(false)
            }
            Some(HashScheme::Argon2id) => PhcHash::new(stored)
                .is_ok_and(|parsed| argon2id().verify_password(&input.0, &parsed).is_ok()),
            None => false,
        }
    }

    /// Whether a hash that just verified should be replaced by a new one: it is in another
    /// scheme than the configured one, or weaker than the configured cost.
    pub fn needs_rehash(&self, stored_hash: &SecretString) -> bool {
        let stored = stored_hash.expose_secret();
        match (scheme_of(stored), self.scheme) {
            (Some(HashScheme::Bcrypt), HashScheme::Bcrypt) => {
                bcrypt_cost(stored).is_none_or(|cost| cost < self.bcrypt_rounds)
            }
            (Some(HashScheme::Argon2id), HashScheme::Argon2id) => {
                PhcHash::new(stored).is_ok_and(|parsed| {
                    let param = |name: &str| parsed.params.get_decimal(name).unwrap_or(0);
                    param("m") < ARGON2_MEMORY_KIB
                        || param("t") < ARGON2_ITERATIONS
                        || param("p") < ARGON2_LANES
                })
            }
            _ => true,
        }
    }
}

/// The scheme a stored hash was made with, from its prefix.
pub fn scheme_of(stored_hash: &str) -> Option<HashScheme> {
    if ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored_hash.starts_with(prefix))
    {
        Some(HashScheme::Bcrypt)
    } else if stored_hash.starts_with("$argon2id$") {
        Some(HashScheme::Argon2id)
    } else {
        None
    }
}

fn bcrypt_cost(stored_hash: &str) -> Option<u32> {
    stored_hash.get(4..6)?.parse().ok()
}

fn argon2id() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .expect("OWASP's argon2id parameters are valid");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Password bytes that are wiped from memory when dropped.
struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// What bcrypt reads: the first 72 bytes, cut silently as Synapse does.
    fn bcrypt_part(&self) -> &[u8] {
        &self.0[..self.0.len().min(BCRYPT_MAX_INPUT_BYTES)]
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        secrecy::zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(scheme: HashScheme, rounds: u32, pepper: &str) -> HashSettings {
        HashSettings::new(scheme, rounds, SecretString::from(pepper))
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn bcrypt_hashes_are_2b_at_the_configured_cost_and_verify() {
        let s = settings(HashScheme::Bcrypt, 5, "pepper");
        let hash = s.hash(&secret("hunter2")).unwrap();
        assert!(hash.expose_secret().starts_with("$2b$05$"));
        assert!(s.verify(&secret("hunter2"), Some(&hash)));
        assert!(!s.verify(&secret("hunter3"), Some(&hash)));
        // The pepper is part of the input: another pepper does not match.
        assert!(!settings(HashScheme::Bcrypt, 5, "other").verify(&secret("hunter2"), Some(&hash)));
    }

    #[test]
    fn passwords_are_nfkc_normalised_but_the_pepper_is_not() {
        let s = settings(HashScheme::Bcrypt, 4, "");
        let hash = s.hash(&secret("ﬁ")).unwrap();
        assert!(s.verify(&secret("fi"), Some(&hash)));

        let peppered = settings(HashScheme::Bcrypt, 4, "ﬁ");
        let hash = peppered.hash(&secret("x")).unwrap();
        let raw = bcrypt::hash_with_salt("xﬁ".as_bytes(), 4, [7; 16]).unwrap();
        assert!(peppered.verify(&secret("x"), Some(&SecretString::from(raw.to_string()))));
        assert!(!bcrypt::verify("xfi", hash.expose_secret()).unwrap());
    }

    #[test]
    fn only_the_first_72_bytes_count_and_a_long_password_is_no_error() {
        let s = settings(HashScheme::Bcrypt, 4, "pep");
        let long = "a".repeat(100);
        let hash = s.hash(&secret(&long)).unwrap();
        assert!(s.is_truncated(&secret(&long)));
        assert!(s.verify(&secret(&"a".repeat(72)), Some(&hash)));
        assert!(!s.verify(&secret(&"a".repeat(71)), Some(&hash)));
        assert!(!s.is_truncated(&secret("short")));
    }

    #[test]
    fn verifies_2a_and_2y_hashes() {
        let s = settings(HashScheme::Bcrypt, 4, "");
        let parts = bcrypt::hash_with_salt("pw", 4, [3; 16]).unwrap();
        for version in [bcrypt::Version::TwoA, bcrypt::Version::TwoY] {
            let hash = SecretString::from(parts.format_for_version(version));
            assert!(s.verify(&secret("pw"), Some(&hash)));
            assert!(!s.verify(&secret("px"), Some(&hash)));
        }
    }

    #[test]
    fn malformed_or_missing_hashes_never_match() {
        let s = settings(HashScheme::Bcrypt, 4, "");
        for bad in [
            "",
            "$2b$",
            "$2b$04$short",
            "plaintext",
            "$argon2id$v=19$garbage",
            "$2b$99$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(!s.verify(&secret("pw"), Some(&secret(bad))), "{bad}");
        }
        assert!(!s.verify(&secret(""), None));
    }

    #[test]
    fn argon2id_is_opt_in_and_any_known_scheme_verifies() {
        let argon = settings(HashScheme::Argon2id, 12, "pep");
        let hash = argon.hash(&secret("pw")).unwrap();
        assert!(
            hash.expose_secret()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(argon.verify(&secret("pw"), Some(&hash)));
        assert!(!argon.verify(&secret("pW"), Some(&hash)));

        // A bcrypt deployment still reads argon2id hashes, and the reverse.
        let bcrypt_settings = settings(HashScheme::Bcrypt, 4, "pep");
        assert!(bcrypt_settings.verify(&secret("pw"), Some(&hash)));
        let bcrypt_hash = bcrypt_settings.hash(&secret("pw")).unwrap();
        assert!(argon.verify(&secret("pw"), Some(&bcrypt_hash)));
    }

    #[test]
    fn needs_rehash_when_the_scheme_or_cost_is_below_the_configured_one() {
        let cost5 = settings(HashScheme::Bcrypt, 5, "");
        let cost4_hash = settings(HashScheme::Bcrypt, 4, "")
            .hash(&secret("pw"))
            .unwrap();
        let cost5_hash = cost5.hash(&secret("pw")).unwrap();
        assert!(cost5.needs_rehash(&cost4_hash));
        assert!(!cost5.needs_rehash(&cost5_hash));
        assert!(!settings(HashScheme::Bcrypt, 4, "").needs_rehash(&cost5_hash));

        let argon = settings(HashScheme::Argon2id, 5, "");
        assert!(argon.needs_rehash(&cost5_hash));
        let argon_hash = argon.hash(&secret("pw")).unwrap();
        assert!(!argon.needs_rehash(&argon_hash));
        // Going back to bcrypt (so Synapse can read the hashes) rewrites argon2id ones.
        assert!(cost5.needs_rehash(&argon_hash));
        let weak = SecretString::from(
            argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(8, 1, 1, None).unwrap(),
            )
            .hash_password(
                b"pw",
                &argon2::password_hash::SaltString::from_b64("c2FsdHNhbHQ").unwrap(),
            )
            .unwrap()
            .to_string(),
        );
        assert!(argon.needs_rehash(&weak));
    }

    #[test]
    fn debug_output_hides_the_pepper() {
        let s = settings(HashScheme::Bcrypt, 4, "very-secret-pepper");
        assert!(!format!("{s:?}").contains("very-secret-pepper"));
    }
}
