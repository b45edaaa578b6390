//! Rendering: the templates (embedded in the binary, HTML autoescaped: every value a page
//! shows is text, never markup) and the security headers every page answer carries.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::branding;
use crate::config::{BrandingConfig, Config};

/// The templates, by name. Each page extends `base.html`; `password_again.html` (the
/// confirming forms' password), `sign_in_fields.html` and `consent_details.html` are parts
/// that pages include.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("profile.html", include_str!("templates/profile.html")),
    ("password.html", include_str!("templates/password.html")),
    ("sessions.html", include_str!("templates/sessions.html")),
    ("session.html", include_str!("templates/session.html")),
    ("emails.html", include_str!("templates/emails.html")),
    (
        "email_remove.html",
        include_str!("templates/email_remove.html"),
    ),
    (
        "password_again.html",
        include_str!("templates/password_again.html"),
    ),
    (
        "sign_in_fields.html",
        include_str!("templates/sign_in_fields.html"),
    ),
    (
        "consent_details.html",
        include_str!("templates/consent_details.html"),
    ),
    ("deactivate.html", include_str!("templates/deactivate.html")),
    (
        "deactivated.html",
        include_str!("templates/deactivated.html"),
    ),
    (
        "cross_signing_reset.html",
        include_str!("templates/cross_signing_reset.html"),
    ),
    (
        "unavailable.html",
        include_str!("templates/unavailable.html"),
    ),
    (
        "oauth_sign_in.html",
        include_str!("templates/oauth_sign_in.html"),
    ),
    (
        "oauth_consent.html",
        include_str!("templates/oauth_consent.html"),
    ),
    ("sign_up.html", include_str!("templates/sign_up.html")),
    (
        "sign_up_code.html",
        include_str!("templates/sign_up_code.html"),
    ),
    (
        "oauth_error.html",
        include_str!("templates/oauth_error.html"),
    ),
    (
        "device_sign_in.html",
        include_str!("templates/device_sign_in.html"),
    ),
    (
        "device_code.html",
        include_str!("templates/device_code.html"),
    ),
    (
        "device_approve.html",
        include_str!("templates/device_approve.html"),
    ),
    (
        "device_done.html",
        include_str!("templates/device_done.html"),
    ),
    (
        "recovery_forgot.html",
        include_str!("templates/recovery_forgot.html"),
    ),
    (
        "recovery_sent.html",
        include_str!("templates/recovery_sent.html"),
    ),
    (
        "recovery_reset.html",
        include_str!("templates/recovery_reset.html"),
    ),
    (
        "recovery_spent.html",
        include_str!("templates/recovery_spent.html"),
    ),
    (
        "recovery_done.html",
        include_str!("templates/recovery_done.html"),
    ),
    ("admin_base.html", include_str!("templates/admin_base.html")),
    (
        "admin_sign_in.html",
        include_str!("templates/admin_sign_in.html"),
    ),
    (
        "admin_users.html",
        include_str!("templates/admin_users.html"),
    ),
    ("admin_user.html", include_str!("templates/admin_user.html")),
    (
        "admin_new_user.html",
        include_str!("templates/admin_new_user.html"),
    ),
    (
        "admin_password_shown.html",
        include_str!("templates/admin_password_shown.html"),
    ),
    (
        "admin_deliveries.html",
        include_str!("templates/admin_deliveries.html"),
    ),
    (
        "admin_audit.html",
        include_str!("templates/admin_audit.html"),
    ),
    (
        "admin_registration_tokens.html",
        include_str!("templates/admin_registration_tokens.html"),
    ),
    (
        "admin_oauth_clients.html",
        include_str!("templates/admin_oauth_clients.html"),
    ),
];

/// The one stylesheet, served by homekey (the CSP allows no inline style).
pub const STYLESHEET: &str = include_str!("static/page.css");

/// The Content-Security-Policy of every page: nothing but homekey's own stylesheets and
/// images (the operator's logo), no script, forms posted only to homekey, never in a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`CONTENT_SECURITY_POLICY`] with `form-action` also allowing `source` (a page whose form
/// leads, through homekey, to an OAuth client's redirect URI). `source` is an origin or a
/// scheme made by `url`, which holds no space, comma or semicolon.
pub fn form_action_policy(source: &str) -> String {
    CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    )
}

/// `response` with a Content-Security-Policy whose `form-action` also allows a redirect to
/// `target` after the page's form is posted (an OAuth client's redirect URI, a password reset
/// link's `next_link`): its origin, or for a private-use scheme (`io.element:/callback`) the
/// scheme.
pub fn allowing_redirect(mut response: Response, target: &str) -> Response {
    let Ok(uri) = url::Url::parse(target) else {
        return response;
    };
    let source = match uri.origin() {
        url::Origin::Tuple(..) => uri.origin().ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", uri.scheme()),
    };
    if let Ok(policy) = HeaderValue::from_str(&form_action_policy(&source)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// The templates, ready, with the operator's branding.
pub struct Renderer {
    env: Environment<'static>,
    brand_css: String,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    /// The templates without branding: homekey's colours, "homekey" as the service's name.
    /// Pages of a running server use [`Renderer::for_config`].
    pub fn new() -> Renderer {
        Renderer::with_branding(&BrandingConfig::plain("homekey"), "/_homekey/static/")
    }

    /// The templates with `config`'s branding and static files under its `public_baseurl`.
    pub fn for_config(config: &Config) -> Renderer {
        Renderer::with_branding(&config.branding, &branding::static_base(config))
    }

    /// The templates for the admin console, on its own origin: its static files under that
    /// origin's `/_homekey/static/`, whatever `public_baseurl` says.
    pub fn for_console(config: &Config) -> Renderer {
        Renderer::with_branding(&config.branding, "/_homekey/static/")
    }

    /// Every template sees `brand` (the service's name, the logo's and the stylesheets'
    /// URLs, the terms and policy links: see `base.html`) and `static_base`, as globals: a
    /// page's own context needs neither.
    fn with_branding(brand: &BrandingConfig, static_base: &str) -> Renderer {
        let mut env = Environment::new();
        // Every template is HTML: escape everything, whatever the name.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the embedded templates parse");
        }
        env.add_global(
            "brand",
            minijinja::Value::from_serialize(branding::template_context(brand, static_base)),
        );
        env.add_global("static_base", static_base.to_owned());
        Renderer {
            env,
            brand_css: branding::brand_css(brand.accent_color),
        }
    }

    /// The accent's stylesheet (`brand.css`).
    pub fn brand_css(&self) -> &str {
        &self.brand_css
    }

    /// The page `template` with `context`, as a response with `status`.
    pub fn page(&self, status: StatusCode, template: &str, context: impl Serialize) -> Response {
        rendered(
            status,
            template,
            self.env
                .get_template(template)
                .and_then(|t| t.render(context)),
        )
    }
}

/// A page rendered by any template engine (homekey's, or the mail layer's for Synapse's page
/// templates), as a response with `status`; a failed rendering (an operator's own template)
/// is logged under `template` and answered 500.
pub fn rendered<E: std::fmt::Display>(
    status: StatusCode,
    template: &str,
    html: Result<String, E>,
) -> Response {
    match html {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(template, error = %err, "a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown.",
            )
                .into_response()
        }
    }
}

/// The headers of every answer of the web layer (a middleware on its routes).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A page that set its own policy (see [`form_action_policy`]) keeps it.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The stylesheet.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_templates_parse() {
        super::Renderer::new();
    }
}
