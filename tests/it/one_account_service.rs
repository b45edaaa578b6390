//! One account service behind every entry point: the same rule gives the same answer over
//! HTTP and from the CLI, every change is one transaction with its record, and a device ID
//! only ever narrows a deletion. On SQLite and PostgreSQL, against the running server.

use homekey::shared_secret::{RegistrationFields, registration_mac};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::server::{Server, password_auth, raw_execute, server_tests};
use crate::support::{HOMEKEY, TestDb, run_binary, stderr};

server_tests!(
    an_empty_device_id_deletes_no_device,
    a_registration_whose_token_cannot_be_written_leaves_no_account,
    creating_a_user_with_an_avatar_is_one_recorded_change,
    an_admin_renaming_another_user_is_recorded,
    a_deactivated_account_gets_no_password_from_any_entry_point,
    a_suspended_user_changes_no_profile,
);

const SHARED_SECRET: &str = "one-service-shared-secret";
const ADMIN: &str = "/_synapse/admin";

async fn audit_actions(server: &Server, user_id: &str) -> Vec<(String, String)> {
    let records = server
        .store()
        .list_audit(&homekey::store::AuditFilter {
            target: Some(user_id.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    records.into_iter().map(|r| (r.actor, r.action)).collect()
}

pub(crate) fn database_url(server: &Server) -> String {
    match &server.db.config {
        homekey::config::DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
        other => panic!("{other:?}"),
    }
}

/// `{"devices": [""]}` to the client API and the Admin API: Synapse deletes nothing for it,
/// and neither does homekey (it once took "" for "no filter" and deleted every device).
async fn an_empty_device_id_deletes_no_device(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("ann", "ann-pw").await;
    let (phone, _) = server.session_for("ann", "ann-pw").await;
    let (laptop, _) = server.session_for("ann", "ann-pw").await;
    let ann = "@ann:example.com";
    let before = server.device_ids(ann).await;
    assert_eq!(before.len(), 2);

    let path = "/_matrix/client/v3/delete_devices";
    let (status, body) = server
        .call("POST", path, Some(&phone), Some(json!({"devices": [""]})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let session = body["session"].as_str().unwrap();
    let auth = password_auth("ann", "ann-pw", Some(session));
    let (status, body) = server
        .call(
            "POST",
            path,
            Some(&phone),
            Some(json!({"devices": [""], "auth": auth})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.device_ids(ann).await, before);

    let (status, body) = server
        .call(
            "POST",
            &format!("{ADMIN}/v2/users/{ann}/delete_devices"),
            Some(&admin),
            Some(json!({"devices": [""]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.device_ids(ann).await, before);
    for token in [&phone, &laptop] {
        assert_eq!(server.whoami(Some(token)).await.0, StatusCode::OK);
    }
}

async fn register(server: &Server, username: &str) -> (StatusCode, Value) {
    let (_, body) = server
        .call("GET", &format!("{ADMIN}/v1/register"), None, None)
        .await;
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let body = json!({
        "nonce": nonce, "username": username, "password": "reg-pw",
        "mac": registration_mac(
            &SecretString::from(SHARED_SECRET),
            RegistrationFields {
                nonce: &nonce,
                username,
                password: "reg-pw",
                admin: false,
                user_type: None,
            },
        ),
    });
    server
        .call("POST", &format!("{ADMIN}/v1/register"), None, Some(body))
        .await
}

/// Shared-secret registration writes the account and its first token in one transaction:
/// when the token cannot be written the account is not left behind, and the client's retry
/// registers it (it once got `M_USER_IN_USE`).
async fn a_registration_whose_token_cannot_be_written_leaves_no_account(db: TestDb) {
    let server = Server::start(
        db,
        &format!("registration_shared_secret: {SHARED_SECRET}\n"),
    )
    .await;
    let config = server.db.config.clone();
    raw_execute(
        &config,
        "ALTER TABLE access_tokens RENAME TO access_tokens_away",
        &[],
    )
    .await;
    let (status, body) = register(&server, "newbie").await;
    raw_execute(
        &config,
        "ALTER TABLE access_tokens_away RENAME TO access_tokens",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let newbie = "@newbie:example.com";
    assert!(server.store().get_user(newbie).await.unwrap().is_none());
    assert!(audit_actions(&server, newbie).await.is_empty());

    let (status, body) = register(&server, "newbie").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(server.whoami(Some(token)).await.0, StatusCode::OK);
    assert_eq!(
        audit_actions(&server, newbie).await,
        [(
            "shared-secret registration".to_owned(),
            "create_user".to_owned()
        )]
    );
}

/// `PUT /v2/users/<new>` with an `avatar_url` is one change with one record: the avatar was
/// once set in a second, unaudited transaction, so an avatar the database refused left the
/// account made without it. A trigger that refuses avatars shows which it is.
async fn creating_a_user_with_an_avatar_is_one_recorded_change(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    let body = json!({"password": "pic-pw", "avatar_url": "mxc://example.com/pic"});
    let path = format!("{ADMIN}/v2/users/@pic:example.com");
    let config = server.db.config.clone();
    let sqlite = matches!(config, homekey::config::DatabaseConfig::Sqlite { .. });
    let refuse_avatars: &[&str] = if sqlite {
        &[
            "CREATE TRIGGER no_avatar_in BEFORE INSERT ON profiles WHEN NEW.avatar_url IS NOT NULL \
             BEGIN SELECT RAISE(ABORT, 'no avatars'); END",
            "CREATE TRIGGER no_avatar_up BEFORE UPDATE ON profiles WHEN NEW.avatar_url IS NOT NULL \
             BEGIN SELECT RAISE(ABORT, 'no avatars'); END",
        ]
    } else {
        &[
            "CREATE FUNCTION no_avatar() RETURNS trigger AS $$ BEGIN IF NEW.avatar_url IS NOT NULL \
             THEN RAISE EXCEPTION 'no avatars'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER no_avatar BEFORE INSERT OR UPDATE ON profiles FOR EACH ROW \
             EXECUTE FUNCTION no_avatar()",
        ]
    };
    for sql in refuse_avatars {
        raw_execute(&config, sql, &[]).await;
    }
    let (status, answer) = server
        .call("PUT", &path, Some(&admin), Some(body.clone()))
        .await;
    let allow_avatars: &[&str] = if sqlite {
        &["DROP TRIGGER no_avatar_in", "DROP TRIGGER no_avatar_up"]
    } else {
        &["DROP TRIGGER no_avatar ON profiles"]
    };
    for sql in allow_avatars {
        raw_execute(&config, sql, &[]).await;
    }
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert!(
        server
            .store()
            .get_user("@pic:example.com")
            .await
            .unwrap()
            .is_none(),
        "the account was made without its avatar"
    );
    assert!(audit_actions(&server, "@pic:example.com").await.is_empty());

    let (status, answer) = server.call("PUT", &path, Some(&admin), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["avatar_url"], "mxc://example.com/pic");
    assert_eq!(answer["displayname"], "pic");
    assert_eq!(
        audit_actions(&server, "@pic:example.com").await,
        [("@root:example.com".to_owned(), "create_user".to_owned())]
    );
}

/// An admin changing another user's display name through the client API leaves a record
/// naming the admin; a user's own change does not.
async fn an_admin_renaming_another_user_is_recorded(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("bea", "bea-pw").await;
    let bea = "@bea:example.com";
    let own = server.token_for("bea", "bea-pw").await;
    server.set_own_displayname(&own, bea, "Bea").await;
    assert!(audit_actions(&server, bea).await.is_empty());
    server.set_own_displayname(&admin, bea, "Beatrice").await;
    assert_eq!(
        audit_actions(&server, bea).await,
        [("@root:example.com".to_owned(), "set_displayname".to_owned())]
    );
    let (_, body) = server
        .call(
            "GET",
            &format!("/_matrix/client/v3/profile/{bea}"),
            None,
            None,
        )
        .await;
    assert_eq!(body["displayname"], "Beatrice");
}

/// A deactivated account: the Admin API's reset and `PUT v2/users` refuse it a password as
/// the CLI does, and leave it without one; a `PUT` that reactivates it may set one.
async fn a_deactivated_account_gets_no_password_from_any_entry_point(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("cy", "cy-pw").await;
    let cy = "@cy:example.com";
    let (status, _) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/deactivate/{cy}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let no_hash = || async {
        let user = server.store().get_user(cy).await.unwrap().unwrap();
        user.password_hash.is_none()
    };
    for (method, path, body) in [
        (
            "POST",
            format!("{ADMIN}/v1/reset_password/{cy}"),
            json!({"new_password": "back-pw"}),
        ),
        (
            "PUT",
            format!("{ADMIN}/v2/users/{cy}"),
            json!({"password": "back-pw"}),
        ),
    ] {
        let (status, answer) = server.call(method, &path, Some(&admin), Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["errcode"], "M_FORBIDDEN", "{path}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("is deactivated; a password would not let it log in"),
            "{answer}"
        );
        assert!(no_hash().await, "{path}");
    }
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "set-password",
            cy,
            "--password-stdin",
            "--database",
            &database_url(&server),
        ],
        b"back-pw\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is deactivated; a password would not let it log in"),
        "{}",
        stderr(&out)
    );
    assert!(no_hash().await);

    let (status, answer) = server
        .call(
            "PUT",
            &format!("{ADMIN}/v2/users/{cy}"),
            Some(&admin),
            Some(json!({"password": "back-pw", "deactivated": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["deactivated"], false);
    assert_eq!(server.login("cy", "back-pw").await.0, StatusCode::OK);
}

/// A suspended user's display-name change is refused as Synapse refuses it, before the
/// target is looked at, and changes nothing; lifting the suspension lets it through.
async fn a_suspended_user_changes_no_profile(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("sue", "sue-pw").await;
    let sue = "@sue:example.com";
    let token = server.token_for("sue", "sue-pw").await;
    server.set_own_displayname(&token, sue, "Sue").await;
    let suspend_path = format!("{ADMIN}/v1/suspend/{sue}");
    let suspend = |on: bool| {
        server.call(
            "PUT",
            &suspend_path,
            Some(&admin),
            Some(json!({ "suspend": on })),
        )
    };
    assert_eq!(suspend(true).await.0, StatusCode::OK);
    let expected = json!({
        "errcode": "M_USER_ACCOUNT_SUSPENDED",
        "error": "Updating profile while account is suspended is not allowed."
    });
    for target in [sue, "@someone:other.org"] {
        let (status, body) = server
            .call(
                "PUT",
                &format!("/_matrix/client/v3/profile/{target}/displayname"),
                Some(&token),
                Some(json!({"displayname": "Sued"})),
            )
            .await;
        assert_eq!(
            (status, &body),
            (StatusCode::FORBIDDEN, &expected),
            "{target}"
        );
    }
    let profile = || async {
        let (_, body) = server
            .call(
                "GET",
                &format!("/_matrix/client/v3/profile/{sue}"),
                None,
                None,
            )
            .await;
        body["displayname"].clone()
    };
    assert_eq!(profile().await, "Sue");
    assert_eq!(suspend(false).await.0, StatusCode::OK);
    server.set_own_displayname(&token, sue, "Sued").await;
    assert_eq!(profile().await, "Sued");
}
