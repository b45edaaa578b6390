//! `GET /_matrix/key/v2/server`: the server's name, with no signing keys.
//!
//! Standalone, homekey is the whole server as clients see it, and tools learn the server name
//! here: synadm's `homeserver: auto-retrieval` (its default) reads only `server_name`
//! from this answer to turn a bare localpart into a user ID. homekey signs nothing and
//! federates with no one, so it publishes no key: Synapse's shape for a server with none
//! (no `signatures` then), valid for Synapse's default `key_refresh_interval`, one day.
//!
//! Beside Synapse this path is Synapse's: the reverse proxy sends `/_matrix/key/` to
//! Synapse, whose keys other servers check; homekey answers it only when asked directly.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::accounts::now_ms;

/// Synapse's default `key_refresh_interval`.
const VALID_FOR_MS: i64 = 24 * 60 * 60 * 1000;

/// The answer at `/_matrix/key/v2/server` and at the deprecated `/_matrix/key/v2/server/<key_id>`
/// (Synapse answers both alike).
pub async fn server_keys(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "server_name": state.accounts.config.server_name,
        "verify_keys": {},
        "old_verify_keys": {},
        "valid_until_ts": now_ms() + VALID_FOR_MS,
    }))
}
