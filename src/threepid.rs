//! Third-party IDs of accounts (Synapse's `user_threepids`): e-mail addresses and phone
//! numbers, with Synapse's rules. An e-mail address is kept canonical, as Synapse keeps it
//! (`canonicalise_email`): trimmed, the local part case-folded, the domain lower-cased, so
//! that `Alice@Example.COM` and `alice@example.com` are one address.

use std::fmt;

/// Synapse's `MAX_EMAIL_ADDRESS_LENGTH`.
const LONGEST_EMAIL: usize = 500;

/// A third-party ID's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Medium {
    Email,
    /// A phone number (Synapse keeps them; homekey sends no text message).
    Msisdn,
}

impl Medium {
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Email => "email",
            Medium::Msisdn => "msisdn",
        }
    }

    pub fn parse(medium: &str) -> Option<Medium> {
        match medium {
            "email" => Some(Medium::Email),
            "msisdn" => Some(Medium::Msisdn),
            _ => None,
        }
    }
}

/// A third-party ID, its address canonical.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threepid {
    pub medium: Medium,
    pub address: String,
}

/// Why a third-party ID is refused, in Synapse's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThreepidError {
    #[error("'{0}' is not a valid value for 'medium'")]
    UnknownMedium(String),
    #[error("Unable to parse email address")]
    NotAnEmailAddress,
}

impl Threepid {
    /// `medium` and `address` as a client or an admin gives them.
    pub fn parse(medium: &str, address: &str) -> Result<Threepid, ThreepidError> {
        let medium =
            Medium::parse(medium).ok_or_else(|| ThreepidError::UnknownMedium(medium.to_owned()))?;
        let address = match medium {
            Medium::Email => canonical_email(address)?,
            Medium::Msisdn => address.trim().to_owned(),
        };
        Ok(Threepid { medium, address })
    }

    /// An e-mail address.
    pub fn email(address: &str) -> Result<Threepid, ThreepidError> {
        Threepid::parse("email", address)
    }
}

impl fmt::Display for Threepid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.medium.as_str(), self.address)
    }
}

/// Synapse's `validate_email`: one `@`, the local part case-folded (Unicode lower case
/// here), the domain lower-cased, 3 to 500 bytes.
fn canonical_email(address: &str) -> Result<String, ThreepidError> {
    let address = address.trim();
    let mut parts = address.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ThreepidError::NotAnEmailAddress);
    };
    let canonical = format!("{}@{}", local.to_lowercase(), domain.to_ascii_lowercase());
    if canonical.len() < 3
        || canonical.len() > LONGEST_EMAIL
        || canonical.chars().any(char::is_control)
    {
        return Err(ThreepidError::NotAnEmailAddress);
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_address_is_kept_as_synapse_keeps_it() {
        assert_eq!(
            Threepid::email("  Alice.Smith@Example.COM ")
                .unwrap()
                .address,
            "alice.smith@example.com"
        );
        for bad in [
            "alice",
            "a@b@c",
            "@",
            "",
            &format!("{}@example.com", "a".repeat(500)),
            "a\n@b",
        ] {
            assert_eq!(
                Threepid::email(bad),
                Err(ThreepidError::NotAnEmailAddress),
                "{bad:?}"
            );
        }
        assert_eq!(
            Threepid::parse("fax", "1").unwrap_err().to_string(),
            "'fax' is not a valid value for 'medium'"
        );
        assert_eq!(
            Threepid::parse("msisdn", " 447700900000 ").unwrap().address,
            "447700900000"
        );
    }
}
