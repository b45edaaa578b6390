//! User-interactive auth over HTTP: the request's `auth` object in, the 401 with the flows out.

use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::login::{Identifier, login_name};
use super::error::MatrixError;
use super::json::parse_body;
use crate::accounts::interactive_auth::{AuthSubmission, ThreepidCreds, UiAuthError};

/// The `auth` object as sent. `type` and `password` stay JSON values until checked, so a
/// wrong type gets Synapse's error and a password is never echoed.
#[derive(Deserialize)]
struct AuthBody {
    #[serde(rename = "type")]
    stage: Option<Value>,
    session: Option<String>,
    identifier: Option<Identifier>,
    user: Option<String>,
    /// The deprecated top-level third-party ID.
    medium: Option<String>,
    address: Option<String>,
    password: Option<Value>,
    threepid_creds: Option<Value>,
    /// The older spelling, still sent by older Element.
    #[serde(rename = "threepidCreds")]
    threepid_creds_old: Option<Value>,
    /// `m.login.registration_token`'s.
    token: Option<Value>,
}

/// Reads a request's `auth`; absent and `null` both mean none (matrix-js-sdk sends `null`).
pub fn parse_auth(auth: Option<Value>) -> Result<Option<AuthSubmission>, MatrixError> {
    let auth = match auth {
        None | Some(Value::Null) => return Ok(None),
        Some(auth @ Value::Object(_)) => auth,
        Some(_) => return Err(MatrixError::bad_json("Invalid value for 'auth'")),
    };
    let body: AuthBody = parse_body(auth.to_string().as_bytes())?;
    let stage = match body.stage {
        None => None,
        Some(Value::String(stage)) => Some(stage),
        Some(_) => return Err(MatrixError::invalid_param("Bad parameter: type")),
    };
    // A stage that names nobody is Synapse's "Invalid login submission", but only once the
    // stage is checked: `{"session": …}` alone just asks where the session stands.
    let names_someone = body.identifier.is_some()
        || body.user.is_some()
        || (body.medium.is_some() && body.address.is_some());
    let user = if stage.is_some() && names_someone {
        Some(login_name(
            body.identifier,
            body.user,
            body.medium,
            body.address,
        )?)
    } else {
        None
    };
    let password = match body.password {
        Some(Value::String(password)) => Some(SecretString::from(password)),
        _ => None,
    };
    let threepid_creds = body
        .threepid_creds
        .or(body.threepid_creds_old)
        .and_then(|creds| {
            let text = |name: &str| creds.get(name)?.as_str().map(str::to_owned);
            Some(ThreepidCreds {
                sid: text("sid")?,
                client_secret: SecretString::from(text("client_secret")?),
            })
        });
    Ok(Some(AuthSubmission {
        session: body.session,
        stage,
        user,
        password,
        threepid_creds,
        token: body.token,
    }))
}

impl From<UiAuthError> for MatrixError {
    fn from(err: UiAuthError) -> MatrixError {
        match err {
            UiAuthError::Incomplete {
                session_id,
                flows,
                params,
                completed,
                failure,
            } => {
                let mut fields = Map::new();
                fields.insert("session".into(), json!(session_id));
                let flows: Vec<Value> = flows
                    .iter()
                    .map(|stages| json!({"stages": stages}))
                    .collect();
                fields.insert("flows".into(), json!(flows));
                fields.insert("params".into(), params);
                if let Some(completed) = completed {
                    fields.insert("completed".into(), json!(completed));
                }
                if let Some(failure) = failure {
                    fields.insert("errcode".into(), json!(failure.errcode()));
                    fields.insert("error".into(), json!(failure.message()));
                }
                MatrixError::interactive_auth(fields)
            }
            UiAuthError::UnknownSession(_) => {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", err.to_string())
            }
            UiAuthError::OperationChanged => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_UNKNOWN", err.to_string())
            }
            UiAuthError::OtherUser => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            UiAuthError::BadSubmission { errcode, message } => {
                MatrixError::new(StatusCode::BAD_REQUEST, errcode, message)
            }
            UiAuthError::RateLimited { retry_after_ms } => {
                MatrixError::rate_limited(retry_after_ms)
            }
            UiAuthError::Store(err) => err.into(),
            UiAuthError::Hash(err) => MatrixError::internal("hashing failed", &err),
        }
    }
}
