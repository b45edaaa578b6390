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
    the_sign_in_pages_take_an_email_address_and_an_unknown_one_is_a_wrong_password,
    interactive_auth_takes_an_email_address_as_synapse_does,
    homekey_admin_user_email_adds_lists_and_removes_over_the_admin_api,
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

/// Gives `user` the e-mail address `address` through the Admin API.
async fn give_email(server: &Server, token: &str, user: &str, address: &str) {
    let body = json!({"threepids": [{"medium": "email", "address": address}]});
    let (status, body) = server
        .call("PUT", &user_path(user), Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The sign-in pages (the account page's, the OAuth authorization's) take an account's
/// e-mail address, in any case, in the user field, labelled so; an address no account has
/// is answered exactly as a wrong password, and so is text that is no address.
async fn the_sign_in_pages_take_an_email_address_and_an_unknown_one_is_a_wrong_password(
    db: TestDb,
) {
    use crate::account_page::{Browser, PAGE, beside_synapse};
    let (server, logins) = beside_synapse(db, "https://matrix.example.com/").await;
    let root = logins.admin_token("root", "root-pw").await;
    logins.create_user("alice", "alice-pw").await;
    give_email(&logins, &root, ALICE, "alice@example.com").await;

    let mut browser = Browser::new(&server);
    let form = browser.get(PAGE).await;
    assert!(
        form.body
            .contains("<label for=\"user\">User name or e-mail address</label>"),
        "{}",
        form.body
    );
    let wrong = browser.sign_in("", "alice@example.com", "guess").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(
        wrong
            .body
            .contains("Wrong user name, e-mail address or password."),
        "{}",
        wrong.body
    );
    let message = |body: &str| {
        let start = body.find("id=\"error\"><p>").expect("a message") + 15;
        body[start..start + body[start..].find("</p>").unwrap()].to_owned()
    };
    for typed in ["nobody@example.com", "not@an@address"] {
        let unknown = browser.sign_in("", typed, "alice-pw").await;
        assert_eq!(unknown.status, wrong.status, "{typed}");
        assert_eq!(message(&unknown.body), message(&wrong.body), "{typed}");
    }
    let signed_in = browser
        .signed_in("", " ALICE@Example.com ", "alice-pw")
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    assert!(signed_in.body.contains(ALICE), "{}", signed_in.body);

    // The OAuth authorization's sign-in is the same sign-in.
    let client =
        crate::oauth_grants::Client::register(&server, crate::oauth_grants::element_x()).await;
    let mut browser = crate::oauth_grants::Browser::new();
    let query = client.query("EMAILDEVICE", &[]);
    crate::oauth_grants::sign_in(
        &server,
        &mut browser,
        &query,
        "Alice@example.com",
        "alice-pw",
    )
    .await;
}

/// User-interactive auth's `m.login.password` names the user by e-mail address as Synapse
/// lets it (an `m.id.thirdparty` identifier, or the deprecated top-level medium and
/// address): the requester's own address and password complete the stage; a wrong
/// password, another account's address and an unknown one are each the stage's 401
/// `M_FORBIDDEN`; an address that is none is Synapse's 400.
async fn interactive_auth_takes_an_email_address_as_synapse_does(db: TestDb) {
    let server = Server::start(
        db,
        "rc_login:\n  failed_attempts:\n    per_second: 1000\n    burst_count: 1000\n",
    )
    .await;
    let root = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    give_email(&server, &root, ALICE, "alice@example.com").await;
    give_email(&server, &root, "@bob:example.com", "bob@example.com").await;
    let (_, alice) = server.login("alice", "alice-pw").await;
    let token = alice["access_token"].as_str().unwrap().to_owned();
    let delete = |device: String, auth: Value| {
        let (server, token) = (&server, token.clone());
        async move {
            server
                .call(
                    "POST",
                    "/_matrix/client/v3/delete_devices",
                    Some(&token),
                    Some(json!({"devices": [device], "auth": auth})),
                )
                .await
        }
    };
    let by_email = |session: &str, address: &str, password: &str| {
        json!({"type": "m.login.password", "session": session, "password": password,
               "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": address}})
    };
    let (_, other) = server.login("alice", "alice-pw").await;
    let other = other["device_id"].as_str().unwrap().to_owned();
    let (status, started) = delete(other.clone(), Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{started}");
    let session = started["session"].as_str().unwrap().to_owned();
    for (address, password) in [
        ("alice@example.com", "guess"),
        ("bob@example.com", "bob-pw"),
        ("nobody@example.com", "alice-pw"),
    ] {
        let (status, body) = delete(other.clone(), by_email(&session, address, password)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{address}: {body}");
        assert_eq!(body["errcode"], "M_FORBIDDEN", "{address}: {body}");
        assert_eq!(body["session"], session.as_str());
    }
    let (status, body) = delete(other.clone(), by_email(&session, "not-one", "alice-pw")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "Unable to parse email address");
    let (status, body) = delete(
        other.clone(),
        by_email(&session, "ALICE@Example.com", "alice-pw"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .call(
            "GET",
            &format!("/_matrix/client/v3/devices/{other}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the device is gone");

    // The deprecated top-level medium and address.
    let (_, third) = server.login("alice", "alice-pw").await;
    let third = third["device_id"].as_str().unwrap().to_owned();
    let (_, started) = delete(third.clone(), Value::Null).await;
    let legacy = json!({"type": "m.login.password", "session": started["session"],
                        "medium": "email", "address": "alice@example.com", "password": "alice-pw"});
    let (status, body) = delete(third, legacy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `homekey admin user email add|remove|list` over the Admin API (read with `GET
/// v2/users/<id>`, the whole set written with `PUT`), canonical, a phone number left as it
/// was; `admin user show` lists the addresses; refusals are one line, exit 1.
async fn homekey_admin_user_email_adds_lists_and_removes_over_the_admin_api(db: TestDb) {
    let server = Server::start(db, "").await;
    let root = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    give_email(&server, &root, "@bob:example.com", "bob@example.com").await;
    let phone = json!({"threepids": [{"medium": "msisdn", "address": "447700900000"}]});
    let (status, _) = server
        .call("PUT", &user_path(ALICE), Some(&root), Some(phone))
        .await;
    assert_eq!(status, StatusCode::OK);
    let home = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--server", &server.base, "--token", &root];
        all.extend(args);
        run_binary(
            HOMEKEY,
            &all,
            b"",
            &[("XDG_CONFIG_HOME", home.path().to_str().unwrap())],
        )
    };
    let ok = |args: &[&str]| {
        let out = admin(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(
        ok(&["user", "email", "add", ALICE, "Alice@Example.COM"]),
        "added alice@example.com to @alice:example.com\n"
    );
    assert!(ok(&["user", "email", "add", ALICE, "alice@example.com"]).contains("already has"));
    ok(&["user", "email", "add", ALICE, "second@example.com"]);
    assert_eq!(
        ok(&["user", "email", "list", ALICE]),
        "alice@example.com\nsecond@example.com\n"
    );
    assert!(
        ok(&["user", "show", ALICE]).contains("emails       alice@example.com, second@example.com"),
        "{}",
        ok(&["user", "show", ALICE])
    );
    for (args, needle) in [
        (
            vec!["user", "email", "add", ALICE, "BOB@example.com"],
            "M_THREEPID_IN_USE",
        ),
        (
            vec!["user", "email", "add", ALICE, "no address"],
            "Unable to parse email address",
        ),
        (
            vec!["user", "email", "remove", ALICE, "bob@example.com"],
            "@alice:example.com has no e-mail address bob@example.com",
        ),
    ] {
        let out = admin(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    }
    assert_eq!(
        ok(&["user", "email", "remove", ALICE, "SECOND@example.com"]),
        "removed second@example.com from @alice:example.com\n"
    );
    let (_, user) = server
        .call("GET", &user_path(ALICE), Some(&root), None)
        .await;
    assert_eq!(emails(&user), ["alice@example.com"]);
    assert!(
        user["threepids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["medium"] == "msisdn" && t["address"] == "447700900000"),
        "the phone number stays: {user}"
    );
}
