//! Matrix errors over HTTP: `{"errcode": "M_…", "error": "…"}` with the spec's status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::accounts::{AuthError, LoginError};
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct MatrixError {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub message: String,
    /// `soft_logout` of token errors: whether the client may log in again to the same device.
    pub soft_logout: Option<bool>,
}

impl MatrixError {
    pub fn new(
        status: StatusCode,
        errcode: &'static str,
        message: impl Into<String>,
    ) -> MatrixError {
        MatrixError {
            status,
            errcode,
            message: message.into(),
            soft_logout: None,
        }
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

    fn token_error(errcode: &'static str, message: &str, soft_logout: bool) -> MatrixError {
        MatrixError {
            soft_logout: Some(soft_logout),
            ..MatrixError::new(StatusCode::UNAUTHORIZED, errcode, message)
        }
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        let mut body = json!({"errcode": self.errcode, "error": self.message});
        if let Some(soft_logout) = self.soft_logout {
            body["soft_logout"] = json!(soft_logout);
        }
        (self.status, axum::Json(body)).into_response()
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
            LoginError::Store(err) => err.into(),
            LoginError::Hash(err) => MatrixError::internal("hashing failed", &err),
        }
    }
}
