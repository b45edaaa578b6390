//! `POST /oauth2/registration` (the Matrix OAuth 2.0 API's client registration) over HTTP,
//! beside a Synapse (that is not there: registration never asks it), on SQLite and
//! PostgreSQL: what a client is answered, what is kept, the limits of an unauthenticated
//! write.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, raw_execute, server_tests};
use crate::support::TestDb;

server_tests!(
    element_x_registers_and_the_same_metadata_gets_the_same_client,
    a_refused_registration_names_the_field_and_the_rule_and_keeps_nothing,
    registrations_are_limited_per_address_and_unused_clients_capped_then_forgotten,
);

const REGISTRATION: &str = "/oauth2/registration";

fn beside_synapse(extra: &str) -> String {
    format!(
        "public_baseurl: https://matrix.example.com/\n\
         synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: oauth-registration-secret-0123456789abcdef\n\
         {extra}"
    )
}

/// What Element X sends (its real registration, with a grant homekey drops).
fn element_x() -> Value {
    json!({
        "application_type": "native",
        "client_uri": "https://element.io",
        "redirect_uris": ["io.element:/callback"],
        "grant_types": ["authorization_code", "refresh_token",
                        "urn:ietf:params:oauth:grant-type:device_code", "implicit"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "client_name": "Element X",
        "logo_uri": "https://element.io/mobile-icon.png",
        "tos_uri": "https://element.io/acceptable-use-policy-terms",
        "policy_uri": "https://element.io/privacy",
    })
}

/// A web client of its own host.
fn web_client(host: &str) -> Value {
    json!({
        "client_uri": format!("https://{host}/"),
        "redirect_uris": [format!("https://{host}/callback")],
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": host,
    })
}

async fn register(
    server: &Server,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = server
        .http
        .post(server.url(REGISTRATION))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, headers, body)
}

async fn clients(server: &Server) -> i64 {
    server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_oauth_clients WHERE $1 = $1",
            "",
        )
        .await
}

async fn element_x_registers_and_the_same_metadata_gets_the_same_client(db: TestDb) {
    let server = Server::start(db, &beside_synapse("")).await;
    let (status, headers, answer) = register(&server, &element_x()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(headers["cache-control"], "no-store");
    let client_id = answer["client_id"].as_str().unwrap().to_owned();
    assert!(client_id.len() >= 20, "{client_id}");
    assert_eq!(answer["application_type"], "native");
    assert_eq!(answer["redirect_uris"], json!(["io.element:/callback"]));
    assert_eq!(
        answer["grant_types"],
        json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ]),
        "the grant homekey does not offer is dropped"
    );
    assert_eq!(answer["token_endpoint_auth_method"], "none");
    assert_eq!(answer["client_name"], "Element X");

    // Element X registers again at its next sign-in: the same client.
    let (status, _, again) = register(&server, &element_x()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["client_id"], client_id.as_str());
    // Another client is another.
    let (status, _, other) = register(&server, &web_client("app.element.io")).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["client_id"], client_id.as_str());
    assert_eq!(clients(&server).await, 2);
    // One audit record per new client.
    let records = server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_audit_log WHERE action = $1",
            "register_client",
        )
        .await;
    assert_eq!(records, 2);

    // Browsers' clients (Element Web) register across origins.
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url(REGISTRATION))
        .header("Origin", "https://app.element.io")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    // Standalone (no Synapse), homekey is no OAuth server: not there.
    let standalone = Server::start(server.db.share().await, "").await;
    let (status, _, answer) = register(&standalone, &element_x()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["errcode"], "M_UNRECOGNIZED");
}

async fn a_refused_registration_names_the_field_and_the_rule_and_keeps_nothing(db: TestDb) {
    let server = Server::start(db, &beside_synapse("")).await;
    let mut element_x_elsewhere = element_x();
    element_x_elsewhere["redirect_uris"] = json!(["org.evil:/callback"]);
    let mut with_fragment = web_client("example.com");
    with_fragment["redirect_uris"] = json!(["https://example.com/cb#x"]);
    let mut secret = web_client("example.com");
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    for (body, error, needle) in [
        (
            element_x_elsewhere,
            "invalid_redirect_uri",
            "reverse DNS of client_uri's host",
        ),
        (
            with_fragment,
            "invalid_redirect_uri",
            "redirect_uris[0] must not have a fragment",
        ),
        (
            secret,
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (
            json!({"redirect_uris": ["https://example.com/cb"]}),
            "invalid_client_metadata",
            "client_uri is required",
        ),
        (
            json!("not an object"),
            "invalid_client_metadata",
            "JSON object",
        ),
    ] {
        let (status, headers, answer) = register(&server, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"], error, "{body}: {answer}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(needle), "{body}: {description}");
        assert!(
            answer.get("errcode").is_none(),
            "OAuth-shaped only: {answer}"
        );
        assert_eq!(headers["cache-control"], "no-store");
    }
    let response = server
        .http
        .post(server.url(REGISTRATION))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_client_metadata");
    // http client URIs only with the developers' switch.
    let developing = json!({
        "client_uri": "http://localhost:3000",
        "redirect_uris": ["http://localhost:3000/callback"],
    });
    let (status, _, answer) = register(&server, &developing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(clients(&server).await, 0);

    let insecure = Server::start(
        server.db.share().await,
        &beside_synapse("oauth:\n  allow_insecure_client_uris: true\n"),
    )
    .await;
    let (status, _, answer) = register(&insecure, &developing).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(clients(&server).await, 1);
}

async fn registrations_are_limited_per_address_and_unused_clients_capped_then_forgotten(
    db: TestDb,
) {
    let limited = Server::start(
        db.share().await,
        &beside_synapse("rc_client_registration: {per_second: 0.001, burst_count: 3}\n"),
    )
    .await;
    for host in ["a.example", "b.example", "c.example"] {
        let (status, _, answer) = register(&limited, &web_client(host)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    // The same metadata counts too: each registration is a write someone could repeat.
    let (status, headers, answer) = register(&limited, &web_client("a.example")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"], "invalid_request");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 100, "{retry}");
    assert_eq!(clients(&limited).await, 3);

    // At most four clients without a session (the three above and one more): the fifth is
    // refused until some are forgotten.
    let capped = Server::start(
        db,
        &beside_synapse("oauth:\n  max_unused_clients: 4\n  unused_client_lifetime: 1h\n"),
    )
    .await;
    let (status, _, answer) = register(&capped, &web_client("d.example")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, headers, answer) = register(&capped, &web_client("e.example")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"], "temporarily_unavailable");
    assert_eq!(headers["retry-after"], "60");
    // A client already kept is still answered.
    let (status, _, answer) = register(&capped, &web_client("a.example")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // Two hours later, the unused clients are forgotten at the next registration.
    raw_execute(
        &capped.db.config,
        "UPDATE homekey_oauth_clients SET last_registered_ms = last_registered_ms - 7200000 \
         WHERE client_id <> $1",
        &[answer["client_id"].as_str().unwrap()],
    )
    .await;
    let (status, _, answer) = register(&capped, &web_client("e.example")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(clients(&capped).await, 2, "a.example and e.example");
}
