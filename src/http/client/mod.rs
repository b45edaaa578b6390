//! The Client-Server API routes homekey serves (under `/v3` and `/r0`).

mod account;
mod appservice_login;
mod capabilities;
pub(crate) mod devices;
pub mod login;
mod pass_on;
mod password_reset;
mod profile;
mod register;
mod register_email;
mod registration_token;
mod session;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::AppState;

/// The routes, each at `prefix` and its path: registered whole, not nested, because axum's
/// `nest` rewrites the URI of every request it routes.
pub fn routes(prefix: &str) -> Router<AppState> {
    let at = |path: &str| format!("{prefix}{path}");
    Router::new()
        .route(&at("/login"), get(login::flows).post(login::login))
        .route(&at("/refresh"), post(login::refresh))
        .route(&at("/logout"), post(session::logout))
        .route(&at("/logout/all"), post(session::logout_all))
        .route(&at("/register"), post(register::register))
        .route(&at("/register/available"), get(register::available))
        .route(
            &at("/register/email/requestToken"),
            post(register_email::request_token),
        )
        .route(&at("/account/whoami"), get(session::whoami))
        .route(&at("/account/password"), post(account::change_password))
        .route(
            &at("/account/password/email/requestToken"),
            post(password_reset::request_token),
        )
        .route(&at("/account/deactivate"), post(account::deactivate))
        .route(&at("/capabilities"), get(capabilities::capabilities))
        .route(&at("/devices"), get(devices::list))
        .route(
            &at("/devices/{device_id}"),
            get(devices::get)
                .put(devices::rename)
                .delete(devices::delete),
        )
        .route(&at("/delete_devices"), post(devices::delete_many))
        .route(&at("/profile/{user_id}"), get(profile::get_profile))
        .route(
            &at("/profile/{user_id}/displayname"),
            get(profile::get_displayname).put(profile::set_displayname),
        )
}

/// The routes only under `/_matrix/client/v1`.
pub fn v1_routes() -> Router<AppState> {
    Router::new().route(
        "/_matrix/client/v1/register/m.login.registration_token/validity",
        get(registration_token::validity),
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
