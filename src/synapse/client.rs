//! homekey's calls to Synapse's `/_synapse/mas/*` API, with the shared secret: the users and
//! devices of homekey's accounts made to exist in Synapse, and kept in line with homekey's
//! (`crate::accounts::beside_synapse` decides what to send; this module only sends it).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
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
#[derive(Debug, Clone, thiserror::Error)]
pub enum SynapseCallError {
    #[error("Synapse cannot be reached at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// Synapse answered, and refused (a wrong secret is 403; an unknown user 404; a bad
    /// request or a name it will not register 400, with its errcode).
    #[error("Synapse refused {call}: HTTP {status}{}", errcode.as_deref().map(|e| format!(" {e}")).unwrap_or_default())]
    Refused {
        call: &'static str,
        status: u16,
        errcode: Option<String>,
    },
}

impl SynapseCallError {
    /// A refusal an operator must look at: the shared secrets differ (403), or Synapse does
    /// not know a user homekey has (404). Retrying alone will not mend it.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            SynapseCallError::Refused {
                status: 403 | 404,
                ..
            }
        )
    }
}

/// Synapse's answer to `query_user`.
#[derive(Debug, Clone, Deserialize)]
pub struct SynapseUser {
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub is_deactivated: bool,
}

/// Synapse's answer to a forwarded request.
pub struct Forwarded {
    pub status: u16,
    pub content_type: Option<reqwest::header::HeaderValue>,
    pub body: axum::body::Bytes,
}

/// Whether `provision_user` made the user or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    AlreadyExisted,
}

/// Why Synapse will not let a localpart be registered (`is_localpart_available`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalpartRefusal {
    /// `M_USER_IN_USE`: Synapse has a user of that name.
    InUse,
    /// `M_EXCLUSIVE`: an application service's namespace holds it.
    Exclusive,
    /// `M_INVALID_USERNAME` (or another refusal), with Synapse's errcode.
    Invalid(String),
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

    /// Where Synapse is, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Makes the user exist in Synapse or updates it (`provision_user`): `set_displayname`
    /// only when given, `locked` when given.
    pub async fn provision_user(
        &self,
        localpart: &str,
        displayname: Option<&str>,
        locked: Option<bool>,
    ) -> Result<Provisioned, SynapseCallError> {
        let mut body = json!({ "localpart": localpart });
        if let Some(name) = displayname {
            body["set_displayname"] = json!(name);
        }
        if let Some(locked) = locked {
            body["locked"] = json!(locked);
        }
        let (status, _) = self.post("provision_user", body).await?;
        Ok(if status == 201 {
            Provisioned::Created
        } else {
            Provisioned::AlreadyExisted
        })
    }

    /// Makes `emails` the user's e-mail addresses in Synapse (none: every one removed).
    pub async fn set_emails(
        &self,
        localpart: &str,
        emails: &[String],
    ) -> Result<(), SynapseCallError> {
        let body = if emails.is_empty() {
            json!({"localpart": localpart, "unset_emails": true})
        } else {
            json!({"localpart": localpart, "set_emails": emails})
        };
        self.post("provision_user", body).await?;
        Ok(())
    }

    /// The user as Synapse has it; `None` if Synapse has no such user.
    pub async fn query_user(
        &self,
        localpart: &str,
    ) -> Result<Option<SynapseUser>, SynapseCallError> {
        let response = self
            .send(
                self.http
                    .get(self.url("query_user"))
                    .query(&[("localpart", localpart)]),
            )
            .await?;
        match response.status().as_u16() {
            200 => response
                .json()
                .await
                .map(Some)
                .map_err(|err| self.unreadable(err)),
            404 => Ok(None),
            status => Err(refusal("query_user", status, response).await),
        }
    }

    /// Whether Synapse would register `localpart` (its rules, application services'
    /// namespaces, the names it has).
    pub async fn is_localpart_available(
        &self,
        localpart: &str,
    ) -> Result<Result<(), LocalpartRefusal>, SynapseCallError> {
        let response = self
            .send(
                self.http
                    .get(self.url("is_localpart_available"))
                    .query(&[("localpart", localpart)]),
            )
            .await?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(Ok(()));
        }
        match refusal("is_localpart_available", status, response).await {
            SynapseCallError::Refused {
                status: 400,
                errcode: Some(errcode),
                ..
            } => Ok(Err(match errcode.as_str() {
                "M_USER_IN_USE" => LocalpartRefusal::InUse,
                "M_EXCLUSIVE" => LocalpartRefusal::Exclusive,
                _ => LocalpartRefusal::Invalid(errcode),
            })),
            other => Err(other),
        }
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
        self.post("upsert_device", body).await.map(drop)
    }

    /// Synapse's own device deletion: the device, its keys, its inbox, and the device-list
    /// update other users' clients see.
    pub async fn delete_device(
        &self,
        localpart: &str,
        device_id: &str,
    ) -> Result<(), SynapseCallError> {
        self.post(
            "delete_device",
            json!({ "localpart": localpart, "device_id": device_id }),
        )
        .await
        .map(drop)
    }

    /// Makes the user's devices in Synapse exactly `device_ids`: the others deleted, the
    /// missing ones created.
    pub async fn sync_devices(
        &self,
        localpart: &str,
        device_ids: &[String],
    ) -> Result<(), SynapseCallError> {
        self.post(
            "sync_devices",
            json!({ "localpart": localpart, "devices": device_ids }),
        )
        .await
        .map(drop)
    }

    /// Synapse's full deactivation (devices, keys, rooms left; with `erase`, the user's
    /// messages hidden from new members).
    pub async fn delete_user(&self, localpart: &str, erase: bool) -> Result<(), SynapseCallError> {
        self.post(
            "delete_user",
            json!({ "localpart": localpart, "erase": erase }),
        )
        .await
        .map(drop)
    }

    pub async fn reactivate_user(&self, localpart: &str) -> Result<(), SynapseCallError> {
        self.post("reactivate_user", json!({ "localpart": localpart }))
            .await
            .map(drop)
    }

    /// Changes the profile of a user Synapse has (`provision_user` with `set_`/`unset_`
    /// fields): `Some(Some(x))` sets, `Some(None)` clears, `None` leaves it.
    pub async fn update_profile(
        &self,
        localpart: &str,
        displayname: Option<Option<&str>>,
        avatar_url: Option<Option<&str>>,
    ) -> Result<(), SynapseCallError> {
        let mut body = json!({ "localpart": localpart });
        for (field, change) in [("displayname", displayname), ("avatar_url", avatar_url)] {
            match change {
                Some(Some(value)) => body[format!("set_{field}")] = json!(value),
                Some(None) => body[format!("unset_{field}")] = json!(true),
                None => {}
            }
        }
        self.post("provision_user", body).await.map(drop)
    }

    pub async fn set_displayname(
        &self,
        localpart: &str,
        displayname: &str,
    ) -> Result<(), SynapseCallError> {
        self.post(
            "set_displayname",
            json!({ "localpart": localpart, "displayname": displayname }),
        )
        .await
        .map(drop)
    }

    /// Lets the user replace their cross-signing master key without user-interactive auth
    /// for the next ten minutes (`allow_cross_signing_reset`, MSC4312): what Synapse's
    /// `m.oauth` stage of `/keys/device_signing/upload` waits for. 404: no such user.
    pub async fn allow_cross_signing_reset(&self, localpart: &str) -> Result<(), SynapseCallError> {
        self.post(
            "allow_cross_signing_reset",
            json!({ "localpart": localpart }),
        )
        .await
        .map(drop)
    }

    /// Passes a client's request on to Synapse's client listener as it came: its own
    /// `headers` (its token, never the shared secret), its path and query, its body; Synapse's
    /// status, content type and body come back. For the one request homekey routes but cannot
    /// answer itself (an appservice's device deletion: `crate::http::client::devices`).
    pub async fn forward(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
        body: axum::body::Bytes,
    ) -> Result<Forwarded, SynapseCallError> {
        let url = format!(
            "{}{}",
            self.endpoint,
            path_and_query.trim_start_matches('/')
        );
        let mut request = self.http.request(method, url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // `unreadable` drops the URL from the error: its query may hold the token.
        let answer = request.send().await.map_err(|err| self.unreadable(err))?;
        let status = answer.status().as_u16();
        let content_type = answer.headers().get(reqwest::header::CONTENT_TYPE).cloned();
        let body = answer.bytes().await.map_err(|err| self.unreadable(err))?;
        Ok(Forwarded {
            status,
            content_type,
            body,
        })
    }

    fn url(&self, call: &str) -> String {
        format!("{}_synapse/mas/{call}", self.endpoint)
    }

    /// POSTs `body` to `call`; the success status and body.
    async fn post(
        &self,
        call: &'static str,
        body: Value,
    ) -> Result<(u16, Value), SynapseCallError> {
        let response = self
            .send(self.http.post(self.url(call)).json(&body))
            .await?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(refusal(call, status, response).await);
        }
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SynapseCallError> {
        request
            .bearer_auth(self.secret.expose_secret())
            .send()
            .await
            .map_err(|err| self.unreadable(err))
    }

    fn unreadable(&self, err: reqwest::Error) -> SynapseCallError {
        SynapseCallError::Unreachable {
            endpoint: self.endpoint.clone(),
            // reqwest's message names the URL, which holds no secret.
            reason: err.without_url().to_string(),
        }
    }
}

/// A refusal with Synapse's errcode, when its body has one.
async fn refusal(call: &'static str, status: u16, response: reqwest::Response) -> SynapseCallError {
    let errcode = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|body| body["errcode"].as_str().map(str::to_owned));
    SynapseCallError::Refused {
        call,
        status,
        errcode,
    }
}
