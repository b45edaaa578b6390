//! The OAuth pages in a real headless chromium (`src/web/authorize.rs`, `src/web/device.rs`),
//! beside a Synapse that is not there (no page needs it: only the token exchange would):
//! every page, light and dark, at a desktop's and a phone's width, checked with axe-core and
//! screenshot (`$CARGO_TARGET_DIR/account-page/oauth-*.png`); Allow and Deny land the browser
//! on the client's redirect URI (the consent page's `form-action` lets the redirect after its
//! POST through); and a user signed in to the account page who follows a link from another
//! site to the authorization gets the consent page without signing in again (the session
//! cookie is `SameSite=Lax`).

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

use fantoccini::Locator;
use fantoccini::error::CmdError;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::account_page::{
    Chromium, DESKTOP, PAGE, PHONE, Tour, axe_core, scheme_applied, sign_in_with, synapse_section,
    tab_through,
};
use crate::server::Server;
use crate::support::TestDb;

const AUTHORIZE: &str = "/_homekey/oauth2/authorize";
const DEVICE_PAGE: &str = "/_homekey/device/";
/// A PKCE challenge (S256 of a verifier the test never needs: no code is exchanged here).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// homekey beside a Synapse that is not there, over plain http (the cookie is not `Secure`),
/// letting a web client redirect to the loopback; and the same database served standalone,
/// where the tests log in devices with a password.
async fn beside_synapse(db: TestDb) -> (Server, Server) {
    let logins = Server::start(db.share().await, "").await;
    let config = format!(
        "{}oauth:\n  allow_insecure_client_uris: true\n\
         rc_client_registration: {{per_second: 1, burst_count: 100}}\n",
        synapse_section("http://127.0.0.1/")
    );
    (Server::start(db, &config).await, logins)
}

/// A request a [`Site`] received: its target (path and query) and its headers, lower-cased.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A web site of the test's own on `127.0.0.1` (reached as `localhost` too): an OAuth
/// client's redirect URI, or the page of another site with a link to homekey. It answers
/// every GET with the page set for its path (else a plain "back in the app" page) and
/// keeps what it was sent.
pub(crate) struct Site {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    pages: Arc<Mutex<Vec<(String, String)>>>,
}

impl Site {
    pub(crate) fn start() -> Site {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pages: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
        let (seen_, pages_) = (seen.clone(), pages.clone());
        // Threads of their own: the test's runtime is busy driving chromium.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, pages) = (seen_.clone(), pages_.clone());
                std::thread::spawn(move || answer(stream, &seen, &pages));
            }
        });
        Site { port, seen, pages }
    }

    /// The site's URL for `path` under `host` (`127.0.0.1` or `localhost`).
    pub(crate) fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    /// Serves `html` at `path`.
    fn serve(&self, path: &str, html: &str) {
        self.pages
            .lock()
            .unwrap()
            .push((path.to_owned(), html.to_owned()));
    }

    /// The requests received for `path` (any query).
    pub(crate) fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.split('?').next() == Some(path))
            .cloned()
            .collect()
    }
}

/// One request on `stream`, answered and the connection closed.
fn answer(
    stream: std::net::TcpStream,
    seen: &Mutex<Vec<Seen>>,
    pages: &Mutex<Vec<(String, String)>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // a connection chromium opened in advance and never used
    }
    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let path = target.split('?').next().unwrap_or("/").to_owned();
    seen.lock().unwrap().push(Seen { target, headers });
    let body = pages
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(p, _)| *p == path)
        .map(|(_, html)| html.clone())
        .unwrap_or_else(|| {
            "<!DOCTYPE html><html lang=\"en\"><title>Back in the app</title>\
             <h1>Back in the app</h1></html>"
                .into()
        });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Registers a client; its `client_id`.
pub(crate) async fn register(server: &Server, metadata: Value) -> String {
    let response = server
        .http
        .post(server.url("/oauth2/registration"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["client_id"].as_str().unwrap().to_owned()
}

/// A web app whose redirect URI is on `site` (the loopback: the developers' switch is on),
/// with its name, terms and privacy policy.
pub(crate) fn web_app(site: &Site) -> Value {
    json!({
        "application_type": "web",
        "client_name": "Example Web Chat",
        "client_uri": "https://chat.example.org/",
        "redirect_uris": [site.url("127.0.0.1", "/cb")],
        "tos_uri": "https://chat.example.org/terms",
        "policy_uri": "https://chat.example.org/privacy",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// A device without a browser (a TV), signing in with the device authorization grant.
fn tv_app() -> Value {
    json!({
        "application_type": "native",
        "client_name": "Example TV",
        "client_uri": "https://tv.example.org",
        "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
}

/// The scope of a session on `device`, with the admin scope when `admin`.
fn scope(device: &str, admin: bool) -> String {
    let admin = if admin { " urn:synapse:admin:*" } else { "" };
    format!("urn:matrix:client:api:* urn:matrix:client:device:{device}{admin}")
}

/// The authorization URL of `client_id` for a session on `device`.
pub(crate) fn authorization(
    server: &Server,
    client_id: &str,
    redirect_uri: &str,
    device: &str,
    admin: bool,
) -> String {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", &scope(device, admin)),
        ("state", "the-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    server.url(&format!("{AUTHORIZE}?{query}"))
}

/// Asks for a device authorization as the TV does; its `user_code`.
async fn ask_device(server: &Server, client_id: &str, device: &str) -> String {
    let response = server
        .http
        .post(server.url("/oauth2/device"))
        .form(&[("client_id", client_id), ("scope", &scope(device, false))])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["user_code"].as_str().unwrap().to_owned()
}

/// The parameters of the URL's query.
pub(crate) fn query_of(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The text of the element `id`.
pub(crate) async fn text(client: &fantoccini::Client, id: &str) -> Result<String, CmdError> {
    client.find(Locator::Id(id)).await?.text().await
}

/// Waits for the page to have the element `id` (after a click that loads a page).
pub(crate) async fn arrive(client: &fantoccini::Client, id: &str) -> Result<(), CmdError> {
    client.wait().for_element(Locator::Id(id)).await.map(|_| ())
}

/// Waits for the browser to be on `site` (after the redirect back to the client); the URL.
pub(crate) async fn landed_on(
    client: &fantoccini::Client,
    site: &Site,
) -> Result<url::Url, CmdError> {
    let origin = site.url("127.0.0.1", "/");
    for _ in 0..100 {
        let url = client.current_url().await?;
        if url.as_str().starts_with(&origin) {
            return Ok(url);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = client.current_url().await?;
    let page = client.source().await?;
    panic!("the browser did not reach the client's redirect URI: still at {url}\n{page}");
}

/// The browser's session cookie (`HttpOnly`: out of the page's reach, not WebDriver's).
async fn session_cookie(client: &fantoccini::Client) -> Result<String, CmdError> {
    let cookie = client.get_named_cookie("homekey_session").await?;
    Ok(cookie.value().to_owned())
}

/// What the tour of one colour scheme needs.
struct Walk<'a> {
    server: &'a Server,
    site: &'a Site,
    web_app: &'a str,
    tv_app: &'a str,
    /// A device of alice's from a password login.
    phone: &'a str,
}

/// Every OAuth page in one browser, from signed out: the authorization's sign-in (and a
/// wrong password), the consent (admin asked by a non-admin, terms and policy shown) and
/// Allow landing on the client with a code; a consent for a device a password login holds
/// (the warning) and Deny; the error page; the device grant's sign-in, code entry (a wrong
/// code), approval and done.
async fn walk(tour: &mut Tour<'_>, walk: &Walk<'_>, scheme: &str) -> Result<(), CmdError> {
    let client = tour.chromium.client.clone();
    let redirect_uri = walk.site.url("127.0.0.1", "/cb");
    let own_device = format!("BROWSER{}", scheme.to_uppercase());
    client
        .goto(&authorization(
            walk.server,
            walk.web_app,
            &redirect_uri,
            &own_device,
            true,
        ))
        .await?;
    arrive(&client, "sign-in").await?;
    assert_eq!(text(&client, "client-name").await?, "Example Web Chat");
    assert_eq!(
        tab_through(&client, 4).await?,
        ["#main", "user", "password", "sign-in"]
    );
    tour.check("oauth-1-sign-in").await?;

    sign_in_with(&client, "alice", "not-the-password").await?;
    arrive(&client, "error").await?;
    let error = text(&client, "error").await?;
    assert!(error.contains("password"), "{error}");
    tour.check("oauth-2-sign-in-refused").await?;

    client.find(Locator::Id("user")).await?.clear().await?;
    sign_in_with(&client, "alice", "alice-pw").await?;
    arrive(&client, "allow").await?;
    let site = text(&client, "client-site").await?;
    assert!(
        site.contains("says it is from chat.example.org"),
        "an http redirect proves nothing of the site: {site}"
    );
    let admin = text(&client, "admin-refused").await?;
    assert!(admin.contains("not a server admin"), "{admin}");
    assert!(client.find(Locator::Id("admin-grant")).await.is_err());
    let new = text(&client, "device-new").await?;
    assert!(new.contains(&own_device), "{new}");
    assert_eq!(
        tab_through(&client, 5).await?,
        [
            "#main",
            "https://chat.example.org/terms",
            "https://chat.example.org/privacy",
            "allow",
            "deny"
        ]
    );
    tour.check("oauth-3-consent").await?;

    // Allow: the POST's answer redirects to the client, which chromium lets through only if
    // the page's form-action allows the redirect URI's origin.
    client.find(Locator::Id("allow")).await?.click().await?;
    let back = landed_on(&client, walk.site).await?;
    let sent = query_of(&back);
    assert_eq!(back.path(), "/cb", "{back}");
    assert_eq!(param(&sent, "state"), Some("the-state"), "{back}");
    let code = param(&sent, "code").unwrap_or_else(|| panic!("no code: {back}"));
    assert!(code.len() >= 20, "{back}");
    assert!(
        back.fragment().is_none(),
        "an http redirect is answered in the query"
    );
    assert!(
        walk.site
            .seen("/cb")
            .iter()
            .any(|s| s.target.contains(&format!("code={code}"))),
        "the client's site was not sent the code"
    );

    // Signed in now: straight to the consent, for a device a password login holds.
    client
        .goto(&authorization(
            walk.server,
            walk.web_app,
            &redirect_uri,
            walk.phone,
            false,
        ))
        .await?;
    arrive(&client, "allow").await?;
    let replaced = client.find(Locator::Id("device-replaced")).await?;
    assert_eq!(replaced.attr("class").await?.as_deref(), Some("warning"));
    let warning = replaced.text().await?;
    assert!(
        warning.contains("Alice's phone") && warning.contains("signed out"),
        "{warning}"
    );
    assert!(client.find(Locator::Id("admin-refused")).await.is_err());
    tour.check("oauth-4-consent-replacing-a-session").await?;
    client.find(Locator::Id("deny")).await?.click().await?;
    let back = landed_on(&client, walk.site).await?;
    let sent = query_of(&back);
    assert_eq!(param(&sent, "error"), Some("access_denied"), "{back}");
    assert_eq!(param(&sent, "state"), Some("the-state"), "{back}");
    assert_eq!(param(&sent, "code"), None, "{back}");

    // An unknown client: a page, never a redirect.
    client
        .goto(&authorization(
            walk.server,
            "no-such-client",
            &redirect_uri,
            &own_device,
            false,
        ))
        .await?;
    arrive(&client, "error").await?;
    assert_eq!(
        client.find(Locator::Css("main h1")).await?.text().await?,
        "This sign-in cannot go on"
    );
    assert!(
        client
            .current_url()
            .await?
            .as_str()
            .starts_with(&walk.server.base)
    );
    tour.check("oauth-5-error").await?;

    // The device grant, from signed out.
    let user_code = ask_device(
        walk.server,
        walk.tv_app,
        &format!("TV{}", scheme.to_uppercase()),
    )
    .await;
    client.delete_all_cookies().await?;
    client.goto(&walk.server.url(DEVICE_PAGE)).await?;
    arrive(&client, "sign-in").await?;
    tour.check("device-1-sign-in").await?;
    sign_in_with(&client, "alice", "alice-pw").await?;
    arrive(&client, "continue").await?;
    assert_eq!(
        tab_through(&client, 3).await?,
        ["#main", "user_code", "continue"]
    );
    tour.check("device-2-code").await?;

    client
        .find(Locator::Id("user_code"))
        .await?
        .send_keys("BBBB-BBBB")
        .await?;
    client.find(Locator::Id("continue")).await?.click().await?;
    arrive(&client, "error").await?;
    // The error beside the field it is about.
    let Ok(beside) = client.find(Locator::Id("user_code-error")).await else {
        panic!(
            "the code's error is not beside its field: {}",
            client.source().await?
        );
    };
    let beside = beside.text().await?;
    assert!(beside.contains("not waiting for approval"), "{beside}");
    let input = client.find(Locator::Id("user_code")).await?;
    assert_eq!(input.attr("aria-invalid").await?.as_deref(), Some("true"));
    assert_eq!(
        input.attr("aria-describedby").await?.as_deref(),
        Some("user_code-error code-hint")
    );
    tour.check("device-3-code-refused").await?;

    input.clear().await?;
    input.send_keys(&user_code.to_lowercase()).await?;
    client.find(Locator::Id("continue")).await?.click().await?;
    arrive(&client, "allow").await?;
    assert_eq!(text(&client, "user-code").await?, user_code);
    let requested = text(&client, "requested").await?;
    assert!(
        requested.contains("from the address 127.0.0.1"),
        "{requested}"
    );
    assert_eq!(requested.matches("UTC").count(), 1, "{requested}");
    assert_eq!(text(&client, "client-name").await?, "Example TV");
    tour.check("device-4-approve").await?;
    client.find(Locator::Id("allow")).await?.click().await?;
    arrive(&client, "done").await?;
    let done = text(&client, "done").await?;
    assert!(done.contains(&user_code), "{done}");
    tour.check("device-5-done").await?;
    client.delete_all_cookies().await
}

/// Every OAuth page in chromium, light and dark, at a desktop's and a phone's width: axe-core
/// finds no serious or critical violation, nothing is wider than a phone, every control is
/// reached by keyboard; Allow and Deny land the browser on the client's redirect URI with
/// the code or `access_denied` (chromium applies `form-action` to the redirect that follows
/// the consent's POST). Screenshots in `$CARGO_TARGET_DIR/account-page/oauth-*.png`.
#[tokio::test]
async fn in_a_real_browser_the_oauth_pages_pass_axe_core_and_allow_lands_on_the_client() {
    let test = "in_a_real_browser_the_oauth_pages_pass_axe_core_and_allow_lands_on_the_client";
    let started = std::time::Instant::now();
    let axe = axe_core(test);
    let Some(light) = Chromium::start(test).await else {
        return;
    };
    let Some(dark) = Chromium::start_dark(test).await else {
        return;
    };
    let (server, logins) = beside_synapse(TestDb::sqlite().await).await;
    server.create_user("alice", "alice-pw").await;
    let (token, phone) = logins.session_for("alice", "alice-pw").await;
    let (status, _) = logins
        .call(
            "PUT",
            &format!("/_matrix/client/v3/devices/{phone}"),
            Some(&token),
            Some(json!({"display_name": "Alice's phone"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let site = Site::start();
    let web_app = register(&server, web_app(&site)).await;
    let tv_app = register(&server, tv_app()).await;
    let walk_of = Walk {
        server: &server,
        site: &site,
        web_app: &web_app,
        tv_app: &tv_app,
        phone: &phone,
    };

    let mut problems = Vec::new();
    let mut checked = 0;
    let widths = [("desktop", DESKTOP), ("phone", PHONE)];
    let result = async {
        let mut backgrounds = Vec::new();
        for (scheme, chromium) in [("light", &light), ("dark", &dark)] {
            let mut tour = Tour {
                chromium,
                prefix: format!("oauth-{scheme}"),
                widths: &widths,
                axe: axe.as_deref(),
                problems: Vec::new(),
                checked: 0,
            };
            walk(&mut tour, &walk_of, scheme).await?;
            problems.append(&mut tour.problems);
            checked += tour.checked;
            let (background, prefers_dark) = scheme_applied(&chromium.client).await?;
            assert_eq!(prefers_dark, scheme == "dark", "{scheme}");
            backgrounds.push(background);
        }
        assert_eq!(
            backgrounds,
            ["rgb(244, 245, 247)", "rgb(17, 19, 24)"],
            "light and dark backgrounds"
        );
        Ok::<_, CmdError>(())
    }
    .await;
    light.close().await;
    dark.close().await;
    result.unwrap();
    match axe {
        Some(_) => eprintln!("axe-core checked {checked} page views"),
        None => eprintln!("axe-core: SKIPPED (HOMEKEY_TEST_AXE not set); screenshots only"),
    }
    eprintln!("{test}: {:?}", started.elapsed());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The client sends the user to the authorization by a link on its own site, a cross-site
/// navigation: a user signed in to the account page who follows such a link (from
/// `localhost`, another site than homekey's `127.0.0.1` to chromium, which the site's probe
/// shows) gets the consent page without signing in again, and is still signed in to the
/// account page after. The session cookie is `SameSite=Lax`: with `Strict`, chromium would
/// not send it on that navigation.
#[tokio::test]
async fn a_user_signed_in_who_follows_a_link_from_another_site_gets_the_consent_page_at_once() {
    let test =
        "a_user_signed_in_who_follows_a_link_from_another_site_gets_the_consent_page_at_once";
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let (server, _logins) = beside_synapse(TestDb::sqlite().await).await;
    server.create_user("alice", "alice-pw").await;
    let site = Site::start();
    let web_app = register(&server, web_app(&site)).await;
    let redirect_uri = site.url("127.0.0.1", "/cb");
    let link = authorization(&server, &web_app, &redirect_uri, "LINKED", false);
    // The client's page, on `localhost`: a link to homekey, and one to a probe on homekey's
    // site (127.0.0.1, another port: the same site) that records what chromium says of the
    // navigation.
    let probe = site.url("127.0.0.1", "/probe");
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><title>Example Web Chat</title>\
         <a id=\"probe\" href=\"{probe}\">probe</a> \
         <a id=\"sign-in-link\" href=\"{}\">Sign in with your Matrix account</a></html>",
        link.replace('&', "&amp;")
    );
    site.serve("/", &page);
    let client = chromium.client.clone();

    let result = async {
        client.goto(&server.url(PAGE)).await?;
        arrive(&client, "sign-in").await?;
        sign_in_with(&client, "alice", "alice-pw").await?;
        arrive(&client, "sign-out").await?;
        let session = session_cookie(&client).await?;

        // localhost is another site than 127.0.0.1 to chromium.
        client.goto(&site.url("localhost", "/")).await?;
        arrive(&client, "probe").await?;
        client.find(Locator::Id("probe")).await?.click().await?;
        let probed = loop {
            if let Some(probed) = site.seen("/probe").pop() {
                break probed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(
            probed.header("sec-fetch-site"),
            Some("cross-site"),
            "{probed:?}"
        );
        assert_eq!(
            probed.header("sec-fetch-mode"),
            Some("navigate"),
            "{probed:?}"
        );

        // The link to the authorization, followed from the other site.
        client.goto(&site.url("localhost", "/")).await?;
        arrive(&client, "sign-in-link").await?;
        client
            .find(Locator::Id("sign-in-link"))
            .await?
            .click()
            .await?;
        client.wait().for_element(Locator::Css("main h1")).await?;
        let url = client.current_url().await?;
        assert!(url.as_str().starts_with(&server.url(AUTHORIZE)), "{url}");
        let heading = client.find(Locator::Css("main h1")).await?.text().await?;
        let consent_at_once = heading == "Allow Example Web Chat to use your account?";
        if consent_at_once {
            assert_eq!(text(&client, "signed-in-as").await?, "@alice:example.com");
        }

        // Still signed in to the account page, in the same session.
        client.goto(&server.url(PAGE)).await?;
        client.wait().for_element(Locator::Css("main h1")).await?;
        let still_signed_in = client.find(Locator::Id("sign-out")).await.is_ok();
        let same_session = session_cookie(&client).await? == session;
        assert!(
            consent_at_once && still_signed_in && same_session,
            "after the link from another site: the consent page at once: {consent_at_once} \
             (the page was \"{heading}\"); still signed in to the account page: \
             {still_signed_in}; the same session cookie: {same_session}"
        );
        // And Allow still lands on the client, a code in hand.
        client.goto(&link).await?;
        arrive(&client, "allow").await?;
        client.find(Locator::Id("allow")).await?.click().await?;
        let back = landed_on(&client, &site).await?;
        assert!(param(&query_of(&back), "code").is_some(), "{back}");
        Ok::<_, CmdError>(())
    }
    .await;
    chromium.close().await;
    result.unwrap();
}
