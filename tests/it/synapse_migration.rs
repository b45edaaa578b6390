//! An existing Synapse (the real 1.163.2, on its own login) moved to homekey with `homekey
//! migrate-from-synapse` and back with `migrate-to-synapse`, nobody logged out either way:
//! users registered and logged in on Synapse, a client with a live token in a room; stop,
//! migrate, switch Synapse to delegate, start; the same token syncs, a refresh token
//! refreshes, the passwords log in, a reset through homekey ends the old session on Synapse
//! at once; then back: the password set under homekey logs in on Synapse's own login, and
//! the token homekey issued still works. An erased user stays erased both ways.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{PEPPER, Server};
use crate::support::{HOMEKEY, TestDb, run_binary, stderr, stdout, synapse_venv};
use crate::synapse_interop::{SHARED_SECRET, Synapse, SynapseDatabase};
use crate::synapse_queue::SECRET;

/// Synapse's own login, with homekey's test pepper.
fn own_auth() -> String {
    format!("password_config:\n  pepper: {PEPPER}\n")
}

/// Synapse delegating to homekey on `port`.
fn delegating_auth(port: u16) -> String {
    format!(
        "public_baseurl: https://matrix.example.com/\n\
         password_config:\n  enabled: false\n  pepper: {PEPPER}\n\
         matrix_authentication_service:\n  enabled: true\n  \
         endpoint: http://127.0.0.1:{port}/\n  secret: {SECRET}\n"
    )
}

/// A Synapse with users of its own, and what it takes to move it to a homekey on `db`.
pub(crate) struct Moving {
    pub(crate) synapse: Synapse,
    pub(crate) db: TestDb,
    /// homekey's database, as `--database` names it.
    database: String,
    /// homekey's config for the CLI and for `serve` (with its `synapse:` section).
    config: tempfile::NamedTempFile,
    homekey_port: u16,
    /// homekey's `serve` config layer (listener and `synapse:` section).
    serve_config: String,
}

impl Moving {
    /// Closes the test's own pool on homekey's database before a migration runs, and waits
    /// until this process holds none of the database's files open: a closed SQLite
    /// connection lets its file go a moment later, and a migration that sees this process
    /// holding homekey's database refuses (as it must).
    pub(crate) async fn close_homekey_store(&self) {
        self.db.store.close().await;
        let Some(path) = self.database.strip_prefix("sqlite:") else {
            return;
        };
        let holds_it = || {
            std::fs::read_dir("/proc/self/fd").is_ok_and(|fds| {
                fds.filter_map(Result::ok).any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with(path))
                })
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while holds_it() {
            assert!(
                std::time::Instant::now() < deadline,
                "homekey's database is still open in the test process 10 s after its close"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn new(synapse: Synapse, db: TestDb) -> Moving {
        let homekey_port = crate::support::free_port();
        let synapse_section = format!(
            "public_baseurl: https://matrix.example.com/\n\
             synapse:\n  endpoint: {}\n  secret: {SECRET}\n",
            synapse.url("/")
        );
        let listener =
            format!("listeners:\n  - port: {homekey_port}\n    bind_addresses: ['127.0.0.1']\n");
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            config.path(),
            format!(
                "server_name: example.com\nbcrypt_rounds: 5\n\
                 password_config:\n  pepper: {PEPPER}\n{listener}{synapse_section}"
            ),
        )
        .unwrap();
        let database = match &db.config {
            homekey::config::DatabaseConfig::Sqlite { path } => {
                format!("sqlite:{}", path.display())
            }
            homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
            other => panic!("unexpected test database {other:?}"),
        };
        Moving {
            synapse,
            db,
            database,
            config,
            homekey_port,
            serve_config: format!("{listener}{synapse_section}"),
        }
    }

    /// `homekey ARGS --synapse-config <Synapse's> -c <homekey's> --database <homekey's>`.
    pub(crate) fn homekey(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend([
            "--synapse-config",
            self.synapse.config.to_str().unwrap(),
            "-c",
            self.config.path().to_str().unwrap(),
            "--database",
            &self.database,
        ]);
        run_binary(HOMEKEY, &all, b"", &[])
    }

    /// `homekey user ARGS` on homekey's database, with `stdin`.
    fn homekey_user(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut all = vec!["user"];
        all.extend(args);
        all.extend([
            "-c",
            self.config.path().to_str().unwrap(),
            "--database",
            &self.database,
        ]);
        run_binary(HOMEKEY, &all, stdin.as_bytes(), &[])
    }

    /// `homekey ARGS` on homekey's database (no Synapse config).
    fn homekey_on_database(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend([
            "-c",
            self.config.path().to_str().unwrap(),
            "--database",
            &self.database,
        ]);
        run_binary(HOMEKEY, &all, b"", &[])
    }

    /// Rewrites Synapse's config to its own login (`false`) or to delegate to homekey.
    fn switch_synapse(&self, delegate: bool) {
        let text = std::fs::read_to_string(&self.synapse.config).unwrap();
        let (from, to) = if delegate {
            (own_auth(), delegating_auth(self.homekey_port))
        } else {
            (delegating_auth(self.homekey_port), own_auth())
        };
        assert!(text.contains(&from), "{text}");
        std::fs::write(&self.synapse.config, text.replace(&from, &to)).unwrap();
    }

    /// `homekey serve` on homekey's database, beside the Synapse.
    async fn serve(&self) -> Server {
        Server::start_logging(self.db.share().await, PEPPER, &self.serve_config, "info").await
    }

    /// Registers a user on Synapse with its own script and shared secret.
    pub(crate) fn register(&self, user: &str, password: &str, admin: bool) {
        let out = self
            .synapse
            .venv_command("register_new_matrix_user")
            .args(["-u", user, "-p", password, "-k", SHARED_SECRET])
            .arg(if admin { "--admin" } else { "--no-admin" })
            .arg(self.synapse.url(""))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }

    /// One value of Synapse's database (`sql` selects a single text or NULL).
    async fn synapse_text(&self, sql: &str) -> Option<String> {
        use sqlx::Connection;
        let url = self.synapse.database_url();
        // Each connection is closed before returning: a SQLite connection merely dropped
        // closes its file a moment later, and a migration started meanwhile sees this process
        // holding Synapse's database open and refuses (as it must).
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let value = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            value
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let value = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            value
        }
    }
}

impl Moving {
    /// Runs `sql` (statements separated by `;`) on Synapse's database.
    pub(crate) async fn synapse_execute(&self, sql: &str) {
        use sqlx::{Connection, Executor};
        let url = self.synapse.database_url();
        // Closed before returning, as in `synapse_text`.
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            conn.execute(sql).await.unwrap();
            conn.close().await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            conn.execute(sql).await.unwrap();
            conn.close().await.unwrap();
        }
    }

    /// How many rows of Synapse's database `from` (`FROM … WHERE …`) counts.
    async fn synapse_count(&self, from: &str) -> i64 {
        let sql = format!("SELECT CAST(COUNT(*) AS TEXT) {from}");
        self.synapse_text(&sql).await.unwrap().parse().unwrap()
    }

    /// A config for Synapse like its own, but on `database` (a SQLite path).
    fn synapse_config_on(&self, dir: &std::path::Path, database: &std::path::Path) -> String {
        let text = std::fs::read_to_string(&self.synapse.config).unwrap();
        let ours = self.synapse.database_url();
        let ours = ours.strip_prefix("sqlite:").unwrap();
        let path = dir.join(format!("synapse-{}.yaml", rand_suffix()));
        std::fs::write(&path, text.replace(ours, database.to_str().unwrap())).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `homekey migrate-from-synapse --synapse-config SYNAPSE -c CONFIG --database DATABASE`.
fn migrate_with(
    synapse: &str,
    config: &str,
    database: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "migrate-from-synapse",
        "--synapse-config",
        synapse,
        "-c",
        config,
        "--database",
        database,
    ];
    args.extend(extra);
    run_binary(HOMEKEY, &args, b"", &[])
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// The whole move, there and back, on a Synapse prepared on either database.
pub(crate) async fn there_and_back(synapse: Synapse, db: TestDb, test: &str) {
    let started = Instant::now();
    let mut moving = Moving::new(synapse, db);
    moving.synapse.start().await;
    moving.register("alice", "alice-pw", true);
    moving.register("bob", "bob-pw", false);
    moving.register("dave", "dave-pw", false);

    // Each registration made a device and token (4 of each with the logins below). alice
    // logs in with a plain token and opens a room; bob's client asks for a refresh token.
    let (status, body) = moving.synapse.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alice_token = body["access_token"].as_str().unwrap().to_owned();
    let alice_device = body["device_id"].as_str().unwrap().to_owned();
    // dave asks to be erased: Synapse deactivates him (his devices and tokens go) and marks
    // him in its `erased_users`.
    let (status, body) = moving
        .synapse
        .post_json(
            "/_synapse/admin/v1/deactivate/@dave:example.com",
            &alice_token,
            &json!({"erase": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, room) = moving
        .synapse
        .post_json(
            "/_matrix/client/v3/createRoom",
            &alice_token,
            &json!({"name": "moving day"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{room}");
    let room_id = room["room_id"].as_str().unwrap().to_owned();
    let response = moving
        .synapse
        .http
        .post(moving.synapse.url("/_matrix/client/v3/login"))
        .json(&json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "bob"},
            "password": "bob-pw",
            "refresh_token": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bob: Value = response.json().await.unwrap();
    let bob_refresh = bob["refresh_token"].as_str().unwrap().to_owned();
    let bob_device = bob["device_id"].as_str().unwrap().to_owned();

    // While Synapse runs, the migration refuses and changes nothing.
    let out = moving.homekey(&["migrate-from-synapse"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("Synapse"), "{}", stderr(&out));
    assert_eq!(
        moving
            .db
            .count("SELECT COUNT(*) FROM users WHERE $1 = $1", "")
            .await,
        0
    );
    moving.synapse.stop();

    // A dry run counts and changes nothing.
    let out = ok(&moving.homekey(&["migrate-from-synapse", "--dry-run"]));
    assert!(
        out.contains("would carry 3 account(s), 4 device(s), 4 access token(s), 1 refresh token(s) of the 3 read"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(
        moving
            .db
            .count("SELECT COUNT(*) FROM users WHERE $1 = $1", "")
            .await,
        0
    );

    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(
        out.contains(
            "carried 3 account(s), 4 device(s), 4 access token(s), 1 refresh token(s) of the 3 read"
        ),
        "{out}"
    );
    assert!(
        out.contains("1 of them were deactivated with erasure: carried as such"),
        "{out}"
    );
    // dave has no password because he is deactivated, not because he never had one.
    assert!(!out.contains("have no password"), "{out}");
    // A second run finds the job done.
    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(out.contains("carried 0 account(s)"), "{out}");
    assert!(
        out.contains("passed over 3 account(s) carried by an earlier run"),
        "{out}"
    );
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1",
                "@alice:example.com"
            )
            .await,
        2
    );

    // The switch: Synapse delegates to homekey.
    moving.switch_synapse(true);
    let homekey = moving.serve().await;
    moving.synapse.start().await;

    // alice's token from before the switch works on Synapse, on her device, and syncs her room.
    let (status, body) = moving.synapse.whoami(&alice_token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body}\n{}",
        moving.synapse.log_tail()
    );
    assert_eq!(body["user_id"], "@alice:example.com");
    assert_eq!(body["device_id"], alice_device.as_str());
    let (status, sync) = moving
        .synapse
        .get("/_matrix/client/v3/sync?timeout=0", &alice_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{sync}");
    assert!(sync["rooms"]["join"].get(&room_id).is_some(), "{sync}");
    // alice is still Synapse's admin, through homekey's answer.
    let (status, body) = moving
        .synapse
        .get("/_synapse/admin/v2/users/@bob:example.com", &alice_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // dave came over erased, not merely deactivated: in homekey's CLI and its Admin API.
    let shown: Value =
        serde_json::from_str(&ok(&moving.homekey_user(&["show", "dave", "--json"], ""))).unwrap();
    assert_eq!(shown["deactivated"], true, "{shown}");
    assert_eq!(shown["erased"], true, "{shown}");
    let (status, body) = homekey
        .call(
            "GET",
            "/_synapse/admin/v2/users/@dave:example.com",
            Some(&alice_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["erased"], true, "{body}");

    // bob's refresh token, from Synapse, refreshes at homekey on the same device.
    let (status, refreshed) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/refresh",
            None,
            Some(json!({"refresh_token": bob_refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let bob_token = refreshed["access_token"].as_str().unwrap().to_owned();
    let (status, body) = moving.synapse.whoami(&bob_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], bob_device.as_str());

    // The passwords log in through homekey, and the sessions work on Synapse.
    let (status, body) = homekey.login("bob", "bob-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = moving
        .synapse
        .whoami(body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    // A reset through homekey ends alice's old session on Synapse at once.
    ok(&moving.homekey_user(
        &[
            "set-password",
            "alice",
            "--logout-devices",
            "--password-stdin",
        ],
        "alice-new-pw\n",
    ));
    let (status, body) = moving.synapse.whoami(&alice_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = homekey.login("alice", "alice-new-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alice_homekey_token = body["access_token"].as_str().unwrap().to_owned();

    // An account made through homekey beside Synapse (which homekey makes exist there).
    ok(&moving.homekey_user(&["create", "erin", "--password-stdin"], "erin-pw\n"));
    ok(&moving.homekey_user(&["create", "frank", "--password-stdin"], "frank-pw\n"));

    // Once switched, Synapse's copies of the passwords are emptied.
    assert!(
        moving
            .synapse_text("SELECT password_hash FROM users WHERE name = '@bob:example.com'")
            .await
            .is_some()
    );
    let out = ok(&moving.homekey(&["migrate-from-synapse", "--clear-synapse-hashes"]));
    assert!(out.contains("emptied 2 password hash(es)"), "{out}");
    assert_eq!(
        moving
            .synapse_text("SELECT password_hash FROM users WHERE name = '@bob:example.com'")
            .await,
        None
    );

    // And back: both stopped, homekey's accounts and sessions into Synapse.
    moving.synapse.stop();
    // frank is erased through homekey while Synapse is down: only the way back can tell it.
    let (status, body) = homekey
        .call(
            "POST",
            "/_synapse/admin/v1/deactivate/@frank:example.com",
            Some(&alice_homekey_token),
            Some(json!({"erase": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Run again now, the migration finds every account homekey's: carried before, or made
    // by homekey in Synapse (erin): nothing to carry, no conflict.
    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(out.contains("carried 0 account(s)"), "{out}");
    assert!(
        out.contains("passed over 2 account(s) homekey made in this Synapse itself"),
        "{out}"
    );
    let out = moving.homekey(&["migrate-to-synapse"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("homekey may be serving"),
        "{}",
        stderr(&out)
    );
    let mut homekey = homekey;
    homekey.stop();
    drop(homekey);
    // The test's own handle on homekey's SQLite file would count as a homekey using it.
    moving.close_homekey_store().await;
    let out = ok(&moving.homekey(&["migrate-to-synapse", "--dry-run"]));
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(
        moving
            .synapse_text("SELECT password_hash FROM users WHERE name = '@bob:example.com'")
            .await,
        None
    );
    let out = ok(&moving.homekey(&["migrate-to-synapse"]));
    assert!(
        out.contains("wrote 5 account(s) back into Synapse's database"),
        "{out}"
    );
    assert!(
        out.contains("marked 1 account(s) erased in Synapse"),
        "{out}"
    );
    moving.switch_synapse(false);
    moving.synapse.start().await;

    // The passwords set under homekey log in on Synapse's own login (erin's account was made
    // under homekey); alice's old one does not.
    let (status, body) = moving.synapse.login("erin", "erin-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = moving.synapse.login("alice", "alice-new-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = moving.synapse.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The tokens homekey issued still work, on their devices; the one homekey ended does not.
    let (status, body) = moving.synapse.whoami(&alice_homekey_token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body}\n{}",
        moving.synapse.log_tail()
    );
    assert_eq!(body["user_id"], "@alice:example.com");
    let (status, body) = moving.synapse.whoami(&bob_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], bob_device.as_str());
    let (status, _) = moving.synapse.whoami(&alice_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Synapse's Admin API says both erased: dave as he came, frank as homekey erased him.
    let (status, body) = moving.synapse.login("alice", "alice-new-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = body["access_token"].as_str().unwrap().to_owned();
    for user in ["@dave:example.com", "@frank:example.com"] {
        let (status, body) = moving
            .synapse
            .get(&format!("/_synapse/admin/v2/users/{user}"), &admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (&body["deactivated"], &body["erased"]),
            (&json!(true), &json!(true)),
            "{user}: {body}"
        );
    }
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn a_synapse_on_sqlite_moves_to_homekey_and_back_without_logging_anyone_out() {
    let test = "a_synapse_on_sqlite_moves_to_homekey_and_back_without_logging_anyone_out";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    there_and_back(synapse, TestDb::sqlite().await, test).await;
}

/// What the migration cannot carry it says, and what would make it wrong it refuses, with a
/// one-line message and nothing changed: a database that is not Synapse's, an unknown schema
/// version, homekey's config given as Synapse's, a different pepper, and accounts homekey
/// already has (each named, none changed). Guests are left to Synapse, appservice users
/// carried as their appservice's, accounts without a password carried as such, hidden
/// devices (cross-signing keys) left out.
#[tokio::test]
async fn the_migration_refuses_what_would_go_wrong_and_says_what_it_leaves() {
    let test = "the_migration_refuses_what_would_go_wrong_and_says_what_it_leaves";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let started = Instant::now();
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    let mut moving = Moving::new(synapse, TestDb::sqlite().await);
    moving.synapse.start().await;
    moving.register("alice", "alice-pw", false);
    moving.register("carol", "carol-pw", false);
    moving.synapse.stop();
    // What a real Synapse also holds: a guest, a bridge's user, an SSO-only account, two
    // from before Synapse told user IDs apart ignoring case, and alice's cross-signing keys
    // as a hidden device.
    moving
        .synapse_execute(
            "INSERT INTO users (name, creation_ts, is_guest) VALUES ('@123:example.com', 1700000000, 1);
             INSERT INTO users (name, creation_ts, appservice_id) VALUES ('@irc_x:example.com', 1700000000, 'irc');
             INSERT INTO users (name, creation_ts) VALUES ('@sso:example.com', 1700000000);
             INSERT INTO users (name, creation_ts) VALUES ('@DAVE:example.com', 1700000000);
             INSERT INTO users (name, creation_ts) VALUES ('@dave:example.com', 1700000000);
             INSERT INTO devices (user_id, device_id, hidden) VALUES ('@alice:example.com', 'master signing key', TRUE)",
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = moving.config.path().to_str().unwrap().to_owned();
    let database = moving.database.clone();
    let synapse_config = moving.synapse.config.to_str().unwrap().to_owned();
    let refused = |out: &std::process::Output, needle: &str| {
        assert_eq!(out.status.code(), Some(1), "{}{}", stdout(out), stderr(out));
        let err = stderr(out);
        assert!(err.contains(needle), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    };

    // A database that is not Synapse's: homekey's own.
    let homekey_db = tempfile::tempdir().unwrap();
    let homekey_file = homekey_db.path().join("other.db");
    let other = TestDb::sqlite().await;
    let homekey::config::DatabaseConfig::Sqlite { path } = &other.config else {
        unreachable!()
    };
    // A whole copy (VACUUM INTO): the file alone may hold none of its tables yet, which are
    // in its WAL until a checkpoint.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        sqlx::query("VACUUM INTO $1")
            .bind(homekey_file.to_str().unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let out = migrate_with(
        &moving.synapse_config_on(dir.path(), &homekey_file),
        &config,
        &database,
        &[],
    );
    refused(&out, "is not a Synapse database");

    // Synapse's database gone (a typo in its config, a wrong host's file).
    let out = migrate_with(
        &moving.synapse_config_on(dir.path(), &dir.path().join("missing.db")),
        &config,
        &database,
        &[],
    );
    refused(
        &out,
        "missing.db does not exist: check database.args.database in",
    );
    assert!(!dir.path().join("missing.db").exists());

    // A schema version homekey does not know.
    let future = dir.path().join("future.db");
    std::fs::copy(
        moving
            .synapse
            .database_url()
            .strip_prefix("sqlite:")
            .unwrap(),
        &future,
    )
    .unwrap();
    {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", future.display()))
            .await
            .unwrap();
        conn.execute("UPDATE schema_version SET version = 99")
            .await
            .unwrap();
    }
    let out = migrate_with(
        &moving.synapse_config_on(dir.path(), &future),
        &config,
        &database,
        &[],
    );
    refused(&out, "schema version 99; homekey knows 85 to 94");

    // homekey's config in the place of Synapse's.
    let out = migrate_with(&config, &config, &database, &[]);
    refused(&out, "this is homekey's config");

    // Another pepper: no carried password would log in.
    let peppered = dir.path().join("peppered.yaml");
    std::fs::write(
        &peppered,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(PEPPER, "another-pepper"),
    )
    .unwrap();
    let out = migrate_with(&synapse_config, peppered.to_str().unwrap(), &database, &[]);
    refused(&out, "password_config.pepper differs");
    assert_eq!(
        moving
            .db
            .count("SELECT COUNT(*) FROM users WHERE $1 = $1", "")
            .await,
        0
    );

    // A refused first run leaves no homekey database behind.
    let fresh = dir.path().join("fresh-homekey.db");
    let fresh_url = format!("sqlite:{}", fresh.display());
    for (synapse_config, config, why) in [
        (
            moving.synapse_config_on(dir.path(), &dir.path().join("missing.db")),
            config.clone(),
            "does not exist",
        ),
        (
            moving.synapse_config_on(dir.path(), &future),
            config.clone(),
            "schema version 99",
        ),
        (
            synapse_config.clone(),
            peppered.to_str().unwrap().to_owned(),
            "pepper differs",
        ),
    ] {
        let out = migrate_with(&synapse_config, &config, &fresh_url, &[]);
        refused(&out, why);
        assert!(!fresh.exists(), "{why}: homekey's database was created");
    }

    // The dry run says what is left to Synapse and what is carried as it is.
    let out = ok(&migrate_with(
        &synapse_config,
        &config,
        &database,
        &["--dry-run"],
    ));
    assert!(out.contains("would carry 5 account(s), 2 device(s), 2 access token(s), 0 refresh token(s) of the 7 read"), "{out}");
    assert!(out.contains("2 of them have no password"), "{out}");
    assert!(
        out.contains("1 account(s) not carried: their user ID differs only in case from one carried (homekey tells user IDs apart ignoring case, as Synapse does at login): @dave:example.com"),
        "{out}"
    );
    assert!(out.contains("left out 1 guest account(s)"), "{out}");
    // The bridge's user is carried, and not counted as an account without a password.
    assert!(
        out.contains("would carry 1 appservice user(s) with their devices and tokens"),
        "{out}"
    );

    // An account homekey has already (not from a run) is named and left as it is; the
    // others are carried.
    // (Made straight in homekey's database: beside a stopped Synapse, homekey could not
    // check the name with it.)
    ok(&run_binary(
        HOMEKEY,
        &[
            "user",
            "create",
            "@carol:example.com",
            "--password-stdin",
            "--database",
            &database,
        ],
        b"homekey-carol-pw\n",
        &[],
    ));
    let carols_hash = || async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&database).await.unwrap();
        sqlx::query_scalar::<_, String>(
            "SELECT password_hash FROM users WHERE name = '@carol:example.com'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    let before = carols_hash().await;
    let out = migrate_with(&synapse_config, &config, &database, &[]);
    refused(
        &out,
        "1 account(s) homekey already had were not carried and not changed (they are not from an earlier run; --replace-existing replaces them by Synapse's): @carol:example.com",
    );
    assert!(
        stdout(&out).contains("carried 4 account(s)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(carols_hash().await, before);
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM devices WHERE user_id = $1",
                "@carol:example.com"
            )
            .await,
        0
    );
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE name = $1",
                "@123:example.com"
            )
            .await
            + moving
                .db
                .count(
                    "SELECT COUNT(*) FROM devices WHERE device_id = $1",
                    "master signing key"
                )
                .await,
        0
    );
    // The bridge's user is its appservice's still, without a password.
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE name = $1 AND appservice_id = 'irc' \
                 AND password_hash IS NULL",
                "@irc_x:example.com"
            )
            .await,
        1
    );

    // A name that differs only in case from an account carried before (here by the run
    // above; so too from an earlier batch) is said as such, not as a conflict.
    moving
        .synapse_execute(
            "INSERT INTO users (name, creation_ts) VALUES ('@ALICE:example.com', 1700000000)",
        )
        .await;
    // carol, homekey's own, has a session of homekey's.
    let homekey_token = ok(&run_binary(
        HOMEKEY,
        &[
            "user",
            "login",
            "@carol:example.com",
            "--database",
            &database,
        ],
        b"",
        &[],
    ));
    let homekey_token = homekey_token.trim();
    let token_rows = |token: String| {
        let database = database.clone();
        async move {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&database).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM access_tokens WHERE token = $1")
                .bind(token)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(token_rows(homekey_token.to_owned()).await, 1);
    let out = migrate_with(&synapse_config, &config, &database, &[]);
    refused(
        &out,
        "1 account(s) homekey already had were not carried and not changed (they are not from an earlier run; --replace-existing replaces them by Synapse's): @carol:example.com",
    );
    assert!(
        stdout(&out).contains("2 account(s) not carried: their user ID differs only in case from one carried (homekey tells user IDs apart ignoring case, as Synapse does at login): @ALICE:example.com, @dave:example.com"),
        "{}",
        stdout(&out)
    );

    // Asked, the conflict is replaced by Synapse's account: first as a dry run, which
    // changes nothing, then for real.
    let synapse_carol = |column: &'static str| {
        let moving = &moving;
        async move {
            moving
                .synapse_text(&format!(
                    "SELECT {column} FROM users WHERE name = '@carol:example.com'"
                ))
                .await
                .unwrap()
        }
    };
    let synapse_hash = synapse_carol("password_hash").await;
    let synapse_token = moving
        .synapse_text("SELECT token FROM access_tokens WHERE user_id = '@carol:example.com'")
        .await
        .unwrap();
    let out = ok(&migrate_with(
        &synapse_config,
        &config,
        &database,
        &["--replace-existing", "--dry-run"],
    ));
    assert!(
        out.contains("would replace 1 account(s) homekey had of its own by Synapse's (their homekey sessions would end): @carol:example.com"),
        "{out}"
    );
    assert_eq!(carols_hash().await, before);
    assert_eq!(token_rows(homekey_token.to_owned()).await, 1);
    // An admin's token acting as homekey's carol ("login as user") ends with her too.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&database).await.unwrap();
        sqlx::query(
            "INSERT INTO access_tokens (user_id, token, puppets_user_id) \
             VALUES ('@alice:example.com', 'puppet_of_carol', '@carol:example.com')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let out = ok(&migrate_with(
        &synapse_config,
        &config,
        &database,
        &["--replace-existing"],
    ));
    assert_eq!(token_rows("puppet_of_carol".to_owned()).await, 0);
    assert!(
        out.contains("carried 1 account(s), 1 device(s), 1 access token(s), 0 refresh token(s)"),
        "{out}"
    );
    assert!(
        out.contains("replaced 1 account(s) homekey had of its own by Synapse's (their homekey sessions ended): @carol:example.com"),
        "{out}"
    );
    assert_eq!(carols_hash().await, synapse_hash);
    assert_eq!(token_rows(homekey_token.to_owned()).await, 0);
    assert_eq!(token_rows(synapse_token).await, 1);
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_audit_log WHERE action = 'replace_from_synapse' AND target = $1",
                "@carol:example.com"
            )
            .await,
        1
    );
    // Now carol is carried: the next run passes over her, and has nothing left to refuse.
    let out = ok(&migrate_with(&synapse_config, &config, &database, &[]));
    assert!(out.contains("carried 0 account(s)"), "{out}");
    assert!(
        out.contains("passed over 5 account(s) carried by an earlier run"),
        "{out}"
    );
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Killed in the middle (`kill -9` after its first batch), the migration is finished by the
/// next run: every account once, every token once, and an account changed in homekey in
/// between keeps homekey's change.
#[tokio::test]
async fn a_migration_killed_midway_is_finished_by_the_next_run() {
    let test = "a_migration_killed_midway_is_finished_by_the_next_run";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    const USERS: i64 = 20_000;
    let started = Instant::now();
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    let mut moving = Moving::new(synapse, TestDb::sqlite().await);
    // Synapse makes its schema and one real account; the rest are written as Synapse writes
    // them, with that account's hash.
    moving.synapse.start().await;
    moving.register("model", "model-pw", false);
    moving.synapse.stop();
    moving
        .synapse_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS})
             INSERT INTO users (name, password_hash, creation_ts)
             SELECT printf('@user%06d:example.com', i),
                    (SELECT password_hash FROM users WHERE name = '@model:example.com'), 1700000000
             FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS})
             INSERT INTO devices (user_id, device_id, display_name, last_seen)
             SELECT printf('@user%06d:example.com', i), 'PHONE', 'phone', 1700000000000 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS})
             INSERT INTO access_tokens (id, user_id, device_id, token)
             SELECT 1000 + i, printf('@user%06d:example.com', i), 'PHONE', printf('syt_user%06d_token', i) FROM n"
        ))
        .await;

    // Killed once its first batch is in.
    let mut child = std::process::Command::new(HOMEKEY)
        .args([
            "migrate-from-synapse",
            "--synapse-config",
            moving.synapse.config.to_str().unwrap(),
            "-c",
            moving.config.path().to_str().unwrap(),
            "--database",
            &moving.database,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first_progress = lines
            .map_while(Result::ok)
            .find(|line| line.contains("% of") || line.contains("%: "));
        assert!(first_progress.is_some(), "no progress line");
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the migration ended before it was killed"
    );
    let count = |sql: &'static str| {
        let db = &moving.db;
        async move { db.count(sql, "").await }
    };
    let carried = count("SELECT COUNT(*) FROM users WHERE $1 = $1").await;
    assert!(
        carried > 0 && carried < USERS + 1,
        "{carried} accounts carried before the kill: it did not stop midway"
    );

    // In between, the operator changes a carried account in homekey.
    ok(&moving.homekey_user(
        &["set-password", "user000001", "--password-stdin"],
        "changed-in-homekey\n",
    ));
    let changed_hash = moving
        .db
        .count("SELECT COUNT(*) FROM users WHERE name = $1 AND password_hash = (SELECT password_hash FROM users WHERE name = '@model:example.com')", "@user000001:example.com")
        .await;
    assert_eq!(changed_hash, 0);

    // On a terminal this time: the progress is a bar with counts and rate.
    let (out, code) = crate::support::on_a_terminal(
        &[
            HOMEKEY,
            "migrate-from-synapse",
            "--synapse-config",
            moving.synapse.config.to_str().unwrap(),
            "-c",
            moving.config.path().to_str().unwrap(),
            "--database",
            &moving.database,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("/{} accounts (", USERS + 1)), "{out}");
    assert!(
        out.contains(&format!("carried {} account(s)", USERS + 1 - carried)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "passed over {carried} account(s) carried by an earlier run"
        )),
        "{out}"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM users WHERE $1 = $1").await,
        USERS + 1
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT token) FROM access_tokens WHERE $1 = $1").await,
        USERS + 1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM access_tokens WHERE $1 = $1").await,
        USERS + 1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM devices WHERE $1 = $1").await,
        USERS + 1
    );
    // homekey's change stands.
    assert_eq!(
        moving
            .db
            .count("SELECT COUNT(*) FROM users WHERE name = $1 AND password_hash = (SELECT password_hash FROM users WHERE name = '@model:example.com')", "@user000001:example.com")
            .await,
        0
    );
    eprintln!(
        "{test}: killed after {carried} of {} accounts; {:.1} s",
        USERS + 1,
        started.elapsed().as_secs_f64()
    );
}

/// Two user IDs that differ only in case, batches apart (upper case sorts first): the first
/// run, into an empty homekey, carries the first and names the other, instead of failing
/// on homekey's unique lower-case index when it reaches it. Of a person's account and an
/// appservice user's that differ only in case, the person's is carried.
#[tokio::test]
async fn names_differing_only_in_case_batches_apart_are_carried_once() {
    let test = "names_differing_only_in_case_batches_apart_are_carried_once";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    const USERS: i64 = 6_000;
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    let mut moving = Moving::new(synapse, TestDb::sqlite().await);
    moving.synapse.start().await;
    moving.synapse.stop();
    moving
        .synapse_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS})
             INSERT INTO users (name, creation_ts)
             SELECT printf('@user%06d:example.com', i), 1700000000 FROM n;
             INSERT INTO users (name, creation_ts) VALUES ('@Zed:example.com', 1700000000);
             INSERT INTO users (name, creation_ts) VALUES ('@zed:example.com', 1700000000);
             INSERT INTO users (name, creation_ts, appservice_id) VALUES ('@Irc_yu:example.com', 1700000000, 'irc');
             INSERT INTO users (name, creation_ts) VALUES ('@irc_yu:example.com', 1700000000)"
        ))
        .await;
    let synapse_config = moving.synapse.config.to_str().unwrap().to_owned();
    let config = moving.config.path().to_str().unwrap().to_owned();
    let out = ok(&migrate_with(
        &synapse_config,
        &config,
        &moving.database,
        &[],
    ));
    // The appservice's @Irc_yu (first by name) gives way to the person's @irc_yu.
    assert!(
        out.contains(&format!("carried {} account(s)", USERS + 2)),
        "{out}"
    );
    assert!(
        out.contains("2 account(s) not carried: their user ID differs only in case from one carried (homekey tells user IDs apart ignoring case, as Synapse does at login): @Irc_yu:example.com, @zed:example.com"),
        "{out}"
    );
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE name = $1 AND appservice_id IS NULL",
                "@irc_yu:example.com"
            )
            .await,
        1
    );
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE lower(name) = $1",
                "@zed:example.com"
            )
            .await,
        1
    );
}

/// A Synapse on its own auth and a homekey database, both on PostgreSQL; `None` (said) when
/// either cannot be had here.
async fn both_on_postgres(test: &str) -> Option<(Synapse, TestDb)> {
    let venv = synapse_venv(test)?;
    let synapse = Synapse::prepare_on(venv, &own_auth(), SynapseDatabase::Postgres, test).await?;
    let db = TestDb::postgres(test).await?;
    Some((synapse, db))
}

#[tokio::test]
async fn a_synapse_on_postgres_moves_to_homekey_and_back_without_logging_anyone_out() {
    let test = "a_synapse_on_postgres_moves_to_homekey_and_back_without_logging_anyone_out";
    let Some((synapse, db)) = both_on_postgres(test).await else {
        return;
    };
    there_and_back(synapse, db, test).await;
}

/// On PostgreSQL too: an account homekey had of its own is named and left, then, asked,
/// replaced by Synapse's: Synapse's password and session, homekey's session of it ended.
#[tokio::test]
async fn on_postgres_an_account_homekey_had_is_replaced_by_synapses_when_asked() {
    let test = "on_postgres_an_account_homekey_had_is_replaced_by_synapses_when_asked";
    let Some((synapse, db)) = both_on_postgres(test).await else {
        return;
    };
    let mut moving = Moving::new(synapse, db);
    moving.synapse.start().await;
    moving.register("carol", "carol-pw", false);
    moving.synapse.stop();
    // Made straight in homekey's database (beside a stopped Synapse homekey could not check
    // the name with it), with a session of homekey's.
    let database = moving.database.clone();
    let homekey = |args: &[&str], stdin: &[u8]| {
        let mut all = vec!["user"];
        all.extend(args);
        all.extend(["--database", &database]);
        ok(&run_binary(HOMEKEY, &all, stdin, &[]))
    };
    homekey(
        &["create", "@carol:example.com", "--password-stdin"],
        b"homekey-carol-pw\n",
    );
    let homekey_token = homekey(&["login", "@carol:example.com"], b"")
        .trim()
        .to_owned();
    let tokens = |token: String| {
        let db = &moving.db;
        async move {
            db.count(
                "SELECT COUNT(*) FROM access_tokens WHERE token = $1",
                &token,
            )
            .await
        }
    };

    let out = moving.homekey(&["migrate-from-synapse"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not carried and not changed")
            && stderr(&out).contains("@carol:example.com"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tokens(homekey_token.clone()).await, 1);

    let out = ok(&moving.homekey(&["migrate-from-synapse", "--replace-existing"]));
    assert!(
        out.contains("replaced 1 account(s) homekey had of its own by Synapse's (their homekey sessions ended): @carol:example.com"),
        "{out}"
    );
    assert_eq!(tokens(homekey_token).await, 0);
    let synapse_token = moving
        .synapse_text("SELECT token FROM access_tokens WHERE user_id = '@carol:example.com'")
        .await
        .unwrap();
    assert_eq!(tokens(synapse_token).await, 1);
    let synapse_hash = moving
        .synapse_text("SELECT password_hash FROM users WHERE name = '@carol:example.com'")
        .await
        .unwrap();
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE name = '@carol:example.com' AND password_hash = $1",
                &synapse_hash
            )
            .await,
        1
    );
}

/// The way back into a Synapse whose PostgreSQL database does not sort as C (ICU's `en-US`:
/// `@alice` before `@Member2` before `@member3` before `@Zed`, where homekey's batches, in
/// byte order, put every capital first: the first batch runs from `@Member10` to a
/// `@member…`, which `@Zed` sorts after in Synapse's order), with user IDs in mixed case,
/// over more than one batch: the way in carries every session, and
/// the way back ends in Synapse the session homekey ended and keeps the ones it kept (none
/// reported without its device). homekey's own database is `db`.
async fn the_way_back_into_a_synapse_not_sorting_as_c(db: TestDb, test: &str) {
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(synapse) = Synapse::prepare_on(
        venv,
        &own_auth(),
        SynapseDatabase::PostgresEnUsCollation,
        test,
    )
    .await
    else {
        return;
    };
    let mut moving = Moving::new(synapse, db);
    moving.synapse.start().await;
    moving.register("alice", "alice-pw", false);
    let (status, body) = moving.synapse.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alice_token = body["access_token"].as_str().unwrap().to_owned();
    moving.synapse.stop();
    // More accounts than a batch (5,000), every other one capitalised, with a session each.
    const MEMBERS: i64 = 6_000;
    // Synapse's registration takes lower case only; older Synapses made such IDs.
    let zed_token = "syt_WmVk_mixedcasezedtoken_000000";
    moving
        .synapse_execute(&format!(
            "INSERT INTO users (name, creation_ts) VALUES ('@Zed:example.com', 1700000000);
             INSERT INTO devices (user_id, device_id) VALUES ('@Zed:example.com', 'ZEDDEVICE');
             INSERT INTO access_tokens (id, user_id, device_id, token)
                 VALUES (1000, '@Zed:example.com', 'ZEDDEVICE', '{zed_token}');
             INSERT INTO users (name, creation_ts)
                 SELECT '@' || (CASE WHEN i % 2 = 0 THEN 'M' ELSE 'm' END) || 'ember' || i
                     || ':example.com', 1700000000 FROM generate_series(1, {MEMBERS}) i;
             INSERT INTO devices (user_id, device_id) SELECT name, 'D' FROM users
                 WHERE lower(name) LIKE '@member%';
             INSERT INTO access_tokens (id, user_id, device_id, token)
                 SELECT 2000 + row_number() OVER (ORDER BY name), name, 'D', 'syt_' || name
                 FROM users WHERE lower(name) LIKE '@member%'"
        ))
        .await;
    assert_eq!(
        moving
            .synapse_text(
                "SELECT string_agg(name, ' ' ORDER BY name) FROM users \
                 WHERE name IN ('@alice:example.com', '@Zed:example.com')"
            )
            .await
            .as_deref(),
        Some("@alice:example.com @Zed:example.com"),
        "Synapse's database sorts as C"
    );

    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(
        out.contains(&format!(
            "carried {} account(s), {} device(s), {} access token(s)",
            MEMBERS + 2,
            MEMBERS + 3,
            MEMBERS + 3
        )),
        "{out}"
    );
    // homekey ends Zed's session (a reset with logout, on its own database).
    let database = moving.database.clone();
    ok(&run_binary(
        HOMEKEY,
        &[
            "user",
            "set-password",
            "@Zed:example.com",
            "--logout-devices",
            "--password-stdin",
            "--database",
            &database,
        ],
        b"bob-new-pw\n",
        &[],
    ));
    // The test's own handle on homekey's SQLite file would count as a homekey using it.
    moving.close_homekey_store().await;
    let out = ok(&moving.homekey(&["migrate-to-synapse"]));
    assert!(
        out.contains(&format!(
            "wrote {} account(s) back into Synapse's database",
            MEMBERS + 2
        )),
        "{out}"
    );
    // Every member's session kept, alice's two, Zed's gone.
    assert_eq!(
        moving
            .synapse_text("SELECT COUNT(*)::text FROM access_tokens")
            .await
            .as_deref(),
        Some((MEMBERS + 2).to_string().as_str())
    );

    moving.synapse.start().await;
    let (status, body) = moving.synapse.whoami(zed_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}\n{out}");
    let (status, body) = moving.synapse.whoami(&alice_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!out.contains("left out"), "{out}");
}

#[tokio::test]
async fn the_way_back_into_a_synapse_not_sorting_as_c_ends_the_sessions_homekey_ended() {
    let test = "the_way_back_into_a_synapse_not_sorting_as_c_ends_the_sessions_homekey_ended";
    the_way_back_into_a_synapse_not_sorting_as_c(TestDb::sqlite().await, test).await;
}

#[tokio::test]
async fn from_homekey_on_postgres_the_way_back_into_a_synapse_not_sorting_as_c_ends_sessions() {
    let test =
        "from_homekey_on_postgres_the_way_back_into_a_synapse_not_sorting_as_c_ends_sessions";
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    the_way_back_into_a_synapse_not_sorting_as_c(db, test).await;
}

/// The way back with an OAuth session: homekey keeps only a digest of its tokens, which
/// Synapse cannot take (and which, copied there, would become a token anyone reading homekey's
/// database could present to Synapse). A user signs in beside Synapse both ways, with a
/// password and with the OAuth API (a real grant: its device made in Synapse, as every
/// session's is); `migrate-to-synapse` carries the password login, ends the OAuth session and
/// names it (user and device), and writes no digest into Synapse's database. Once Synapse is
/// on its own login again, the password login's token works there; neither the OAuth token nor
/// its digest does. homekey's own database is `db`.
async fn the_way_back_ends_and_names_oauth_sessions(synapse: Synapse, db: TestDb, test: &str) {
    use crate::oauth_grants::{Browser, Client, VERIFIER, element_x, sign_in_and_allow};
    let started = Instant::now();
    let mut moving = Moving::new(synapse, db);
    moving.switch_synapse(true);
    let mut homekey = moving.serve().await;
    moving.synapse.start().await;
    ok(&moving.homekey_user(&["create", "alice", "--password-stdin"], "alice-pw\n"));

    // A password login, and an OAuth session on the device OAUTHDEVICE1.
    let (status, body) = homekey.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let password_token = body["access_token"].as_str().unwrap().to_owned();
    let password_device = body["device_id"].as_str().unwrap().to_owned();
    let client = Client::register(&homekey, element_x()).await;
    let mut browser = Browser::new();
    let query = client.query("OAUTHDEVICE1", &[]);
    let code = sign_in_and_allow(&homekey, &mut browser, &query, "alice", "alice-pw").await;
    let (status, tokens) = client.exchange(&homekey, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let oauth_token = tokens["access_token"].as_str().unwrap().to_owned();
    for token in [&password_token, &oauth_token] {
        let (status, body) = moving.synapse.whoami(token).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{body}\n{}",
            moving.synapse.log_tail()
        );
    }

    moving.synapse.stop();
    homekey.stop();
    drop(homekey);
    // The test's own handle on homekey's SQLite file would count as a homekey using it.
    moving.close_homekey_store().await;
    let ended = "1 OAuth session(s) ended: homekey keeps only a digest of their tokens, which \
                 Synapse cannot take; their apps must sign in again: \
                 @alice:example.com OAUTHDEVICE1";
    let out = ok(&moving.homekey(&["migrate-to-synapse", "--dry-run"]));
    assert!(out.contains(ended), "{out}");
    let out = ok(&moving.homekey(&["migrate-to-synapse"]));
    assert!(out.contains(ended), "{out}");
    // The password login's token only: the OAuth session's access and refresh tokens are
    // not written, nor reported as left out for want of a device (Synapse has it).
    assert!(
        out.contains(
            "wrote 1 account(s) back into Synapse's database, with 1 access token(s) and 0 \
             refresh token(s) it did not have"
        ),
        "{out}"
    );
    assert!(!out.contains("left out"), "{out}");
    let legacy = format!(
        "FROM access_tokens WHERE token = '{password_token}' AND device_id = '{password_device}'"
    );
    assert_eq!(moving.synapse_count(&legacy).await, 1, "{out}");
    for from in [
        "FROM access_tokens WHERE token LIKE 'sha256:%'",
        "FROM refresh_tokens WHERE token LIKE 'sha256:%'",
        "FROM access_tokens WHERE device_id = 'OAUTHDEVICE1'",
        "FROM refresh_tokens WHERE device_id = 'OAUTHDEVICE1'",
    ] {
        assert_eq!(moving.synapse_count(from).await, 0, "{from}\n{out}");
    }

    // On Synapse's own login again: the password login goes on, the OAuth session does not,
    // and its digest is no token there.
    moving.switch_synapse(false);
    moving.synapse.start().await;
    let (status, body) = moving.synapse.whoami(&password_token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body}\n{}",
        moving.synapse.log_tail()
    );
    assert_eq!(body["device_id"], password_device.as_str());
    let digest = homekey::store::token_forms::digest(&oauth_token);
    for token in [&oauth_token, &digest] {
        let (status, body) = moving.synapse.whoami(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn the_way_back_from_homekey_on_sqlite_ends_and_names_oauth_sessions() {
    let test = "the_way_back_from_homekey_on_sqlite_ends_and_names_oauth_sessions";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    the_way_back_ends_and_names_oauth_sessions(synapse, TestDb::sqlite().await, test).await;
}

#[tokio::test]
async fn the_way_back_from_homekey_on_postgres_ends_and_names_oauth_sessions() {
    let test = "the_way_back_from_homekey_on_postgres_ends_and_names_oauth_sessions";
    let Some((synapse, db)) = both_on_postgres(test).await else {
        return;
    };
    the_way_back_ends_and_names_oauth_sessions(synapse, db, test).await;
}

/// E-mail addresses and phone numbers (Synapse's `user_threepids`) move both ways: into
/// homekey canonical, those homekey cannot hold (a medium other than email and msisdn, an
/// address that is none) named and left in Synapse; back into Synapse as homekey has them
/// (an address added, one removed, a non-canonical row made canonical), the rows homekey
/// never held left alone; Synapse's own login then finds the account by its address.
async fn email_addresses_move_from_synapse_and_back(synapse: Synapse, db: TestDb, test: &str) {
    let started = Instant::now();
    let moving = Moving::new(synapse, db);
    let mut moving = moving;
    moving.synapse.start().await;
    moving.register("alice", "alice-pw", true);
    moving.register("bob", "bob-pw", false);
    moving.register("carol", "carol-pw", false);
    let (status, body) = moving.synapse.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = body["access_token"].as_str().unwrap().to_owned();
    let response = moving
        .synapse
        .http
        .put(
            moving
                .synapse
                .url("/_synapse/admin/v2/users/@bob:example.com"),
        )
        .bearer_auth(&admin)
        .json(&json!({"threepids": [
            {"medium": "email", "address": "bob@example.com"},
            {"medium": "msisdn", "address": "447700900000"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    moving.synapse.stop();
    // What an older Synapse, or a hand, left: an address as typed, one that is none, a
    // medium Synapse's APIs never write.
    moving
        .synapse_execute(
            "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) VALUES
             ('@carol:example.com', 'email', 'Carol@Example.COM', 1, 1),
             ('@carol:example.com', 'email', 'not-an-address', 1, 1),
             ('@carol:example.com', 'fax', '12345', 1, 1)",
        )
        .await;

    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(
        out.contains("carried 3 e-mail address(es) and phone number(s) with them"),
        "{out}"
    );
    assert!(
        out.contains(
            "2 third-party ID(s) not carried (left in Synapse's database): \
             @carol:example.com: email not-an-address (Unable to parse email address); \
             @carol:example.com: fax 12345 ('fax' is not a valid value for 'medium')"
        ),
        "{out}"
    );
    assert_eq!(
        ok(&moving.homekey_user(&["email", "list", "bob"], "")),
        "bob@example.com\n"
    );
    assert_eq!(
        ok(&moving.homekey_user(&["email", "list", "carol"], "")),
        "carol@example.com\n"
    );
    let shown: Value =
        serde_json::from_str(&ok(&moving.homekey_user(&["show", "bob", "--json"], ""))).unwrap();
    assert_eq!(shown["emails"], json!(["bob@example.com"]), "{shown}");

    // Changed in homekey: alice gets an address, bob loses his (his phone number stays).
    ok(&moving.homekey_user(&["email", "add", "alice", "Alice@Example.com"], ""));
    ok(&moving.homekey_user(&["email", "remove", "bob", "bob@example.com"], ""));
    moving.close_homekey_store().await;
    let out = ok(&moving.homekey(&["migrate-to-synapse"]));
    assert!(
        out.contains(
            "e-mail addresses and phone numbers as homekey has them: 2 given to accounts in \
             Synapse, 2 taken from them"
        ),
        "{out}"
    );
    let mut threepids = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let sql = format!(
            "SELECT COALESCE((SELECT {} FROM user_threepids \
             WHERE user_id = '@{user}:example.com'), '')",
            if moving.synapse.database_url().starts_with("sqlite:") {
                "group_concat(medium || ' ' || address, ', ')"
            } else {
                "string_agg(medium || ' ' || address, ', ' ORDER BY medium, address)"
            }
        );
        let mut got: Vec<String> = moving
            .synapse_text(&sql)
            .await
            .unwrap_or_default()
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        got.sort();
        threepids.push(got);
    }
    assert_eq!(
        threepids,
        [
            vec!["email alice@example.com"],
            vec!["msisdn 447700900000"],
            vec![
                "email carol@example.com",
                "email not-an-address",
                "fax 12345"
            ],
        ]
    );

    // Synapse's own login finds alice by the address homekey gave her.
    moving.synapse.start().await;
    let response = moving
        .synapse
        .http
        .post(moving.synapse.url("/_matrix/client/v3/login"))
        .json(&json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "alice@example.com"},
            "password": "alice-pw",
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@alice:example.com");
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn on_sqlite_email_addresses_move_from_synapse_and_back() {
    let test = "on_sqlite_email_addresses_move_from_synapse_and_back";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    email_addresses_move_from_synapse_and_back(synapse, TestDb::sqlite().await, test).await;
}

#[tokio::test]
async fn on_postgres_email_addresses_move_from_synapse_and_back() {
    let test = "on_postgres_email_addresses_move_from_synapse_and_back";
    let Some((synapse, db)) = both_on_postgres(test).await else {
        return;
    };
    email_addresses_move_from_synapse_and_back(synapse, db, test).await;
}

/// The tokens as a listing shows them (the Admin API's objects), by token.
fn tokens_by_name(listed: &Value) -> Vec<Value> {
    let mut tokens = listed.as_array().unwrap().clone();
    tokens.sort_by_key(|t| t["token"].as_str().unwrap().to_owned());
    tokens
}

fn token(
    name: &str,
    uses: Option<i64>,
    pending: i64,
    completed: i64,
    expiry: Option<i64>,
) -> Value {
    json!({"token": name, "uses_allowed": uses, "pending": pending, "completed": completed,
           "expiry_time": expiry})
}

/// Registration tokens move both ways: made in Synapse (its Admin API; a held use and an
/// expired one as its sign-ups and time leave them), carried into homekey with their limits
/// and completed uses and no held use, homekey's own token of the same text left as it was
/// and said, nothing written by a dry run; back into Synapse homekey's tokens (one made in
/// homekey, with a use held there) and homekey's limits over Synapse's copies, and Synapse's
/// Admin API lists them.
async fn registration_tokens_move_from_synapse_and_back(synapse: Synapse, db: TestDb, test: &str) {
    let started = Instant::now();
    let mut moving = Moving::new(synapse, db);
    moving.synapse.start().await;
    moving.register("alice", "alice-pw", true);
    let (status, body) = moving.synapse.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = body["access_token"].as_str().unwrap().to_owned();
    for made in [
        json!({"token": "limited", "uses_allowed": 3}),
        json!({"token": "unlimited"}),
        json!({"token": "in-both", "uses_allowed": 5}),
    ] {
        let response = moving
            .synapse
            .http
            .post(
                moving
                    .synapse
                    .url("/_synapse/admin/v1/registration_tokens/new"),
            )
            .bearer_auth(&admin)
            .json(&made)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{made}");
    }
    moving.synapse.stop();
    // A sign-up finished with `limited` and one under way; a token that expired (the Admin
    // API refuses an expiry in the past).
    moving
        .synapse_execute(
            "UPDATE registration_tokens SET pending = 1, completed = 1 WHERE token = 'limited';
             INSERT INTO registration_tokens (token, uses_allowed, pending, completed, \
             expiry_time) VALUES ('expired', 2, 0, 1, 1000)",
        )
        .await;
    // homekey has a token of the same text already, its own.
    ok(&moving.homekey_on_database(&[
        "registration-token",
        "create",
        "in-both",
        "--uses-allowed",
        "1",
    ]));
    let homekey_tokens = |moving: &Moving| {
        let listed: Value = serde_json::from_str(&ok(&moving.homekey_on_database(&[
            "registration-token",
            "list",
            "--json",
        ])))
        .unwrap();
        tokens_by_name(&listed)
    };
    let homekey_own = vec![token("in-both", Some(1), 0, 0, None)];
    assert_eq!(homekey_tokens(&moving), homekey_own);

    let out = ok(&moving.homekey(&["migrate-from-synapse", "--dry-run"]));
    assert!(
        out.contains(
            "would carry 3 registration token(s) with their limits and completed uses \
             (pending 0: unfinished sign-ups do not move); 1 already there, left as they were"
        ),
        "{out}"
    );
    assert_eq!(
        homekey_tokens(&moving),
        homekey_own,
        "a dry run writes nothing"
    );

    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(
        out.contains(
            "carried 3 registration token(s) with their limits and completed uses \
             (pending 0: unfinished sign-ups do not move); 1 already there, left as they were"
        ),
        "{out}"
    );
    assert_eq!(
        homekey_tokens(&moving),
        [
            token("expired", Some(2), 0, 1, Some(1000)),
            token("in-both", Some(1), 0, 0, None),
            token("limited", Some(3), 0, 1, None),
            token("unlimited", None, 0, 0, None),
        ]
    );
    // Audited on homekey's side as how many, never which.
    let audit = ok(&moving.homekey_on_database(&["audit", "list", "--json"]));
    assert!(
        !audit.contains("in-both") && !audit.contains("made-in"),
        "{audit}"
    );
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let token_records: Vec<&Value> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "carry_from_synapse" && r["details"]["registration_tokens"].is_number()
        })
        .collect();
    assert_eq!(token_records.len(), 1, "{audit}");
    assert_eq!(
        token_records[0]["details"],
        json!({"registration_tokens": 4})
    );
    // A second run finds them all there.
    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(
        out.contains("carried 0 registration token(s)") && out.contains("4 already there"),
        "{out}"
    );

    // Under homekey: a token made, with a sign-up under way; a limit changed; one deleted.
    ok(&moving.homekey_on_database(&[
        "registration-token",
        "create",
        "made-in-homekey",
        "--uses-allowed",
        "2",
    ]));
    assert!(
        moving
            .db
            .store
            .spend_registration_token("made-in-homekey", 0)
            .await
            .unwrap()
    );
    ok(&moving.homekey_on_database(&[
        "registration-token",
        "update",
        "limited",
        "--uses-allowed",
        "4",
    ]));
    ok(&moving.homekey_on_database(&["registration-token", "delete", "unlimited"]));
    moving.close_homekey_store().await;
    let count = "FROM registration_tokens";
    let out = ok(&moving.homekey(&["migrate-to-synapse", "--dry-run"]));
    assert!(
        out.contains("would write 1 registration token(s) into Synapse's database"),
        "{out}"
    );
    assert_eq!(
        moving.synapse_count(count).await,
        4,
        "a dry run writes nothing"
    );
    let out = ok(&moving.homekey(&["migrate-to-synapse"]));
    assert!(
        out.contains(
            "wrote 1 registration token(s) into Synapse's database with their limits and \
             completed uses (pending 0: unfinished sign-ups do not move); 3 Synapse had \
             already, given homekey's limits and completed uses (Synapse's pending kept)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "1 registration token(s) Synapse has that homekey does not (deleted under homekey, \
             or never carried): left as they are"
        ),
        "{out}"
    );

    moving.synapse.start().await;
    let (status, body) = moving.synapse.login("alice", "alice-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin = body["access_token"].as_str().unwrap().to_owned();
    let response = moving
        .synapse
        .http
        .get(moving.synapse.url("/_synapse/admin/v1/registration_tokens"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let listed: Value = response.json().await.unwrap();
    assert_eq!(
        tokens_by_name(&listed["registration_tokens"]),
        [
            token("expired", Some(2), 0, 1, Some(1000)),
            token("in-both", Some(1), 0, 0, None),
            // homekey's limit; Synapse's own sign-up under way still holds its use.
            token("limited", Some(4), 1, 1, None),
            token("made-in-homekey", Some(2), 0, 0, None),
            token("unlimited", None, 0, 0, None),
        ]
    );
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn on_sqlite_registration_tokens_move_from_synapse_and_back() {
    let test = "on_sqlite_registration_tokens_move_from_synapse_and_back";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    registration_tokens_move_from_synapse_and_back(synapse, TestDb::sqlite().await, test).await;
}

#[tokio::test]
async fn on_postgres_registration_tokens_move_from_synapse_and_back() {
    let test = "on_postgres_registration_tokens_move_from_synapse_and_back";
    let Some((synapse, db)) = both_on_postgres(test).await else {
        return;
    };
    registration_tokens_move_from_synapse_and_back(synapse, db, test).await;
}

/// A bridge's bot, logged in on Synapse with `m.login.application_service` on two devices
/// (its encryption devices), keeps them across the move: Synapse delegating asks homekey
/// about their tokens, and homekey, which carried them, answers; the appservice's own token
/// stays Synapse's. A device the bridge logs out under homekey is gone on the way back,
/// and the other's token works on Synapse's own auth again.
async fn a_bridge_bots_devices_move_from_synapse_and_back(
    synapse: Synapse,
    db: TestDb,
    test: &str,
) {
    use crate::appservice_login::{AS_TOKEN, as_login, write_registration};
    let started = Instant::now();
    let registrations = tempfile::tempdir().unwrap();
    let mut moving = Moving::new(synapse, db);
    let config = std::fs::read_to_string(&moving.synapse.config).unwrap();
    std::fs::write(
        &moving.synapse.config,
        format!("{config}\n{}", write_registration(registrations.path())),
    )
    .unwrap();
    moving.synapse.start().await;
    let (status, body) = moving
        .synapse
        .post_json(
            "/_matrix/client/v3/register",
            AS_TOKEN,
            &json!({"type": "m.login.application_service", "username": "bridge_bot",
                    "inhibit_login": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut devices = Vec::new();
    for _ in 0..2 {
        let (status, body) = moving
            .synapse
            .post_json(
                "/_matrix/client/v3/login",
                AS_TOKEN,
                &as_login("bridge_bot"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        devices.push((
            body["access_token"].as_str().unwrap().to_owned(),
            body["device_id"].as_str().unwrap().to_owned(),
        ));
    }
    let (ended_token, ended_device) = devices.pop().unwrap();
    let (kept_token, kept_device) = devices.pop().unwrap();
    moving.synapse.stop();

    let out = ok(&moving.homekey(&["migrate-from-synapse"]));
    assert!(
        out.contains("carried 1 appservice user(s) with their devices and tokens"),
        "{out}"
    );
    moving.switch_synapse(true);
    let mut homekey = moving.serve().await;
    moving.synapse.start().await;
    for (token, device) in [(&kept_token, &kept_device), (&ended_token, &ended_device)] {
        let (status, body) = moving.synapse.whoami(token).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{body}\n{}",
            moving.synapse.log_tail()
        );
        assert_eq!(body["user_id"], "@bridge_bot:example.com");
        assert_eq!(body["device_id"], device.as_str());
    }
    // The appservice's own token is Synapse's to check, as before.
    let (status, body) = moving.synapse.whoami(AS_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@bridgebot:example.com");
    // The bridge logs one device out (beside Synapse its /logout is homekey's).
    let (status, body) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/logout",
            Some(&ended_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = moving.synapse.whoami(&ended_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Still the appservice's user: no password, never given one by homekey.
    assert_eq!(
        moving
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE name = $1 AND appservice_id = 'bridge' \
                 AND password_hash IS NULL",
                "@bridge_bot:example.com"
            )
            .await,
        1
    );

    moving.synapse.stop();
    homekey.stop();
    drop(homekey);
    moving.close_homekey_store().await;
    ok(&moving.homekey(&["migrate-to-synapse"]));
    moving.switch_synapse(false);
    moving.synapse.start().await;
    let (status, body) = moving.synapse.whoami(&kept_token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body}\n{}",
        moving.synapse.log_tail()
    );
    assert_eq!(body["device_id"], kept_device.as_str());
    let (status, _) = moving.synapse.whoami(&ended_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn on_sqlite_a_bridge_bots_devices_move_from_synapse_and_back() {
    let test = "on_sqlite_a_bridge_bots_devices_move_from_synapse_and_back";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let synapse = Synapse::prepare_with_auth(venv, &own_auth());
    a_bridge_bots_devices_move_from_synapse_and_back(synapse, TestDb::sqlite().await, test).await;
}

#[tokio::test]
async fn on_postgres_a_bridge_bots_devices_move_from_synapse_and_back() {
    let test = "on_postgres_a_bridge_bots_devices_move_from_synapse_and_back";
    let Some((synapse, db)) = both_on_postgres(test).await else {
        return;
    };
    a_bridge_bots_devices_move_from_synapse_and_back(synapse, db, test).await;
}
