//! One log line per request: method, path (with `access_token` redacted), status, latency.
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

/// The path and query, with the value of any `access_token` parameter replaced.
struct RedactedPath<'a>(&'a Uri);

impl fmt::Display for RedactedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        for (i, pair) in query.split('&').enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            match pair.split_once('=') {
                Some(("access_token", _)) => f.write_str("access_token=<redacted>")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
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

    #[test]
    fn the_access_token_never_reaches_the_log() {
        let uri: Uri = "/_matrix/client/v3/account/whoami?a=1&access_token=syt_secret&b=2"
            .parse()
            .unwrap();
        assert_eq!(
            RedactedPath(&uri).to_string(),
            "/_matrix/client/v3/account/whoami?a=1&access_token=<redacted>&b=2"
        );
        let first: Uri = "/x?access_token=syt_secret".parse().unwrap();
        assert_eq!(
            RedactedPath(&first).to_string(),
            "/x?access_token=<redacted>"
        );
        let plain: Uri = "/x".parse().unwrap();
        assert_eq!(RedactedPath(&plain).to_string(), "/x");
    }

    #[test]
    fn latency_is_shown_in_milliseconds_with_one_decimal() {
        assert_eq!(
            Milliseconds(Duration::from_micros(12_345)).to_string(),
            "12.3"
        );
    }
}
