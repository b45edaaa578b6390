//! `POST /oauth2/revoke` (RFC 7009, MSC4254): whoever holds a token ends its session, the
//! standard way, for homekey's own access and refresh tokens (a leaked legacy token too).
//! Revoking either token of a session ends both and the device (beside Synapse, Synapse's
//! device at once). The answer is 200 whether or not the token named a live session
//! (already revoked, unknown: clients revoke both tokens at once, and a scanner that found a
//! leaked one must not learn more), and whatever `client_id` says: a leaked token is revoked
//! whoever reports it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{error_answer, no_store};
use crate::accounts::Accounts;

/// The form (`client_id` and anything else is accepted and not needed).
#[derive(Deserialize)]
struct RevocationForm {
    token: Option<String>,
    token_type_hint: Option<String>,
}

pub async fn revoke(State(accounts): State<Arc<Accounts>>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<RevocationForm>(&body) else {
        return error_answer(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be a form (application/x-www-form-urlencoded) with a token",
        );
    };
    let Some(token) = form.token.filter(|token| !token.is_empty()) else {
        return error_answer(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required: the access or refresh token to revoke",
        );
    };
    let hint_refresh = form.token_type_hint.as_deref() == Some("refresh_token");
    match accounts.revoke_token(&token, hint_refresh).await {
        Ok(_) => no_store((StatusCode::OK, Json(json!({}))).into_response()),
        Err(err) => {
            tracing::warn!(error = %err, "a token could not be revoked");
            error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token could not be revoked now; try again",
            )
        }
    }
}
