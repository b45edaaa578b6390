//! The admin console (issue 28), over HTTP against `homekey serve` with `admin_console:`
//! enabled on a listener of its own: sign-in for admins only, its cookie and headers, the
//! CSRF token and `Origin` of every POST, the session's idle expiry, a demoted admin's
//! session ended, and the users list. Its `Console` browser and `start` are shared by the
//! other console tests (`admin_console_*.rs`).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::server::{Server, server_tests};
use crate::support::TestDb;

pub(crate) const CONSOLE: &str = "/_homekey/admin/";
pub(crate) const REFUSED: &str = "Wrong user name or password, or not a server admin.";
pub(crate) const ENDED: &str = "Your session has ended";

/// The console on its own listener, found in the serve log.
pub(crate) async fn start(db: TestDb, more: &str) -> (Server, String) {
    let server = Server::start(
        db,
        &format!("admin_console:\n  enabled: true\n  listen: 127.0.0.1:0\n{more}"),
    )
    .await;
    let address = console_of(&server);
    assert_ne!(address, server.base, "a listener of its own");
    (server, address)
}

/// The address of a server's console, found in its serve log.
pub(crate) fn console_of(server: &Server) -> String {
    assert!(server.wait_for_log("admin console listening on "));
    server
        .log()
        .split("admin console listening on ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap()
        .trim()
        .to_owned()
}

/// A browser on the console: keeps its cookie, follows no redirect, sends the console's
/// origin with every POST unless told otherwise.
pub(crate) struct Console {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }

    pub fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get("set-cookie")
            .map(|value| value.to_str().unwrap())
    }

    pub fn is_sign_in_page(&self) -> bool {
        self.body.contains("id=\"sign-in\"")
    }
}

impl Console {
    pub fn new(base: &str) -> Console {
        Console {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn answer(&mut self, response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        if let Some(set) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap();
            self.cookie = (!set.contains("Max-Age=0")).then(|| pair.to_owned());
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.answer(response).await
    }

    pub async fn post_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
        host: Option<&str>,
    ) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().await.unwrap();
        self.answer(response).await
    }

    /// Posts `body` as it is (a form no browser would encode, such as `%FF`), from the
    /// console's origin.
    pub async fn post_raw(&mut self, path: &str, body: &str) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.base)
            .body(body.to_owned());
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.answer(response).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let origin = self.base.clone();
        self.post_from(path, fields, Some(&origin), None).await
    }

    /// Signs in through the form; the answer to the POST.
    pub async fn sign_in(&mut self, user: &str, password: &str) -> Answer {
        let csrf = self.get(CONSOLE).await.csrf();
        self.post(
            &format!("{CONSOLE}sign-in"),
            &[("csrf", &csrf), ("user", user), ("password", password)],
        )
        .await
    }
}

pub(crate) fn assert_console_headers(answer: &Answer, what: &str) {
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(
            answer.headers.get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name} on {what}"
        );
    }
}

pub(crate) async fn make_admin(server: &Server, localpart: &str, password: &str) -> String {
    server.admin_token(localpart, password).await
}

async fn an_admin_signs_in_and_a_non_admin_gets_the_answer_of_a_wrong_password(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let mut browser = Console::new(&console);

    let first = browser.get(CONSOLE).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.is_sign_in_page());
    let before = browser.cookie.clone().expect("a cookie before sign-in");

    let non_admin = browser.sign_in("bob", "bob-pw").await;
    let wrong_password = browser.sign_in("alice", "not-alices").await;
    let unknown = browser.sign_in("nobody", "bob-pw").await;
    for (answer, what) in [
        (&non_admin, "a non-admin"),
        (&wrong_password, "a wrong password"),
        (&unknown, "an unknown user"),
    ] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(answer.body.contains(REFUSED), "{what}: {}", answer.body);
        assert!(answer.is_sign_in_page(), "{what}");
    }
    assert!(browser.get(CONSOLE).await.is_sign_in_page());

    let signed_in = browser.sign_in("@alice:example.com", "alice-pw").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let cookie = signed_in.set_cookie().expect("a new cookie at sign-in");
    assert!(cookie.starts_with("homekey_admin="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/_homekey/admin"] {
        assert!(
            cookie.split("; ").any(|part| part == flag),
            "{flag}: {cookie}"
        );
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    assert_ne!(browser.cookie.as_deref(), Some(before.as_str()));

    let users = browser.get(CONSOLE).await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body.contains("<h1>Users</h1>"), "{}", users.body);
    assert!(users.body.contains("@bob:example.com"));

    // Signed in by localpart too, each sign-in with a new cookie.
    let again = browser.sign_in("alice", "alice-pw").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_ne!(again.set_cookie(), Some(cookie));

    // The account page's cookie signs no one in here: another kind of session.
    let mut other = Console::new(&console);
    other.cookie = Some(
        browser
            .cookie
            .clone()
            .unwrap()
            .replace("homekey_admin=", "homekey_session="),
    );
    assert!(other.get(CONSOLE).await.is_sign_in_page());

    // Sign-out ends it: the old cookie opens nothing.
    let old = browser.cookie.clone();
    let csrf = browser.get(CONSOLE).await.csrf();
    let out = browser
        .post(&format!("{CONSOLE}sign-out"), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie().unwrap().contains("Max-Age=0"));
    browser.cookie = old;
    assert!(browser.get(CONSOLE).await.is_sign_in_page());
}

async fn every_answer_has_the_consoles_headers(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    let sign_in_page = browser.get(CONSOLE).await;
    assert_console_headers(&sign_in_page, "the sign-in page");
    let refused = browser.sign_in("alice", "wrong").await;
    assert_console_headers(&refused, "a refused sign-in");
    let signed_in = browser.sign_in("alice", "alice-pw").await;
    assert_console_headers(&signed_in, "the sign-in's redirect");
    for path in [
        CONSOLE.to_owned(),
        format!("{CONSOLE}user?id=%40alice%3Aexample.com"),
        format!("{CONSOLE}user?id=nobody"),
        format!("{CONSOLE}no-such-page"),
        "/_homekey/static/page.css".to_owned(),
    ] {
        let answer = browser.get(&path).await;
        assert_console_headers(&answer, &path);
    }
    let stylesheet = browser.get("/_homekey/static/page.css").await;
    assert_eq!(stylesheet.status, StatusCode::OK);
    // Only the console is served there: no Matrix API.
    let versions = browser.get("/_matrix/client/versions").await;
    assert_eq!(versions.status, StatusCode::NOT_FOUND);
}

async fn a_post_without_its_csrf_token_or_from_elsewhere_is_refused(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    let csrf = browser.get(CONSOLE).await.csrf();
    let credentials = [("user", "alice"), ("password", "alice-pw")];

    let without = browser
        .post(&format!("{CONSOLE}sign-in"), &credentials)
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert!(
        without.body.contains("Nothing was done"),
        "{}",
        without.body
    );
    assert_console_headers(&without, "a refused form");

    let with_csrf = [("csrf", csrf.as_str()), credentials[0], credentials[1]];
    let path = format!("{CONSOLE}sign-in");
    let port = console.rsplit(':').next().unwrap().to_owned();
    for (origin, host, what) in [
        (
            Some("http://evil.example".to_owned()),
            None,
            "a foreign origin",
        ),
        (None, None, "no origin"),
        (
            Some(format!(
                "http://127.0.0.1:{}",
                port.parse::<u16>().unwrap() + 1
            )),
            None,
            "another local port",
        ),
        (
            Some(format!("http://rebound.example:{port}")),
            Some(format!("rebound.example:{port}")),
            "a DNS rebinding (a Host that is not loopback)",
        ),
    ] {
        let answer = browser
            .post_from(&path, &with_csrf, origin.as_deref(), host.as_deref())
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}");
        assert!(
            answer.body.contains("not sent from the admin console"),
            "{what}: {}",
            answer.body
        );
    }
    assert!(
        browser.get(CONSOLE).await.is_sign_in_page(),
        "none signed in"
    );

    // Through an SSH tunnel named localhost: its own origin is allowed.
    let tunnel = format!("localhost:{port}");
    let answer = browser
        .post_from(
            &path,
            &with_csrf,
            Some(&format!("http://{tunnel}")),
            Some(&tunnel),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);

    // Signed in, a sign-out without the token ends nothing.
    let out = browser.post(&format!("{CONSOLE}sign-out"), &[]).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert!(!browser.get(CONSOLE).await.is_sign_in_page());
}

async fn an_idle_session_ends(db: TestDb) {
    let (server, console) = start(db, "  idle_timeout: 2s\n").await;
    make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    assert_eq!(
        browser.sign_in("alice", "alice-pw").await.status,
        StatusCode::SEE_OTHER
    );
    // Used within the timeout, it lives on.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(!browser.get(CONSOLE).await.is_sign_in_page());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(!browser.get(CONSOLE).await.is_sign_in_page());
    // Left idle past it, it has ended.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(browser.get(CONSOLE).await.is_sign_in_page());
}

async fn a_demoted_or_locked_admins_session_ends_at_the_next_request(db: TestDb) {
    let (server, console) = start(db, "").await;
    let root = make_admin(&server, "root", "root-pw").await;
    make_admin(&server, "alice", "alice-pw").await;
    make_admin(&server, "carol", "carol-pw").await;
    let mut alice = Console::new(&console);
    let mut carol = Console::new(&console);
    assert_eq!(
        alice.sign_in("alice", "alice-pw").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        carol.sign_in("carol", "carol-pw").await.status,
        StatusCode::SEE_OTHER
    );
    assert!(!alice.get(CONSOLE).await.is_sign_in_page());

    let (status, body) = server
        .call(
            "PUT",
            "/_synapse/admin/v2/users/@alice:example.com",
            Some(&root),
            Some(json!({ "admin": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            "PUT",
            "/_synapse/admin/v2/users/@carol:example.com",
            Some(&root),
            Some(json!({ "locked": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The demotion is seen at the next request, which says so; the lock ended every page
    // session of carol's already (the store does, in the lock's transaction).
    let old = alice.cookie.clone();
    let page = alice.get(CONSOLE).await;
    assert!(page.is_sign_in_page());
    assert!(page.body.contains(ENDED), "{}", page.body);
    assert!(carol.get(CONSOLE).await.is_sign_in_page(), "locked");
    // Ended, not only refused: made admin again, the old cookie still opens nothing.
    alice.cookie = old;
    let (status, _) = server
        .call(
            "PUT",
            "/_synapse/admin/v2/users/@alice:example.com",
            Some(&root),
            Some(json!({ "admin": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(alice.get(CONSOLE).await.is_sign_in_page());
}

async fn the_users_list_searches_filters_pages_and_escapes(db: TestDb) {
    let (server, console) = start(db, "").await;
    let root = make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    server.create_user("carol", "carol-pw").await;
    server.create_user("dave", "dave-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    server
        .set_own_displayname(&bob, "@bob:example.com", "<script>alert(1)</script>")
        .await;
    let (status, body) = server
        .call(
            "PUT",
            "/_synapse/admin/v2/users/@dave:example.com",
            Some(&root),
            Some(json!({ "locked": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut browser = Console::new(&console);
    assert_eq!(
        browser.sign_in("alice", "alice-pw").await.status,
        StatusCode::SEE_OTHER
    );
    let total = |answer: &Answer| {
        let start = answer.body.find("id=\"total\">").expect("the total") + 11;
        let rest = &answer.body[start..];
        rest[..rest.find(' ').unwrap()].parse::<i64>().unwrap()
    };

    let all = browser.get(CONSOLE).await;
    assert_eq!(total(&all), 3, "the locked one left out: {}", all.body);
    assert!(!all.body.contains("@dave:example.com"));
    let with_locked = browser.get(&format!("{CONSOLE}?locked=on")).await;
    assert_eq!(total(&with_locked), 4);
    assert!(with_locked.body.contains("@dave:example.com"));
    let admins = browser.get(&format!("{CONSOLE}?admins=on")).await;
    assert_eq!(total(&admins), 1);
    assert!(admins.body.contains("@alice:example.com"));
    assert!(!admins.body.contains("@carol:example.com"));
    let by_name = browser.get(&format!("{CONSOLE}?q=car")).await;
    assert_eq!(total(&by_name), 1);
    assert!(by_name.body.contains("@carol:example.com"));
    let by_display_name = browser.get(&format!("{CONSOLE}?q=alert")).await;
    assert_eq!(total(&by_display_name), 1);
    assert!(by_display_name.body.contains("@bob:example.com"));
    let by_id = browser.get(&format!("{CONSOLE}?q=%40ali")).await;
    assert_eq!(total(&by_id), 1);

    // Paged: one a page, the total on each, a link to the next.
    let first = browser.get(&format!("{CONSOLE}?limit=1")).await;
    assert_eq!(total(&first), 3);
    assert!(first.body.contains("id=\"next\""));
    assert!(!first.body.contains("id=\"previous\""));
    let last = browser.get(&format!("{CONSOLE}?limit=1&from=2")).await;
    assert_eq!(total(&last), 3);
    assert!(!last.body.contains("id=\"next\""));
    assert!(last.body.contains("id=\"previous\""));

    // A display name is text, never markup, on the list and on the user's page.
    for page in [
        &all,
        &browser
            .get(&format!("{CONSOLE}user?id=%40bob%3Aexample.com"))
            .await,
    ] {
        assert!(!page.body.contains("<script>"), "{}", page.body);
        assert!(
            page.body
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{}",
            page.body
        );
    }
    let user = browser
        .get(&format!("{CONSOLE}user?id=%40bob%3Aexample.com"))
        .await;
    assert_eq!(user.status, StatusCode::OK);
    let devices = server.device_ids("@bob:example.com").await;
    assert_eq!(devices.len(), 1);
    assert!(user.body.contains(&devices[0]), "{}", user.body);
    assert!(
        user.body.contains("2023-11-14"),
        "the creation time: {}",
        user.body
    );
    let nobody = browser.get(&format!("{CONSOLE}user?id=nobody")).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}

async fn an_admin_resets_a_password_keeping_the_devices_unless_asked(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    let mut browser = Console::new(&console);
    assert_eq!(
        browser.sign_in("alice", "alice-pw").await.status,
        StatusCode::SEE_OTHER
    );
    let page_path = format!("{CONSOLE}user?id=%40bob%3Aexample.com");
    let page = browser.get(&page_path).await;
    // Signing out the devices is asked, unchecked, with the warning.
    assert!(
        page.body
            .contains("id=\"logout_devices\" name=\"logout_devices\" aria-describedby"),
        "{}",
        page.body
    );
    let logout_box = page.body.split("id=\"logout_devices\"").nth(1).unwrap();
    let logout_box = &logout_box[..logout_box.find('>').unwrap()];
    assert!(!logout_box.contains("checked"), "{logout_box}");
    assert!(page.body.contains("lose the encrypted messages"));
    let reset = format!("{CONSOLE}reset-password");
    let bob_id = "@bob:example.com";

    // Typed differently, or without the form's token: nothing changes.
    let csrf = page.csrf();
    let differ = browser
        .post(
            &reset,
            &[
                ("csrf", &csrf),
                ("user_id", bob_id),
                ("new_password", "new-one"),
                ("new_password_again", "new-two"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(differ.body.contains("The two passwords differ"));
    let forged = browser
        .post(
            &reset,
            &[
                ("user_id", bob_id),
                ("new_password", "new-one"),
                ("new_password_again", "new-one"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(server.has_password(bob_id, "bob-pw").await);

    // Reset, the devices kept: bob's token still works, the new password signs in.
    let kept = browser
        .post(
            &reset,
            &[
                ("csrf", &csrf),
                ("user_id", bob_id),
                ("new_password", "bob-new-1"),
                ("new_password_again", "bob-new-1"),
            ],
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert!(kept.body.contains("devices stay signed in"));
    assert!(server.has_password(bob_id, "bob-new-1").await);
    assert_eq!(server.whoami(Some(&bob)).await.0, StatusCode::OK);

    // Reset with the devices signed out: the old token is refused.
    let ended = browser
        .post(
            &reset,
            &[
                ("csrf", &csrf),
                ("user_id", bob_id),
                ("new_password", "bob-new-2"),
                ("new_password_again", "bob-new-2"),
                ("logout_devices", "on"),
            ],
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert!(
        ended
            .body
            .contains("every device of this user was signed out")
    );
    assert_eq!(server.whoami(Some(&bob)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login("bob", "bob-new-2").await.0, StatusCode::OK);
    assert!(!ended.body.contains("bob-new-2"), "never the password");

    // Audited as the Admin API's resets, with alice as the actor.
    let mut resets: Vec<_> = server
        .store()
        .list_audit(&homekey::store::AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.action == "reset_password")
        .collect();
    assert_eq!(resets.len(), 2, "{resets:?}");
    resets.sort_by_key(|record| record.id);
    for (record, logout) in resets.iter().zip([false, true]) {
        assert_eq!(record.actor, "@alice:example.com");
        assert_eq!(record.target.as_deref(), Some(bob_id));
        assert_eq!(record.details["logout_devices"], logout);
    }
    assert!(!server.log().contains("bob-new-"), "no password in the log");
}

async fn behind_a_proxy_on_https_the_cookie_is_secure_and_only_its_origin_posts(db: TestDb) {
    let public = "https://admin.example.com";
    let (server, console) = start(
        db,
        &format!("  public_url: {public}/_homekey/admin/\n  x_forwarded: true\n"),
    )
    .await;
    make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    let csrf = browser.get(CONSOLE).await.csrf();
    let fields = [
        ("csrf", csrf.as_str()),
        ("user", "alice"),
        ("password", "alice-pw"),
    ];
    let path = format!("{CONSOLE}sign-in");
    // The listener's own loopback origin is not the console's public one.
    let local = browser.post(&path, &fields).await;
    assert_eq!(local.status, StatusCode::FORBIDDEN);
    let proxied = browser
        .post_from(&path, &fields, Some(public), Some("admin.example.com"))
        .await;
    assert_eq!(proxied.status, StatusCode::SEE_OTHER, "{}", proxied.body);
    let cookie = proxied.set_cookie().unwrap();
    assert!(cookie.split("; ").any(|part| part == "Secure"), "{cookie}");
    assert!(!browser.get(CONSOLE).await.is_sign_in_page());
}

server_tests!(
    an_admin_signs_in_and_a_non_admin_gets_the_answer_of_a_wrong_password,
    every_answer_has_the_consoles_headers,
    a_post_without_its_csrf_token_or_from_elsewhere_is_refused,
    an_idle_session_ends,
    a_demoted_or_locked_admins_session_ends_at_the_next_request,
    the_users_list_searches_filters_pages_and_escapes,
    an_admin_resets_a_password_keeping_the_devices_unless_asked,
    behind_a_proxy_on_https_the_cookie_is_secure_and_only_its_origin_posts,
);

/// The console in chromium: sign in, the users list, a user's page, each screenshot
/// (`target/account-page/admin-*.png`) and checked with axe-core (no serious or critical
/// violation); a script in a display name shows as text.
#[tokio::test]
async fn in_a_real_browser_an_admin_signs_in_and_finds_a_user() {
    use crate::account_page::{Chromium, axe_core, axe_violations, sign_in_with};
    use fantoccini::Locator;
    let test = "in_a_real_browser_an_admin_signs_in_and_finds_a_user";
    let Some(axe) = axe_core(test) else {
        return;
    };
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let (server, console) = start(TestDb::sqlite().await, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    server
        .set_own_displayname(&bob, "@bob:example.com", "<script>alert(1)</script>")
        .await;
    let client = chromium.client.clone();
    let result = async {
        let mut problems = Vec::new();
        client.goto(&format!("{console}{CONSOLE}")).await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        chromium.shot("admin-1-sign-in").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        sign_in_with(&client, "alice", "alice-pw").await?;
        let list = client.wait().for_element(Locator::Id("users")).await?;
        let listed = list.text().await?;
        assert!(listed.contains("<script>alert(1)</script>"), "{listed}");
        assert!(listed.contains("@bob:example.com"), "{listed}");
        chromium.shot("admin-2-users").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        client
            .find(Locator::Css("a.row-link[href*='bob']"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .for_element(Locator::Id("reset-password"))
            .await?;
        chromium.shot("admin-3-user").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        // The cookie is out of the page's reach.
        let script_cookies = client.execute("return document.cookie", vec![]).await?;
        assert_eq!(script_cookies, json!(""));
        client.find(Locator::Id("sign-out")).await?.click().await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        assert!(problems.is_empty(), "axe-core: {problems:#?}");
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    chromium.close().await;
    result.unwrap();
}
