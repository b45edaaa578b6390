//! Sign-up over `POST /register` on SQLite and PostgreSQL, against a running server: the
//! registration token stage as Synapse answers it (`tests/rest/client/test_register.py`),
//! the race for a token's last use over HTTP, a pending use given back when its unfinished
//! sign-up expires, the open flow with terms, generated names, `inhibit_login` and refresh
//! tokens, `rc_registration`, and bad or hostile input answered with Synapse's errors and
//! changing nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::TestDb;
use homekey::store::{AuditFilter, RegistrationToken};

server_tests!(
    a_legacy_client_signs_up_through_the_token_stage_as_synapse_answers,
    sign_up_refuses_bad_and_hostile_requests_with_synapses_errors_and_makes_nothing,
    sign_ups_racing_for_a_tokens_last_use_over_http_make_exactly_one_account,
    an_unfinished_sign_up_gives_its_token_use_back_when_its_session_expires,
    open_sign_up_with_terms_numbers_nameless_accounts_and_honours_inhibit_login_and_refresh,
    rc_registration_limits_the_accounts_made_from_one_address,
);

const REGISTER: &str = "/_matrix/client/v3/register";
const AVAILABLE: &str = "/_matrix/client/v3/register/available";
const TOKEN_STAGE: &str = "m.login.registration_token";
const PASSWORD: &str = "a long sign-up password";

/// Sign-up with registration tokens, the rate limit out of the way.
const SIGN_UP_WITH_TOKENS: &str = "enable_registration: true\n\
     registration_requires_token: true\n\
     rc_registration: {per_second: 1000, burst_count: 1000}\n";

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

async fn token(server: &Server, text: &str) -> RegistrationToken {
    server
        .store()
        .registration_token(text)
        .await
        .unwrap()
        .unwrap()
}

async fn new_token(server: &Server, text: &str, uses_allowed: Option<i32>) {
    assert!(
        server
            .store()
            .create_registration_token(text, uses_allowed, None, None)
            .await
            .unwrap()
    );
}

async fn account_exists(server: &Server, user_id: &str) -> bool {
    server.store().get_user(user_id).await.unwrap().is_some()
}

async fn user_count(server: &Server) -> usize {
    server
        .store()
        .list_users(&Default::default(), 0, 1)
        .await
        .unwrap()
        .total as usize
}

/// A first request: the session it starts, after checking it is Synapse's 401.
async fn start(server: &Server, body: Value) -> String {
    let (status, answer) = server.call("POST", REGISTER, None, Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    answer["session"].as_str().unwrap().to_owned()
}

async fn stage(server: &Server, session: &str, auth: Value) -> (StatusCode, Value) {
    let mut auth = auth;
    auth["session"] = json!(session);
    server
        .call("POST", REGISTER, None, Some(json!({ "auth": auth })))
        .await
}

async fn a_legacy_client_signs_up_through_the_token_stage_as_synapse_answers(db: TestDb) {
    let server = Server::start(db, SIGN_UP_WITH_TOKENS).await;
    new_token(&server, "invite-alice", Some(1)).await;

    // The name is free and valid before anything is spent.
    let (status, body) = server
        .call("GET", &format!("{AVAILABLE}?username=alice"), None, None)
        .await;
    assert_eq!(
        (status, body.clone()),
        (StatusCode::OK, json!({"available": true}))
    );

    // The first request: the flows, a session, no `completed` yet (as Synapse).
    let (status, first) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"username": "Alice", "password": PASSWORD,
                        "initial_device_display_name": "Alice's phone"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{first}");
    assert_eq!(
        first["flows"],
        json!([{"stages": [TOKEN_STAGE, "m.login.dummy"]}])
    );
    assert!(first.get("completed").is_none(), "{first}");
    let session = first["session"].as_str().unwrap().to_owned();
    // The password is kept only as a hash: never as sent.
    assert!(!server.log().contains(PASSWORD));

    // A wrong token, then one that is not a string: the client may try again.
    let (status, body) = stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "nope"}),
    )
    .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED")
    );
    assert_eq!(body["error"], "Invalid registration token");
    assert_eq!(body["completed"], json!([]));
    let (status, body) = stage(&server, &session, json!({"type": TOKEN_STAGE, "token": 7})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_INVALID_PARAM")
    );
    let (status, body) = stage(&server, &session, json!({"type": TOKEN_STAGE})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_PARAM")
    );

    // The right token: the stage completes and holds the token's one use.
    let (status, body) = stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "invite-alice"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["completed"], json!([TOKEN_STAGE]));
    assert!(body.get("errcode").is_none(), "{body}");
    let held = token(&server, "invite-alice").await;
    assert_eq!((held.pending, held.completed), (1, 0));
    // Sent again, the same token spends nothing more; another one is refused.
    let (_, body) = stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "invite-alice"}),
    )
    .await;
    assert_eq!(body["completed"], json!([TOKEN_STAGE]));
    assert_eq!(token(&server, "invite-alice").await.pending, 1);
    new_token(&server, "another", None).await;
    let (_, body) = stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "another"}),
    )
    .await;
    assert_eq!(errcode(&body), "M_INVALID_PARAM");
    assert_eq!(body["error"], "Registration token has changed");
    // The held use is not free for somebody else meanwhile.
    let other = start(
        &server,
        json!({"username": "mallory", "password": PASSWORD}),
    )
    .await;
    let (_, body) = stage(
        &server,
        &other,
        json!({"type": TOKEN_STAGE, "token": "invite-alice"}),
    )
    .await;
    assert_eq!(body["error"], "Invalid registration token");

    // The last stage, with nothing but `auth`: the account, named in lower case, and a
    // session on the device named in the first request.
    let (status, done) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["user_id"], "@alice:example.com");
    assert_eq!(done["home_server"], "example.com");
    let access_token = done["access_token"].as_str().unwrap();
    let (status, whoami) = server.whoami(Some(access_token)).await;
    assert_eq!(
        (status, &whoami["user_id"]),
        (StatusCode::OK, &json!("@alice:example.com"))
    );
    let devices = server
        .store()
        .list_devices("@alice:example.com")
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, done["device_id"].as_str().unwrap());
    assert_eq!(devices[0].display_name.as_deref(), Some("Alice's phone"));
    let spent = token(&server, "invite-alice").await;
    assert_eq!((spent.pending, spent.completed), (0, 1));
    // The password the first request sent logs in.
    assert_eq!(server.login("alice", PASSWORD).await.0, StatusCode::OK);
    // The session is spent with the account.
    let (status, body) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN")
    );

    // Audited: who (a sign-up), from where, and which token, never the token itself.
    let records = server
        .store()
        .list_audit(&AuditFilter {
            target: Some("@alice:example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].actor.as_str(), records[0].action.as_str()),
        ("sign-up", "create_user")
    );
    let details = records[0].details.to_string();
    assert!(details.contains("registration-token:"), "{details}");
    assert!(details.contains("127.0.0.1"), "{details}");
    assert!(!details.contains("invite-alice"), "{details}");

    // Now taken, in any case.
    let (status, body) = server
        .call("GET", &format!("{AVAILABLE}?username=alice"), None, None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"username": "ALICE", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
}

async fn sign_up_refuses_bad_and_hostile_requests_with_synapses_errors_and_makes_nothing(
    db: TestDb,
) {
    {
        // Off (the default): Synapse's 403 for the sign-up and the availability check.
        let server = Server::start(db.share().await, "").await;
        let (status, body) = server
            .call(
                "POST",
                REGISTER,
                None,
                Some(json!({"username": "x", "password": PASSWORD})),
            )
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN")
        );
        assert_eq!(body["error"], "Registration has been disabled");
        let (status, _) = server
            .call("GET", &format!("{AVAILABLE}?username=x"), None, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let server = Server::start(
        db,
        &format!("{SIGN_UP_WITH_TOKENS}password_config:\n  pepper: serve-pepper\n  policy: {{enabled: true, minimum_length: 12}}\n"),
    )
    .await;
    new_token(&server, "invite", Some(5)).await;
    let users_before = user_count(&server).await;
    let refused =
        |status: StatusCode, code: &'static str, message: &'static str| (status, code, message);
    // The query, the body, the access token, and the answer: status, errcode, error.
    type Case = (
        &'static str,
        Value,
        Option<&'static str>,
        (StatusCode, &'static str, &'static str),
    );
    let cases: Vec<Case> = vec![
        (
            "?kind=guest",
            json!({}),
            None,
            refused(
                StatusCode::FORBIDDEN,
                "M_UNKNOWN",
                "Guest access is disabled",
            ),
        ),
        (
            "?kind=admin",
            json!({}),
            None,
            refused(
                StatusCode::BAD_REQUEST,
                "M_UNRECOGNIZED",
                "Do not understand membership kind: admin",
            ),
        ),
        (
            "",
            json!({"refresh_token": "yes"}),
            None,
            refused(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "`refresh_token' should be true or false.",
            ),
        ),
        (
            "",
            json!({"username": 5}),
            None,
            refused(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Invalid username"),
        ),
        (
            "",
            json!({"username": "a".repeat(513)}),
            None,
            refused(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Invalid username"),
        ),
        (
            "",
            json!({"username": "bob", "password": 12345}),
            None,
            refused(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Invalid password"),
        ),
        (
            "",
            json!({"username": "bob"}),
            Some("syt_not_a_token"),
            refused(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "An access token should not be provided on requests to /register (except if type is m.login.application_service)",
            ),
        ),
        (
            "",
            json!({"type": "m.login.application_service", "username": "bot"}),
            None,
            refused(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Appservice token must be provided when using a type of m.login.application_service",
            ),
        ),
        (
            "",
            json!({"type": "m.login.application_service", "username": "bot"}),
            Some("as_token"),
            refused(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "Unrecognised access token",
            ),
        ),
        (
            "",
            json!({"username": "bob", "password": "short"}),
            None,
            refused(StatusCode::BAD_REQUEST, "M_PASSWORD_TOO_SHORT", ""),
        ),
        (
            "",
            json!({"auth": {"type": "m.login.dummy", "session": "no-such-session"}}),
            None,
            refused(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "Unknown session ID: no-such-session",
            ),
        ),
        (
            "",
            json!({"auth": {"type": "m.login.password", "user": "x", "password": "y"}}),
            None,
            refused(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Unknown login type"),
        ),
    ];
    for (query, body, access_token, (status, code, message)) in cases {
        let (got, answer) = server
            .call(
                "POST",
                &format!("{REGISTER}{query}"),
                access_token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (got, errcode(&answer)),
            (status, code),
            "{body} -> {answer}"
        );
        if !message.is_empty() {
            assert_eq!(answer["error"], message, "{body}");
        }
    }
    // Hostile names: Synapse's rules, M_INVALID_USERNAME, before any stage.
    for name in [
        "_bot",
        "al:ice",
        "al ice",
        "ünïcode",
        "12345",
        "",
        "bob\u{0}",
        "<script>",
        "a/../../b%00",
    ] {
        let (status, answer) = server
            .call(
                "POST",
                REGISTER,
                None,
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(
            (status, errcode(&answer)),
            (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME"),
            "{name:?}: {answer}"
        );
    }
    // The availability check says so too, for as many names as its limit lets through (a
    // burst of 5 from one address), then makes the client wait.
    for name in ["_bot", "al:ice", "ünïcode", "12345", "<script>"] {
        let (status, answer) = server
            .call(
                "GET",
                &format!("{AVAILABLE}?username={}", urlencode(name)),
                None,
                None,
            )
            .await;
        assert_eq!(
            (status, errcode(&answer)),
            (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME"),
            "{name:?}"
        );
    }
    let (status, answer) = server
        .call("GET", &format!("{AVAILABLE}?username=free"), None, None)
        .await;
    assert_eq!(
        (status, errcode(&answer)),
        (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
    );
    let long = "a".repeat(250);
    let (_, answer) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"username": long, "password": PASSWORD})),
        )
        .await;
    assert_eq!(errcode(&answer), "M_INVALID_USERNAME", "{answer}");
    // Hostile tokens: refused as invalid, nothing spent, nothing echoed.
    let session = start(&server, json!({"username": "carol", "password": PASSWORD})).await;
    for hostile in [
        "' OR 1=1 --",
        "invite\u{0}",
        "%",
        "_",
        &"x".repeat(5000),
        "INVITE",
    ] {
        let (status, body) = stage(
            &server,
            &session,
            json!({"type": TOKEN_STAGE, "token": hostile}),
        )
        .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED"),
            "{hostile:?}"
        );
        assert!(!body.to_string().contains("OR 1=1"));
    }
    let (status, body) = server
        .call(
            "GET",
            "/_matrix/client/v1/register/m.login.registration_token/validity?token=invite%00",
            None,
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"valid": false})));
    // Every stage done but no password ever sent: Synapse's missing parameter, no account.
    let session = start(&server, json!({"username": "dave"})).await;
    stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "invite"}),
    )
    .await;
    let (status, body) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_MISSING_PARAM"),
        "{body}"
    );
    assert!(!account_exists(&server, "@dave:example.com").await);
    // A token deleted while a sign-up held it: no account, the session's use gone with it.
    let session = start(&server, json!({"username": "erin", "password": PASSWORD})).await;
    new_token(&server, "revoked", Some(1)).await;
    stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "revoked"}),
    )
    .await;
    assert!(
        server
            .store()
            .delete_registration_token("revoked", None)
            .await
            .unwrap()
    );
    let (status, body) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );
    assert!(!account_exists(&server, "@erin:example.com").await);

    assert_eq!(
        user_count(&server).await,
        users_before,
        "no request made an account"
    );
    let invite = token(&server, "invite").await;
    assert_eq!(invite.completed, 0);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn sign_ups_racing_for_a_tokens_last_use_over_http_make_exactly_one_account(db: TestDb) {
    const RACERS: usize = 8;
    let server = Server::start(db, SIGN_UP_WITH_TOKENS).await;
    new_token(&server, "last-seat", Some(1)).await;
    let mut sessions = Vec::new();
    for racer in 0..RACERS {
        sessions.push(
            start(
                &server,
                json!({"username": format!("racer{racer}"), "password": PASSWORD}),
            )
            .await,
        );
    }
    // Every racer submits the token at once; each request's time in flight is noted.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let server = std::sync::Arc::new(server);
    let mut racing = tokio::task::JoinSet::new();
    for session in sessions.clone() {
        let (server, barrier) = (server.clone(), barrier.clone());
        racing.spawn(async move {
            barrier.wait().await;
            let sent = Instant::now();
            let (status, body) = stage(
                &server,
                &session,
                json!({"type": TOKEN_STAGE, "token": "last-seat"}),
            )
            .await;
            (sent, Instant::now(), status, body)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = racing.join_next().await {
        results.push(done.unwrap());
    }
    // The race happened: every request was sent before any answer came back.
    let last_sent = results.iter().map(|r| r.0).max().unwrap();
    let first_answered = results.iter().map(|r| r.1).min().unwrap();
    assert!(last_sent < first_answered, "the requests did not overlap");
    let winners = results
        .iter()
        .filter(|r| r.3["completed"] == json!([TOKEN_STAGE]))
        .count();
    let refused = results
        .iter()
        .filter(|r| r.3["error"] == "Invalid registration token")
        .count();
    assert_eq!((winners, refused), (1, RACERS - 1));
    // Everyone finishes: one account, the token used once.
    for session in &sessions {
        stage(&server, session, json!({"type": "m.login.dummy"})).await;
    }
    let mut made = 0;
    for racer in 0..RACERS {
        made += usize::from(account_exists(&server, &format!("@racer{racer}:example.com")).await);
    }
    assert_eq!(made, 1);
    let seat = token(&server, "last-seat").await;
    assert_eq!((seat.pending, seat.completed), (0, 1));
}

async fn an_unfinished_sign_up_gives_its_token_use_back_when_its_session_expires(db: TestDb) {
    let server = Server::start(
        db,
        &format!("{SIGN_UP_WITH_TOKENS}registration_session_lifetime: 2s\n"),
    )
    .await;
    new_token(&server, "one-use", Some(1)).await;
    let abandoned = start(&server, json!({"username": "frank", "password": PASSWORD})).await;
    stage(
        &server,
        &abandoned,
        json!({"type": TOKEN_STAGE, "token": "one-use"}),
    )
    .await;
    assert_eq!(token(&server, "one-use").await.pending, 1);
    let (_, body) = server
        .call(
            "GET",
            "/_matrix/client/v1/register/m.login.registration_token/validity?token=one-use",
            None,
            None,
        )
        .await;
    assert_eq!(body["valid"], false, "held by the unfinished sign-up");
    // After the lifetime the server's sweep gives the use back (not Synapse's 48 hours).
    let deadline = Instant::now() + Duration::from_secs(15);
    while token(&server, "one-use").await.pending != 0 {
        assert!(
            Instant::now() < deadline,
            "the held use was never given back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The abandoned session is gone; somebody else gets the seat.
    let (status, body) = stage(&server, &abandoned, json!({"type": "m.login.dummy"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
        "{body}"
    );
    let session = start(&server, json!({"username": "grace", "password": PASSWORD})).await;
    stage(
        &server,
        &session,
        json!({"type": TOKEN_STAGE, "token": "one-use"}),
    )
    .await;
    let (status, body) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let one_use = token(&server, "one-use").await;
    assert_eq!((one_use.pending, one_use.completed), (0, 1));
}

async fn open_sign_up_with_terms_numbers_nameless_accounts_and_honours_inhibit_login_and_refresh(
    db: TestDb,
) {
    let server = Server::start(
        db,
        "enable_registration: true\n\
         enable_registration_without_verification: true\n\
         rc_registration: {per_second: 1000, burst_count: 1000}\n\
         refreshable_access_token_lifetime: 5m\n\
         branding: {tos_uri: 'https://example.com/terms'}\n",
    )
    .await;
    let (status, first) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"password": PASSWORD, "refresh_token": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        first["flows"],
        json!([{"stages": ["m.login.terms", "m.login.dummy"]}])
    );
    assert_eq!(
        first["params"]["m.login.terms"]["policies"]["terms_of_service"]["en"]["url"],
        "https://example.com/terms"
    );
    let session = first["session"].as_str().unwrap();
    // The terms alone do not finish the flow.
    let (status, body) = stage(&server, session, json!({"type": "m.login.terms"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["completed"], json!(["m.login.terms"]));
    // The last request asks for a refresh token itself (Synapse reads it per request).
    let (status, done) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"auth": {"type": "m.login.dummy", "session": session}, "refresh_token": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // No name asked for: the next number, as Synapse gives them.
    assert_eq!(done["user_id"], "@1:example.com");
    assert!(done["refresh_token"].as_str().unwrap().starts_with("syr_"));
    let expires = done["expires_in_ms"].as_i64().unwrap();
    assert!((290_000..=300_000).contains(&expires), "{expires}");
    let (status, refreshed) = server
        .call(
            "POST",
            "/_matrix/client/v3/refresh",
            None,
            Some(json!({"refresh_token": done["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(server.login("1", PASSWORD).await.0, StatusCode::OK);

    // `inhibit_login`: the account, and no device, no token.
    let session = start(
        &server,
        json!({"username": "henry", "password": PASSWORD, "inhibit_login": true}),
    )
    .await;
    stage(&server, &session, json!({"type": "m.login.terms"})).await;
    let (status, done) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        done,
        json!({"user_id": "@henry:example.com", "home_server": "example.com"})
    );
    assert!(
        server
            .store()
            .list_devices("@henry:example.com")
            .await
            .unwrap()
            .is_empty()
    );
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"auth": {"type": "m.login.registration_token", "token": "x"}})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
        "tokens are not a stage here"
    );
}

async fn rc_registration_limits_the_accounts_made_from_one_address(db: TestDb) {
    let server = Server::start(
        db,
        "enable_registration: true\n\
         enable_registration_without_verification: true\n\
         rc_registration: {per_second: 0.001, burst_count: 2}\n",
    )
    .await;
    for name in ["ivy", "jack"] {
        let session = start(&server, json!({"username": name, "password": PASSWORD})).await;
        let (status, body) = stage(&server, &session, json!({"type": "m.login.dummy"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The third account from this address waits; the check comes before anything else.
    let (status, body) = server
        .call(
            "POST",
            REGISTER,
            None,
            Some(json!({"username": "kate", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
    );
    assert!(body["retry_after_ms"].as_u64().unwrap() > 0);
    assert!(!account_exists(&server, "@kate:example.com").await);
}
