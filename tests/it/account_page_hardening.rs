//! The account page's sign-ins end with the account's sessions, on every entry point, and
//! its forms cannot be forged or mangled (issue "Hardening, round 3", items 1, 2, 5, 6, 7).
//! Each test drives the page as a browser does (`account_page::Browser`) beside the
//! entry point that changes the account: the client API and the Admin API of a server on the
//! same database, and the CLI as a process.

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::account_page::{
    Browser, PAGE, assert_security_headers, beside_synapse, web_session_rows,
};
use crate::one_account_service::database_url;
use crate::server::{PEPPER, Server, password_auth, raw_execute, server_tests};
use crate::support::{HOMEKEY, TestDb, run_binary, stderr, write_config};

server_tests!(
    every_change_that_signs_all_devices_out_signs_the_account_page_out_too,
    a_lock_and_a_deactivation_end_the_page_sign_in_and_undoing_them_brings_none_back,
    a_change_that_keeps_the_devices_keeps_the_page_signed_in,
    the_pages_own_password_change_with_sign_out_is_one_transaction,
    a_planted_cookie_with_a_token_computed_from_it_signs_no_one_in,
    a_form_that_is_not_utf8_is_refused_and_changes_nothing,
    errors_under_the_pages_have_the_security_headers_and_a_forged_form_is_403_first,
);

const ALICE: &str = "@alice:example.com";

/// A browser signed in to the page as alice.
async fn signed_in_browser(server: &Server, password: &str) -> Browser {
    let mut browser = Browser::new(server);
    let profile = browser.signed_in("", "alice", password).await;
    assert!(profile.body.contains("id=\"user-id\""), "{}", profile.body);
    browser
}

/// Whether the browser's next visit finds it signed in.
async fn still_signed_in(browser: &mut Browser) -> bool {
    let page = browser.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let signed_in = page.body.contains("id=\"user-id\"");
    assert_ne!(signed_in, page.body.contains("id=\"sign-in\""));
    signed_in
}

/// alice's rows in `homekey_web_sessions`.
async fn alices_page_sessions(server: &Server) -> i64 {
    server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_web_sessions WHERE user_id = $1",
            ALICE,
        )
        .await
}

async fn every_change_that_signs_all_devices_out_signs_the_account_page_out_too(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    let admin = logins.admin_token("root", "root-pw").await;
    server.create_user("alice", "pw-0").await;
    let url = database_url(&server);
    // The server's pepper, so that a password the CLI sets logs in on the server.
    let config_dir = tempfile::tempdir().unwrap();
    let config = write_config(
        config_dir.path(),
        &format!(
            "server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  pepper: {PEPPER}\n"
        ),
    );
    let config = config.to_str().unwrap();

    // Each entry point, with the password alice has after it.
    let mut password = "pw-0".to_owned();
    let steps: [&str; 5] = [
        "the Admin API's reset_password",
        "the user's own password change through the client API",
        "user set-password --logout-devices",
        "user logout",
        "/logout/all",
    ];
    for (step, name) in steps.iter().enumerate() {
        let mut browser = signed_in_browser(&server, &password).await;
        let mut other_browser = signed_in_browser(&server, &password).await;
        assert_eq!(alices_page_sessions(&server).await, 2, "{name}");
        let next = format!("pw-{}", step + 1);
        match step {
            0 => {
                let (status, body) = logins
                    .call(
                        "POST",
                        &format!("/_synapse/admin/v1/reset_password/{ALICE}"),
                        Some(&admin),
                        Some(json!({"new_password": next})),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                password = next;
            }
            1 => {
                let (token, _) = logins.session_for("alice", &password).await;
                let (status, body) = logins
                    .call(
                        "POST",
                        "/_matrix/client/v3/account/password",
                        Some(&token),
                        Some(json!({
                            "new_password": next,
                            "logout_devices": true,
                            "auth": password_auth("alice", &password, None),
                        })),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                // The device that asked stays, as in Synapse; the page is not that device.
                assert_eq!(logins.whoami(Some(&token)).await.0, StatusCode::OK);
                password = next;
            }
            2 => {
                let args = [
                    "user",
                    "set-password",
                    ALICE,
                    "--password-stdin",
                    "--logout-devices",
                    "-c",
                    config,
                    "--database",
                    &url,
                ];
                let out = run_binary(HOMEKEY, &args, format!("{next}\n").as_bytes(), &[]);
                assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
                password = next;
            }
            3 => {
                let out = run_binary(
                    HOMEKEY,
                    &["user", "logout", ALICE, "--database", &url],
                    b"",
                    &[],
                );
                assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            }
            _ => {
                let (token, _) = logins.session_for("alice", &password).await;
                let (status, body) = logins
                    .call("POST", "/_matrix/client/v3/logout/all", Some(&token), None)
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
        assert_eq!(alices_page_sessions(&server).await, 0, "{name}");
        assert!(!still_signed_in(&mut browser).await, "{name}");
        assert!(!still_signed_in(&mut other_browser).await, "{name}");
    }
    // The page signs in again with the password alice has now.
    signed_in_browser(&server, &password).await;
}

async fn a_lock_and_a_deactivation_end_the_page_sign_in_and_undoing_them_brings_none_back(
    db: TestDb,
) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    let admin = logins.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let user_path = format!("/_synapse/admin/v2/users/{ALICE}");
    let url = database_url(&server);

    // Locked and unlocked through the Admin API, then through the CLI, with no page visit
    // in between: the sign-in must not be waiting there for the unlock.
    for through_cli in [false, true] {
        let mut browser = signed_in_browser(&server, "alice-pw").await;
        if through_cli {
            let out = run_binary(
                HOMEKEY,
                &["user", "lock", ALICE, "--database", &url],
                b"",
                &[],
            );
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        } else {
            let (status, body) = logins
                .call(
                    "PUT",
                    &user_path,
                    Some(&admin),
                    Some(json!({"locked": true})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        assert_eq!(alices_page_sessions(&server).await, 0);
        let (status, body) = logins
            .call(
                "PUT",
                &user_path,
                Some(&admin),
                Some(json!({"locked": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!still_signed_in(&mut browser).await);
    }

    // Deactivated and reactivated (with a new password) before the browser comes back.
    let mut browser = signed_in_browser(&server, "alice-pw").await;
    let (status, body) = logins
        .call(
            "POST",
            &format!("/_synapse/admin/v1/deactivate/{ALICE}"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(alices_page_sessions(&server).await, 0);
    let (status, body) = logins
        .call(
            "PUT",
            &user_path,
            Some(&admin),
            Some(json!({"deactivated": false, "password": "back-pw"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!still_signed_in(&mut browser).await);
    signed_in_browser(&server, "back-pw").await;
}

async fn a_change_that_keeps_the_devices_keeps_the_page_signed_in(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    let admin = logins.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let (token, device) = logins.session_for("alice", "alice-pw").await;
    let mut browser = signed_in_browser(&server, "alice-pw").await;
    let (status, body) = logins
        .call(
            "POST",
            &format!("/_synapse/admin/v1/reset_password/{ALICE}"),
            Some(&admin),
            Some(json!({"new_password": "new-pw", "logout_devices": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // One device signed out is that device only.
    let (other_token, _) = logins.session_for("alice", "new-pw").await;
    let (status, _) = logins
        .call(
            "POST",
            "/_matrix/client/v3/logout",
            Some(&other_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logins.whoami(Some(&token)).await.0, StatusCode::OK);
    assert!(logins.device_ids(ALICE).await.contains(&device));
    assert!(still_signed_in(&mut browser).await);
}

/// Makes every deletion of a page sign-in fail, as a database that refuses the write would.
async fn refuse_ending_page_sessions(server: &Server) {
    let config = &server.db.config;
    match config {
        homekey::config::DatabaseConfig::Sqlite { .. } => {
            raw_execute(
                config,
                "CREATE TRIGGER refuse_web_session_delete BEFORE DELETE ON homekey_web_sessions \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                &[],
            )
            .await;
        }
        _ => {
            raw_execute(
                config,
                "CREATE FUNCTION refuse_web_session_delete() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
                &[],
            )
            .await;
            raw_execute(
                config,
                "CREATE TRIGGER refuse_web_session_delete BEFORE DELETE ON homekey_web_sessions \
                 FOR EACH ROW EXECUTE FUNCTION refuse_web_session_delete()",
                &[],
            )
            .await;
        }
    }
}

async fn the_pages_own_password_change_with_sign_out_is_one_transaction(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let (token, _) = logins.session_for("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser
        .signed_in("?action=password_change", "alice", "alice-pw")
        .await;
    let mut other_browser = signed_in_browser(&server, "alice-pw").await;

    // The other sign-in cannot be ended: nothing changes, and the page says so.
    refuse_ending_page_sessions(&server).await;
    let change = |csrf: String| {
        vec![
            ("csrf", csrf),
            ("current_password", "alice-pw".to_owned()),
            ("new_password", "second-pw".to_owned()),
            ("new_password_again", "second-pw".to_owned()),
            ("sign_out_others", "on".to_owned()),
        ]
    };
    let fields = change(form.csrf());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let failed = browser.post("password", &fields).await;
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.body
    );
    assert!(
        failed.body.contains("Something went wrong"),
        "{}",
        failed.body
    );
    assert!(!failed.body.contains("signed out"), "{}", failed.body);
    assert_eq!(logins.login("alice", "alice-pw").await.0, StatusCode::OK);
    assert_eq!(logins.whoami(Some(&token)).await.0, StatusCode::OK);
    assert!(still_signed_in(&mut other_browser).await);

    // Once it can: the password, the devices and the other sign-in, together.
    let drop = match &server.db.config {
        homekey::config::DatabaseConfig::Sqlite { .. } => "DROP TRIGGER refuse_web_session_delete",
        _ => "DROP TRIGGER refuse_web_session_delete ON homekey_web_sessions",
    };
    raw_execute(&server.db.config, drop, &[]).await;
    let form = browser.get(&format!("{PAGE}?action=password_change")).await;
    let fields = change(form.csrf());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let changed = browser.post("password", &fields).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(
        changed.body.contains("your other devices were signed out"),
        "{}",
        changed.body
    );
    assert_eq!(
        logins.whoami(Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(!still_signed_in(&mut other_browser).await);
    assert!(still_signed_in(&mut browser).await);
    assert_eq!(alices_page_sessions(&server).await, 1);
}

async fn a_planted_cookie_with_a_token_computed_from_it_signs_no_one_in(db: TestDb) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("mallory", "mallory-pw").await;
    // The cookie an attacker plants, and the token the old scheme derived from it alone.
    let planted = "p".repeat(43);
    let mut digest = Sha256::new();
    digest.update(b"homekey web sign-in form\0");
    digest.update(planted.as_bytes());
    let computed = hex::encode(digest.finalize());
    let mut victim = Browser::new(&server);
    victim.cookie = Some(format!("homekey_session={planted}"));
    let forged = victim
        .post(
            "sign-in",
            &[
                ("csrf", computed.as_str()),
                ("user", "mallory"),
                ("password", "mallory-pw"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert_eq!(web_session_rows(&server).await, 0);
    // The page's own form, on the same cookie, still signs in: the token is the server's.
    let form = victim.get(PAGE).await;
    assert_ne!(form.csrf(), computed);
    let csrf = form.csrf();
    let signed_in = victim
        .post(
            "sign-in",
            &[
                ("csrf", &csrf),
                ("user", "mallory"),
                ("password", "mallory-pw"),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    // Another instance on the same database agrees on the token (the key is the database's).
    let (second, _) = beside_synapse(server.db.share().await, "https://matrix.example.com/").await;
    let mut elsewhere = Browser::new(&second);
    elsewhere.cookie = Some(format!("homekey_session={}", "q".repeat(43)));
    let token_there = elsewhere.get(PAGE).await.csrf();
    let mut here = Browser::new(&server);
    here.cookie = elsewhere.cookie.clone();
    assert_eq!(here.get(PAGE).await.csrf(), token_there);
}

/// Posts raw form bytes, as a browser or a script can.
async fn post_raw(browser: &mut Browser, path: &str, body: String) -> crate::account_page::Answer {
    let request = browser
        .http
        .post(format!("{}{PAGE}{path}", browser.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    browser.answer(request).await
}

async fn a_form_that_is_not_utf8_is_refused_and_changes_nothing(db: TestDb) {
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    let form = browser
        .signed_in("?action=password_change", "alice", "alice-pw")
        .await;
    // Two different new passwords, each invalid UTF-8 (they would both become U+FFFD).
    let body = format!(
        "csrf={}&current_password=alice-pw&new_password=%FF&new_password_again=%FE",
        form.csrf()
    );
    let refused = post_raw(&mut browser, "password", body).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("not valid text"), "{}", refused.body);
    assert!(
        refused.body.contains("id=\"change-password\""),
        "the form again"
    );
    assert_security_headers(&refused);
    assert_eq!(logins.login("alice", "alice-pw").await.0, StatusCode::OK);
    assert_eq!(
        logins.login("alice", "\u{FFFD}").await.0,
        StatusCode::FORBIDDEN
    );

    // The same on the sign-in form.
    let mut stranger = Browser::new(&server);
    let csrf = stranger.get(PAGE).await.csrf();
    let refused = post_raw(
        &mut stranger,
        "sign-in",
        format!("csrf={csrf}&user=alice&password=alice-pw%C3"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("not valid text"), "{}", refused.body);
    assert!(refused.body.contains("id=\"sign-in\""), "{}", refused.body);
}

async fn errors_under_the_pages_have_the_security_headers_and_a_forged_form_is_403_first(
    db: TestDb,
) {
    let (server, _logins) = beside_synapse(db, "https://matrix.example.com/").await;
    server.create_user("alice", "alice-pw").await;
    let mut browser = Browser::new(&server);
    for (method, path, status) in [
        ("GET", "/_homekey/no-such-page", StatusCode::NOT_FOUND),
        (
            "GET",
            "/_homekey/account/no-such-page",
            StatusCode::NOT_FOUND,
        ),
        ("DELETE", PAGE, StatusCode::METHOD_NOT_ALLOWED),
        (
            "GET",
            "/_homekey/account/sign-in",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "PUT",
            "/_homekey/static/page.css",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let request = browser
            .http
            .request(method.parse().unwrap(), format!("{}{path}", server.base));
        let answer = browser.answer(request).await;
        assert_eq!(answer.status, status, "{method} {path}");
        assert_security_headers(&answer);
    }

    // Signed in, a forged session-end naming a device alice does not have: 403, not 404.
    browser.signed_in("", "alice", "alice-pw").await;
    let forged = browser
        .post(
            "session-end",
            &[("csrf", "forged"), ("device_id", "NOSUCHDEVICE")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(
        forged.body.contains("Nothing was changed"),
        "{}",
        forged.body
    );
    assert_security_headers(&forged);
}
