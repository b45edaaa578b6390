//! User-interactive authentication sessions, in Synapse's `ui_auth_sessions` tables.

use serde_json::Value;

use super::{BeginWrite, Store, StoreError, with_pool};

/// A session as stored: the operation it authorises and what the server keeps for it.
#[derive(Debug, Clone)]
pub struct UiAuthSession {
    pub session_id: String,
    pub creation_time_ms: i64,
    pub uri: String,
    pub method: String,
    /// The server's own data for the session (a JSON object).
    pub serverdict: serde_json::Map<String, Value>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: String,
    creation_time: i64,
    uri: String,
    method: String,
    serverdict: String,
}

impl Store {
    /// Starts a session for one operation (`method` on `uri`).
    pub async fn create_ui_auth_session(
        &self,
        session_id: &str,
        now_ms: i64,
        method: &str,
        uri: &str,
        description: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO ui_auth_sessions \
                 (session_id, creation_time, serverdict, clientdict, uri, method, description) \
                 VALUES ($1, $2, '{}', '{}', $3, $4, $5)",
            )
            .bind(session_id)
            .bind(now_ms)
            .bind(uri)
            .bind(method)
            .bind(description)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn get_ui_auth_session(
        &self,
        session_id: &str,
    ) -> Result<Option<UiAuthSession>, StoreError> {
        let row: Option<SessionRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT session_id, creation_time, uri, method, serverdict \
                 FROM ui_auth_sessions WHERE session_id = $1",
            )
            .bind(session_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|row| UiAuthSession {
            session_id: row.session_id,
            creation_time_ms: row.creation_time,
            uri: row.uri,
            method: row.method,
            // Written by homekey or Synapse as a JSON object; anything else counts as empty.
            serverdict: serde_json::from_str(&row.serverdict).unwrap_or_default(),
        }))
    }

    /// Sets keys of a session's server data (the others stay), in one write.
    pub async fn set_ui_auth_session_data(
        &self,
        session_id: &str,
        entries: serde_json::Map<String, Value>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let current: Option<String> =
                sqlx::query_scalar("SELECT serverdict FROM ui_auth_sessions WHERE session_id = $1")
                    .bind(session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(current) = current else {
                return Ok(());
            };
            let mut data: serde_json::Map<String, Value> =
                serde_json::from_str(&current).unwrap_or_default();
            data.extend(entries);
            sqlx::query("UPDATE ui_auth_sessions SET serverdict = $2 WHERE session_id = $1")
                .bind(session_id)
                .bind(Value::Object(data).to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a completed stage and what it proved (for a password, the user ID).
    pub async fn complete_ui_auth_stage(
        &self,
        session_id: &str,
        stage_type: &str,
        result: &Value,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO ui_auth_sessions_credentials (session_id, stage_type, result) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id, stage_type) DO UPDATE SET result = excluded.result",
            )
            .bind(session_id)
            .bind(stage_type)
            .bind(result.to_string())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The stages completed in a session, with their results.
    pub async fn completed_ui_auth_stages(
        &self,
        session_id: &str,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT stage_type, result FROM ui_auth_sessions_credentials \
                 WHERE session_id = $1 ORDER BY stage_type",
            )
            .bind(session_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(stage, result)| {
                let result = serde_json::from_str(&result).unwrap_or(Value::Null);
                (stage, result)
            })
            .collect())
    }

    /// Completes a sign-up's `m.login.registration_token` stage: in one transaction, spends
    /// a use of `token` (one statement that checks and counts, so two sign-ups cannot both
    /// take its last use) and records the token as the stage's result, which holds the use
    /// until the sign-up makes its account or its session expires. A session that already
    /// holds a token spends nothing again.
    pub async fn complete_registration_token_stage(
        &self,
        session_id: &str,
        token: &str,
        now_ms: i64,
    ) -> Result<TokenStage, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let held: Option<String> = sqlx::query_scalar(
                "SELECT result FROM ui_auth_sessions_credentials \
                 WHERE session_id = $1 AND stage_type = $2",
            )
            .bind(session_id)
            .bind(REGISTRATION_TOKEN_STAGE)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(held) = held {
                let same = held_token(&held).as_deref() == Some(token);
                return Ok(if same {
                    TokenStage::AlreadyHeld
                } else {
                    TokenStage::Changed
                });
            }
            if !super::registration_tokens::spend_registration_token!(&mut tx, token, now_ms) {
                return Ok(TokenStage::Invalid);
            }
            let recorded = sqlx::query(
                "INSERT INTO ui_auth_sessions_credentials (session_id, stage_type, result) \
                 SELECT session_id, $2, $3 FROM ui_auth_sessions WHERE session_id = $1 \
                 ON CONFLICT (session_id, stage_type) DO NOTHING",
            )
            .bind(session_id)
            .bind(REGISTRATION_TOKEN_STAGE)
            .bind(Value::String(token.to_owned()).to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if recorded == 0 {
                // The session went (expired) or a request of the same session got there
                // first: this one spends nothing.
                return Ok(TokenStage::Invalid);
            }
            tx.commit().await?;
            Ok(TokenStage::Spent)
        })
    }

    /// Deletes a session whose operation has been carried out: it authorises nothing more.
    pub async fn delete_ui_auth_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.delete_ui_auth_sessions(Some(session_id), 0, 0)
            .await
            .map(|_| ())
    }

    /// Deletes the sessions created before `created_before_ms`, and the sign-ups' (sessions
    /// of `/register`) created before `sign_ups_created_before_ms`, giving back the
    /// registration token uses the unfinished sign-ups held; returns how many went.
    pub async fn delete_expired_ui_auth_sessions(
        &self,
        created_before_ms: i64,
        sign_ups_created_before_ms: i64,
    ) -> Result<u64, StoreError> {
        self.delete_ui_auth_sessions(None, created_before_ms, sign_ups_created_before_ms)
            .await
    }

    /// Deletes one session, or (`None`) every expired session (see
    /// [`Store::delete_expired_ui_auth_sessions`]).
    async fn delete_ui_auth_sessions(
        &self,
        session_id: Option<&str>,
        created_before_ms: i64,
        sign_ups_created_before_ms: i64,
    ) -> Result<u64, StoreError> {
        // `$1` picks one session; NULL means every session created before `$2`, and every
        // sign-up's created before `$3`.
        const SESSIONS: &str = "SELECT session_id FROM ui_auth_sessions \
             WHERE session_id = $1 OR ($1 IS NULL AND (creation_time < $2 \
             OR (uri LIKE '%/register' AND creation_time < $3)))";
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let held: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT result FROM ui_auth_sessions_credentials \
                 WHERE stage_type = $4 AND session_id IN ({SESSIONS})"
            ))
            .bind(session_id)
            .bind(created_before_ms)
            .bind(sign_ups_created_before_ms)
            .bind(REGISTRATION_TOKEN_STAGE)
            .fetch_all(&mut *tx)
            .await?;
            for token in held.iter().filter_map(|result| held_token(result)) {
                // `false` if the token was deleted meanwhile: nothing to give back.
                let _given_back =
                    super::registration_tokens::release_registration_token!(&mut tx, &token);
            }
            sqlx::query(&format!(
                "DELETE FROM ui_auth_sessions_credentials WHERE session_id IN ({SESSIONS})"
            ))
            .bind(session_id)
            .bind(created_before_ms)
            .bind(sign_ups_created_before_ms)
            .execute(&mut *tx)
            .await?;
            let deleted = sqlx::query(&format!(
                "DELETE FROM ui_auth_sessions WHERE session_id IN ({SESSIONS})"
            ))
            .bind(session_id)
            .bind(created_before_ms)
            .bind(sign_ups_created_before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(deleted)
        })
    }
}

/// The stage type of a registration token, whose result in a session is the token held.
pub const REGISTRATION_TOKEN_STAGE: &str = "m.login.registration_token";

/// What [`Store::complete_registration_token_stage`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStage {
    /// A use was spent and the session holds it.
    Spent,
    /// The session already held this token: nothing spent again.
    AlreadyHeld,
    /// The session holds another token (Synapse's "Registration token has changed").
    Changed,
    /// Unknown, expired or used up: nothing spent.
    Invalid,
}

/// The token a registration token stage's result holds (a JSON string).
fn held_token(result: &str) -> Option<String> {
    match serde_json::from_str(result) {
        Ok(Value::String(token)) => Some(token),
        _ => None,
    }
}
