//! `POST /oauth2/registration` (RFC 7591, MSC2966): a client registers itself, with no
//! credential. The body is checked by [`ClientMetadata`]'s rules; what is kept is answered
//! with 201 and the client's ID. The same metadata registered again gets the same client
//! (clients register at the start of every sign-in). An unauthenticated write: limited per
//! address (`rc_client_registration`) and capped (`oauth.max_unused_clients`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::client_metadata::{ClientMetadata, Rules};
use super::{error_answer, no_store};
use crate::accounts::Accounts;
use crate::accounts::oauth_clients::ClientRegistrationError;
use crate::http::client_address::ClientAddress;

/// How long a client is asked to wait when too many clients are unused.
const RETRY_WHEN_FULL_S: u64 = 60;

pub async fn register(
    State(accounts): State<Arc<Accounts>>,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Response {
    let invalid = |description: &str| {
        error_answer(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            description,
        )
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body must be JSON: an object of client metadata");
    };
    let rules = Rules {
        allow_insecure_uris: accounts.config.oauth.allow_insecure_client_uris,
    };
    let metadata = match ClientMetadata::from_registration(&body, rules) {
        Ok(metadata) => metadata,
        Err(refusal) => {
            return error_answer(
                StatusCode::BAD_REQUEST,
                refusal.error(),
                &refusal.description,
            );
        }
    };
    match accounts.register_oauth_client(&metadata, &address).await {
        Ok((client_id, _new)) => {
            let mut answer = metadata.to_json();
            answer["client_id"] = Value::String(client_id);
            no_store((StatusCode::CREATED, Json(answer)).into_response())
        }
        Err(ClientRegistrationError::RateLimited { retry_after_ms }) => {
            let seconds = retry_after_ms.div_ceil(1000).max(1);
            let answer = error_answer(
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_request",
                &format!(
                    "too many client registrations from this address; try again in {seconds} s"
                ),
            );
            with_retry_after(answer, seconds)
        }
        Err(ClientRegistrationError::TooManyUnused) => {
            tracing::warn!(
                "a client registration was refused: oauth.max_unused_clients clients have begun no session"
            );
            let answer = error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many clients are registered and unused; try again later",
            );
            with_retry_after(answer, RETRY_WHEN_FULL_S)
        }
        Err(ClientRegistrationError::Store(err)) => {
            tracing::warn!(error = %err, "a client registration could not be kept");
            error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the registration could not be kept; try again later",
            )
        }
    }
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
