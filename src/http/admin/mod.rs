//! Synapse's Admin API for users, under `/_synapse/admin/`: the same paths, fields, status
//! codes and errcodes as Synapse (`docs/admin_api/user_admin_api.md`), so operators' scripts
//! and tools work against homekey unchanged.
//!
//! - [`AdminRequester`]: an admin's access token (the flag is read at each request).
//! - one module per family of endpoints.

mod devices;
mod moderation;
mod password;
mod register;
mod registration_tokens;
mod reset_link;
mod rooms;
mod sessions;
mod users;

use axum::Json;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::AppState;
use super::auth::Authenticated;
use super::error::MatrixError;
use crate::accounts::Requester;
use crate::ids::UserId;

/// The routes under `/_synapse/admin` (registered whole, not nested: see `client::routes`).
pub fn routes() -> Router<AppState> {
    let at = |path: &str| format!("/_synapse/admin{path}");
    Router::new()
        .route(&at("/v1/server_version"), get(server_version))
        // homekey's own Admin API, beside Synapse's.
        .route(reset_link::PATH, post(reset_link::send_reset_link))
        .route(
            &at("/v1/reset_password/{user_id}"),
            post(password::reset_password),
        )
        .route(
            &at("/v2/users/{user_id}"),
            get(users::get_user).put(users::put_user),
        )
        .route(&at("/v2/users"), get(users::list_users_v2))
        .route(&at("/v3/users"), get(users::list_users_v3))
        .route(
            &at("/v1/users/{user_id}/admin"),
            get(users::get_admin).put(users::set_admin),
        )
        .route(&at("/v1/deactivate/{user_id}"), post(users::deactivate))
        .route(
            &at("/v1/users/{user_id}/shadow_ban"),
            post(moderation::shadow_ban).delete(moderation::unshadow_ban),
        )
        .route(&at("/v1/suspend/{user_id}"), put(moderation::suspend))
        .route(
            &at("/v1/users/{user_id}/joined_rooms"),
            get(rooms::joined_rooms),
        )
        .route(&at("/v1/whois/{user_id}"), get(sessions::whois))
        .route(
            &at("/v1/users/{user_id}/login"),
            post(sessions::login_as_user),
        )
        .route(
            &at("/v1/username_available"),
            get(users::username_available),
        )
        .route(
            &at("/v1/threepid/{medium}/users/{address}"),
            get(users::user_by_threepid),
        )
        .route(&at("/v2/users/{user_id}/devices"), get(devices::list))
        .route(
            &at("/v2/users/{user_id}/devices/{device_id}"),
            get(devices::get)
                .put(devices::rename)
                .delete(devices::delete),
        )
        .route(
            &at("/v2/users/{user_id}/delete_devices"),
            post(devices::delete_many),
        )
        .route(
            &at("/v1/register"),
            get(register::new_nonce).post(register::register),
        )
        .route(
            &at("/v1/registration_tokens"),
            get(registration_tokens::list),
        )
        .route(
            &at("/v1/registration_tokens/new"),
            post(registration_tokens::create)
                .get(registration_tokens::get_new)
                .put(registration_tokens::update_new)
                .delete(registration_tokens::delete_new),
        )
        .route(
            &at("/v1/registration_tokens/{token}"),
            get(registration_tokens::get)
                .put(registration_tokens::update)
                .delete(registration_tokens::delete),
        )
}

/// The legacy path the seed's docs still print (Synapse removed it in 1.24):
/// `POST /_matrix/client/r0/admin/reset_password/<user_id>`.
pub fn legacy_client_routes() -> Router<AppState> {
    Router::new().route(
        "/_matrix/client/r0/admin/reset_password/{user_id}",
        post(password::reset_password),
    )
}

/// `GET /_synapse/admin/v1/server_version`.
async fn server_version() -> Json<Value> {
    Json(json!({
        "server_version": format!("homekey {}", env!("CARGO_PKG_VERSION")),
    }))
}

/// A request made with the access token of a server admin. The `admin` flag is read from the
/// database at each request, so an operator's `UPDATE users SET admin = 1` counts at once.
/// An OAuth session's token needs `urn:synapse:admin:*` in its granted scope too, as
/// Synapse requires it.
pub struct AdminRequester(pub Requester);

impl FromRequestParts<AppState> for AdminRequester {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(requester) = Authenticated::from_request_parts(parts, state).await?;
        if !requester.user.admin {
            return Err(not_admin());
        }
        // An OAuth session acts as an admin only if it was granted Synapse's admin scope.
        if requester
            .oauth
            .as_ref()
            .is_some_and(|grant| !crate::oauth::scope::grants_admin(&grant.scope))
        {
            return Err(not_admin());
        }
        Ok(AdminRequester(requester))
    }
}

fn not_admin() -> MatrixError {
    MatrixError::new(
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
        "You are not a server admin",
    )
}

/// The user a path names, which must be a syntactically valid user ID.
fn parse_user_id(user_id: &str) -> Result<UserId, MatrixError> {
    UserId::parse(user_id).map_err(|_| MatrixError::invalid_param("Invalid user id"))
}

/// The user a path names, which must be a user of this server (`message` is Synapse's
/// wording for the endpoint).
fn local_user_id(state: &AppState, user_id: &str, message: &str) -> Result<UserId, MatrixError> {
    let user_id = parse_user_id(user_id)?;
    if user_id.server_name() != state.accounts.config.server_name {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            message,
        ));
    }
    Ok(user_id)
}
