//! `homekey registration-token create|list|show|update|delete`: the invitations to sign up
//! (Synapse's `registration_tokens`), straight on the database (homekey's or a Synapse one),
//! audited; and what `homekey admin registration-token …` shares with it: the command line's
//! fields and how a token is printed (from the Admin API's JSON shape, which both have).

use serde_json::{Value, json};

use super::operator::{CommandError, DatabaseSelection, EXIT_CODES_HELP, out};
use super::time::{format_utc, parse_duration_ms};
use crate::accounts::now_ms;
use crate::accounts::registration_tokens::{
    DEFAULT_TOKEN_LENGTH, NewRegistrationToken, NewTokenText, RegistrationTokenError,
    admin_json as token_json,
};
use crate::store::RegistrationToken;

#[derive(Debug, clap::Args)]
pub struct RegistrationTokenArgs {
    #[command(subcommand)]
    pub command: RegistrationTokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RegistrationTokenCommand {
    /// Make a token (random unless given), for as many sign-ups and as long as given.
    #[command(after_help = EXIT_CODES_HELP)]
    Create {
        #[command(flatten)]
        fields: CreateFields,
        #[command(flatten)]
        db: DatabaseSelection,
    },
    /// The tokens, one a line: uses, expiry, and whether a sign-up could spend one now.
    #[command(after_help = EXIT_CODES_HELP)]
    List {
        #[command(flatten)]
        fields: ListFields,
        #[command(flatten)]
        db: DatabaseSelection,
    },
    /// One token.
    #[command(after_help = EXIT_CODES_HELP)]
    Show {
        #[command(flatten)]
        fields: ShowFields,
        #[command(flatten)]
        db: DatabaseSelection,
    },
    /// Change how many sign-ups a token admits, or until when.
    #[command(after_help = EXIT_CODES_HELP)]
    Update {
        #[command(flatten)]
        fields: UpdateFields,
        #[command(flatten)]
        db: DatabaseSelection,
    },
    /// Delete a token (sign-ups already under way with it are not stopped).
    #[command(after_help = EXIT_CODES_HELP)]
    Delete {
        /// The token.
        #[arg(id = "registration_token", value_name = "TOKEN")]
        token: String,
        #[command(flatten)]
        db: DatabaseSelection,
    },
}

/// `create`'s fields.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateFields {
    /// The token's text: 1 to 64 of A-Z a-z 0-9 . _ ~ - (default: random). An argument, not
    /// `--token`, which `homekey admin` takes for the admin's access token.
    #[arg(
        id = "registration_token",
        value_name = "TOKEN",
        conflicts_with = "length"
    )]
    pub token: Option<String>,
    /// The length of a random token, 1 to 64 (default 16).
    #[arg(long)]
    pub length: Option<i64>,
    /// How many sign-ups it admits (default: no limit; 0 admits none).
    #[arg(long, value_name = "N")]
    pub uses_allowed: Option<u32>,
    /// It stops admitting sign-ups after DURATION, e.g. 24h, 7d (default: never).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub expires_in: Option<i64>,
    /// It stops admitting sign-ups at this time, in ms since the epoch (Synapse's
    /// expiry_time).
    #[arg(long, value_name = "MS", conflicts_with = "expires_in")]
    pub expiry_time: Option<i64>,
    /// Print the token as the Admin API's JSON.
    #[arg(long)]
    pub json: bool,
}

impl CreateFields {
    /// The expiry asked for, in ms since the epoch.
    pub fn expiry_time(&self) -> Option<i64> {
        self.expiry_time
            .or_else(|| self.expires_in.map(|ms| now_ms().saturating_add(ms)))
    }

    /// The Admin API's `POST …/registration_tokens/new` body.
    pub fn admin_api_body(&self) -> Value {
        let mut body = json!({
            "uses_allowed": self.uses_allowed,
            "expiry_time": self.expiry_time(),
        });
        match (&self.token, self.length) {
            (Some(token), _) => body["token"] = json!(token),
            (None, Some(length)) => body["length"] = json!(length),
            (None, None) => {}
        }
        body
    }
}

/// `list`'s fields.
#[derive(Debug, Clone, clap::Args)]
pub struct ListFields {
    /// Only the tokens that could admit a sign-up now.
    #[arg(long, conflicts_with = "invalid")]
    pub valid: bool,
    /// Only the tokens that cannot (expired or used up).
    #[arg(long)]
    pub invalid: bool,
    /// Print the Admin API's JSON.
    #[arg(long)]
    pub json: bool,
}

impl ListFields {
    pub fn valid(&self) -> Option<bool> {
        match (self.valid, self.invalid) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// `show`'s fields.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowFields {
    /// The token.
    #[arg(id = "registration_token", value_name = "TOKEN")]
    pub token: String,
    /// Print the Admin API's JSON.
    #[arg(long)]
    pub json: bool,
}

/// `update`'s fields: each change only if given.
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateFields {
    /// The token.
    #[arg(id = "registration_token", value_name = "TOKEN")]
    pub token: String,
    /// How many sign-ups it admits in all (0 admits no more).
    #[arg(long, value_name = "N", conflicts_with = "unlimited")]
    pub uses_allowed: Option<u32>,
    /// No limit on the number of sign-ups.
    #[arg(long)]
    pub unlimited: bool,
    /// It stops admitting sign-ups DURATION from now, e.g. 24h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms, conflicts_with = "never_expires")]
    pub expires_in: Option<i64>,
    /// It stops admitting sign-ups at this time, in ms since the epoch.
    #[arg(long, value_name = "MS", conflicts_with_all = ["expires_in", "never_expires"])]
    pub expiry_time: Option<i64>,
    /// It never expires.
    #[arg(long)]
    pub never_expires: bool,
    /// Print the token as the Admin API's JSON.
    #[arg(long)]
    pub json: bool,
}

impl UpdateFields {
    /// The new `uses_allowed`, if it changes (`Some(None)`: no limit).
    pub fn uses_allowed(&self) -> Option<Option<i64>> {
        match (self.uses_allowed, self.unlimited) {
            (Some(n), _) => Some(Some(i64::from(n))),
            (None, true) => Some(None),
            (None, false) => None,
        }
    }

    /// The new `expiry_time`, if it changes (`Some(None)`: never).
    pub fn expiry_time(&self) -> Option<Option<i64>> {
        if self.never_expires {
            return Some(None);
        }
        self.expiry_time
            .or_else(|| self.expires_in.map(|ms| now_ms().saturating_add(ms)))
            .map(Some)
    }

    /// The Admin API's `PUT …/registration_tokens/<token>` body.
    pub fn admin_api_body(&self) -> Value {
        let mut body = json!({});
        if let Some(uses_allowed) = self.uses_allowed() {
            body["uses_allowed"] = json!(uses_allowed);
        }
        if let Some(expiry_time) = self.expiry_time() {
            body["expiry_time"] = json!(expiry_time);
        }
        body
    }

    /// Refuses an update that changes nothing, before anything is asked.
    pub fn check_changes_something(&self) -> Result<(), CommandError> {
        if self.uses_allowed().is_none() && self.expiry_time().is_none() {
            return Err(CommandError::Usage(
                "nothing to change: give --uses-allowed N, --unlimited, --expires-in DURATION, \
                 --expiry-time MS or --never-expires"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The Admin API's JSON of a token, read back (a field of another type reads as 0 or none).
fn from_json(value: &Value) -> RegistrationToken {
    let count = |key: &str| value[key].as_i64().and_then(|n| i32::try_from(n).ok());
    RegistrationToken {
        token: value["token"].as_str().unwrap_or_default().to_owned(),
        uses_allowed: count("uses_allowed"),
        pending: count("pending").unwrap_or(0),
        completed: count("completed").unwrap_or(0),
        expiry_time: value["expiry_time"].as_i64(),
    }
}

fn print_json(value: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `expiry_time` for an operator: the UTC time and the milliseconds, or "never".
fn expiry(expiry_time: Option<i64>) -> String {
    match expiry_time {
        Some(ms) => format!("{} ({ms})", format_utc(ms)),
        None => "never".into(),
    }
}

/// One token (the Admin API's JSON), as `show`, `create` and `update` print it.
pub fn print_token(value: &Value, json: bool) {
    if json {
        return print_json(value);
    }
    let token = from_json(value);
    out!("{}", token.token);
    let uses = match token.uses_allowed {
        Some(n) => n.to_string(),
        None => "unlimited".into(),
    };
    out!("  {:<13} {uses}", "uses_allowed");
    out!("  {:<13} {}", "pending", token.pending);
    out!("  {:<13} {}", "completed", token.completed);
    out!("  {:<13} {}", "expiry_time", expiry(token.expiry_time));
    out!(
        "  {:<13} {}",
        "valid",
        if token.is_valid(now_ms()) {
            "yes"
        } else {
            "no"
        }
    );
}

/// The tokens (the Admin API's JSON list), as `list` prints them.
pub fn print_tokens(tokens: &[Value], json: bool) {
    if json {
        return print_json(&Value::Array(tokens.to_vec()));
    }
    let now = now_ms();
    for value in tokens {
        let token = from_json(value);
        let uses = match token.uses_allowed {
            Some(n) => format!("{}/{n}", token.completed),
            None => format!("{}/unlimited", token.completed),
        };
        out!(
            "{:<20} used {uses:<14} pending {:<4} expires {:<40} {}",
            token.token,
            token.pending,
            expiry(token.expiry_time),
            if token.is_valid(now) {
                "valid"
            } else {
                "invalid"
            }
        );
    }
    out!(
        "{} token{}",
        tokens.len(),
        if tokens.len() == 1 { "" } else { "s" }
    );
}

/// The service's refusal as the operator's line.
impl From<RegistrationTokenError> for CommandError {
    fn from(err: RegistrationTokenError) -> CommandError {
        match err {
            RegistrationTokenError::Store(err) => err.into(),
            RegistrationTokenError::Exists(token) => {
                CommandError::Refused(format!("registration token {token} already exists"))
            }
            RegistrationTokenError::NotFound(token) => {
                CommandError::Refused(format!("no registration token {token}"))
            }
            other => CommandError::Refused(other.to_string()),
        }
    }
}

pub async fn run(args: RegistrationTokenArgs) -> Result<(), CommandError> {
    match args.command {
        RegistrationTokenCommand::Create { fields, db } => {
            let op = db.open().await?;
            let text = match &fields.token {
                Some(token) => NewTokenText::Given(token.clone()),
                None => NewTokenText::Random {
                    length: fields.length.unwrap_or(DEFAULT_TOKEN_LENGTH),
                },
            };
            let token = op
                .accounts
                .create_registration_token(
                    &op.actor(false, false),
                    NewRegistrationToken {
                        text,
                        uses_allowed: fields.uses_allowed.map(i64::from),
                        expiry_time: fields.expiry_time(),
                    },
                )
                .await?;
            print_token(&token_json(&token), fields.json);
        }
        RegistrationTokenCommand::List { fields, db } => {
            let op = db.open().await?;
            let tokens = op.accounts.registration_tokens(fields.valid()).await?;
            let tokens: Vec<Value> = tokens.iter().map(token_json).collect();
            print_tokens(&tokens, fields.json);
        }
        RegistrationTokenCommand::Show { fields, db } => {
            let op = db.open().await?;
            let token = op
                .accounts
                .registration_token(&fields.token)
                .await?
                .ok_or(RegistrationTokenError::NotFound(fields.token.clone()))?;
            print_token(&token_json(&token), fields.json);
        }
        RegistrationTokenCommand::Update { fields, db } => {
            fields.check_changes_something()?;
            let op = db.open().await?;
            let token = op
                .accounts
                .update_registration_token(
                    &op.actor(false, false),
                    &fields.token,
                    fields.uses_allowed(),
                    fields.expiry_time(),
                )
                .await?;
            print_token(&token_json(&token), fields.json);
        }
        RegistrationTokenCommand::Delete { token, db } => {
            let op = db.open().await?;
            op.accounts
                .delete_registration_token(&op.actor(false, false), &token)
                .await?;
            out!("deleted registration token {token}");
        }
    }
    Ok(())
}
