//! The account page (beside Synapse, what `account_management_uri` names): sign-in with the
//! user's own password, and the MSC4191 actions by their `?action=` deep link, with
//! `device_id` where it applies. Every change goes through the account service with the user
//! as actor, as the same change from the client API would (the password rule, the logout,
//! Synapse told at once).
//!
//! Every POST brings its session's CSRF token back (else 403 and the page again); a change
//! asks for the password again: a new password always; ending a session, deactivating the
//! account, allowing a cross-signing reset, adding or removing an e-mail address
//! ([`emails`]) unless the password was given in the last few minutes. Deactivation also
//! asks the user to type their user ID (or its localpart).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

pub mod emails;

use super::WebState;
use super::page::{
    Form, Message, SignInRefused, base, see_other, sign_in_with_password, signed_in, unavailable,
    unavailable_page, with, with_cookie,
};
use super::session::Session;
use crate::accounts::{AccountError, Actor, LoginError, PasswordRefusal, Requester};
use crate::http::client_address::ClientAddress;
use crate::store::{Device, User};
use crate::utc::format_utc_minutes;

/// The actions the page offers, as `account_management_actions_supported` lists them: the
/// names of the Matrix spec and MSC4191's earlier ones, which clients still send. The page
/// is served only with a `synapse:` section, so the cross-signing reset (MSC4312, which only
/// Synapse can allow) is always listed; where homekey serves no Synapse after all (on a
/// Synapse database) the page says so.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "org.matrix.profile",
    "org.matrix.devices_list",
    "org.matrix.device_view",
    "org.matrix.device_delete",
    "org.matrix.sessions_list",
    "org.matrix.session_view",
    "org.matrix.session_end",
    DEACTIVATE_ACTION,
    CROSS_SIGNING_RESET_ACTION,
];

/// MSC4191's deactivation of one's own account.
pub const DEACTIVATE_ACTION: &str = "org.matrix.account_deactivate";
/// MSC4312's approval of a cross-signing reset (Synapse's `m.oauth` UIA stage links here).
pub const CROSS_SIGNING_RESET_ACTION: &str = "org.matrix.cross_signing_reset";
/// How long Synapse lets the keys be replaced once homekey allows it
/// (`MasAllowCrossSigningResetResource.REPLACEMENT_PERIOD_MS`).
const CROSS_SIGNING_RESET_MINUTES: u32 = 10;

/// homekey's own action, not in the spec: the password form (clients do not link to it).
pub const PASSWORD_ACTION: &str = "password_change";

/// homekey's own action: the user's e-mail addresses (see, add, remove).
pub const EMAILS_ACTION: &str = "email_addresses";

/// One of the page's views.
#[derive(Debug, Clone, PartialEq, Eq)]
enum View {
    Profile,
    Password,
    Sessions,
    Session(String),
    EndSession(String),
    /// With what the user typed to confirm and whether they asked to be erased, kept when
    /// the form comes back.
    Deactivate {
        typed: String,
        erase: bool,
    },
    CrossSigningReset,
    /// The e-mail addresses, with the address being added as typed (kept when the form
    /// comes back).
    Emails {
        typed: String,
    },
    /// Removing one address: the confirmation (and the password again).
    RemoveEmail(String),
}

/// `?action=…&device_id=…`.
#[derive(Debug, Default)]
pub struct Link {
    action: Option<String>,
    device_id: Option<String>,
}

impl Link {
    /// The link of a query string, whatever it holds (the first of a name given twice;
    /// anything else ignored).
    fn of_query(query: Option<&str>) -> Link {
        Form::parse(query.unwrap_or("").as_bytes())
            .map(|form| form.link())
            .unwrap_or_default()
    }

    /// The account page's path with this link's query: where "Forgot password?" comes back
    /// to.
    fn path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [("action", &self.action), ("device_id", &self.device_id)] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                query.append_pair(name, value);
            }
        }
        let query = query.finish();
        let page = crate::synapse::ACCOUNT_PAGE_PATH;
        if query.is_empty() {
            page.to_owned()
        } else {
            format!("{page}?{query}")
        }
    }

    /// The view the link asks for, or why it names none.
    fn view(&self) -> Result<View, String> {
        let device = || {
            self.device_id
                .clone()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| "Which session? The link names no device.".to_owned())
        };
        match self.action.as_deref().unwrap_or("") {
            "" | "org.matrix.profile" => Ok(View::Profile),
            PASSWORD_ACTION => Ok(View::Password),
            "org.matrix.sessions_list" | "org.matrix.devices_list" => Ok(View::Sessions),
            "org.matrix.session_view" | "org.matrix.device_view" => Ok(View::Session(device()?)),
            "org.matrix.session_end" | "org.matrix.device_delete" => {
                Ok(View::EndSession(device()?))
            }
            DEACTIVATE_ACTION => Ok(View::Deactivate {
                typed: String::new(),
                erase: false,
            }),
            CROSS_SIGNING_RESET_ACTION => Ok(View::CrossSigningReset),
            EMAILS_ACTION => Ok(View::Emails {
                typed: String::new(),
            }),
            other => Err(format!("This page does not offer “{other}”.")),
        }
    }

    /// The link itself, relative to the page (where sign-in leads).
    fn href(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(action) = self.action.as_deref().filter(|a| !a.is_empty()) {
            query.append_pair("action", action);
        }
        if let Some(device_id) = self.device_id.as_deref().filter(|d| !d.is_empty()) {
            query.append_pair("device_id", device_id);
        }
        let query = query.finish();
        if query.is_empty() {
            "./".to_owned()
        } else {
            format!("./?{query}")
        }
    }
}

impl Form {
    fn link(&self) -> Link {
        Link {
            action: self.get("action").map(str::to_owned),
            device_id: self.get("device_id").map(str::to_owned),
        }
    }
}

/// `GET /_homekey/account/`: the view the link asks for, or the sign-in form.
pub async fn page(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let link = Link::of_query(query.as_deref());
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let Some((session, user)) = signed_in(&state, session).await else {
        return unavailable(&state, "the account could not be read");
    };
    match user {
        None => sign_in_page(&state, &session, StatusCode::OK, &link, "", Message::None),
        Some(user) => match link.view() {
            Ok(view) => show(&state, &session, &user, view, StatusCode::OK, Message::None).await,
            Err(message) => {
                let error = Message::Error(message);
                show(
                    &state,
                    &session,
                    &user,
                    View::Profile,
                    StatusCode::NOT_FOUND,
                    error,
                )
                .await
            }
        },
    }
}

/// `POST sign-in`: the user's password, checked as a login checks it, under `rc_login`, but
/// opening no device; success replaces the session by a signed-in one and leads to the link
/// the user came with.
pub async fn sign_in(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return not_text(&state, &headers, None).await;
    };
    let link = form.link();
    let user_given = form.get("user").unwrap_or("").trim().to_owned();
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    if !session.csrf_matches(form.get("csrf")) {
        return csrf_refused(&state, session, &link).await;
    }
    match sign_in_with_password(&state, &address, &session, &form).await {
        Ok(signed_in) => see_other(&link.href(), signed_in.set_cookie.as_deref()),
        Err(SignInRefused::Again(status, message)) => {
            sign_in_page(&state, &session, status, &link, &user_given, message)
        }
        Err(SignInRefused::Answered(answer)) => answer,
    }
}

/// `POST sign-out`.
pub async fn sign_out(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return not_text(&state, &headers, Some(View::Profile)).await;
    };
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    if !session.csrf_matches(form.get("csrf")) {
        return csrf_refused(&state, session, &Link::default()).await;
    }
    if let Err(err) = state.sessions.end(&session).await {
        return unavailable(&state, err);
    }
    see_other("./", Some(&state.sessions.cleared_cookie()))
}

/// `POST password`: the current password again, the new one twice, and whether the other
/// devices are signed out; through `Accounts::set_password` with the user as actor.
pub async fn change_password(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return not_text(&state, &headers, Some(View::Password)).await;
    };
    let (session, user, requester) = match posted(&state, &headers, &form, View::Password).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let again = |error: Message| {
        let state = state.clone();
        let session = session.clone();
        let user = user.clone();
        async move {
            show(
                &state,
                &session,
                &user,
                View::Password,
                StatusCode::BAD_REQUEST,
                error,
            )
            .await
        }
    };
    let (Some(current), Some(new)) = (form.secret("current_password"), form.secret("new_password"))
    else {
        return again(Message::Error(
            "Enter your current password and the new one.".into(),
        ))
        .await;
    };
    if form.get("new_password") != form.get("new_password_again") {
        let error = "The two new passwords differ.".into();
        return again(Message::FieldError("new_password_again", error)).await;
    }
    if let Err(err) = state
        .accounts
        .verify_password_for_page(&user.name, current, &address)
        .await
    {
        let (status, message) = reconfirmation_refusal(err, "Your current password is not right.");
        let error = about_field(status, "current_password", message);
        return show(&state, &session, &user, View::Password, status, error).await;
    }
    let sign_out_others = form.get("sign_out_others") == Some("on");
    match state
        .accounts
        .set_password(&Actor::User(requester), &user.name, new, sign_out_others)
        .await
    {
        Ok(()) => {}
        Err(err) => {
            return refused_change(&state, &session, &user, View::Password, err).await;
        }
    }
    // The password, and with `sign_out_others` every other device and every other sign-in
    // to this page, changed in one transaction. Then a new session ID: whoever had learnt
    // the old one has nothing.
    let changed = if sign_out_others {
        "Your password was changed, and your other devices were signed out."
    } else {
        "Your password was changed."
    };
    let session = match state.sessions.renew(&session).await {
        Ok(renewed) => renewed,
        Err(err) => {
            tracing::warn!(error = %err, "the account page's session was not renewed after a password change");
            // Not kept under an ID that may have been learnt: signed out instead, and told.
            let _ = state.sessions.end(&session).await;
            let notice = Message::Notice(format!(
                "{changed} This page could not keep you signed in: sign in again with your new \
                 password."
            ));
            let response = sign_in_page(
                &state,
                &session,
                StatusCode::OK,
                &link_of(&View::Password),
                "",
                notice,
            );
            return with_cookie(response, Some(&state.sessions.cleared_cookie()));
        }
    };
    let notice = Message::Notice(changed.into());
    show(
        &state,
        &session,
        &user,
        View::Password,
        StatusCode::OK,
        notice,
    )
    .await
}

/// `POST session-end`: one of the user's devices signed out, through
/// `Accounts::delete_devices` (Synapse deletes it at once); the password again unless given
/// in the last few minutes.
pub async fn end_session(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return not_text(&state, &headers, Some(View::Sessions)).await;
    };
    let device_id = form.get("device_id").unwrap_or("").to_owned();
    let view = View::EndSession(device_id.clone());
    let (mut session, user, requester) = match posted(&state, &headers, &form, view.clone()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if device_id.is_empty() {
        let error = Message::Error("Which session? The form named no device.".into());
        return show(
            &state,
            &session,
            &user,
            View::Sessions,
            StatusCode::BAD_REQUEST,
            error,
        )
        .await;
    }
    if let Err(response) = reconfirm(&state, &mut session, &user, &form, &address, &view).await {
        return response;
    }
    match state.accounts.get_device(&user.name, &device_id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let error = Message::Error("You have no such session.".into());
            return show(
                &state,
                &session,
                &user,
                View::Sessions,
                StatusCode::NOT_FOUND,
                error,
            )
            .await;
        }
        Err(err) => return unavailable(&state, err),
    }
    if let Err(err) = state
        .accounts
        .delete_devices(
            &Actor::User(requester),
            &user.name,
            std::slice::from_ref(&device_id),
        )
        .await
    {
        return refused_change(&state, &session, &user, view, err).await;
    }
    let notice = Message::Notice(format!("Session {device_id} was signed out."));
    show(
        &state,
        &session,
        &user,
        View::Sessions,
        StatusCode::OK,
        notice,
    )
    .await
}

/// `POST deactivate`: the user's own account deactivated, through `Accounts::deactivate`
/// with the user as actor (the last-admin guard as everywhere; beside Synapse, Synapse's own
/// deactivation through the queue), after the password (unless given in the last few
/// minutes) and the user ID typed out. The session ends; a page says it is done.
pub async fn deactivate(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        let view = View::Deactivate {
            typed: String::new(),
            erase: false,
        };
        return not_text(&state, &headers, Some(view)).await;
    };
    let typed = form.get("confirm").unwrap_or("");
    // Synapse's `erase` (Element's "hide my messages from new joiners").
    let erase = form.get("erase") == Some("on");
    let view = View::Deactivate {
        typed: typed.to_owned(),
        erase,
    };
    let (mut session, user, requester) = match posted(&state, &headers, &form, view.clone()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !confirms_user(typed, &user.name) {
        let error = Message::FieldError(
            "confirm",
            format!(
                "To confirm, type your user ID ({}) exactly. Nothing was changed.",
                user.name
            ),
        );
        return show(
            &state,
            &session,
            &user,
            view,
            StatusCode::BAD_REQUEST,
            error,
        )
        .await;
    }
    if let Err(response) = reconfirm(&state, &mut session, &user, &form, &address, &view).await {
        return response;
    }
    if let Err(err) = state
        .accounts
        .deactivate(&Actor::User(requester), &user.name, erase)
        .await
    {
        return refused_change(&state, &session, &user, view, err).await;
    }
    tracing::info!(user = %user.name, erase, "account deactivated by its user on the account page");
    if let Err(err) = state.sessions.end(&session).await {
        // The account can no longer act: `signed_in` ends this session at its next request.
        tracing::warn!(error = %err, "the account page's session was not ended after a deactivation");
    }
    let context = with(
        base(&state, &session, None, Message::None),
        json!({"deactivated_user_id": user.name, "erased": erase}),
    );
    let response = state
        .renderer
        .page(StatusCode::OK, "deactivated.html", context);
    with_cookie(response, Some(&state.sessions.cleared_cookie()))
}

/// Whether `typed` is `user_id` or its localpart, exactly.
fn confirms_user(typed: &str, user_id: &str) -> bool {
    let localpart = crate::ids::UserId::parse(user_id).map(|id| id.localpart().to_owned());
    !typed.is_empty() && (typed == user_id || localpart.is_ok_and(|l| l == typed))
}

/// `POST cross-signing-reset`: after the password (unless given in the last few minutes),
/// homekey asks Synapse to let the user replace their cross-signing keys without UIA for the
/// next ten minutes (`Accounts::allow_cross_signing_reset`); the client then retries.
pub async fn cross_signing_reset(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return not_text(&state, &headers, Some(View::CrossSigningReset)).await;
    };
    let view = View::CrossSigningReset;
    let (mut session, user, requester) = match posted(&state, &headers, &form, view.clone()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Err(response) = reconfirm(&state, &mut session, &user, &form, &address, &view).await {
        return response;
    }
    if let Err(err) = state.accounts.allow_cross_signing_reset(&requester).await {
        return refused_change(&state, &session, &user, view, err).await;
    }
    let notice = Message::Notice(format!(
        "Approved. Go back to your client within {CROSS_SIGNING_RESET_MINUTES} minutes and \
         reset your cross-signing keys there."
    ));
    let context = with(
        base(&state, &session, Some(&user.name), notice),
        json!({"approved": true, "beside_synapse": true, "needs_password": false}),
    );
    let response = state
        .renderer
        .page(StatusCode::OK, "cross_signing_reset.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// The password given again to confirm `view`'s change, unless it was given in the last few
/// minutes (then noted as given now); `Err`: the form again with why.
async fn reconfirm(
    state: &WebState,
    session: &mut Session,
    user: &User,
    form: &Form,
    address: &str,
    view: &View,
) -> Result<(), Response> {
    if session.recently_verified() {
        return Ok(());
    }
    let refused = |status, message| show(state, session, user, view.clone(), status, message);
    let Some(password) = form.secret("password") else {
        let error = Message::FieldError("password", "Enter your password to confirm.".into());
        return Err(refused(StatusCode::BAD_REQUEST, error).await);
    };
    if let Err(err) = state
        .accounts
        .verify_password_for_page(&user.name, password, address)
        .await
    {
        let (status, message) = reconfirmation_refusal(err, "Your password is not right.");
        return Err(refused(status, about_field(status, "password", message)).await);
    }
    let _ = state.sessions.verified_now(session).await;
    Ok(())
}

/// The session of a POST whose CSRF token matched, with its signed-in user; `Err`: the
/// answer already (403, unavailable, or, not signed in (any more), a redirect to `view`,
/// which leads through sign-in).
async fn posted(
    state: &WebState,
    headers: &HeaderMap,
    form: &Form,
    view: View,
) -> Result<(Session, User, Requester), Response> {
    let session = state
        .sessions
        .find_or_begin(headers)
        .await
        .map_err(|err| unavailable(state, err))?;
    if !session.csrf_matches(form.get("csrf")) {
        let link = link_of(&view);
        return Err(csrf_refused(state, session, &link).await);
    }
    let (session, user) = signed_in(state, session)
        .await
        .ok_or_else(|| unavailable(state, "the account could not be read"))?;
    match user {
        Some(user) => {
            let requester = Requester::on_page(&user, session.id_hash());
            Ok((session, user, requester))
        }
        None => Err(see_other(&link_of(&view).href(), None)),
    }
}

/// The link that shows `view`.
fn link_of(view: &View) -> Link {
    let (action, device_id) = match view {
        View::Profile => ("org.matrix.profile", None),
        View::Password => (PASSWORD_ACTION, None),
        View::Sessions => ("org.matrix.sessions_list", None),
        View::Session(id) => ("org.matrix.session_view", Some(id.clone())),
        View::EndSession(id) => ("org.matrix.session_end", Some(id.clone())),
        View::Deactivate { .. } => (DEACTIVATE_ACTION, None),
        View::CrossSigningReset => (CROSS_SIGNING_RESET_ACTION, None),
        View::Emails { .. } | View::RemoveEmail(_) => (EMAILS_ACTION, None),
    };
    Link {
        action: Some(action.to_owned()),
        device_id,
    }
}

/// A form without its session's token: 403 and the page again (the sign-in form if not
/// signed in), with a message; nothing the form named is looked at before.
async fn csrf_refused(state: &WebState, session: Session, link: &Link) -> Response {
    let error = || {
        Message::Error(
            "This form had expired or did not come from this page. Nothing was changed; please \
             try again."
                .into(),
        )
    };
    match signed_in(state, session).await {
        Some((session, Some(user))) => {
            let view = link.view().unwrap_or(View::Profile);
            show(state, &session, &user, view, StatusCode::FORBIDDEN, error()).await
        }
        Some((session, None)) => {
            sign_in_page(state, &session, StatusCode::FORBIDDEN, link, "", error())
        }
        None => unavailable(state, "the account could not be read"),
    }
}

/// A form whose text is not UTF-8: 400 and `view` again (the sign-in form when `None` or
/// not signed in), with a message; nothing is changed.
async fn not_text(state: &WebState, headers: &HeaderMap, view: Option<View>) -> Response {
    let error = || {
        Message::Error(
            "The form held characters that are not valid text. Nothing was changed; please \
             type it again."
                .into(),
        )
    };
    let session = match state.sessions.find_or_begin(headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(state, err),
    };
    match (signed_in(state, session).await, view) {
        (Some((session, Some(user))), Some(view)) => {
            show(
                state,
                &session,
                &user,
                view,
                StatusCode::BAD_REQUEST,
                error(),
            )
            .await
        }
        (Some((session, _)), view) => {
            let link = view.as_ref().map(link_of).unwrap_or_default();
            sign_in_page(state, &session, StatusCode::BAD_REQUEST, &link, "", error())
        }
        (None, _) => unavailable(state, "the account could not be read"),
    }
}

/// What the user sees of a refused sign-in: one answer for a wrong password and an unknown
/// user.
pub(super) fn login_refusal(err: LoginError) -> (StatusCode, String) {
    match err {
        // Something typed that is no e-mail address names no account either.
        LoginError::InvalidCredentials | LoginError::BadAddress(_) => (
            StatusCode::UNAUTHORIZED,
            "Wrong user name, e-mail address or password.".into(),
        ),
        LoginError::Deactivated => (
            StatusCode::FORBIDDEN,
            "This account has been deactivated.".into(),
        ),
        LoginError::Locked => (StatusCode::FORBIDDEN, "This account is locked.".into()),
        // The pages name no device: only an API login meets it.
        LoginError::NulInText(_) => (StatusCode::BAD_REQUEST, err.to_string()),
        LoginError::PasswordLoginDisabled => (
            StatusCode::FORBIDDEN,
            "This server does not sign in with passwords.".into(),
        ),
        LoginError::RateLimited { retry_after_ms } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many attempts. Try again in {} seconds.",
                retry_after_ms.div_ceil(1000).max(1)
            ),
        ),
        err @ (LoginError::Synapse(_)
        | LoginError::NotAnnounced(_)
        | LoginError::Store(_)
        | LoginError::Hash(_)) => {
            tracing::warn!(error = %err, "the account page could not check a password");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong. Please try again later.".into(),
            )
        }
    }
}

/// What the user sees when the password given again to confirm a change is refused: a wrong
/// one is a mistake in the form (400, `wrong`), the rest as at sign-in.
fn reconfirmation_refusal(err: LoginError, wrong: &str) -> (StatusCode, String) {
    match login_refusal(err) {
        (StatusCode::UNAUTHORIZED, _) => (StatusCode::BAD_REQUEST, wrong.to_owned()),
        other => other,
    }
}

/// A refused password given again: beside its field when it was only wrong (400), at the
/// top of the page when it was refused for another reason (a limit, an outage).
fn about_field(status: StatusCode, field: &'static str, message: String) -> Message {
    if status == StatusCode::BAD_REQUEST {
        Message::FieldError(field, message)
    } else {
        Message::Error(message)
    }
}

/// `view` again, saying why the account service refused its change (a refused new password
/// beside its field).
async fn refused_change(
    state: &WebState,
    session: &Session,
    user: &User,
    view: View,
    err: AccountError,
) -> Response {
    let about_new_password = matches!(err, AccountError::Password(_));
    let (status, message) = account_refusal(err);
    let error = if about_new_password {
        Message::FieldError("new_password", message)
    } else {
        Message::Error(message)
    };
    show(state, session, user, view, status, error).await
}

/// What the user sees of a refused change.
fn account_refusal(err: AccountError) -> (StatusCode, String) {
    match err {
        AccountError::Password(PasswordRefusal::Policy(violation)) => (
            StatusCode::BAD_REQUEST,
            format!("The new password is too weak: {violation}."),
        ),
        AccountError::Password(refusal) => (
            StatusCode::BAD_REQUEST,
            format!("The new password was refused: {refusal}."),
        ),
        AccountError::PasswordChangeDisabled => (
            StatusCode::FORBIDDEN,
            "Passwords cannot be changed on this server.".into(),
        ),
        AccountError::LastAdmin(user) => (
            StatusCode::FORBIDDEN,
            format!(
                "{}. Nothing was changed.",
                crate::accounts::error::last_admin_refusal(&user)
            ),
        ),
        AccountError::NotBesideSynapse => (
            StatusCode::NOT_FOUND,
            "This server cannot do that from this page: homekey serves no Synapse here.".into(),
        ),
        AccountError::Synapse(err) => {
            tracing::warn!(error = %err, "Synapse did not take a change from the account page");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The homeserver could not be reached. Nothing was changed; please try again \
                 later."
                    .into(),
            )
        }
        err @ (AccountError::Store(_) | AccountError::Hash(_) | AccountError::SynapseBusy(_)) => {
            tracing::warn!(error = %err, "a change from the account page failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong. Please try again later.".into(),
            )
        }
        err => (StatusCode::BAD_REQUEST, format!("Refused: {err}.")),
    }
}

fn sign_in_page(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    link: &Link,
    user: &str,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, None, message),
        json!({
            "action": link.action.as_deref().unwrap_or(""),
            "device_id": link.device_id.as_deref().unwrap_or(""),
            "user": user,
            "forgot_url": super::recovery::forgot_url(state, &link.path()),
        }),
    );
    let response = state.renderer.page(status, "sign_in.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// A signed-in view.
async fn show(
    state: &WebState,
    session: &Session,
    user: &User,
    view: View,
    status: StatusCode,
    message: Message,
) -> Response {
    let base = |message| base(state, session, Some(&user.name), message);
    let response = match view {
        View::Profile => state.renderer.page(
            status,
            "profile.html",
            with(base(message), json!({"displayname": user.displayname})),
        ),
        View::Password => state.renderer.page(status, "password.html", base(message)),
        View::Deactivate { typed, erase } => state.renderer.page(
            status,
            "deactivate.html",
            with(
                base(message),
                json!({"needs_password": !session.recently_verified(), "typed": typed, "erase": erase}),
            ),
        ),
        View::CrossSigningReset => state.renderer.page(
            status,
            "cross_signing_reset.html",
            with(
                base(message),
                json!({
                    "approved": false,
                    "beside_synapse": state.accounts.beside_synapse(),
                    "needs_password": !session.recently_verified(),
                }),
            ),
        ),
        View::Emails { typed } => {
            let (addresses, waiting) = match (
                state.accounts.user_threepids(&user.name).await,
                state.accounts.waiting_email_code(&user.name).await,
            ) {
                (Ok(threepids), Ok(waiting)) => (threepids, waiting),
                (Err(err), _) | (_, Err(err)) => return unavailable(state, err),
            };
            let addresses: Vec<&str> = addresses
                .iter()
                .filter(|t| t.threepid.medium == crate::threepid::Medium::Email)
                .map(|t| t.threepid.address.as_str())
                .collect();
            state.renderer.page(
                status,
                "emails.html",
                with(
                    base(message),
                    json!({
                        "addresses": addresses,
                        "waiting": waiting,
                        "can_mail": state.accounts.can_mail_codes(),
                        "typed": typed,
                        "needs_password": !session.recently_verified(),
                    }),
                ),
            )
        }
        View::RemoveEmail(address) => state.renderer.page(
            status,
            "email_remove.html",
            with(
                base(message),
                json!({"address": address, "needs_password": !session.recently_verified()}),
            ),
        ),
        View::Sessions => match (
            state.accounts.list_devices(&user.name).await,
            state.accounts.session_apps(&user.name).await,
        ) {
            (Ok(devices), Ok(apps)) => {
                let devices: Vec<Value> = devices
                    .iter()
                    .map(|device| device_context(device, &apps))
                    .collect();
                state.renderer.page(
                    status,
                    "sessions.html",
                    with(base(message), json!({"devices": devices})),
                )
            }
            (Err(err), _) | (_, Err(err)) => return unavailable(state, err),
        },
        View::Session(device_id) | View::EndSession(device_id) => {
            let apps = match state.accounts.session_apps(&user.name).await {
                Ok(apps) => apps,
                Err(err) => return unavailable(state, err),
            };
            match state.accounts.get_device(&user.name, &device_id).await {
                Ok(Some(device)) => state.renderer.page(
                    status,
                    "session.html",
                    with(
                        base(message),
                        json!({
                            "device": device_context(&device, &apps),
                            "needs_password": !session.recently_verified(),
                        }),
                    ),
                ),
                Ok(None) => {
                    // A refusal already said (a forged form's 403) stays what it was.
                    let (status, message) = if status.is_success() {
                        let error = Message::Error("You have no such session.".into());
                        (StatusCode::NOT_FOUND, error)
                    } else {
                        (status, message)
                    };
                    return Box::pin(show(
                        state,
                        session,
                        user,
                        View::Sessions,
                        status,
                        message,
                    ))
                    .await;
                }
                Err(err) => return unavailable(state, err),
            }
        }
    };
    with_cookie(response, session.set_cookie.as_deref())
}

/// A device as the pages show it; `apps`: the OAuth sessions' apps by device (a device
/// without one is a password login's).
fn device_context(device: &Device, apps: &std::collections::HashMap<String, String>) -> Value {
    json!({
        "device_id": device.device_id,
        "app": apps.get(&device.device_id),
        "display_name": device.display_name.as_deref().unwrap_or(""),
        "last_seen": device.last_seen.map(format_utc_minutes).unwrap_or_default(),
        "ip": device.ip.as_deref().unwrap_or(""),
        "user_agent": device.user_agent.as_deref().unwrap_or(""),
    })
}

/// Every page of the account page where homekey runs on Synapse's own database.
pub async fn on_a_synapse_database(State(state): State<WebState>) -> Response {
    let reason = "This server's accounts are kept by Synapse itself here: homekey runs on \
                  Synapse's database, so this page cannot manage them. Manage your account \
                  in your Matrix client, or ask the server's operator.";
    unavailable_page(&state, Some(reason))
}

#[cfg(test)]
mod tests {
    use crate::utc::format_utc_minutes as utc_time;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(1_709_210_096_000), "2024-02-29 12:34 UTC");
    }
}
