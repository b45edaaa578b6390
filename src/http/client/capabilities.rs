//! `GET /capabilities`: what this server lets a user change about their account.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::auth::Authenticated;

pub async fn capabilities(State(state): State<AppState>, _user: Authenticated) -> Json<Value> {
    Json(json!({
        "capabilities": {
            "m.change_password": {"enabled": state.accounts.can_change_password()},
            "m.set_displayname": {"enabled": true},
            "m.set_avatar_url": {"enabled": false},
            "m.3pid_changes": {"enabled": false},
        }
    }))
}
