//! What Synapse's own homeserver.yaml must say for homekey to be its authentication service,
//! as `homekey generate-config --for-synapse` prints it (`synapse/config/mas.py`). No secret
//! is printed: both read the shared secret from one file (`secret_path`).

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

/// The instructions, for homekey's file at `homekey_config`, listening at `homekey_url`,
/// with the shared secret in `secret_file`.
pub fn instructions(homekey_config: &Path, homekey_url: &str, secret_file: &Path) -> String {
    let file = homekey_config.display();
    let secret_file = secret_file.display();
    let refused: String = REFUSED_BESIDE_DELEGATION
        .iter()
        .map(|key| format!("  - {key}\n"))
        .collect();
    format!(
        "In Synapse's homeserver.yaml:\n\
         \n\
         1. Add this block. The shared secret is in {secret_file}, which both read: let \
         Synapse's user read it too (e.g. chgrp synapse; chmod 640), or copy it to a file of \
         Synapse's and point secret_path there:\n\
         \n\
         matrix_authentication_service:\n  \
           enabled: true\n  \
           endpoint: \"{homekey_url}\"\n  \
           secret_path: \"{secret_file}\"\n\
         \n\
         2. Remove these keys, or Synapse refuses to start:\n\
         {refused}\
         \n\
         3. registration_shared_secret: the same value in both files (copy Synapse's into {file}, \
         or homekey's into Synapse's), so that register_new_matrix_user works with either.\n\
         \n\
         4. The reverse proxy: send what Synapse switches off in this mode to homekey (login, \
         logout, refresh, register/available, account/password, account/deactivate, \
         delete_devices, DELETE devices/ID, the Admin API's user routes, and /_homekey/), \
         everything else to Synapse: the tested nginx and Caddy configs are in homekey's \
         README, \"Beside Synapse\". Never route /oauth2/introspect nor /_synapse/mas \
         publicly: Synapse and homekey call each other directly.\n\
         \n\
         homekey keeps Synapse's users and devices in line with its own (`homekey synapse \
         status` shows what is owed to Synapse and not delivered yet).\n\
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
            Path::new("/etc/homekey/homekey.synapse-secret"),
        );
        assert!(text.contains(
            "matrix_authentication_service:\n  enabled: true\n  endpoint: \"http://127.0.0.1:8081/\"\n  secret_path: \"/etc/homekey/homekey.synapse-secret\"\n"
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
