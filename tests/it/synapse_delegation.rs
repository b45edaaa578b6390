//! The real Synapse 1.163.2 beside `homekey serve` (from `$HOMEKEY_TEST_SYNAPSE`): Synapse's
//! `matrix_authentication_service` points at homekey, and Synapse answers its clients for
//! tokens homekey made, asking homekey about each. homekey makes each new session's user and
//! device exist in Synapse (`/_synapse/mas/*`) before it hands the token out.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::Server;
use crate::support::{TestDb, synapse_venv};
use crate::synapse_interop::Synapse;

pub(crate) use crate::synapse_queue::SECRET;

/// A Synapse delegating to a `homekey serve` on SQLite that knows it, both started.
pub(crate) async fn synapse_beside_homekey(venv: std::path::PathBuf) -> (Synapse, Server) {
    let beside = crate::synapse_queue::BesideSynapse::start(venv, TestDb::sqlite().await).await;
    (beside.synapse, beside.homekey)
}

#[tokio::test]
async fn synapse_answers_for_homekeys_tokens_by_asking_homekey() {
    let test = "synapse_answers_for_homekeys_tokens_by_asking_homekey";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let started = Instant::now();
    let (synapse, homekey) = synapse_beside_homekey(venv).await;
    homekey.create_user("alice", "alice-pw").await;
    let (alice, alice_device) = homekey.session_for("alice", "alice-pw").await;
    let root = homekey.admin_token("root", "root-pw").await;

    // Synapse asks homekey, and answers for alice's token with her device.
    let (status, body) = synapse.whoami(&alice).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(
        body,
        json!({"user_id": "@alice:example.com", "device_id": alice_device, "is_guest": false})
    );
    assert!(homekey.wait_for_log("path=/oauth2/introspect status=200"));

    // The admin scope gives Synapse's Admin API to homekey's admin only.
    let user = "/_synapse/admin/v2/users/@alice:example.com";
    let (status, body) = synapse.get(user, &root).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["name"], "@alice:example.com");
    let (status, body) = synapse.get(user, &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A token homekey does not know: Synapse's 401.
    let (status, body) = synapse.whoami("syt_unknown_to_homekey").await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN")),
        "{body}"
    );

    // Synapse passes homekey's discovery document on to its clients.
    let (status, body) = synapse
        .get("/_matrix/client/v1/auth_metadata", &alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["issuer"], "https://matrix.example.com/");
    assert_eq!(
        body["account_management_uri"],
        "https://matrix.example.com/_homekey/account/"
    );
    let log = homekey.log();
    assert!(!log.contains(SECRET) && !log.contains(&alice), "{log}");
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Beside a real Synapse, a login through homekey works on Synapse at once: homekey makes
/// the user and the device exist there before it hands the token out. With Synapse away,
/// the login answers 503 with `Retry-After` and leaves no usable token; once Synapse is
/// back, logins work again.
#[tokio::test]
async fn a_login_through_homekey_works_on_synapse_at_once_and_waits_for_synapse() {
    let test = "a_login_through_homekey_works_on_synapse_at_once_and_waits_for_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let (mut synapse, homekey) = synapse_beside_homekey(venv).await;

    homekey.create_user("bob", "bob-pw").await;
    let (status, body) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password", "user": "bob", "password": "bob-pw",
                "initial_device_display_name": "Bob's phone",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", homekey.log());
    let token = body["access_token"].as_str().unwrap().to_owned();
    let device = body["device_id"].as_str().unwrap().to_owned();
    let (status, body) = synapse.whoami(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(
        body,
        json!({"user_id": "@bob:example.com", "device_id": device, "is_guest": false})
    );
    let (status, body) = synapse.get("/_matrix/client/v3/devices", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["devices"][0]["display_name"], "Bob's phone", "{body}");

    synapse.stop();
    let tokens = || async {
        homekey
            .db
            .count(
                "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1",
                "@bob:example.com",
            )
            .await
    };
    let before = tokens().await;
    let response = homekey
        .http
        .post(homekey.url("/_matrix/client/v3/login"))
        .body(json!({"type": "m.login.password", "user": "bob", "password": "bob-pw"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
    assert_eq!(tokens().await, before, "a token was left behind");
    // Nor a refresh token, which could otherwise mint access tokens for the device later.
    let (status, body) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password", "user": "bob", "password": "bob-pw",
                "refresh_token": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(tokens().await, before, "a token was left behind");
    let refresh_tokens = homekey
        .db
        .count(
            "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1",
            "@bob:example.com",
        )
        .await;
    assert_eq!(refresh_tokens, 0, "a refresh token was left behind");
    assert!(!homekey.log().contains(SECRET));

    synapse.start().await;
    let (second, _) = homekey.session_for("bob", "bob-pw").await;
    assert_eq!(synapse.whoami(&second).await.0, StatusCode::OK);
    assert_eq!(synapse.whoami(&token).await.0, StatusCode::OK);
}
