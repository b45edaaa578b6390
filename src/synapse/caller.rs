//! Synapse's calls: `Authorization: Bearer <secret>`, the secret of Synapse's
//! `matrix_authentication_service` (homekey's `synapse.secret`).
//!
//! The presented secret is compared with the configured one by their SHA-256 digests, in
//! constant time: the comparison takes as long whatever the secret presented, so its timing
//! tells nothing about how much of it was right (nor about its length).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SynapseState;

/// The shared secret, kept only as its digest.
pub struct SharedSecret {
    digest: [u8; 32],
}

impl SharedSecret {
    pub fn new(secret: &SecretString) -> SharedSecret {
        SharedSecret {
            digest: Sha256::digest(secret.expose_secret().as_bytes()).into(),
        }
    }

    /// Whether `presented` is the secret.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        presented.ct_eq(&self.digest).into()
    }

    /// Whether a request's `Authorization: Bearer …` holds the secret.
    fn authorizes(&self, parts: &Parts) -> bool {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        let scheme = b"bearer ";
        value.len() > scheme.len()
            && value[..scheme.len()].eq_ignore_ascii_case(scheme)
            && self.matches(&value[scheme.len()..])
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret([REDACTED])")
    }
}

/// A request made by Synapse: anything else is 401, with nothing more said.
pub struct FromSynapse;

impl FromRequestParts<SynapseState> for FromSynapse {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SynapseState,
    ) -> Result<Self, Self::Rejection> {
        if state.caller.authorizes(parts) {
            Ok(FromSynapse)
        } else {
            Err(StatusCode::UNAUTHORIZED.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCD";

    fn parts_with(authorization: Option<&[u8]>) -> Parts {
        let mut request = axum::http::Request::builder();
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_the_whole_secret_matches() {
        let secret = SharedSecret::new(&SecretString::from(SECRET));
        assert!(secret.matches(SECRET.as_bytes()));
        for other in [
            "",
            &SECRET[..SECRET.len() - 1],
            &format!("{SECRET}x"),
            &format!("{SECRET}\n"),
            &format!(" {SECRET}"),
            &SECRET.to_uppercase(),
            &format!("{}E", &SECRET[..SECRET.len() - 1]),
        ] {
            assert!(!secret.matches(other.as_bytes()), "{other:?} matched");
        }
        assert!(!secret.matches(&Sha256::digest(SECRET.as_bytes())));
    }

    #[test]
    fn the_secret_is_read_from_a_bearer_authorization_only() {
        let secret = SharedSecret::new(&SecretString::from(SECRET));
        let bearer = format!("Bearer {SECRET}");
        assert!(secret.authorizes(&parts_with(Some(bearer.as_bytes()))));
        let lower = format!("bearer {SECRET}");
        assert!(secret.authorizes(&parts_with(Some(lower.as_bytes()))));
        for other in [
            None,
            Some(SECRET.as_bytes()),
            Some(b"Bearer ".as_slice()),
            Some(b"Bearer".as_slice()),
            Some(format!("Basic {SECRET}").as_bytes()),
            Some(format!("Bearer  {SECRET}").as_bytes()),
            Some(b"Bearer \xff\xfe".as_slice()),
        ] {
            assert!(!secret.authorizes(&parts_with(other)), "{other:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let secret = SharedSecret::new(&SecretString::from(SECRET));
        let shown = format!("{secret:?} {secret:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        let digest = hex::encode(Sha256::digest(SECRET.as_bytes()));
        assert!(!shown.contains(&digest), "{shown}");
    }
}
