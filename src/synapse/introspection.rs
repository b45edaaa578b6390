//! `POST /oauth2/introspect`: Synapse asks what an access token is (RFC 7662, as Synapse's
//! `synapse/api/auth/mas.py` reads the answer).
//!
//! Synapse sends `token=…&token_type_hint=access_token` as a form, with the shared secret
//! (see [`super::caller`]), for every token it has not seen in the last two minutes, and keeps
//! the answer for two minutes whatever it says. It checks nothing itself: an answer is
//! `{"active": false}` for every token that must not work now (unknown, expired, a locked,
//! deactivated or guest account's), and otherwise says who the token is for:
//!
//! - `scope`: `urn:matrix:client:api:*`, plus `urn:synapse:admin:*` for a server admin
//!   (Synapse takes admin rights from this scope only);
//! - `username`: the localpart;
//! - `device_id`: the token's device, when it has one (Synapse reads it because it sends
//!   `X-MAS-Supports-Device-Id`, so no device scope is needed; an admin's login-as-user token
//!   has none);
//! - `expires_in`: whole seconds left, only for a token that expires (Synapse refuses a
//!   float).
//!
//! A database that cannot answer is a 503, never `active: false`: Synapse does not keep a
//! failed answer, but would keep an inactive one for two minutes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SynapseState;
use super::caller::FromSynapse;
use crate::accounts::{Requester, now_ms};
use crate::ids::UserId;
use crate::oauth::scope::Scope;
use crate::store::StoreError;

/// The scope of every active token: the whole Client-Server API.
pub const SCOPE_CLIENT_API: &str = "urn:matrix:client:api:*";
/// Added for a server admin: Synapse's Admin API.
pub const SCOPE_SYNAPSE_ADMIN: &str = crate::oauth::scope::SYNAPSE_ADMIN;

/// The form Synapse sends. `token_type_hint` is always `access_token`; homekey introspects
/// access tokens only, whatever the hint.
#[derive(Deserialize)]
struct IntrospectionRequest {
    token: String,
    #[serde(rename = "token_type_hint")]
    _token_type_hint: Option<String>,
}

/// The answer, in the fields Synapse reads.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// An OAuth session's client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Introspection {
    pub const INACTIVE: Introspection = Introspection {
        active: false,
        scope: None,
        username: None,
        device_id: None,
        expires_in: None,
        client_id: None,
    };

    /// The answer about `requester`'s token at `now_ms`, for a server named `server_name`.
    pub fn of(requester: Requester, server_name: &str, now_ms: i64) -> Introspection {
        // Synapse makes the user ID from the localpart and its own server name: a token of
        // another server's user (there is none in a server's own database) works for no one.
        let Ok(user_id) = UserId::parse_local(&requester.user.name, server_name) else {
            return Introspection::INACTIVE;
        };
        let expires_in = match requester.valid_until_ms {
            None => None,
            // Whole seconds, rounded down: Synapse never takes the token for longer than it
            // lasts. Less than a second left is no time at all.
            Some(until) => match u64::try_from(until.saturating_sub(now_ms) / 1000) {
                Ok(seconds) if seconds > 0 => Some(seconds),
                _ => return Introspection::INACTIVE,
            },
        };
        let admin = requester.user.admin;
        // An OAuth session: the scope it was granted, in both spellings, the admin rights
        // only while the account is an admin too, and its client.
        let (scope, client_id) = match requester.oauth {
            Some(grant) => match Scope::parse(&grant.scope) {
                Ok(scope) => (scope.introspected(admin), Some(grant.client_id)),
                Err(_) => return Introspection::INACTIVE,
            },
            None if admin => (format!("{SCOPE_CLIENT_API} {SCOPE_SYNAPSE_ADMIN}"), None),
            None => (SCOPE_CLIENT_API.to_owned(), None),
        };
        Introspection {
            active: true,
            scope: Some(scope),
            username: Some(user_id.localpart().to_owned()),
            device_id: requester.device_id,
            expires_in,
            client_id,
        }
    }
}

pub(super) async fn introspect(
    State(state): State<SynapseState>,
    _synapse: FromSynapse,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
        Err(_) => return invalid_request(),
    };
    if !is_form(&headers) {
        return invalid_request();
    }
    let Ok(request) = serde_urlencoded::from_bytes::<IntrospectionRequest>(&body) else {
        return invalid_request();
    };
    // No token of homekey's is empty or holds a NUL (which PostgreSQL refuses in text).
    if request.token.is_empty() || request.token.contains('\0') {
        return Json(Introspection::INACTIVE).into_response();
    }
    match state.accounts.usable_token_owner(&request.token).await {
        Ok(None) => Json(Introspection::INACTIVE).into_response(),
        Ok(Some(requester)) => {
            // Synapse asks when the device's client makes a request (and keeps the answer
            // two minutes): the device's last contact, when only (the address is Synapse's).
            state.accounts.note_device_use(&requester, || None);
            let server_name = &state.accounts.config.server_name;
            Json(Introspection::of(requester, server_name, now_ms())).into_response()
        }
        Err(err) => unanswered(&err),
    }
}

/// Whether the body is declared a form (`application/x-www-form-urlencoded`, any
/// parameters).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|kind| {
            kind.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// RFC 6749's error for a request that is not the form it should be; nothing more said.
fn invalid_request() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request"})),
    )
        .into_response()
}

/// The database could not say: 503 (with `Retry-After`) while it is unreachable, else 500.
/// Synapse answers its client 503 either way and keeps nothing.
fn unanswered(err: &StoreError) -> Response {
    tracing::warn!(error = %err, "token introspection failed");
    match err {
        StoreError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Json(json!({"error": "temporarily_unavailable"})),
        )
            .into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "server_error"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenUser;

    fn requester(admin: bool, device_id: Option<&str>, valid_until_ms: Option<i64>) -> Requester {
        Requester {
            user: TokenUser {
                name: "@alice:example.com".into(),
                admin,
                is_guest: false,
                deactivated: false,
                locked: false,
                has_password: true,
            },
            device_id: device_id.map(str::to_owned),
            token_id: 1,
            valid_until_ms,
            page_session: None,
            oauth: None,
            client_address: None,
        }
    }

    #[test]
    fn expires_in_is_whole_seconds_left_and_never_zero_or_negative() {
        let now = 1_700_000_000_000;
        let answer = |until| Introspection::of(requester(false, None, until), "example.com", now);
        assert_eq!(answer(None).expires_in, None);
        assert_eq!(answer(Some(now + 3_600_999)).expires_in, Some(3600));
        assert_eq!(answer(Some(now + 1_000)).expires_in, Some(1));
        for until in [now + 999, now, now - 1, i64::MIN] {
            assert_eq!(answer(Some(until)), Introspection::INACTIVE, "{until}");
        }
        let json = serde_json::to_value(answer(Some(now + 90_000))).unwrap();
        assert!(json["expires_in"].is_u64(), "{json}");
    }

    #[test]
    fn the_answer_names_the_localpart_the_device_and_the_admin_scope() {
        let now = 0;
        let user = Introspection::of(requester(false, Some("DEV"), None), "example.com", now);
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            json!({"active": true, "scope": SCOPE_CLIENT_API, "username": "alice", "device_id": "DEV"})
        );
        let admin = Introspection::of(requester(true, None, None), "example.com", now);
        assert_eq!(
            admin.scope.as_deref(),
            Some("urn:matrix:client:api:* urn:synapse:admin:*")
        );
        assert_eq!(admin.device_id, None);
        let elsewhere = Introspection::of(requester(true, None, None), "other.org", now);
        assert_eq!(elsewhere, Introspection::INACTIVE);
        assert_eq!(
            serde_json::to_value(Introspection::INACTIVE).unwrap(),
            json!({"active": false})
        );
    }
}
