//! How a password sign-in names its account: a user (a localpart or a full user ID) or a
//! third-party ID (an e-mail address). `/login`, user-interactive auth's `m.login.password`
//! and the sign-in pages all find the account here, so that an address no account has is
//! answered as a wrong password everywhere, after a hash of the same cost.

use super::Accounts;
use crate::store::StoreError;
use crate::threepid::{Threepid, ThreepidError};

/// What a sign-in names its account by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginName {
    /// A localpart or a full user ID, as given.
    User(String),
    /// A third-party ID (`m.id.thirdparty`'s `medium` and `address`), as given.
    ThirdParty { medium: String, address: String },
}

/// A third-party ID that is not one: Synapse's 400.
#[derive(Debug, thiserror::Error)]
pub enum LoginNameError {
    #[error(transparent)]
    BadAddress(ThreepidError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LoginName {
    /// What a sign-in page's user field holds: an e-mail address if it has an `@` that does
    /// not begin it (a user ID begins with one; a localpart has none), else a user.
    pub fn typed(text: &str) -> LoginName {
        let text = text.trim();
        if !text.starts_with('@') && text.contains('@') {
            LoginName::ThirdParty {
                medium: "email".into(),
                address: text.to_owned(),
            }
        } else {
            LoginName::User(text.to_owned())
        }
    }
}

impl Accounts {
    /// The user name a password check looks up for `name`: the user as given, or the
    /// account that has the third-party ID (an e-mail address found whatever its case, as
    /// Synapse finds it). One no account has, or of a medium homekey does not know, becomes
    /// `medium:address`, a name no account can have (a localpart holds no `:`): the
    /// password is then checked against nothing, at the cost of a real check, and the
    /// failure counted against that address, as Synapse counts it. An e-mail address that
    /// cannot be one is [`LoginNameError::BadAddress`] (Synapse's 400).
    pub(super) async fn login_user_name(&self, name: &LoginName) -> Result<String, LoginNameError> {
        let (medium, address) = match name {
            LoginName::User(user) => return Ok(user.clone()),
            LoginName::ThirdParty { medium, address } => (medium, address),
        };
        let threepid = match Threepid::parse(medium, address) {
            Ok(threepid) => threepid,
            // Synapse looks a medium it does not know up all the same, and finds nothing.
            Err(ThreepidError::UnknownMedium(_)) => return Ok(format!("{medium}:{address}")),
            Err(err @ ThreepidError::NotAnEmailAddress) => {
                return Err(LoginNameError::BadAddress(err));
            }
        };
        Ok(match self.store.user_by_threepid(&threepid).await? {
            Some(user_id) => user_id,
            None => format!("{}:{}", threepid.medium.as_str(), threepid.address),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_field_holds_an_address_when_an_at_sign_does_not_begin_it() {
        assert_eq!(
            LoginName::typed(" Alice@Example.com "),
            LoginName::ThirdParty {
                medium: "email".into(),
                address: "Alice@Example.com".into()
            }
        );
        for user in ["alice", "@alice:example.com", "@a@b"] {
            assert_eq!(LoginName::typed(user), LoginName::User(user.into()));
        }
    }
}
