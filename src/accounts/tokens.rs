//! Access tokens and device IDs, in Synapse's shapes.
//!
//! Tokens look like Synapse's: `syt_<base64 localpart>_<20 random chars>_<crc32 in base62>`
//! for access tokens, `syr_…` for refresh tokens.
//! The prefix tells a leaked token's kind and owner in a secret scanner; the checksum lets
//! a scanner reject random strings without asking the server.
//!
//! The OAuth 2.0 API's tokens are homekey's own (`hka_…`, `hkr_…`) and kept only as a
//! digest (`crate::store::token_forms`): they never existed in Synapse's tables.
//!
//! Legacy tokens are stored as they are, in `access_tokens.token`, as Synapse stores them. Storing a
//! hash instead would protect tokens against a read-only database leak, but the same store
//! code runs on Synapse databases, where Synapse must find the plain token; and whoever reads
//! homekey's database also reads its password hashes. One form everywhere keeps the SQL that
//! operators know (`SELECT … FROM access_tokens WHERE token = …`) working.

use base64::Engine;
use secrecy::SecretString;

use crate::secrets::{random_alphanumeric, random_uppercase};
use crate::store::token_forms::{OAUTH_ACCESS_PREFIX, OAUTH_REFRESH_PREFIX};

/// A new access token for the user with this localpart (its base64 URL-safe, so that the
/// token needs no escaping in `?access_token=`).
pub fn new_access_token(localpart: &str) -> SecretString {
    let owner = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(localpart);
    new_token("syt", &owner)
}

/// A new refresh token for the user with this localpart. Refresh tokens travel in JSON
/// bodies only; their base64 is Synapse's standard one, never holding the `_` that
/// separates the parts Synapse checks.
pub fn new_refresh_token(localpart: &str) -> SecretString {
    let owner = base64::engine::general_purpose::STANDARD_NO_PAD.encode(localpart);
    new_token("syr", &owner)
}

fn new_token(prefix: &str, owner: &str) -> SecretString {
    let base = format!("{prefix}_{owner}_{}", random_alphanumeric(20));
    let checksum = base62(crc32fast::hash(base.as_bytes()), 6, SYNAPSE_BASE62);
    SecretString::from(format!("{base}_{checksum}"))
}

/// Whether `token` has a refresh token's shape and checksum, as Synapse checks before it
/// looks one up.
pub fn is_refresh_token_shape(token: &str) -> bool {
    let parts: Vec<&str> = token.split('_').collect();
    let [prefix, owner, random, checksum] = parts[..] else {
        return false;
    };
    let base = format!("{prefix}_{owner}_{random}");
    let crc = crc32fast::hash(base.as_bytes());
    // homekey's own tokens had the checksum in base 62 with lowercase digits first until it
    // matched Synapse's: those still in use are taken too.
    prefix == "syr"
        && [SYNAPSE_BASE62, EARLIER_BASE62]
            .iter()
            .any(|digits| checksum == base62(crc, 6, digits))
}

/// Synapse's digits of base 62 (`synapse.util.stringutils._BASE62`): upper case first.
const SYNAPSE_BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The digits homekey's own tokens used before it matched Synapse's.
const EARLIER_BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A new access token of the OAuth 2.0 API: its prefix and 40 random alphanumerics (238
/// bits). Kept only as a digest (`crate::store::token_forms`).
pub fn new_oauth_access_token() -> SecretString {
    SecretString::from(format!("{OAUTH_ACCESS_PREFIX}{}", random_alphanumeric(40)))
}

/// A new refresh token of the OAuth 2.0 API, kept only as a digest.
pub fn new_oauth_refresh_token() -> SecretString {
    SecretString::from(format!("{OAUTH_REFRESH_PREFIX}{}", random_alphanumeric(40)))
}

/// A new authorization code (RFC 6749 §4.1.2), kept only as a digest.
pub fn new_authorization_code() -> SecretString {
    SecretString::from(random_alphanumeric(40))
}

/// A new device ID: ten uppercase letters, as Synapse makes them.
pub fn new_device_id() -> String {
    random_uppercase(10)
}

/// `value` in base 62 with `digits`, left-padded with '0' to `min_width`.
fn base62(mut value: u32, min_width: usize, digits: &[u8; 62]) -> String {
    let mut out = Vec::new();
    while value > 0 {
        out.push(digits[(value % 62) as usize]);
        value /= 62;
    }
    while out.len() < min_width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base62 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_have_synapses_shape_and_a_valid_checksum() {
        let token = new_access_token("alice");
        let token = token.expose_secret();
        let parts: Vec<&str> = token.split('_').collect();
        assert_eq!(parts[0], "syt");
        assert_eq!(parts[1], "YWxpY2U");
        assert_eq!(parts[2].len(), 20);
        let base = token.rsplit_once('_').unwrap().0;
        assert_eq!(
            parts[3],
            base62(crc32fast::hash(base.as_bytes()), 6, SYNAPSE_BASE62)
        );
        assert_ne!(new_access_token("alice").expose_secret(), token);
    }

    #[test]
    fn refresh_tokens_are_told_by_their_shape_and_checksum() {
        let token = new_refresh_token("alice");
        assert!(is_refresh_token_shape(token.expose_secret()));
        let access = new_access_token("alice");
        assert!(!is_refresh_token_shape(access.expose_secret()));
        let mut tampered = token.expose_secret().to_owned();
        tampered.replace_range(10..11, if &tampered[10..11] == "a" { "b" } else { "a" });
        assert!(!is_refresh_token_shape(&tampered));
        assert!(!is_refresh_token_shape("syr_a_b"));
        assert!(!is_refresh_token_shape(""));
        // A localpart whose URL-safe base64 would hold a '_'.
        assert!(is_refresh_token_shape(
            new_refresh_token("\u{ff}\u{ff}").expose_secret()
        ));
    }

    #[test]
    fn base62_matches_synapses() {
        // Synapse's base62_encode gives these.
        assert_eq!(base62(0, 6, SYNAPSE_BASE62), "000000");
        assert_eq!(base62(61, 1, SYNAPSE_BASE62), "z");
        assert_eq!(base62(62, 1, SYNAPSE_BASE62), "10");
        assert_eq!(base62(u32::MAX, 6, SYNAPSE_BASE62), "4gfFC3");
    }

    #[test]
    fn synapses_refresh_tokens_and_homekeys_earlier_ones_are_taken() {
        // Made by Synapse's generate_refresh_token's formula for @bob (random part fixed).
        assert!(is_refresh_token_shape(
            "syr_Ym9i_abcdefghijklmnopqrst_2wfKJV"
        ));
        // The same with the checksum in homekey's earlier digits.
        assert!(is_refresh_token_shape(
            "syr_Ym9i_abcdefghijklmnopqrst_2WFkjv"
        ));
        assert!(!is_refresh_token_shape(
            "syr_Ym9i_abcdefghijklmnopqrst_2WFKJV"
        ));
    }
}
