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

fn synapse_section(public_baseurl: &str) -> String {
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
            answer.body.contains("Wrong user name or password."),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("id=\"sign-in\""), "the form again");
        assert!(answer.set_cookie().is_none(), "no new session");
    }
    assert!(wrong.body.contains("value=\"alice\""), "the user name kept");
    let empty = browser.sign_in("", "alice", "").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains("Enter your user name and password."));
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
    let (kept_token, _) = logins.session_for("alice", "alice-pw").await;
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
    assert!(
        !ended.body.contains(&format!(">{lost}</a>")),
        "no longer listed"
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
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let driver = Chromedriver(
            std::process::Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
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
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
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
