//! A user's password reset by an admin, from the user's page: the new password typed twice
//! or generated (shown once, on a page of its own), and "Also sign out all of this user's
//! devices?" defaulting to no (signed-out devices lose the encrypted history the user has
//! not backed up). With e-mail configured, "send a reset link" instead: the user sets the
//! password. Through the account service with the admin as actor (`Actor::Admin`), audited
//! as the Admin API's reset and the CLI's `send-reset-link` are.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::super::WebState;
use super::super::page::{Message, base, with, with_cookie};
use super::super::session::Session;
use super::user_actions::refusal;
use super::users::show_user;
use crate::accounts::PasswordRefusal;
use crate::accounts::recovery::RecoveryError;
use crate::http::client_address::ClientAddress;
use crate::store::User;

/// `POST /_homekey/admin/reset-password`: `user_id`, `password_choice` (`type`, the
/// default, with `new_password` and `new_password_again`; or `generate`), `logout_devices`
/// (absent: no).
pub async fn reset(
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
    let generated = form.get("password_choice") == Some("generate");
    let password = if generated {
        crate::secrets::generated_password()
    } else {
        let (Some(password), Some(repeated)) = (
            form.secret("new_password"),
            form.secret("new_password_again"),
        ) else {
            return again(StatusCode::BAD_REQUEST, "Type the new password twice.").await;
        };
        if password.expose_secret() != repeated.expose_secret() {
            return again(
                StatusCode::BAD_REQUEST,
                "The two passwords differ. Nothing was changed.",
            )
            .await;
        }
        password
    };
    let logout_devices = form.get("logout_devices").is_some_and(|v| !v.is_empty());
    match state
        .accounts
        .set_password(&actor, &user_id, password.clone(), logout_devices)
        .await
    {
        Ok(()) if generated => {
            let set = PasswordSet::Reset { logout_devices };
            password_page(&state, &session, &admin, &user_id, Some(&password), set)
        }
        Ok(()) => {
            show_user(
                &state,
                &session,
                &admin,
                &user_id,
                StatusCode::OK,
                Message::Notice(reset_notice(logout_devices).into()),
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

fn reset_notice(logout_devices: bool) -> &'static str {
    if logout_devices {
        "The password was reset, and every device of this user was signed out."
    } else {
        "The password was reset. This user's devices stay signed in."
    }
}

/// What a password page follows.
pub(super) enum PasswordSet {
    /// The account was just created.
    Created,
    /// Its password was reset; `logout_devices`: its devices were signed out.
    Reset { logout_devices: bool },
}

/// The page after an account was created or its password reset, with the generated
/// password when there is one: shown this once (it is kept nowhere but as a hash; the
/// answer is `no-store` like every answer of the console).
pub(super) fn password_page(
    state: &WebState,
    session: &Session,
    admin: &User,
    user_id: &str,
    generated: Option<&SecretString>,
    set: PasswordSet,
) -> Response {
    let href = format!(
        "user?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("id", user_id)
            .finish()
    );
    let (notice, created) = match set {
        PasswordSet::Created => (format!("{user_id} was created."), true),
        PasswordSet::Reset { logout_devices } => (reset_notice(logout_devices).to_owned(), false),
    };
    let context = with(
        base(state, session, Some(&admin.name), Message::Notice(notice)),
        json!({
            "subject": user_id,
            "href": href,
            "created": created,
            "password": generated.map(|password| password.expose_secret().to_owned()),
        }),
    );
    let response = state
        .renderer
        .page(StatusCode::OK, "admin_password_shown.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `POST /_homekey/admin/send-reset-link`: `user_id`, `logout_devices` (absent: no). A
/// link to each of the user's e-mail addresses; the user chooses the password.
pub async fn send_link(
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
    let user_id = form.get("user_id").unwrap_or("").to_owned();
    let logout_devices = form.get("logout_devices").is_some_and(|v| !v.is_empty());
    let (status, message) = match state
        .accounts
        .send_reset_link(&actor, &user_id, None, logout_devices)
        .await
    {
        Ok(addresses) => (
            StatusCode::OK,
            Message::Notice(format!(
                "A reset link is on its way to {}. Nothing changes until the user sets a \
                 new password with it.",
                addresses.join(", ")
            )),
        ),
        Err(RecoveryError::Account(err)) => {
            let (status, message) = refusal(&err);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %err, "the admin console could not send a reset link");
            }
            (status, Message::Error(message))
        }
        Err(err @ (RecoveryError::NoAddress(_) | RecoveryError::MailOff)) => {
            (StatusCode::BAD_REQUEST, Message::Error(format!("{err}.")))
        }
        Err(err) => (StatusCode::BAD_REQUEST, Message::Error(format!("{err}."))),
    };
    show_user(&state, &session, &admin, &user_id, status, message).await
}

/// What a page says of a password refused by the rule (never the password).
pub(super) fn refusal_text(refusal: &PasswordRefusal) -> String {
    match refusal {
        PasswordRefusal::Policy(violation) => format!("The password is too weak: {violation}."),
        PasswordRefusal::TooLong => "The password is too long.".into(),
        other => format!("{other}."),
    }
}
