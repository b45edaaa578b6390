//! `homekey user email add|remove|list USER [ADDRESS]`: an account's e-mail addresses
//! (Synapse's `user_threepids`), on homekey's database or a Synapse one. An address is kept
//! canonical (its domain lower-cased, its local part too, as Synapse keeps it) and belongs to
//! one account at most. Beside Synapse, Synapse gets the account's new list.

use super::operator::{CommandError, DatabaseSelection, EXIT_CODES_HELP, out};
use crate::accounts::AccountError;
use crate::threepid::Medium;

#[derive(Debug, clap::Args)]
pub struct EmailArgs {
    #[command(subcommand)]
    pub command: EmailCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EmailCommand {
    /// Give an account an e-mail address (for signing in by e-mail, and recovery).
    #[command(after_help = EXIT_CODES_HELP)]
    Add(OneAddress),
    /// Take an e-mail address from an account.
    #[command(after_help = EXIT_CODES_HELP)]
    Remove(OneAddress),
    /// List an account's e-mail addresses, one a line.
    #[command(after_help = EXIT_CODES_HELP)]
    List(super::user::OneUser),
}

#[derive(Debug, clap::Args)]
pub struct OneAddress {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// The e-mail address.
    pub address: String,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

pub async fn run(args: EmailArgs) -> Result<(), CommandError> {
    match args.command {
        EmailCommand::Add(args) => change(args, true).await,
        EmailCommand::Remove(args) => change(args, false).await,
        EmailCommand::List(args) => list(args).await,
    }
}

async fn change(args: OneAddress, add: bool) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.existing_user(&args.user).await?;
    if add && user.deactivated {
        return Err(CommandError::Refused(format!(
            "user {} is deactivated: a deactivated account keeps no e-mail address",
            user.name
        )));
    }
    let actor = op.actor(false, false);
    let changed = op
        .accounts
        .change_email(&actor, &user.name, &args.address, add)
        .await
        .map_err(|err| match err {
            AccountError::ThreepidInUse(_) => {
                CommandError::Refused(format!("{err}: it belongs to another account"))
            }
            other => other.into(),
        })?;
    let address = crate::threepid::Threepid::email(&args.address)
        .map(|t| t.address)
        .unwrap_or_default();
    match (changed, add) {
        (true, true) => op.changed(&format!("added {address} to {}", user.name)),
        (true, false) => op.changed(&format!("removed {address} from {}", user.name)),
        (false, true) => out!("{} already has {address}; nothing changed", user.name),
        (false, false) => {
            return Err(CommandError::Refused(format!(
                "{} has no e-mail address {address}",
                user.name
            )));
        }
    }
    Ok(())
}

async fn list(args: super::user::OneUser) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.user_as_login_finds(&args.user).await?;
    for threepid in op.accounts.user_threepids(&user.name).await? {
        if threepid.threepid.medium == Medium::Email {
            out!("{}", threepid.threepid.address);
        }
    }
    Ok(())
}
