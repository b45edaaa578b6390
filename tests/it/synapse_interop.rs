//! homekey on a real Synapse's database: Synapse (from `$HOMEKEY_TEST_SYNAPSE`, a venv with
//! `matrix-synapse`; `.ci/run` makes one) creates its SQLite database and a user, stops;
//! `homekey user set-password` changes the password straight in that database; Synapse starts
//! again and logs the user in with the new password only (and an account homekey created
//! there too). Synapse listens on 127.0.0.1 only
//! and talks to no other server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use homekey::config::DatabaseConfig;

use crate::support::{
    HOMEKEY, PostgresGuard, REGISTER_NEW_MATRIX_USER, TestDb, run_binary, stderr, stdout,
    synapse_venv,
};

pub(crate) const SHARED_SECRET: &str = "interop-shared-secret";
pub(crate) const PEPPER: &str = "interop-pepper";

/// Where a [`Synapse`] keeps its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SynapseDatabase {
    /// `homeserver.db` in the Synapse's temporary directory.
    Sqlite,
    /// A fresh database of the test PostgreSQL server (`$HOMEKEY_TEST_POSTGRES_URL`, as the
    /// store's PostgreSQL tests), created with the C collation Synapse requires and dropped
    /// with the fixture.
    Postgres,
    /// The same with a collation that is not C: ICU's `en-US` (`@alice` sorts before `@Bob`,
    /// where C puts capitals first), which Synapse takes with `allow_unsafe_locale: true`, as
    /// older installations have it.
    PostgresEnUsCollation,
}

/// A Synapse homeserver for example.com on SQLite in a temporary directory (or on a
/// PostgreSQL database of its own: [`Synapse::prepare_on`]), listening on a free port of
/// 127.0.0.1; killed when dropped (and its PostgreSQL database dropped after it).
pub(crate) struct Synapse {
    venv: PathBuf,
    dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    port: u16,
    child: Option<Child>,
    pub(crate) http: reqwest::Client,
    /// Declared after `child`: the database goes once Synapse is gone.
    postgres: Option<SynapsePostgres>,
}

/// A Synapse's PostgreSQL database: its URL, and the guard that drops it.
struct SynapsePostgres {
    url: String,
    _guard: PostgresGuard,
}

impl Synapse {
    /// Writes the config and generates the signing key.
    fn prepare(venv: PathBuf) -> Synapse {
        Synapse::prepare_with_auth(venv, &format!("password_config:\n  pepper: {PEPPER}\n"))
    }

    /// [`Synapse::prepare`], with `auth` (YAML) in the place of `password_config`.
    pub(crate) fn prepare_with_auth(venv: PathBuf, auth: &str) -> Synapse {
        let dir = tempfile::tempdir().unwrap();
        let database = format!(
            "database:\n  name: sqlite3\n  args:\n    database: {}/homeserver.db\n",
            dir.path().display()
        );
        Synapse::prepare_in(venv, auth, dir, &database, None)
    }

    /// [`Synapse::prepare_with_auth`] on the given database. `None` when the test is skipped:
    /// [`SynapseDatabase::Postgres`] without a reachable PostgreSQL (under CI a failure, as
    /// for every PostgreSQL test; see `support::skip`).
    pub(crate) async fn prepare_on(
        venv: PathBuf,
        auth: &str,
        database: SynapseDatabase,
        test: &str,
    ) -> Option<Synapse> {
        match database {
            SynapseDatabase::Sqlite => Some(Synapse::prepare_with_auth(venv, auth)),
            SynapseDatabase::Postgres | SynapseDatabase::PostgresEnUsCollation => {
                let c_collation = database == SynapseDatabase::Postgres;
                let (yaml, postgres) = synapse_postgres_database(test, c_collation).await?;
                let dir = tempfile::tempdir().unwrap();
                Some(Synapse::prepare_in(venv, auth, dir, &yaml, Some(postgres)))
            }
        }
    }

    /// Writes the config (`database`: the YAML of its `database:` section) into `dir` and
    /// generates the signing key.
    fn prepare_in(
        venv: PathBuf,
        auth: &str,
        dir: tempfile::TempDir,
        database: &str,
        postgres: Option<SynapsePostgres>,
    ) -> Synapse {
        let port = crate::support::free_port();
        let d = dir.path().display();
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(
            &config,
            format!(
                "server_name: example.com
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    tls: false
    type: http
    x_forwarded: false
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client]
        compress: false
{database}media_store_path: {d}/media_store
signing_key_path: {d}/example.com.signing.key
registration_shared_secret: {SHARED_SECRET}
macaroon_secret_key: interop-macaroon-key
enable_registration: false
report_stats: false
suppress_key_server_warning: true
trusted_key_servers: []
bcrypt_rounds: 5
{auth}rc_login:
  address: {{per_second: 1000, burst_count: 1000}}
  account: {{per_second: 1000, burst_count: 1000}}
  failed_attempts: {{per_second: 1000, burst_count: 1000}}
"
            ),
        )
        .unwrap();
        let synapse = Synapse {
            venv,
            dir,
            config,
            port,
            child: None,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            postgres,
        };
        let out = synapse
            .python_command()
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(&synapse.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        synapse
    }

    /// A command of the venv, kept off any proxy: every request goes to 127.0.0.1.
    pub(crate) fn venv_command(&self, program: &str) -> Command {
        let mut command = Command::new(self.venv.join("bin").join(program));
        for var in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            command.env_remove(var);
        }
        command.env("NO_PROXY", "127.0.0.1,localhost");
        command.current_dir(self.dir.path());
        command
    }

    fn python_command(&self) -> Command {
        self.venv_command("python")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("synapse.log")
    }

    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Starts Synapse and waits until it answers `/_matrix/client/versions`.
    pub(crate) async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = self
            .python_command()
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let answered = self
                .http
                .get(self.url("/_matrix/client/versions"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "Synapse exited ({status}) before answering:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Synapse did not answer in 120 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM, and waits for Synapse to exit (killed after 30 s).
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/_matrix/client/v3/login"))
            .json(&json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn whoami(&self, token: &str) -> (StatusCode, Value) {
        self.get("/_matrix/client/v3/account/whoami", token).await
    }

    /// `GET path` with `token`; the status and the JSON answer (null if none).
    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body and a token; the status and the JSON answer.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Freezes Synapse (SIGSTOP: it accepts connections and answers none) or thaws it
    /// (SIGCONT).
    pub(crate) fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("Synapse is running");
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `homekey ARGS -c <Synapse's homeserver.yaml>`.
    fn homekey(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["-c", path_str(&self.config)]);
        run_binary(HOMEKEY, &all, stdin.as_bytes(), &[])
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh database for Synapse on the test PostgreSQL server: the `database:` section of its
/// homeserver.yaml, and the database (its URL, its guard). It is the store tests' fresh
/// database ([`TestDb::postgres_empty`]: its unique name, its skip, its drop), made again
/// with the collation Synapse insists on (it refuses to start on another), or without
/// `c_collation` with ICU's `en-US` and Synapse's `allow_unsafe_locale: true`.
async fn synapse_postgres_database(
    test: &str,
    c_collation: bool,
) -> Option<(String, SynapsePostgres)> {
    use sqlx::Connection;
    let (config, guard) = TestDb::postgres_empty(test).await?;
    let DatabaseConfig::PostgresUrl(url) = config else {
        unreachable!("postgres_empty gives a URL")
    };
    let parsed = reqwest::Url::parse(&url).unwrap();
    let mut maintenance = parsed.clone();
    maintenance.set_path("/postgres");
    let mut admin = sqlx::PgConnection::connect(maintenance.as_str())
        .await
        .unwrap();
    let name = &guard.name;
    for sql in [
        format!("DROP DATABASE {name}"),
        if c_collation {
            format!(
                "CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' \
                 TEMPLATE template0"
            )
        } else {
            format!(
                "CREATE DATABASE {name} ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' \
                 LOCALE 'C.UTF-8' TEMPLATE template0"
            )
        },
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let unsafe_locale = if c_collation {
        ""
    } else {
        "  allow_unsafe_locale: true\n"
    };
    let mut yaml = format!(
        "database:\n  name: psycopg2\n{unsafe_locale}  args:\n    user: {}\n    host: {}\n    port: {}\n    dbname: {name}\n    cp_min: 1\n    cp_max: 5\n",
        parsed.username(),
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(5432),
    );
    if let Some(password) = parsed.password() {
        yaml.push_str(&format!("    password: {password}\n"));
    }
    Some((yaml, SynapsePostgres { url, _guard: guard }))
}

impl Synapse {
    /// The database this Synapse runs on, as a URL: `postgres://…` or `sqlite:PATH`.
    pub(crate) fn database_url(&self) -> String {
        match &self.postgres {
            Some(postgres) => postgres.url.clone(),
            None => format!("sqlite:{}", self.dir.path().join("homeserver.db").display()),
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn a_password_set_by_homekey_in_synapses_database_logs_in_to_synapse() {
    let test = "a_password_set_by_homekey_in_synapses_database_logs_in_to_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let started = Instant::now();
    let mut synapse = Synapse::prepare(venv);
    synapse.start().await;

    // Synapse's own script registers the user through the shared-secret API.
    let out = synapse
        .venv_command("register_new_matrix_user")
        .args([
            "-u",
            "alice",
            "-p",
            "old-pw",
            "--no-admin",
            "-k",
            SHARED_SECRET,
        ])
        .arg(synapse.url(""))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let (status, body) = synapse.login("alice", "old-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old_token = body["access_token"].as_str().unwrap().to_owned();
    synapse.stop();

    // homekey reads Synapse's homeserver.yaml (ignoring the keys it does not use) and sees
    // Synapse's account.
    let out = synapse.homekey(&["user", "show", "alice", "--json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["name"], "@alice:example.com");
    assert_eq!(shown["admin"], false);
    assert_eq!(shown["password_set"], true);
    assert!(!shown["devices"].as_array().unwrap().is_empty(), "{shown}");

    // The new password only: logging out is left to the running Synapse (see
    // on_a_synapse_database_homekey_ends_no_session_and_points_to_the_admin_api).
    let out = synapse.homekey(
        &[
            "user",
            "set-password",
            "@alice:example.com",
            "--password-stdin",
        ],
        "new-pw\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "password of @alice:example.com changed\n");
    assert!(
        stderr(&out).contains("Synapse caches users and access tokens"),
        "{}",
        stderr(&out)
    );

    // An account homekey creates in Synapse's tables logs in to Synapse too.
    let out = synapse.homekey(
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
    assert!(out.status.success(), "{}", stderr(&out));

    // homekey mints no access token in Synapse's database, and keeps no audit log there.
    let out = synapse.homekey(&["user", "login", "alice"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("POST /_synapse/admin/v1/users/<user_id>/login"),
        "{err}"
    );
    let out = synapse.homekey(&["audit", "list"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    synapse.start().await;
    let (status, body) = synapse.login("alice", "new-pw").await;
    assert_eq!(status, StatusCode::OK, "new password: {body}");
    assert_eq!(body["user_id"], "@alice:example.com");
    let (status, body) = synapse.login("alice", "old-pw").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "old password: {body}");
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    let (status, body) = synapse.login("carol", "carol-pw").await;
    assert_eq!(status, StatusCode::OK, "created by homekey: {body}");
    assert_eq!(body["user_id"], "@carol:example.com");
    // Without --logout-devices the session Synapse had handed out goes on.
    let (status, body) = synapse.whoami(&old_token).await;
    assert_eq!(status, StatusCode::OK, "old token: {body}");
    synapse.stop();
    eprintln!(
        "{test}: Synapse scenario took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// What Synapse's device deletion does beyond its tables (keys, pushers, device-list streams)
/// homekey cannot do behind its back: on Synapse's database, `user logout`,
/// `set-password --logout-devices` and `deactivate` refuse, change nothing, and name the
/// command that asks the running Synapse instead; that command logs the user out there, and
/// another user's `/keys/query` no longer lists the device.
#[tokio::test]
async fn on_a_synapse_database_homekey_ends_no_session_and_points_to_the_admin_api() {
    let test = "on_a_synapse_database_homekey_ends_no_session_and_points_to_the_admin_api";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let mut synapse = Synapse::prepare(venv);
    synapse.start().await;
    let url = synapse.url("");
    for (user, admin_flag) in [
        ("boss", "--admin"),
        ("alice", "--no-admin"),
        ("bob", "--no-admin"),
    ] {
        let out = run_binary(
            REGISTER_NEW_MATRIX_USER,
            &[
                "-u",
                user,
                "-p",
                &format!("{user}-pw"),
                admin_flag,
                "-k",
                SHARED_SECRET,
                &url,
            ],
            b"",
            &[],
        );
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let (_, body) = synapse.login("alice", "alice-pw").await;
    let alice_token = body["access_token"].as_str().unwrap().to_owned();
    let device = body["device_id"].as_str().unwrap().to_owned();
    let (_, body) = synapse.login("bob", "bob-pw").await;
    let bob_token = body["access_token"].as_str().unwrap().to_owned();
    let alice = "@alice:example.com";
    let keys = json!({"device_keys": {
        "user_id": alice, "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{device}"): "3C5BFWi2Y8MaVvjM8M22DBmh24PmgR0nPvJOIArzgyI",
            format!("ed25519:{device}"): "lEuiRJBit0IG6nUf5pUzWTUEsRVVe/HJkoKuEww9ULI",
        },
        "signatures": {alice: {format!("ed25519:{device}"): "dSO80A01XiigH3uBiDVx/EjzaoycHcjq9lfQX0uWsqxl2giMIiSPR8a4d291W1ihKJL/a+myXS367WT6NAIcBA"}},
    }});
    let (status, body) = synapse
        .post_json("/_matrix/client/v3/keys/upload", &alice_token, &keys)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alices_devices = |body: Value| -> Vec<String> {
        body["device_keys"][alice]
            .as_object()
            .map(|devices| devices.keys().cloned().collect())
            .unwrap_or_default()
    };
    let query = json!({"device_keys": {alice: []}});
    let (_, body) = synapse
        .post_json("/_matrix/client/v3/keys/query", &bob_token, &query)
        .await;
    assert_eq!(alices_devices(body), std::slice::from_ref(&device));
    synapse.stop();

    let database = synapse.dir.path().join("homeserver.db");
    let rows = || async {
        let mut counts = Vec::new();
        for table in [
            "devices",
            "access_tokens",
            "e2e_device_keys_json",
            "device_lists_stream",
            "users WHERE deactivated = 0 AND password_hash IS NOT NULL AND name",
        ] {
            let column = if table.starts_with("users") {
                ""
            } else {
                " WHERE user_id"
            };
            let sql = format!("SELECT COUNT(*) FROM {table}{column} = '{alice}'");
            counts.push((table, sqlite_count(&database, &sql).await));
        }
        counts
    };
    let before = rows().await;
    for (args, stdin, instead) in [
        (
            &["user", "logout", alice][..],
            "",
            "homekey admin logout @alice:example.com",
        ),
        (
            &[
                "user",
                "set-password",
                alice,
                "--logout-devices",
                "--password-stdin",
            ][..],
            "new-pw\n",
            "homekey admin logout @alice:example.com",
        ),
        (
            &["user", "deactivate", alice][..],
            "",
            "homekey admin deactivate @alice:example.com",
        ),
    ] {
        let out = synapse.homekey(args, stdin);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("this is a Synapse database"), "{err}");
        assert!(err.contains(instead), "{args:?}: {err}");
        assert_eq!(rows().await, before, "{args:?} changed Synapse's database");
    }

    synapse.start().await;
    assert_eq!(synapse.whoami(&alice_token).await.0, StatusCode::OK);
    assert_eq!(synapse.login("alice", "alice-pw").await.0, StatusCode::OK);
    let home = tempfile::tempdir().unwrap();
    let admin = |args: &[&str], stdin: &str| admin_command(home.path(), args, stdin);
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
    let out = admin(&["logout", alice], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = synapse.whoami(&alice_token).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN"))
    );
    let (_, body) = synapse
        .post_json("/_matrix/client/v3/keys/query", &bob_token, &query)
        .await;
    assert!(
        alices_devices(body).is_empty(),
        "Synapse still lists a logged-out device"
    );
    synapse.stop();
}

/// `homekey admin ARGS`, keeping its session under `home` (its `$XDG_CONFIG_HOME`).
fn admin_command(home: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let xdg = home.to_str().unwrap();
    run_binary(
        HOMEKEY,
        &[&["admin"], args].concat(),
        stdin.as_bytes(),
        &[("XDG_CONFIG_HOME", xdg)],
    )
}

/// A `COUNT(*)` straight on a SQLite file (Synapse's database, Synapse stopped).
async fn sqlite_count(database: &Path, sql: &str) -> i64 {
    use sqlx::Connection;
    let url = format!("sqlite:{}", database.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
}

/// homekey's `register_new_matrix_user` and `homekey admin …` against a running Synapse: the
/// clients speak Synapse's Admin API as Synapse serves it.
#[tokio::test]
async fn homekeys_admin_client_and_register_script_work_against_a_running_synapse() {
    let test = "homekeys_admin_client_and_register_script_work_against_a_running_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let mut synapse = Synapse::prepare(venv);
    synapse.start().await;
    let url = synapse.url("");
    for (user, password, admin_flag) in [
        ("boss", "boss-pw", "--admin"),
        ("alice", "old-pw", "--no-admin"),
    ] {
        let out = run_binary(
            REGISTER_NEW_MATRIX_USER,
            &[
                "-u",
                user,
                "-p",
                password,
                admin_flag,
                "-k",
                SHARED_SECRET,
                &url,
            ],
            b"",
            &[],
        );
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("Success!"));
    }
    let (status, body) = synapse.login("alice", "old-pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alice_token = body["access_token"].as_str().unwrap().to_owned();

    let home = tempfile::tempdir().unwrap();
    let admin = |args: &[&str], stdin: &str| admin_command(home.path(), args, stdin);
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
    let session = home.path().join("homekey/admin-session.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&session).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!stdout(&out).contains("syt_"), "the token is not printed");

    // A localpart is on the saved admin's server.
    let out = admin(&["reset-password", "alice", "--password-stdin"], "new-pw\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = synapse.whoami(&alice_token).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN"))
    );
    assert_eq!(
        synapse.login("alice", "old-pw").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(synapse.login("alice", "new-pw").await.0, StatusCode::OK);

    let out = admin(&["user", "show", "@alice:example.com", "--json"], "");
    let shown: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    assert_eq!(shown["name"], "@alice:example.com");
    let out = admin(&["user", "list"], "");
    assert!(
        stdout(&out).contains("@alice:example.com") && stdout(&out).contains("@boss:example.com"),
        "{}",
        stdout(&out)
    );
    let out = admin(&["server-version"], "");
    assert!(
        out.status.success() && !stdout(&out).trim().is_empty(),
        "{}",
        stderr(&out)
    );

    // A non-admin's token: Synapse's 403, explained.
    let out = run_binary(
        HOMEKEY,
        &[
            "admin",
            "--server",
            &url,
            "--token",
            &alice_token,
            "user",
            "list",
        ],
        b"",
        &[("XDG_CONFIG_HOME", home.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("M_"), "{}", stderr(&out));

    let out = admin(&["logout"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!session.exists());
}

/// `homekey admin registration-token …` against a running Synapse: the client speaks
/// Synapse's `registration_tokens` Admin API as Synapse serves it (its answers and its
/// refusals).
#[tokio::test]
async fn homekeys_registration_token_commands_work_against_a_running_synapse() {
    let test = "homekeys_registration_token_commands_work_against_a_running_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let mut synapse = Synapse::prepare(venv);
    synapse.start().await;
    let url = synapse.url("");
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
    let home = tempfile::tempdir().unwrap();
    let admin = |args: &[&str], stdin: &str| admin_command(home.path(), args, stdin);
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
    let token = |args: &[&str]| admin(&[&["registration-token"], args].concat(), "");
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };

    let made: Value = serde_json::from_str(&ok(token(&[
        "create",
        "invite",
        "--uses-allowed",
        "2",
        "--expires-in",
        "1d",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (
            &made["token"],
            &made["uses_allowed"],
            &made["pending"],
            &made["completed"]
        ),
        (&json!("invite"), &json!(2), &json!(0), &json!(0))
    );
    assert!(made["expiry_time"].as_i64().unwrap() > homekey::accounts::now_ms());
    let random = ok(token(&["create", "--length", "24"]));
    assert_eq!(random.lines().next().unwrap().len(), 24, "{random}");
    let listed = ok(token(&["list"]));
    assert!(
        listed.contains("invite ") && listed.ends_with("2 tokens\n"),
        "{listed}"
    );
    let shown = ok(token(&["show", "invite"]));
    assert!(
        shown.contains("uses_allowed  2") && shown.contains("valid         yes"),
        "{shown}"
    );
    let updated: Value = serde_json::from_str(&ok(token(&[
        "update",
        "invite",
        "--uses-allowed",
        "0",
        "--never-expires",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (&updated["uses_allowed"], &updated["expiry_time"]),
        (&json!(0), &Value::Null)
    );
    // Synapse's own listing counts uses_allowed 0 as invalid, as homekey does.
    assert!(ok(token(&["list", "--invalid"])).starts_with("invite "));

    // Synapse's refusals, one line and exit 1.
    for (args, expected) in [
        (
            vec!["create", "invite"],
            "M_INVALID_PARAM: Token already exists: invite",
        ),
        (vec!["create", "a b"], "M_INVALID_PARAM"),
        (vec!["show", "nope"], "M_NOT_FOUND"),
    ] {
        let out = token(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).lines().count(), 1);
    }
    assert!(ok(token(&["delete", "invite"])).contains("deleted registration token invite"));
    let out = token(&["delete", "invite"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("M_NOT_FOUND"), "{}", stderr(&out));
    assert!(ok(token(&["list"])).ends_with("1 token\n"));
    synapse.stop();
}
