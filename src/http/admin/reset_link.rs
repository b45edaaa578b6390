//! `POST /_homekey/api/v1/users/<user_id>/send_reset_link`: homekey's own Admin API (not
//! Synapse's): the user is mailed a link with which they choose a password no one else
//! knows, instead of the admin choosing one (`Accounts::send_reset_link`). Body, optional:
//! `logout_devices` (default false: every device is signed out when the user sets the
//! password) and `address` (one of the user's addresses; default all of them).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{AdminRequester, parse_user_id};
use crate::accounts::recovery::RecoveryError;
use crate::accounts::{AccountError, Actor};
use crate::http::AppState;
use crate::http::error::MatrixError;

/// Where homekey's own Admin API lives.
pub const PATH: &str = "/_homekey/api/v1/users/{user_id}/send_reset_link";

pub async fn send_reset_link(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    let user_id = parse_user_id(&user_id)?;
    // The body is optional: none at all is `{}`.
    let body: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(Value::Object(body)) => body,
            Ok(_) => {
                return Err(MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    "M_BAD_JSON",
                    "The body must be a JSON object",
                ));
            }
            Err(_) => {
                return Err(MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    "M_NOT_JSON",
                    "Content not JSON.",
                ));
            }
        }
    };
    let logout_devices = match body.get("logout_devices") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(logout)) => *logout,
        Some(_) => {
            return Err(MatrixError::invalid_param(
                "'logout_devices' parameter is not of type boolean",
            ));
        }
    };
    let address = match body.get("address") {
        None | Some(Value::Null) => None,
        Some(Value::String(address)) => Some(address.as_str()),
        Some(_) => {
            return Err(MatrixError::invalid_param(
                "'address' parameter is not of type string",
            ));
        }
    };
    let sent = state
        .accounts
        .send_reset_link(
            &Actor::Admin(admin),
            user_id.as_str(),
            address,
            logout_devices,
        )
        .await
        .map_err(|err| match err {
            RecoveryError::Account(AccountError::UserNotFound(_)) => {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Unknown user")
            }
            RecoveryError::MailOff => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_MEDIUM_NOT_SUPPORTED",
                "E-mail is not configured on this server: the config has no email section",
            ),
            RecoveryError::NoAddress(_) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_NOT_FOUND",
                "The user has no e-mail address to send a reset link to",
            ),
            err @ RecoveryError::NotTheUsersAddress { .. } => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_NOT_FOUND",
                err.to_string(),
            ),
            RecoveryError::NotAnAddress => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_PARAM",
                "'address' is not an e-mail address",
            ),
            err @ RecoveryError::SynapseDatabase => {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", err.to_string())
            }
            RecoveryError::Account(err) => err.into(),
            other => MatrixError::internal("the reset link was not sent", &other),
        })?;
    Ok(Json(
        json!({"sent_to": sent, "logout_devices": logout_devices}),
    ))
}
