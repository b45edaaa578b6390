//! `POST /oauth2/device` (RFC 8628 §3.1, MSC4341): a device without a browser (or the new
//! device of a QR login) asks to sign in. It gets a device code to poll the token endpoint
//! with, and a user code for a signed-in user to approve at the verification page
//! (`crate::web::device`). An unauthenticated write: limited per client address, as client
//! registrations are (`rc_client_registration`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;

use super::authorization_request::Params;
use super::{error_answer, no_store};
use crate::accounts::Accounts;
use crate::accounts::oauth_device_grants::DeviceAuthorizationError;
use crate::http::client_address::ClientAddress;

/// Where devices ask.
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth2/device";

pub async fn device_authorization(
    State(accounts): State<Arc<Accounts>>,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Response {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return invalid_request("the body must be a form (application/x-www-form-urlencoded)");
    };
    let form = Params(&pairs);
    let Some(client_id) = form.client_id() else {
        return invalid_request("client_id is required");
    };
    let scope = form.get("scope").unwrap_or("");
    match accounts
        .start_device_authorization(client_id, scope, &address)
        .await
    {
        Ok(started) => {
            let base = accounts.config.public_baseurl.as_deref().unwrap_or("/");
            let page = format!(
                "{}{}",
                base.trim_end_matches('/'),
                crate::web::device::DEVICE_PAGE_PATH
            );
            let body = json!({
                "device_code": started.device_code.expose_secret(),
                "user_code": started.user_code,
                "verification_uri": page,
                "verification_uri_complete": format!("{page}?user_code={}", started.user_code),
                "expires_in": started.expires_in,
                "interval": started.interval,
            });
            no_store((StatusCode::OK, Json(body)).into_response())
        }
        Err(DeviceAuthorizationError::InvalidClient) => error_answer(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the client_id is not known to this server",
        ),
        Err(DeviceAuthorizationError::UnauthorizedClient) => error_answer(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client did not register the device_code grant",
        ),
        Err(DeviceAuthorizationError::InvalidScope(refusal)) => {
            error_answer(StatusCode::BAD_REQUEST, "invalid_scope", &refusal.0)
        }
        Err(DeviceAuthorizationError::RateLimited { retry_after_ms }) => {
            let seconds = retry_after_ms.div_ceil(1000).max(1);
            let mut answer = error_answer(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                &format!("too many requests from this address; try again in {seconds} s"),
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            answer
        }
        Err(DeviceAuthorizationError::Store(err)) => {
            tracing::warn!(error = %err, "a device authorization could not be kept");
            error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the request could not be kept; try again",
            )
        }
    }
}

fn invalid_request(description: &str) -> Response {
    error_answer(StatusCode::BAD_REQUEST, "invalid_request", description)
}
