//! Matrix user IDs: `@localpart:server_name`, per the Matrix spec's grammar.
//!
//! Two grammars apply to localparts. New accounts get the strict one (`a-z 0-9 . _ = - / +`,
//! with Synapse's extra rules: not starting with `_`, not all digits). Existing accounts may
//! carry a *historical* localpart (any printable ASCII but `:`), which must still be accepted
//! wherever an existing user is named, or older accounts could never be managed.

use std::fmt;

/// The spec's limit on a whole user ID, `@`, localpart, `:` and server name, in bytes.
pub const MAX_USER_ID_LENGTH: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("a user ID may not be empty")]
    Empty,
    /// Synapse's wording for an empty localpart of a new account.
    #[error("User ID cannot be empty")]
    EmptyLocalpart,
    #[error("a user ID must have the form @localpart:server_name")]
    MissingServerName,
    #[error("User ID may not be longer than {MAX_USER_ID_LENGTH} characters")]
    TooLong,
    #[error("User ID can only contain characters a-z, 0-9, or '=_-./+'")]
    InvalidCharacters,
    #[error("User ID may not begin with _")]
    LeadingUnderscore,
    #[error("Numeric user IDs are reserved for guest users.")]
    AllNumeric,
    #[error("the localpart contains characters no Matrix user ID may contain")]
    InvalidHistoricalCharacters,
    #[error("'{0}' is not a valid server name")]
    InvalidServerName(String),
    #[error("{user_id} is not a user of this server ({server_name})")]
    NotLocal {
        user_id: String,
        server_name: String,
    },
}

/// A syntactically valid user ID, of this or any server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId {
    full: String,
    colon: usize,
}

impl UserId {
    /// Parses a full user ID, accepting historical localparts (for users that already exist).
    pub fn parse(input: &str) -> Result<UserId, UserIdError> {
        if input.is_empty() {
            return Err(UserIdError::Empty);
        }
        let rest = input
            .strip_prefix('@')
            .ok_or(UserIdError::MissingServerName)?;
        let (localpart, server_name) =
            rest.split_once(':').ok_or(UserIdError::MissingServerName)?;
        Self::from_parts(localpart, server_name)
    }

    /// Builds `@localpart:server_name`, accepting historical localparts.
    pub fn from_parts(localpart: &str, server_name: &str) -> Result<UserId, UserIdError> {
        if localpart.is_empty() {
            return Err(UserIdError::Empty);
        }
        if !localpart.bytes().all(is_historical_localpart_byte) {
            return Err(UserIdError::InvalidHistoricalCharacters);
        }
        validate_server_name(server_name)?;
        let full = format!("@{localpart}:{server_name}");
        if full.len() > MAX_USER_ID_LENGTH {
            return Err(UserIdError::TooLong);
        }
        Ok(UserId {
            colon: 1 + localpart.len(),
            full,
        })
    }

    /// Reads what an operator or a client typed to name a user of `server_name`: a bare
    /// localpart or a full ID. A full ID of another server is refused.
    pub fn parse_local(input: &str, server_name: &str) -> Result<UserId, UserIdError> {
        let user_id = if input.starts_with('@') {
            Self::parse(input)?
        } else {
            Self::from_parts(input, server_name)?
        };
        if user_id.server_name() != server_name {
            return Err(UserIdError::NotLocal {
                user_id: user_id.full,
                server_name: server_name.to_owned(),
            });
        }
        Ok(user_id)
    }

    /// Like [`UserId::parse_local`], for an account about to be created: the localpart must
    /// follow the strict grammar and Synapse's registration rules, checked in the order of
    /// Synapse's `check_username` (characters, empty, leading `_`, length, all digits), so
    /// the first complaint, its message and its errcode are Synapse's whatever the input.
    pub fn parse_new_local(input: &str, server_name: &str) -> Result<UserId, UserIdError> {
        let localpart = match input.strip_prefix('@') {
            Some(rest) => {
                let (localpart, server) =
                    rest.split_once(':').ok_or(UserIdError::MissingServerName)?;
                if server != server_name {
                    return Err(UserIdError::NotLocal {
                        user_id: input.to_owned(),
                        server_name: server_name.to_owned(),
                    });
                }
                localpart
            }
            None => input,
        };
        check_new_localpart_syntax(localpart)?;
        let user_id = Self::from_parts(localpart, server_name)?;
        check_not_numeric(localpart)?;
        Ok(user_id)
    }

    pub fn localpart(&self) -> &str {
        &self.full[1..self.colon]
    }

    pub fn server_name(&self) -> &str {
        &self.full[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// The strict localpart grammar for new accounts, with Synapse's registration rules, checked
/// in Synapse's order (`check_username`) so the first complaint is the same.
pub fn validate_new_localpart(localpart: &str) -> Result<(), UserIdError> {
    check_new_localpart_syntax(localpart)?;
    check_not_numeric(localpart)
}

/// Synapse's first three rules: the strict characters, not empty, no leading `_`.
fn check_new_localpart_syntax(localpart: &str) -> Result<(), UserIdError> {
    if !localpart.bytes().all(is_strict_localpart_byte) {
        return Err(UserIdError::InvalidCharacters);
    }
    if localpart.is_empty() {
        return Err(UserIdError::EmptyLocalpart);
    }
    if localpart.starts_with('_') {
        return Err(UserIdError::LeadingUnderscore);
    }
    Ok(())
}

/// Synapse's last rule: all-digit localparts are for guests (`^\d+$`).
fn check_not_numeric(localpart: &str) -> Result<(), UserIdError> {
    if !localpart.is_empty() && localpart.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UserIdError::AllNumeric);
    }
    Ok(())
}

fn is_strict_localpart_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+')
}

/// The spec's historical grammar: printable ASCII (0x21–0x7E) except `:`.
fn is_historical_localpart_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b':'
}

/// A server name: a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional
/// port. Pure syntax, as in the spec's appendix; nothing is resolved.
pub fn validate_server_name(server_name: &str) -> Result<(), UserIdError> {
    let invalid = || UserIdError::InvalidServerName(server_name.to_owned());
    let (host, port) = if let Some(rest) = server_name.strip_prefix('[') {
        let (ipv6, after) = rest.split_once(']').ok_or_else(invalid)?;
        if ipv6.is_empty()
            || !ipv6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(invalid());
        }
        match after {
            "" => (ipv6, None),
            _ => (ipv6, Some(after.strip_prefix(':').ok_or_else(invalid)?)),
        }
    } else {
        match server_name.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (server_name, None),
        }
    };
    let host_ok = server_name.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_ids_into_localpart_and_server() {
        let id = UserId::parse("@alice:example.com").unwrap();
        assert_eq!(id.localpart(), "alice");
        assert_eq!(id.server_name(), "example.com");
        assert_eq!(id.to_string(), "@alice:example.com");

        let id = UserId::parse("@bob:[::1]:8448").unwrap();
        assert_eq!(id.localpart(), "bob");
        assert_eq!(id.server_name(), "[::1]:8448");
        assert_eq!(
            UserId::parse("@x:localhost:8008").unwrap().server_name(),
            "localhost:8008"
        );
    }

    #[test]
    fn a_bare_localpart_becomes_a_user_of_this_server() {
        let id = UserId::parse_local("alice", "example.com").unwrap();
        assert_eq!(id.as_str(), "@alice:example.com");
        let id = UserId::parse_local("@alice:example.com", "example.com").unwrap();
        assert_eq!(id.as_str(), "@alice:example.com");
    }

    #[test]
    fn a_user_of_another_server_is_refused_where_it_matters() {
        let err = UserId::parse_local("@alice:other.org", "example.com").unwrap_err();
        assert_eq!(
            err.to_string(),
            "@alice:other.org is not a user of this server (example.com)"
        );
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        assert_eq!(UserId::parse(""), Err(UserIdError::Empty));
        assert_eq!(
            UserId::parse("alice:example.com"),
            Err(UserIdError::MissingServerName)
        );
        assert_eq!(UserId::parse("@alice"), Err(UserIdError::MissingServerName));
        assert_eq!(UserId::parse("@:example.com"), Err(UserIdError::Empty));
        assert!(matches!(
            UserId::parse("@alice:"),
            Err(UserIdError::InvalidServerName(_))
        ));
        assert!(matches!(
            UserId::parse("@alice:exa mple.com"),
            Err(UserIdError::InvalidServerName(_))
        ));
        assert!(matches!(
            UserId::parse("@alice:example.com:port"),
            Err(UserIdError::InvalidServerName(_))
        ));
        assert!(matches!(
            UserId::parse("@alice:[::1"),
            Err(UserIdError::InvalidServerName(_))
        ));
        for bad in [
            "@al ice:example.com",
            "@al\u{0}ice:x.org",
            "@é:x.org",
            "@a\u{202e}b:x.org",
        ] {
            assert_eq!(
                UserId::parse(bad),
                Err(UserIdError::InvalidHistoricalCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn historical_localparts_are_accepted_for_existing_users_but_not_for_new_ones() {
        let old = UserId::parse_local("@Alice!:example.com", "example.com").unwrap();
        assert_eq!(old.localpart(), "Alice!");
        assert_eq!(
            UserId::parse_new_local("Alice", "example.com"),
            Err(UserIdError::InvalidCharacters)
        );
        assert_eq!(
            UserId::parse_new_local("_bridge", "example.com"),
            Err(UserIdError::LeadingUnderscore)
        );
        assert_eq!(
            UserId::parse_new_local("12345", "example.com"),
            Err(UserIdError::AllNumeric)
        );
        assert!(UserId::parse_new_local("a.b_c=d-e/f+g1", "example.com").is_ok());
    }

    #[test]
    fn the_whole_id_is_limited_to_255_bytes() {
        let server = "example.com";
        let fits = "a".repeat(MAX_USER_ID_LENGTH - server.len() - 2);
        assert_eq!(
            UserId::parse_local(&fits, server).unwrap().as_str().len(),
            255
        );
        let too_long = format!("{fits}a");
        assert_eq!(
            UserId::parse_local(&too_long, server),
            Err(UserIdError::TooLong)
        );
        assert_eq!(
            UserIdError::TooLong.to_string(),
            "User ID may not be longer than 255 characters"
        );
    }

    #[test]
    fn new_localparts_are_checked_in_synapses_order() {
        let new = |input: &str| UserId::parse_new_local(input, "example.com");
        // Characters first, whatever else is wrong (Synapse's `check_username`).
        for bad in [
            "al\u{0}ice",
            "al\tice",
            "\u{7f}",
            "a\u{202e}b",
            "\u{200f}alice",
            "é",
            "Alice",
            "_É",
        ] {
            assert_eq!(new(bad), Err(UserIdError::InvalidCharacters), "{bad:?}");
        }
        assert_eq!(new(&"é".repeat(300)), Err(UserIdError::InvalidCharacters));
        assert_eq!(new(""), Err(UserIdError::EmptyLocalpart));
        assert_eq!(
            UserIdError::EmptyLocalpart.to_string(),
            "User ID cannot be empty"
        );
        assert_eq!(
            new(&format!("_{}", "a".repeat(300))),
            Err(UserIdError::LeadingUnderscore)
        );
        // Length before the guest rule.
        assert_eq!(new(&"1".repeat(300)), Err(UserIdError::TooLong));
        assert_eq!(new("123"), Err(UserIdError::AllNumeric));
        assert!(new("1_0").is_ok());
        assert!(matches!(
            new("@bob:other.org"),
            Err(UserIdError::NotLocal { .. })
        ));
        assert_eq!(
            new("@bob:example.com").unwrap().as_str(),
            "@bob:example.com"
        );
        assert_eq!(
            new("@Bob!:example.com"),
            Err(UserIdError::InvalidCharacters)
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Anything a client may send as a user ID: arbitrary text, and text shaped like an ID
        /// with control characters, NUL, bidi marks and non-ASCII mixed in.
        fn user_id_like() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "@?[a-zA-Z0-9._=/+!:\\-\u{0}\u{1}\u{7f}\u{85}\u{200e}\u{202e} é]{0,300}",
                "@[a-z0-9._=/+\\-]{0,30}:[a-z0-9.\\-\\[\\]:]{0,30}",
            ]
        }

        fn is_strict(localpart: &str) -> bool {
            localpart
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'))
        }

        proptest! {
            #![proptest_config(crate::property_testing::config(512))]

            /// Parsing never panics; what parses is a well-formed ID of at most 255 bytes that
            /// prints back as it was given.
            #[test]
            fn parsing_any_text_never_panics_and_round_trips(input in user_id_like()) {
                if let Ok(id) = UserId::parse(&input) {
                    prop_assert_eq!(id.as_str(), input.as_str());
                    prop_assert!(id.as_str().len() <= MAX_USER_ID_LENGTH);
                    prop_assert!(!id.localpart().is_empty());
                    prop_assert!(id.localpart().bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b':'));
                    prop_assert_eq!(format!("@{}:{}", id.localpart(), id.server_name()), input.clone());
                    prop_assert_eq!(UserId::parse(id.as_str()), Ok(id.clone()));
                }
                let _ = UserId::parse_local(&input, "example.com");
            }

            /// A new account's ID follows every registration rule; anything with a character
            /// outside `a-z 0-9 . _ = - / +` (a control character, NUL, a bidi mark, an
            /// uppercase or non-ASCII letter) is refused for its characters first, as Synapse does.
            #[test]
            fn new_ids_follow_every_registration_rule(input in user_id_like()) {
                match UserId::parse_new_local(&input, "example.com") {
                    Ok(id) => {
                        let localpart = id.localpart();
                        prop_assert!(is_strict(localpart));
                        prop_assert!(!localpart.is_empty() && !localpart.starts_with('_'));
                        prop_assert!(!localpart.bytes().all(|b| b.is_ascii_digit()));
                        prop_assert!(id.as_str().len() <= MAX_USER_ID_LENGTH);
                        prop_assert_eq!(id.server_name(), "example.com");
                    }
                    Err(err) => {
                        if !input.starts_with('@') && !is_strict(&input) {
                            prop_assert_eq!(err, UserIdError::InvalidCharacters);
                        }
                    }
                }
            }

            /// Every strict localpart that fits is accepted, unless reserved (leading `_`,
            /// all digits).
            #[test]
            fn strict_localparts_that_fit_are_accepted(localpart in "[a-z0-9._=/+\\-]{1,242}") {
                let result = UserId::parse_new_local(&localpart, "example.com");
                let reserved = localpart.starts_with('_') || localpart.bytes().all(|b| b.is_ascii_digit());
                prop_assert_eq!(result.is_ok(), !reserved, "{:?}", result);
            }
        }
    }
}
