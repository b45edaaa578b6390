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
use crate::http::auth::{AuthenticatedForInteractiveAuth, MaybeAuthenticatedForInteractiveAuth};
use crate::http::client_address::ClientAddress;
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

/// The password change's one operation, whichever way the user proves who they are.
fn password_operation(path: &str) -> Operation<'_> {
    Operation {
        method: "POST",
        path,
        description: "modify your account password",
    }
}

/// A refusal of the new password, as Synapse answers it.
fn password_refusal(refusal: PasswordRefusal) -> MatrixError {
    match refusal {
        // Synapse's errcode (its body model's `max_length=512` fails as M_BAD_JSON); unlike
        // Synapse's message, which quotes the start of the password, this one does not.
        PasswordRefusal::TooLong => MatrixError::bad_json(format!(
            "'new_password' may have at most {MAX_PASSWORD_LENGTH} characters"
        )),
        other => other.into(),
    }
}

fn new_password(body: &mut PasswordBody) -> Result<Option<SecretString>, MatrixError> {
    match body.new_password.take() {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(password)) => Ok(Some(SecretString::from(password))),
        Some(_) => Err(MatrixError::bad_json("Invalid value for 'new_password'")),
    }
}

/// `POST /account/password`: with an access token, the user's own change behind
/// `m.login.password`; without one, the e-mail password reset ([`reset_by_email`]).
pub async fn change_password(
    State(state): State<AppState>,
    MaybeAuthenticatedForInteractiveAuth(requester): MaybeAuthenticatedForInteractiveAuth,
    ClientAddress(client_address): ClientAddress,
    OriginalUri(uri): OriginalUri,
    MatrixJson(mut body): MatrixJson<PasswordBody>,
) -> Result<Json<Value>, MatrixError> {
    let Some(requester) = requester else {
        return reset_by_email(&state, &client_address, uri.path(), body).await;
    };
    let accounts = &state.accounts;
    let new_password = new_password(&mut body)?;
    // As Synapse: the new password is judged before the authentication, on every request.
    if let Some(password) = &new_password {
        let actor = Actor::User(requester.clone());
        accounts
            .check_new_password(&actor, password)
            .map_err(password_refusal)?;
    }
    let operation = password_operation(uri.path());
    let auth = parse_auth(body.auth)?;
    let authorised = match accounts
        .user_interactive_auth(&requester, auth, operation)
        .await
    {
        Ok(authorised) => authorised,
        Err(UiAuthError::Incomplete {
            session_id,
            flows,
            params,
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
                params,
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

/// A token-less `POST /account/password`: `m.login.email.identity` (the mailed link
/// confirmed), then the account that has the address gets the new password. Unlike
/// Synapse, nothing is hashed before the e-mail stage has passed.
async fn reset_by_email(
    state: &AppState,
    client_address: &str,
    path: &str,
    mut body: PasswordBody,
) -> Result<Json<Value>, MatrixError> {
    let accounts = &state.accounts;
    let new_password = new_password(&mut body)?;
    if let Some(password) = &new_password {
        accounts
            .check_reset_password(password)
            .map_err(password_refusal)?;
    }
    let auth = parse_auth(body.auth)?;
    let proof = accounts
        .email_identity_auth(auth, password_operation(path), client_address)
        .await?;
    let user_id = accounts
        .reset_password_by_email(&proof, new_password, body.logout_devices)
        .await?;
    tracing::info!(user = %user_id, "password reset through a mailed link");
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
