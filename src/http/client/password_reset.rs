//! `POST /account/password/email/requestToken` (no access token): the first step of the
//! e-mail password reset of legacy clients, with Synapse's fields, errcodes and order of
//! checks. The rest of the flow is the link's page (`crate::web::password_reset`) and a
//! token-less `POST /account/password` (`super::account`).

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::accounts::password_reset::{RequestTokenError, TokenRequest};
use crate::http::AppState;
use crate::http::client_address::ClientAddress;
use crate::http::error::MatrixError;
use crate::http::json::MatrixJson;
use crate::threepid::Threepid;

/// The longest client secret (Synapse's `ClientSecretStr`).
const LONGEST_CLIENT_SECRET: usize = 255;

pub async fn request_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    ClientAddress(client_address): ClientAddress,
    body: Result<MatrixJson<Value>, MatrixError>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    // As Synapse: before the body is even read.
    if !accounts.email_reset_enabled() {
        tracing::warn!("a password reset by e-mail was asked for, but there is no email: config");
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Email-based password resets have been disabled on this server",
        ));
    }
    let MatrixJson(body) = body?;
    let request = parse(&body, client_address)?;
    if let Some(next_link) = &request.next_link {
        accounts.check_next_link(next_link)?;
    }
    let sid = accounts.request_password_reset_token(request).await?;
    Ok(Json(json!({ "sid": sid })))
}

/// The body's fields in Synapse's order (`EmailRequestTokenBody`): the first wrong one
/// answers. A client secret is never echoed.
fn parse(body: &Value, client_address: String) -> Result<TokenRequest, MatrixError> {
    let field = |name: &str| body.get(name).filter(|value| !value.is_null());
    let optional_text = |name: &str| match field(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(MatrixError::bad_json(format!("Invalid value for '{name}'"))),
    };
    let required = |name: &str| {
        field(name).ok_or_else(|| MatrixError::missing_param(format!("Missing parameter: {name}")))
    };
    let client_secret = match required("client_secret")? {
        Value::String(secret) if is_client_secret(secret) => secret.clone(),
        _ => return Err(MatrixError::bad_json("Invalid value for 'client_secret'")),
    };
    let id_server = optional_text("id_server")?;
    let id_access_token = optional_text("id_access_token")?;
    let next_link = optional_text("next_link")?;
    let send_attempt = match required("send_attempt")? {
        Value::Number(number) if number.is_i64() => number.as_i64().unwrap_or_default(),
        _ => return Err(MatrixError::bad_json("Invalid value for 'send_attempt'")),
    };
    if id_server.is_some() && id_access_token.is_none() {
        return Err(MatrixError::invalid_param(
            "id_access_token is required if an id_server is supplied.",
        ));
    }
    let email = match required("email")? {
        Value::String(email) => {
            Threepid::email(email).map_err(|err| MatrixError::invalid_param(err.to_string()))?
        }
        _ => return Err(MatrixError::bad_json("Invalid value for 'email'")),
    };
    Ok(TokenRequest {
        email,
        client_secret,
        send_attempt,
        next_link,
        client_address,
    })
}

/// The spec's client secret: 1 to 255 of `[0-9a-zA-Z.=_-]`.
pub(super) fn is_client_secret(secret: &str) -> bool {
    (1..=LONGEST_CLIENT_SECRET).contains(&secret.len())
        && secret
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".=_-".contains(&byte))
}

impl From<RequestTokenError> for MatrixError {
    fn from(err: RequestTokenError) -> MatrixError {
        match err {
            RequestTokenError::NextLinkRefused => MatrixError::invalid_param(err.to_string()),
            RequestTokenError::RateLimited { retry_after_ms } => {
                MatrixError::rate_limited(retry_after_ms)
            }
            RequestTokenError::ThreepidDenied => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_THREEPID_DENIED", err.to_string())
            }
            RequestTokenError::ThreepidInUse => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_IN_USE",
                err.to_string(),
            ),
            RequestTokenError::NotFound => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_NOT_FOUND",
                err.to_string(),
            ),
            RequestTokenError::Mail(ref cause) => {
                tracing::error!(error = %cause, "a validation mail could not be made");
                MatrixError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "M_UNKNOWN",
                    err.to_string(),
                )
            }
            RequestTokenError::Store(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secrets_follow_the_spec() {
        assert!(is_client_secret("foo.bar=baz_1-2"));
        assert!(!is_client_secret(""));
        assert!(!is_client_secret("a b"));
        assert!(!is_client_secret(&"a".repeat(256)));
    }
}
