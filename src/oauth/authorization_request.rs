//! The authorization request (RFC 6749 §4.1.1, PKCE of RFC 7636, the Matrix OAuth 2.0 API),
//! checked in the order that decides where a refusal goes:
//! 1. `client_id` and `redirect_uri`: a client homekey does not know, or a redirect URI it
//!    did not register, is told on an error **page**, never by a redirect (the redirect could
//!    take the browser anywhere);
//! 2. everything else: refused back **to the client**, at its redirect URI, with `error`,
//!    `error_description` and the `state` it sent, in the response mode it asked for.
//!
//! A registered redirect URI is matched exactly, but for a native client's loopback one
//! (`http://127.0.0.1/…`), where any port is accepted (RFC 8252 §7.3). When the client asks
//! for no `response_mode`, an `https` redirect URI gets the `fragment` and any other the
//! `query` (Element X sends none with `io.element:/callback` and reads the query). PKCE is
//! required, with `S256` only (RFC 9700).
//!
//! `prompt=create` (OpenID Connect's "Initiating User Registration", which Element X and
//! Element Web send for "Create account") asks for a sign-up page instead of the sign-in.
//! It is never refused: Synapse keeps the discovery document that said sign-up is offered
//! until it restarts, so a client may ask after the operator turned sign-up off; then the
//! sign-in page says so.

use url::Url;

use super::client_metadata::{AUTHORIZATION_CODE, ApplicationType, ClientMetadata, is_loopback};
use super::scope::Scope;

/// Where the answer's parameters go in the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
}

/// What `prompt=create` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpPrompt {
    /// Not asked: the sign-in page.
    NotAsked,
    /// Asked, and offered: the sign-up page instead of the sign-in page.
    Offered,
    /// Asked, but this server offers no sign-up: the sign-in page, saying so.
    NotOffered,
}

/// A checked request: what the sign-in and consent go on with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// As the client gave it (a loopback one with its port).
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub scope: Scope,
    /// PKCE's S256 challenge, checked against the verifier at the token endpoint.
    pub code_challenge: String,
    /// `prompt=login` or `consent`: sign in again even if signed in.
    pub fresh_sign_in: bool,
    /// `login_hint=mxid:@alice:example.com` (MSC4198): the user to sign in as.
    pub login_hint: Option<String>,
    /// `prompt=create`: a new account rather than a sign-in.
    pub sign_up: SignUpPrompt,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Shown on homekey's page, in words for the user.
    Page(String),
    /// Sent back to the client at this URI (its `error` and description within).
    Redirect(String),
}

/// The query's parameters (the first of each name).
pub struct Params<'a>(pub &'a [(String, String)]);

impl Params<'_> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The `client_id` to look up before [`AuthorizationRequest::check`].
    pub fn client_id(&self) -> Option<&str> {
        self.get("client_id").filter(|id| !id.is_empty())
    }
}

impl AuthorizationRequest {
    /// Checks `params` for `client` (the client `params.client_id()` names, with its kept
    /// metadata; `None` if homekey does not know it). `sign_up_offered`: whether
    /// `prompt=create` can be honoured.
    pub fn check(
        params: &Params<'_>,
        client: Option<(&str, &ClientMetadata)>,
        sign_up_offered: bool,
    ) -> Result<AuthorizationRequest, Refused> {
        let Some((client_id, metadata)) = client else {
            return Err(Refused::Page(
                "The app that sent you here is not known to this server (its client_id is \
                 missing or unknown). Go back to the app and start again."
                    .into(),
            ));
        };
        let redirect_uri = match params.get("redirect_uri") {
            Some(uri) if registered(metadata, uri) => uri.to_owned(),
            // One registered URI may be left out (RFC 6749 §3.1.2.3).
            None if metadata.redirect_uris.len() == 1 => metadata.redirect_uris[0].clone(),
            _ => {
                return Err(Refused::Page(
                    "The app asked to send you back to an address it did not register \
                     (redirect_uri). Nothing was done; go back to the app and start again."
                        .into(),
                ));
            }
        };
        let state = params.get("state").map(str::to_owned);
        let default_mode = if redirect_uri.starts_with("https:") {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        };
        let back = |mode: ResponseMode, error: &str, description: &str| {
            let mut answer = vec![("error", error), ("error_description", description)];
            if let Some(state) = state.as_deref() {
                answer.push(("state", state));
            }
            Refused::Redirect(redirect_to(&redirect_uri, mode, &answer))
        };
        let response_mode = match params.get("response_mode") {
            None => default_mode,
            Some("query") => ResponseMode::Query,
            Some("fragment") => ResponseMode::Fragment,
            Some(_) => {
                return Err(back(
                    default_mode,
                    "invalid_request",
                    "response_mode must be query or fragment",
                ));
            }
        };
        let refuse = |error: &str, description: &str| Err(back(response_mode, error, description));
        if !metadata.grant_types.iter().any(|g| g == AUTHORIZATION_CODE) {
            return refuse(
                "unauthorized_client",
                "this client did not register the authorization_code grant",
            );
        }
        match params.get("response_type") {
            Some("code") => {}
            None => return refuse("invalid_request", "response_type is required (code)"),
            Some(_) => return refuse("unsupported_response_type", "response_type must be code"),
        }
        match params.get("code_challenge_method") {
            Some("S256") => {}
            None => {
                return refuse(
                    "invalid_request",
                    "PKCE is required: code_challenge_method=S256 and a code_challenge",
                );
            }
            Some(_) => {
                return refuse("invalid_request", "code_challenge_method must be S256");
            }
        }
        let code_challenge = match params.get("code_challenge") {
            Some(challenge) if is_pkce_value(challenge) => challenge.to_owned(),
            _ => {
                return refuse(
                    "invalid_request",
                    "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ \
                     and ~",
                );
            }
        };
        let scope = match Scope::parse(params.get("scope").unwrap_or("")) {
            Ok(scope) => scope,
            Err(refusal) => return refuse("invalid_scope", &refusal.0),
        };
        let mut fresh_sign_in = false;
        let mut sign_up = SignUpPrompt::NotAsked;
        for prompt in params.get("prompt").unwrap_or("").split(' ') {
            match prompt {
                "" => {}
                "login" | "consent" => fresh_sign_in = true,
                // The user always sees the consent page: nothing is granted silently.
                "none" => {
                    return refuse(
                        "login_required",
                        "this server always asks the user (prompt=none)",
                    );
                }
                "create" if sign_up_offered => sign_up = SignUpPrompt::Offered,
                "create" => sign_up = SignUpPrompt::NotOffered,
                _ => {
                    return refuse(
                        "invalid_request",
                        "prompt must be none, login, consent or create",
                    );
                }
            }
        }
        let login_hint = params
            .get("login_hint")
            .and_then(|hint| hint.strip_prefix("mxid:"))
            .filter(|user| user.starts_with('@'))
            .map(str::to_owned);
        Ok(AuthorizationRequest {
            client_id: client_id.to_owned(),
            redirect_uri,
            response_mode,
            state,
            scope,
            code_challenge,
            fresh_sign_in,
            login_hint,
            sign_up,
        })
    }

    /// Where the browser goes with `answer` (a code, or a refusal of consent).
    pub fn redirect_with(&self, answer: &[(&str, &str)]) -> String {
        let mut answer = answer.to_vec();
        if let Some(state) = self.state.as_deref() {
            answer.push(("state", state));
        }
        redirect_to(&self.redirect_uri, self.response_mode, &answer)
    }
}

/// Whether `given` is one of the client's registered redirect URIs: exactly, or for a native
/// client's loopback URI, but for the port.
fn registered(metadata: &ClientMetadata, given: &str) -> bool {
    if metadata.redirect_uris.iter().any(|uri| uri == given) {
        return true;
    }
    if metadata.application_type != ApplicationType::Native {
        return false;
    }
    let Ok(given) = Url::parse(given) else {
        return false;
    };
    let without_port = |uri: &Url| {
        let mut uri = uri.clone();
        let _ = uri.set_port(None);
        uri
    };
    given.scheme() == "http"
        && is_loopback(&given)
        && metadata.redirect_uris.iter().any(|uri| {
            Url::parse(uri).is_ok_and(|uri| {
                uri.scheme() == "http" && without_port(&uri) == without_port(&given)
            })
        })
}

/// `redirect_uri` with `answer` in its query or its fragment.
fn redirect_to(redirect_uri: &str, mode: ResponseMode, answer: &[(&str, &str)]) -> String {
    let Ok(mut uri) = Url::parse(redirect_uri) else {
        // Only registered (parsed) URIs get here.
        return redirect_uri.to_owned();
    };
    match mode {
        ResponseMode::Query => {
            uri.query_pairs_mut().extend_pairs(answer);
        }
        ResponseMode::Fragment => {
            let fragment = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(answer)
                .finish();
            uri.set_fragment(Some(&fragment));
        }
    }
    uri.to_string()
}

/// PKCE's alphabet and lengths (RFC 7636 §4.1, §4.2).
fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oauth::client_metadata::Rules;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(registration: serde_json::Value) -> ClientMetadata {
        ClientMetadata::from_registration(&registration, Rules::default()).unwrap()
    }

    fn element_x() -> ClientMetadata {
        client(json!({
            "application_type": "native",
            "client_uri": "https://element.io",
            "redirect_uris": ["io.element:/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
        }))
    }

    fn element_web() -> ClientMetadata {
        client(json!({
            "client_uri": "https://app.element.io",
            "redirect_uris": ["https://app.element.io/"],
        }))
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn good(redirect_uri: &str) -> Vec<(String, String)> {
        query(&[
            ("response_type", "code"),
            ("client_id", "C"),
            ("redirect_uri", redirect_uri),
            (
                "scope",
                "urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:DEV",
            ),
            ("state", "s t"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    }

    fn check(
        params: &[(String, String)],
        metadata: &ClientMetadata,
    ) -> Result<AuthorizationRequest, Refused> {
        AuthorizationRequest::check(&Params(params), Some(("C", metadata)), false)
    }

    fn with(
        mut params: Vec<(String, String)>,
        name: &str,
        value: Option<&str>,
    ) -> Vec<(String, String)> {
        params.retain(|(key, _)| key != name);
        if let Some(value) = value {
            params.push((name.to_owned(), value.to_owned()));
        }
        params
    }

    #[test]
    fn element_x_without_a_response_mode_gets_the_query_and_element_web_the_fragment() {
        let x = check(&good("io.element:/callback"), &element_x()).unwrap();
        assert_eq!(x.response_mode, ResponseMode::Query);
        assert_eq!(x.scope.device_id, "DEV");
        assert_eq!(
            x.redirect_with(&[("code", "abc")]),
            "io.element:/callback?code=abc&state=s+t"
        );
        let web = check(&good("https://app.element.io/"), &element_web()).unwrap();
        assert_eq!(web.response_mode, ResponseMode::Fragment);
        assert_eq!(
            web.redirect_with(&[("code", "abc")]),
            "https://app.element.io/#code=abc&state=s+t"
        );
        let asked = with(
            good("https://app.element.io/"),
            "response_mode",
            Some("query"),
        );
        assert_eq!(
            check(&asked, &element_web()).unwrap().response_mode,
            ResponseMode::Query
        );
    }

    #[test]
    fn a_loopback_redirect_may_use_any_port_and_nothing_else_may_differ() {
        let on_port = check(&good("http://127.0.0.1:53117/callback"), &element_x()).unwrap();
        assert_eq!(on_port.redirect_uri, "http://127.0.0.1:53117/callback");
        for uri in [
            "http://127.0.0.1:53117/other",
            "http://127.0.0.1:53117/callback?x=1",
            "http://evil.example:53117/callback",
            "io.element:/other",
        ] {
            assert!(
                matches!(check(&good(uri), &element_x()), Err(Refused::Page(_))),
                "{uri}"
            );
        }
        // A web client's URIs are matched exactly, port included.
        assert!(matches!(
            check(&good("https://app.element.io:444/"), &element_web()),
            Err(Refused::Page(_))
        ));
    }

    #[test]
    fn an_unknown_client_or_redirect_is_a_page_never_a_redirect() {
        let params = good("io.element:/callback");
        assert!(matches!(
            AuthorizationRequest::check(&Params(&params), None, false),
            Err(Refused::Page(_))
        ));
        let unregistered = good("https://evil.example/steal");
        assert!(matches!(
            check(&unregistered, &element_x()),
            Err(Refused::Page(_))
        ));
        // Left out, the only registered one is meant.
        let left_out = with(good("https://app.element.io/"), "redirect_uri", None);
        assert_eq!(
            check(&left_out, &element_web()).unwrap().redirect_uri,
            "https://app.element.io/"
        );
        let ambiguous = with(good("io.element:/callback"), "redirect_uri", None);
        assert!(matches!(
            check(&ambiguous, &element_x()),
            Err(Refused::Page(_))
        ));
    }

    #[test]
    fn other_refusals_go_back_to_the_client_with_its_state() {
        let base = good("io.element:/callback");
        for (name, value, error) in [
            ("response_type", Some("token"), "unsupported_response_type"),
            ("response_type", None, "invalid_request"),
            ("code_challenge_method", None, "invalid_request"),
            ("code_challenge_method", Some("plain"), "invalid_request"),
            ("code_challenge", Some("short"), "invalid_request"),
            ("scope", Some("openid"), "invalid_scope"),
            (
                "scope",
                Some("urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:device:D"),
                "invalid_scope",
            ),
            ("prompt", Some("none"), "login_required"),
            ("prompt", Some("select_account"), "invalid_request"),
            ("response_mode", Some("form_post"), "invalid_request"),
        ] {
            let params = with(base.clone(), name, value);
            let Err(Refused::Redirect(uri)) = check(&params, &element_x()) else {
                panic!("{name}={value:?}: not sent back");
            };
            assert!(uri.starts_with("io.element:/callback?error="), "{uri}");
            assert!(
                uri.contains(&format!("error={error}&")),
                "{name}={value:?}: {uri}"
            );
            assert!(uri.contains("error_description="), "{uri}");
            assert!(uri.ends_with("&state=s+t"), "{uri}");
        }
    }

    #[test]
    fn prompt_login_login_hint_and_create_are_kept() {
        let params = with(good("io.element:/callback"), "prompt", Some("login"));
        let params = with(params, "login_hint", Some("mxid:@alice:example.com"));
        let request = check(&params, &element_x()).unwrap();
        assert!(request.fresh_sign_in);
        assert_eq!(request.login_hint.as_deref(), Some("@alice:example.com"));
        assert_eq!(request.sign_up, SignUpPrompt::NotAsked);
        let create = with(good("io.element:/callback"), "prompt", Some("create"));
        let offered =
            AuthorizationRequest::check(&Params(&create), Some(("C", &element_x())), true).unwrap();
        assert_eq!(offered.sign_up, SignUpPrompt::Offered);
        assert!(!offered.fresh_sign_in);
        // Sign-up turned off after a client learnt it was offered: the sign-in, not an error.
        assert_eq!(
            check(&create, &element_x()).unwrap().sign_up,
            SignUpPrompt::NotOffered
        );
    }

    #[test]
    fn a_client_without_the_code_grant_is_sent_back_unauthorized() {
        let device_only = client(json!({
            "application_type": "native",
            "client_uri": "https://element.io",
            "redirect_uris": ["io.element:/callback"],
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
        }));
        let Err(Refused::Redirect(uri)) = check(&good("io.element:/callback"), &device_only) else {
            panic!("not refused");
        };
        assert!(uri.contains("error=unauthorized_client"), "{uri}");
    }
}
