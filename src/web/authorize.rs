//! The pages of the OAuth 2.0 authorization endpoint (`crate::oauth`): a client sends the
//! user's browser to [`AUTHORIZE_PATH`] with its request; the user signs in (unless already
//! signed in to homekey's pages) and sees what the client asks for on a consent page; Allow
//! sends the browser back to the client with a code, Deny with `access_denied`.
//!
//! The request is checked by `AuthorizationRequest::check` on every step: an unknown client
//! or unregistered redirect URI is an error page here, anything else goes back to the
//! client. Where the user was going travels as the request's own query string, re-checked
//! each time, and leads only to this endpoint: never to an absolute URL taken from a query.
//! With `prompt=create` a signed-out user gets the sign-up page (`web/sign_up.rs`) instead
//! of the sign-in, and comes back here signed in as the new account.
//! Every POST carries its session's CSRF token. The consent page allows its form to lead to
//! the client's redirect URI in its `form-action` (browsers apply it to the redirect that
//! follows the POST).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use url::Url;

use super::WebState;
use super::page::{
    Form, Message, SignInRefused, base, form_expired, see_other, sign_in_with_password, signed_in,
    unavailable, with, with_cookie,
};
use super::render::allowing_redirect;
use super::session::Session;
use crate::http::client_address::ClientAddress;
use crate::oauth::authorization_request::{AuthorizationRequest, Params, Refused, SignUpPrompt};
use crate::oauth::client_metadata::ClientMetadata;
use crate::store::User;

/// The authorization endpoint (the discovery document's `authorization_endpoint`).
pub const AUTHORIZE_PATH: &str = "/_homekey/oauth2/authorize";
/// Where its sign-in form posts.
pub const SIGN_IN_PATH: &str = "/_homekey/oauth2/sign-in";
/// Where its consent form posts.
pub const CONSENT_PATH: &str = "/_homekey/oauth2/consent";

/// `prompt=login`: the password must have been given this recently.
const FRESH_SIGN_IN_MS: i64 = 2 * 60 * 1000;

/// A checked request and its client.
pub(super) struct Checked {
    pub(super) request: AuthorizationRequest,
    pub(super) client: ClientMetadata,
}

/// `GET` [`AUTHORIZE_PATH`]: the consent page for a signed-in user, else the sign-in form.
pub async fn authorize(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let checked = match check(&state, &query).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let Some((session, user)) = signed_in(&state, session).await else {
        return unavailable(&state, "the account could not be read");
    };
    match user {
        Some(user) if !checked.request.fresh_sign_in || signed_in_just_now(&session) => {
            consent_page(&state, &session, &user, &checked, &query, Message::None).await
        }
        // `prompt=create`: the sign-up page instead (a signed-in user goes on as themself).
        None if checked.request.sign_up == SignUpPrompt::Offered => super::sign_up::sign_up_page(
            &state,
            &session,
            StatusCode::OK,
            &checked,
            &query,
            &super::sign_up::Kept::default(),
            Message::None,
        ),
        _ => {
            let hint = checked.request.login_hint.clone().unwrap_or_default();
            let message = match checked.request.sign_up {
                SignUpPrompt::NotOffered => Message::Notice(
                    "This server does not offer sign-up; sign in with an existing account.".into(),
                ),
                _ => Message::None,
            };
            sign_in_page(
                &state,
                &session,
                StatusCode::OK,
                &checked,
                &query,
                &hint,
                message,
            )
        }
    }
}

/// A form posted on the authorization's pages: the form, the authorization request it
/// carries (its query) and that request checked again; or the page that answers instead.
pub(super) async fn posted_form(
    state: &WebState,
    body: &[u8],
) -> Result<(Form, String, Checked), Response> {
    let Ok(form) = Form::parse(body) else {
        return Err(error_page(
            state,
            "The form held characters that are not valid text. Go back to the app and start \
             again.",
        ));
    };
    let query = form.get("request").unwrap_or("").to_owned();
    let checked = check(state, &query).await?;
    Ok((form, query, checked))
}

/// `POST` [`SIGN_IN_PATH`]: the password, checked as the account page's sign-in checks it
/// (`rc_login`, no device), then back to the authorization with a signed-in session.
pub async fn sign_in(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, query, checked) = match posted_form(&state, &body).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let user_given = form.get("user").unwrap_or("").trim().to_owned();
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let again = |status, message| {
        sign_in_page(
            &state,
            &session,
            status,
            &checked,
            &query,
            &user_given,
            message,
        )
    };
    if !session.csrf_matches(form.get("csrf")) {
        return again(StatusCode::FORBIDDEN, form_expired());
    }
    match sign_in_with_password(&state, &address, &session, &form).await {
        Ok(signed_in) => see_other(
            &format!("{AUTHORIZE_PATH}?{query}"),
            signed_in.set_cookie.as_deref(),
        ),
        Err(SignInRefused::Again(status, message)) => again(status, message),
        Err(SignInRefused::Answered(answer)) => answer,
    }
}

/// `POST` [`CONSENT_PATH`]: Allow (a code) or Deny (`access_denied`), back to the client.
pub async fn consent(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return error_page(
            &state,
            "The form held characters that are not valid text. Go back to the app and start \
             again.",
        );
    };
    let query = form.get("request").unwrap_or("").to_owned();
    let checked = match check(&state, &query).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let csrf_matches = session.csrf_matches(form.get("csrf"));
    let Some((session, user)) = signed_in(&state, session).await else {
        return unavailable(&state, "the account could not be read");
    };
    let Some(user) = user else {
        // Signed out meanwhile (or the account was locked): through sign-in again.
        return see_other(&format!("{AUTHORIZE_PATH}?{query}"), None);
    };
    if !csrf_matches {
        return consent_page(&state, &session, &user, &checked, &query, form_expired()).await;
    }
    let request = &checked.request;
    let location = match form.get("decision") {
        Some("allow") => match state
            .accounts
            .grant_authorization_code(&user, request)
            .await
        {
            Ok(code) => request.redirect_with(&[("code", code.expose_secret())]),
            Err(err) => return unavailable(&state, err),
        },
        Some("deny") => {
            if let Err(err) = state
                .accounts
                .refuse_consent(&user, &request.client_id)
                .await
            {
                return unavailable(&state, err);
            }
            request.redirect_with(&[
                ("error", "access_denied"),
                ("error_description", "the user did not allow the app"),
            ])
        }
        _ => {
            let error = Message::Error("Choose Allow or Deny.".into());
            return consent_page(&state, &session, &user, &checked, &query, error).await;
        }
    };
    allowing_redirect(see_other(&location, None), &request.redirect_uri)
}

/// The request in `query`, checked with its client; `Err`: the error page, or the redirect
/// that tells the client.
pub(super) async fn check(state: &WebState, query: &str) -> Result<Checked, Response> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let params = Params(&pairs);
    let client = match params.client_id() {
        Some(client_id) => match state.accounts.oauth_client(client_id).await {
            Ok(client) => client.map(|client| (client_id.to_owned(), client)),
            Err(err) => return Err(unavailable(state, err)),
        },
        None => None,
    };
    let named = client.as_ref().map(|(id, client)| (id.as_str(), client));
    match AuthorizationRequest::check(&params, named, state.accounts.sign_up_page_offered()) {
        Ok(request) => Ok(Checked {
            request,
            client: client.expect("a checked request has its client").1,
        }),
        Err(Refused::Page(message)) => Err(error_page(state, &message)),
        Err(Refused::Redirect(location)) => Err(see_other(&location, None)),
    }
}

/// Whether the password was given in the last [`FRESH_SIGN_IN_MS`].
fn signed_in_just_now(session: &Session) -> bool {
    session
        .verified_ms
        .is_some_and(|at| crate::accounts::now_ms() - at < FRESH_SIGN_IN_MS)
}

/// What the pages say of the client.
pub(super) fn client_context(checked: &Checked) -> Value {
    // The name and the site are the client's own claims, unless it is sent back to an
    // `https` address on that site: then the site itself asked.
    let proven = Url::parse(&checked.request.redirect_uri).is_ok_and(|uri| {
        uri.scheme() == "https"
            && uri
                .host_str()
                .is_some_and(|h| on_host(h, &client_host(&checked.client)))
    });
    describe_client(&checked.client, proven)
}

/// `client_uri`'s host.
fn client_host(client: &ClientMetadata) -> String {
    Url::parse(&client.client_uri)
        .ok()
        .and_then(|uri| uri.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Whether `host` is `site` or under it.
fn on_host(host: &str, site: &str) -> bool {
    host == site || host.ends_with(&format!(".{site}"))
}

/// The client as a consent shows it; `proven`: its site is more than its own claim.
pub(super) fn describe_client(client: &ClientMetadata, proven: bool) -> Value {
    let host = client_host(client);
    json!({
        "name": client.client_name.clone().unwrap_or_else(|| host.clone()),
        "host": host,
        "client_uri": client.client_uri,
        "proven": proven,
        "tos_uri": client.tos_uri,
        "policy_uri": client.policy_uri,
    })
}

/// What a consent says of the session's device: new, or one the user has (and whether
/// another app or a password login holds it, which the grant will sign out).
pub(super) async fn device_context(
    state: &WebState,
    user: &User,
    device_id: &str,
    client_id: &str,
) -> Result<Value, Response> {
    let (device, holder) = match (
        state.accounts.get_device(&user.name, device_id).await,
        state.accounts.oauth_session_of(&user.name, device_id).await,
    ) {
        (Ok(device), Ok(holder)) => (device, holder),
        (Err(err), _) | (_, Err(err)) => return Err(unavailable(state, err)),
    };
    let held_by_another = device.is_some()
        && holder
            .as_ref()
            .is_none_or(|session| session.client_id != client_id);
    Ok(json!({
        "device_id": device_id,
        "device_name": device.as_ref().and_then(|d| d.display_name.clone()),
        "device_exists": device.is_some(),
        "held_by_another": held_by_another,
    }))
}

fn sign_in_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    checked: &Checked,
    query: &str,
    user: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({
            "client": client_context(checked),
            "request": query,
            "user": user,
            "forgot_url": super::recovery::forgot_url(state, &format!("{AUTHORIZE_PATH}?{query}")),
            "sign_up_url": state.accounts.sign_up_page_offered()
                .then(|| super::sign_up::sign_up_url(query)),
        }),
    );
    let response = state.renderer.page(status, "oauth_sign_in.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

async fn consent_page(
    state: &WebState,
    session: &Session,
    user: &User,
    checked: &Checked,
    query: &str,
    message: Message,
) -> Response {
    let request = &checked.request;
    let device =
        match device_context(state, user, &request.scope.device_id, &request.client_id).await {
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
                "client": client_context(checked),
                "request": query,
                "signed_in_as": user.name,
                "asks_admin": request.scope.admin,
                "is_admin": user.admin,
            }),
        ),
        device,
    );
    let response = state.renderer.page(status, "oauth_consent.html", context);
    let response = with_cookie(response, session.set_cookie.as_deref());
    allowing_redirect(response, &request.redirect_uri)
}

/// The error page (400) of a request that cannot go back to its client.
pub(super) fn error_page(state: &WebState, message: &str) -> Response {
    let context = json!({
        "server_name": state.accounts.config.server_name,
        "admin_contact": state.accounts.config.admin_contact,
        "user_id": null,
        "csrf": "",
        "error": message,
        "notice": null,
    });
    state
        .renderer
        .page(StatusCode::BAD_REQUEST, "oauth_error.html", context)
}
