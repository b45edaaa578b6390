//! One log line per request: method, path (with access tokens redacted), status, latency.
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

/// The path and query, with the value of every access token parameter replaced.
///
/// A parameter is a token when its name, decoded as axum's `Query` decodes it (percent
/// escapes and `+`, by `form_urlencoded`), is one the server reads a token from: `access%5Ftoken`
/// authenticates as `access_token` does, so it is redacted as well. Most queries hold no
/// escape and no such name; they are written as they came, without decoding (and without
/// allocating). The others are decoded, and if a token name is among them the query is
/// written again from its decoded pairs, each name and value re-encoded, the tokens' values
/// replaced.
struct RedactedPath<'a>(&'a Uri);

/// The query parameter names a token is read from (`crate::http::auth`).
const TOKEN_PARAMETERS: [&str; 1] = [super::auth::ACCESS_TOKEN_PARAMETER];

/// Whether some parameter of `query` is a token, once decoded.
fn names_a_token(query: &str) -> bool {
    // A name decodes to a token name only if it is spelled so already or has an escape
    // (`+` decodes to a space, which no token name holds).
    let might = query.contains('%') || TOKEN_PARAMETERS.iter().any(|name| query.contains(name));
    might
        && form_urlencoded::parse(query.as_bytes())
            .any(|(name, _)| TOKEN_PARAMETERS.contains(&name.as_ref()))
}

impl fmt::Display for RedactedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        f.write_str("?")?;
        if !names_a_token(query) {
            return f.write_str(query);
        }
        for (i, (name, value)) in form_urlencoded::parse(query.as_bytes()).enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            write_encoded(f, &name)?;
            f.write_str("=")?;
            if TOKEN_PARAMETERS.contains(&name.as_ref()) {
                f.write_str("<redacted>")?;
            } else {
                write_encoded(f, &value)?;
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
            redacted("/_matrix/client/v3/account/whoami?a=1&access_token=syt_secret&b=2"),
            "/_matrix/client/v3/account/whoami?a=1&access_token=<redacted>&b=2"
        );
        assert_eq!(
            redacted("/x?access_token=syt_secret"),
            "/x?access_token=<redacted>"
        );
        assert_eq!(redacted("/x"), "/x");
        assert_eq!(redacted("/x?"), "/x?");
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
                redacted(&format!("/x?{name}=syt_secret&b=%40bob")),
                "/x?access_token=<redacted>&b=%40bob",
                "{name}"
            );
        }
        // Every occurrence, and one without a value.
        assert_eq!(
            redacted("/x?access_token=one&access%5Ftoken=two&access_token"),
            "/x?access_token=<redacted>&access_token=<redacted>&access_token=<redacted>"
        );
    }

    #[test]
    fn other_queries_are_written_as_they_came() {
        for uri in [
            "/x?name=%40bob%3Aexample.com&limit=10",
            "/x?access_tokens=1&my_access_token=2",
            "/x?a+b=c+d&&e",
        ] {
            assert_eq!(redacted(uri), uri);
        }
    }

    #[test]
    fn latency_is_shown_in_milliseconds_with_one_decimal() {
        assert_eq!(
            Milliseconds(Duration::from_micros(12_345)).to_string(),
            "12.3"
        );
    }
}
