//! The real Synapse 1.163.2 beside `homekey serve` (from `$HOMEKEY_TEST_SYNAPSE`): Synapse's
//! `matrix_authentication_service` points at homekey, and Synapse answers its clients for
//! tokens homekey made, asking homekey about each. homekey does not yet create users and
//! devices in Synapse (`/_synapse/mas/*`), so the test does that with the shared secret, as
//! homekey will.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::Server;
use crate::support::{TestDb, synapse_venv};
use crate::synapse_interop::Synapse;

const SECRET: &str = "delegation-secret-0123456789abcdefghijkl";

/// A `/_synapse/mas/*` call to Synapse with the shared secret.
async fn mas_call(synapse: &Synapse, path: &str, body: Value) -> StatusCode {
    let response = synapse
        .http
        .post(synapse.url(&format!("/_synapse/mas/{path}")))
        .bearer_auth(SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    response.status()
}

/// `GET path` on Synapse with `token`.
async fn synapse_get(synapse: &Synapse, path: &str, token: &str) -> (StatusCode, Value) {
    let response = synapse
        .http
        .get(synapse.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn synapse_answers_for_homekeys_tokens_by_asking_homekey() {
    let test = "synapse_answers_for_homekeys_tokens_by_asking_homekey";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let started = Instant::now();
    // homekey first: Synapse's config names where it listens. (homekey's synapse.endpoint
    // is not called yet.)
    let homekey = Server::start(
        TestDb::sqlite().await,
        &format!(
            "public_baseurl: https://matrix.example.com/\n\
             synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: {SECRET}\n"
        ),
    )
    .await;
    let mut synapse = Synapse::prepare_with_auth(
        venv,
        &format!(
            "public_baseurl: https://matrix.example.com/\n\
             password_config:\n  enabled: false\n\
             matrix_authentication_service:\n  enabled: true\n  \
             endpoint: {}/\n  secret: {SECRET}\n",
            homekey.base
        ),
    );
    synapse.start().await;

    homekey.create_user("alice", "alice-pw").await;
    let (alice, alice_device) = homekey.session_for("alice", "alice-pw").await;
    let root = homekey.admin_token("root", "root-pw").await;
    let root_device = homekey.device_ids("@root:example.com").await.remove(0);

    // Not in Synapse's database yet: Synapse answers 500 ("User not found") for a token
    // homekey vouches for. This is what provisioning (a later part) is for.
    let (status, body) = synapse_get(&synapse, "/_matrix/client/v3/account/whoami", &alice).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");

    for (localpart, device) in [("alice", &alice_device), ("root", &root_device)] {
        let status = mas_call(&synapse, "provision_user", json!({"localpart": localpart})).await;
        assert!(status.is_success(), "{status}: {}", synapse.log_tail());
        let status = mas_call(
            &synapse,
            "upsert_device",
            json!({"localpart": localpart, "device_id": device}),
        )
        .await;
        assert!(status.is_success(), "{status}: {}", synapse.log_tail());
    }

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
    let (status, body) = synapse_get(&synapse, user, &root).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["name"], "@alice:example.com");
    let (status, body) = synapse_get(&synapse, user, &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A token homekey does not know: Synapse's 401.
    let (status, body) = synapse.whoami("syt_unknown_to_homekey").await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN")),
        "{body}"
    );

    // Synapse passes homekey's discovery document on to its clients.
    let (status, body) = synapse_get(&synapse, "/_matrix/client/v1/auth_metadata", &alice).await;
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
