//! Random secrets: the config's keys and peppers, device IDs and access tokens, and the
//! passwords the admin console generates.
//!
//! Everything here comes from the operating system's CSPRNG (`rand::rng()` is reseeded from it).

use rand::Rng;
use rand::distr::{Alphanumeric, Uniform};

/// `len` random characters from `[A-Za-z0-9]`.
pub fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `len` random uppercase letters: the shape of the device IDs Synapse hands out.
pub fn random_uppercase(len: usize) -> String {
    let letters = Uniform::new_inclusive(b'A', b'Z').expect("a valid range");
    rand::rng()
        .sample_iter(letters)
        .take(len)
        .map(char::from)
        .collect()
}

/// The characters of a generated password: letters and digits without the look-alikes
/// (`0O`, `1lI`), since an admin may read it out or a user copy it by hand.
const PASSWORD_CHARACTERS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A password for an admin to hand to a user: four groups of five characters joined by `-`
/// (about 115 bits), with a lowercase letter, an uppercase letter, a digit and a symbol, so
/// that it meets any `password_config.policy` short of a longer minimum length.
pub fn generated_password() -> secrecy::SecretString {
    let pick = Uniform::new(0, PASSWORD_CHARACTERS.len()).expect("a valid range");
    loop {
        let characters: Vec<u8> = rand::rng()
            .sample_iter(pick)
            .take(20)
            .map(|i| PASSWORD_CHARACTERS[i])
            .collect();
        let has = |test: fn(&u8) -> bool| characters.iter().any(test);
        if has(u8::is_ascii_lowercase) && has(u8::is_ascii_uppercase) && has(u8::is_ascii_digit) {
            let groups: Vec<&str> = characters
                .chunks(5)
                .map(|group| std::str::from_utf8(group).expect("ASCII"))
                .collect();
            return groups.join("-").into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_requested_shape_and_differ() {
        let a = random_alphanumeric(32);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_alphanumeric(32));
        let d = random_uppercase(10);
        assert!(d.len() == 10 && d.bytes().all(|b| b.is_ascii_uppercase()));
    }

    #[test]
    fn generated_passwords_meet_a_strict_policy_and_differ() {
        use secrecy::ExposeSecret;
        let policy = crate::password::PasswordPolicy::new(crate::config::PasswordPolicyConfig {
            enabled: true,
            minimum_length: 20,
            require_digit: true,
            require_symbol: true,
            require_lowercase: true,
            require_uppercase: true,
        });
        let first = generated_password();
        for _ in 0..200 {
            let password = generated_password();
            let text = password.expose_secret();
            assert_eq!(text.len(), 23, "{}", text.len());
            assert_eq!(policy.check(text), Ok(()));
            assert!(!text.contains(['0', 'O', '1', 'l', 'I']));
            assert_ne!(text, first.expose_secret());
        }
    }
}
