//! `POST /oauth2/token` (RFC 6749 §4.1.3, §6, PKCE of RFC 7636, RFC 8628 §3.4): a client
//! exchanges an authorization code for a session's tokens, refreshes them, or polls for the
//! device grant's. Clients are public
//! (`token_endpoint_auth_method: none`): they name themselves with `client_id` in the form.
//!
//! Answers are JSON, never cached; errors are OAuth-shaped (`invalid_grant`,
//! `invalid_request`, `unsupported_grant_type`, and 401 `invalid_client`), never a Matrix
//! `errcode`: a client takes only an OAuth-shaped 4xx on refresh for "signed out", and a 5xx
//! for "try again" (what a database or Synapse that cannot answer now gets).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;

use super::authorization_request::Params;
use super::client_metadata::{AUTHORIZATION_CODE, DEVICE_CODE, REFRESH_TOKEN};
use super::{error_answer, no_store};
use crate::accounts::Accounts;
use crate::accounts::oauth_sessions::{CodeGrant, GrantError, GrantedTokens};

/// Where clients get and refresh tokens.
pub const TOKEN_PATH: &str = "/oauth2/token";

pub async fn token(State(accounts): State<Arc<Accounts>>, body: Bytes) -> Response {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return invalid_request("the body must be a form (application/x-www-form-urlencoded)");
    };
    let form = Params(&pairs);
    // The first parameter missing, if one is.
    let required = |names: &[&'static str]| {
        names
            .iter()
            .find(|name| form.get(name).is_none_or(str::is_empty))
            .map(|name| invalid_request(&format!("{name} is required")))
    };
    let value = |name| form.get(name).unwrap_or_default();
    let granted = match form.get("grant_type") {
        Some(AUTHORIZATION_CODE) => {
            if let Some(answer) = required(&["code", "client_id", "code_verifier"]) {
                return answer;
            }
            let grant = CodeGrant {
                code: value("code"),
                client_id: value("client_id"),
                redirect_uri: form.get("redirect_uri"),
                code_verifier: value("code_verifier"),
            };
            accounts.exchange_authorization_code(grant).await
        }
        Some(REFRESH_TOKEN) => {
            if let Some(answer) = required(&["refresh_token", "client_id"]) {
                return answer;
            }
            accounts
                .refresh_oauth_session(value("refresh_token"), value("client_id"))
                .await
        }
        Some(DEVICE_CODE) => {
            if let Some(answer) = required(&["device_code", "client_id"]) {
                return answer;
            }
            accounts
                .poll_device_grant(value("device_code"), value("client_id"))
                .await
        }
        None | Some("") => return invalid_request("grant_type is required"),
        Some(_) => {
            return error_answer(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or the device_code grant",
            );
        }
    };
    match granted {
        Ok(tokens) => answer(&tokens),
        Err(err) => refused(err),
    }
}

/// The tokens' answer (RFC 6749 §5.1).
fn answer(tokens: &GrantedTokens) -> Response {
    let body = json!({
        "access_token": tokens.access_token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token.expose_secret(),
        "scope": tokens.scope,
    });
    no_store((StatusCode::OK, Json(body)).into_response())
}

fn refused(err: GrantError) -> Response {
    match err {
        GrantError::InvalidGrant(why) => {
            error_answer(StatusCode::BAD_REQUEST, "invalid_grant", why)
        }
        GrantError::AuthorizationPending => error_answer(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "the user has not answered yet",
        ),
        GrantError::SlowDown => error_answer(
            StatusCode::BAD_REQUEST,
            "slow_down",
            "polling too often: wait 5 more seconds between requests",
        ),
        GrantError::ExpiredToken => error_answer(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the device code expired; start again",
        ),
        GrantError::AccessDenied => error_answer(
            StatusCode::BAD_REQUEST,
            "access_denied",
            "the user did not allow the device",
        ),
        GrantError::InvalidClient => error_answer(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the client_id is not known to this server",
        ),
        GrantError::Store(err) => {
            tracing::warn!(error = %err, "a token request could not be answered");
            error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server could not answer now; try again",
            )
        }
        GrantError::Synapse(err) => {
            tracing::warn!(error = %err, "a new OAuth session was not taken by Synapse");
            error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the homeserver did not take the new session; sign in again",
            )
        }
    }
}

fn invalid_request(description: &str) -> Response {
    error_answer(StatusCode::BAD_REQUEST, "invalid_request", description)
}
