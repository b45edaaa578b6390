//! A user's password reset by an admin, from the user's page: the new password typed twice,
//! and "Also sign out all of this user's devices?" defaulting to no (signed-out devices lose
//! the encrypted history the user has not backed up). Through the account service with the
//! admin as actor (`Actor::Admin`), audited as the Admin API's reset is.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::WebState;
use super::super::page::Message;
use super::sign_in::checked_post;
use super::signed_in_admin;
use super::users::show_user;
use crate::accounts::{AccountError, Actor, PasswordRefusal, Requester};

/// `POST /_homekey/admin/reset-password`: `user_id`, `new_password`, `new_password_again`,
/// `logout_devices` (absent: no).
pub async fn reset(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, form) = match checked_post(&state, &headers, &body).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let (session, admin, message) = match signed_in_admin(&state, session).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(admin) = admin else {
        return super::sign_in::page(&state, &session, StatusCode::FORBIDDEN, "", message);
    };
    let user_id = form.get("user_id").unwrap_or("").to_owned();
    let again = |status, error: &str| {
        show_user(
            &state,
            &session,
            &admin,
            &user_id,
            status,
            Message::FieldError("new_password", error.to_owned()),
        )
    };
    let (Some(password), Some(repeated)) = (
        form.secret("new_password"),
        form.secret("new_password_again"),
    ) else {
        return again(StatusCode::BAD_REQUEST, "Type the new password twice.").await;
    };
    use secrecy::ExposeSecret;
    if password.expose_secret() != repeated.expose_secret() {
        return again(
            StatusCode::BAD_REQUEST,
            "The two passwords differ. Nothing was changed.",
        )
        .await;
    }
    let logout_devices = form.get("logout_devices").is_some_and(|v| !v.is_empty());
    let actor = Actor::Admin(Requester::on_page(&admin, session.id_hash()));
    match state
        .accounts
        .set_password(&actor, &user_id, password, logout_devices)
        .await
    {
        Ok(()) => {
            let notice = if logout_devices {
                "The password was reset, and every device of this user was signed out."
            } else {
                "The password was reset. This user's devices stay signed in."
            };
            show_user(
                &state,
                &session,
                &admin,
                &user_id,
                StatusCode::OK,
                Message::Notice(notice.into()),
            )
            .await
        }
        Err(err) => {
            let (status, message) = refusal(&err);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %err, "the admin console could not reset a password");
            }
            again(status, &message).await
        }
    }
}

/// What the page says when the reset is refused (never the password).
fn refusal(err: &AccountError) -> (StatusCode, String) {
    match err {
        AccountError::UserNotFound(_) => (StatusCode::NOT_FOUND, "There is no such user.".into()),
        AccountError::DeactivatedGetsNoPassword(_) => (
            StatusCode::BAD_REQUEST,
            "This account is deactivated: a password would not let it sign in.".into(),
        ),
        AccountError::PasswordChangeDisabled => (
            StatusCode::FORBIDDEN,
            "This server does not let passwords be changed.".into(),
        ),
        AccountError::Password(PasswordRefusal::Policy(violation)) => (
            StatusCode::BAD_REQUEST,
            format!("The new password is too weak: {violation}."),
        ),
        AccountError::Password(PasswordRefusal::TooLong) => (
            StatusCode::BAD_REQUEST,
            "The new password is too long.".into(),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Something went wrong; nothing was changed. Please try again later.".into(),
        ),
    }
}
