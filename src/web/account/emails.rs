//! The account page's e-mail addresses (`?action=email_addresses`): the user's list, an
//! address added once a code mailed to it is typed back, an address removed. The password is
//! asked once per change (unless given in the last few minutes, as for the page's other
//! changes): before the code is sent, and to confirm a removal. Adding and removing go
//! through the account service with the user as actor, as `homekey user email` does
//! (audited; beside Synapse, Synapse gets the new list).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Message, View, WebState, not_text, posted, reconfirm, refused_change, show};
use crate::accounts::Actor;
use crate::accounts::email_addresses::EmailCodeError;
use crate::http::client_address::ClientAddress;
use crate::threepid::Threepid;

fn emails(typed: &str) -> View {
    View::Emails {
        typed: typed.to_owned(),
    }
}

/// `POST email-add`: the address and the password; a code is mailed to the address.
pub async fn send_code(
    State(state): State<WebState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = super::Form::parse(&body) else {
        return not_text(&state, &headers, Some(emails(""))).await;
    };
    let typed = form.get("address").unwrap_or("").trim().to_owned();
    let view = emails(&typed);
    let (mut session, user, _) = match posted(&state, &headers, &form, view.clone()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let refused = |status, message| show(&state, &session, &user, view.clone(), status, message);
    if !state.accounts.can_mail_codes() {
        return refused(StatusCode::BAD_REQUEST, Message::Error(MAIL_OFF.into())).await;
    }
    if Threepid::email(&typed).is_err() {
        let error = Message::FieldError("address", NOT_AN_ADDRESS.into());
        return refused(StatusCode::BAD_REQUEST, error).await;
    }
    if let Err(response) = reconfirm(&state, &mut session, &user, &form, &client, &view).await {
        return response;
    }
    match state
        .accounts
        .send_email_code(&user.name, &typed, &client)
        .await
    {
        Ok(address) => {
            let notice = Message::Notice(format!(
                "We sent a code to {address}. Type it below to add the address."
            ));
            show(&state, &session, &user, emails(""), StatusCode::OK, notice).await
        }
        Err(err) => {
            let (status, message) = code_refusal(err);
            show(&state, &session, &user, view, status, message).await
        }
    }
}

/// `POST email-confirm`: the code typed back; the address it was sent to is added.
pub async fn confirm_code(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = super::Form::parse(&body) else {
        return not_text(&state, &headers, Some(emails(""))).await;
    };
    let (session, user, requester) = match posted(&state, &headers, &form, emails("")).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let code = form.get("code").unwrap_or("");
    let (status, message) = match state
        .accounts
        .add_email_by_code(&Actor::User(requester), &user.name, code)
        .await
    {
        Ok(address) => (
            StatusCode::OK,
            Message::Notice(format!("{address} was added to your account.")),
        ),
        Err(err) => code_refusal(err),
    };
    show(&state, &session, &user, emails(""), status, message).await
}

/// `POST email-remove`: first the confirmation (with the password unless given in the last
/// few minutes), then, `confirmed=yes`, the address removed.
pub async fn remove(
    State(state): State<WebState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = super::Form::parse(&body) else {
        return not_text(&state, &headers, Some(emails(""))).await;
    };
    let address = form.get("address").unwrap_or("").to_owned();
    let view = View::RemoveEmail(address.clone());
    let (mut session, user, requester) = match posted(&state, &headers, &form, view.clone()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if form.get("confirmed") != Some("yes") {
        return show(&state, &session, &user, view, StatusCode::OK, Message::None).await;
    }
    if let Err(response) = reconfirm(&state, &mut session, &user, &form, &client, &view).await {
        return response;
    }
    let (status, message) = match state
        .accounts
        .change_email(&Actor::User(requester), &user.name, &address, false)
        .await
    {
        Ok(true) => (
            StatusCode::OK,
            Message::Notice(format!("{address} was removed from your account.")),
        ),
        Ok(false) | Err(crate::accounts::AccountError::Threepid(_)) => (
            StatusCode::NOT_FOUND,
            Message::Error("You have no such address.".into()),
        ),
        Err(err) => return refused_change(&state, &session, &user, emails(""), err).await,
    };
    show(&state, &session, &user, emails(""), status, message).await
}

const MAIL_OFF: &str = "This server cannot send mail, so an address cannot be added here. \
                        Ask the server's operator to add it.";
const NOT_AN_ADDRESS: &str = "This is not an e-mail address.";

/// What the user sees of a code not sent or not taken.
fn code_refusal(err: EmailCodeError) -> (StatusCode, Message) {
    let bad = StatusCode::BAD_REQUEST;
    match err {
        EmailCodeError::MailOff => (bad, Message::Error(MAIL_OFF.into())),
        EmailCodeError::NotAnAddress => {
            (bad, Message::FieldError("address", NOT_AN_ADDRESS.into()))
        }
        EmailCodeError::AlreadyYours => (
            bad,
            Message::FieldError("address", "This address is already yours.".into()),
        ),
        EmailCodeError::InUse => (
            StatusCode::CONFLICT,
            Message::Error(
                "This address belongs to another account on this server, so it cannot be \
                 added to yours."
                    .into(),
            ),
        ),
        EmailCodeError::RateLimited { retry_after_ms } => (
            StatusCode::TOO_MANY_REQUESTS,
            Message::Error(format!(
                "Too many codes were sent. Try again in {} seconds.",
                retry_after_ms.div_ceil(1000).max(1)
            )),
        ),
        EmailCodeError::WrongCode { tries_left: 0 } => (
            bad,
            Message::Error(
                "That code is not right, and it cannot be tried again: send a new code.".into(),
            ),
        ),
        EmailCodeError::WrongCode { tries_left } => (
            bad,
            Message::FieldError(
                "code",
                format!(
                    "That code is not right. {tries_left} {} left.",
                    if tries_left == 1 { "try" } else { "tries" }
                ),
            ),
        ),
        EmailCodeError::NoCode => (
            bad,
            Message::Error("No code is waiting, or it has expired: send a new code.".into()),
        ),
        EmailCodeError::Mail(err) => {
            tracing::warn!(error = %err, "the account page could not make the e-mail code's mail");
            unavailable_message()
        }
        EmailCodeError::Account(err) => {
            tracing::warn!(error = %err, "the account page could not handle an e-mail address");
            unavailable_message()
        }
    }
}

fn unavailable_message() -> (StatusCode, Message) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Message::Error("Something went wrong. Please try again later.".into()),
    )
}
