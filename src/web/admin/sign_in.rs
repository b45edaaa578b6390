//! The console's sign-in and sign-out. Sign-in checks the password as a login does
//! (`Accounts::verify_password_for_page`, under `rc_login`); an account that is not a server
//! admin gets the same answer as a wrong password, and no session. Every sign-in begins a
//! new session (a new cookie and CSRF token).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::super::WebState;
use super::super::page::{Form, Message, base, see_other, unavailable, with, with_cookie};
use super::super::session::Session;
use super::{origin_allowed, signed_in_admin};
use crate::accounts::LoginError;
use crate::config::admin_console::ADMIN_PATH;
use crate::http::client_address::ClientAddress;

/// The one answer for a wrong user, a wrong password and an account that is no admin.
const REFUSED: &str = "Wrong user name or password, or not a server admin.";

/// The sign-in page, with `typed` in the user field.
pub fn page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    typed: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({ "user": typed }),
    );
    let response = state.renderer.page(status, "admin_sign_in.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// The refusal of a POST whose `Origin` or CSRF token is not the console's: the sign-in
/// page (or the users page's sign-in again) with why, 403, nothing done.
pub(super) async fn refused_form(state: &WebState, headers: &HeaderMap, why: &str) -> Response {
    let session = match state.sessions.find_or_begin(headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(state, err),
    };
    page(
        state,
        &session,
        StatusCode::FORBIDDEN,
        "",
        Message::Error(why.into()),
    )
}

/// What a POST must bring: the console's `Origin`, and its session's CSRF token. `Err`: the
/// refusal to answer.
pub(super) async fn checked_post(
    state: &WebState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Session, Form), Response> {
    if !origin_allowed(state, headers) {
        return Err(refused_form(
            state,
            headers,
            "This form was not sent from the admin console's own address. Nothing was done.",
        )
        .await);
    }
    let session = state
        .sessions
        .find_or_begin(headers)
        .await
        .map_err(|err| unavailable(state, err))?;
    let form = Form::parse(body).unwrap_or_default();
    if !session.csrf_matches(form.get("csrf")) {
        return Err(page(
            state,
            &session,
            StatusCode::FORBIDDEN,
            "",
            super::super::page::form_expired(),
        ));
    }
    Ok((session, form))
}

/// `POST /_homekey/admin/sign-in`.
pub async fn sign_in(
    State(state): State<WebState>,
    ClientAddress(client_address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, form) = match checked_post(&state, &headers, &body).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let typed = form.get("user").unwrap_or("").trim().to_owned();
    let Some(password) = form.secret("password") else {
        let error = Message::Error("Enter your user name and password.".into());
        return page(&state, &session, StatusCode::BAD_REQUEST, &typed, error);
    };
    let user = match state
        .accounts
        .verify_password_for_page(&typed, password, &client_address)
        .await
    {
        Ok(user) if user.admin && !user.locked && !user.deactivated => user,
        Ok(_) | Err(LoginError::InvalidCredentials | LoginError::BadAddress(_)) => {
            let error = Message::Error(REFUSED.into());
            return page(&state, &session, StatusCode::UNAUTHORIZED, &typed, error);
        }
        Err(err) => {
            let (status, message) = super::super::account::login_refusal(err);
            return page(&state, &session, status, &typed, Message::Error(message));
        }
    };
    if let Err(err) = state.sessions.end(&session).await {
        return unavailable(&state, err);
    }
    match state.sessions.begin(&user.name).await {
        Ok(signed_in) => see_other(ADMIN_PATH, signed_in.set_cookie.as_deref()),
        Err(err) => unavailable(&state, err),
    }
}

/// `POST /_homekey/admin/sign-out`: the session ends, the browser forgets its cookie.
pub async fn sign_out(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, _) = match checked_post(&state, &headers, &body).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    // A session already ended (demoted meanwhile) has nothing more to end.
    let session = match signed_in_admin(&state, session).await {
        Ok((session, _, _)) => session,
        Err(answer) => return answer,
    };
    if let Err(err) = state.sessions.end(&session).await {
        return unavailable(&state, err);
    }
    see_other(ADMIN_PATH, Some(&state.sessions.cleared_cookie()))
}
