//! `rc_login` against a running server: per address, per account, per failed attempts, with
//! Synapse's 429 answer.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{PEPPER, Server, password_auth, server_tests};
use crate::support::TestDb;

server_tests!(
    wrong_passwords_lock_the_account_named_out_for_a_while,
    every_login_attempt_counts_against_its_address,
    successful_logins_count_against_their_account,
);

/// An `rc_login` where `which` allows a burst of `burst` and drains too slowly to matter in
/// a test (one action per 1000 s), and the other two limits are out of the way.
fn rc_login(which: &str, burst: u32) -> String {
    let mut config = String::from("rc_login:\n");
    for limit in ["address", "account", "failed_attempts"] {
        let (per_second, burst) = if limit == which {
            (0.001, burst)
        } else {
            (1000.0, 1000)
        };
        config.push_str(&format!(
            "  {limit}: {{per_second: {per_second}, burst_count: {burst}}}\n"
        ));
    }
    config
}

/// Synapse's 429: `M_LIMIT_EXCEEDED`, "Too Many Requests", and the wait in `retry_after_ms`.
fn assert_limited(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED");
    assert_eq!(body["error"], "Too Many Requests");
    let wait = body["retry_after_ms"].as_u64().unwrap();
    // One action drains in 1000 s.
    assert!(wait > 900_000 && wait <= 1_000_000, "retry_after_ms {wait}");
}

async fn wrong_passwords_lock_the_account_named_out_for_a_while(db: TestDb) {
    let server = Server::start(db, &rc_login("failed_attempts", 2)).await;
    server.create_user("amy", "amy-pw").await;
    server.create_user("bo", "bo-pw").await;
    for _ in 0..2 {
        assert_eq!(server.login("amy", "guess").await.0, StatusCode::FORBIDDEN);
    }
    // Now even the right password is refused, whatever spelling names the account.
    for name in ["amy", "@AMY:example.com"] {
        let (status, body) = server.login(name, "amy-pw").await;
        assert_limited(status, &body);
    }
    // The Retry-After header says the same wait in whole seconds.
    let response = server
        .http
        .post(server.url("/_matrix/client/v3/login"))
        .body(json!({"type": "m.login.password", "user": "amy", "password": "amy-pw"}).to_string())
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (900..=1000).contains(&retry_after),
        "Retry-After {retry_after}"
    );

    // Other accounts are not affected; successful logins never count.
    for _ in 0..3 {
        assert_eq!(server.login("bo", "bo-pw").await.0, StatusCode::OK);
    }

    // Wrong passwords in user-interactive auth count too (Synapse never counts them).
    let token = server.token_for("bo", "bo-pw").await;
    let path = "/_matrix/client/v3/account/password";
    for _ in 0..2 {
        let (status, body) = server
            .call(
                "POST",
                path,
                Some(&token),
                Some(json!({"new_password": "x", "auth": password_auth("bo", "guess", None)})),
            )
            .await;
        assert_eq!(
            (status, &body["errcode"]),
            (StatusCode::UNAUTHORIZED, &json!("M_FORBIDDEN"))
        );
    }
    let (status, body) = server
        .call(
            "POST",
            path,
            Some(&token),
            Some(json!({"new_password": "x", "auth": password_auth("bo", "bo-pw", None)})),
        )
        .await;
    assert_limited(status, &body);
    let user = server
        .store()
        .get_user("@bo:example.com")
        .await
        .unwrap()
        .unwrap();
    let settings = homekey::password::HashSettings::new(
        homekey::config::HashScheme::Bcrypt,
        5,
        secrecy::SecretString::from(PEPPER),
    );
    assert!(settings.verify(
        &secrecy::SecretString::from("bo-pw"),
        user.password_hash.as_ref()
    ));
}

async fn every_login_attempt_counts_against_its_address(db: TestDb) {
    let server = Server::start(db, &rc_login("address", 3)).await;
    server.create_user("cy", "cy-pw").await;
    server.create_user("di", "di-pw").await;
    assert_eq!(server.login("cy", "cy-pw").await.0, StatusCode::OK);
    assert_eq!(server.login("cy", "wrong").await.0, StatusCode::FORBIDDEN);
    assert_eq!(server.login("nobody", "x").await.0, StatusCode::FORBIDDEN);
    // The fourth attempt from 127.0.0.1, for any account, right password or not.
    let (status, body) = server.login("di", "di-pw").await;
    assert_limited(status, &body);
    assert!(server.device_ids("@di:example.com").await.is_empty());
}

async fn successful_logins_count_against_their_account(db: TestDb) {
    let server = Server::start(db, &rc_login("account", 2)).await;
    server.create_user("ed", "ed-pw").await;
    server.create_user("flo", "flo-pw").await;
    assert_eq!(server.login("ed", "ed-pw").await.0, StatusCode::OK);
    assert_eq!(
        server.login("@Ed:example.com", "ed-pw").await.0,
        StatusCode::OK
    );
    // Wrong passwords are the failed-attempts limit's business, not this one's.
    assert_eq!(server.login("ed", "wrong").await.0, StatusCode::FORBIDDEN);
    let (status, body) = server.login("ed", "ed-pw").await;
    assert_limited(status, &body);
    assert_eq!(server.device_ids("@ed:example.com").await.len(), 2);
    assert_eq!(server.login("flo", "flo-pw").await.0, StatusCode::OK);
}
