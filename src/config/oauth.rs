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
}

impl Default for OAuthConfig {
    fn default() -> OAuthConfig {
        OAuthConfig {
            allow_insecure_client_uris: false,
            unused_client_ms: 86_400_000,
            max_unused_clients: 10_000,
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
}

impl RawOAuth {
    /// The section checked; `Err`: the key and why.
    pub(super) fn validate(self) -> Result<OAuthConfig, (&'static str, String)> {
        let defaults = OAuthConfig::default();
        let unused_client_ms = match self.unused_client_lifetime {
            None => defaults.unused_client_ms,
            Some(raw) => raw
                .to_ms()
                .map_err(|message| ("oauth.unused_client_lifetime", message))?,
        };
        if unused_client_ms <= 0 {
            return Err((
                "oauth.unused_client_lifetime",
                "must be longer than 0".into(),
            ));
        }
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
        })
    }
}
