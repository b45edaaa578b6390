//! The templates of the password reset, under Synapse's file names and with its variables:
//! the mail (`password_reset.html`, `password_reset.txt`) and the pages its link leads to
//! (`password_reset_confirmation.html`, `password_reset_success.html`,
//! `password_reset_failure.html`), all extending `_base.html`; the sign-up's alike
//! (`registration.html`, `.txt`, `registration_success.html`, `registration_failure.html`,
//! `already_in_use.html`, `.txt`, and homekey's own `homekey_registration_confirmation.html`,
//! the page before the link is confirmed); and homekey's own mail with the
//! account page's code (`homekey_email_code.txt`, `.html`). homekey's own are embedded in
//! the binary; an operator's are looked up first, in `templates.custom_template_directory`
//! and then Synapse's deprecated `email.template_dir`, as Synapse looks them up, so templates
//! written for Synapse render unchanged. Rendered with minijinja (the pages' engine), HTML
//! escaped in `.html`, `.htm` and `.xml` files only, as Synapse's Jinja does.

use std::path::{Component, Path, PathBuf};

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::MailError;
use crate::config::Config;
use crate::config::email::TemplateNames;

/// homekey's own templates, by name.
const EMBEDDED: &[(&str, &str)] = &[
    ("_base.html", include_str!("templates/_base.html")),
    ("style.css", include_str!("templates/style.css")),
    (
        "password_reset.html",
        include_str!("templates/password_reset.html"),
    ),
    (
        "password_reset.txt",
        include_str!("templates/password_reset.txt"),
    ),
    (
        "password_reset_confirmation.html",
        include_str!("templates/password_reset_confirmation.html"),
    ),
    (
        "password_reset_success.html",
        include_str!("templates/password_reset_success.html"),
    ),
    (
        "homekey_email_code.html",
        include_str!("templates/homekey_email_code.html"),
    ),
    (
        "homekey_email_code.txt",
        include_str!("templates/homekey_email_code.txt"),
    ),
    (
        "password_reset_failure.html",
        include_str!("templates/password_reset_failure.html"),
    ),
    (
        "registration.html",
        include_str!("templates/registration.html"),
    ),
    (
        "registration.txt",
        include_str!("templates/registration.txt"),
    ),
    (
        "registration_success.html",
        include_str!("templates/registration_success.html"),
    ),
    (
        "registration_failure.html",
        include_str!("templates/registration_failure.html"),
    ),
    (
        "already_in_use.html",
        include_str!("templates/already_in_use.html"),
    ),
    (
        "already_in_use.txt",
        include_str!("templates/already_in_use.txt"),
    ),
    // homekey's own: the sign-up link's page before it is confirmed (Synapse has none).
    (
        "homekey_registration_confirmation.html",
        include_str!("templates/homekey_registration_confirmation.html"),
    ),
    // homekey's own, for the reset links to its pages.
    (
        "homekey_password_recovery.html",
        include_str!("templates/homekey_password_recovery.html"),
    ),
    (
        "homekey_password_recovery.txt",
        include_str!("templates/homekey_password_recovery.txt"),
    ),
];

/// The templates as one config finds them, ready to render.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// For a mail: the style inline, the logo (if any) by its absolute URL under
    /// `public_baseurl`.
    pub fn for_mail(config: &Config) -> Templates {
        Templates::new(config, false)
    }

    /// For a page homekey serves: homekey's stylesheets (the pages' CSP allows no inline
    /// style).
    pub fn for_page(config: &Config) -> Templates {
        Templates::new(config, true)
    }

    fn new(config: &Config, page: bool) -> Templates {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            let html = [".html", ".htm", ".xml"]
                .iter()
                .any(|extension| name.ends_with(extension));
            if html {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(jinja_html_escaping);
        let directories = search_directories(config);
        env.set_loader(move |name| load(&directories, name));
        let static_base = crate::web::branding::static_base(config);
        let mut brand = crate::web::branding::template_context(&config.branding, &static_base);
        let (accent, on_accent, accent_text) =
            crate::web::branding::light_accent(config.branding.accent_color);
        brand["accent"] = accent.to_string().into();
        brand["on_accent"] = on_accent.to_string().into();
        brand["accent_text"] = accent_text.to_string().into();
        let page_stylesheets: Vec<String> = if page {
            vec![
                format!("{static_base}page.css"),
                brand["stylesheet_url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ]
        } else {
            // A mail is read elsewhere: the logo only by an absolute URL.
            let logo = config.branding.logo.as_ref().and_then(|logo| {
                let base = config.public_baseurl.as_deref()?;
                Some(format!(
                    "{base}{}{}",
                    crate::web::branding::STATIC_DIR,
                    crate::web::branding::logo_name(logo.kind.extension())
                ))
            });
            brand["logo_url"] = logo.into();
            Vec::new()
        };
        env.add_global("brand", minijinja::Value::from_serialize(&brand));
        env.add_global("page_stylesheets", page_stylesheets);
        env.add_global("server_name", config.server_name.clone());
        if let Some(email) = &config.email {
            env.add_global("app_name", email.app_name.clone());
        }
        Templates { env }
    }

    /// The template `name` rendered with `context`.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, MailError> {
        let error = |err: minijinja::Error| MailError::Template {
            name: name.to_owned(),
            message: describe(&err),
        };
        self.env
            .get_template(name)
            .map_err(error)?
            .render(context)
            .map_err(error)
    }
}

/// Jinja's HTML escaping (MarkupSafe's: `&`, `<`, `>`, `"`, `'`) rather than minijinja's, which
/// also writes `/` as `&#x2f;`: a link in a mail's HTML reads as it does in Synapse's.
fn jinja_html_escaping(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if state.auto_escape() != AutoEscape::Html || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&#34;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    out.write_str(&escaped).map_err(minijinja::Error::from)
}

/// An error of minijinja, without the values it was rendering.
fn describe(err: &minijinja::Error) -> String {
    let mut message = err.kind().to_string();
    if let Some(detail) = err.detail() {
        message = format!("{message}: {detail}");
    }
    if let (Some(name), Some(line)) = (err.name(), err.line()) {
        message = format!("{message} (in {name}, line {line})");
    }
    message
}

/// Where an operator's templates are, in the order Synapse searches them.
fn search_directories(config: &Config) -> Vec<PathBuf> {
    let mut directories: Vec<PathBuf> = config.custom_template_directory.iter().cloned().collect();
    if let Some(dir) = config.email.as_ref().and_then(|e| e.template_dir.clone()) {
        directories.push(dir);
    }
    directories
}

/// The template `name`: the first of the directories' files, else homekey's own. A name
/// that would leave the directory (`..`, an absolute path) is looked up among homekey's own
/// only.
fn load(directories: &[PathBuf], name: &str) -> Result<Option<String>, minijinja::Error> {
    let relative = Path::new(name);
    let stays_inside = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    if stays_inside {
        for directory in directories {
            let path = directory.join(relative);
            match std::fs::read_to_string(&path) {
                Ok(source) => return Ok(Some(source)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read {}: {err}", path.display()),
                    ));
                }
            }
        }
    }
    Ok(EMBEDDED
        .iter()
        .find(|(embedded, _)| *embedded == name)
        .map(|(_, source)| (*source).to_owned()))
}

/// `password_reset_confirmation.html`: the page a reset link opens (GET), whose form posts
/// the three values back.
pub fn password_reset_confirmation(
    config: &Config,
    sid: &str,
    token: &str,
    client_secret: &str,
) -> Result<String, MailError> {
    Templates::for_page(config).render(
        "password_reset_confirmation.html",
        minijinja::context! { sid => sid, token => token, client_secret => client_secret },
    )
}

/// `password_reset_success.html` (or `email.password_reset_template_success_html`).
pub fn password_reset_success(config: &Config) -> Result<String, MailError> {
    Templates::for_page(config).render(
        &names(config).password_reset_success_html,
        minijinja::context! {},
    )
}

/// `password_reset_failure.html` (or `email.password_reset_template_failure_html`) with
/// `failure_reason`.
pub fn password_reset_failure(config: &Config, failure_reason: &str) -> Result<String, MailError> {
    Templates::for_page(config).render(
        &names(config).password_reset_failure_html,
        minijinja::context! { failure_reason => failure_reason },
    )
}

/// `homekey_registration_confirmation.html`: the page a sign-up's link opens (GET), whose
/// form posts the three values back.
pub fn registration_confirmation(
    config: &Config,
    sid: &str,
    token: &str,
    client_secret: &str,
) -> Result<String, MailError> {
    Templates::for_page(config).render(
        "homekey_registration_confirmation.html",
        minijinja::context! { sid => sid, token => token, client_secret => client_secret },
    )
}

/// `registration_success.html` (or `email.registration_template_success_html`).
pub fn registration_success(config: &Config) -> Result<String, MailError> {
    Templates::for_page(config).render(
        &names(config).registration_success_html,
        minijinja::context! {},
    )
}

/// `registration_failure.html` (or `email.registration_template_failure_html`) with
/// `failure_reason`.
pub fn registration_failure(config: &Config, failure_reason: &str) -> Result<String, MailError> {
    Templates::for_page(config).render(
        &names(config).registration_failure_html,
        minijinja::context! { failure_reason => failure_reason },
    )
}

fn names(config: &Config) -> TemplateNames {
    config
        .email
        .as_ref()
        .map(|email| email.templates.clone())
        .unwrap_or_default()
}

/// Renders every template the config names with sample values: `serve` checks them at
/// start-up, as Synapse reads its templates when it starts, so that a broken template is
/// found before a user asks for a reset.
pub fn check(config: &Config) -> Result<(), MailError> {
    if config.email.is_none() {
        return Ok(());
    }
    super::password_reset_mail(config, "user@example.com", "https://example.com/link")?;
    password_reset_confirmation(config, "sid", "token", "secret")?;
    password_reset_success(config)?;
    password_reset_failure(config, "reason")?;
    super::registration_mail(config, "user@example.com", "https://example.com/link")?;
    super::already_in_use_mail(config, "user@example.com")?;
    registration_confirmation(config, "sid", "token", "secret")?;
    registration_success(config)?;
    registration_failure(config, "reason")?;
    Ok(())
}
