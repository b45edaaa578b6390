//! The Admin API's session endpoints (whois, login as a user, a user's devices) and
//! shared-secret registration, against a running server on SQLite and PostgreSQL.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::Sha1;

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    an_admin_logs_in_as_a_user_without_touching_their_devices,
    whois_is_for_admins_and_the_user_themselves,
    an_admin_lists_renames_and_deletes_a_users_devices,
    shared_secret_registration_takes_a_fresh_nonce_and_synapses_mac,
    shared_secret_registration_refuses_bad_requests_and_registers_nobody,
);

const ADMIN: &str = "/_synapse/admin";
const SHARED_SECRET: &str = "test-shared-secret";

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

async fn an_admin_logs_in_as_a_user_without_touching_their_devices(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let (_, device) = server.session_for("alice", "alice-pw").await;
    let path = format!("{ADMIN}/v1/users/@alice:example.com/login");

    let (status, body) = server.call("POST", &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let puppet = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = server.whoami(Some(&puppet)).await;
    assert_eq!(
        (status, &body["user_id"]),
        (StatusCode::OK, &json!("@alice:example.com"))
    );
    assert!(body.get("device_id").is_none(), "no device: {body}");
    assert_eq!(server.device_ids("@alice:example.com").await, vec![device]);

    // An expiry in the past: the token is refused as expired.
    let (_, body) = server
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"valid_until_ms": 1000})),
        )
        .await;
    let expired = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = server.whoami(Some(&expired)).await;
    assert_eq!(
        (status, &body["soft_logout"]),
        (StatusCode::UNAUTHORIZED, &json!(true))
    );

    for (path, body, status, code) in [
        (
            path.clone(),
            json!({"valid_until_ms": "soon"}),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
        (
            path.clone(),
            json!({"valid_until_ms": 1.5}),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
        (
            format!("{ADMIN}/v1/users/@root:example.com/login"),
            json!({}),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
        (
            format!("{ADMIN}/v1/users/@alice:other.org/login"),
            json!({}),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
        (
            format!("{ADMIN}/v1/users/@ghost:example.com/login"),
            json!({}),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        ),
    ] {
        let (got, answer) = server
            .call("POST", &path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!((got, errcode(&answer)), (status, code), "{path} {body}");
    }
    let (status, _) = server.call("POST", &path, Some(&puppet), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "alice is no admin, whoever holds her token"
    );

    // As in Synapse the token is the admin's: the admin's /logout/all ends it.
    let (status, _) = server
        .call("POST", "/_matrix/client/v3/logout/all", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.whoami(Some(&puppet)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
}

async fn whois_is_for_admins_and_the_user_themselves(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("bob", "bob-pw").await;
    server.create_user("carl", "carl-pw").await;
    let bob = server.token_for("bob", "bob-pw").await;
    let carl = server.token_for("carl", "carl-pw").await;
    let path = format!("{ADMIN}/v1/whois/@bob:example.com");

    for token in [&admin, &bob] {
        let (status, body) = server.call("GET", &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"], "@bob:example.com");
        let connections = body["devices"][""]["sessions"][0]["connections"]
            .as_array()
            .unwrap();
        assert_eq!(connections.len(), 1, "bob's one device: {body}");
        assert!(connections[0]["last_seen"].is_i64());
    }
    let (status, body) = server.call("GET", &path, Some(&carl), None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = server
        .call(
            "GET",
            &format!("{ADMIN}/v1/whois/@bob:other.org"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN")
    );
}

async fn an_admin_lists_renames_and_deletes_a_users_devices(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("dana", "dana-pw").await;
    let (phone_token, phone) = server.session_for("dana", "dana-pw").await;
    let (laptop_token, laptop) = server.session_for("dana", "dana-pw").await;
    let (tablet_token, tablet) = server.session_for("dana", "dana-pw").await;
    let devices = format!("{ADMIN}/v2/users/@dana:example.com/devices");

    let (status, body) = server.call("GET", &devices, Some(&admin), None).await;
    assert_eq!((status, &body["total"]), (StatusCode::OK, &json!(3)));
    let first = &body["devices"][0];
    for key in [
        "user_id",
        "device_id",
        "display_name",
        "last_seen_ip",
        "last_seen_user_agent",
        "last_seen_ts",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }

    let phone_path = format!("{devices}/{phone}");
    let (status, _) = server
        .call(
            "PUT",
            &phone_path,
            Some(&admin),
            Some(json!({"display_name": "Dana's phone"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call("GET", &phone_path, Some(&admin), None).await;
    assert_eq!(
        (status, &body["display_name"]),
        (StatusCode::OK, &json!("Dana's phone"))
    );
    let (status, body) = server
        .call(
            "PUT",
            &phone_path,
            Some(&admin),
            Some(json!({"display_name": "x".repeat(101)})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_TOO_LARGE")
    );
    let (status, body) = server
        .call("GET", &format!("{devices}/NOSUCH"), Some(&admin), None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"errcode": "M_NOT_FOUND", "error": "Not found"})
        )
    );

    let (status, body) = server.call("DELETE", &phone_path, Some(&admin), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(
        server.whoami(Some(&phone_token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    let (status, _) = server
        .call(
            "POST",
            &format!("{ADMIN}/v2/users/@dana:example.com/delete_devices"),
            Some(&admin),
            Some(json!({"devices": [laptop, "NOSUCH"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.whoami(Some(&laptop_token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    assert_eq!(server.whoami(Some(&tablet_token)).await.0, StatusCode::OK);
    assert_eq!(server.device_ids("@dana:example.com").await, vec![tablet]);

    for (path, status, code) in [
        (
            format!("{ADMIN}/v2/users/@ghost:example.com/devices"),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        ),
        (
            format!("{ADMIN}/v2/users/@dana:other.org/devices"),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
    ] {
        let (got, answer) = server.call("GET", &path, Some(&admin), None).await;
        assert_eq!((got, errcode(&answer)), (status, code), "{path}");
    }
    let records = server
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.action == "delete_devices" && r.actor == "@root:example.com")
    );
}

/// The `mac` of a shared-secret registration, computed as Synapse's script does.
fn registration_mac(nonce: &str, user: &str, password: &str, admin: bool) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(SHARED_SECRET.as_bytes()).unwrap();
    mac.update(format!("{nonce}\0{user}\0{password}\0").as_bytes());
    mac.update(if admin {
        b"admin" as &[u8]
    } else {
        b"notadmin"
    });
    hex::encode(mac.finalize().into_bytes())
}

async fn nonce(server: &Server) -> String {
    let (status, body) = server
        .call("GET", &format!("{ADMIN}/v1/register"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(nonce.len(), 128, "64 random bytes in hex");
    nonce
}

async fn shared_secret_registration_takes_a_fresh_nonce_and_synapses_mac(db: TestDb) {
    let server = Server::start(
        db,
        &format!("registration_shared_secret: {SHARED_SECRET}\n"),
    )
    .await;
    let nonce = nonce(&server).await;
    let body = json!({
        "nonce": nonce, "username": "Erik", "password": "erik-pw", "admin": true,
        "mac": registration_mac(&nonce, "Erik", "erik-pw", true), "displayname": "Erik E.",
    });
    let (status, answer) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/register"),
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The MAC covers the name as sent; the account is lowercased, as Synapse does.
    assert_eq!(answer["user_id"], "@erik:example.com");
    assert_eq!(answer["home_server"], "example.com");
    let token = answer["access_token"].as_str().unwrap();
    let (status, me) = server.whoami(Some(token)).await;
    assert_eq!(
        (status, &me["device_id"]),
        (StatusCode::OK, &answer["device_id"])
    );
    let user = server
        .store()
        .get_user("@erik:example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.admin);
    assert_eq!(user.displayname.as_deref(), Some("Erik E."));
    assert!(server.has_password("@erik:example.com", "erik-pw").await);

    // The same nonce again: refused, even with a right mac.
    let (status, answer) = server
        .call("POST", &format!("{ADMIN}/v1/register"), None, Some(body))
        .await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::BAD_REQUEST,
            json!({"errcode": "M_UNKNOWN", "error": "unrecognised nonce"})
        )
    );
    // A nonce older than 60 seconds is stale.
    let stale = nonce_aged(&server, 61_000).await;
    let (status, answer) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/register"),
            None,
            Some(json!({"nonce": stale, "username": "fay", "password": "pw", "mac": registration_mac(&stale, "fay", "pw", false)})),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unrecognised nonce"))
    );
    assert!(
        server
            .store()
            .get_user("@fay:example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// Registers `user` with `password` on a fresh nonce, the MAC computed over `signed`'s
/// password and admin flag (which a test may make differ from what is sent).
async fn register_with_fresh_nonce(
    server: &Server,
    user: &str,
    password: &str,
    signed: (&str, bool),
) -> (StatusCode, Value) {
    let nonce = nonce(server).await;
    let (signed_password, signed_admin) = signed;
    let body = json!({
        "nonce": nonce, "username": user, "password": password,
        "mac": registration_mac(&nonce, user, signed_password, signed_admin),
    });
    server
        .call("POST", &format!("{ADMIN}/v1/register"), None, Some(body))
        .await
}

/// A fresh nonce, made to look `age_ms` old.
async fn nonce_aged(server: &Server, age_ms: i64) -> String {
    let nonce = nonce(server).await;
    let created = homekey::accounts::now_ms() - age_ms;
    crate::server::raw_execute(
        &server.db.config,
        &format!("UPDATE homekey_registration_nonces SET created_ms = {created} WHERE nonce = $1"),
        &[&nonce],
    )
    .await;
    nonce
}

async fn shared_secret_registration_refuses_bad_requests_and_registers_nobody(db: TestDb) {
    let server = Server::start(
        db,
        &format!("registration_shared_secret: {SHARED_SECRET}\n"),
    )
    .await;
    server.create_user("gina", "pw").await;
    let register = format!("{ADMIN}/v1/register");
    let cases = [
        (
            json!({"username": "x", "password": "p", "mac": "00"}),
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
        ),
        (
            json!({"nonce": "made-up", "username": "x", "password": "p", "mac": "00"}),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server
            .call("POST", &register, None, Some(body.clone()))
            .await;
        assert_eq!((got, errcode(&answer)), (status, code), "{body}");
    }
    // Each of these uses up a fresh nonce; the MAC covers what the third and fourth say.
    let (status, answer) =
        register_with_fresh_nonce(&server, "hugo", "pw", ("other-pw", false)).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::FORBIDDEN,
            json!({"errcode": "M_UNKNOWN", "error": "HMAC incorrect"})
        )
    );
    let (status, answer) = register_with_fresh_nonce(&server, "hugo", "pw", ("pw", true)).await;
    assert_eq!(
        (status, errcode(&answer)),
        (StatusCode::FORBIDDEN, "M_UNKNOWN"),
        "admin flag not covered by the mac"
    );
    let (status, answer) = register_with_fresh_nonce(&server, "gina", "pw", ("pw", false)).await;
    assert_eq!(
        (status, errcode(&answer)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
    let long = "p".repeat(513);
    let (status, answer) = register_with_fresh_nonce(&server, "hugo", &long, (&long, false)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid password"))
    );
    let (status, answer) = register_with_fresh_nonce(&server, "_hugo", "pw", ("pw", false)).await;
    assert_eq!(
        (status, errcode(&answer)),
        (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME")
    );
    assert!(
        server
            .store()
            .get_user("@hugo:example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!server.log().contains(SHARED_SECRET));

    // Without a shared secret in the config, registration is off.
    let plain = Server::start(TestDb::sqlite().await, "").await;
    let (status, answer) = register_with_fresh_nonce(&plain, "ivy", "pw", ("pw", false)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Shared secret registration is not enabled")
        )
    );
}
