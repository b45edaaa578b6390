//! Matrix errors over HTTP: `{"errcode": "M_…", "error": "…"}` with the spec's status codes.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::accounts::appservice_login::AppServiceLoginError;
use crate::accounts::{AccountError, AuthError, LoginError, PasswordRefusal, RefreshError};
use crate::password::MAX_PASSWORD_LENGTH;
use crate::store::StoreError;

/// How long a client is asked to wait when the database is unreachable.
const DATABASE_RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Debug, Clone)]
pub struct MatrixError {
    pub status: StatusCode,
    /// `errcode` and `error`; `None` only for the first answer of user-interactive auth,
    /// which Synapse sends without them (clients show an `error` to the user as a failure).
    pub error: Option<(&'static str, String)>,
    /// Fields beside `errcode` and `error`: `soft_logout` of token errors, `retry_after_ms`
    /// of rate limits, the flows of user-interactive auth.
    pub fields: Map<String, Value>,
    /// `Retry-After`, in seconds: when a rate limit or an outage should be over.
    pub retry_after_seconds: Option<u64>,
}

impl MatrixError {
    pub fn new(
        status: StatusCode,
        errcode: &'static str,
        message: impl Into<String>,
    ) -> MatrixError {
        MatrixError {
            status,
            error: Some((errcode, message.into())),
            fields: Map::new(),
            retry_after_seconds: None,
        }
    }

    /// 401 asking for user-interactive auth: `fields` holds the flows and the session.
    pub fn interactive_auth(fields: Map<String, Value>) -> MatrixError {
        MatrixError {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            fields,
            retry_after_seconds: None,
        }
    }

    /// Adds a field to the error's body.
    pub fn with_field(mut self, name: &str, value: impl Into<Value>) -> MatrixError {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    pub fn unrecognized(status: StatusCode) -> MatrixError {
        MatrixError::new(status, "M_UNRECOGNIZED", "Unrecognized request")
    }

    pub fn bad_json(message: impl Into<String>) -> MatrixError {
        MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", message)
    }

    pub fn missing_param(message: impl Into<String>) -> MatrixError {
        MatrixError::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", message)
    }

    pub fn invalid_param(message: impl Into<String>) -> MatrixError {
        MatrixError::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message)
    }

    /// 429: over a rate limit; the client may try again after `retry_after_ms`.
    pub fn rate_limited(retry_after_ms: u64) -> MatrixError {
        MatrixError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "M_LIMIT_EXCEEDED",
            "Too Many Requests",
        )
        .with_field("retry_after_ms", retry_after_ms)
        .retry_after(retry_after_ms.div_ceil(1000))
    }

    /// Says in `Retry-After` when to try again.
    pub fn retry_after(mut self, seconds: u64) -> MatrixError {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// A 500 for a fault of the server's own: logged here with its cause, which the client
    /// never sees.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> MatrixError {
        tracing::error!(error = %cause, "{what}");
        MatrixError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            "Internal server error",
        )
    }

    /// A token error; `soft_logout` tells whether the client may log in again to the same device.
    fn token_error(errcode: &'static str, message: &str, soft_logout: bool) -> MatrixError {
        MatrixError::new(StatusCode::UNAUTHORIZED, errcode, message)
            .with_field("soft_logout", soft_logout)
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_seconds.map(|s| s.to_string());
        let mut body = self.fields;
        if let Some((errcode, message)) = self.error {
            body.insert("errcode".into(), json!(errcode));
            body.insert("error".into(), json!(message));
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after.and_then(|s| header::HeaderValue::from_str(&s).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }
}

impl From<StoreError> for MatrixError {
    fn from(err: StoreError) -> MatrixError {
        match err {
            StoreError::UserNotFound(_) => {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "User not found")
            }
            StoreError::UserExists(_) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_USER_IN_USE",
                "User ID already taken.",
            ),
            StoreError::Unavailable(_) => {
                tracing::error!(error = %err, "database unavailable");
                MatrixError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "M_UNKNOWN",
                    "The database is unavailable; try again shortly",
                )
                .retry_after(DATABASE_RETRY_AFTER_SECONDS)
            }
            other => MatrixError::internal("database error", &other),
        }
    }
}

impl From<AuthError> for MatrixError {
    fn from(err: AuthError) -> MatrixError {
        match err {
            AuthError::UnknownToken => {
                MatrixError::token_error("M_UNKNOWN_TOKEN", "Unrecognised access token", false)
            }
            AuthError::Expired => {
                MatrixError::token_error("M_UNKNOWN_TOKEN", "Access token has expired", true)
            }
            AuthError::Locked => {
                MatrixError::token_error("M_USER_LOCKED", "User account has been locked", true)
            }
            AuthError::Store(err) => err.into(),
        }
    }
}

impl From<LoginError> for MatrixError {
    fn from(err: LoginError) -> MatrixError {
        match err {
            LoginError::InvalidCredentials => MatrixError::new(
                StatusCode::FORBIDDEN,
                "M_FORBIDDEN",
                "Invalid username or password",
            ),
            LoginError::Deactivated => MatrixError::new(
                StatusCode::FORBIDDEN,
                "M_USER_DEACTIVATED",
                "This account has been deactivated",
            ),
            LoginError::Locked => MatrixError::new(
                StatusCode::UNAUTHORIZED,
                "M_USER_LOCKED",
                "User account has been locked",
            ),
            LoginError::PasswordLoginDisabled => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Password login has been disabled.",
            ),
            LoginError::RateLimited { retry_after_ms } => MatrixError::rate_limited(retry_after_ms),
            LoginError::NulInText(_) => MatrixError::invalid_param(err.to_string()),
            LoginError::BadAddress(err) => {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", err.to_string())
            }
            LoginError::Synapse(_) | LoginError::NotAnnounced(_) => synapse_unavailable(),
            LoginError::Store(err) => err.into(),
            LoginError::Hash(err) => MatrixError::internal("hashing failed", &err),
        }
    }
}

impl From<AppServiceLoginError> for MatrixError {
    fn from(err: AppServiceLoginError) -> MatrixError {
        let message = err.to_string();
        match err {
            AppServiceLoginError::NotAnAppService => {
                MatrixError::token_error("M_UNKNOWN_TOKEN", &message, false)
            }
            AppServiceLoginError::Token(err) => err.into(),
            AppServiceLoginError::Msc4190 => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_APPSERVICE_LOGIN_UNSUPPORTED",
                message,
            ),
            AppServiceLoginError::OutsideNamespace | AppServiceLoginError::UnknownUser => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", message)
            }
            AppServiceLoginError::BadIdentifier(_) | AppServiceLoginError::NotLocal => {
                MatrixError::invalid_param(message)
            }
            AppServiceLoginError::Login(err) => err.into(),
        }
    }
}

/// Beside Synapse, when Synapse did not take a new session (the cause is logged where it
/// happened): the client may try again shortly.
pub(crate) fn synapse_unavailable() -> MatrixError {
    MatrixError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "M_UNKNOWN",
        "The homeserver is unavailable; try again shortly",
    )
    .retry_after(DATABASE_RETRY_AFTER_SECONDS)
}

impl From<RefreshError> for MatrixError {
    fn from(err: RefreshError) -> MatrixError {
        match err {
            RefreshError::Malformed | RefreshError::UnknownToken => {
                MatrixError::new(StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN", err.to_string())
            }
            RefreshError::Spent | RefreshError::Expired | RefreshError::SessionOver => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            RefreshError::Store(err) => err.into(),
        }
    }
}

/// The one mapping of the account service's errors to Matrix errors. An endpoint whose
/// Synapse counterpart words one of them differently matches on the variant first.
impl From<AccountError> for MatrixError {
    fn from(err: AccountError) -> MatrixError {
        let bad_request = |errcode, err: &AccountError| {
            MatrixError::new(StatusCode::BAD_REQUEST, errcode, err.to_string())
        };
        match err {
            AccountError::UserNotFound(_) => {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "User not found")
            }
            AccountError::UserExists(_) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_USER_IN_USE",
                "User ID already taken.",
            ),
            AccountError::ThreepidInUse(_) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_IN_USE",
                err.to_string(),
            ),
            AccountError::Threepid(crate::threepid::ThreepidError::UnknownMedium(_)) => {
                MatrixError::invalid_param(err.to_string())
            }
            AccountError::Threepid(crate::threepid::ThreepidError::NotAnEmailAddress) => {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", err.to_string())
            }
            AccountError::Password(refusal) => refusal.into(),
            AccountError::PasswordChangeDisabled => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            AccountError::NoNewPassword => MatrixError::missing_param(err.to_string()),
            AccountError::NulInText(_) => MatrixError::invalid_param(err.to_string()),
            AccountError::EmailNotFound => {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", err.to_string())
            }
            AccountError::LastAdmin(ref user) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_FORBIDDEN",
                crate::accounts::error::last_admin_refusal(user),
            ),
            // The account's state forbids it (not Synapse's: it sets a password that cannot
            // log in); the errcode says so, the message says why.
            AccountError::DeactivatedGetsNoPassword(_) => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            AccountError::SelfDemotion
            | AccountError::LoginAsSelf
            | AccountError::Deactivated(_)
            | AccountError::Locked(_) => bad_request("M_UNKNOWN", &err),
            AccountError::Suspended(_) => MatrixError::new(
                StatusCode::FORBIDDEN,
                "M_USER_ACCOUNT_SUSPENDED",
                err.to_string(),
            ),
            AccountError::RefusedOnSynapse { .. } => {
                MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", err.to_string())
            }
            AccountError::Synapse(_) | AccountError::SynapseBusy(_) => synapse_unavailable(),
            AccountError::SynapseConflict(_) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_USER_IN_USE",
                "User ID already taken.",
            ),
            AccountError::SynapseRefusesName { ref errcode, .. } => {
                let errcode = match errcode.as_str() {
                    "M_EXCLUSIVE" => "M_EXCLUSIVE",
                    _ => "M_INVALID_USERNAME",
                };
                let message = match errcode {
                    "M_EXCLUSIVE" => "User ID reserved by an application service.",
                    _ => "User ID is not allowed.",
                };
                MatrixError::new(StatusCode::BAD_REQUEST, errcode, message)
            }
            AccountError::NotCarriedToSynapse(_) => bad_request("M_INVALID_PARAM", &err),
            AccountError::NotBesideSynapse => MatrixError::internal("not beside Synapse", &err),
            AccountError::Store(err) => err.into(),
            AccountError::Hash(err) => MatrixError::internal("hashing failed", &err),
        }
    }
}

impl From<PasswordRefusal> for MatrixError {
    fn from(refusal: PasswordRefusal) -> MatrixError {
        match refusal {
            PasswordRefusal::TooLong => MatrixError::invalid_param(format!(
                "Invalid password: longer than {MAX_PASSWORD_LENGTH} characters"
            )),
            PasswordRefusal::Policy(violation) => MatrixError::new(
                StatusCode::BAD_REQUEST,
                violation.errcode,
                violation.message,
            ),
            PasswordRefusal::UnknownHashScheme | PasswordRefusal::GivenHashUnreadableBySynapse => {
                MatrixError::invalid_param(refusal.to_string())
            }
            // The server's own config: argon2id set for a Synapse database.
            PasswordRefusal::UnreadableBySynapse => {
                MatrixError::internal("password refused", &refusal)
            }
        }
    }
}
