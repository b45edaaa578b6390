//! A client for any Synapse-compatible Admin API (homekey's or a real Synapse's), used by
//! `homekey admin …` and `register_new_matrix_user`.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::shared_secret::{RegistrationFields, registration_mac};

/// How long one request may take before the command gives up.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// The server answered with a Matrix error.
    #[error("{errcode}: {message} (HTTP {status}){}", hint(errcode))]
    Matrix {
        status: u16,
        errcode: String,
        message: String,
    },
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("{server} answered HTTP {status} without a Matrix error; is it a Matrix server?")]
    NotMatrix { server: String, status: u16 },
}

impl AdminClientError {
    pub fn errcode(&self) -> Option<&str> {
        match self {
            AdminClientError::Matrix { errcode, .. } => Some(errcode),
            _ => None,
        }
    }
}

/// A hint for the errors an operator meets most.
fn hint(errcode: &str) -> &'static str {
    match errcode {
        "M_FORBIDDEN" => "; hint: the token must be a server admin's",
        "M_UNKNOWN_TOKEN" => {
            "; hint: the token is no longer valid, log in again (homekey admin login)"
        }
        "M_MISSING_TOKEN" => {
            "; hint: give --token, set HOMEKEY_ACCESS_TOKEN or run homekey admin login"
        }
        "M_LIMIT_EXCEEDED" => "; hint: rate limited, try again shortly",
        "M_THREEPID_IN_USE" => "; hint: another account has this address",
        _ => "",
    }
}

/// One Admin API server, and the access token to use with it.
pub struct AdminClient {
    http: reqwest::Client,
    server: String,
    token: Option<SecretString>,
}

impl AdminClient {
    /// `server` is the base URL (`https://matrix.example.com`); a trailing `/` is ignored.
    pub fn new(server: &str, token: Option<SecretString>) -> AdminClient {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("homekey/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        AdminClient {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The URL of a path under the server, given as segments (each one encoded, so a user
    /// ID is one segment whatever it holds), with a query.
    fn url(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<reqwest::Url, AdminClientError> {
        let invalid = || AdminClientError::Unreachable {
            server: self.server.clone(),
            reason: "not a valid http(s) URL".into(),
        };
        let mut url = reqwest::Url::parse(&self.server).map_err(|_| invalid())?;
        url.path_segments_mut()
            .map_err(|_| invalid())?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// Sends one request and returns the JSON answer, or the server's Matrix error.
    async fn request(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, AdminClientError> {
        let mut request = self.http.request(method, self.url(segments, query)?);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |err: reqwest::Error| AdminClientError::Unreachable {
            server: self.server.clone(),
            // Without the URL: it may carry a token in a query string.
            reason: err.without_url().to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return value.ok_or(AdminClientError::NotMatrix {
                server: self.server.clone(),
                status: status.as_u16(),
            });
        }
        match value {
            Some(error) if error.get("errcode").is_some() => Err(AdminClientError::Matrix {
                status: status.as_u16(),
                errcode: error["errcode"].as_str().unwrap_or("").to_owned(),
                message: error["error"].as_str().unwrap_or("").to_owned(),
            }),
            _ => Err(AdminClientError::NotMatrix {
                server: self.server.clone(),
                status: status.as_u16(),
            }),
        }
    }

    /// Logs in with a password; returns the user ID and the new access token.
    pub async fn login(
        &self,
        user: &str,
        password: &SecretString,
    ) -> Result<(String, SecretString), AdminClientError> {
        let answer = self
            .request(
                reqwest::Method::POST,
                &["_matrix", "client", "v3", "login"],
                &[],
                Some(json!({
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password.expose_secret(),
                    "initial_device_display_name": "homekey admin",
                })),
            )
            .await?;
        let user_id = answer["user_id"].as_str().unwrap_or(user).to_owned();
        let token = answer["access_token"].as_str().unwrap_or_default();
        Ok((user_id, SecretString::from(token.to_owned())))
    }

    /// Ends the session of the client's token.
    pub async fn logout(&self) -> Result<(), AdminClientError> {
        self.request(
            reqwest::Method::POST,
            &["_matrix", "client", "v3", "logout"],
            &[],
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    pub async fn whoami(&self) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::GET,
            &["_matrix", "client", "v3", "account", "whoami"],
            &[],
            None,
        )
        .await
    }

    pub async fn reset_password(
        &self,
        user_id: &str,
        new_password: &SecretString,
        logout_devices: bool,
    ) -> Result<(), AdminClientError> {
        self.request(
            reqwest::Method::POST,
            &["_synapse", "admin", "v1", "reset_password", user_id],
            &[],
            Some(json!({
                "new_password": new_password.expose_secret(),
                "logout_devices": logout_devices,
            })),
        )
        .await
        .map(|_| ())
    }

    /// Mails the user a password reset link (homekey's own Admin API, not Synapse's);
    /// `logout_devices`: every device is signed out when the user sets the password. The
    /// answer names the addresses mailed (`sent_to`).
    pub async fn send_reset_link(
        &self,
        user_id: &str,
        logout_devices: bool,
    ) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::POST,
            &["_homekey", "api", "v1", "users", user_id, "send_reset_link"],
            &[],
            Some(json!({"logout_devices": logout_devices})),
        )
        .await
    }

    pub async fn get_user(&self, user_id: &str) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::GET,
            &["_synapse", "admin", "v2", "users", user_id],
            &[],
            None,
        )
        .await
    }

    /// Creates or modifies a user (`PUT /_synapse/admin/v2/users/<id>`).
    pub async fn put_user(&self, user_id: &str, body: Value) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::PUT,
            &["_synapse", "admin", "v2", "users", user_id],
            &[],
            Some(body),
        )
        .await
    }

    /// Every user the listing's query selects, page by page along `next_token`.
    pub async fn list_users(
        &self,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, AdminClientError> {
        let mut users = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let mut pairs: Vec<(&str, String)> = query.to_vec();
            if let Some(from) = &from {
                pairs.push(("from", from.clone()));
            }
            let page = self
                .request(
                    reqwest::Method::GET,
                    &["_synapse", "admin", "v2", "users"],
                    &pairs,
                    None,
                )
                .await?;
            users.extend(page["users"].as_array().cloned().unwrap_or_default());
            match page.get("next_token") {
                // Synapse sends a string; older versions an integer.
                Some(Value::String(next)) => from = Some(next.clone()),
                Some(Value::Number(next)) => from = Some(next.to_string()),
                _ => return Ok(users),
            }
        }
    }

    pub async fn set_admin(&self, user_id: &str, admin: bool) -> Result<(), AdminClientError> {
        self.request(
            reqwest::Method::PUT,
            &["_synapse", "admin", "v1", "users", user_id, "admin"],
            &[],
            Some(json!({ "admin": admin })),
        )
        .await
        .map(|_| ())
    }

    pub async fn deactivate(&self, user_id: &str, erase: bool) -> Result<(), AdminClientError> {
        self.request(
            reqwest::Method::POST,
            &["_synapse", "admin", "v1", "deactivate", user_id],
            &[],
            Some(json!({ "erase": erase })),
        )
        .await
        .map(|_| ())
    }

    pub async fn whois(&self, user_id: &str) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::GET,
            &["_synapse", "admin", "v1", "whois", user_id],
            &[],
            None,
        )
        .await
    }

    pub async fn devices(&self, user_id: &str) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::GET,
            &["_synapse", "admin", "v2", "users", user_id, "devices"],
            &[],
            None,
        )
        .await
    }

    /// Deletes these devices of the user, with their access tokens.
    pub async fn delete_devices(
        &self,
        user_id: &str,
        device_ids: &[String],
    ) -> Result<(), AdminClientError> {
        self.request(
            reqwest::Method::POST,
            &[
                "_synapse",
                "admin",
                "v2",
                "users",
                user_id,
                "delete_devices",
            ],
            &[],
            Some(json!({ "devices": device_ids })),
        )
        .await
        .map(|_| ())
    }

    /// The registration tokens, all or only the valid (`Some(true)`) or invalid ones.
    pub async fn registration_tokens(
        &self,
        valid: Option<bool>,
    ) -> Result<Value, AdminClientError> {
        let query: Vec<(&str, String)> = valid
            .map(|valid| ("valid", valid.to_string()))
            .into_iter()
            .collect();
        self.request(
            reqwest::Method::GET,
            &["_synapse", "admin", "v1", "registration_tokens"],
            &query,
            None,
        )
        .await
    }

    /// Makes a registration token (`POST …/registration_tokens/new`).
    pub async fn create_registration_token(&self, body: Value) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::POST,
            &["_synapse", "admin", "v1", "registration_tokens", "new"],
            &[],
            Some(body),
        )
        .await
    }

    /// One registration token; with a body, changed first (`PUT`).
    pub async fn registration_token(
        &self,
        token: &str,
        changes: Option<Value>,
    ) -> Result<Value, AdminClientError> {
        let method = match changes {
            Some(_) => reqwest::Method::PUT,
            None => reqwest::Method::GET,
        };
        self.request(
            method,
            &["_synapse", "admin", "v1", "registration_tokens", token],
            &[],
            changes,
        )
        .await
    }

    pub async fn delete_registration_token(&self, token: &str) -> Result<(), AdminClientError> {
        self.request(
            reqwest::Method::DELETE,
            &["_synapse", "admin", "v1", "registration_tokens", token],
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn server_version(&self) -> Result<Value, AdminClientError> {
        self.request(
            reqwest::Method::GET,
            &["_synapse", "admin", "v1", "server_version"],
            &[],
            None,
        )
        .await
    }

    /// Shared-secret registration: fetches a nonce, then registers with its MAC.
    pub async fn register_with_shared_secret(
        &self,
        shared_secret: &SecretString,
        username: &str,
        password: &SecretString,
        admin: bool,
        user_type: Option<&str>,
    ) -> Result<Value, AdminClientError> {
        let nonce = self
            .request(
                reqwest::Method::GET,
                &["_synapse", "admin", "v1", "register"],
                &[],
                None,
            )
            .await?;
        let nonce = nonce["nonce"].as_str().unwrap_or_default().to_owned();
        let mac = registration_mac(
            shared_secret,
            RegistrationFields {
                nonce: &nonce,
                username,
                password: password.expose_secret(),
                admin,
                user_type,
            },
        );
        self.request(
            reqwest::Method::POST,
            &["_synapse", "admin", "v1", "register"],
            &[],
            Some(json!({
                "nonce": nonce,
                "username": username,
                "password": password.expose_secret(),
                "mac": mac,
                "admin": admin,
                "user_type": user_type,
            })),
        )
        .await
    }
}
