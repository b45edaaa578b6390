//! Refresh tokens, as Synapse hands them out: `refresh_token: true` at login gives a
//! short-lived access token and a refresh token; `POST /refresh` trades the refresh token
//! for a new pair; the old one stays usable until the new access token is used; every way
//! a session ends takes its refresh tokens too. On SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    a_refresh_token_trades_for_a_new_pair_until_the_new_token_is_used,
    an_expired_access_token_is_soft_logged_out_and_refreshed,
    every_end_of_a_session_takes_its_refresh_tokens,
    bad_refresh_requests_get_synapses_errors,
);

const REFRESH: &str = "/_matrix/client/v3/refresh";

pub(crate) async fn login_refreshable(server: &Server, user: &str, password: &str) -> Value {
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
                "refresh_token": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(server: &Server, token: &str) -> (StatusCode, Value) {
    server
        .call("POST", REFRESH, None, Some(json!({"refresh_token": token})))
        .await
}

fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}: {body}"))
}

async fn a_refresh_token_trades_for_a_new_pair_until_the_new_token_is_used(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("rita", "rita-pw").await;
    let login = login_refreshable(&server, "rita", "rita-pw").await;
    let first_refresh = text(&login, "refresh_token").to_owned();
    assert!(first_refresh.starts_with("syr_"), "{login}");
    let expires = login["expires_in_ms"].as_i64().unwrap();
    assert!((290_000..=300_000).contains(&expires), "{login}");
    // Without asking, no refresh token and no expiry, as before.
    let (_, plain) = server.login("rita", "rita-pw").await;
    assert!(plain.get("refresh_token").is_none() && plain.get("expires_in_ms").is_none());

    let (status, second) = refresh(&server, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_access = text(&second, "access_token").to_owned();
    assert_ne!(second_access, text(&login, "access_token"));
    assert!(second["expires_in_ms"].as_i64().unwrap() > 290_000);
    // The refresh was interrupted, say: the old refresh token works once more while the new
    // access token is unused, and the pair it gives replaces the one given before.
    let (status, again) = refresh(&server, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let (status, body) = server.whoami(Some(&second_access)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replaced: {body}");
    let third_access = text(&again, "access_token").to_owned();
    let (status, body) = server.whoami(Some(&third_access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], login["device_id"]);
    // The new access token is used: the old refresh token is spent.
    let (status, body) = refresh(&server, &first_refresh).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"errcode": "M_FORBIDDEN", "error": "refresh token isn't valid anymore"})
        )
    );
    // The newest goes on, and its predecessors are gone from the database.
    let (status, fourth) = refresh(&server, text(&again, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{fourth}");
    let (status, _) = refresh(&server, &first_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rows = server
        .db
        .count(
            "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1",
            "@rita:example.com",
        )
        .await;
    assert_eq!(rows, 2, "only the last two refresh tokens are kept");
    assert_eq!(server.device_ids("@rita:example.com").await.len(), 2);
}

async fn an_expired_access_token_is_soft_logged_out_and_refreshed(db: TestDb) {
    let server = Server::start(db, "refreshable_access_token_lifetime: 1s\n").await;
    server.create_user("sol", "sol-pw").await;
    let login = login_refreshable(&server, "sol", "sol-pw").await;
    assert!(login["expires_in_ms"].as_i64().unwrap() <= 1000, "{login}");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, body) = server.whoami(Some(text(&login, "access_token"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["soft_logout"], true, "{body}");
    let (status, refreshed) = refresh(&server, text(&login, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, body) = server.whoami(Some(text(&refreshed, "access_token"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn every_end_of_a_session_takes_its_refresh_tokens(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("tess", "tess-pw").await;
    // Each end of the session: its path, whether the admin asks, and the body.
    let reset = json!({"new_password": "tess-pw"});
    let ends = [
        ("/_matrix/client/v3/logout", false, None),
        ("/_matrix/client/v3/logout/all", false, None),
        (
            "/_synapse/admin/v1/reset_password/@tess:example.com",
            true,
            Some(reset),
        ),
    ];
    for (path, by_admin, body) in ends {
        let login = login_refreshable(&server, "tess", "tess-pw").await;
        let access = text(&login, "access_token");
        let token = if by_admin { admin.as_str() } else { access };
        let (status, answer) = server.call("POST", path, Some(token), body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        let (status, answer) = refresh(&server, text(&login, "refresh_token")).await;
        assert_eq!(
            (status, &answer["errcode"]),
            (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN")),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1",
                "@tess:example.com"
            )
            .await,
        0
    );
}

async fn bad_refresh_requests_get_synapses_errors(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("una", "una-pw").await;
    let login = login_refreshable(&server, "una", "una-pw").await;
    let access = text(&login, "access_token");
    let unknown = |message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            json!({"errcode": "M_UNKNOWN_TOKEN", "error": message}),
        )
    };
    // An access token, a made-up refresh token of the right shape, garbage.
    assert_eq!(
        refresh(&server, access).await,
        unknown("invalid refresh token")
    );
    let made_up = "syr_dW5h_aaaaaaaaaaaaaaaaaaaa_000000";
    assert_eq!(
        refresh(&server, made_up).await,
        unknown("invalid refresh token")
    );
    assert_eq!(refresh(&server, "").await, unknown("invalid refresh token"));
    let (status, body) = server
        .call("POST", REFRESH, None, Some(json!({"refresh_token": 5})))
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_INVALID_PARAM"))
    );
    let (status, body) = server.call("POST", REFRESH, None, Some(json!({}))).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_MISSING_PARAM"))
    );
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password", "user": "una", "password": "una-pw",
                "refresh_token": "yes",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "`refresh_token` should be true or false.");
    // The good one still works after all that, on the legacy path too.
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/r0/refresh",
            None,
            Some(json!({"refresh_token": text(&login, "refresh_token")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // With refresh tokens switched off (Synapse's null), a login that asks gets none.
    let db = server.db.share().await;
    let without = Server::start(db, "refreshable_access_token_lifetime: null\n").await;
    let (status, body) = without
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({
                "type": "m.login.password", "user": "una", "password": "una-pw",
                "refresh_token": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none() && body.get("expires_in_ms").is_none());
}
