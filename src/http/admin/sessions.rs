//! `whois` and login as a user: an account's sessions, seen or opened by an admin.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::{AdminRequester, local_user_id, parse_user_id};
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::MatrixError;
use crate::http::json::parse_optional_body;

/// `GET /_synapse/admin/v1/whois/<id>`: an admin, or the user themselves. Synapse's shape:
/// one device `""` with one session whose connections are the devices' last contacts.
pub async fn whois(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = parse_user_id(&user_id)?;
    if user_id.as_str() != requester.user.name && !requester.user.admin {
        return Err(super::not_admin());
    }
    let user_id = local_user_id(&state, user_id.as_str(), "Can only whois a local user")?;
    let devices = state.accounts.list_devices(user_id.as_str()).await?;
    let connections: Vec<Value> = devices
        .iter()
        .filter(|d| d.last_seen.is_some())
        .map(|d| json!({"ip": d.ip, "last_seen": d.last_seen, "user_agent": d.user_agent}))
        .collect();
    Ok(Json(json!({
        "user_id": user_id.as_str(),
        "devices": {"": {"sessions": [{"connections": connections}]}},
    })))
}

/// `POST /_synapse/admin/v1/users/<id>/login`: a token to act as the user, no device.
pub async fn login_as_user(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    let user_id = local_user_id(&state, &user_id, "Only local users can be logged in as")?;
    let body: Map<String, Value> = parse_optional_body(&body)?;
    let valid_until_ms = match body.get("valid_until_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(ms)) if ms.is_i64() => ms.as_i64(),
        Some(_) => {
            return Err(MatrixError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "'valid_until_ms' parameter must be an int",
            ));
        }
    };
    let token = state
        .accounts
        .login_as_user(&admin, user_id.as_str(), valid_until_ms)
        .await?;
    Ok(Json(json!({"access_token": token.expose_secret()})))
}
