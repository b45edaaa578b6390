//! The operator's branding on homekey's pages (`branding:`, `crate::config::branding`): what
//! every template sees of it (`brand`, `static_base`: globals of the renderer), the accent
//! colour as a small generated stylesheet (the CSP allows no inline style), and the logo.
//!
//! The accent is the operator's colour, but text and controls must stay readable on
//! homekey's light and dark surfaces whatever colour is given (WCAG AA): where the colour
//! itself falls short, a darker (light scheme) or lighter (dark scheme) shade of it is used,
//! the least change that reaches the contrast.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::WebState;
use crate::config::Config;
use crate::config::branding::{BrandingConfig, Rgb};

/// Where homekey's static files are served, under the path of `public_baseurl`.
pub const STATIC_DIR: &str = "_homekey/static/";
/// The accent's stylesheet, under [`STATIC_DIR`].
pub const BRAND_CSS_NAME: &str = "brand.css";

/// homekey's own accent colour, when `branding.accent_color` is not given.
pub const DEFAULT_ACCENT: Rgb = Rgb(0x2f, 0x5f, 0xd0);

/// The surfaces of `page.css` text sits on, light and dark: the page's background and its
/// cards (kept equal to `page.css`'s `--bg` and `--surface` by a test).
pub const LIGHT_SURFACES: [Rgb; 2] = [Rgb(0xf4, 0xf5, 0xf7), Rgb(0xff, 0xff, 0xff)];
pub const DARK_SURFACES: [Rgb; 2] = [Rgb(0x11, 0x13, 0x18), Rgb(0x1c, 0x1f, 0x26)];

/// WCAG AA: text, and the boundaries of controls.
const TEXT_CONTRAST: f64 = 4.5;
const CONTROL_CONTRAST: f64 = 3.0;

/// The path `public_baseurl` puts homekey's pages under ("/" when it has none), so that a
/// page at any depth finds the static files.
pub fn static_base(config: &Config) -> String {
    let base_path = config
        .public_baseurl
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .map(|url| url.path().to_owned())
        .unwrap_or_else(|| "/".into());
    let base_path = if base_path.ends_with('/') {
        base_path
    } else {
        format!("{base_path}/")
    };
    format!("{base_path}{STATIC_DIR}")
}

/// What the templates see as `brand`: every key always there (the templates are strict).
pub fn template_context(branding: &BrandingConfig, static_base: &str) -> Value {
    json!({
        "service_name": branding.service_name,
        "logo_url": branding
            .logo
            .as_ref()
            .map(|logo| format!("{static_base}{}", logo_name(logo.kind.extension()))),
        "tos_uri": branding.tos_uri,
        "policy_uri": branding.policy_uri,
        "stylesheet_url": format!("{static_base}{BRAND_CSS_NAME}"),
    })
}

/// The logo's file name under [`STATIC_DIR`].
pub fn logo_name(extension: &str) -> String {
    format!("logo.{extension}")
}

/// The accent's stylesheet: `--accent` (a button's background), `--on-accent` (its text),
/// `--accent-text` (links, focus rings, anything drawn in the accent on a surface), for the
/// light scheme and, under `prefers-color-scheme: dark`, the dark one.
pub fn brand_css(accent: Option<Rgb>) -> String {
    let accent = accent.unwrap_or(DEFAULT_ACCENT);
    let scheme = |surfaces: &[Rgb], towards: Rgb| {
        let fill = reach(accent, towards, surfaces, CONTROL_CONTRAST);
        let on_fill = [Rgb(0xff, 0xff, 0xff), Rgb(0, 0, 0)]
            .into_iter()
            .max_by(|a, b| contrast(*a, fill).total_cmp(&contrast(*b, fill)))
            .unwrap_or(Rgb(0xff, 0xff, 0xff));
        let text = reach(accent, towards, surfaces, TEXT_CONTRAST);
        format!("--accent:{fill};--on-accent:{on_fill};--accent-text:{text}")
    };
    format!(
        "/* homekey: the accent colour (branding.accent_color {accent}) */\n\
         :root{{{}}}\n\
         @media (prefers-color-scheme: dark){{:root{{{}}}}}\n",
        scheme(&LIGHT_SURFACES, Rgb(0, 0, 0)),
        scheme(&DARK_SURFACES, Rgb(0xff, 0xff, 0xff)),
    )
}

/// The accent on a white surface (a mail, read in the light): a button's background, its
/// text, and links, each readable (the light scheme of [`brand_css`]).
pub fn light_accent(accent: Option<Rgb>) -> (Rgb, Rgb, Rgb) {
    let accent = accent.unwrap_or(DEFAULT_ACCENT);
    let black = Rgb(0, 0, 0);
    let fill = reach(accent, black, &LIGHT_SURFACES, CONTROL_CONTRAST);
    let on_fill = [Rgb(0xff, 0xff, 0xff), black]
        .into_iter()
        .max_by(|a, b| contrast(*a, fill).total_cmp(&contrast(*b, fill)))
        .unwrap_or(Rgb(0xff, 0xff, 0xff));
    let text = reach(accent, black, &LIGHT_SURFACES, TEXT_CONTRAST);
    (fill, on_fill, text)
}

/// `colour`, or the least mix of it with `towards` that has `minimum` contrast with every
/// one of `surfaces`.
fn reach(colour: Rgb, towards: Rgb, surfaces: &[Rgb], minimum: f64) -> Rgb {
    (0..=100)
        .map(|step| mix(colour, towards, f64::from(step) / 100.0))
        .find(|shade| surfaces.iter().all(|s| contrast(*shade, *s) >= minimum))
        .unwrap_or(towards)
}

fn mix(a: Rgb, b: Rgb, amount: f64) -> Rgb {
    let channel = |x: u8, y: u8| {
        (f64::from(x) + (f64::from(y) - f64::from(x)) * amount)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    Rgb(channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
}

/// WCAG 2's relative luminance.
fn luminance(colour: Rgb) -> f64 {
    let linear = |channel: u8| {
        let c = f64::from(channel) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(colour.0) + 0.7152 * linear(colour.1) + 0.0722 * linear(colour.2)
}

/// WCAG 2's contrast ratio, from 1 to 21.
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// `GET /_homekey/static/brand.css`.
pub async fn stylesheet(State(state): State<WebState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        state.renderer.brand_css().to_owned(),
    )
        .into_response()
}

/// `GET /_homekey/static/logo.<ext>`: the operator's logo, as read at start-up.
pub async fn logo(State(state): State<WebState>) -> Response {
    match &state.accounts.config.branding.logo {
        Some(logo) => (
            [(header::CONTENT_TYPE, logo.kind.content_type())],
            axum::body::Bytes::copy_from_slice(&logo.bytes),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(css: &str, scheme: usize, name: &str) -> Rgb {
        let block = css.split(":root{").nth(scheme + 1).unwrap();
        let needle = format!("--{name}:");
        let at = block.find(&needle).unwrap() + needle.len();
        Rgb::parse(&block[at..at + 7]).unwrap()
    }

    #[test]
    fn the_contrast_ratio_is_wcags() {
        let (white, black) = (Rgb(255, 255, 255), Rgb(0, 0, 0));
        assert!((contrast(white, black) - 21.0).abs() < 1e-9);
        assert!((contrast(white, white) - 1.0).abs() < 1e-9);
        // WebAIM's checker: #767676 on white is 4.54:1.
        assert!((contrast(Rgb(0x76, 0x76, 0x76), white) - 4.54).abs() < 0.01);
    }

    /// Whatever the operator's colour, the accent's text reaches 4.5:1 and its buttons 3:1
    /// on every surface, and a button's text 4.5:1 on it, in both schemes.
    #[test]
    fn any_accent_stays_readable_on_light_and_dark_surfaces() {
        let mut colours = vec![None];
        for r in (0..=255).step_by(51) {
            for g in (0..=255).step_by(51) {
                for b in (0..=255).step_by(51) {
                    colours.push(Some(Rgb(r, g, b)));
                }
            }
        }
        colours.push(Some(Rgb(0xff, 0xcc, 0x00)));
        for accent in colours {
            let css = brand_css(accent);
            for (scheme, surfaces) in [(0, LIGHT_SURFACES), (1, DARK_SURFACES)] {
                let fill = parse(&css, scheme, "accent");
                let on_fill = parse(&css, scheme, "on-accent");
                let text = parse(&css, scheme, "accent-text");
                assert!(
                    contrast(fill, on_fill) >= TEXT_CONTRAST,
                    "{accent:?}\n{css}"
                );
                for surface in surfaces {
                    assert!(
                        contrast(text, surface) >= TEXT_CONTRAST,
                        "{accent:?}\n{css}"
                    );
                    assert!(
                        contrast(fill, surface) >= CONTROL_CONTRAST,
                        "{accent:?}\n{css}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_colour_that_is_readable_already_is_kept() {
        let css = brand_css(Some(Rgb(0x1a, 0x4d, 0x2e)));
        assert_eq!(parse(&css, 0, "accent"), Rgb(0x1a, 0x4d, 0x2e));
        assert_eq!(parse(&css, 0, "accent-text"), Rgb(0x1a, 0x4d, 0x2e));
        assert_eq!(parse(&css, 0, "on-accent"), Rgb(0xff, 0xff, 0xff));
    }

    /// `page.css` declares the surfaces this module computes contrasts against, and the
    /// default accent as this module computes it (a stylesheet without `brand.css` looks
    /// the same).
    #[test]
    fn page_css_agrees_with_the_surfaces_and_the_default_accent() {
        let page = super::super::render::STYLESHEET;
        let declared = |scheme: usize, name: &str| {
            let start = page.find("/* the palette */").unwrap();
            parse(&page[start..], scheme, name)
        };
        for (scheme, surfaces) in [(0, LIGHT_SURFACES), (1, DARK_SURFACES)] {
            assert_eq!(declared(scheme, "bg"), surfaces[0]);
            assert_eq!(declared(scheme, "surface"), surfaces[1]);
            let css = brand_css(None);
            for name in ["accent", "on-accent", "accent-text"] {
                assert_eq!(declared(scheme, name), parse(&css, scheme, name), "{name}");
            }
        }
    }

    #[test]
    fn static_files_are_under_public_baseurls_path() {
        let mut config = Config::builtin();
        assert_eq!(static_base(&config), "/_homekey/static/");
        config.public_baseurl = Some("https://matrix.example.com/".into());
        assert_eq!(static_base(&config), "/_homekey/static/");
        config.public_baseurl = Some("https://example.com/matrix".into());
        assert_eq!(static_base(&config), "/matrix/_homekey/static/");
    }
}
