//! Erasure through the Admin API (and the client API's deactivation) against a running
//! server, on SQLite and PostgreSQL: each effect seen in `GET v2/users/<id>`, the listings
//! and the audit log.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, password_auth, server_tests};
use crate::support::TestDb;

server_tests!(
    erasure_is_marked_once_shown_and_cleared_by_reactivation,
    a_user_deactivating_their_own_account_with_erase_is_marked_erased,
);

const ADMIN: &str = "/_synapse/admin";
const ALICE: &str = "@alice:example.com";

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
