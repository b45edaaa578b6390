//! The running server of the HTTP tests: `homekey serve` as a process on a test database,
//! with helpers that speak to it as a client does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use homekey::config::{DatabaseConfig, HashScheme};
use homekey::ids::UserId;
use homekey::password::HashSettings;
use homekey::store::{NewUser, Store};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{HOMEKEY, TestDb};

pub const PEPPER: &str = "serve-pepper";

/// Synapse's `rc_login` defaults allow five logins from one address: tests log in more often
/// than that, except those about the limits, which set their own `rc_login`.
const RAISED_RC_LOGIN: &str = "rc_login:\n  address: {per_second: 1000, burst_count: 1000}\n  \
     account: {per_second: 1000, burst_count: 1000}\n  \
     failed_attempts: {per_second: 1000, burst_count: 1000}\n";

/// A running `homekey serve` on a test database; stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
    pub db: TestDb,
    pub http: reqwest::Client,
    pepper: String,
    _config_dir: tempfile::TempDir,
    /// Copies the server's stderr into `log`; ends when the process does.
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub async fn start(db: TestDb, extra_config: &str) -> Server {
        Server::start_with_pepper(db, PEPPER, extra_config).await
    }

    /// `extra_config` goes in a second `-c` file, layered over the base one as Synapse
    /// layers config files: a top-level key there replaces the base's.
    pub async fn start_with_pepper(db: TestDb, pepper: &str, extra_config: &str) -> Server {
        Server::start_logging(db, pepper, extra_config, "info").await
    }

    /// Like [`Server::start_with_pepper`], logging at `rust_log` (`RUST_LOG`'s syntax).
    pub async fn start_logging(
        db: TestDb,
        pepper: &str,
        extra_config: &str,
        rust_log: &str,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(
            &config,
            format!(
                "server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  pepper: {pepper}\n\
                 listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n{RAISED_RC_LOGIN}"
            ),
        )
        .unwrap();
        let layer = dir.path().join("conf.d.yaml");
        std::fs::write(&layer, extra_config).unwrap();
        let database = match &db.config {
            DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
            DatabaseConfig::PostgresUrl(url) => url.clone(),
            other => panic!("unexpected test database {other:?}"),
        };
        let mut child = Command::new(HOMEKEY)
            .args([
                "serve",
                "-c",
                config.to_str().unwrap(),
                "-c",
                layer.to_str().unwrap(),
                "--database",
                &database,
            ])
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        let log_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on ").nth(1) {
                    let _ = address_tx.send(address.trim().to_owned());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let base = address_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {}", log.lock().unwrap()));
        Server {
            child,
            base,
            log,
            db,
            http: reqwest::Client::new(),
            pepper: pepper.to_owned(),
            _config_dir: dir,
            log_reader: Some(log_reader),
        }
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            // No Content-Type, as operators' curl commands send it.
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, value)
    }

    pub async fn whoami(&self, token: Option<&str>) -> (StatusCode, Value) {
        self.call("GET", "/_matrix/client/v3/account/whoami", token, None)
            .await
    }

    pub async fn create_user(&self, localpart: &str, password: &str) {
        let settings = HashSettings::new(
            HashScheme::Bcrypt,
            5,
            SecretString::from(self.pepper.clone()),
        );
        self.store()
            .create_user(
                &NewUser {
                    user_id: UserId::parse_local(localpart, "example.com").unwrap(),
                    password_hash: Some(settings.hash(&SecretString::from(password)).unwrap()),
                    creation_ts: 1_700_000_000,
                    admin: false,
                    is_guest: false,
                    user_type: None,
                    displayname: None,
                    avatar_url: None,
                    threepids: Vec::new(),
                },
                None,
            )
            .await
            .unwrap();
    }

    pub async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password})),
        )
        .await
    }

    pub async fn token_for(&self, user: &str, password: &str) -> String {
        let (status, body) = self.login(user, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) for the server's stderr to show `needle`: lines arrive through a
    /// pipe, a little after the response they describe.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and waits, until the last log line is read too; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let code = self.child.wait().ok()?.code();
        if let Some(reader) = self.log_reader.take() {
            reader.join().unwrap();
        }
        code
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Declares each test twice: against a server on SQLite and one on PostgreSQL.
macro_rules! server_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::support::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(db) = crate::support::TestDb::postgres(stringify!($test)).await {
                        super::$test(db).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use server_tests;

/// Runs one statement with its bound text values (`$1`, `$2`…; none for DDL) straight on the
/// test database, as an operator's SQL would.
pub async fn raw_execute(config: &DatabaseConfig, sql: &str, values: &[&str]) {
    use sqlx::Connection;
    match config {
        DatabaseConfig::Sqlite { path } => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            let mut query = sqlx::query(sql);
            for value in values {
                query = query.bind(*value);
            }
            query.execute(&mut conn).await.unwrap();
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let mut query = sqlx::query(sql);
            for value in values {
                query = query.bind(*value);
            }
            query.execute(&mut conn).await.unwrap();
        }
        other => panic!("{other:?}"),
    }
}

/// The `auth` object of an `m.login.password` stage, in `session` if one is given.
pub fn password_auth(user: &str, password: &str, session: Option<&str>) -> Value {
    let mut auth = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    });
    if let Some(session) = session {
        auth["session"] = json!(session);
    }
    auth
}

impl Server {
    /// Logs in and returns the access token and the device ID.
    pub async fn session_for(&self, user: &str, password: &str) -> (String, String) {
        let (status, body) = self.login(user, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["device_id"].as_str().unwrap().to_owned(),
        )
    }

    /// The IDs of a user's devices, from the database.
    pub async fn device_ids(&self, user_id: &str) -> Vec<String> {
        let devices = self.store().list_devices(user_id).await.unwrap();
        devices.into_iter().map(|d| d.device_id).collect()
    }
}

impl Server {
    /// Creates a server admin and returns its access token.
    pub async fn admin_token(&self, localpart: &str, password: &str) -> String {
        self.create_user(localpart, password).await;
        self.store()
            .set_admin(
                &format!("@{localpart}:example.com"),
                true,
                homekey::store::AdminGuard::Off,
                None,
            )
            .await
            .unwrap();
        self.token_for(localpart, password).await
    }

    /// Sets a user's display name with the user's own token, as a client does.
    pub async fn set_own_displayname(&self, token: &str, user_id: &str, displayname: &str) {
        let (status, body) = self
            .call(
                "PUT",
                &format!("/_matrix/client/v3/profile/{user_id}/displayname"),
                Some(token),
                Some(json!({ "displayname": displayname })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Whether `password` is the user's password now, checked on the stored hash.
    pub async fn has_password(&self, user_id: &str, password: &str) -> bool {
        let user = self.store().get_user(user_id).await.unwrap().unwrap();
        HashSettings::new(
            HashScheme::Bcrypt,
            5,
            SecretString::from(self.pepper.clone()),
        )
        .verify(&SecretString::from(password), user.password_hash.as_ref())
    }
}
