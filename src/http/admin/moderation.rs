//! Moderation flags: `v1/users/<id>/shadow_ban` (POST sets, DELETE clears) and
//! `v1/suspend/<id>` (PUT `{"suspend": bool}`). Each writes Synapse's column
//! (`users.shadow_banned`, `users.suspended`) through the account service, with its audit
//! record. Synapse acts on the flags in rooms (a shadow-banned user's events go nowhere, a
//! suspended user cannot send, join or invite); homekey has no rooms or events, so here they
//! are marks that the Admin API shows and Synapse reads from a shared database.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AdminRequester;
use crate::accounts::{AccountError, Actor};
use crate::http::AppState;
use crate::http::error::MatrixError;
use crate::http::json::parse_body;

/// `POST /_synapse/admin/v1/users/<id>/shadow_ban`: `{}`. The body is not read, as in Synapse.
pub async fn shadow_ban(
    state: State<AppState>,
    admin: AdminRequester,
    user_id: Path<String>,
) -> Result<Json<Value>, MatrixError> {
    set_shadow_banned(state, admin, user_id, true).await
}

/// `DELETE /_synapse/admin/v1/users/<id>/shadow_ban`: `{}`.
pub async fn unshadow_ban(
    state: State<AppState>,
    admin: AdminRequester,
    user_id: Path<String>,
) -> Result<Json<Value>, MatrixError> {
    set_shadow_banned(state, admin, user_id, false).await
}

/// Synapse's order (`ShadowBanRestServlet`): the server part first, on the raw text (an ID
/// without a `:` is not local), then the `@`, then the update, whose missing row is its
/// storage error, 404 `M_UNKNOWN` "No row found (users)" (odd, matched). Synapse checks no
/// more of the ID's grammar: the update names the exact `users.name`.
async fn set_shadow_banned(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    shadow_banned: bool,
) -> Result<Json<Value>, MatrixError> {
    let local = user_id
        .split_once(':')
        .is_some_and(|(_, server)| server == state.accounts.config.server_name);
    if !local {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Only local users can be shadow-banned",
        ));
    }
    synapse_user_id(&user_id)?;
    match state
        .accounts
        .set_shadow_banned(&Actor::Admin(admin), &user_id, shadow_banned)
        .await
    {
        Ok(()) => Ok(Json(json!({}))),
        Err(AccountError::UserNotFound(_)) => Err(MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_UNKNOWN",
            "No row found (users)",
        )),
        Err(err) => Err(err.into()),
    }
}

/// The body of `PUT …/v1/suspend/<id>` (Synapse's pydantic model: a strict boolean, other
/// keys ignored).
#[derive(serde::Deserialize)]
struct SuspendBody {
    suspend: bool,
}

/// `PUT /_synapse/admin/v1/suspend/<id>` with `{"suspend": bool}`: `{"user_<id>_suspended":
/// bool}`. Synapse's order (`SuspendAccountRestServlet`): the ID's shape, a local user, one
/// that exists (404 `M_NOT_FOUND`), then the body (required: an empty one is `M_NOT_JSON`; no
/// `suspend` is `M_MISSING_PARAM`, not a boolean `M_BAD_JSON`). Synapse's messages for the
/// body are pydantic's, which quote the body; homekey's name the field and nothing more.
pub async fn suspend(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    let (_, server) = synapse_user_id(&user_id)?;
    if server != state.accounts.config.server_name {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Can only suspend local users",
        ));
    }
    if state.accounts.get_user(&user_id).await?.is_none() {
        return Err(MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "User not found",
        ));
    }
    let SuspendBody { suspend } = parse_body(&body)?;
    state
        .accounts
        .set_suspended(&Actor::Admin(admin), &user_id, suspend)
        .await?;
    Ok(Json(
        json!({ format!("user_{user_id}_suspended"): suspend }),
    ))
}

/// A user ID read as Synapse's `UserID.from_string` reads it: an `@`, then the localpart up
/// to the first `:` and the server after it, with its messages; nothing more is checked.
fn synapse_user_id(user_id: &str) -> Result<(&str, &str), MatrixError> {
    let rest = user_id
        .strip_prefix('@')
        .ok_or_else(|| MatrixError::invalid_param("Expected UserID string to start with '@'"))?;
    rest.split_once(':').ok_or_else(|| {
        MatrixError::invalid_param("Expected UserID of the form '@localname:domain'")
    })
}

#[cfg(test)]
mod tests {
    use super::synapse_user_id;

    #[test]
    fn user_ids_are_split_as_synapse_splits_them() {
        assert_eq!(
            synapse_user_id("@a:example.com:8448").ok(),
            Some(("a", "example.com:8448"))
        );
        assert_eq!(synapse_user_id("@:x").ok(), Some(("", "x")));
        let message = |id: &str| synapse_user_id(id).err().unwrap().error.unwrap();
        assert_eq!(
            message("a:example.com"),
            (
                "M_INVALID_PARAM",
                "Expected UserID string to start with '@'".to_owned()
            )
        );
        assert_eq!(
            message("@a"),
            (
                "M_INVALID_PARAM",
                "Expected UserID of the form '@localname:domain'".to_owned()
            )
        );
    }
}
