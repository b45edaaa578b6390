//! The Client-Server API routes homekey serves (mounted under `/v3` and `/r0`).

mod account;
mod capabilities;
pub(crate) mod devices;
pub mod login;
mod profile;
mod session;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::flows).post(login::login))
        .route("/logout", post(session::logout))
        .route("/logout/all", post(session::logout_all))
        .route("/account/whoami", get(session::whoami))
        .route("/account/password", post(account::change_password))
        .route("/account/deactivate", post(account::deactivate))
        .route("/capabilities", get(capabilities::capabilities))
        .route("/devices", get(devices::list))
        .route(
            "/devices/{device_id}",
            get(devices::get)
                .put(devices::rename)
                .delete(devices::delete),
        )
        .route("/delete_devices", post(devices::delete_many))
        .route("/profile/{user_id}", get(profile::get_profile))
        .route(
            "/profile/{user_id}/displayname",
            get(profile::get_displayname).put(profile::set_displayname),
        )
}

/// `GET /_matrix/client/versions`: the spec versions whose account endpoints homekey serves.
pub async fn versions() -> Json<Value> {
    Json(json!({
        "versions": [
            "r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6",
            "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"
        ],
        "unstable_features": {}
    }))
}
