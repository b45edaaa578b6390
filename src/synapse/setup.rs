//! What Synapse's own homeserver.yaml must say for homekey to be its authentication service,
//! as `homekey generate-config --for-synapse` prints it (`synapse/config/mas.py`). No secret
//! is printed: the operator copies them from homekey's file.

use std::path::Path;

/// The keys Synapse refuses to start with beside `matrix_authentication_service`, and the
/// removed experimental one.
pub const REFUSED_BESIDE_DELEGATION: &[&str] = &[
    "password_config.enabled (true or only_for_reauth: set it to false)",
    "enable_registration",
    "user_consent",
    "oidc_providers, saml2_config, cas_config, jwt_config (any SSO)",
    "password_providers",
    "enable_registration_captcha",
    "login_via_existing_session",
    "refresh_token_lifetime",
    "nonrefreshable_access_token_lifetime",
    "session_lifetime",
    "enable_3pid_changes: true",
    "experimental_features.msc3861 (removed: an error)",
];

/// The instructions, for homekey's file at `homekey_config`, listening at `homekey_url`.
pub fn instructions(homekey_config: &Path, homekey_url: &str) -> String {
    let file = homekey_config.display();
    let refused: String = REFUSED_BESIDE_DELEGATION
        .iter()
        .map(|key| format!("  - {key}\n"))
        .collect();
    format!(
        "In Synapse's homeserver.yaml:\n\
         \n\
         1. Add this block (the secret: the value of synapse.secret in {file}, or put it in a \
         file that both read, as secret_path):\n\
         \n\
         matrix_authentication_service:\n  \
           enabled: true\n  \
           endpoint: \"{homekey_url}\"\n  \
           secret: \"<synapse.secret of {file}>\"\n\
         \n\
         2. Remove these keys, or Synapse refuses to start:\n\
         {refused}\
         \n\
         3. registration_shared_secret: the same value in both files (copy Synapse's into {file}, \
         or homekey's into Synapse's), so that register_new_matrix_user works with either.\n\
         \n\
         4. The reverse proxy: send /_matrix/client/*/login, /_matrix/client/*/logout (and \
         /logout/all) and /_homekey/ to homekey, everything else to Synapse. Never route \
         /oauth2/introspect nor /_synapse/mas publicly: Synapse and homekey call each other \
         directly.\n\
         \n\
         So far homekey answers Synapse's questions about tokens and makes each new \
         session's user and device exist in Synapse before it hands the token out; it does \
         not yet delete devices in Synapse when sessions end (Synapse forgets a token within \
         2 minutes of homekey ending it).\n\
         \n\
         Then restart Synapse and start `homekey serve -c {file}`.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instructions_name_the_block_and_every_refused_key() {
        let text = instructions(
            Path::new("/etc/homekey/homekey.yaml"),
            "http://127.0.0.1:8081/",
        );
        assert!(text.contains(
            "matrix_authentication_service:\n  enabled: true\n  endpoint: \"http://127.0.0.1:8081/\"\n"
        ));
        for key in [
            "password_config.enabled",
            "enable_registration",
            "user_consent",
            "oidc_providers",
            "password_providers",
            "enable_registration_captcha",
            "login_via_existing_session",
            "refresh_token_lifetime",
            "nonrefreshable_access_token_lifetime",
            "session_lifetime",
            "enable_3pid_changes",
            "msc3861",
            "registration_shared_secret",
            "/oauth2/introspect",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }
}
