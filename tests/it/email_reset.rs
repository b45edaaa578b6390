//! The e-mail password reset of legacy clients, Synapse's flow (issue 26, item 3): the cases
//! of Synapse's own `PasswordResetTestCase`, and what homekey adds (digests, the same path for
//! an unknown address, the new password hashed only after the e-mail step), over HTTP
//! against `homekey serve`, on SQLite and PostgreSQL. The main path and the inhibited errors
//! go through a real SMTP server (aiosmtpd, `crate::mail::Smtp`); the other cases read the link
//! from the mail as queued in the database (`homekey_mail_outbox`), its SMTP server absent.

use homekey::config::DatabaseConfig;
use homekey::threepid::Threepid;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, X_FRAME_OPTIONS};
use serde_json::{Value, json};

use crate::mail::{Smtp, python_with_aiosmtpd};
use crate::server::{Server, raw_execute, server_tests};
use crate::support::{TestDb, free_port};

server_tests!(
    a_mailed_link_resets_the_password_once_and_signs_every_device_out,
    a_made_up_session_or_an_unconfirmed_link_changes_nothing,
    with_inhibited_errors_an_unknown_address_takes_the_known_path,
    next_link_is_followed_after_confirming_and_checked_when_asked_for,
    an_expired_or_wrong_link_is_refused_and_culled,
    a_repeated_send_attempt_sends_no_second_mail,
    request_token_is_rate_limited_per_address_and_token_less_changes_per_client,
    without_an_email_section_the_flow_is_off,
    request_token_checks_its_body_as_synapse,
    matrix_js_sdk_resets_a_password_with_its_own_calls,
);

const ALICE: &str = "@alice:example.com";
const ADDRESS: &str = "alice@example.com";
const REQUEST_TOKEN: &str = "/_matrix/client/v3/account/password/email/requestToken";

/// A server with an `email:` section whose SMTP server is not there (the mail waits in the
/// queue, where the tests read it) and `extra` config; alice has `ADDRESS`.
async fn start(db: TestDb, extra: &str) -> Server {
    start_on(db, free_port(), extra).await
}

/// The same, with its SMTP server on `smtp_port`.
async fn start_on(db: TestDb, smtp_port: u16, extra: &str) -> Server {
    let server = Server::start(
        db,
        &format!(
            "public_baseurl: https://example.com/\n\
             email:\n  smtp_host: 127.0.0.1\n  smtp_port: {smtp_port}\n  notif_from: noreply@example.com\n\
             {extra}"
        ),
    )
    .await;
    server.create_user("alice", "old-password").await;
    server
        .store()
        .change_threepid(ALICE, &Threepid::email(ADDRESS).unwrap(), true, 0, None)
        .await
        .unwrap();
    server
}

async fn request_token(
    server: &Server,
    email: &str,
    client_secret: &str,
    send_attempt: i64,
    next_link: Option<&str>,
) -> (StatusCode, Value) {
    let mut body =
        json!({"client_secret": client_secret, "email": email, "send_attempt": send_attempt});
    if let Some(next_link) = next_link {
        body["next_link"] = json!(next_link);
    }
    server.call("POST", REQUEST_TOKEN, None, Some(body)).await
}

async fn sid_for(server: &Server, email: &str, client_secret: &str) -> String {
    let (status, body) = request_token(server, email, client_secret, 1, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sid"].as_str().unwrap().to_owned()
}

/// The token-less `POST /account/password` of a reset.
async fn reset_password(
    server: &Server,
    sid: &str,
    client_secret: &str,
    new_password: &str,
) -> (StatusCode, Value) {
    server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            None,
            Some(json!({
                "new_password": new_password,
                "auth": {
                    "type": "m.login.email.identity",
                    "threepid_creds": {"sid": sid, "client_secret": client_secret},
                },
            })),
        )
        .await
}

/// Text columns of the rows `sql` selects, straight from the test database.
pub(crate) async fn rows(config: &DatabaseConfig, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Connection, Row};
    match config {
        DatabaseConfig::Sqlite { path } => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
                .collect()
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
                .collect()
        }
        other => panic!("{other:?}"),
    }
}

/// The queued mails to `to`: (text part, state, only_if_address_known), oldest first.
pub(crate) async fn mails_to(server: &Server, to: &str) -> Vec<(Option<String>, String, String)> {
    rows(
        &server.db.config,
        &format!(
            "SELECT body_text, state, CAST(only_if_address_known AS TEXT) \
             FROM homekey_mail_outbox WHERE recipient = '{to}' ORDER BY id"
        ),
    )
    .await
    .into_iter()
    .map(|row| {
        (
            row[0].clone(),
            row[1].clone().unwrap(),
            row[2].clone().unwrap(),
        )
    })
    .collect()
}

/// The path and query of the link in the latest mail to `to` (its text part, as queued).
async fn link_path(server: &Server, to: &str) -> String {
    let mails = mails_to(server, to).await;
    let text = mails.last().and_then(|(text, _, _)| text.clone());
    link_in(&text.unwrap_or_else(|| panic!("no mail to {to}: {mails:?}")))
}

/// The path and query of the reset link in a mail's text.
fn link_in(text: &str) -> String {
    let start = text
        .find("https://example.com/_synapse/client/password_reset/email/submit_token?")
        .unwrap_or_else(|| panic!("no link in {text:?}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    link.trim_start_matches("https://example.com").to_owned()
}

/// The HTTP client of a browser that does not follow redirects (the 302 is looked at).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Opens the link's page (GET), checks it confirms nothing and may not be framed, then
/// presses its button (a POST of its form's hidden fields): returns the POST's answer.
async fn confirm_link(server: &Server, path: &str) -> reqwest::Response {
    let http = browser();
    let page = http.get(server.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_not_framed(&page);
    let html = page.text().await.unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("{name} in {html}"))
            + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let form = [
        ("sid", field("sid")),
        ("token", field("token")),
        ("client_secret", field("client_secret")),
    ];
    let answer = http
        .post(server.url("/_synapse/client/password_reset/email/submit_token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_not_framed(&answer);
    answer
}

fn assert_not_framed(response: &reqwest::Response) {
    assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
    let csp = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

async fn a_mailed_link_resets_the_password_once_and_signs_every_device_out(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("a_mailed_link_resets_the_password_once") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = start_on(db, port, "").await;
    let old_token = server.token_for("alice", "old-password").await;
    // Another spelling of the address finds it (Synapse canonicalises it), and the mail
    // goes to the address as the account has it.
    let sid = sid_for(&server, "ALICE@Example.COM", "foobar").await;
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].parsed["rcpt_tos"], json!([ADDRESS]));
    let path = link_in(&received[0].text());

    // Not yet confirmed: the client is told to wait, and nothing changed.
    let (status, body) = reset_password(&server, &sid, "foobar", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");
    assert_eq!(body["error"], "Unable to get validated threepid");
    assert_eq!(
        body["flows"],
        json!([{"stages": ["m.login.email.identity"]}])
    );
    assert!(server.has_password(ALICE, "old-password").await);

    // Opening the page confirms nothing (a mail scanner following the link): still 401.
    let page = browser().get(server.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (status, body) = reset_password(&server, &sid, "foobar", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let confirmed = confirm_link(&server, &path).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(confirmed.text().await.unwrap().contains("confirmed"));

    // The link and the client secret are kept only as digests.
    let token = path
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let kept = rows(
        &server.db.config,
        "SELECT s.client_secret, t.token FROM threepid_validation_session s \
         JOIN threepid_validation_token t ON t.session_id = s.session_id",
    )
    .await;
    assert_eq!(kept.len(), 1);
    for value in &kept[0] {
        let value = value.as_deref().unwrap();
        assert!(value.starts_with("sha256:"), "{value}");
        assert!(!value.contains(token) && !value.contains("foobar"));
    }

    let (status, body) = reset_password(&server, &sid, "foobar", "new-password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(server.has_password(ALICE, "new-password").await);
    let (status, _) = server.login("alice", "old-password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.token_for("alice", "new-password").await;
    // logout_devices defaults to true: the old session is gone.
    let (status, body) = server.whoami(Some(&old_token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // One reset per link: the session is spent.
    let (status, body) = reset_password(&server, &sid, "foobar", "third-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");
    assert!(server.has_password(ALICE, "new-password").await);

    // Recorded like any reset, the user as the one who did it.
    let audit = server
        .store()
        .list_audit(&homekey::store::AuditFilter {
            target: Some(ALICE.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let reset = audit
        .iter()
        .find(|record| record.action == "reset_password")
        .expect("the reset is recorded");
    assert_eq!(reset.actor, ALICE);
    assert_eq!(
        reset.details,
        json!({"logout_devices": true, "by_email": true})
    );
    // No secret reached the log.
    let log = server.log();
    assert!(!log.contains(token) && !log.contains("foobar") && !log.contains("new-password"));
}

async fn a_made_up_session_or_an_unconfirmed_link_changes_nothing(db: TestDb) {
    let server = start(db, "").await;
    // No auth at all: the one flow, and a session.
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/r0/account/password",
            None,
            Some(json!({"new_password": "new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["flows"],
        json!([{"stages": ["m.login.email.identity"]}])
    );
    assert!(body["session"].is_string());
    assert!(body.get("errcode").is_none(), "{body}");

    // A session never asked for ("weasle", Synapse's test).
    let (status, body) = reset_password(&server, "weasle", "foobar", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");

    // The stage without its credentials.
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            None,
            Some(
                json!({"new_password": "new-password", "auth": {"type": "m.login.email.identity"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_MISSING_PARAM");

    // A real session whose link is confirmed, but another client secret: not this client's.
    let sid = sid_for(&server, ADDRESS, "foobar").await;
    let path = link_path(&server, ADDRESS).await;
    assert_eq!(confirm_link(&server, &path).await.status(), StatusCode::OK);
    let (status, body) = reset_password(&server, &sid, "other", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(server.has_password(ALICE, "old-password").await);
    server.token_for("alice", "old-password").await;

    // The older spelling `threepidCreds` (older Element) works, with the new password
    // checked by the policy first: a weak one spends nothing.
    let body = |password: &str| {
        json!({
            "new_password": password,
            "logout_devices": false,
            "auth": {"type": "m.login.email.identity", "threepidCreds": {"sid": sid, "client_secret": "foobar"}},
        })
    };
    let (status, answer) = server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            None,
            Some(body(&"x".repeat(513))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errcode"], "M_BAD_JSON");
    let token = server.token_for("alice", "old-password").await;
    // A user-interactive auth session in which the old password was proved (its operation
    // then failed: no new password), to be ended by the reset.
    let change = |auth: Value| json!({"auth": auth, "logout_devices": false});
    let (_, first) = server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            Some(&token),
            Some(json!({})),
        )
        .await;
    let proved_in = first["session"].as_str().unwrap().to_owned();
    let auth = crate::server::password_auth("alice", "old-password", Some(&proved_in));
    let (status, answer) = server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            Some(&token),
            Some(change(auth)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errcode"], "M_MISSING_PARAM");
    let (status, answer) = server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            None,
            Some(body("new-password")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(server.has_password(ALICE, "new-password").await);
    // logout_devices: false keeps the sessions, but the old password's proof is gone.
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);
    let mut again = change(json!({"session": proved_in}));
    again["new_password"] = json!("chosen-by-someone-else");
    let (status, answer) = server
        .call(
            "POST",
            "/_matrix/client/v3/account/password",
            Some(&token),
            Some(again),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("Unknown session ID"),
        "{answer}"
    );
    assert!(server.has_password(ALICE, "new-password").await);
}

async fn with_inhibited_errors_an_unknown_address_takes_the_known_path(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("with_inhibited_errors_an_unknown_address") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = start_on(db, port, "request_token_inhibit_3pid_errors: true\n").await;
    let known = sid_for(&server, ADDRESS, "foobar").await;
    let unknown = sid_for(&server, "nobody@example.com", "foobar").await;
    assert_eq!((known.len(), unknown.len()), (16, 16));
    // Both ran the same code: a session each, and a mail each, queued to be sent only if
    // its address is an account's when it is delivered.
    let sessions = rows(
        &server.db.config,
        "SELECT address FROM threepid_validation_session ORDER BY address",
    )
    .await;
    assert_eq!(
        sessions,
        vec![
            vec![Some(ADDRESS.to_owned())],
            vec![Some("nobody@example.com".to_owned())]
        ]
    );
    for address in [ADDRESS, "nobody@example.com"] {
        let mails = mails_to(&server, address).await;
        assert_eq!(mails.len(), 1, "{address}: {mails:?}");
        assert!(["1", "true"].contains(&mails[0].2.as_str()), "{mails:?}");
    }
    // Only the delivery tells them apart: the known address gets its mail, the other's is
    // dropped unsent.
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].parsed["rcpt_tos"], json!([ADDRESS]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mails_to(&server, "nobody@example.com").await[0].1 != "dropped" {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(smtp.received().len(), 1);
    // The unknown address's session can never complete a reset: no account has it.
    let (status, _) = reset_password(&server, &unknown, "foobar", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn next_link_is_followed_after_confirming_and_checked_when_asked_for(db: TestDb) {
    let server = start(db, "").await;
    // Not a local file.
    let (status, body) =
        request_token(&server, ADDRESS, "foobar", 1, Some("file:///etc/passwd")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_INVALID_PARAM");
    assert!(mails_to(&server, ADDRESS).await.is_empty());

    let next_link = "https://app.example.org/#/reset?from=mail";
    let (status, body) = request_token(&server, ADDRESS, "foobar", 1, Some(next_link)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sid = body["sid"].as_str().unwrap();
    let path = link_path(&server, ADDRESS).await;
    // The page's form may lead there (its CSP's form-action names the origin).
    let page = browser().get(server.url(&path)).send().await.unwrap();
    let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example.org"),
        "{csp}"
    );
    let confirmed = confirm_link(&server, &path).await;
    assert_eq!(confirmed.status(), StatusCode::FOUND);
    assert_eq!(
        confirmed.headers()[LOCATION],
        format!("{next_link}&sid={sid}").as_str()
    );
}

/// A POST to the link itself, its values in the query, as Synapse's test confirms.
async fn post(server: &Server, path: &str) -> reqwest::Response {
    browser()
        .post(server.url(path))
        .form(&[("x", "")])
        .send()
        .await
        .unwrap()
}

async fn an_expired_or_wrong_link_is_refused_and_culled(db: TestDb) {
    let server = start(db, "").await;
    let sid = sid_for(&server, ADDRESS, "foobar").await;
    let path = link_path(&server, ADDRESS).await;
    // Synapse's test posts to the link itself (the values in the query): a wrong token.
    let wrong = path.replace("token=", "token=x");
    let answer = post(&server, &wrong).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_not_framed(&answer);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("Validation token not found or has expired")
    );
    let answer = post(&server, &path.replace(&format!("sid={sid}"), "sid=nosuch")).await;
    assert!(answer.text().await.unwrap().contains("Unknown session_id"));

    // The token's time is up.
    raw_execute(
        &server.db.config,
        "UPDATE threepid_validation_token SET expires = 1",
        &[],
    )
    .await;
    let answer = post(&server, &path).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("This token has expired. Please request a new one")
    );
    let (status, _) = reset_password(&server, &sid, "foobar", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Culled (as `serve` does every 30 minutes): the token, then its session.
    let culled = server
        .store()
        .cull_threepid_validation(homekey::accounts::now_ms())
        .await
        .unwrap();
    assert_eq!(culled, 1);
    let left = rows(
        &server.db.config,
        "SELECT session_id FROM threepid_validation_session",
    )
    .await;
    assert!(left.is_empty(), "{left:?}");
    assert!(server.has_password(ALICE, "old-password").await);
}

async fn a_repeated_send_attempt_sends_no_second_mail(db: TestDb) {
    let server = start(db, "").await;
    let (_, first) = request_token(&server, ADDRESS, "foobar", 1, None).await;
    let (status, again) = request_token(&server, ADDRESS, "foobar", 1, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["sid"], again["sid"]);
    assert_eq!(mails_to(&server, ADDRESS).await.len(), 1);
    // A higher attempt: the same session, a new link, a second mail; both links work.
    let (_, next) = request_token(&server, ADDRESS, "foobar", 2, None).await;
    assert_eq!(first["sid"], next["sid"]);
    assert_eq!(mails_to(&server, ADDRESS).await.len(), 2);
    // Another client secret is another session.
    let (_, other) = request_token(&server, ADDRESS, "other", 1, None).await;
    assert_ne!(first["sid"], other["sid"]);
}

async fn request_token_is_rate_limited_per_address_and_token_less_changes_per_client(db: TestDb) {
    let server = start(
        db,
        "rc_3pid_validation: {burst_count: 3}\n\
         rc_login:\n  address: {per_second: 0.001, burst_count: 4}\n",
    )
    .await;
    for attempt in 1..=3 {
        let (status, body) = request_token(&server, ADDRESS, "foobar", attempt, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = request_token(&server, ADDRESS, "foobar", 4, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED");

    for _ in 0..4 {
        let (status, _) = reset_password(&server, "weasle", "foobar", "new-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = reset_password(&server, "weasle", "foobar", "new-password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

async fn without_an_email_section_the_flow_is_off(db: TestDb) {
    let server = Server::start(db, "public_baseurl: https://example.com/\n").await;
    let (status, body) = request_token(&server, ADDRESS, "foobar", 1, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN");
    assert_eq!(
        body["error"],
        "Email-based password resets have been disabled on this server"
    );
    // Without a token, /account/password wants one, as before.
    let (status, body) = reset_password(&server, "weasle", "foobar", "new-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_MISSING_TOKEN");
    let page = browser()
        .get(server.url(
            "/_synapse/client/password_reset/email/submit_token?sid=a&token=b&client_secret=c",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
}

async fn request_token_checks_its_body_as_synapse(db: TestDb) {
    let server = start(db, "next_link_domain_whitelist: [app.example.org]\n").await;
    let cases = [
        (
            json!({"email": ADDRESS, "send_attempt": 1}),
            "M_MISSING_PARAM",
        ),
        (
            json!({"client_secret": "not secret!", "email": ADDRESS, "send_attempt": 1}),
            "M_BAD_JSON",
        ),
        (
            json!({"client_secret": "foobar", "email": ADDRESS, "send_attempt": "1"}),
            "M_BAD_JSON",
        ),
        (
            json!({"client_secret": "foobar", "email": "not-an-address", "send_attempt": 1}),
            "M_INVALID_PARAM",
        ),
        (
            json!({"client_secret": "foobar", "email": ADDRESS, "send_attempt": 1, "next_link": "https://elsewhere.example/"}),
            "M_INVALID_PARAM",
        ),
    ];
    for (body, errcode) in cases {
        let (status, answer) = server
            .call("POST", REQUEST_TOKEN, None, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["errcode"], errcode, "{body}: {answer}");
        assert!(!answer.to_string().contains("not secret!"), "{answer}");
    }
    // Without request_token_inhibit_3pid_errors, an address no account has is said so, and
    // nothing is sent.
    let (status, answer) = request_token(&server, "nobody@example.com", "foobar", 1, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errcode"], "M_THREEPID_NOT_FOUND");
    assert!(mails_to(&server, "nobody@example.com").await.is_empty());
    assert!(mails_to(&server, ADDRESS).await.is_empty());
    let (status, body) = request_token(
        &server,
        ADDRESS,
        "foobar",
        1,
        Some("https://app.example.org/x"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// matrix-js-sdk 43 (`tests/clients/password_reset_js_sdk.mjs`) asks for the mail and sets
/// the password with its own calls; the test confirms the link from the mail in between.
async fn matrix_js_sdk_resets_a_password_with_its_own_calls(db: TestDb) {
    let test = "matrix_js_sdk_resets_a_password_with_its_own_calls";
    let Some((node, modules)) = crate::oauth_clients::node_22_and_js_sdk_43(test) else {
        return;
    };
    let Some(python) = python_with_aiosmtpd(test) else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = start_on(db, port, "").await;
    let old_token = server.token_for("alice", "old-password").await;
    let out = tempfile::tempdir().unwrap();
    let (stdout, confirmed) = (out.path().join("stdout"), out.path().join("confirmed"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/password_reset_js_sdk.mjs");
    let mut child = std::process::Command::new(&node)
        .arg(&script)
        .arg(server.url("/"))
        .arg(ADDRESS)
        .arg(&confirmed)
        .env("HOMEKEY_JS_SDK_DIR", &modules)
        .env("HOMEKEY_NEW_PASSWORD", "js-sdk-new-password")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .spawn()
        .unwrap();
    let output = || std::fs::read_to_string(&stdout).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !output().contains("refused before confirming") {
        assert!(
            std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "{}\n{}",
            output(),
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        output().contains("refused before confirming M_UNAUTHORIZED"),
        "{}",
        output()
    );
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    let path = link_in(&received[0].text());
    assert_eq!(confirm_link(&server, &path).await.status(), StatusCode::OK);
    std::fs::write(&confirmed, "").unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{}\n{}", output(), server.log());
    assert!(output().ends_with("reset\n"), "{}", output());
    assert!(server.has_password(ALICE, "js-sdk-new-password").await);
    assert_eq!(
        server.whoami(Some(&old_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The whole reset beside the real Synapse, through the README's nginx config, as a legacy
/// client meets it: Synapse has an `email:` section too (the operator's one file), so it
/// mounts its own `submit_token`; nginx must send the link, `requestToken` and the
/// token-less password change to homekey, or the link would be one Synapse never made. The
/// reset then ends the client's session on Synapse, and the new password logs in.
#[tokio::test]
async fn beside_synapse_through_nginx_a_mailed_link_resets_the_password() {
    use crate::synapse_proxy::{Proxy, call, client, password_login, program};
    let test = "beside_synapse_through_nginx_a_mailed_link_resets_the_password";
    let Some(venv) = crate::support::synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(python) = python_with_aiosmtpd(test) else {
        return;
    };
    let smtp_port = free_port();
    let smtp = Smtp::start(&python, smtp_port, None, None);
    let email = format!(
        "email:\n  smtp_host: 127.0.0.1\n  smtp_port: {smtp_port}\n  \
         notif_from: noreply@example.com\n"
    );
    let beside = crate::synapse_queue::BesideSynapse::start_sharing(
        venv,
        TestDb::sqlite().await,
        None,
        &email,
    )
    .await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    let http = client();
    let proxy = Proxy::nginx(&nginx, synapse, homekey, &http).await;
    let root = homekey.admin_token("root", "root-pw").await;
    homekey.create_user("alice", "old-password").await;
    // The operator gives alice her address through the Admin API (it reaches Synapse too).
    let (status, body) = call(
        &http,
        "PUT",
        &proxy.url(&format!("/_synapse/admin/v2/users/{ALICE}")),
        Some(&root),
        Some(json!({"threepids": [{"medium": "email", "address": ADDRESS}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &http,
        "POST",
        &proxy.url("/_matrix/client/v3/login"),
        None,
        Some(password_login("alice", "old-password")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old_token = body["access_token"].as_str().unwrap().to_owned();
    let whoami = proxy.url("/_matrix/client/v3/account/whoami");
    let (status, body) = call(&http, "GET", &whoami, Some(&old_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = call(
        &http,
        "POST",
        &proxy.url(REQUEST_TOKEN),
        None,
        Some(json!({"client_secret": "nginx-secret", "email": ADDRESS, "send_attempt": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sid = body["sid"].as_str().unwrap().to_owned();
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", homekey.log());
    let text = received[0].text();
    let start = text
        .find("https://matrix.example.com/_synapse/client/password_reset/email/submit_token?")
        .unwrap_or_else(|| panic!("no link in {text:?}"));
    let path: String = text[start + "https://matrix.example.com".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();

    // Synapse serves a page of its own at the link's path (its `email:` section): only the
    // proxy's route makes the link homekey's.
    let browser = browser();
    let synapses = browser.get(synapse.url(&path)).send().await.unwrap();
    assert_eq!(synapses.status(), StatusCode::OK);

    // The link's page and its button, through nginx (as a browser would).
    let page = browser.get(proxy.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_not_framed(&page);
    let html = page.text().await.unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("{name} in {html}"))
            + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let confirmed = browser
        .post(proxy.url("/_synapse/client/password_reset/email/submit_token"))
        .form(&[
            ("sid", field("sid")),
            ("token", field("token")),
            ("client_secret", field("client_secret")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK, "{}", proxy.log());

    let (status, body) = call(
        &http,
        "POST",
        &proxy.url("/_matrix/client/v3/account/password"),
        None,
        Some(json!({
            "new_password": "new-password",
            "auth": {
                "type": "m.login.email.identity",
                "threepid_creds": {"sid": sid, "client_secret": "nginx-secret"},
            },
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", proxy.log());
    // Signed out everywhere: Synapse refuses the old token at once.
    let (status, body) = call(&http, "GET", &whoami, Some(&old_token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = call(
        &http,
        "POST",
        &proxy.url("/_matrix/client/v3/login"),
        None,
        Some(password_login("alice", "new-password")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = call(&http, "GET", &whoami, Some(&new_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], ALICE);
}
