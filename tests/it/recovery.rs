//! "Forgot password?" on homekey's own pages and the reset links an operator sends
//! (`src/web/recovery.rs`, `src/accounts/recovery.rs`, `POST /_homekey/api/v1/users/<id>/
//! send_reset_link`): mail through a real SMTP server (aiosmtpd, `tests/it/mail.rs`), the link
//! read from the mail's text part, the pages driven by HTTP forms and, for the journey that
//! starts at an OAuth authorization and ends on its consent page, by a real chromium with
//! axe-core.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::error::CmdError;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::account_page::{
    Answer, Browser, Chromium, DESKTOP, PAGE, PHONE, Tour, axe_core, synapse_section,
};
use crate::mail::{Smtp, email_section, python_with_aiosmtpd};
use crate::oauth_pages::{
    Site, arrive, authorization, landed_on, param, query_of, register, text, web_app,
};
use crate::server::{PEPPER, Server, raw_execute, server_tests};
use crate::support::{self, HOMEKEY, TestDb, free_port, run_binary, stderr, stdout};

const FORGOT: &str = "/_homekey/recovery/forgot";
const RESET: &str = "/_homekey/recovery/reset";

server_tests!(
    forgot_password_mails_a_link_that_sets_the_password_once_and_the_same_answer_for_anyone,
    an_expired_link_changes_nothing_and_the_user_may_keep_the_other_devices,
    the_forgot_form_is_rate_limited,
    a_link_opened_in_a_browser_signed_in_as_another_user_signs_in_the_links_user,
    the_operator_sends_a_reset_link_by_the_admin_api_and_both_clis,
);

/// The config of a server that mails through 127.0.0.1:`smtp` with the password policy on
/// (the pepper kept: this layer replaces the base's `password_config`), and `extra`.
fn mailing(smtp: u16, extra: &str) -> String {
    format!(
        "{}password_config:\n  pepper: {PEPPER}\n  policy:\n    enabled: true\n    \
         minimum_length: 10\n    require_digit: true\n\
         rc_3pid_validation: {{per_second: 1, burst_count: 100}}\n{extra}",
        email_section(smtp, "")
    )
}

/// Gives `user_id` the e-mail address `address`, as the operator's SQL would.
async fn add_address(server: &Server, user_id: &str, address: &str) {
    raw_execute(
        &server.db.config,
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
         VALUES ($1, 'email', $2, 0, 0)",
        &[user_id, address],
    )
    .await;
}

/// The path and query of the reset link in a mail's text part.
fn link_in(text: &str) -> String {
    let start = text
        .find(RESET)
        .unwrap_or_else(|| panic!("no link: {text}"));
    let rest = &text[start..];
    rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())].to_owned()
}

/// The link's token.
fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

/// A hidden field's value in a page.
fn hidden(body: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name}: {body}"))
        + needle.len();
    let end = start + body[start..].find('"').unwrap();
    unescape(&body[start..end])
}

/// An attribute's value as the browser reads it (the pages escape as Jinja does).
fn unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Posts a form to `path` (any path) from `browser`.
async fn post(browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Answer {
    let request = browser
        .http
        .post(format!("{}{path}", browser.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap());
    browser.answer(request).await
}

/// Asks for a link on the forgot page, as a browser does; the answer.
async fn ask(browser: &mut Browser, address: &str, return_to: &str) -> Answer {
    let form = browser
        .get(&format!(
            "{FORGOT}?{}",
            serde_urlencoded::to_string([("return_to", return_to)]).unwrap()
        ))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    let return_to = hidden(&form.body, "return_to");
    post(
        browser,
        FORGOT,
        &[
            ("csrf", &csrf),
            ("return_to", &return_to),
            ("address", address),
        ],
    )
    .await
}

/// Opens `link` and sets `password` twice, signing the other devices out or not.
async fn set_password(
    browser: &mut Browser,
    link: &str,
    password: &str,
    again: &str,
    sign_out_others: bool,
) -> Answer {
    let form = browser.get(link).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    let token = hidden(&form.body, "token");
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("new_password", password),
        ("new_password_again", again),
    ];
    if sign_out_others {
        fields.push(("sign_out_others", "on"));
    }
    post(browser, RESET, &fields).await
}

/// Waits until `count` mails of the outbox are in `state`.
async fn wait_for_outbox(server: &Server, state: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_mail_outbox WHERE state = $1",
            state,
        )
        .await
        < count
    {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The known address and an unknown one get the same page; both mails are queued (the
/// same path), only the known one is delivered. The link's page says the policy and offers
/// to sign the other devices out (checked); a weak password and two different ones are
/// refused with the page again; the password set signs the phone out, the old password stops
/// working; the link works once; its token reaches no log.
async fn forgot_password_mails_a_link_that_sets_the_password_once_and_the_same_answer_for_anyone(
    db: TestDb,
) {
    let Some(python) = python_with_aiosmtpd("forgot_password_mails_a_link") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = Server::start(db, &mailing(port, "")).await;
    server.create_user("alice", "alice-old-pw1").await;
    add_address(&server, "@alice:example.com", "alice@example.org").await;
    let (phone, _) = server.session_for("alice", "alice-old-pw1").await;
    let mut browser = Browser::new(&server);

    let known = ask(&mut browser, "Alice@Example.org", "").await;
    let unknown = ask(&mut browser, "nobody@example.org", "").await;
    assert_eq!(known.status, StatusCode::OK, "{}", known.body);
    assert_eq!(unknown.status, StatusCode::OK);
    assert!(
        known.body.contains("we sent a link to it"),
        "{}",
        known.body
    );
    assert_eq!(
        known.body.replace("Alice@Example.org", "ADDRESS"),
        unknown.body.replace("nobody@example.org", "ADDRESS"),
        "the answer tells the addresses apart"
    );
    // Both queued, by the same code; only the known one delivered.
    let queued = server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_mail_outbox WHERE recipient <> $1",
            "",
        )
        .await;
    assert_eq!(queued, 2);
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].parsed["rcpt_tos"][0], "alice@example.org");
    wait_for_outbox(&server, "dropped", 1).await;
    let text = received[0].text();
    assert!(text.contains("works once and for 1 hour"), "{text}");
    let link = link_in(&text);
    let token = token_of(&link);

    // The page: the policy said first, sign-out offered and checked.
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("It must have at least 10 characters and a digit."),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("name=\"sign_out_others\" value=\"on\" checked")
    );
    // Opening it changed nothing.
    assert!(
        server
            .has_password("@alice:example.com", "alice-old-pw1")
            .await
    );

    let weak = set_password(&mut browser, &link, "weak", "weak", true).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("too weak"), "{}", weak.body);
    assert!(weak.body.contains("aria-invalid=\"true\""));
    let differ = set_password(&mut browser, &link, "new-password-42", "other-42x", true).await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(differ.body.contains("differ"), "{}", differ.body);
    assert!(
        server
            .has_password("@alice:example.com", "alice-old-pw1")
            .await
    );

    let done = set_password(
        &mut browser,
        &link,
        "new-password-42",
        "new-password-42",
        true,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("Your new password is set"),
        "{}",
        done.body
    );
    assert!(done.body.contains("Your other devices were signed out"));
    assert_eq!(
        server.whoami(Some(&phone)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.login("alice", "alice-old-pw1").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.login("alice", "new-password-42").await.0,
        StatusCode::OK
    );

    // Used: the page says so, and posting it again changes nothing.
    let again = browser.get(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("already used or has expired"));
    let csrf = browser.get(FORGOT).await.csrf();
    let replay = post(
        &mut browser,
        RESET,
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("new_password", "third-password-3"),
            ("new_password_again", "third-password-3"),
        ],
    )
    .await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("already used or has expired"));
    assert!(
        server
            .has_password("@alice:example.com", "new-password-42")
            .await
    );
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_audit_log WHERE action = $1",
                "reset_password_by_link"
            )
            .await,
        1
    );
    // The token is kept as a digest, and never logged.
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_password_reset_links WHERE token_digest = $1",
                &token
            )
            .await,
        0
    );
    assert!(!server.log().contains(&token), "{}", server.log());
}

/// Expired: the page says so and nothing changes. A later link, set without signing the
/// other devices out, keeps the phone signed in.
async fn an_expired_link_changes_nothing_and_the_user_may_keep_the_other_devices(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("an_expired_link_changes_nothing") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = Server::start(db, &mailing(port, "")).await;
    server.create_user("alice", "alice-old-pw1").await;
    add_address(&server, "@alice:example.com", "alice@example.org").await;
    let (phone, _) = server.session_for("alice", "alice-old-pw1").await;
    let mut browser = Browser::new(&server);

    ask(&mut browser, "alice@example.org", "").await;
    let first = link_in(&smtp.wait_for(1, 15)[0].text());
    raw_execute(
        &server.db.config,
        "UPDATE homekey_password_reset_links SET expires_ms = 1",
        &[],
    )
    .await;
    let expired = browser.get(&first).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(expired.body.contains("already used or has expired"));
    assert!(expired.body.contains("Ask for a new link"));
    assert!(
        server
            .has_password("@alice:example.com", "alice-old-pw1")
            .await
    );

    ask(&mut browser, "alice@example.org", "").await;
    let received = smtp.wait_for(2, 15);
    assert_eq!(received.len(), 2, "{}", server.log());
    let second = link_in(&received[1].text());
    let done = set_password(
        &mut browser,
        &second,
        "new-password-42",
        "new-password-42",
        false,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(!done.body.contains("other devices were signed out"));
    assert_eq!(server.whoami(Some(&phone)).await.0, StatusCode::OK);
    assert!(
        server
            .has_password("@alice:example.com", "new-password-42")
            .await
    );
}

/// `rc_3pid_validation` limits the forgot form: past the burst, 429 and the form again.
async fn the_forgot_form_is_rate_limited(db: TestDb) {
    let server = Server::start(
        db,
        &format!(
            "{}rc_3pid_validation: {{per_second: 0.001, burst_count: 2}}\n",
            email_section(free_port(), "")
        ),
    )
    .await;
    let mut browser = Browser::new(&server);
    for _ in 0..2 {
        let answer = ask(&mut browser, "someone@example.org", "").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let limited = ask(&mut browser, "someone@example.org", "").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.body.contains("Too many requests"),
        "{}",
        limited.body
    );
    assert!(limited.body.contains("name=\"address\""));
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_mail_outbox WHERE recipient = $1",
                "someone@example.org"
            )
            .await,
        2
    );
}

/// Beside Synapse: the account page's sign-in offers "Forgot password?", which comes back
/// to the account page. A browser signed in as bob opens alice's link: it sets alice's
/// password and the browser is then signed in as alice, on the account page; alice's sign-in
/// in another browser ends (as every reset ends them). Signed in as alice, the browser opens
/// a second link of hers: it works too.
async fn a_link_opened_in_a_browser_signed_in_as_another_user_signs_in_the_links_user(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("a_link_opened_in_a_browser_signed_in_as_another")
    else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = Server::start(
        db,
        &format!(
            "{}{}",
            synapse_section("http://127.0.0.1/"),
            mailing(port, "")
        ),
    )
    .await;
    server.create_user("alice", "alice-old-pw1").await;
    server.create_user("bob", "bob-password-1").await;
    add_address(&server, "@alice:example.com", "alice@example.org").await;
    let mut browser = Browser::new(&server);

    let sign_in = browser.get(PAGE).await;
    let forgot = hidden_href(&sign_in.body, "forgot-password");
    assert_eq!(
        forgot,
        format!("{FORGOT}?return_to=%2F_homekey%2Faccount%2F")
    );
    let profile = browser.signed_in("", "bob", "bob-password-1").await;
    assert!(
        profile.body.contains("@bob:example.com"),
        "{}",
        profile.body
    );

    // alice is signed in to the account page in another browser: a reset ends that sign-in
    // even when the other devices stay.
    let mut elsewhere = Browser::new(&server);
    elsewhere.signed_in("", "alice", "alice-old-pw1").await;

    let sent = ask(&mut browser, "alice@example.org", PAGE).await;
    assert!(sent.body.contains("Back to sign in"), "{}", sent.body);
    let link = link_in(&smtp.wait_for(1, 15)[0].text());
    let done = set_password(
        &mut browser,
        &link,
        "new-password-42",
        "new-password-42",
        false,
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.headers[LOCATION], PAGE);
    let page = browser.get(PAGE).await;
    assert!(page.body.contains("@alice:example.com"), "{}", page.body);
    assert!(!page.body.contains("@bob:example.com"));
    assert!(
        server
            .has_password("@alice:example.com", "new-password-42")
            .await
    );
    assert!(
        server
            .has_password("@bob:example.com", "bob-password-1")
            .await
    );
    let there = elsewhere.get(PAGE).await;
    assert!(there.body.contains("id=\"sign-in\""), "{}", there.body);

    // Signed in as alice now, the browser opens another link of alice's: it works as well.
    ask(&mut browser, "alice@example.org", PAGE).await;
    let received = smtp.wait_for(2, 15);
    assert_eq!(received.len(), 2, "{}", server.log());
    let link = link_in(&received[1].text());
    let done = set_password(
        &mut browser,
        &link,
        "third-password-3",
        "third-password-3",
        true,
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(
        server
            .has_password("@alice:example.com", "third-password-3")
            .await
    );
    let page = browser.get(PAGE).await;
    assert!(page.body.contains("@alice:example.com"), "{}", page.body);
}

/// The `href` of the link `id` in a page.
fn hidden_href(body: &str, id: &str) -> String {
    let needle = format!("id=\"{id}\" href=\"");
    let start = body
        .find(&needle)
        .unwrap_or_else(|| panic!("no #{id}: {body}"))
        + needle.len();
    let end = start + body[start..].find('"').unwrap();
    unescape(&body[start..end])
}

/// The Admin API's refusals (unknown user, no address, no mail); `homekey admin
/// send-reset-link --logout-devices`: the mail arrives, its page says the devices will be
/// signed out, and they are; `homekey user send-reset-link` with serve stopped: the mail
/// waits in the queue and goes out once serve runs. Both audited; no token in any output.
async fn the_operator_sends_a_reset_link_by_the_admin_api_and_both_clis(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("the_operator_sends_a_reset_link") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let mut server = Server::start(db, &mailing(port, "")).await;
    let boss = server.admin_token("boss", "boss-password-1").await;
    server.create_user("alice", "alice-old-pw1").await;
    server.create_user("carol", "carol-old-pw1").await;
    add_address(&server, "@alice:example.com", "alice@example.org").await;
    let (phone, _) = server.session_for("alice", "alice-old-pw1").await;
    let api = |user: &str| format!("/_homekey/api/v1/users/{user}/send_reset_link");

    let (status, body) = server
        .call(
            "POST",
            &api("@nobody:example.com"),
            Some(&boss),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (StatusCode::NOT_FOUND, Some("M_NOT_FOUND"))
    );
    let (status, body) = server
        .call("POST", &api("@carol:example.com"), Some(&boss), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_THREEPID_NOT_FOUND", "{body}");
    let (status, body) = server
        .call("POST", &api("@alice:example.com"), Some(&phone), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    {
        // A server that cannot send mail says so.
        let no_mail = Server::start(server.db.share().await, "").await;
        let (status, body) = no_mail
            .call("POST", &api("@alice:example.com"), Some(&boss), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errcode"], "M_THREEPID_MEDIUM_NOT_SUPPORTED", "{body}");
    }

    let home = tempfile::tempdir().unwrap();
    let out = run_binary(
        HOMEKEY,
        &[
            "admin",
            "--server",
            &server.base,
            "--token",
            &boss,
            "send-reset-link",
            "@alice:example.com",
            "--logout-devices",
        ],
        b"",
        &[("XDG_CONFIG_HOME", home.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "reset link for @alice:example.com queued to alice@example.org; every device is \
         signed out when the password is set\n"
    );
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    let text = received[0].text();
    assert!(
        text.contains("The operator of example.com sent you"),
        "{text}"
    );
    let link = link_in(&text);
    let mut browser = Browser::new(&server);
    let page = browser.get(&link).await;
    assert!(
        page.body.contains("id=\"sign-out-forced\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("name=\"sign_out_others\""));
    // Still working until the user sets the password.
    assert_eq!(server.whoami(Some(&phone)).await.0, StatusCode::OK);
    let done = set_password(
        &mut browser,
        &link,
        "new-password-42",
        "new-password-42",
        false,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(
        server.whoami(Some(&phone)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.login("alice", "alice-old-pw1").await.0,
        StatusCode::FORBIDDEN
    );
    assert!(
        server
            .has_password("@alice:example.com", "new-password-42")
            .await
    );
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_audit_log WHERE action = $1 AND actor = '@boss:example.com'",
                "send_reset_link"
            )
            .await,
        1
    );
    let logged = server.log();
    assert!(!logged.contains(&token_of(&link)), "{logged}");

    // Offline: the command queues the mail; it goes out once serve runs.
    let (tablet, _) = server.session_for("alice", "new-password-42").await;
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let database = match &server.db.config {
        homekey::config::DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
        other => panic!("unexpected test database {other:?}"),
    };
    let config = support::write_config(
        dir.path(),
        &format!(
            "server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  pepper: {PEPPER}\n{}",
            email_section(port, "")
        ),
    );
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "send-reset-link",
            "alice",
            "-c",
            config.to_str().unwrap(),
            "--database",
            &database,
        ],
        b"",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(
            "reset link for @alice:example.com queued to alice@example.org; the mail goes out \
             when homekey serve runs"
        ),
        "{}",
        stdout(&out)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.received().len(), 1, "nothing goes out without serve");
    let server = Server::start(server.db.share().await, &mailing(port, "")).await;
    let received = smtp.wait_for(2, 15);
    assert_eq!(received.len(), 2, "{}", server.log());
    let link = link_in(&received[1].text());
    let mut browser = Browser::new(&server);
    let done = set_password(
        &mut browser,
        &link,
        "third-password-3",
        "third-password-3",
        false,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        server
            .has_password("@alice:example.com", "third-password-3")
            .await
    );
    assert_eq!(server.whoami(Some(&tablet)).await.0, StatusCode::OK);
    assert!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_audit_log WHERE action = $1 AND actor LIKE 'cli:%'",
                "send_reset_link"
            )
            .await
            == 1
    );
    assert!(!stdout(&out).contains(&token_of(&link)));
}

/// In chromium, light, at a desktop's and a phone's width, every page checked with
/// axe-core: an app sends the user to the OAuth authorization; on its sign-in page,
/// "Forgot password?"; the address; the mail's link; a weak password refused; the new one
/// set; the consent page of the same authorization; Allow lands on the app with a code.
#[tokio::test]
async fn in_a_real_browser_forgot_password_from_an_oauth_sign_in_continues_to_the_consent() {
    let test = "in_a_real_browser_forgot_password_from_an_oauth_sign_in_continues_to_the_consent";
    let Some(python) = python_with_aiosmtpd(test) else {
        return;
    };
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let axe = axe_core(test);
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let config = format!(
        "{}oauth:\n  allow_insecure_client_uris: true\n\
         rc_client_registration: {{per_second: 1, burst_count: 100}}\n{}",
        synapse_section("http://127.0.0.1/"),
        mailing(port, "")
    );
    let server = Server::start(TestDb::sqlite().await, &config).await;
    server.create_user("alice", "alice-old-pw1").await;
    add_address(&server, "@alice:example.com", "alice@example.org").await;
    let site = Site::start();
    let app = register(&server, web_app(&site)).await;
    let redirect_uri = site.url("127.0.0.1", "/cb");
    let client = chromium.client.clone();
    let widths = [("desktop", DESKTOP), ("phone", PHONE)];
    let mut tour = Tour {
        chromium: &chromium,
        prefix: "recovery-light".into(),
        widths: &widths,
        axe: axe.as_deref(),
        problems: Vec::new(),
        checked: 0,
    };

    let result = async {
        client
            .goto(&authorization(
                &server,
                &app,
                &redirect_uri,
                "RESETDEVICE",
                false,
            ))
            .await?;
        arrive(&client, "forgot-password").await?;
        tour.check("1-sign-in").await?;
        client
            .find(Locator::Id("forgot-password"))
            .await?
            .click()
            .await?;
        arrive(&client, "send-link").await?;
        tour.check("2-forgot").await?;
        client
            .find(Locator::Id("address"))
            .await?
            .send_keys("alice@example.org")
            .await?;
        client.find(Locator::Id("send-link")).await?.click().await?;
        arrive(&client, "sent").await?;
        tour.check("3-sent").await?;

        let received = smtp.wait_for(1, 15);
        assert_eq!(received.len(), 1, "{}", server.log());
        let link = link_in(&received[0].text());
        client.goto(&server.url(&link)).await?;
        arrive(&client, "set-password").await?;
        assert!(
            client
                .find(Locator::Id("sign_out_others"))
                .await?
                .is_selected()
                .await?,
            "sign out the other devices: checked by default"
        );
        tour.check("4-new-password").await?;
        for field in ["new_password", "new_password_again"] {
            client
                .find(Locator::Id(field))
                .await?
                .send_keys("weak")
                .await?;
        }
        client
            .find(Locator::Id("set-password"))
            .await?
            .click()
            .await?;
        arrive(&client, "new_password-error").await?;
        let error = text(&client, "new_password-error").await?;
        assert!(error.contains("too weak"), "{error}");
        tour.check("5-refused").await?;
        for field in ["new_password", "new_password_again"] {
            client
                .find(Locator::Id(field))
                .await?
                .send_keys("new-password-42")
                .await?;
        }
        client
            .find(Locator::Id("set-password"))
            .await?
            .click()
            .await?;
        arrive(&client, "allow").await?;
        tour.check("6-consent").await?;
        client.find(Locator::Id("allow")).await?.click().await?;
        let back = landed_on(&client, &site).await?;
        assert!(param(&query_of(&back), "code").is_some(), "{back}");
        Ok::<_, CmdError>(())
    }
    .await;
    let (problems, checked) = (std::mem::take(&mut tour.problems), tour.checked);
    drop(tour);
    chromium.close().await;
    result.unwrap();
    assert!(
        server
            .has_password("@alice:example.com", "new-password-42")
            .await
    );
    match axe {
        Some(_) => eprintln!("axe-core checked {checked} page views"),
        None => eprintln!("axe-core: SKIPPED (HOMEKEY_TEST_AXE not set)"),
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// "Forgot password?" beside the real Synapse, through the README's nginx config: the forgot
/// page, the mailed link and the new password all reach homekey through the proxy, the reset
/// ends the client's session on Synapse at once, and the new password logs in there.
#[tokio::test]
async fn beside_synapse_through_nginx_forgot_password_resets_and_signs_synapse_sessions_out() {
    use crate::synapse_proxy::{Proxy, call, client, password_login, program};
    let test = "beside_synapse_through_nginx_forgot_password_resets_and_signs_synapse_sessions_out";
    let Some(venv) = support::synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(python) = python_with_aiosmtpd(test) else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let beside = crate::synapse_queue::BesideSynapse::start_sharing(
        venv,
        TestDb::sqlite().await,
        None,
        &email_section(port, ""),
    )
    .await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    let http = client();
    let proxy = Proxy::nginx(&nginx, synapse, homekey, &http).await;
    homekey.create_user("alice", "alice-old-pw1").await;
    add_address(homekey, "@alice:example.com", "alice@example.org").await;
    let (status, body) = call(
        &http,
        "POST",
        &proxy.url("/_matrix/client/v3/login"),
        None,
        Some(password_login("alice", "alice-old-pw1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let phone = body["access_token"].as_str().unwrap().to_owned();
    let whoami = proxy.url("/_matrix/client/v3/account/whoami");
    assert_eq!(
        call(&http, "GET", &whoami, Some(&phone), None).await.0,
        StatusCode::OK
    );

    let mut browser = Browser {
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: proxy.url(""),
        cookie: None,
    };
    let asked = ask(&mut browser, "alice@example.org", "").await;
    assert_eq!(
        asked.status,
        StatusCode::OK,
        "{}\n{}",
        asked.body,
        proxy.log()
    );
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", homekey.log());
    let link = link_in(&received[0].text());
    let done = set_password(
        &mut browser,
        &link,
        "new-password-42",
        "new-password-42",
        true,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("Your new password is set"),
        "{}",
        done.body
    );
    // The phone's session ended on Synapse too, and the new password logs in through nginx.
    assert_eq!(
        call(&http, "GET", &whoami, Some(&phone), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = call(
        &http,
        "POST",
        &proxy.url("/_matrix/client/v3/login"),
        None,
        Some(password_login("alice", "new-password-42")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let (status, body) = call(&http, "GET", &whoami, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@alice:example.com");
}
