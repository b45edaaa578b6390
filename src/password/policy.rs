//! What a new password must look like: Synapse's `password_config.policy`, with Synapse's
//! errcodes and messages (`synapse/handlers/password_policy.py`), and its 512-character limit.

use crate::config::PasswordPolicyConfig;

/// Synapse refuses longer passwords where users choose them (registration, password change,
/// the admin API's users v2). Counted in characters (Unicode scalar values), as Python's `len`.
pub const MAX_PASSWORD_LENGTH: usize = 512;

/// A refused password: the Matrix errcode and Synapse's message for it. Holds no part of the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyViolation {
    pub errcode: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct PasswordPolicy {
    config: PasswordPolicyConfig,
}

impl PasswordPolicy {
    pub fn new(config: PasswordPolicyConfig) -> PasswordPolicy {
        PasswordPolicy { config }
    }

    /// Checks a password a user chose, in Synapse's order (the first failure is reported).
    /// Only ASCII letters count as upper- or lowercase; anything not an ASCII letter or digit
    /// counts as a symbol, as in Synapse's regular expressions.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        let policy = &self.config;
        if !policy.enabled {
            return Ok(());
        }
        let refuse = |errcode, message: &str| {
            Err(PolicyViolation {
                errcode,
                message: message.to_owned(),
            })
        };
        if password.chars().count() < policy.minimum_length as usize {
            return refuse(
                "M_PASSWORD_TOO_SHORT",
                &format!(
                    "The password must be at least {} characters long",
                    policy.minimum_length
                ),
            );
        }
        if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
            return refuse(
                "M_PASSWORD_NO_DIGIT",
                "The password must include at least one digit",
            );
        }
        if policy.require_symbol && !password.chars().any(|c| !c.is_ascii_alphanumeric()) {
            return refuse(
                "M_PASSWORD_NO_SYMBOL",
                "The password must include at least one symbol",
            );
        }
        if policy.require_uppercase && !password.chars().any(|c| c.is_ascii_uppercase()) {
            return refuse(
                "M_PASSWORD_NO_UPPERCASE",
                "The password must include at least one uppercase letter",
            );
        }
        if policy.require_lowercase && !password.chars().any(|c| c.is_ascii_lowercase()) {
            return refuse(
                "M_PASSWORD_NO_LOWERCASE",
                "The password must include at least one lowercase letter",
            );
        }
        Ok(())
    }
}

impl PasswordPolicy {
    /// What [`PasswordPolicy::check`] asks of a password, in words for a page that sets one
    /// (said before the user submits): empty when the policy is off.
    pub fn requirements(&self) -> Vec<String> {
        let policy = &self.config;
        if !policy.enabled {
            return Vec::new();
        }
        let mut said = Vec::new();
        if policy.minimum_length > 0 {
            said.push(format!("at least {} characters", policy.minimum_length));
        }
        for (required, what) in [
            (policy.require_digit, "a digit"),
            (policy.require_symbol, "a symbol"),
            (policy.require_uppercase, "an uppercase letter"),
            (policy.require_lowercase, "a lowercase letter"),
        ] {
            if required {
                said.push(what.to_owned());
            }
        }
        said
    }
}

/// Whether a password is within Synapse's 512-character limit.
pub fn within_length_limit(password: &str) -> bool {
    password.chars().count() <= MAX_PASSWORD_LENGTH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> PasswordPolicy {
        PasswordPolicy::new(PasswordPolicyConfig {
            enabled: true,
            minimum_length: 8,
            require_digit: true,
            require_symbol: true,
            require_lowercase: true,
            require_uppercase: true,
        })
    }

    fn errcode(policy: &PasswordPolicy, password: &str) -> Option<&'static str> {
        policy.check(password).err().map(|v| v.errcode)
    }

    #[test]
    fn each_rule_has_synapses_errcode_and_message_in_synapses_order() {
        let p = strict();
        let err = p.check("aB1!").unwrap_err();
        assert_eq!(err.errcode, "M_PASSWORD_TOO_SHORT");
        assert_eq!(
            err.message,
            "The password must be at least 8 characters long"
        );
        assert_eq!(errcode(&p, "abcdefgh"), Some("M_PASSWORD_NO_DIGIT"));
        assert_eq!(errcode(&p, "abcdefg1"), Some("M_PASSWORD_NO_SYMBOL"));
        assert_eq!(errcode(&p, "abcdef1!"), Some("M_PASSWORD_NO_UPPERCASE"));
        assert_eq!(errcode(&p, "ABCDEF1!"), Some("M_PASSWORD_NO_LOWERCASE"));
        assert_eq!(errcode(&p, "Abcdef1!"), None);
    }

    #[test]
    fn length_counts_characters_and_non_ascii_counts_as_a_symbol_not_a_letter() {
        let p = strict();
        // Characters, not bytes: 7 are too few however many bytes they take.
        assert_eq!(errcode(&p, "Aa1éééé"), Some("M_PASSWORD_TOO_SHORT"));
        assert_eq!(errcode(&p, "Aa1ééééé"), None);
        // 'É' is not an ASCII uppercase letter.
        assert_eq!(errcode(&p, "éééé1ééÉ"), Some("M_PASSWORD_NO_UPPERCASE"));
    }

    #[test]
    fn a_disabled_policy_accepts_anything() {
        assert_eq!(errcode(&PasswordPolicy::default(), ""), None);
    }

    #[test]
    fn the_length_limit_is_512_characters() {
        assert!(within_length_limit(&"é".repeat(512)));
        assert!(!within_length_limit(&"a".repeat(513)));
    }
}
