//! `homekey migrate-from-synapse` and `homekey migrate-to-synapse`: an existing Synapse's
//! accounts, devices and sessions carried into homekey's database so that nobody is logged
//! out when Synapse starts delegating to homekey, and the way back. Both refuse while the
//! server whose database they write could still be writing it, and check first what would
//! make logins fail afterwards.

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::operator::{
    CommandError, DatabaseSelection, EXIT_CODES_HELP, Operator, SelectedConfig, out,
};
use crate::accounts::Accounts;
use crate::accounts::migration::{Carrying, RestoreTally, Tally};
use crate::config::{Config, DatabaseConfig};
use crate::store::{AccountBatch, Flavour, OpenMode, Store, StoreError};

/// The Synapse schema versions whose account tables homekey reads and writes: from 85
/// (Synapse 1.110, `users.suspended`) to 94 (Synapse 1.163).
const KNOWN_SCHEMA_VERSIONS: std::ops::RangeInclusive<i64> = 85..=94;
/// Accounts read and written per transaction.
const BATCH: i64 = 5_000;

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct FromSynapseArgs {
    /// Synapse's homeserver.yaml (repeat to layer files, as Synapse's -c).
    #[arg(long = "synapse-config", value_name = "PATH", required = true)]
    pub synapse_config: Vec<PathBuf>,
    /// Read everything and print what would be carried and every problem; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Once Synapse delegates to homekey: empty Synapse's copy of the password hashes of the
    /// accounts carried, so that turning delegation off by mistake cannot bring old
    /// passwords back. Carries nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub clear_synapse_hashes: bool,
    /// Replace each account homekey already has of its own (not carried by an earlier run,
    /// not made by homekey beside this Synapse) by Synapse's: its password, flags, devices
    /// and sessions become Synapse's, and homekey's sessions of it end. Without it such
    /// accounts are named and left as they are.
    #[arg(long, conflicts_with = "clear_synapse_hashes")]
    pub replace_existing: bool,
    /// homekey's own config (-c) or database (--database).
    #[command(flatten)]
    pub db: DatabaseSelection,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ToSynapseArgs {
    /// Synapse's homeserver.yaml (repeat to layer files, as Synapse's -c).
    #[arg(long = "synapse-config", value_name = "PATH", required = true)]
    pub synapse_config: Vec<PathBuf>,
    /// Do all of it and roll it back: print what would change and every problem.
    #[arg(long)]
    pub dry_run: bool,
    /// homekey's own config (-c) or database (--database).
    #[command(flatten)]
    pub db: DatabaseSelection,
}

/// Synapse's side: its config and its database.
struct SynapseSide {
    config: Config,
    accounts: Accounts,
    schema_version: i64,
}

pub async fn run_from(args: FromSynapseArgs) -> Result<(), CommandError> {
    // Synapse's side is checked before homekey's database is opened: a refused run leaves no
    // new database behind.
    let selected = args.db.config_selected()?;
    let synapse = open_synapse(&args.synapse_config, &selected.config).await?;
    if args.clear_synapse_hashes {
        let homekey = open_homekey(selected, OpenMode::MustExist).await?;
        return clear_hashes(&homekey, &synapse).await;
    }
    let mut problems = synapse_running(&synapse).await?;
    let (homekey_pepper, synapse_pepper) = (
        selected.config.password.pepper.expose_secret(),
        synapse.config.password.pepper.expose_secret(),
    );
    if homekey_pepper != synapse_pepper {
        problems.push(
            "password_config.pepper differs between the two configs: no carried password \
             would log in; give homekey Synapse's pepper"
                .into(),
        );
    }
    if !problems.is_empty() && !args.dry_run {
        return Err(CommandError::Refused(format!(
            "{}; nothing was changed",
            problems.join("; ")
        )));
    }
    let homekey = open_homekey(selected, OpenMode::CreateIfMissing).await?;
    out!(
        "Synapse's database: {} (schema {})",
        synapse.config.database,
        synapse.schema_version
    );
    if homekey.config.bcrypt_rounds != synapse.config.bcrypt_rounds {
        out!(
            "note: bcrypt_rounds is {} in Synapse's config and {} in homekey's: every carried \
             password still logs in (each hash keeps its cost); homekey hashes new passwords \
             at {}{}",
            synapse.config.bcrypt_rounds,
            homekey.config.bcrypt_rounds,
            homekey.config.bcrypt_rounds,
            if homekey.config.bcrypt_rounds > synapse.config.bcrypt_rounds {
                " and re-hashes a carried one at its next login"
            } else {
                ""
            }
        );
    }
    for problem in &problems {
        out!("problem: {problem}");
    }

    let total = synapse.accounts.count_all_users().await?;
    let how = Carrying {
        dry_run: args.dry_run,
        into_empty_database: homekey.accounts.count_all_users().await? == 0,
        replace_existing: args.replace_existing,
    };
    let actor = homekey.actor(false, false);
    let mut tally = Tally::default();
    let mut progress = Progress::new(total as u64, "accounts");
    let mut batches = read_in_background(synapse.accounts.clone());
    // Found while the first batch is read.
    let case_duplicates = Arc::new(
        homekey
            .accounts
            .case_duplicates_in(&synapse.accounts)
            .await?,
    );
    // On PostgreSQL the database's own work on the rows is most of the time, and one
    // connection runs on one core: two batches are written at once, in transactions of their
    // own (their accounts differ). SQLite takes one writer at a time.
    let writers = homekey.accounts.concurrent_writers();
    let mut writing = tokio::task::JoinSet::new();
    let finished = |done: Result<Result<(Tally, u64), StoreError>, tokio::task::JoinError>,
                    tally: &mut Tally,
                    progress: &mut Progress|
     -> Result<(), CommandError> {
        let (part, read) = done
            .map_err(|err| CommandError::Refused(format!("writing a batch failed: {err}")))?
            .map_err(carry_error)?;
        tally.add(part);
        progress.advance(read);
        Ok(())
    };
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        while writing.len() >= writers {
            if let Some(done) = writing.join_next().await {
                finished(done, &mut tally, &mut progress)?;
            }
        }
        let (accounts, actor) = (homekey.accounts.clone(), actor.clone());
        let case_duplicates = case_duplicates.clone();
        writing.spawn(async move {
            let read = batch.users.len() as u64;
            let mut part = Tally::default();
            accounts
                .carry_from_synapse(&actor, batch, how, &case_duplicates, &mut part)
                .await
                .map(|()| (part, read))
        });
    }
    while let Some(done) = writing.join_next().await {
        finished(done, &mut tally, &mut progress)?;
    }
    tally.conflicts.sort();
    let elapsed = progress.finish();
    let tokens = homekey
        .accounts
        .carry_registration_tokens_from(&synapse.accounts, &actor, BATCH, args.dry_run)
        .await
        .map_err(carry_error)?;
    let verb = if args.dry_run {
        "would carry"
    } else {
        "carried"
    };
    out!(
        "{verb} {} account(s), {} device(s), {} access token(s), {} refresh token(s) of the {} \
         read, in {:.1} s ({:.0} accounts/s)",
        tally.carried,
        tally.devices,
        tally.access_tokens,
        tally.refresh_tokens,
        tally.read,
        elapsed.as_secs_f64(),
        tally.read as f64 / elapsed.as_secs_f64().max(1e-3)
    );
    if tally.without_password > 0 {
        out!(
            "{} of them have no password (SSO-only, or never given one): carried as such; \
             they log in once a password is set (homekey user set-password)",
            tally.without_password
        );
    }
    if tally.erased > 0 {
        out!(
            "{} of them were deactivated with erasure: carried as such (erased: true)",
            tally.erased
        );
    }
    if tally.threepids > 0 {
        out!(
            "{verb} {} e-mail address(es) and phone number(s) with them (e-mail addresses in \
             canonical form)",
            tally.threepids
        );
    }
    if !tally.threepids_left.is_empty() {
        tally.threepids_left.sort();
        out!(
            "{} third-party ID(s) not carried (left in Synapse's database): {}",
            tally.threepids_left.len(),
            tally.threepids_left.join("; ")
        );
    }
    if tokens.new + tokens.already_there > 0 {
        out!(
            "{verb} {} registration token(s) with their limits and completed uses (pending 0: \
             unfinished sign-ups do not move); {} already there, left as they were",
            tokens.new,
            tokens.already_there
        );
    }
    if tally.already_carried > 0 {
        out!(
            "passed over {} account(s) carried by an earlier run: homekey's since, never \
             overwritten",
            tally.already_carried
        );
    }
    if !tally.replaced.is_empty() {
        tally.replaced.sort();
        out!(
            "{} {} account(s) homekey had of its own by Synapse's (their homekey sessions \
             {}): {}",
            if args.dry_run {
                "would replace"
            } else {
                "replaced"
            },
            tally.replaced.len(),
            if args.dry_run { "would end" } else { "ended" },
            tally.replaced.join(", ")
        );
    }
    if tally.made_by_homekey > 0 {
        out!(
            "passed over {} account(s) homekey made in this Synapse itself: homekey's already",
            tally.made_by_homekey
        );
    }
    if tally.guests > 0 {
        out!(
            "left out {} guest account(s): Synapse's delegated requests carry no guest flag, \
             so homekey answers their tokens as inactive and their sessions end",
            tally.guests
        );
    }
    if tally.appservice_users > 0 {
        out!(
            "{} {} appservice user(s) with their devices and tokens: they stay their \
             appservice's, whose own token Synapse keeps checking",
            if args.dry_run {
                "would carry"
            } else {
                "carried"
            },
            tally.appservice_users
        );
    }
    if args.dry_run {
        out!("dry run: nothing was changed");
    }
    if !tally.case_duplicates.is_empty() {
        tally.case_duplicates.sort();
        out!(
            "{} account(s) not carried: their user ID differs only in case from one carried \
             (homekey tells user IDs apart ignoring case, as Synapse does at login): {}",
            tally.case_duplicates.len(),
            tally.case_duplicates.join(", ")
        );
    }
    if !tally.conflicts.is_empty() {
        return Err(CommandError::Refused(format!(
            "{} account(s) homekey already had were not carried and not changed (they are \
             not from an earlier run; --replace-existing replaces them by Synapse's): {}",
            tally.conflicts.len(),
            tally.conflicts.join(", ")
        )));
    }
    if !problems.is_empty() {
        return Err(CommandError::Refused(format!(
            "a real run would refuse: {}",
            problems.join("; ")
        )));
    }
    if !args.dry_run {
        out!(
            "next: set matrix_authentication_service in Synapse's homeserver.yaml, start \
             homekey, start Synapse, switch the proxy (README: \"Moving an existing Synapse\")"
        );
    }
    Ok(())
}

pub async fn run_to(args: ToSynapseArgs) -> Result<(), CommandError> {
    let homekey = open_homekey(args.db.config_selected()?, OpenMode::MustExist).await?;
    let synapse = open_synapse(&args.synapse_config, &homekey.config).await?;
    let mut problems = synapse_running(&synapse).await?;
    problems.extend(homekey_running(&homekey.config));
    if !problems.is_empty() {
        return Err(CommandError::Refused(format!(
            "{}; nothing was changed",
            problems.join("; ")
        )));
    }
    let total = homekey.accounts.count_all_users().await?;
    let mut tally = RestoreTally::default();
    let mut progress = Progress::new(total as u64, "accounts");
    let mut batches = read_in_background(homekey.accounts.clone());
    while let Some(batch) = batches.recv().await {
        let mut batch = batch?;
        let read = batch.users.len() as u64;
        synapse
            .accounts
            .restore_into_synapse(&mut batch, args.dry_run, &mut tally)
            .await?;
        progress.advance(read);
    }
    let elapsed = progress.finish();
    // Counted before writing: those Synapse has that homekey does not.
    let synapse_tokens = synapse.accounts.count_registration_tokens().await?;
    let actor = homekey.actor(false, false);
    let tokens = synapse
        .accounts
        .carry_registration_tokens_from(&homekey.accounts, &actor, BATCH, args.dry_run)
        .await?;
    let verb = if args.dry_run { "would write" } else { "wrote" };
    out!(
        "{verb} {} account(s) back into Synapse's database, with {} access token(s) and {} \
         refresh token(s) it did not have, in {:.1} s",
        tally.users,
        tally.access_tokens,
        tally.refresh_tokens,
        elapsed.as_secs_f64()
    );
    if tokens.new + tokens.already_there > 0 {
        out!(
            "{verb} {} registration token(s) into Synapse's database with their limits and \
             completed uses (pending 0: unfinished sign-ups do not move); {} Synapse had \
             already, {} homekey's limits and completed uses (Synapse's pending kept)",
            tokens.new,
            tokens.already_there,
            if args.dry_run {
                "would be given"
            } else {
                "given"
            }
        );
    }
    let only_in_synapse = synapse_tokens - tokens.already_there as i64;
    if only_in_synapse > 0 {
        out!(
            "{only_in_synapse} registration token(s) Synapse has that homekey does not (deleted \
             under homekey, or never carried): left as they are; once Synapse serves, `homekey \
             admin registration-token list` shows them and `delete` removes one"
        );
    }
    if tally.erased > 0 {
        out!(
            "marked {} account(s) erased in Synapse (erased in homekey)",
            tally.erased
        );
    }
    if tally.threepids_added + tally.threepids_removed > 0 {
        out!(
            "e-mail addresses and phone numbers as homekey has them: {} {} to accounts in \
             Synapse, {} {} from them",
            tally.threepids_added,
            if args.dry_run {
                "would be given"
            } else {
                "given"
            },
            tally.threepids_removed,
            if args.dry_run {
                "would be taken"
            } else {
                "taken"
            },
        );
    }
    if !tally.argon2_accounts.is_empty() {
        out!(
            "{} account(s) have an argon2id hash, which Synapse cannot read: their password is \
             cleared in Synapse and they must reset it there: {}",
            tally.argon2_accounts.len(),
            tally.argon2_accounts.join(", ")
        );
    }
    if !tally.without_device.is_empty() {
        let list: Vec<String> = tally
            .without_device
            .iter()
            .map(|(user, device)| format!("{user} {device}"))
            .collect();
        out!(
            "{} session(s) left out: Synapse has no such device (homekey never writes Synapse's \
             devices): {}",
            list.len(),
            list.join(", ")
        );
    }
    if !tally.oauth_sessions_ended.is_empty() {
        let list: Vec<String> = tally
            .oauth_sessions_ended
            .iter()
            .map(|(user, device)| format!("{user} {device}"))
            .collect();
        out!(
            "{} OAuth session(s) ended: homekey keeps only a digest of their tokens, which \
             Synapse cannot take; their apps must sign in again: {}",
            list.len(),
            list.join(", ")
        );
    }
    if !tally.unknown_to_synapse.is_empty() {
        out!(
            "{} account(s) homekey has are not in Synapse's database, left out: {}",
            tally.unknown_to_synapse.len(),
            tally.unknown_to_synapse.join(", ")
        );
    }
    if args.dry_run {
        out!("dry run: nothing was changed");
    } else {
        out!(
            "next: remove matrix_authentication_service from Synapse's homeserver.yaml, set \
             password_config.enabled: true, start Synapse, point the proxy back at Synapse \
             (README: \"Leaving this mode\")"
        );
    }
    Ok(())
}

/// `--clear-synapse-hashes`: only once Synapse delegates (otherwise it would lock everyone
/// out of Synapse's own login).
async fn clear_hashes(homekey: &Operator, synapse: &SynapseSide) -> Result<(), CommandError> {
    if synapse.config.delegating_synapse_file.is_none() {
        return Err(CommandError::Refused(
            "Synapse's config does not delegate to homekey yet \
             (matrix_authentication_service.enabled): emptying its password hashes now would \
             lock everyone out of its own login; nothing was changed"
                .into(),
        ));
    }
    let cleared = homekey
        .accounts
        .clear_carried_hashes_in(&synapse.accounts)
        .await?;
    out!(
        "emptied {cleared} password hash(es) in Synapse's database (accounts carried into homekey)"
    );
    Ok(())
}

async fn open_homekey(selected: SelectedConfig, mode: OpenMode) -> Result<Operator, CommandError> {
    let homekey = selected.open(mode).await?;
    if homekey.accounts.flavour() != Flavour::Homekey {
        return Err(CommandError::Refused(format!(
            "{} is a Synapse database: -c (or --database) names homekey's own",
            homekey.config.database
        )));
    }
    Ok(homekey)
}

async fn open_synapse(
    paths: &[PathBuf],
    homekey_config: &Config,
) -> Result<SynapseSide, CommandError> {
    let config = Config::load(paths).map_err(|err| CommandError::Refused(err.to_string()))?;
    if config.synapse.is_some() {
        return Err(CommandError::Refused(format!(
            "{}: this is homekey's config (it has a synapse: section); --synapse-config names \
             Synapse's homeserver.yaml",
            paths
                .last()
                .map_or_else(String::new, |p| p.display().to_string())
        )));
    }
    if config.server_name != homekey_config.server_name {
        return Err(CommandError::Refused(format!(
            "server_name differs: Synapse's is {}, homekey's {}; they must be the same server",
            config.server_name, homekey_config.server_name
        )));
    }
    if same_database(&config.database, &homekey_config.database) {
        return Err(CommandError::Refused(
            "homekey's config and Synapse's name the same database".into(),
        ));
    }
    // (Store::open would advise `homekey migrate`, which is for homekey's own database.)
    if let DatabaseConfig::Sqlite { path } = &config.database
        && !path.exists()
    {
        return Err(CommandError::Refused(format!(
            "Synapse's database {} does not exist: check database.args.database in {}",
            path.display(),
            paths
                .last()
                .map_or_else(String::new, |p| p.display().to_string())
        )));
    }
    let store = Store::open(&config.database, OpenMode::MustExist).await?;
    let accounts = Accounts::new(store, Arc::new(config.clone()));
    let not_synapse = || {
        CommandError::Refused(format!(
            "{} is not a Synapse database (it has no schema_version)",
            config.database
        ))
    };
    if accounts.flavour() != Flavour::Synapse {
        return Err(not_synapse());
    }
    let schema_version = accounts
        .synapse_schema_version()
        .await?
        .ok_or_else(not_synapse)?;
    if !KNOWN_SCHEMA_VERSIONS.contains(&schema_version) {
        return Err(CommandError::Refused(format!(
            "{} has Synapse schema version {schema_version}; homekey knows {} to {} (Synapse \
             1.110 to 1.163): upgrade Synapse first, or homekey",
            config.database,
            KNOWN_SCHEMA_VERSIONS.start(),
            KNOWN_SCHEMA_VERSIONS.end()
        )));
    }
    Ok(SynapseSide {
        config,
        accounts,
        schema_version,
    })
}

fn same_database(a: &DatabaseConfig, b: &DatabaseConfig) -> bool {
    match (a, b) {
        (DatabaseConfig::Sqlite { path: a }, DatabaseConfig::Sqlite { path: b }) => a
            .canonicalize()
            .ok()
            .is_some_and(|a| b.canonicalize().ok() == Some(a)),
        _ => false,
    }
}

/// Why Synapse may be running, each said with how it is known: its pid file names a live
/// process, a process has its SQLite file open, another client is connected to its
/// PostgreSQL database, or something answers on one of its listeners. A running Synapse
/// keeps issuing tokens and numbers new rows from counters it read when it started.
async fn synapse_running(synapse: &SynapseSide) -> Result<Vec<String>, CommandError> {
    let mut reasons = Vec::new();
    if let Some((pid_file, pid)) = synapse
        .config
        .pid_file
        .as_ref()
        .and_then(|file| Some((file, live_pid(file)?)))
    {
        reasons.push(format!(
            "Synapse is running: its pid_file {} names process {pid}",
            pid_file.display()
        ));
    }
    reasons.extend(sqlite_holders(&synapse.config.database, "Synapse's"));
    let clients = synapse.accounts.other_database_clients().await?;
    if !clients.is_empty() {
        reasons.push(format!(
            "Synapse may be running: other clients are connected to its database: {}",
            clients.join(", ")
        ));
    }
    reasons.extend(
        answering(&synapse.config).map(|addr| {
            format!("Synapse may be running: something answers on its listener {addr}")
        }),
    );
    Ok(reasons)
}

/// Why homekey may be serving its database (the way back writes tokens it could hand out).
fn homekey_running(config: &Config) -> Vec<String> {
    let mut reasons = sqlite_holders(&config.database, "homekey's");
    reasons.extend(
        answering(config).map(|addr| {
            format!("homekey may be serving: something answers on its listener {addr}")
        }),
    );
    reasons
}

/// The process the pid file names, if it is alive.
fn live_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The other processes that have the SQLite file open (from `/proc`, on Linux).
fn sqlite_holders(database: &DatabaseConfig, whose: &str) -> Vec<String> {
    let DatabaseConfig::Sqlite { path } = database else {
        return Vec::new();
    };
    let Ok(file) = path.canonicalize() else {
        return Vec::new();
    };
    let me = std::process::id().to_string();
    let mut holders = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return holders;
    };
    for process in processes.flatten() {
        let pid = process.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == file))
        {
            let name = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            holders.push(format!(
                "process {pid} ({}) has {whose} database {} open",
                name.trim(),
                file.display()
            ));
        }
    }
    holders
}

/// The first of the config's listener addresses on which something accepts a connection.
fn answering(config: &Config) -> Option<SocketAddr> {
    config
        .listeners
        .iter()
        .flat_map(|listener| {
            listener.bind_addresses.iter().map(move |address| {
                // A wildcard is reached on loopback.
                let host = match address.as_str() {
                    "0.0.0.0" | "" => "127.0.0.1",
                    "::" => "::1",
                    other => other,
                };
                (host.to_owned(), listener.port)
            })
        })
        .filter_map(|(host, port)| (host.as_str(), port).to_socket_addrs().ok())
        .flatten()
        .find(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(300)).is_ok())
}

/// A batch's failure: a duplicate means another writer got there meanwhile.
fn carry_error(err: StoreError) -> CommandError {
    if err.is_duplicate() {
        return CommandError::Refused(
            "an account or token was written in homekey's database while this ran (is homekey \
             serving?); run again to finish"
                .into(),
        );
    }
    err.into()
}

/// Reads `source`'s accounts in batches, one batch ahead of the writer.
fn read_in_background(
    source: Accounts,
) -> tokio::sync::mpsc::Receiver<Result<AccountBatch, StoreError>> {
    let (send, receive) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut after = String::new();
        loop {
            let batch = source.read_account_batch(&after, BATCH).await;
            let next = match &batch {
                Ok(batch) => batch.last_name().map(str::to_owned),
                Err(_) => None,
            };
            let failed = batch.is_err();
            if (next.is_some() || failed) && send.send(batch).await.is_err() {
                return;
            }
            match next {
                Some(name) => after = name,
                None => return,
            }
        }
    });
    receive
}

/// Progress: a bar with counts and rate on a terminal, one line per tenth otherwise.
struct Progress {
    total: u64,
    done: u64,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    tenths_said: u64,
}

impl Progress {
    fn new(total: u64, what: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            total,
            done: 0,
            started: Instant::now(),
            bar,
            tenths_said: 0,
        }
    }

    fn advance(&mut self, count: u64) {
        self.done += count;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            return;
        }
        let tenths = (self.done * 10)
            .checked_div(self.total)
            .unwrap_or(10)
            .min(10);
        if tenths > self.tenths_said {
            self.tenths_said = tenths;
            let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
            out!(
                "{}%: {} of {} accounts ({:.0}/s)",
                tenths * 10,
                self.done,
                self.total,
                self.done as f64 / seconds
            );
        }
    }

    fn finish(self) -> Duration {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        self.started.elapsed()
    }
}
