//! homekey's calls to Synapse's `/_synapse/mas/*` API, with the shared secret: the user and
//! the device of a new session made to exist in Synapse before its token is handed out
//! (Synapse answers 401 for a device it does not have).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::config::SynapseConfig;

/// How long one call may take: a login waits for it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Synapse's internal API, as homekey calls it.
#[derive(Clone)]
pub struct SynapseClient {
    http: reqwest::Client,
    /// With a trailing slash.
    endpoint: String,
    secret: SecretString,
}

/// Why a call to Synapse did not do its work. Never holds the secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum SynapseCallError {
    #[error("Synapse cannot be reached at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// Synapse answered, and refused (a wrong secret is 403; an unknown user 404).
    #[error("Synapse refused {call}: HTTP {status}")]
    Refused { call: &'static str, status: u16 },
}

impl SynapseClient {
    pub fn new(config: &SynapseConfig) -> SynapseClient {
        SynapseClient {
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .no_proxy()
                .build()
                .expect("an HTTP client without TLS settings builds"),
            endpoint: config.endpoint.clone(),
            secret: config.secret.clone(),
        }
    }

    /// Makes the user exist in Synapse (`provision_user`): 201 created, 200 already there.
    pub async fn provision_user(&self, localpart: &str) -> Result<(), SynapseCallError> {
        self.post("provision_user", json!({ "localpart": localpart }))
            .await
    }

    /// Makes the device exist in Synapse (`upsert_device`): 201 created, 200 already there.
    pub async fn upsert_device(
        &self,
        localpart: &str,
        device_id: &str,
        display_name: Option<&str>,
    ) -> Result<(), SynapseCallError> {
        let mut body = json!({ "localpart": localpart, "device_id": device_id });
        if let Some(name) = display_name {
            body["display_name"] = json!(name);
        }
        self.post("upsert_device", body).await
    }

    async fn post(&self, call: &'static str, body: Value) -> Result<(), SynapseCallError> {
        let url = format!("{}_synapse/mas/{call}", self.endpoint);
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.secret.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|err| SynapseCallError::Unreachable {
                endpoint: self.endpoint.clone(),
                // reqwest's message names the URL, which holds no secret.
                reason: err.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(SynapseCallError::Refused {
            call,
            status: status.as_u16(),
        })
    }
}
