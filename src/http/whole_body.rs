//! Every request's body is read whole before it is routed, so that a request refused early
//! (a 401 from its token, before a handler reads the body) still leaves its connection
//! usable. hyper closes a connection whose request body was left unread, without saying so
//! in the answer; a reverse proxy that keeps connections to homekey open (Caddy, Traefik)
//! then sends its next request on the closed one and answers its client 502. Bodies are
//! small (at most [`MAX_BODY_BYTES`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::MatrixError;
use super::json::MAX_BODY_BYTES;

pub async fn read_whole_body(request: Request, next: Next) -> Response {
    // Only a body of a known length within the limit is read first: a bigger one, or one of
    // unknown length, is left to the handler, which refuses it (for its token, or at the
    // limit) without reading megabytes first; its connection then ends.
    let small_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|length| length > 0 && length <= MAX_BODY_BYTES);
    if !small_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // The client went away before its body was in.
        Err(_) => MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Could not read the request body",
        )
        .into_response(),
    }
}
