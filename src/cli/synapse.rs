//! `homekey synapse status` and `homekey synapse reconcile`: the work homekey owes the Synapse
//! it serves (beside Synapse), and bringing Synapse's users and devices in line with
//! homekey's when the two have diverged (after a restore of either).

use super::operator::{CommandError, DatabaseSelection, EXIT_CODES_HELP, out};
use super::time::format_utc;
use crate::accounts::beside_synapse::Delivery;

#[derive(Debug, clap::Args)]
pub struct SynapseArgs {
    #[command(subcommand)]
    pub command: SynapseCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SynapseCommand {
    /// What is owed to Synapse and not delivered yet, and what Synapse refused. Exits 1 if
    /// Synapse refused something an operator must look at (a wrong secret, an unknown user).
    #[command(after_help = EXIT_CODES_HELP)]
    Status {
        #[command(flatten)]
        db: DatabaseSelection,
    },
    /// Makes Synapse's users and devices match homekey's, checking Synapse itself: devices
    /// Synapse lost are made again, devices homekey does not have are deleted, deactivation
    /// and locks follow homekey's.
    #[command(after_help = EXIT_CODES_HELP)]
    Reconcile {
        /// The user (a localpart or a full user ID).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        user: Option<String>,
        /// Every account of homekey's.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        db: DatabaseSelection,
    },
}

pub async fn run(args: SynapseArgs) -> Result<(), CommandError> {
    match args.command {
        SynapseCommand::Status { db } => status(db).await,
        SynapseCommand::Reconcile { user, all: _, db } => reconcile(db, user).await,
    }
}

async fn status(db: DatabaseSelection) -> Result<(), CommandError> {
    let op = db.open().await?;
    if !op.accounts.beside_synapse() {
        return Err(crate::accounts::AccountError::NotBesideSynapse.into());
    }
    let owed = op.accounts.owed_to_synapse().await?;
    if owed.is_empty() {
        out!("nothing is owed to Synapse");
        return Ok(());
    }
    let alarms = owed.iter().filter(|work| work.alarm).count();
    out!("owed to Synapse: {} user(s), {alarms} refused", owed.len());
    for work in &owed {
        let state = if work.alarm {
            "REFUSED"
        } else if work.attempts == 0 {
            "due"
        } else {
            "retrying"
        };
        let next = if work.next_attempt_ms == i64::MAX {
            "not retried: an operator must decide".to_owned()
        } else {
            format!("next try {}", format_utc(work.next_attempt_ms))
        };
        out!(
            "{}\t{state}\tsince {}\t{} attempt(s)\t{next}\t{}",
            work.user_id,
            format_utc(work.owed_since_ms),
            work.attempts,
            work.last_error.as_deref().unwrap_or("-"),
        );
    }
    if alarms > 0 {
        return Err(CommandError::Refused(format!(
            "Synapse refused work for {alarms} user(s): check the shared secret (synapse.secret \
             = Synapse's matrix_authentication_service.secret), or run `homekey synapse \
             reconcile USER`"
        )));
    }
    Ok(())
}

async fn reconcile(db: DatabaseSelection, user: Option<String>) -> Result<(), CommandError> {
    let op = db.open().await?;
    if !op.accounts.beside_synapse() {
        return Err(crate::accounts::AccountError::NotBesideSynapse.into());
    }
    let users = match user {
        Some(given) => Some(vec![op.existing_user(&given).await?.name]),
        None => None,
    };
    let results = op.accounts.reconcile_with_synapse(users).await?;
    let mut failed = 0;
    for (user_id, delivery) in &results {
        match delivery {
            Delivery::StillOwed(why) => {
                failed += 1;
                out!("{user_id}\tnot reconciled: {why}");
            }
            Delivery::Delivered | Delivery::NothingOwed => out!("{user_id}\treconciled"),
        }
    }
    if failed > 0 {
        return Err(CommandError::Refused(format!(
            "{failed} of {} user(s) not reconciled; they stay owed and `homekey serve` retries them",
            results.len()
        )));
    }
    Ok(())
}
