//! The requester's own session: `whoami`, `logout`, `logout/all`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::auth::{Authenticated, AuthenticatedForLogout};
use crate::http::error::MatrixError;

pub async fn whoami(Authenticated(requester): Authenticated) -> Json<Value> {
    let mut body = json!({
        "user_id": requester.user.name,
        "is_guest": requester.user.is_guest,
    });
    if let Some(device_id) = requester.device_id {
        body["device_id"] = json!(device_id);
    }
    Json(body)
}

pub async fn logout(
    State(state): State<AppState>,
    AuthenticatedForLogout(requester): AuthenticatedForLogout,
) -> Result<Json<Value>, MatrixError> {
    state.accounts.logout(&requester).await?;
    Ok(Json(json!({})))
}

pub async fn logout_all(
    State(state): State<AppState>,
    AuthenticatedForLogout(requester): AuthenticatedForLogout,
) -> Result<Json<Value>, MatrixError> {
    state.accounts.logout_all(&requester).await?;
    Ok(Json(json!({})))
}
