//! `homekey`: the command-line entry point. Parses arguments, runs one command, maps its
//! outcome to an exit code. The work itself lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use homekey::cli::admin::{self, AdminArgs};
use homekey::cli::audit_list::{self, AuditArgs};
use homekey::cli::hash_password::{self, HashPasswordArgs};
use homekey::cli::operator::CommandError;
use homekey::cli::user::{self, UserArgs};
use homekey::cli::{ConfigArgs, DatabaseArgs};
use homekey::config::{self, Config};
use homekey::store::{OpenMode, Store, StoreError};

#[derive(Parser)]
#[command(
    name = "homekey",
    version,
    about = "Accounts and passwords of a Matrix homeserver, Synapse-compatible",
    after_help = "Exit codes: 0 done; 1 refused or failed (the message says why); 2 bad usage; \
                  3 database unreachable."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented starter homeserver.yaml with fresh secrets (never overwrites).
    GenerateConfig {
        /// The domain of the server's user IDs, e.g. example.com.
        #[arg(long)]
        server_name: String,
        /// Where to write the file.
        #[arg(short = 'c', long = "config", default_value = "homeserver.yaml")]
        config: PathBuf,
        /// Where the SQLite database goes (default: homekey-data beside the config file).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Beside Synapse: the URL of Synapse's main client listener, e.g.
        /// http://127.0.0.1:8008/. Writes the `synapse:` section with a fresh shared secret
        /// and prints what to change in Synapse's homeserver.yaml.
        #[arg(long, value_name = "URL")]
        for_synapse: Option<String>,
        /// With --for-synapse: Synapse's public_baseurl (default https://SERVER_NAME/).
        #[arg(long, value_name = "URL", requires = "for_synapse")]
        public_baseurl: Option<String>,
        /// Where homekey listens, e.g. 127.0.0.1:8081 or [::1]:8081 (default 127.0.0.1, port
        /// 8008, or 8081 with --for-synapse). Beside Synapse, also the address in what is
        /// printed for Synapse's config and the reverse proxy.
        #[arg(long, value_name = "ADDR:PORT", value_parser = config::parse_listen)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print a Synapse-compatible hash of a password (same flags as Synapse's hash_password).
    HashPassword(HashPasswordArgs),
    /// Run the Matrix account server (Client-Server login, whoami, logout…).
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Create or update homekey's database schema (never touches a Synapse database's).
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Manage accounts straight on the database (homekey's or Synapse's): create,
    /// set-password, set-admin, deactivate, lock, unlock, logout, show, list, login, import.
    User(UserArgs),
    /// Read the audit log: who changed which account, and how.
    Audit(AuditArgs),
    /// Registration tokens (invitations to sign up) straight on the database: create, list,
    /// show, update, delete.
    RegistrationToken(homekey::cli::registration_token::RegistrationTokenArgs),
    /// Use the Admin API of a running server (homekey's or Synapse's): login, reset-password,
    /// user show/list/create, set-admin, deactivate, whois, devices, registration-token,
    /// server-version.
    Admin(AdminArgs),
    /// Beside Synapse: what homekey owes the Synapse it serves (status), and bringing
    /// Synapse's users and devices in line with homekey's (reconcile).
    Synapse(homekey::cli::synapse::SynapseArgs),
    /// Mail: send a test mail with the config's email settings (test), and list the mail
    /// `serve` has not sent yet or gave up (status).
    Email(homekey::cli::email::EmailArgs),
    /// Carry an existing, stopped Synapse's accounts, devices and sessions into homekey's
    /// database, so that nobody is logged out when Synapse starts delegating to homekey.
    MigrateFromSynapse(homekey::cli::migrate_synapse::FromSynapseArgs),
    /// The way back: homekey's password hashes, flags and sessions into a stopped Synapse's
    /// database, so that Synapse on its own login again logs nobody out.
    MigrateToSynapse(homekey::cli::migrate_synapse::ToSynapseArgs),
}

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    // The server logs each request; the one-shot commands only speak up about problems.
    homekey::logging::init(match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    });
    let outcome = run(cli.command);
    homekey::logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("homekey: {}", homekey::cli::one_line(&failure.message));
            ExitCode::from(failure.code)
        }
    }
}

/// Help and version as clap prints them; a usage error as one line (clap's message without
/// its usage block), exit 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return match err.print() {
            Ok(()) => ExitCode::from(err.exit_code() as u8),
            Err(_) => ExitCode::FAILURE,
        };
    }
    let rendered = err.render().to_string();
    let message = rendered.split("\n\n").next().unwrap_or(&rendered);
    let message = message.strip_prefix("error: ").unwrap_or(message);
    eprintln!("homekey: {} (see --help)", homekey::cli::one_line(message));
    ExitCode::from(EXIT_USAGE)
}

/// A failed command: the one-line message for the operator and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(err: impl std::fmt::Display) -> Failure {
        Failure {
            message: err.to_string(),
            code: EXIT_FAILED,
        }
    }
}

impl From<CommandError> for Failure {
    fn from(err: CommandError) -> Failure {
        Failure {
            code: err.exit_code(),
            message: err.to_string(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Failure {
        let code = match err {
            StoreError::Unavailable(_) => EXIT_UNREACHABLE,
            _ => EXIT_FAILED,
        };
        Failure {
            message: err.to_string(),
            code,
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::GenerateConfig {
            server_name,
            config: path,
            data_dir,
            for_synapse,
            public_baseurl,
            listen,
        } => {
            let data_dir = data_dir.unwrap_or_else(|| {
                let parent = path.parent().unwrap_or(std::path::Path::new(""));
                parent.join(config::DEFAULT_DATA_DIR)
            });
            let for_synapse = for_synapse.map(|endpoint| config::ForSynapse {
                endpoint,
                public_baseurl: public_baseurl.unwrap_or_else(|| format!("https://{server_name}/")),
            });
            let listen = listen.unwrap_or_else(|| config::default_listen(for_synapse.is_some()));
            config::generate_with(&path, &server_name, &data_dir, listen, for_synapse.as_ref())
                .map_err(Failure::new)?;
            println!("wrote {}", path.display());
            if let Some(setup) = for_synapse {
                println!(
                    "public_baseurl (the issuer) is {}: change it in the file if Synapse's \
                     differs.\n",
                    setup.public_baseurl
                );
                let homekey_url = config::local_url(listen);
                let path = std::path::absolute(&path).unwrap_or(path);
                print!(
                    "{}",
                    homekey::synapse::setup::instructions(
                        &path,
                        &homekey_url,
                        &config::synapse_secret_file(&path).map_err(Failure::new)?,
                    )
                );
            }
            Ok(())
        }
        Command::HashPassword(args) => hash_password::run(args).map_err(Failure::new),
        Command::Serve { config, database } => {
            let config = effective_config(&config, database)?;
            runtime()?
                .block_on(homekey::http::serve(config))
                .map_err(|err| match err {
                    homekey::http::ServeError::Store(err) => Failure::from(err),
                    other => Failure::new(other),
                })
        }
        Command::User(args) => Ok(runtime()?.block_on(user::run(args))?),
        Command::Audit(args) => Ok(runtime()?.block_on(audit_list::run(args))?),
        Command::RegistrationToken(args) => {
            Ok(runtime()?.block_on(homekey::cli::registration_token::run(args))?)
        }
        Command::Admin(args) => Ok(runtime()?.block_on(admin::run(args))?),
        Command::Synapse(args) => Ok(runtime()?.block_on(homekey::cli::synapse::run(args))?),
        Command::Email(args) => Ok(runtime()?.block_on(homekey::cli::email::run(args))?),
        Command::MigrateFromSynapse(args) => {
            Ok(runtime()?.block_on(homekey::cli::migrate_synapse::run_from(args))?)
        }
        Command::MigrateToSynapse(args) => {
            Ok(runtime()?.block_on(homekey::cli::migrate_synapse::run_to(args))?)
        }
        Command::Migrate { config, database } => {
            let database = effective_config(&config, database)?.database;
            runtime()?.block_on(async {
                let store = Store::open(&database, OpenMode::CreateIfMissing).await?;
                store.migrate().await?;
                store.close().await;
                println!("{database}: schema up to date");
                Ok(())
            })
        }
    }
}

/// The config a command runs with: the file(s) named, or the built-in one when there are
/// none (said on stderr), with `--database` taking the place of the file's database.
fn effective_config(config: &ConfigArgs, database: DatabaseArgs) -> Result<Config, Failure> {
    let mut effective = match config.load_optional().map_err(Failure::new)? {
        Some(config) => config,
        None => {
            eprintln!(
                "homekey: no config file; using the built-in one (server localhost, SQLite in ./{})",
                config::DEFAULT_DATA_DIR
            );
            Config::builtin()
        }
    };
    if let Some(database) = database.database {
        effective.database = database;
    }
    effective
        .refuse_delegating_synapse()
        .map_err(Failure::new)?;
    Ok(effective)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::new)
}
