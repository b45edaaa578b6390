//! The page a sign-up's mailed link opens, at Synapse's
//! `/_matrix/client/unstable/registration/email/submit_token` (standalone and beside Synapse).
//! As the password reset's link (`super::password_reset`, whose reading of the link this
//! shares): GET shows a form that confirms nothing (mail scanners and link previews follow
//! links, and a scanner's click must not prove an address for whoever asked); its POST
//! validates the session in one transaction, then leads to the client's `next_link` or shows
//! Synapse's `registration_success.html`. A refusal is `registration_failure.html` with
//! Synapse's reason.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::WebState;
use super::password_reset::{MailedLink, confirm_link, show_confirmation};

/// `GET …/registration/email/submit_token?token=&client_secret=&sid=`: the confirmation
/// form.
pub async fn confirmation(State(state): State<WebState>, RawQuery(query): RawQuery) -> Response {
    show_confirmation(&state, query.as_deref(), MailedLink::SignUp).await
}

/// `POST …/registration/email/submit_token`: validates the session.
pub async fn confirm(
    State(state): State<WebState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    confirm_link(&state, query.as_deref(), &body, MailedLink::SignUp).await
}
