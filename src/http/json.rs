//! Request bodies: JSON whatever the `Content-Type` says (Synapse does not check it, and the
//! operators' curl commands send none), with Matrix errors for each way a body can be wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::MatrixError;

/// The largest request body accepted; anything bigger is 413 `M_TOO_LARGE`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body deserialized into `T`.
pub struct MatrixJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MatrixJson<T> {
    type Rejection = MatrixError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    MatrixError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "M_TOO_LARGE",
                        "Request body too large",
                    )
                } else {
                    MatrixError::new(
                        StatusCode::BAD_REQUEST,
                        "M_UNKNOWN",
                        "Could not read the request body",
                    )
                }
            })?;
        parse_body(&bytes).map(MatrixJson)
    }
}

/// Parses a body: not JSON is `M_NOT_JSON`, not an object `M_BAD_JSON`, a missing field
/// `M_MISSING_PARAM`, a field of the wrong type `M_BAD_JSON` naming the field.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MatrixError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Content not JSON.")
    })?;
    if !value.is_object() {
        return Err(MatrixError::bad_json("Content must be a JSON object."));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if let Some(field) = inner.strip_prefix("missing field ") {
            MatrixError::missing_param(format!("Missing parameter: {}", field.trim_matches('`')))
        } else {
            // serde's messages describe the expected type; they may quote the offending value,
            // which can be a password: name only the field.
            MatrixError::bad_json(format!("Invalid value for '{path}'"))
        }
    })
}
