//! The admin console's audit log, registration tokens and OAuth clients pages (issue 28),
//! over HTTP against `homekey serve` on SQLite and PostgreSQL: what the Admin API did shows
//! in the audit log and its filters narrow it, bad filters give the page with a message;
//! tokens made on the page admit sign-ups with the uses and expiry typed, refused input
//! makes nothing, a deleted token is no longer valid; registered clients are listed and
//! deleted, beside a real Synapse with their sessions; no form works without its CSRF token.
//! And the three pages in chromium, checked with axe-core.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_console::{Answer, CONSOLE, Console, console_of, make_admin, start};
use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    the_audit_log_shows_the_admin_apis_changes_and_its_filters_narrow_them,
    bad_audit_filters_give_the_page_with_a_message,
    registration_tokens_are_made_changed_and_deleted_on_the_page,
    refused_token_fields_make_nothing,
    registered_oauth_clients_are_listed_and_deleted,
);

const TOKENS_API: &str = "/_synapse/admin/v1/registration_tokens";
const VALIDITY: &str = "/_matrix/client/v1/register/m.login.registration_token/validity";
/// Sign-up with registration tokens, and validity checks without their rate limit.
const SIGN_UP_WITH_TOKENS: &str = "enable_registration: true\n\
     registration_requires_token: true\n\
     rc_registration_token_validity: {per_second: 1000, burst_count: 1000}\n";
/// homekey beside a Synapse that is not there: OAuth clients may register.
const BESIDE_NO_SYNAPSE: &str = "public_baseurl: https://matrix.example.com/\n\
     synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: console-pages-secret-0123456789abcdef\n";

fn now_ms() -> i64 {
    homekey::accounts::now_ms()
}

/// A day's date (UTC), `days` from today, as a `date` input gives it.
fn date_in(days: i64) -> String {
    homekey::utc::format_datetime_local(now_ms() + days * 86_400_000)[..10].to_owned()
}

/// The audit page with `query` (already encoded).
async fn audit(browser: &mut Console, query: &str) -> Answer {
    browser.get(&format!("{CONSOLE}audit?{query}")).await
}

/// The page's entries, in its order: each `(action, target)` as the page shows them.
fn entries(page: &Answer) -> Vec<String> {
    let Some(list) = page.body.split("id=\"entries\"").nth(1) else {
        panic!("no list of entries: {}", page.body);
    };
    let list = list.split("</ul>").next().unwrap();
    list.split("<li class=\"row\">")
        .skip(1)
        .filter(|row| !row.contains("No entry matches."))
        .map(|row| {
            let action = row
                .split("<span class=\"mono\">")
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .unwrap();
            let target = row
                .split(" · ")
                .nth(1)
                .and_then(|rest| rest.split('>').nth(1))
                .and_then(|rest| rest.split('<').next())
                .unwrap_or("-");
            format!("{action} {target}")
        })
        .collect()
}

fn lead(page: &Answer) -> &str {
    let start = page.body.find("id=\"total\">").expect("the total") + 11;
    let end = start + page.body[start..].find("</p>").unwrap();
    &page.body[start..end]
}

async fn the_audit_log_shows_the_admin_apis_changes_and_its_filters_narrow_them(db: TestDb) {
    let (server, console) = start(db, "").await;
    let alice = make_admin(&server, "alice", "alice-pw").await;
    let root = make_admin(&server, "root", "root-pw").await;
    server.create_user("bob", "bob-pw").await;
    server.create_user("carol", "carol-pw").await;
    // Through the Admin API: alice resets bob's password, renames carol; root resets carol's.
    for (token, method, path, body) in [
        (
            &alice,
            "POST",
            "/_synapse/admin/v1/reset_password/@bob:example.com",
            json!({"new_password": "bob-new-pw", "logout_devices": false}),
        ),
        (
            &alice,
            "PUT",
            "/_synapse/admin/v2/users/@carol:example.com",
            json!({"displayname": "Carol"}),
        ),
        (
            &root,
            "POST",
            "/_synapse/admin/v1/reset_password/@carol:example.com",
            json!({"new_password": "carol-new-pw"}),
        ),
    ] {
        let (status, answer) = server.call(method, path, Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
    }

    let mut browser = Console::new(&console);
    // Signed out: the sign-in page, no entry.
    let signed_out = audit(&mut browser, "").await;
    assert!(signed_out.is_sign_in_page());
    assert!(!signed_out.body.contains("reset_password"));
    browser.sign_in("alice", "alice-pw").await;

    let all = audit(&mut browser, "").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body.contains("aria-current=\"page\">Audit log</a>"));
    assert_eq!(
        entries(&all),
        [
            "reset_password @carol:example.com",
            "modify_user @carol:example.com",
            "reset_password @bob:example.com",
        ],
        "newest first"
    );
    assert!(lead(&all).starts_with("3 entries match"), "{}", lead(&all));
    // Who, and what changed, as recorded.
    assert!(
        all.body
            .contains("by <a href=\"user?id=%40alice%3Aexample.com\"")
    );
    assert!(all.body.contains("logout_devices: false"), "{}", all.body);
    assert!(
        all.body.contains("displayname_changed: true"),
        "{}",
        all.body
    );

    // By user (a localpart or a user ID), admin, action, and together.
    for (query, expected) in [
        ("user=bob", vec!["reset_password @bob:example.com"]),
        (
            "user=%40carol%3Aexample.com",
            vec![
                "reset_password @carol:example.com",
                "modify_user @carol:example.com",
            ],
        ),
        (
            "admin=alice",
            vec![
                "modify_user @carol:example.com",
                "reset_password @bob:example.com",
            ],
        ),
        (
            "admin=%40root%3Aexample.com",
            vec!["reset_password @carol:example.com"],
        ),
        (
            "action=reset_password",
            vec![
                "reset_password @carol:example.com",
                "reset_password @bob:example.com",
            ],
        ),
        (
            "user=carol&admin=alice&action=modify_user",
            vec!["modify_user @carol:example.com"],
        ),
        ("user=nobody", vec![]),
        ("action=lock", vec![]),
    ] {
        let page = audit(&mut browser, query).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        assert_eq!(entries(&page), expected, "{query}");
    }
    // The filter is kept in the form.
    let kept = audit(&mut browser, "user=bob&action=reset_password").await;
    assert!(
        kept.body.contains("name=\"user\" value=\"bob\""),
        "{}",
        kept.body
    );
    assert!(
        kept.body
            .contains("<option value=\"reset_password\" selected>")
    );

    // By time (UTC): a date, or a date and time; "until" a day takes all of it.
    let (yesterday, today, tomorrow) = (date_in(-1), date_in(0), date_in(1));
    for (query, count) in [
        (format!("from={yesterday}"), 3),
        (format!("from={tomorrow}"), 0),
        (format!("until={yesterday}"), 0),
        (format!("until={today}"), 3),
        (format!("from={today}&until={today}&admin=root"), 1),
        (format!("from={today}T00%3A00&until={tomorrow}T00%3A00"), 3),
    ] {
        let page = audit(&mut browser, &query).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        assert_eq!(entries(&page).len(), count, "{query}");
    }

    // A page at a time, with the total and the way on.
    let first = audit(&mut browser, "limit=2").await;
    assert_eq!(entries(&first).len(), 2);
    assert!(
        lead(&first).contains("3 entries match; showing 1–2"),
        "{}",
        lead(&first)
    );
    assert!(
        first
            .body
            .contains("id=\"next\" href=\"audit?offset=2&amp;limit=2\""),
        "{}",
        first.body
    );
    let second = audit(&mut browser, "offset=2&limit=2").await;
    assert_eq!(entries(&second), ["reset_password @bob:example.com"]);
    assert!(second.body.contains("id=\"previous\""));
    assert!(!second.body.contains("id=\"next\""));
}

async fn bad_audit_filters_give_the_page_with_a_message(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    browser.sign_in("alice", "alice-pw").await;
    let long = "a".repeat(2000);
    for (query, field, message) in [
        ("from=2026-13-01", "from", "Give a date as YYYY-MM-DD"),
        ("from=2026-02-30", "from", "Give a date as YYYY-MM-DD"),
        ("until=tomorrow", "until", "Give a date as YYYY-MM-DD"),
        ("from=%00", "from", "Give a date as YYYY-MM-DD"),
        (
            "until=2026-01-01T25%3A00",
            "until",
            "Give a date as YYYY-MM-DD",
        ),
        (
            "from=2026-01-02&until=2026-01-01",
            "until",
            "before the time",
        ),
        ("action=drop_tables", "action", "There is no such action."),
        ("action=%00", "action", "There is no such action."),
        ("user=%00", "user", "control characters"),
        ("admin=ali%00ce", "admin", "control characters"),
        ("user=a%0Ab", "user", "control characters"),
        (&format!("admin={long}"), "admin", "longer than any name"),
    ] {
        let page = audit(&mut browser, query).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
        assert!(page.body.contains(message), "{query}: {}", page.body);
        assert!(
            page.body.contains(&format!("id=\"{field}-error\"")),
            "{query}: the message beside {field}: {}",
            page.body
        );
        assert!(
            page.body.contains("id=\"search\""),
            "the form again: {query}"
        );
    }
    // What is not a filter at all is passed over: the whole log.
    for query in [
        "offset=-5&limit=0",
        "limit=99999999999999999999",
        "%FF=%FE",
        "user=",
    ] {
        let page = audit(&mut browser, query).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        assert!(page.body.contains("id=\"entries\""), "{query}");
    }
}

/// The token `token` as the Admin API shows it (`None`: not found).
async fn token_by_api(server: &Server, admin: &str, token: &str) -> Option<Value> {
    let (status, body) = server
        .call("GET", &format!("{TOKENS_API}/{token}"), Some(admin), None)
        .await;
    match status {
        StatusCode::OK => Some(body),
        StatusCode::NOT_FOUND => None,
        other => panic!("{other}: {body}"),
    }
}

async fn token_count(server: &Server, admin: &str) -> usize {
    let (status, body) = server.call("GET", TOKENS_API, Some(admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["registration_tokens"].as_array().unwrap().len()
}

async fn valid(server: &Server, token: &str) -> bool {
    let (status, body) = server
        .call("GET", &format!("{VALIDITY}?token={token}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["valid"].as_bool().unwrap()
}

/// The text of the page's notice.
fn notice(page: &Answer) -> &str {
    let start = page
        .body
        .find("id=\"notice\">")
        .unwrap_or_else(|| panic!("no notice: {}", page.body))
        + 12;
    let end = start + page.body[start..].find("</p>").unwrap();
    &page.body[start..end]
}

async fn registration_tokens_are_made_changed_and_deleted_on_the_page(db: TestDb) {
    let (server, console) = start(db, SIGN_UP_WITH_TOKENS).await;
    let api = make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    browser.sign_in("alice", "alice-pw").await;
    let path = format!("{CONSOLE}registration-tokens");
    let empty = browser.get(&path).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert!(empty.body.contains("No registration tokens."));
    assert!(
        empty
            .body
            .contains("aria-current=\"page\">Registration tokens</a>")
    );

    // Typed: two uses, expiring in two days (a minute, UTC).
    let expiry_ms = (now_ms() + 2 * 86_400_000) / 60_000 * 60_000;
    let expiry = homekey::utc::format_datetime_local(expiry_ms);
    let csrf = empty.csrf();
    let made = browser
        .post(
            &format!("{CONSOLE}create-registration-token"),
            &[
                ("csrf", &csrf),
                ("token", "invite-1"),
                ("length", ""),
                ("uses_allowed", "2"),
                ("expiry", &expiry),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    assert_eq!(notice(&made), "The token invite-1 was created.");
    assert_eq!(
        token_by_api(&server, &api, "invite-1").await,
        Some(json!({
            "token": "invite-1", "uses_allowed": 2, "pending": 0, "completed": 0,
            "expiry_time": expiry_ms,
        }))
    );
    assert!(valid(&server, "invite-1").await);
    assert!(
        made.body
            .contains("2 uses allowed · 0 pending · 0 completed · expires")
    );

    // Generated, of the length asked, no limit, never expiring.
    let generated = browser
        .post(
            &format!("{CONSOLE}create-registration-token"),
            &[
                ("csrf", &csrf),
                ("token", ""),
                ("length", "20"),
                ("uses_allowed", ""),
                ("expiry", ""),
            ],
        )
        .await;
    assert_eq!(generated.status, StatusCode::OK, "{}", generated.body);
    let text = notice(&generated)
        .strip_prefix("The token ")
        .and_then(|rest| rest.strip_suffix(" was created."))
        .unwrap()
        .to_owned();
    assert_eq!(text.len(), 20, "{text}");
    let by_api = token_by_api(&server, &api, &text).await.unwrap();
    assert_eq!(
        (&by_api["uses_allowed"], &by_api["expiry_time"]),
        (&json!(null), &json!(null))
    );
    assert!(generated.body.contains("no limit of uses"));
    assert!(generated.body.contains("never expires"));

    // A sign-up at the client API's token stage spends a use of it: the page counts it.
    let register = "/_matrix/client/v3/register";
    let (status, first) = server
        .call(
            "POST",
            register,
            None,
            Some(json!({"username": "dave", "password": "dave-password-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{first}");
    let session = first["session"].as_str().unwrap();
    for (stage, expected) in [
        (
            json!({"type": "m.login.registration_token", "token": "invite-1", "session": session}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"type": "m.login.dummy", "session": session}),
            StatusCode::OK,
        ),
    ] {
        let (status, body) = server
            .call("POST", register, None, Some(json!({ "auth": stage })))
            .await;
        assert_eq!(status, expected, "{body}");
    }
    let listed = browser.get(&path).await;
    assert!(
        listed
            .body
            .contains("2 uses allowed · 0 pending · 1 completed"),
        "{}",
        listed.body
    );

    // Its limits changed: uses to 5; the expiry left as shown stays as it was.
    let changed = browser
        .post(
            &format!("{CONSOLE}update-registration-token"),
            &[
                ("csrf", &csrf),
                ("token", "invite-1"),
                ("uses_allowed", "5"),
                ("expiry", &expiry),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(notice(&changed), "The token invite-1 was changed.");
    let by_api = token_by_api(&server, &api, "invite-1").await.unwrap();
    assert_eq!(
        (&by_api["uses_allowed"], &by_api["expiry_time"]),
        (&json!(5), &json!(expiry_ms))
    );
    // An expiry in the past is refused, nothing changed.
    let past = browser
        .post(
            &format!("{CONSOLE}update-registration-token"),
            &[
                ("csrf", &csrf),
                ("token", "invite-1"),
                ("uses_allowed", "1"),
                ("expiry", "2001-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST, "{}", past.body);
    assert!(
        past.body.contains("must not be in the past"),
        "{}",
        past.body
    );
    assert_eq!(
        token_by_api(&server, &api, "invite-1").await.unwrap()["uses_allowed"],
        5
    );

    // Without its CSRF token, a delete does nothing.
    let forged = browser
        .post(
            &format!("{CONSOLE}delete-registration-token"),
            &[("token", "invite-1")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(valid(&server, "invite-1").await);
    let forged = browser
        .post(
            &format!("{CONSOLE}create-registration-token"),
            &[("csrf", "not-the-token"), ("token", "forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(token_by_api(&server, &api, "forged").await, None);

    // Deleted: no longer valid, gone from the Admin API and the page.
    let deleted = browser
        .post(
            &format!("{CONSOLE}delete-registration-token"),
            &[("csrf", &csrf), ("token", "invite-1")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert!(notice(&deleted).contains("was deleted"));
    assert!(!valid(&server, "invite-1").await);
    assert_eq!(token_by_api(&server, &api, "invite-1").await, None);
    assert!(
        !deleted
            .body
            .contains("<span class=\"mono\">invite-1</span>")
    );
    let again = browser
        .post(
            &format!("{CONSOLE}delete-registration-token"),
            &[("csrf", &csrf), ("token", "invite-1")],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    assert!(again.body.contains("There is no such token"));

    // Each change recorded with alice as the actor (the token named by a digest).
    let log = browser.get(&format!("{CONSOLE}audit?admin=alice")).await;
    let actions: Vec<String> = entries(&log)
        .into_iter()
        .map(|entry| entry.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "delete_registration_token",
            "update_registration_token",
            "create_registration_token",
            "create_registration_token",
        ]
    );
    assert!(
        !log.body.contains("invite-1"),
        "the log never names a token"
    );
}

async fn refused_token_fields_make_nothing(db: TestDb) {
    let (server, console) = start(db, SIGN_UP_WITH_TOKENS).await;
    let api = make_admin(&server, "alice", "alice-pw").await;
    let mut browser = Console::new(&console);
    browser.sign_in("alice", "alice-pw").await;
    let csrf = browser
        .get(&format!("{CONSOLE}registration-tokens"))
        .await
        .csrf();
    let create =
        |token: &'static str, length: &'static str, uses: &'static str, expiry: &'static str| {
            [
                ("token", token),
                ("length", length),
                ("uses_allowed", uses),
                ("expiry", expiry),
            ]
        };
    let made = browser
        .post(
            &format!("{CONSOLE}create-registration-token"),
            &[
                [("csrf", csrf.as_str())].as_slice(),
                &create("taken", "", "", ""),
            ]
            .concat(),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let long = "a".repeat(65);
    let long: &'static str = Box::leak(long.into_boxed_str());
    for (fields, field, message) in [
        (
            create("bad token!", "", "", ""),
            "token",
            "may only have the letters",
        ),
        (
            create("nul\0", "", "", ""),
            "token",
            "may only have the letters",
        ),
        (
            create("<script>", "", "", ""),
            "token",
            "may only have the letters",
        ),
        (create(long, "", "", ""), "token", "1 to 64 characters"),
        (create("taken", "", "", ""), "token", "exists already"),
        (create("", "0", "", ""), "length", "from 1 to 64"),
        (create("", "65", "", ""), "length", "from 1 to 64"),
        (
            create("", "ten", "", ""),
            "length",
            "must be a whole number",
        ),
        (create("fine", "", "-1", ""), "uses_allowed", "0 or more"),
        (
            create("fine", "", "2.5", ""),
            "uses_allowed",
            "must be a whole number",
        ),
        (
            create("fine", "", "99999999999", ""),
            "uses_allowed",
            "must not be more than",
        ),
        (
            create("fine", "", "", "2001-01-01T00:00"),
            "expiry",
            "must not be in the past",
        ),
        (
            create("fine", "", "", "next week"),
            "expiry",
            "YYYY-MM-DDTHH:MM",
        ),
        (
            create("fine", "", "", "2030-02-30T00:00"),
            "expiry",
            "YYYY-MM-DDTHH:MM",
        ),
    ] {
        let page = browser
            .post(
                &format!("{CONSOLE}create-registration-token"),
                &[[("csrf", csrf.as_str())].as_slice(), &fields].concat(),
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{fields:?}: {}",
            page.body
        );
        assert!(page.body.contains(message), "{fields:?}: {}", page.body);
        assert!(
            page.body.contains(&format!("id=\"{field}-error\"")),
            "{fields:?}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>"), "shown as text");
        assert_eq!(
            token_count(&server, &api).await,
            1,
            "{fields:?}: nothing made"
        );
    }
    // The form keeps what was typed.
    let page = browser
        .post(
            &format!("{CONSOLE}create-registration-token"),
            &[
                [("csrf", csrf.as_str())].as_slice(),
                &create("fine", "", "-1", ""),
            ]
            .concat(),
        )
        .await;
    assert!(page.body.contains("name=\"uses_allowed\" type=\"number\" min=\"0\" step=\"1\" inputmode=\"numeric\" value=\"-1\""), "{}", page.body);
    // Changing or deleting a token that is not there, or no token at all.
    for (path, token) in [
        ("update-registration-token", "missing"),
        ("update-registration-token", "nul\0"),
        ("delete-registration-token", "missing"),
        ("delete-registration-token", "nul\0"),
        ("delete-registration-token", ""),
    ] {
        let page = browser
            .post(
                &format!("{CONSOLE}{path}"),
                &[("csrf", &csrf), ("token", token), ("uses_allowed", "1")],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::NOT_FOUND,
            "{path} {token:?}: {}",
            page.body
        );
        assert!(
            page.body.contains("There is no such token"),
            "{}",
            page.body
        );
    }
    let page = browser
        .post(
            &format!("{CONSOLE}update-registration-token"),
            &[
                ("csrf", &csrf),
                ("token", "taken"),
                ("uses_allowed", "-3"),
                ("expiry", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("0 or more"), "{}", page.body);
    assert_eq!(token_count(&server, &api).await, 1);
    assert!(valid(&server, "taken").await);
}

/// Registers a client as apps do; its `client_id`.
async fn register(server: &Server, metadata: Value) -> String {
    crate::oauth_pages::register(server, metadata).await
}

async fn registered_oauth_clients_are_listed_and_deleted(db: TestDb) {
    let (server, console) = start(db, BESIDE_NO_SYNAPSE).await;
    // No login beside a Synapse that is not there: the account made an admin directly.
    server.create_user("alice", "alice-pw").await;
    let guard = homekey::store::AdminGuard::Off;
    let store = server.store();
    store
        .set_admin("@alice:example.com", true, guard, None)
        .await
        .unwrap();
    let element = register(&server, crate::oauth_grants::element_x()).await;
    let web = register(
        &server,
        json!({
            "application_type": "web",
            "client_name": "<b>Chat</b> & co",
            "client_uri": "https://chat.example.org/",
            "redirect_uris": ["https://chat.example.org/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let mut browser = Console::new(&console);
    browser.sign_in("alice", "alice-pw").await;
    let path = format!("{CONSOLE}oauth-clients");
    let listed = browser.get(&path).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert!(
        listed
            .body
            .contains("aria-current=\"page\">OAuth clients</a>")
    );
    for shown in [
        "Element X",
        element.as_str(),
        "io.element:/callback",
        "http://127.0.0.1/callback",
        "https://element.io",
        "&lt;b&gt;Chat&lt;/b&gt; &amp; co",
        web.as_str(),
        "https://chat.example.org/callback",
    ] {
        // The page escapes `/` too.
        let text = listed.body.replace("&#x2f;", "/");
        assert!(text.contains(shown), "{shown}: {}", listed.body);
    }
    assert!(!listed.body.contains("<b>Chat</b>"), "a name is text");
    assert!(listed.body.contains("<dt>Sessions</dt><dd>0"));
    // The newest first.
    assert!(listed.body.find(&web).unwrap() < listed.body.find(&element).unwrap());

    // Without its CSRF token, or from another origin: nothing deleted.
    let forged = browser
        .post(
            &format!("{CONSOLE}delete-oauth-client"),
            &[("client_id", &element)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = listed.csrf();
    let elsewhere = browser
        .post_from(
            &format!("{CONSOLE}delete-oauth-client"),
            &[("csrf", &csrf), ("client_id", &element)],
            Some("https://evil.example.net"),
            None,
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    assert!(browser.get(&path).await.body.contains(&element));

    let deleted = browser
        .post(
            &format!("{CONSOLE}delete-oauth-client"),
            &[("csrf", &csrf), ("client_id", &element)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        notice(&deleted),
        format!("The client {element} was deleted; it held no session.")
    );
    assert!(!deleted.body.contains("Element X"), "{}", deleted.body);
    assert!(deleted.body.contains(&web));
    // Gone for the OAuth API too: its authorization is refused.
    let authorize = server
        .http
        .get(server.url(&format!(
            "/_homekey/oauth2/authorize?response_type=code&client_id={element}\
             &redirect_uri=io.element%3A%2Fcallback&scope=urn%3Amatrix%3Aclient%3Aapi%3A*\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), StatusCode::BAD_REQUEST);

    for client_id in [element.as_str(), "", "nul\0", "x".repeat(300).as_str()] {
        let again = browser
            .post(
                &format!("{CONSOLE}delete-oauth-client"),
                &[("csrf", &csrf), ("client_id", client_id)],
            )
            .await;
        assert_eq!(
            again.status,
            StatusCode::NOT_FOUND,
            "{client_id:?}: {}",
            again.body
        );
        assert!(again.body.contains("There is no such client"));
    }
    // Recorded, alice the actor, the client the target.
    let log = browser
        .get(&format!("{CONSOLE}audit?action=delete_oauth_client"))
        .await;
    assert_eq!(entries(&log), [format!("delete_oauth_client {element}")]);
    assert!(log.body.contains("client_name: Element X"), "{}", log.body);
    // The registrations are in the log too, with the address they came from.
    let registrations = browser
        .get(&format!("{CONSOLE}audit?action=register_client"))
        .await;
    assert_eq!(entries(&registrations).len(), 2);
    assert!(
        registrations
            .body
            .contains("from <span class=\"mono\">127.0.0.1</span>"),
        "{}",
        registrations.body
    );
}

#[tokio::test]
async fn sqlite_deleting_a_client_ends_its_sessions_in_homekey_and_synapse() {
    let test = "sqlite_deleting_a_client_ends_its_sessions_in_homekey_and_synapse";
    deleting_a_client_ends_its_sessions(test, Some(TestDb::sqlite().await)).await;
}

#[tokio::test]
async fn postgres_deleting_a_client_ends_its_sessions_in_homekey_and_synapse() {
    let test = "postgres_deleting_a_client_ends_its_sessions_in_homekey_and_synapse";
    deleting_a_client_ends_its_sessions(test, TestDb::postgres(test).await).await;
}

/// Beside a real Synapse: a client signs alice in (the OAuth sign-in, the code exchanged);
/// the admin deletes the client on the console, and its token is refused by homekey and
/// by Synapse, its device gone; another client's session stays.
async fn deleting_a_client_ends_its_sessions(test: &str, db: Option<TestDb>) {
    use crate::oauth_grants::{Browser, Client, VERIFIER, element_x, sign_in_and_allow};
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
    homekey.create_user("alice", "alice-pw").await;
    homekey.admin_token("root", "root-pw").await;
    let element = Client::register(homekey, element_x()).await;
    let mut other_app = element_x();
    // A name the consent page helper recognises (it looks for "Element X").
    other_app["client_name"] = json!("Element X Nightly");
    let other = Client::register(homekey, other_app).await;
    let mut sessions = Vec::new();
    for (client, device) in [(&element, "ELEMENTDEVICE"), (&other, "OTHERDEVICE")] {
        let mut browser = Browser::new();
        let query = client.query(device, &[]);
        let code = sign_in_and_allow(homekey, &mut browser, &query, "alice", "alice-pw").await;
        let (status, tokens) = client.exchange(homekey, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let (status, body) = synapse.whoami(&access).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        sessions.push(access);
    }

    let mut browser = Console::new(&console_of(homekey));
    browser.sign_in("root", "root-pw").await;
    let listed = browser.get(&format!("{CONSOLE}oauth-clients")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(
        listed.body.matches("<dt>Sessions</dt><dd>1").count(),
        2,
        "{}",
        listed.body
    );
    assert!(listed.body.contains("and end its session"));
    let deleted = browser
        .post(
            &format!("{CONSOLE}delete-oauth-client"),
            &[("csrf", &listed.csrf()), ("client_id", &element.id)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        notice(&deleted),
        format!(
            "The client {} was deleted; its one session was ended.",
            element.id
        )
    );

    let (status, body) = homekey.whoami(Some(&sessions[0])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    crate::oauth_grants::wait_until_synapse_refuses(synapse, &sessions[0]).await;
    let devices = homekey.device_ids("@alice:example.com").await;
    assert_eq!(devices, ["OTHERDEVICE"]);
    let (status, body) = synapse.whoami(&sessions[1]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the other client's session stays: {body}"
    );
    assert!(deleted.body.contains("Element X Nightly"));
}

/// The three pages in chromium, each screenshot (`admin-audit`, `admin-tokens`,
/// `admin-clients`) and checked with axe-core (no serious or critical violation); a token
/// made through the page's form.
#[tokio::test]
async fn in_a_real_browser_the_audit_tokens_and_clients_pages_are_usable() {
    use crate::account_page::{Chromium, axe_core, axe_violations, sign_in_with};
    use fantoccini::Locator;
    let test = "in_a_real_browser_the_audit_tokens_and_clients_pages_are_usable";
    let Some(axe) = axe_core(test) else {
        return;
    };
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let db = TestDb::sqlite().await;
    // The Admin API's logins on the same database served standalone: beside a Synapse that
    // is not there, no one logs in.
    let server = Server::start(db.share().await, "").await;
    let (beside, console) = start(db, BESIDE_NO_SYNAPSE).await;
    let alice = make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let (status, body) = server
        .call(
            "POST",
            "/_synapse/admin/v1/reset_password/@bob:example.com",
            Some(&alice),
            Some(json!({"new_password": "bob-new-pw", "logout_devices": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            "POST",
            &format!("{TOKENS_API}/new"),
            Some(&alice),
            Some(json!({"token": "by-the-api", "uses_allowed": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    register(&beside, crate::oauth_grants::element_x()).await;
    let client = chromium.client.clone();
    let result = async {
        let mut problems = Vec::new();
        client.goto(&format!("{console}{CONSOLE}")).await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        sign_in_with(&client, "alice", "alice-pw").await?;
        client.wait().for_element(Locator::Id("users")).await?;

        client
            .find(Locator::LinkText("Audit log"))
            .await?
            .click()
            .await?;
        let entries = client.wait().for_element(Locator::Id("entries")).await?;
        let shown = entries.text().await?;
        assert!(shown.contains("reset_password"), "{shown}");
        assert!(shown.contains("@bob:example.com"), "{shown}");
        chromium.shot("admin-audit").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        // A filter through the form.
        client
            .find(Locator::Id("user"))
            .await?
            .send_keys("nobody")
            .await?;
        client.find(Locator::Id("search")).await?.click().await?;
        client
            .wait()
            .for_element(Locator::Css("input#user[value='nobody']"))
            .await?;
        let shown = client.find(Locator::Id("entries")).await?.text().await?;
        assert!(shown.contains("No entry matches."), "{shown}");

        client
            .find(Locator::LinkText("Registration tokens"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .for_element(Locator::Id("create-token"))
            .await?;
        client
            .find(Locator::Id("token"))
            .await?
            .send_keys("from-chromium")
            .await?;
        client
            .find(Locator::Id("uses_allowed"))
            .await?
            .send_keys("4")
            .await?;
        client
            .find(Locator::Id("create-token"))
            .await?
            .click()
            .await?;
        let notice = client.wait().for_element(Locator::Id("notice")).await?;
        assert_eq!(notice.text().await?, "The token from-chromium was created.");
        let tokens = client.find(Locator::Id("tokens")).await?.text().await?;
        assert!(
            tokens.contains("by-the-api") && tokens.contains("from-chromium"),
            "{tokens}"
        );
        // One token's form to change it opened, as an admin would.
        client
            .find(Locator::Css("#tokens summary"))
            .await?
            .click()
            .await?;
        chromium.shot("admin-tokens").await;
        problems.extend(axe_violations(&client, &axe).await?.0);

        client
            .find(Locator::LinkText("OAuth clients"))
            .await?
            .click()
            .await?;
        let clients = client.wait().for_element(Locator::Id("clients")).await?;
        let shown = clients.text().await?;
        assert!(
            shown.contains("Element X") && shown.contains("io.element:/callback"),
            "{shown}"
        );
        chromium.shot("admin-clients").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        assert!(problems.is_empty(), "axe-core: {problems:#?}");
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    chromium.close().await;
    result.unwrap();
    let (status, body) = server
        .call(
            "GET",
            &format!("{TOKENS_API}/from-chromium"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["uses_allowed"]),
        (StatusCode::OK, &json!(4)),
        "{body}"
    );
}
