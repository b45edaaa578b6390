//! `homekey admin …`: the Admin API of a running server (homekey's or a real Synapse's), so
//! no one hand-writes curl again. The token comes from `--token`, `$HOMEKEY_ACCESS_TOKEN`, or
//! the session `homekey admin login` saved (mode 0600, in the user's config directory).

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::operator::{CommandError, out};
use super::password_input::{NewPasswordArgs, read_stdin_line, stdin_is_terminal};
use super::registration_token as token_cli;
use crate::admin_client::{AdminClient, AdminClientError};

const EXIT_CODES_HELP: &str = "Exit codes: 0 done; 1 refused by the server (its errcode and \
     message are printed) or failed; 2 bad usage (no server, no token); 3 server unreachable.";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct AdminArgs {
    /// The server's base URL, e.g. https://matrix.example.com (default: the saved session's).
    #[arg(long, global = true, env = "HOMEKEY_SERVER")]
    pub server: Option<String>,
    /// An admin's access token (default: $HOMEKEY_ACCESS_TOKEN, then the saved session's).
    #[arg(
        long,
        global = true,
        env = "HOMEKEY_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Log in with a password and save the session (token) for the next commands.
    Login {
        /// The admin's user ID or localpart.
        #[arg(long)]
        user: String,
        /// Read the password from the first line of stdin (default: prompt once).
        #[arg(long)]
        password_stdin: bool,
    },
    /// With USER: log that user out everywhere (every device, with its tokens). Without: log
    /// the saved session out on the server and forget it.
    ///
    /// A user's devices are listed, then deleted in one request (Synapse's
    /// `delete_devices`); a device that logs in between the two is not touched, nor is a
    /// token an admin got with login-as-user (it has no device; it ends when it expires or
    /// is logged out itself), on homekey as on Synapse.
    Logout {
        /// The user to log out everywhere (localpart or full user ID).
        user: Option<String>,
    },
    /// Set a user's password; every session of the user ends unless --keep-devices.
    ResetPassword {
        user: String,
        /// Keep the user's devices and tokens logged in.
        #[arg(long)]
        keep_devices: bool,
        #[command(flatten)]
        password: NewPasswordArgs,
    },
    /// Mail the user a link with which they choose a new password themselves (homekey's
    /// own Admin API; to each of the user's e-mail addresses).
    SendResetLink {
        user: String,
        /// Sign every device of the user out when they set the new password.
        #[arg(long)]
        logout_devices: bool,
    },
    /// Users: show, list, create.
    #[command(subcommand)]
    User(AdminUserCommand),
    /// Grant (true) or remove (false) server admin rights.
    SetAdmin {
        user: String,
        #[arg(action = clap::ArgAction::Set)]
        admin: bool,
        /// Remove the rights of the last admin who can act (a homekey server refuses anyway).
        #[arg(long)]
        force: bool,
    },
    /// Deactivate an account (no password, no sessions); --erase also clears its profile.
    Deactivate {
        user: String,
        #[arg(long)]
        erase: bool,
        /// Deactivate the last admin who can act (a homekey server refuses anyway).
        #[arg(long)]
        force: bool,
    },
    /// Where a user is logged in.
    Whois { user: String },
    /// A user's devices.
    Devices {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Registration tokens (invitations to sign up): create, list, show, update, delete.
    #[command(subcommand)]
    RegistrationToken(AdminTokenCommand),
    /// The server's name and version.
    ServerVersion,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminTokenCommand {
    /// Make a token (random unless given), for as many sign-ups and as long as given.
    Create(token_cli::CreateFields),
    /// The tokens, one a line.
    List(token_cli::ListFields),
    /// One token.
    Show(token_cli::ShowFields),
    /// Change how many sign-ups a token admits, or until when.
    Update(token_cli::UpdateFields),
    /// Delete a token.
    Delete {
        /// The token.
        #[arg(id = "registration_token", value_name = "TOKEN")]
        token: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminUserCommand {
    /// One user, as the server has it.
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Users, every page of them.
    List {
        /// In the localpart or display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        admins: bool,
        /// Include deactivated users.
        #[arg(long)]
        deactivated: bool,
        #[arg(long)]
        json: bool,
    },
    /// A user's e-mail addresses: add, remove, list (over `GET` and `PUT v2/users/<id>`).
    #[command(subcommand)]
    Email(AdminEmailCommand),
    /// Create a user (refused if it exists).
    Create {
        user: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        displayname: Option<String>,
        #[command(flatten)]
        password: NewPasswordArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminEmailCommand {
    /// Give a user an e-mail address (for signing in by e-mail, and recovery).
    Add { user: String, address: String },
    /// Take an e-mail address from a user.
    Remove { user: String, address: String },
    /// List a user's e-mail addresses, one a line.
    List { user: String },
}

/// What `admin login` keeps between commands.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSession {
    server: String,
    user_id: String,
    access_token: String,
}

impl From<AdminClientError> for CommandError {
    fn from(err: AdminClientError) -> CommandError {
        match err {
            AdminClientError::Unreachable { .. } => CommandError::Unreachable(err.to_string()),
            other => CommandError::Refused(other.to_string()),
        }
    }
}

fn session_path() -> Result<PathBuf, CommandError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            CommandError::Usage("no HOME or XDG_CONFIG_HOME to keep the session in".into())
        })?;
    Ok(base.join("homekey").join("admin-session.json"))
}

fn load_session() -> Option<SavedSession> {
    let text = std::fs::read_to_string(session_path().ok()?).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_session(session: &SavedSession) -> Result<PathBuf, CommandError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = session_path()?;
    let failed = |err: std::io::Error| {
        CommandError::Refused(format!(
            "cannot save the session in {}: {err}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    // Written to a fresh 0600 file, then moved over the old one: never readable by others.
    let partial = path.with_extension("json.new");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(failed)?;
    let text = serde_json::to_string(session).unwrap_or_default();
    file.write_all(text.as_bytes()).map_err(failed)?;
    std::fs::rename(&partial, &path).map_err(failed)?;
    Ok(path)
}

/// The server and token a command uses: flags and environment first, then the saved session.
fn client(args: &AdminArgs) -> Result<(AdminClient, Option<String>), CommandError> {
    let saved = load_session();
    let server = args
        .server
        .clone()
        .or_else(|| saved.as_ref().map(|s| s.server.clone()))
        .ok_or_else(|| {
            CommandError::Usage(
                "no server: give --server URL (or run homekey admin login --server URL)".into(),
            )
        })?;
    let from_saved =
        saved.filter(|s| s.server.trim_end_matches('/') == server.trim_end_matches('/'));
    let (token, user_id) = match (&args.token, from_saved) {
        (Some(token), _) => (Some(SecretString::from(token.clone())), None),
        (None, Some(saved)) => (
            Some(SecretString::from(saved.access_token)),
            Some(saved.user_id),
        ),
        (None, None) => (None, None),
    };
    Ok((AdminClient::new(&server, token), user_id))
}

/// A user ID from what the operator typed: a full ID as it is, a localpart on the admin's
/// own server.
fn full_user_id(user: &str, admin_user_id: Option<&str>) -> Result<String, CommandError> {
    if user.starts_with('@') {
        return Ok(user.to_owned());
    }
    let server_name = admin_user_id
        .and_then(|id| id.split_once(':'))
        .map(|(_, server)| server)
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "{user}: give the full user ID (@{user}:server.name); the server name is known only with a saved session"
            ))
        })?;
    Ok(format!("@{user}:{server_name}"))
}

fn print_json(value: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub async fn run(args: AdminArgs) -> Result<(), CommandError> {
    if let AdminCommand::Login {
        user,
        password_stdin,
    } = &args.command
    {
        return login(&args, user, *password_stdin).await;
    }
    let (client, admin_user_id) = client(&args)?;
    let admin_user_id = admin_user_id.as_deref();
    let user_id = |user: &str| full_user_id(user, admin_user_id);
    match &args.command {
        AdminCommand::Login { .. } => unreachable!("handled above"),
        AdminCommand::Logout { user: Some(user) } => {
            let user_id = user_id(user)?;
            let devices = client.devices(&user_id).await?;
            let device_ids: Vec<String> = devices["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|device| device["device_id"].as_str().map(str::to_owned))
                .collect();
            if !device_ids.is_empty() {
                client.delete_devices(&user_id, &device_ids).await?;
            }
            let count = device_ids.len();
            out!(
                "{user_id} logged out everywhere: {count} device{} deleted",
                if count == 1 { "" } else { "s" }
            );
        }
        AdminCommand::Logout { user: None } => {
            client.logout().await?;
            if let Ok(path) = session_path() {
                let _ = std::fs::remove_file(path);
            }
            out!("logged out of {}", client.server());
        }
        AdminCommand::ResetPassword {
            user,
            keep_devices,
            password,
        } => {
            let user_id = user_id(user)?;
            let new_password = password
                .read()
                .map_err(|err| CommandError::Refused(err.to_string()))?;
            client
                .reset_password(&user_id, &new_password, !keep_devices)
                .await?;
            if *keep_devices {
                out!("password of {user_id} changed; its sessions stay logged in");
            } else {
                out!("password of {user_id} changed; every session of it is logged out");
            }
        }
        AdminCommand::SendResetLink {
            user,
            logout_devices,
        } => {
            let user_id = user_id(user)?;
            let answer = client.send_reset_link(&user_id, *logout_devices).await?;
            let sent_to: Vec<&str> = answer["sent_to"]
                .as_array()
                .map(|all| all.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let also = if *logout_devices {
                "; every device is signed out when the password is set"
            } else {
                ""
            };
            out!(
                "reset link for {user_id} queued to {}{also}",
                sent_to.join(", ")
            );
        }
        AdminCommand::User(AdminUserCommand::Show { user, json }) => {
            let user = client.get_user(&user_id(user)?).await?;
            if *json {
                print_json(&user);
            } else {
                print_user(&user);
            }
        }
        AdminCommand::User(AdminUserCommand::List {
            name,
            admins,
            deactivated,
            json,
        }) => {
            let mut query = vec![("deactivated", deactivated.to_string())];
            if let Some(name) = name {
                query.push(("name", name.clone()));
            }
            if *admins {
                query.push(("admins", "true".into()));
            }
            let users = client.list_users(&query).await?;
            if *json {
                print_json(&Value::Array(users));
            } else {
                for user in &users {
                    out!(
                        "{:<40} {}",
                        user["name"].as_str().unwrap_or(""),
                        flags(user)
                    );
                }
                out!("{} users", users.len());
            }
        }
        AdminCommand::User(AdminUserCommand::Email(command)) => {
            email(&client, command, user_id).await?;
        }
        AdminCommand::User(AdminUserCommand::Create {
            user,
            admin,
            displayname,
            password,
        }) => {
            let user_id = user_id(user)?;
            // PUT would change an existing user: refuse instead of surprising.
            match client.get_user(&user_id).await {
                Ok(_) => return Err(CommandError::Refused(format!("{user_id} already exists"))),
                Err(err) if err.errcode() == Some("M_NOT_FOUND") => {}
                Err(err) => return Err(err.into()),
            }
            let new_password = password
                .read()
                .map_err(|err| CommandError::Refused(err.to_string()))?;
            let mut body = json!({"password": new_password.expose_secret(), "admin": admin});
            if let Some(displayname) = displayname {
                body["displayname"] = json!(displayname);
            }
            client.put_user(&user_id, body).await?;
            out!("created {user_id}{}", if *admin { " (admin)" } else { "" });
        }
        AdminCommand::SetAdmin { user, admin, force } => {
            let user_id = user_id(user)?;
            if !admin && !force {
                refuse_losing_the_last_admin(&client, &user_id).await?;
            }
            client.set_admin(&user_id, *admin).await?;
            out!("{user_id} admin: {admin}");
        }
        AdminCommand::Deactivate { user, erase, force } => {
            let user_id = user_id(user)?;
            if !force {
                refuse_losing_the_last_admin(&client, &user_id).await?;
            }
            client.deactivate(&user_id, *erase).await?;
            out!("{user_id} deactivated");
        }
        AdminCommand::Whois { user } => {
            print_json(&client.whois(&user_id(user)?).await?);
        }
        AdminCommand::Devices { user, json } => {
            let devices = client.devices(&user_id(user)?).await?;
            if *json {
                print_json(&devices);
            } else {
                for device in devices["devices"].as_array().into_iter().flatten() {
                    out!(
                        "{:<16} {}",
                        device["device_id"].as_str().unwrap_or(""),
                        device["display_name"].as_str().unwrap_or("-")
                    );
                }
            }
        }
        AdminCommand::RegistrationToken(command) => {
            registration_token(&client, command).await?;
        }
        AdminCommand::ServerVersion => {
            let version = client.server_version().await?;
            out!(
                "{}",
                version["server_version"].as_str().unwrap_or("unknown")
            );
        }
    }
    Ok(())
}

/// `admin user email …`. The Admin API has no call for one address: the user's third-party
/// IDs are read (`GET v2/users/<id>`) and the whole set written back with the change (`PUT
/// v2/users/<id>` with `threepids`, which replaces the set on homekey as on Synapse). A
/// change another admin makes between the two is overwritten, as with any PUT.
async fn email(
    client: &AdminClient,
    command: &AdminEmailCommand,
    user_id: impl Fn(&str) -> Result<String, CommandError>,
) -> Result<(), CommandError> {
    let (user, address, add) = match command {
        AdminEmailCommand::List { user } => {
            let user = client.get_user(&user_id(user)?).await?;
            for address in emails_of(&user) {
                out!("{address}");
            }
            return Ok(());
        }
        AdminEmailCommand::Add { user, address } => (user, address, true),
        AdminEmailCommand::Remove { user, address } => (user, address, false),
    };
    let user_id = user_id(user)?;
    // Canonical, as the server keeps it: `Alice@Example.com` is `alice@example.com`.
    let address = crate::threepid::Threepid::email(address)
        .map_err(|err| CommandError::Refused(format!("{address:?}: {err}")))?
        .address;
    let user = client.get_user(&user_id).await?;
    if add && user["deactivated"] == json!(true) {
        return Err(CommandError::Refused(format!(
            "user {user_id} is deactivated: a deactivated account keeps no e-mail address"
        )));
    }
    let had = emails_of(&user).contains(&address);
    match (had, add) {
        (true, true) => {
            out!("{user_id} already has {address}; nothing changed");
            return Ok(());
        }
        (false, false) => {
            return Err(CommandError::Refused(format!(
                "{user_id} has no e-mail address {address}"
            )));
        }
        _ => {}
    }
    // Every third-party ID the user has (phone numbers too), less or plus this address.
    let mut threepids: Vec<Value> = user["threepids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| !(t["medium"] == "email" && t["address"] == address.as_str()))
        .map(|t| json!({"medium": t["medium"], "address": t["address"]}))
        .collect();
    if add {
        threepids.push(json!({"medium": "email", "address": address}));
    }
    client
        .put_user(&user_id, json!({"threepids": threepids}))
        .await?;
    if add {
        out!("added {address} to {user_id}");
    } else {
        out!("removed {address} from {user_id}");
    }
    Ok(())
}

/// The e-mail addresses of a user as `GET v2/users/<id>` gives it.
fn emails_of(user: &Value) -> Vec<String> {
    user["threepids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["medium"] == "email")
        .filter_map(|t| t["address"].as_str().map(str::to_owned))
        .collect()
}

/// `admin registration-token …`, over Synapse's `registration_tokens` Admin API.
async fn registration_token(
    client: &AdminClient,
    command: &AdminTokenCommand,
) -> Result<(), CommandError> {
    match command {
        AdminTokenCommand::Create(fields) => {
            let token = client
                .create_registration_token(fields.admin_api_body())
                .await?;
            token_cli::print_token(&token, fields.json);
        }
        AdminTokenCommand::List(fields) => {
            let answer = client.registration_tokens(fields.valid()).await?;
            let tokens = answer["registration_tokens"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            token_cli::print_tokens(&tokens, fields.json);
        }
        AdminTokenCommand::Show(fields) => {
            let token = client.registration_token(&fields.token, None).await?;
            token_cli::print_token(&token, fields.json);
        }
        AdminTokenCommand::Update(fields) => {
            fields.check_changes_something()?;
            let token = client
                .registration_token(&fields.token, Some(fields.admin_api_body()))
                .await?;
            token_cli::print_token(&token, fields.json);
        }
        AdminTokenCommand::Delete { token } => {
            client.delete_registration_token(token).await?;
            out!("deleted registration token {token}");
        }
    }
    Ok(())
}

/// `admin login`: a password login, the token saved for the next commands.
async fn login(args: &AdminArgs, user: &str, password_stdin: bool) -> Result<(), CommandError> {
    let server = args
        .server
        .clone()
        .ok_or_else(|| CommandError::Usage("admin login needs --server URL".into()))?;
    let password = if password_stdin || !stdin_is_terminal() {
        read_stdin_line()
    } else {
        rpassword::prompt_password("Password: ")
            .map(SecretString::from)
            .map_err(super::password_input::PasswordInputError::Read)
    }
    .map_err(|err| CommandError::Refused(err.to_string()))?;
    let client = AdminClient::new(&server, None);
    let (user_id, token) = client.login(user, &password).await?;
    let path = save_session(&SavedSession {
        server: client.server().to_owned(),
        user_id: user_id.clone(),
        access_token: token.expose_secret().to_owned(),
    })?;
    out!(
        "logged in to {} as {user_id}; session saved in {}",
        client.server(),
        path.display()
    );
    Ok(())
}

/// Refuses to demote or deactivate the last admin who can act: Synapse would let the operator
/// lock themselves out. (A homekey server refuses it itself.)
async fn refuse_losing_the_last_admin(
    client: &AdminClient,
    user_id: &str,
) -> Result<(), CommandError> {
    let user = client.get_user(user_id).await?;
    let acting_admin = user["admin"] == json!(true)
        && user["deactivated"] != json!(true)
        && user["locked"] != json!(true);
    if !acting_admin {
        return Ok(());
    }
    // The listing leaves out deactivated and locked users: these admins can act.
    let admins = client.list_users(&[("admins", "true".into())]).await?;
    if admins.len() <= 1 {
        return Err(CommandError::Refused(format!(
            "{user_id} is the last server admin who can act; make another user an admin first, or give --force"
        )));
    }
    Ok(())
}

fn flags(user: &Value) -> String {
    let mut flags = Vec::new();
    for flag in ["admin", "deactivated", "locked"] {
        if user[flag] == json!(true) {
            flags.push(flag);
        }
    }
    flags.join(" ")
}

fn print_user(user: &Value) {
    out!("{}", user["name"].as_str().unwrap_or(""));
    for key in [
        "displayname",
        "admin",
        "deactivated",
        "locked",
        "user_type",
        "creation_ts",
    ] {
        let value = match &user[key] {
            Value::Null => "-".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out!("  {key:<12} {value}");
    }
    let emails = emails_of(user);
    out!(
        "  {:<12} {}",
        "emails",
        if emails.is_empty() {
            "-".to_owned()
        } else {
            emails.join(", ")
        }
    );
}
