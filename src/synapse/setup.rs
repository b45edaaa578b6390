//! What Synapse's own homeserver.yaml must say for homekey to be its authentication service,
//! as `homekey generate-config --for-synapse` prints it (`synapse/config/mas.py`). No secret
//! is printed: both read the shared secret from one file (`secret_path`).

use std::path::Path;

/// The keys Synapse refuses to start with beside `matrix_authentication_service`
/// (`synapse/config/mas.py`), each with what to do with it.
pub const REFUSED_BESIDE_DELEGATION: &[(&str, &str)] = &[
    (
        "password_config.enabled",
        "set it to false (true and only_for_reauth are refused)",
    ),
    (
        "enable_registration",
        "remove it, or set it to false (sign-up is homekey's: step 6)",
    ),
    ("user_consent", "remove the section"),
    ("oidc_providers", "remove it (no SSO in this mode)"),
    ("saml2_config", "remove it"),
    ("cas_config", "remove it"),
    ("jwt_config", "remove it"),
    ("password_providers", "remove it"),
    (
        "enable_registration_captcha",
        "remove it, or set it to false",
    ),
    (
        "login_via_existing_session",
        "remove the section, or set its enabled to false",
    ),
    ("refresh_token_lifetime", "remove it"),
    ("nonrefreshable_access_token_lifetime", "remove it"),
    ("session_lifetime", "remove it"),
    ("enable_3pid_changes", "remove it, or set it to false"),
    (
        "experimental_features.msc3861",
        "remove it (it was removed from Synapse: an error)",
    ),
];

/// The instructions, for homekey's file at `homekey_config`, listening at `homekey_url`,
/// with the shared secret in `secret_file`.
pub fn instructions(homekey_config: &Path, homekey_url: &str, secret_file: &Path) -> String {
    let file = homekey_config.display();
    let secret_file = secret_file.display();
    let refused: String = REFUSED_BESIDE_DELEGATION
        .iter()
        .map(|(key, what)| format!("  - {key}: {what}\n"))
        .collect();
    let sign_up_keys = crate::config::registration::KEYS.join(", ");
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
         2. Synapse refuses to start with any of these keys set; for each one present:\n\
         {refused}\
         \n\
         3. registration_shared_secret: the same value in both files (copy Synapse's into {file}, \
         or homekey's into Synapse's), so that register_new_matrix_user works with either.\n\
         \n\
         4. public_baseurl: set it in Synapse's file (the same URL as in {file}). Without it \
         Synapse serves no /.well-known/matrix/client (404), which is where clients find the \
         link to homekey's account page (\"Manage account\").\n\
         \n\
         5. The reverse proxy: send what Synapse switches off in this mode to homekey at \
         {homekey_url} (login, logout, refresh, register, register/available, \
         account/password, account/deactivate, delete_devices, DELETE devices/ID, the \
         registration token check, the Admin API's user and registration token routes, and \
         /_homekey/), everything else to Synapse: the tested nginx and Caddy configs are in \
         homekey's README, \"Beside Synapse\". Never route /oauth2/introspect nor \
         /_synapse/mas publicly: Synapse and homekey call each other directly.\n\
         \n\
         6. Sign-up is homekey's: move these keys, if Synapse's file has them, to {file}, and \
         remove them from Synapse's: {sign_up_keys}. Turning sign-up on or off later needs a \
         restart of Synapse too (it keeps homekey's discovery document until it restarts, and \
         clients show \"Create account\" from it).\n\
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
            "password_config.enabled: set it to false",
            "enable_registration: remove it",
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
            "public_baseurl: set it in Synapse's file",
            "/.well-known/matrix/client",
            "to homekey at http://127.0.0.1:8081/",
            "Sign-up is homekey's: move these keys",
            "registration_requires_token",
            "rc_registration",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }
}
