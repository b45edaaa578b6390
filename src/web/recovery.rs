//! "Forgot password?" on homekey's sign-in pages (the account page's, the OAuth
//! authorization's, the device grant's), offered when the config has an `email:` section:
//!
//! 1. [`FORGOT_PATH`] asks for an e-mail address and always answers the same ("if an account
//!    has it, we sent a link"): `Accounts::request_password_recovery` takes the same path for
//!    an address no account has.
//! 2. The mailed link opens [`crate::accounts::recovery::RESET_PAGE_PATH`]: the new password
//!    typed twice, the policy said first, "also sign out my other devices?" checked by
//!    default. The link is the credential, so it works in a browser signed in as anyone.
//! 3. Once set, the browser is signed in as the link's user and goes back where it was
//!    going: a path on homekey's pages kept with the link ([`checked_return`]), never an
//!    absolute URL.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::WebState;
use super::page::{Form, Message, base, form_expired, see_other, unavailable, with, with_cookie};
use super::session::Session;
use crate::accounts::recovery::RecoveryError;
use crate::accounts::{AccountError, PasswordRefusal};
use crate::http::client_address::ClientAddress;
use crate::password::policy::PasswordPolicy;

/// The page that asks for the address.
pub const FORGOT_PATH: &str = "/_homekey/recovery/forgot";
/// The page the mailed link opens.
pub use crate::accounts::recovery::RESET_PAGE_PATH;

/// Where a "Forgot password?" link may lead back to: homekey's sign-in pages.
const RETURN_PREFIXES: &[&str] = &[
    "/_homekey/oauth2/authorize?",
    crate::synapse::ACCOUNT_PAGE_PATH,
    super::device::DEVICE_PAGE_PATH,
];

/// The "Forgot password?" link of a sign-in page whose way back is `return_to` (a path made
/// by that page); `None` when recovery is off. For the sign-in pages' context.
pub fn forgot_url(state: &WebState, return_to: &str) -> Option<String> {
    state.accounts.recovery_enabled().then(|| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", return_to)
            .finish();
        format!("{FORGOT_PATH}?{query}")
    })
}

/// `given` if it is a path to one of homekey's sign-in pages: a single leading `/`, one of
/// [`RETURN_PREFIXES`], nothing a browser could read as another origin or a new line.
pub fn checked_return(given: &str) -> Option<&str> {
    // A query may hold `//` (an OAuth redirect URI); the path may not (`//host` is another
    // origin to a browser, as is `/\\host`).
    let path = given.split('?').next().unwrap_or_default();
    let plain = given.len() <= 4096
        && !given.contains(['\\', '#'])
        && !given.chars().any(char::is_control)
        && !path.contains("//");
    (plain && RETURN_PREFIXES.iter().any(|p| given.starts_with(p))).then_some(given)
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET` [`FORGOT_PATH`]: the form that asks for the address.
pub async fn forgot(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let return_to = query_value(query.as_deref(), "return_to")
        .filter(|path| checked_return(path).is_some())
        .unwrap_or_default();
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    forgot_page(
        &state,
        &session,
        StatusCode::OK,
        &return_to,
        "",
        Message::None,
    )
}

/// `POST` [`FORGOT_PATH`]: the link mailed if an account has the address; the same answer
/// either way.
pub async fn send(
    State(state): State<WebState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let form = Form::parse(&body).unwrap_or_default();
    let return_to = form
        .get("return_to")
        .and_then(checked_return)
        .unwrap_or("")
        .to_owned();
    let address = form.get("address").unwrap_or("").trim().to_owned();
    let again =
        |status, message| forgot_page(&state, &session, status, &return_to, &address, message);
    if !session.csrf_matches(form.get("csrf")) {
        return again(StatusCode::FORBIDDEN, form_expired());
    }
    let return_path = (!return_to.is_empty()).then_some(return_to.as_str());
    match state
        .accounts
        .request_password_recovery(&address, &client, return_path)
        .await
    {
        Ok(()) => {
            let valid_for = state
                .accounts
                .config
                .email
                .as_ref()
                .map(|email| crate::mail::describe_duration(email.validation_token_lifetime_ms))
                .unwrap_or_default();
            let context = with(
                base(&state, &session, None, Message::None),
                json!({"address": address, "valid_for": valid_for, "return_to": return_to}),
            );
            let response = state
                .renderer
                .page(StatusCode::OK, "recovery_sent.html", context);
            with_cookie(response, session.set_cookie.as_deref())
        }
        Err(RecoveryError::NotAnAddress) => again(
            StatusCode::BAD_REQUEST,
            Message::FieldError("address", "Enter an e-mail address.".into()),
        ),
        Err(RecoveryError::RateLimited { retry_after_ms }) => again(
            StatusCode::TOO_MANY_REQUESTS,
            Message::Error(format!(
                "Too many requests. Please try again in {}.",
                crate::mail::describe_duration(retry_after_ms as i64)
            )),
        ),
        Err(err) => unavailable(&state, err),
    }
}

fn forgot_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    return_to: &str,
    address: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({"return_to": return_to, "address": address}),
    );
    let response = state.renderer.page(status, "recovery_forgot.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `GET` [`RESET_PAGE_PATH`]`?token=…`: the form that sets the new password, or why the
/// link no longer works. Opening it changes nothing (mail scanners open links).
pub async fn reset_form(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let token = query_value(query.as_deref(), "token").unwrap_or_default();
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    match state.accounts.reset_link(&token).await {
        Ok(Some(link)) => reset_page(
            &state,
            &session,
            StatusCode::OK,
            &token,
            link.logout_devices == Some(true),
            Message::None,
        ),
        Ok(None) => spent_page(&state, &session),
        Err(err) => unavailable(&state, err),
    }
}

/// `POST` [`RESET_PAGE_PATH`]: the new password set (and the link spent), the browser
/// signed in as the link's user, and back where it was going.
pub async fn reset(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let form = Form::parse(&body).unwrap_or_default();
    let token = form.get("token").unwrap_or("").to_owned();
    let link = match state.accounts.reset_link(&token).await {
        Ok(Some(link)) => link,
        Ok(None) => return spent_page(&state, &session),
        Err(err) => return unavailable(&state, err),
    };
    let forced = link.logout_devices == Some(true);
    let again = |status, message| reset_page(&state, &session, status, &token, forced, message);
    if !session.csrf_matches(form.get("csrf")) {
        return again(StatusCode::FORBIDDEN, form_expired());
    }
    let Some(password) = form.secret("new_password") else {
        let error = "Enter your new password twice.".into();
        return again(
            StatusCode::BAD_REQUEST,
            Message::FieldError("new_password", error),
        );
    };
    if form.get("new_password") != form.get("new_password_again") {
        let error = "The two new passwords differ.".into();
        return again(
            StatusCode::BAD_REQUEST,
            Message::FieldError("new_password_again", error),
        );
    }
    let sign_out_others = form.get("sign_out_others") == Some("on");
    let link = match state
        .accounts
        .reset_password_with_link(&token, password, sign_out_others)
        .await
    {
        Ok(link) => link,
        Err(RecoveryError::LinkSpent) => return spent_page(&state, &session),
        Err(RecoveryError::Account(AccountError::Password(refusal))) => {
            let error = match refusal {
                PasswordRefusal::Policy(violation) => {
                    format!("The new password is too weak: {violation}.")
                }
                refusal => format!("The new password was refused: {refusal}."),
            };
            return again(
                StatusCode::BAD_REQUEST,
                Message::FieldError("new_password", error),
            );
        }
        Err(RecoveryError::Account(AccountError::PasswordChangeDisabled)) => {
            let error = "Passwords cannot be changed on this server.".into();
            return again(StatusCode::FORBIDDEN, Message::Error(error));
        }
        Err(err) => return unavailable(&state, err),
    };
    // The reset ended every page sign-in of the user; whoever this browser was signed in as,
    // it is now the link's user, with a new session ID.
    let _ = state.sessions.end(&session).await;
    let signed_in = match state.sessions.begin(&link.user_id).await {
        Ok(signed_in) => signed_in,
        Err(err) => return unavailable(&state, err),
    };
    if let Some(return_to) = link.return_to.as_deref().and_then(checked_return) {
        return see_other(return_to, signed_in.set_cookie.as_deref());
    }
    let account_page = state
        .accounts
        .config
        .synapse
        .is_some()
        .then_some(crate::synapse::ACCOUNT_PAGE_PATH);
    let context = with(
        base(&state, &signed_in, None, Message::None),
        json!({"account_page": account_page, "signed_out_others": sign_out_others || forced}),
    );
    let response = state
        .renderer
        .page(StatusCode::OK, "recovery_done.html", context);
    with_cookie(response, signed_in.set_cookie.as_deref())
}

fn reset_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    token: &str,
    forced_sign_out: bool,
    message: Message,
) -> Response {
    let policy = PasswordPolicy::new(state.accounts.config.password.policy.clone());
    let context = with(
        base(state, session, None, message),
        json!({
            "token": token,
            "requirements": in_words(&policy.requirements()),
            "forced_sign_out": forced_sign_out,
        }),
    );
    let response = state.renderer.page(status, "recovery_reset.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// "a, b and c".
pub(super) fn in_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A link used, expired, or whose address left the account: nothing changed.
fn spent_page(state: &WebState, session: &Session) -> Response {
    let context = with(
        base(state, session, None, Message::None),
        json!({"forgot_url": FORGOT_PATH}),
    );
    let response = state
        .renderer
        .page(StatusCode::BAD_REQUEST, "recovery_spent.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

#[cfg(test)]
mod tests {
    use super::checked_return;

    #[test]
    fn only_paths_to_homekeys_sign_in_pages_are_returned_to() {
        for good in [
            "/_homekey/oauth2/authorize?client_id=x&state=y",
            "/_homekey/account/",
            "/_homekey/account/?action=org.matrix.profile",
            "/_homekey/device/?user_code=ABCD",
            "/_homekey/oauth2/authorize?redirect_uri=https://app.example/cb",
        ] {
            assert_eq!(checked_return(good), Some(good), "{good}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/_homekey/account/",
            "/_homekey/account//evil.example",
            "/\\evil.example",
            "/_homekey/oauth2/sign-in",
            "/_homekey/account/\n",
            "/_homekey/oauth2/authorize",
            "",
        ] {
            assert_eq!(checked_return(bad), None, "{bad:?}");
        }
    }
}
