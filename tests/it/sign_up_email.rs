//! Sign-up with a verified e-mail address (issue 27), as Synapse runs it for legacy clients
//! (`tests/rest/client/test_register.py`): `registrations_require_3pid: [email]`, the mail
//! through a real SMTP server (aiosmtpd), its link opened over HTTP, the
//! `m.login.email.identity` stage, the account with its address; `allowed_local_3pids`, an
//! address in use (told, or inhibited), the registration token's bypass, and hostile
//! addresses answered with Synapse's errors, sending and making nothing. Over HTTP against
//! `homekey serve`, on SQLite and PostgreSQL.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, X_FRAME_OPTIONS};
use serde_json::{Value, json};

use crate::email_reset::mails_to;
use crate::mail::{Smtp, python_with_aiosmtpd};
use crate::server::{Server, server_tests};
use crate::support::{TestDb, free_port};
use homekey::store::AuditFilter;
use homekey::threepid::Threepid;

server_tests!(
    a_legacy_client_signs_up_with_a_verified_email_address,
    two_confirmed_links_for_one_address_make_one_account,
    request_token_refuses_hostile_addresses_and_bodies_sending_and_making_nothing,
    a_registration_token_bypasses_the_email_stage_when_configured,
    with_inhibited_errors_an_address_in_use_gets_a_made_up_session_and_its_owner_a_mail,
    without_a_required_address_both_flows_are_offered_and_next_link_is_followed,
    request_token_is_off_without_an_email_section,
    request_token_is_forbidden_while_sign_up_is_off,
);

const REGISTER: &str = "/_matrix/client/v3/register";
const REQUEST_TOKEN: &str = "/_matrix/client/v3/register/email/requestToken";
const SUBMIT_TOKEN: &str = "/_matrix/client/unstable/registration/email/submit_token";
const EMAIL_STAGE: &str = "m.login.email.identity";
const PASSWORD: &str = "a long sign-up password";

/// Sign-up requiring an address of example.com, the rate limits out of the way, mail to an
/// SMTP server on `smtp_port`, and `extra`.
fn config(smtp_port: u16, extra: &str) -> String {
    format!(
        "public_baseurl: https://example.com/\n\
         enable_registration: true\n\
         registrations_require_3pid: [email]\n\
         allowed_local_3pids:\n  - medium: email\n    pattern: '.*@example\\.com'\n\
         rc_registration: {{per_second: 1000, burst_count: 1000}}\n\
         rc_3pid_validation: {{per_second: 1000, burst_count: 1000}}\n\
         {}{extra}",
        crate::mail::email_section(smtp_port, "")
    )
}

async fn request_token(
    server: &Server,
    email: &str,
    client_secret: &str,
    send_attempt: i64,
) -> (StatusCode, Value) {
    let body =
        json!({"client_secret": client_secret, "email": email, "send_attempt": send_attempt});
    server.call("POST", REQUEST_TOKEN, None, Some(body)).await
}

async fn sid_for(server: &Server, email: &str, client_secret: &str) -> String {
    let (status, body) = request_token(server, email, client_secret, 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sid"].as_str().unwrap().to_owned()
}

/// A first `POST /register`: its 401's session and flows.
async fn begin(server: &Server, username: &str) -> (String, Value) {
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"username": username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.get("errcode").is_none(), "{body}");
    (
        body["session"].as_str().unwrap().to_owned(),
        body["flows"].clone(),
    )
}

async fn email_stage(
    server: &Server,
    session: &str,
    sid: &str,
    client_secret: &str,
) -> (StatusCode, Value) {
    let auth = json!({
        "type": EMAIL_STAGE,
        "session": session,
        "threepid_creds": {"sid": sid, "client_secret": client_secret},
    });
    server
        .call("POST", REGISTER, None, Some(json!({ "auth": auth })))
        .await
}

/// The path and query of the sign-up link in a mail's text.
fn link_in(text: &str) -> String {
    let prefix = format!("https://example.com{SUBMIT_TOKEN}?");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link in {text:?}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    link.trim_start_matches("https://example.com").to_owned()
}

/// The link in the latest mail to `to` as queued (its SMTP server may be absent).
async fn queued_link(server: &Server, to: &str) -> String {
    let mails = mails_to(server, to).await;
    let text = mails.last().and_then(|(text, _, _)| text.clone());
    link_in(&text.unwrap_or_else(|| panic!("no mail to {to}: {mails:?}")))
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn assert_not_framed(response: &reqwest::Response) {
    assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
    let csp = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

/// Opens the link's page as a browser (GET: a form that confirms nothing), then presses its
/// button (a POST of the form's hidden fields): returns the POST's answer.
async fn confirm_link(server: &Server, path: &str) -> reqwest::Response {
    confirm_link_at(&server.url(""), path).await
}

/// [`confirm_link`] at `base` (homekey's URL, or a proxy's).
async fn confirm_link_at(base: &str, path: &str) -> reqwest::Response {
    let http = browser();
    let page = http.get(format!("{base}{path}")).send().await.unwrap();
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
        .post(format!("{base}{SUBMIT_TOKEN}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_not_framed(&answer);
    answer
}

/// The rows of `table` in the test database.
async fn count(server: &Server, table: &str) -> usize {
    crate::email_reset::rows(&server.db.config, &format!("SELECT 1 FROM {table}"))
        .await
        .len()
}

async fn user_count(server: &Server) -> u64 {
    server
        .store()
        .list_users(&Default::default(), 0, 1)
        .await
        .unwrap()
        .total as u64
}

async fn a_legacy_client_signs_up_with_a_verified_email_address(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("a_legacy_client_signs_up_with_a_verified_email")
    else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let server = Server::start(db, &config(port, "")).await;

    // The first answer: only the e-mail flow (an address is required), no error yet.
    let (session, flows) = begin(&server, "bob").await;
    assert_eq!(flows, json!([{"stages": [EMAIL_STAGE]}]));
    // The dummy stage is not offered.
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"auth": {"type": "m.login.dummy", "session": session}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "Unknown login type");

    // The address in another spelling: canonical in the mail and the session.
    let sid = sid_for(&server, " Bob@Example.COM", "bob-secret").await;
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    let mail = &received[0];
    assert_eq!(mail.parsed["rcpt_tos"], json!(["bob@example.com"]));
    assert_eq!(mail.header("Subject"), "[example.com] Validate your email");
    let text = mail.text();
    assert!(text.contains("make a new account on example.com"), "{text}");
    let path = link_in(&text);
    assert!(path.contains(&format!("sid={sid}")) && path.contains("client_secret=bob-secret"));

    // Before the link is confirmed: Synapse's 401, and no account.
    let (status, body) = email_stage(&server, &session, &sid, "bob-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");
    assert_eq!(body["error"], "Unable to get validated threepid");
    assert_eq!(body["flows"], json!([{"stages": [EMAIL_STAGE]}]));
    assert_eq!(body["completed"], json!([]));
    // Opening the page (a mail scanner) confirms nothing.
    let page = browser().get(server.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (status, _) = email_stage(&server, &session, &sid, "bob-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Another client's secret does not spend the session either.
    let (status, _) = email_stage(&server, &session, &sid, "not-bobs-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(user_count(&server).await, 0);

    let confirmed = confirm_link(&server, &path).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = confirmed.text().await.unwrap();
    assert!(
        page.contains("Your email has now been validated, please return to your client"),
        "{page}"
    );

    // The stage completes and the account is made, with the address.
    let (status, body) = email_stage(&server, &session, &sid, "bob-secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@bob:example.com");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, whoami) = server.whoami(Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{whoami}");
    let threepids = server
        .store()
        .user_threepids("@bob:example.com")
        .await
        .unwrap();
    assert_eq!(threepids.len(), 1);
    assert_eq!(
        threepids[0].threepid,
        Threepid::email("bob@example.com").unwrap()
    );
    // Signing in by the address works.
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.thirdparty", "medium": "email",
                               "address": "BOB@example.com"},
                "password": PASSWORD,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@bob:example.com");

    // The validation session is spent with the sign-up.
    let (status, _) = email_stage(&server, &session, &sid, "bob-secret").await;
    assert_ne!(status, StatusCode::OK);

    // Recorded as a sign-up, naming the address.
    let audit = server
        .store()
        .list_audit(&AuditFilter {
            target: Some("@bob:example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let created = audit
        .iter()
        .find(|record| record.action == "create_user")
        .expect("the sign-up is recorded");
    assert_eq!(
        created.details["threepids"],
        json!(["email bob@example.com"])
    );

    // The address is taken now: a second sign-up is told at once, and no mail goes.
    let (status, body) = request_token(&server, "bob@example.com", "other-secret", 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_THREEPID_IN_USE");
    assert_eq!(body["error"], "Email is already in use");
    // An address outside allowed_local_3pids: refused, no mail.
    let (status, body) = request_token(&server, "carol@example.org", "carol-secret", 1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errcode"], "M_THREEPID_DENIED");
    assert_eq!(
        body["error"],
        "Your email domain is not authorized to register on this server"
    );
    // `re.match` anchors at the start only: a longer address that starts alike matches.
    let (status, body) = request_token(&server, "dan@example.com.evil.org", "dan-secret", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = smtp.wait_for(2, 15);
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[1].parsed["rcpt_tos"],
        json!(["dan@example.com.evil.org"])
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(smtp.received().len(), 2, "no mail for the refused ones");

    // No secret reached the log.
    let link_token = path
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let log = server.log();
    assert!(!log.contains(link_token) && !log.contains("bob-secret") && !log.contains(PASSWORD));
}

async fn two_confirmed_links_for_one_address_make_one_account(db: TestDb) {
    // No SMTP server: the links are read from the queue.
    let server = Server::start(db, &config(free_port(), "")).await;
    let (first_session, _) = begin(&server, "erin").await;
    let first_sid = sid_for(&server, "erin@example.com", "first-secret").await;
    let first_link = queued_link(&server, "erin@example.com").await;
    let (second_session, _) = begin(&server, "erin2").await;
    let second_sid = sid_for(&server, "erin@example.com", "second-secret").await;
    let second_link = queued_link(&server, "erin@example.com").await;
    assert_ne!(first_sid, second_sid);
    for link in [&first_link, &second_link] {
        assert_eq!(confirm_link(&server, link).await.status(), StatusCode::OK);
    }

    let (status, body) = email_stage(&server, &first_session, &first_sid, "first-secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@erin:example.com");
    // The second proves the address too, but an account has it now: Synapse's words.
    let (status, body) = email_stage(&server, &second_session, &second_sid, "second-secret").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_THREEPID_IN_USE");
    assert_eq!(body["error"], "email is already in use");
    assert!(
        server
            .store()
            .get_user("@erin2:example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(user_count(&server).await, 1);

    // Both at the same moment: one account gets the address, the other is told (never a
    // server error), whichever transaction checks first.
    for round in 0..5 {
        let address = format!("race{round}@example.com");
        let mut racers = Vec::new();
        for who in ["a", "b"] {
            let (session, _) = begin(&server, &format!("racer{round}{who}")).await;
            let secret = format!("secret-{who}");
            let sid = sid_for(&server, &address, &secret).await;
            let link = queued_link(&server, &address).await;
            assert_eq!(confirm_link(&server, &link).await.status(), StatusCode::OK);
            racers.push((session, sid, secret));
        }
        let (a, b) = tokio::join!(
            email_stage(&server, &racers[0].0, &racers[0].1, &racers[0].2),
            email_stage(&server, &racers[1].0, &racers[1].1, &racers[1].2),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::BAD_REQUEST],
            "{} {}",
            a.1,
            b.1
        );
        let refused = if a.0 == StatusCode::OK { &b.1 } else { &a.1 };
        assert_eq!(refused["errcode"], "M_THREEPID_IN_USE", "{refused}");
        assert_eq!(user_count(&server).await, 2 + round);
    }

    // A wrong or replayed link: Synapse's failure page, with its reason.
    let (path, query) = first_link.split_once('?').unwrap();
    let tampered = format!("{path}?{}", query.replace("token=", "token=x"));
    let answer = browser().post(server.url(&tampered)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let page = answer.text().await.unwrap();
    assert!(
        page.contains("Validation failed for the following reason: Unknown session_id"),
        "{page}"
    );
}

async fn request_token_refuses_hostile_addresses_and_bodies_sending_and_making_nothing(db: TestDb) {
    let server = Server::start(db, &config(free_port(), "")).await;
    let unparsable = |status: StatusCode, body: &Value| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
        assert_eq!(body["error"], "Unable to parse email address");
    };
    for hostile in [
        "no-at-sign.example.com".to_owned(),
        "a@b@example.com".to_owned(),
        // Header injection: a second recipient or header smuggled in the address.
        "eve@example.com\r\nBcc: victim@example.com".to_owned(),
        "eve\r\nBcc: victim@example.org\r\n@example.com".to_owned(),
        "eve\n@example.com".to_owned(),
        format!("{}@example.com", "a".repeat(500)),
        "@".to_owned(),
    ] {
        let (status, body) = request_token(&server, &hostile, "secret", 1).await;
        unparsable(status, &body);
    }
    let (status, body) = server
        .call(
            "POST",
            REQUEST_TOKEN,
            None,
            Some(json!({"client_secret": "s", "email": 5, "send_attempt": 1})),
        )
        .await;
    unparsable(status, &body);
    // Synapse names every missing parameter at once.
    let (status, body) = server
        .call(
            "POST",
            REQUEST_TOKEN,
            None,
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_MISSING_PARAM");
    assert_eq!(
        body["error"],
        "Missing params: ['client_secret', 'send_attempt']"
    );
    for secret in ["", "has space", "nul\u{0}", &"s".repeat(256)] {
        let (status, body) = request_token(&server, "x@example.com", secret, 1).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errcode"], "M_INVALID_PARAM");
        assert_eq!(body["error"], "Invalid client_secret parameter");
    }
    // A next_link on the machine itself.
    let (status, body) = server
        .call(
            "POST",
            REQUEST_TOKEN,
            None,
            Some(
                json!({"client_secret": "s", "email": "x@example.com", "send_attempt": 1,
                        "next_link": "file:///etc/passwd"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_INVALID_PARAM");

    // Nothing was queued or kept, and no account made.
    assert_eq!(count(&server, "homekey_mail_outbox").await, 0);
    assert_eq!(count(&server, "threepid_validation_session").await, 0);
    assert_eq!(user_count(&server).await, 0);

    // A made-up session cannot complete the stage, nor can a missing one.
    let (session, _) = begin(&server, "mallory").await;
    let (status, body) = email_stage(&server, &session, "madeup", "secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "Unable to get validated threepid");
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"auth": {"type": EMAIL_STAGE, "session": session}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_MISSING_PARAM");
    assert_eq!(body["error"], "Missing threepid_creds");
    assert_eq!(user_count(&server).await, 0);
}

async fn a_registration_token_bypasses_the_email_stage_when_configured(db: TestDb) {
    let server = Server::start(
        db,
        &config(
            free_port(),
            "registration_requires_token: true\nenable_registration_token_3pid_bypass: true\n",
        ),
    )
    .await;
    assert!(
        server
            .store()
            .create_registration_token("invite", Some(1), None, None)
            .await
            .unwrap()
    );
    // Synapse's flows: the token before the e-mail stage, and the token alone.
    let (session, flows) = begin(&server, "frank").await;
    assert_eq!(
        flows,
        json!([
            {"stages": ["m.login.registration_token", EMAIL_STAGE]},
            {"stages": ["m.login.registration_token"]},
        ])
    );
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(
                json!({"auth": {"type": "m.login.registration_token", "token": "invite",
                                 "session": session}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@frank:example.com");
    assert!(
        server
            .store()
            .user_threepids("@frank:example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn with_inhibited_errors_an_address_in_use_gets_a_made_up_session_and_its_owner_a_mail(
    db: TestDb,
) {
    let server = Server::start(
        db,
        &config(free_port(), "request_token_inhibit_3pid_errors: true\n"),
    )
    .await;
    server.create_user("grace", "grace-password").await;
    server
        .store()
        .change_threepid(
            "@grace:example.com",
            &Threepid::email("grace@example.com").unwrap(),
            true,
            0,
            None,
        )
        .await
        .unwrap();
    let (status, body) = request_token(&server, "grace@example.com", "secret", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sid = body["sid"].as_str().unwrap();
    assert_eq!(sid.len(), 16);
    // No session was made: the made-up one proves nothing, even "confirmed".
    assert_eq!(count(&server, "threepid_validation_session").await, 0);
    // The owner is told instead, with Synapse's subject.
    let mails = mails_to(&server, "grace@example.com").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let text = mails[0].0.clone().unwrap();
    assert!(text.contains("an account already has it"), "{text}");
    assert!(!text.contains(SUBMIT_TOKEN));
}

async fn without_a_required_address_both_flows_are_offered_and_next_link_is_followed(db: TestDb) {
    // Mail on, nothing required: the dummy flow and the e-mail flow, as Synapse offers them.
    let server = Server::start(
        db,
        &format!(
            "public_baseurl: https://example.com/\nenable_registration: true\n\
             enable_registration_without_verification: true\n{}",
            crate::mail::email_section(free_port(), "")
        ),
    )
    .await;
    let (session, flows) = begin(&server, "heidi").await;
    assert_eq!(
        flows,
        json!([{"stages": ["m.login.dummy"]}, {"stages": [EMAIL_STAGE]}])
    );
    // A client may still prove an address, and come back through its next_link.
    let (status, body) = server
        .call(
            "POST",
            REQUEST_TOKEN,
            None,
            Some(
                json!({"client_secret": "heidi-secret", "email": "heidi@example.net",
                        "send_attempt": 1, "next_link": "https://app.example/done?x=1"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sid = body["sid"].as_str().unwrap().to_owned();
    // The same send attempt again (a client retrying): the same session, no second mail.
    let (status, again) = request_token(&server, "heidi@example.net", "heidi-secret", 1).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["sid"], json!(sid));
    assert_eq!(mails_to(&server, "heidi@example.net").await.len(), 1);
    let link = queued_link(&server, "heidi@example.net").await;
    let confirmed = confirm_link(&server, &link).await;
    assert_eq!(confirmed.status(), StatusCode::FOUND);
    assert_eq!(
        confirmed.headers()[LOCATION],
        format!("https://app.example/done?x=1&sid={sid}").as_str()
    );
    let (status, body) = email_stage(&server, &session, &sid, "heidi-secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let threepids = server
        .store()
        .user_threepids("@heidi:example.com")
        .await
        .unwrap();
    assert_eq!(threepids.len(), 1);
}

async fn request_token_is_off_without_an_email_section(db: TestDb) {
    let server = Server::start(
        db,
        "enable_registration: true\nregistration_requires_token: true\n",
    )
    .await;
    let (status, body) = request_token(&server, "ivan@example.com", "secret", 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN");
    assert_eq!(
        body["error"],
        "Email-based registration has been disabled on this server"
    );
    // And the link's page is not served.
    let answer = browser()
        .get(server.url(&format!("{SUBMIT_TOKEN}?sid=a&token=b&client_secret=c")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}

async fn request_token_is_forbidden_while_sign_up_is_off(db: TestDb) {
    let server = Server::start(
        db,
        &format!(
            "public_baseurl: https://example.com/\n{}",
            crate::mail::email_section(free_port(), "")
        ),
    )
    .await;
    let (status, body) = request_token(&server, "ivan@example.com", "secret", 1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    assert_eq!(body["error"], "Registration is disabled on this homeserver");
    assert_eq!(count(&server, "homekey_mail_outbox").await, 0);
}

/// Beside the real Synapse, through the README's nginx config: the e-mail sign-up reaches
/// homekey (requestToken, the link's page, the stage), and Synapse gets the new account with
/// its address.
#[tokio::test]
async fn beside_synapse_through_nginx_a_sign_up_proves_its_address_and_synapse_has_it() {
    let test = "beside_synapse_through_nginx_a_sign_up_proves_its_address_and_synapse_has_it";
    let Some(venv) = crate::support::synapse_venv(test) else {
        return;
    };
    let Some(nginx) =
        crate::synapse_proxy::program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v")
    else {
        return;
    };
    let Some(python) = python_with_aiosmtpd(test) else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let beside = crate::synapse_queue::BesideSynapse::start_with_homekey_config(
        venv,
        TestDb::sqlite().await,
        "https://matrix.example.com/",
        &format!(
            "enable_registration: true\nregistrations_require_3pid: [email]\n{}",
            crate::mail::email_section(port, "")
        ),
    )
    .await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    let root = homekey.admin_token("root", "root-pw").await;
    let http = crate::synapse_proxy::client();
    let proxy = crate::synapse_proxy::Proxy::nginx(&nginx, synapse, homekey, &http).await;
    let call = |path: &str, body: Value| {
        let request = http.post(proxy.url(path)).json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, first) = call(
        "/_matrix/client/v3/register",
        json!({"username": "zoe", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{first}");
    assert_eq!(first["flows"], json!([{"stages": [EMAIL_STAGE]}]));
    let session = first["session"].as_str().unwrap().to_owned();
    let (status, body) = call(
        "/_matrix/client/r0/register/email/requestToken",
        json!({"client_secret": "zoe-secret", "email": "Zoe@Example.com", "send_attempt": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", homekey.log());
    let sid = body["sid"].as_str().unwrap().to_owned();
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", homekey.log());
    let text = received[0].text();
    let prefix = format!("https://matrix.example.com{SUBMIT_TOKEN}?");
    let start = text.find(&prefix).unwrap_or_else(|| panic!("{text}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let path = link.trim_start_matches("https://matrix.example.com");
    let confirmed = confirm_link_at(&proxy.url(""), path).await;
    assert_eq!(confirmed.status(), StatusCode::OK, "{}", proxy.log());

    let auth = json!({"type": EMAIL_STAGE, "session": session,
                      "threepid_creds": {"sid": sid, "client_secret": "zoe-secret"}});
    let (status, body) = call("/_matrix/client/v3/register", json!({ "auth": auth })).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", homekey.log());
    assert_eq!(body["user_id"], "@zoe:example.com");
    let token = body["access_token"].as_str().unwrap().to_owned();

    // Synapse has the account with its address (homekey gives it the addresses it keeps).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, user) = synapse
            .get("/_synapse/admin/v2/users/@zoe:example.com", &root)
            .await;
        let has_it = status == StatusCode::OK
            && user["threepids"].as_array().is_some_and(|threepids| {
                threepids
                    .iter()
                    .any(|t| t["medium"] == "email" && t["address"] == "zoe@example.com")
            });
        if has_it {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{status} {user}\nhomekey:\n{}\nSynapse:\n{}",
            homekey.log(),
            synapse.log_tail()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // homekey's sign-up page proves an address by a mailed code: Matrix 2.0 clients are
    // offered it through the proxy too (tests/it/oauth_sign_up_email.rs runs it).
    let discovery: Value = http
        .get(proxy.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(discovery["issuer"].is_string(), "{discovery}");
    assert_eq!(
        discovery["prompt_values_supported"],
        json!(["create"]),
        "{discovery}"
    );
    // The new token works on Synapse at once, through the proxy.
    let whoami = http
        .get(proxy.url("/_matrix/client/v3/account/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), StatusCode::OK);
}
