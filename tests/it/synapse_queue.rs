//! Beside the real Synapse 1.163.2: every change that Synapse must follow reaches it through
//! homekey's queue of owed work, at once when Synapse answers, and after it comes back
//! (or after homekey restarts) when it does not. Checked through Synapse itself: its client
//! API for tokens, its Admin API (with a homekey admin's token) for users and devices.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::Server;
use crate::support::{HOMEKEY, TestDb, run_binary, stderr, stdout, synapse_venv};
use crate::synapse_interop::Synapse;

pub(crate) const SECRET: &str = "queue-test-secret-0123456789abcdefghijklmn";
/// homekey's `registration_shared_secret`, for Synapse's `register_new_matrix_user`.
pub(crate) const REGISTRATION_SECRET: &str = "queue-registration-secret";
/// Each delivery's wait for another deliverer's lease is logged at debug.
const LOG_LEVELS: &str = "info,homekey::accounts::beside_synapse=debug";

/// homekey's config on `127.0.0.1:{port}` beside the Synapse of `synapse_section`.
fn listening_on(port: u16, synapse_section: &str) -> String {
    format!(
        "listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n\
         registration_shared_secret: {REGISTRATION_SECRET}\n{synapse_section}"
    )
}

/// A Synapse delegating to a `homekey serve` on `db`, both started, and what it takes to
/// start homekey again on the same port and database.
pub(crate) struct BesideSynapse {
    pub(crate) synapse: Synapse,
    pub(crate) homekey: Server,
    /// homekey's config: its listener and the `synapse:` section.
    pub(crate) homekey_config: String,
    /// The `synapse:` section (and `public_baseurl`), for a second instance.
    synapse_section: String,
    /// A config file for the CLI: the same database and `synapse:` section.
    cli_config: tempfile::NamedTempFile,
    /// The database, as `--database` names it.
    pub(crate) database: String,
}

impl BesideSynapse {
    pub(crate) async fn start(venv: std::path::PathBuf, db: TestDb) -> BesideSynapse {
        BesideSynapse::start_asking(venv, db, None).await
    }

    /// Like [`BesideSynapse::start`], Synapse asking about tokens at `127.0.0.1:{asks}` (a
    /// proxy's) instead of homekey's own port.
    pub(crate) async fn start_asking(
        venv: std::path::PathBuf,
        db: TestDb,
        asks: Option<u16>,
    ) -> BesideSynapse {
        BesideSynapse::start_sharing(venv, db, asks, "").await
    }

    /// Like [`BesideSynapse::start_asking`], with `shared` (top-level YAML keys) in both
    /// Synapse's homeserver.yaml and homekey's config, as an operator shares one file.
    pub(crate) async fn start_sharing(
        venv: std::path::PathBuf,
        db: TestDb,
        asks: Option<u16>,
        shared: &str,
    ) -> BesideSynapse {
        BesideSynapse::start_public(venv, db, asks, shared, "https://matrix.example.com/", "").await
    }

    /// Like [`BesideSynapse::start_sharing`], with `public_baseurl` (Synapse's and homekey's)
    /// as given: the URL of a proxy the test starts in front of both, so that what a client
    /// discovers (the OAuth endpoints, the pages) is reachable.
    pub(crate) async fn start_at(
        venv: std::path::PathBuf,
        db: TestDb,
        public_baseurl: &str,
        shared: &str,
    ) -> BesideSynapse {
        BesideSynapse::start_public(venv, db, None, shared, public_baseurl, "").await
    }

    /// Like [`BesideSynapse::start_at`], with `homekey_only` (top-level YAML keys) in
    /// homekey's config alone: what Synapse must not have beside homekey (sign-up).
    pub(crate) async fn start_with_homekey_config(
        venv: std::path::PathBuf,
        db: TestDb,
        public_baseurl: &str,
        homekey_only: &str,
    ) -> BesideSynapse {
        BesideSynapse::start_public(venv, db, None, "", public_baseurl, homekey_only).await
    }

    async fn start_public(
        venv: std::path::PathBuf,
        db: TestDb,
        asks: Option<u16>,
        shared: &str,
        public_baseurl: &str,
        homekey_only: &str,
    ) -> BesideSynapse {
        let port = crate::support::free_port();
        let asks = asks.unwrap_or(port);
        let mut synapse = Synapse::prepare_with_auth(
            venv,
            &format!(
                "public_baseurl: {public_baseurl}\n\
                 password_config:\n  enabled: false\n\
                 matrix_authentication_service:\n  enabled: true\n  \
                 endpoint: http://127.0.0.1:{asks}/\n  secret: {SECRET}\n{shared}"
            ),
        );
        let synapse_section = format!(
            "public_baseurl: {public_baseurl}\n\
             synapse:\n  endpoint: {}\n  secret: {SECRET}\n{shared}",
            synapse.url("/")
        );
        let homekey_config = format!("{}{homekey_only}", listening_on(port, &synapse_section));
        let database = match &db.config {
            homekey::config::DatabaseConfig::Sqlite { path } => {
                format!("sqlite:{}", path.display())
            }
            homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
            other => panic!("unexpected test database {other:?}"),
        };
        let cli_config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            cli_config.path(),
            format!(
                "server_name: example.com\nbcrypt_rounds: 5\n\
                 password_config:\n  pepper: {}\n{synapse_section}",
                crate::server::PEPPER
            ),
        )
        .unwrap();
        let homekey =
            Server::start_logging(db, crate::server::PEPPER, &homekey_config, LOG_LEVELS).await;
        synapse.start().await;
        BesideSynapse {
            synapse,
            homekey,
            homekey_config,
            synapse_section,
            cli_config,
            database,
        }
    }

    /// The config of another instance on `port`, with the same `synapse:` section.
    pub(crate) fn instance_config(&self, port: u16) -> String {
        listening_on(port, &self.synapse_section)
    }

    /// The device IDs Synapse has for `user_id`, from its own Admin API.
    pub(crate) async fn synapse_devices(&self, admin: &str, user_id: &str) -> Vec<String> {
        let (status, body) = self
            .synapse
            .get(
                &format!("/_synapse/admin/v2/users/{user_id}/devices"),
                admin,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{body}\n{}",
            self.synapse.log_tail()
        );
        let mut ids: Vec<String> = body["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// Synapse's own account of `user_id` (its Admin API).
    pub(crate) async fn synapse_user(&self, admin: &str, user_id: &str) -> Value {
        let (status, body) = self
            .synapse
            .get(&format!("/_synapse/admin/v2/users/{user_id}"), admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend([
            "-c",
            self.cli_config.path().to_str().unwrap(),
            "--database",
            &self.database,
        ]);
        run_binary(HOMEKEY, &all, b"", &[])
    }

    /// Waits until `homekey synapse status` says nothing is owed; panics after `limit`.
    pub(crate) fn wait_until_nothing_owed(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let out = self.cli(&["synapse", "status"]);
            if stdout(&out).contains("nothing is owed to Synapse") {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "still owed after {limit:?}: {}{}\n{}",
                stdout(&out),
                stderr(&out),
                self.homekey.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// The errcode Synapse answers a client with `token` right now.
async fn synapse_says(beside: &BesideSynapse, token: &str) -> (StatusCode, Value) {
    let (status, body) = beside.synapse.whoami(token).await;
    (status, body["errcode"].clone())
}

/// Each change that ends sessions or changes an account reaches Synapse before homekey
/// answers: a logout, a reset with logout, a device deletion by an admin, a lock and a
/// deactivation; the very next request with an ended token is Synapse's 401.
async fn each_change_reaches_synapse_before_homekey_answers(db: TestDb) {
    let test = "each_change_reaches_synapse_before_homekey_answers";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let beside = BesideSynapse::start(venv, db).await;
    let homekey = &beside.homekey;
    let root = homekey.admin_token("root", "root-pw").await;
    let alice_id = "@alice:example.com";

    // A new account through homekey's Admin API exists in Synapse at once.
    let (status, body) = homekey
        .call(
            "PUT",
            &format!("/_synapse/admin/v2/users/{alice_id}"),
            Some(&root),
            Some(json!({"password": "alice-pw-1", "displayname": "Alice A."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", homekey.log());
    let shown = beside.synapse_user(&root, alice_id).await;
    assert_eq!(shown["displayname"], "Alice A.", "{shown}");
    // A name Synapse has already is refused before homekey makes it.
    let (status, body) = homekey
        .call(
            "PUT",
            "/_synapse/admin/v2/users/@ALICE:example.com",
            Some(&root),
            Some(json!({"password": "x-pw-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (phone, phone_device) = homekey.session_for("alice", "alice-pw-1").await;

    // Synapse owns profiles: alice renames herself through Synapse, and homekey's Admin API
    // shows Synapse's name; an admin's rename through homekey lands in Synapse.
    let response = beside
        .synapse
        .http
        .put(beside.synapse.url(&format!(
            "/_matrix/client/v3/profile/{alice_id}/displayname"
        )))
        .bearer_auth(&phone)
        .json(&json!({"displayname": "Alice in Synapse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let path = format!("/_synapse/admin/v2/users/{alice_id}");
    let (_, shown) = homekey.call("GET", &path, Some(&root), None).await;
    assert_eq!(shown["displayname"], "Alice in Synapse", "{shown}");
    let (status, shown) = homekey
        .call(
            "PUT",
            &path,
            Some(&root),
            Some(json!({"displayname": "Alice B."})),
        )
        .await;
    assert_eq!(
        (status, &shown["displayname"]),
        (StatusCode::OK, &json!("Alice B."))
    );
    assert_eq!(
        beside.synapse_user(&root, alice_id).await["displayname"],
        "Alice B."
    );
    // What `/_synapse/mas` cannot carry is refused by name, and nothing changes.
    for (body, field) in [
        (json!({"user_type": "bot"}), "user_type"),
        (
            json!({"external_ids": [{"auth_provider": "x", "external_id": "y"}]}),
            "external_ids",
        ),
    ] {
        let (status, answer) = homekey.call("PUT", &path, Some(&root), Some(body)).await;
        assert_eq!(
            (status, &answer["errcode"]),
            (StatusCode::BAD_REQUEST, &json!("M_INVALID_PARAM"))
        );
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let (status, answer) = homekey
        .call(
            "POST",
            &format!("/_synapse/admin/v1/users/{alice_id}/shadow_ban"),
            Some(&root),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("shadow_banned"),
        "{answer}"
    );
    let (_, shown) = homekey.call("GET", &path, Some(&root), None).await;
    assert_eq!(
        (&shown["user_type"], &shown["shadow_banned"]),
        (&Value::Null, &json!(false))
    );

    let (laptop, laptop_device) = homekey.session_for("alice", "alice-pw-1").await;
    let (tablet, tablet_device) = homekey.session_for("alice", "alice-pw-1").await;
    for token in [&phone, &laptop, &tablet] {
        assert_eq!(synapse_says(&beside, token).await.0, StatusCode::OK);
    }
    let mut all = vec![
        phone_device.clone(),
        laptop_device.clone(),
        tablet_device.clone(),
    ];
    all.sort();
    assert_eq!(beside.synapse_devices(&root, alice_id).await, all);

    // The client's own logout: the device goes in Synapse too, before homekey answers.
    let (status, body) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/logout",
            Some(&phone),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        synapse_says(&beside, &phone).await,
        (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
    );
    // An admin deletes one device through homekey's Admin API.
    let (status, body) = homekey
        .call(
            "DELETE",
            &format!("/_synapse/admin/v2/users/{alice_id}/devices/{tablet_device}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        synapse_says(&beside, &tablet).await,
        (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
    );
    assert_eq!(
        beside.synapse_devices(&root, alice_id).await,
        vec![laptop_device.clone()]
    );

    // The seed's reset by curl: the legacy r0 path and the v1 path, logging out.
    let (status, body) = homekey
        .call(
            "POST",
            &format!("/_synapse/admin/v1/reset_password/{alice_id}"),
            Some(&root),
            Some(json!({"new_password": "alice-pw-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        synapse_says(&beside, &laptop).await,
        (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
    );
    assert!(beside.synapse_devices(&root, alice_id).await.is_empty());
    let (status, _) = homekey.login("alice", "alice-pw-1").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the old password still logs in"
    );
    let (fresh, _) = homekey.session_for("alice", "alice-pw-2").await;
    assert_eq!(synapse_says(&beside, &fresh).await.0, StatusCode::OK);

    // A lock reaches Synapse's own record of the user.
    let (status, body) = homekey
        .call(
            "PUT",
            &format!("/_synapse/admin/v2/users/{alice_id}"),
            Some(&root),
            Some(json!({"locked": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(beside.synapse_user(&root, alice_id).await["locked"], true);
    let (status, _) = homekey
        .call(
            "PUT",
            &format!("/_synapse/admin/v2/users/{alice_id}"),
            Some(&root),
            Some(json!({"locked": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(beside.synapse_user(&root, alice_id).await["locked"], false);

    // Deactivation: Synapse's own, at once; the token is refused on the next request.
    let (status, body) = homekey
        .call(
            "POST",
            &format!("/_synapse/admin/v1/deactivate/{alice_id}"),
            Some(&root),
            Some(json!({"erase": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        synapse_says(&beside, &fresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    let shown = beside.synapse_user(&root, alice_id).await;
    assert_eq!(
        (&shown["deactivated"], &shown["erased"]),
        (&json!(true), &json!(true)),
        "{shown}"
    );

    // Reactivation with a new password: Synapse's user is active again, and alice chats.
    let (status, body) = homekey
        .call(
            "PUT",
            &path,
            Some(&root),
            Some(json!({"deactivated": false, "password": "alice-pw-3"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A Synapse just made on SQLite refuses a reactivation (500) until its background update
    // `profiles_full_user_id_key_idx` has run: the work stays owed and is retried until then.
    beside.wait_until_nothing_owed(Duration::from_secs(60));
    let shown = beside.synapse_user(&root, alice_id).await;
    assert_eq!(
        shown["deactivated"],
        false,
        "{shown}\n{}",
        beside.synapse.log_tail()
    );
    let (back, _) = homekey.session_for("alice", "alice-pw-3").await;
    assert_eq!(synapse_says(&beside, &back).await.0, StatusCode::OK);

    // Nothing is left owed, and nothing of the secret or the tokens is in the log.
    let out = beside.cli(&["synapse", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "nothing is owed to Synapse\n");
    let log = homekey.log();
    assert!(
        !log.contains(SECRET)
            && !log.contains(&fresh)
            && !log.contains(&back)
            && !log.contains(&root),
        "{log}"
    );
}

/// With Synapse stopped, a reset with logout still answers (within about 2 s), and the work
/// stays owed; homekey is then killed (-9) before it could deliver. Once Synapse and homekey
/// are back, the old devices are gone from Synapse with no operator action.
async fn work_owed_while_synapse_is_away_is_delivered_after_a_crash(db: TestDb) {
    let test = "work_owed_while_synapse_is_away_is_delivered_after_a_crash";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let mut beside = BesideSynapse::start(venv, db).await;
    let root = beside.homekey.admin_token("root", "root-pw").await;
    beside.homekey.create_user("bob", "bob-pw-1").await;
    let (bob, _) = beside.homekey.session_for("bob", "bob-pw-1").await;
    assert_eq!(synapse_says(&beside, &bob).await.0, StatusCode::OK);

    beside.synapse.stop();
    let started = Instant::now();
    let (status, body) = beside
        .homekey
        .call(
            "POST",
            "/_synapse/admin/v1/reset_password/@bob:example.com",
            Some(&root),
            Some(json!({"new_password": "bob-pw-2"})),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        took < Duration::from_secs(5),
        "the reset waited {took:?} for Synapse"
    );
    let out = beside.cli(&["synapse", "status"]);
    let shown = stdout(&out);
    assert!(
        shown.contains("@bob:example.com\tretrying"),
        "{shown}{}",
        stderr(&out)
    );
    assert!(shown.contains("cannot be reached"), "{shown}");

    // Killed before Synapse is back: the work must survive in the database.
    let pid = beside.homekey.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let db = beside.homekey.db.share().await;
    beside.synapse.start().await;
    // The killed server's handle owns the database: kept until the end of the test.
    let _killed = std::mem::replace(
        &mut beside.homekey,
        Server::start(db, &beside.homekey_config).await,
    );
    beside.wait_until_nothing_owed(Duration::from_secs(60));
    assert_eq!(
        synapse_says(&beside, &bob).await,
        (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
    );
    let (fresh, _) = beside.homekey.session_for("bob", "bob-pw-2").await;
    assert_eq!(synapse_says(&beside, &fresh).await.0, StatusCode::OK);
}

/// What becomes of the `serve` process whose delivery holds a user's lease.
#[derive(Clone, Copy, PartialEq)]
enum WhileLeased {
    /// Killed (-9) then and there.
    Killed,
    /// Left alone: the logout answers after about 2 s, its delivery cut short.
    Answers,
}

/// Freezes Synapse and logs `token` out through `beside.homekey`: its delivery takes `user`'s
/// lease and waits for Synapse; then `then`.
async fn logout_while_synapse_is_frozen(
    beside: &BesideSynapse,
    user: &str,
    token: &str,
    then: WhileLeased,
) {
    beside.synapse.freeze(true);
    let logout = beside
        .homekey
        .http
        .post(beside.homekey.url("/_matrix/client/v3/logout"))
        .bearer_auth(token)
        .body("{}")
        .send();
    let leased = async {
        let user_id = format!("@{user}:example.com");
        let sql = "SELECT COUNT(*) FROM homekey_synapse_leases WHERE user_id = $1";
        let started = Instant::now();
        while beside.homekey.db.count(sql, &user_id).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "no delivery took {user}'s lease"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if then == WhileLeased::Killed {
            let pid = beside.homekey.pid().to_string();
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap();
            assert!(killed.success());
        }
    };
    let (answer, ()) = tokio::join!(logout, leased);
    match then {
        WhileLeased::Killed => assert!(answer.is_err(), "answered before the kill"),
        WhileLeased::Answers => assert_eq!(answer.unwrap().status(), StatusCode::OK),
    }
}

/// Logs `user` in on `server` until it works (each try waits up to 10 s for the user's
/// lease, then is 503); how long it took.
async fn log_in_until_it_works(server: &Server, user: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = server.login(user, &format!("{user}-pw")).await;
        if status == StatusCode::OK {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{user} cannot log in: {body}"
        );
    }
}

/// `homekey serve` killed (-9) while it delivers for a user (Synapse frozen, so that the
/// delivery holds the user's lease): restarted, it frees its old process's leases at once and
/// the user logs in at once; another instance takes a dead one's leases once its heartbeat is
/// 8 s old. A delivery cut short (its operation answered after 2 s) gives its lease back.
/// Before, each of these left the lease for 60 s, and every login of the user waited 10 s and
/// answered 503 until then.
async fn a_killed_serve_leaves_no_lease_that_blocks_its_users(db: TestDb) {
    let test = "a_killed_serve_leaves_no_lease_that_blocks_its_users";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let mut beside = BesideSynapse::start(venv, db).await;
    let mut tokens = Vec::new();
    for user in ["bob", "carol", "dave"] {
        beside
            .homekey
            .create_user(user, &format!("{user}-pw"))
            .await;
        tokens.push(beside.homekey.token_for(user, &format!("{user}-pw")).await);
    }

    // Killed while delivering for bob, then restarted on the same address.
    logout_while_synapse_is_frozen(&beside, "bob", &tokens[0], WhileLeased::Killed).await;
    beside.synapse.freeze(false);
    let db = beside.homekey.db.share().await;
    // The killed server's handle owns the database: kept until the end of the test.
    let _killed = std::mem::replace(
        &mut beside.homekey,
        Server::start(db, &beside.homekey_config).await,
    );
    let after_restart = log_in_until_it_works(&beside.homekey, "bob").await;

    // A delivery cut short by its operation's 2 s.
    logout_while_synapse_is_frozen(&beside, "carol", &tokens[1], WhileLeased::Answers).await;
    beside.synapse.freeze(false);
    let after_cut_short = log_in_until_it_works(&beside.homekey, "carol").await;

    // Killed while delivering for dave; another instance is left.
    let other = Server::start_logging(
        beside.homekey.db.share().await,
        crate::server::PEPPER,
        &beside.synapse_section,
        LOG_LEVELS,
    )
    .await;
    logout_while_synapse_is_frozen(&beside, "dave", &tokens[2], WhileLeased::Killed).await;
    beside.synapse.freeze(false);
    let on_another = log_in_until_it_works(&other, "dave").await;

    eprintln!(
        "{test}: logged in {after_restart:?} after the restart, {after_cut_short:?} after a \
         delivery cut short, {on_another:?} on another instance after the kill"
    );
    assert!(
        after_restart < Duration::from_secs(5),
        "bob waited {after_restart:?} after the restart"
    );
    assert!(
        after_cut_short < Duration::from_secs(5),
        "carol waited {after_cut_short:?} after a delivery cut short"
    );
    assert!(
        on_another < Duration::from_secs(15),
        "dave waited {on_another:?} on another instance"
    );
}

/// The operator's `homekey user logout` and `set-password --logout-devices` on homekey's
/// database reach Synapse too; with Synapse away the CLI says the work stays owed, and
/// `homekey synapse reconcile` delivers it (and makes again a device Synapse lost).
async fn the_cli_reaches_synapse_and_reconcile_mends_divergence(db: TestDb) {
    let test = "the_cli_reaches_synapse_and_reconcile_mends_divergence";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let mut beside = BesideSynapse::start(venv, db).await;
    let root = beside.homekey.admin_token("root", "root-pw").await;
    beside.homekey.create_user("carol", "carol-pw-1").await;
    let (first, _) = beside.homekey.session_for("carol", "carol-pw-1").await;
    let out = beside.cli(&["user", "logout", "carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        synapse_says(&beside, &first).await,
        (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
    );

    let (second, second_device) = beside.homekey.session_for("carol", "carol-pw-1").await;
    // Synapse loses the device behind homekey's back (a restore of an older backup, say).
    let (status, _) = beside
        .synapse
        .http
        .delete(beside.synapse.url(&format!(
            "/_synapse/admin/v2/users/@carol:example.com/devices/{second_device}"
        )))
        .bearer_auth(&root)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        synapse_says(&beside, &second).await.0,
        StatusCode::UNAUTHORIZED
    );
    let out = beside.cli(&["synapse", "reconcile", "carol"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "@carol:example.com\treconciled\n");
    assert_eq!(synapse_says(&beside, &second).await.0, StatusCode::OK);

    beside.synapse.stop();
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "set-password",
            "carol",
            "--logout-devices",
            "--password-stdin",
            "-c",
            beside.cli_config.path().to_str().unwrap(),
            "--database",
            &beside.database,
        ],
        b"carol-pw-2\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("retried"), "{}", stderr(&out));
    beside.synapse.start().await;
    let out = beside.cli(&["synapse", "reconcile", "--all"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        synapse_says(&beside, &second).await,
        (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN"))
    );
    beside.wait_until_nothing_owed(Duration::from_secs(10));
}

/// Two `homekey serve` on one PostgreSQL database, beside one Synapse: logins on one and
/// logouts on the other, at the same time, for one user. Deliveries for the user wait for
/// each other's lease (the race is seen in the logs), and at the end Synapse has exactly
/// the devices homekey has: every live token works on Synapse, every ended one is refused.
#[tokio::test]
async fn two_instances_on_one_postgres_deliver_for_one_user_one_at_a_time() {
    let test = "two_instances_on_one_postgres_deliver_for_one_user_one_at_a_time";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    let second_db = db.share().await;
    let beside = BesideSynapse::start(venv, db).await;
    let first = &beside.homekey;
    let second = Server::start_logging(
        second_db,
        crate::server::PEPPER,
        &beside.synapse_section,
        LOG_LEVELS,
    )
    .await;
    let root = first.admin_token("root", "root-pw").await;
    first.create_user("dave", "dave-pw").await;
    let dave = "@dave:example.com";

    let mut live = Vec::new();
    let mut ended = Vec::new();
    let (token, _) = first.session_for("dave", "dave-pw").await;
    live.push(token);
    for _ in 0..12 {
        // A login on the first instance while the second logs the oldest session out.
        let leaving = live.remove(0);
        let (login, logout) = tokio::join!(
            first.login("dave", "dave-pw"),
            second.call(
                "POST",
                "/_matrix/client/v3/logout",
                Some(&leaving),
                Some(json!({}))
            ),
        );
        assert_eq!(login.0, StatusCode::OK, "{}", login.1);
        assert_eq!(logout.0, StatusCode::OK, "{}", logout.1);
        live.push(login.1["access_token"].as_str().unwrap().to_owned());
        ended.push(leaving);
    }
    let waits = first
        .log()
        .matches("waited for another deliverer's lease")
        .count()
        + second
            .log()
            .matches("waited for another deliverer's lease")
            .count();
    assert!(
        waits > 0,
        "no delivery ever waited for another's lease: the race did not happen"
    );
    eprintln!("{test}: {waits} deliveries waited for another's lease");

    beside.wait_until_nothing_owed(Duration::from_secs(30));
    let mut expected = first.device_ids(dave).await;
    expected.sort();
    assert_eq!(beside.synapse_devices(&root, dave).await, expected);
    for token in &live {
        assert_eq!(synapse_says(&beside, token).await.0, StatusCode::OK);
    }
    for token in &ended {
        assert_eq!(
            synapse_says(&beside, token).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// One way an operator (or the user) resets a password beside Synapse.
#[derive(Debug, Clone, Copy)]
enum Reset {
    /// The seed's curl on the legacy path (`/_matrix/client/r0/admin/reset_password`).
    CurlR0,
    /// The seed's curl on `/_synapse/admin/v1/reset_password` (logs out by default).
    CurlV1,
    /// `homekey admin reset-password`, against homekey's Admin API.
    AdminCli,
    /// `homekey user set-password --logout-devices` on homekey's database.
    UserCliLogout,
    /// `homekey user set-password` without logout: the Ansible `update-user-password` tag's
    /// command with its default `logout_devices: false`.
    UserCli,
    /// `hash_password`, then `UPDATE users SET password_hash = …` on homekey's database.
    HashAndUpdate,
    /// The user's own `/account/password` (other devices logged out, this one kept).
    OwnChange,
}

impl Reset {
    /// Whether the client's other sessions end.
    fn logs_out(self) -> bool {
        !matches!(self, Reset::UserCli | Reset::HashAndUpdate)
    }
}

/// Every way of resetting a password beside Synapse, one after the other, on one user whose
/// client chats on Synapse through nginx (the README's config): where the way logs out, the
/// client's very next request is 401 `M_UNKNOWN_TOKEN`, where it doesn't the client goes on;
/// the old password is refused and the new one logs in; the room and its message are still
/// there. The admin's curl goes to the public URL too; the CLI runs on the host.
async fn every_way_of_resetting_a_password_works_beside_synapse(db: TestDb) {
    use crate::synapse_proxy::{Proxy, call, client, password_login, program};
    let test = "every_way_of_resetting_a_password_works_beside_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let beside = BesideSynapse::start(venv, db).await;
    let homekey = &beside.homekey;
    let http = client();
    let proxy = Proxy::nginx(&nginx, &beside.synapse, homekey, &http).await;
    let public = |path: &str| proxy.url(path);
    let root = homekey.admin_token("root", "root-pw").await;
    let alice = "@alice:example.com";
    homekey.create_user("alice", "alice-pw-0").await;
    let log_in = |password: String| {
        let (http, url) = (http.clone(), public("/_matrix/client/v3/login"));
        async move {
            let (status, body) = call(
                &http,
                "POST",
                &url,
                None,
                Some(password_login("alice", &password)),
            )
            .await;
            (
                status,
                body["access_token"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    // What the client's next request to Synapse, through nginx, is answered.
    let next_request = |token: String| {
        let (http, url) = (http.clone(), public("/_matrix/client/v3/account/whoami"));
        async move {
            let (status, body) = call(&http, "GET", &url, Some(&token), None).await;
            (status, body["errcode"].clone())
        }
    };
    let (status, mut token) = log_in("alice-pw-0".into()).await;
    assert_eq!(status, StatusCode::OK);

    // alice chats on Synapse.
    let (status, room) = call(
        &http,
        "POST",
        &public("/_matrix/client/v3/createRoom"),
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{room}\n{}",
        beside.synapse.log_tail()
    );
    let room_id = room["room_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &http,
        "PUT",
        &public(&format!(
            "/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1"
        )),
        Some(&token),
        Some(json!({"msgtype": "m.text", "body": "before the resets"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let mut password = "alice-pw-0".to_owned();
    let ways = [
        Reset::CurlR0,
        Reset::CurlV1,
        Reset::AdminCli,
        Reset::UserCliLogout,
        Reset::UserCli,
        Reset::HashAndUpdate,
        Reset::OwnChange,
    ];
    for (round, way) in ways.into_iter().enumerate() {
        let (status, other) = log_in(password.clone()).await;
        assert_eq!(status, StatusCode::OK);
        let new = format!("alice-pw-{}", round + 1);
        match way {
            Reset::CurlR0 | Reset::CurlV1 => {
                let path = match way {
                    Reset::CurlR0 => format!("/_matrix/client/r0/admin/reset_password/{alice}"),
                    _ => format!("/_synapse/admin/v1/reset_password/{alice}"),
                };
                let (status, body) = call(
                    &http,
                    "POST",
                    &public(&path),
                    Some(&root),
                    Some(json!({"new_password": new})),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{way:?}: {body}");
            }
            Reset::AdminCli => {
                let home = tempfile::tempdir().unwrap();
                let out = run_binary(
                    HOMEKEY,
                    &[
                        "admin",
                        "--server",
                        &public(""),
                        "--token",
                        &root,
                        "reset-password",
                        alice,
                        "--password-stdin",
                    ],
                    format!("{new}\n").as_bytes(),
                    &[("HOME", home.path().to_str().unwrap())],
                );
                assert!(out.status.success(), "{way:?}: {}", stderr(&out));
            }
            Reset::UserCliLogout | Reset::UserCli => {
                let mut args = vec!["user", "set-password", "alice", "--password-stdin"];
                if matches!(way, Reset::UserCliLogout) {
                    args.push("--logout-devices");
                }
                args.extend([
                    "-c",
                    beside.cli_config.path().to_str().unwrap(),
                    "--database",
                    &beside.database,
                ]);
                let out = run_binary(HOMEKEY, &args, format!("{new}\n").as_bytes(), &[]);
                assert!(out.status.success(), "{way:?}: {}", stderr(&out));
            }
            Reset::HashAndUpdate => {
                let out = run_binary(
                    HOMEKEY,
                    &[
                        "hash-password",
                        "-c",
                        beside.cli_config.path().to_str().unwrap(),
                    ],
                    format!("{new}\n").as_bytes(),
                    &[],
                );
                assert!(out.status.success(), "{}", stderr(&out));
                let hash = stdout(&out).trim().to_owned();
                crate::server::raw_execute(
                    &homekey.db.config,
                    "UPDATE users SET password_hash = $1 WHERE name = $2",
                    &[&hash, alice],
                )
                .await;
            }
            Reset::OwnChange => {
                let (status, body) = call(
                    &http,
                    "POST",
                    &public("/_matrix/client/v3/account/password"),
                    Some(&token),
                    Some(json!({
                        "new_password": new,
                        "auth": crate::server::password_auth("alice", &password, None),
                    })),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{way:?}: {body}");
            }
        }
        // The other session: ended at once where the way logs out, still going otherwise.
        let (status, errcode) = next_request(other.clone()).await;
        if way.logs_out() {
            assert_eq!(
                (status, errcode),
                (StatusCode::UNAUTHORIZED, json!("M_UNKNOWN_TOKEN")),
                "{way:?}"
            );
        } else {
            assert_eq!(status, StatusCode::OK, "{way:?}: the client was logged out");
        }
        // The client's own session: ended too, except by its own change or a way without
        // logout.
        let own_stays = !way.logs_out() || matches!(way, Reset::OwnChange);
        assert_eq!(
            next_request(token.clone()).await.0 == StatusCode::OK,
            own_stays,
            "{way:?}"
        );
        let (status, _) = log_in(password.clone()).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{way:?}: the old password still logs in"
        );
        password = new;
        if !own_stays {
            let (status, fresh) = log_in(password.clone()).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{way:?}: the new password does not log in"
            );
            token = fresh;
        }
        let (status, messages) = call(
            &http,
            "GET",
            &public(&format!(
                "/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=20"
            )),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{way:?}");
        let bodies: Vec<&str> = messages["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["content"]["body"].as_str())
            .collect();
        assert_eq!(bodies, ["before the resets"], "{way:?}");
    }
    beside.wait_until_nothing_owed(Duration::from_secs(10));
}

crate::server::server_tests!(
    a_killed_serve_leaves_no_lease_that_blocks_its_users,
    every_way_of_resetting_a_password_works_beside_synapse,
    each_change_reaches_synapse_before_homekey_answers,
    work_owed_while_synapse_is_away_is_delivered_after_a_crash,
    the_cli_reaches_synapse_and_reconcile_mends_divergence,
);
