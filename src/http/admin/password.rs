//! `POST /_synapse/admin/v1/reset_password/<user_id>`, also answered at the seed's legacy
//! `POST /_matrix/client/r0/admin/reset_password/<user_id>`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::{AdminRequester, parse_user_id};
use crate::accounts::{AccountError, Actor};
use crate::http::AppState;
use crate::http::error::MatrixError;
use crate::http::json::MatrixJson;

/// Sets a user's password; `logout_devices` (default true) ends every session of the user in
/// the same transaction. As in Synapse the password policy binds users, not admins. Stricter
/// than Synapse: a non-string password is 400 (Synapse fails with 500), and the 512-character
/// limit of users v2 applies.
pub async fn reset_password(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = parse_user_id(&user_id)?;
    let new_password = match body.get("new_password") {
        None => {
            return Err(MatrixError::missing_param(
                "Missing params: ['new_password']",
            ));
        }
        Some(Value::String(password)) => SecretString::from(password.clone()),
        Some(_) => return Err(MatrixError::invalid_param("Invalid password")),
    };
    let actor = Actor::Admin(admin);
    state.accounts.check_new_password(&actor, &new_password)?;
    let logout_devices = match body.get("logout_devices") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(logout)) => *logout,
        Some(_) => {
            return Err(MatrixError::invalid_param(
                "'logout_devices' parameter is not of type boolean",
            ));
        }
    };
    state
        .accounts
        .set_password(&actor, user_id.as_str(), new_password, logout_devices)
        .await
        .map_err(|err| match err {
            // Synapse's words here (remote users land here too: they have no row).
            AccountError::UserNotFound(_) => {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Unknown user")
            }
            other => other.into(),
        })?;
    Ok(Json(json!({})))
}
