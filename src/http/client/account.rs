//! `POST /account/password` and `POST /account/deactivate`, both behind user-interactive auth.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::interactive_auth::{Operation, UiAuthError};
use crate::accounts::{AccountError, Actor, PasswordRefusal};
use crate::http::AppState;
use crate::http::auth::AuthenticatedForInteractiveAuth;
use crate::http::error::MatrixError;
use crate::http::interactive_auth::parse_auth;
use crate::http::json::MatrixJson;
use crate::password::MAX_PASSWORD_LENGTH;

#[derive(Deserialize)]
pub struct PasswordBody {
    auth: Option<Value>,
    /// A JSON value until checked: a wrong type gets an error that never echoes it.
    new_password: Option<Value>,
    logout_devices: Option<bool>,
}

pub async fn change_password(
    State(state): State<AppState>,
    AuthenticatedForInteractiveAuth(requester): AuthenticatedForInteractiveAuth,
    OriginalUri(uri): OriginalUri,
    MatrixJson(body): MatrixJson<PasswordBody>,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    let new_password = match body.new_password {
        None | Some(Value::Null) => None,
        Some(Value::String(password)) => Some(SecretString::from(password)),
        Some(_) => return Err(MatrixError::bad_json("Invalid value for 'new_password'")),
    };
    // As Synapse: the new password is judged before the authentication, on every request.
    if let Some(password) = &new_password {
        let actor = Actor::User(requester.clone());
        accounts
            .check_new_password(&actor, password)
            .map_err(|refusal| match refusal {
                // Synapse's errcode (its body model's `max_length=512` fails as M_BAD_JSON);
                // unlike Synapse's message, which quotes the start of the password, this one
                // does not.
                PasswordRefusal::TooLong => MatrixError::bad_json(format!(
                    "'new_password' may have at most {MAX_PASSWORD_LENGTH} characters"
                )),
                other => other.into(),
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
            accounts
                .keep_for_password_change(
                    &requester,
                    &session_id,
                    new_password,
                    body.logout_devices,
                )
                .await?;
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
    accounts
        .change_own_password(&requester, &authorised, new_password, body.logout_devices)
        .await?;
    tracing::info!(user = %requester.user.name, "password changed by its user");
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
    AuthenticatedForInteractiveAuth(requester): AuthenticatedForInteractiveAuth,
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
    let user_id = requester.user.name.clone();
    accounts
        .deactivate(&Actor::User(requester.clone()), &user_id, body.erase)
        .await
        .map_err(|err| {
            // A client's own request: the last admin is forbidden it (the Admin API answers
            // 400 M_FORBIDDEN, with the same reason).
            let forbidden = matches!(err, AccountError::LastAdmin(_));
            let mut err = MatrixError::from(err);
            if forbidden {
                err.status = StatusCode::FORBIDDEN;
            }
            err
        })?;
    accounts.finish_ui_auth(&authorised).await?;
    tracing::info!(user = %requester.user.name, erase = body.erase, "account deactivated by its user");
    Ok(Json(json!({"id_server_unbind_result": "success"})))
}
