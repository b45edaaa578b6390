//! `homekey admin …` and homekey's `register_new_matrix_user` as processes against a running
//! homekey, on SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::{HOMEKEY, REGISTER_NEW_MATRIX_USER, TestDb, run_binary, stderr, stdout};

server_tests!(
    register_new_matrix_user_and_the_admin_commands_manage_users,
    admin_command_errors_name_the_problem_and_exit_with_its_code,
    admin_logout_user_ends_every_session_of_the_user,
);

const SHARED_SECRET: &str = "cli-admin-secret";

async fn register_new_matrix_user_and_the_admin_commands_manage_users(db: TestDb) {
    let server = Server::start(
        db,
        &format!("registration_shared_secret: {SHARED_SECRET}\n"),
    )
    .await;
    let url = server.base.clone();
    let out = run_binary(
        REGISTER_NEW_MATRIX_USER,
        &[
            "-u",
            "boss",
            "-p",
            "boss-pw",
            "--admin",
            "-k",
            SHARED_SECRET,
            &url,
        ],
        b"",
        &[],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "Sending registration request...\nSuccess!\n");
    // Again: taken, unless --exists-ok.
    let again = [
        "-u",
        "boss",
        "-p",
        "x",
        "--admin",
        "-k",
        SHARED_SECRET,
        &url,
    ];
    let out = run_binary(REGISTER_NEW_MATRIX_USER, &again, b"", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("User ID already taken."),
        "{}",
        stdout(&out)
    );
    let out = run_binary(
        REGISTER_NEW_MATRIX_USER,
        &[&again[..], &["--exists-ok"]].concat(),
        b"",
        &[],
    );
    assert_eq!(
        (
            out.status.code(),
            stdout(&out).contains("User already exists. Skipping.")
        ),
        (Some(0), true)
    );

    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().to_str().unwrap();
    let admin = |args: &[&str], stdin: &str| {
        run_binary(
            HOMEKEY,
            &[&["admin"], args].concat(),
            stdin.as_bytes(),
            &[("XDG_CONFIG_HOME", xdg)],
        )
    };
    let out = admin(
        &[
            "login",
            "--server",
            &url,
            "--user",
            "boss",
            "--password-stdin",
        ],
        "boss-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // boss is the only admin: the client refuses to take boss away (so would the server).
    for command in [&["set-admin", "boss", "false"][..], &["deactivate", "boss"]] {
        let out = admin(command, "");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("last server admin"),
            "{}",
            stderr(&out)
        );
    }
    let out = admin(&["set-admin", "boss", "false", "--force"], "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "homekey's server refuses even with --force"
    );
    assert!(stderr(&out).contains("M_UNKNOWN"), "{}", stderr(&out));
    assert!(
        server
            .store()
            .get_user("@boss:example.com")
            .await
            .unwrap()
            .unwrap()
            .admin
    );

    let out = admin(
        &[
            "user",
            "create",
            "carol",
            "--displayname",
            "Carol",
            "--password-stdin",
        ],
        "carol-pw\n",
    );
    assert_eq!(
        stdout(&out),
        "created @carol:example.com\n",
        "{}",
        stderr(&out)
    );
    let out = admin(&["user", "create", "carol", "--password-stdin"], "x\n");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an existing user is not changed"
    );
    assert!(server.has_password("@carol:example.com", "carol-pw").await);
    let (carol_token, _) = server.session_for("carol", "carol-pw").await;

    let out = admin(
        &[
            "reset-password",
            "carol",
            "--keep-devices",
            "--password-stdin",
        ],
        "second-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.whoami(Some(&carol_token)).await.0, StatusCode::OK);
    let out = admin(
        &["reset-password", "@carol:example.com", "--password-stdin"],
        "third-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.whoami(Some(&carol_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(server.has_password("@carol:example.com", "third-pw").await);

    let out = admin(&["set-admin", "carol", "true"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = admin(&["user", "show", "carol", "--json"], "");
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (shown["admin"].clone(), shown["displayname"].clone()),
        (true.into(), "Carol".into())
    );
    let out = admin(&["user", "list", "--admins"], "");
    assert!(
        stdout(&out).contains("@carol:example.com") && stdout(&out).ends_with("2 users\n"),
        "{}",
        stdout(&out)
    );
    let out = admin(&["devices", "boss"], "");
    // Registration logged boss in once, `admin login` once more.
    let devices = stdout(&out);
    assert_eq!(devices.lines().count(), 2, "{devices}");
    assert!(devices.contains("homekey admin"), "{devices}");
    let out = admin(&["whois", "boss"], "");
    assert!(
        stdout(&out).contains("\"user_id\": \"@boss:example.com\""),
        "{}",
        stdout(&out)
    );
    let out = admin(&["deactivate", "carol"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        server
            .store()
            .get_user("@carol:example.com")
            .await
            .unwrap()
            .unwrap()
            .deactivated
    );
    let out = admin(&["server-version"], "");
    assert!(stdout(&out).starts_with("homekey "), "{}", stdout(&out));

    // The audit log names the admin for each change.
    let records = server
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert!(
        actions.contains(&("@boss:example.com", "deactivate")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("@boss:example.com", "reset_password")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("shared-secret registration", "create_user")),
        "{actions:?}"
    );

    let out = admin(&["logout"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = admin(&["--server", &url, "server-version"], "");
    assert!(out.status.success(), "the version needs no token");
    let out = admin(&["--server", &url, "user", "list"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("M_MISSING_TOKEN"), "{}", stderr(&out));
}

async fn admin_command_errors_name_the_problem_and_exit_with_its_code(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("dave", "dave-pw").await;
    let token = server.token_for("dave", "dave-pw").await;
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().to_str().unwrap();
    let run = |args: &[&str]| run_binary(HOMEKEY, args, b"", &[("XDG_CONFIG_HOME", xdg)]);

    // Not an admin: the server's errcode and a hint, exit 1, never the token.
    let out = run(&[
        "admin",
        "--server",
        &server.base,
        "--token",
        &token,
        "user",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("M_FORBIDDEN") && err.contains("hint"), "{err}");
    assert!(!err.contains(&token));
    // A localpart without a saved session: which server is unknown.
    let out = run(&[
        "admin",
        "--server",
        &server.base,
        "--token",
        &token,
        "whois",
        "dave",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // No server at all.
    let out = run(&["admin", "server-version"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    // Nobody listening there.
    let out = run(&["admin", "--server", "http://127.0.0.1:9", "server-version"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // A wrong password at login: exit 1, nothing saved.
    let out = run_binary(
        HOMEKEY,
        &[
            "admin",
            "login",
            "--server",
            &server.base,
            "--user",
            "dave",
            "--password-stdin",
        ],
        b"wrong\n",
        &[("XDG_CONFIG_HOME", xdg)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("M_FORBIDDEN"), "{}", stderr(&out));
    assert!(!home.path().join("homekey/admin-session.json").exists());
}

async fn admin_logout_user_ends_every_session_of_the_user(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin_token = server.admin_token("boss", "boss-pw").await;
    server.create_user("erin", "erin-pw").await;
    let (phone, _) = server.session_for("erin", "erin-pw").await;
    let (laptop, _) = server.session_for("erin", "erin-pw").await;
    server.create_user("frank", "frank-pw").await;
    let frank = server.token_for("frank", "frank-pw").await;
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().to_str().unwrap();
    let admin = |token: &str, args: &[&str]| {
        run_binary(
            HOMEKEY,
            &[&["admin", "--server", &server.base, "--token", token], args].concat(),
            b"",
            &[("XDG_CONFIG_HOME", xdg)],
        )
    };

    // A token an admin got to act as erin has no device: delete_devices leaves it (Synapse
    // too), as the help says.
    let (status, body) = server
        .call(
            "POST",
            "/_synapse/admin/v1/users/@erin:example.com/login",
            Some(&admin_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let puppet = body["access_token"].as_str().unwrap().to_owned();
    let out = admin(&admin_token, &["logout", "@erin:example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "@erin:example.com logged out everywhere: 2 devices deleted\n"
    );
    for token in [&phone, &laptop] {
        let (status, body) = server.whoami(Some(token)).await;
        assert_eq!(
            (status, body["errcode"].clone()),
            (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
        );
    }
    assert!(server.device_ids("@erin:example.com").await.is_empty());
    assert_eq!(server.whoami(Some(&puppet)).await.0, StatusCode::OK);
    // Nobody else: not the admin, not another user.
    assert_eq!(server.whoami(Some(&admin_token)).await.0, StatusCode::OK);
    assert_eq!(server.whoami(Some(&frank)).await.0, StatusCode::OK);
    // The password still works: a new login is a new session.
    server.session_for("erin", "erin-pw").await;
    let out = admin(&admin_token, &["logout", "@erin:example.com"]);
    assert_eq!(
        stdout(&out),
        "@erin:example.com logged out everywhere: 1 device deleted\n"
    );
    let out = admin(&admin_token, &["logout", "@erin:example.com"]);
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (
            Some(0),
            "@erin:example.com logged out everywhere: 0 devices deleted\n".into()
        )
    );

    // Refused: an unknown user, a token that is not an admin's (exit 1, the errcode, one
    // line); a localpart with no saved session to name the server (exit 2); no server (3).
    let out = admin(&admin_token, &["logout", "@nobody:example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("M_NOT_FOUND"), "{}", stderr(&out));
    let out = admin(&frank, &["logout", "@boss:example.com"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("M_FORBIDDEN") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains(&frank), "{err}");
    assert_eq!(server.whoami(Some(&admin_token)).await.0, StatusCode::OK);
    let out = admin(&admin_token, &["logout", "erin"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run_binary(
        HOMEKEY,
        &[
            "admin",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            &admin_token,
            "logout",
            "@erin:example.com",
        ],
        b"",
        &[("XDG_CONFIG_HOME", xdg)],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
