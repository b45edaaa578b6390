//! The access token of a request: from `Authorization: Bearer …` or the deprecated
//! `?access_token=…`, resolved to the requester.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::error::MatrixError;
use crate::accounts::{Requester, TokenUse};

/// The user (and device) behind a request's access token.
pub struct Authenticated(pub Requester);

/// The same, for a logout: an expired token or a locked account's still counts.
pub struct AuthenticatedForLogout(pub Requester);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        requester(parts, state, TokenUse::Any)
            .await
            .map(Authenticated)
    }
}

impl FromRequestParts<AppState> for AuthenticatedForLogout {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        requester(parts, state, TokenUse::Logout)
            .await
            .map(AuthenticatedForLogout)
    }
}

async fn requester(
    parts: &Parts,
    state: &AppState,
    use_: TokenUse,
) -> Result<Requester, MatrixError> {
    let token = access_token(parts).ok_or_else(|| {
        MatrixError::new(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "Missing access token",
        )
    })?;
    Ok(state.accounts.authenticate_for(&token, use_).await?)
}

fn access_token(parts: &Parts) -> Option<String> {
    if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = header.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    query_access_token(parts)
}

/// The deprecated `?access_token=` query parameter.
#[derive(serde::Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

fn query_access_token(parts: &Parts) -> Option<String> {
    axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri)
        .ok()?
        .0
        .access_token
}
