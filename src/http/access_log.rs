//! One log line per request: method, path (with every query value but the harmless ones
//! redacted), status, latency.
//!
//! Every request pays for this line, so it costs no more than it must: a tower layer whose
//! future wraps the route's own (axum's `middleware::from_fn` cloned and boxed the whole
//! route stack for every request: a tenth of a whoami's instructions under callgrind), the
//! line formatted straight into the log's buffer (no `String` of its own), and the write
//! batched by [`crate::logging`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::http::{Method, Request, Response, Uri};
use tower::{Layer, Service};

/// Wraps every route: its requests are logged when their response is ready.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// A route (or any service) whose requests are logged.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for AccessLog<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = LoggedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        LoggedResponse {
            method: request.method().clone(),
            // A clone shares the request's bytes: no copy.
            uri: request.uri().clone(),
            started: Instant::now(),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's response, logged once it is ready.
    pub struct LoggedResponse<F> {
        #[pin]
        inner: F,
        method: Method,
        uri: Uri,
        started: Instant,
    }
}

impl<F, ResponseBody, E> Future for LoggedResponse<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        // axum's routes never fail (their error is `Infallible`): every request has its line.
        if let Ok(response) = &result {
            tracing::info!(
                target: crate::logging::ACCESS_LOG,
                method = %this.method,
                path = %RedactedPath(this.uri),
                status = response.status().as_u16(),
                latency_ms = %Milliseconds(this.started.elapsed()),
                "request"
            );
        }
        Poll::Ready(result)
    }
}

/// The path and query, with the value of every parameter that is not known to be harmless
/// replaced.
///
/// A token can reach the query under any name: the server's own `access_token`, but also a
/// misspelling (`access+token`, `access_token%20`) that authenticates nothing and would
/// otherwise be logged as it came. So only the values of [`LOGGED_PARAMETERS`] (the
/// listings' and the pages' parameters) are written; every other value is `<redacted>`, and
/// so is a name that is not a short plain word. Names are compared decoded, as axum's
/// `Query` decodes them (percent escapes and `+`, by `form_urlencoded`): `access%5Ftoken` is
/// `access_token`. A query whose parameters are all harmless and plainly spelt, as most
/// are, is written as it came, without decoding (and without allocating).
struct RedactedPath<'a>(&'a Uri);

/// The query parameters whose values are logged: what the Admin API's listings and
/// homekey's pages read, none of which is a secret.
const LOGGED_PARAMETERS: [&str; 15] = [
    "action",
    "admins",
    "deactivated",
    "device_id",
    "dir",
    "from",
    "guests",
    "limit",
    "locked",
    "name",
    "not_user_type",
    "order_by",
    "user_id",
    "username",
    "valid",
];

/// The longest parameter name written as it is when its value is not logged.
const LONGEST_PLAIN_NAME: usize = 32;

/// Whether `query` can be written as it came: every name a logged parameter, spelt plainly.
fn all_logged(query: &str) -> bool {
    query.split('&').all(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        name.is_empty() || LOGGED_PARAMETERS.contains(&name)
    })
}

/// Whether a parameter name whose value is not logged is still written as it is.
fn plain_name(name: &str) -> bool {
    name.len() <= LONGEST_PLAIN_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// The paths that hold a secret in their last segment: a registration token (which admits a
/// sign-up) in the Admin API's `registration_tokens/<token>`.
const SECRET_PATH_PREFIXES: [&str; 1] = ["/_synapse/admin/v1/registration_tokens/"];

/// `path`, its secret segment (see [`SECRET_PATH_PREFIXES`]) replaced.
fn write_path(f: &mut fmt::Formatter<'_>, path: &str) -> fmt::Result {
    for prefix in SECRET_PATH_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
            && rest != "new"
        {
            f.write_str(prefix)?;
            return f.write_str("<redacted>");
        }
    }
    f.write_str(path)
}

impl fmt::Display for RedactedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_path(f, self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        f.write_str("?")?;
        if all_logged(query) {
            return f.write_str(query);
        }
        let pairs = query.split('&').filter(|pair| !pair.is_empty());
        for (i, pair) in pairs.enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            let (name, value) = match form_urlencoded::parse(pair.as_bytes()).next() {
                Some(decoded) => decoded,
                None => continue,
            };
            let logged = LOGGED_PARAMETERS.contains(&name.as_ref());
            if logged || plain_name(&name) {
                write_encoded(f, &name)?;
            } else {
                f.write_str("<redacted>")?;
            }
            if pair.contains('=') {
                f.write_str("=")?;
                if logged {
                    write_encoded(f, &value)?;
                } else {
                    f.write_str("<redacted>")?;
                }
            }
        }
        Ok(())
    }
}

/// `text` encoded for a query string, as `form_urlencoded` encodes it.
fn write_encoded(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    form_urlencoded::byte_serialize(text.as_bytes()).try_for_each(|piece| f.write_str(piece))
}

/// A duration in milliseconds with one decimal, as the log has always shown it.
struct Milliseconds(Duration);

impl fmt::Display for Milliseconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(uri: &str) -> String {
        RedactedPath(&uri.parse().unwrap()).to_string()
    }

    #[test]
    fn the_access_token_never_reaches_the_log() {
        assert_eq!(
            redacted("/_matrix/client/v3/account/whoami?limit=1&access_token=syt_secret&from=2"),
            "/_matrix/client/v3/account/whoami?limit=1&access_token=<redacted>&from=2"
        );
        assert_eq!(
            redacted("/x?access_token=syt_secret"),
            "/x?access_token=<redacted>"
        );
        assert_eq!(redacted("/x"), "/x");
        assert_eq!(redacted("/x?"), "/x?");
    }

    #[test]
    fn a_registration_token_in_the_path_is_redacted() {
        assert_eq!(
            redacted("/_synapse/admin/v1/registration_tokens/invite-secret"),
            "/_synapse/admin/v1/registration_tokens/<redacted>"
        );
        for kept in [
            "/_synapse/admin/v1/registration_tokens",
            "/_synapse/admin/v1/registration_tokens/new",
            "/_synapse/admin/v1/registration_tokens?valid=true",
        ] {
            assert_eq!(redacted(kept), kept);
        }
        assert_eq!(
            redacted("/_matrix/client/v1/register/m.login.registration_token/validity?token=abc"),
            "/_matrix/client/v1/register/m.login.registration_token/validity?token=<redacted>"
        );
    }

    #[test]
    fn every_spelling_of_the_token_name_is_redacted() {
        for name in [
            "access%5Ftoken",
            "access%5ftoken",
            "%61ccess_token",
            "%61%63%63%65%73%73%5F%74%6F%6B%65%6E",
        ] {
            assert_eq!(
                redacted(&format!("/x?{name}=syt_secret&name=%40bob")),
                "/x?access_token=<redacted>&name=%40bob",
                "{name}"
            );
        }
        // Every occurrence, and one without a value.
        assert_eq!(
            redacted("/x?access_token=one&access%5Ftoken=two&access_token"),
            "/x?access_token=<redacted>&access_token=<redacted>&access_token"
        );
    }

    #[test]
    fn a_token_under_a_misspelt_or_unknown_name_is_redacted_too() {
        for (uri, logged) in [
            ("/x?access+token=syt_secret", "/x?<redacted>=<redacted>"),
            ("/x?access_token%20=syt_secret", "/x?<redacted>=<redacted>"),
            ("/x?accesstoken=syt_secret", "/x?accesstoken=<redacted>"),
            ("/x?token=syt_secret&limit=5", "/x?token=<redacted>&limit=5"),
            ("/x?syt_YWxpY2U_secretsecretsecret_0a1b2c", "/x?<redacted>"),
            ("/x?a=%FF%FE", "/x?a=<redacted>"),
        ] {
            assert_eq!(redacted(uri), logged, "{uri}");
            assert!(!redacted(uri).contains("secret"), "{uri}");
        }
    }

    #[test]
    fn harmless_parameters_are_written_as_they_came() {
        for uri in [
            "/x?name=%40bob%3Aexample.com&limit=10",
            "/x?from=0&limit=10&guests=false&deactivated=true&order_by=name&dir=b",
            "/_homekey/account/?action=org.matrix.session_view&device_id=ABCDEF",
            "/x?limit=1&&from=2",
        ] {
            assert_eq!(redacted(uri), uri);
        }
        // Decoded when a name needs it, the logged values kept.
        assert_eq!(redacted("/x?%6Cimit=10&name=a+b"), "/x?limit=10&name=a+b");
    }

    #[test]
    fn latency_is_shown_in_milliseconds_with_one_decimal() {
        assert_eq!(
            Milliseconds(Duration::from_micros(12_345)).to_string(),
            "12.3"
        );
    }
}
