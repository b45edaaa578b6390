//! What every group of pages shares on top of the session ([`super::session`]) and the
//! templates ([`super::render`]): the posted form, the message at the top of a page, the
//! context every page has, the signed-in user, and the answers that are not a page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::WebState;
use super::session::Session;
use crate::store::User;

/// A posted form's fields (the first of a name sent twice).
#[derive(Default)]
pub struct Form(Vec<(String, String)>);

/// A form with a name or value that is not UTF-8 once decoded.
#[derive(Debug)]
pub struct NotText;

impl Form {
    /// The fields of `application/x-www-form-urlencoded` bytes. Browsers send UTF-8; bytes
    /// that are not (once decoded) are refused rather than replaced: two different new
    /// passwords must not compare equal, nor a password be stored as other than typed.
    pub fn parse(body: &[u8]) -> Result<Form, NotText> {
        let decode = |raw: &[u8]| {
            let spaced: Vec<u8> = raw
                .iter()
                .map(|&byte| if byte == b'+' { b' ' } else { byte })
                .collect();
            percent_encoding::percent_decode(&spaced)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| NotText)
        };
        body.split(|&byte| byte == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                    Some(at) => (&pair[..at], &pair[at + 1..]),
                    None => (pair, &[][..]),
                };
                Ok((decode(name)?, decode(value)?))
            })
            .collect::<Result<_, _>>()
            .map(Form)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .map(|value| SecretString::from(value.to_owned()))
    }
}

/// The refusal of a form that came without its session's CSRF token (the OAuth and device
/// pages'; nothing the form asked for was done).
pub fn form_expired() -> Message {
    Message::Error(
        "This form had expired or did not come from this page. Nothing was done; please try \
         again."
            .into(),
    )
}

/// A message for the top of a page.
pub enum Message {
    None,
    Error(String),
    /// An error about one field of the form (its id): shown at the top and beside it.
    FieldError(&'static str, String),
    Notice(String),
}

/// The session's user, if signed in and the account can still act; a session whose account
/// was deactivated or locked since is ended. `None`: the account could not be read.
pub async fn signed_in(state: &WebState, session: Session) -> Option<(Session, Option<User>)> {
    let Some(user_id) = session.user_id.clone() else {
        return Some((session, None));
    };
    let user = state.accounts.get_user(&user_id).await.ok()?;
    match user {
        Some(user) if !user.deactivated && !user.locked => Some((session, Some(user))),
        _ => {
            let _ = state.sessions.end(&session).await;
            Some((state.sessions.begin_anonymous().await.ok()?, None))
        }
    }
}

/// The context every page has.
pub fn base(state: &WebState, session: &Session, user_id: Option<&str>, message: Message) -> Value {
    let (error, error_field, notice) = match message {
        Message::None => (None, None, None),
        Message::Error(error) => (Some(error), None, None),
        Message::FieldError(field, error) => (Some(error), Some(field), None),
        Message::Notice(notice) => (None, None, Some(notice)),
    };
    json!({
        "server_name": state.accounts.config.server_name,
        "admin_contact": state.accounts.config.admin_contact,
        "user_id": user_id,
        "csrf": session.csrf_token(),
        "error": error,
        "error_field": error_field,
        "notice": notice,
    })
}

pub fn with(mut context: Value, more: Value) -> Value {
    if let (Some(context), Value::Object(more)) = (context.as_object_mut(), more) {
        context.extend(more);
    }
    context
}

pub fn unavailable(state: &WebState, err: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %err, "the account page is unavailable");
    unavailable_page(state, None)
}

/// The 503 page, with why if it is not a passing failure.
pub fn unavailable_page(state: &WebState, reason: Option<&str>) -> Response {
    let context = json!({
        "reason": reason,
        "server_name": state.accounts.config.server_name,
        "admin_contact": state.accounts.config.admin_contact,
        "user_id": null,
        "csrf": "",
        "error": null,
        "notice": null,
    });
    state
        .renderer
        .page(StatusCode::SERVICE_UNAVAILABLE, "unavailable.html", context)
}

pub fn see_other(location: &str, set_cookie: Option<&str>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    with_cookie(response, set_cookie)
}

pub fn with_cookie(mut response: Response, set_cookie: Option<&str>) -> Response {
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Why [`sign_in_with_password`] did not sign in: the form again with this status and
/// message, or an answer already made (the sessions could not be written).
pub enum SignInRefused {
    Again(StatusCode, Message),
    Answered(Response),
}

/// The sign-in every group of pages shares, after its CSRF check: the password checked as a
/// login checks it (`rc_login`, one answer for a wrong password and an unknown user), but
/// opening no device; success ends `session` and begins a signed-in one (a new ID and CSRF
/// token, so an ID planted before sign-in is worth nothing).
pub async fn sign_in_with_password(
    state: &WebState,
    client_address: &str,
    session: &Session,
    form: &Form,
) -> Result<Session, SignInRefused> {
    let user_given = form.get("user").unwrap_or("").trim();
    let Some(password) = form.secret("password") else {
        let error =
            Message::Error("Enter your user name or e-mail address, and your password.".into());
        return Err(SignInRefused::Again(StatusCode::BAD_REQUEST, error));
    };
    let user = state
        .accounts
        .verify_password_for_page(user_given, password, client_address)
        .await
        .map_err(|err| {
            let (status, message) = super::account::login_refusal(err);
            SignInRefused::Again(status, Message::Error(message))
        })?;
    let answered = |err| SignInRefused::Answered(unavailable(state, err));
    state.sessions.end(session).await.map_err(answered)?;
    state.sessions.begin(&user.name).await.map_err(answered)
}
