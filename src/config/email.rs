//! Synapse's `email:` section (its keys and defaults, `synapse/config/emailconfig.py`), with a
//! few keys of homekey's own for the queue of mail it sends (`crate::mail`), and Synapse's
//! `templates: custom_template_directory`.
//!
//! As in Synapse, any non-empty `email:` turns on what needs mail (the password reset by
//! e-mail), and then `notif_from` is required. Keys of the section homekey does not use
//! (Synapse's notifications) are ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::RawDuration;

/// The `email:` section, validated.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// `smtp_host` (default `localhost`).
    pub smtp_host: String,
    /// `smtp_port` (default 465 with `force_tls`, else 25).
    pub smtp_port: u16,
    /// `smtp_user`: when set, the server must accept this user (and `smtp_pass`).
    pub smtp_user: Option<String>,
    /// `smtp_pass`.
    pub smtp_pass: Option<SecretString>,
    /// `force_tls` (default false): TLS from the first byte (SMTPS, port 465).
    pub force_tls: bool,
    /// `require_transport_security` (default false): refuse to send unless the server
    /// offers STARTTLS.
    pub require_transport_security: bool,
    /// `enable_tls` (default true): STARTTLS when the server offers it.
    pub enable_tls: bool,
    /// `tlsname`: the name the server's certificate must be for (default: `smtp_host`).
    pub tlsname: Option<String>,
    /// `notif_from`: the From of every mail; `%(app)s` stands for `app_name`.
    pub notif_from: String,
    /// `app_name` (default `Matrix`).
    pub app_name: String,
    /// `validation_token_lifetime` (default 1h): how long a link sent by mail works.
    pub validation_token_lifetime_ms: i64,
    /// `subjects.password_reset` (default `[%(server_name)s] Password reset`).
    pub password_reset_subject: String,
    /// `subjects.email_validation` (default `[%(server_name)s] Validate your email`): the
    /// sign-up's mail.
    pub email_validation_subject: String,
    /// `subjects.email_already_in_use` (default `[%(server_name)s] Email already in use`).
    pub email_already_in_use_subject: String,
    /// The template file names (`password_reset_template_html` and the others).
    pub templates: TemplateNames,
    /// Synapse's deprecated `email.template_dir`: searched for templates after
    /// `templates.custom_template_directory`.
    pub template_dir: Option<PathBuf>,
    /// homekey's own `smtp_ca_file`: certificates (PEM) trusted for the SMTP server, beside
    /// the usual roots (a private CA, or a test's throwaway certificate).
    pub smtp_ca_file: Option<CaFile>,
    /// homekey's own `smtp_timeout` (default 30s, as Synapse's): how long one step of talking
    /// to the SMTP server may take.
    pub smtp_timeout_ms: i64,
    /// homekey's own `delivery_retry_delays` (default 1m, 5m, 30m, 2h, 6h): the waits after
    /// each failed delivery of a queued mail; once the last has passed and the next attempt
    /// fails too, the mail is given up.
    pub retry_delays_ms: Vec<i64>,
}

/// The template files of the password reset, by Synapse's keys; looked up in the template
/// directories, then among homekey's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateNames {
    /// `password_reset_template_html` (default `password_reset.html`).
    pub password_reset_html: String,
    /// `password_reset_template_text` (default `password_reset.txt`).
    pub password_reset_text: String,
    /// `password_reset_template_success_html` (default `password_reset_success.html`).
    pub password_reset_success_html: String,
    /// `password_reset_template_failure_html` (default `password_reset_failure.html`).
    pub password_reset_failure_html: String,
    /// `registration_template_html` (default `registration.html`): the sign-up's mail.
    pub registration_html: String,
    /// `registration_template_text` (default `registration.txt`).
    pub registration_text: String,
    /// `registration_template_success_html` (default `registration_success.html`).
    pub registration_success_html: String,
    /// `registration_template_failure_html` (default `registration_failure.html`).
    pub registration_failure_html: String,
    /// `already_in_use_template_html` (default `already_in_use.html`): the mail to an address
    /// an account has, when a sign-up asks for it and errors are inhibited.
    pub already_in_use_html: String,
    /// `already_in_use.txt` (Synapse reads its key, by a slip, from
    /// `already_in_use_template_html`; homekey reads `already_in_use_template_text`).
    pub already_in_use_text: String,
}

impl Default for TemplateNames {
    fn default() -> TemplateNames {
        TemplateNames {
            password_reset_html: "password_reset.html".into(),
            password_reset_text: "password_reset.txt".into(),
            password_reset_success_html: "password_reset_success.html".into(),
            password_reset_failure_html: "password_reset_failure.html".into(),
            registration_html: "registration.html".into(),
            registration_text: "registration.txt".into(),
            registration_success_html: "registration_success.html".into(),
            registration_failure_html: "registration_failure.html".into(),
            already_in_use_html: "already_in_use.html".into(),
            already_in_use_text: "already_in_use.txt".into(),
        }
    }
}

/// A CA file, read at start-up.
#[derive(Clone)]
pub struct CaFile {
    pub path: PathBuf,
    pub pem: Arc<[u8]>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFile").field("path", &self.path).finish()
    }
}

/// Synapse's default `validation_token_lifetime`.
pub const DEFAULT_VALIDATION_TOKEN_LIFETIME_MS: i64 = 3_600_000;
/// Synapse's default password reset subject.
pub const DEFAULT_PASSWORD_RESET_SUBJECT: &str = "[%(server_name)s] Password reset";
/// Synapse's default subject of the sign-up's mail.
pub const DEFAULT_EMAIL_VALIDATION_SUBJECT: &str = "[%(server_name)s] Validate your email";
/// Synapse's default subject of the mail to an address already in use.
pub const DEFAULT_EMAIL_ALREADY_IN_USE_SUBJECT: &str = "[%(server_name)s] Email already in use";
/// The default waits between deliveries of a mail that could not be delivered.
pub const DEFAULT_RETRY_DELAYS_MS: [i64; 5] = [60_000, 300_000, 1_800_000, 7_200_000, 21_600_000];
/// Synapse's SMTP connection timeout.
pub const DEFAULT_SMTP_TIMEOUT_MS: i64 = 30_000;

/// The section as written.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawEmail {
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_user: Option<String>,
    smtp_pass: Option<String>,
    force_tls: Option<bool>,
    require_transport_security: Option<bool>,
    enable_tls: Option<bool>,
    tlsname: Option<String>,
    notif_from: Option<String>,
    app_name: Option<String>,
    validation_token_lifetime: Option<RawDuration>,
    subjects: RawSubjects,
    password_reset_template_html: Option<String>,
    password_reset_template_text: Option<String>,
    password_reset_template_success_html: Option<String>,
    password_reset_template_failure_html: Option<String>,
    registration_template_html: Option<String>,
    registration_template_text: Option<String>,
    registration_template_success_html: Option<String>,
    registration_template_failure_html: Option<String>,
    already_in_use_template_html: Option<String>,
    already_in_use_template_text: Option<String>,
    template_dir: Option<PathBuf>,
    smtp_ca_file: Option<PathBuf>,
    smtp_timeout: Option<RawDuration>,
    delivery_retry_delays: Option<Vec<RawDuration>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSubjects {
    password_reset: Option<String>,
    email_validation: Option<String>,
    email_already_in_use: Option<String>,
}

/// Synapse's `templates:` section: only `custom_template_directory`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawTemplates {
    custom_template_directory: Option<PathBuf>,
}

type KeyError = (String, String);

fn key_error(key: &str, message: impl Into<String>) -> KeyError {
    (key.to_owned(), message.into())
}

impl RawTemplates {
    /// `templates.custom_template_directory`, which must be a directory.
    pub(super) fn validate(self) -> Result<Option<PathBuf>, KeyError> {
        match self.custom_template_directory {
            None => Ok(None),
            Some(dir) => {
                existing_dir(&dir)
                    .map_err(|m| key_error("templates.custom_template_directory", m))?;
                Ok(Some(dir))
            }
        }
    }
}

fn existing_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "the template directory {} does not exist or is not a directory",
            dir.display()
        ))
    }
}

/// The `email:` section (`None`: absent, null or empty: mail is off), checked; `Err`: the key
/// (in full, e.g. `email.smtp_port`) and why, never the value of `smtp_pass`.
pub(super) fn validate(
    raw: Option<Value>,
    server_name: &str,
) -> Result<Option<EmailConfig>, KeyError> {
    let raw = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Mapping(map)) if map.is_empty() => return Ok(None),
        Some(value @ Value::Mapping(_)) => value,
        Some(_) => {
            return Err(key_error(
                "email",
                "expected a mapping of keys to values (the value is not shown: it may hold a \
                 secret)",
            ));
        }
    };
    let raw: RawEmail = serde_path_to_error::deserialize(raw).map_err(|err| {
        let key = format!("email.{}", err.path());
        let message = super::describe_serde_error(&key, err.inner());
        (key, message)
    })?;

    let force_tls = raw.force_tls.unwrap_or(false);
    let enable_tls = raw.enable_tls.unwrap_or(true);
    let require_transport_security = raw.require_transport_security.unwrap_or(false);
    if force_tls && !enable_tls {
        return Err(key_error(
            "email.force_tls",
            "email.force_tls requires email.enable_tls to be true",
        ));
    }
    if require_transport_security && !enable_tls {
        return Err(key_error(
            "email.require_transport_security",
            "email.require_transport_security requires email.enable_tls to be true",
        ));
    }
    let smtp_port = raw.smtp_port.unwrap_or(if force_tls { 465 } else { 25 });
    let smtp_host = raw.smtp_host.unwrap_or_else(|| "localhost".into());
    if smtp_host.trim().is_empty() {
        return Err(key_error("email.smtp_host", "may not be empty"));
    }
    if raw.smtp_user.is_some() && raw.smtp_pass.is_none() {
        return Err(key_error(
            "email.smtp_pass",
            "is required with email.smtp_user (the SMTP server's password for that user)",
        ));
    }

    let app_name = raw.app_name.unwrap_or_else(|| "Matrix".into());
    let Some(notif_from) = raw.notif_from.filter(|from| !from.trim().is_empty()) else {
        return Err(key_error(
            "email.notif_from",
            "is required once the email section is given: the From of the mail homekey \
             sends, e.g. \"Your Homeserver <noreply@example.com>\"",
        ));
    };
    let from = crate::mail::percent_format(&notif_from, &[("app", &app_name)]);
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(key_error(
            "email.notif_from",
            format!(
                "\"{notif_from}\" is not an e-mail address, e.g. \"Your Homeserver \
                 <noreply@example.com>\""
            ),
        ));
    }

    let validation_token_lifetime_ms = positive(
        "email.validation_token_lifetime",
        raw.validation_token_lifetime,
        DEFAULT_VALIDATION_TOKEN_LIFETIME_MS,
    )?;
    let password_reset_subject = raw
        .subjects
        .password_reset
        .unwrap_or_else(|| DEFAULT_PASSWORD_RESET_SUBJECT.into());
    if crate::mail::percent_format_checked(&password_reset_subject, &[("server_name", server_name)])
        .is_none()
    {
        return Err(key_error(
            "email.subjects.password_reset",
            format!(
                "\"{password_reset_subject}\": the only placeholder is %(server_name)s (write % \
                 itself as %%)"
            ),
        ));
    }
    // Synapse fills in `%(app)s` too in these two.
    let subject = |key: &str, given: Option<String>, default: &str| {
        let subject = given.unwrap_or_else(|| default.to_owned());
        let placeholders = [("server_name", server_name), ("app", "")];
        match crate::mail::percent_format_checked(&subject, &placeholders) {
            Some(_) => Ok(subject),
            None => Err(key_error(
                &format!("email.subjects.{key}"),
                format!(
                    "\"{subject}\": the only placeholders are %(server_name)s and %(app)s \
                     (write % itself as %%)"
                ),
            )),
        }
    };
    let email_validation_subject = subject(
        "email_validation",
        raw.subjects.email_validation,
        DEFAULT_EMAIL_VALIDATION_SUBJECT,
    )?;
    let email_already_in_use_subject = subject(
        "email_already_in_use",
        raw.subjects.email_already_in_use,
        DEFAULT_EMAIL_ALREADY_IN_USE_SUBJECT,
    )?;

    let defaults = TemplateNames::default();
    let template_name = |key: &str, given: Option<String>, default: String| match given {
        None => Ok(default),
        Some(name) if name.trim().is_empty() => {
            Err(key_error(&format!("email.{key}"), "may not be empty"))
        }
        Some(name) => Ok(name),
    };
    let templates = TemplateNames {
        password_reset_html: template_name(
            "password_reset_template_html",
            raw.password_reset_template_html,
            defaults.password_reset_html,
        )?,
        password_reset_text: template_name(
            "password_reset_template_text",
            raw.password_reset_template_text,
            defaults.password_reset_text,
        )?,
        password_reset_success_html: template_name(
            "password_reset_template_success_html",
            raw.password_reset_template_success_html,
            defaults.password_reset_success_html,
        )?,
        password_reset_failure_html: template_name(
            "password_reset_template_failure_html",
            raw.password_reset_template_failure_html,
            defaults.password_reset_failure_html,
        )?,
        registration_html: template_name(
            "registration_template_html",
            raw.registration_template_html,
            defaults.registration_html,
        )?,
        registration_text: template_name(
            "registration_template_text",
            raw.registration_template_text,
            defaults.registration_text,
        )?,
        registration_success_html: template_name(
            "registration_template_success_html",
            raw.registration_template_success_html,
            defaults.registration_success_html,
        )?,
        registration_failure_html: template_name(
            "registration_template_failure_html",
            raw.registration_template_failure_html,
            defaults.registration_failure_html,
        )?,
        already_in_use_html: template_name(
            "already_in_use_template_html",
            raw.already_in_use_template_html,
            defaults.already_in_use_html,
        )?,
        already_in_use_text: template_name(
            "already_in_use_template_text",
            raw.already_in_use_template_text,
            defaults.already_in_use_text,
        )?,
    };
    if let Some(dir) = &raw.template_dir {
        existing_dir(dir).map_err(|m| key_error("email.template_dir", m))?;
    }

    let smtp_ca_file = raw.smtp_ca_file.map(read_ca_file).transpose()?;
    let smtp_timeout_ms = positive(
        "email.smtp_timeout",
        raw.smtp_timeout,
        DEFAULT_SMTP_TIMEOUT_MS,
    )?;
    let retry_delays_ms = match raw.delivery_retry_delays {
        None => DEFAULT_RETRY_DELAYS_MS.to_vec(),
        Some(delays) => delays
            .into_iter()
            .map(|delay| positive("email.delivery_retry_delays", Some(delay), 0))
            .collect::<Result<_, _>>()?,
    };

    Ok(Some(EmailConfig {
        smtp_host,
        smtp_port,
        smtp_user: raw.smtp_user,
        smtp_pass: raw.smtp_pass.map(SecretString::from),
        force_tls,
        require_transport_security,
        enable_tls,
        tlsname: raw.tlsname,
        notif_from,
        app_name,
        validation_token_lifetime_ms,
        password_reset_subject,
        email_validation_subject,
        email_already_in_use_subject,
        templates,
        template_dir: raw.template_dir,
        smtp_ca_file,
        smtp_timeout_ms,
        retry_delays_ms,
    }))
}

/// A duration key that must be longer than 0, or its default when absent.
fn positive(key: &str, raw: Option<RawDuration>, default_ms: i64) -> Result<i64, KeyError> {
    let ms = match raw {
        None => default_ms,
        Some(raw) => raw.to_ms().map_err(|message| key_error(key, message))?,
    };
    if ms <= 0 {
        return Err(key_error(key, "must be longer than 0"));
    }
    Ok(ms)
}

/// The certificates of `smtp_ca_file`, which must hold at least one in PEM.
fn read_ca_file(path: PathBuf) -> Result<CaFile, KeyError> {
    const KEY: &str = "email.smtp_ca_file";
    let pem = std::fs::read(&path)
        .map_err(|err| key_error(KEY, format!("cannot read {}: {err}", path.display())))?;
    let has_certificate = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|window| window == b"-----BEGIN CERTIFICATE-----");
    if !has_certificate || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
        return Err(key_error(
            KEY,
            format!(
                "{} holds no certificate in PEM (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(CaFile {
        path,
        pem: pem.into(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(email: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("homeserver.yaml");
        std::fs::write(&file, format!("server_name: example.com\n{email}")).unwrap();
        Config::load(&[&file]).map_err(|err| err.to_string())
    }

    #[test]
    fn an_absent_or_empty_section_turns_mail_off_and_any_key_on() {
        for off in ["", "email:\n", "email: {}\n", "email: null\n"] {
            assert!(load(off).unwrap().email.is_none(), "{off:?}");
        }
        let err = load("email:\n  smtp_host: mail.example.com\n").unwrap_err();
        assert!(err.contains("email.notif_from"), "{err}");
        assert!(
            err.contains("is required once the email section is given"),
            "{err}"
        );
    }

    #[test]
    fn synapse_defaults() {
        let config = load("email:\n  notif_from: \"%(app)s <noreply@example.com>\"\n").unwrap();
        let email = config.email.unwrap();
        assert_eq!(email.smtp_host, "localhost");
        assert_eq!(email.smtp_port, 25);
        assert!(email.enable_tls && !email.force_tls && !email.require_transport_security);
        assert_eq!(email.app_name, "Matrix");
        assert_eq!(email.validation_token_lifetime_ms, 3_600_000);
        assert_eq!(
            email.password_reset_subject,
            "[%(server_name)s] Password reset"
        );
        assert_eq!(email.templates, super::TemplateNames::default());
        assert_eq!(
            email.retry_delays_ms,
            super::DEFAULT_RETRY_DELAYS_MS.to_vec()
        );
        assert_eq!(
            crate::mail::from_address(&email),
            "Matrix <noreply@example.com>"
        );
        let implicit = load("email:\n  notif_from: a@example.com\n  force_tls: true\n  validation_token_lifetime: 2d\n  delivery_retry_delays: [1s, 500]\n").unwrap().email.unwrap();
        assert_eq!(implicit.smtp_port, 465);
        assert_eq!(implicit.validation_token_lifetime_ms, 2 * 86_400_000);
        assert_eq!(implicit.retry_delays_ms, vec![1000, 500]);
    }

    #[test]
    fn errors_name_the_key_and_never_show_the_password() {
        let cases = [
            (
                "  notif_from: a@b.c\n  smtp_port: lots\n",
                "email.smtp_port",
            ),
            (
                "  notif_from: a@b.c\n  force_tls: true\n  enable_tls: false\n",
                "email.force_tls requires email.enable_tls",
            ),
            (
                "  notif_from: a@b.c\n  require_transport_security: true\n  enable_tls: false\n",
                "email.require_transport_security requires",
            ),
            ("  notif_from: not an address\n", "email.notif_from"),
            (
                "  notif_from: a@b.c\n  validation_token_lifetime: 1x\n",
                "email.validation_token_lifetime",
            ),
            (
                "  notif_from: a@b.c\n  delivery_retry_delays: [0]\n",
                "email.delivery_retry_delays",
            ),
            (
                "  notif_from: a@b.c\n  subjects: {password_reset: \"%(user)s\"}\n",
                "email.subjects.password_reset",
            ),
            (
                "  notif_from: a@b.c\n  smtp_ca_file: /nonexistent/ca.pem\n",
                "email.smtp_ca_file",
            ),
            (
                "  notif_from: a@b.c\n  template_dir: /nonexistent\n",
                "email.template_dir",
            ),
            (
                "  notif_from: a@b.c\n  smtp_user: mailer\n",
                "email.smtp_pass",
            ),
        ];
        for (section, expected) in cases {
            let err = load(&format!("email:\n{section}")).unwrap_err();
            assert!(err.contains(expected), "{section}: {err}");
        }
        let err = load("email:\n  notif_from: a@b.c\n  smtp_pass: [hunter2-secret]\n").unwrap_err();
        assert!(err.contains("email.smtp_pass"), "{err}");
        assert!(!err.contains("hunter2-secret"), "{err}");
        let err = load("email: hunter2-secret\n").unwrap_err();
        assert!(!err.contains("hunter2-secret"), "{err}");
        let err = load("templates:\n  custom_template_directory: /nonexistent\n").unwrap_err();
        assert!(err.contains("templates.custom_template_directory"), "{err}");
    }

    #[test]
    fn homekeys_own_templates_render_the_mail_and_the_pages() {
        let config = load("email:\n  notif_from: a@example.com\n").unwrap();
        let link = "https://example.com/_synapse/client/password_reset/email/submit_token?token=T&client_secret=C&sid=S";
        let mail = crate::mail::password_reset_mail(&config, "u@example.org", link).unwrap();
        assert_eq!(mail.subject, "[example.com] Password reset");
        assert!(mail.text.contains(&format!("\n{link}\n")), "{}", mail.text);
        assert!(
            mail.html
                .contains(&format!("href=\"{}\"", link.replace('&', "&amp;"))),
            "{}",
            mail.html
        );
        assert!(
            mail.html.contains("<style type=\"text/css\">"),
            "a mail's style is inline"
        );
        let page =
            crate::mail::templates::password_reset_confirmation(&config, "S", "T", "C").unwrap();
        assert!(
            page.contains("<input type=\"hidden\" name=\"sid\" value=\"S\">"),
            "{page}"
        );
        assert!(
            page.contains("page.css\">"),
            "a page links homekey's stylesheet: {page}"
        );
        assert!(
            !page.contains("<style"),
            "the pages' CSP allows no inline style: {page}"
        );
        let failure = crate::mail::templates::password_reset_failure(&config, "<gone>").unwrap();
        assert!(failure.contains("&lt;gone&gt;."), "{failure}");
        assert!(crate::mail::templates::check(&config).is_ok());
    }

    #[test]
    fn a_broken_template_of_the_operator_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password_reset.txt"), "{{ link ").unwrap();
        let config = load(&format!(
            "email:\n  notif_from: a@example.com\ntemplates:\n  custom_template_directory: {}\n",
            dir.path().display()
        ))
        .unwrap();
        let err = crate::mail::templates::check(&config)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the template password_reset.txt cannot be rendered"),
            "{err}"
        );
    }
}
