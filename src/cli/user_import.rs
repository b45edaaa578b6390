//! `homekey user import FILE`: many accounts at once, from CSV (with a header line) or JSON
//! lines. The whole file is checked before anything changes, so a bad line imports nothing;
//! users that already exist are skipped, so an interrupted import is finished by running it
//! again. Errors name the line and the field, never a password or a hash.
//!
//! An `email` field gives the account its e-mail addresses: one, or several separated by `;`
//! (a character no address in practice holds, and no CSV delimiter: no quoting needed), or
//! in JSON lines an array of strings. Each is kept canonical, as Synapse keeps it; one that
//! is not an address, listed twice, or another account's refuses the file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::Value;

use super::operator::{CommandError, DatabaseSelection, Operator, out};
use crate::accounts::{Actor, NewAccount, NewAccountPassword};
use crate::ids::UserId;
use crate::threepid::Threepid;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A CSV file with a header line, or a JSON-lines file (one object a line).
    pub file: PathBuf,
    /// Import passwords even if password_config.policy refuses them.
    #[arg(long)]
    pub ignore_policy: bool,
    #[command(flatten)]
    pub db: DatabaseSelection,
}

/// The fields a line may have.
const FIELDS: &[&str] = &[
    "user",
    "password",
    "password_hash",
    "admin",
    "displayname",
    "email",
];

/// What separates an `email` field's addresses.
const EMAIL_SEPARATOR: char = ';';

/// One account of the file, checked.
struct Entry {
    line: u64,
    user_id: UserId,
    password: Option<SecretString>,
    password_hash: Option<SecretString>,
    admin: bool,
    displayname: Option<String>,
    emails: Vec<Threepid>,
}

/// A line's fields, as text (absent when empty or null), with its line number.
struct RawLine {
    line: u64,
    fields: BTreeMap<String, String>,
}

pub async fn run(args: ImportArgs) -> Result<(), CommandError> {
    let text = std::fs::read_to_string(&args.file).map_err(|err| {
        CommandError::Refused(format!("{}: cannot read it: {err}", args.file.display()))
    })?;
    let raw = if is_json_lines(&args.file, &text) {
        parse_json_lines(&text)?
    } else {
        parse_csv(&text)?
    };
    let op = args.db.open().await?;
    let actor = op.actor(false, args.ignore_policy);
    let entries = check(&op, &actor, raw).await?;
    let outcome = import(&op, &actor, &entries).await?;
    out!(
        "imported {} user{}; skipped {} that already existed",
        outcome.imported,
        if outcome.imported == 1 { "" } else { "s" },
        outcome.skipped
    );
    if outcome.imported > 0 {
        op.note_synapse_caches();
    }
    Ok(())
}

/// JSON lines by extension (`.jsonl`, `.ndjson`, `.json`), CSV by `.csv`, else by whether
/// the first line that is not blank is an object.
fn is_json_lines(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("jsonl" | "ndjson" | "json") => true,
        Some("csv") => false,
        _ => text
            .lines()
            .find(|line| !line.trim().is_empty())
            .is_some_and(|line| line.trim_start().starts_with('{')),
    }
}

fn line_error(line: u64, message: impl std::fmt::Display) -> CommandError {
    CommandError::Refused(format!("line {line}: {message}; nothing was imported"))
}

fn parse_json_lines(text: &str) -> Result<Vec<RawLine>, CommandError> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        // serde_json's messages may quote the text: say only where it went wrong.
        let object: serde_json::Map<String, Value> = serde_json::from_str(line).map_err(|err| {
            line_error(
                number,
                format!("not a JSON object (column {})", err.column()),
            )
        })?;
        let mut fields = BTreeMap::new();
        for (key, value) in object {
            let text = match value {
                Value::Null => continue,
                Value::String(text) => text,
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) => number.to_string(),
                // Several e-mail addresses, as the CSV column has them.
                Value::Array(items) if key == "email" => {
                    let addresses: Option<Vec<String>> = items
                        .into_iter()
                        .map(|item| match item {
                            Value::String(address) => Some(address),
                            _ => None,
                        })
                        .collect();
                    let Some(addresses) = addresses else {
                        return Err(line_error(
                            number,
                            "`email` must be a string or an array of strings",
                        ));
                    };
                    addresses.join(&EMAIL_SEPARATOR.to_string())
                }
                _ => {
                    return Err(line_error(
                        number,
                        format!("`{key}` must be a string or a boolean"),
                    ));
                }
            };
            fields.insert(key, text);
        }
        lines.push(RawLine {
            line: number,
            fields,
        });
    }
    Ok(lines)
}

fn parse_csv(text: &str) -> Result<Vec<RawLine>, CommandError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    // csv's errors name positions and counts, never the field's content.
    let headers = reader
        .headers()
        .map_err(|err| line_error(1, format!("not a CSV header: {err}")))?
        .clone();
    // Without it the first line is likely an account rather than a header (and would be
    // taken for one with no accounts after it): say so without quoting it, as it may hold a
    // password.
    if !headers.iter().any(|name| name == "user") {
        return Err(line_error(
            1,
            format!(
                "the header has no `user` column (a CSV file starts with a header line naming \
                 its columns: {})",
                FIELDS.join(", ")
            ),
        ));
    }
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| {
            let line = err.position().map_or(0, |p| p.line());
            line_error(line, format!("not valid CSV: {}", csv_error_kind(&err)))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let fields = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        lines.push(RawLine { line, fields });
    }
    Ok(lines)
}

fn csv_error_kind(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        _ => "malformed".into(),
    }
}

/// Checks every line, and which users exist, before anything changes.
async fn check(
    op: &Operator,
    actor: &Actor,
    raw: Vec<RawLine>,
) -> Result<Vec<Entry>, CommandError> {
    let mut entries = Vec::new();
    let mut seen = HashSet::new();
    // Each address of the file, and the line that has it.
    let mut addresses: HashMap<Threepid, u64> = HashMap::new();
    let mut new_passwords = false;
    let existing = existing_users(op, &raw).await?;
    for RawLine { line, mut fields } in raw {
        if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(line_error(
                line,
                format!("unknown field `{unknown}` (known: {})", FIELDS.join(", ")),
            ));
        }
        let given = fields
            .remove("user")
            .ok_or_else(|| line_error(line, "`user` is missing"))?;
        let user_id = op.user_id(&given).map_err(|err| line_error(line, err))?;
        if !seen.insert(user_id.as_str().to_lowercase()) {
            return Err(line_error(line, format!("{user_id} is listed twice")));
        }
        if !existing.contains(&given) {
            crate::ids::validate_new_localpart(user_id.localpart())
                .map_err(|err| line_error(line, format!("cannot create {user_id}: {err}")))?;
        }
        let password = fields.remove("password").map(SecretString::from);
        let password_hash = fields.remove("password_hash").map(SecretString::from);
        if password.is_some() && password_hash.is_some() {
            return Err(line_error(
                line,
                "give `password` or `password_hash`, not both",
            ));
        }
        if let Some(password) = &password {
            op.accounts
                .check_new_password(actor, password)
                .map_err(|refusal| line_error(line, refusal))?;
            new_passwords = true;
        }
        if let Some(hash) = &password_hash {
            op.accounts
                .check_given_hash(hash)
                .map_err(|refusal| line_error(line, format!("`password_hash` is {refusal}")))?;
        }
        let admin = match fields.remove("admin").as_deref().map(str::to_lowercase) {
            None => false,
            Some(flag) => match flag.as_str() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(line_error(line, "`admin` must be true or false")),
            },
        };
        let displayname = fields.remove("displayname");
        let mut emails = Vec::new();
        for given in fields
            .remove("email")
            .iter()
            .flat_map(|field| field.split(EMAIL_SEPARATOR))
            .map(str::trim)
            .filter(|given| !given.is_empty())
        {
            // The address itself is named: it is no secret, and the operator must find it.
            let email = Threepid::email(given).map_err(|_| {
                line_error(line, format!("`email`: {given:?} is not an e-mail address"))
            })?;
            if let Some(other) = addresses.insert(email.clone(), line) {
                let where_else = if other == line {
                    "twice on this line".to_owned()
                } else {
                    format!("on line {other} too")
                };
                return Err(line_error(
                    line,
                    format!("`email`: {} is {where_else}", email.address),
                ));
            }
            if let Some(holder) = op.accounts.user_by_threepid(&email).await?
                && holder != user_id.as_str()
            {
                return Err(line_error(
                    line,
                    format!(
                        "`email`: {} is already the address of another account, {holder}",
                        email.address
                    ),
                ));
            }
            emails.push(email);
        }
        entries.push(Entry {
            line,
            user_id,
            password,
            password_hash,
            admin,
            displayname,
            emails,
        });
    }
    if new_passwords {
        op.note_without_config();
    }
    Ok(entries)
}

struct Outcome {
    imported: u64,
    skipped: u64,
}

/// Accounts per transaction when the hashes are given: one transaction (and one sync to disk)
/// per account would cap an import at a few hundred accounts a second.
const IMPORT_BATCH: usize = 1000;

/// Which lines name an account that exists (ignoring case), by the text of their `user`
/// field, among those whose localpart a new account could not have: only there does it
/// matter (an existing account is skipped, not refused). Usually none, so no query at all;
/// else a few queries for the whole file.
async fn existing_users(op: &Operator, raw: &[RawLine]) -> Result<HashSet<String>, CommandError> {
    let mut ids = Vec::new();
    for RawLine { fields, .. } in raw {
        if let Some(given) = fields.get("user")
            && let Ok(user_id) = op.user_id(given)
            && crate::ids::validate_new_localpart(user_id.localpart()).is_err()
        {
            ids.push((given.clone(), user_id));
        }
    }
    let names: Vec<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();
    let taken = op.accounts.taken_user_ids(&names).await?;
    Ok(ids
        .into_iter()
        .filter(|(_, id)| taken.contains(id.as_str()))
        .map(|(given, _)| given)
        .collect())
}

/// Creates the accounts that do not exist yet, a batch at a time, each batch one transaction
/// with the audit records of its accounts (so a stop leaves whole accounts only, each with its
/// record, and a run again finishes the job). Passwords given in clear are hashed a small
/// batch at a time on every core.
async fn import(op: &Operator, actor: &Actor, entries: &[Entry]) -> Result<Outcome, CommandError> {
    let progress = Progress::new(entries.len());
    let mut outcome = Outcome {
        imported: 0,
        skipped: 0,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = if entries.iter().any(|e| e.password.is_some()) {
        4 * cores
    } else {
        IMPORT_BATCH
    };
    for chunk in entries.chunks(batch) {
        // Existing accounts are passed over again in create_users; looking them up here
        // only spares hashing their passwords.
        let existing = if chunk.iter().any(|e| e.password.is_some()) {
            let names: Vec<&str> = chunk.iter().map(|e| e.user_id.as_str()).collect();
            op.accounts
                .taken_user_ids(&names)
                .await
                .map_err(|err| stopped(&chunk[0], &outcome, err.into()))?
        } else {
            HashSet::new()
        };
        let todo: Vec<&Entry> = chunk
            .iter()
            .filter(|e| !existing.contains(e.user_id.as_str()))
            .collect();
        outcome.skipped += (chunk.len() - todo.len()) as u64;
        let accounts: Vec<NewAccount> = todo
            .iter()
            .map(|entry| NewAccount {
                user_id: entry.user_id.clone(),
                password: match (&entry.password, &entry.password_hash) {
                    (Some(password), _) => NewAccountPassword::Plain(password.clone()),
                    (None, Some(hash)) => NewAccountPassword::Hash(hash.clone()),
                    (None, None) => NewAccountPassword::None,
                },
                admin: entry.admin,
                user_type: None,
                displayname: entry.displayname.clone(),
                avatar_url: None,
                threepids: entry.emails.clone(),
            })
            .collect();
        if let Some(first) = todo.first() {
            let created = op
                .accounts
                .create_users(actor, accounts)
                .await
                .map_err(|err| stopped(first, &outcome, err.into()))?;
            for created in created {
                if created {
                    outcome.imported += 1;
                } else {
                    // Created by someone else since the check: it exists, which is the point.
                    outcome.skipped += 1;
                }
            }
        }
        progress.show(outcome.imported + outcome.skipped);
    }
    progress.finish();
    Ok(outcome)
}

/// The error that stopped an import midway, with what was done and how to go on.
fn stopped(entry: &Entry, outcome: &Outcome, err: CommandError) -> CommandError {
    let message = format!(
        "line {} ({}): {err}; {} imported before it: run the import again to go on",
        entry.line, entry.user_id, outcome.imported
    );
    match err {
        CommandError::Unreachable(_) => CommandError::Unreachable(message),
        _ => CommandError::Refused(message),
    }
}

/// A counter on stderr, rewritten in place, only when stderr is a terminal.
struct Progress {
    total: usize,
    on_terminal: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            on_terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, done: u64) {
        if self.on_terminal {
            eprint!("\rimporting: {done}/{}", self.total);
        }
    }

    fn finish(&self) {
        if self.on_terminal {
            eprintln!();
        }
    }
}
