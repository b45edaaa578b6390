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

    /// Deletes a session whose operation has been carried out: it authorises nothing more.
    pub async fn delete_ui_auth_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.delete_ui_auth_sessions(Some(session_id), 0)
            .await
            .map(|_| ())
    }

    /// Deletes the sessions created before `created_before_ms`; returns how many went.
    pub async fn delete_expired_ui_auth_sessions(
        &self,
        created_before_ms: i64,
    ) -> Result<u64, StoreError> {
        self.delete_ui_auth_sessions(None, created_before_ms).await
    }

    /// Deletes one session, or (`None`) every session created before `created_before_ms`.
    async fn delete_ui_auth_sessions(
        &self,
        session_id: Option<&str>,
        created_before_ms: i64,
    ) -> Result<u64, StoreError> {
        // `$1` picks one session; NULL means every session created before `$2`.
        const SESSIONS: &str = "SELECT session_id FROM ui_auth_sessions \
             WHERE session_id = $1 OR ($1 IS NULL AND creation_time < $2)";
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(&format!(
                "DELETE FROM ui_auth_sessions_credentials WHERE session_id IN ({SESSIONS})"
            ))
            .bind(session_id)
            .bind(created_before_ms)
            .execute(&mut *tx)
            .await?;
            let deleted = sqlx::query(&format!(
                "DELETE FROM ui_auth_sessions WHERE session_id IN ({SESSIONS})"
            ))
            .bind(session_id)
            .bind(created_before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(deleted)
        })
    }
}
