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

    /// The bytes a hash is computed over: NFKC(password) ++ pepper, in one buffer that is
    /// wiped when dropped. The buffer is sized before it is filled, so it never moves: a
    /// growing `Vec` or `String` would leave its earlier copies in freed memory, unwiped.
    fn hash_input(&self, password: &SecretString) -> SecretBytes {
        let pepper = self.pepper.expose_secret().as_bytes();
        let normalized = || password.expose_secret().nfkc();
        let length = normalized().map(char::len_utf8).sum::<usize>() + pepper.len();
        let mut input = SecretBytes(Vec::with_capacity(length));
        let mut utf8 = [0u8; 4];
        for c in normalized() {
            input
                .0
                .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
        secrecy::zeroize::Zeroize::zeroize(&mut utf8);
        input.0.extend_from_slice(pepper);
        debug_assert_eq!(input.0.capacity(), length, "the password buffer moved");
        input
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

/// The scheme of a hash someone gives (an import's `password_hash`): its
/// prefix, and the whole of it well formed, so that a typo or a placeholder is refused rather
/// than stored as a hash that no password will ever match. bcrypt: `$2a$`, `$2b$` or `$2y$`,
/// a two-digit cost from 4 to 31, `$`, and 53 characters of bcrypt's base64 (60 in all).
/// argon2id: a PHC string with its parameters, salt and hash.
pub fn scheme_of_well_formed(given_hash: &str) -> Option<HashScheme> {
    let well_formed = match scheme_of(given_hash)? {
        HashScheme::Bcrypt => {
            let bytes = given_hash.as_bytes();
            bytes.len() == 60
                && bytes[4..6].iter().all(u8::is_ascii_digit)
                && bcrypt_cost(given_hash).is_some_and(|cost| (4..=31).contains(&cost))
                && bytes[6] == b'$'
                && bytes[7..]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'/')
        }
        HashScheme::Argon2id => PhcHash::new(given_hash).is_ok_and(|parsed| {
            parsed.algorithm.as_str() == "argon2id"
                && parsed.salt.is_some()
                && parsed.hash.is_some()
        }),
    };
    well_formed.then(|| scheme_of(given_hash)).flatten()
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

    #[test]
    fn a_given_hash_must_be_whole_to_have_a_scheme() {
        let bcrypt = settings(HashScheme::Bcrypt, 4, "")
            .hash(&secret("pw"))
            .unwrap();
        let argon2 = settings(HashScheme::Argon2id, 4, "")
            .hash(&secret("pw"))
            .unwrap();
        let bcrypt = bcrypt.expose_secret();
        let argon2 = argon2.expose_secret();
        assert_eq!(scheme_of_well_formed(bcrypt), Some(HashScheme::Bcrypt));
        assert_eq!(scheme_of_well_formed(argon2), Some(HashScheme::Argon2id));
        let cut_bcrypt = &bcrypt[..59];
        let cut_argon2 = &argon2[..argon2.rfind('$').unwrap()];
        let bad_cost = bcrypt.replacen("$04$", "$+4$", 1);
        let high_cost = bcrypt.replacen("$04$", "$32$", 1);
        let bad_char = format!("{}!", &bcrypt[..59]);
        for given in [
            "$2b$04$notahash",
            cut_bcrypt,
            &bad_cost,
            &high_cost,
            &bad_char,
            cut_argon2,
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "",
            "plaintext",
        ] {
            assert_eq!(scheme_of_well_formed(given), None, "{given}");
        }
    }

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

    #[test]
    fn the_hash_input_is_one_buffer_that_never_moved() {
        let s = settings(HashScheme::Bcrypt, 4, "pep\u{e9}");
        // "ﬁ" becomes "fi", "e" + U+0301 composes, "①" becomes "1", as Python's
        // unicodedata.normalize("NFKC", …); the pepper is appended raw.
        let input = s.hash_input(&secret("\u{fb01}e\u{301}\u{2460}"));
        assert_eq!(input.0, "fi\u{e9}1pep\u{e9}".as_bytes());
        // Filled in place: had it grown, copies of the password would be left unwiped.
        assert_eq!(input.0.capacity(), input.0.len());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Stored hashes that are anything but a hash of the password: random text, text with
        /// a known prefix, well-formed bcrypt and argon2id strings with random digests (at low
        /// costs: a well-formed `$2b$31$` would take days, see docs/SECURITY.md).
        fn garbage_hash() -> impl Strategy<Value = String> {
            let prefixes = prop::sample::select(vec![
                "$2a$",
                "$2b$",
                "$2y$",
                "$2x$",
                "$2b$04$",
                "$2b$4$",
                "$2b$-1$",
                "$argon2id$",
                "$argon2id$v=19$",
                "$argon2id$v=19$m=8,t=1,p=1$",
                "$argon2i$",
                "$",
            ]);
            prop_oneof![
                any::<String>(),
                (prefixes, any::<String>()).prop_map(|(prefix, rest)| format!("{prefix}{rest}")),
                (
                    prop::sample::select(vec!["2a", "2b", "2y"]),
                    4u32..=5,
                    "[./A-Za-z0-9]{50,56}",
                )
                    .prop_map(|(version, cost, rest)| format!("${version}${cost:02}${rest}")),
                (
                    8u32..=64,
                    1u32..=2,
                    "[A-Za-z0-9+/]{8,24}",
                    "[A-Za-z0-9+/]{0,48}"
                )
                    .prop_map(|(m, t, salt, hash)| format!(
                        "$argon2id$v=19$m={m},t={t},p=1${salt}${hash}"
                    )),
            ]
        }

        fn bcrypt_character() -> impl Strategy<Value = char> {
            prop::sample::select(
                "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    .chars()
                    .collect::<Vec<_>>(),
            )
        }

        proptest! {
            #![proptest_config(crate::property_testing::config(256))]

            /// Verifying against a malformed or foreign hash never panics and never matches.
            #[test]
            fn garbage_hashes_never_match(password in any::<String>(), stored in garbage_hash()) {
                let s = settings(HashScheme::Bcrypt, 4, "pep");
                prop_assert!(!s.verify(&secret(&password), Some(&secret(&stored))), "{}", stored);
                // needs_rehash reads the same strings: no panic either.
                let _ = s.needs_rehash(&secret(&stored));
            }

            /// One changed character of a real hash's salt or digest and it no longer matches
            /// (the last character of each carries unused bits, so it is left alone).
            #[test]
            fn a_hash_with_one_character_changed_never_matches(
                password in "\\PC{0,40}",
                position in (7usize..28).prop_union(29usize..59),
                replacement in bcrypt_character(),
            ) {
                let s = settings(HashScheme::Bcrypt, 4, "pep");
                let hash = s.hash(&secret(&password)).unwrap();
                let mut chars: Vec<char> = hash.expose_secret().chars().collect();
                prop_assume!(chars[position] != replacement);
                chars[position] = replacement;
                let changed: String = chars.into_iter().collect();
                prop_assert!(!s.verify(&secret(&password), Some(&secret(&changed))), "{}", changed);
            }

            /// The hash input is NFKC(password) ++ pepper, in a buffer that never moved.
            #[test]
            fn the_hash_input_is_nfkc_then_the_pepper(password in any::<String>(), pepper in any::<String>()) {
                let s = settings(HashScheme::Bcrypt, 4, &pepper);
                let input = s.hash_input(&secret(&password));
                let expected = format!("{}{pepper}", password.nfkc().collect::<String>());
                prop_assert_eq!(&input.0, expected.as_bytes());
                prop_assert_eq!(input.0.capacity(), input.0.len());
            }
        }
    }
}
