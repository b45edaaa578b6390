//! The device authorization grant's page (RFC 8628 §3.3): where a signed-in user types the
//! code a device shows (or arrives with it, from the device's link or QR code) and allows or
//! denies the device.
//!
//! Against a phishing link to an approval page (RFC 8628 §5.4): the page shows the code and
//! asks the user to check that it is the one on the device in front of them, and says when
//! and from which address the request came; codes tried are limited per address. Every POST
//! carries its session's CSRF token.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::WebState;
use super::authorize::{describe_client, device_context};
use super::page::{
    Form, Message, SignInRefused, base, form_expired, see_other, sign_in_with_password, signed_in,
    unavailable, with, with_cookie,
};
use super::session::Session;
use crate::accounts::oauth_device_grants::{UserCodeError, shown_user_code};
use crate::http::client_address::ClientAddress;
use crate::oauth::scope::Scope;
use crate::store::User;
use crate::utc::format_utc_minutes;

/// The verification page (`verification_uri`).
pub const DEVICE_PAGE_PATH: &str = "/_homekey/device/";
/// Where its sign-in form posts.
pub const DEVICE_SIGN_IN_PATH: &str = "/_homekey/device/sign-in";
/// Where its Allow / Deny form posts.
pub const DEVICE_DECISION_PATH: &str = "/_homekey/device/decision";

/// `GET` [`DEVICE_PAGE_PATH`]`[?user_code=…]`: the sign-in form, the code's entry, or the
/// request to approve.
pub async fn page(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let typed = typed_code(query.as_deref());
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let Some((session, user)) = signed_in(&state, session).await else {
        return unavailable(&state, "the account could not be read");
    };
    let Some(user) = user else {
        return sign_in_page(&state, &session, StatusCode::OK, &typed, "", Message::None);
    };
    if typed.is_empty() {
        return code_page(&state, &session, &user, StatusCode::OK, "", Message::None);
    }
    approval_page(&state, &session, &user, &address, &typed, Message::None).await
}

/// `POST` [`DEVICE_SIGN_IN_PATH`]: the password, then back to the page with the code.
pub async fn sign_in(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body).unwrap_or_default();
    let typed = form.get("user_code").unwrap_or("").trim().to_owned();
    let user_given = form.get("user").unwrap_or("").trim().to_owned();
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    if !session.csrf_matches(form.get("csrf")) {
        let status = StatusCode::FORBIDDEN;
        return sign_in_page(
            &state,
            &session,
            status,
            &typed,
            &user_given,
            form_expired(),
        );
    }
    match sign_in_with_password(&state, &address, &session, &form).await {
        Ok(signed_in) => see_other(&page_link(&typed), signed_in.set_cookie.as_deref()),
        Err(SignInRefused::Again(status, message)) => {
            sign_in_page(&state, &session, status, &typed, &user_given, message)
        }
        Err(SignInRefused::Answered(answer)) => answer,
    }
}

/// `POST` [`DEVICE_DECISION_PATH`]: Allow or Deny the request under the code.
pub async fn decision(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body).unwrap_or_default();
    let typed = form.get("user_code").unwrap_or("").trim().to_owned();
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let csrf_matches = session.csrf_matches(form.get("csrf"));
    let Some((session, user)) = signed_in(&state, session).await else {
        return unavailable(&state, "the account could not be read");
    };
    let Some(user) = user else {
        return see_other(&page_link(&typed), None);
    };
    if !csrf_matches {
        return approval_page(&state, &session, &user, &address, &typed, form_expired()).await;
    }
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            let error = Message::Error("Choose Allow or Deny.".into());
            return approval_page(&state, &session, &user, &address, &typed, error).await;
        }
    };
    let grant = match state
        .accounts
        .device_grant_to_approve(&typed, &address)
        .await
    {
        Ok(Some((grant, _))) => grant,
        Ok(None) => return no_such_code(&state, &session, &user, &typed),
        Err(err) => return refused_code(&state, &session, &user, &typed, err),
    };
    match state
        .accounts
        .decide_device_grant(&user, &grant, allow)
        .await
    {
        Ok(true) => {
            let context = with(
                base(&state, &session, None, Message::None),
                json!({"allowed": allow, "user_code": shown_user_code(&grant.user_code)}),
            );
            let response = state
                .renderer
                .page(StatusCode::OK, "device_done.html", context);
            with_cookie(response, session.set_cookie.as_deref())
        }
        Ok(false) => no_such_code(&state, &session, &user, &typed),
        Err(err) => unavailable(&state, err),
    }
}

/// The request under `typed`, to allow or deny.
async fn approval_page(
    state: &WebState,
    session: &Session,
    user: &User,
    address: &str,
    typed: &str,
    message: Message,
) -> Response {
    let (grant, client) = match state.accounts.device_grant_to_approve(typed, address).await {
        Ok(Some(found)) => found,
        Ok(None) => return no_such_code(state, session, user, typed),
        Err(err) => return refused_code(state, session, user, typed, err),
    };
    let Ok(scope) = Scope::parse(&grant.scope) else {
        return no_such_code(state, session, user, typed);
    };
    let device = match device_context(state, user, &scope.device_id, &grant.client_id).await {
        Ok(device) => device,
        Err(answer) => return answer,
    };
    let status = match message {
        Message::Error(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    };
    let context = with(
        with(
            base(state, session, None, message),
            json!({
                // A device has no redirect that could prove its site: always its own claim.
                "client": describe_client(&client, false),
                "user_code": shown_user_code(&grant.user_code),
                "requested_at": format_utc_minutes(grant.requested_ms),
                "requested_from": grant.requested_from,
                "signed_in_as": user.name,
                "asks_admin": scope.admin,
                "is_admin": user.admin,
            }),
        ),
        device,
    );
    let response = state.renderer.page(status, "device_approve.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// The code's entry form.
fn code_page(
    state: &WebState,
    session: &Session,
    user: &User,
    status: StatusCode,
    typed: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({"signed_in_as": user.name, "typed": typed}),
    );
    let response = state.renderer.page(status, "device_code.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

fn no_such_code(state: &WebState, session: &Session, user: &User, typed: &str) -> Response {
    let error = Message::FieldError(
        "user_code",
        "That code is not waiting for approval: check it on your device. Codes expire after a \
         few minutes; the device can show a new one."
            .into(),
    );
    code_page(state, session, user, StatusCode::NOT_FOUND, typed, error)
}

fn refused_code(
    state: &WebState,
    session: &Session,
    user: &User,
    typed: &str,
    err: UserCodeError,
) -> Response {
    match err {
        UserCodeError::RateLimited { retry_after_ms } => {
            let error = Message::FieldError(
                "user_code",
                format!(
                    "Too many codes tried. Try again in {} seconds.",
                    retry_after_ms.div_ceil(1000).max(1)
                ),
            );
            code_page(
                state,
                session,
                user,
                StatusCode::TOO_MANY_REQUESTS,
                typed,
                error,
            )
        }
        UserCodeError::Store(err) => unavailable(state, err),
    }
}

fn sign_in_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    typed: &str,
    user: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({
            "user_code": typed,
            "user": user,
            "forgot_url": super::recovery::forgot_url(state, &return_path(typed)),
        }),
    );
    let response = state.renderer.page(status, "device_sign_in.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// This page's path with the code typed so far: where "Forgot password?" comes back to.
fn return_path(typed: &str) -> String {
    if typed.is_empty() {
        return DEVICE_PAGE_PATH.to_owned();
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_code", typed)
        .finish();
    format!("{DEVICE_PAGE_PATH}?{query}")
}

/// The `user_code` of a query (the first, if given twice).
fn typed_code(query: Option<&str>) -> String {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "user_code")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default()
}

/// The page for `typed` (a same-origin path).
fn page_link(typed: &str) -> String {
    if typed.is_empty() {
        return DEVICE_PAGE_PATH.to_owned();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_code", typed)
        .finish();
    format!("{DEVICE_PAGE_PATH}?{query}")
}
