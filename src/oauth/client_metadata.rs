//! The metadata a client registers itself with (RFC 7591, MSC2966), checked against the
//! rules of the Matrix OAuth 2.0 API, and kept as what homekey will honour.
//!
//! Every client is public (`token_endpoint_auth_method: none`): it holds no secret. What
//! stands in for one is where its redirects go, so those are checked hard:
//! - `client_uri` is required: the client's web page, `https`, no user name or password;
//! - a `web` client (the default) redirects only to `https` URIs on `client_uri`'s host or
//!   a subdomain of it;
//! - a `native` client redirects to a private-use scheme that is the reverse DNS of
//!   `client_uri`'s host or of a subdomain of it, with no authority (`io.element:/callback`
//!   for `https://element.io`), to `http` on the loopback (`127.0.0.1`, `[::1]`,
//!   `localhost`; any port is accepted at authorization), or to `https` as a web client;
//! - no redirect URI has a fragment;
//! - `logo_uri`, `tos_uri` and `policy_uri` (and their localized `#lang` variants) are
//!   `https` on `client_uri`'s host or a subdomain of it.
//!
//! Grant and response types homekey does not offer are dropped, not refused (Element X
//! always asks for the device grant, wherever it is offered). Each refusal names the field
//! and the rule: vague registration errors are a known complaint about the service homekey
//! replaces. `allow_insecure_uris` (for developing a client, never in production) lets
//! `http` URIs and the loopback hosts through where `https` is asked for.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use super::shown;
use url::{Host, Url};

/// The grant types homekey offers, in the order it lists them.
pub const GRANT_TYPES: [&str; 3] = [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE];
pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
/// The device authorization grant (RFC 8628).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The response types homekey offers.
pub const RESPONSE_TYPES: [&str; 1] = ["code"];
/// The fields that may have localized variants (`client_name#fr`).
const LOCALIZABLE: [&str; 4] = ["client_name", "logo_uri", "tos_uri", "policy_uri"];
/// Longer URIs and names are refused rather than stored and shown.
const LONGEST_VALUE: usize = 2_000;
/// More redirect URIs than this are refused.
const MOST_REDIRECT_URIS: usize = 20;

/// `web` (the default) or `native`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    Web,
    Native,
}

/// What homekey keeps of a client's registration, and answers it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientMetadata {
    pub application_type: ApplicationType,
    pub client_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `client_name#fr` and the like, each checked as its field is.
    #[serde(flatten)]
    pub localized: BTreeMap<String, String>,
}

/// RFC 7591's two errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    InvalidRedirectUri,
    InvalidClientMetadata,
}

/// Why a registration is refused: its kind, and a sentence naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub description: String,
}

impl Refusal {
    fn metadata(description: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::InvalidClientMetadata,
            description: description.into(),
        }
    }

    fn redirect(description: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::InvalidRedirectUri,
            description: description.into(),
        }
    }

    /// The `error` of the answer.
    pub fn error(&self) -> &'static str {
        match self.kind {
            RefusalKind::InvalidRedirectUri => "invalid_redirect_uri",
            RefusalKind::InvalidClientMetadata => "invalid_client_metadata",
        }
    }
}

/// How strict the URI rules are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// `http` and the loopback hosts where `https` is asked for (developing a client).
    pub allow_insecure_uris: bool,
}

impl ClientMetadata {
    /// The metadata a registration's JSON body asks for, checked; what homekey does not
    /// offer or know is dropped.
    pub fn from_registration(body: &Value, rules: Rules) -> Result<ClientMetadata, Refusal> {
        let Value::Object(fields) = body else {
            return Err(Refusal::metadata(
                "the registration must be a JSON object of client metadata",
            ));
        };
        let application_type = match text(fields, "application_type")? {
            None | Some("web") => ApplicationType::Web,
            Some("native") => ApplicationType::Native,
            Some(other) => {
                return Err(Refusal::metadata(format!(
                    "application_type must be \"web\" or \"native\", not \"{}\"",
                    shown(other, 64)
                )));
            }
        };
        match text(fields, "token_endpoint_auth_method")? {
            None | Some("none") => {}
            Some(other) => {
                return Err(Refusal::metadata(format!(
                    "token_endpoint_auth_method must be \"none\": clients here are public and \
                     hold no secret (asked for \"{}\")",
                    shown(other, 64)
                )));
            }
        }
        let client_uri_text = text(fields, "client_uri")?.ok_or_else(|| {
            Refusal::metadata(
                "client_uri is required: the client's web page, under whose host its other \
                 URIs must be",
            )
        })?;
        let client_uri = web_uri("client_uri", client_uri_text, rules)?;
        // `web_uri` let only a domain name through, or the loopback when insecure URIs are
        // allowed: then the loopback host stands for the client's.
        let client_host = client_uri
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();

        let grant_types = supported("grant_types", fields, &[AUTHORIZATION_CODE], &GRANT_TYPES)?;
        if grant_types.is_empty() {
            return Err(Refusal::metadata(format!(
                "grant_types has none of the grants offered here ({})",
                GRANT_TYPES.join(", ")
            )));
        }
        let by_code = grant_types.iter().any(|g| g == AUTHORIZATION_CODE);
        let response_types = if by_code {
            let types = supported("response_types", fields, &["code"], &RESPONSE_TYPES)?;
            if types.is_empty() {
                return Err(Refusal::metadata(
                    "response_types must include \"code\" for the authorization_code grant",
                ));
            }
            types
        } else {
            Vec::new()
        };

        let redirect_uris = match fields.get("redirect_uris") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(uris)) => uris
                .iter()
                .enumerate()
                .map(|(index, uri)| match uri {
                    Value::String(uri) => Ok(uri.as_str()),
                    _ => Err(Refusal::metadata(format!(
                        "redirect_uris[{index}] must be a string"
                    ))),
                })
                .collect::<Result<Vec<&str>, Refusal>>()?,
            Some(_) => {
                return Err(Refusal::metadata(
                    "redirect_uris must be an array of strings",
                ));
            }
        };
        if by_code && redirect_uris.is_empty() {
            return Err(Refusal::redirect(
                "redirect_uris is required for the authorization_code grant: where the user's \
                 browser is sent back",
            ));
        }
        if redirect_uris.len() > MOST_REDIRECT_URIS {
            return Err(Refusal::redirect(format!(
                "redirect_uris has {} URIs; at most {MOST_REDIRECT_URIS} are kept",
                redirect_uris.len()
            )));
        }
        let mut kept_redirects: Vec<String> = Vec::new();
        for (index, uri) in redirect_uris.into_iter().enumerate() {
            let field = format!("redirect_uris[{index}]");
            let uri = redirect_uri(&field, uri, application_type, &client_host, rules)?;
            if !kept_redirects.contains(&uri) {
                kept_redirects.push(uri);
            }
        }

        let page = |name: &str| -> Result<Option<String>, Refusal> {
            text(fields, name)?
                .map(|value| page_uri(name, value, &client_host, rules))
                .transpose()
        };
        let mut localized = BTreeMap::new();
        for (key, value) in fields {
            let Some((base, language)) = key.split_once('#') else {
                continue;
            };
            if !LOCALIZABLE.contains(&base) || !is_language_tag(language) {
                continue;
            }
            let Value::String(value) = value else {
                return Err(Refusal::metadata(format!("{key} must be a string")));
            };
            let value = if base == "client_name" {
                name(key, value)?
            } else {
                page_uri(key, value, &client_host, rules)?
            };
            localized.insert(key.clone(), value);
        }
        Ok(ClientMetadata {
            application_type,
            client_uri: client_uri.to_string(),
            client_name: text(fields, "client_name")?
                .map(|value| name("client_name", value))
                .transpose()?,
            redirect_uris: kept_redirects,
            grant_types,
            response_types,
            token_endpoint_auth_method: "none",
            logo_uri: page("logo_uri")?,
            tos_uri: page("tos_uri")?,
            policy_uri: page("policy_uri")?,
            localized,
        })
    }

    /// The metadata as JSON: what is kept, and what the registration is answered with.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A string field, if present; another type is refused, naming the field.
fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Refusal> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(Refusal::metadata(format!("{name} must be a string"))),
    }
}

/// The offered values of a list field (`default` when absent), in the order offered, once
/// each; values not offered are dropped.
fn supported(
    name: &str,
    fields: &Map<String, Value>,
    default: &[&str],
    offered: &[&str],
) -> Result<Vec<String>, Refusal> {
    let asked: Vec<&str> = match fields.get(name) {
        None | Some(Value::Null) => default.to_vec(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|value| value.as_str())
            .collect::<Option<Vec<&str>>>()
            .ok_or_else(|| Refusal::metadata(format!("{name} must be an array of strings")))?,
        Some(_) => {
            return Err(Refusal::metadata(format!(
                "{name} must be an array of strings"
            )));
        }
    };
    Ok(offered
        .iter()
        .filter(|value| asked.contains(value))
        .map(|value| (*value).to_owned())
        .collect())
}

/// A display name: text of a sensible length, without control characters.
fn name(field: &str, value: &str) -> Result<String, Refusal> {
    if value.len() > LONGEST_VALUE || value.chars().any(char::is_control) {
        return Err(Refusal::metadata(format!(
            "{field} must be at most {LONGEST_VALUE} bytes of text without control characters"
        )));
    }
    Ok(value.to_owned())
}

/// `https` (or `http` when insecure URIs are allowed), absolute, without a user name or a
/// password, at most [`LONGEST_VALUE`] bytes.
fn web_uri(field: &str, value: &str, rules: Rules) -> Result<Url, Refusal> {
    let uri = absolute(field, value).map_err(Refusal::metadata)?;
    let scheme_ok =
        uri.scheme() == "https" || (rules.allow_insecure_uris && uri.scheme() == "http");
    if !scheme_ok {
        return Err(Refusal::metadata(format!(
            "{field} must be an https URI, not {}",
            uri.scheme()
        )));
    }
    if !uri.username().is_empty() || uri.password().is_some() {
        return Err(Refusal::metadata(format!(
            "{field} must not hold a user name or a password"
        )));
    }
    if host_name(&uri).is_none() && !(rules.allow_insecure_uris && is_loopback(&uri)) {
        return Err(Refusal::metadata(format!(
            "{field} must name its host by a domain name (an address or localhost is only \
             for developing a client)"
        )));
    }
    Ok(uri)
}

/// A page of the client's (`logo_uri`, `tos_uri`, `policy_uri`): a web URI on `client_host`
/// or a subdomain of it.
fn page_uri(field: &str, value: &str, client_host: &str, rules: Rules) -> Result<String, Refusal> {
    let uri = web_uri(field, value, rules)?;
    if !under(&uri, client_host) {
        return Err(Refusal::metadata(format!(
            "{field} must be on client_uri's host ({client_host}) or a subdomain of it"
        )));
    }
    Ok(uri.to_string())
}

/// A redirect URI, checked for the application type; the URI as kept.
fn redirect_uri(
    field: &str,
    value: &str,
    application_type: ApplicationType,
    client_host: &str,
    rules: Rules,
) -> Result<String, Refusal> {
    let uri = absolute(field, value).map_err(Refusal::redirect)?;
    if uri.fragment().is_some() {
        return Err(Refusal::redirect(format!(
            "{field} must not have a fragment (#…)"
        )));
    }
    if !uri.username().is_empty() || uri.password().is_some() {
        return Err(Refusal::redirect(format!(
            "{field} must not hold a user name or a password"
        )));
    }
    let web = |uri: &Url| -> Result<(), Refusal> {
        let https = uri.scheme() == "https";
        let insecure = rules.allow_insecure_uris
            && (uri.scheme() == "http" || is_loopback(uri))
            && matches!(uri.scheme(), "http" | "https");
        if !(https || insecure) {
            return Err(Refusal::redirect(format!(
                "{field} must be an https URI for a web client, not {}",
                uri.scheme()
            )));
        }
        if !(under(uri, client_host) || (insecure && is_loopback(uri))) {
            return Err(Refusal::redirect(format!(
                "{field} must be on client_uri's host ({client_host}) or a subdomain of it"
            )));
        }
        Ok(())
    };
    match (application_type, uri.scheme()) {
        (ApplicationType::Web, _) => web(&uri)?,
        (ApplicationType::Native, "https") => web(&uri)?,
        (ApplicationType::Native, "http") => {
            if !is_loopback(&uri) {
                return Err(Refusal::redirect(format!(
                    "{field}: a native client's http redirect must be on the loopback \
                     (127.0.0.1, [::1] or localhost)"
                )));
            }
        }
        (ApplicationType::Native, scheme) => {
            if uri.has_host() || value[scheme.len()..].starts_with("://") {
                return Err(Refusal::redirect(format!(
                    "{field}: a private-use scheme's redirect has no authority: write \
                     {scheme}:/path, not {scheme}://…"
                )));
            }
            let domain: Vec<&str> = scheme.split('.').rev().collect();
            let domain = domain.join(".");
            if !scheme.contains('.')
                || !(domain == client_host || domain.ends_with(&format!(".{client_host}")))
            {
                return Err(Refusal::redirect(format!(
                    "{field}: a native client's private-use scheme must be the reverse DNS of \
                     client_uri's host ({client_host}, so {}) or of a subdomain of it",
                    client_host.split('.').rev().collect::<Vec<_>>().join(".")
                )));
            }
        }
    }
    Ok(uri.to_string())
}

/// An absolute URI of at most [`LONGEST_VALUE`] bytes, or why not.
fn absolute(field: &str, value: &str) -> Result<Url, String> {
    if value.len() > LONGEST_VALUE {
        return Err(format!("{field} is longer than {LONGEST_VALUE} bytes"));
    }
    Url::parse(value).map_err(|err| format!("{field} is not an absolute URI ({err})"))
}

/// The URI's host if it is a domain name other than `localhost`.
fn host_name(uri: &Url) -> Option<&str> {
    match uri.host()? {
        Host::Domain(domain) if !is_localhost(domain) => Some(domain),
        _ => None,
    }
}

/// Whether the URI's host is `client_host` or a subdomain of it.
fn under(uri: &Url, client_host: &str) -> bool {
    uri.host_str().is_some_and(|host| {
        let host = host.to_ascii_lowercase();
        host == client_host || host.ends_with(&format!(".{client_host}"))
    })
}

/// Whether the URI is `http(s)` on `127.0.0.1`, `[::1]` (any loopback address) or
/// `localhost`.
pub(super) fn is_loopback(uri: &Url) -> bool {
    match uri.host() {
        Some(Host::Domain(domain)) => is_localhost(domain),
        Some(Host::Ipv4(address)) => IpAddr::V4(address).is_loopback(),
        Some(Host::Ipv6(address)) => IpAddr::V6(address).is_loopback(),
        None => false,
    }
}

fn is_localhost(domain: &str) -> bool {
    domain.eq_ignore_ascii_case("localhost")
}

/// BCP 47's shape, loosely: letters, digits and hyphens.
fn is_language_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 35
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn register(body: Value) -> Result<ClientMetadata, Refusal> {
        ClientMetadata::from_registration(&body, Rules::default())
    }

    fn refused(body: Value) -> Refusal {
        register(body).expect_err("refused")
    }

    #[test]
    fn element_x_registers_as_it_does_and_keeps_only_what_is_offered() {
        let metadata = register(json!({
            "application_type": "native",
            "client_uri": "https://element.io",
            "redirect_uris": ["io.element:/callback"],
            "grant_types": ["authorization_code", "refresh_token",
                            "urn:ietf:params:oauth:grant-type:device_code", "implicit"],
            "response_types": ["code", "token"],
            "token_endpoint_auth_method": "none",
            "client_name": "Element X",
            "logo_uri": "https://element.io/logo.png",
            "tos_uri": "https://element.io/terms",
            "policy_uri": "https://element.io/privacy",
            "client_name#fr": "Élément X",
            "contacts": ["a@example.com"],
        }))
        .unwrap();
        assert_eq!(metadata.application_type, ApplicationType::Native);
        assert_eq!(metadata.redirect_uris, ["io.element:/callback"]);
        assert_eq!(metadata.grant_types, GRANT_TYPES);
        assert_eq!(metadata.response_types, ["code"]);
        assert_eq!(metadata.localized["client_name#fr"], "Élément X");
        let json = metadata.to_json();
        assert_eq!(json["token_endpoint_auth_method"], "none");
        assert!(json.get("contacts").is_none(), "{json}");
    }

    #[test]
    fn element_web_and_desktop_register_as_they_do() {
        let web = register(json!({
            "client_uri": "https://app.element.io/",
            "redirect_uris": ["https://app.element.io/?no_universal_links=true"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }))
        .unwrap();
        assert_eq!(web.application_type, ApplicationType::Web);
        let desktop = register(json!({
            "application_type": "native",
            "client_uri": "https://element.io",
            "redirect_uris": ["io.element.desktop:/vector/webapp/"],
        }))
        .unwrap();
        assert_eq!(desktop.grant_types, ["authorization_code"]);
    }

    #[test]
    fn a_native_client_may_redirect_to_the_loopback_or_a_claimed_https_uri() {
        for uri in [
            "http://127.0.0.1/callback",
            "http://[::1]/callback",
            "http://localhost/callback",
            "http://127.0.0.1:8080/callback",
            "https://example.com/app/callback",
        ] {
            let metadata = register(json!({
                "application_type": "native",
                "client_uri": "https://example.com",
                "redirect_uris": [uri],
            }));
            assert!(metadata.is_ok(), "{uri}: {metadata:?}");
        }
    }

    #[test]
    fn each_refusal_names_the_field_and_the_rule() {
        let native = |uri: &str| {
            json!({"application_type": "native", "client_uri": "https://example.com",
                   "redirect_uris": [uri]})
        };
        let web = |uri: &str| json!({"client_uri": "https://example.com", "redirect_uris": [uri]});
        for (body, error, needle) in [
            (json!([]), "invalid_client_metadata", "JSON object"),
            (
                json!({"redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "client_uri is required",
            ),
            (
                json!({"client_uri": "http://example.com", "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "client_uri must be an https URI",
            ),
            (
                json!({"client_uri": "https://user:pw@example.com", "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "user name or a password",
            ),
            (
                json!({"client_uri": "https://127.0.0.1", "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "domain name",
            ),
            (
                json!({"client_uri": "https://localhost", "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "domain name",
            ),
            (
                json!({"client_uri": "https://example.com", "application_type": "desktop", "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "application_type",
            ),
            (
                json!({"client_uri": "https://example.com", "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "token_endpoint_auth_method must be \"none\"",
            ),
            (
                json!({"client_uri": "https://example.com", "grant_types": ["implicit"], "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "grant_types has none",
            ),
            (
                json!({"client_uri": "https://example.com", "response_types": ["token"], "redirect_uris": ["https://example.com/cb"]}),
                "invalid_client_metadata",
                "response_types must include \"code\"",
            ),
            (
                json!({"client_uri": "https://example.com"}),
                "invalid_redirect_uri",
                "redirect_uris is required",
            ),
            (
                json!({"client_uri": "https://example.com", "redirect_uris": "https://example.com/cb"}),
                "invalid_client_metadata",
                "redirect_uris must be an array",
            ),
            (
                web("https://example.com/cb#x"),
                "invalid_redirect_uri",
                "redirect_uris[0] must not have a fragment",
            ),
            (
                web("http://example.com/cb"),
                "invalid_redirect_uri",
                "redirect_uris[0] must be an https URI for a web client",
            ),
            (
                web("https://evil.example.org/cb"),
                "invalid_redirect_uri",
                "on client_uri's host (example.com)",
            ),
            (
                web("https://notexample.com/cb"),
                "invalid_redirect_uri",
                "on client_uri's host",
            ),
            (
                web("http://127.0.0.1/cb"),
                "invalid_redirect_uri",
                "https URI for a web client",
            ),
            (
                web("/relative"),
                "invalid_redirect_uri",
                "not an absolute URI",
            ),
            (
                native("com.example://cb"),
                "invalid_redirect_uri",
                "has no authority",
            ),
            (
                native("org.evil:/cb"),
                "invalid_redirect_uri",
                "reverse DNS of client_uri's host (example.com, so com.example)",
            ),
            (native("myapp:/cb"), "invalid_redirect_uri", "reverse DNS"),
            (
                native("http://192.168.1.1/cb"),
                "invalid_redirect_uri",
                "on the loopback",
            ),
            (
                json!({"client_uri": "https://example.com", "redirect_uris": ["https://example.com/cb"], "tos_uri": "https://other.org/tos"}),
                "invalid_client_metadata",
                "tos_uri must be on client_uri's host",
            ),
            (
                json!({"client_uri": "https://example.com", "redirect_uris": ["https://example.com/cb"], "policy_uri#de": "https://other.org/p"}),
                "invalid_client_metadata",
                "policy_uri#de must be on client_uri's host",
            ),
            (
                json!({"client_uri": "https://example.com", "redirect_uris": ["https://example.com/cb"], "client_name": 5}),
                "invalid_client_metadata",
                "client_name must be a string",
            ),
            (
                json!({"client_uri": "https://example.com", "redirect_uris": ["https://example.com/cb"], "client_name": "a\u{1b}[2Jb"}),
                "invalid_client_metadata",
                "control characters",
            ),
        ] {
            let refusal = refused(body.clone());
            assert_eq!(refusal.error(), error, "{body}: {refusal:?}");
            assert!(
                refusal.description.contains(needle),
                "{body}: {}",
                refusal.description
            );
        }
    }

    #[test]
    fn subdomains_of_the_client_uri_are_its_own() {
        let metadata = register(json!({
            "client_uri": "https://example.com",
            "redirect_uris": ["https://app.example.com/cb", "https://app.example.com/cb"],
            "logo_uri": "https://cdn.example.com/logo.png",
        }))
        .unwrap();
        assert_eq!(
            metadata.redirect_uris,
            ["https://app.example.com/cb"],
            "once each"
        );
        let native = register(json!({
            "application_type": "native",
            "client_uri": "https://example.com",
            "redirect_uris": ["com.example.app:/cb"],
        }));
        assert!(native.is_ok(), "{native:?}");
    }

    #[test]
    fn insecure_uris_pass_only_when_allowed() {
        let body = json!({
            "client_uri": "http://localhost:3000",
            "redirect_uris": ["http://localhost:3000/callback"],
        });
        assert!(register(body.clone()).is_err());
        let rules = Rules {
            allow_insecure_uris: true,
        };
        let metadata = ClientMetadata::from_registration(&body, rules).unwrap();
        assert_eq!(metadata.redirect_uris, ["http://localhost:3000/callback"]);
    }

    #[test]
    fn the_same_registration_gives_the_same_metadata() {
        let body = json!({
            "client_name": "A", "client_uri": "https://example.com",
            "redirect_uris": ["https://example.com/cb"], "client_name#fr": "B", "client_name#de": "C",
        });
        let reordered = json!({
            "client_name#de": "C", "redirect_uris": ["https://example.com/cb"],
            "client_name#fr": "B", "client_uri": "https://example.com", "client_name": "A",
        });
        assert_eq!(
            serde_json::to_string(&register(body).unwrap()).unwrap(),
            serde_json::to_string(&register(reordered).unwrap()).unwrap()
        );
    }
}
