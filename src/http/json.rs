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

/// Parses a body that may be absent (a DELETE, or Synapse's `allow_empty_body`): an empty
/// body is `T::default()`, anything else as [`parse_body`].
pub fn parse_optional_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, MatrixError> {
    if bytes.is_empty() {
        Ok(T::default())
    } else {
        parse_body(bytes)
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
    from_value(value)
}

/// A JSON object already parsed, deserialized into `T` with [`parse_body`]'s errors.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, MatrixError> {
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

/// Whether a JSON value is true as Python's `bool()` reads it (Synapse's `if body.get(…)`).
pub fn is_truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::http::client::login::LoginBody;
    use crate::property_testing::{json_object, json_value};

    const LOGIN_KEYS: &[&str] = &[
        "type",
        "identifier",
        "user",
        "password",
        "device_id",
        "initial_device_display_name",
    ];

    fn assert_client_error(err: &MatrixError) -> Result<(), TestCaseError> {
        prop_assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let (errcode, _) = err.error.as_ref().unwrap();
        prop_assert!(
            ["M_NOT_JSON", "M_BAD_JSON", "M_MISSING_PARAM"].contains(errcode),
            "{}",
            errcode
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::property_testing::config(512))]

        /// Any bytes at all: a body or a 400 with a Matrix errcode.
        #[test]
        fn any_bytes_parse_or_get_a_client_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(err) = parse_body::<LoginBody>(&bytes) {
                assert_client_error(&err)?;
            }
        }

        /// Any JSON, and objects with the login's keys holding any values: the same.
        #[test]
        fn any_json_parses_or_gets_a_client_error(value in json_value(), object in json_object(LOGIN_KEYS)) {
            for body in [value.to_string(), serde_json::Value::Object(object).to_string()] {
                if let Err(err) = parse_body::<LoginBody>(body.as_bytes()) {
                    assert_client_error(&err)?;
                    // The error names a field at most, never echoes a value.
                    let (_, message) = err.error.unwrap();
                    prop_assert!(message.len() < 200, "{}", message);
                }
            }
        }
    }
}
