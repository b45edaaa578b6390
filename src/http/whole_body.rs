//! Every request's body is read whole before it is routed, so that a request refused early
//! (a 401 from its token, before a handler reads the body) still leaves its connection
//! usable. hyper closes a connection whose request body was left unread, without saying so
//! in the answer; a reverse proxy that keeps connections to homekey open (Caddy, Traefik)
//! then sends its next request on the closed one and answers its client 502. Bodies are
//! small (at most [`MAX_BODY_BYTES`]); a request without one passes untouched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::MatrixError;
use super::json::MAX_BODY_BYTES;

pub async fn read_whole_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length != "0");
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // Too large (the only way a complete body fails here), or the client went away. The
        // rest of the body is unread: the connection ends, and the answer says so.
        Err(_) => {
            let mut response = MatrixError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "M_TOO_LARGE",
                "Request body too large",
            )
            .into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            response
        }
    }
}
