//! `GET /.well-known/openid-configuration`: what Synapse passes on to clients as its
//! `auth_metadata` (and in `/.well-known/matrix/client`), and the account page it names.
//!
//! Synapse needs `issuer` and `account_management_uri`. The document names no OAuth endpoint
//! (authorization, token, registration…): homekey serves none yet, and without them an
//! OAuth-aware client knows that the OAuth login is not offered and uses `/login`. It lists
//! the actions the account page (`crate::web::account`) offers by deep link.

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
        Documents {
            openid_configuration: json!({
                "issuer": issuer,
                "account_management_uri": account_management_uri,
                "account_management_actions_supported":
                    crate::web::account::SUPPORTED_ACTIONS,
            }),
        }
    }
}

pub(super) async fn openid_configuration(State(state): State<SynapseState>) -> Json<Value> {
    Json(state.documents.openid_configuration.clone())
}
