//! Sign-up, with Synapse's top-level keys and defaults (`synapse/config/registration.py`,
//! `ratelimiting.py`), and homekey's `registration_session_lifetime`.

use regex::Regex;
use serde::Deserialize;

use super::{RateLimit, RawDuration};

/// Synapse's default `rc_registration_token_validity`: a burst of 5 checks from one address,
/// then one every 10 seconds (a token is typed once; guessing takes many).
pub const DEFAULT_RC_REGISTRATION_TOKEN_VALIDITY: RateLimit = RateLimit {
    per_second: 0.1,
    burst_count: 5.0,
};

/// Synapse's default `rc_registration`: accounts made from one address.
pub const DEFAULT_RC_REGISTRATION: RateLimit = RateLimit {
    per_second: 0.17,
    burst_count: 3.0,
};

/// How long an unfinished sign-up keeps its session, and the registration token's use it
/// holds. Synapse keeps every user-interactive session 48 hours, so a one-use invitation
/// that somebody started to spend is blocked for two days; an hour is plenty to finish.
pub const DEFAULT_REGISTRATION_SESSION_LIFETIME_MS: i64 = 3_600_000;

/// Synapse's refusal to start with open, unverified registration, word for word.
const OPEN_REGISTRATION_REFUSAL: &str = "You have enabled open registration without any verification. \
This is a known vector for spam and abuse. If you would like to allow public registration, please \
consider adding email, captcha, or token-based verification. Otherwise this check can be removed \
by setting the `enable_registration_without_verification` config option to `true`.";

/// Synapse's refusal to start when sign-up requires an address it cannot verify, word for word.
const EMAIL_REQUIRED_WITHOUT_EMAIL: &str = "Configuration requires email address at registration, \
but email validation is not configured";

/// One entry of `allowed_local_3pids`: addresses of `medium` that `pattern` matches from their
/// start (Python's `re.match`, as Synapse matches them).
#[derive(Debug, Clone)]
pub struct AllowedThreepid {
    pub medium: String,
    /// The pattern as written, anchored at the start.
    pub pattern: Regex,
}

impl PartialEq for AllowedThreepid {
    fn eq(&self, other: &AllowedThreepid) -> bool {
        self.medium == other.medium && self.pattern.as_str() == other.pattern.as_str()
    }
}

/// The sign-up settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationConfig {
    /// `enable_registration` (default false): whether anyone may sign up. Off, every
    /// sign-up and the registration token's validity check are refused, as Synapse refuses
    /// them.
    pub enable_registration: bool,
    /// `registration_requires_token`: every sign-up spends a registration token's use.
    pub registration_requires_token: bool,
    /// `enable_registration_without_verification`: open sign-up with no token is allowed.
    pub enable_registration_without_verification: bool,
    /// `inhibit_user_in_use_error`: a taken name is not told before the sign-up's last step
    /// (`register/available` says every name is available).
    pub inhibit_user_in_use_error: bool,
    /// `rc_registration`: accounts made per client address.
    pub rc_registration: RateLimit,
    /// `rc_registration_token_validity`: validity checks per client address.
    pub rc_registration_token_validity: RateLimit,
    /// homekey's `registration_session_lifetime`: how long an unfinished sign-up lasts.
    pub session_lifetime_ms: i64,
    /// `registrations_require_3pid: [email]`: every sign-up proves an e-mail address (the
    /// `email:` section is then required). homekey sends no text messages: `msisdn` is refused.
    pub require_email: bool,
    /// `allowed_local_3pids`: when not empty, the only addresses an account may be signed up
    /// with (Synapse's `check_3pid_allowed`).
    pub allowed_local_3pids: Vec<AllowedThreepid>,
    /// `enable_registration_token_3pid_bypass`: a registration token alone admits a sign-up
    /// that would otherwise need an address.
    pub token_bypasses_3pid: bool,
}

impl RegistrationConfig {
    /// Whether homekey's own sign-up page (`prompt=create`) is offered: whenever sign-up is
    /// on. An address required is proved on the page by a mailed code; `require_email` is
    /// only set with the `email:` section, which mails it.
    pub fn page_sign_up(&self) -> bool {
        self.enable_registration
    }

    /// Synapse's `check_3pid_allowed` (without a password auth provider): any address when
    /// `allowed_local_3pids` is empty, else one an entry of its medium matches.
    pub fn threepid_allowed(&self, medium: &str, address: &str) -> bool {
        self.allowed_local_3pids.is_empty()
            || self
                .allowed_local_3pids
                .iter()
                .any(|allowed| allowed.medium == medium && allowed.pattern.is_match(address))
    }
}

impl Default for RegistrationConfig {
    fn default() -> RegistrationConfig {
        RegistrationConfig {
            enable_registration: false,
            registration_requires_token: false,
            enable_registration_without_verification: false,
            inhibit_user_in_use_error: false,
            rc_registration: DEFAULT_RC_REGISTRATION,
            rc_registration_token_validity: DEFAULT_RC_REGISTRATION_TOKEN_VALIDITY,
            session_lifetime_ms: DEFAULT_REGISTRATION_SESSION_LIFETIME_MS,
            require_email: false,
            allowed_local_3pids: Vec::new(),
            token_bypasses_3pid: false,
        }
    }
}

/// The keys as written (top-level keys of the file, as in Synapse).
#[derive(Deserialize, Default)]
pub struct RawRegistration {
    enable_registration: Option<bool>,
    registration_requires_token: Option<bool>,
    enable_registration_without_verification: Option<bool>,
    registrations_require_3pid: Option<Vec<String>>,
    allowed_local_3pids: Option<Vec<RawAllowedThreepid>>,
    enable_registration_token_3pid_bypass: Option<bool>,
    inhibit_user_in_use_error: Option<bool>,
    rc_registration: Option<RateLimit>,
    rc_registration_token_validity: Option<RateLimit>,
    registration_session_lifetime: Option<RawDuration>,
}

/// The top-level keys of [`RawRegistration`], for the list of keys homekey reads.
pub const KEYS: &[&str] = &[
    "enable_registration",
    "registration_requires_token",
    "enable_registration_without_verification",
    "registrations_require_3pid",
    "allowed_local_3pids",
    "enable_registration_token_3pid_bypass",
    "inhibit_user_in_use_error",
    "rc_registration",
    "rc_registration_token_validity",
    "registration_session_lifetime",
];

/// An entry of `allowed_local_3pids` as written.
#[derive(Deserialize)]
struct RawAllowedThreepid {
    medium: String,
    pattern: String,
}

impl RawRegistration {
    /// The settings, or the key that is wrong and why; `email_configured`: the `email:`
    /// section is there (an e-mail address can be verified).
    pub fn validate(
        self,
        email_configured: bool,
    ) -> Result<RegistrationConfig, (&'static str, String)> {
        let defaults = RegistrationConfig::default();
        let config = RegistrationConfig {
            enable_registration: self
                .enable_registration
                .unwrap_or(defaults.enable_registration),
            registration_requires_token: self.registration_requires_token.unwrap_or(false),
            enable_registration_without_verification: self
                .enable_registration_without_verification
                .unwrap_or(false),
            inhibit_user_in_use_error: self.inhibit_user_in_use_error.unwrap_or(false),
            rc_registration: self.rc_registration.unwrap_or(defaults.rc_registration),
            rc_registration_token_validity: self
                .rc_registration_token_validity
                .unwrap_or(defaults.rc_registration_token_validity),
            session_lifetime_ms: match self.registration_session_lifetime {
                None => defaults.session_lifetime_ms,
                Some(raw) => match raw.to_ms() {
                    Ok(ms) if ms > 0 => ms,
                    Ok(_) => {
                        return Err((
                            "registration_session_lifetime",
                            "must be longer than zero".into(),
                        ));
                    }
                    Err(message) => return Err(("registration_session_lifetime", message)),
                },
            },
            require_email: false,
            allowed_local_3pids: Vec::new(),
            token_bypasses_3pid: self.enable_registration_token_3pid_bypass.unwrap_or(false),
        };
        let mut config = config;
        for medium in self.registrations_require_3pid.unwrap_or_default() {
            match medium.as_str() {
                "email" if email_configured => config.require_email = true,
                "email" => {
                    return Err((
                        "registrations_require_3pid",
                        EMAIL_REQUIRED_WITHOUT_EMAIL.to_owned(),
                    ));
                }
                "msisdn" if config.enable_registration => {
                    return Err((
                        "registrations_require_3pid",
                        "homekey sends no text messages: sign-up cannot require a phone number"
                            .to_owned(),
                    ));
                }
                "msisdn" => {}
                other => {
                    return Err((
                        "registrations_require_3pid",
                        format!("\"{other}\" is not a medium (email or msisdn)"),
                    ));
                }
            }
        }
        for raw in self.allowed_local_3pids.unwrap_or_default() {
            // Python's `re.match`: from the start of the address, not necessarily to its end.
            let pattern = Regex::new(&format!("^(?:{})", raw.pattern)).map_err(|err| {
                (
                    "allowed_local_3pids",
                    format!("\"{}\" is not a regular expression: {err}", raw.pattern),
                )
            })?;
            config.allowed_local_3pids.push(AllowedThreepid {
                medium: raw.medium,
                pattern,
            });
        }
        // Synapse's condition: a required address is verification enough.
        if config.enable_registration
            && !config.enable_registration_without_verification
            && !config.registration_requires_token
            && !config.require_email
        {
            return Err(("enable_registration", OPEN_REGISTRATION_REFUSAL.to_owned()));
        }
        Ok(config)
    }
}
