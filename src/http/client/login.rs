//! `GET /login` (the flows) and `POST /login` with `m.login.password` (here) or
//! `m.login.application_service` (`super::appservice_login`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::accounts::{LoginName, LoginSuccess, PasswordLoginAttempt, now_ms};
use crate::http::AppState;
use crate::http::client_address::ClientAddress;
use crate::http::error::MatrixError;
use crate::http::json::MatrixJson;

/// Synapse refuses longer device IDs at login.
pub(super) const MAX_DEVICE_ID_LENGTH: usize = 512;

pub async fn flows(State(state): State<AppState>) -> Json<Value> {
    let mut flows = Vec::new();
    if state.accounts.password_login_enabled() {
        flows.push(json!({"type": "m.login.password"}));
    }
    if !state.accounts.config.appservices.is_empty() {
        flows.push(json!({"type": super::appservice_login::LOGIN_TYPE}));
    }
    Json(json!({ "flows": flows }))
}

/// The login body. `password` stays a JSON value until checked, so a wrong type gets
/// Synapse's error and never an echo of the value.
#[derive(Deserialize)]
pub struct LoginBody {
    #[serde(rename = "type")]
    login_type: Option<String>,
    identifier: Option<Identifier>,
    /// Deprecated top-level user (a localpart or a full user ID).
    user: Option<String>,
    /// Deprecated top-level third-party ID (both given: it stands for the identifier).
    medium: Option<String>,
    address: Option<String>,
    password: Option<Value>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    /// A JSON value until checked (Synapse wants a boolean).
    refresh_token: Option<Value>,
}

/// `identifier` of a login or of an `m.login.password` stage.
#[derive(Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
    /// `m.id.thirdparty`'s.
    medium: Option<String>,
    address: Option<String>,
}

/// The account a login or an `m.login.password` stage names, as Synapse reads it: a
/// third-party ID (an e-mail address) as the deprecated top-level `medium` and `address`
/// (both given) or an `m.id.thirdparty` identifier, else a user ([`named_user`]).
pub fn login_name(
    identifier: Option<Identifier>,
    user: Option<String>,
    medium: Option<String>,
    address: Option<String>,
) -> Result<LoginName, MatrixError> {
    match (medium, address, identifier) {
        (Some(medium), Some(address), _) if !medium.is_empty() && !address.is_empty() => {
            Ok(LoginName::ThirdParty { medium, address })
        }
        (_, _, Some(identifier)) if identifier.kind == "m.id.thirdparty" => {
            match (identifier.medium, identifier.address) {
                (Some(medium), Some(address)) => Ok(LoginName::ThirdParty { medium, address }),
                _ => Err(MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    "M_UNKNOWN",
                    "Invalid thirdparty identifier",
                )),
            }
        }
        (_, _, identifier) => named_user(identifier, user).map(LoginName::User),
    }
}

/// The user a login names: `identifier` (`m.id.user`), or the deprecated top-level `user`.
/// The errors are Synapse's.
fn named_user(identifier: Option<Identifier>, user: Option<String>) -> Result<String, MatrixError> {
    match (identifier, user) {
        (Some(identifier), _) if identifier.kind != "m.id.user" => Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Unknown login identifier type",
        )),
        (
            Some(Identifier {
                user: Some(user), ..
            }),
            _,
        )
        | (None, Some(user)) => Ok(user),
        (Some(_), _) => Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "User identifier is missing 'user' key",
        )),
        (None, None) => Err(MatrixError::invalid_param("Invalid login submission")),
    }
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client_address): ClientAddress,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    if body.get("type").and_then(Value::as_str) == Some(super::appservice_login::LOGIN_TYPE) {
        let request = super::appservice_login::Request {
            headers: &headers,
            query: uri.query(),
            client_address,
        };
        return super::appservice_login::login(&state, request, body).await;
    }
    let body: LoginBody = crate::http::json::from_value(Value::Object(body))?;
    let user_agent = crate::http::auth::user_agent(&headers);
    match body.login_type.as_deref() {
        Some("m.login.password") => {}
        Some(_) => {
            return Err(MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Unknown login type",
            ));
        }
        None => return Err(MatrixError::missing_param("Missing parameter: type")),
    }
    let refresh_token = match body.refresh_token {
        None => false,
        Some(Value::Bool(wanted)) => wanted,
        Some(_) => {
            return Err(MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "`refresh_token` should be true or false.",
            ));
        }
    };
    let user = login_name(body.identifier, body.user, body.medium, body.address)?;
    let password = match body.password {
        Some(Value::String(password)) => SecretString::from(password),
        _ => return Err(MatrixError::invalid_param("Bad parameter: password")),
    };
    if body
        .device_id
        .as_ref()
        .is_some_and(|d| d.is_empty() || d.len() > MAX_DEVICE_ID_LENGTH)
    {
        return Err(MatrixError::invalid_param("Invalid device_id"));
    }
    let success = state
        .accounts
        .login_with_password(PasswordLoginAttempt {
            user,
            password,
            device_id: body.device_id,
            initial_device_display_name: body.initial_device_display_name,
            refresh_token,
            client_address,
            user_agent,
        })
        .await?;
    Ok(login_answer(&state, &success))
}

/// A successful login's answer, as Synapse gives it.
pub(super) fn login_answer(state: &AppState, success: &LoginSuccess) -> Json<Value> {
    let mut answer = json!({
        "user_id": success.user_id,
        "access_token": success.access_token.expose_secret(),
        "device_id": success.device_id,
        "home_server": state.accounts.config.server_name,
    });
    if let Some(base_url) = &state.accounts.config.public_baseurl {
        answer["well_known"] = json!({"m.homeserver": {"base_url": base_url}});
    }
    if let Some(until) = success.valid_until_ms {
        answer["expires_in_ms"] = json!(until - now_ms());
    }
    if let Some(refresh_token) = &success.refresh_token {
        answer["refresh_token"] = json!(refresh_token.expose_secret());
    }
    Json(answer)
}

/// `POST /refresh` with `{"refresh_token": …}`: a new access token and refresh token.
pub async fn refresh(
    State(state): State<AppState>,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    let token = match body.get("refresh_token") {
        None => {
            return Err(MatrixError::missing_param(
                "Missing params: ['refresh_token']",
            ));
        }
        Some(Value::String(token)) => token,
        Some(_) => return Err(MatrixError::invalid_param("Invalid param: refresh_token")),
    };
    let refreshed = state.accounts.refresh(token).await?;
    let mut answer = json!({
        "access_token": refreshed.access_token.expose_secret(),
        "refresh_token": refreshed.refresh_token.expose_secret(),
    });
    if let Some(until) = refreshed.valid_until_ms {
        answer["expires_in_ms"] = json!(until - now_ms());
    }
    Ok(Json(answer))
}
