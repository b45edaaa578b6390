//! `POST /login` with `m.login.application_service` (beside Synapse): the request read as
//! Synapse's `LoginRestServlet` reads it, in its order (the `refresh_token` flag, the token,
//! then the identifier), and its errors; the login itself is
//! `Accounts::login_as_appservice`.

use axum::Json;
use axum::http::HeaderMap;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::accounts::appservice_login::{AppServiceLoginAttempt, IdentifierProblem};
use crate::http::AppState;
use crate::http::error::MatrixError;

use super::login::MAX_DEVICE_ID_LENGTH;

/// The login type.
pub const LOGIN_TYPE: &str = "m.login.application_service";

/// What the login reads from the request besides its body.
pub struct Request<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub client_address: String,
}

pub async fn login(
    state: &AppState,
    request: Request<'_>,
    body: Map<String, Value>,
) -> Result<Json<Value>, MatrixError> {
    // Synapse hands out no refresh token here (none is asked by bridges); the flag is
    // checked all the same.
    if body
        .get("refresh_token")
        .is_some_and(|flag| !flag.is_boolean())
    {
        return Err(MatrixError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "`refresh_token` should be true or false.",
        ));
    }
    let token = crate::http::auth::request_token(request.headers, request.query)?;
    let device_id = match body.get("device_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.len() > MAX_DEVICE_ID_LENGTH => {
            return Err(MatrixError::invalid_param(
                "device_id cannot be longer than 512 characters.",
            ));
        }
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(_) => return Err(MatrixError::invalid_param("Invalid device_id")),
    };
    let success = state
        .accounts
        .login_as_appservice(AppServiceLoginAttempt {
            token: SecretString::from(token),
            user: named_user(body.get("identifier")),
            device_id,
            initial_device_display_name: body
                .get("initial_device_display_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            client_address: request.client_address,
            user_agent: crate::http::auth::user_agent(request.headers),
        })
        .await?;
    Ok(super::login::login_answer(state, &success))
}

/// `identifier.user`, as Synapse's appservice login reads it: only an `m.id.user`
/// identifier (the deprecated top-level `user` is not read there).
fn named_user(identifier: Option<&Value>) -> Result<String, IdentifierProblem> {
    let Some(Value::Object(identifier)) = identifier else {
        return Err(IdentifierProblem("Invalid identifier in login submission"));
    };
    if identifier.get("type").and_then(Value::as_str) != Some("m.id.user") {
        return Err(IdentifierProblem("Unknown login identifier type"));
    }
    match identifier.get("user") {
        Some(Value::String(user)) => Ok(user.clone()),
        _ => Err(IdentifierProblem("Invalid user in identifier")),
    }
}
