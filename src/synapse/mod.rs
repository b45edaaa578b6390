//! Beside Synapse: homekey as the authentication service of a Synapse whose
//! `matrix_authentication_service` points at it, in the place of MAS
//! (`docs/BESIDE-SYNAPSE.md`). Served only when the config has a `synapse:` section.
//!
//! - [`caller`]: Synapse's calls, recognised by the shared secret.
//! - [`client`]: homekey's calls to Synapse (`/_synapse/mas/*`).
//! - [`introspection`]: `POST /oauth2/introspect`: what Synapse learns about a token.
//! - [`discovery`]: `GET /.well-known/openid-configuration`, naming the account page
//!   (`crate::web::account`, served here).
//! - [`setup`]: what Synapse's own homeserver.yaml must say (`generate-config --for-synapse`).

pub mod caller;
pub mod client;
pub mod discovery;
pub mod introspection;
pub mod setup;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::accounts::Accounts;
use crate::config::SynapseConfig;

/// Where Synapse asks about tokens (fixed by Synapse: `{endpoint}/oauth2/introspect`).
pub const INTROSPECTION_PATH: &str = "/oauth2/introspect";
/// Where Synapse reads the issuer and the account page (`{endpoint}/.well-known/…`).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// homekey's account page, under `public_baseurl`.
pub const ACCOUNT_PAGE_PATH: &str = "/_homekey/account/";

/// What the Synapse-facing handlers reach.
#[derive(Clone)]
pub struct SynapseState {
    accounts: Arc<Accounts>,
    caller: Arc<caller::SharedSecret>,
    documents: Arc<discovery::Documents>,
}

/// The routes Synapse (and, for the account page, its users) call, for a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(
    accounts: Arc<Accounts>,
    synapse: &SynapseConfig,
) -> Router<S> {
    let documents = discovery::Documents::new(&accounts.config);
    let state = SynapseState {
        caller: Arc::new(caller::SharedSecret::new(&synapse.secret)),
        documents: Arc::new(documents),
        accounts: accounts.clone(),
    };
    Router::new()
        .route(INTROSPECTION_PATH, post(introspection::introspect))
        .route(DISCOVERY_PATH, get(discovery::openid_configuration))
        .with_state(state)
        .merge(
            Router::new()
                .route(
                    crate::oauth::REGISTRATION_PATH,
                    post(crate::oauth::registration::register),
                )
                .route(
                    crate::oauth::REVOCATION_PATH,
                    post(crate::oauth::revocation::revoke),
                )
                .route(
                    crate::oauth::token::TOKEN_PATH,
                    post(crate::oauth::token::token),
                )
                .route(
                    crate::oauth::device_authorization::DEVICE_AUTHORIZATION_PATH,
                    post(crate::oauth::device_authorization::device_authorization),
                )
                .with_state(accounts.clone()),
        )
        .merge(crate::web::account_routes(accounts, ACCOUNT_PAGE_PATH))
}
