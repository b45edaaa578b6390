//! homekey's own `admin_console:` section: the admin console in the browser
//! (`crate::web::admin`), on a listener of its own, off unless enabled.

use std::net::SocketAddr;

use serde::Deserialize;

use super::RawDuration;

/// Where the console's pages live, on its own listener.
pub const ADMIN_PATH: &str = "/_homekey/admin/";

/// The `admin_console:` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConsoleConfig {
    /// `enabled` (default false): whether `homekey serve` opens the console's listener.
    pub enabled: bool,
    /// `listen` (default 127.0.0.1:8009): the console's own address. Loopback by default,
    /// reached by an SSH tunnel; never the homeserver's origin, whose pages could otherwise
    /// read the console's.
    pub listen: SocketAddr,
    /// `public_url`: the console's URL when a proxy exposes it on a host of its own (an
    /// http(s) URL ending in `/_homekey/admin/`); the `Origin` of every POST must be its
    /// origin, and its cookie is `Secure` when it is https.
    pub public_url: Option<url::Url>,
    /// `x_forwarded` (default false): behind a proxy, the client's address (for `rc_login`
    /// and the audit) is the proxy's `X-Forwarded-For`.
    pub x_forwarded: bool,
    /// `idle_timeout` (default 30m): a session unused this long ends.
    pub idle_ms: i64,
    /// `session_lifetime` (default 12h): a session ends this long after sign-in, however
    /// busy.
    pub lifetime_ms: i64,
}

impl Default for AdminConsoleConfig {
    fn default() -> AdminConsoleConfig {
        AdminConsoleConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8009)),
            public_url: None,
            x_forwarded: false,
            idle_ms: 30 * 60 * 1000,
            lifetime_ms: 12 * 60 * 60 * 1000,
        }
    }
}

impl AdminConsoleConfig {
    /// Whether the console's cookie must be `Secure` (its URL is https).
    pub fn secure(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https")
    }
}

/// The `admin_console:` section as written.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAdminConsole {
    enabled: Option<bool>,
    listen: Option<String>,
    public_url: Option<String>,
    x_forwarded: Option<bool>,
    idle_timeout: Option<RawDuration>,
    session_lifetime: Option<RawDuration>,
}

impl RawAdminConsole {
    /// The section checked; `Err`: the key and why.
    pub(super) fn validate(self) -> Result<AdminConsoleConfig, (&'static str, String)> {
        let defaults = AdminConsoleConfig::default();
        let listen = match self.listen {
            None => defaults.listen,
            Some(text) => text.parse().map_err(|_| {
                (
                    "admin_console.listen",
                    format!("\"{text}\" is not an address and port, e.g. 127.0.0.1:8009"),
                )
            })?,
        };
        let public_url = match self.public_url {
            None => None,
            Some(text) => {
                Some(public_url(&text).map_err(|message| ("admin_console.public_url", message))?)
            }
        };
        let idle_ms = positive(
            "admin_console.idle_timeout",
            self.idle_timeout,
            defaults.idle_ms,
        )?;
        let lifetime_ms = positive(
            "admin_console.session_lifetime",
            self.session_lifetime,
            defaults.lifetime_ms,
        )?;
        Ok(AdminConsoleConfig {
            enabled: self.enabled.unwrap_or(false),
            listen,
            public_url,
            x_forwarded: self.x_forwarded.unwrap_or(false),
            idle_ms,
            lifetime_ms,
        })
    }
}

/// `public_url` checked: http(s), a host, the console's path, nothing after it.
fn public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|_| format!("\"{text}\" is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL".into());
    }
    if url.path() != ADMIN_PATH || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("must end in {ADMIN_PATH}, with nothing after it"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must hold no user name or password".into());
    }
    Ok(url)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AdminConsoleConfig, (&'static str, String)> {
        serde_yaml_ng::from_str::<RawAdminConsole>(yaml)
            .expect("the section's shape")
            .validate()
    }

    #[test]
    fn the_defaults_are_off_on_loopback_with_half_an_hour_idle_and_twelve_hours() {
        let config = parse("{}").unwrap();
        assert_eq!(config, AdminConsoleConfig::default());
        assert!(!config.enabled);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8009");
        assert!(!config.secure());
    }

    #[test]
    fn a_public_url_must_be_http_and_end_in_the_consoles_path() {
        let config =
            parse("public_url: https://admin.example.com/_homekey/admin/\nidle_timeout: 5s")
                .unwrap();
        assert!(config.secure());
        assert_eq!(config.idle_ms, 5000);
        for bad in [
            "ftp://admin.example.com/_homekey/admin/",
            "https://admin.example.com/",
            "https://admin.example.com/_homekey/admin",
            "https://admin.example.com/_homekey/admin/?x=1",
            "not a url",
        ] {
            let (key, _) = parse(&format!("public_url: \"{bad}\"")).unwrap_err();
            assert_eq!(key, "admin_console.public_url", "{bad}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            parse("listen: localhost").unwrap_err().0,
            "admin_console.listen"
        );
        assert_eq!(
            parse("idle_timeout: 0").unwrap_err().0,
            "admin_console.idle_timeout"
        );
        assert_eq!(
            parse("session_lifetime: 3q").unwrap_err().0,
            "admin_console.session_lifetime"
        );
    }
}
