//! `GET /.well-known/openid-configuration`: what Synapse passes on to clients as its
//! `auth_metadata` (and in `/.well-known/matrix/client`), and the account page it names.
//!
//! Synapse needs `issuer` and `account_management_uri`; clients of the OAuth 2.0 API need
//! the endpoints and what they support (RFC 8414: matrix-rust-sdk refuses a document that
//! lacks any of them, matrix-js-sdk the registration endpoint). Synapse keeps the first
//! document it fetched until it restarts. It lists the actions the account page
//! (`crate::web::account`) offers by deep link. `prompt_values_supported: ["create"]` only
//! when sign-up is on (`enable_registration`; an address required is proved on the page by a
//! mailed code): it makes Element X and Element Web offer "Create account", which sends the
//! user to homekey's sign-up page (`web/sign_up.rs`).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{ACCOUNT_PAGE_PATH, SynapseState};
use crate::config::Config;

/// The answers, made once from the config.
pub struct Documents {
    openid_configuration: Value,
}

impl Documents {
    pub fn new(config: &Config) -> Documents {
        // The config requires `public_baseurl` with a `synapse:` section; it ends with '/'.
        let issuer = config.public_baseurl.clone().unwrap_or_default();
        let account_management_uri =
            format!("{}{}", issuer.trim_end_matches('/'), ACCOUNT_PAGE_PATH);
        let at = |path: &str| format!("{}{path}", issuer.trim_end_matches('/'));
        let mut openid_configuration = json!({
            "issuer": issuer,
            "authorization_endpoint": at(crate::web::authorize::AUTHORIZE_PATH),
            "token_endpoint": at(crate::oauth::token::TOKEN_PATH),
            "registration_endpoint": at(crate::oauth::REGISTRATION_PATH),
            "revocation_endpoint": at(crate::oauth::REVOCATION_PATH),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "device_authorization_endpoint":
                at(crate::oauth::device_authorization::DEVICE_AUTHORIZATION_PATH),
            "grant_types_supported": crate::oauth::client_metadata::GRANT_TYPES,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": crate::oauth::scope::SUPPORTED,
            "account_management_uri": account_management_uri,
            "account_management_actions_supported":
                crate::web::account::SUPPORTED_ACTIONS,
        });
        if config.registration.page_sign_up() {
            openid_configuration["prompt_values_supported"] = json!(["create"]);
        }
        Documents {
            openid_configuration,
        }
    }
}

pub(super) async fn openid_configuration(State(state): State<SynapseState>) -> Json<Value> {
    Json(state.documents.openid_configuration.clone())
}
