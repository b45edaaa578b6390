//! `POST /account/password` and `POST /account/deactivate`, both behind user-interactive auth.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::PasswordChangeError;
use crate::accounts::interactive_auth::{Operation, UiAuthError};
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::MatrixError;
use crate::http::interactive_auth::parse_auth;
use crate::http::json::MatrixJson;
use crate::password::policy::within_length_limit;
use crate::password::{MAX_PASSWORD_LENGTH, PasswordPolicy};

/// Where a session keeps a new password sent before the authentication was complete (the
/// key is Synapse's), and the `logout_devices` that came with it.
const SESSION_PASSWORD_HASH: &str = "password_hash";
const SESSION_LOGOUT_DEVICES: &str = "logout_devices";

#[derive(Deserialize)]
pub struct PasswordBody {
    auth: Option<Value>,
    /// A JSON value until checked: a wrong type gets an error that never echoes it.
    new_password: Option<Value>,
    logout_devices: Option<bool>,
}

pub async fn change_password(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
    OriginalUri(uri): OriginalUri,
    MatrixJson(body): MatrixJson<PasswordBody>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    let new_password = match body.new_password {
        None | Some(Value::Null) => None,
        Some(Value::String(password)) => Some(password),
        Some(_) => return Err(MatrixError::bad_json("Invalid value for 'new_password'")),
    };
    // As Synapse: the new password is judged before the authentication, on every request.
    if let Some(password) = &new_password {
        // Synapse's errcode (its body model's `max_length=512` fails as M_BAD_JSON); unlike
        // Synapse's message, which quotes the start of the password, this one does not.
        if !within_length_limit(password) {
            return Err(MatrixError::bad_json(format!(
                "'new_password' may have at most {MAX_PASSWORD_LENGTH} characters"
            )));
        }
        PasswordPolicy::new(accounts.config.password.policy.clone())
            .check(password)
            .map_err(|violation| {
                MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    violation.errcode,
                    violation.message,
                )
            })?;
    }
    let operation = Operation {
        method: "POST",
        path: uri.path(),
        description: "modify your account password",
    };
    let auth = parse_auth(body.auth)?;
    let authorised = match accounts
        .user_interactive_auth(&requester, auth, operation)
        .await
    {
        Ok(authorised) => authorised,
        Err(UiAuthError::Incomplete {
            session_id,
            flows,
            completed,
            failure,
        }) => {
            // Keep what came with this request for the one that completes the session, which
            // may not repeat it (the password only as a hash, as Synapse does).
            let mut keep = serde_json::Map::new();
            if let Some(password) = new_password {
                let hash = accounts
                    .hasher
                    .hash(SecretString::from(password))
                    .await
                    .map_err(|err| MatrixError::internal("hashing failed", &err))?;
                let hash = secrecy::ExposeSecret::expose_secret(&hash).to_owned();
                keep.insert(SESSION_PASSWORD_HASH.into(), json!(hash));
            }
            if let Some(logout_devices) = body.logout_devices {
                keep.insert(SESSION_LOGOUT_DEVICES.into(), json!(logout_devices));
            }
            if !keep.is_empty() {
                accounts.set_ui_auth_data(&session_id, keep).await?;
            }
            return Err(UiAuthError::Incomplete {
                session_id,
                flows,
                completed,
                failure,
            }
            .into());
        }
        Err(err) => return Err(err.into()),
    };
    let session_data = &authorised.session.serverdict;
    let new_hash = match new_password {
        Some(password) => accounts
            .hasher
            .hash(SecretString::from(password))
            .await
            .map_err(|err| MatrixError::internal("hashing failed", &err))?,
        None => session_data
            .get(SESSION_PASSWORD_HASH)
            .and_then(Value::as_str)
            .map(SecretString::from)
            .ok_or_else(|| MatrixError::missing_param("Missing params: password"))?,
    };
    let logout_devices = body
        .logout_devices
        .or_else(|| session_data.get(SESSION_LOGOUT_DEVICES)?.as_bool())
        .unwrap_or(true);
    accounts
        .change_own_password(&requester, &new_hash, logout_devices)
        .await
        .map_err(|err| match err {
            PasswordChangeError::Disabled => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            PasswordChangeError::Store(err) => err.into(),
        })?;
    accounts.finish_ui_auth(&authorised).await?;
    tracing::info!(user = %requester.user.name, logout_devices, "password changed by its user");
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub struct DeactivateBody {
    auth: Option<Value>,
    #[serde(default)]
    erase: bool,
    // `id_server` is ignored: homekey binds no third-party IDs to unbind.
}

pub async fn deactivate(
    State(state): State<AppState>,
    Authenticated(requester): Authenticated,
    OriginalUri(uri): OriginalUri,
    MatrixJson(body): MatrixJson<DeactivateBody>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    let operation = Operation {
        method: "POST",
        path: uri.path(),
        description: "deactivate your account",
    };
    let authorised = accounts
        .user_interactive_auth(&requester, parse_auth(body.auth)?, operation)
        .await?;
    accounts
        .deactivate_own_account(&requester, body.erase)
        .await?;
    accounts.finish_ui_auth(&authorised).await?;
    tracing::info!(user = %requester.user.name, erase = body.erase, "account deactivated by its user");
    Ok(Json(json!({"id_server_unbind_result": "success"})))
}
