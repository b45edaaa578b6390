//! E-mail validation sessions and their link tokens (Synapse's `threepid_validation_session`
//! and `threepid_validation_token`, migration 0017), for the password reset of legacy clients
//! (`crate::accounts::password_reset`). The client secret and the token are kept as digests
//! ([`super::token_forms::digest`]); the callers hand them in already digested.

use serde_json::{Value, json};

use super::transaction::for_update;
use super::{BeginWrite, NewMail, Store, StoreError, with_pool};

/// The user-interactive auth stage a validated session completes.
pub const EMAIL_IDENTITY_STAGE: &str = "m.login.email.identity";

/// A session's token to keep, with the mail that carries its link.
pub struct NewThreepidToken<'a> {
    /// The session: the unvalidated one found for (medium, address, client secret) before
    /// the mail was made, or a new one.
    pub session_id: &'a str,
    pub medium: &'a str,
    pub address: &'a str,
    pub client_secret_digest: &'a str,
    pub send_attempt: i64,
    pub token_digest: &'a str,
    /// Where the browser goes once the link is confirmed (with `sid` added).
    pub next_link: Option<&'a str>,
    pub expires_ms: i64,
}

/// What [`Store::send_threepid_token`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenSent {
    /// The token is kept and its mail queued.
    Queued,
    /// The session already had this send attempt (or a later one): nothing was kept or
    /// queued; the session is this one.
    Repeat(String),
}

/// Why a link was not confirmed, in Synapse's words (shown on the failure page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error("Unknown session_id")]
    UnknownSession,
    #[error("Validation token not found or has expired")]
    TokenNotFound,
    #[error("This client_secret does not match the provided session_id")]
    WrongClientSecret,
    #[error("This token has expired. Please request a new one")]
    Expired,
}

impl Store {
    /// The unvalidated session of (`medium`, `address`, client secret) and its last send
    /// attempt, if there is one.
    pub async fn unvalidated_threepid_session(
        &self,
        medium: &str,
        address: &str,
        client_secret_digest: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT session_id, last_send_attempt FROM threepid_validation_session \
                 WHERE medium = $1 AND address = $2 AND client_secret = $3 \
                 AND validated_at IS NULL LIMIT 1",
            )
            .bind(medium)
            .bind(address)
            .bind(client_secret_digest)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Keeps a new token of a session (made or continued, with its send attempt) and queues
    /// `mail` with its link, in one transaction. If the session's state moved since it was
    /// read (another request of the same client came first), nothing is kept or queued.
    pub async fn send_threepid_token(
        &self,
        new: &NewThreepidToken<'_>,
        mail: &NewMail,
        now_ms: i64,
    ) -> Result<TokenSent, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let sql = format!(
                "SELECT session_id, last_send_attempt FROM threepid_validation_session \
                 WHERE medium = $1 AND address = $2 AND client_secret = $3 \
                 AND validated_at IS NULL LIMIT 1{}",
                for_update(&tx)
            );
            let current: Option<(String, i64)> = sqlx::query_as(&sql)
                .bind(new.medium)
                .bind(new.address)
                .bind(new.client_secret_digest)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((session_id, last_send_attempt)) = current
                && (session_id != new.session_id || new.send_attempt <= last_send_attempt)
            {
                return Ok(TokenSent::Repeat(session_id));
            }
            sqlx::query(
                "INSERT INTO threepid_validation_session \
                 (session_id, medium, address, client_secret, last_send_attempt) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (session_id) DO UPDATE SET last_send_attempt = excluded.last_send_attempt",
            )
            .bind(new.session_id)
            .bind(new.medium)
            .bind(new.address)
            .bind(new.client_secret_digest)
            .bind(new.send_attempt)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO threepid_validation_token (token, session_id, next_link, expires) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(new.token_digest)
            .bind(new.session_id)
            .bind(new.next_link)
            .bind(new.expires_ms)
            .execute(&mut *tx)
            .await?;
            super::mail_outbox::queue_mail!(&mut tx, mail, now_ms);
            tx.commit().await?;
            Ok(TokenSent::Queued)
        })
    }

    /// The `next_link` of a session's token, if the token is the session's (`Some(None)`:
    /// it has none). Reads only: showing the link's page confirms nothing.
    pub async fn threepid_token_next_link(
        &self,
        session_id: &str,
        token_digest: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT next_link FROM threepid_validation_token \
                 WHERE session_id = $1 AND token = $2",
            )
            .bind(session_id)
            .bind(token_digest)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Confirms a link, in Synapse's order of checks, in one transaction: the session is
    /// marked validated at `now_ms`. Returns the token's `next_link`. A session already
    /// validated is confirmed again without a change (a second click).
    pub async fn confirm_threepid_link(
        &self,
        session_id: &str,
        client_secret_digest: &str,
        token_digest: &str,
        now_ms: i64,
    ) -> Result<Result<Option<String>, LinkRefusal>, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let sql = format!(
                "SELECT client_secret, validated_at FROM threepid_validation_session \
                 WHERE session_id = $1{}",
                for_update(&tx)
            );
            let session: Option<(String, Option<i64>)> = sqlx::query_as(&sql)
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((kept_secret, validated_at)) = session else {
                return Ok(Err(LinkRefusal::UnknownSession));
            };
            let token: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT expires, next_link FROM threepid_validation_token \
                 WHERE session_id = $1 AND token = $2",
            )
            .bind(session_id)
            .bind(token_digest)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((expires, next_link)) = token else {
                return Ok(Err(LinkRefusal::TokenNotFound));
            };
            if kept_secret != client_secret_digest {
                return Ok(Err(LinkRefusal::WrongClientSecret));
            }
            if validated_at.is_some() {
                return Ok(Ok(next_link));
            }
            if expires <= now_ms {
                return Ok(Err(LinkRefusal::Expired));
            }
            sqlx::query(
                "UPDATE threepid_validation_session SET validated_at = $2 WHERE session_id = $1",
            )
            .bind(session_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(next_link))
        })
    }

    /// Spends a validated session (single use) and completes the e-mail stage of the
    /// user-interactive auth session `ui_session_id` with what it proved, in one transaction.
    /// Returns the proof (`medium`, `address`, `validated_at`), or `None` if the session is
    /// unknown, not validated, or not this client's: nothing changes then.
    pub async fn spend_validated_threepid_session(
        &self,
        ui_session_id: &str,
        session_id: &str,
        client_secret_digest: &str,
    ) -> Result<Option<Value>, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let sql = format!(
                "SELECT medium, address, validated_at FROM threepid_validation_session \
                 WHERE session_id = $1 AND client_secret = $2 AND validated_at IS NOT NULL{}",
                for_update(&tx)
            );
            let row: Option<(String, String, i64)> = sqlx::query_as(&sql)
                .bind(session_id)
                .bind(client_secret_digest)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((medium, address, validated_at)) = row else {
                return Ok(None);
            };
            for table in ["threepid_validation_token", "threepid_validation_session"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                    .bind(session_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let proof = json!({"medium": medium, "address": address, "validated_at": validated_at});
            sqlx::query(
                "INSERT INTO ui_auth_sessions_credentials (session_id, stage_type, result) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id, stage_type) DO UPDATE SET result = excluded.result",
            )
            .bind(ui_session_id)
            .bind(EMAIL_IDENTITY_STAGE)
            .bind(proof.to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(proof))
        })
    }

    /// Deletes the tokens expired before `now_ms`, then the sessions left without a token
    /// (validated or not: a reset is completed within the link's lifetime); returns how many
    /// sessions went.
    pub async fn cull_threepid_validation(&self, now_ms: i64) -> Result<u64, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM threepid_validation_token WHERE expires < $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            let sessions = sqlx::query(
                "DELETE FROM threepid_validation_session \
                 WHERE session_id NOT IN (SELECT session_id FROM threepid_validation_token)",
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(sessions)
        })
    }
}
