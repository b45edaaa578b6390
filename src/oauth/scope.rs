//! The scopes of the Matrix OAuth 2.0 API (MSC2967), as clients ask for them:
//! `urn:matrix:client:api:*` (the whole Client-Server API) and
//! `urn:matrix:client:device:<DEVICE_ID>` (the device the session is, chosen by the client),
//! or their unstable spellings `urn:matrix:org.matrix.msc2967.client:…` (Element X still
//! sends only those); `urn:synapse:admin:*` (Synapse's admin rights) and `openid`. One
//! request uses one spelling, names exactly one device, and asks for the API.

use std::fmt;

use super::shown;

/// The stable spelling's prefix and the unstable one's.
const STABLE: &str = "urn:matrix:client:";
const UNSTABLE: &str = "urn:matrix:org.matrix.msc2967.client:";
/// Synapse's admin scope.
pub const SYNAPSE_ADMIN: &str = "urn:synapse:admin:*";
/// The longest device ID a scope may name: Synapse answers 500 beyond it.
pub const LONGEST_DEVICE_ID: usize = 255;

/// The scopes the discovery document lists (`scopes_supported`), with the device scopes'
/// placeholder.
pub const SUPPORTED: &[&str] = &[
    "urn:matrix:client:api:*",
    "urn:matrix:client:device:*",
    "urn:matrix:org.matrix.msc2967.client:api:*",
    "urn:matrix:org.matrix.msc2967.client:device:*",
    SYNAPSE_ADMIN,
];

/// Which spelling a request used; answers and introspection speak it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    Stable,
    Unstable,
}

impl Spelling {
    fn prefix(self) -> &'static str {
        match self {
            Spelling::Stable => STABLE,
            Spelling::Unstable => UNSTABLE,
        }
    }
}

/// A scope a client may be granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub spelling: Spelling,
    /// The device the session is.
    pub device_id: String,
    /// `urn:synapse:admin:*`: to be granted only to a server admin.
    pub admin: bool,
    /// `openid`.
    pub openid: bool,
}

/// Why a scope is refused (`invalid_scope`), in words for the client's developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRefusal(pub String);

impl fmt::Display for ScopeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Scope {
    /// The scope of a request: space-separated tokens (RFC 6749 §3.3). Tokens of neither
    /// kind are refused, as is a request mixing the spellings, naming no device or several,
    /// or not asking for the API.
    pub fn parse(requested: &str) -> Result<Scope, ScopeRefusal> {
        let refuse = |why: String| Err(ScopeRefusal(why));
        let mut spelling = None;
        let mut api = false;
        let mut devices: Vec<&str> = Vec::new();
        let (mut admin, mut openid) = (false, false);
        for token in requested.split(' ').filter(|token| !token.is_empty()) {
            if token == SYNAPSE_ADMIN {
                admin = true;
                continue;
            }
            if token == "openid" {
                openid = true;
                continue;
            }
            let (this_spelling, rest) = if let Some(rest) = token.strip_prefix(STABLE) {
                (Spelling::Stable, rest)
            } else if let Some(rest) = token.strip_prefix(UNSTABLE) {
                (Spelling::Unstable, rest)
            } else {
                return refuse(format!(
                    "the scope {} is not one homekey grants",
                    shown(token, 80)
                ));
            };
            if spelling.is_some_and(|s| s != this_spelling) {
                return refuse(
                    "the scope mixes the stable (urn:matrix:client:) and the unstable \
                     (urn:matrix:org.matrix.msc2967.client:) spellings"
                        .into(),
                );
            }
            spelling = Some(this_spelling);
            if rest == "api:*" {
                api = true;
            } else if let Some(device_id) = rest.strip_prefix("device:") {
                devices.push(device_id);
            } else {
                return refuse(format!(
                    "the scope {} is not one homekey grants",
                    shown(token, 80)
                ));
            }
        }
        let Some(spelling) = spelling else {
            return refuse(format!(
                "the scope must ask for the API ({STABLE}api:*) and one device \
                 ({STABLE}device:<ID>)"
            ));
        };
        if !api {
            return refuse(format!(
                "the scope must ask for the API ({}api:*)",
                spelling.prefix()
            ));
        }
        let device_id = match devices.as_slice() {
            [device_id] => *device_id,
            [] => {
                return refuse(format!(
                    "the scope must name the session's device ({}device:<ID>)",
                    spelling.prefix()
                ));
            }
            _ => return refuse("the scope names more than one device".into()),
        };
        if device_id.is_empty()
            || device_id.len() > LONGEST_DEVICE_ID
            || !device_id.bytes().all(is_scope_token_byte)
        {
            return refuse(format!(
                "the device ID must be 1 to {LONGEST_DEVICE_ID} printable ASCII characters, \
                 without spaces, quotes or backslashes"
            ));
        }
        Ok(Scope {
            spelling,
            device_id: device_id.to_owned(),
            admin,
            openid,
        })
    }

    /// The scope as granted, in the request's spelling: what the token answer and
    /// introspection say.
    pub fn granted(&self) -> String {
        let prefix = self.spelling.prefix();
        let mut scope = format!("{prefix}api:* {prefix}device:{}", self.device_id);
        if self.admin {
            scope.push(' ');
            scope.push_str(SYNAPSE_ADMIN);
        }
        if self.openid {
            scope.push_str(" openid");
        }
        scope
    }

    /// The scope as introspection tells Synapse: the API and the device in both spellings
    /// (Synapse accepts either; it collects device IDs in a set, so one device named twice
    /// is one), and Synapse's admin rights only if granted and `admin_now` (the account is a
    /// server admin at this moment).
    pub fn introspected(&self, admin_now: bool) -> String {
        let device = &self.device_id;
        let mut scope = format!(
            "{STABLE}api:* {UNSTABLE}api:* {STABLE}device:{device} {UNSTABLE}device:{device}"
        );
        if self.admin && admin_now {
            scope.push(' ');
            scope.push_str(SYNAPSE_ADMIN);
        }
        if self.openid {
            scope.push_str(" openid");
        }
        scope
    }

    /// This scope without the admin rights (for a user who is not a server admin).
    pub fn without_admin(&self) -> Scope {
        Scope {
            admin: false,
            ..self.clone()
        }
    }
}

/// Whether a granted scope gives Synapse's admin rights.
pub fn grants_admin(granted: &str) -> bool {
    granted.split(' ').any(|token| token == SYNAPSE_ADMIN)
}

/// RFC 6749's scope-token characters: printable ASCII but space, `"` and `\` (QR-login
/// device IDs are base64, with `+` and `/`).
fn is_scope_token_byte(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_x_asks_in_the_unstable_spelling_and_element_web_in_the_stable_one() {
        let x = Scope::parse(
            "urn:matrix:org.matrix.msc2967.client:api:* \
             urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ",
        )
        .unwrap();
        assert_eq!(x.spelling, Spelling::Unstable);
        assert_eq!(x.device_id, "ABCDEFGHIJ");
        assert_eq!(
            x.granted(),
            "urn:matrix:org.matrix.msc2967.client:api:* \
             urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ"
        );
        let web = Scope::parse(
            "openid urn:matrix:client:api:* urn:matrix:client:device:qr+Lo/gin== urn:synapse:admin:*",
        )
        .unwrap();
        assert_eq!(web.spelling, Spelling::Stable);
        assert_eq!(
            web.device_id, "qr+Lo/gin==",
            "QR-login device IDs are base64"
        );
        assert!(web.admin && web.openid);
        assert_eq!(
            web.without_admin().granted(),
            "urn:matrix:client:api:* urn:matrix:client:device:qr+Lo/gin== openid"
        );
    }

    #[test]
    fn each_refused_scope_says_why() {
        let device = "urn:matrix:client:device:D";
        let long = format!(
            "urn:matrix:client:api:* urn:matrix:client:device:{}",
            "a".repeat(256)
        );
        for (scope, needle) in [
            ("", "must ask for the API"),
            ("openid", "must ask for the API"),
            (device, "must ask for the API (urn:matrix:client:api:*)"),
            ("urn:matrix:client:api:*", "must name the session's device"),
            (
                "urn:matrix:client:api:* urn:matrix:client:device:A urn:matrix:client:device:B",
                "more than one device",
            ),
            (
                "urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:device:A",
                "mixes the stable",
            ),
            (
                "urn:matrix:client:api:* urn:matrix:client:device:A email",
                "email is not one",
            ),
            (
                "urn:matrix:client:api:* urn:matrix:client:guest:A",
                "is not one homekey grants",
            ),
            (long.as_str(), "1 to 255"),
            (
                "urn:matrix:client:api:* urn:matrix:client:device:a\"b",
                "without spaces, quotes",
            ),
            (
                "urn:matrix:client:api:* urn:matrix:client:device:",
                "1 to 255",
            ),
        ] {
            let refusal = Scope::parse(scope).expect_err(scope);
            assert!(refusal.0.contains(needle), "{scope}: {refusal}");
        }
        let at_most = format!(
            "urn:matrix:client:api:* urn:matrix:client:device:{}",
            "a".repeat(255)
        );
        assert!(Scope::parse(&at_most).is_ok());
    }
}
