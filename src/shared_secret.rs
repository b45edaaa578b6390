//! Synapse's shared-secret registration MAC: HMAC-SHA1, keyed by
//! `registration_shared_secret`, over `nonce NUL username NUL password NUL admin|notadmin`
//! (and `NUL user_type` when there is one). The server checks it; `register_new_matrix_user`
//! computes it.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

/// What a registration's MAC covers. `Debug` shows no password.
#[derive(Clone, Copy)]
pub struct RegistrationFields<'a> {
    pub nonce: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub admin: bool,
    pub user_type: Option<&'a str>,
}

impl std::fmt::Debug for RegistrationFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationFields")
            .field("nonce", &self.nonce)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("admin", &self.admin)
            .field("user_type", &self.user_type)
            .finish()
    }
}

fn hmac(secret: &SecretString, fields: RegistrationFields<'_>) -> Hmac<Sha1> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(fields.nonce.as_bytes());
    mac.update(b"\x00");
    mac.update(fields.username.as_bytes());
    mac.update(b"\x00");
    mac.update(fields.password.as_bytes());
    mac.update(b"\x00");
    mac.update(if fields.admin {
        b"admin" as &[u8]
    } else {
        b"notadmin"
    });
    if let Some(user_type) = fields.user_type {
        mac.update(b"\x00");
        mac.update(user_type.as_bytes());
    }
    mac
}

/// The MAC as lowercase hex, as Synapse's script sends it.
pub fn registration_mac(secret: &SecretString, fields: RegistrationFields<'_>) -> String {
    hex::encode(hmac(secret, fields).finalize().into_bytes())
}

/// Whether `mac` (lowercase hex) is the registration's MAC; compared in constant time.
pub fn registration_mac_matches(
    secret: &SecretString,
    fields: RegistrationFields<'_>,
    mac: &str,
) -> bool {
    // Synapse compares the hex digests as text: uppercase hex does not match.
    if mac.bytes().any(|b| b.is_ascii_uppercase()) {
        return false;
    }
    let Ok(given) = hex::decode(mac) else {
        return false;
    };
    hmac(secret, fields).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(
        password: &'a str,
        admin: bool,
        user_type: Option<&'a str>,
    ) -> RegistrationFields<'a> {
        RegistrationFields {
            nonce: "abc",
            username: "alice",
            password,
            admin,
            user_type,
        }
    }

    #[test]
    fn the_mac_is_synapses_hmac_sha1_over_the_nul_separated_fields() {
        // Computed with Python, as Synapse does: hmac.new(b"s3cret",
        // b"abc\x00alice\x00pw\x00notadmin", hashlib.sha1).hexdigest(), and with
        // b"…\x00admin\x00bot" for an admin bot.
        let secret = SecretString::from("s3cret");
        let user = "d7cd8fe38bb2b37bacf757920ef46050075d427d";
        let admin_bot = "dfd765b6c92fc9489e0cb8631f40384529ec931a";
        assert_eq!(registration_mac(&secret, fields("pw", false, None)), user);
        assert_eq!(
            registration_mac(&secret, fields("pw", true, Some("bot"))),
            admin_bot
        );
        assert!(registration_mac_matches(
            &secret,
            fields("pw", false, None),
            user
        ));
        assert!(!registration_mac_matches(
            &secret,
            fields("pw", true, None),
            user
        ));
        assert!(!registration_mac_matches(
            &secret,
            fields("pw2", false, None),
            user
        ));
        assert!(!registration_mac_matches(
            &secret,
            fields("pw", false, None),
            &user.to_uppercase()
        ));
        assert!(!registration_mac_matches(
            &secret,
            fields("pw", false, None),
            "not hex"
        ));
        let other = SecretString::from("other");
        assert!(!registration_mac_matches(
            &other,
            fields("pw", false, None),
            user
        ));
    }

    #[test]
    fn a_wrong_garbage_or_wrong_length_mac_is_refused_without_panic() {
        let secret = SecretString::from("s3cret");
        let good = registration_mac(&secret, fields("pw", false, None));
        let mut wrong_last = good.clone();
        wrong_last.replace_range(39.., if good.ends_with('0') { "1" } else { "0" });
        for mac in [
            String::new(),
            "0".into(),
            "00".into(),
            good[..38].to_owned(),
            format!("{good}00"),
            format!("{good}0"),
            wrong_last,
            "zz".repeat(20),
            "é".repeat(20),
            "\0".repeat(40),
            "0".repeat(100_000),
        ] {
            assert!(
                !registration_mac_matches(&secret, fields("pw", false, None), &mac),
                "{mac:.50}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", fields("hunter2-secret", true, Some("bot")));
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("[REDACTED]"),
            "{shown}"
        );
    }
}
