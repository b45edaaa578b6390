//! One log line per request: method, path (with `access_token` redacted), status, latency.
//!
//! Every request pays for this line, so it is formatted straight into the log's buffer (no
//! `String` of its own) and the write goes through [`crate::logging`]'s batching.

use std::fmt;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;

pub async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // A clone shares the request's bytes: no copy.
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: crate::logging::ACCESS_LOG,
        %method,
        path = %RedactedPath(&uri),
        status = response.status().as_u16(),
        latency_ms = %Milliseconds(started.elapsed()),
        "request"
    );
    response
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
