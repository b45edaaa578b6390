//! A user's devices, for an admin: `/_synapse/admin/v2/users/<id>/devices…`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminRequester, local_user_id};
use crate::accounts::Actor;
use crate::http::AppState;
use crate::http::client::devices::{check_device_display_name, device_json, device_not_found};
use crate::http::error::MatrixError;
use crate::http::json::{MatrixJson, parse_optional_body};
use crate::ids::UserId;
use crate::store::Device;

/// The user a devices path names: local (Synapse's message) and existing ("Unknown user").
async fn device_owner(state: &AppState, user_id: &str) -> Result<UserId, MatrixError> {
    let user_id = local_user_id(state, user_id, "Can only lookup local users")?;
    if state.accounts.get_user(user_id.as_str()).await?.is_none() {
        return Err(MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "Unknown user",
        ));
    }
    Ok(user_id)
}

/// The Admin API also shows the user agent.
fn admin_device_json(device: &Device) -> Value {
    let mut json = device_json(device);
    json["last_seen_user_agent"] = json!(device.user_agent);
    json
}

pub async fn list(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = device_owner(&state, &user_id).await?;
    let devices = state.accounts.list_devices(user_id.as_str()).await?;
    let devices: Vec<Value> = devices.iter().map(admin_device_json).collect();
    Ok(Json(json!({"total": devices.len(), "devices": devices})))
}

pub async fn get(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path((user_id, device_id)): Path<(String, String)>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = device_owner(&state, &user_id).await?;
    let device = state
        .accounts
        .get_device(user_id.as_str(), &device_id)
        .await?
        .ok_or_else(device_not_found)?;
    Ok(Json(admin_device_json(&device)))
}

#[derive(Deserialize, Default)]
pub struct RenameBody {
    display_name: Option<String>,
}

/// Renames a device; the body may be empty (nothing changes then).
pub async fn rename(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path((user_id, device_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    let user_id = device_owner(&state, &user_id).await?;
    let body: RenameBody = parse_optional_body(&body)?;
    let accounts = &state.accounts;
    let found = match &body.display_name {
        Some(display_name) => {
            check_device_display_name(display_name)?;
            accounts
                .rename_device(user_id.as_str(), &device_id, display_name)
                .await?
        }
        None => accounts
            .get_device(user_id.as_str(), &device_id)
            .await?
            .is_some(),
    };
    if !found {
        return Err(device_not_found());
    }
    Ok(Json(json!({})))
}

/// Deletes a device with its tokens; an unknown device is passed over, as in Synapse.
pub async fn delete(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path((user_id, device_id)): Path<(String, String)>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = device_owner(&state, &user_id).await?;
    state
        .accounts
        .delete_devices(&Actor::Admin(admin), user_id.as_str(), &[device_id])
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub struct DeleteManyBody {
    devices: Vec<String>,
}

pub async fn delete_many(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    MatrixJson(body): MatrixJson<DeleteManyBody>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = device_owner(&state, &user_id).await?;
    state
        .accounts
        .delete_devices(&Actor::Admin(admin), user_id.as_str(), &body.devices)
        .await?;
    Ok(Json(json!({})))
}
