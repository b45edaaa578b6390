//! `POST /register/email/requestToken` (no access token): the first step of a sign-up with a
//! verified e-mail address, read in Synapse's order and words
//! (`EmailRegisterRequestTokenRestServlet`). The link's page is `crate::web::sign_up_email`;
//! the stage, `POST /register` (`super::register`).

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::password_reset::is_client_secret;
use crate::accounts::password_reset::TokenRequest;
use crate::http::AppState;
use crate::http::client_address::ClientAddress;
use crate::http::error::MatrixError;
use crate::http::json::MatrixJson;
use crate::threepid::Threepid;

pub async fn request_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    ClientAddress(client_address): ClientAddress,
    body: Result<MatrixJson<Value>, MatrixError>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    // As Synapse: before the body is even read.
    if !accounts.sign_up_email_enabled() {
        tracing::warn!("Email registration has been disabled due to lack of email config");
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Email-based registration has been disabled on this server",
        ));
    }
    if !accounts.sign_up_enabled() {
        return Err(MatrixError::new(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "Registration is disabled on this homeserver",
        ));
    }
    let MatrixJson(body) = body?;
    let request = parse(&body, client_address)?;
    if let Some(next_link) = &request.next_link {
        accounts.check_next_link(next_link)?;
    }
    let sid = accounts.request_sign_up_token(request).await?;
    Ok(Json(json!({ "sid": sid })))
}

/// The body in Synapse's order: every missing parameter named at once, the client secret,
/// the address (canonical), then what Synapse takes as it comes (checked here: a
/// `send_attempt` that is not an integer, a `next_link` that is not a string). A client secret
/// is never echoed.
fn parse(body: &Value, client_address: String) -> Result<TokenRequest, MatrixError> {
    let Some(fields) = body.as_object() else {
        return Err(MatrixError::bad_json("Content not JSON."));
    };
    let absent: Vec<String> = ["client_secret", "email", "send_attempt"]
        .iter()
        .filter(|name| !fields.contains_key(**name))
        .map(|name| format!("'{name}'"))
        .collect();
    if !absent.is_empty() {
        // Python's repr of the list, as Synapse writes it.
        return Err(MatrixError::missing_param(format!(
            "Missing params: [{}]",
            absent.join(", ")
        )));
    }
    let client_secret = match &fields["client_secret"] {
        Value::String(secret) if is_client_secret(secret) => secret.clone(),
        _ => {
            return Err(MatrixError::invalid_param(
                "Invalid client_secret parameter",
            ));
        }
    };
    let email = match &fields["email"] {
        Value::String(email) => Threepid::email(email).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Unable to parse email address",
        )
    })?;
    let send_attempt = match &fields["send_attempt"] {
        Value::Number(number) if number.is_i64() => number.as_i64().unwrap_or_default(),
        _ => return Err(MatrixError::bad_json("Invalid value for 'send_attempt'")),
    };
    let next_link = match fields.get("next_link") {
        None | Some(Value::Null) => None,
        Some(Value::String(next_link)) => Some(next_link.clone()),
        Some(_) => return Err(MatrixError::bad_json("Invalid value for 'next_link'")),
    };
    Ok(TokenRequest {
        email,
        client_secret,
        send_attempt,
        next_link,
        client_address,
    })
}
