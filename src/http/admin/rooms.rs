//! A user's rooms: homekey has none, so every user is in no room.

use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

use super::AdminRequester;

/// `GET /_synapse/admin/v1/users/<id>/joined_rooms`. Synapse checks nothing of the user ID (a
/// remote, unknown or malformed one is in no room either) and answers the same empty list;
/// so does homekey. synadm asks it before deactivating a user.
pub async fn joined_rooms(_admin: AdminRequester, Path(_user_id): Path<String>) -> Json<Value> {
    Json(json!({"joined_rooms": [], "total": 0}))
}
