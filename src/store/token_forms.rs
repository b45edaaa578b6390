//! How a token is kept in `access_tokens.token` and `refresh_tokens.token`, and so how a
//! presented token is looked up.
//!
//! Legacy tokens (`syt_…`, `syr_…`, a migrated Synapse's) are kept as they are, as Synapse
//! keeps them (`crate::accounts::tokens` says why). Tokens of the OAuth 2.0 API (`hka_…` for
//! access, `hkr_…` for refresh) are kept only as a digest, `sha256:` and the unpadded
//! URL-safe base64 of their SHA-256: a copy of the database holds no usable OAuth token. The
//! prefix decides which form a presented token is looked up in; a presented token that is
//! itself a digest matches nothing, so a digest read from the database is never a token.

use std::borrow::Cow;

use base64::Engine;
use sha2::{Digest, Sha256};

/// An OAuth access token's prefix.
pub const OAUTH_ACCESS_PREFIX: &str = "hka_";
/// An OAuth refresh token's prefix.
pub const OAUTH_REFRESH_PREFIX: &str = "hkr_";
/// What a stored digest begins with.
const DIGEST_PREFIX: &str = "sha256:";

/// Whether `token` is one of the OAuth API's (access or refresh).
pub fn is_oauth_token(token: &str) -> bool {
    token.starts_with(OAUTH_ACCESS_PREFIX) || token.starts_with(OAUTH_REFRESH_PREFIX)
}

/// The digest an OAuth token (or an authorization code) is kept as.
pub fn digest(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    format!(
        "{DIGEST_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
    )
}

/// What a presented token is looked up as: its digest for an OAuth token, itself for a
/// legacy one; `None` when no kept token can match it (it is a digest).
pub fn stored_form(presented: &str) -> Option<Cow<'_, str>> {
    if presented.starts_with(DIGEST_PREFIX) {
        None
    } else if is_oauth_token(presented) {
        Some(Cow::Owned(digest(presented)))
    } else {
        Some(Cow::Borrowed(presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_tokens_are_looked_up_by_digest_legacy_ones_as_they_are_and_digests_never() {
        let token = "hka_abcdef";
        let kept = digest(token);
        assert!(kept.starts_with("sha256:") && !kept.contains(token));
        assert_eq!(stored_form(token).as_deref(), Some(kept.as_str()));
        assert_eq!(
            stored_form("hkr_x").as_deref(),
            Some(digest("hkr_x").as_str())
        );
        assert_eq!(stored_form("syt_abc").as_deref(), Some("syt_abc"));
        // Someone who read the digest from the database cannot present it.
        assert_eq!(stored_form(&kept), None);
        // SHA-256 of "abc", a known vector, in URL-safe base64.
        assert_eq!(
            digest("abc"),
            "sha256:ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}
