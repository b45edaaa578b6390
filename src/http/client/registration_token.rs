//! `GET /_matrix/client/v1/register/m.login.registration_token/validity?token=…`: whether a
//! registration token would admit a sign-up now, answered as Synapse answers it
//! (`RegistrationTokenValidityRestServlet`): the rate limit first
//! (`rc_registration_token_validity`, per client address), then "Registration has been
//! disabled" unless `enable_registration`, then the token.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::client_address::ClientAddress;
use crate::http::error::MatrixError;

pub async fn validity(
    State(state): State<AppState>,
    ClientAddress(client_address): ClientAddress,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    accounts
        .count_token_validity_check(&client_address)
        .map_err(MatrixError::rate_limited)?;
    if !accounts.config.registration.enable_registration {
        return Err(MatrixError::new(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "Registration has been disabled",
        ));
    }
    let Some((_, token)) = query.iter().find(|(name, _)| name == "token") else {
        return Err(MatrixError::missing_param(
            "Missing string query parameter 'token'",
        ));
    };
    let valid = accounts.registration_token_is_valid(token).await?;
    Ok(Json(json!({ "valid": valid })))
}
