//! The account page's e-mail addresses (issue 26, item 1): an address added by the code
//! mailed to it and the password, removed with the password, refused with a message when it
//! is no address, already the user's, or another account's; codes that run out; and without
//! `email:` the add explained. Driven as a browser drives the page (form posts, the cookie
//! kept by hand); the code read from the mail a real SMTP server (aiosmtpd) received, or,
//! its SMTP server absent, from the mail as queued.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::account_page::{Answer, Browser, PAGE, synapse_section};
use crate::email_reset::mails_to;
use crate::mail::{Smtp, email_section, python_with_aiosmtpd};
use crate::server::{Server, raw_execute, server_tests};
use crate::support::{TestDb, free_port};

server_tests!(
    an_address_is_added_by_its_mailed_code_and_removed_with_the_password,
    bad_taken_and_own_addresses_are_refused_a_code_runs_out_and_sending_is_limited,
    without_an_email_section_adding_is_explained_and_removing_still_works,
);

const ALICE: &str = "@alice:example.com";
const EMAILS: &str = "?action=email_addresses";

/// The account page beside an absent Synapse with `email:` (SMTP on `smtp_port`, if any),
/// the same database served standalone (Admin API, logins), alice, and an admin's token.
async fn start(db: TestDb, smtp_port: Option<u16>) -> (Server, Server, String) {
    let logins = Server::start(db.share().await, "").await;
    let mut config = synapse_section("https://matrix.example.com/");
    if let Some(port) = smtp_port {
        config.push_str(&email_section(port, ""));
    }
    let server = Server::start(db, &config).await;
    server.create_user("alice", "alice-pw").await;
    let admin = logins.admin_token("root", "root-pw").await;
    (server, logins, admin)
}

/// The account's addresses as the Admin API lists them.
async fn admin_addresses(logins: &Server, admin: &str, user: &str) -> Vec<String> {
    let (status, body) = logins
        .call(
            "GET",
            &format!("/_synapse/admin/v2/users/{user}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["threepids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["medium"], "email");
            t["address"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn set_addresses(logins: &Server, admin: &str, user: &str, addresses: &[&str]) {
    let threepids: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"medium": "email", "address": a}))
        .collect();
    let (status, body) = logins
        .call(
            "PUT",
            &format!("/_synapse/admin/v2/users/{user}"),
            Some(admin),
            Some(json!({"threepids": threepids})),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

async fn login_by_email(logins: &Server, address: &str) -> StatusCode {
    logins
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": address},
                "password": "alice-pw",
            })),
        )
        .await
        .0
}

/// The sign-in to this page is older than a few minutes: the password is asked again.
async fn password_long_ago(server: &Server) {
    raw_execute(
        &server.db.config,
        "UPDATE homekey_web_sessions SET verified_ms = 0",
        &[],
    )
    .await;
}

/// The six digits in a mail's text.
fn code_in(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

fn assert_page(answer: &Answer, status: StatusCode, text: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(
        answer.body.contains(text),
        "{text:?} not in {}",
        answer.body
    );
}

async fn an_address_is_added_by_its_mailed_code_and_removed_with_the_password(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("an_address_is_added_by_its_mailed_code") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let (server, logins, admin) = start(db, Some(port)).await;
    let mut browser = Browser::new(&server);
    let page = browser.signed_in(EMAILS, "alice", "alice-pw").await;
    assert_page(&page, StatusCode::OK, "id=\"no-emails\"");
    let csrf = page.csrf();

    // The password is asked before a code is sent: a wrong one sends nothing.
    password_long_ago(&server).await;
    let page = browser.get(&format!("{PAGE}{EMAILS}")).await;
    assert_page(&page, StatusCode::OK, "Your password, to confirm");
    let add = |password| {
        [
            ("csrf", csrf.as_str()),
            ("address", " Alice@Example.COM "),
            ("password", password),
        ]
    };
    let refused = browser.post("email-add", &add("guess")).await;
    assert_page(
        &refused,
        StatusCode::BAD_REQUEST,
        "Your password is not right.",
    );
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_mail_outbox WHERE recipient <> $1",
                ""
            )
            .await,
        0
    );

    let sent = browser.post("email-add", &add("alice-pw")).await;
    assert_page(
        &sent,
        StatusCode::OK,
        "We sent a code to alice@example.com.",
    );
    assert!(sent.body.contains("The code we sent to alice@example.com"));
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].parsed["rcpt_tos"], json!(["alice@example.com"]));
    let code = code_in(&received[0].text());
    assert!(!server.log().contains(&code));

    // A wrong code costs a try and adds nothing.
    let wrong = if code == "123456" { "654321" } else { "123456" };
    let refused = browser
        .post("email-confirm", &[("csrf", &csrf), ("code", wrong)])
        .await;
    assert_page(
        &refused,
        StatusCode::BAD_REQUEST,
        "That code is not right. 4 tries left.",
    );
    assert!(admin_addresses(&logins, &admin, ALICE).await.is_empty());

    let added = browser
        .post("email-confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_page(
        &added,
        StatusCode::OK,
        "alice@example.com was added to your account.",
    );
    assert!(
        added
            .body
            .contains("<span class=\"row-title mono\">alice@example.com</span>")
    );
    assert!(!added.body.contains("The code we sent"));
    assert_eq!(
        admin_addresses(&logins, &admin, ALICE).await,
        ["alice@example.com"]
    );
    assert_eq!(
        login_by_email(&logins, "alice@example.com").await,
        StatusCode::OK
    );
    // Used: the code adds nothing again.
    let again = browser
        .post("email-confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_page(&again, StatusCode::BAD_REQUEST, "No code is waiting");
    let audited = |action: &'static str| {
        let db = &server.db;
        async move {
            db.count(
                &format!(
                    "SELECT COUNT(*) FROM homekey_audit_log WHERE action = '{action}' \
                     AND actor = $1 AND target = actor"
                ),
                ALICE,
            )
            .await
        }
    };
    assert_eq!(audited("add_email").await, 1);

    // Removing: a confirmation first, with the password again.
    password_long_ago(&server).await;
    let ask = browser
        .post(
            "email-remove",
            &[("csrf", &csrf), ("address", "alice@example.com")],
        )
        .await;
    assert_page(&ask, StatusCode::OK, "Remove the address");
    assert!(ask.body.contains("Your password, to confirm"));
    let remove = |password| {
        [
            ("csrf", csrf.as_str()),
            ("address", "alice@example.com"),
            ("confirmed", "yes"),
            ("password", password),
        ]
    };
    let refused = browser.post("email-remove", &remove("guess")).await;
    assert_page(
        &refused,
        StatusCode::BAD_REQUEST,
        "Your password is not right.",
    );
    assert_eq!(
        admin_addresses(&logins, &admin, ALICE).await,
        ["alice@example.com"]
    );
    let removed = browser.post("email-remove", &remove("alice-pw")).await;
    assert_page(
        &removed,
        StatusCode::OK,
        "alice@example.com was removed from your account.",
    );
    assert!(removed.body.contains("id=\"no-emails\""));
    assert!(admin_addresses(&logins, &admin, ALICE).await.is_empty());
    assert_eq!(
        login_by_email(&logins, "alice@example.com").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(audited("remove_email").await, 1);
    assert!(!server.log().contains("alice-pw"));
}

async fn bad_taken_and_own_addresses_are_refused_a_code_runs_out_and_sending_is_limited(
    db: TestDb,
) {
    // An SMTP server that is not there: the mail waits in the queue, read from there.
    let (server, logins, admin) = start(db, Some(free_port())).await;
    server.create_user("bob", "bob-pw").await;
    set_addresses(&logins, &admin, "@bob:example.com", &["bob@example.com"]).await;
    set_addresses(&logins, &admin, ALICE, &["alice@example.com"]).await;
    let mut browser = Browser::new(&server);
    let csrf = browser.signed_in(EMAILS, "alice", "alice-pw").await.csrf();
    let add = |address| [("csrf", csrf.as_str()), ("address", address)];

    let refused = browser.post("email-add", &add("not-an-address")).await;
    assert_page(
        &refused,
        StatusCode::BAD_REQUEST,
        "This is not an e-mail address.",
    );
    let refused = browser.post("email-add", &add("ALICE@example.com")).await;
    assert_page(
        &refused,
        StatusCode::BAD_REQUEST,
        "This address is already yours.",
    );
    let refused = browser.post("email-add", &add("Bob@Example.com")).await;
    assert_page(
        &refused,
        StatusCode::CONFLICT,
        "This address belongs to another account on this server",
    );
    assert!(
        !refused.body.contains("bob:example.com"),
        "{}",
        refused.body
    );
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_mail_outbox WHERE recipient <> $1",
                ""
            )
            .await,
        0,
        "no mail for a refused address"
    );

    // Five wrong codes, and the code is gone: even the right one no longer adds.
    let sent = browser.post("email-add", &add("carol@example.com")).await;
    assert_page(
        &sent,
        StatusCode::OK,
        "We sent a code to carol@example.com.",
    );
    let mails = mails_to(&server, "carol@example.com").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let code = code_in(mails[0].0.as_deref().unwrap());
    for left in (1..5).rev() {
        let refused = browser
            .post("email-confirm", &[("csrf", &csrf), ("code", "abcdef")])
            .await;
        assert_page(
            &refused,
            StatusCode::BAD_REQUEST,
            &format!("That code is not right. {left} tr"),
        );
    }
    let refused = browser
        .post("email-confirm", &[("csrf", &csrf), ("code", "abcdef")])
        .await;
    assert_page(&refused, StatusCode::BAD_REQUEST, "cannot be tried again");
    let refused = browser
        .post("email-confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_page(&refused, StatusCode::BAD_REQUEST, "No code is waiting");
    assert_eq!(
        admin_addresses(&logins, &admin, ALICE).await,
        ["alice@example.com"]
    );

    // A code sent to an address another account takes meanwhile adds nothing.
    browser.post("email-add", &add("dave@example.com")).await;
    let code = code_in(
        mails_to(&server, "dave@example.com").await[0]
            .0
            .as_deref()
            .unwrap(),
    );
    set_addresses(&logins, &admin, "@bob:example.com", &["dave@example.com"]).await;
    let refused = browser
        .post("email-confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_page(&refused, StatusCode::CONFLICT, "belongs to another account");
    assert_eq!(
        admin_addresses(&logins, &admin, ALICE).await,
        ["alice@example.com"]
    );

    // `rc_3pid_validation` (Synapse's default: a burst of 5 from one client address) counts
    // the asks about taken addresses too: the sixth is refused and sends nothing.
    let sent = browser.post("email-add", &add("erin@example.com")).await;
    assert_page(&sent, StatusCode::OK, "We sent a code to erin@example.com.");
    let refused = browser.post("email-add", &add("frank@example.com")).await;
    assert_page(
        &refused,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many codes were sent. Try again in",
    );
    assert!(mails_to(&server, "frank@example.com").await.is_empty());
}

async fn without_an_email_section_adding_is_explained_and_removing_still_works(db: TestDb) {
    let (server, logins, admin) = start(db, None).await;
    set_addresses(&logins, &admin, ALICE, &["alice@example.com"]).await;
    let mut browser = Browser::new(&server);
    let page = browser.signed_in(EMAILS, "alice", "alice-pw").await;
    assert_page(
        &page,
        StatusCode::OK,
        "This server cannot send mail, so an address cannot be added here.",
    );
    assert!(!page.body.contains("action=\"email-add\""), "{}", page.body);
    let csrf = page.csrf();
    let refused = browser
        .post(
            "email-add",
            &[("csrf", &csrf), ("address", "other@example.com")],
        )
        .await;
    assert_page(&refused, StatusCode::BAD_REQUEST, "cannot send mail");
    let removed = browser
        .post(
            "email-remove",
            &[
                ("csrf", &csrf),
                ("address", "alice@example.com"),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_page(
        &removed,
        StatusCode::OK,
        "alice@example.com was removed from your account.",
    );
    assert!(admin_addresses(&logins, &admin, ALICE).await.is_empty());
}
