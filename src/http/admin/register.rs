//! Shared-secret registration, `GET`/`POST /_synapse/admin/v1/register`, exactly as Synapse
//! runs it, so Synapse's own `register_new_matrix_user` registers users on homekey.
//!
//! `GET` hands out a nonce; `POST` registers a user if its `mac` is the HMAC-SHA1, keyed by
//! `registration_shared_secret`, of `nonce NUL username NUL password NUL admin|notadmin`
//! (and `NUL user_type` when one is given). A nonce is good for one `POST` within 60 seconds.
//! Nonces live in the database, so any instance accepts a nonce another one issued.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::users::{USER_TYPES, check_username_available};
use crate::accounts::{Actor, NewAccount, NewAccountPassword};
use crate::http::AppState;
use crate::http::error::MatrixError;
use crate::http::json::{MatrixJson, is_truthy};
use crate::password::MAX_PASSWORD_LENGTH;
use crate::shared_secret::{RegistrationFields, registration_mac_matches};

/// `GET`: a new nonce.
pub async fn new_nonce(State(state): State<AppState>) -> Result<Json<Value>, MatrixError> {
    let nonce = state.accounts.new_registration_nonce().await?;
    Ok(Json(json!({ "nonce": nonce })))
}

fn unknown(status: StatusCode, message: &str) -> MatrixError {
    MatrixError::new(status, "M_UNKNOWN", message)
}

/// A string field no longer than Synapse's 512 characters and free of NUL, or `invalid`.
fn text_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    invalid: &str,
) -> Result<&'a str, MatrixError> {
    match body.get(name) {
        None => Err(MatrixError::bad_json(format!("{name} must be specified"))),
        Some(Value::String(text))
            if text.chars().count() <= MAX_PASSWORD_LENGTH && !text.contains('\0') =>
        {
            Ok(text)
        }
        Some(_) => Err(unknown(StatusCode::BAD_REQUEST, invalid)),
    }
}

/// `POST`: checks in Synapse's order, then registers and logs the new user in.
pub async fn register(
    State(state): State<AppState>,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    let Some(secret) = accounts.config.registration_shared_secret.clone() else {
        return Err(unknown(
            StatusCode::BAD_REQUEST,
            "Shared secret registration is not enabled",
        ));
    };
    let nonce = match body.get("nonce") {
        None => return Err(MatrixError::bad_json("nonce must be specified")),
        Some(Value::String(nonce)) => nonce.as_str(),
        Some(_) => return Err(unknown(StatusCode::BAD_REQUEST, "unrecognised nonce")),
    };
    // Used up now, whatever happens next: a nonce never serves twice.
    let fresh = accounts.take_registration_nonce(nonce).await?;
    if !fresh {
        return Err(unknown(StatusCode::BAD_REQUEST, "unrecognised nonce"));
    }
    let username = text_field(&body, "username", "Invalid username")?;
    let password = text_field(&body, "password", "Invalid password")?;
    let admin = body.get("admin").is_some_and(is_truthy);
    let user_type = match body.get("user_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(kind)) if USER_TYPES.contains(&kind.as_str()) => Some(kind.as_str()),
        Some(_) => return Err(unknown(StatusCode::BAD_REQUEST, "Invalid user type")),
    };
    let mac = match body.get("mac") {
        None => return Err(MatrixError::bad_json("mac must be specified")),
        Some(Value::String(mac)) => mac.as_str(),
        Some(_) => return Err(unknown(StatusCode::FORBIDDEN, "HMAC incorrect")),
    };
    let fields = RegistrationFields {
        nonce,
        username,
        password,
        admin,
        user_type,
    };
    if !registration_mac_matches(&secret, fields, mac) {
        tracing::warn!("shared-secret registration refused: wrong mac");
        return Err(unknown(StatusCode::FORBIDDEN, "HMAC incorrect"));
    }

    // As Synapse: the MAC covers the name as sent; the account gets it lowercased.
    let user_id = check_username_available(&state, &username.to_lowercase()).await?;
    let displayname = match body.get("displayname") {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    };
    let session = accounts
        .register_and_log_in(
            &Actor::SharedSecret,
            NewAccount {
                user_id,
                password: NewAccountPassword::Plain(SecretString::from(password.to_owned())),
                admin,
                user_type: user_type.map(str::to_owned),
                displayname,
                avatar_url: None,
                threepids: Vec::new(),
            },
        )
        .await?;
    Ok(Json(json!({
        "user_id": session.user_id,
        "home_server": accounts.config.server_name,
        "access_token": session.access_token.expose_secret(),
        "device_id": session.device_id,
    })))
}
