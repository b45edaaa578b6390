//! homekey's own `branding:` section: how homekey's pages (the account page, the sign-in
//! and consent pages) present the operator's service: its name, a logo, an accent colour and
//! links to its terms and privacy policy. Read and checked at start-up: the logo is read
//! once, here, and served by homekey itself (`crate::web::branding`), never fetched from
//! elsewhere.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

/// The largest logo homekey serves.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;
/// The longest service name shown.
const MAX_SERVICE_NAME_CHARS: usize = 64;
/// The longest terms or policy URL.
const MAX_URI_CHARS: usize = 2048;

/// The `branding:` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct BrandingConfig {
    /// `service_name` (default: the `server_name`): what every page calls the service.
    pub service_name: String,
    /// `logo_path`: the operator's logo, read at start-up.
    pub logo: Option<Logo>,
    /// `accent_color` (`#rgb` or `#rrggbb`): the colour of buttons, links and focus rings;
    /// homekey's own when `None`.
    pub accent_color: Option<Rgb>,
    /// `tos_uri`: the terms of service, linked at the foot of every page.
    pub tos_uri: Option<String>,
    /// `policy_uri`: the privacy policy, linked at the foot of every page.
    pub policy_uri: Option<String>,
}

impl BrandingConfig {
    /// No branding: the server's name, homekey's colours, no logo, no links.
    pub fn plain(server_name: &str) -> BrandingConfig {
        BrandingConfig {
            service_name: server_name.to_owned(),
            logo: None,
            accent_color: None,
            tos_uri: None,
            policy_uri: None,
        }
    }
}

/// A colour of the sRGB cube, 8 bits a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rgb` or `#rrggbb` (hex digits in either case), nothing else.
    pub fn parse(text: &str) -> Option<Rgb> {
        let hex = text.strip_prefix('#')?;
        if !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |digits: &str| u8::from_str_radix(digits, 16).ok();
        match hex.len() {
            3 => {
                let mut it = hex.chars().map(|c| channel(&format!("{c}{c}")));
                Some(Rgb(it.next()??, it.next()??, it.next()??))
            }
            6 => Some(Rgb(
                channel(&hex[0..2])?,
                channel(&hex[2..4])?,
                channel(&hex[4..6])?,
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Rgb {
    /// `#rrggbb`, lower case.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The kinds of image a logo may be, told by their first bytes (never by the file's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoKind {
    Png,
    Jpeg,
    Webp,
    Svg,
}

impl LogoKind {
    /// The kind of image `bytes` hold, if one of the four.
    pub fn of(bytes: &[u8]) -> Option<LogoKind> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(LogoKind::Png);
        }
        if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            return Some(LogoKind::Jpeg);
        }
        if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            return Some(LogoKind::Webp);
        }
        // SVG is text: UTF-8 whose first element (after an XML declaration, comments or a
        // doctype) is <svg.
        let text = std::str::from_utf8(bytes).ok()?;
        let mut rest = text.trim_start_matches('\u{feff}').trim_start();
        loop {
            if rest.starts_with("<svg") {
                return Some(LogoKind::Svg);
            }
            let skipped = if rest.starts_with("<?") {
                rest.find("?>").map(|end| end + 2)
            } else if rest.starts_with("<!--") {
                rest.find("-->").map(|end| end + 3)
            } else if rest.starts_with("<!") {
                rest.find('>').map(|end| end + 1)
            } else {
                None
            }?;
            rest = rest[skipped..].trim_start();
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            LogoKind::Png => "image/png",
            LogoKind::Jpeg => "image/jpeg",
            LogoKind::Webp => "image/webp",
            LogoKind::Svg => "image/svg+xml",
        }
    }

    /// The extension of the path homekey serves it under.
    pub fn extension(self) -> &'static str {
        match self {
            LogoKind::Png => "png",
            LogoKind::Jpeg => "jpg",
            LogoKind::Webp => "webp",
            LogoKind::Svg => "svg",
        }
    }
}

/// The operator's logo, as read at start-up.
#[derive(Clone, PartialEq)]
pub struct Logo {
    pub kind: LogoKind,
    pub bytes: Arc<[u8]>,
}

impl fmt::Debug for Logo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logo")
            .field("kind", &self.kind)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The `branding:` section as written. Every key is homekey's own, so a key it does not
/// know (a misspelt `accent_colour`) is refused rather than ignored.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawBranding {
    service_name: Option<String>,
    logo_path: Option<PathBuf>,
    /// Present but null is worth a word: in YAML an unquoted `#336699` is a comment.
    #[serde(deserialize_with = "super::present")]
    accent_color: Option<Option<String>>,
    tos_uri: Option<String>,
    policy_uri: Option<String>,
}

impl RawBranding {
    /// The section checked, the logo read; `Err`: the key and why.
    pub(super) fn validate(
        self,
        server_name: &str,
    ) -> Result<BrandingConfig, (&'static str, String)> {
        let service_name = match self.service_name {
            None => server_name.to_owned(),
            Some(name) => {
                let name = name.trim().to_owned();
                if name.is_empty() {
                    return Err(("branding.service_name", "may not be empty".into()));
                }
                if name.chars().any(char::is_control) {
                    return Err((
                        "branding.service_name",
                        "may not hold control characters (a line break, a tab…)".into(),
                    ));
                }
                if name.chars().count() > MAX_SERVICE_NAME_CHARS {
                    return Err((
                        "branding.service_name",
                        format!("may be at most {MAX_SERVICE_NAME_CHARS} characters long"),
                    ));
                }
                name
            }
        };
        let accent_color = match self.accent_color {
            None => None,
            Some(None) => {
                return Err((
                    "branding.accent_color",
                    "has no value: write the colour in quotes, e.g. accent_color: \"#336699\" \
                     (in YAML an unquoted # starts a comment)"
                        .into(),
                ));
            }
            Some(Some(text)) => Some(Rgb::parse(text.trim()).ok_or_else(|| {
                (
                    "branding.accent_color",
                    format!(
                        "expected a colour as #rgb or #rrggbb, e.g. \"#336699\", found \"{text}\""
                    ),
                )
            })?),
        };
        let logo = self.logo_path.map(read_logo).transpose()?;
        Ok(BrandingConfig {
            service_name,
            logo,
            accent_color,
            tos_uri: self
                .tos_uri
                .map(|uri| web_url("branding.tos_uri", uri))
                .transpose()?,
            policy_uri: self
                .policy_uri
                .map(|uri| web_url("branding.policy_uri", uri))
                .transpose()?,
        })
    }
}

/// The logo at `path`: a PNG, JPEG, WebP or SVG image of at most [`MAX_LOGO_BYTES`].
fn read_logo(path: PathBuf) -> Result<Logo, (&'static str, String)> {
    const KEY: &str = "branding.logo_path";
    let shown = path.display();
    let file =
        std::fs::File::open(&path).map_err(|err| (KEY, format!("cannot read {shown}: {err}")))?;
    let mut bytes = Vec::new();
    // One byte past the limit is enough to know it is too big, whatever the file is.
    use std::io::Read;
    file.take(MAX_LOGO_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| (KEY, format!("cannot read {shown}: {err}")))?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err((
            KEY,
            format!(
                "{shown} is larger than {} KiB: give a smaller image",
                MAX_LOGO_BYTES / 1024
            ),
        ));
    }
    let kind = LogoKind::of(&bytes).ok_or_else(|| {
        (
            KEY,
            format!("{shown} is not a PNG, JPEG, WebP or SVG image"),
        )
    })?;
    Ok(Logo {
        kind,
        bytes: bytes.into(),
    })
}

/// `uri` if it is an absolute `https://` or `http://` URL with a host and no user name or
/// password (it is shown to every user as a link).
fn web_url(key: &'static str, uri: String) -> Result<String, (&'static str, String)> {
    let refused = |why: &str| Err((key, format!("{why}, found \"{uri}\"")));
    if uri.chars().count() > MAX_URI_CHARS {
        return Err((
            key,
            format!("may be at most {MAX_URI_CHARS} characters long"),
        ));
    }
    let Ok(parsed) = url::Url::parse(&uri) else {
        return refused("expected an https:// or http:// URL");
    };
    if !matches!(parsed.scheme(), "https" | "http") || !parsed.has_host() {
        return refused("expected an https:// or http:// URL");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refused("expected a URL without a user name or password");
    }
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hash_and_three_or_six_hex_digits() {
        assert_eq!(Rgb::parse("#336699"), Some(Rgb(0x33, 0x66, 0x99)));
        assert_eq!(Rgb::parse("#AbC"), Some(Rgb(0xaa, 0xbb, 0xcc)));
        assert_eq!(Rgb::parse("#abc").unwrap().to_string(), "#aabbcc");
        for bad in [
            "336699", "#33669", "#3366990", "#ggg", "red", "", "#", "#+12", "#12 ", "#٣٣٣",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn logos_are_told_by_their_bytes() {
        assert_eq!(
            LogoKind::of(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(LogoKind::Png)
        );
        assert_eq!(
            LogoKind::of(&[0xff, 0xd8, 0xff, 0xe0]),
            Some(LogoKind::Jpeg)
        );
        assert_eq!(LogoKind::of(b"RIFF\0\0\0\0WEBPVP8 "), Some(LogoKind::Webp));
        assert_eq!(
            LogoKind::of(b"<?xml version=\"1.0\"?>\n<!-- made by hand -->\n<!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some(LogoKind::Svg)
        );
        assert_eq!(LogoKind::of(b"\xef\xbb\xbf  <svg/>"), Some(LogoKind::Svg));
        for other in [
            &b"GIF89a"[..],
            b"<html><svg/></html>",
            b"<?xml version=\"1.0\"",
            b"",
            b"RIFF\0\0\0\0WAVE",
        ] {
            assert_eq!(LogoKind::of(other), None, "{other:?}");
        }
    }

    #[test]
    fn links_must_be_web_urls() {
        let ok = |uri: &str| web_url("k", uri.to_owned());
        assert_eq!(
            ok("https://example.com/tos").unwrap(),
            "https://example.com/tos"
        );
        assert_eq!(ok("http://example.com").unwrap(), "http://example.com/");
        for bad in [
            "javascript:alert(1)",
            "example.com/tos",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "data:text/html,x",
            "https://",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }
}
