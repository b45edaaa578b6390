//! Sign-up, with Synapse's top-level keys and defaults (`synapse/config/registration.py`,
//! `ratelimiting.py`): so far the ones the registration-token validity check reads.

use serde::Deserialize;

use super::RateLimit;

/// Synapse's default `rc_registration_token_validity`: a burst of 5 checks from one address,
/// then one every 10 seconds (a token is typed once; guessing takes many).
pub const DEFAULT_RC_REGISTRATION_TOKEN_VALIDITY: RateLimit = RateLimit {
    per_second: 0.1,
    burst_count: 5.0,
};

/// The sign-up settings, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistrationConfig {
    /// `enable_registration` (default false): whether anyone may sign up. Off, the
    /// registration token's validity check is refused, as Synapse refuses it.
    pub enable_registration: bool,
    /// `rc_registration_token_validity`: validity checks per client address.
    pub rc_registration_token_validity: RateLimit,
}

impl Default for RegistrationConfig {
    fn default() -> RegistrationConfig {
        RegistrationConfig {
            enable_registration: false,
            rc_registration_token_validity: DEFAULT_RC_REGISTRATION_TOKEN_VALIDITY,
        }
    }
}

/// The keys as written (top-level keys of the file, as in Synapse).
#[derive(Deserialize, Default)]
pub struct RawRegistration {
    pub enable_registration: Option<bool>,
    pub rc_registration_token_validity: Option<RateLimit>,
}

impl RawRegistration {
    pub fn validate(self) -> RegistrationConfig {
        let defaults = RegistrationConfig::default();
        RegistrationConfig {
            enable_registration: self
                .enable_registration
                .unwrap_or(defaults.enable_registration),
            rc_registration_token_validity: self
                .rc_registration_token_validity
                .unwrap_or(defaults.rc_registration_token_validity),
        }
    }
}
