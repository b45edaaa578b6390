//! Synapse's `app_service_config_files`: the application services' registration files, read
//! as Synapse reads them, for `m.login.application_service` on homekey's `/login` beside
//! Synapse (Synapse serves no `/login` then).
//!
//! homekey reads only what that login needs: `id`, `as_token`, `sender_localpart`, the user
//! namespaces, `rate_limited` and `io.element.msc4190`. Synapse checks the rest of each file
//! when it starts.

use std::path::{Path, PathBuf};

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::ConfigError;

/// One application service, as its registration file says.
#[derive(Debug, Clone)]
pub struct AppService {
    pub id: String,
    /// The token the application service sends (`as_token`). Never logged.
    pub as_token: SecretString,
    /// `@<sender_localpart>:<server_name>`, the application service's own user.
    pub sender: String,
    /// `namespaces.users`.
    pub user_namespaces: Vec<UserNamespace>,
    /// `rate_limited` (default true): its logins count against `rc_login`.
    pub rate_limited: bool,
    /// `io.element.msc4190` (default false): it makes its devices itself, and may not log in.
    pub msc4190_device_management: bool,
}

/// One entry of `namespaces.users`.
#[derive(Debug, Clone)]
pub struct UserNamespace {
    pub exclusive: bool,
    /// The regex as Python's `re.match` applies it: anchored at the start only.
    pub regex: Regex,
}

impl AppService {
    /// Synapse's `is_interested_in_user`: the sender, or a user ID matching any of the user
    /// namespaces, exclusive or not.
    pub fn is_interested_in_user(&self, user_id: &str) -> bool {
        user_id == self.sender
            || self
                .user_namespaces
                .iter()
                .any(|namespace| namespace.regex.is_match(user_id))
    }

    /// Whether `token` is this application service's `as_token` (compared in constant time).
    pub fn has_token(&self, token: &str) -> bool {
        self.as_token
            .expose_secret()
            .as_bytes()
            .ct_eq(token.as_bytes())
            .into()
    }
}

/// A registration file as written (the keys homekey reads).
#[derive(Deserialize)]
struct RawRegistration {
    id: Option<String>,
    as_token: Option<String>,
    sender_localpart: Option<String>,
    #[serde(default)]
    namespaces: RawNamespaces,
    rate_limited: Option<bool>,
    #[serde(rename = "io.element.msc4190")]
    msc4190: Option<bool>,
}

#[derive(Deserialize, Default)]
struct RawNamespaces {
    #[serde(default)]
    users: Vec<RawNamespace>,
}

#[derive(Deserialize)]
struct RawNamespace {
    regex: String,
    exclusive: bool,
}

/// Reads every registration file (paths as Synapse opens them: relative to the working
/// directory). `config_file` is the homeserver.yaml that named them, for errors.
pub(super) fn load(
    paths: &[PathBuf],
    server_name: &str,
    config_file: &Path,
) -> Result<Vec<AppService>, ConfigError> {
    paths
        .iter()
        .map(|path| load_one(path, server_name, config_file))
        .collect()
}

fn load_one(path: &Path, server_name: &str, config_file: &Path) -> Result<AppService, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let key_error = |key: &str, message: String| ConfigError::Key {
        path: path.to_path_buf(),
        key: key.to_owned(),
        message,
    };
    // serde's message could quote a token: name the file only.
    let raw: RawRegistration = serde_yaml_ng::from_str(&text).map_err(|_| ConfigError::Key {
        path: config_file.to_path_buf(),
        key: "app_service_config_files".into(),
        message: format!(
            "{} is not a registration file homekey can read (id, as_token, sender_localpart, \
             namespaces.users: [{{regex, exclusive}}])",
            path.display()
        ),
    })?;
    let required = |key: &str, value: Option<String>| {
        value.ok_or_else(|| key_error(key, "required in a registration file".into()))
    };
    let id = required("id", raw.id)?;
    let as_token = SecretString::from(required("as_token", raw.as_token)?);
    let sender_localpart = required("sender_localpart", raw.sender_localpart)?;
    let user_namespaces = raw
        .namespaces
        .users
        .into_iter()
        .map(|namespace| {
            // Python's `re.match` anchors at the start, not at the end.
            Regex::new(&format!(r"\A(?:{})", namespace.regex))
                .map(|regex| UserNamespace {
                    exclusive: namespace.exclusive,
                    regex,
                })
                .map_err(|err| key_error("namespaces.users.regex", err.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(AppService {
        id,
        as_token,
        sender: format!("@{sender_localpart}:{server_name}"),
        user_namespaces,
        rate_limited: raw.rate_limited.unwrap_or(true),
        msc4190_device_management: raw.msc4190.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(yaml: &str) -> AppService {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.yaml");
        std::fs::write(&path, yaml).unwrap();
        load_one(&path, "example.com", Path::new("homeserver.yaml")).unwrap()
    }

    #[test]
    fn a_namespace_matches_from_the_start_and_not_only_to_the_end() {
        let bridge = registration(
            "id: bridge\nas_token: secret-as\nhs_token: h\nurl: null\nsender_localpart: bridgebot\n\
             namespaces:\n  users:\n    - {regex: '@bridge_.*', exclusive: true}\n    - {regex: '@shared_a', exclusive: false}\n",
        );
        assert!(bridge.is_interested_in_user("@bridge_alice:example.com"));
        // `re.match`: no anchor at the end.
        assert!(bridge.is_interested_in_user("@shared_abc:example.com"));
        assert!(!bridge.is_interested_in_user("@x@bridge_alice:example.com"));
        assert!(bridge.is_interested_in_user("@bridgebot:example.com"));
        assert!(!bridge.is_interested_in_user("@alice:example.com"));
        assert!(bridge.rate_limited);
        assert!(!bridge.msc4190_device_management);
        assert!(bridge.has_token("secret-as"));
        assert!(!bridge.has_token("secret-a"));
    }

    #[test]
    fn a_bad_file_is_refused_without_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.yaml");
        std::fs::write(&path, "as_token: [secret-as-token\n").unwrap();
        let err = load_one(&path, "example.com", Path::new("homeserver.yaml")).unwrap_err();
        assert!(!err.to_string().contains("secret-as-token"), "{err}");
        std::fs::write(&path, "id: b\nas_token: t\nsender_localpart: b\nnamespaces: {users: [{regex: '(', exclusive: true}]}\n").unwrap();
        let err = load_one(&path, "example.com", Path::new("homeserver.yaml")).unwrap_err();
        assert!(err.to_string().contains("namespaces.users.regex"), "{err}");
    }
}
