//! homekey's own `oauth:` section and `rc_client_registration`: how the Matrix OAuth 2.0 API
//! (beside Synapse, `crate::oauth`) treats the clients that register themselves.

use serde::Deserialize;

use super::{RateLimit, RawDuration};

/// The `oauth:` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    /// `allow_insecure_client_uris` (default false): clients may register `http` URIs and
    /// loopback hosts where `https` is asked for. For developing a client; never in
    /// production, where it lets any page on the network pose as a client's.
    pub allow_insecure_client_uris: bool,
    /// `unused_client_lifetime` (default 1d): a client that began no session is forgotten
    /// this long after it last registered.
    pub unused_client_ms: i64,
    /// `max_unused_clients` (default 10000): the most clients kept without a session; past
    /// it, registrations are refused until some are forgotten.
    pub max_unused_clients: i64,
    /// `authorization_code_lifetime` (default 10m, at most 10m): how long an authorization
    /// code can be exchanged.
    pub code_ms: i64,
    /// `access_token_lifetime` (default 5m): how long an OAuth access token lasts; the
    /// client refreshes it.
    pub access_token_ms: i64,
    /// `refresh_token_unused_lifetime` (default 90d): a session whose refresh token is not
    /// used for this long ends.
    pub refresh_token_unused_ms: i64,
    /// `device_code_lifetime` (default 10m, at most 10m): how long a device authorization
    /// request waits for a user's answer.
    pub device_code_ms: i64,
}

/// The longest an authorization code may last (RFC 6749 §4.1.2 recommends 10 minutes).
pub const LONGEST_CODE_MS: i64 = 10 * 60 * 1000;

impl Default for OAuthConfig {
    fn default() -> OAuthConfig {
        OAuthConfig {
            allow_insecure_client_uris: false,
            unused_client_ms: 86_400_000,
            max_unused_clients: 10_000,
            code_ms: LONGEST_CODE_MS,
            access_token_ms: 5 * 60 * 1000,
            refresh_token_unused_ms: 90 * 86_400_000,
            device_code_ms: LONGEST_CODE_MS,
        }
    }
}

/// `rc_client_registration`'s default: a burst of 10 registrations from one address, then
/// one every 10 seconds (a client registers once a sign-in).
pub const DEFAULT_RC_CLIENT_REGISTRATION: RateLimit = RateLimit {
    per_second: 0.1,
    burst_count: 10.0,
};

/// The `oauth:` section as written.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawOAuth {
    allow_insecure_client_uris: Option<bool>,
    unused_client_lifetime: Option<RawDuration>,
    max_unused_clients: Option<i64>,
    authorization_code_lifetime: Option<RawDuration>,
    access_token_lifetime: Option<RawDuration>,
    refresh_token_unused_lifetime: Option<RawDuration>,
    device_code_lifetime: Option<RawDuration>,
}

impl RawOAuth {
    /// The section checked; `Err`: the key and why.
    pub(super) fn validate(self) -> Result<OAuthConfig, (&'static str, String)> {
        let defaults = OAuthConfig::default();
        let unused_client_ms = positive(
            "oauth.unused_client_lifetime",
            self.unused_client_lifetime,
            defaults.unused_client_ms,
        )?;
        let code_ms = positive(
            "oauth.authorization_code_lifetime",
            self.authorization_code_lifetime,
            defaults.code_ms,
        )?;
        if code_ms > LONGEST_CODE_MS {
            return Err((
                "oauth.authorization_code_lifetime",
                "must be at most 10m".into(),
            ));
        }
        let access_token_ms = positive(
            "oauth.access_token_lifetime",
            self.access_token_lifetime,
            defaults.access_token_ms,
        )?;
        let device_code_ms = positive(
            "oauth.device_code_lifetime",
            self.device_code_lifetime,
            defaults.device_code_ms,
        )?;
        if device_code_ms > LONGEST_CODE_MS {
            return Err(("oauth.device_code_lifetime", "must be at most 10m".into()));
        }
        let refresh_token_unused_ms = positive(
            "oauth.refresh_token_unused_lifetime",
            self.refresh_token_unused_lifetime,
            defaults.refresh_token_unused_ms,
        )?;
        let max_unused_clients = self
            .max_unused_clients
            .unwrap_or(defaults.max_unused_clients);
        if max_unused_clients < 1 {
            return Err(("oauth.max_unused_clients", "must be at least 1".into()));
        }
        Ok(OAuthConfig {
            allow_insecure_client_uris: self.allow_insecure_client_uris.unwrap_or(false),
            unused_client_ms,
            max_unused_clients,
            code_ms,
            access_token_ms,
            refresh_token_unused_ms,
            device_code_ms,
        })
    }
}

/// A duration key that must be longer than 0, or its default when absent.
fn positive(
    key: &'static str,
    raw: Option<RawDuration>,
    default_ms: i64,
) -> Result<i64, (&'static str, String)> {
    let ms = match raw {
        None => default_ms,
        Some(raw) => raw.to_ms().map_err(|message| (key, message))?,
    };
    if ms <= 0 {
        return Err((key, "must be longer than 0".into()));
    }
    Ok(ms)
}
