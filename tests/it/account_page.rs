//! The account page beside Synapse (`src/web/`): what `account_management_uri` names. Its
//! sign-in needs no Synapse: these servers point at a Synapse that is not there, and the
//! tests' own logins (devices to see and end) go to a standalone server on the same database.
//! The pages are read as a browser gets them, cookies handled by hand so that each flag is
//! seen; one test drives a real chromium through chromedriver.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    the_sign_in_page_sets_a_lax_http_only_cookie_and_every_answer_has_the_security_headers,
    a_form_without_its_csrf_token_is_refused_and_changes_nothing,
    a_wrong_password_and_an_unknown_user_get_the_sign_in_page_again_with_one_message,
    deep_links_lead_through_sign_in_to_the_profile_the_sessions_and_one_session,
    a_hostile_display_name_and_device_name_are_shown_as_text,
    changing_the_password_needs_the_current_one_and_can_sign_out_the_other_devices,
    ending_a_session_deletes_the_device_and_its_token_at_once,
    signing_out_ends_the_session_and_the_old_cookie_signs_no_one_in,
    over_plain_http_the_cookie_is_not_secure,
    sign_in_is_under_rc_login_and_a_locked_account_is_signed_out,
    deactivating_the_account_needs_the_password_and_the_user_id_typed_and_ends_the_session,
    the_last_admin_is_refused_deactivation_on_the_page_with_the_apis_reason,
    a_cross_signing_reset_with_synapse_away_says_so_and_changes_nothing,
    a_password_change_on_the_page_gives_the_browser_a_new_session_id,
    cookie_less_visits_write_no_session_row_until_someone_signs_in,
);

pub(crate) const PAGE: &str = "/_homekey/account/";
const SECRET: &str = "account-page-secret-0123456789abcdefXYZ";

pub(crate) fn synapse_section(public_baseurl: &str) -> String {
    format!(
        "public_baseurl: {public_baseurl}\n\
         admin_contact: mailto:ops@example.com\n\
         synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: {SECRET}\n"
    )
}

/// homekey beside a Synapse that is not there, and the same database served standalone,
/// where the tests log in devices.
pub(crate) async fn beside_synapse(db: TestDb, public_baseurl: &str) -> (Server, Server) {
    let logins = Server::start(db.share().await, "").await;
    (
        Server::start(db, &synapse_section(public_baseurl)).await,
        logins,
    )
}

/// One browser: its cookie, kept by hand; redirects are not followed, so each is seen.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: Option<String>,
}

/// An answer: status, headers, body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    fn set_cookie(&self) -> Option<String> {
        self.headers
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    fn location(&self) -> String {
        self.headers[LOCATION].to_str().unwrap().to_owned()
    }

    /// The CSRF token of the page's forms.
    pub(crate) fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

impl Browser {
    pub(crate) fn new(server: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookie: None,
        }
    }

    pub(crate) async fn answer(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(cookie) => request.header("Cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        let answer = Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        };
        if let Some(set) = answer.set_cookie() {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        answer
    }

    pub(crate) async fn get(&mut self, path_and_query: &str) -> Answer {
        let request = self.http.get(format!("{}{path_and_query}", self.base));
        self.answer(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .http
            .post(format!("{}{PAGE}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        self.answer(request).await
    }

    /// Signs in from the page (a deep link's fields carried along), returning the answer to
    /// the form.
    pub(crate) async fn sign_in(&mut self, link: &str, user: &str, password: &str) -> Answer {
        let form = self.get(&format!("{PAGE}{link}")).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        let (action, device_id) = (field(&form.body, "action"), field(&form.body, "device_id"));
        self.post(
            "sign-in",
            &[
                ("csrf", &csrf),
                ("action", &action),
                ("device_id", &device_id),
                ("user", user),
                ("password", password),
            ],
        )
        .await
    }

    /// Signs in and follows the redirect: the page the link shows.
    pub(crate) async fn signed_in(&mut self, link: &str, user: &str, password: &str) -> Answer {
        let answer = self.sign_in(link, user, password).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let location = answer.location();
        let path = location.strip_prefix("./").unwrap();
        self.get(&format!("{PAGE}{path}")).await
    }
}

/// A hidden field's value in a page.
fn field(body: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle).unwrap() + needle.len();
    let end = start + body[start..].find('"').unwrap();
    body[start..end].to_owned()
}

/// Every answer of the pages: nothing from elsewhere, no frame, no sniffing, no referrer,
/// no cache.
pub(crate) fn assert_security_headers(answer: &Answer) {
    let csp = answer.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    assert_eq!(answer.header("referrer-policy"), "no-referrer");
    assert_eq!(answer.header("cache-control"), "no-store");
}

async fn the_sign_in_page_sets_a_lax_http_only_cookie_and_every_answer_has_the_security_headers(
    db: TestDb,
) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser.get(PAGE).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.header("content-type"), "text/html; charset=utf-8");
    assert!(form.body.contains("Sign in"), "{}", form.body);
    assert!(
        form.body.contains("mailto:ops@example.com"),
        "{}",
        form.body
    );
    assert!(!form.body.contains("<script"), "{}", form.body);
    assert_security_headers(&form);
    let cookie = form.set_cookie().expect("a session cookie");
    let flags: Vec<&str> = cookie.split("; ").skip(1).collect();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/_homekey/"] {
        assert!(flags.contains(&flag), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");

    let signed_in = browser.sign_in("", "alice", "alice-pw").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_security_headers(&signed_in);
    let new_cookie = signed_in.set_cookie().expect("a new session at sign-in");
    assert_ne!(
        new_cookie.split(';').next(),
        cookie.split(';').next(),
        "sign-in replaces the session"
    );
    assert!(
        new_cookie.contains("HttpOnly; SameSite=Lax; Secure"),
        "{new_cookie}"
    );

    let style = browser.get("/_homekey/static/page.css").await;
    assert_eq!(style.status, StatusCode::OK);
    assert_eq!(style.header("content-type"), "text/css; charset=utf-8");
    assert_security_headers(&style);

    // The discovery document lists what the page does.
    let (status, discovery) = server
        .call("GET", "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        discovery["account_management_uri"],
        "https://matrix.example.com/_homekey/account/"
    );
    let actions = discovery["account_management_actions_supported"]
        .as_array()
        .unwrap();
    for action in [
        "org.matrix.profile",
        "org.matrix.sessions_list",
        "org.matrix.session_view",
        "org.matrix.session_end",
        "org.matrix.devices_list",
        "org.matrix.device_view",
        "org.matrix.device_delete",
        "org.matrix.account_deactivate",
        "org.matrix.cross_signing_reset",
    ] {
        assert!(actions.contains(&json!(action)), "{discovery}");
    }
}

async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser.get(PAGE).await;
    let fields = [("user", "alice"), ("password", "alice-pw")];
    let refused = browser.post("sign-in", &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("Nothing was changed"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("name=\"password\""),
        "the sign-in form again"
    );
    assert_security_headers(&refused);
    let wrong = [
        ("csrf", "x".repeat(43)),
        ("user", "alice".into()),
        ("password", "alice-pw".into()),
    ];
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        browser.post("sign-in", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(
        browser.get(PAGE).await.body.contains("id=\"sign-in\""),
        "still not signed in"
    );
    drop(form);

    // Signed in, a password change without the token changes nothing.
    let (token, _) = logins.session_for("alice", "alice-pw").await;
    let profile = browser.signed_in("", "alice", "alice-pw").await;
    assert!(profile.body.contains("@alice:example.com"));
    let change = [
        ("current_password", "alice-pw"),
        ("new_password", "new-pw"),
        ("new_password_again", "new-pw"),
        ("sign_out_others", "on"),
    ];
    let refused = browser.post("password", &change).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("Nothing was changed"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("id=\"change-password\""),
        "the password form again"
    );
    assert_eq!(logins.whoami(Some(&token)).await.0, StatusCode::OK);
    assert_eq!(logins.login("alice", "alice-pw").await.0, StatusCode::OK);
    // Another session's token is no better than none.
    let mut other = Browser::new(&server);
    let other_csrf = other.get(PAGE).await.csrf();
    let mut with_other = change.to_vec();
    with_other.push(("csrf", &other_csrf));
    assert_eq!(
        browser.post("password", &with_other).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(logins.login("alice", "alice-pw").await.0, StatusCode::OK);
}

async fn a_wrong_password_and_an_unknown_user_get_the_sign_in_page_again_with_one_message(
    db: TestDb,
) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let wrong = browser.sign_in("", "alice", "not-the-pw").await;
    let unknown = browser.sign_in("", "nobody", "not-the-pw").await;
    for answer in [&wrong, &unknown] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
        assert!(
            answer
                .body
                .contains("Wrong user name, e-mail address or password."),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("id=\"sign-in\""), "the form again");
        assert!(answer.set_cookie().is_none(), "no new session");
    }
    assert!(wrong.body.contains("value=\"alice\""), "the user name kept");
    let empty = browser.sign_in("", "alice", "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(
        empty
            .body
            .contains("Enter your user name or e-mail address, and your password.")
    );
    let page = browser.get(PAGE).await;
    assert!(page.body.contains("id=\"sign-in\""), "not signed in");
    assert!(
        !server.log().contains("not-the-pw"),
        "no password in the log"
    );
}

async fn deep_links_lead_through_sign_in_to_the_profile_the_sessions_and_one_session(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let (_, phone) = logins.session_for("alice", "alice-pw").await;
    let (_, laptop) = logins.session_for("alice", "alice-pw").await;

    let mut browser = Browser::new(&server);
    let link = format!("?action=org.matrix.session_view&device_id={phone}");
    let signed_in = browser.sign_in(&link, "alice", "alice-pw").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), format!("./{link}"));
    let device = browser.get(&format!("{PAGE}{link}")).await;
    assert_eq!(device.status, StatusCode::OK, "{}", device.body);
    assert!(
        device
            .body
            .contains(&format!("<span id=\"device-id\">{phone}</span>"))
    );
    assert!(device.body.contains("id=\"end-session\""));

    let profile = browser
        .get(&format!("{PAGE}?action=org.matrix.profile"))
        .await;
    assert!(
        profile
            .body
            .contains("<dd id=\"user-id\">@alice:example.com</dd>"),
        "{}",
        profile.body
    );
    assert!(profile.body.contains("mailto:ops@example.com"));
    // No action is the profile.
    assert_eq!(browser.get(PAGE).await.body, profile.body);

    for action in ["org.matrix.sessions_list", "org.matrix.devices_list"] {
        let list = browser.get(&format!("{PAGE}?action={action}")).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(
            list.body.contains(&phone) && list.body.contains(&laptop),
            "{}",
            list.body
        );
    }
    let stable = browser
        .get(&format!(
            "{PAGE}?action=org.matrix.device_view&device_id={laptop}"
        ))
        .await;
    assert!(
        stable
            .body
            .contains(&format!("<span id=\"device-id\">{laptop}</span>"))
    );
    let end = browser
        .get(&format!(
            "{PAGE}?action=org.matrix.session_end&device_id={laptop}"
        ))
        .await;
    assert!(end.body.contains("id=\"end-session\""), "{}", end.body);

    let unknown_device = browser
        .get(&format!(
            "{PAGE}?action=org.matrix.session_view&device_id=NOSUCH"
        ))
        .await;
    assert_eq!(unknown_device.status, StatusCode::NOT_FOUND);
    assert!(unknown_device.body.contains("You have no such session."));
    let no_device = browser
        .get(&format!("{PAGE}?action=org.matrix.session_view"))
        .await;
    assert_eq!(no_device.status, StatusCode::NOT_FOUND);
    assert!(no_device.body.contains("The link names no device."));
    let unknown = browser
        .get(&format!("{PAGE}?action=org.example.unknown"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown
            .body
            .contains("This page does not offer “org.example.unknown”.")
    );
    // Another user's device is no one's to see here.
    server.create_user("bob", "bob-pw").await;
    let (_, bobs) = logins.session_for("bob", "bob-pw").await;
    let foreign = browser
        .get(&format!(
            "{PAGE}?action=org.matrix.session_view&device_id={bobs}"
        ))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

async fn a_hostile_display_name_and_device_name_are_shown_as_text(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let (token, device) = logins.session_for("alice", "alice-pw").await;
    let hostile_name = "<script>alert(1)</script>\"'&";
    let hostile_device = "<img src=x onerror=alert(2)>";
    let (status, _) = logins
        .call(
            "PUT",
            "/_matrix/client/v3/profile/@alice:example.com/displayname",
            Some(&token),
            Some(json!({"displayname": hostile_name})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = logins
        .call(
            "PUT",
            &format!("/_matrix/client/v3/devices/{device}"),
            Some(&token),
            Some(json!({"display_name": hostile_device})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut browser = Browser::new(&server);
    let profile = browser
        .signed_in("?action=org.matrix.profile", "alice", "alice-pw")
        .await;
    assert!(
        profile
            .body
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;&amp;"),
        "{}",
        profile.body
    );
    let sessions = browser
        .get(&format!("{PAGE}?action=org.matrix.sessions_list"))
        .await;
    let view = browser
        .get(&format!(
            "{PAGE}?action=org.matrix.session_view&device_id={device}"
        ))
        .await;
    for page in [&profile, &sessions, &view] {
        assert!(!page.body.contains("<script"), "{}", page.body);
        assert!(!page.body.contains("<img"), "{}", page.body);
    }
    assert!(
        sessions.body.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{}",
        sessions.body
    );
    assert!(
        view.body.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{}",
        view.body
    );
    // A hostile action or device ID in a link is text too.
    let link = browser
        .get(&format!("{PAGE}?action=%3Cb%3Ex&device_id=%22%3E%3Cb%3E"))
        .await;
    assert!(!link.body.contains("<b>"), "{}", link.body);
    // A query no form would send is the page all the same.
    let odd = browser
        .get(&format!(
            "{PAGE}?action=org.matrix.profile&action=x&device_id&%ZZ=%"
        ))
        .await;
    assert_eq!(odd.status, StatusCode::OK);
    assert!(odd.body.contains("id=\"user-id\""), "{}", odd.body);
}

async fn changing_the_password_needs_the_current_one_and_can_sign_out_the_other_devices(
    db: TestDb,
) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let (token, _) = logins.session_for("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser
        .signed_in("?action=password_change", "alice", "alice-pw")
        .await;
    assert!(
        form.body.contains("Sign out my other devices"),
        "{}",
        form.body
    );
    assert!(form.body.contains("encrypted history"), "the warning");
    let csrf = form.csrf();
    let mut other_browser = Browser::new(&server);
    other_browser.signed_in("", "alice", "alice-pw").await;

    let wrong_current = browser
        .post(
            "password",
            &[
                ("csrf", &csrf),
                ("current_password", "guess"),
                ("new_password", "second-pw"),
                ("new_password_again", "second-pw"),
            ],
        )
        .await;
    assert_eq!(wrong_current.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_current
            .body
            .contains("Your current password is not right.")
    );
    let mismatch = browser
        .post(
            "password",
            &[
                ("csrf", &csrf),
                ("current_password", "alice-pw"),
                ("new_password", "second-pw"),
                ("new_password_again", "second-pv"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.body.contains("The two new passwords differ."));
    assert_eq!(logins.login("alice", "alice-pw").await.0, StatusCode::OK);

    // Kept devices: the token still works.
    let kept = browser
        .post(
            "password",
            &[
                ("csrf", &csrf),
                ("current_password", "alice-pw"),
                ("new_password", "second-pw"),
                ("new_password_again", "second-pw"),
            ],
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert!(
        kept.body.contains("Your password was changed."),
        "{}",
        kept.body
    );
    assert_eq!(logins.whoami(Some(&token)).await.0, StatusCode::OK);
    assert_eq!(
        logins.login("alice", "alice-pw").await.0,
        StatusCode::FORBIDDEN
    );

    // The change gave the browser a new session, with a new CSRF token.
    let csrf = kept.csrf();
    let signed_out = browser
        .post(
            "password",
            &[
                ("csrf", &csrf),
                ("current_password", "second-pw"),
                ("new_password", "third-pw"),
                ("new_password_again", "third-pw"),
                ("sign_out_others", "on"),
            ],
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.body);
    assert!(
        signed_out
            .body
            .contains("your other devices were signed out")
    );
    assert_eq!(
        logins.whoami(Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(server.device_ids("@alice:example.com").await.is_empty());
    assert_eq!(logins.login("alice", "third-pw").await.0, StatusCode::OK);
    // This browser stays signed in; the other one was signed out with the devices.
    let this = browser
        .get(&format!("{PAGE}?action=org.matrix.profile"))
        .await;
    assert!(this.body.contains("id=\"user-id\""), "{}", this.body);
    let other = other_browser.get(PAGE).await;
    assert!(other.body.contains("id=\"sign-in\""), "{}", other.body);
    let log = server.log();
    for secret in ["alice-pw", "second-pw", "third-pw", csrf.as_str()] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    let cookie = browser.cookie.clone().unwrap();
    assert!(
        !log.contains(cookie.split('=').nth(1).unwrap()),
        "the session ID in the log"
    );
}

async fn ending_a_session_deletes_the_device_and_its_token_at_once(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let (lost_token, lost) = logins.session_for("alice", "alice-pw").await;
    let (kept_token, kept_device) = logins.session_for("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let link = format!("?action=org.matrix.session_end&device_id={lost}");
    let confirm = browser.signed_in(&link, "alice", "alice-pw").await;
    // Just signed in: no password asked again.
    assert!(
        !confirm.body.contains("Your password, to confirm"),
        "{}",
        confirm.body
    );
    let csrf = confirm.csrf();
    let ended = browser
        .post("session-end", &[("csrf", &csrf), ("device_id", &lost)])
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert!(
        ended
            .body
            .contains(&format!("Session {lost} was signed out."))
    );
    // The list of sessions again: the ended one no longer links there, the other does.
    assert!(
        !ended.body.contains(&format!("device_id={lost}\"")),
        "no longer listed: {}",
        ended.body
    );
    assert!(
        ended.body.contains(&format!("device_id={kept_device}\"")),
        "{}",
        ended.body
    );
    assert_eq!(
        logins.whoami(Some(&lost_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(logins.whoami(Some(&kept_token)).await.0, StatusCode::OK);
    let again = browser
        .post("session-end", &[("csrf", &csrf), ("device_id", &lost)])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.body.contains("You have no such session."));

    // Once the sign-in is more than a few minutes old, the password is asked again.
    crate::server::raw_execute(
        &server.db.config,
        "UPDATE homekey_web_sessions SET verified_ms = 0",
        &[],
    )
    .await;
    let (kept, kept_id) = (
        kept_token,
        server.device_ids("@alice:example.com").await[0].clone(),
    );
    let link = format!("{PAGE}?action=org.matrix.session_end&device_id={kept_id}");
    assert!(
        browser
            .get(&link)
            .await
            .body
            .contains("Your password, to confirm")
    );
    for (password, status, message) in [
        (
            "",
            StatusCode::BAD_REQUEST,
            "Enter your password to confirm.",
        ),
        (
            "guess",
            StatusCode::BAD_REQUEST,
            "Your password is not right.",
        ),
    ] {
        let form = [
            ("csrf", csrf.as_str()),
            ("device_id", &kept_id),
            ("password", password),
        ];
        let refused = browser.post("session-end", &form).await;
        assert_eq!(refused.status, status, "{}", refused.body);
        assert!(refused.body.contains(message), "{}", refused.body);
        assert_eq!(logins.whoami(Some(&kept)).await.0, StatusCode::OK);
    }
    let form = [
        ("csrf", csrf.as_str()),
        ("device_id", &kept_id),
        ("password", "alice-pw"),
    ];
    assert_eq!(
        browser.post("session-end", &form).await.status,
        StatusCode::OK
    );
    assert_eq!(logins.whoami(Some(&kept)).await.0, StatusCode::UNAUTHORIZED);
}

async fn signing_out_ends_the_session_and_the_old_cookie_signs_no_one_in(db: TestDb) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let profile = browser.signed_in("", "alice", "alice-pw").await;
    let cookie = browser.cookie.clone().unwrap();
    let out = browser.post("sign-out", &[("csrf", &profile.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let cleared = out.set_cookie().unwrap();
    assert!(
        cleared.starts_with("homekey_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    browser.cookie = Some(cookie);
    let page = browser
        .get(&format!("{PAGE}?action=org.matrix.profile"))
        .await;
    assert!(page.body.contains("id=\"sign-in\""), "{}", page.body);
    assert!(!page.body.contains("@alice:example.com"));
    // A made-up cookie is a session not signed in (written nowhere).
    browser.cookie = Some(format!("homekey_session={}", "A".repeat(43)));
    let page = browser.get(PAGE).await;
    assert!(page.body.contains("id=\"sign-in\""), "{}", page.body);
    assert!(!page.body.contains("@alice:example.com"));
}

async fn over_plain_http_the_cookie_is_not_secure(db: TestDb) {
    let (server, _logins) = beside_synapse(db, "http://127.0.0.1/").await;
    let mut browser = Browser::new(&server);
    let cookie = browser.get(PAGE).await.set_cookie().unwrap();
    assert!(
        cookie.ends_with("; Path=/_homekey/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
}

async fn sign_in_is_under_rc_login_and_a_locked_account_is_signed_out(db: TestDb) {
    let logins = Server::start(db.share().await, "").await;
    let limits = "rc_login:\n  failed_attempts: {per_second: 0.001, burst_count: 2}\n  \
                  address: {per_second: 1000, burst_count: 1000}\n";
    let section = synapse_section("https://matrix.example.com/");
    let server = Server::start(db, &format!("{section}{limits}")).await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    for _ in 0..2 {
        assert_eq!(
            browser.sign_in("", "alice", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = browser.sign_in("", "alice", "alice-pw").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.body.contains("Too many attempts."),
        "{}",
        limited.body
    );
    assert!(limited.body.contains("id=\"sign-in\""));

    server.create_user("bob", "bob-pw").await;
    let profile = browser.signed_in("", "bob", "bob-pw").await;
    assert!(profile.body.contains("@bob:example.com"));
    let root = logins.admin_token("root", "root-pw").await;
    let (status, _) = logins
        .call(
            "PUT",
            "/_synapse/admin/v2/users/@bob:example.com",
            Some(&root),
            Some(json!({"locked": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = browser
        .get(&format!("{PAGE}?action=org.matrix.profile"))
        .await;
    assert!(page.body.contains("id=\"sign-in\""), "{}", page.body);
    assert!(!page.body.contains("@bob:example.com"));
    let again = browser.sign_in("", "bob", "bob-pw").await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(
        again.body.contains("This account is locked."),
        "{}",
        again.body
    );
}

/// The page's sessions on the test database (signed in or not: every row).
pub(crate) async fn web_session_rows(server: &Server) -> i64 {
    server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_web_sessions WHERE id_hash <> $1",
            "",
        )
        .await
}

/// Makes the page ask for the password again (the sign-in is no longer recent).
pub(crate) async fn forget_recent_sign_ins(server: &Server) {
    crate::server::raw_execute(
        &server.db.config,
        "UPDATE homekey_web_sessions SET verified_ms = 0",
        &[],
    )
    .await;
}

async fn deactivating_the_account_needs_the_password_and_the_user_id_typed_and_ends_the_session(
    db: TestDb,
) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let (token, _) = logins.session_for("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let link = "?action=org.matrix.account_deactivate";
    let form = browser.signed_in(link, "alice", "alice-pw").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("id=\"deactivate\""), "{}", form.body);
    assert!(form.body.contains("cannot be undone"), "{}", form.body);
    // Just signed in: the typed user ID is asked, not the password.
    assert!(
        !form.body.contains("Your password, to confirm"),
        "{}",
        form.body
    );
    let profile = browser.get(PAGE).await;
    assert!(
        profile
            .body
            .contains("?action=org.matrix.account_deactivate"),
        "the profile links to it"
    );
    let csrf = form.csrf();

    forget_recent_sign_ins(&server).await;
    let again = browser.get(&format!("{PAGE}{link}")).await;
    assert!(
        again.body.contains("Your password, to confirm"),
        "{}",
        again.body
    );
    let refusals = [
        // No CSRF token.
        (
            "",
            "alice",
            "alice-pw",
            StatusCode::FORBIDDEN,
            "Nothing was changed",
        ),
        (
            csrf.as_str(),
            "",
            "alice-pw",
            StatusCode::BAD_REQUEST,
            "type your user ID (@alice:example.com) exactly",
        ),
        (
            csrf.as_str(),
            "bob",
            "alice-pw",
            StatusCode::BAD_REQUEST,
            "type your user ID (@alice:example.com) exactly",
        ),
        (
            csrf.as_str(),
            " alice",
            "alice-pw",
            StatusCode::BAD_REQUEST,
            "type your user ID (@alice:example.com) exactly",
        ),
        (
            csrf.as_str(),
            "alice",
            "",
            StatusCode::BAD_REQUEST,
            "Enter your password to confirm.",
        ),
        (
            csrf.as_str(),
            "@alice:example.com",
            "guess",
            StatusCode::BAD_REQUEST,
            "Your password is not right.",
        ),
    ];
    for (csrf, confirm, password, status, message) in refusals {
        let mut fields = vec![("confirm", confirm), ("password", password)];
        if !csrf.is_empty() {
            fields.push(("csrf", csrf));
        }
        let refused = browser.post("deactivate", &fields).await;
        assert_eq!(refused.status, status, "{confirm:?}: {}", refused.body);
        assert!(refused.body.contains(message), "{}", refused.body);
        assert!(
            refused.body.contains("id=\"deactivate\""),
            "the form again: {}",
            refused.body
        );
        if status == StatusCode::BAD_REQUEST {
            let kept =
                format!("name=\"confirm\" autocomplete=\"off\" required value=\"{confirm}\"");
            assert!(
                refused.body.contains(&kept),
                "what was typed is kept: {}",
                refused.body
            );
            // The message is beside the field it is about too, and the field says so.
            let field = if message.contains("user ID") {
                "confirm"
            } else {
                "password"
            };
            let at = format!("<p class=\"field-error\" id=\"{field}-error\">");
            let beside = refused
                .body
                .split(&at)
                .nth(1)
                .and_then(|t| t.split("</p>").next());
            assert!(
                beside.is_some_and(|text| text.contains(message)),
                "{field}: {}",
                refused.body
            );
            let marked =
                format!("id=\"{field}\" aria-invalid=\"true\" aria-describedby=\"{field}-error\"");
            assert!(refused.body.contains(&marked), "{marked}: {}", refused.body);
        }
        assert_eq!(logins.whoami(Some(&token)).await.0, StatusCode::OK);
    }
    assert_eq!(logins.login("alice", "alice-pw").await.0, StatusCode::OK);
    // The choice to be erased is kept when the form comes back too.
    let refused = browser
        .post(
            "deactivate",
            &[
                ("csrf", &csrf),
                ("confirm", "bob"),
                ("erase", "on"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .body
            .contains("id=\"erase\" name=\"erase\" value=\"on\" checked"),
        "{}",
        refused.body
    );

    // The localpart alone is enough.
    let done = browser
        .post(
            "deactivate",
            &[
                ("csrf", &csrf),
                ("confirm", "alice"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body
            .contains("The account <strong>@alice:example.com</strong> has been deactivated"),
        "{}",
        done.body
    );
    assert!(!done.body.contains("id=\"sign-out\""), "signed out");
    let cleared = done.set_cookie().expect("the cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(web_session_rows(&server).await, 0, "the session ended");
    assert_eq!(
        logins.whoami(Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Not asked to be erased: not erased.
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM erased_users WHERE user_id = $1",
                "@alice:example.com"
            )
            .await,
        0
    );
    // As Synapse's deactivation, the password went with it.
    let (status, body) = logins.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let signed_in_again = browser.sign_in("", "alice", "alice-pw").await;
    assert_eq!(signed_in_again.status, StatusCode::UNAUTHORIZED);
    assert!(signed_in_again.body.contains("id=\"sign-in\""));
    assert!(!server.log().contains("alice-pw"), "no password in the log");
}

async fn the_last_admin_is_refused_deactivation_on_the_page_with_the_apis_reason(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    let root = logins.admin_token("root", "root-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser
        .signed_in("?action=org.matrix.account_deactivate", "root", "root-pw")
        .await;
    let refused = browser
        .post(
            "deactivate",
            &[("csrf", &form.csrf()), ("confirm", "@root:example.com")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // The client API's own refusal, word for word.
    let (status, api) = logins
        .call(
            "POST",
            "/_matrix/client/v3/account/deactivate",
            Some(&root),
            Some(json!({"auth": crate::server::password_auth("root", "root-pw", None)})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{api}");
    let reason = api["error"].as_str().unwrap();
    assert!(reason.contains("last server admin"), "{api}");
    assert!(
        refused.body.contains(&reason.replace('\'', "&#x27;")),
        "{reason}\n{}",
        refused.body
    );
    assert!(refused.body.contains("Nothing was changed."));
    assert!(refused.body.contains("id=\"deactivate\""), "the form again");
    assert_eq!(logins.whoami(Some(&root)).await.0, StatusCode::OK);
    let profile = browser.get(PAGE).await;
    assert!(
        profile.body.contains("@root:example.com"),
        "still signed in"
    );
}

async fn a_cross_signing_reset_with_synapse_away_says_so_and_changes_nothing(db: TestDb) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let link = "?action=org.matrix.cross_signing_reset";
    let form = browser.signed_in(link, "alice", "alice-pw").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("id=\"allow-reset\""), "{}", form.body);
    assert!(!form.body.contains("Your password, to confirm"));
    let csrf = form.csrf();
    let refused = browser.post("cross-signing-reset", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no CSRF token");
    // This Synapse (127.0.0.1:1) is not there.
    let away = browser
        .post("cross-signing-reset", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        away.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        away.body
    );
    assert!(
        away.body
            .contains("The homeserver could not be reached. Nothing was changed"),
        "{}",
        away.body
    );
    assert!(away.body.contains("id=\"allow-reset\""), "the form again");
    assert!(!away.body.contains("127.0.0.1:1"), "{}", away.body);

    forget_recent_sign_ins(&server).await;
    let page = browser.get(&format!("{PAGE}{link}")).await;
    assert!(page.body.contains("Your password, to confirm"));
    let wrong = browser
        .post(
            "cross-signing-reset",
            &[("csrf", &csrf), ("password", "guess")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("Your password is not right."));
    let log = server.log();
    assert!(!log.contains(SECRET) && !log.contains("alice-pw"), "{log}");
}

async fn a_password_change_on_the_page_gives_the_browser_a_new_session_id(db: TestDb) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser
        .signed_in("?action=password_change", "alice", "alice-pw")
        .await;
    let (old_cookie, old_csrf) = (browser.cookie.clone().unwrap(), form.csrf());
    let changed = browser
        .post(
            "password",
            &[
                ("csrf", &old_csrf),
                ("current_password", "alice-pw"),
                ("new_password", "new-alice-pw"),
                ("new_password_again", "new-alice-pw"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let set = changed.set_cookie().expect("a new session cookie");
    assert!(set.contains("HttpOnly; SameSite=Lax; Secure"), "{set}");
    let new_cookie = browser.cookie.clone().unwrap();
    assert_ne!(new_cookie, old_cookie, "a new session ID");
    assert_ne!(changed.csrf(), old_csrf, "a new CSRF token");
    assert_eq!(web_session_rows(&server).await, 1, "the old row is gone");

    // The new ID is signed in; the old one signs no one in, and its token is worth nothing.
    let profile = browser.get(PAGE).await;
    assert!(
        profile.body.contains("@alice:example.com"),
        "{}",
        profile.body
    );
    let refused = browser
        .post(
            "password",
            &[
                ("csrf", &old_csrf),
                ("current_password", "new-alice-pw"),
                ("new_password", "third-pw"),
                ("new_password_again", "third-pw"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    browser.cookie = Some(old_cookie);
    let old = browser.get(PAGE).await;
    assert!(old.body.contains("id=\"sign-in\""), "{}", old.body);
    assert!(!old.body.contains("@alice:example.com"));
}

async fn cookie_less_visits_write_no_session_row_until_someone_signs_in(db: TestDb) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let started = std::time::Instant::now();
    for i in 0..300 {
        let mut visitor = Browser::new(&server);
        let page = visitor
            .get(&format!("{PAGE}?action=org.matrix.profile&n={i}"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.set_cookie().is_some(), "a cookie all the same");
    }
    let per_visit = started.elapsed() / 300;
    // Made-up cookies, and a refused sign-in, write nothing either.
    for i in 0..50 {
        let mut visitor = Browser::new(&server);
        visitor.cookie = Some(format!("homekey_session={:0>43}", i));
        assert_eq!(visitor.get(PAGE).await.status, StatusCode::OK);
    }
    let mut browser = Browser::new(&server);
    let wrong = browser.sign_in("", "alice", "not-alice-pw").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(web_session_rows(&server).await, 0);

    // The sign-in form still works (its CSRF token is the cookie's) and writes one row.
    let profile = browser.signed_in("", "alice", "alice-pw").await;
    assert!(
        profile.body.contains("@alice:example.com"),
        "{}",
        profile.body
    );
    assert_eq!(web_session_rows(&server).await, 1);
    // Another visitor's form token is refused with this browser's cookie.
    let mut other = Browser::new(&server);
    let other_csrf = other.get(PAGE).await.csrf();
    let mut stranger = Browser::new(&server);
    stranger.get(PAGE).await;
    let refused = stranger
        .post(
            "sign-in",
            &[
                ("csrf", &other_csrf),
                ("user", "alice"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(web_session_rows(&server).await, 1);
    eprintln!("a cookie-less visit of the sign-in page: {per_visit:?}, no row written");
}

/// A headless chromium (`--headless=new`) through Debian's chromedriver, killed when
/// dropped, and where its screenshots go (`$CARGO_TARGET_DIR/account-page/`).
pub(crate) struct Chromium {
    pub(crate) client: fantoccini::Client,
    _driver: Chromedriver,
    shots: std::path::PathBuf,
}

impl Chromium {
    /// chromium, or `None` (a skip; under CI a failure) without chromedriver.
    pub(crate) async fn start(test: &str) -> Option<Chromium> {
        Chromium::start_with(test, &[]).await
    }

    /// [`Chromium::start`] in the dark: chromium's preferred colour scheme (0 is dark), and
    /// its own dark theme.
    pub(crate) async fn start_dark(test: &str) -> Option<Chromium> {
        let dark = [
            "--blink-settings=preferredColorScheme=0",
            "--force-dark-mode",
        ];
        Chromium::start_with(test, &dark.map(String::from)).await
    }

    /// [`Chromium::start`] with `extra` command-line flags.
    pub(crate) async fn start_with(test: &str, extra: &[String]) -> Option<Chromium> {
        const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            crate::support::skip(
                test,
                "no /usr/bin/chromedriver (apt-get install chromium chromium-driver)",
            );
            return None;
        }
        let port = crate::support::free_port();
        // In a process group of its own, with the browsers it starts: dropped (a test that
        // failed or finished), the whole group goes, not chromedriver alone.
        let driver = Chromedriver(
            std::os::unix::process::CommandExt::process_group(
                std::process::Command::new(CHROMEDRIVER)
                    .arg(format!("--port={port}"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null()),
                0,
            )
            .spawn()
            .unwrap(),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1000,900",
            "--no-proxy-server",
        ]
        .map(String::from)
        .to_vec();
        args.extend_from_slice(extra);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
        let mut client = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(connected) => {
                    client = Some(connected);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        let shots = std::path::PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
        )
        .join("account-page");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Chromium {
            client: client.expect("chromedriver answers"),
            _driver: driver,
            shots,
        })
    }

    /// A screenshot of the page as it is, as `{name}.png`.
    pub(crate) async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the browser; says where the screenshots are.
    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
        eprintln!("screenshots of the account page: {}", self.shots.display());
    }
}

/// The page in chromium: sign in, change the password signing out the other devices, see
/// the sessions.
#[tokio::test]
async fn in_a_real_browser_sign_in_change_the_password_and_see_the_sessions() {
    use fantoccini::Locator;
    let test = "in_a_real_browser_sign_in_change_the_password_and_see_the_sessions";
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let db = TestDb::sqlite().await;
    let (server, logins) = beside_synapse(db, "http://127.0.0.1/").await;
    server.create_user("alice", "alice-pw").await;
    let (token, phone) = logins.session_for("alice", "alice-pw").await;
    let client = chromium.client.clone();
    let shot = |name: &'static str| chromium.shot(name);

    let result = async {
        client
            .goto(&format!("{}{PAGE}?action=password_change", server.base))
            .await?;
        shot("1-sign-in").await;
        sign_in_with(&client, "alice", "alice-pw").await?;
        client
            .wait()
            .for_element(Locator::Id("change-password"))
            .await?;
        shot("2-password").await;
        change_password_signing_out_the_others(&client, "alice-pw", "browser-pw").await?;
        shot("3-password-changed").await;
        // Synapse would be told the same; here homekey refuses the phone's token at once.
        assert_eq!(
            logins.whoami(Some(&token)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (_, laptop) = logins.session_for("alice", "browser-pw").await;
        client
            .find(Locator::LinkText("Sessions"))
            .await?
            .click()
            .await?;
        let table = client.wait().for_element(Locator::Id("sessions")).await?;
        let listed = table.text().await?;
        assert!(listed.contains(&laptop), "{listed}");
        assert!(!listed.contains(&phone), "{listed}");
        shot("4-sessions").await;
        // The session cookie is out of the page's reach.
        let script_cookies = client.execute("return document.cookie", vec![]).await?;
        assert_eq!(script_cookies, json!(""));
        client.find(Locator::Id("sign-out")).await?.click().await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    chromium.close().await;
    result.unwrap();
}

/// In chromium, on the sign-in form: `user` and `password`, and sign in.
pub(crate) async fn sign_in_with(
    client: &fantoccini::Client,
    user: &str,
    password: &str,
) -> Result<(), fantoccini::error::CmdError> {
    use fantoccini::Locator;
    for (field, value) in [("user", user), ("password", password)] {
        client
            .find(Locator::Id(field))
            .await?
            .send_keys(value)
            .await?;
    }
    client.find(Locator::Id("sign-in")).await?.click().await
}

/// In chromium, on the password form: `current`, `new` twice, the other devices signed out;
/// waits for the page to say so.
pub(crate) async fn change_password_signing_out_the_others(
    client: &fantoccini::Client,
    current: &str,
    new: &str,
) -> Result<(), fantoccini::error::CmdError> {
    use fantoccini::Locator;
    for (field, value) in [
        ("current_password", current),
        ("new_password", new),
        ("new_password_again", new),
    ] {
        client
            .find(Locator::Id(field))
            .await?
            .send_keys(value)
            .await?;
    }
    for button in ["sign_out_others", "change-password"] {
        client.find(Locator::Id(button)).await?.click().await?;
    }
    let notice = client.wait().for_element(Locator::Id("notice")).await?;
    assert_eq!(
        notice.text().await?,
        "Your password was changed, and your other devices were signed out."
    );
    Ok(())
}

/// chromedriver, killed when the test ends however it ends.
struct Chromedriver(std::process::Child);

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's ID is chromedriver's PID (`process_group(0)`).
        if let Ok(group) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: killpg only sends a signal; the group is ours.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Beside the real Synapse 1.163.2: a session ended on the page, and the other devices signed
/// out by a password change there, are refused by Synapse at once (the very next request).
#[tokio::test]
async fn beside_the_real_synapse_what_the_page_signs_out_synapse_refuses_at_once() {
    const E2E_SECRET: &str = "account-page-e2e-secret-0123456789abcdefgh";
    let test = "beside_the_real_synapse_what_the_page_signs_out_synapse_refuses_at_once";
    let Some(venv) = crate::support::synapse_venv(test) else {
        return;
    };
    let port = crate::support::free_port();
    let mut synapse = crate::synapse_interop::Synapse::prepare_with_auth(
        venv,
        &format!(
            "public_baseurl: https://matrix.example.com/\n\
             password_config:\n  enabled: false\n\
             matrix_authentication_service:\n  enabled: true\n  \
             endpoint: http://127.0.0.1:{port}/\n  secret: {E2E_SECRET}\n"
        ),
    );
    let config = format!(
        "listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n\
         public_baseurl: https://matrix.example.com/\n\
         synapse:\n  endpoint: {}\n  secret: {E2E_SECRET}\n",
        synapse.url("/")
    );
    let homekey = Server::start(TestDb::sqlite().await, &config).await;
    synapse.start().await;
    homekey.create_user("alice", "alice-pw").await;
    let (phone, phone_device) = homekey.session_for("alice", "alice-pw").await;
    let (laptop, _) = homekey.session_for("alice", "alice-pw").await;
    assert_eq!(synapse.whoami(&phone).await.0, StatusCode::OK);
    assert_eq!(synapse.whoami(&laptop).await.0, StatusCode::OK);

    let mut browser = Browser::new(&homekey);
    let link = format!("?action=org.matrix.session_end&device_id={phone_device}");
    let confirm = browser.signed_in(&link, "alice", "alice-pw").await;
    let ended = browser
        .post(
            "session-end",
            &[("csrf", &confirm.csrf()), ("device_id", &phone_device)],
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert_eq!(
        synapse.whoami(&phone).await.0,
        StatusCode::UNAUTHORIZED,
        "{}",
        homekey.log()
    );
    assert_eq!(synapse.whoami(&laptop).await.0, StatusCode::OK);

    let changed = browser
        .post(
            "password",
            &[
                ("csrf", &confirm.csrf()),
                ("current_password", "alice-pw"),
                ("new_password", "alice-pw-2"),
                ("new_password_again", "alice-pw-2"),
                ("sign_out_others", "on"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(synapse.whoami(&laptop).await.0, StatusCode::UNAUTHORIZED);
    let (fresh, _) = homekey.session_for("alice", "alice-pw-2").await;
    assert_eq!(synapse.whoami(&fresh).await.0, StatusCode::OK);
}

/// A cross-signing master key of `user_id`'s, made up (32 random bytes, as Synapse checks).
pub(crate) fn master_key(user_id: &str) -> serde_json::Value {
    use base64::Engine;
    let public: [u8; 32] = rand::random();
    let public = base64::engine::general_purpose::STANDARD_NO_PAD.encode(public);
    json!({
        "user_id": user_id,
        "usage": ["master"],
        "keys": {format!("ed25519:{public}"): public},
    })
}

/// `POST /_matrix/client/v3/keys/device_signing/upload` of `master_key` to `base`.
pub(crate) async fn upload_master_key(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    master_key: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let response = http
        .post(format!(
            "{base}/_matrix/client/v3/keys/device_signing/upload"
        ))
        .bearer_auth(token)
        .json(&json!({"master_key": master_key}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// Synapse's answer to a second cross-signing key when delegating: the `m.oauth` stage (and
/// MSC4312's unstable name), both linking to the page's deep link. Returns the link.
pub(crate) fn assert_oauth_stage(status: StatusCode, body: &serde_json::Value) -> String {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["flows"],
        json!([{"stages": ["m.oauth"]}, {"stages": ["org.matrix.cross_signing_reset"]}]),
        "{body}"
    );
    let url = body["params"]["m.oauth"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        url,
        "https://matrix.example.com/_homekey/account/?action=org.matrix.cross_signing_reset"
    );
    assert_eq!(
        body["params"]["org.matrix.cross_signing_reset"]["url"],
        json!(url)
    );
    url
}

/// Beside the real Synapse 1.163.2: a second cross-signing key is refused by Synapse with the
/// `m.oauth` stage naming the page's deep link; approved there, the same upload is accepted.
/// Then the account deactivated on the page is deactivated in Synapse, its token refused.
#[tokio::test]
async fn beside_the_real_synapse_the_page_approves_a_cross_signing_reset_and_deactivates() {
    let test = "beside_the_real_synapse_the_page_approves_a_cross_signing_reset_and_deactivates";
    let Some(venv) = crate::support::synapse_venv(test) else {
        return;
    };
    let (synapse, homekey) = crate::synapse_delegation::synapse_beside_homekey(venv).await;
    homekey.create_user("alice", "alice-pw").await;
    let root = homekey.admin_token("root", "root-pw").await;
    let (token, _) = homekey.session_for("alice", "alice-pw").await;
    let base = synapse.url("");
    let user_id = "@alice:example.com";

    // The first upload needs no approval (MSC3967); the same keys again neither.
    let first = master_key(user_id);
    let (status, body) = upload_master_key(&synapse.http, &base, &token, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    let (status, _) = upload_master_key(&synapse.http, &base, &token, &first).await;
    assert_eq!(status, StatusCode::OK);
    let second = master_key(user_id);
    let (status, body) = upload_master_key(&synapse.http, &base, &token, &second).await;
    let url = assert_oauth_stage(status, &body);

    // The user follows the link (here to homekey directly), signs in and approves.
    let link = url
        .strip_prefix("https://matrix.example.com/_homekey/account/")
        .unwrap();
    let mut browser = Browser::new(&homekey);
    let form = browser.signed_in(link, "alice", "alice-pw").await;
    assert!(form.body.contains("id=\"allow-reset\""), "{}", form.body);
    let approved = browser
        .post("cross-signing-reset", &[("csrf", &form.csrf())])
        .await;
    assert_eq!(
        approved.status,
        StatusCode::OK,
        "{}\n{}",
        approved.body,
        homekey.log()
    );
    assert!(
        approved
            .body
            .contains("Go back to your client within 10 minutes"),
        "{}",
        approved.body
    );
    let (status, body) = upload_master_key(&synapse.http, &base, &token, &second).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    let (status, keys) = synapse_post(
        &synapse,
        "/_matrix/client/v3/keys/query",
        &token,
        json!({"device_keys": {user_id: []}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(
        keys["master_keys"][user_id]["keys"], second["keys"],
        "{keys}"
    );

    // Deactivation on the page reaches Synapse, and so does the choice to be erased.
    let form = browser
        .get(&format!("{PAGE}?action=org.matrix.account_deactivate"))
        .await;
    assert!(form.body.contains("id=\"erase\""), "{}", form.body);
    let done = browser
        .post(
            "deactivate",
            &[
                ("csrf", &form.csrf()),
                ("confirm", user_id),
                ("erase", "on"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("has been deactivated and erased"),
        "{}",
        done.body
    );
    assert_eq!(synapse.whoami(&token).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = synapse
        .get(&format!("/_synapse/admin/v2/users/{user_id}"), &root)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["deactivated"], json!(true), "{body}");
    assert_eq!(body["erased"], json!(true), "{body}");
    let log = homekey.log();
    assert!(!log.contains(crate::synapse_delegation::SECRET), "{log}");
    assert!(!log.contains(&token) && !log.contains("alice-pw"), "{log}");
}

/// `POST path` on Synapse with a JSON body and a token.
async fn synapse_post(
    synapse: &crate::synapse_interop::Synapse,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let response = synapse
        .http
        .post(synapse.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// homekey on Synapse's own database (with a `synapse:` section all the same): no sessions
/// table and no Synapse served, so every page of the account page answers 503 and says why,
/// a GET or a POST, and nothing is written.
#[tokio::test]
async fn on_a_synapse_database_every_page_answers_503_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homeserver.db");
    {
        use sqlx::Connection;
        let url = format!("sqlite:{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(crate::store::SYNAPSE_SQLITE_SCHEMA)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let db = TestDb::external(homekey::config::DatabaseConfig::Sqlite { path }).await;
    let server = Server::start(db, &synapse_section("https://matrix.example.com/")).await;
    let mut browser = Browser::new(&server);
    let link = format!("{PAGE}?action=org.matrix.account_deactivate");
    let answers = [
        browser.get(PAGE).await,
        browser.get(&link).await,
        browser
            .post("sign-in", &[("user", "old"), ("password", "x")])
            .await,
        browser.post("deactivate", &[("confirm", "old")]).await,
    ];
    for answer in &answers {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.body
        );
        assert!(
            answer
                .body
                .contains("homekey runs on Synapse&#x27;s database"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("mailto:ops@example.com"));
        assert!(answer.set_cookie().is_none(), "no session");
        assert_security_headers(answer);
    }
}

/// axe-core's script: `HOMEKEY_TEST_AXE`, the `axe.min.js` of the pinned npm package that
/// `.ci/run` installs. `None` without it: the accessibility check is skipped, and says so
/// (under CI a failure).
pub(crate) fn axe_core(test: &str) -> Option<String> {
    let Some(path) = std::env::var_os("HOMEKEY_TEST_AXE").map(std::path::PathBuf::from) else {
        crate::support::skip(
            test,
            "HOMEKEY_TEST_AXE is not set: the accessibility check (axe-core) is skipped \
             (.ci/run installs axe-core from npm)",
        );
        return None;
    };
    match std::fs::read_to_string(&path) {
        Ok(script) => Some(script),
        Err(err) => {
            crate::support::skip(
                test,
                &format!(
                    "cannot read axe-core at {}: {err}; the accessibility check is skipped",
                    path.display()
                ),
            );
            None
        }
    }
}

/// axe-core run in the page chromium shows (injected through WebDriver: the page's CSP
/// allows no script, and needs none): its serious and critical violations, one line each
/// with the elements concerned, and how many violations of any impact there were.
pub(crate) async fn axe_violations(
    client: &fantoccini::Client,
    axe: &str,
) -> Result<(Vec<String>, usize), fantoccini::error::CmdError> {
    let injected = client
        .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
        .await?;
    assert_eq!(injected, json!("object"), "axe-core did not load");
    let violations = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\n\
             axe.run(document, {resultTypes: ['violations']})\n\
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\n\
                 nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))\n\
               .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            vec![],
        )
        .await?;
    let violations = violations.as_array().cloned().unwrap_or_default();
    let serious = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| {
            format!(
                "{} ({}): {} [{}]",
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or("?"),
                v["nodes"]
                    .as_array()
                    .map(|nodes| nodes
                        .iter()
                        .filter_map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(" | "))
                    .unwrap_or_default()
            )
        })
        .collect();
    Ok((serious, violations.len()))
}

/// The widths a page is looked at: a desktop's and a phone's.
pub(crate) const DESKTOP: (u32, u32) = (1000, 900);
pub(crate) const PHONE: (u32, u32) = (360, 900);

/// One colour scheme's browser on one server: every page of the account page is opened,
/// screenshot at each width and checked with axe-core. Returns the problems found.
pub(crate) struct Tour<'a> {
    pub(crate) chromium: &'a Chromium,
    /// `light` or `dark`, and the server's kind: the screenshots' names.
    pub(crate) prefix: String,
    pub(crate) widths: &'a [(&'static str, (u32, u32))],
    pub(crate) axe: Option<&'a str>,
    pub(crate) problems: Vec<String>,
    pub(crate) checked: usize,
}

impl Tour<'_> {
    /// The page as it is now, at every width: a screenshot, axe-core, no sideways scroll.
    pub(crate) async fn check(&mut self, name: &str) -> Result<(), fantoccini::error::CmdError> {
        let client = &self.chromium.client;
        for (width_name, (width, height)) in self.widths {
            client.set_window_size(*width, *height).await?;
            let inner = client.execute("return window.innerWidth", vec![]).await?;
            let overflow = client
                .execute(
                    "return document.documentElement.scrollWidth - window.innerWidth",
                    vec![],
                )
                .await?;
            if *width_name == "phone" {
                assert!(
                    inner.as_u64().is_some_and(|w| w <= 400),
                    "not a phone's width: {inner}"
                );
            }
            if overflow.as_i64().is_none_or(|o| o > 0) {
                self.problems.push(format!(
                    "{}-{width_name} {name}: wider than the window by {overflow} px",
                    self.prefix
                ));
            }
            self.chromium
                .shot(&format!("{}-{width_name}-{name}", self.prefix))
                .await;
            if let Some(axe) = self.axe {
                let (serious, all) = axe_violations(client, axe).await?;
                self.checked += 1;
                eprintln!(
                    "axe-core {}-{width_name} {name}: {} serious or critical of {all} violations",
                    self.prefix,
                    serious.len()
                );
                for violation in serious {
                    self.problems
                        .push(format!("{}-{width_name} {name}: {violation}", self.prefix));
                }
            }
        }
        client.set_window_size(DESKTOP.0, DESKTOP.1).await
    }

    /// Every page, signed out then in, and a form's error; ends signed out.
    async fn every_page(
        &mut self,
        server: &Server,
        device: &str,
    ) -> Result<(), fantoccini::error::CmdError> {
        use fantoccini::Locator;
        let client = self.chromium.client.clone();
        let page = |query: &str| format!("{}{PAGE}{query}", server.base);
        client.goto(&page("?action=password_change")).await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        // Every control by keyboard, in order, each with a visible focus; with an `email:`
        // section, "Forgot password?" after the password.
        let mut controls = vec!["#main", "user", "password"];
        if client.find(Locator::Id("forgot-password")).await.is_ok() {
            controls.push("forgot-password");
        }
        controls.push("sign-in");
        assert_eq!(tab_through(&client, controls.len()).await?, controls);
        self.check("1-sign-in").await?;
        // A sign-in refused: the form again with the message.
        sign_in_with(&client, "alice", "not-the-password").await?;
        client.wait().for_element(Locator::Id("error")).await?;
        self.check("2-sign-in-refused").await?;
        client.find(Locator::Id("user")).await?.clear().await?;
        sign_in_with(&client, "alice", "alice-pw").await?;
        client
            .wait()
            .for_element(Locator::Id("change-password"))
            .await?;
        assert_eq!(
            tab_through(&client, 11).await?,
            [
                "#main",
                "./?action=org.matrix.profile",
                "./?action=password_change",
                "./?action=email_addresses",
                "./?action=org.matrix.sessions_list",
                "sign-out",
                "current_password",
                "new_password",
                "new_password_again",
                "sign_out_others",
                "change-password",
            ]
        );
        self.check("3-password").await?;
        // A form's error beside its field, and at the top of the page.
        for (field, value) in [
            ("current_password", "alice-pw"),
            ("new_password", "one-new-pw"),
            ("new_password_again", "another-new-pw"),
        ] {
            client
                .find(Locator::Id(field))
                .await?
                .send_keys(value)
                .await?;
        }
        client
            .find(Locator::Id("change-password"))
            .await?
            .click()
            .await?;
        let beside = client
            .wait()
            .for_element(Locator::Id("new_password_again-error"))
            .await?;
        let beside = beside.text().await?;
        assert!(beside.contains("The two new passwords differ."), "{beside}");
        let input = client.find(Locator::Id("new_password_again")).await?;
        assert_eq!(input.attr("aria-invalid").await?.as_deref(), Some("true"));
        assert_eq!(
            input.attr("aria-describedby").await?.as_deref(),
            Some("new_password_again-error")
        );
        self.check("4-password-error").await?;
        for (name, query) in [
            ("5-profile", "?action=org.matrix.profile".to_owned()),
            ("6-sessions", "?action=org.matrix.sessions_list".to_owned()),
            (
                "7-session",
                format!("?action=org.matrix.session_view&device_id={device}"),
            ),
            (
                "8-deactivate",
                "?action=org.matrix.account_deactivate".to_owned(),
            ),
            (
                "9-cross-signing-reset",
                "?action=org.matrix.cross_signing_reset".to_owned(),
            ),
            ("10-emails", "?action=email_addresses".to_owned()),
        ] {
            client.goto(&page(&query)).await?;
            client.wait().for_element(Locator::Css("main h1")).await?;
            self.check(name).await?;
        }
        client.find(Locator::Id("sign-out")).await?.click().await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        Ok(())
    }
}

/// Tabs through the page from its start, `presses` times: what took the focus each time (its
/// id, else its link), each checked to draw a focus ring (`:focus-visible`, an outline of at
/// least 2 px). The focus is taken away again after.
pub(crate) async fn tab_through(
    client: &fantoccini::Client,
    presses: usize,
) -> Result<Vec<String>, fantoccini::error::CmdError> {
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    client
        .execute(
            "document.activeElement && document.activeElement.blur();",
            vec![],
        )
        .await?;
    let mut reached = Vec::new();
    for _ in 0..presses {
        client.active_element().await?.send_keys(&tab).await?;
        let focused = client
            .execute(
                "const e = document.activeElement; const s = getComputedStyle(e);\n\
                 return [e.id || e.getAttribute('href') || e.tagName, s.outlineStyle,\n\
                         parseFloat(s.outlineWidth), e.matches(':focus-visible')];",
                vec![],
            )
            .await?;
        let name = focused[0].as_str().unwrap_or_default().to_owned();
        assert!(
            focused[1] != json!("none")
                && focused[2].as_f64().is_some_and(|w| w >= 2.0)
                && focused[3] == json!(true),
            "no visible focus on {name}: {focused}"
        );
        reached.push(name);
    }
    client
        .execute(
            "document.activeElement && document.activeElement.blur();",
            vec![],
        )
        .await?;
    Ok(reached)
}

/// The page's background colour as chromium computed it, and whether chromium prefers dark.
pub(crate) async fn scheme_applied(
    client: &fantoccini::Client,
) -> Result<(String, bool), fantoccini::error::CmdError> {
    let background = client
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await?;
    let dark = client
        .execute(
            "return window.matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        )
        .await?;
    Ok((
        background.as_str().unwrap_or_default().to_owned(),
        dark.as_bool().unwrap_or(false),
    ))
}

/// Every page of the account page in chromium, light and dark, at a desktop's and a phone's
/// width, with homekey's own colours and with an operator's branding (a pale accent that
/// homekey must darken and lighten to keep readable): axe-core finds no serious or critical
/// violation, and nothing is wider than a phone. Screenshots in
/// `$CARGO_TARGET_DIR/account-page/design-*.png`.
#[tokio::test]
async fn in_a_real_browser_every_page_light_and_dark_on_a_phone_and_a_desktop_passes_axe_core() {
    let test =
        "in_a_real_browser_every_page_light_and_dark_on_a_phone_and_a_desktop_passes_axe_core";
    let axe = axe_core(test);
    let Some(light) = Chromium::start(test).await else {
        return;
    };
    // Dark: chromium's preferred colour scheme (0 is dark), and its own dark theme.
    let Some(dark) = Chromium::start_dark(test).await else {
        return;
    };
    let db = TestDb::sqlite().await;
    let (plain, logins) = beside_synapse(db.share().await, "http://127.0.0.1/").await;
    plain.create_user("alice", "alice-pw").await;
    // An address, so that the e-mail page lists one (with its button).
    plain
        .store()
        .change_threepid(
            "@alice:example.com",
            &homekey::threepid::Threepid::email("alice@example.com").unwrap(),
            true,
            0,
            None,
        )
        .await
        .unwrap();
    let (_, phone) = logins.session_for("alice", "alice-pw").await;
    let (token, _) = logins.session_for("alice", "alice-pw").await;
    let (status, _) = logins
        .call(
            "PUT",
            &format!("/_matrix/client/v3/devices/{phone}"),
            Some(&token),
            Some(json!({"display_name": "Alice's phone"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let logo_dir = tempfile::tempdir().unwrap();
    let branded = Server::start(
        db,
        &format!(
            "{}{}{}",
            synapse_section("http://127.0.0.1/"),
            branding_section(logo_dir.path(), LogoFile::Svg, "#ffcc00"),
            crate::mail::email_section(crate::support::free_port(), ""),
        ),
    )
    .await;
    // A code waiting: the e-mail page shows its form too (and, with `email:`, the add form).
    crate::server::raw_execute(
        &branded.db.config,
        "INSERT INTO homekey_email_codes (user_id, address, code, expires_ms, tries_left) \
         VALUES ('@alice:example.com', 'new@example.com', 'x', 99999999999999, 5)",
        &[],
    )
    .await;

    let mut problems = Vec::new();
    let mut checked = 0;
    let widths = [("desktop", DESKTOP), ("phone", PHONE)];
    let result = async {
        // The check can fail: a nameless button and an image without a text alternative
        // added to a page are found.
        if let Some(axe) = axe.as_deref() {
            light.client.goto(&format!("{}{PAGE}", plain.base)).await?;
            light
                .client
                .execute(
                    "const main = document.querySelector('main');\n\
                     main.appendChild(document.createElement('button'));\n\
                     const img = document.createElement('img'); img.src = 'x.png';\n\
                     main.appendChild(img);",
                    vec![],
                )
                .await?;
            let (serious, _) = axe_violations(&light.client, axe).await?;
            let found = serious.join("\n");
            assert!(
                found.contains("button-name") && found.contains("image-alt"),
                "axe-core missed a planted violation: {found:?}"
            );
        }
        let mut backgrounds = Vec::new();
        for (scheme, chromium) in [("light", &light), ("dark", &dark)] {
            for (kind, server, widths) in [
                ("plain", &plain, &widths[..]),
                ("branded", &branded, &widths[..1]),
            ] {
                let mut tour = Tour {
                    chromium,
                    prefix: format!("design-{kind}-{scheme}"),
                    widths,
                    axe: axe.as_deref(),
                    problems: Vec::new(),
                    checked: 0,
                };
                tour.every_page(server, &phone).await?;
                problems.append(&mut tour.problems);
                checked += tour.checked;
            }
            // The scheme really is applied: the stylesheet's own background for it.
            let (background, prefers_dark) = scheme_applied(&chromium.client).await?;
            assert_eq!(prefers_dark, scheme == "dark", "{scheme}");
            backgrounds.push(background);
        }
        assert_eq!(
            backgrounds,
            ["rgb(244, 245, 247)", "rgb(17, 19, 24)"],
            "light and dark backgrounds"
        );
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    light.close().await;
    dark.close().await;
    result.unwrap();
    match axe {
        Some(_) => eprintln!("axe-core checked {checked} page views"),
        None => eprintln!("axe-core: SKIPPED (HOMEKEY_TEST_AXE not set); screenshots only"),
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A logo for a test: which kind of file.
#[derive(Clone, Copy)]
enum LogoFile {
    Png,
    Svg,
}

/// A 1×1 PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The bytes of `kind`'s test logo.
fn logo_bytes(kind: LogoFile) -> Vec<u8> {
    use base64::Engine;
    match kind {
        LogoFile::Png => base64::engine::general_purpose::STANDARD
            .decode(PNG_1X1)
            .unwrap(),
        LogoFile::Svg => b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
              viewBox=\"0 0 32 32\"><rect width=\"32\" height=\"32\" rx=\"8\" fill=\"#ffcc00\"/>\
              <path d=\"M9 23V9h4v5h6V9h4v14h-4v-5h-6v5z\" fill=\"#1b1d22\"/></svg>\n"
            .to_vec(),
    }
}

/// A `branding:` section with every key, its logo written in `dir`.
fn branding_section(dir: &std::path::Path, logo: LogoFile, accent: &str) -> String {
    let path = dir.join(match logo {
        LogoFile::Png => "logo.png",
        LogoFile::Svg => "logo.svg",
    });
    std::fs::write(&path, logo_bytes(logo)).unwrap();
    format!(
        "branding:\n  service_name: Example Chat\n  logo_path: {}\n  accent_color: \"{accent}\"\n  \
         tos_uri: https://example.com/terms\n  policy_uri: https://example.com/privacy\n",
        path.display()
    )
}

/// `branding:`: the service's name in every page's header and title, the logo served by
/// homekey with its content type, the accent's stylesheet, the terms and policy at the foot
/// of every page; without it, the server's name and homekey's own colours, no links.
#[tokio::test]
async fn the_branding_keys_show_on_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite().await;
    let plain = Server::start(
        db.share().await,
        &synapse_section("https://matrix.example.com/"),
    )
    .await;
    let server = Server::start(
        db,
        &format!(
            "{}{}",
            synapse_section("https://matrix.example.com/"),
            branding_section(dir.path(), LogoFile::Png, "#1A4D2E")
        ),
    )
    .await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let sign_in = browser.get(PAGE).await;
    let profile = browser.signed_in("", "alice", "alice-pw").await;
    let sessions = browser
        .get(&format!("{PAGE}?action=org.matrix.sessions_list"))
        .await;
    for page in [&sign_in, &profile, &sessions] {
        assert!(
            page.body
                .contains("<span class=\"brand-name\" id=\"service-name\">Example Chat</span>"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(" · Example Chat</title>"),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains("src=\"&#x2f;_homekey&#x2f;static&#x2f;logo.png\""),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains("<a id=\"tos\" href=\"https:&#x2f;&#x2f;example.com&#x2f;terms\">"),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains("<a id=\"policy\" href=\"https:&#x2f;&#x2f;example.com&#x2f;privacy\">"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(
                "<link rel=\"stylesheet\" href=\"&#x2f;_homekey&#x2f;static&#x2f;brand.css\">"
            ),
            "{}",
            page.body
        );
    }
    let logo = browser.get("/_homekey/static/logo.png").await;
    assert_eq!(logo.status, StatusCode::OK);
    assert_eq!(logo.header("content-type"), "image/png");
    assert_security_headers(&logo);
    let bytes = reqwest::get(server.url("/_homekey/static/logo.png"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), logo_bytes(LogoFile::Png).as_slice());
    assert_eq!(
        browser.get("/_homekey/static/logo.svg").await.status,
        StatusCode::NOT_FOUND,
        "only the kind it is"
    );
    let brand = browser.get("/_homekey/static/brand.css").await;
    assert_eq!(brand.status, StatusCode::OK);
    assert_eq!(brand.header("content-type"), "text/css; charset=utf-8");
    assert_security_headers(&brand);
    // Dark enough for white text on white: kept as given in the light scheme; lightened
    // for text on the dark one.
    assert!(
        brand
            .body
            .contains(":root{--accent:#1a4d2e;--on-accent:#ffffff;--accent-text:#1a4d2e}"),
        "{}",
        brand.body
    );
    assert!(
        brand.body.contains("@media (prefers-color-scheme: dark)"),
        "{}",
        brand.body
    );
    let csp = logo.header("content-security-policy");
    assert!(csp.contains("img-src 'self'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");

    // Without the section: the server's name, homekey's accent, no logo, no links.
    let mut browser = Browser::new(&plain);
    let page = browser.get(PAGE).await;
    assert!(
        page.body
            .contains("<span class=\"brand-name\" id=\"service-name\">example.com</span>"),
        "{}",
        page.body
    );
    for absent in ["id=\"logo\"", "id=\"tos\"", "id=\"policy\""] {
        assert!(!page.body.contains(absent), "{absent}: {}", page.body);
    }
    assert_eq!(
        browser.get("/_homekey/static/logo.png").await.status,
        StatusCode::NOT_FOUND
    );
    let brand = browser.get("/_homekey/static/brand.css").await;
    assert!(brand.body.contains("#2f5fd0"), "{}", brand.body);
}

/// A bad `branding:` value stops `homekey serve` at start-up with one line naming the key.
#[test]
fn bad_branding_values_are_refused_at_start_up_naming_the_key() {
    use crate::support::{HOMEKEY, run_binary, stderr};
    let dir = tempfile::tempdir().unwrap();
    let not_an_image = dir.path().join("logo.png");
    std::fs::write(&not_an_image, "GIF89a, not a PNG").unwrap();
    let too_big = dir.path().join("big.svg");
    let mut big = b"<svg xmlns=\"http://www.w3.org/2000/svg\">".to_vec();
    big.resize(512 * 1024 + 1, b' ');
    std::fs::write(&too_big, big).unwrap();
    let cases = [
        (
            "  accent_color: red\n".to_owned(),
            "branding.accent_color",
            "expected a colour as #rgb or #rrggbb",
        ),
        (
            "  accent_color: #336699\n".to_owned(),
            "branding.accent_color",
            "has no value: write the colour in quotes",
        ),
        (
            "  accent_color: \"#33669\"\n".to_owned(),
            "branding.accent_color",
            "found \"#33669\"",
        ),
        (
            "  tos_uri: javascript:alert(1)\n".to_owned(),
            "branding.tos_uri",
            "expected an https:// or http:// URL",
        ),
        (
            "  policy_uri: example.com/privacy\n".to_owned(),
            "branding.policy_uri",
            "expected an https:// or http:// URL",
        ),
        (
            format!("  logo_path: {}/missing.png\n", dir.path().display()),
            "branding.logo_path",
            "cannot read",
        ),
        (
            format!("  logo_path: {}\n", not_an_image.display()),
            "branding.logo_path",
            "is not a PNG, JPEG, WebP or SVG image",
        ),
        (
            format!("  logo_path: {}\n", too_big.display()),
            "branding.logo_path",
            "is larger than 512 KiB",
        ),
        (
            "  service_name: \"\"\n".to_owned(),
            "branding.service_name",
            "may not be empty",
        ),
        (
            "  accent_colour: \"#336699\"\n".to_owned(),
            "branding.accent_colour",
            "unknown field `accent_colour`, expected one of",
        ),
    ];
    for (section, key, expected) in cases {
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(
            &config,
            format!(
                "server_name: example.com\npublic_baseurl: https://matrix.example.com/\n\
                 listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n\
                 database: {{name: sqlite3, args: {{database: {}/db}}}}\n\
                 synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: {SECRET}\n\
                 branding:\n{section}",
                dir.path().display()
            ),
        )
        .unwrap();
        let out = run_binary(
            HOMEKEY,
            &["serve", "-c", config.to_str().unwrap()],
            b"",
            &[],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{section}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{section}: {err}");
        assert!(err.contains(&format!("`{key}`: ")), "{section}: {err}");
        assert!(err.contains(expected), "{section}: {err}");
        assert!(!err.contains(SECRET), "{err}");
    }
}
