//! Registration tokens on the console: the list (uses allowed, pending, completed, expiry,
//! whether a sign-up may spend one now), a form to create one (typed or generated), and on
//! each token a form to change its limits and one to delete it. Every change goes through the
//! account service with the Admin API's checks (`registration_tokens::check_*`), the admin as
//! actor, audited; refused input gives the page again with the field's message, nothing
//! made.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::WebState;
use super::super::page::{Message, base, unavailable, with, with_cookie};
use crate::accounts::now_ms;
use crate::accounts::registration_tokens::{
    DEFAULT_TOKEN_LENGTH, MAX_TOKEN_LENGTH, NewRegistrationToken, NewTokenText,
    RegistrationTokenError, check_token,
};
use crate::http::client_address::ClientAddress;
use crate::store::{RegistrationToken, User};
use crate::utc::{format_datetime_local, format_utc_minutes, parse_utc};
use crate::web::session::Session;

/// The create form's fields as typed, shown again when it is refused.
#[derive(Default)]
struct Typed {
    token: String,
    length: String,
    uses_allowed: String,
    expiry: String,
}

fn token_context(token: &RegistrationToken, now: i64) -> Value {
    let expired = token.expiry_time.is_some_and(|expiry| expiry <= now);
    json!({
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry": token.expiry_time.map(format_utc_minutes),
        "expiry_input": token.expiry_time.map(format_datetime_local).unwrap_or_default(),
        "valid": token.is_valid(now),
        "expired": expired,
    })
}

/// The page, with `message` at its top and the create form holding `typed`.
async fn show(
    state: &WebState,
    session: &Session,
    admin: &User,
    status: StatusCode,
    message: Message,
    typed: &Typed,
) -> Response {
    let tokens = match state.accounts.registration_tokens(None).await {
        Ok(tokens) => tokens,
        Err(err) => return unavailable(state, err),
    };
    let now = now_ms();
    let context = with(
        base(state, session, Some(&admin.name), message),
        json!({
            "tokens": tokens.iter().map(|t| token_context(t, now)).collect::<Vec<_>>(),
            "typed": {
                "token": typed.token,
                "length": typed.length,
                "uses_allowed": typed.uses_allowed,
                "expiry": typed.expiry,
            },
            "default_length": DEFAULT_TOKEN_LENGTH,
            "max_length": MAX_TOKEN_LENGTH,
        }),
    );
    let response = state
        .renderer
        .page(status, "admin_registration_tokens.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `GET /_homekey/admin/registration-tokens`.
pub async fn page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let (session, admin) = match super::admin_for_page(&state, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    show(
        &state,
        &session,
        &admin,
        StatusCode::OK,
        Message::None,
        &Typed::default(),
    )
    .await
}

/// A number field: empty is `None`; otherwise a whole number, or `Err` with why.
fn whole_number(text: &str, what: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("{what} must be a whole number."))
}

/// An expiry field: empty is none; otherwise a date and time (UTC), or `Err` with why.
fn expiry(text: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_utc(text)
        .map(|(start, _)| Some(start))
        .ok_or_else(|| "Give the expiry as a date and time, YYYY-MM-DDTHH:MM (UTC).".into())
}

/// The field a refusal is about and what the page says (never the store's error).
fn refusal(err: &RegistrationTokenError) -> Option<(&'static str, String)> {
    let field = match err {
        RegistrationTokenError::TokenLength => (
            "token",
            format!("A token has 1 to {MAX_TOKEN_LENGTH} characters."),
        ),
        RegistrationTokenError::TokenCharacters => (
            "token",
            "A token may only have the letters A–Z and a–z, digits, and . _ ~ -".into(),
        ),
        RegistrationTokenError::Exists(_) => ("token", "This token exists already.".into()),
        RegistrationTokenError::Length => (
            "length",
            format!("The length must be from 1 to {MAX_TOKEN_LENGTH}."),
        ),
        RegistrationTokenError::NoUniqueToken => (
            "length",
            "No unused token of this length was found; try a greater length.".into(),
        ),
        RegistrationTokenError::UsesAllowed => (
            "uses_allowed",
            "Uses allowed must be 0 or more; leave it empty for no limit.".into(),
        ),
        RegistrationTokenError::UsesAllowedTooLarge => (
            "uses_allowed",
            format!("Uses allowed must not be more than {}.", i32::MAX),
        ),
        RegistrationTokenError::ExpiryInPast => {
            ("expiry", "The expiry must not be in the past.".into())
        }
        RegistrationTokenError::NotFound(_) | RegistrationTokenError::Store(_) => return None,
    };
    Some(field)
}

/// `POST /_homekey/admin/create-registration-token`: `token` (empty: generated, of
/// `length` characters), `uses_allowed` (empty: no limit), `expiry` (empty: never).
pub async fn create(
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
    let field = |name: &str| form.get(name).unwrap_or("").to_owned();
    let typed = Typed {
        token: field("token").trim().to_owned(),
        length: field("length"),
        uses_allowed: field("uses_allowed"),
        expiry: field("expiry"),
    };
    let again = |field: &'static str, error: String| {
        show(
            &state,
            &session,
            &admin,
            StatusCode::BAD_REQUEST,
            Message::FieldError(field, error),
            &typed,
        )
    };
    let text = if typed.token.is_empty() {
        match whole_number(&typed.length, "The length") {
            Ok(length) => NewTokenText::Random {
                length: length.unwrap_or(DEFAULT_TOKEN_LENGTH),
            },
            Err(error) => return again("length", error).await,
        }
    } else {
        NewTokenText::Given(typed.token.clone())
    };
    let uses_allowed = match whole_number(&typed.uses_allowed, "Uses allowed") {
        Ok(uses) => uses,
        Err(error) => return again("uses_allowed", error).await,
    };
    let expiry_time = match expiry(&typed.expiry) {
        Ok(expiry) => expiry,
        Err(error) => return again("expiry", error).await,
    };
    let new = NewRegistrationToken {
        text,
        uses_allowed,
        expiry_time,
    };
    match state.accounts.create_registration_token(&actor, new).await {
        Ok(token) => {
            let notice = format!("The token {} was created.", token.token);
            show(
                &state,
                &session,
                &admin,
                StatusCode::OK,
                Message::Notice(notice),
                &Typed::default(),
            )
            .await
        }
        Err(err) => match refusal(&err) {
            Some((field, error)) => again(field, error).await,
            None => unavailable(&state, err),
        },
    }
}

/// `POST /_homekey/admin/update-registration-token`: `token`, `uses_allowed`, `expiry`
/// (each empty: no limit, never); what is as it was is left unchanged.
pub async fn update(
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
    let token = form.get("token").unwrap_or("").to_owned();
    let empty = Typed::default();
    let again = |status, error: String| {
        show(
            &state,
            &session,
            &admin,
            status,
            Message::Error(format!("The token {token} was not changed: {error}")),
            &empty,
        )
    };
    // A text no token can have is not looked up (PostgreSQL refuses a NUL).
    let current = match check_token(&token) {
        Ok(()) => match state.accounts.registration_token(&token).await {
            Ok(found) => found,
            Err(err) => return unavailable(&state, err),
        },
        Err(_) => None,
    };
    let Some(current) = current else {
        let error = Message::Error("There is no such token; it may have been deleted.".into());
        return show(
            &state,
            &session,
            &admin,
            StatusCode::NOT_FOUND,
            error,
            &Typed::default(),
        )
        .await;
    };
    let uses_allowed = match whole_number(form.get("uses_allowed").unwrap_or(""), "Uses allowed") {
        Ok(uses) => uses,
        Err(error) => return again(StatusCode::BAD_REQUEST, error).await,
    };
    let typed_expiry = form.get("expiry").unwrap_or("").trim();
    let expiry_time = match expiry(typed_expiry) {
        Ok(expiry) => expiry,
        Err(error) => return again(StatusCode::BAD_REQUEST, error).await,
    };
    // Only what changed: an expiry left as shown (to the minute) stays as it is, even past.
    let uses_changed = uses_allowed != current.uses_allowed.map(i64::from);
    let shown_expiry = current.expiry_time.map(format_datetime_local);
    let expiry_changed = if typed_expiry.is_empty() {
        current.expiry_time.is_some()
    } else {
        shown_expiry.as_deref() != Some(typed_expiry)
    };
    match state
        .accounts
        .update_registration_token(
            &actor,
            &token,
            uses_changed.then_some(uses_allowed),
            expiry_changed.then_some(expiry_time),
        )
        .await
    {
        Ok(_) => {
            let notice = if uses_changed || expiry_changed {
                format!("The token {token} was changed.")
            } else {
                format!("The token {token} was left as it was: nothing was changed.")
            };
            show(
                &state,
                &session,
                &admin,
                StatusCode::OK,
                Message::Notice(notice),
                &Typed::default(),
            )
            .await
        }
        Err(RegistrationTokenError::NotFound(_)) => {
            again(StatusCode::NOT_FOUND, "it no longer exists.".into()).await
        }
        Err(err) => match refusal(&err) {
            Some((_, error)) => again(StatusCode::BAD_REQUEST, error).await,
            None => unavailable(&state, err),
        },
    }
}

/// `POST /_homekey/admin/delete-registration-token`: `token`. A sign-up that spent a use of
/// it and is unfinished keeps going; no new one can.
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
    let token = form.get("token").unwrap_or("");
    let deleted = match check_token(token) {
        Ok(()) => {
            state
                .accounts
                .delete_registration_token(&actor, token)
                .await
        }
        Err(_) => Err(RegistrationTokenError::NotFound(String::new())),
    };
    let (status, message) = match deleted {
        Ok(()) => (
            StatusCode::OK,
            Message::Notice(format!(
                "The token {token} was deleted: it admits no more sign-ups."
            )),
        ),
        Err(RegistrationTokenError::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            Message::Error("There is no such token; it may have been deleted already.".into()),
        ),
        Err(err) => return unavailable(&state, err),
    };
    show(&state, &session, &admin, status, message, &Typed::default()).await
}
