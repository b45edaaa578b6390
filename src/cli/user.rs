//! `homekey user …`: an operator's account commands, straight on the database (homekey's own
//! or an existing Synapse one). Each change is one transaction of the store, which holds its
//! audit record (none on a Synapse database, which has no audit table); on a Synapse database
//! each change says that a running Synapse may not see it.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::operator::{CommandError, DatabaseSelection, EXIT_CODES_HELP, out};
use super::password_input::NewPasswordArgs;
use super::time::{format_utc, parse_duration_ms};
use crate::accounts::{NewAccount, NewAccountPassword, OnSynapse, Outcome, now_ms};
use crate::store::{Deactivation, Device, Flavour, User, UserFilter};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an account with a password (prompted for unless --password-stdin or -p).
    #[command(after_help = EXIT_CODES_HELP)]
    Create(CreateArgs),
    /// Set a user's password (prompted for unless --password-stdin or -p).
    #[command(after_help = EXIT_CODES_HELP)]
    SetPassword(SetPasswordArgs),
    /// Mail the user a link with which they choose a new password that no one else knows
    /// (to each of the account's e-mail addresses). The mail is queued in the database and
    /// goes out when `homekey serve` runs.
    #[command(after_help = EXIT_CODES_HELP)]
    SendResetLink(SendResetLinkArgs),
    /// Grant (true) or remove (false) server admin rights.
    #[command(after_help = EXIT_CODES_HELP)]
    SetAdmin(SetAdminArgs),
    /// Deactivate an account: no password, no devices, no tokens; it can't log in again.
    #[command(after_help = EXIT_CODES_HELP)]
    Deactivate(LastAdminGuarded),
    /// Lock an account: its requests are refused until it is unlocked.
    #[command(after_help = EXIT_CODES_HELP)]
    Lock(LastAdminGuarded),
    /// Unlock a locked account.
    #[command(after_help = EXIT_CODES_HELP)]
    Unlock(OneUser),
    /// Log a user out everywhere: every access token, refresh token and device goes.
    #[command(after_help = EXIT_CODES_HELP)]
    Logout(OneUser),
    /// Show an account: flags, creation time, devices (never the password hash).
    #[command(after_help = EXIT_CODES_HELP)]
    Show(ShowArgs),
    /// List accounts (guests and locked ones included; deactivated ones with --deactivated).
    #[command(after_help = EXIT_CODES_HELP)]
    List(ListArgs),
    /// Mint an access token for a user on a new device, as a login would, and print it.
    /// Refused on a Synapse database: use its Admin API's login-as-user there.
    #[command(after_help = EXIT_CODES_HELP)]
    Login(LoginArgs),
    /// Create the accounts listed in a CSV file (with a header) or a JSON-lines file; users
    /// that already exist are skipped, so an interrupted import can simply be run again.
    #[command(after_help = IMPORT_HELP)]
    Import(super::user_import::ImportArgs),
    /// An account's e-mail addresses: add, remove, list.
    Email(super::user_email::EmailArgs),
}

const IMPORT_HELP: &str = "Fields (CSV columns or JSON keys): user (required: a localpart or a \
     full user ID), password or password_hash (a bcrypt or argon2id hash; neither means an \
     account without a password), admin (true/false), displayname.\n\n\
     Exit codes: 0 done; 1 refused (a bad line: nothing is imported) or failed; 2 bad usage; \
     3 database unreachable.";

/// A command about one user.
#[derive(Debug, clap::Args)]
pub struct OneUser {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The new user: a localpart (alice) or a full user ID of this server.
    pub user: String,
    /// Make the user a server admin.
    #[arg(long)]
    pub admin: bool,
    /// The display name (default: the localpart, as Synapse sets it).
    #[arg(long, value_name = "NAME")]
    pub displayname: Option<String>,
    /// Succeed without changing anything if the user already exists.
    #[arg(long)]
    pub exists_ok: bool,
    /// Set the password even if password_config.policy refuses it.
    #[arg(long)]
    pub ignore_policy: bool,
    #[command(flatten)]
    pub password: NewPasswordArgs,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct SetPasswordArgs {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// Also log the user out everywhere (every token and device), in the same transaction.
    #[arg(long)]
    pub logout_devices: bool,
    /// Set the password even if password_config.policy refuses it.
    #[arg(long)]
    pub ignore_policy: bool,
    #[command(flatten)]
    pub password: NewPasswordArgs,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct SendResetLinkArgs {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// Sign every device of the user out when they set the new password.
    #[arg(long)]
    pub logout_devices: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct SetAdminArgs {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// true to grant admin rights, false to remove them.
    #[arg(action = clap::ArgAction::Set, value_parser = clap::value_parser!(bool))]
    pub admin: bool,
    /// Remove the rights of the last admin who can act, leaving the server with none.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

/// A user whose change could take away the server's last admin.
#[derive(Debug, clap::Args)]
pub struct LastAdminGuarded {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// Go ahead even if this is the last admin who can act, leaving the server with none.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// Print JSON (Synapse's Admin API field names) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only server admins.
    #[arg(long)]
    pub admins: bool,
    /// Include deactivated accounts.
    #[arg(long)]
    pub deactivated: bool,
    /// Only users whose ID or display name contains this.
    #[arg(long, value_name = "SUBSTR")]
    pub name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// A localpart of this server (alice) or a full user ID (@alice:example.com).
    pub user: String,
    /// How long the token stays valid, e.g. 30m, 24h, 7d (default: until logged out).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub valid_for: Option<i64>,
    /// Print JSON (user_id, device_id, access_token, valid_until_ms) instead of the token.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

/// Runs one `homekey user …` command.
pub async fn run(args: UserArgs) -> Result<(), CommandError> {
    match args.command {
        UserCommand::Create(args) => create(args).await,
        UserCommand::SetPassword(args) => set_password(args).await,
        UserCommand::SendResetLink(args) => send_reset_link(args).await,
        UserCommand::SetAdmin(args) => set_admin(args).await,
        UserCommand::Deactivate(args) => deactivate(args).await,
        UserCommand::Lock(args) => set_locked(&args.user, &args.db, true, args.force).await,
        UserCommand::Unlock(args) => set_locked(&args.user, &args.db, false, false).await,
        UserCommand::Logout(args) => logout(args).await,
        UserCommand::Show(args) => show(args).await,
        UserCommand::List(args) => list(args).await,
        UserCommand::Login(args) => login(args).await,
        UserCommand::Import(args) => super::user_import::run(args).await,
        UserCommand::Email(args) => super::user_email::run(args).await,
    }
}

async fn create(args: CreateArgs) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user_id = op.user_id(&args.user)?;
    // Before asking for a password: is the name taken (in any case, as Synapse checks)?
    if let Some(existing) = op
        .accounts
        .find_users_case_insensitive(user_id.as_str())
        .await?
        .first()
    {
        if args.exists_ok {
            out!("{} already exists; left as it is", existing.name);
            return Ok(());
        }
        return Err(CommandError::Refused(format!(
            "user {} already exists",
            existing.name
        )));
    }
    let user_id = op.new_user_id(&args.user)?;
    let actor = op.actor(false, args.ignore_policy);
    let password = args.password.read()?;
    op.check_new_password(&actor, &password)?;
    let created = op
        .accounts
        .create_user(
            &actor,
            NewAccount {
                user_id: user_id.clone(),
                password: NewAccountPassword::Plain(password),
                admin: args.admin,
                user_type: None,
                displayname: args.displayname,
                avatar_url: None,
                threepids: Vec::new(),
            },
        )
        .await;
    match created {
        Err(crate::accounts::AccountError::UserExists(_)) if args.exists_ok => {
            out!("{user_id} already exists; left as it is");
            return Ok(());
        }
        other => other?,
    };
    let role = if args.admin { " (server admin)" } else { "" };
    op.changed(&format!("created {user_id}{role}"));
    Ok(())
}

async fn set_password(args: SetPasswordArgs) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.existing_user(&args.user).await?;
    if user.deactivated {
        // Before asking for a password the account service would refuse.
        return Err(crate::accounts::AccountError::DeactivatedGetsNoPassword(user.name).into());
    }
    if args.logout_devices {
        // Before asking for a password the account service would refuse.
        op.accounts
            .refuse_on_synapse(&user.name, OnSynapse::Logout)?;
    }
    let actor = op.actor(false, args.ignore_policy);
    let password = args.password.read()?;
    op.check_new_password(&actor, &password)?;
    op.accounts
        .set_password(&actor, &user.name, password, args.logout_devices)
        .await?;
    let also = if args.logout_devices {
        "; every device logged out"
    } else {
        ""
    };
    op.changed(&format!("password of {} changed{also}", user.name));
    Ok(())
}

async fn send_reset_link(args: SendResetLinkArgs) -> Result<(), CommandError> {
    use crate::accounts::recovery::RecoveryError;
    let op = args.db.open().await?;
    let user = op.existing_user(&args.user).await?;
    let sent_to = op
        .accounts
        .send_reset_link(
            &op.actor(false, false),
            &user.name,
            None,
            args.logout_devices,
        )
        .await
        .map_err(|err| match err {
            RecoveryError::Account(err) => err.into(),
            other => CommandError::Refused(other.to_string()),
        })?;
    let also = if args.logout_devices {
        "; every device is signed out when the password is set"
    } else {
        ""
    };
    op.changed(&format!(
        "reset link for {} queued to {}{also}; the mail goes out when homekey serve runs",
        user.name,
        sent_to.join(", ")
    ));
    Ok(())
}

async fn set_admin(args: SetAdminArgs) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.existing_user(&args.user).await?;
    let is = if args.admin { "is" } else { "is not" };
    let outcome = op
        .accounts
        .set_admin(&op.actor(args.force, false), &user.name, args.admin)
        .await?;
    match outcome {
        // Nothing to change, and nothing to audit; scripts can tell by the wording.
        Outcome::Unchanged => out!("{} already {is} a server admin", user.name),
        Outcome::Changed => op.changed(&format!("{} {is} a server admin", user.name)),
    }
    Ok(())
}

async fn deactivate(args: LastAdminGuarded) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.existing_user(&args.user).await?;
    let done = op
        .accounts
        .deactivate(&op.actor(args.force, false), &user.name, false)
        .await?;
    match done {
        Deactivation::AlreadyDeactivated => out!("{} was already deactivated", user.name),
        Deactivation::Done => op.changed(&format!(
            "deactivated {}: password removed, every device logged out",
            user.name
        )),
    }
    Ok(())
}

async fn set_locked(
    user: &str,
    db: &DatabaseSelection,
    locked: bool,
    force: bool,
) -> Result<(), CommandError> {
    let op = db.open().await?;
    let user = op.existing_user(user).await?;
    op.accounts
        .set_locked(&op.actor(force, false), &user.name, locked)
        .await?;
    let done = if locked { "locked" } else { "unlocked" };
    op.changed(&format!("{done} {}", user.name));
    Ok(())
}

async fn logout(args: OneUser) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.existing_user(&args.user).await?;
    let tokens = op
        .accounts
        .logout_everywhere(&op.actor(false, false), &user.name)
        .await?;
    op.changed(&format!(
        "logged {} out everywhere ({tokens} access token{} removed)",
        user.name,
        plural(tokens)
    ));
    Ok(())
}

async fn show(args: ShowArgs) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let user = op.user_as_login_finds(&args.user).await?;
    let devices = op.accounts.list_devices(&user.name).await?;
    // Which devices are OAuth sessions, and of which app (the others are password logins).
    let apps = op.accounts.session_apps(&user.name).await?;
    let emails: Vec<String> = op
        .accounts
        .user_threepids(&user.name)
        .await?
        .into_iter()
        .filter(|t| t.threepid.medium == crate::threepid::Medium::Email)
        .map(|t| t.threepid.address)
        .collect();
    if args.json {
        let mut body = user_json(&user);
        body["emails"] = json!(emails);
        body["devices"] = devices
            .iter()
            .map(|device| {
                let mut json = device_json(device);
                json["oauth_app"] = json!(apps.get(&device.device_id));
                json
            })
            .collect();
        out!("{body:#}");
        return Ok(());
    }
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    out!("{}", user.name);
    let rows = [
        ("display name", user.displayname.clone().unwrap_or_default()),
        ("state", state(&user).to_owned()),
        ("server admin", yes_no(user.admin).to_owned()),
        ("shadow-banned", yes_no(user.shadow_banned).to_owned()),
        ("suspended", yes_no(user.suspended).to_owned()),
        (
            "password",
            if has_password(&user) { "set" } else { "none" }.to_owned(),
        ),
        ("guest", yes_no(user.is_guest).to_owned()),
        ("user type", user.user_type.clone().unwrap_or_default()),
        ("created", format_utc(user.creation_ts * 1000)),
        ("e-mail", emails.join(", ")),
        ("devices", devices.len().to_string()),
    ];
    for (label, value) in rows {
        out!("  {label:<13} {value}");
    }
    for device in &devices {
        let name = device.display_name.as_deref().unwrap_or("");
        let seen = device
            .last_seen
            .map(|ms| format!("last seen {}", format_utc(ms)))
            .unwrap_or_default();
        let how = match apps.get(&device.device_id) {
            Some(app) => format!("signed in with OAuth by {app}"),
            None => "password login".to_owned(),
        };
        out!("    {:<12} {name:<24} {how:<32} {seen}", device.device_id);
    }
    Ok(())
}

async fn list(args: ListArgs) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    let filter = UserFilter {
        // In the localpart or the display name, ignoring case (Synapse's `name`).
        name_contains: args.name.clone(),
        admins: args.admins.then_some(true),
        include_guests: true,
        include_deactivated: args.deactivated,
        include_locked: true,
        ..UserFilter::default()
    };
    const PAGE: i64 = 500;
    let mut users = Vec::new();
    loop {
        let page = op
            .accounts
            .list_users(&filter, users.len() as i64, PAGE)
            .await?;
        let done = page.users.len() < PAGE as usize;
        users.extend(page.users);
        if done {
            break;
        }
    }
    if args.json {
        let body = json!({
            "users": users.iter().map(user_json).collect::<Vec<_>>(),
            "total": users.len(),
        });
        out!("{body:#}");
        return Ok(());
    }
    let width = users
        .iter()
        .map(|u| u.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    out!("{:<width$}  ADMIN  STATE        DISPLAY NAME", "USER");
    for user in &users {
        out!(
            "{:<width$}  {:<5}  {:<11}  {}",
            user.name,
            if user.admin { "yes" } else { "no" },
            state(user),
            user.displayname.as_deref().unwrap_or("")
        );
    }
    out!("{} user{}", users.len(), plural(users.len() as u64));
    Ok(())
}

async fn login(args: LoginArgs) -> Result<(), CommandError> {
    let op = args.db.open().await?;
    if op.accounts.flavour() == Flavour::Synapse {
        return Err(CommandError::Refused(
            "this is a Synapse database: homekey does not mint access tokens in it (Synapse \
             numbers them in its running processes); ask the running Synapse instead: \
             POST /_synapse/admin/v1/users/<user_id>/login"
                .into(),
        ));
    }
    let user = op.existing_user(&args.user).await?;
    let valid_until_ms = args.valid_for.map(|ms| now_ms().saturating_add(ms));
    let session = op
        .accounts
        .open_session(
            &op.actor(false, false),
            &user.name,
            "homekey user login",
            valid_until_ms,
        )
        .await?;
    if args.json {
        let body = json!({
            "user_id": session.user_id,
            "device_id": session.device_id,
            "access_token": session.access_token.expose_secret(),
            "valid_until_ms": valid_until_ms,
        });
        out!("{body:#}");
    } else {
        out!("{}", session.access_token.expose_secret());
    }
    let until = valid_until_ms.map_or_else(
        || "until logged out".to_owned(),
        |ms| format!("until {}", format_utc(ms)),
    );
    eprintln!(
        "an access token for {} on device {}, valid {until}; `homekey user logout` ends it",
        user.name, session.device_id
    );
    Ok(())
}

/// One word for the account's state, the strongest first.
fn state(user: &User) -> &'static str {
    if user.deactivated && user.erased {
        "deactivated and erased"
    } else if user.deactivated {
        "deactivated"
    } else if user.locked {
        "locked"
    } else {
        "active"
    }
}

fn has_password(user: &User) -> bool {
    user.password_hash
        .as_ref()
        .is_some_and(|hash| !hash.expose_secret().is_empty())
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// An account in JSON, with the field names of Synapse's Admin API (flags as booleans,
/// `creation_ts` in seconds as Synapse keeps it), plus whether a password is set. Never
/// the hash itself.
pub fn user_json(user: &User) -> Value {
    json!({
        "name": user.name,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "admin": user.admin,
        "deactivated": user.deactivated,
        "locked": user.locked,
        "shadow_banned": user.shadow_banned,
        "suspended": user.suspended,
        "erased": user.erased,
        "approved": user.approved,
        "is_guest": user.is_guest,
        "user_type": user.user_type,
        "appservice_id": user.appservice_id,
        "creation_ts": user.creation_ts,
        "password_set": has_password(user),
    })
}

fn device_json(device: &Device) -> Value {
    json!({
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ts": device.last_seen,
        "last_seen_ip": device.ip,
        "last_seen_user_agent": device.user_agent,
    })
}
