//! The requester's own session: `whoami`, `logout`, `logout/all`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::accounts::Actor;
use crate::http::AppState;
use crate::http::auth::{Authenticated, AuthenticatedForLogout};
use crate::http::error::MatrixError;

/// `whoami`'s answer, serialized straight from the requester (the busiest route: no
/// intermediate `Value`).
#[derive(serde::Serialize)]
pub struct WhoAmI {
    user_id: String,
    /// Absent for a token without a device (an admin's login-as-user token).
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    is_guest: bool,
}

pub async fn whoami(Authenticated(requester): Authenticated) -> Json<WhoAmI> {
    Json(WhoAmI {
        user_id: requester.user.name,
        device_id: requester.device_id,
        is_guest: requester.user.is_guest,
    })
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
    let user_id = requester.user.name.clone();
    state
        .accounts
        .logout_everywhere(&Actor::User(requester), &user_id)
        .await?;
    Ok(Json(json!({})))
}
