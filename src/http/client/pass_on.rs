//! Beside Synapse, requests that are Synapse's to answer although the reverse proxy sends
//! them to homekey, because it cannot tell them apart from homekey's: an appservice's
//! device deletion or registration (its `as_token` is known only to Synapse).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::http::error::{MatrixError, synapse_unavailable};
use crate::synapse::client::SynapseClient;

/// Sends the request on to Synapse's client listener unchanged: its method, path and query,
/// token (header or query, as given) and body, and hands back Synapse's answer. The client's
/// address goes as `X-Forwarded-For`, for an appservice's `ip_range_whitelist`.
pub async fn pass_on_to_synapse(
    synapse: &SynapseClient,
    method: reqwest::Method,
    uri: &Uri,
    headers: &HeaderMap,
    client: &str,
    body: Bytes,
) -> Result<Response, MatrixError> {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let mut passed_on = Vec::new();
    if client != "unknown"
        && let Ok(address) = header::HeaderValue::from_str(client)
    {
        passed_on.push((header::HeaderName::from_static("x-forwarded-for"), address));
    }
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            passed_on.push((name, value.clone()));
        }
    }
    let answer = synapse
        .forward(method, path, passed_on, body)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "a request could not be passed on to Synapse");
            synapse_unavailable()
        })?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, answer.body).into_response();
    if let Some(content_type) = answer.content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}
