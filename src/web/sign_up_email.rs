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
use axum::http::StatusCode;
use axum::response::Response;

use super::WebState;
use super::page::{Form, unavailable};
use super::password_reset::{LinkValues, query_form, redirect};
use super::render::{allowing_redirect, rendered};
use crate::mail::templates;

/// `GET …/registration/email/submit_token?token=&client_secret=&sid=`: the confirmation
/// form.
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
        "homekey_registration_confirmation.html",
        templates::registration_confirmation(
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

/// `POST …/registration/email/submit_token`: validates the session.
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
        .confirm_sign_up_link(&values.sid, &values.client_secret, &values.token)
        .await;
    match confirmed {
        Err(err) => unavailable(&state, err),
        Ok(Err(refusal)) => failure(&state, &refusal.to_string()),
        // Synapse leads nowhere on the machine itself (`file:///`).
        Ok(Ok(Some(next_link))) if !next_link.starts_with("file:") => redirect(&next_link),
        Ok(Ok(_)) => rendered(
            StatusCode::OK,
            "registration_success.html",
            templates::registration_success(&state.accounts.config),
        ),
    }
}

/// The failure page (400) with Synapse's reason.
fn failure(state: &WebState, reason: &str) -> Response {
    rendered(
        StatusCode::BAD_REQUEST,
        "registration_failure.html",
        templates::registration_failure(&state.accounts.config, reason),
    )
}
