//! The audit log: who changed which account, and how, in homekey's `homekey_audit_log`.

use serde_json::Value;

use super::{Flavour, Store, StoreError, with_pool};

/// One change to record. `details` must never hold a secret.
#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: Value,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: Value,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    ts_ms: i64,
    actor: String,
    action: String,
    target: Option<String>,
    details: String,
}

/// Which records a listing returns: about one user, since a moment, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub target: Option<String>,
    pub since_ms: Option<i64>,
    pub limit: Option<i64>,
}

impl Store {
    /// Records a change. A Synapse database has no audit table (homekey does not add tables
    /// to Synapse's schema): there the record is not kept, and this returns `false`.
    pub async fn record_audit(&self, record: &NewAuditRecord) -> Result<bool, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Ok(false);
        }
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO homekey_audit_log (ts_ms, actor, action, target, details) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(record.ts_ms)
            .bind(&record.actor)
            .bind(&record.action)
            .bind(record.target.as_deref())
            .bind(record.details.to_string())
            .execute(pool)
            .await?;
            Ok(true)
        })
    }

    /// Records many changes in one transaction, a few multi-row statements (for an import).
    /// As [`Store::record_audit`], nothing is kept in a Synapse database (`false`).
    pub async fn record_audits(&self, records: &[NewAuditRecord]) -> Result<bool, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Ok(false);
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in records.chunks(100) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO homekey_audit_log (ts_ms, actor, action, target, details) ",
                );
                insert.push_values(chunk, |mut row, record| {
                    row.push_bind(record.ts_ms)
                        .push_bind(record.actor.as_str())
                        .push_bind(record.action.as_str())
                        .push_bind(record.target.as_deref())
                        .push_bind(record.details.to_string());
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The records matching `filter`, newest first. Refused on a Synapse database.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "it has no homekey audit log; audit records are kept only in homekey's database",
            ));
        }
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, ts_ms, actor, action, target, details FROM homekey_audit_log \
                 WHERE ($1 IS NULL OR target = $1) AND ts_ms >= $2 \
                 ORDER BY ts_ms DESC, id DESC LIMIT $3",
            )
            .bind(filter.target.as_deref())
            .bind(filter.since_ms.unwrap_or(0))
            .bind(filter.limit.unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|row| AuditRecord {
                id: row.id,
                ts_ms: row.ts_ms,
                actor: row.actor,
                action: row.action,
                target: row.target,
                details: serde_json::from_str(&row.details).unwrap_or(Value::Null),
            })
            .collect())
    }
}
