//! `GET /devices`, `GET/PUT/DELETE /devices/{deviceId}` and `POST /delete_devices`: the
//! requester's own devices. Deleting needs user-interactive auth.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pass_on::pass_on_to_synapse;
use crate::accounts::interactive_auth::Operation;
use crate::accounts::{Actor, AuthError, Requester};
use crate::http::AppState;
use crate::http::auth::{
    Authenticated, AuthenticatedForInteractiveAuth, AuthenticatedOrUnknown,
    refuse_oauth_interactive_auth,
};
use crate::http::client_address::ClientAddress;
use crate::http::error::MatrixError;
use crate::http::interactive_auth::parse_auth;
use crate::http::json::{MatrixJson, parse_optional_body};
use crate::store::Device;

/// Synapse's `MAX_DEVICE_DISPLAY_NAME_LEN`, in characters.
const MAX_DEVICE_DISPLAY_NAME_LENGTH: usize = 100;

/// A device as Synapse shows it: every key present, `null` where unknown.
pub(crate) fn device_json(device: &Device) -> Value {
    json!({
        "user_id": device.user_id,
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.ip,
        "last_seen_ts": device.last_seen,
    })
}

/// Synapse's limit on a device's display name.
pub(crate) fn check_device_display_name(display_name: &str) -> Result<(), MatrixError> {
    if display_name.chars().count() > MAX_DEVICE_DISPLAY_NAME_LENGTH {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_TOO_LARGE",
            format!("Device display name is too long (max {MAX_DEVICE_DISPLAY_NAME_LENGTH})"),
        ));
    }
    Ok(())
}

pub(crate) fn device_not_found() -> MatrixError {
    MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Not found")
}

pub async fn list(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let devices = state.accounts.list_devices(&requester.user.name).await?;
    let devices: Vec<Value> = devices.iter().map(device_json).collect();
    Ok(Json(json!({ "devices": devices })))
}

pub async fn get(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
    Path(device_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let device = state
        .accounts
        .get_device(&requester.user.name, &device_id)
        .await?
        .ok_or_else(device_not_found)?;
    Ok(Json(device_json(&device)))
}

#[derive(Deserialize)]
pub struct RenameBody {
    display_name: Option<String>,
}

/// Renames a device. A body without `display_name` changes nothing and succeeds, as in
/// Synapse; an unknown device is 404 (it is never created here).
pub async fn rename(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
    Path(device_id): Path<String>,
    MatrixJson(body): MatrixJson<RenameBody>,
) -> Result<Json<Value>, MatrixError> {
    let Some(display_name) = body.display_name else {
        return Ok(Json(json!({})));
    };
    check_device_display_name(&display_name)?;
    let renamed = state
        .accounts
        .rename_device(&requester.user.name, &device_id, &display_name)
        .await?;
    if !renamed {
        return Err(device_not_found());
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
pub struct DeleteBody {
    auth: Option<Value>,
}

/// `DELETE /devices/{deviceId}`. The body is optional (a DELETE often has none).
///
/// Beside Synapse, a token homekey does not know goes on to Synapse unchanged: an
/// appservice's `as_token` is known only to Synapse, which deletes its users' devices itself
/// (MSC4190), and the reverse proxy cannot tell such a request from a user's. Any other
/// unknown token gets Synapse's 401, after Synapse has asked homekey about it.
pub async fn delete(
    State(state): State<AppState>,
    AuthenticatedOrUnknown(requester): AuthenticatedOrUnknown,
    ClientAddress(client): ClientAddress,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(device_id): Path<String>,
    body: Bytes,
) -> Result<Response, MatrixError> {
    let Some(requester) = requester else {
        return match state.accounts.synapse() {
            Some(synapse) => {
                pass_on_to_synapse(
                    synapse,
                    reqwest::Method::DELETE,
                    &uri,
                    &headers,
                    &client,
                    body,
                )
                .await
            }
            None => Err(AuthError::UnknownToken.into()),
        };
    };
    refuse_oauth_interactive_auth(&requester)?;
    let body: DeleteBody = parse_optional_body(&body)?;
    let operation = Operation {
        method: "DELETE",
        path: uri.path(),
        description: "remove a device from your account",
    };
    delete_after_auth(&state, &requester, body.auth, operation, &[device_id])
        .await
        .map(IntoResponse::into_response)
}

#[derive(Deserialize)]
pub struct DeleteManyBody {
    auth: Option<Value>,
    devices: Vec<String>,
}

/// `POST /delete_devices`: the devices named in this request (not the first one's).
pub async fn delete_many(
    State(state): State<AppState>,
    AuthenticatedForInteractiveAuth(requester): AuthenticatedForInteractiveAuth,
    OriginalUri(uri): OriginalUri,
    MatrixJson(body): MatrixJson<DeleteManyBody>,
) -> Result<Json<Value>, MatrixError> {
    let operation = Operation {
        method: "POST",
        path: uri.path(),
        description: "remove device(s) from your account",
    };
    delete_after_auth(&state, &requester, body.auth, operation, &body.devices).await
}

/// Deletes devices (with their tokens) once the requester has re-authenticated. Devices the
/// user does not have are passed over, as Synapse does.
async fn delete_after_auth(
    state: &AppState,
    requester: &Requester,
    auth: Option<Value>,
    operation: Operation<'_>,
    device_ids: &[String],
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    let authorised = accounts
        .user_interactive_auth(requester, parse_auth(auth)?, operation)
        .await?;
    accounts
        .delete_devices(
            &Actor::User(requester.clone()),
            &requester.user.name,
            device_ids,
        )
        .await?;
    accounts.finish_ui_auth(&authorised).await?;
    Ok(Json(json!({})))
}
