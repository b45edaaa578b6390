//! Sending one mail to the SMTP server of Synapse's `email:` keys, one step at a time, so that
//! a failure says which step failed: resolving the host, connecting (implicit TLS with
//! `force_tls`), TLS (STARTTLS when offered and `enable_tls`, required with
//! `require_transport_security`; the certificate checked against `tlsname`, trusting the
//! usual roots and `smtp_ca_file`), authentication (with `smtp_user`), then the sender, the
//! recipient and the message. lettre on rustls speaks SMTP; no system OpenSSL.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use secrecy::ExposeSecret;

use crate::config::EmailConfig;

/// A mail ready to go.
pub struct OutgoingMail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// The `Message-ID` (without the angle brackets): the same at every attempt, so that a
    /// mail sent twice (an instance died after the server took it) is recognisably one.
    pub message_id: String,
}

/// The step of talking to the SMTP server that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Resolving,
    Connecting,
    Tls,
    Authentication,
    Sender,
    Recipient,
    Message,
}

/// Why a mail was not sent: the step, what the server or the network said (never the
/// password nor the body), and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub stage: Stage,
    pub detail: String,
    /// The server refused for good (a 5xx answer) or the mail cannot be sent as it is:
    /// retrying will not help.
    pub permanent: bool,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.stage {
            Stage::Resolving => "resolving the SMTP host failed",
            Stage::Connecting => "connecting to the SMTP server failed",
            Stage::Tls => "TLS with the SMTP server failed",
            Stage::Authentication => "the SMTP server refused the authentication",
            Stage::Sender => "the SMTP server refused the sender",
            Stage::Recipient => "the SMTP server refused the recipient",
            Stage::Message => "the SMTP server refused the message",
        };
        write!(f, "{what}: {}", self.detail)
    }
}

impl std::error::Error for SendError {}

fn failed(stage: Stage, detail: impl fmt::Display) -> SendError {
    SendError {
        stage,
        detail: crate::cli::one_line(&detail.to_string()),
        permanent: false,
    }
}

/// What the SMTP server answered (or the network did), as one line.
fn smtp_failure(stage: Stage, err: lettre::transport::smtp::Error) -> SendError {
    SendError {
        permanent: err.is_permanent(),
        ..failed(stage, error_chain(&err))
    }
}

/// An error and its sources, as "a: b: c" (lettre's own message is short).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = inner.source();
    }
    text
}

/// Whether a failure to connect was the TLS handshake (rustls refused the server or its
/// certificate) rather than the network.
fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// Sends `mail` with the settings of `email`, from `notif_from`.
pub async fn send(email: &EmailConfig, mail: &OutgoingMail<'_>) -> Result<(), SendError> {
    let message = build_message(email, mail)?;
    let step = Duration::from_millis(email.smtp_timeout_ms.max(1) as u64);
    let timed = |stage: Stage| {
        move |_: tokio::time::error::Elapsed| {
            failed(stage, format!("no answer within {} ms", step.as_millis()))
        }
    };

    let addresses: Vec<SocketAddr> = tokio::time::timeout(
        step,
        tokio::net::lookup_host((email.smtp_host.as_str(), email.smtp_port)),
    )
    .await
    .map_err(timed(Stage::Resolving))?
    .map_err(|err| failed(Stage::Resolving, format!("{}: {err}", email.smtp_host)))?
    .collect();
    if addresses.is_empty() {
        return Err(failed(
            Stage::Resolving,
            format!("{} has no address", email.smtp_host),
        ));
    }

    let tls = tls_parameters(email)?;
    let hello = ClientId::default();
    let where_to = format!("{}:{}", email.smtp_host, email.smtp_port);
    let mut connection = tokio::time::timeout(
        step,
        AsyncSmtpConnection::connect_tokio1(
            addresses.as_slice(),
            Some(step),
            &hello,
            if email.force_tls { tls.clone() } else { None },
            None,
        ),
    )
    .await
    .map_err(timed(Stage::Connecting))?
    .map_err(|err| {
        let stage = if is_tls_failure(&err) {
            Stage::Tls
        } else {
            Stage::Connecting
        };
        failed(stage, format!("{where_to}: {}", error_chain(&err)))
    })?;

    let outcome = talk(email, &mut connection, tls, &hello, &message, step).await;
    match &outcome {
        Ok(()) => {
            let _ = tokio::time::timeout(step, connection.quit()).await;
        }
        // A STARTTLS that failed half-way leaves no stream to say QUIT on: just dropped.
        Err(err) if err.stage == Stage::Tls => {}
        Err(_) => {
            let _ = tokio::time::timeout(step, connection.abort()).await;
        }
    }
    outcome
}

/// Everything after the greeting: STARTTLS, AUTH, MAIL, RCPT, DATA.
async fn talk(
    email: &EmailConfig,
    connection: &mut AsyncSmtpConnection,
    tls: Option<TlsParameters>,
    hello: &ClientId,
    message: &Message,
    step: Duration,
) -> Result<(), SendError> {
    let timed = |stage: Stage| {
        move |_: tokio::time::error::Elapsed| {
            failed(stage, format!("no answer within {} ms", step.as_millis()))
        }
    };
    if !connection.is_encrypted() {
        match tls {
            Some(tls) if connection.can_starttls() => {
                tokio::time::timeout(step * 2, connection.starttls(tls, hello))
                    .await
                    .map_err(timed(Stage::Tls))?
                    .map_err(|err| {
                        failed(Stage::Tls, format!("STARTTLS: {}", error_chain(&err)))
                    })?;
            }
            _ if email.require_transport_security => {
                return Err(failed(
                    Stage::Tls,
                    "the server does not offer STARTTLS, and email.require_transport_security is \
                     set",
                ));
            }
            _ => {}
        }
    }

    if let (Some(user), Some(password)) = (&email.smtp_user, &email.smtp_pass) {
        let credentials = Credentials::new(user.clone(), password.expose_secret().to_owned());
        tokio::time::timeout(
            step,
            connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials),
        )
        .await
        .map_err(timed(Stage::Authentication))?
        .map_err(|err| SendError {
            // A refused password is not mended by waiting, but an operator may fix it: keep
            // retrying rather than lose the mail.
            permanent: false,
            ..failed(
                Stage::Authentication,
                format!("as {user}: {}", error_chain(&err)),
            )
        })?;
    }

    let envelope = message.envelope();
    tokio::time::timeout(
        step,
        connection.command(Mail::new(envelope.from().cloned(), vec![])),
    )
    .await
    .map_err(timed(Stage::Sender))?
    .map_err(|err| smtp_failure(Stage::Sender, err))?;
    for recipient in envelope.to() {
        tokio::time::timeout(
            step,
            connection.command(Rcpt::new(recipient.clone(), vec![])),
        )
        .await
        .map_err(timed(Stage::Recipient))?
        .map_err(|err| {
            let mut failure = smtp_failure(Stage::Recipient, err);
            failure.detail = format!("{recipient}: {}", failure.detail);
            failure
        })?;
    }
    tokio::time::timeout(step, connection.command(Data))
        .await
        .map_err(timed(Stage::Message))?
        .map_err(|err| smtp_failure(Stage::Message, err))?;
    tokio::time::timeout(step * 2, connection.message(&message.formatted()))
        .await
        .map_err(timed(Stage::Message))?
        .map_err(|err| smtp_failure(Stage::Message, err))?;
    Ok(())
}

/// The TLS settings, if TLS is on: the certificate must be for `tlsname` (default: the host)
/// and chain to the usual roots or to a certificate of `smtp_ca_file`.
fn tls_parameters(email: &EmailConfig) -> Result<Option<TlsParameters>, SendError> {
    if !email.enable_tls {
        return Ok(None);
    }
    let name = email
        .tlsname
        .clone()
        .unwrap_or_else(|| email.smtp_host.clone());
    let mut builder = TlsParameters::builder(name);
    if let Some(ca) = &email.smtp_ca_file {
        let certificate = Certificate::from_pem(&ca.pem).map_err(|err| {
            failed(
                Stage::Tls,
                format!("email.smtp_ca_file {}: {err}", ca.path.display()),
            )
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map(Some)
        .map_err(|err| failed(Stage::Tls, error_chain(&err)))
}

/// The message: From `notif_from` (`%(app)s` filled), a text and an HTML part in UTF-8, and
/// Synapse's headers against automatic answers.
fn build_message(email: &EmailConfig, mail: &OutgoingMail<'_>) -> Result<Message, SendError> {
    let permanent = |stage: Stage, detail: String| SendError {
        permanent: true,
        ..failed(stage, detail)
    };
    let from: Mailbox = super::from_address(email)
        .parse()
        .map_err(|err| permanent(Stage::Sender, format!("email.notif_from: {err}")))?;
    let to: Mailbox = mail.to.parse().map_err(|err| {
        permanent(
            Stage::Recipient,
            format!("{} is not an e-mail address: {err}", mail.to),
        )
    })?;
    let mut message = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject)
        .date_now()
        .message_id(Some(format!("<{}>", mail.message_id)))
        .multipart(MultiPart::alternative_plain_html(
            mail.text.to_owned(),
            mail.html.to_owned(),
        ))
        .map_err(|err| permanent(Stage::Message, err.to_string()))?;
    // RFC 3834: no automatic answers (out of office) to this mail; and Exchange's own header.
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    ));
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
        "All".into(),
    ));
    Ok(message)
}
