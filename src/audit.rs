//! Who changed which account: every change an admin (Admin API) or an operator (CLI) makes
//! leaves a log line and, in homekey's own database, a record that `homekey audit list` shows.

use serde_json::Value;

use crate::accounts::now_ms;
use crate::store::{NewAuditRecord, Store, StoreError};

/// Records a change after it happened: a log line at `info` (target `homekey::audit`) and a
/// row in the audit log. `details` says what changed, never a secret.
pub async fn record(
    store: &Store,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: Value,
) -> Result<(), StoreError> {
    tracing::info!(
        target: "homekey::audit",
        actor,
        action,
        user = target.unwrap_or("-"),
        details = %details,
        "audit"
    );
    store
        .record_audit(&NewAuditRecord {
            ts_ms: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            details,
        })
        .await
        .map(|_| ())
}

/// Records changes of one kind made together (an import): a log line each, and their rows
/// in one transaction.
pub async fn record_many(
    store: &Store,
    actor: &str,
    action: &str,
    changes: impl IntoIterator<Item = (String, Value)>,
) -> Result<(), StoreError> {
    let ts_ms = now_ms();
    let records: Vec<NewAuditRecord> = changes
        .into_iter()
        .map(|(target, details)| {
            tracing::info!(
                target: "homekey::audit",
                actor,
                action,
                user = target.as_str(),
                details = %details,
                "audit"
            );
            NewAuditRecord {
                ts_ms,
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: Some(target),
                details,
            }
        })
        .collect();
    store.record_audits(&records).await.map(|_| ())
}
