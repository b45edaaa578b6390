//! Several `homekey serve` processes on one PostgreSQL database, each on its own port and
//! behind no proxy: what one instance changes, every instance enforces on the next request.
//! homekey keeps no token cache (every request reads the database), so there is nothing to
//! invalidate; user-interactive auth sessions and registration nonces are in the database
//! too. `rc_login` counters are per instance (README, docs/SECURITY.md).

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use homekey::shared_secret::{RegistrationFields, registration_mac};

use crate::server::{Server, password_auth};
use crate::support::TestDb;

const SHARED_SECRET: &str = "instances-shared-secret";
const PASSWORD: &str = "/_matrix/client/v3/account/password";

/// Asserts that `token` is refused by every instance.
async fn assert_rejected_everywhere(instances: &[&Server], token: &str, what: &str) {
    for (n, server) in instances.iter().enumerate() {
        let (status, body) = server.whoami(Some(token)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{what}: instance {n} still accepts the token"
        );
        assert_eq!(body["errcode"], "M_UNKNOWN_TOKEN");
    }
}

#[tokio::test]
async fn three_instances_on_one_postgres_agree_on_tokens_nonces_and_auth_sessions() {
    let test = "three_instances_on_one_postgres_agree_on_tokens_nonces_and_auth_sessions";
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    let config = format!("registration_shared_secret: {SHARED_SECRET}\n");
    let (db_b, db_c) = (db.share().await, db.share().await);
    // Dropped in reverse order: C and B stop before A removes the database.
    let a = Server::start(db, &config).await;
    let b = Server::start(db_b, &config).await;
    let c = Server::start(db_c, &config).await;
    assert!(a.base != b.base && b.base != c.base && a.base != c.base);
    let all = [&a, &b, &c];
    let admin = a.admin_token("root", "root-password").await;

    // Tokens from each instance work on every instance.
    a.create_user("uma", "first-password").await;
    let mut tokens = Vec::new();
    for server in all {
        tokens.push(server.token_for("uma", "first-password").await);
    }
    for server in all {
        for token in &tokens {
            assert_eq!(server.whoami(Some(token)).await.0, StatusCode::OK);
        }
    }

    // A reset through B: once it has answered, no instance accepts the old tokens.
    let (status, body) = b
        .call(
            "POST",
            "/_synapse/admin/v1/reset_password/@uma:example.com",
            Some(&admin),
            Some(json!({"new_password": "second-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in &tokens {
        assert_rejected_everywhere(&all, token, "after a reset through B").await;
    }
    for server in all {
        assert_eq!(
            server.login("uma", "first-password").await.0,
            StatusCode::FORBIDDEN
        );
    }

    // A deactivation through C: the same for the tokens made since.
    let fresh = [
        a.token_for("uma", "second-password").await,
        b.token_for("uma", "second-password").await,
    ];
    let (status, body) = c
        .call(
            "POST",
            "/_synapse/admin/v1/deactivate/@uma:example.com",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in &fresh {
        assert_rejected_everywhere(&all, token, "after a deactivation through C").await;
    }

    // A registration nonce from A is accepted by B, once: C then refuses it.
    let (status, body) = a
        .call("GET", "/_synapse/admin/v1/register", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let mac = registration_mac(
        &SecretString::from(SHARED_SECRET),
        RegistrationFields {
            nonce: &nonce,
            username: "vic",
            password: "vic-password",
            admin: false,
            user_type: None,
        },
    );
    let register = json!({"nonce": nonce, "username": "vic", "password": "vic-password", "admin": false, "mac": mac});
    let (status, body) = b
        .call(
            "POST",
            "/_synapse/admin/v1/register",
            None,
            Some(register.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@vic:example.com");
    let (status, body) = c
        .call("POST", "/_synapse/admin/v1/register", None, Some(register))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unrecognised nonce");

    // A user-interactive auth session started on A completes on B.
    let vic = a.token_for("vic", "vic-password").await;
    let other = c.token_for("vic", "vic-password").await;
    let (status, body) = a
        .call(
            "POST",
            PASSWORD,
            Some(&vic),
            Some(json!({"new_password": "vic-new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let session = body["session"].as_str().unwrap().to_owned();
    let (status, body) = b
        .call(
            "POST",
            PASSWORD,
            Some(&vic),
            Some(json!({
                "new_password": "vic-new-password",
                "auth": password_auth("vic", "vic-password", Some(&session)),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for server in all {
        assert_eq!(
            server.login("vic", "vic-password").await.0,
            StatusCode::FORBIDDEN
        );
    }
    c.token_for("vic", "vic-new-password").await;
    // The requesting device stays logged in; the others are out, everywhere.
    assert_eq!(c.whoami(Some(&vic)).await.0, StatusCode::OK);
    assert_rejected_everywhere(&all, &other, "after a password change through B").await;
}
