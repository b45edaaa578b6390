//! The registered OAuth clients on the console: each one's name, client ID, redirect URIs,
//! client URI, when it registered and how many sessions it holds now; and deleting one,
//! which ends its sessions (their devices, beside Synapse Synapse's too) through the account
//! service with the admin as actor, audited.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::WebState;
use super::super::page::{Message, base, unavailable, with, with_cookie};
use crate::accounts::AccountError;
use crate::http::client_address::ClientAddress;
use crate::store::{OAuthClientRow, StoreError, User};
use crate::utc::format_utc_minutes;
use crate::web::session::Session;

/// The longest client ID looked up (homekey's are 24 characters).
const MAX_CLIENT_ID: usize = 255;

fn client_context(client: &OAuthClientRow) -> Value {
    let metadata: Value = serde_json::from_str(&client.metadata).unwrap_or(Value::Null);
    let text = |name: &str| metadata[name].as_str().map(str::to_owned);
    let redirect_uris: Vec<String> = metadata["redirect_uris"]
        .as_array()
        .map(|uris| {
            uris.iter()
                .filter_map(|uri| uri.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "client_id": client.client_id,
        "name": text("client_name"),
        "client_uri": text("client_uri"),
        "application_type": text("application_type"),
        "redirect_uris": redirect_uris,
        "registered": format_utc_minutes(client.registered_ms),
        "sessions": client.sessions,
        "ever_used": client.first_session_ms.is_some(),
    })
}

/// The page, with `message` at its top.
async fn show(
    state: &WebState,
    session: &Session,
    admin: &User,
    status: StatusCode,
    message: Message,
) -> Response {
    let (clients, message) = match state.accounts.list_oauth_clients().await {
        Ok(clients) => (clients, message),
        Err(StoreError::RefusedOnSynapse(_)) => (
            Vec::new(),
            Message::Error(
                "This server keeps its accounts in Synapse's database, where homekey keeps no \
                 OAuth clients."
                    .into(),
            ),
        ),
        Err(err) => return unavailable(state, err),
    };
    let context = with(
        base(state, session, Some(&admin.name), message),
        json!({ "clients": clients.iter().map(client_context).collect::<Vec<_>>() }),
    );
    let response = state
        .renderer
        .page(status, "admin_oauth_clients.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `GET /_homekey/admin/oauth-clients`.
pub async fn page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let (session, admin) = match super::admin_for_page(&state, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    show(&state, &session, &admin, StatusCode::OK, Message::None).await
}

/// `POST /_homekey/admin/delete-oauth-client`: `client_id`. Its sessions end.
pub async fn delete(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, admin, form, actor) =
        match super::admin_for_post(&state, &address, &headers, &body).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
    let client_id = form.get("client_id").unwrap_or("");
    let no_such = || {
        (
            StatusCode::NOT_FOUND,
            Message::Error("There is no such client; it may have been deleted already.".into()),
        )
    };
    // A text no client ID has is not looked up (PostgreSQL refuses a NUL).
    if client_id.is_empty()
        || client_id.len() > MAX_CLIENT_ID
        || client_id.chars().any(char::is_control)
    {
        let (status, message) = no_such();
        return show(&state, &session, &admin, status, message).await;
    }
    let (status, message) = match state.accounts.delete_oauth_client(&actor, client_id).await {
        Ok(Some(ended)) => {
            let sessions = match ended {
                0 => "it held no session".to_owned(),
                1 => "its one session was ended".to_owned(),
                n => format!("its {n} sessions were ended"),
            };
            (
                StatusCode::OK,
                Message::Notice(format!("The client {client_id} was deleted; {sessions}.")),
            )
        }
        Ok(None) => no_such(),
        Err(AccountError::Store(StoreError::RefusedOnSynapse(_))) => (
            StatusCode::BAD_REQUEST,
            Message::Error("homekey keeps no OAuth clients in Synapse's database.".into()),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "the admin console could not delete an OAuth client");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Message::Error(
                    "Something went wrong; nothing was changed. Please try again later.".into(),
                ),
            )
        }
    };
    show(&state, &session, &admin, status, message).await
}
