//! `GET /.well-known/openid-configuration`: what Synapse passes on to clients as its
//! `auth_metadata` (and in `/.well-known/matrix/client`), and the account page it names.
//!
//! Synapse needs `issuer` and `account_management_uri`. The document names no OAuth endpoint
//! (authorization, token, registration…): homekey serves none yet, and without them an
//! OAuth-aware client knows that the OAuth login is not offered and uses `/login`. Nor does it
//! list `account_management_actions_supported`: the account page offers no action yet.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{ACCOUNT_PAGE_PATH, SynapseState};
use crate::config::Config;

/// The answers, made once from the config.
pub struct Documents {
    openid_configuration: Value,
    account_page: String,
}

impl Documents {
    pub fn new(config: &Config) -> Documents {
        // The config requires `public_baseurl` with a `synapse:` section; it ends with '/'.
        let issuer = config.public_baseurl.clone().unwrap_or_default();
        let account_management_uri =
            format!("{}{}", issuer.trim_end_matches('/'), ACCOUNT_PAGE_PATH);
        let contact = match &config.admin_contact {
            Some(contact) => format!("Contact the server's operator: {contact}"),
            None => "Contact the operator of this server.".to_owned(),
        };
        Documents {
            openid_configuration: json!({
                "issuer": issuer,
                "account_management_uri": account_management_uri,
            }),
            account_page: format!(
                "Your account on {server}\n\n\
                 Accounts on {server} are kept by homekey. Sign in and sign out with your Matrix \
                 client. To change anything else about your account (a forgotten password, \
                 deactivation), ask the server's operator.\n\n{contact}\n",
                server = config.server_name,
            ),
        }
    }
}

pub(super) async fn openid_configuration(State(state): State<SynapseState>) -> Json<Value> {
    Json(state.documents.openid_configuration.clone())
}

/// A plain page for now: the real account page comes later.
pub(super) async fn account_page(State(state): State<SynapseState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.documents.account_page.clone(),
    )
}
