//! The admin console (issue 28): server-rendered pages for server admins at
//! `/_homekey/admin/`, on a listener of its own (`admin_console:`, off unless enabled), on
//! the same session, rendering and design layer as the account page.
//!
//! What sets it apart from the account page:
//! - its own kind of session (`kind = 'admin'` in `homekey_web_sessions`) and cookie
//!   ([`COOKIE`]: `HttpOnly; SameSite=Strict; Path=/_homekey/admin`, `Secure` when its
//!   `public_url` is https), with the configured idle and absolute timeouts: browsers do not
//!   separate cookies by port, so the account page's cookie reaches this listener too, and
//!   must sign no one in here;
//! - the admin's flags read at every request ([`signed_in_admin`]): demoted, locked or
//!   deactivated, the session ends at once;
//! - every POST's `Origin` checked ([`origin_allowed`]) besides its CSRF token;
//! - stricter headers on every answer ([`security_headers`]).
//!
//! - [`sign_in`]: sign-in and sign-out.
//! - [`users`]: the users list and a user's page.
//! - [`create_user`]: creating an account.
//! - [`deliveries`]: mail not sent and work owed to Synapse, with "try again now".
//! - [`password`]: a user's password reset (typed, generated, or a mailed link), from the
//!   user's page.
//! - [`user_actions`]: the other actions of a user's page (admin flag, lock, deactivate,
//!   erase, reactivate, end a device).
//! - [`audit`]: the audit log, filtered.
//! - [`registration_tokens`]: registration tokens: made, changed, deleted.
//! - [`oauth_clients`]: the registered OAuth clients, and deleting one.

pub mod audit;
pub mod create_user;
pub mod deliveries;
pub mod oauth_clients;
pub mod password;
pub mod registration_tokens;
pub mod sign_in;
pub mod user_actions;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::WebState;
use super::page::Message;
use super::render::Renderer;
use super::session::{Session, SessionRules, SessionStore};
use crate::accounts::{Accounts, Actor, Requester};
use crate::config::admin_console::ADMIN_PATH;
use crate::store::User;

/// The console's cookie.
pub const COOKIE: &str = "homekey_admin";
/// The console's cookie's path.
pub const COOKIE_PATH: &str = "/_homekey/admin";
/// The console's kind of session in `homekey_web_sessions`.
pub const SESSION_KIND: &str = "admin";

/// The Content-Security-Policy of every answer of the console.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'";

/// The console's routes, with its headers on every answer (its stylesheets included).
pub fn routes(accounts: Arc<Accounts>) -> Router {
    let console = &accounts.config.admin_console;
    let rules = SessionRules {
        cookie: COOKIE,
        path: COOKIE_PATH,
        same_site: "Strict",
        idle_ms: console.idle_ms,
        lifetime_ms: console.lifetime_ms,
    };
    let sessions = SessionStore::with_rules(
        accounts.web_sessions().of_kind(SESSION_KIND),
        console.secure(),
        rules,
    );
    let state = WebState {
        sessions,
        // The console's own origin: its stylesheets are under its host's root.
        renderer: Arc::new(Renderer::for_console(&accounts.config)),
        accounts,
    };
    Router::new()
        .route(ADMIN_PATH, get(users::list))
        .route(&format!("{ADMIN_PATH}user"), get(users::user))
        .route(&format!("{ADMIN_PATH}sign-in"), post(sign_in::sign_in))
        .route(&format!("{ADMIN_PATH}sign-out"), post(sign_in::sign_out))
        .route(
            &format!("{ADMIN_PATH}reset-password"),
            post(password::reset),
        )
        .route(
            &format!("{ADMIN_PATH}send-reset-link"),
            post(password::send_link),
        )
        .route(&format!("{ADMIN_PATH}deliveries"), get(deliveries::page))
        .route(
            &format!("{ADMIN_PATH}retry-mail"),
            post(deliveries::retry_mail),
        )
        .route(
            &format!("{ADMIN_PATH}retry-synapse"),
            post(deliveries::retry_synapse),
        )
        .route(
            &format!("{ADMIN_PATH}new-user"),
            get(create_user::form).post(create_user::create),
        )
        .route(
            &format!("{ADMIN_PATH}set-admin"),
            post(user_actions::set_admin),
        )
        .route(
            &format!("{ADMIN_PATH}set-locked"),
            post(user_actions::set_locked),
        )
        .route(
            &format!("{ADMIN_PATH}deactivate"),
            post(user_actions::deactivate),
        )
        .route(&format!("{ADMIN_PATH}erase"), post(user_actions::erase))
        .route(
            &format!("{ADMIN_PATH}reactivate"),
            post(user_actions::reactivate),
        )
        .route(
            &format!("{ADMIN_PATH}end-device"),
            post(user_actions::end_device),
        )
        .route(&format!("{ADMIN_PATH}audit"), get(audit::page))
        .route(
            &format!("{ADMIN_PATH}registration-tokens"),
            get(registration_tokens::page),
        )
        .route(
            &format!("{ADMIN_PATH}create-registration-token"),
            post(registration_tokens::create),
        )
        .route(
            &format!("{ADMIN_PATH}update-registration-token"),
            post(registration_tokens::update),
        )
        .route(
            &format!("{ADMIN_PATH}delete-registration-token"),
            post(registration_tokens::delete),
        )
        .route(
            &format!("{ADMIN_PATH}oauth-clients"),
            get(oauth_clients::page),
        )
        .route(
            &format!("{ADMIN_PATH}delete-oauth-client"),
            post(oauth_clients::delete),
        )
        .merge(super::static_routes(&state))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found.").into_response()
}

/// The headers of every answer of the console.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether a POST's `Origin` is the console's: `public_url`'s origin when set; otherwise
/// the request's own `Host`, which must be a loopback name (an SSH tunnel on any local port
/// works; a DNS rebinding, whose Host is the attacker's name, does not).
pub fn origin_allowed(state: &WebState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    if let Some(public_url) = &state.accounts.config.admin_console.public_url {
        return origin == public_url.origin().ascii_serialization();
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let authority = match (origin.host_str(), origin.port()) {
        (Some(name), Some(port)) => format!("{name}:{port}"),
        (Some(name), None) => name.to_owned(),
        _ => return false,
    };
    let loopback = match url::Url::parse(&format!("http://{host}/")) {
        Ok(url) => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        Err(_) => false,
    };
    matches!(origin.scheme(), "http" | "https")
        && origin.path() == "/"
        && authority.eq_ignore_ascii_case(host)
        && loopback
}

/// The session's admin, if signed in and still an admin whose account can act (read anew
/// at every request); otherwise the session is ended, and a new one not signed in
/// returned with why. `Err`: the database could not be read.
pub async fn signed_in_admin(
    state: &WebState,
    session: Session,
) -> Result<(Session, Option<User>, Message), Response> {
    let Some(user_id) = session.user_id.clone() else {
        return Ok((session, None, Message::None));
    };
    let user = state
        .accounts
        .get_user(&user_id)
        .await
        .map_err(|err| super::page::unavailable(state, err))?;
    match user {
        Some(user) if user.admin && !user.deactivated && !user.locked => {
            Ok((session, Some(user), Message::None))
        }
        _ => {
            let unavailable = |err| super::page::unavailable(state, err);
            state.sessions.end(&session).await.map_err(unavailable)?;
            let fresh = state
                .sessions
                .begin_anonymous()
                .await
                .map_err(unavailable)?;
            let message = Message::Error(
                "Your session has ended: this account can no longer use the admin console.".into(),
            );
            Ok((fresh, None, message))
        }
    }
}

/// A page's reader: the session's admin, or `Err` with the answer instead (the sign-in
/// page, saying why when a session just ended; or the database's unavailability).
pub(super) async fn admin_for_page(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<(Session, User), Response> {
    let session = state
        .sessions
        .find_or_begin(headers)
        .await
        .map_err(|err| super::page::unavailable(state, err))?;
    let (session, admin, message) = signed_in_admin(state, session).await?;
    match admin {
        Some(admin) => Ok((session, admin)),
        None => Err(sign_in::page(state, &session, StatusCode::OK, "", message)),
    }
}

/// A form's sender: its `Origin` and CSRF token checked, then the session's admin, and the
/// admin as the actor of what the form asks (acting from `address`, which the audit
/// records); or `Err` with the answer instead (the refusal, or the sign-in page: nothing
/// was done).
pub(super) async fn admin_for_post(
    state: &WebState,
    address: &str,
    headers: &HeaderMap,
    body: &axum::body::Bytes,
) -> Result<(Session, User, super::page::Form, Actor), Response> {
    let (session, form) = sign_in::checked_post(state, headers, body).await?;
    let (session, admin, message) = signed_in_admin(state, session).await?;
    match admin {
        Some(admin) => {
            let requester = Requester::on_page(&admin, session.id_hash()).from_address(address);
            Ok((session, admin, form, Actor::Admin(requester)))
        }
        None => Err(sign_in::page(
            state,
            &session,
            StatusCode::FORBIDDEN,
            "",
            message,
        )),
    }
}
