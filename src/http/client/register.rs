//! `POST /register` and `GET /register/available`: sign-up for legacy clients, the request
//! read in Synapse's order and words (`RegisterRestServlet`, `UsernameAvailabilityRestServlet`);
//! the rules and the account are the account service's (`accounts::sign_up`).
//!
//! Beside Synapse the reverse proxy sends every `POST /register` here, but an appservice's
//! (`type: m.login.application_service`, or any request with an access token) is Synapse's:
//! it goes on to Synapse unchanged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::pass_on::pass_on_to_synapse;
use crate::accounts::AccountError;
use crate::accounts::sign_up::{SignUpError, SignUpRequest};
use crate::http::AppState;
use crate::http::client_address::ClientAddress;
use crate::http::error::MatrixError;
use crate::http::interactive_auth::parse_auth;
use crate::http::json::{is_truthy, parse_body};

/// Synapse's limit on a sent user name and password, in characters.
const MAX_FIELD_LENGTH: usize = 512;
const APPSERVICE_REGISTRATION: &str = "m.login.application_service";

fn unknown(status: StatusCode, message: &str) -> MatrixError {
    MatrixError::new(status, "M_UNKNOWN", message)
}

/// Synapse's answer while sign-up is off.
fn registration_disabled() -> MatrixError {
    MatrixError::new(
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
        "Registration has been disabled",
    )
}

impl From<SignUpError> for MatrixError {
    fn from(err: SignUpError) -> MatrixError {
        match err {
            SignUpError::Disabled => registration_disabled(),
            SignUpError::UiAuth(err) => err.into(),
            SignUpError::Account(err) => err.into(),
            SignUpError::InvalidUsername(err) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_USERNAME",
                err.to_string(),
            ),
            SignUpError::MissingPassword => MatrixError::missing_param("Missing params: password"),
            SignUpError::RateLimited { retry_after_ms } => {
                MatrixError::rate_limited(retry_after_ms)
            }
            SignUpError::TokenGone | SignUpError::TermsNotAccepted => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            SignUpError::ThreepidDenied => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_THREEPID_DENIED", err.to_string())
            }
            SignUpError::ThreepidInUse => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_IN_USE",
                err.to_string(),
            ),
            // Only the sign-up page's (`POST /register` asks for the token as a stage).
            SignUpError::MissingToken => MatrixError::missing_param("Missing registration token"),
        }
    }
}

/// `POST /register`.
pub async fn register(
    State(state): State<AppState>,
    ClientAddress(client_address): ClientAddress,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, MatrixError> {
    let accounts = &state.accounts;
    let mut body: Map<String, Value> = parse_body(&bytes)?;
    accounts.check_sign_up_rate(&client_address)?;
    let kind = query
        .iter()
        .find(|(name, _)| name == "kind")
        .map_or("user", |(_, kind)| kind.as_str());
    match kind {
        "user" => {}
        "guest" => return Err(unknown(StatusCode::FORBIDDEN, "Guest access is disabled")),
        other => {
            return Err(MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_UNRECOGNIZED",
                format!("Do not understand membership kind: {other}"),
            ));
        }
    }
    let refresh_token = match body.get("refresh_token") {
        None => false,
        Some(Value::Bool(wanted)) => *wanted,
        Some(_) => {
            return Err(unknown(
                StatusCode::BAD_REQUEST,
                "`refresh_token' should be true or false.",
            ));
        }
    };
    let username = match body.get("username") {
        None => None,
        Some(Value::String(name)) if name.chars().count() <= MAX_FIELD_LENGTH => Some(name.clone()),
        Some(_) => return Err(unknown(StatusCode::BAD_REQUEST, "Invalid username")),
    };

    let has_access_token = headers.contains_key(axum::http::header::AUTHORIZATION)
        || query.iter().any(|(name, _)| name == "access_token");
    let appservice = body.get("type").and_then(Value::as_str) == Some(APPSERVICE_REGISTRATION);
    if appservice || has_access_token {
        if let Some(synapse) = accounts.synapse() {
            return pass_on_to_synapse(
                synapse,
                reqwest::Method::POST,
                &uri,
                &headers,
                &client_address,
                bytes,
            )
            .await;
        }
        return Err(if !appservice {
            unknown(
                StatusCode::BAD_REQUEST,
                "An access token should not be provided on requests to /register (except if type is m.login.application_service)",
            )
        } else if !has_access_token {
            unknown(
                StatusCode::BAD_REQUEST,
                "Appservice token must be provided when using a type of m.login.application_service",
            )
        } else {
            // Standalone homekey has no application services.
            MatrixError::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "Unrecognised access token",
            )
        });
    }
    if !accounts.sign_up_enabled() {
        return Err(registration_disabled());
    }

    // Taken out of the body, as Synapse does, and never kept but as a hash.
    let password = match body.remove("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(password)) if password.chars().count() <= MAX_FIELD_LENGTH => {
            Some(SecretString::from(password))
        }
        Some(_) => return Err(unknown(StatusCode::BAD_REQUEST, "Invalid password")),
    };
    let text = |name: &str| -> Result<Option<String>, MatrixError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(MatrixError::invalid_param(format!("Invalid {name}"))),
        }
    };
    let device_id = text("device_id")?;
    // Synapse ignores a display name sent without a password (a client bug that wiped the
    // first request's parameters).
    let initial_device_display_name = match password {
        Some(_) => text("initial_device_display_name")?,
        None => None,
    };
    let inhibit_login = body.get("inhibit_login").map(is_truthy);
    let auth = parse_auth(body.remove("auth"))?;

    let signed_up = accounts
        .sign_up(SignUpRequest {
            path: uri.path().to_owned(),
            username,
            password,
            device_id,
            initial_device_display_name,
            inhibit_login,
            refresh_token,
            auth,
            client_address,
        })
        .await?;
    let mut answer = json!({
        "user_id": signed_up.user_id,
        "home_server": accounts.config.server_name,
    });
    if let Some(login) = signed_up.login {
        answer["access_token"] = json!(login.access_token.expose_secret());
        answer["device_id"] = json!(login.device_id);
        if let Some(until) = login.valid_until_ms {
            answer["expires_in_ms"] = json!(until - crate::accounts::now_ms());
        }
        if let Some(refresh_token) = &login.refresh_token {
            answer["refresh_token"] = json!(refresh_token.expose_secret());
        }
    }
    Ok(Json(answer).into_response())
}

/// `GET /register/available?username=…`: as Synapse, refused while sign-up is off; every
/// name is available under `inhibit_user_in_use_error`; otherwise the name's rules, then
/// whether an account (or, beside Synapse, Synapse) has it.
pub async fn available(
    State(state): State<AppState>,
    ClientAddress(client_address): ClientAddress,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    if !accounts.sign_up_enabled() {
        return Err(registration_disabled());
    }
    if accounts.config.registration.inhibit_user_in_use_error {
        return Ok(Json(json!({"available": true})));
    }
    accounts
        .count_availability_check(&client_address)
        .map_err(MatrixError::rate_limited)?;
    let Some((_, username)) = query.iter().find(|(name, _)| name == "username") else {
        return Err(MatrixError::missing_param(
            "Missing string query parameter 'username'",
        ));
    };
    match accounts.check_sign_up_name(username).await {
        Ok(_) => Ok(Json(json!({"available": true}))),
        Err(SignUpError::Account(AccountError::UserExists(_))) => Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_USER_IN_USE",
            "User ID already taken.",
        )),
        Err(err) => Err(err.into()),
    }
}
