//! No secret in the logs: a full scenario against `homekey serve` at `RUST_LOG=trace`, then
//! the CLI at `RUST_LOG=trace`, and none of the passwords, hashes, tokens, the pepper, the
//! macaroon key or the shared secret shows up in anything they printed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, password_auth};
use crate::support::{HOMEKEY, TestDb, run_binary, stderr, stdout};

const PEPPER: &str = "pepper-Qv7Lk2";
const SHARED_SECRET: &str = "shared-Wd9Pz4";
const MACAROON_KEY: &str = "macaroon-Hs3Nc8";
const ADMIN: &str = "/_synapse/admin";

/// The secrets of the scenario, with what each is, to say which one leaked.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, secret: &str) {
        assert!(secret.len() >= 8, "{what} too short to search for");
        self.0.push((what.to_owned(), secret.to_owned()));
        // A hash leaks through its digest alone too.
        if secret.starts_with("$2") && secret.len() == 60 {
            self.0
                .push((format!("{what} (digest)"), secret[29..].to_owned()));
        }
    }

    fn assert_none_in(&self, where_: &str, text: &str) {
        for (what, secret) in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{what} found in {where_}:\n{text}"
            );
        }
    }
}

fn token(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

#[tokio::test]
async fn nothing_secret_is_logged_even_at_trace() {
    let db = TestDb::sqlite().await;
    let database = match &db.config {
        homekey::config::DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        other => panic!("{other:?}"),
    };
    let extra = format!(
        "registration_shared_secret: {SHARED_SECRET}\nmacaroon_secret_key: {MACAROON_KEY}\n"
    );
    let mut server = Server::start_logging(db, PEPPER, &extra, "trace").await;
    let mut secrets = Secrets::default();
    for (what, secret) in [
        ("pepper", PEPPER),
        ("shared secret", SHARED_SECRET),
        ("macaroon key", MACAROON_KEY),
    ] {
        secrets.add(what, secret);
    }
    let passwords = [
        "root-pw-Xk81",
        "alice-pw-1-Jr4",
        "alice-pw-2-Tn6",
        "alice-pw-3-Bm2",
        "carol-pw-Fy5",
        "bob-pw-Lq3",
        "wrong-pw-Gz7",
        "array-pw-Vc1",
        "hashed-pw-Rd8",
        "cli-pw-Mw9",
    ];
    for password in passwords {
        secrets.add("a password", password);
    }
    let [
        root_pw,
        p1,
        p2,
        p3,
        carol_pw,
        bob_pw,
        wrong,
        in_array,
        hashed,
        cli_pw,
    ] = passwords;

    let admin = server.admin_token("root", root_pw).await;
    secrets.add("admin token", &admin);
    server.create_user("alice", p1).await;
    let t1 = server.token_for("alice", p1).await;
    secrets.add("alice's token", &t1);

    // Password change with user-interactive auth, the new password sent before the auth.
    let change = "/_matrix/client/v3/account/password";
    let (status, body) = server
        .call("POST", change, Some(&t1), Some(json!({"new_password": p2})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let session = body["session"].as_str().unwrap().to_owned();
    let auth = password_auth("alice", p1, Some(&session));
    let (status, body) = server
        .call("POST", change, Some(&t1), Some(json!({"auth": auth})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The Admin API with the token in the query string, as the operators' curl commands do.
    let with_token = |path: &str, token: &str| format!("{path}?access_token={token}");
    let (status, body) = server
        .call(
            "POST",
            &with_token(
                &format!("{ADMIN}/v1/reset_password/@alice:example.com"),
                &admin,
            ),
            None,
            Some(json!({"new_password": p3, "logout_devices": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .call(
            "GET",
            &with_token("/_matrix/client/v3/account/whoami", &t1),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .call(
            "POST",
            &with_token(
                &format!("{ADMIN}/v1/users/@alice:example.com/login"),
                &admin,
            ),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    secrets.add("login-as-user token", &token(&body));
    let (status, body) = server
        .call(
            "PUT",
            &with_token(&format!("{ADMIN}/v2/users/@bob:example.com"), &admin),
            None,
            Some(json!({"password": bob_pw})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Shared-secret registration.
    let (_, body) = server
        .call("GET", &format!("{ADMIN}/v1/register"), None, None)
        .await;
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let mac = homekey::shared_secret::registration_mac(
        &secrecy::SecretString::from(SHARED_SECRET),
        homekey::shared_secret::RegistrationFields {
            nonce: &nonce,
            username: "carol",
            password: carol_pw,
            admin: false,
            user_type: None,
        },
    );
    let registration =
        json!({"nonce": nonce, "username": "carol", "password": carol_pw, "mac": mac});
    let (status, body) = server
        .call(
            "POST",
            &format!("{ADMIN}/v1/register"),
            None,
            Some(registration),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    secrets.add("registered token", &token(&body));

    // Failures: a wrong password, a password of the wrong type, a wrong mac, a bad token.
    assert_eq!(server.login("alice", wrong).await.0, StatusCode::FORBIDDEN);
    let odd = json!({"type": "m.login.password", "user": "alice", "password": [in_array]});
    assert_eq!(
        server
            .call("POST", "/_matrix/client/v3/login", None, Some(odd))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (_, body) = server
        .call("GET", &format!("{ADMIN}/v1/register"), None, None)
        .await;
    let bad_mac =
        json!({"nonce": body["nonce"], "username": "dan", "password": wrong, "mac": "00"});
    assert_eq!(
        server
            .call("POST", &format!("{ADMIN}/v1/register"), None, Some(bad_mac))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = server.whoami(Some(&format!("{t1}x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for user in ["root", "alice", "bob", "carol"] {
        let stored = server
            .store()
            .get_user(&format!("@{user}:example.com"))
            .await
            .unwrap()
            .unwrap();
        let hash = stored.password_hash.expect("a hash");
        secrets.add(
            &format!("{user}'s hash"),
            secrecy::ExposeSecret::expose_secret(&hash),
        );
    }
    assert_eq!(server.stop(), Some(0));
    let log = server.log();
    // The log is the full one: requests with their redacted query, and debug-level lines.
    assert!(log.contains("access_token=<redacted>"), "{log}");
    assert!(
        log.contains("DEBUG"),
        "RUST_LOG=trace was not in force:\n{log}"
    );
    secrets.assert_none_in("the server's log", &log);

    // The CLI at trace: hash-password (its hash on stdout is the point; stderr must hold
    // nothing secret), then user set-password.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("homeserver.yaml");
    std::fs::write(
        &config,
        format!("server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  pepper: {PEPPER}\n{extra}"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let trace = [("RUST_LOG", "trace")];
    let out = run_binary(
        HOMEKEY,
        &["hash-password", "-c", config],
        format!("{hashed}\n").as_bytes(),
        &trace,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed_hash = stdout(&out).trim().to_owned();
    assert!(printed_hash.starts_with("$2b$05$"), "{printed_hash}");
    secrets.assert_none_in("hash-password's stderr", &stderr(&out));
    secrets.add("hash-password's hash", &printed_hash);
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "set-password",
            "alice",
            "--password-stdin",
            "-c",
            config,
            "--database",
            &database,
        ],
        format!("{cli_pw}\n").as_bytes(),
        &trace,
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let cli_output = format!("{}{}", stdout(&out), stderr(&out));
    let stored = server
        .store()
        .get_user("@alice:example.com")
        .await
        .unwrap()
        .unwrap();
    secrets.add(
        "the CLI's new hash",
        secrecy::ExposeSecret::expose_secret(&stored.password_hash.unwrap()),
    );
    secrets.assert_none_in("user set-password's output", &cli_output);
    secrets.assert_none_in("the server's log", &log);
    eprintln!(
        "FIGURES secrets searched: {} in {} bytes of trace output",
        secrets.0.len(),
        log.len() + cli_output.len()
    );
}
