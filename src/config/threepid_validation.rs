//! Synapse's top-level keys for validating an e-mail address by a mailed link (the password
//! reset of legacy clients, `crate::accounts::password_reset`): `rc_3pid_validation`,
//! `request_token_inhibit_3pid_errors` and `next_link_domain_whitelist`. Whether mail can be
//! sent at all is the `email:` section's business.

use serde::Deserialize;

use super::RateLimit;

/// The three keys, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreepidValidationConfig {
    /// `rc_3pid_validation` (default 0.003/s, a burst of 5): `requestToken` calls, counted
    /// apart per (medium, client address) and per (medium, address asked about).
    pub rate_limit: RateLimit,
    /// `request_token_inhibit_3pid_errors` (default false): an address no account has is
    /// answered as a known one, so that `requestToken` does not tell who has an account.
    pub inhibit_errors: bool,
    /// `next_link_domain_whitelist` (default none: any host): the hosts a `next_link` may
    /// lead to once the link is confirmed.
    pub next_link_hosts: Option<Vec<String>>,
}

/// Synapse's default `rc_3pid_validation`.
pub const DEFAULT_RC_3PID_VALIDATION: RateLimit = RateLimit {
    per_second: 0.003,
    burst_count: 5.0,
};

impl Default for ThreepidValidationConfig {
    fn default() -> ThreepidValidationConfig {
        ThreepidValidationConfig {
            rate_limit: DEFAULT_RC_3PID_VALIDATION,
            inhibit_errors: false,
            next_link_hosts: None,
        }
    }
}

/// A rate limit of which either value may be left out (Synapse's `RatelimitSettings.parse`
/// fills in the default of the one missing).
#[derive(Deserialize, Default)]
pub(super) struct RawPartialRateLimit {
    per_second: Option<f64>,
    burst_count: Option<f64>,
}

/// The three keys as written.
#[derive(Default)]
pub(super) struct RawThreepidValidation {
    pub rc_3pid_validation: Option<RawPartialRateLimit>,
    pub request_token_inhibit_3pid_errors: Option<bool>,
    pub next_link_domain_whitelist: Option<Vec<String>>,
}

impl RawThreepidValidation {
    pub(super) fn validate(self) -> ThreepidValidationConfig {
        let rate = self.rc_3pid_validation.unwrap_or_default();
        ThreepidValidationConfig {
            rate_limit: RateLimit {
                per_second: rate
                    .per_second
                    .unwrap_or(DEFAULT_RC_3PID_VALIDATION.per_second),
                burst_count: rate
                    .burst_count
                    .unwrap_or(DEFAULT_RC_3PID_VALIDATION.burst_count),
            },
            inhibit_errors: self.request_token_inhibit_3pid_errors.unwrap_or(false),
            next_link_hosts: self.next_link_domain_whitelist,
        }
    }
}
