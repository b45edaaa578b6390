//! The admin console's account pages (issue 28), over HTTP against `homekey serve`: the users
//! list's e-mail search, type and guest filters and sorting; creating a user with a
//! generated or a typed password; a reset with a generated password or a mailed link; and
//! the deliveries page (mail not sent, work owed to Synapse) with its "try again now".

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_console::{CONSOLE, Console, make_admin, start};
use crate::mail::{Smtp, email_section, python_with_aiosmtpd};
use crate::server::{Server, raw_execute, server_tests};
use crate::support::{TestDb, free_port};

server_tests!(
    the_users_list_finds_by_email_narrows_by_type_and_guests_and_sorts,
    an_admin_creates_users_with_a_generated_or_a_typed_password,
    bad_input_on_the_create_form_creates_nothing,
    a_generated_password_is_shown_once_and_the_devices_stay_signed_in,
    a_reset_link_is_mailed_from_the_users_page,
    unsent_mail_waits_on_the_deliveries_page_and_goes_out_when_tried_again,
    work_owed_to_a_synapse_that_is_down_is_listed_and_tried_again,
);

/// The user IDs a users page lists, in its order.
fn listed(body: &str) -> Vec<String> {
    body.split("href=\"user?id=")
        .skip(1)
        .map(|rest| {
            let encoded = &rest[..rest.find('"').unwrap()];
            form_urlencoded::parse(format!("id={encoded}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        })
        .collect()
}

/// The generated password a page shows, if any.
fn shown_password(body: &str) -> Option<String> {
    let start = body.find("id=\"generated-password\"")?;
    let text = &body[start..];
    let text = &text[text.find('>')? + 1..];
    Some(text[..text.find('<')?].to_owned())
}

/// How many accounts the server has (deactivated and guests too), by the Admin API.
async fn user_count(server: &Server, admin_token: &str) -> i64 {
    let (status, body) = server
        .call(
            "GET",
            "/_synapse/admin/v2/users?deactivated=true&guests=true&limit=1",
            Some(admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["total"].as_i64().unwrap()
}

async fn signed_in(console: &str) -> Console {
    let mut browser = Console::new(console);
    let answer = browser.sign_in("alice", "alice-pw").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

async fn the_users_list_finds_by_email_narrows_by_type_and_guests_and_sorts(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    for name in ["bob", "carol", "dave"] {
        server.create_user(name, &format!("{name}-pw")).await;
    }
    let config = &server.db.config;
    raw_execute(
        config,
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
         VALUES ('@bob:example.com', 'email', 'bob@mail.example.org', 0, 0)",
        &[],
    )
    .await;
    raw_execute(
        config,
        "UPDATE users SET user_type = 'bot' WHERE name = '@carol:example.com'",
        &[],
    )
    .await;
    raw_execute(
        config,
        "UPDATE users SET is_guest = 1 WHERE name = '@dave:example.com'",
        &[],
    )
    .await;
    // Creation times in the reverse of the names' order.
    for (name, created) in [("alice", 400), ("bob", 300), ("carol", 200), ("dave", 100)] {
        raw_execute(
            config,
            &format!("UPDATE users SET creation_ts = {created} WHERE name = '@{name}:example.com'"),
            &[],
        )
        .await;
    }
    let mut browser = signed_in(&console).await;
    let mut list = async |query: &str| {
        let answer = browser.get(&format!("{CONSOLE}?{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
        listed(&answer.body)
    };
    let ids = |names: &[&str]| -> Vec<String> {
        names.iter().map(|n| format!("@{n}:example.com")).collect()
    };

    // Guests are left out unless asked for.
    assert_eq!(list("").await, ids(&["alice", "bob", "carol"]));
    assert_eq!(
        list("guests=on").await,
        ids(&["alice", "bob", "carol", "dave"])
    );
    // An e-mail address, whole or in part with its @; a user ID; a name.
    assert_eq!(list("q=bob%40mail.example.org").await, ids(&["bob"]));
    assert_eq!(list("q=BOB%40MAIL").await, ids(&["bob"]));
    assert_eq!(list("q=%40carol").await, ids(&["carol"]));
    assert_eq!(list("q=example.org").await, Vec::<String>::new());
    // User types.
    assert_eq!(list("type=bot").await, ids(&["carol"]));
    assert_eq!(list("type=regular").await, ids(&["alice", "bob"]));
    assert_eq!(list("type=support").await, Vec::<String>::new());
    // Sorted by creation, both ways; by name descending.
    assert_eq!(
        list("guests=on&sort=created").await,
        ids(&["dave", "carol", "bob", "alice"])
    );
    assert_eq!(
        list("guests=on&sort=created&dir=desc").await,
        ids(&["alice", "bob", "carol", "dave"])
    );
    assert_eq!(
        list("sort=name&dir=desc").await,
        ids(&["carol", "bob", "alice"])
    );
    // What the form cannot send counts as its default.
    assert_eq!(
        list("sort=password_hash&type=%00&dir=sideways").await,
        ids(&["alice", "bob", "carol"])
    );
    // The pages' links keep the filters and the order.
    let answer = browser
        .get(&format!(
            "{CONSOLE}?guests=on&sort=created&dir=desc&limit=2"
        ))
        .await;
    assert_eq!(listed(&answer.body), ids(&["alice", "bob"]));
    let next = answer.body.split("id=\"next\" href=\"").nth(1).unwrap();
    let next = next[..next.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    let answer = browser
        .get(&format!("{CONSOLE}{}", next.trim_start_matches("./")))
        .await;
    assert_eq!(listed(&answer.body), ids(&["carol", "dave"]));
}

async fn an_admin_creates_users_with_a_generated_or_a_typed_password(db: TestDb) {
    let (server, console) = start(db, "").await;
    let boss = make_admin(&server, "alice", "alice-pw").await;
    let mut browser = signed_in(&console).await;
    let form = browser.get(&format!("{CONSOLE}new-user")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("id=\"create-user\""), "{}", form.body);

    // Generated: shown once, and it logs in.
    let answer = browser
        .post(
            &format!("{CONSOLE}new-user"),
            &[
                ("csrf", &form.csrf()),
                ("user", "erin"),
                ("password_choice", "generate"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("@erin:example.com was created."));
    let password = shown_password(&answer.body).expect("the generated password shown");
    assert_eq!(password.len(), 23, "four groups of five");
    let (status, body) = server.login("erin", &password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, erin) = server
        .call(
            "GET",
            "/_synapse/admin/v2/users/@erin:example.com",
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(erin["admin"], json!(false), "{erin}");
    assert_eq!(erin["displayname"], json!("erin"), "{erin}");
    // The user's page does not show it again.
    let page = browser
        .get(&format!("{CONSOLE}user?id=%40erin%3Aexample.com"))
        .await;
    assert!(!page.body.contains(&password));

    // Typed twice, a full user ID, a display name, an admin.
    let answer = browser
        .post(
            &format!("{CONSOLE}new-user"),
            &[
                ("csrf", &form.csrf()),
                ("user", "@frank:example.com"),
                ("displayname", "Frank <b>the</b> Admin"),
                ("password_choice", "type"),
                ("password", "frank-typed-pw"),
                ("password_again", "frank-typed-pw"),
                ("admin", "on"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        shown_password(&answer.body),
        None,
        "a typed one is not shown"
    );
    let (status, body) = server.login("frank", "frank-typed-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, frank) = server
        .call(
            "GET",
            "/_synapse/admin/v2/users/@frank:example.com",
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(frank["admin"], json!(true), "{frank}");
    assert_eq!(frank["displayname"], json!("Frank <b>the</b> Admin"));
    let page = browser
        .get(&format!("{CONSOLE}user?id=%40frank%3Aexample.com"))
        .await;
    assert!(
        page.body.contains("Frank &lt;b&gt;the&lt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>the"));

    // Audited as the admin.
    let created: Vec<_> = server
        .store()
        .list_audit(&homekey::store::AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.action == "create_user")
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    for record in &created {
        assert_eq!(record.actor, "@alice:example.com", "{record:?}");
        assert_eq!(record.details["client_address"], "127.0.0.1", "{record:?}");
    }
    let audit = browser
        .get(&format!("{CONSOLE}audit?action=create_user"))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert!(
        audit.body.contains("127.0.0.1"),
        "the address shown: {}",
        audit.body
    );
    assert!(!server.log().contains(&password), "no password in the log");
}

/// A form's fields, as posted.
type Fields<'a> = &'a [(&'a str, &'a str)];

async fn bad_input_on_the_create_form_creates_nothing(db: TestDb) {
    let (server, console) = start(db, "").await;
    let boss = make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let mut browser = signed_in(&console).await;
    let csrf = browser.get(&format!("{CONSOLE}new-user")).await.csrf();
    let before = user_count(&server, &boss).await;
    let long = "a".repeat(300);
    let cases: &[(Fields, StatusCode, &str)] = &[
        (
            &[("user", "bob")],
            StatusCode::CONFLICT,
            "@bob:example.com is taken",
        ),
        (
            &[("user", "BOB")],
            StatusCode::BAD_REQUEST,
            "can only contain",
        ),
        (
            &[("user", "")],
            StatusCode::BAD_REQUEST,
            "Enter a user name",
        ),
        (&[], StatusCode::BAD_REQUEST, "Enter a user name"),
        (
            &[("user", "_hidden")],
            StatusCode::BAD_REQUEST,
            "may not begin with _",
        ),
        (
            &[("user", "12345")],
            StatusCode::BAD_REQUEST,
            "reserved for guest",
        ),
        (
            &[("user", "@eve:other.org")],
            StatusCode::BAD_REQUEST,
            "not a user of this server",
        ),
        (&[("user", "eve\0x")], StatusCode::BAD_REQUEST, "characters"),
        (
            &[("user", "<script>")],
            StatusCode::BAD_REQUEST,
            "characters",
        ),
        (&[("user", &long)], StatusCode::BAD_REQUEST, "longer than"),
        (
            &[
                ("user", "eve"),
                ("password_choice", "type"),
                ("password", "one-pw"),
                ("password_again", "two-pw"),
            ],
            StatusCode::BAD_REQUEST,
            "The two passwords differ",
        ),
        (
            &[("user", "eve"), ("password_choice", "type")],
            StatusCode::BAD_REQUEST,
            "Type the password twice",
        ),
        (
            &[
                ("user", "eve"),
                ("password_choice", "type"),
                ("password", &"p".repeat(600)),
                ("password_again", &"p".repeat(600)),
            ],
            StatusCode::BAD_REQUEST,
            "too long",
        ),
    ];
    for (fields, status, says) in cases {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let answer = browser.post(&format!("{CONSOLE}new-user"), &all).await;
        assert_eq!(answer.status, *status, "{fields:?}: {}", answer.body);
        assert!(
            answer.body.contains(says),
            "{fields:?} says {says}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("aria-invalid=\"true\""),
            "{fields:?}: the field marked"
        );
        assert!(!answer.body.contains("<script>"), "escaped");
        assert_eq!(user_count(&server, &boss).await, before, "{fields:?}");
    }
    // The name typed comes back in the form.
    let answer = browser
        .post(
            &format!("{CONSOLE}new-user"),
            &[("csrf", &csrf), ("user", "_hidden"), ("displayname", "Eve")],
        )
        .await;
    assert!(answer.body.contains("value=\"_hidden\""));
    assert!(answer.body.contains("value=\"Eve\""));
    // Not from the console's form: refused, nothing made.
    let answer = browser
        .post(&format!("{CONSOLE}new-user"), &[("user", "eve")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = browser
        .post(
            &format!("{CONSOLE}new-user"),
            &[("csrf", "x"), ("user", "eve")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(user_count(&server, &boss).await, before);
    // Signed out, the form is the sign-in page and nothing is made.
    let mut stranger = Console::new(&console);
    let csrf = stranger.get(CONSOLE).await.csrf();
    let answer = stranger
        .post(
            &format!("{CONSOLE}new-user"),
            &[("csrf", &csrf), ("user", "eve")],
        )
        .await;
    assert!(answer.is_sign_in_page(), "{}", answer.body);
    assert_eq!(user_count(&server, &boss).await, before);
}

async fn a_generated_password_is_shown_once_and_the_devices_stay_signed_in(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-old-pw").await;
    let phone = server.token_for("bob", "bob-old-pw").await;
    let mut browser = signed_in(&console).await;
    let page = browser
        .get(&format!("{CONSOLE}user?id=%40bob%3Aexample.com"))
        .await;
    let answer = browser
        .post(
            &format!("{CONSOLE}reset-password"),
            &[
                ("csrf", &page.csrf()),
                ("user_id", "@bob:example.com"),
                ("password_choice", "generate"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("Shown only this once"));
    assert!(answer.body.contains("devices stay signed in"));
    let password = shown_password(&answer.body).unwrap();
    assert_eq!(server.login("bob", &password).await.0, StatusCode::OK);
    assert_eq!(
        server.login("bob", "bob-old-pw").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = server
        .call(
            "GET",
            "/_matrix/client/v3/account/whoami",
            Some(&phone),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the phone stays signed in");
    // A second generated one differs, and a deactivated account gets none.
    let again = browser
        .post(
            &format!("{CONSOLE}reset-password"),
            &[
                ("csrf", &page.csrf()),
                ("user_id", "@bob:example.com"),
                ("password_choice", "generate"),
            ],
        )
        .await;
    assert_ne!(shown_password(&again.body).unwrap(), password);
    let answer = browser
        .post(
            &format!("{CONSOLE}reset-password"),
            &[
                ("csrf", &page.csrf()),
                ("user_id", "@nobody:example.com"),
                ("password_choice", "generate"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(shown_password(&answer.body), None);
}

/// An e-mail address for `user_id`, as the operator's SQL would add it.
async fn add_address(server: &Server, user_id: &str, address: &str) {
    raw_execute(
        &server.db.config,
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
         VALUES ($1, 'email', $2, 0, 0)",
        &[user_id, address],
    )
    .await;
}

async fn a_reset_link_is_mailed_from_the_users_page(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("a_reset_link_is_mailed_from_the_users_page") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let (server, console) = start(db, &email_section(port, "")).await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-old-pw").await;
    server.create_user("carol", "carol-pw").await;
    add_address(&server, "@bob:example.com", "bob@example.org").await;
    let mut browser = signed_in(&console).await;
    // Offered only to a user with an address.
    let carol = browser
        .get(&format!("{CONSOLE}user?id=%40carol%3Aexample.com"))
        .await;
    assert!(!carol.body.contains("id=\"send-reset-link\""));
    let page = browser
        .get(&format!("{CONSOLE}user?id=%40bob%3Aexample.com"))
        .await;
    assert!(
        page.body.contains("id=\"send-reset-link\""),
        "{}",
        page.body
    );
    let answer = browser
        .post(
            &format!("{CONSOLE}send-reset-link"),
            &[("csrf", &page.csrf()), ("user_id", "@bob:example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("A reset link is on its way to bob@example.org"),
        "{}",
        answer.body
    );
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].header("To"), "bob@example.org");
    assert!(received[0].text().contains("/_homekey/recovery/reset?"));
    // Nothing changed until the user uses it.
    assert_eq!(server.login("bob", "bob-old-pw").await.0, StatusCode::OK);
    // Carol has no address: said, nothing sent.
    let answer = browser
        .post(
            &format!("{CONSOLE}send-reset-link"),
            &[("csrf", &page.csrf()), ("user_id", "@carol:example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("has no e-mail address"),
        "{}",
        answer.body
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(smtp.received().len(), 1);
}

async fn unsent_mail_waits_on_the_deliveries_page_and_goes_out_when_tried_again(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("unsent_mail_waits_on_the_deliveries_page") else {
        return;
    };
    // No SMTP server yet on the port: the first attempt fails, the next is a minute away.
    let port = free_port();
    let (server, console) = start(db, &email_section(port, "")).await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    add_address(&server, "@bob:example.com", "bob@example.org").await;
    let mut browser = signed_in(&console).await;
    let empty = browser.get(&format!("{CONSOLE}deliveries")).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No mail is waiting"), "{}", empty.body);
    assert!(
        !empty.body.contains("Owed to Synapse"),
        "not beside Synapse"
    );
    let page = browser
        .get(&format!("{CONSOLE}user?id=%40bob%3Aexample.com"))
        .await;
    let answer = browser
        .post(
            &format!("{CONSOLE}send-reset-link"),
            &[("csrf", &page.csrf()), ("user_id", "@bob:example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let waiting = loop {
        let page = browser.get(&format!("{CONSOLE}deliveries")).await;
        if page.body.contains("1 attempt ") || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(waiting.body.contains("bob@example.org"), "{}", waiting.body);
    assert!(waiting.body.contains("1 attempt "), "{}", waiting.body);
    assert!(waiting.body.contains("last error"), "{}", waiting.body);
    let id = waiting.body.split("name=\"id\" value=\"").nth(1).unwrap();
    let id = id[..id.find('"').unwrap()].to_owned();

    // The SMTP server is back; "Try again now" sends it well before the minute.
    let smtp = Smtp::start(&python, port, None, None);
    let answer = browser
        .post(
            &format!("{CONSOLE}retry-mail"),
            &[("csrf", &waiting.csrf()), ("id", &id)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("being sent again now"));
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].header("To"), "bob@example.org");
    // Sent: no longer waiting (marked so a moment after the SMTP server took it), and
    // trying it again says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !browser
        .get(&format!("{CONSOLE}deliveries"))
        .await
        .body
        .contains("No mail is waiting")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "still waiting after it was sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = browser
        .post(
            &format!("{CONSOLE}retry-mail"),
            &[("csrf", &waiting.csrf()), ("id", &id)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("No mail is waiting"),
        "{}",
        answer.body
    );
    for bad in ["", "x", "\0", "99999999999999999999"] {
        let answer = browser
            .post(
                &format!("{CONSOLE}retry-mail"),
                &[("csrf", &waiting.csrf()), ("id", bad)],
            )
            .await;
        assert!(
            answer.status.is_client_error(),
            "{bad:?}: {}",
            answer.status
        );
    }
}

async fn work_owed_to_a_synapse_that_is_down_is_listed_and_tried_again(db: TestDb) {
    let logins = Server::start(db.share().await, "").await;
    make_admin(&logins, "alice", "alice-pw").await;
    logins.create_user("bob", "bob-pw").await;
    let (server, console) = start(
        db,
        &crate::account_page::synapse_section("https://matrix.example.com/"),
    )
    .await;
    let mut browser = signed_in(&console).await;
    let empty = browser.get(&format!("{CONSOLE}deliveries")).await;
    assert!(
        empty.body.contains("Nothing is owed to Synapse"),
        "{}",
        empty.body
    );
    // A reset that signs bob out is owed to Synapse, which is down.
    let page = browser
        .get(&format!("{CONSOLE}user?id=%40bob%3Aexample.com"))
        .await;
    let answer = browser
        .post(
            &format!("{CONSOLE}reset-password"),
            &[
                ("csrf", &page.csrf()),
                ("user_id", "@bob:example.com"),
                ("new_password", "bob-new-pw"),
                ("new_password_again", "bob-new-pw"),
                ("logout_devices", "on"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let owed = browser.get(&format!("{CONSOLE}deliveries")).await;
    let row = owed.body.split("id=\"owed\"").nth(1).unwrap();
    assert!(row.contains("@bob:example.com"), "{}", owed.body);
    let answer = browser
        .post(
            &format!("{CONSOLE}retry-synapse"),
            &[("csrf", &owed.csrf()), ("user_id", "@bob:example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("Synapse is still not in line for @bob:example.com"),
        "{}",
        answer.body
    );
    let row = answer.body.split("id=\"owed\"").nth(1).unwrap();
    assert!(row.contains("@bob:example.com"), "still owed");
    let answer = browser
        .post(
            &format!("{CONSOLE}retry-synapse"),
            &[("csrf", &owed.csrf()), ("user_id", "@nobody:example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    drop(server);
}

/// The console in chromium, light and dark, at a desktop's and a phone's width: a user
/// created through the form with a generated password (which then logs in), a refused
/// creation with its message beside the field, and every page of the console, each
/// screenshot (`target/account-page/admin-{light,dark}-{desktop,phone}-*.png`), checked with
/// axe-core (no serious or critical violation) and for sideways scrolling.
#[tokio::test]
async fn in_a_real_browser_the_console_is_toured_light_and_dark_and_creates_a_user() {
    use crate::account_page::{Chromium, DESKTOP, PHONE, Tour, axe_core, scheme_applied};
    use fantoccini::Locator;
    let test = "in_a_real_browser_the_console_is_toured_light_and_dark_and_creates_a_user";
    let Some(axe) = axe_core(test) else {
        return;
    };
    let port = free_port();
    let (server, console) = start(TestDb::sqlite().await, &email_section(port, "")).await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    add_address(&server, "@bob:example.com", "bob@example.org").await;
    server.session_for("bob", "bob-pw").await;
    let widths = [("desktop", DESKTOP), ("phone", PHONE)];
    let mut problems = Vec::new();
    for (scheme, dark) in [("light", false), ("dark", true)] {
        let chromium = if dark {
            Chromium::start_dark(test).await
        } else {
            Chromium::start(test).await
        };
        let Some(chromium) = chromium else {
            return;
        };
        let client = chromium.client.clone();
        let mut tour = Tour {
            chromium: &chromium,
            prefix: format!("admin-{scheme}"),
            widths: &widths,
            axe: Some(&axe),
            problems: Vec::new(),
            checked: 0,
        };
        let newcomer = format!("erin-{scheme}");
        let result = async {
            let page = |path: &str| format!("{console}{CONSOLE}{path}");
            client.goto(&page("")).await?;
            client.wait().for_element(Locator::Id("sign-in")).await?;
            let (_, prefers_dark) = scheme_applied(&client).await?;
            assert_eq!(prefers_dark, dark, "{scheme}");
            tour.check("1-sign-in").await?;
            crate::account_page::sign_in_with(&client, "alice", "alice-pw").await?;
            client.wait().for_element(Locator::Id("users")).await?;
            tour.check("2-users").await?;

            // Create a user: a taken name first, said beside the field.
            client.goto(&page("new-user")).await?;
            client
                .wait()
                .for_element(Locator::Id("create-user"))
                .await?;
            tour.check("3-new-user").await?;
            client
                .find(Locator::Id("user"))
                .await?
                .send_keys("bob")
                .await?;
            client
                .find(Locator::Id("create-user"))
                .await?
                .click()
                .await?;
            let error = client.wait().for_element(Locator::Id("user-error")).await?;
            assert!(error.text().await?.contains("@bob:example.com is taken"));
            tour.check("4-new-user-taken").await?;
            let field = client.find(Locator::Id("user")).await?;
            field.clear().await?;
            field.send_keys(&newcomer).await?;
            client.find(Locator::Id("admin")).await?.click().await?;
            client
                .find(Locator::Id("create-user"))
                .await?
                .click()
                .await?;
            let shown = client
                .wait()
                .for_element(Locator::Id("generated-password"))
                .await?;
            let password = shown.text().await?;
            tour.check("5-user-created").await?;
            assert_eq!(
                server.login(&newcomer, password.trim()).await.0,
                reqwest::StatusCode::OK,
                "the password shown logs in"
            );
            client.find(Locator::Id("to-user")).await?.click().await?;
            client.wait().for_element(Locator::Id("details")).await?;
            let admin = client.find(Locator::Id("admin")).await?.text().await?;
            assert_eq!(admin, "yes", "made an admin");

            for (name, path) in [
                ("6-user", "user?id=%40bob%3Aexample.com"),
                ("7-audit", "audit"),
                ("8-registration-tokens", "registration-tokens"),
                ("9-oauth-clients", "oauth-clients"),
                ("10-deliveries", "deliveries"),
            ] {
                client.goto(&page(path)).await?;
                client.wait().for_element(Locator::Css("main h1")).await?;
                tour.check(name).await?;
            }
            client.find(Locator::Id("sign-out")).await?.click().await?;
            client.wait().for_element(Locator::Id("sign-in")).await?;
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        problems.extend(std::mem::take(&mut tour.problems));
        let checked = tour.checked;
        chromium.close().await;
        result.unwrap();
        assert_eq!(
            checked,
            2 * 10,
            "every page at both widths went through axe-core"
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The console's guards in chromium: a non-admin refused at sign-in; the cookie out of
/// scripts' reach with its flags; a reset that keeps the user's devices, then one that
/// signs them out (checked through the client API); a form whose CSRF token was taken out
/// refused with nothing made; a demoted admin's session ended at the next page; an idle
/// session ended.
#[tokio::test]
async fn in_a_real_browser_the_consoles_guards_hold() {
    use crate::account_page::{Chromium, sign_in_with};
    use crate::admin_console::REFUSED;
    use fantoccini::Locator;
    let test = "in_a_real_browser_the_consoles_guards_hold";
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let (server, console) = start(TestDb::sqlite().await, "  idle_timeout: 8s\n").await;
    make_admin(&server, "alice", "alice-pw").await;
    let carol = make_admin(&server, "carol", "carol-pw").await;
    server.create_user("bob", "bob-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    let client = chromium.client.clone();
    let page = |path: &str| format!("{console}{CONSOLE}{path}");
    let result = async {
        // Not an admin: the answer of a wrong password.
        client.goto(&page("")).await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        sign_in_with(&client, "bob", "bob-pw").await?;
        let error = client.wait().for_element(Locator::Id("error")).await?;
        assert_eq!(error.text().await?, REFUSED);
        client.find(Locator::Id("user")).await?.clear().await?;
        sign_in_with(&client, "alice", "alice-pw").await?;
        client.wait().for_element(Locator::Id("users")).await?;
        let cookies = client.get_all_cookies().await?;
        let cookie = cookies
            .iter()
            .find(|cookie| cookie.name() == "homekey_admin")
            .expect("the console's cookie");
        assert_eq!(cookie.http_only(), Some(true));
        // SameSite's type is the cookie crate's, which fantoccini does not name.
        assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
        assert_eq!(cookie.path(), Some("/_homekey/admin"));
        let script_cookies = client.execute("return document.cookie", vec![]).await?;
        assert_eq!(script_cookies, json!(""));

        // Reset, keeping bob's devices; then signing them out.
        for (password, sign_out) in [("bob-second-pw", false), ("bob-third-pw", true)] {
            client.goto(&page("user?id=%40bob%3Aexample.com")).await?;
            client
                .wait()
                .for_element(Locator::Id("reset-password"))
                .await?;
            for field in ["new_password", "new_password_again"] {
                client
                    .find(Locator::Id(field))
                    .await?
                    .send_keys(password)
                    .await?;
            }
            if sign_out {
                client
                    .find(Locator::Id("logout_devices"))
                    .await?
                    .click()
                    .await?;
            }
            client
                .find(Locator::Id("reset-password"))
                .await?
                .click()
                .await?;
            let notice = client.wait().for_element(Locator::Id("notice")).await?;
            assert!(notice.text().await?.contains("The password was reset"));
            let alive = server.whoami(Some(&bob)).await.0;
            let expected = if sign_out {
                reqwest::StatusCode::UNAUTHORIZED
            } else {
                reqwest::StatusCode::OK
            };
            assert_eq!(
                alive, expected,
                "bob's phone after a reset signing out: {sign_out}"
            );
            assert_eq!(
                server.login("bob", password).await.0,
                reqwest::StatusCode::OK
            );
        }

        // A form without its CSRF token: refused, nothing made.
        client.goto(&page("new-user")).await?;
        client
            .wait()
            .for_element(Locator::Id("create-user"))
            .await?;
        client
            .execute(
                "document.querySelector('form[action=new-user] input[name=csrf]').remove()",
                vec![],
            )
            .await?;
        client
            .find(Locator::Id("user"))
            .await?
            .send_keys("mallory")
            .await?;
        client
            .find(Locator::Id("create-user"))
            .await?
            .click()
            .await?;
        let error = client.wait().for_element(Locator::Id("error")).await?;
        assert!(error.text().await?.contains("Nothing was done"));
        assert_eq!(
            server.login("mallory", "x").await.0,
            reqwest::StatusCode::FORBIDDEN
        );
        let (status, _) = server
            .call(
                "GET",
                "/_synapse/admin/v2/users/@mallory:example.com",
                Some(&carol),
                None,
            )
            .await;
        assert_eq!(
            status,
            reqwest::StatusCode::NOT_FOUND,
            "mallory was not made"
        );

        // Demoted by another admin: the next page is the sign-in, saying why.
        client.goto(&page("")).await?;
        client.wait().for_element(Locator::Id("users")).await?;
        let (status, body) = server
            .call(
                "PUT",
                "/_synapse/admin/v2/users/@alice:example.com",
                Some(&carol),
                Some(json!({"admin": false})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        client.refresh().await?;
        let error = client.wait().for_element(Locator::Id("error")).await?;
        assert!(error.text().await?.contains(crate::admin_console::ENDED));
        client.find(Locator::Id("sign-in")).await?;

        // Left idle past idle_timeout (8 s here: long enough for the steps above, whose
        // logins hash under a debug build), a session has ended.
        client.find(Locator::Id("user")).await?.clear().await?;
        sign_in_with(&client, "carol", "carol-pw").await?;
        client.wait().for_element(Locator::Id("users")).await?;
        tokio::time::sleep(std::time::Duration::from_millis(9000)).await;
        client.refresh().await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        assert!(client.find(Locator::Id("users")).await.is_err());
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        chromium.shot("admin-guards-failed").await;
    }
    chromium.close().await;
    result.unwrap();
}

#[tokio::test]
async fn sqlite_beside_a_real_synapse_the_consoles_changes_reach_it() {
    let test = "sqlite_beside_a_real_synapse_the_consoles_changes_reach_it";
    the_consoles_changes_reach_synapse(test, Some(TestDb::sqlite().await)).await;
}

#[tokio::test]
async fn postgres_beside_a_real_synapse_the_consoles_changes_reach_it() {
    let test = "postgres_beside_a_real_synapse_the_consoles_changes_reach_it";
    the_consoles_changes_reach_synapse(test, TestDb::postgres(test).await).await;
}

/// Beside the real Synapse, checked through Synapse itself: a user created on the console
/// exists in Synapse (its token works there, its display name is Synapse's); a lock and an
/// unlock reach Synapse's record of the user; a reset signing the devices out ends the
/// token in Synapse.
async fn the_consoles_changes_reach_synapse(test: &str, db: Option<TestDb>) {
    use crate::admin_console::console_of;
    use crate::oauth_grants::wait_until_synapse_refuses;
    let (Some(venv), Some(db)) = (crate::support::synapse_venv(test), db) else {
        return;
    };
    let beside = crate::synapse_queue::BesideSynapse::start_with_homekey_config(
        venv,
        db,
        "https://matrix.example.com/",
        "admin_console:\n  enabled: true\n  listen: 127.0.0.1:0\n",
    )
    .await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    let root = homekey.admin_token("root", "root-pw").await;
    let mut browser = Console::new(&console_of(homekey));
    let signed_in = browser.sign_in("root", "root-pw").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );

    let form = browser.get(&format!("{CONSOLE}new-user")).await;
    let created = browser
        .post(
            &format!("{CONSOLE}new-user"),
            &[
                ("csrf", &form.csrf()),
                ("user", "erin"),
                ("displayname", "Erin Example"),
                ("password_choice", "type"),
                ("password", "erin-typed-pw"),
                ("password_again", "erin-typed-pw"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let erin = homekey.token_for("erin", "erin-typed-pw").await;
    let (status, body) = synapse.whoami(&erin).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["user_id"], "@erin:example.com");
    let (status, body) = synapse
        .get("/_synapse/admin/v2/users/@erin:example.com", &root)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["displayname"], "Erin Example", "Synapse's profile");

    let page = browser
        .get(&format!("{CONSOLE}user?id=%40erin%3Aexample.com"))
        .await;
    let set_locked = async |browser: &mut Console, locked: &str| {
        let answer = browser
            .post(
                &format!("{CONSOLE}set-locked"),
                &[
                    ("csrf", &page.csrf()),
                    ("user_id", "@erin:example.com"),
                    ("locked", locked),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    };
    set_locked(&mut browser, "on").await;
    let erin_id = "@erin:example.com";
    assert_eq!(beside.synapse_user(&root, erin_id).await["locked"], true);
    assert_eq!(
        homekey.whoami(Some(&erin)).await.0,
        StatusCode::UNAUTHORIZED
    );
    set_locked(&mut browser, "off").await;
    assert_eq!(beside.synapse_user(&root, erin_id).await["locked"], false);
    let (status, body) = synapse.whoami(&erin).await;
    assert_eq!(status, StatusCode::OK, "unlocked, the token works: {body}");

    let reset = browser
        .post(
            &format!("{CONSOLE}reset-password"),
            &[
                ("csrf", &page.csrf()),
                ("user_id", "@erin:example.com"),
                ("password_choice", "generate"),
                ("logout_devices", "on"),
            ],
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert!(
        reset
            .body
            .contains("every device of this user was signed out"),
        "the page says what was done: {}",
        reset.body
    );
    wait_until_synapse_refuses(synapse, &erin).await;
    assert_eq!(
        homekey.whoami(Some(&erin)).await.0,
        StatusCode::UNAUTHORIZED
    );
}
