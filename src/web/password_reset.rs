//! The page a mailed password reset link opens, at Synapse's
//! `/_synapse/client/password_reset/email/submit_token` (served standalone too: the e-mail
//! reset of legacy clients needs no other page). GET shows a form that confirms nothing (mail
//! scanners and link previews follow links); its POST confirms the link in one transaction,
//! then leads to the client's `next_link` or says it is done. Neither page may be framed
//! (`render::security_headers`), and the form may lead to the `next_link`'s origin. The pages
//! are Synapse's templates (`crate::mail::templates`: an operator's own first).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::page::{Form, unavailable};
use super::render::{allowing_redirect, rendered};
use crate::mail::templates;

/// The three values of a link, from the form or else the query (Synapse reads both).
pub(super) struct LinkValues {
    pub(super) sid: String,
    pub(super) token: String,
    pub(super) client_secret: String,
}

impl LinkValues {
    pub(super) fn read(form: &Form, query: &Form) -> Result<LinkValues, String> {
        let value = |name: &str| {
            form.get(name)
                .or_else(|| query.get(name))
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("Missing parameter: {name}"))
        };
        Ok(LinkValues {
            sid: value("sid")?,
            token: value("token")?,
            client_secret: value("client_secret")?,
        })
    }
}

pub(super) fn query_form(query: Option<&str>) -> Form {
    Form::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default()
}

/// Which mailed link a page is for: the password reset's or a sign-up's. Their pages work
/// alike and differ only in Synapse's templates.
#[derive(Debug, Clone, Copy)]
pub(super) enum MailedLink {
    PasswordReset,
    SignUp,
}

impl MailedLink {
    fn confirmation_page(self, state: &WebState, values: &LinkValues) -> Response {
        let config = &state.accounts.config;
        let (sid, token, secret) = (&values.sid, &values.token, &values.client_secret);
        match self {
            MailedLink::PasswordReset => rendered(
                StatusCode::OK,
                "password_reset_confirmation.html",
                templates::password_reset_confirmation(config, sid, token, secret),
            ),
            MailedLink::SignUp => rendered(
                StatusCode::OK,
                "homekey_registration_confirmation.html",
                templates::registration_confirmation(config, sid, token, secret),
            ),
        }
    }

    fn success_page(self, state: &WebState) -> Response {
        let config = &state.accounts.config;
        match self {
            MailedLink::PasswordReset => rendered(
                StatusCode::OK,
                "password_reset_success.html",
                templates::password_reset_success(config),
            ),
            MailedLink::SignUp => rendered(
                StatusCode::OK,
                "registration_success.html",
                templates::registration_success(config),
            ),
        }
    }

    /// The failure page (400) with Synapse's reason.
    fn failure_page(self, state: &WebState, reason: &str) -> Response {
        let config = &state.accounts.config;
        match self {
            MailedLink::PasswordReset => rendered(
                StatusCode::BAD_REQUEST,
                "password_reset_failure.html",
                templates::password_reset_failure(config, reason),
            ),
            MailedLink::SignUp => rendered(
                StatusCode::BAD_REQUEST,
                "registration_failure.html",
                templates::registration_failure(config, reason),
            ),
        }
    }
}

/// `GET …/submit_token?token=&client_secret=&sid=`: the confirmation form.
pub async fn confirmation(State(state): State<WebState>, RawQuery(query): RawQuery) -> Response {
    show_confirmation(&state, query.as_deref(), MailedLink::PasswordReset).await
}

/// `POST …/submit_token`: confirms the link.
pub async fn confirm(
    State(state): State<WebState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    confirm_link(&state, query.as_deref(), &body, MailedLink::PasswordReset).await
}

/// A link's confirmation form (GET): reading it confirms nothing.
pub(super) async fn show_confirmation(
    state: &WebState,
    query: Option<&str>,
    link: MailedLink,
) -> Response {
    let values = match LinkValues::read(&Form::default(), &query_form(query)) {
        Ok(values) => values,
        Err(reason) => return link.failure_page(state, &reason),
    };
    // Where the confirmation will lead, so that the form may go there.
    let next_link = match state
        .accounts
        .reset_link_next(&values.sid, &values.token)
        .await
    {
        Ok(next_link) => next_link,
        Err(err) => return unavailable(state, err),
    };
    let page = link.confirmation_page(state, &values);
    match next_link {
        Some(next_link) => allowing_redirect(page, &next_link),
        None => page,
    }
}

/// A link confirmed (POST): its session validated in one transaction, then the client's
/// `next_link` or the success page.
pub(super) async fn confirm_link(
    state: &WebState,
    query: Option<&str>,
    body: &[u8],
    link: MailedLink,
) -> Response {
    let form = Form::parse(body).unwrap_or_default();
    let values = match LinkValues::read(&form, &query_form(query)) {
        Ok(values) => values,
        Err(reason) => return link.failure_page(state, &reason),
    };
    let (sid, secret, token) = (&values.sid, &values.client_secret, &values.token);
    let confirmed = match link {
        MailedLink::PasswordReset => state.accounts.confirm_reset_link(sid, secret, token).await,
        MailedLink::SignUp => {
            state
                .accounts
                .confirm_sign_up_link(sid, secret, token)
                .await
        }
    };
    match confirmed {
        Err(err) => unavailable(state, err),
        Ok(Err(refusal)) => link.failure_page(state, &refusal.to_string()),
        // Synapse leads nowhere on the machine itself (`file:///`).
        Ok(Ok(Some(next_link))) if !next_link.starts_with("file:") => redirect(&next_link),
        Ok(Ok(_)) => link.success_page(state),
    }
}

/// Synapse's 302 to the client's `next_link`.
pub(super) fn redirect(next_link: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(next_link) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    (
        StatusCode::FOUND,
        [(header::LOCATION, location)],
        "You are being redirected.",
    )
        .into_response()
}
