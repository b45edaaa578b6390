//! The sign-up page of the OAuth 2.0 authorization: a client asking `prompt=create` (Element
//! X's and Element Web's "Create account") sends a signed-out user here instead of the
//! sign-in page, when the server offers sign-up (`enable_registration`).
//!
//! The form asks for the user name (its rules said beside it), the password twice (the
//! policy said before submitting), the registration token when `registration_requires_token`,
//! and the terms ticked when `branding.tos_uri` is set; "Sign in instead" leads to the sign-in
//! page of the same authorization. `Accounts::sign_up_on_page` makes the account (the rules,
//! the token, the audit record, Synapse told); then the browser is signed in as after the
//! sign-in page, and goes back to the authorization: the consent page, then the client.
//! A refusal is the page again with its message, every field but the passwords kept.
//!
//! When an address is required (`registrations_require_3pid: [email]`) the form asks for it
//! too, and a good form mails it a code instead of making the account: the page's second
//! step asks for the code (its form posts here with `code`), and the right code makes the
//! account with the address, then goes on as above. A wrong code: the step again with the
//! tries left; none left, or the code expired: the form again, to start over.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::WebState;
use super::authorize::{AUTHORIZE_PATH, Checked, client_context, posted_form};
use super::page::{Message, base, form_expired, see_other, unavailable, with, with_cookie};
use super::session::Session;
use crate::accounts::email_addresses::EmailCodeError;
use crate::accounts::sign_up::SignUpError;
use crate::accounts::sign_up_page::{PageSignUp, PageSignUpError, SignUpForm};
use crate::accounts::{AccountError, PasswordRefusal};
use crate::http::client_address::ClientAddress;
use crate::ids::UserIdError;
use crate::password::policy::PasswordPolicy;

/// Where the sign-up form posts.
pub const SIGN_UP_PATH: &str = "/_homekey/oauth2/sign-up";

/// What the form is shown with again after a refusal (never the passwords).
#[derive(Default)]
pub struct Kept {
    pub username: String,
    pub registration_token: String,
    pub terms_accepted: bool,
    pub email: String,
}

/// The authorization of `query` asking for the sign-up page (`prompt=create` added).
pub fn sign_up_url(query: &str) -> String {
    format!("{AUTHORIZE_PATH}?{}", with_create(query, true))
}

/// The authorization of `query` showing the sign-in page (`prompt=create` taken out).
fn sign_in_url(query: &str) -> String {
    format!("{AUTHORIZE_PATH}?{}", with_create(query, false))
}

/// `query` with `create` in its `prompt` or not; the other prompts and parameters kept.
fn with_create(query: &str, create: bool) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let prompts: Vec<String> = pairs
        .iter()
        .find(|(key, _)| key == "prompt")
        .map(|(_, value)| value.split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut prompts: Vec<String> = prompts
        .into_iter()
        .filter(|prompt| !prompt.is_empty() && prompt != "create")
        .collect();
    if create {
        prompts.push("create".into());
    }
    pairs.retain(|(key, _)| key != "prompt");
    if !prompts.is_empty() {
        pairs.push(("prompt".into(), prompts.join(" ")));
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `POST` [`SIGN_UP_PATH`]: the account made, the browser signed in as it, and back to the
/// authorization (its consent page).
pub async fn sign_up(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, query, checked) = match posted_form(&state, &body).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    if !state.accounts.sign_up_page_offered() {
        // Turned off since the page was shown: the sign-in page says so.
        return see_other(&format!("{AUTHORIZE_PATH}?{query}"), None);
    }
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let kept = Kept {
        username: form.get("username").unwrap_or("").trim().to_owned(),
        registration_token: form
            .get("registration_token")
            .unwrap_or("")
            .trim()
            .to_owned(),
        terms_accepted: form.get("terms") == Some("on"),
        email: form.get("email").unwrap_or("").trim().to_owned(),
    };
    let again =
        |status, message| sign_up_page(&state, &session, status, &checked, &query, &kept, message);
    if !session.csrf_matches(form.get("csrf")) {
        return again(StatusCode::FORBIDDEN, form_expired());
    }
    if let Some(code) = form.get("code") {
        return code_typed(&state, &session, &checked, &query, code, &address).await;
    }
    let Some(password) = form.secret("password") else {
        let error = "Choose a password, and type it twice.".into();
        return again(
            StatusCode::BAD_REQUEST,
            Message::FieldError("password", error),
        );
    };
    if form.get("password") != form.get("password_again") {
        let error = "The two passwords differ.".into();
        return again(
            StatusCode::BAD_REQUEST,
            Message::FieldError("password_again", error),
        );
    }
    let asked = SignUpForm {
        username: kept.username.clone(),
        password,
        registration_token: Some(kept.registration_token.clone()),
        terms_accepted: kept.terms_accepted,
        email: Some(kept.email.clone()),
        client_address: address,
    };
    match state
        .accounts
        .sign_up_on_page(asked, session.id_hash())
        .await
    {
        Ok(PageSignUp::Made(user_id)) => signed_in(&state, &session, &query, &user_id).await,
        Ok(PageSignUp::CodeMailed(mailed)) => code_page(
            &state,
            &session,
            StatusCode::OK,
            &checked,
            &query,
            &mailed,
            Message::None,
        ),
        Err(PageSignUpError::SignUp(SignUpError::Disabled)) => {
            see_other(&format!("{AUTHORIZE_PATH}?{query}"), None)
        }
        Err(err) => match refusal(err) {
            Ok((status, message)) => again(status, message),
            Err(err) => unavailable(&state, err),
        },
    }
}

/// The code step's form: the right code makes the account (signed in, back to the
/// authorization); a wrong one shows the step again with the tries left; none left, or no
/// code waiting, the form again.
async fn code_typed(
    state: &WebState,
    session: &Session,
    checked: &Checked,
    query: &str,
    code: &str,
    address: &str,
) -> Response {
    let form_again = |status, message| {
        sign_up_page(
            state,
            session,
            status,
            checked,
            query,
            &Kept::default(),
            message,
        )
    };
    let err = match state
        .accounts
        .finish_sign_up_on_page(session.id_hash(), code, address)
        .await
    {
        Ok(user_id) => return signed_in(state, session, query, &user_id).await,
        Err(err) => err,
    };
    match err {
        PageSignUpError::SignUp(SignUpError::Disabled) => {
            see_other(&format!("{AUTHORIZE_PATH}?{query}"), None)
        }
        PageSignUpError::Code(EmailCodeError::WrongCode { tries_left }) if tries_left > 0 => {
            let mailed = match state.accounts.waiting_sign_up_code(session.id_hash()).await {
                Ok(Some(mailed)) => mailed,
                Ok(None) => return form_again(StatusCode::BAD_REQUEST, start_again()),
                Err(err) => return unavailable(state, err),
            };
            let tries = if tries_left == 1 { "try" } else { "tries" };
            let text = format!("That code is wrong. You have {tries_left} {tries} left.");
            code_page(
                state,
                session,
                StatusCode::BAD_REQUEST,
                checked,
                query,
                &mailed,
                Message::FieldError("code", text),
            )
        }
        PageSignUpError::Code(EmailCodeError::WrongCode { .. } | EmailCodeError::NoCode) => {
            form_again(StatusCode::BAD_REQUEST, start_again())
        }
        // The name or the address taken since, the token used up…: the form says which.
        err => match refusal(err) {
            Ok((status, message)) => form_again(status, message),
            Err(err) => unavailable(state, err),
        },
    }
}

/// The code is gone (wrong too often, expired, or never sent to this browser).
fn start_again() -> Message {
    Message::Error(
        "That code can no longer be used: it was wrong too many times, or it expired. \
         Fill in the form again to get a new code."
            .into(),
    )
}

/// As after the sign-in page: a new session, signed in as `user_id`, and back to the
/// authorization.
async fn signed_in(state: &WebState, session: &Session, query: &str, user_id: &str) -> Response {
    if let Err(err) = state.sessions.end(session).await {
        return unavailable(state, err);
    }
    match state.sessions.begin(user_id).await {
        Ok(signed_in) => see_other(
            &format!("{AUTHORIZE_PATH}?{query}"),
            signed_in.set_cookie.as_deref(),
        ),
        Err(err) => unavailable(state, err),
    }
}

/// What the page says of a refused sign-up; `Err`: not the user's to fix (the 503 page).
fn refusal(err: PageSignUpError) -> Result<(StatusCode, Message), PageSignUpError> {
    let field = |id, text: String| Ok((StatusCode::BAD_REQUEST, Message::FieldError(id, text)));
    let err = match err {
        PageSignUpError::SignUp(err) => err,
        PageSignUpError::Code(EmailCodeError::NotAnAddress) => {
            return field("email", "Enter your e-mail address.".into());
        }
        PageSignUpError::Code(EmailCodeError::RateLimited { retry_after_ms }) => {
            return Ok((
                StatusCode::TOO_MANY_REQUESTS,
                Message::Error(format!(
                    "Too many codes sent. Please try again in {}.",
                    crate::mail::describe_duration(retry_after_ms as i64)
                )),
            ));
        }
        other => return Err(other),
    };
    match err {
        SignUpError::InvalidUsername(err) => field("username", name_refusal(&err)),
        SignUpError::Account(AccountError::UserExists(_)) => {
            field("username", "That user name is taken.".into())
        }
        SignUpError::Account(AccountError::Password(refusal)) => {
            let text = match refusal {
                PasswordRefusal::Policy(violation) => {
                    format!("The password is too weak: {violation}.")
                }
                refusal => format!("The password was refused: {refusal}."),
            };
            field("password", text)
        }
        SignUpError::MissingToken => field(
            "registration_token",
            "Enter the registration token you were given.".into(),
        ),
        SignUpError::TokenGone => field(
            "registration_token",
            "That registration token is not valid, or it has been used up.".into(),
        ),
        SignUpError::TermsNotAccepted => field(
            "terms",
            "Accept the terms of service to create an account.".into(),
        ),
        SignUpError::ThreepidDenied => field(
            "email",
            "This server does not accept sign-ups with that e-mail address.".into(),
        ),
        SignUpError::ThreepidInUse => field(
            "email",
            "That e-mail address is already in use by another account.".into(),
        ),
        SignUpError::RateLimited { retry_after_ms } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            Message::Error(format!(
                "Too many sign-ups from your address. Please try again in {}.",
                crate::mail::describe_duration(retry_after_ms as i64)
            )),
        )),
        other => Err(other.into()),
    }
}

/// Why a user name cannot be had, with its rule.
fn name_refusal(err: &UserIdError) -> String {
    let rule = match err {
        UserIdError::Empty | UserIdError::EmptyLocalpart => return "Enter a user name.".into(),
        UserIdError::LeadingUnderscore => "it may not start with _",
        UserIdError::AllNumeric => "it may not be all digits",
        UserIdError::TooLong => "it is too long",
        _ => "it may have only lowercase letters, digits and . _ = - / +",
    };
    format!("That user name cannot be used: {rule}.")
}

/// The sign-up form of the authorization `query`.
pub(super) fn sign_up_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    checked: &Checked,
    query: &str,
    kept: &Kept,
    message: Message,
) -> Response {
    let config = &state.accounts.config;
    let policy = PasswordPolicy::new(config.password.policy.clone());
    let context = with(
        base(state, session, None, message),
        json!({
            "client": client_context(checked),
            "request": query,
            "username": kept.username,
            "registration_token": kept.registration_token,
            "terms_accepted": kept.terms_accepted,
            "requires_token": config.registration.registration_requires_token,
            "email": kept.email,
            "requires_email": state.accounts.sign_up_page_needs_email(),
            "requirements": super::recovery::in_words(&policy.requirements()),
            "sign_in_url": sign_in_url(query),
        }),
    );
    let response = state.renderer.page(status, "sign_up.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// The code step: "Enter the code we mailed to `mailed`", and a way to start again.
fn code_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    checked: &Checked,
    query: &str,
    mailed: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({
            "client": client_context(checked),
            "request": query,
            "address": mailed,
            "start_again_url": sign_up_url(query),
        }),
    );
    let response = state.renderer.page(status, "sign_up_code.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

#[cfg(test)]
mod tests {
    use super::with_create;

    #[test]
    fn create_is_added_to_or_taken_from_the_prompt_and_nothing_else_changes() {
        assert_eq!(
            with_create("client_id=c&prompt=create&state=s", false),
            "client_id=c&state=s"
        );
        assert_eq!(
            with_create("client_id=c&prompt=login+create", false),
            "client_id=c&prompt=login"
        );
        assert_eq!(
            with_create("client_id=c&state=a+b", true),
            "client_id=c&state=a+b&prompt=create"
        );
        assert_eq!(
            with_create("prompt=create&client_id=c", true),
            "client_id=c&prompt=create"
        );
    }
}
