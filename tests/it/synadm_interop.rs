//! synadm, the admin CLI operators use on Synapse (from `$HOMEKEY_TEST_SYNADM`, a venv with
//! synadm 0.49.2; `.ci/run` makes one), as a process against `homekey serve`, with a config
//! file of its own and a token from a login to homekey: the commands an operator uses for
//! users and sessions, each effect checked through the client API, and the moderation
//! commands (erasure, shadow-ban, suspension), each checked through the Admin API's view of
//! the user and the audit log. synadm often prints the
//! server's error and still exits 0, and logs what went wrong on stderr: every step checks
//! the output and that stderr is empty, not only the exit code. synadm talks to 127.0.0.1
//! only (no proxy).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::{TestDb, stderr, stdout, synadm_venv};

server_tests!(
    synadm_manages_users_and_sessions_on_homekey,
    synadm_erases_shadow_bans_and_suspends_on_homekey,
    synadm_manages_registration_tokens_on_homekey,
);

/// synadm with its YAML config (in a temporary home, where it also keeps its debug log).
pub(crate) struct Synadm {
    program: PathBuf,
    home: tempfile::TempDir,
    config: PathBuf,
}

impl Synadm {
    /// `homeserver: auto-retrieval` is synadm's default: it learns the server name from
    /// `/_matrix/key/v2/server` to complete a bare localpart.
    pub(crate) fn new(venv: &Path, base_url: &str, admin: &str, token: &str) -> Synadm {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("synadm.yaml");
        std::fs::write(
            &config,
            format!(
                "user: {admin}\ntoken: {token}\nbase_url: {base_url}\nadmin_path: /_synapse/admin\n\
                 matrix_path: /_matrix\ntimeout: 30\nhomeserver: auto-retrieval\n\
                 server_discovery: well-known\nssl_verify: true\nformat: json\n"
            ),
        )
        .unwrap();
        Synadm {
            program: venv.join("bin/synadm"),
            home,
            config,
        }
    }

    /// `synadm -c CONFIG --batch -o minified ARGS…`: no prompts, one JSON value per output.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.program);
        command
            .arg("-c")
            .arg(&self.config)
            .args(["--batch", "-o", "minified"])
            .args(args)
            .env("HOME", self.home.path())
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null());
        for var in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command.output().unwrap()
    }

    /// Runs a command that must succeed: exit 0, nothing on stderr (synadm logs a failed
    /// request there even when it exits 0), and returns the last line of stdout as JSON
    /// (the answer; `modify` and `deactivate` print the user's details before it).
    pub(crate) fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        let (stdout, stderr) = (stdout(&out), stderr(&out));
        assert!(
            out.status.success() && stderr.is_empty(),
            "synadm {args:?}: exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status.code()
        );
        last_json(&stdout).unwrap_or_else(|| panic!("synadm {args:?}: no JSON in {stdout:?}"))
    }
}

fn last_json(stdout: &str) -> Option<Value> {
    serde_json::from_str(stdout.lines().rev().find(|l| !l.trim().is_empty())?).ok()
}

fn names(listing: &Value) -> Vec<&str> {
    listing["users"]
        .as_array()
        .unwrap_or_else(|| panic!("not a listing: {listing}"))
        .iter()
        .map(|user| user["name"].as_str().unwrap())
        .collect()
}

fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("")
}

async fn synadm_manages_users_and_sessions_on_homekey(db: TestDb) {
    let test = "synadm_manages_users_and_sessions_on_homekey";
    let Some(venv) = synadm_venv(test) else {
        return;
    };
    let server = Server::start(db, "").await;
    let token = server.admin_token("root", "root-pw").await;
    let synadm = Synadm::new(&venv, &server.base, "root", &token);
    server.create_user("alice", "alice-pw").await;
    server.create_user("gone", "gone-pw").await;
    server
        .store()
        .deactivate(
            "@gone:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    let (alice, bot, gone, root) = (
        "@alice:example.com",
        "@robot:example.com",
        "@gone:example.com",
        "@root:example.com",
    );

    // Creating a user: synadm first shows the user (404, which it logs, as on Synapse).
    let out = synadm.run(&[
        "user",
        "modify",
        "robot",
        "--user-type",
        "bot",
        "-P",
        "bot-pw",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "WARNING Synapse returned status code 404\n",
        "{}",
        stdout(&out)
    );
    let created = last_json(&stdout(&out)).unwrap();
    assert_eq!(
        (created["name"].clone(), created["user_type"].clone()),
        (json!(bot), json!("bot"))
    );
    let bot_token = server.token_for("robot", "bot-pw").await;

    // The listings: deactivated users only with -d, bots left out with --exclude-user-type.
    let listing = synadm.ok(&["user", "list"]);
    assert_eq!(names(&listing), [alice, bot, root]);
    assert_eq!(listing["total"], 3);
    let root_seen = listing["users"][2]["last_seen_ts"].as_i64();
    assert!(root_seen.is_some(), "root logged in: {listing}");
    assert_eq!(listing["users"][0]["last_seen_ts"], Value::Null);
    let listing = synadm.ok(&["user", "list", "--exclude-user-type", "bot"]);
    assert_eq!(names(&listing), [alice, root]);
    let listing = synadm.ok(&["user", "list", "--exclude-user-type", ""]);
    assert_eq!(names(&listing), [bot]);
    let listing = synadm.ok(&["user", "list", "-d"]);
    assert_eq!(names(&listing), [alice, gone, bot, root]);
    let listing = synadm.ok(&["user", "list", "-a"]);
    assert_eq!(names(&listing), [root]);
    let listing = synadm.ok(&["user", "list", "-A", "-n", "ali"]);
    assert_eq!(names(&listing), [alice]);

    // A bare localpart: synadm learns the server name from homekey.
    let details = synadm.ok(&["user", "details", "alice"]);
    assert_eq!(
        (details["name"].clone(), details["admin"].clone()),
        (json!(alice), json!(false))
    );
    // An unknown user: synadm shows the error and exits 0.
    let out = synadm.run(&["user", "details", "nobody"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        errcode(&last_json(&stdout(&out)).unwrap()),
        "M_NOT_FOUND",
        "{}",
        stdout(&out)
    );

    // Sessions: whois shows both of alice's devices, details their latest last_seen.
    let (phone, _) = server.session_for("alice", "alice-pw").await;
    let (laptop, _) = server.session_for("alice", "alice-pw").await;
    let whois = synadm.ok(&["user", "whois", "alice"]);
    assert_eq!(whois["user_id"], alice);
    let connections = whois["devices"][""]["sessions"][0]["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{whois}"))
        .clone();
    assert_eq!(connections.len(), 2, "{whois}");
    let latest = connections
        .iter()
        .filter_map(|c| c["last_seen"].as_i64())
        .max();
    let details = synadm.ok(&["user", "details", "alice"]);
    assert_eq!(details["last_seen_ts"].as_i64(), latest, "{details}");

    // user password -n: a new password, the sessions stay.
    assert_eq!(
        synadm.ok(&["user", "password", "alice", "-n", "-p", "second-pw"]),
        json!({})
    );
    assert_eq!(server.whoami(Some(&phone)).await.0, StatusCode::OK);
    let (third, _) = server.session_for("alice", "second-pw").await;
    // user password: every session ends; only the new password logs in.
    assert_eq!(
        synadm.ok(&["user", "password", "alice", "-p", "third-pw"]),
        json!({})
    );
    for token in [&phone, &laptop, &third] {
        let (status, body) = server.whoami(Some(token)).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
        );
    }
    assert_eq!(
        server.login("alice", "second-pw").await.0,
        StatusCode::FORBIDDEN
    );
    let alice_token = server.token_for("alice", "third-pw").await;
    let details = synadm.ok(&["user", "details", alice]);
    assert!(details["last_seen_ts"].as_i64() > latest, "{details}");

    // user login: a token that acts as alice.
    let login = synadm.ok(&["user", "login", "alice"]);
    let puppet = login["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"));
    let (status, body) = server.whoami(Some(puppet)).await;
    assert_eq!(
        (status, body["user_id"].clone()),
        (StatusCode::OK, json!(alice))
    );

    // user modify: the admin flag, then the lock, each seen by alice's own token.
    let admin_listing = "/_synapse/admin/v2/users";
    let modified = synadm.ok(&["user", "modify", "alice", "--admin"]);
    assert_eq!(modified["admin"], true, "{modified}");
    let (status, _) = server
        .call("GET", admin_listing, Some(&alice_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let modified = synadm.ok(&["user", "modify", "alice", "--no-admin"]);
    assert_eq!(modified["admin"], false, "{modified}");
    let (status, body) = server
        .call("GET", admin_listing, Some(&alice_token), None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let modified = synadm.ok(&["user", "modify", "alice", "--lock"]);
    assert_eq!(modified["locked"], true, "{modified}");
    let (status, body) = server.whoami(Some(&alice_token)).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_USER_LOCKED")
    );
    // A locked user is listed only with -L.
    assert_eq!(names(&synadm.ok(&["user", "list"])), [bot, root]);
    assert_eq!(
        names(&synadm.ok(&["user", "list", "-L"])),
        [alice, bot, root]
    );
    let modified = synadm.ok(&["user", "modify", "alice", "--unlock"]);
    assert_eq!(modified["locked"], false, "{modified}");
    assert_eq!(server.whoami(Some(&alice_token)).await.0, StatusCode::OK);

    // user deactivate: synadm shows the user and its rooms first, then deactivates.
    let out = synadm.run(&["user", "deactivate", "robot"]);
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(
        out.status.success() && err_text.is_empty(),
        "{out_text}{err_text}"
    );
    assert!(
        out_text.contains(r#"{"joined_rooms":[],"total":0}"#),
        "{out_text}"
    );
    assert_eq!(
        last_json(&out_text),
        Some(json!({"id_server_unbind_result": "success"}))
    );
    let (status, body) = server.whoami(Some(&bot_token)).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );
    assert_eq!(
        server.login("robot", "bot-pw").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(names(&synadm.ok(&["user", "list"])), [alice, root]);

    // The admin's own session was never touched.
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);
    assert!(!server.log().contains("bot-pw") && !server.log().contains("third-pw"));
}

/// A user as the Admin API's `GET v2/users/<id>` shows it.
async fn shown(server: &Server, token: &str, user_id: &str) -> Value {
    let (status, body) = server
        .call(
            "GET",
            &format!("/_synapse/admin/v2/users/{user_id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The audit log's actions about `user_id`, oldest first.
async fn audited_actions(server: &Server, user_id: &str) -> Vec<String> {
    let mut records = server
        .store()
        .list_audit(&homekey::store::AuditFilter {
            target: Some(user_id.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    records.reverse();
    records
        .into_iter()
        .inspect(|r| assert_eq!(r.actor, "@root:example.com"))
        .map(|r| r.action)
        .collect()
}

async fn synadm_erases_shadow_bans_and_suspends_on_homekey(db: TestDb) {
    let test = "synadm_erases_shadow_bans_and_suspends_on_homekey";
    let Some(venv) = synadm_venv(test) else {
        return;
    };
    let server = Server::start(db, "").await;
    let token = server.admin_token("root", "root-pw").await;
    let synadm = Synadm::new(&venv, &server.base, "root", &token);
    server.create_user("alice", "alice-pw").await;
    server.create_user("eve", "eve-pw").await;
    let (alice, eve) = ("@alice:example.com", "@eve:example.com");
    let alice_token = server.token_for("alice", "alice-pw").await;
    server
        .set_own_displayname(&alice_token, alice, "Alice")
        .await;
    // user shadow-ban, then its undo (-u): `{}` each time, the flag seen through the API.
    assert_eq!(synadm.ok(&["user", "shadow-ban", "eve"]), json!({}));
    assert_eq!(shown(&server, &token, eve).await["shadow_banned"], true);
    assert_eq!(synadm.ok(&["user", "shadow-ban", "-u", "eve"]), json!({}));
    assert_eq!(shown(&server, &token, eve).await["shadow_banned"], false);

    // user suspend, then --unsuspend. (synadm's `-U` is the off switch of `--unsuspend`,
    // so it suspends, despite its help text.)
    assert_eq!(
        synadm.ok(&["user", "suspend", "eve"]),
        json!({"user_@eve:example.com_suspended": true})
    );
    assert_eq!(shown(&server, &token, eve).await["suspended"], true);
    assert_eq!(
        synadm.ok(&["user", "suspend", "--unsuspend", "eve"]),
        json!({"user_@eve:example.com_suspended": false})
    );
    assert_eq!(shown(&server, &token, eve).await["suspended"], false);
    assert_eq!(
        audited_actions(&server, eve).await,
        ["shadow_ban", "unshadow_ban", "suspend", "unsuspend"]
    );

    // user deactivate --gdpr-erase: synadm shows the user (not erased yet) first.
    let out = synadm.run(&["user", "deactivate", "--gdpr-erase", "alice"]);
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(
        out.status.success() && err_text.is_empty(),
        "{out_text}{err_text}"
    );
    assert!(out_text.contains(r#""erased":false"#), "{out_text}");
    assert_eq!(
        last_json(&out_text),
        Some(json!({"id_server_unbind_result": "success"}))
    );
    let erased = synadm.ok(&["user", "details", "alice"]);
    assert_eq!(
        (
            &erased["erased"],
            &erased["deactivated"],
            &erased["displayname"]
        ),
        (&json!(true), &json!(true), &Value::Null),
        "{erased}"
    );
    let listing = synadm.ok(&["user", "list", "-d"]);
    let listed = listing["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == alice)
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(listed["erased"], true, "{listing}");
    let (status, body) = server.whoami(Some(&alice_token)).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );
    // Reactivated (synadm's `user modify --activate` needs a password): not erased any more.
    let modified = synadm.ok(&["user", "modify", "alice", "--activate", "-P", "back-pw"]);
    assert_eq!(
        (&modified["deactivated"], &modified["erased"]),
        (&json!(false), &json!(false)),
        "{modified}"
    );
    assert_eq!(
        audited_actions(&server, alice).await,
        ["deactivate", "modify_user"]
    );
    assert!(!server.log().contains("back-pw"));
}

/// `synadm regtok list/new/details/update/delete` against homekey: each answer is Synapse's
/// shape, and each change is seen through the Admin API.
async fn synadm_manages_registration_tokens_on_homekey(db: TestDb) {
    let test = "synadm_manages_registration_tokens_on_homekey";
    let Some(venv) = synadm_venv(test) else {
        return;
    };
    let server = Server::start(db, "").await;
    let token = server.admin_token("root", "root-pw").await;
    let synadm = Synadm::new(&venv, &server.base, "root", &token);
    let tokens = "/_synapse/admin/v1/registration_tokens";

    let made = synadm.ok(&["regtok", "new", "--token", "invite", "--uses-allowed", "3"]);
    assert_eq!(
        made,
        json!({"token": "invite", "uses_allowed": 3, "pending": 0, "completed": 0, "expiry_time": null})
    );
    // synadm's default: a random token of 16.
    let random = synadm.ok(&["regtok", "new", "--length", "20"]);
    assert_eq!(random["token"].as_str().unwrap().len(), 20, "{random}");
    let listed = synadm.ok(&["regtok", "list", "--ts"]);
    assert_eq!(
        listed["registration_tokens"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    let details = synadm.ok(&["regtok", "details", "invite", "--ts"]);
    assert_eq!(details["uses_allowed"], 3);
    let expiry = homekey::accounts::now_ms() + 86_400_000;
    let updated = synadm.ok(&[
        "regtok",
        "update",
        "invite",
        "--uses-allowed",
        "0",
        "--expiry-ts",
        &expiry.to_string(),
    ]);
    assert_eq!(
        (&updated["uses_allowed"], &updated["expiry_time"]),
        (&json!(0), &json!(expiry))
    );
    let invalid = synadm.ok(&["regtok", "list", "--invalid", "--ts"]);
    assert_eq!(
        invalid["registration_tokens"][0]["token"], "invite",
        "{invalid}"
    );
    // -1: no limit and no expiry, as synadm spells null.
    let updated = synadm.ok(&["regtok", "update", "invite", "-u", "-1", "-t", "-1"]);
    assert_eq!(
        (&updated["uses_allowed"], &updated["expiry_time"]),
        (&Value::Null, &Value::Null)
    );
    let (status, body) = server
        .call("GET", &format!("{tokens}/invite"), Some(&token), None)
        .await;
    assert_eq!(
        (status, &body["uses_allowed"]),
        (StatusCode::OK, &Value::Null)
    );

    let out = synadm.run(&["regtok", "delete", "invite"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Registration token successfully deleted."),
        "{}",
        stdout(&out)
    );
    let (status, body) = server
        .call("GET", &format!("{tokens}/invite"), Some(&token), None)
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
}
