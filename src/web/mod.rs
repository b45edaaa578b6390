//! homekey's web pages: server-rendered HTML with plain forms, no script, no asset from
//! elsewhere. Today the account page (beside Synapse, what `account_management_uri` names);
//! built so that an admin console can reuse it:
//!
//! - [`session`]: the server-side session in homekey's database, its cookie, its CSRF token.
//! - [`render`]: the embedded templates (autoescaped) and the security headers of every page.
//! - [`page`]: what every group of pages shares: the form, the context, the answers.
//! - [`branding`]: the operator's name, logo, colour and links on every page (`branding:`).
//! - [`account`]: the account page's group of pages (sign-in, the MSC4191 actions, the
//!   e-mail addresses in `account::emails`).
//! - [`authorize`]: the OAuth 2.0 authorization's pages (sign-in, consent).
//! - [`sign_up`]: the authorization's sign-up page (`prompt=create`).
//! - [`device`]: the device authorization grant's page (a device's code approved).
//! - [`password_reset`]: the page a mailed password reset link opens (standalone too).
//! - [`sign_up_email`]: the page a sign-up's mailed link opens (standalone too).
//! - [`recovery`]: "Forgot password?" and the page a mailed reset link opens.
//! - [`admin`]: the admin console, on a listener of its own (`admin_console:`).
//!
//! As every entry point, a page parses its form, calls one method of the account service
//! (`Accounts`), and renders the result; a refusal is the page again with a message.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod branding;
pub mod device;
pub mod page;
pub mod password_reset;
pub mod recovery;
pub mod render;
pub mod session;
pub mod sign_up;
pub mod sign_up_email;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::accounts::Accounts;
use crate::store::Flavour;

/// Where homekey's pages share their stylesheet.
pub const STYLESHEET_PATH: &str = "/_homekey/static/page.css";
/// The accent colour's stylesheet (`branding.accent_color`, or homekey's own).
pub const BRAND_STYLESHEET_PATH: &str = "/_homekey/static/brand.css";

/// What the pages reach.
#[derive(Clone)]
pub struct WebState {
    pub accounts: Arc<Accounts>,
    pub sessions: session::SessionStore,
    pub renderer: Arc<render::Renderer>,
}

impl WebState {
    pub fn new(accounts: Arc<Accounts>) -> WebState {
        // The cookie is `Secure` unless the pages are reached over plain HTTP.
        let secure = !accounts
            .config
            .public_baseurl
            .as_deref()
            .is_some_and(|url| url.starts_with("http://"));
        WebState {
            sessions: session::SessionStore::new(accounts.web_sessions(), secure),
            renderer: Arc::new(render::Renderer::for_config(&accounts.config)),
            accounts,
        }
    }
}

/// homekey's static files: the stylesheets, and the operator's logo if there is one.
fn static_routes(state: &WebState) -> Router<WebState> {
    let router = Router::new()
        .route(STYLESHEET_PATH, get(render::stylesheet))
        .route(BRAND_STYLESHEET_PATH, get(branding::stylesheet));
    match &state.accounts.config.branding.logo {
        Some(logo) => router.route(
            &format!(
                "/{}{}",
                branding::STATIC_DIR,
                branding::logo_name(logo.kind.extension())
            ),
            get(branding::logo),
        ),
        None => router,
    }
}

/// The account page's routes under `path` (which ends with '/'), for a router of any state,
/// with the security headers on every answer.
pub fn account_routes<S: Clone + Send + Sync + 'static>(
    accounts: Arc<Accounts>,
    path: &str,
) -> Router<S> {
    let state = WebState::new(accounts);
    if state.accounts.flavour() == Flavour::Synapse {
        // Synapse's own database: no homekey schema (no sessions to keep) and no Synapse
        // served (its users manage their accounts through Synapse). Every page says so.
        return Router::new()
            .route(path, any(account::on_a_synapse_database))
            .route(
                &format!("{path}{{*rest}}"),
                any(account::on_a_synapse_database),
            )
            .route(
                authorize::AUTHORIZE_PATH,
                any(account::on_a_synapse_database),
            )
            .route(
                device::DEVICE_PAGE_PATH,
                any(account::on_a_synapse_database),
            )
            .merge(static_routes(&state))
            .layer(axum::middleware::map_response(render::security_headers))
            .with_state(state);
    }
    Router::new()
        .route(path, get(account::page))
        .route(&format!("{path}sign-in"), post(account::sign_in))
        .route(&format!("{path}sign-out"), post(account::sign_out))
        .route(&format!("{path}password"), post(account::change_password))
        .route(&format!("{path}session-end"), post(account::end_session))
        .route(&format!("{path}deactivate"), post(account::deactivate))
        .route(
            &format!("{path}email-add"),
            post(account::emails::send_code),
        )
        .route(
            &format!("{path}email-confirm"),
            post(account::emails::confirm_code),
        )
        .route(
            &format!("{path}email-remove"),
            post(account::emails::remove),
        )
        .route(
            &format!("{path}cross-signing-reset"),
            post(account::cross_signing_reset),
        )
        .route(authorize::AUTHORIZE_PATH, get(authorize::authorize))
        .route(authorize::SIGN_IN_PATH, post(authorize::sign_in))
        .route(authorize::CONSENT_PATH, post(authorize::consent))
        .route(sign_up::SIGN_UP_PATH, post(sign_up::sign_up))
        .route(device::DEVICE_PAGE_PATH, get(device::page))
        .route(device::DEVICE_SIGN_IN_PATH, post(device::sign_in))
        .route(device::DEVICE_DECISION_PATH, post(device::decision))
        .merge(static_routes(&state))
        .layer(axum::middleware::map_response(render::security_headers))
        .with_state(state)
}

/// The pages of a mailed password reset link and of a sign-up's link, when the e-mail reset
/// is on (the sign-up's needs the same: `Accounts::sign_up_email_enabled`), with the security
/// headers; `with_static`: the stylesheets too (standalone, where no account page serves
/// them).
pub fn password_reset_routes<S: Clone + Send + Sync + 'static>(
    accounts: Arc<Accounts>,
    with_static: bool,
) -> Router<S> {
    if !accounts.email_reset_enabled() {
        return Router::new();
    }
    let state = WebState::new(accounts);
    let router = Router::new()
        .route(
            crate::accounts::password_reset::SUBMIT_TOKEN_PATH,
            get(password_reset::confirmation).post(password_reset::confirm),
        )
        .route(
            crate::accounts::sign_up_email::SUBMIT_TOKEN_PATH,
            get(sign_up_email::confirmation).post(sign_up_email::confirm),
        );
    let router = if with_static {
        router.merge(static_routes(&state))
    } else {
        router
    };
    router
        .layer(axum::middleware::map_response(render::security_headers))
        .with_state(state)
}

/// "Forgot password?" and the reset link's page (`recovery`), when the config can send mail
/// (on its own too), with the security headers. Their stylesheets come with
/// [`password_reset_routes`] (on whenever these are: `Accounts::recovery_enabled`) or the
/// account page's routes.
pub fn recovery_routes<S: Clone + Send + Sync + 'static>(accounts: Arc<Accounts>) -> Router<S> {
    if !accounts.recovery_enabled() {
        return Router::new();
    }
    let state = WebState::new(accounts);
    Router::new()
        .route(
            recovery::FORGOT_PATH,
            get(recovery::forgot).post(recovery::send),
        )
        .route(
            recovery::RESET_PAGE_PATH,
            get(recovery::reset_form).post(recovery::reset),
        )
        .layer(axum::middleware::map_response(render::security_headers))
        .with_state(state)
}
