//! Beside Synapse, what Synapse asks `homekey serve` (`docs/BESIDE-SYNAPSE.md`):
//! `POST /oauth2/introspect` with the shared secret, answered as Synapse's
//! `synapse/api/auth/mas.py` reads it, and `GET /.well-known/openid-configuration` with the
//! account page it names; hostile requests to them; none of it without a `synapse:` section.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, raw_execute, server_tests};
use crate::support::TestDb;

server_tests!(
    a_users_token_is_active_with_its_localpart_and_device_and_an_admins_has_the_admin_scope,
    a_login_as_user_token_acts_for_the_user_without_a_device,
    synapse_asking_about_a_token_is_a_contact_of_its_device,
    an_expiring_token_says_the_whole_seconds_it_has_left,
    unknown_expired_locked_deactivated_and_guest_tokens_are_inactive,
    hostile_requests_get_no_server_error_and_learn_nothing,
    discovery_names_the_issuer_the_oauth_endpoints_and_the_account_page,
    without_a_synapse_section_nothing_of_it_is_served,
);

const SECRET: &str = "introspection-secret-0123456789abcdefXYZ";
const ADMIN: &str = "/_synapse/admin";
const INTROSPECT: &str = "/oauth2/introspect";
const ADMIN_SCOPE: &str = "urn:matrix:client:api:* urn:synapse:admin:*";

fn synapse_section() -> String {
    format!(
        "public_baseurl: https://matrix.example.com\n\
         admin_contact: mailto:ops@example.com\n\
         synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: {SECRET}\n"
    )
}

/// homekey beside a Synapse that is not there (nothing listens at its endpoint), and the
/// same database served standalone, where the tests log in: beside Synapse a login waits
/// for Synapse to take the new device, which these tests of the introspection do not need.
async fn beside_synapse(db: TestDb) -> (Server, Server) {
    let logins = Server::start(db.share().await, "").await;
    (Server::start(db, &synapse_section()).await, logins)
}

/// Synapse's request: the form, its headers, the secret.
async fn introspect_raw(server: &Server, body: &str) -> (StatusCode, String) {
    let response = server
        .http
        .post(server.url(INTROSPECT))
        .bearer_auth(SECRET)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .header("X-MAS-Supports-Device-Id", "1")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The answer about `token`, as Synapse sends it (urlencoded), which must be a 200.
async fn introspect(server: &Server, token: &str) -> Value {
    let body = serde_urlencoded::to_string([("token", token), ("token_type_hint", "access_token")])
        .unwrap();
    let (status, text) = introspect_raw(server, &body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn a_users_token_is_active_with_its_localpart_and_device_and_an_admins_has_the_admin_scope(
    db: TestDb,
) {
    let (server, logins) = beside_synapse(db).await;
    server.create_user("alice", "alice-pw").await;
    let (token, device) = logins.session_for("alice", "alice-pw").await;
    assert_eq!(
        introspect(&server, &token).await,
        json!({"active": true, "scope": "urn:matrix:client:api:*", "username": "alice", "device_id": device})
    );

    let admin = logins.admin_token("root", "root-pw").await;
    let answer = introspect(&server, &admin).await;
    assert_eq!(answer["scope"], ADMIN_SCOPE, "{answer}");
    assert_eq!(answer["username"], "root");
    assert!(answer["device_id"].is_string(), "{answer}");
    assert!(answer.get("expires_in").is_none(), "{answer}");

    // The admin flag is read at each question: an admin no longer is one at once.
    let (status, body) = server
        .call(
            "PUT",
            &format!("{ADMIN}/v1/users/@alice:example.com/admin"),
            Some(&admin),
            Some(json!({"admin": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(introspect(&server, &token).await["scope"], ADMIN_SCOPE);
    // Neither the secret nor a token reaches the log.
    let log = server.log();
    assert!(log.contains("path=/oauth2/introspect status=200"), "{log}");
    for secret in [SECRET, &token, &admin] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
}

/// Synapse asks about a token when the device's client makes a request (and keeps the
/// answer two minutes): that is the device's last contact, as the account page and the Admin
/// API show it. Only the time: the request to homekey is Synapse's, so the address and the
/// client are still those homekey last saw.
async fn synapse_asking_about_a_token_is_a_contact_of_its_device(db: TestDb) {
    let (server, logins) = beside_synapse(db).await;
    server.create_user("alice", "alice-pw").await;
    let (token, device) = logins.session_for("alice", "alice-pw").await;
    raw_execute(
        &server.db.config,
        "UPDATE devices SET last_seen = last_seen - 3600000, user_agent = 'Element/1.11' \
         WHERE device_id = $1",
        &[&device],
    )
    .await;
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(introspect(&server, &token).await["active"], true);
    let seen = format!(
        "SELECT COUNT(*) FROM devices WHERE device_id = $1 AND last_seen >= {asked} \
         AND ip = '127.0.0.1' AND user_agent = 'Element/1.11'"
    );
    let waited = std::time::Instant::now();
    while server.db.count(&seen, &device).await != 1 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(15),
            "Synapse's question was not recorded as the device's contact"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn a_login_as_user_token_acts_for_the_user_without_a_device(db: TestDb) {
    let (server, logins) = beside_synapse(db).await;
    let admin = logins.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let (status, body) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/users/@alice:example.com/login"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let puppet = body["access_token"].as_str().unwrap();
    // Alice's, with alice's rights (not the admin's), and no device.
    assert_eq!(
        introspect(&server, puppet).await,
        json!({"active": true, "scope": "urn:matrix:client:api:*", "username": "alice"})
    );
}

async fn an_expiring_token_says_the_whole_seconds_it_has_left(db: TestDb) {
    let (server, logins) = beside_synapse(db).await;
    let admin = logins.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (status, body) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/users/@alice:example.com/login"),
            Some(&admin),
            Some(json!({"valid_until_ms": now_ms + 3_600_500})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let body = serde_urlencoded::to_string([("token", token)]).unwrap();
    let (status, text) = introspect_raw(&server, &body).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    // An integer (Synapse's strict int: a float breaks it), rounded down.
    let seconds = answer["expires_in"]
        .as_u64()
        .unwrap_or_else(|| panic!("{text}"));
    assert!((3590..=3600).contains(&seconds), "{text}");
    assert!(!text.contains("expires_in\":3600."), "{text}");
}

async fn unknown_expired_locked_deactivated_and_guest_tokens_are_inactive(db: TestDb) {
    let (server, logins) = beside_synapse(db).await;
    let admin = logins.admin_token("root", "root-pw").await;
    let inactive = json!({"active": false});

    assert_eq!(introspect(&server, "syt_no_such_token").await, inactive);

    let mut tokens = Vec::new();
    for user in ["expired", "locked", "deactivated", "guest"] {
        server.create_user(user, "user-pw").await;
        let token = logins.token_for(user, "user-pw").await;
        // Each works before its change: the change alone makes it inactive.
        assert_eq!(introspect(&server, &token).await["active"], true, "{user}");
        tokens.push(token);
    }
    let config = &server.db.config;
    raw_execute(
        config,
        "UPDATE access_tokens SET valid_until_ms = 1000 WHERE user_id = '@expired:example.com'",
        &[],
    )
    .await;
    let (status, body) = server
        .call(
            "PUT",
            &format!("{ADMIN}/v2/users/@locked:example.com"),
            Some(&admin),
            Some(json!({"locked": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // As an operator's SQL would: the tokens stay, the account can't use them.
    raw_execute(
        config,
        "UPDATE users SET deactivated = 1 WHERE name = '@deactivated:example.com'",
        &[],
    )
    .await;
    raw_execute(
        config,
        "UPDATE users SET is_guest = 1 WHERE name = '@guest:example.com'",
        &[],
    )
    .await;
    for (user, token) in ["expired", "locked", "deactivated", "guest"]
        .iter()
        .zip(&tokens)
    {
        assert_eq!(introspect(&server, token).await, inactive, "{user}");
    }
    // A guest's token still works on homekey's own client API: only Synapse is told no.
    assert_eq!(server.whoami(Some(&tokens[3])).await.0, StatusCode::OK);

    // Logged out: inactive at once.
    let (token, _) = logins.session_for("root", "root-pw").await;
    assert_eq!(introspect(&server, &token).await["active"], true);
    let (status, _) = server
        .call("POST", "/_matrix/client/v3/logout", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspect(&server, &token).await, inactive);
}

/// Sends `head` and `body_len` bytes of body over a raw connection, reading the answer as it
/// comes: the server may answer (and close) before the body is all sent.
async fn raw_exchange(server: &Server, head: String, body_len: usize) -> String {
    let address = server.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let read = std::thread::spawn(move || {
            let mut answer = Vec::new();
            let _ = reader.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        });
        let _ = stream.write_all(head.as_bytes());
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < body_len {
            let n = chunk.len().min(body_len - sent);
            if stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
        read.join().unwrap()
    })
    .await
    .unwrap()
}

async fn hostile_requests_get_no_server_error_and_learn_nothing(db: TestDb) {
    let (server, logins) = beside_synapse(db).await;
    server.create_user("alice", "alice-pw").await;
    let token = logins.token_for("alice", "alice-pw").await;
    let form = format!("token={token}&token_type_hint=access_token");
    let url = server.url(INTROSPECT);

    // No secret, a wrong one, a user's token, the secret in another shape: 401, empty.
    let wrong_ones: Vec<Option<String>> = vec![
        None,
        Some("Bearer wrong-secret".into()),
        Some(format!("Bearer {token}")),
        Some(format!("Bearer {}", &SECRET[..SECRET.len() - 1])),
        Some(format!("Bearer {SECRET}x")),
        Some(format!("Basic {SECRET}")),
        Some(SECRET.into()),
        Some("Bearer ".into()),
    ];
    for authorization in wrong_ones {
        let mut request = server
            .http
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.clone());
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(response.text().await.unwrap(), "", "{authorization:?}");
    }

    // Bodies that are not Synapse's form: 400 with the bare RFC 6749 error.
    let invalid = r#"{"error":"invalid_request"}"#;
    for (content_type, body) in [
        ("application/json", json!({"token": token}).to_string()),
        ("text/plain", form.clone()),
        ("application/x-www-form-urlencoded", String::new()),
        (
            "application/x-www-form-urlencoded",
            "token_type_hint=access_token".into(),
        ),
        (
            "application/x-www-form-urlencoded",
            format!("token={token}&token=other"),
        ),
        (
            "application/x-www-form-urlencoded",
            json!({"token": token}).to_string(),
        ),
    ] {
        let response = server
            .http
            .post(&url)
            .bearer_auth(SECRET)
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{content_type} {body}"
        );
        assert_eq!(response.text().await.unwrap(), invalid, "{body}");
    }

    // Tokens of any other shape: inactive, never a 5xx.
    let inactive = json!({"active": false});
    let long = "a".repeat(60 * 1024);
    for other in [
        "",
        " ",
        "\0",
        &format!("{token}\0"),
        &format!(" {token}"),
        &format!("{token} "),
        &token.to_uppercase(),
        "mct_abcdefghijklmnopqrstuvwxyz0123_0A1b2C",
        "syr_refresh_token_shape",
        "é\u{202e}\u{feff}🙂",
        "'; DROP TABLE access_tokens; --",
        "%",
        &long,
        SECRET,
    ] {
        assert_eq!(introspect(&server, other).await, inactive, "{other:.40}");
    }
    // Bytes that are not UTF-8, percent-encoded.
    let (status, text) = introspect_raw(&server, "token=%FF%FE%00&token_type_hint=x").await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, r#"{"active":false}"#)
    );

    // 10 MB: refused at the body limit, after the secret is checked.
    let ten_mb = 10 * 1024 * 1024;
    let head = |authorization: &str| {
        format!(
            "POST {INTROSPECT} HTTP/1.1\r\nHost: x\r\n{authorization}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\ntoken=",
            ten_mb + 6
        )
    };
    let answer = raw_exchange(
        &server,
        head(&format!("Authorization: Bearer {SECRET}\r\n")),
        ten_mb,
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 413") || answer.is_empty(),
        "{answer:.300}"
    );
    let answer = raw_exchange(&server, head(""), ten_mb).await;
    assert!(
        answer.starts_with("HTTP/1.1 401") || answer.is_empty(),
        "{answer:.300}"
    );
    // Chunked, no length: cut off at the limit all the same.
    let chunked = format!(
        "POST {INTROSPECT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\ntoken={}\r\n",
        6 + 200 * 1024,
        "a".repeat(200 * 1024)
    );
    let answer = raw_exchange(&server, chunked, 0).await;
    assert!(
        answer.starts_with("HTTP/1.1 413") || answer.is_empty(),
        "{answer:.300}"
    );

    // The wrong method, and the server still answers.
    let response = server
        .http
        .get(&url)
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(introspect(&server, &token).await["active"], true);
    let log = server.log();
    assert!(!log.contains(SECRET) && !log.contains(&token), "{log}");
    assert!(!log.contains("status=5"), "{log}");
}

async fn discovery_names_the_issuer_the_oauth_endpoints_and_the_account_page(db: TestDb) {
    let (server, _logins) = beside_synapse(db).await;
    // No secret: Synapse fetches it as any client would.
    let response = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Exactly these: every value an OAuth client requires (RFC 8414; matrix-rust-sdk refuses
    // a document without any of them), and no `prompt_values_supported` (no sign-up).
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({
            "issuer": "https://matrix.example.com/",
            "authorization_endpoint": "https://matrix.example.com/_homekey/oauth2/authorize",
            "token_endpoint": "https://matrix.example.com/oauth2/token",
            "registration_endpoint": "https://matrix.example.com/oauth2/registration",
            "revocation_endpoint": "https://matrix.example.com/oauth2/revoke",
            "device_authorization_endpoint": "https://matrix.example.com/oauth2/device",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": [
                "urn:matrix:client:api:*",
                "urn:matrix:client:device:*",
                "urn:matrix:org.matrix.msc2967.client:api:*",
                "urn:matrix:org.matrix.msc2967.client:device:*",
                "urn:synapse:admin:*",
            ],
            "account_management_uri": "https://matrix.example.com/_homekey/account/",
            "account_management_actions_supported": [
                "org.matrix.profile",
                "org.matrix.devices_list",
                "org.matrix.device_view",
                "org.matrix.device_delete",
                "org.matrix.sessions_list",
                "org.matrix.session_view",
                "org.matrix.session_end",
                "org.matrix.account_deactivate",
                "org.matrix.cross_signing_reset",
            ],
        })
    );

    let response = server
        .http
        .get(server.url("/_homekey/account/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The page itself: tests/it/account_page.rs.
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("example.com"), "{page}");
    assert!(page.contains("mailto:ops@example.com"), "{page}");
}

async fn without_a_synapse_section_nothing_of_it_is_served(db: TestDb) {
    let server = Server::start(db, "public_baseurl: https://matrix.example.com/\n").await;
    let response = server
        .http
        .post(server.url(INTROSPECT))
        .bearer_auth(SECRET)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["errcode"],
        "M_UNRECOGNIZED"
    );
    for path in ["/.well-known/openid-configuration", "/_homekey/account/"] {
        let (status, body) = server.call("GET", path, None, None).await;
        assert_eq!(
            (status, &body["errcode"]),
            (StatusCode::NOT_FOUND, &json!("M_UNRECOGNIZED")),
            "{path}"
        );
    }
}
