//! `GET /profile/{userId}` and `GET/PUT /profile/{userId}/displayname`. Reading needs no
//! token (Synapse's default); only the user, or a server admin, sets a display name.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::accounts::Actor;
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::MatrixError;
use crate::http::json::MatrixJson;
use crate::ids::UserId;
use crate::store::User;

/// Synapse's `MAX_DISPLAYNAME_LEN`, in characters.
const MAX_DISPLAYNAME_LENGTH: usize = 256;

fn profile_not_found() -> MatrixError {
    MatrixError::new(
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
        "Profile was not found",
    )
}

/// The local user a profile path names. homekey has no federation, so a remote user's
/// profile is one it does not have.
async fn profile_owner(state: &AppState, user_id: &str) -> Result<User, MatrixError> {
    let user_id =
        UserId::parse(user_id).map_err(|_| MatrixError::invalid_param("Invalid user id"))?;
    if user_id.server_name() != state.accounts.config.server_name {
        return Err(profile_not_found());
    }
    state
        .accounts
        .get_user(user_id.as_str())
        .await?
        .ok_or_else(profile_not_found)
}

/// The profile's fields, unset ones left out; 404 if there are none, as Synapse answers.
pub async fn get_profile(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let user = profile_owner(&state, &user_id).await?;
    let mut profile = Map::new();
    if let Some(displayname) = user.displayname {
        profile.insert("displayname".into(), json!(displayname));
    }
    if let Some(avatar_url) = user.avatar_url {
        profile.insert("avatar_url".into(), json!(avatar_url));
    }
    if profile.is_empty() {
        return Err(profile_not_found());
    }
    Ok(Json(Value::Object(profile)))
}

pub async fn get_displayname(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let user = profile_owner(&state, &user_id).await?;
    Ok(Json(json!({ "displayname": user.displayname })))
}

/// Sets the display name: trimmed, and cleared by an empty one, as Synapse does.
pub async fn set_displayname(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
    Path(user_id): Path<String>,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    let target =
        UserId::parse(&user_id).map_err(|_| MatrixError::invalid_param("Invalid user id"))?;
    let displayname = match body.get("displayname") {
        None => return Err(MatrixError::missing_param("Missing key 'displayname'")),
        Some(Value::Null) => {
            return Err(MatrixError::invalid_param(
                "'displayname' can not be `null`.",
            ));
        }
        Some(Value::String(name)) => name.trim(),
        Some(_) => return Err(MatrixError::invalid_param("'displayname' must be a string")),
    };
    // Synapse's order: a suspended requester is refused before the target is looked at.
    state
        .accounts
        .refuse_suspended_requester(&requester)
        .await?;
    if target.server_name() != state.accounts.config.server_name {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "User is not hosted on this homeserver",
        ));
    }
    if target.as_str() != requester.user.name && !requester.user.admin {
        // Synapse answers this with 400, not 403.
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_FORBIDDEN",
            "Cannot set another user's displayname",
        ));
    }
    if displayname.chars().count() > MAX_DISPLAYNAME_LENGTH {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            format!("Displayname is too long (max {MAX_DISPLAYNAME_LENGTH})"),
        ));
    }
    let displayname = Some(displayname).filter(|name| !name.is_empty());
    // An admin setting another user's display name is recorded; a user's own change is not.
    let actor = if target.as_str() == requester.user.name {
        Actor::User(requester)
    } else {
        Actor::Admin(requester)
    };
    state
        .accounts
        .set_displayname(&actor, &target, displayname)
        .await?;
    Ok(Json(json!({})))
}
