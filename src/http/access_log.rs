//! One log line per request: method, path (with `access_token` redacted), status, latency.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = redacted_path(request.uri());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    response
}

/// The path and query, with the value of any `access_token` parameter replaced.
fn redacted_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("access_token", _)) => "access_token=<redacted>".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_never_reaches_the_log() {
        let uri: axum::http::Uri =
            "/_matrix/client/v3/account/whoami?a=1&access_token=syt_secret&b=2"
                .parse()
                .unwrap();
        assert_eq!(
            redacted_path(&uri),
            "/_matrix/client/v3/account/whoami?a=1&access_token=<redacted>&b=2"
        );
    }
}
