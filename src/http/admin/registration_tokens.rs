//! Registration tokens for an admin: `/_synapse/admin/v1/registration_tokens…`, with
//! Synapse's checks in its order, its messages and its answers
//! (`synapse/rest/admin/registration_tokens.py`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::AdminRequester;
use crate::accounts::Actor;
use crate::accounts::registration_tokens::{
    DEFAULT_TOKEN_LENGTH, NewRegistrationToken, NewTokenText, RegistrationTokenError,
    admin_json as token_json, check_expiry_time, check_length, check_token, check_uses_allowed,
};
use crate::http::AppState;
use crate::http::error::MatrixError;
use crate::http::json::parse_body;

impl From<RegistrationTokenError> for MatrixError {
    fn from(err: RegistrationTokenError) -> MatrixError {
        match err {
            RegistrationTokenError::NotFound(_) => {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", err.to_string())
            }
            RegistrationTokenError::NoUniqueToken => MatrixError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                err.to_string(),
            ),
            RegistrationTokenError::Store(err) => err.into(),
            other => MatrixError::invalid_param(other.to_string()),
        }
    }
}

/// A JSON integer, as Python's `type(x) is int` sees one (not a boolean, not `1.0`).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// `uses_allowed` as given: null or a non-negative integer.
fn uses_allowed(value: &Value) -> Result<Option<i64>, MatrixError> {
    let parsed = match value {
        Value::Null => None,
        other => Some(integer(other).ok_or(RegistrationTokenError::UsesAllowed)?),
    };
    check_uses_allowed(parsed)?;
    Ok(parsed)
}

/// `expiry_time` as given: null or an integer not in the past.
fn expiry_time(value: &Value) -> Result<Option<i64>, MatrixError> {
    let parsed =
        match value {
            Value::Null => None,
            other => Some(integer(other).ok_or_else(|| {
                MatrixError::invalid_param("expiry_time must be an integer or null")
            })?),
        };
    check_expiry_time(parsed)?;
    Ok(parsed)
}

/// `GET …/registration_tokens?valid=true|false`.
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, MatrixError> {
    let valid = match query.iter().find(|(name, _)| name == "valid") {
        None => None,
        Some((_, value)) if value == "true" => Some(true),
        Some((_, value)) if value == "false" => Some(false),
        Some(_) => {
            return Err(MatrixError::invalid_param(
                "Boolean query parameter 'valid' must be one of ['true', 'false']",
            ));
        }
    };
    let tokens = state.accounts.registration_tokens(valid).await?;
    let tokens: Vec<Value> = tokens.iter().map(token_json).collect();
    Ok(Json(json!({ "registration_tokens": tokens })))
}

/// `POST …/registration_tokens/new`: `token` or `length` (default 16), `uses_allowed`,
/// `expiry_time`, checked in Synapse's order.
pub async fn create(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    let body: Map<String, Value> = parse_body(&body)?;
    let text = match body.get("token") {
        Some(Value::String(token)) => {
            check_token(token)?;
            NewTokenText::Given(token.clone())
        }
        Some(_) => return Err(MatrixError::invalid_param("token must be a string")),
        None => {
            let length = match body.get("length") {
                None => DEFAULT_TOKEN_LENGTH,
                Some(value) => integer(value)
                    .ok_or_else(|| MatrixError::invalid_param("length must be an integer"))?,
            };
            check_length(length)?;
            NewTokenText::Random { length }
        }
    };
    let uses_allowed = uses_allowed(body.get("uses_allowed").unwrap_or(&Value::Null))?;
    let expiry_time = expiry_time(body.get("expiry_time").unwrap_or(&Value::Null))?;
    let token = state
        .accounts
        .create_registration_token(
            &Actor::Admin(admin),
            NewRegistrationToken {
                text,
                uses_allowed,
                expiry_time,
            },
        )
        .await?;
    Ok(Json(token_json(&token)))
}

/// `GET …/registration_tokens/<token>`.
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path(token): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let found = state
        .accounts
        .registration_token(&token)
        .await?
        .ok_or(RegistrationTokenError::NotFound(token))?;
    Ok(Json(token_json(&found)))
}

/// `PUT …/registration_tokens/<token>`: `uses_allowed` and `expiry_time`, each only if given.
pub async fn update(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    let body: Map<String, Value> = parse_body(&body)?;
    let uses_allowed = body.get("uses_allowed").map(uses_allowed).transpose()?;
    let expiry_time = body.get("expiry_time").map(expiry_time).transpose()?;
    let updated = state
        .accounts
        .update_registration_token(&Actor::Admin(admin), &token, uses_allowed, expiry_time)
        .await?;
    Ok(Json(token_json(&updated)))
}

/// `DELETE …/registration_tokens/<token>`.
pub async fn delete(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(token): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    state
        .accounts
        .delete_registration_token(&Actor::Admin(admin), &token)
        .await?;
    Ok(Json(json!({})))
}

/// `GET`, `PUT` and `DELETE …/registration_tokens/new`: the token named "new" (only `POST`
/// makes one), as Synapse routes them.
pub async fn get_new(
    state: State<AppState>,
    admin: AdminRequester,
) -> Result<Json<Value>, MatrixError> {
    get(state, admin, Path("new".to_owned())).await
}

pub async fn update_new(
    state: State<AppState>,
    admin: AdminRequester,
    body: Bytes,
) -> Result<Json<Value>, MatrixError> {
    update(state, admin, Path("new".to_owned()), body).await
}

pub async fn delete_new(
    state: State<AppState>,
    admin: AdminRequester,
) -> Result<Json<Value>, MatrixError> {
    delete(state, admin, Path("new".to_owned())).await
}
