//! The Admin API's user endpoints against a running server, on SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    only_admins_may_use_the_admin_api_and_the_flag_counts_at_once,
    reset_password_logs_the_user_out_everywhere_in_one_step,
    the_seeds_curl_command_resets_a_password_on_the_legacy_path,
    reset_password_refuses_bad_input_and_changes_nothing,
    users_are_created_read_and_modified_with_put,
    put_refuses_bad_input_and_changes_nothing,
    the_listings_page_and_filter_like_synapse,
    the_admin_flag_is_read_and_set_but_never_self_demoted,
    deactivation_ends_every_session_but_never_the_last_admin,
    username_available_applies_the_registration_rules,
    not_user_type_leaves_out_types_as_synapse_does,
    last_seen_ts_is_the_latest_of_the_devices,
    joined_rooms_is_empty_for_any_user_and_the_key_server_names_the_server,
);

const ADMIN: &str = "/_synapse/admin";

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

async fn only_admins_may_use_the_admin_api_and_the_flag_counts_at_once(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("mallory", "m-pw").await;
    let token = server.token_for("mallory", "m-pw").await;
    let path = format!("{ADMIN}/v2/users/@mallory:example.com");

    let (status, body) = server.call("GET", &path, None, None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
    let (status, body) = server.call("GET", &path, Some(&token), None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"errcode": "M_FORBIDDEN", "error": "You are not a server admin"})
        )
    );
    let (status, body) = server.call("GET", &path, Some("syt_nonsense"), None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );

    // The seed's way of promoting a user, by hand in SQL, takes effect on the next request.
    crate::server::raw_execute(
        &server.db.config,
        "UPDATE users SET admin = 1 WHERE name = $1",
        &["@mallory:example.com"],
    )
    .await;
    let (status, body) = server.call("GET", &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["admin"], json!(true));

    // No token needed for the version, as in Synapse.
    let (status, body) = server
        .call("GET", &format!("{ADMIN}/v1/server_version"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["server_version"]
            .as_str()
            .unwrap()
            .starts_with("homekey ")
    );
}

async fn reset_password_logs_the_user_out_everywhere_in_one_step(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "old-pw").await;
    let (alice_phone, _) = server.session_for("alice", "old-pw").await;
    let (alice_laptop, _) = server.session_for("alice", "old-pw").await;
    let path = format!("{ADMIN}/v1/reset_password/@alice:example.com");

    let (status, body) = server
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"new_password": "new-pw"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    for token in [&alice_phone, &alice_laptop] {
        let (status, body) = server.whoami(Some(token)).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
        );
    }
    assert!(server.device_ids("@alice:example.com").await.is_empty());
    assert_eq!(
        server.login("alice", "old-pw").await.0,
        StatusCode::FORBIDDEN
    );
    let (kept, _) = server.session_for("alice", "new-pw").await;
    // The admin is still logged in.
    assert_eq!(server.whoami(Some(&admin)).await.0, StatusCode::OK);

    // logout_devices: false keeps the sessions. The policy binds users, not admins.
    let (status, _) = server
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"new_password": "x", "logout_devices": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.whoami(Some(&kept)).await.0, StatusCode::OK);
    assert!(server.has_password("@alice:example.com", "x").await);

    // The audit log names the admin and the user, never the password.
    let records = server
        .store()
        .list_audit(&homekey::store::AuditFilter {
            target: Some("@alice:example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[0].actor.as_str(), records[0].action.as_str()),
        ("@root:example.com", "reset_password")
    );
    assert_eq!(records[0].details, json!({"logout_devices": false}));
    assert!(server.wait_for_log("reset_password"));
    assert!(!server.log().contains("new-pw"), "no password in the log");
}

async fn the_seeds_curl_command_resets_a_password_on_the_legacy_path(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("user", "old-pw").await;
    let (old_token, _) = server.session_for("user", "old-pw").await;
    let url = format!(
        "{}/_matrix/client/r0/admin/reset_password/@user:example.com?access_token={admin}",
        server.base
    );
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "-XPOST",
            "-d",
            r#"{ "new_password": "correct_horse_battery_staple" }"#,
            &url,
        ])
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "{}");
    let (status, body) = server.whoami(Some(&old_token)).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );
    assert_eq!(
        server.login("user", "correct_horse_battery_staple").await.0,
        StatusCode::OK
    );
    // The access log never shows the admin's token.
    assert!(server.wait_for_log("/admin/reset_password/"));
    assert!(!server.log().contains(&admin));
}

async fn reset_password_refuses_bad_input_and_changes_nothing(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("bob", "bob-pw").await;
    let (bob_token, _) = server.session_for("bob", "bob-pw").await;
    let reset = |user: &str| format!("{ADMIN}/v1/reset_password/{user}");
    let cases = [
        (
            reset("@bob:example.com"),
            json!({}),
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
        ),
        (
            reset("@bob:example.com"),
            json!({"new_password": 42}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
        (
            reset("@bob:example.com"),
            json!({"new_password": "p".repeat(513)}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
        (
            reset("@bob:example.com"),
            json!({"new_password": "x", "logout_devices": "yes"}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
        (
            reset("@nobody:example.com"),
            json!({"new_password": "x"}),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        ),
        (
            reset("@bob:other.org"),
            json!({"new_password": "x"}),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        ),
        (
            reset("bob"),
            json!({"new_password": "x"}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = server
            .call("POST", &path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!((got, errcode(&answer)), (status, code), "{path} {body}");
        assert!(!answer.to_string().contains("ppppp"));
    }
    let (status, body) = server
        .call("POST", &reset("@bob:example.com"), Some(&admin), None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_NOT_JSON")
    );
    assert!(server.has_password("@bob:example.com", "bob-pw").await);
    assert_eq!(server.whoami(Some(&bob_token)).await.0, StatusCode::OK);
}

async fn users_are_created_read_and_modified_with_put(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    let path = format!("{ADMIN}/v2/users/@carol:example.com");

    let (status, body) = server.call("GET", &path, Some(&admin), None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"errcode": "M_NOT_FOUND", "error": "User not found"})
        )
    );
    let (status, body) = server
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"password": "carol-pw", "user_type": "bot"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "@carol:example.com");
    // No display name given: the localpart, as Synapse.
    assert_eq!(body["displayname"], "carol");
    assert_eq!(
        (body["admin"].clone(), body["deactivated"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(body["user_type"], "bot");
    assert!(body.get("password_hash").is_none());
    let created_s = body["creation_ts"].as_i64().unwrap();
    assert!(
        created_s > 1_700_000_000 && created_s < 10_000_000_000,
        "seconds here: {created_s}"
    );
    let (carol_token, _) = server.session_for("carol", "carol-pw").await;

    let (status, body) = server
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"displayname": "Carol C.", "admin": true, "password": "second-pw", "user_type": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["displayname"].clone(), body["admin"].clone()),
        (json!("Carol C."), json!(true))
    );
    assert!(body["user_type"].is_null());
    // A new password logs the user out (logout_devices defaults to true).
    assert_eq!(
        server.whoami(Some(&carol_token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    assert!(server.has_password("@carol:example.com", "second-pw").await);
    let (status, body) = server.call("GET", &path, Some(&admin), None).await;
    assert_eq!((status, &body["admin"]), (StatusCode::OK, &json!(true)));

    // Lock, then deactivate, then reactivate: each lands; reactivating needs no password but
    // the user has none until one is set.
    let (status, body) = server
        .call("PUT", &path, Some(&admin), Some(json!({"locked": true})))
        .await;
    assert_eq!((status, &body["locked"]), (StatusCode::OK, &json!(true)));
    let (status, body) = server
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"locked": false, "deactivated": true})),
        )
        .await;
    assert_eq!(
        (status, &body["deactivated"], &body["locked"]),
        (StatusCode::OK, &json!(true), &json!(false))
    );
    assert_eq!(
        server.login("carol", "second-pw").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = server
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"deactivated": false, "password": "third-pw"})),
        )
        .await;
    assert_eq!(
        (status, &body["deactivated"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(server.login("carol", "third-pw").await.0, StatusCode::OK);

    // An empty display name on creation means none.
    let (status, body) = server
        .call(
            "PUT",
            &format!("{ADMIN}/v2/users/@dora:example.com"),
            Some(&admin),
            Some(json!({"displayname": ""})),
        )
        .await;
    assert_eq!(
        (status, &body["displayname"]),
        (StatusCode::CREATED, &Value::Null)
    );
}

async fn put_refuses_bad_input_and_changes_nothing(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("erin", "erin-pw").await;
    let (erin_token, _) = server.session_for("erin", "erin-pw").await;
    let erin = format!("{ADMIN}/v2/users/@erin:example.com");
    let cases = [
        (
            erin.clone(),
            json!({"admin": "yes", "password": "new"}),
            "M_BAD_JSON",
        ),
        (
            erin.clone(),
            json!({"user_type": "robot", "password": "new"}),
            "M_UNKNOWN",
        ),
        (erin.clone(), json!({"password": 7}), "M_UNKNOWN"),
        (
            erin.clone(),
            json!({"password": "p".repeat(513)}),
            "M_UNKNOWN",
        ),
        (erin.clone(), json!({"deactivated": "yes"}), "M_UNKNOWN"),
        (
            erin.clone(),
            json!({"deactivated": true, "locked": true}),
            "M_UNKNOWN",
        ),
        (
            erin.clone(),
            json!({"displayname": 5, "password": "new"}),
            "M_INVALID_PARAM",
        ),
        (
            erin.clone(),
            json!({"displayname": "d".repeat(257)}),
            "M_UNKNOWN",
        ),
        (
            erin.clone(),
            json!({"threepids": [{"medium": "email"}]}),
            "M_MISSING_PARAM",
        ),
        (
            format!("{ADMIN}/v2/users/@erin:other.org"),
            json!({}),
            "M_UNKNOWN",
        ),
        // As Synapse: any @localpart:server is read, and the registration rules refuse it.
        (
            format!("{ADMIN}/v2/users/@Bad Name:example.com"),
            json!({}),
            "M_INVALID_USERNAME",
        ),
        (
            format!("{ADMIN}/v2/users/@Upper:example.com"),
            json!({}),
            "M_INVALID_USERNAME",
        ),
        (
            format!("{ADMIN}/v2/users/@12345:example.com"),
            json!({}),
            "M_INVALID_USERNAME",
        ),
        // Only the case differs from erin's: Synapse's registration refuses it.
        (
            format!("{ADMIN}/v2/users/@ERIN:example.com"),
            json!({}),
            "M_INVALID_USERNAME",
        ),
    ];
    for (path, body, code) in cases {
        let (status, answer) = server
            .call("PUT", &path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(
            (status, errcode(&answer)),
            (StatusCode::BAD_REQUEST, code),
            "{path} {body}: {answer}"
        );
    }
    // The admin may not demote itself, nor deactivate or lock itself as the last admin.
    let root = format!("{ADMIN}/v2/users/@root:example.com");
    for body in [
        json!({"admin": false}),
        json!({"deactivated": true}),
        json!({"locked": true}),
    ] {
        let (status, answer) = server
            .call("PUT", &root, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let user = server
        .store()
        .get_user("@erin:example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.admin && !user.deactivated && user.displayname.is_none());
    assert!(server.has_password("@erin:example.com", "erin-pw").await);
    assert_eq!(server.whoami(Some(&erin_token)).await.0, StatusCode::OK);
    assert_eq!(server.whoami(Some(&admin)).await.0, StatusCode::OK);
    let users = server
        .store()
        .list_users(&homekey::store::UserFilter::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(users.total, 2, "nothing was created");
}

async fn the_listings_page_and_filter_like_synapse(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    for name in ["anna", "bert", "cleo", "dirk", "eddy"] {
        server.create_user(name, "pw").await;
    }
    server
        .store()
        .deactivate(
            "@dirk:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    server
        .store()
        .set_locked(
            "@eddy:example.com",
            true,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    let list = |query: &str| {
        let server = &server;
        let admin = admin.clone();
        let path = format!("{ADMIN}/v2/users{query}");
        async move { server.call("GET", &path, Some(&admin), None).await }
    };
    let names = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // v2 hides deactivated and locked users unless asked.
    let (status, body) = list("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        names(&body),
        [
            "@anna:example.com",
            "@bert:example.com",
            "@cleo:example.com",
            "@root:example.com"
        ]
    );
    assert_eq!(body["total"], 4);
    assert!(body.get("next_token").is_none());
    let anna = &body["users"][0];
    assert_eq!(
        anna["creation_ts"],
        json!(1_700_000_000_000_i64),
        "milliseconds in the listing"
    );
    for key in [
        "user_type",
        "is_guest",
        "admin",
        "deactivated",
        "shadow_banned",
        "displayname",
        "avatar_url",
        "approved",
        "erased",
        "last_seen_ts",
        "locked",
    ] {
        assert!(anna.get(key).is_some(), "{key} in {anna}");
    }

    let (_, page) = list("?from=1&limit=2").await;
    assert_eq!(names(&page), ["@bert:example.com", "@cleo:example.com"]);
    assert_eq!(
        (page["next_token"].clone(), page["total"].clone()),
        (json!("3"), json!(4))
    );
    let (_, all) = list("?deactivated=true&locked=true").await;
    assert_eq!(all["total"], 6);
    let (_, admins) = list("?admins=true").await;
    assert_eq!(names(&admins), ["@root:example.com"]);
    let (_, by_name) = list("?name=LE").await;
    assert_eq!(names(&by_name), ["@cleo:example.com"]);
    // `name` looks at the localpart, never the server name.
    let (_, by_server) = list("?name=example").await;
    assert_eq!(by_server["total"], 0);
    let (_, by_id) = list("?user_id=example.com&limit=1").await;
    assert_eq!(by_id["total"], 4);
    let (_, backwards) = list("?dir=b&limit=1").await;
    assert_eq!(names(&backwards), ["@root:example.com"]);

    // v3: `deactivated` absent lists everyone (but the locked), true only the deactivated.
    let (_, v3) = server
        .call("GET", &format!("{ADMIN}/v3/users"), Some(&admin), None)
        .await;
    assert_eq!(v3["total"], 5);
    let (_, only) = server
        .call(
            "GET",
            &format!("{ADMIN}/v3/users?deactivated=true"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(names(&only), ["@dirk:example.com"]);

    for (query, message) in [
        (
            "?from=-1",
            "Query parameter from must be a positive integer.",
        ),
        ("?limit=ten", "Query parameter limit must be an integer"),
        (
            "?guests=yes",
            "Boolean query parameter 'guests' must be one of ['true', 'false']",
        ),
        ("?dir=up", "Query parameter 'dir' must be one of ['f', 'b']"),
    ] {
        let (status, body) = list(query).await;
        assert_eq!(
            (status, errcode(&body), body["error"].as_str().unwrap()),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message)
        );
    }
    let (status, body) = list("?order_by=password_hash").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
}

async fn the_admin_flag_is_read_and_set_but_never_self_demoted(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("fred", "fred-pw").await;
    let fred = format!("{ADMIN}/v1/users/@fred:example.com/admin");

    let (status, body) = server.call("GET", &fred, Some(&admin), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"admin": false})));
    let (status, body) = server
        .call("PUT", &fred, Some(&admin), Some(json!({"admin": true})))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let fred_token = server.token_for("fred", "fred-pw").await;
    let (status, _) = server
        .call(
            "GET",
            &format!("{ADMIN}/v2/users/@root:example.com"),
            Some(&fred_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "fred is an admin now");

    let root = format!("{ADMIN}/v1/users/@root:example.com/admin");
    let (status, body) = server
        .call("PUT", &root, Some(&admin), Some(json!({"admin": false})))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"errcode": "M_UNKNOWN", "error": "You may not demote yourself."})
        )
    );
    for (path, body, status, code) in [
        (
            fred.clone(),
            json!({}),
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
        ),
        (
            fred.clone(),
            json!({"admin": "false"}),
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
        ),
        (
            format!("{ADMIN}/v1/users/@fred:other.org/admin"),
            json!({"admin": true}),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
        (
            format!("{ADMIN}/v1/users/@ghost:example.com/admin"),
            json!({"admin": true}),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        ),
    ] {
        let (got, answer) = server
            .call("PUT", &path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!((got, errcode(&answer)), (status, code), "{path} {body}");
    }
    // Another admin may demote root, leaving fred.
    let (status, _) = server
        .call(
            "PUT",
            &root,
            Some(&fred_token),
            Some(json!({"admin": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.call("GET", &fred, Some(&admin), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "root is no admin any more");
}

async fn deactivation_ends_every_session_but_never_the_last_admin(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("gail", "gail-pw").await;
    let (gail_token, _) = server.session_for("gail", "gail-pw").await;
    let gail = format!("{ADMIN}/v1/deactivate/@gail:example.com");

    let (status, body) = server
        .call("POST", &gail, Some(&admin), Some(json!({"erase": "yes"})))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    assert_eq!(server.whoami(Some(&gail_token)).await.0, StatusCode::OK);
    // No body at all is fine.
    let (status, body) = server.call("POST", &gail, Some(&admin), None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );
    assert_eq!(
        server.whoami(Some(&gail_token)).await.1["errcode"],
        "M_UNKNOWN_TOKEN"
    );
    assert_eq!(
        server.login("gail", "gail-pw").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, body) = server
        .call(
            "GET",
            &format!("{ADMIN}/v2/users/@gail:example.com"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(body["deactivated"], json!(true));

    for (path, status, code) in [
        (
            format!("{ADMIN}/v1/deactivate/@ghost:example.com"),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        ),
        (
            format!("{ADMIN}/v1/deactivate/@gail:other.org"),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
        ),
    ] {
        let (got, answer) = server.call("POST", &path, Some(&admin), None).await;
        assert_eq!((got, errcode(&answer)), (status, code), "{path}");
    }
    // The last admin may not deactivate itself: the server would have no admin left.
    let root = format!("{ADMIN}/v1/deactivate/@root:example.com");
    let (status, body) = server.call("POST", &root, Some(&admin), None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_FORBIDDEN")
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("last server admin"),
        "{body}"
    );
    assert_eq!(server.whoami(Some(&admin)).await.0, StatusCode::OK);
    // With a second admin, it may (as in Synapse).
    server.admin_token("hank", "hank-pw").await;
    let (status, _) = server.call("POST", &root, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.whoami(Some(&admin)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn username_available_applies_the_registration_rules(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("ivan", "pw").await;
    let ask = |query: &str| {
        let server = &server;
        let admin = admin.clone();
        let path = format!("{ADMIN}/v1/username_available{query}");
        async move { server.call("GET", &path, Some(&admin), None).await }
    };
    assert_eq!(
        ask("?username=judy").await,
        (StatusCode::OK, json!({"available": true}))
    );
    let (status, body) = ask("?username=IVAN").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME")
    );
    let (status, body) = ask("?username=ivan").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"errcode": "M_USER_IN_USE", "error": "User ID already taken."})
        )
    );
    let (status, body) = ask("").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_MISSING_PARAM")
    );
}

async fn not_user_type_leaves_out_types_as_synapse_does(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("human", "pw").await;
    for (name, user_type) in [("robot", "bot"), ("helper", "support")] {
        let (status, body) = server
            .call(
                "PUT",
                &format!("{ADMIN}/v2/users/@{name}:example.com"),
                Some(&admin),
                Some(json!({"user_type": user_type})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let names = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (helper, human, robot, root) = (
        "@helper:example.com",
        "@human:example.com",
        "@robot:example.com",
        "@root:example.com",
    );
    // Synapse's rules (get_users_paginate): "" alone is "no type"; beside other types it
    // makes them leave out the untyped too; several "" alone leave out nothing.
    for (query, expected) in [
        ("", vec![helper, human, robot, root]),
        ("not_user_type=bot", vec![helper, human, root]),
        ("not_user_type=bot&not_user_type=support", vec![human, root]),
        ("not_user_type=", vec![helper, robot]),
        ("not_user_type=&not_user_type=bot", vec![helper]),
        (
            "not_user_type=&not_user_type=",
            vec![helper, human, robot, root],
        ),
        (
            "not_user_type=bot&not_user_type=bot",
            vec![helper, human, root],
        ),
        ("not_user_type=nobody", vec![helper, human, robot, root]),
    ] {
        for version in ["v2", "v3"] {
            let (status, body) = server
                .call(
                    "GET",
                    &format!("{ADMIN}/{version}/users?{query}"),
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{version} {query}: {body}");
            assert_eq!(names(&body), expected, "{version} {query}");
            assert_eq!(body["total"], expected.len(), "{version} {query}");
        }
    }
    // With the other filters and paging: the placeholders after the types still bind.
    let (_, body) = server
        .call(
            "GET",
            &format!("{ADMIN}/v2/users?not_user_type=support&admins=false&limit=1&from=1"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(names(&body), [robot], "{body}");
    assert_eq!(body["total"], 2);
    // Synapse reads the values as ASCII.
    let (status, body) = server
        .call(
            "GET",
            &format!("{ADMIN}/v2/users?not_user_type=b%C3%B6t"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"errcode": "M_UNKNOWN", "error": "Query parameter 'not_user_type' must be ascii"})
        )
    );
}

async fn last_seen_ts_is_the_latest_of_the_devices(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("anna", "pw").await;
    server.create_user("bert", "pw").await;
    let anna = format!("{ADMIN}/v2/users/@anna:example.com");
    let (_, body) = server.call("GET", &anna, Some(&admin), None).await;
    assert_eq!(body["last_seen_ts"], Value::Null, "no device yet: {body}");

    let before = now_ms();
    server.session_for("anna", "pw").await;
    let (_, laptop) = server.session_for("anna", "pw").await;
    server.session_for("bert", "pw").await;
    let after = now_ms();
    // One device seen later than the others (a later login on it would do the same).
    crate::server::raw_execute(
        &server.db.config,
        &format!(
            "UPDATE devices SET last_seen = {} WHERE user_id = $1 AND device_id = $2",
            after + 60_000
        ),
        &["@anna:example.com", &laptop],
    )
    .await;

    let (status, body) = server.call("GET", &anna, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["last_seen_ts"], json!(after + 60_000), "{body}");
    let listed = |body: &Value, name: &str| -> Value {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {body}"))["last_seen_ts"]
            .clone()
    };
    for version in ["v2", "v3"] {
        let (_, body) = server
            .call(
                "GET",
                &format!("{ADMIN}/{version}/users?order_by=last_seen_ts&dir=b"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(listed(&body, "@anna:example.com"), json!(after + 60_000));
        let bert = listed(&body, "@bert:example.com").as_i64().unwrap();
        assert!(
            (before..=after).contains(&bert),
            "{bert} in {before}..{after}"
        );
        assert_eq!(
            body["users"][0]["name"], "@anna:example.com",
            "sorted by it, latest first: {body}"
        );
    }
    // A user with no device left has no last_seen_ts again.
    let (status, _) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/reset_password/@anna:example.com"),
            Some(&admin),
            Some(json!({"new_password": "pw2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server.call("GET", &anna, Some(&admin), None).await;
    assert_eq!(body["last_seen_ts"], Value::Null, "{body}");
}

async fn joined_rooms_is_empty_for_any_user_and_the_key_server_names_the_server(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("gina", "pw").await;
    let user_token = server.token_for("gina", "pw").await;
    // As Synapse: no check of the user at all, the same empty answer for everyone.
    for user_id in [
        "@gina:example.com",
        "@nobody:example.com",
        "@someone:other.org",
        "not-a-user-id",
    ] {
        let path = format!("{ADMIN}/v1/users/{user_id}/joined_rooms");
        let (status, body) = server.call("GET", &path, Some(&admin), None).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"joined_rooms": [], "total": 0})),
            "{user_id}"
        );
    }
    let path = format!("{ADMIN}/v1/users/@gina:example.com/joined_rooms");
    let (status, body) = server.call("GET", &path, Some(&user_token), None).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, _) = server.call("GET", &path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The server name for tools such as synadm; no keys, since homekey signs nothing. No
    // token needed, as in Synapse.
    for path in ["/_matrix/key/v2/server", "/_matrix/key/v2/server/ed25519:a"] {
        let before = now_ms();
        let (status, body) = server.call("GET", path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let valid_until = body["valid_until_ts"].as_i64().unwrap();
        assert!(
            valid_until >= before + 86_400_000 && valid_until <= now_ms() + 86_400_000,
            "{body}"
        );
        assert_eq!(
            body,
            json!({
                "server_name": "example.com",
                "verify_keys": {},
                "old_verify_keys": {},
                "valid_until_ts": valid_until,
            })
        );
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
