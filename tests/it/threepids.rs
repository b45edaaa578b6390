//! E-mail addresses on accounts (Synapse's `user_threepids`): the Admin API's `threepids`
//! and its look-up by address, `homekey user email …` as a process, and, beside the real
//! Synapse, the addresses carried to Synapse. SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{PEPPER, Server, server_tests};
use crate::support::{HOMEKEY, TestDb, run_binary, stderr, stdout, write_config};

server_tests!(
    the_admin_api_sets_lists_and_finds_email_addresses,
    an_address_another_account_has_is_refused_and_nothing_changes,
    homekey_user_email_adds_lists_and_removes_addresses,
    a_login_by_email_address_works_and_an_unknown_one_is_a_wrong_password,
);

const ALICE: &str = "@alice:example.com";

fn user_path(user: &str) -> String {
    format!("/_synapse/admin/v2/users/{user}")
}

fn emails(user: &Value) -> Vec<&str> {
    user["threepids"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["medium"] == "email")
        .map(|t| t["address"].as_str().unwrap())
        .collect()
}

async fn lookup(server: &Server, token: &str, address: &str) -> (StatusCode, Value) {
    server
        .call(
            "GET",
            &format!("/_synapse/admin/v1/threepid/email/users/{address}"),
            Some(token),
            None,
        )
        .await
}

async fn the_admin_api_sets_lists_and_finds_email_addresses(db: TestDb) {
    let server = Server::start(db, "").await;
    let root = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;

    let body = json!({"threepids": [
        {"medium": "email", "address": " Alice.Smith@Example.COM "},
        {"medium": "email", "address": "alice@work.example"},
    ]});
    let (status, user) = server
        .call("PUT", &user_path(ALICE), Some(&root), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(
        emails(&user),
        ["alice.smith@example.com", "alice@work.example"]
    );
    let first = &user["threepids"][0];
    assert!(
        first["added_at"].as_i64().unwrap() > 1_700_000_000_000,
        "{first}"
    );
    assert_eq!(first["validated_at"], first["added_at"]);
    let (_, shown) = server
        .call("GET", &user_path(ALICE), Some(&root), None)
        .await;
    assert_eq!(shown["threepids"], user["threepids"]);

    // Found by its address, whatever its case.
    for address in ["alice.smith@example.com", "ALICE.SMITH@example.com"] {
        let (status, found) = lookup(&server, &root, address).await;
        assert_eq!(
            (status, &found),
            (StatusCode::OK, &json!({"user_id": ALICE}))
        );
    }
    let (status, body) = lookup(&server, &root, "nobody@example.com").await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::NOT_FOUND, &json!("M_NOT_FOUND"))
    );
    let alice = server.token_for("alice", "alice-pw").await;
    let (status, _) = lookup(&server, &alice, "alice@work.example").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins only");

    // The set replaces the account's; a new account gets its own.
    let body = json!({"threepids": [{"medium": "email", "address": "alice@work.example"}]});
    let (_, user) = server
        .call("PUT", &user_path(ALICE), Some(&root), Some(body))
        .await;
    assert_eq!(emails(&user), ["alice@work.example"]);
    assert_eq!(
        lookup(&server, &root, "alice.smith@example.com").await.0,
        StatusCode::NOT_FOUND
    );
    let body = json!({"password": "bob-pw", "threepids": [{"medium": "email", "address": "bob@example.com"}]});
    let (status, bob) = server
        .call(
            "PUT",
            &user_path("@bob:example.com"),
            Some(&root),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    assert_eq!(emails(&bob), ["bob@example.com"]);

    // Bad ones are refused with Synapse's words.
    for (threepid, errcode, message) in [
        (
            json!({"medium": "fax", "address": "1"}),
            "M_INVALID_PARAM",
            "'fax' is not a valid value for 'medium'",
        ),
        (
            json!({"medium": "email", "address": "not-an-address"}),
            "M_INVALID_PARAM",
            "Unable to parse email address",
        ),
        (
            json!({"medium": "email"}),
            "M_MISSING_PARAM",
            "Missing params: ['address']",
        ),
    ] {
        let body = json!({"threepids": [threepid]});
        let (status, answer) = server
            .call("PUT", &user_path(ALICE), Some(&root), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["errcode"], errcode, "{answer}");
        assert_eq!(answer["error"], message, "{answer}");
    }

    // A deactivated account keeps none, as in Synapse.
    let (status, _) = server
        .call(
            "POST",
            &format!("/_synapse/admin/v1/deactivate/{ALICE}"),
            Some(&root),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        lookup(&server, &root, "alice@work.example").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, shown) = server
        .call("GET", &user_path(ALICE), Some(&root), None)
        .await;
    assert_eq!(shown["threepids"], json!([]));
}

async fn an_address_another_account_has_is_refused_and_nothing_changes(db: TestDb) {
    let server = Server::start(db, "").await;
    let root = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let body = json!({"threepids": [{"medium": "email", "address": "shared@example.com"}]});
    let (status, _) = server
        .call("PUT", &user_path(ALICE), Some(&root), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Bob's change asks for alice's address beside a new display name: neither lands.
    let (_, bob_before) = server
        .call("GET", &user_path("@bob:example.com"), Some(&root), None)
        .await;
    let body = json!({
        "displayname": "Bobby",
        "threepids": [{"medium": "email", "address": "SHARED@example.com"}],
    });
    let (status, answer) = server
        .call(
            "PUT",
            &user_path("@bob:example.com"),
            Some(&root),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["errcode"], "M_THREEPID_IN_USE", "{answer}");
    let (_, bob) = server
        .call("GET", &user_path("@bob:example.com"), Some(&root), None)
        .await;
    assert_eq!(bob, bob_before);
    assert_eq!(bob["threepids"], json!([]));
    // Nor does a new account with it exist.
    let body = json!({"threepids": [{"medium": "email", "address": "shared@example.com"}]});
    let (status, _) = server
        .call(
            "PUT",
            &user_path("@carol:example.com"),
            Some(&root),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .call("GET", &user_path("@carol:example.com"), Some(&root), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, found) = lookup(&server, &root, "shared@example.com").await;
    assert_eq!(found["user_id"], ALICE);
}

async fn homekey_user_email_adds_lists_and_removes_addresses(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("server_name: example.com\npassword_config:\n  pepper: {PEPPER}\n"),
    );
    let database = crate::one_account_service::database_url(&server);
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-c", config.to_str().unwrap(), "--database", &database]);
        run_binary(HOMEKEY, &all, b"", &[("USER", "tester")])
    };
    let out = run(&["user", "email", "add", "alice", "Alice@Example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "added alice@example.com to @alice:example.com\n"
    );
    let out = run(&["user", "email", "add", "alice", "alice@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("already has alice@example.com"),
        "{}",
        stdout(&out)
    );
    run(&["user", "email", "add", "alice", "second@example.com"]);
    let out = run(&["user", "email", "list", "alice"]);
    assert_eq!(stdout(&out), "alice@example.com\nsecond@example.com\n");
    let out = run(&["user", "show", "alice"]);
    assert!(
        stdout(&out).contains("e-mail        alice@example.com, second@example.com"),
        "{}",
        stdout(&out)
    );
    let out = run(&["user", "show", "alice", "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        shown["emails"],
        json!(["alice@example.com", "second@example.com"])
    );

    // Refusals: one line, exit 1, nothing changed.
    for (args, needle) in [
        (
            vec!["user", "email", "add", "bob", "ALICE@example.com"],
            "alice@example.com is already in use: it belongs to another account",
        ),
        (
            vec!["user", "email", "add", "bob", "not an address"],
            "Unable to parse email address",
        ),
        (
            vec!["user", "email", "remove", "bob", "alice@example.com"],
            "@bob:example.com has no e-mail address alice@example.com",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    }
    assert_eq!(stdout(&run(&["user", "email", "list", "bob"])), "");

    let out = run(&["user", "email", "remove", "alice", "SECOND@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&run(&["user", "email", "list", "alice"])),
        "alice@example.com\n"
    );
    let records = server
        .db
        .count("SELECT COUNT(*) FROM homekey_audit_log WHERE action IN ('add_email', 'remove_email') AND target = $1", ALICE)
        .await;
    assert_eq!(records, 3);
}

/// Beside the real Synapse, an account's addresses reach Synapse (its Admin API lists them),
/// and their removal too.
#[tokio::test]
async fn beside_the_real_synapse_email_addresses_are_carried_to_synapse() {
    let test = "beside_the_real_synapse_email_addresses_are_carried_to_synapse";
    let Some(venv) = crate::support::synapse_venv(test) else {
        return;
    };
    let (synapse, homekey) = crate::synapse_delegation::synapse_beside_homekey(venv).await;
    let root = homekey.admin_token("root", "root-pw").await;
    homekey.create_user("alice", "alice-pw").await;
    let set = |addresses: &[&str]| json!({"threepids": addresses.iter().map(|a| json!({"medium": "email", "address": a})).collect::<Vec<_>>()});
    let (status, body) = homekey
        .call(
            "PUT",
            &user_path(ALICE),
            Some(&root),
            Some(set(&["alice@example.com", "a2@example.com"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let in_synapse = || async {
        let (status, user) = synapse.get(&user_path(ALICE), &root).await;
        assert_eq!(status, StatusCode::OK, "{user}\n{}", synapse.log_tail());
        let mut emails: Vec<String> = emails(&user).into_iter().map(str::to_owned).collect();
        emails.sort();
        emails
    };
    assert_eq!(in_synapse().await, ["a2@example.com", "alice@example.com"]);
    let (status, _) = homekey
        .call("PUT", &user_path(ALICE), Some(&root), Some(set(&[])))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(in_synapse().await.is_empty());
}

async fn a_login_by_email_address_works_and_an_unknown_one_is_a_wrong_password(db: TestDb) {
    let server = Server::start(db, "").await;
    let root = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    let body = json!({"threepids": [{"medium": "email", "address": "alice@example.com"}]});
    let (status, _) = server
        .call("PUT", &user_path(ALICE), Some(&root), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    let login = |body: Value| {
        let server = &server;
        async move {
            server
                .call("POST", "/_matrix/client/v3/login", None, Some(body))
                .await
        }
    };
    let by_email = |address: &str, password: &str| {
        json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": address},
            "password": password,
        })
    };
    // The address in any case; and the deprecated top-level medium and address.
    let (status, body) = login(by_email(" ALICE@Example.com", "alice-pw")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], ALICE);
    let legacy = json!({"type": "m.login.password", "medium": "email",
                        "address": "alice@example.com", "password": "alice-pw"});
    let (status, body) = login(legacy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], ALICE);

    // A wrong password, an address no account has and a medium homekey keeps none of are
    // one answer.
    let wrong = login(by_email("alice@example.com", "guess")).await;
    assert_eq!(wrong.0, StatusCode::FORBIDDEN, "{}", wrong.1);
    assert_eq!(wrong.1["errcode"], "M_FORBIDDEN");
    assert_eq!(wrong.1["error"], "Invalid username or password");
    assert_eq!(
        login(by_email("nobody@example.com", "alice-pw")).await,
        wrong
    );
    let fax = json!({"type": "m.login.password", "password": "alice-pw",
                     "identifier": {"type": "m.id.thirdparty", "medium": "fax", "address": "1"}});
    assert_eq!(login(fax).await, wrong);

    // Malformed: Synapse's 400s.
    let (status, body) = login(by_email("not-an-address", "alice-pw")).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::BAD_REQUEST, &json!("M_UNKNOWN"))
    );
    assert_eq!(body["error"], "Unable to parse email address");
    let half = json!({"type": "m.login.password", "password": "alice-pw",
                      "identifier": {"type": "m.id.thirdparty", "medium": "email"}});
    let (status, body) = login(half).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "Invalid thirdparty identifier");
}
