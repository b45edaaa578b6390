//! Random secrets: the config's keys and peppers, device IDs and access tokens.
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
}
