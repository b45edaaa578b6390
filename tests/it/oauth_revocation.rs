//! `POST /oauth2/revoke` (RFC 7009) for homekey's own tokens, beside a Synapse (that is not
//! there: the revocation owes it the device's deletion, delivered later), on SQLite and
//! PostgreSQL. The tokens come from a standalone server on the same database (a login beside
//! an absent Synapse cannot make its device there).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    revoking_either_token_ends_the_session_and_every_answer_is_200,
    a_revocation_without_a_token_is_an_oauth_error,
);

const REVOKE: &str = "/oauth2/revoke";

fn beside_synapse() -> String {
    "public_baseurl: https://matrix.example.com/\n\
     synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: oauth-revocation-secret-0123456789abcdef\n"
        .into()
}

/// A refreshable login: (access token, refresh token, device).
async fn login(server: &Server) -> (String, String, String) {
    let body = crate::serve_refresh::login_refreshable(server, "alice", "alice-pw").await;
    let text = |key: &str| body[key].as_str().unwrap().to_owned();
    (
        text("access_token"),
        text("refresh_token"),
        text("device_id"),
    )
}

async fn revoke(server: &Server, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = server
        .http
        .post(server.url(REVOKE))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
    )
}

async fn refreshes(server: &Server, refresh_token: &str) -> bool {
    let (status, _) = server
        .call(
            "POST",
            "/_matrix/client/v3/refresh",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await;
    status == StatusCode::OK
}

async fn revoking_either_token_ends_the_session_and_every_answer_is_200(db: TestDb) {
    let logins = Server::start(db.share().await, "").await;
    let server = Server::start(db, &beside_synapse()).await;
    logins.create_user("alice", "alice-pw").await;
    let (access, refresh, device) = login(&logins).await;
    let (kept_access, _, kept_device) = login(&logins).await;

    // The access token, as a client revokes it on logout: its device and refresh token go.
    let (status, body) = revoke(&server, &[("token", &access), ("client_id", "C1")]).await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({})));
    assert_eq!(
        logins.whoami(Some(&access)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(!refreshes(&logins, &refresh).await);
    let devices = logins.device_ids("@alice:example.com").await;
    assert!(!devices.contains(&device), "{devices:?}");
    assert_eq!(logins.whoami(Some(&kept_access)).await.0, StatusCode::OK);

    // The refresh token, reported by someone else (a leaked-token scanner): the session's
    // access token goes too.
    let (access, refresh, device) = login(&logins).await;
    let form = [
        ("token", refresh.as_str()),
        ("token_type_hint", "refresh_token"),
        ("client_id", "someone-else"),
    ];
    assert_eq!(revoke(&server, &form).await.0, StatusCode::OK);
    assert_eq!(
        logins.whoami(Some(&access)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let devices = logins.device_ids("@alice:example.com").await;
    assert!(!devices.contains(&device), "{devices:?}");

    // A wrong hint is only a hint.
    let (access, _, _) = login(&logins).await;
    let form = [
        ("token", access.as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    assert_eq!(revoke(&server, &form).await.0, StatusCode::OK);
    assert_eq!(
        logins.whoami(Some(&access)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Twice, or a token that never was: 200 all the same, and nothing else ends.
    for token in [access.as_str(), "syt_not_a_token", refresh.as_str()] {
        assert_eq!(
            revoke(&server, &[("token", token)]).await.0,
            StatusCode::OK,
            "{token}"
        );
    }
    assert_eq!(logins.whoami(Some(&kept_access)).await.0, StatusCode::OK);
    assert_eq!(
        logins.device_ids("@alice:example.com").await,
        vec![kept_device]
    );
    // No token reaches the log.
    let log = server.log();
    for token in [&access, &refresh, &kept_access] {
        assert!(!log.contains(token.as_str()), "a token in the log");
    }
}

async fn a_revocation_without_a_token_is_an_oauth_error(db: TestDb) {
    let server = Server::start(db, &beside_synapse()).await;
    for form in [vec![], vec![("token", "")], vec![("client_id", "C")]] {
        let (status, body) = revoke(&server, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("token is required")
        );
        assert!(body.get("errcode").is_none(), "OAuth-shaped: {body}");
    }
    // Standalone, homekey is no OAuth server.
    let standalone = Server::start(server.db.share().await, "").await;
    let (status, body) = standalone
        .call("POST", REVOKE, None, Some(json!({"token": "x"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// Beside the real Synapse: a token revoked at homekey is refused by Synapse on its next
/// request (Synapse's device is deleted before the revocation answers, which ends Synapse's
/// cache of the token), and the session's other token with it.
#[tokio::test]
async fn beside_the_real_synapse_a_revoked_token_is_refused_by_synapse_at_once() {
    let test = "beside_the_real_synapse_a_revoked_token_is_refused_by_synapse_at_once";
    let Some(venv) = crate::support::synapse_venv(test) else {
        return;
    };
    let (synapse, homekey) = crate::synapse_delegation::synapse_beside_homekey(venv).await;
    homekey.create_user("alice", "alice-pw").await;
    let (access, _, device) = login(&homekey).await;
    let (kept, _) = homekey.session_for("alice", "alice-pw").await;
    // Synapse has asked homekey about the token, and keeps the answer for 2 minutes.
    let (status, body) = synapse.whoami(&access).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["device_id"], device.as_str());

    assert_eq!(
        revoke(&homekey, &[("token", &access)]).await.0,
        StatusCode::OK
    );
    let (status, body) = synapse.whoami(&access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN_TOKEN");
    let (status, body) = synapse.whoami(&kept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
