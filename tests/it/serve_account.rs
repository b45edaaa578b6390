//! `/account/password` and `/account/deactivate` through user-interactive auth, against a
//! running server on SQLite and PostgreSQL.

use homekey::store::NewSession;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::server::{PEPPER, Server, password_auth, raw_execute, server_tests};
use crate::support::TestDb;

server_tests!(
    a_password_change_asks_for_the_password_then_keeps_only_the_requesting_device,
    a_password_sent_before_the_auth_is_kept_and_logout_devices_false_keeps_every_device,
    bad_new_passwords_are_refused_before_the_auth_and_change_nothing,
    sessions_are_bound_to_their_operation_and_their_user,
    deactivation_needs_the_password_and_ends_every_session,
    only_for_reauth_authenticates_with_the_password_but_refuses_the_change,
    an_account_without_a_password_is_offered_no_password_stage,
);

const PASSWORD: &str = "/_matrix/client/v3/account/password";
const DEACTIVATE: &str = "/_matrix/client/v3/account/deactivate";

/// The first answer of user-interactive auth: 401 with the password flow and a new session,
/// without `completed` or an error (clients would show one as a failure).
fn assert_auth_required(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["flows"],
        json!([{"stages": ["m.login.password"]}]),
        "{body}"
    );
    assert_eq!(body["params"], json!({}));
    assert!(
        body.get("errcode").is_none() && body.get("completed").is_none(),
        "{body}"
    );
    let session = body["session"].as_str().unwrap().to_owned();
    assert!(session.len() >= 20, "a session ID that cannot be guessed");
    session
}

async fn a_password_change_asks_for_the_password_then_keeps_only_the_requesting_device(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("alice", "old-pw").await;
    let (token, device) = server.session_for("alice", "old-pw").await;
    let (other_token, _) = server.session_for("alice", "old-pw").await;

    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw"})),
        )
        .await;
    let session = assert_auth_required(status, &body);

    // A wrong password: 401 again in the same session, now with the error and `completed`.
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw", "auth": password_auth("alice", "wrong", Some(&session))})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["session"], json!(session));
    assert_eq!(body["completed"], json!([]));
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    assert_eq!(body["error"], "Invalid username or password");
    server
        .login("alice", "old-pw")
        .await
        .0
        .is_success()
        .then_some(())
        .unwrap();

    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw", "auth": password_auth("@alice:example.com", "old-pw", Some(&session))})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));

    // logout_devices defaults to true: every other device and token went, this one stayed.
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);
    let (status, body) = server.whoami(Some(&other_token)).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN"))
    );
    assert_eq!(server.device_ids("@alice:example.com").await, vec![device]);
    assert_eq!(
        server.login("alice", "old-pw").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(server.login("alice", "new-pw").await.0, StatusCode::OK);

    // The session is spent: it authorises nothing more.
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "third-pw", "auth": {"session": session}})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_UNKNOWN"))
    );
    assert_eq!(server.login("alice", "new-pw").await.0, StatusCode::OK);
}

async fn a_password_sent_before_the_auth_is_kept_and_logout_devices_false_keeps_every_device(
    db: TestDb,
) {
    let server = Server::start(db, "").await;
    server.create_user("bob", "old-pw").await;
    let (token, _) = server.session_for("bob", "old-pw").await;
    let (other_token, _) = server.session_for("bob", "old-pw").await;

    // The legacy prefix, `"auth": null` as matrix-js-sdk sends it, and the second request
    // without the new password or the flag: both come from the first request.
    let r0_password = "/_matrix/client/r0/account/password";
    let (status, body) = server
        .call(
            "POST",
            r0_password,
            Some(&token),
            Some(json!({"auth": null, "new_password": "new-pw", "logout_devices": false})),
        )
        .await;
    let session = assert_auth_required(status, &body);
    let (status, body) = server
        .call(
            "POST",
            r0_password,
            Some(&token),
            Some(json!({"auth": password_auth("bob", "old-pw", Some(&session))})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(server.whoami(Some(&other_token)).await.0, StatusCode::OK);
    assert_eq!(server.login("bob", "new-pw").await.0, StatusCode::OK);

    // In one request, without a session, as Element's settings page sends it.
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "third-pw", "logout_devices": false,
                        "auth": password_auth("bob", "new-pw", None)})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(server.login("bob", "third-pw").await.0, StatusCode::OK);
    assert_eq!(server.whoami(Some(&other_token)).await.0, StatusCode::OK);
}

async fn bad_new_passwords_are_refused_before_the_auth_and_change_nothing(db: TestDb) {
    let server = Server::start(
        db,
        &format!(
            "password_config:\n  pepper: {PEPPER}\n  policy:\n    enabled: true\n    \
             minimum_length: 10\n    require_digit: true\n"
        ),
    )
    .await;
    server.create_user("carol", "old-pw").await;
    let (token, _) = server.session_for("carol", "old-pw").await;
    let (other_token, _) = server.session_for("carol", "old-pw").await;
    let auth = password_auth("carol", "old-pw", None);

    let refusals = [
        (json!({"new_password": "short1"}), "M_PASSWORD_TOO_SHORT"),
        (
            json!({"new_password": "long-enough-no-digit", "auth": auth}),
            "M_PASSWORD_NO_DIGIT",
        ),
        (
            json!({"new_password": "x1".repeat(257), "auth": auth}),
            "M_BAD_JSON",
        ),
        (
            json!({"new_password": 12345678901_u64, "auth": auth}),
            "M_BAD_JSON",
        ),
        (
            json!({"new_password": "long-enough-1", "auth": "password"}),
            "M_BAD_JSON",
        ),
        (
            json!({"new_password": "long-enough-1", "logout_devices": "no", "auth": auth}),
            "M_BAD_JSON",
        ),
        // The auth is complete, but there is no new password, now or earlier in the session.
        (json!({"auth": auth}), "M_MISSING_PARAM"),
    ];
    for (body, errcode) in refusals {
        let (status, answer) = server
            .call("POST", PASSWORD, Some(&token), Some(body.clone()))
            .await;
        assert_eq!(
            (status, &answer["errcode"]),
            (StatusCode::BAD_REQUEST, &json!(errcode)),
            "{body}"
        );
        assert!(
            !answer.to_string().contains("x1x1x1"),
            "the password is not echoed"
        );
    }
    assert_eq!(server.login("carol", "old-pw").await.0, StatusCode::OK);
    assert_eq!(server.whoami(Some(&other_token)).await.0, StatusCode::OK);

    // No access token: 401 M_MISSING_TOKEN (homekey has no e-mail reset).
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            None,
            Some(json!({"new_password": "long-enough-1"})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_MISSING_TOKEN"))
    );
}

async fn sessions_are_bound_to_their_operation_and_their_user(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("dave", "dave-pw").await;
    server.create_user("erin", "erin-pw").await;
    let (token, _) = server.session_for("dave", "dave-pw").await;

    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw"})),
        )
        .await;
    let session = assert_auth_required(status, &body);

    // The password change's session cannot deactivate the account, nor can the same
    // operation under the other prefix use it.
    for path in [DEACTIVATE, "/_matrix/client/r0/account/password"] {
        let (status, body) = server
            .call(
                "POST",
                path,
                Some(&token),
                Some(json!({"new_password": "new-pw", "auth": password_auth("dave", "dave-pw", Some(&session))})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["errcode"], "M_UNKNOWN");
        assert_eq!(
            body["error"],
            "Requested operation has changed during the UI authentication session."
        );
    }

    // A stage naming another account is a wrong password, whether or not it is that
    // account's: no other account's password is checked (Synapse checks it, and answers a
    // right one 403 "Invalid auth", an oracle outside that account's login limits).
    for (named, password) in [
        ("erin", "erin-pw"),
        ("@erin:example.com", "erin-pw"),
        ("ERIN", "erin-pw"),
        ("erin", "not-erins"),
    ] {
        let (status, body) = server
            .call(
                "POST",
                PASSWORD,
                Some(&token),
                Some(json!({"new_password": "new-pw", "auth": password_auth(named, password, Some(&session))})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{named}: {body}");
        assert_eq!(body["errcode"], "M_FORBIDDEN", "{named}: {body}");
        assert_eq!(body["error"], "Invalid username or password", "{named}");
        assert_eq!(body["session"], json!(session));
        assert_eq!(body["completed"], json!([]));
    }
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw", "auth": password_auth("dave", "dave-pw", Some("no-such-session"))})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"], &body["error"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("M_UNKNOWN"),
            &json!("Unknown session ID: no-such-session")
        )
    );

    // A stage of a type homekey does not offer, or a password stage naming nobody.
    for auth in [
        json!({"type": "m.login.dummy", "session": session}),
        json!({"type": "m.login.password", "password": "dave-pw", "session": session}),
    ] {
        let (status, body) = server
            .call(
                "POST",
                PASSWORD,
                Some(&token),
                Some(json!({"new_password": "new-pw", "auth": auth})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    // A session created more than 48 hours ago has expired.
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw"})),
        )
        .await;
    let old_session = assert_auth_required(status, &body);
    raw_execute(
        &server.db.config,
        "UPDATE ui_auth_sessions SET creation_time = 0 WHERE session_id = $1",
        &[&old_session],
    )
    .await;
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "new-pw", "auth": password_auth("dave", "dave-pw", Some(&old_session))})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_UNKNOWN"))
    );

    // Nothing changed for either user, and the account is still active.
    assert_eq!(server.login("dave", "dave-pw").await.0, StatusCode::OK);
    assert_eq!(server.login("erin", "erin-pw").await.0, StatusCode::OK);
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);

    // dave's own name in another spelling is dave.
    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(&token),
            Some(json!({"new_password": "dave-new-pw", "logout_devices": false, "auth": password_auth("@DAVE:example.com", "dave-pw", Some(&session))})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.login("dave", "dave-new-pw").await.0, StatusCode::OK);
}

async fn deactivation_needs_the_password_and_ends_every_session(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("fay", "fay-pw").await;
    let (token, _) = server.session_for("fay", "fay-pw").await;
    let (other_token, _) = server.session_for("fay", "fay-pw").await;
    server
        .set_own_displayname(&token, "@fay:example.com", "Fay")
        .await;

    let (status, body) = server
        .call("POST", DEACTIVATE, Some(&token), Some(json!({})))
        .await;
    let session = assert_auth_required(status, &body);
    let (status, body) = server
        .call(
            "POST",
            DEACTIVATE,
            Some(&token),
            Some(json!({"auth": password_auth("fay", "not-it", Some(&session))})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_FORBIDDEN"))
    );
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);

    let (status, body) = server
        .call(
            "POST",
            DEACTIVATE,
            Some(&token),
            Some(json!({"auth": password_auth("fay", "fay-pw", Some(&session))})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );
    for token in [&token, &other_token] {
        assert_eq!(
            server.whoami(Some(token)).await.1["errcode"],
            "M_UNKNOWN_TOKEN"
        );
    }
    assert_eq!(server.login("fay", "fay-pw").await.0, StatusCode::FORBIDDEN);
    assert!(server.device_ids("@fay:example.com").await.is_empty());
    let user = server
        .store()
        .get_user("@fay:example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.deactivated && user.password_hash.is_none());
    // Without `erase` the display name stays, as in Synapse.
    let (status, body) = server
        .call(
            "GET",
            "/_matrix/client/v3/profile/@fay:example.com",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"displayname": "Fay"}))
    );

    // With `erase`, in one request, the profile goes too.
    server.create_user("gus", "gus-pw").await;
    let (token, _) = server.session_for("gus", "gus-pw").await;
    server
        .set_own_displayname(&token, "@gus:example.com", "Gus")
        .await;
    let (status, _) = server
        .call(
            "POST",
            DEACTIVATE,
            Some(&token),
            Some(json!({"erase": true, "auth": password_auth("gus", "gus-pw", None)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .call(
            "GET",
            "/_matrix/client/v3/profile/@gus:example.com",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::NOT_FOUND, &json!("M_NOT_FOUND"))
    );
}

async fn only_for_reauth_authenticates_with_the_password_but_refuses_the_change(db: TestDb) {
    let server = Server::start(
        db,
        &format!("password_config: {{pepper: {PEPPER}, enabled: only_for_reauth}}\n"),
    )
    .await;
    server.create_user("hal", "hal-pw").await;
    // Password login is off: the session comes from elsewhere (SSO, in a real deployment).
    let token = "syt_aGFs_test-token-for-hal_0000";
    server
        .store()
        .create_session(
            &NewSession {
                user_id: "@hal:example.com".into(),
                device_id: "HALDEVICE".into(),
                device_display_name: None,
                access_token: SecretString::from(token),
                valid_until_ms: None,
                now_ms: 0,
            },
            None,
        )
        .await
        .unwrap();
    let (status, body) = server
        .call("GET", "/_matrix/client/v3/capabilities", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["capabilities"]["m.change_password"]["enabled"],
        json!(false)
    );

    let (status, body) = server
        .call(
            "POST",
            PASSWORD,
            Some(token),
            Some(json!({"new_password": "new-pw", "auth": password_auth("hal", "hal-pw", None)})),
        )
        .await;
    assert_eq!(
        (status, &body["errcode"], &body["error"]),
        (
            StatusCode::FORBIDDEN,
            &json!("M_FORBIDDEN"),
            &json!("Password change disabled")
        )
    );
    let user = server
        .store()
        .get_user("@hal:example.com")
        .await
        .unwrap()
        .unwrap();
    let settings = homekey::password::HashSettings::new(
        homekey::config::HashScheme::Bcrypt,
        5,
        SecretString::from(PEPPER),
    );
    assert!(settings.verify(&SecretString::from("hal-pw"), user.password_hash.as_ref()));
}

/// Whether an account has a password is read with its token at every request: once its hash
/// is cleared by hand (NULL, or empty as some scripts leave it), the password stage is no
/// longer offered, and the session itself goes on working.
async fn an_account_without_a_password_is_offered_no_password_stage(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("gus", "gus-pw").await;
    let (token, _) = server.session_for("gus", "gus-pw").await;
    let (status, body) = server
        .call("POST", DEACTIVATE, Some(&token), Some(json!({})))
        .await;
    assert_auth_required(status, &body);

    for cleared in ["NULL", "''"] {
        raw_execute(
            &server.db.config,
            &format!("UPDATE users SET password_hash = {cleared} WHERE name = $1"),
            &["@gus:example.com"],
        )
        .await;
        let (status, body) = server
            .call("POST", DEACTIVATE, Some(&token), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["flows"], json!([]), "hash {cleared}: {body}");
        assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);
    }
}
