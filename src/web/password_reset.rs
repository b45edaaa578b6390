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

/// `GET …/submit_token?token=&client_secret=&sid=`: the confirmation form.
pub async fn confirmation(State(state): State<WebState>, RawQuery(query): RawQuery) -> Response {
    let values = match LinkValues::read(&Form::default(), &query_form(query.as_deref())) {
        Ok(values) => values,
        Err(reason) => return failure(&state, &reason),
    };
    // Where the confirmation will lead, so that the form may go there (reading confirms
    // nothing).
    let next_link = match state
        .accounts
        .reset_link_next(&values.sid, &values.token)
        .await
    {
        Ok(next_link) => next_link,
        Err(err) => return unavailable(&state, err),
    };
    let page = rendered(
        StatusCode::OK,
        "password_reset_confirmation.html",
        templates::password_reset_confirmation(
            &state.accounts.config,
            &values.sid,
            &values.token,
            &values.client_secret,
        ),
    );
    match next_link {
        Some(next_link) => allowing_redirect(page, &next_link),
        None => page,
    }
}

/// `POST …/submit_token`: confirms the link.
pub async fn confirm(
    State(state): State<WebState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body).unwrap_or_default();
    let values = match LinkValues::read(&form, &query_form(query.as_deref())) {
        Ok(values) => values,
        Err(reason) => return failure(&state, &reason),
    };
    let confirmed = state
        .accounts
        .confirm_reset_link(&values.sid, &values.client_secret, &values.token)
        .await;
    match confirmed {
        Err(err) => unavailable(&state, err),
        Ok(Err(refusal)) => failure(&state, &refusal.to_string()),
        Ok(Ok(Some(next_link))) if !next_link.starts_with("file:") => redirect(&next_link),
        Ok(Ok(_)) => rendered(
            StatusCode::OK,
            "password_reset_success.html",
            templates::password_reset_success(&state.accounts.config),
        ),
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

/// The failure page (400) with Synapse's reason.
fn failure(state: &WebState, reason: &str) -> Response {
    rendered(
        StatusCode::BAD_REQUEST,
        "password_reset_failure.html",
        templates::password_reset_failure(&state.accounts.config, reason),
    )
}
