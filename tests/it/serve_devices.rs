//! A user's devices and display name, against a running server on SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{Server, password_auth, raw_execute, server_tests};
use crate::support::TestDb;

server_tests!(
    devices_are_listed_and_renamed_by_their_owner,
    deleting_devices_needs_the_password_and_ends_their_sessions,
    display_names_are_read_by_anyone_and_set_by_their_owner,
    a_device_in_use_is_seen_again_at_most_every_two_minutes,
);

const DEVICES: &str = "/_matrix/client/v3/devices";

async fn devices_are_listed_and_renamed_by_their_owner(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("ann", "ann-pw").await;
    server.create_user("ben", "ben-pw").await;
    let (status, login) = server
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(
                json!({"type": "m.login.password", "user": "ann", "password": "ann-pw",
                        "device_id": "PHONE", "initial_device_display_name": "Ann's phone"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (_, laptop) = server.session_for("ann", "ann-pw").await;
    let (ben_token, ben_device) = server.session_for("ben", "ben-pw").await;

    let (status, body) = server.call("GET", DEVICES, Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    let devices = body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "only ann's own devices: {body}");
    let phone = devices.iter().find(|d| d["device_id"] == "PHONE").unwrap();
    assert_eq!(phone["user_id"], "@ann:example.com");
    assert_eq!(phone["display_name"], "Ann's phone");
    // Synapse's shape: every key present; the last contact is the login's.
    assert!(
        phone["last_seen_ts"].is_i64() && phone["last_seen_ip"] == "127.0.0.1",
        "{phone}"
    );
    let laptop_entry = devices
        .iter()
        .find(|d| d["device_id"] == json!(laptop))
        .unwrap();
    assert!(
        laptop_entry
            .as_object()
            .unwrap()
            .contains_key("display_name")
    );
    assert!(laptop_entry["display_name"].is_null());

    let (status, body) = server
        .call("GET", &format!("{DEVICES}/PHONE"), Some(token), None)
        .await;
    assert_eq!(
        (status, &body["display_name"]),
        (StatusCode::OK, &json!("Ann's phone"))
    );
    // Another user's device, or none at all: 404, the same for both.
    for device in [ben_device.as_str(), "NOSUCHDEVICE"] {
        let (status, body) = server
            .call("GET", &format!("{DEVICES}/{device}"), Some(token), None)
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::NOT_FOUND,
                json!({"errcode": "M_NOT_FOUND", "error": "Not found"})
            )
        );
        let (status, _) = server
            .call(
                "PUT",
                &format!("{DEVICES}/{device}"),
                Some(token),
                Some(json!({"display_name": "mine"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    let (status, body) = server
        .call(
            "PUT",
            &format!("{DEVICES}/PHONE"),
            Some(token),
            Some(json!({"display_name": "Old phone"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = server
        .call(
            "PUT",
            &format!("{DEVICES}/PHONE"),
            Some(token),
            Some(json!({"display_name": "x".repeat(101)})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_TOO_LARGE"))
    );
    let (status, body) = server
        .call(
            "PUT",
            &format!("{DEVICES}/PHONE"),
            Some(token),
            Some(json!({"display_name": 7})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_BAD_JSON"))
    );
    // No display name: nothing to change, as in Synapse.
    let (status, _) = server
        .call(
            "PUT",
            &format!("{DEVICES}/PHONE"),
            Some(token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server
        .call("GET", &format!("{DEVICES}/PHONE"), Some(token), None)
        .await;
    assert_eq!(body["display_name"], "Old phone");

    let ben_devices = server
        .store()
        .list_devices("@ben:example.com")
        .await
        .unwrap();
    assert_eq!(ben_devices.len(), 1);
    assert_eq!(ben_devices[0].display_name, None, "ben's device untouched");
    assert_eq!(server.whoami(Some(&ben_token)).await.0, StatusCode::OK);
    let (status, body) = server.call("GET", DEVICES, None, None).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_MISSING_TOKEN"))
    );
}

async fn deleting_devices_needs_the_password_and_ends_their_sessions(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("cat", "cat-pw").await;
    server.create_user("dan", "dan-pw").await;
    let (token, device) = server.session_for("cat", "cat-pw").await;
    let (second_token, second) = server.session_for("cat", "cat-pw").await;
    let (third_token, third) = server.session_for("cat", "cat-pw").await;
    let (dan_token, dan_device) = server.session_for("dan", "dan-pw").await;

    // DELETE without a body: 401 with a session; with the password in it: gone.
    let path = format!("{DEVICES}/{second}");
    let (status, body) = server.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["flows"], json!([{"stages": ["m.login.password"]}]));
    let session = body["session"].as_str().unwrap();
    let (status, body) = server
        .call(
            "DELETE",
            &path,
            Some(&token),
            Some(json!({"auth": password_auth("cat", "wrong", Some(session))})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_FORBIDDEN"))
    );
    assert_eq!(server.whoami(Some(&second_token)).await.0, StatusCode::OK);
    let (status, body) = server
        .call(
            "DELETE",
            &path,
            Some(&token),
            Some(json!({"auth": password_auth("cat", "cat-pw", Some(session))})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(
        server.whoami(Some(&second_token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    let mut expected = vec![device.clone(), third.clone()];
    expected.sort();
    assert_eq!(server.device_ids("@cat:example.com").await, expected);

    // POST /delete_devices: another user's device ID in the list is passed over.
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/delete_devices",
            Some(&token),
            Some(json!({"devices": [third, dan_device]})),
        )
        .await;
    let session = body["session"].as_str().unwrap().to_owned();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/delete_devices",
            Some(&token),
            Some(json!({"devices": [third, dan_device], "auth": password_auth("cat", "cat-pw", Some(&session))})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(
        server.whoami(Some(&third_token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    assert_eq!(server.device_ids("@cat:example.com").await, vec![device]);
    assert_eq!(server.whoami(Some(&dan_token)).await.0, StatusCode::OK);
    assert_eq!(
        server.device_ids("@dan:example.com").await,
        vec![dan_device]
    );

    let (status, body) = server
        .call(
            "POST",
            "/_matrix/client/v3/delete_devices",
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_MISSING_PARAM"))
    );
    let (status, body) = server
        .call(
            "DELETE",
            &format!("{DEVICES}/X"),
            Some(&token),
            Some(json!("not an object")),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_BAD_JSON"))
    );
}

async fn display_names_are_read_by_anyone_and_set_by_their_owner(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("eve", "eve-pw").await;
    server.create_user("finn", "finn-pw").await;
    let (token, _) = server.session_for("eve", "eve-pw").await;
    let profile = "/_matrix/client/v3/profile/@eve:example.com";
    let displayname = format!("{profile}/displayname");

    // No display name and no avatar: Synapse's 404.
    let not_found = json!({"errcode": "M_NOT_FOUND", "error": "Profile was not found"});
    let (status, body) = server.call("GET", profile, None, None).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, not_found.clone()));

    let (status, body) = server
        .call(
            "PUT",
            &displayname,
            Some(&token),
            Some(json!({"displayname": "  Eve Example  "})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    // Read without a token, under both prefixes.
    let (status, body) = server.call("GET", profile, None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"displayname": "Eve Example"}))
    );
    let (status, body) = server
        .call(
            "GET",
            "/_matrix/client/r0/profile/@eve:example.com/displayname",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"displayname": "Eve Example"}))
    );

    let refusals = [
        (json!({}), "M_MISSING_PARAM"),
        (json!({"displayname": null}), "M_INVALID_PARAM"),
        (json!({"displayname": 42}), "M_INVALID_PARAM"),
        (json!({"displayname": "e".repeat(257)}), "M_UNKNOWN"),
    ];
    for (body, errcode) in refusals {
        let (status, answer) = server
            .call("PUT", &displayname, Some(&token), Some(body.clone()))
            .await;
        assert_eq!(
            (status, &answer["errcode"]),
            (StatusCode::BAD_REQUEST, &json!(errcode)),
            "{body}"
        );
    }
    // Another user's name (Synapse answers 400 here), a remote user, a malformed ID.
    let (status, body) = server
        .call(
            "PUT",
            "/_matrix/client/v3/profile/@finn:example.com/displayname",
            Some(&token),
            Some(json!({"displayname": "Not Finn"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"errcode": "M_FORBIDDEN", "error": "Cannot set another user's displayname"})
        )
    );
    let (status, body) = server
        .call(
            "PUT",
            "/_matrix/client/v3/profile/@eve:other.org/displayname",
            Some(&token),
            Some(json!({"displayname": "x"})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_UNKNOWN"))
    );
    let (status, body) = server
        .call(
            "GET",
            "/_matrix/client/v3/profile/not-a-user-id",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_INVALID_PARAM"))
    );
    let (status, _) = server
        .call(
            "GET",
            "/_matrix/client/v3/profile/@nobody:example.com",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server.call("GET", profile, None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"displayname": "Eve Example"})),
        "unchanged"
    );
    let user = server
        .store()
        .get_user("@finn:example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.displayname, None);

    // An empty name clears it.
    let (status, _) = server
        .call(
            "PUT",
            &displayname,
            Some(&token),
            Some(json!({"displayname": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call("GET", profile, None, None).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, not_found));
    let (status, body) = server.call("GET", &displayname, None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"displayname": null}))
    );
}

/// As Synapse's `client_ips`: a request with a device's token is the device's last contact
/// (when, from where, with which client), written within seconds, at most once every two
/// minutes however busy the device, and before the server stops.
async fn a_device_in_use_is_seen_again_at_most_every_two_minutes(db: TestDb) {
    let shared = db.share().await;
    let mut server = Server::start(db, "").await;
    server.create_user("ann", "ann-pw").await;
    let (token, device) = server.session_for("ann", "ann-pw").await;
    server.stop();
    // The device idle for an hour since its login, and homekey restarted since.
    let idle = || async {
        raw_execute(
            &shared.config,
            "UPDATE devices SET last_seen = last_seen - 3600000, user_agent = 'old agent' \
             WHERE device_id = $1",
            &[&device],
        )
        .await
    };
    idle().await;
    let seen = |agent: &'static str, since: i64| {
        let db = &shared;
        async move {
            db.count(
                &format!(
                    "SELECT COUNT(*) FROM devices WHERE user_agent = $1 \
                     AND ip = '127.0.0.1' AND last_seen >= {since}"
                ),
                agent,
            )
            .await
                == 1
        }
    };
    let request = |server: &Server, agent: &'static str| {
        let call = server
            .http
            .get(server.url("/_matrix/client/v3/account/whoami"))
            .bearer_auth(&token)
            .header("User-Agent", agent);
        async move {
            let response = call.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };

    let mut server = Server::start(shared.share().await, "").await;
    let used = now_ms();
    request(&server, "Element/1.11").await;
    let waited = std::time::Instant::now();
    while !seen("Element/1.11", used).await {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(15),
            "the device's use was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Used again at once, from another client: within the two minutes, nothing is written.
    request(&server, "Other/2").await;
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert!(seen("Element/1.11", used).await);
    server.stop();

    // What was noted and not written yet is written as the server stops.
    idle().await;
    let mut server = Server::start(shared.share().await, "").await;
    let used = now_ms();
    request(&server, "Third/3").await;
    server.stop();
    assert!(seen("Third/3", used).await);
}
