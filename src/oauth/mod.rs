//! The Matrix OAuth 2.0 API (MSC3861 and the spec's "OAuth 2.0 API"), the protocol only:
//! what clients send and are answered, and the rules of each step. Pages (sign-in, consent)
//! are `crate::web`'s; every change goes through the account service. Served beside Synapse
//! (the `synapse:` section), where homekey holds the place of the authentication service.
//!
//! Built so far:
//! - [`client_metadata`]: the rules of a client's registration (RFC 7591, MSC2966).
//! - [`registration`]: `POST /oauth2/registration`, where clients register themselves.
//! - [`revocation`]: `POST /oauth2/revoke`, where a token's session is ended.
//! - [`scope`]: the scopes of MSC2967 in both spellings.
//! - [`authorization_request`]: the rules of an authorization request, and where each
//!   refusal goes (a page, or back to the client).
//! - [`token`]: `POST /oauth2/token`, the code, refresh and device code grants.
//! - [`device_authorization`]: `POST /oauth2/device`, where a device without a browser asks
//!   to sign in (RFC 8628).
//!
//! The pages (sign-in, consent, the device grant's approval) are `crate::web::authorize`'s
//! and `crate::web::device`'s.

pub mod authorization_request;
pub mod client_metadata;
pub mod device_authorization;
pub mod registration;
pub mod revocation;
pub mod scope;
pub mod token;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Where clients register (RFC 7591).
pub const REGISTRATION_PATH: &str = "/oauth2/registration";
/// Where a token is revoked (RFC 7009).
pub const REVOCATION_PATH: &str = "/oauth2/revoke";

/// An OAuth-shaped error answer (`{"error", "error_description"}`, never a Matrix
/// `errcode`: clients tell OAuth's errors by this shape), not to be cached.
pub fn error_answer(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    no_store((status, Json(body)).into_response())
}

/// A client's value quoted in a refusal: at most `most` characters, control characters
/// escaped, so that an answer never carries a client's raw bytes back whole.
fn shown(value: &str, most: usize) -> String {
    value
        .chars()
        .take(most)
        .flat_map(char::escape_debug)
        .collect()
}

/// `Cache-Control: no-store` on an answer of the OAuth endpoints.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
