//! `homekey serve` as a process, through HTTP, on SQLite and on PostgreSQL.

use homekey::config::HashScheme;
use homekey::password::HashSettings;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::server::{PEPPER, Server, raw_execute, server_tests};
use crate::support::TestDb;

server_tests!(
    versions_and_login_flows_answer_on_v3_and_r0,
    a_user_logs_in_by_localpart_full_id_any_case_or_legacy_user,
    wrong_password_unknown_and_deactivated_users_get_one_answer,
    a_deactivated_account_with_a_hash_again_is_told_so_only_with_its_password,
    whoami_takes_the_token_from_the_header_or_the_query,
    a_burst_of_requests_leaves_one_whole_log_line_each,
    logout_ends_one_device_and_logout_all_ends_every_one,
    expired_tokens_and_locked_accounts_can_still_log_out,
    bad_bodies_get_matrix_errors,
    unknown_paths_and_methods_are_unrecognized,
    a_hash_written_by_hand_with_sql_logs_in_at_once,
    a_login_upgrades_a_hash_below_the_configured_cost,
    sigterm_stops_the_server_cleanly,
    password_login_can_be_switched_off,
    register_available_says_registration_is_disabled,
);

/// homekey offers no open registration: a client asking whether a name is free is told so,
/// as Synapse tells it with `enable_registration: false`, whatever the name.
async fn register_available_says_registration_is_disabled(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("taken", "taken-pw").await;
    for prefix in ["v3", "r0"] {
        for name in ["free", "taken"] {
            let path = format!("/_matrix/client/{prefix}/register/available?username={name}");
            let (status, body) = server.call("GET", &path, None, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
            assert_eq!(
                body,
                json!({"errcode": "M_FORBIDDEN", "error": "Registration has been disabled"})
            );
        }
    }
}

async fn versions_and_login_flows_answer_on_v3_and_r0(db: TestDb) {
    let server = Server::start(db, "").await;
    let (status, body) = server
        .call("GET", "/_matrix/client/versions", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let versions = body["versions"].as_array().unwrap();
    assert!(versions.contains(&json!("r0.6.1")) && versions.contains(&json!("v1.1")));
    for prefix in ["v3", "r0"] {
        let (status, body) = server
            .call(
                "GET",
                &format!("/_matrix/client/{prefix}/login"),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"flows": [{"type": "m.login.password"}]}));
    }
}

async fn a_user_logs_in_by_localpart_full_id_any_case_or_legacy_user(db: TestDb) {
    let server = Server::start(db, "public_baseurl: https://matrix.example.com\n").await;
    server.create_user("alice", "correct horse").await;
    for user in ["alice", "@alice:example.com", "ALICE", "@Alice:example.com"] {
        let (status, body) = server.login(user, "correct horse").await;
        assert_eq!(status, StatusCode::OK, "{user}: {body}");
        assert_eq!(body["user_id"], "@alice:example.com");
        assert_eq!(body["home_server"], "example.com");
        assert!(
            body["access_token"]
                .as_str()
                .unwrap()
                .starts_with("syt_YWxpY2U_")
        );
        assert_eq!(body["device_id"].as_str().unwrap().len(), 10);
        assert_eq!(
            body["well_known"]["m.homeserver"]["base_url"],
            "https://matrix.example.com/"
        );
    }
    // The deprecated top-level `user`, on the legacy prefix, with a chosen device.
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/r0/login",
            None,
            Some(
                json!({"type": "m.login.password", "user": "alice", "password": "correct horse",
                        "device_id": "MYPHONE", "initial_device_display_name": "Alice's phone"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "MYPHONE");
    let devices = server
        .store()
        .list_devices("@alice:example.com")
        .await
        .unwrap();
    let phone = devices.iter().find(|d| d.device_id == "MYPHONE").unwrap();
    assert_eq!(phone.display_name.as_deref(), Some("Alice's phone"));
    assert_eq!(devices.len(), 5);
}

async fn wrong_password_unknown_and_deactivated_users_get_one_answer(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("bob", "bobs password").await;
    server.create_user("gone", "gone password").await;
    server
        .store()
        .deactivate(
            "@gone:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    let expected = json!({"errcode": "M_FORBIDDEN", "error": "Invalid username or password"});
    for (user, password) in [
        ("bob", "wrong"),
        ("nobody", "whatever"),
        ("gone", "gone password"),
        ("@bob:other.org", "bobs password"),
        ("not valid!", "x"),
    ] {
        let (status, body) = server.login(user, password).await;
        assert_eq!(
            (status, &body),
            (StatusCode::FORBIDDEN, &expected),
            "{user}"
        );
    }
}

/// A deactivated account whose hash came back (set by hand in SQL): the right password gets
/// Synapse's 403 `M_USER_DEACTIVATED`, a wrong one the answer of an unknown user, and no
/// session is opened either way.
async fn a_deactivated_account_with_a_hash_again_is_told_so_only_with_its_password(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("ghost", "ghost password").await;
    server.create_user("spare", "spare password").await;
    let hash = server
        .store()
        .get_user("@spare:example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    server
        .store()
        .deactivate(
            "@ghost:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    // The hash of "spare password", put back by hand on the deactivated account.
    raw_execute(
        &server.db.config,
        "UPDATE users SET password_hash = $1 WHERE name = '@ghost:example.com'",
        &[hash.expose_secret()],
    )
    .await;
    let (status, body) = server.login("ghost", "spare password").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errcode"], "M_USER_DEACTIVATED", "{body}");
    let unknown = server.login("nobody", "spare password").await;
    assert_eq!(server.login("ghost", "wrong password").await, unknown);
    assert_eq!(unknown.1["errcode"], "M_FORBIDDEN");
    assert!(server.device_ids("@ghost:example.com").await.is_empty());
}

async fn whoami_takes_the_token_from_the_header_or_the_query(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("carol", "pw-carol").await;
    let token = server.token_for("carol", "pw-carol").await;
    let (status, body) = server.whoami(Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user_id"], "@carol:example.com");
    assert_eq!(body["is_guest"], false);
    assert_eq!(body["device_id"].as_str().unwrap().len(), 10);

    let path = format!("/_matrix/client/r0/account/whoami?access_token={token}");
    let (status, body) = server.call("GET", &path, None, None).await;
    assert_eq!(
        (status, &body["user_id"]),
        (StatusCode::OK, &json!("@carol:example.com"))
    );
    // The token never reaches the log, even from the query string.
    assert!(
        server.wait_for_log("access_token=<redacted>"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains(&token));

    let (status, body) = server.whoami(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errcode"], "M_MISSING_TOKEN");
    let (status, body) = server.whoami(Some("syt_bogus")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Unrecognised access token", "soft_logout": false})
    );

    // A locked account's token is refused with M_USER_LOCKED.
    server
        .store()
        .set_locked(
            "@carol:example.com",
            true,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    let (status, body) = server.whoami(Some(&token)).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_USER_LOCKED"))
    );
}

/// The access log gathers its lines and writes them in batches: none may be lost, cut or
/// mixed with another, and the last batch is written without waiting for more requests.
async fn a_burst_of_requests_leaves_one_whole_log_line_each(db: TestDb) {
    const REQUESTS: usize = 200;
    let server = Server::start(db, "").await;
    server.create_user("dora", "pw-dora").await;
    let token = server.token_for("dora", "pw-dora").await;
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let request = server
            .http
            .get(server.url(&format!("/_matrix/client/v3/account/whoami?from={i}")))
            .bearer_auth(&token);
        burst.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let lines_of_the_burst = || {
        let log = server.log();
        let mut seen: Vec<usize> = log
            .lines()
            .filter(|line| line.contains("?from="))
            .map(|line| {
                assert!(
                    line.contains("status=200") && line.contains("latency_ms="),
                    "a cut or mixed line: {line}"
                );
                let number = line.split("?from=").nth(1).unwrap();
                number.split(' ').next().unwrap().parse().unwrap()
            })
            .collect();
        seen.sort_unstable();
        seen
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lines_of_the_burst().len() < REQUESTS && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(lines_of_the_burst(), (0..REQUESTS).collect::<Vec<_>>());
}

async fn logout_ends_one_device_and_logout_all_ends_every_one(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("dave", "pw-dave").await;
    let first = server.token_for("dave", "pw-dave").await;
    let second = server.token_for("dave", "pw-dave").await;
    let third = server.token_for("dave", "pw-dave").await;
    let whoami = |token: String| {
        let server = &server;
        async move { server.whoami(Some(&token)).await.0 }
    };

    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/logout",
            Some(&first),
            Some(json!({})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(whoami(first.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(second.clone()).await, StatusCode::OK);
    assert_eq!(
        server
            .store()
            .list_devices("@dave:example.com")
            .await
            .unwrap()
            .len(),
        2
    );

    let (status, _) = server
        .call("POST", "/_matrix/client/r0/logout/all", Some(&second), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(whoami(second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(third).await, StatusCode::UNAUTHORIZED);
    assert!(
        server
            .store()
            .list_devices("@dave:example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn expired_tokens_and_locked_accounts_can_still_log_out(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("ivy", "pw-ivy").await;
    let expired = "syt_aXZ5_expired-token-of-ivy_0000";
    server
        .store()
        .create_session(
            &homekey::store::NewSession {
                user_id: "@ivy:example.com".into(),
                device_id: "OLDPHONE".into(),
                device_display_name: None,
                access_token: SecretString::from(expired),
                valid_until_ms: Some(1_000),
                now_ms: 0,
            },
            None,
        )
        .await
        .unwrap();
    let (status, body) = server.whoami(Some(expired)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (&body["errcode"], &body["soft_logout"]),
        (&json!("M_UNKNOWN_TOKEN"), &json!(true))
    );
    let (status, _) = server
        .call("POST", "/_matrix/client/v3/logout", Some(expired), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.whoami(Some(expired)).await.1["soft_logout"],
        json!(false),
        "gone now"
    );

    let token = server.token_for("ivy", "pw-ivy").await;
    server
        .store()
        .set_locked(
            "@ivy:example.com",
            true,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        server.whoami(Some(&token)).await.1["errcode"],
        "M_USER_LOCKED"
    );
    let (status, _) = server
        .call("POST", "/_matrix/client/v3/logout/all", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    server
        .store()
        .set_locked(
            "@ivy:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        server.whoami(Some(&token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    assert!(server.device_ids("@ivy:example.com").await.is_empty());
}

async fn bad_bodies_get_matrix_errors(db: TestDb) {
    let server = Server::start(db, "").await;
    let login = "/_matrix/client/v3/login";
    let raw = |body: &'static str| {
        let server = &server;
        async move {
            let response = server
                .http
                .post(server.url(login))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = raw("{not json").await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_NOT_JSON"))
    );
    let (status, body) = raw("[1, 2]").await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_BAD_JSON"))
    );
    let (status, body) =
        raw(r#"{"identifier": {"type": "m.id.user", "user": "x"}, "password": "p"}"#).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_MISSING_PARAM"))
    );
    let (status, body) =
        raw(r#"{"type": "m.login.password", "user": "x", "password": ["secret-in-array"]}"#).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_INVALID_PARAM"))
    );
    let (status, body) = raw(r#"{"type": "m.login.password", "user": 12, "password": "p"}"#).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_BAD_JSON"))
    );
    let (status, body) = raw(r#"{"type": "m.login.token", "token": "t"}"#).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_UNKNOWN"))
    );

    for device_id in ["", &"D".repeat(513)] {
        let body = json!({"type": "m.login.password", "user": "x", "password": "p", "device_id": device_id});
        let (status, body) = server.call("POST", login, None, Some(body)).await;
        assert_eq!(
            (status, &body["errcode"]),
            (StatusCode::BAD_REQUEST, &json!("M_INVALID_PARAM"))
        );
    }

    let huge = format!(
        r#"{{"type": "m.login.password", "user": "x", "password": "{}"}}"#,
        "a".repeat(100_000)
    );
    let response = server
        .http
        .post(server.url(login))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errcode"],
        "M_TOO_LARGE"
    );
}

async fn unknown_paths_and_methods_are_unrecognized(db: TestDb) {
    let server = Server::start(db, "").await;
    let unrecognized = json!({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"});
    for path in [
        "/_matrix/client/v3/rooms",
        "/_matrix/federation/v1/version",
        "/anything",
    ] {
        let (status, body) = server.call("GET", path, None, None).await;
        assert_eq!(
            (status, &body),
            (StatusCode::NOT_FOUND, &unrecognized),
            "{path}"
        );
    }
    let (status, body) = server
        .call("DELETE", "/_matrix/client/v3/login", None, None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::METHOD_NOT_ALLOWED, unrecognized)
    );

    // Browser clients get CORS headers.
    let response = server
        .http
        .request(
            reqwest::Method::OPTIONS,
            server.url("/_matrix/client/v3/login"),
        )
        .header("Origin", "https://app.element.io")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

async fn a_hash_written_by_hand_with_sql_logs_in_at_once(db: TestDb) {
    // The seed's way: a hash made by Synapse's hash_password, put in place with plain SQL
    // while the server runs, logs in at once.
    let vectors = crate::support::synapse_hash_vectors();
    let vector = &vectors["peppered"][1];
    let (password, pepper, hash) = (
        vector["password"].as_str().unwrap(),
        vector["pepper"].as_str().unwrap(),
        vector["hash"].as_str().unwrap(),
    );
    let server = Server::start_with_pepper(db, pepper, "").await;
    server.create_user("erin", "old password").await;
    let old_token = server.token_for("erin", "old password").await;
    let sql = "UPDATE users SET password_hash = $1 WHERE name = '@erin:example.com'";
    raw_execute(&server.db.config, sql, &[hash]).await;
    let (status, body) = server.login("erin", password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.login("erin", "old password").await.0,
        StatusCode::FORBIDDEN
    );
    // Plain SQL does not log anyone out: the old session stays (that is the Admin API's job).
    let (status, _) = server.whoami(Some(&old_token)).await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_login_upgrades_a_hash_below_the_configured_cost(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("frank", "pw-frank").await;
    let cost4 = HashSettings::new(HashScheme::Bcrypt, 4, SecretString::from(PEPPER))
        .hash(&SecretString::from("pw-frank"))
        .unwrap();
    raw_execute(
        &server.db.config,
        "UPDATE users SET password_hash = $1 WHERE name = '@frank:example.com'",
        &[cost4.expose_secret()],
    )
    .await;
    server.token_for("frank", "pw-frank").await;
    let stored = server
        .store()
        .get_user("@frank:example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(
        stored.expose_secret().starts_with("$2b$05$"),
        "not upgraded"
    );
    server.token_for("frank", "pw-frank").await;
}

async fn sigterm_stops_the_server_cleanly(db: TestDb) {
    let mut server = Server::start(db, "").await;
    // Answered right before the stop: its access-log line, gathered for a batch, must still
    // be written, and before the last line.
    let (status, _) = server
        .call("GET", "/_matrix/client/versions?limit=1", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.stop(), Some(0), "{}", server.log());
    let log = server.log();
    let last_request = log
        .find("versions?limit=1")
        .expect("the last request's line");
    let stopped = log.rfind("stopped").expect("the stop's line");
    assert!(last_request < stopped, "{log}");
}

async fn password_login_can_be_switched_off(db: TestDb) {
    let server = Server::start(
        db,
        &format!("password_config: {{pepper: {PEPPER}, enabled: false}}\n"),
    )
    .await;
    server.create_user("gina", "pw-gina").await;
    let (status, body) = server
        .call("GET", "/_matrix/client/v3/login", None, None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"flows": []})));
    let (status, body) = server.login("gina", "pw-gina").await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_UNKNOWN"))
    );
    assert!(
        server
            .store()
            .list_devices("@gina:example.com")
            .await
            .unwrap()
            .is_empty()
    );
}
