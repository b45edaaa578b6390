//! The audit log: who changed which account, and how, in homekey's `homekey_audit_log`.
//!
//! A record is never written on its own: the store write that makes the change takes it and
//! commits it in the change's own transaction ([`commit_audited!`]).

use serde_json::Value;

use super::{BeginWrite, Flavour, Store, StoreError, with_pool};

/// One change to record, handed to the store write that makes the change (see
/// `crate::audit::record`). `details` must never hold a secret.
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

/// Which records a listing returns, newest first: about one target, by one actor, of one
/// action, within a time, a page of them (`offset`, `limit`).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub target: Option<String>,
    pub actor: Option<String>,
    /// An action by its name (`crate::audit::Action::as_str`).
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    /// Only the records made before this (ms since the epoch).
    pub until_ms: Option<i64>,
    pub offset: Option<i64>,
    pub limit: Option<i64>,
}

/// The condition of [`AuditFilter`]'s records, its values bound as `$1` to `$5`.
const AUDIT_MATCHES: &str = "($1 IS NULL OR target = $1) AND ($2 IS NULL OR actor = $2) \
     AND ($3 IS NULL OR action = $3) AND ts_ms >= $4 AND ts_ms < $5";

impl NewAuditRecord {
    /// The log line of a committed record: at `info`, target `homekey::audit`. Written by
    /// [`commit_audited!`] once the change is committed, on either flavour of database.
    pub(crate) fn log_committed(&self) {
        tracing::info!(
            target: "homekey::audit",
            actor = self.actor,
            action = self.action,
            user = self.target.as_deref().unwrap_or("-"),
            details = %self.details,
            "audit"
        );
    }
}

/// Commits `$tx`, a write transaction of `$store`, with the audit records of its change, so
/// that the change and its record are kept together or not at all. `$records` is anything
/// that iterates over `&NewAuditRecord` (an `Option<&NewAuditRecord>`, a `Vec` of them).
///
/// In homekey's database the records are inserted into `homekey_audit_log` inside `$tx`, in
/// a few multi-row statements (one on PostgreSQL: see `bulk_rows`), then `$tx` commits; a
/// record that cannot be written fails the whole operation with
/// [`StoreError::AuditNotWritten`] and nothing is changed. A Synapse database has no audit
/// table (homekey adds none to Synapse's schema): there `$tx` commits alone. On both, once
/// committed and not before, each record's log line is written.
///
/// Every store write that an admin or an operator makes ends with this in place of
/// `tx.commit()`, and takes its record as a parameter. (A macro for the same reason as
/// the steps in `transaction.rs`: generic sqlx executors make the futures lose `Send`.)
macro_rules! commit_audited {
    ($tx:ident, $store:expr, $records:expr) => {{
        let records: Vec<&$crate::store::NewAuditRecord> = $records.into_iter().collect();
        if $store.flavour == $crate::store::Flavour::Homekey {
            for chunk in records.chunks($crate::store::bulk_rows::rows_per_statement(&$tx)) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO homekey_audit_log (ts_ms, actor, action, target, details) ",
                );
                $crate::store::bulk_rows::BulkRows::push_audit(&mut insert, chunk);
                insert
                    .build()
                    .execute(&mut *$tx)
                    .await
                    .map_err($crate::store::StoreError::audit_not_written)?;
            }
        }
        $tx.commit().await?;
        for record in records {
            record.log_committed();
        }
    }};
}
pub(crate) use commit_audited;

impl Store {
    /// Records an event that changes no account but is kept all the same (a user refusing an
    /// OAuth client).
    pub async fn record_audit(&self, record: &NewAuditRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            commit_audited!(tx, self, Some(record));
            Ok(())
        })
    }

    /// The records matching `filter`, newest first. Refused on a Synapse database.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "it has no homekey audit log; audit records are kept only in homekey's database",
            ));
        }
        let sql = format!(
            "SELECT id, ts_ms, actor, action, target, details FROM homekey_audit_log \
             WHERE {AUDIT_MATCHES} ORDER BY ts_ms DESC, id DESC LIMIT $6 OFFSET $7"
        );
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(filter.target.as_deref())
                .bind(filter.actor.as_deref())
                .bind(filter.action.as_deref())
                .bind(filter.since_ms.unwrap_or(0))
                .bind(filter.until_ms.unwrap_or(i64::MAX))
                .bind(filter.limit.unwrap_or(i64::MAX))
                .bind(filter.offset.unwrap_or(0).max(0))
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

    /// How many records match `filter` (its `offset` and `limit` aside). Refused on a
    /// Synapse database.
    pub async fn count_audit(&self, filter: &AuditFilter) -> Result<i64, StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "it has no homekey audit log; audit records are kept only in homekey's database",
            ));
        }
        let sql = format!("SELECT COUNT(*) FROM homekey_audit_log WHERE {AUDIT_MATCHES}");
        with_pool!(self, |pool| {
            Ok(sqlx::query_scalar(&sql)
                .bind(filter.target.as_deref())
                .bind(filter.actor.as_deref())
                .bind(filter.action.as_deref())
                .bind(filter.since_ms.unwrap_or(0))
                .bind(filter.until_ms.unwrap_or(i64::MAX))
                .fetch_one(pool)
                .await?)
        })
    }
}
