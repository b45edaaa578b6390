//! Erasure, shadow-bans and suspension through the Admin API (and the client API's
//! deactivation) against a running server, on SQLite and PostgreSQL: each effect seen in
//! `GET v2/users/<id>`, the listings and the audit log, and Synapse's answers to bad requests,
//! which change nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, password_auth, server_tests};
use crate::support::TestDb;

server_tests!(
    erasure_is_marked_once_shown_and_cleared_by_reactivation,
    a_user_deactivating_their_own_account_with_erase_is_marked_erased,
    shadow_bans_are_set_and_lifted_with_synapses_checks,
    suspension_is_set_and_lifted_with_synapses_checks_in_its_order,
);

const ADMIN: &str = "/_synapse/admin";
const ALICE: &str = "@alice:example.com";

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

/// `GET v2/users/<id>` as an admin.
async fn user(server: &Server, admin: &str, user_id: &str) -> Value {
    let (status, body) = server
        .call(
            "GET",
            &format!("{ADMIN}/v2/users/{user_id}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The user as the listing `path` (a query that includes them) shows them.
async fn listed(server: &Server, admin: &str, path: &str, user_id: &str) -> Value {
    let (status, body) = server.call("GET", path, Some(admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user_id)
        .unwrap_or_else(|| panic!("{user_id} not in {body}"))
        .clone()
}

/// The audit log's actions about `user_id`, oldest first, with their actors.
async fn audit(server: &Server, user_id: &str) -> Vec<(String, String)> {
    let mut records = server
        .store()
        .list_audit(&homekey::store::AuditFilter {
            target: Some(user_id.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    records.reverse();
    records.into_iter().map(|r| (r.actor, r.action)).collect()
}

fn by_root(actions: &[&str]) -> Vec<(String, String)> {
    actions
        .iter()
        .map(|a| ("@root:example.com".to_owned(), (*a).to_owned()))
        .collect()
}

async fn erasure_is_marked_once_shown_and_cleared_by_reactivation(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let alice_token = server.token_for("alice", "alice-pw").await;
    server
        .set_own_displayname(&alice_token, ALICE, "Alice")
        .await;
    let v2_all = format!("{ADMIN}/v2/users?deactivated=true");
    let v3_all = format!("{ADMIN}/v3/users");
    assert_eq!(user(&server, &admin, ALICE).await["erased"], false);

    let deactivate = format!("{ADMIN}/v1/deactivate/{ALICE}");
    let (status, body) = server
        .call(
            "POST",
            &deactivate,
            Some(admin.as_str()),
            Some(json!({"erase": true})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );
    let shown = user(&server, &admin, ALICE).await;
    assert_eq!(
        (
            &shown["erased"],
            &shown["deactivated"],
            &shown["displayname"]
        ),
        (&json!(true), &json!(true), &Value::Null),
        "{shown}"
    );
    for listing in [&v2_all, &v3_all] {
        assert_eq!(
            listed(&server, &admin, listing, ALICE).await["erased"],
            true
        );
    }
    // Asked again (Synapse runs the whole deactivation again): still one mark, no error.
    let (status, body) = server
        .call(
            "POST",
            &deactivate,
            Some(admin.as_str()),
            Some(json!({"erase": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(user(&server, &admin, ALICE).await["erased"], true);

    // Reactivation removes the mark, as Synapse's activate_account does.
    let (status, body) = server
        .call(
            "PUT",
            &format!("{ADMIN}/v2/users/{ALICE}"),
            Some(admin.as_str()),
            Some(json!({"deactivated": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["erased"], &body["deactivated"]),
        (&json!(false), &json!(false)),
        "{body}"
    );
    assert_eq!(
        listed(&server, &admin, &v3_all, ALICE).await["erased"],
        false
    );

    // A deactivation without erase (the Admin API's, then PUT's) marks nothing.
    let (status, _) = server
        .call("POST", &deactivate, Some(&admin), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user(&server, &admin, ALICE).await["erased"], false);
    assert_eq!(
        audit(&server, ALICE).await,
        by_root(&["deactivate", "deactivate", "modify_user", "deactivate"])
    );
    let records = server
        .store()
        .list_audit(&homekey::store::AuditFilter {
            target: Some(ALICE.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records[3].details, json!({"erase": true}));
    assert_eq!(records[0].details, json!({"erase": false}));

    // Other users are never marked.
    assert_eq!(
        listed(&server, &admin, &v3_all, "@root:example.com").await["erased"],
        false
    );
}

async fn a_user_deactivating_their_own_account_with_erase_is_marked_erased(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let token = server.token_for("alice", "alice-pw").await;
    let path = "/_matrix/client/v3/account/deactivate";
    let (status, body) = server
        .call("POST", path, Some(&token), Some(json!({"erase": true})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let session = body["session"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call(
            "POST",
            path,
            Some(&token),
            Some(json!({
                "erase": true,
                "auth": password_auth("alice", "alice-pw", Some(&session)),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = user(&server, &admin, ALICE).await;
    assert_eq!(
        (&shown["erased"], &shown["deactivated"]),
        (&json!(true), &json!(true)),
        "{shown}"
    );
}

async fn shadow_bans_are_set_and_lifted_with_synapses_checks(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let alice_token = server.token_for("alice", "alice-pw").await;
    let path = format!("{ADMIN}/v1/users/{ALICE}/shadow_ban");
    let v2 = format!("{ADMIN}/v2/users");

    // The body is not read, as in Synapse: none, or anything at all.
    let response = server
        .http
        .post(server.url(&path))
        .bearer_auth(&admin)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(user(&server, &admin, ALICE).await["shadow_banned"], true);
    assert_eq!(
        listed(&server, &admin, &v2, ALICE).await["shadow_banned"],
        true
    );
    // The user is not told: their token works as before.
    assert_eq!(server.whoami(Some(&alice_token)).await.0, StatusCode::OK);
    let (status, body) = server.call("DELETE", &path, Some(&admin), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(user(&server, &admin, ALICE).await["shadow_banned"], false);
    assert_eq!(
        listed(&server, &admin, &v2, ALICE).await["shadow_banned"],
        false
    );
    // Lifting a ban that is not there is written and recorded too, as Synapse writes it.
    let (status, _) = server.call("DELETE", &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        audit(&server, ALICE).await,
        by_root(&["shadow_ban", "unshadow_ban", "unshadow_ban"])
    );

    // Refusals, for both methods, and none changes or records anything.
    let refusals: &[(&str, Option<&str>, StatusCode, &str, &str)] = &[
        (
            "@alice:elsewhere.org",
            Some(admin.as_str()),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Only local users can be shadow-banned",
        ),
        // No `:` at all: not local either (Synapse checks the server first).
        (
            "alice",
            Some(admin.as_str()),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Only local users can be shadow-banned",
        ),
        (
            "alice:example.com",
            Some(admin.as_str()),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "Expected UserID string to start with '@'",
        ),
        // An unknown local user: Synapse's storage error, matched.
        (
            "@nobody:example.com",
            Some(admin.as_str()),
            StatusCode::NOT_FOUND,
            "M_UNKNOWN",
            "No row found (users)",
        ),
        (
            ALICE,
            Some(alice_token.as_str()),
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "You are not a server admin",
        ),
    ];
    for method in ["POST", "DELETE"] {
        for (target, token, status, code, message) in refusals {
            let (got, body) = server
                .call(
                    method,
                    &format!("{ADMIN}/v1/users/{target}/shadow_ban"),
                    *token,
                    None,
                )
                .await;
            assert_eq!(
                (got, body),
                (*status, json!({"errcode": code, "error": message})),
                "{method} {target}"
            );
        }
        let (status, body) = server.call(method, &path, None, None).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
        );
    }
    assert_eq!(user(&server, &admin, ALICE).await["shadow_banned"], false);
    assert_eq!(audit(&server, ALICE).await.len(), 3);
    assert!(audit(&server, "@nobody:example.com").await.is_empty());
    assert!(
        server
            .store()
            .get_user("@nobody:example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn suspension_is_set_and_lifted_with_synapses_checks_in_its_order(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let alice_token = server.token_for("alice", "alice-pw").await;
    let path = format!("{ADMIN}/v1/suspend/{ALICE}");

    let (status, body) = server
        .call("PUT", &path, Some(&admin), Some(json!({"suspend": true})))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"user_@alice:example.com_suspended": true})
        )
    );
    assert_eq!(user(&server, &admin, ALICE).await["suspended"], true);
    // Other keys are ignored, as Synapse's model ignores them.
    let (status, body) = server
        .call(
            "PUT",
            &path,
            Some(admin.as_str()),
            Some(json!({"suspend": false, "reason": "appeal"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"user_@alice:example.com_suspended": false})
        )
    );
    assert_eq!(user(&server, &admin, ALICE).await["suspended"], false);
    assert_eq!(
        audit(&server, ALICE).await,
        by_root(&["suspend", "unsuspend"])
    );

    // Bad bodies, for an existing user.
    let raw_put = |body: &'static str| {
        let request = server
            .http
            .put(server.url(&path))
            .bearer_auth(&admin)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    for (body, code) in [
        ("", "M_NOT_JSON"),
        ("{", "M_NOT_JSON"),
        ("[]", "M_BAD_JSON"),
        ("{}", "M_MISSING_PARAM"),
        (r#"{"suspend": "true"}"#, "M_BAD_JSON"),
        (r#"{"suspend": 1}"#, "M_BAD_JSON"),
        (r#"{"suspend": null}"#, "M_BAD_JSON"),
    ] {
        let (status, answer) = raw_put(body).await;
        assert_eq!(
            (status, errcode(&answer)),
            (StatusCode::BAD_REQUEST, code),
            "{body:?}: {answer}"
        );
    }

    // The user ID and the user are checked before the body, which may then be anything.
    let refusals: &[(&str, Option<&str>, StatusCode, &str, &str)] = &[
        (
            "alice:example.com",
            Some(admin.as_str()),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "Expected UserID string to start with '@'",
        ),
        (
            "@alice",
            Some(admin.as_str()),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "Expected UserID of the form '@localname:domain'",
        ),
        (
            "@alice:elsewhere.org",
            Some(admin.as_str()),
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Can only suspend local users",
        ),
        (
            "@nobody:example.com",
            Some(admin.as_str()),
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "User not found",
        ),
        (
            ALICE,
            Some(alice_token.as_str()),
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "You are not a server admin",
        ),
    ];
    for body in [json!({"suspend": true}), json!("not an object")] {
        for (target, token, status, code, message) in refusals {
            let (got, answer) = server
                .call(
                    "PUT",
                    &format!("{ADMIN}/v1/suspend/{target}"),
                    *token,
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                (got, answer),
                (*status, json!({"errcode": code, "error": message})),
                "{target} {body}"
            );
        }
    }
    let (status, body) = server
        .call("PUT", &path, None, Some(json!({"suspend": true})))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
    assert_eq!(user(&server, &admin, ALICE).await["suspended"], false);
    assert_eq!(audit(&server, ALICE).await.len(), 2);
    assert!(audit(&server, "@nobody:example.com").await.is_empty());
}
