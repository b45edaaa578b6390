//! `register_new_matrix_user`: a drop-in for Synapse's script of that name, with its flags,
//! prompts and messages. It registers a user through shared-secret registration, so it works
//! against homekey and Synapse alike.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use homekey::admin_client::{AdminClient, AdminClientError};
use homekey::cli::password_input::prompt_twice;
use homekey::config::Config;
use secrecy::{ExposeSecret, SecretString};

#[derive(Parser)]
#[command(
    name = "register_new_matrix_user",
    version,
    about = "Used to register new users with a given homeserver when registration has been \
             disabled. The homeserver must be configured with the 'registration_shared_secret' \
             option set."
)]
#[command(group = clap::ArgGroup::new("secret").required(true).args(["config", "shared_secret"]))]
struct Cli {
    /// Local part of the new user. Will prompt if omitted.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Do not fail if the user already exists. The user account will not be updated.
    #[arg(long)]
    exists_ok: bool,
    /// New password for user. Will prompt for a password if this flag and `--password-file`
    /// are both omitted.
    #[arg(short = 'p', long, conflicts_with = "password_file")]
    password: Option<String>,
    /// File containing the new password for user. If set, will override `--password`.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// User type as specified in synapse.api.constants.UserTypes
    #[arg(short = 't', long = "user_type")]
    user_type: Option<String>,
    /// Register new user as an admin. Will prompt if --no-admin is not set either.
    #[arg(short = 'a', long, conflicts_with = "no_admin")]
    admin: bool,
    /// Register new user as a regular user. Will prompt if --admin is not set either.
    #[arg(long)]
    no_admin: bool,
    /// Path to server config file. Used to read in shared secret.
    #[arg(short = 'c', long = "config")]
    config: Vec<PathBuf>,
    /// Shared secret as defined in server config file.
    #[arg(short = 'k', long = "shared-secret")]
    shared_secret: Option<String>,
    /// URL to use to talk to the homeserver. By default, tries to find a suitable URL from the
    /// configuration file. Otherwise, defaults to 'http://localhost:8008'.
    server_url: Option<String>,
}

/// A reason to stop, printed as Synapse's script prints it.
struct Failure(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("register_new_matrix_user: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            // As Synapse's script prints it (the server's answer on a line of its own), with
            // what could drive the terminal escaped.
            for line in message.lines() {
                println!("{}", homekey::cli::one_line(line));
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = if cli.config.is_empty() {
        None
    } else {
        Some(Config::load(&cli.config).map_err(|err| Failure(err.to_string()))?)
    };
    let shared_secret = match (&cli.shared_secret, &config) {
        (Some(secret), _) => SecretString::from(secret.clone()),
        (None, Some(config)) => config.registration_shared_secret.clone().ok_or_else(|| {
            Failure(
                "No 'registration_shared_secret' or 'registration_shared_secret_path' defined in config."
                    .into(),
            )
        })?,
        (None, None) => unreachable!("clap requires -c or -k"),
    };
    let server_url = match (&cli.server_url, &config) {
        (Some(url), _) => url.clone(),
        (None, Some(config)) => match config.listeners.iter().find(|l| l.kind == "http") {
            Some(listener) => format!("http://localhost:{}", listener.port),
            None => {
                eprintln!(
                    "Unable to find a suitable HTTP listener in the configuration file. \
                     Trying http://localhost:8008 as a last resort."
                );
                "http://localhost:8008".into()
            }
        },
        (None, None) => {
            eprintln!(
                "No server url or configuration file given. Defaulting to http://localhost:8008."
            );
            "http://localhost:8008".into()
        }
    };

    let user = match cli.user {
        Some(user) => user,
        None => {
            let default = std::env::var("USER").unwrap_or_default();
            let answer = ask(&if default.is_empty() {
                "New user localpart: ".to_owned()
            } else {
                format!("New user localpart [{default}]: ")
            })?;
            if answer.is_empty() { default } else { answer }
        }
    };
    if user.is_empty() {
        return Err(Failure("Invalid user name".into()));
    }
    let password = match (&cli.password_file, &cli.password) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .map_err(|err| Failure(format!("Error reading {}: {err}", file.display())))?;
            SecretString::from(text.trim().to_owned())
        }
        (None, Some(password)) => SecretString::from(password.clone()),
        (None, None) => prompt_twice().map_err(|err| Failure(err.to_string()))?,
    };
    if password.expose_secret().is_empty() {
        return Err(Failure("Password cannot be blank.".into()));
    }
    let admin = if cli.admin {
        true
    } else if cli.no_admin {
        false
    } else {
        let answer = ask("Make admin [no]: ")?;
        matches!(answer.as_str(), "y" | "yes" | "true")
    };

    let client = AdminClient::new(&server_url, None);
    println!("Sending registration request...");
    match client
        .register_with_shared_secret(
            &shared_secret,
            &user,
            &password,
            admin,
            cli.user_type.as_deref(),
        )
        .await
    {
        Ok(_) => {
            println!("Success!");
            Ok(())
        }
        Err(AdminClientError::Matrix { errcode, .. })
            if cli.exists_ok && errcode == "M_USER_IN_USE" =>
        {
            println!("User already exists. Skipping.");
            Ok(())
        }
        Err(AdminClientError::Matrix {
            status, message, ..
        }) => Err(Failure(format!("ERROR! Received {status}\n{message}"))),
        Err(other) => Err(Failure(format!("ERROR! {other}"))),
    }
}

/// One line from the terminal, after a prompt.
fn ask(prompt: &str) -> Result<String, Failure> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|err| Failure(format!("cannot read the answer: {err}")))?;
    Ok(line.trim().to_owned())
}
