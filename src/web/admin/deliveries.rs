//! What homekey still has to deliver: the mail not sent (what `homekey email status` shows)
//! and, beside Synapse, the work owed to Synapse (`homekey synapse status`), each with a
//! button to try again now. Mail given up has lost its body (it may have held a reset
//! link), so it cannot be sent again: the page says to send a new link instead.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::WebState;
use super::super::page::{Message, base, unavailable, with, with_cookie};
use super::super::session::Session;
use crate::accounts::AccountError;
use crate::accounts::beside_synapse::Delivery;
use crate::http::client_address::ClientAddress;
use crate::ids::UserId;
use crate::store::User;
use crate::utc::format_utc_minutes;

/// `GET /_homekey/admin/deliveries`.
pub async fn page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let (session, admin) = match super::admin_for_page(&state, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    show(&state, &session, &admin, StatusCode::OK, Message::None).await
}

async fn show(
    state: &WebState,
    session: &Session,
    admin: &User,
    status: StatusCode,
    message: Message,
) -> Response {
    let mail = match state.accounts.unsent_mail().await {
        Ok(mail) => mail,
        Err(err) => return unavailable(state, err),
    };
    let mail: Vec<Value> = mail
        .iter()
        .map(|mail| {
            let given_up = mail.state == "given_up";
            json!({
                "id": mail.id,
                "recipient": mail.recipient,
                "subject": mail.subject,
                "given_up": given_up,
                "attempts": mail.attempts,
                "queued": format_utc_minutes(mail.queued_ms),
                "next_attempt": (!given_up).then(|| format_utc_minutes(mail.next_attempt_ms)),
                "done": mail.done_ms.map(format_utc_minutes),
                "last_error": mail.last_error,
            })
        })
        .collect();
    let beside_synapse = state.accounts.beside_synapse();
    let owed = if beside_synapse {
        match state.accounts.owed_to_synapse().await {
            Ok(owed) => owed,
            Err(err) => return unavailable(state, err),
        }
    } else {
        Vec::new()
    };
    let owed: Vec<Value> = owed
        .iter()
        .map(|work| {
            json!({
                "user_id": work.user_id,
                "refused": work.alarm,
                "attempts": work.attempts,
                "since": format_utc_minutes(work.owed_since_ms),
                // i64::MAX: not retried until an operator decides.
                "next_attempt": (work.next_attempt_ms != i64::MAX)
                    .then(|| format_utc_minutes(work.next_attempt_ms)),
                "last_error": work.last_error,
            })
        })
        .collect();
    let context = with(
        base(state, session, Some(&admin.name), message),
        json!({
            "mail_configured": state.accounts.config.email.is_some(),
            "mail": mail,
            "beside_synapse": beside_synapse,
            "owed": owed,
        }),
    );
    let response = state
        .renderer
        .page(status, "admin_deliveries.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `POST /_homekey/admin/retry-mail`: `id`, a queued mail made due now.
pub async fn retry_mail(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, admin, form, _) =
        match super::admin_for_post(&state, &address, &headers, &body).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
    let Some(id) = form.get("id").and_then(|id| id.parse::<i64>().ok()) else {
        let message = Message::Error("No such mail.".into());
        return show(&state, &session, &admin, StatusCode::BAD_REQUEST, message).await;
    };
    let (status, message) = match state.accounts.retry_mail_now(id).await {
        Ok(true) => (
            StatusCode::OK,
            Message::Notice("The mail is being sent again now.".into()),
        ),
        Ok(false) => (
            StatusCode::CONFLICT,
            Message::Error(
                "That mail is no longer waiting: it was sent, dropped or given up meanwhile."
                    .into(),
            ),
        ),
        Err(err) => return unavailable(&state, err),
    };
    show(&state, &session, &admin, status, message).await
}

/// `POST /_homekey/admin/retry-synapse`: `user_id`, whose owed work is delivered now,
/// checking Synapse itself (as `homekey synapse reconcile USER` does).
pub async fn retry_synapse(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, admin, form, _) =
        match super::admin_for_post(&state, &address, &headers, &body).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
    let user_id = form.get("user_id").unwrap_or("").to_owned();
    // Not a user ID (a NUL, too long…): no such user, without asking the database, which on
    // PostgreSQL refuses a NUL in a query's text (the page would be a 503).
    let reconciled = match UserId::parse(&user_id) {
        Ok(_) => {
            state
                .accounts
                .reconcile_with_synapse(Some(vec![user_id.clone()]))
                .await
        }
        Err(_) => Err(AccountError::UserNotFound(user_id.clone())),
    };
    let (status, message) = match reconciled {
        Ok(results) => match results.first().map(|(_, delivery)| delivery) {
            Some(Delivery::StillOwed(why)) => (
                StatusCode::BAD_GATEWAY,
                Message::Error(format!(
                    "Synapse is still not in line for {user_id}: {why}. It stays owed and is \
                     tried again."
                )),
            ),
            _ => (
                StatusCode::OK,
                Message::Notice(format!("Synapse is in line for {user_id}.")),
            ),
        },
        Err(err @ AccountError::Store(_)) => return unavailable(&state, err),
        Err(err) => (StatusCode::BAD_REQUEST, Message::Error(format!("{err}."))),
    };
    show(&state, &session, &admin, status, message).await
}
