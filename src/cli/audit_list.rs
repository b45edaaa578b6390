//! `homekey audit list`: who changed which account, and how, newest first, from homekey's
//! audit log (a Synapse database has none).

use serde_json::json;

use super::operator::{CommandError, DatabaseSelection, EXIT_CODES_HELP, out};
use super::time::{format_utc, parse_duration_ms};
use crate::accounts::now_ms;
use crate::store::AuditFilter;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// The records of changes made through the CLI and the Admin API, newest first.
    #[command(after_help = EXIT_CODES_HELP)]
    List(AuditListArgs),
}

#[derive(Debug, clap::Args)]
pub struct AuditListArgs {
    /// Only the changes to this user (a localpart or a full user ID).
    #[arg(long)]
    pub user: Option<String>,
    /// Only the changes of the last DURATION, e.g. 30m, 24h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub since: Option<i64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

pub async fn run(args: AuditArgs) -> Result<(), CommandError> {
    let AuditCommand::List(args) = args.command;
    let op = args.db.open().await?;
    let target = match &args.user {
        Some(user) => Some(op.user_id(user)?.as_str().to_owned()),
        None => None,
    };
    let records = op
        .accounts
        .list_audit(&AuditFilter {
            target,
            since_ms: args.since.map(|ms| now_ms().saturating_sub(ms)),
            ..AuditFilter::default()
        })
        .await?;
    if args.json {
        let records: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "ts_ms": r.ts_ms,
                    "actor": r.actor,
                    "action": r.action,
                    "user_id": r.target,
                    "details": r.details,
                })
            })
            .collect();
        out!("{:#}", json!({ "records": records }));
        return Ok(());
    }
    let width = |column: fn(&crate::store::AuditRecord) -> usize| {
        records.iter().map(column).max().unwrap_or(0)
    };
    let actor_width = width(|r| r.actor.chars().count());
    let action_width = width(|r| r.action.chars().count());
    let target_width = width(|r| r.target.as_deref().map_or(1, |t| t.chars().count()));
    for r in &records {
        out!(
            "{}  {:<actor_width$}  {:<action_width$}  {:<target_width$}  {}",
            format_utc(r.ts_ms),
            r.actor,
            r.action,
            r.target.as_deref().unwrap_or("-"),
            r.details
        );
    }
    if records.is_empty() {
        eprintln!("no audit records match");
    }
    Ok(())
}
