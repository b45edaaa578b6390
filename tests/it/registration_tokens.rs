//! Registration tokens on SQLite and PostgreSQL: Synapse's Admin API against a running
//! server (the cases of Synapse's `tests/rest/admin/test_registration_tokens.py`), the
//! validity check with its rate limit, the store's spending of a use under a real race, and
//! the CLI on the database and through the Admin API.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::{HOMEKEY, TestDb, run_binary, stderr, stdout};
use homekey::store::{RegistrationTokenChanges, Store};

server_tests!(
    the_admin_api_manages_tokens_as_synapse_does,
    the_admin_api_refuses_bad_input_with_synapses_errors_and_changes_nothing,
    the_validity_check_answers_as_synapse_and_is_rate_limited,
    concurrent_spends_of_a_tokens_last_use_leave_exactly_one,
    the_cli_manages_tokens_on_the_database_and_through_the_admin_api,
);

const TOKENS: &str = "/_synapse/admin/v1/registration_tokens";
const VALIDITY: &str = "/_matrix/client/v1/register/m.login.registration_token/validity";
/// Sign-up with registration tokens, and validity checks without the rate limit in the way
/// (one test checks the limit itself).
const SIGN_UP_WITH_TOKENS: &str = "enable_registration: true\n\
     registration_requires_token: true\n\
     rc_registration_token_validity: {per_second: 1000, burst_count: 1000}\n";

fn now_ms() -> i64 {
    homekey::accounts::now_ms()
}

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

/// The tokens' texts a listing shows.
fn texts(listing: &Value) -> Vec<&str> {
    listing["registration_tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("not a listing: {listing}"))
        .iter()
        .map(|token| token["token"].as_str().unwrap())
        .collect()
}

async fn the_admin_api_manages_tokens_as_synapse_does(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    let root = Some(admin.as_str());

    // Defaults: 16 random characters of Synapse's set, no limit, no expiry.
    let (status, made) = server
        .call("POST", &format!("{TOKENS}/new"), root, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let random = made["token"].as_str().unwrap().to_owned();
    assert_eq!(random.len(), 16);
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
    );
    assert_eq!(
        made,
        json!({"token": random, "uses_allowed": null, "pending": 0, "completed": 0, "expiry_time": null})
    );
    let (_, long) = server
        .call(
            "POST",
            &format!("{TOKENS}/new"),
            root,
            Some(json!({"length": 64})),
        )
        .await;
    assert_eq!(long["token"].as_str().unwrap().len(), 64);

    // A given token, limits echoed.
    let expiry = now_ms() + 86_400_000;
    let (status, made) = server
        .call(
            "POST",
            &format!("{TOKENS}/new"),
            root,
            Some(json!({"token": "abcd", "uses_allowed": 1, "expiry_time": expiry})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(
        made,
        json!({"token": "abcd", "uses_allowed": 1, "pending": 0, "completed": 0, "expiry_time": expiry})
    );
    // The same token again: Synapse's 400.
    let (status, body) = server
        .call(
            "POST",
            &format!("{TOKENS}/new"),
            root,
            Some(json!({"token": "abcd"})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    assert_eq!(body["error"], "Token already exists: abcd");
    let (_, zero) = server
        .call(
            "POST",
            &format!("{TOKENS}/new"),
            root,
            Some(json!({"token": "zero", "uses_allowed": 0})),
        )
        .await;
    assert_eq!(zero["uses_allowed"], 0);

    // One token; unknown ones are 404.
    let (status, shown) = server
        .call("GET", &format!("{TOKENS}/abcd"), root, None)
        .await;
    assert_eq!((status, shown), (StatusCode::OK, made.clone()));
    let (status, body) = server
        .call("GET", &format!("{TOKENS}/nope"), root, None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    assert_eq!(body["error"], "No such registration token: nope");

    // The listing, all or filtered by validity (uses_allowed 0 admits nobody).
    let (status, all) = server.call("GET", TOKENS, root, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = vec![
        "abcd",
        "zero",
        random.as_str(),
        long["token"].as_str().unwrap(),
    ];
    expected.sort();
    assert_eq!(texts(&all), expected);
    let (_, valid) = server
        .call("GET", &format!("{TOKENS}?valid=true"), root, None)
        .await;
    assert!(
        !texts(&valid).contains(&"zero") && texts(&valid).contains(&"abcd"),
        "{valid}"
    );
    let (_, invalid) = server
        .call("GET", &format!("{TOKENS}?valid=false"), root, None)
        .await;
    assert_eq!(texts(&invalid), ["zero"]);
    // abcd's one use spent by a sign-up: it is listed invalid, pending 1.
    assert!(
        server
            .store()
            .spend_registration_token("abcd", now_ms())
            .await
            .unwrap()
    );
    let (_, invalid) = server
        .call("GET", &format!("{TOKENS}?valid=false"), root, None)
        .await;
    assert_eq!(texts(&invalid), ["abcd", "zero"]);
    assert_eq!(invalid["registration_tokens"][0]["pending"], 1);

    // Updates: each field only if given; null lifts the limit; no field reads the token.
    let url = format!("{TOKENS}/abcd");
    let (status, body) = server
        .call("PUT", &url, root, Some(json!({"uses_allowed": 5})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["uses_allowed"], &body["expiry_time"]),
        (&json!(5), &json!(expiry))
    );
    let later = expiry + 1000;
    let (_, body) = server
        .call("PUT", &url, root, Some(json!({"expiry_time": later})))
        .await;
    assert_eq!(
        (&body["uses_allowed"], &body["expiry_time"]),
        (&json!(5), &json!(later))
    );
    let (_, body) = server
        .call(
            "PUT",
            &url,
            root,
            Some(json!({"uses_allowed": null, "expiry_time": null})),
        )
        .await;
    assert_eq!(
        body,
        json!({"token": "abcd", "uses_allowed": null, "pending": 1, "completed": 0, "expiry_time": null})
    );
    let (status, same) = server.call("PUT", &url, root, Some(json!({}))).await;
    assert_eq!((status, same), (StatusCode::OK, body));
    let (status, body) = server
        .call(
            "PUT",
            &format!("{TOKENS}/nope"),
            root,
            Some(json!({"uses_allowed": 1})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );

    // Deletion; then it is gone.
    let (status, body) = server.call("DELETE", &url, root, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    for method in ["GET", "DELETE"] {
        let (status, body) = server.call(method, &url, root, None).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            "{method}"
        );
    }

    // A user who is not an admin: 403 on every endpoint.
    server.create_user("alice", "alice-pw").await;
    let alice = server.token_for("alice", "alice-pw").await;
    for (method, path) in [
        ("GET", TOKENS.to_owned()),
        ("POST", format!("{TOKENS}/new")),
        ("GET", format!("{TOKENS}/zero")),
        ("PUT", format!("{TOKENS}/zero")),
        ("DELETE", format!("{TOKENS}/zero")),
    ] {
        let (status, body) = server
            .call(method, &path, Some(&alice), Some(json!({})))
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            "{method} {path}"
        );
    }

    // Audited, by the admin, naming each token by a digest only; the access log has no token.
    let records = server
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap();
    let actions: Vec<&str> = records
        .iter()
        .filter(|r| r.action.contains("registration_token"))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "delete_registration_token",
            "update_registration_token",
            "update_registration_token",
            "update_registration_token",
            "create_registration_token",
            "create_registration_token",
            "create_registration_token",
            "create_registration_token",
        ]
    );
    for record in records
        .iter()
        .filter(|r| r.action.contains("registration_token"))
    {
        assert_eq!(record.actor, "@root:example.com");
        let target = record.target.as_deref().unwrap();
        assert!(target.starts_with("registration-token:"), "{target}");
        assert!(!target.contains("abcd") && !record.details.to_string().contains("abcd"));
    }
    let log = server.log();
    assert!(log.contains("registration_tokens/<redacted>"), "{log}");
    assert!(
        !log.contains("registration_tokens/abcd") && !log.contains(&random),
        "{log}"
    );
}

async fn the_admin_api_refuses_bad_input_with_synapses_errors_and_changes_nothing(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    let root = Some(admin.as_str());
    let new = format!("{TOKENS}/new");
    server
        .call(
            "POST",
            &new,
            root,
            Some(json!({"token": "kept", "uses_allowed": 2})),
        )
        .await;
    let past = now_ms() - 1000;
    let too_long = "a".repeat(65);
    for (body, message) in [
        (json!({"token": 5}), "token must be a string"),
        (
            json!({"token": ""}),
            "token must not be empty and must not be longer than 64 characters",
        ),
        (
            json!({"token": too_long}),
            "token must not be empty and must not be longer than 64 characters",
        ),
        (
            json!({"token": "a b"}),
            "token must consist only of characters matched by the regex [A-Za-z0-9-_]",
        ),
        (
            json!({"token": "a/b"}),
            "token must consist only of characters matched by the regex [A-Za-z0-9-_]",
        ),
        (
            json!({"token": "abc=="}),
            "token must consist only of characters matched by the regex [A-Za-z0-9-_]",
        ),
        (json!({"length": "16"}), "length must be an integer"),
        (json!({"length": null}), "length must be an integer"),
        (json!({"length": 1.5}), "length must be an integer"),
        (json!({"length": true}), "length must be an integer"),
        (
            json!({"length": 0}),
            "length must be greater than zero and not greater than 64",
        ),
        (
            json!({"length": 65}),
            "length must be greater than zero and not greater than 64",
        ),
        (
            json!({"uses_allowed": -1}),
            "uses_allowed must be a non-negative integer or null",
        ),
        (
            json!({"uses_allowed": 1.5}),
            "uses_allowed must be a non-negative integer or null",
        ),
        (
            json!({"uses_allowed": "3"}),
            "uses_allowed must be a non-negative integer or null",
        ),
        (
            json!({"uses_allowed": true}),
            "uses_allowed must be a non-negative integer or null",
        ),
        (
            json!({"expiry_time": "soon"}),
            "expiry_time must be an integer or null",
        ),
        (
            json!({"expiry_time": 1.5e15}),
            "expiry_time must be an integer or null",
        ),
        (
            json!({"expiry_time": past}),
            "expiry_time must not be in the past",
        ),
        // Synapse's order: the token is checked before the limits.
        (
            json!({"token": "a b", "uses_allowed": -1}),
            "token must consist only of characters matched by the regex [A-Za-z0-9-_]",
        ),
    ] {
        let (status, answer) = server.call("POST", &new, root, Some(body.clone())).await;
        assert_eq!(
            (
                status,
                errcode(&answer),
                answer["error"].as_str().unwrap_or("")
            ),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message),
            "{body}"
        );
    }
    let url = format!("{TOKENS}/kept");
    for (body, message) in [
        (
            json!({"uses_allowed": -1}),
            "uses_allowed must be a non-negative integer or null",
        ),
        (
            json!({"uses_allowed": "x"}),
            "uses_allowed must be a non-negative integer or null",
        ),
        (
            json!({"expiry_time": past}),
            "expiry_time must not be in the past",
        ),
        (
            json!({"uses_allowed": 9, "expiry_time": "x"}),
            "expiry_time must be an integer or null",
        ),
    ] {
        let (status, answer) = server.call("PUT", &url, root, Some(body.clone())).await;
        assert_eq!(
            (
                status,
                errcode(&answer),
                answer["error"].as_str().unwrap_or("")
            ),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message),
            "{body}"
        );
    }
    // Not JSON, not an object, a bad filter.
    let response = server
        .http
        .post(server.url(&new))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(errcode(&response.json().await.unwrap()), "M_NOT_JSON");
    let (status, body) = server.call("POST", &new, root, Some(json!([1]))).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    let (status, body) = server
        .call("GET", &format!("{TOKENS}?valid=yes"), root, None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );

    // Nothing changed: the one token, as made.
    let (_, all) = server.call("GET", TOKENS, root, None).await;
    assert_eq!(
        all,
        json!({"registration_tokens": [
            {"token": "kept", "uses_allowed": 2, "pending": 0, "completed": 0, "expiry_time": null}
        ]})
    );
}

/// `GET …/validity?token=…`, anonymous.
async fn validity(server: &Server, token: &str) -> (StatusCode, Value) {
    server
        .call("GET", &format!("{VALIDITY}?token={token}"), None, None)
        .await
}

/// Whether the validity check says `token` is valid (it must answer 200).
async fn valid(server: &Server, token: &str) -> bool {
    let (status, body) = validity(server, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["valid"].as_bool().unwrap()
}

async fn the_validity_check_answers_as_synapse_and_is_rate_limited(db: TestDb) {
    let store = db.store.clone();
    store
        .create_registration_token("one-use", Some(1), None, None)
        .await
        .unwrap();
    store
        .create_registration_token("expiring", None, Some(now_ms() + 60_000), None)
        .await
        .unwrap();
    store
        .create_registration_token("none", Some(0), None, None)
        .await
        .unwrap();
    {
        let server = Server::start(db.share().await, SIGN_UP_WITH_TOKENS).await;
        let valid = |token| valid(&server, token);
        assert!(valid("one-use").await);
        assert!(valid("expiring").await);
        assert!(!valid("none").await, "uses_allowed 0 admits nobody");
        assert!(!valid("unknown").await);
        // A spent use is pending: the token's one use is taken.
        assert!(
            store
                .spend_registration_token("one-use", now_ms())
                .await
                .unwrap()
        );
        assert!(!valid("one-use").await);
        // Released, it is valid again; completed, used up.
        assert!(store.release_registration_token("one-use").await.unwrap());
        assert!(valid("one-use").await);
        assert!(
            store
                .spend_registration_token("one-use", now_ms())
                .await
                .unwrap()
        );
        assert!(store.complete_registration_token("one-use").await.unwrap());
        assert!(!valid("one-use").await);
        // Expired.
        let expired = RegistrationTokenChanges {
            expiry_time: Some(Some(now_ms() - 1)),
            ..Default::default()
        };
        store
            .update_registration_token("expiring", expired, None)
            .await
            .unwrap();
        assert!(!valid("expiring").await);
        let (status, body) = server.call("GET", VALIDITY, None, None).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::BAD_REQUEST, "M_MISSING_PARAM")
        );
    }
    {
        // Synapse's default limit: a burst of 5 from one address, then 429.
        let server = Server::start(
            db.share().await,
            "enable_registration: true\nregistration_requires_token: true\n",
        )
        .await;
        for _ in 0..5 {
            assert_eq!(validity(&server, "one-use").await.0, StatusCode::OK);
        }
        let (status, body) = validity(&server, "one-use").await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
        );
        assert!(body["retry_after_ms"].as_u64().unwrap() > 0, "{body}");
    }
    {
        // Registration disabled (the default): Synapse's 403.
        let server = Server::start(db.share().await, "").await;
        let (status, body) = validity(&server, "one-use").await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN")
        );
        assert_eq!(body["error"], "Registration has been disabled");
    }
    drop(db);
}

/// Spends of one token started together from `attempts` tasks, each on its own connection of
/// the pool: which succeeded, and when each was in flight.
async fn race(store: &Store, token: &str, attempts: usize) -> Vec<(bool, Instant, Instant)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(attempts));
    let tasks: Vec<_> = (0..attempts)
        .map(|_| {
            let (store, token, barrier) = (store.clone(), token.to_owned(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let started = Instant::now();
                let spent = store
                    .spend_registration_token(&token, now_ms())
                    .await
                    .unwrap();
                (spent, started, Instant::now())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Whether two of the attempts were in flight at the same moment.
fn overlapped(results: &[(bool, Instant, Instant)]) -> bool {
    results
        .iter()
        .enumerate()
        .any(|(i, a)| results[i + 1..].iter().any(|b| a.1 < b.2 && b.1 < a.2))
}

async fn concurrent_spends_of_a_tokens_last_use_leave_exactly_one(db: TestDb) {
    let store = db.store.clone();
    let rounds = 10;
    let mut overlapping_rounds = 0;
    for round in 0..rounds {
        let token = format!("last-use-{round}");
        store
            .create_registration_token(&token, Some(1), None, None)
            .await
            .unwrap();
        let results = race(&store, &token, 8).await;
        let winners = results.iter().filter(|(spent, ..)| *spent).count();
        assert_eq!(winners, 1, "round {round}: {winners} spends of one use");
        if overlapped(&results) {
            overlapping_rounds += 1;
        }
        let after = store.registration_token(&token).await.unwrap().unwrap();
        assert_eq!((after.pending, after.completed), (1, 0), "round {round}");
    }
    assert!(
        overlapping_rounds == rounds,
        "the attempts overlapped in {overlapping_rounds} of {rounds} rounds"
    );

    // Three uses among sixteen racers: exactly three, then complete and release.
    store
        .create_registration_token("three", Some(3), None, None)
        .await
        .unwrap();
    let results = race(&store, "three", 16).await;
    assert!(overlapped(&results));
    assert_eq!(results.iter().filter(|(spent, ..)| *spent).count(), 3);
    assert!(store.complete_registration_token("three").await.unwrap());
    assert!(store.release_registration_token("three").await.unwrap());
    let three = store.registration_token("three").await.unwrap().unwrap();
    assert_eq!((three.pending, three.completed), (1, 1));
    // The released use can be spent again, once.
    let results = race(&store, "three", 8).await;
    assert_eq!(results.iter().filter(|(spent, ..)| *spent).count(), 1);

    // No limit: every racer spends one.
    store
        .create_registration_token("open", None, None, None)
        .await
        .unwrap();
    let results = race(&store, "open", 16).await;
    assert!(results.iter().all(|(spent, ..)| *spent));
    assert_eq!(
        store
            .registration_token("open")
            .await
            .unwrap()
            .unwrap()
            .pending,
        16
    );

    // Nothing to spend, complete or release: refused, nothing changed.
    store
        .create_registration_token("gone-by", None, Some(now_ms() - 1), None)
        .await
        .unwrap();
    store
        .create_registration_token("zero", Some(0), None, None)
        .await
        .unwrap();
    for token in ["gone-by", "zero", "unknown"] {
        assert!(
            !store
                .spend_registration_token(token, now_ms())
                .await
                .unwrap(),
            "{token}"
        );
        assert!(
            !store.complete_registration_token(token).await.unwrap(),
            "{token}"
        );
        assert!(
            !store.release_registration_token(token).await.unwrap(),
            "{token}"
        );
    }
    let zero = store.registration_token("zero").await.unwrap().unwrap();
    assert_eq!((zero.pending, zero.completed), (0, 0));
    drop(db);
}

/// The database's URL, as `--database` takes it.
fn database_url(db: &TestDb) -> String {
    match &db.config {
        homekey::config::DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
        other => panic!("unexpected test database {other:?}"),
    }
}

async fn the_cli_manages_tokens_on_the_database_and_through_the_admin_api(db: TestDb) {
    let server = Server::start(db, "").await;
    let database = database_url(&server.db);
    let offline = |args: &[&str]| {
        let mut all = vec!["registration-token"];
        all.extend_from_slice(args);
        all.extend(["--database", &database]);
        run_binary(HOMEKEY, &all, b"", &[("USER", "tester")])
    };
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let fails = |out: std::process::Output, code: i32| {
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(stdout(&out), "");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };

    // Offline, straight on the database.
    let made: Value = serde_json::from_str(&ok(offline(&[
        "create",
        "invite-1",
        "--uses-allowed",
        "2",
        "--expires-in",
        "7d",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (&made["token"], &made["uses_allowed"], &made["pending"]),
        (&json!("invite-1"), &json!(2), &json!(0))
    );
    let week = made["expiry_time"].as_i64().unwrap() - now_ms();
    assert!(
        (7 * 86_400_000 - 60_000..=7 * 86_400_000).contains(&week),
        "{made}"
    );
    let random = ok(offline(&["create"]));
    let random_token = random.lines().next().unwrap().to_owned();
    assert_eq!(random_token.len(), 16, "{random}");
    assert!(
        random.contains("uses_allowed  unlimited") && random.contains("valid         yes"),
        "{random}"
    );
    let listed = ok(offline(&["list"]));
    assert!(
        listed.contains("invite-1")
            && listed.contains(&random_token)
            && listed.ends_with("2 tokens\n"),
        "{listed}"
    );
    let shown = ok(offline(&["show", "invite-1"]));
    assert!(
        shown.starts_with("invite-1\n") && shown.contains("uses_allowed  2"),
        "{shown}"
    );
    let updated: Value = serde_json::from_str(&ok(offline(&[
        "update",
        "invite-1",
        "--unlimited",
        "--never-expires",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (&updated["uses_allowed"], &updated["expiry_time"]),
        (&Value::Null, &Value::Null)
    );
    ok(offline(&["update", "invite-1", "--uses-allowed", "0"]));
    assert!(ok(offline(&["list", "--invalid"])).starts_with("invite-1 "));
    // Refusals: one line, exit 1 (refused) or 2 (usage), nothing changed.
    let err = fails(offline(&["create", "invite-1"]), 1);
    assert!(
        err.contains("registration token invite-1 already exists"),
        "{err}"
    );
    let err = fails(offline(&["create", "bad token"]), 1);
    assert!(
        err.contains("token must consist only of characters"),
        "{err}"
    );
    let err = fails(offline(&["create", "--length", "65"]), 1);
    assert!(err.contains("length must be greater than zero"), "{err}");
    let err = fails(offline(&["create", "--expiry-time", "1000"]), 1);
    assert!(err.contains("expiry_time must not be in the past"), "{err}");
    fails(offline(&["create", "--uses-allowed", "-1"]), 2);
    let err = fails(offline(&["update", "invite-1"]), 2);
    assert!(err.contains("nothing to change"), "{err}");
    let err = fails(offline(&["show", "nope"]), 1);
    assert!(err.contains("no registration token nope"), "{err}");
    ok(offline(&["delete", &random_token]));
    let err = fails(offline(&["delete", &random_token]), 1);
    assert!(err.contains("no registration token"), "{err}");
    assert!(ok(offline(&["list"])).ends_with("1 token\n"));
    let records = server
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap();
    let by_cli: Vec<&str> = records
        .iter()
        .filter(|r| r.actor == "cli:tester")
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        by_cli,
        [
            "delete_registration_token",
            "update_registration_token",
            "update_registration_token",
            "create_registration_token",
            "create_registration_token",
        ]
    );

    // Through the Admin API of the running server.
    let admin_token = server.admin_token("root", "root-pw").await;
    let home = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec![
            "admin",
            "--server",
            &server.base,
            "--token",
            &admin_token,
            "registration-token",
        ];
        all.extend_from_slice(args);
        run_binary(
            HOMEKEY,
            &all,
            b"",
            &[("XDG_CONFIG_HOME", home.path().to_str().unwrap())],
        )
    };
    let made: Value = serde_json::from_str(&ok(admin(&[
        "create",
        "invite-2",
        "--uses-allowed",
        "1",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        made,
        json!({"token": "invite-2", "uses_allowed": 1, "pending": 0, "completed": 0, "expiry_time": null})
    );
    let listed = ok(admin(&["list", "--valid"]));
    assert!(
        listed.starts_with("invite-2 ") && listed.ends_with("1 token\n"),
        "{listed}"
    );
    let listed: Value = serde_json::from_str(&ok(admin(&["list", "--json"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(ok(admin(&["show", "invite-2"])).contains("uses_allowed  1"));
    let updated: Value = serde_json::from_str(&ok(admin(&[
        "update",
        "invite-2",
        "--uses-allowed",
        "5",
        "--json",
    ])))
    .unwrap();
    assert_eq!(updated["uses_allowed"], 5);
    let err = fails(admin(&["create", "invite-2"]), 1);
    assert!(
        err.contains("M_INVALID_PARAM: Token already exists: invite-2"),
        "{err}"
    );
    ok(admin(&["delete", "invite-2"]));
    let err = fails(admin(&["show", "invite-2"]), 1);
    assert!(err.contains("M_NOT_FOUND"), "{err}");
    let records = server
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.actor == "@root:example.com" && r.action.contains("registration_token"))
            .count(),
        3
    );
}
