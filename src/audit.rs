//! Who changed which account: every change an admin (Admin API) or an operator (CLI) makes
//! leaves a record, which `homekey audit list` shows, and a log line.
//!
//! The record is made before the change, with [`record`], and handed to the store write that
//! makes the change (`Store::set_password_hash`, `Store::set_admin`, …). The store inserts it
//! in the change's own transaction, so the change and its record are kept together or not at
//! all, and writes the log line (target `homekey::audit`) once they are committed. A Synapse
//! database has no audit table: there only the log line is written.

use serde_json::Value;

use crate::accounts::now_ms;
use crate::store::NewAuditRecord;

/// The record of a change `actor` is about to make to the account `target`, stamped now.
/// `details` says what changes, never a secret.
pub fn record(actor: &str, action: &str, target: &str, details: Value) -> NewAuditRecord {
    NewAuditRecord {
        ts_ms: now_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: Some(target.to_owned()),
        details,
    }
}
