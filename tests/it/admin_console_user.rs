//! The admin console's user page (issue 28), over HTTP against `homekey serve`: the admin
//! flag, lock and unlock, deactivate, erase after the user ID typed in full, reactivation
//! with a new password, a device ended; the guards said before the click (one's own account,
//! the last admin) and kept after it; the e-mail addresses, OAuth apps and audit records
//! shown; hostile inputs refused with the page, never a 500. Each checked where a user
//! notices it: the client API's login and tokens, the page, the database.

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_console::{Answer, CONSOLE, Console, make_admin, start};
use crate::server::{Server, server_tests};
use crate::support::TestDb;

const BOB: &str = "@bob:example.com";

/// The user page's path for `user_id`.
fn page_of(user_id: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("id", user_id)
        .finish();
    format!("{CONSOLE}user?{query}")
}

/// A browser signed in to the console as `user`.
async fn signed_in(console: &str, user: &str, password: &str) -> Console {
    let mut browser = Console::new(console);
    let answer = browser.sign_in(user, password).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

/// Posts the action `action` about `user_id` from its page (with the page's CSRF token),
/// with `fields` besides.
async fn act(
    browser: &mut Console,
    action: &str,
    user_id: &str,
    fields: &[(&str, &str)],
) -> Answer {
    let csrf = browser.get(&page_of(user_id)).await.csrf();
    let mut all = vec![("csrf", csrf.as_str()), ("user_id", user_id)];
    all.extend_from_slice(fields);
    browser.post(&format!("{CONSOLE}{action}"), &all).await
}

fn assert_done(answer: &Answer, what: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
    assert!(
        answer.body.contains("id=\"notice\""),
        "{what}: {}",
        answer.body
    );
}

/// A refusal: the page again, with the error, its status `status`.
fn assert_refused(answer: &Answer, status: StatusCode, says: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert!(
        answer.body.contains("id=\"error\""),
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.body.contains(says),
        "{what}: wants {says:?}: {}",
        answer.body
    );
    assert!(!answer.body.contains("id=\"notice\""), "{what}");
}

async fn user(server: &Server, user_id: &str) -> homekey::store::User {
    server.store().get_user(user_id).await.unwrap().unwrap()
}

/// The flags a user notices: admin, locked, deactivated, erased.
async fn flags(server: &Server, user_id: &str) -> (bool, bool, bool, bool) {
    let user = user(server, user_id).await;
    (user.admin, user.locked, user.deactivated, user.erased)
}

async fn lock_refuses_the_users_login_and_unlock_lets_it_in(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    let page = browser.get(&page_of(BOB)).await;
    assert!(page.body.contains("id=\"set-locked\""), "{}", page.body);
    let locked = act(&mut browser, "set-locked", BOB, &[("locked", "on")]).await;
    assert_done(&locked, "lock");
    assert!(
        locked.body.contains("<dd id=\"locked\">yes</dd>"),
        "{}",
        locked.body
    );
    assert!(locked.body.contains(">Unlock</button>"), "{}", locked.body);
    let (status, body) = server.login("bob", "bob-pw").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_USER_LOCKED", "{body}");
    let (status, body) = server.whoami(Some(&bob)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errcode"], "M_USER_LOCKED", "{body}");

    let unlocked = act(&mut browser, "set-locked", BOB, &[("locked", "off")]).await;
    assert_done(&unlocked, "unlock");
    assert!(unlocked.body.contains("<dd id=\"locked\">no</dd>"));
    assert_eq!(server.login("bob", "bob-pw").await.0, StatusCode::OK);
    assert_eq!(
        server.whoami(Some(&bob)).await.0,
        StatusCode::OK,
        "tokens survive a lock"
    );

    // The page's audit log: newest first, by alice.
    let audit = &unlocked.body[unlocked.body.find("id=\"audit\"").expect("an audit list")..];
    let unlock = audit
        .find("<span class=\"row-title\">unlock</span>")
        .unwrap();
    let lock = audit.find("<span class=\"row-title\">lock</span>").unwrap();
    assert!(unlock < lock, "newest first: {audit}");
    assert!(
        audit.contains("by <span class=\"mono\">@alice:example.com</span>"),
        "{audit}"
    );
}

async fn the_admin_flag_is_granted_and_removed(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    let granted = act(&mut browser, "set-admin", BOB, &[("admin", "on")]).await;
    assert_done(&granted, "grant");
    assert!(
        granted.body.contains("<dd id=\"admin\">yes</dd>"),
        "{}",
        granted.body
    );
    assert!(granted.body.contains("Remove the admin flag"));
    assert!(user(&server, BOB).await.admin);
    // Bob can use the console now.
    signed_in(&console, "bob", "bob-pw").await;

    let removed = act(&mut browser, "set-admin", BOB, &[("admin", "off")]).await;
    assert_done(&removed, "remove");
    assert!(removed.body.contains("<dd id=\"admin\">no</dd>"));
    assert!(removed.body.contains("Make a server admin"));
    assert!(!user(&server, BOB).await.admin);
    let records: Vec<_> = server
        .store()
        .list_audit(&homekey::store::AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.action == "set_admin")
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.actor == "@alice:example.com"));
}

async fn the_guards_are_said_before_the_click_and_kept_after_it(db: TestDb) {
    let (server, console) = start(db, "").await;
    let alice = "@alice:example.com";
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("carol", "carol-pw").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    // The last admin, on their own page: no control that would be refused, and why.
    let own = browser.get(&page_of(alice)).await;
    for guard in ["admin-guard", "lock-guard", "deactivate-guard"] {
        let at = own
            .body
            .find(&format!("id=\"{guard}\""))
            .unwrap_or_else(|| panic!("{guard}: {}", own.body));
        let said = &own.body[at..at + own.body[at..].find("</p>").unwrap()];
        assert!(said.contains("your own account"), "{guard}: {said}");
        assert!(
            said.contains("the last server admin who can act"),
            "{guard}: {said}"
        );
    }
    for control in [
        "action=\"set-admin\"",
        "action=\"set-locked\"",
        "action=\"deactivate\"",
        "action=\"erase\"",
    ] {
        assert!(!own.body.contains(control), "{control} on one's own page");
    }

    // With another admin, one's own page still guards, without the last admin's reason.
    let made = act(
        &mut browser,
        "set-admin",
        "@carol:example.com",
        &[("admin", "on")],
    )
    .await;
    assert_done(&made, "carol made an admin");
    assert!(
        made.body.contains("action=\"set-locked\""),
        "carol's page has its controls"
    );
    assert!(made.body.contains("action=\"erase\""));
    let own = browser.get(&page_of(alice)).await;
    assert!(own.body.contains("id=\"admin-guard\""));
    assert!(own.body.contains("your own account"));
    assert!(!own.body.contains("the last server admin"), "{}", own.body);
    assert!(!own.body.contains("action=\"set-locked\""));

    // A forged POST on oneself is refused, with the reason, and changes nothing.
    let before = flags(&server, alice).await;
    for (action, fields, says) in [
        ("set-admin", &[("admin", "off")][..], "your own admin flag"),
        ("set-locked", &[("locked", "on")][..], "your own account"),
        ("deactivate", &[][..], "your own account"),
        ("erase", &[("confirm", alice)][..], "your own account"),
    ] {
        let answer = act(&mut browser, action, alice, fields).await;
        assert_refused(&answer, StatusCode::FORBIDDEN, says, action);
        assert_eq!(
            flags(&server, alice).await,
            before,
            "{action} changed alice"
        );
    }
    assert!(
        !browser.get(CONSOLE).await.is_sign_in_page(),
        "still signed in"
    );
    assert_eq!(server.login("alice", "alice-pw").await.0, StatusCode::OK);
    // carol, the other admin, sees alice's page with its controls.
    let mut carol = signed_in(&console, "carol", "carol-pw").await;
    let alices = carol.get(&page_of(alice)).await;
    assert!(
        alices.body.contains("action=\"set-locked\""),
        "{}",
        alices.body
    );
    assert!(!alices.body.contains("id=\"admin-guard\""));
}

async fn deactivate_refuses_the_login_and_reactivation_gives_a_new_password(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    let deactivated = act(&mut browser, "deactivate", BOB, &[]).await;
    assert_done(&deactivated, "deactivate");
    assert!(deactivated.body.contains("<dd id=\"deactivated\">yes</dd>"));
    assert_ne!(server.login("bob", "bob-pw").await.0, StatusCode::OK);
    assert_eq!(server.whoami(Some(&bob)).await.0, StatusCode::UNAUTHORIZED);
    assert!(
        deactivated.body.contains("id=\"reactivate\""),
        "{}",
        deactivated.body
    );

    // Typed differently, or not twice: still deactivated.
    for (fields, what) in [
        (
            &[
                ("new_password", "new-one"),
                ("new_password_again", "new-two"),
            ][..],
            "differ",
        ),
        (&[("new_password", "new-one")][..], "once"),
        (&[][..], "none"),
    ] {
        let answer = act(&mut browser, "reactivate", BOB, fields).await;
        assert_refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "Nothing was changed",
            what,
        );
        assert!(
            answer.body.contains("id=\"reactivate_password-error\""),
            "{what}"
        );
        assert!(user(&server, BOB).await.deactivated, "{what}");
    }
    let fields = [
        ("new_password", "bob-new-pw"),
        ("new_password_again", "bob-new-pw"),
    ];
    let reactivated = act(&mut browser, "reactivate", BOB, &fields).await;
    assert_done(&reactivated, "reactivate");
    assert!(reactivated.body.contains("<dd id=\"deactivated\">no</dd>"));
    assert!(
        !reactivated.body.contains("bob-new-pw"),
        "never the password"
    );
    assert_eq!(server.login("bob", "bob-new-pw").await.0, StatusCode::OK);
    assert_ne!(server.login("bob", "bob-pw").await.0, StatusCode::OK);
    // An active account is not "reactivated" (its password left as it is).
    let again = act(
        &mut browser,
        "reactivate",
        BOB,
        &[("new_password", "x-x-x"), ("new_password_again", "x-x-x")],
    )
    .await;
    assert_refused(&again, StatusCode::BAD_REQUEST, "not deactivated", "active");
    assert!(server.has_password(BOB, "bob-new-pw").await);
    assert!(
        !server.log().contains("bob-new-pw"),
        "no password in the log"
    );
}

async fn erase_needs_the_user_id_typed_in_full(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    server.set_own_displayname(&bob, BOB, "Bob B").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    for typed in [
        Some("bob"),
        Some("@bob:example.co"),
        Some("@BOB:example.com"),
        Some(""),
        None,
    ] {
        let fields: Vec<(&str, &str)> = typed.map(|t| ("confirm", t)).into_iter().collect();
        let answer = act(&mut browser, "erase", BOB, &fields).await;
        assert_refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "type its user ID",
            &format!("{typed:?}"),
        );
        assert!(
            answer.body.contains("id=\"confirm-error\""),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("aria-invalid=\"true\""));
        assert_eq!(
            flags(&server, BOB).await,
            (false, false, false, false),
            "{typed:?}"
        );
    }
    assert_eq!(server.whoami(Some(&bob)).await.0, StatusCode::OK);

    let erased = act(&mut browser, "erase", BOB, &[("confirm", BOB)]).await;
    assert_done(&erased, "erase");
    assert!(
        erased
            .body
            .contains("<dd id=\"deactivated\">yes, erased</dd>"),
        "{}",
        erased.body
    );
    assert_eq!(flags(&server, BOB).await, (false, false, true, true));
    assert_eq!(user(&server, BOB).await.displayname, None);
    assert_eq!(server.whoami(Some(&bob)).await.0, StatusCode::UNAUTHORIZED);
    assert_ne!(server.login("bob", "bob-pw").await.0, StatusCode::OK);
}

async fn ending_a_device_signs_out_that_device_only(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let (ended_token, ended) = server.session_for("bob", "bob-pw").await;
    let (kept_token, kept) = server.session_for("bob", "bob-pw").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    let page = browser.get(&page_of(BOB)).await;
    assert!(
        page.body
            .contains(&format!("aria-label=\"End the device {ended}\"")),
        "{}",
        page.body
    );
    let answer = act(&mut browser, "end-device", BOB, &[("device_id", &ended)]).await;
    assert_done(&answer, "end");
    let listed = devices_of(&answer);
    assert!(!listed.contains(&ended), "{listed}");
    assert!(listed.contains(&kept), "{listed}");
    let (status, body) = server.whoami(Some(&ended_token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errcode"], "M_UNKNOWN_TOKEN", "{body}");
    assert_eq!(server.whoami(Some(&kept_token)).await.0, StatusCode::OK);

    // Ended already, or no device of this user's: said, nothing else ended.
    for device in [ended.as_str(), "NOSUCHDEVICE", ""] {
        let answer = act(&mut browser, "end-device", BOB, &[("device_id", device)]).await;
        assert_refused(&answer, StatusCode::NOT_FOUND, "no such device", device);
    }
    assert_eq!(server.whoami(Some(&kept_token)).await.0, StatusCode::OK);
    let records = server
        .store()
        .list_audit(&homekey::store::AuditFilter::default())
        .await
        .unwrap();
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r.action == "delete_devices")
        .collect();
    assert_eq!(ends.len(), 1, "{records:?}");
    assert_eq!(ends[0].actor, "@alice:example.com");
    assert_eq!(ends[0].details["devices"], json!([ended]));
}

async fn addresses_apps_and_audit_records_are_shown(db: TestDb) {
    use crate::cli_user::{oauth_session, register_oauth_client};
    let element_x = register_oauth_client(
        &db,
        json!({
            "application_type": "native",
            "client_name": "Element X",
            "client_uri": "https://element.io",
            "redirect_uris": ["io.element:/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let (server, console) = start(db.share().await, "").await;
    let root = make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    server.create_user("dave", "dave-pw").await;
    oauth_session(&db, BOB, "OAUTHDEVICE", (&element_x, Some("Element X"))).await;
    let (_, password_device) = server.session_for("bob", "bob-pw").await;
    let (status, body) = server
        .call(
            "PUT",
            &format!("/_synapse/admin/v2/users/{BOB}"),
            Some(&root),
            Some(json!({"threepids": [{"medium": "email", "address": "bob@example.org"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut browser = signed_in(&console, "alice", "alice-pw").await;

    let page = browser.get(&page_of(BOB)).await;
    assert_eq!(page.status, StatusCode::OK);
    let emails = &page.body[page.body.find("id=\"emails\"").expect("the addresses")..];
    assert!(emails.contains("bob@example.org"), "{emails}");
    let devices = devices_of(&page);
    let row = |device: &str| {
        let at = devices
            .find(device)
            .unwrap_or_else(|| panic!("{device}: {devices}"));
        let start = devices[..at].rfind("<li").unwrap();
        &devices[start..at + devices[at..].find("</li>").unwrap()]
    };
    assert!(
        row("OAUTHDEVICE").contains("signed in with Element X"),
        "{devices}"
    );
    assert!(
        row(&password_device).contains("password login"),
        "{devices}"
    );
    let audit = &page.body[page.body.find("id=\"audit\"").unwrap()..];
    assert!(
        audit.contains("<span class=\"row-title\">modify user</span>"),
        "{audit}"
    );
    assert!(
        audit.contains("bob@example.org"),
        "the record's details: {audit}"
    );

    // A user without addresses has no such list; without records, the page says so.
    let dave = browser.get(&page_of("@dave:example.com")).await;
    assert!(!dave.body.contains("id=\"emails\""));
    assert!(
        dave.body.contains("No recorded changes to this account."),
        "{}",
        dave.body
    );
}

async fn hostile_inputs_give_the_page_with_a_message_and_change_nothing(db: TestDb) {
    let (server, console) = start(db, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    server.create_user("dave", "dave-pw").await;
    let (bob_token, _) = server.session_for("bob", "bob-pw").await;
    let mut browser = signed_in(&console, "alice", "alice-pw").await;
    let dave = "@dave:example.com";
    let deactivated = act(&mut browser, "deactivate", dave, &[]).await;
    assert_done(&deactivated, "dave deactivated");
    // Longer than any user ID or password may be, within the listener's 64 KiB body limit.
    let long = "x".repeat(20_000);
    let hostile = [
        "\0",
        "a\0b",
        long.as_str(),
        "<script>alert(1)</script>",
        " ",
        "on\u{202e}",
    ];
    let before = (
        flags(&server, BOB).await,
        flags(&server, dave).await,
        server.device_ids(BOB).await,
    );

    let mut tried = 0;
    for value in hostile {
        for (action, user_id, fields) in [
            ("set-admin", BOB, vec![("admin", value)]),
            ("set-locked", BOB, vec![("locked", value)]),
            ("erase", BOB, vec![("confirm", value)]),
            ("end-device", BOB, vec![("device_id", value)]),
            (
                "reactivate",
                dave,
                vec![("new_password", value), ("new_password_again", "other")],
            ),
            ("reactivate", dave, vec![("new_password", value)]),
            ("set-admin", value, vec![("admin", "on")]),
            ("set-locked", value, vec![("locked", "on")]),
            ("deactivate", value, vec![]),
        ] {
            let csrf = browser.get(&page_of(BOB)).await.csrf();
            let mut all = vec![("csrf", csrf.as_str()), ("user_id", user_id)];
            all.extend(fields);
            let answer = browser.post(&format!("{CONSOLE}{action}"), &all).await;
            let what = format!(
                "{action} with {:?}",
                value.chars().take(30).collect::<String>()
            );
            assert!(answer.status.is_client_error(), "{what}: {}", answer.status);
            assert!(
                answer.body.contains("id=\"error\""),
                "{what}: {}",
                answer.body
            );
            assert!(
                !answer.body.contains("<script>alert"),
                "{what}: markup shown as text"
            );
            tried += 1;
        }
        // Named by the page's query, too.
        let named: String = value.chars().take(8000).collect();
        let page = browser
            .get(&format!("{CONSOLE}user?id={}", urlencode(&named)))
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "user?id={value:.30}");
    }
    // A password too long for any account, typed twice alike.
    let fields = [
        ("new_password", long.as_str()),
        ("new_password_again", long.as_str()),
    ];
    let answer = act(&mut browser, "reactivate", dave, &fields).await;
    assert_refused(
        &answer,
        StatusCode::BAD_REQUEST,
        "too long",
        "a long password",
    );
    // Missing fields: every action with nothing but its token, then with only the user.
    for action in [
        "set-admin",
        "set-locked",
        "deactivate",
        "erase",
        "reactivate",
        "end-device",
    ] {
        let csrf = browser.get(&page_of(BOB)).await.csrf();
        let path = format!("{CONSOLE}{action}");
        let answer = browser.post(&path, &[("csrf", &csrf)]).await;
        assert_refused(
            &answer,
            StatusCode::NOT_FOUND,
            "There is no such user.",
            action,
        );
        if action == "deactivate" {
            continue; // nothing else to ask: it would be done
        }
        let answer = browser
            .post(&path, &[("csrf", &csrf), ("user_id", BOB)])
            .await;
        assert!(
            answer.status.is_client_error(),
            "{action}: {}",
            answer.status
        );
        assert!(
            answer.body.contains("id=\"error\""),
            "{action}: {}",
            answer.body
        );
        tried += 1;
    }
    // A body that is not UTF-8 once decoded: refused as a form without its token.
    for action in ["set-locked", "erase", "reactivate"] {
        let csrf = browser.get(&page_of(BOB)).await.csrf();
        let body = format!(
            "csrf={csrf}&user_id=%40bob%3Aexample.com&locked=on&confirm=%FF%FE&new_password=%C3"
        );
        let answer = browser.post_raw(&format!("{CONSOLE}{action}"), &body).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{action}: {}",
            answer.body
        );
        assert!(answer.body.contains("Nothing was done"), "{action}");
    }
    // Past the body limit: 413 from the listener, nothing read.
    let huge = "x".repeat(100_000);
    let answer = act(
        &mut browser,
        "set-locked",
        BOB,
        &[("locked", "on"), ("pad", &huge)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(tried > 50);
    let after = (
        flags(&server, BOB).await,
        flags(&server, dave).await,
        server.device_ids(BOB).await,
    );
    assert_eq!(after, before, "nothing changed");
    assert_eq!(server.whoami(Some(&bob_token)).await.0, StatusCode::OK);
    assert!(
        !browser.get(CONSOLE).await.is_sign_in_page(),
        "still signed in"
    );
}

/// The page's devices list.
fn devices_of(page: &Answer) -> &str {
    let start = page.body.find("id=\"devices\"").expect("the devices");
    let end = start + page.body[start..].find("</ul>").unwrap();
    &page.body[start..end]
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

server_tests!(
    lock_refuses_the_users_login_and_unlock_lets_it_in,
    the_admin_flag_is_granted_and_removed,
    the_guards_are_said_before_the_click_and_kept_after_it,
    deactivate_refuses_the_login_and_reactivation_gives_a_new_password,
    erase_needs_the_user_id_typed_in_full,
    ending_a_device_signs_out_that_device_only,
    addresses_apps_and_audit_records_are_shown,
    hostile_inputs_give_the_page_with_a_message_and_change_nothing,
);

/// In chromium: alice locks bob from his page (his login then refused with
/// `M_USER_LOCKED`), and erases carol after typing her user ID; each page screenshot
/// (`admin-user-*`) and checked with axe-core (no serious or critical violation).
#[tokio::test]
async fn in_a_real_browser_an_admin_locks_a_user_and_erases_another() {
    use crate::account_page::{Chromium, axe_core, axe_violations, sign_in_with};
    use fantoccini::Locator;
    let test = "in_a_real_browser_an_admin_locks_a_user_and_erases_another";
    let Some(axe) = axe_core(test) else {
        return;
    };
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let (server, console) = start(TestDb::sqlite().await, "").await;
    make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    server.create_user("carol", "carol-pw").await;
    server.session_for("bob", "bob-pw").await;
    let carol = "@carol:example.com";
    let client = chromium.client.clone();
    let result = async {
        let mut problems = Vec::new();
        // Tall enough for the whole page in each screenshot.
        client.set_window_size(1000, 2600).await?;
        client.goto(&format!("{console}{CONSOLE}")).await?;
        client.wait().for_element(Locator::Id("sign-in")).await?;
        sign_in_with(&client, "alice", "alice-pw").await?;
        client.wait().for_element(Locator::Id("users")).await?;

        // Bob's page, then Lock.
        client.goto(&format!("{console}{}", page_of(BOB))).await?;
        client.wait().for_element(Locator::Id("set-locked")).await?;
        chromium.shot("admin-user-1-page").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        client
            .find(Locator::Id("set-locked"))
            .await?
            .click()
            .await?;
        let notice = client.wait().for_element(Locator::Id("notice")).await?;
        assert!(
            notice.text().await?.contains("locked"),
            "{}",
            notice.text().await?
        );
        chromium.shot("admin-user-2-locked").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        let (status, body) = server.login("bob", "bob-pw").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["errcode"], "M_USER_LOCKED", "{body}");

        // Carol's page: Erase with a wrong ID typed is refused, with the right one done.
        client.goto(&format!("{console}{}", page_of(carol))).await?;
        client.wait().for_element(Locator::Id("confirm")).await?;
        client
            .find(Locator::Id("confirm"))
            .await?
            .send_keys("carol")
            .await?;
        client.find(Locator::Id("erase")).await?.click().await?;
        client
            .wait()
            .for_element(Locator::Id("confirm-error"))
            .await?;
        chromium.shot("admin-user-3-erase-refused").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        assert!(!user(&server, carol).await.deactivated);
        client
            .find(Locator::Id("confirm"))
            .await?
            .send_keys(carol)
            .await?;
        client.find(Locator::Id("erase")).await?.click().await?;
        let notice = client.wait().for_element(Locator::Id("notice")).await?;
        assert!(notice.text().await?.contains("erased"));
        chromium.shot("admin-user-4-erased").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        assert!(user(&server, carol).await.erased);

        // At a phone's width, the own page with its guards.
        client.set_window_size(360, 2600).await?;
        client
            .goto(&format!("{console}{}", page_of("@alice:example.com")))
            .await?;
        client
            .wait()
            .for_element(Locator::Id("admin-guard"))
            .await?;
        chromium.shot("admin-user-5-own-phone").await;
        problems.extend(axe_violations(&client, &axe).await?.0);
        assert!(problems.is_empty(), "axe-core: {problems:#?}");
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    chromium.close().await;
    result.unwrap();
}
