//! The mail homekey sends: what it says ([`templates`], Synapse's template names and
//! variables, an operator's own templates first) and how it reaches the SMTP server
//! ([`transport`], Synapse's `email:` keys through lettre on rustls). Mail is not sent where
//! it is made: it is queued in the database (`crate::store::NewMail`, `queue_mail!`) inside
//! the change's transaction, and `homekey serve` delivers it (`crate::accounts::mail_delivery`).

pub mod templates;
pub mod transport;
use crate::config::Config;
use crate::store::NewMail;

/// Why a mail could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The config has no (non-empty) `email:` section.
    #[error("mail is off: the config has no email section")]
    NotConfigured,
    /// A template is missing or does not render. The message names the template and the
    /// error, never a value of the context (a link, a token).
    #[error("the template {name} cannot be rendered: {message}")]
    Template { name: String, message: String },
}

/// The mail with a password reset link (Synapse's `password_reset.html` and `.txt`, with
/// `link`, `app_name`, `server_name`; the subject `subjects.password_reset`) to `to`. It goes
/// only if `to` is still an account's address when it is delivered
/// (`only_if_address_known`), so a reset asked for an unknown address may queue it too.
pub fn password_reset_mail(config: &Config, to: &str, link: &str) -> Result<NewMail, MailError> {
    let email = config.email.as_ref().ok_or(MailError::NotConfigured)?;
    let templates = templates::Templates::for_mail(config);
    let context = minijinja::context! {
        link => link,
        app_name => &email.app_name,
        server_name => &config.server_name,
    };
    Ok(NewMail {
        to: to.to_owned(),
        subject: percent_format(
            &email.password_reset_subject,
            &[("server_name", &config.server_name)],
        ),
        text: templates.render(&email.templates.password_reset_text, &context)?,
        html: templates.render(&email.templates.password_reset_html, &context)?,
        only_if_address_known: true,
    })
}

/// The sign-up's mail with the link that verifies the address (Synapse's `registration.html`
/// and `.txt`, with `link`; the subject `subjects.email_validation`) to `to`, who has no
/// account yet: it is always delivered.
pub fn registration_mail(config: &Config, to: &str, link: &str) -> Result<NewMail, MailError> {
    synapse_mail(config, to, Some(link), Purpose::Registration)
}

/// Synapse's "already in use" mail (`already_in_use.html` and `.txt`, the subject
/// `subjects.email_already_in_use`), to an address an account has, when a sign-up asked for it
/// and `request_token_inhibit_3pid_errors` hides that from the asker.
pub fn already_in_use_mail(config: &Config, to: &str) -> Result<NewMail, MailError> {
    synapse_mail(config, to, None, Purpose::AlreadyInUse)
}

enum Purpose {
    Registration,
    AlreadyInUse,
}

/// One of the sign-up's mails, with Synapse's context (`link`, `app_name`, `server_name`)
/// and its subject's placeholders (`%(server_name)s`, `%(app)s`).
fn synapse_mail(
    config: &Config,
    to: &str,
    link: Option<&str>,
    purpose: Purpose,
) -> Result<NewMail, MailError> {
    let email = config.email.as_ref().ok_or(MailError::NotConfigured)?;
    let templates = templates::Templates::for_mail(config);
    let context = minijinja::context! {
        link => link,
        app_name => &email.app_name,
        server_name => &config.server_name,
    };
    let names = &email.templates;
    let (subject, html, text) = match purpose {
        Purpose::Registration => (
            &email.email_validation_subject,
            &names.registration_html,
            &names.registration_text,
        ),
        Purpose::AlreadyInUse => (
            &email.email_already_in_use_subject,
            &names.already_in_use_html,
            &names.already_in_use_text,
        ),
    };
    Ok(NewMail {
        to: to.to_owned(),
        subject: percent_format(
            subject,
            &[
                ("server_name", &config.server_name),
                ("app", &email.app_name),
            ],
        ),
        text: templates.render(text, &context)?,
        html: templates.render(html, &context)?,
        only_if_address_known: false,
    })
}

/// homekey's own mail with a link to its page that sets a new password
/// (`homekey_password_recovery.html` and `.txt`; the subject `subjects.password_reset`), to
/// `to`; `by_operator`: the operator sent it, nobody asked. Dropped at delivery if `to` is
/// no account's address by then, so a request for an unknown address may queue it too.
pub fn password_recovery_mail(
    config: &Config,
    to: &str,
    link: &str,
    by_operator: bool,
) -> Result<NewMail, MailError> {
    let email = config.email.as_ref().ok_or(MailError::NotConfigured)?;
    let templates = templates::Templates::for_mail(config);
    let context = minijinja::context! {
        link => link,
        server_name => &config.server_name,
        by_operator => by_operator,
        valid_for => describe_duration(email.validation_token_lifetime_ms),
    };
    Ok(NewMail {
        to: to.to_owned(),
        subject: percent_format(
            &email.password_reset_subject,
            &[("server_name", &config.server_name)],
        ),
        text: templates.render("homekey_password_recovery.txt", &context)?,
        html: templates.render("homekey_password_recovery.html", &context)?,
        only_if_address_known: true,
    })
}

/// A lifetime as a mail says it: "1 hour", "30 minutes", "2 days".
pub fn describe_duration(ms: i64) -> String {
    let minutes = (ms / 60_000).max(1);
    let (count, unit) = if minutes % (24 * 60) == 0 {
        (minutes / (24 * 60), "day")
    } else if minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// `template` with Python's `%(name)s` placeholders filled from `values` (and `%%` as `%`),
/// as Synapse fills `notif_from` and the subjects; the template unchanged if it holds
/// anything else after a `%` (Synapse then uses it as it is).
pub fn percent_format(template: &str, values: &[(&str, &str)]) -> String {
    percent_format_checked(template, values).unwrap_or_else(|| template.to_owned())
}

/// [`percent_format`], `None` where Python would raise: a placeholder not in `values`, or a
/// `%` followed by anything but `(name)s` or `%`.
pub fn percent_format_checked(template: &str, values: &[(&str, &str)]) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let inner = after.strip_prefix('(')?;
        let close = inner.find(')')?;
        let name = &inner[..close];
        let tail = inner[close + 1..].strip_prefix('s')?;
        let (_, value) = values.iter().find(|(key, _)| *key == name)?;
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

/// `notif_from` with `%(app)s` filled with `app_name`: the From of every mail.
pub fn from_address(email: &crate::config::EmailConfig) -> String {
    percent_format(&email.notif_from, &[("app", &email.app_name)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_as_python_fills_them() {
        let app = [("app", "Matrix")];
        assert_eq!(
            percent_format("%(app)s <noreply@example.com>", &app),
            "Matrix <noreply@example.com>"
        );
        assert_eq!(percent_format("100%% %(app)s", &app), "100% Matrix");
        assert_eq!(percent_format("no placeholder", &app), "no placeholder");
        // What Python refuses is used as written.
        for raw in ["%(other)s x", "50% off", "%(app)d", "%(app", "trailing %"] {
            assert_eq!(percent_format_checked(raw, &app), None, "{raw}");
            assert_eq!(percent_format(raw, &app), raw);
        }
        assert_eq!(
            percent_format(
                "[%(server_name)s] Password reset",
                &[("server_name", "example.com")]
            ),
            "[example.com] Password reset"
        );
    }
}
