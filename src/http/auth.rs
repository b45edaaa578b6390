//! The access token of a request: from `Authorization: Bearer …` or the deprecated
//! `?access_token=…`, resolved to the requester.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::AppState;
use super::client_address::ClientAddress;
use super::error::MatrixError;
use crate::accounts::{AuthError, Requester, TokenUse};

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

/// The user behind a legacy access token, for the endpoints that re-authenticate with
/// user-interactive auth (`/account/password`, `/account/deactivate`, `/delete_devices`,
/// `DELETE /devices/{id}`). The OAuth 2.0 API rules user-interactive auth out, and Synapse
/// delegating its auth serves none of these endpoints: an OAuth token gets Synapse's 404
/// `M_UNRECOGNIZED` (its client manages the account on the account page).
pub struct AuthenticatedForInteractiveAuth(pub Requester);

impl FromRequestParts<AppState> for AuthenticatedForInteractiveAuth {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let requester = requester(parts, state, TokenUse::Any).await?;
        refuse_oauth_interactive_auth(&requester)?;
        Ok(AuthenticatedForInteractiveAuth(requester))
    }
}

/// The same, or `None` for a request that presents no access token at all (Synapse's
/// `has_access_token`) when the e-mail password reset is on: `/account/password` then runs
/// it. Without it, no token is `M_MISSING_TOKEN` as everywhere.
pub struct MaybeAuthenticatedForInteractiveAuth(pub Option<Requester>);

impl FromRequestParts<AppState> for MaybeAuthenticatedForInteractiveAuth {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
            || query_access_token(parts.uri.query()).is_some();
        if !presented && state.accounts.email_reset_enabled() {
            return Ok(MaybeAuthenticatedForInteractiveAuth(None));
        }
        let AuthenticatedForInteractiveAuth(requester) =
            AuthenticatedForInteractiveAuth::from_request_parts(parts, state).await?;
        Ok(MaybeAuthenticatedForInteractiveAuth(Some(requester)))
    }
}

/// Synapse's answer to an OAuth session on an endpoint of user-interactive auth.
pub fn refuse_oauth_interactive_auth(requester: &Requester) -> Result<(), MatrixError> {
    if requester.oauth.is_some() {
        return Err(MatrixError::unrecognized(StatusCode::NOT_FOUND));
    }
    Ok(())
}

/// The same, or `None` for a token homekey does not know at all (an expired token or a
/// locked account's is still an error): for the one endpoint that hands such a request on to
/// Synapse, whose appservices have tokens only Synapse knows.
pub struct AuthenticatedOrUnknown(pub Option<Requester>);

impl FromRequestParts<AppState> for AuthenticatedOrUnknown {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = access_token(parts)?;
        match state.accounts.authenticate_for(&token, TokenUse::Any).await {
            Ok(requester) => Ok(AuthenticatedOrUnknown(Some(requester))),
            Err(AuthError::UnknownToken) => Ok(AuthenticatedOrUnknown(None)),
            Err(err) => Err(err.into()),
        }
    }
}

async fn requester(
    parts: &Parts,
    state: &AppState,
    use_: TokenUse,
) -> Result<Requester, MatrixError> {
    let token = access_token(parts)?;
    let requester = state.accounts.authenticate_for(&token, use_).await?;
    // A request with the device's token is a contact of the device's (Synapse's client_ips);
    // a logout ends the device anyway.
    if use_ != TokenUse::Logout {
        state.accounts.note_device_use(&requester, || {
            Some(crate::store::ClientSeen {
                address: ClientAddress::of(parts).0,
                user_agent: user_agent(&parts.headers),
            })
        });
    }
    Ok(requester)
}

/// How much of a `User-Agent` is kept (the header has no limit of its own).
const MAX_USER_AGENT_LENGTH: usize = 512;

/// The request's `User-Agent`, as much of it as is kept.
pub(super) fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(MAX_USER_AGENT_LENGTH).collect())
}

/// The query parameter a token may come in (deprecated by the spec, still read).
pub(super) const ACCESS_TOKEN_PARAMETER: &str = "access_token";

/// 401 `M_MISSING_TOKEN`: no token where one was needed, or no single one.
fn missing_token(message: &str) -> MatrixError {
    MatrixError::new(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", message)
}

/// The request's access token, by Synapse's rules (`get_access_token_from_request` in
/// `synapse/api/auth/base.py`): with an `Authorization` header, of any kind, the query may
/// not name a token too (even an empty one), there must be only one such header and it must
/// be exactly `Bearer <token>`; without one, the first `access_token` of the query.
fn access_token(parts: &Parts) -> Result<String, MatrixError> {
    request_token(&parts.headers, parts.uri.query())
}

/// The access token of a request with these headers and query, as Synapse reads it.
pub fn request_token(
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Result<String, MatrixError> {
    let mut headers = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let Some(header) = headers.next() else {
        return query_access_token(query).ok_or_else(|| missing_token("Missing access token"));
    };
    if query_access_token(query).is_some() {
        return Err(missing_token(
            "Mixing Authorization headers and access_token query parameters.",
        ));
    }
    if headers.next().is_some() {
        return Err(missing_token("Too many Authorization headers."));
    }
    // Synapse splits on single spaces and wants exactly two parts.
    let value = header.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some(("Bearer", token)) if !token.contains(' ') => Ok(token.to_owned()),
        _ => Err(missing_token("Invalid Authorization header.")),
    }
}

/// The first `access_token` of the query, its name and value decoded as axum's `Query`
/// decodes them, so that every spelling the server reads is one the access log redacts.
fn query_access_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == ACCESS_TOKEN_PARAMETER)
        .map(|(_, value)| value.into_owned())
}
