//! `homekey email test --to ADDRESS` (one mail, sent at once with the config's `email:`
//! settings: what failed, in one line) and `homekey email status` (the queued mail `serve`
//! has not sent yet, and what it gave up; never a body).

use super::ConfigArgs;
use super::operator::{CommandError, DatabaseSelection, EXIT_CODES_HELP, out};
use crate::mail::transport::{self, OutgoingMail};
use crate::utc::format_utc;

#[derive(Debug, clap::Args)]
pub struct EmailArgs {
    #[command(subcommand)]
    pub command: EmailCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EmailCommand {
    /// Send a test mail now with the config's `email:` settings, and say in one line what
    /// failed (resolving the host, connecting, TLS, authentication, a refused recipient).
    #[command(
        after_help = "Exit codes: 0 sent (the SMTP server took it); 1 not sent (the \
                            message says which step failed); 2 bad usage."
    )]
    Test {
        /// The address to send the test mail to.
        #[arg(long, value_name = "ADDRESS")]
        to: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The mail `homekey serve` has not sent: waiting, being retried (with the last error),
    /// and given up. Exits 1 if some mail was given up.
    #[command(after_help = EXIT_CODES_HELP)]
    Status {
        #[command(flatten)]
        db: DatabaseSelection,
    },
}

pub async fn run(args: EmailArgs) -> Result<(), CommandError> {
    match args.command {
        EmailCommand::Test { to, config } => test(&to, &config).await,
        EmailCommand::Status { db } => status(db).await,
    }
}

async fn test(to: &str, config: &ConfigArgs) -> Result<(), CommandError> {
    let config = config
        .load()
        .map_err(|err| CommandError::Refused(err.to_string()))?;
    let Some(email) = &config.email else {
        return Err(CommandError::Refused(
            "the config has no email section: give its smtp_host, notif_from and the others \
             (see the README's \"Mail\")"
                .into(),
        ));
    };
    let server = &config.server_name;
    let text = format!(
        "This is a test mail from homekey on {server}.\n\nIf you read this, the mail \
         settings (the email section of the config) work.\n"
    );
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Test mail</title></head>\
         <body><p>This is a test mail from homekey on {server}.</p><p>If you read this, the \
         mail settings (the <code>email</code> section of the config) work.</p></body></html>"
    );
    let mail = OutgoingMail {
        to,
        subject: &format!("[{server}] Test mail"),
        text: &text,
        html: &html,
        message_id: format!(
            "homekey.test.{}@{server}",
            crate::secrets::random_alphanumeric(16)
        ),
    };
    transport::send(email, &mail)
        .await
        .map_err(|err| CommandError::Refused(err.to_string()))?;
    out!(
        "sent a test mail to {to} through {}:{}",
        email.smtp_host,
        email.smtp_port
    );
    Ok(())
}

async fn status(db: DatabaseSelection) -> Result<(), CommandError> {
    let op = db.open().await?;
    let unsent = op.accounts.unsent_mail().await?;
    if unsent.is_empty() {
        out!("no mail waiting, none given up");
        return Ok(());
    }
    let given_up = unsent.iter().filter(|m| m.state == "given_up").count();
    out!(
        "mail not sent: {} waiting, {given_up} given up",
        unsent.len() - given_up
    );
    for mail in &unsent {
        let (state, when) = if mail.state == "given_up" {
            (
                "GIVEN UP",
                format!(
                    "given up {}",
                    mail.done_ms.map(format_utc).unwrap_or_else(|| "-".into())
                ),
            )
        } else if mail.attempts == 0 {
            (
                "queued",
                format!("next try {}", format_utc(mail.next_attempt_ms)),
            )
        } else {
            (
                "retrying",
                format!("next try {}", format_utc(mail.next_attempt_ms)),
            )
        };
        out!(
            "{}\t{state}\t{}\tqueued {}\t{} attempt(s)\t{when}\t{}",
            mail.recipient,
            mail.subject,
            format_utc(mail.queued_ms),
            mail.attempts,
            mail.last_error.as_deref().unwrap_or("-"),
        );
    }
    if given_up > 0 {
        return Err(CommandError::Refused(format!(
            "{given_up} mail(s) given up: check the email settings with `homekey email test \
             --to ADDRESS`"
        )));
    }
    Ok(())
}
