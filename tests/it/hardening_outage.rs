//! The database going away under a running `homekey serve`: a throwaway PostgreSQL cluster
//! that the test starts, stops and starts again itself (never the machine's shared server),
//! and a SQLite database locked by another writer. Requests must answer 503 `M_UNKNOWN` with
//! `Retry-After` within a bounded time, and succeed again once the database is back, without
//! restarting homekey; never a hang, a panic or a wrong answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use homekey::config::DatabaseConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::Server;
use crate::support::{TestDb, skip};

/// Where Debian keeps PostgreSQL 15's programs.
const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How long a request may take while the database is down: homekey gives up on a connection
/// after 5 s; the rest is slack for a loaded machine.
const ANSWER_BOUND: Duration = Duration::from_secs(20);
/// How long homekey may take to notice the database is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// A PostgreSQL cluster of the test's own, in a temporary directory, on a free port of
/// 127.0.0.1; run as the `postgres` OS user (`initdb` and `postgres` refuse root). Stopped
/// and removed when dropped.
pub struct ThrowawayPostgres {
    dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
}

impl ThrowawayPostgres {
    /// Starts a new cluster, or `None` (skipped; a failure under CI) without PostgreSQL 15.
    pub fn start(test: &str) -> Option<ThrowawayPostgres> {
        if !Path::new(POSTGRES_BIN).join("initdb").is_file() {
            skip(test, &format!("{POSTGRES_BIN}/initdb not found"));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if running_as_root() {
            let owner = Command::new("chown")
                .args(["postgres:postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
            assert!(owner.success(), "chown to postgres failed");
        }
        as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
            ],
        );
        let port = crate::support::free_port();
        let cluster = ThrowawayPostgres { dir, data, port };
        cluster.pg_ctl_start();
        Some(cluster)
    }

    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig::PostgresUrl(format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.port
        ))
    }

    /// Starts the server and waits until it accepts connections.
    pub fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server: `fast` ends the sessions politely, `immediate` as a crash would.
    pub fn pg_ctl_stop(&self, mode: &str) {
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = postgres_command("pg_ctl")
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// One of PostgreSQL's programs, as the `postgres` user when running as root (they refuse
/// root), else as the user running the tests.
fn postgres_command(program: &str) -> Command {
    let path = Path::new(POSTGRES_BIN).join(program);
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

/// Runs one of PostgreSQL's programs; it must succeed.
fn as_postgres(program: &str, args: &[&str]) {
    let out = postgres_command(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One request, with how long it took and its `Retry-After`.
struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

async fn request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let started = Instant::now();
    let mut request = server
        .http
        .request(method.parse().unwrap(), server.url(path))
        .timeout(ANSWER_BOUND + Duration::from_secs(10));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request
        .send()
        .await
        .expect("no answer: homekey hung or died");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
        retry_after,
        took: started.elapsed(),
    }
}

/// The answer every request gets while the database cannot be used.
fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        answer.body
    );
    assert_eq!(answer.body["errcode"], "M_UNKNOWN", "{what}");
    let seconds: u64 = answer
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    assert!(seconds >= 1, "{what}: Retry-After {seconds}");
    assert!(answer.took < ANSWER_BOUND, "{what} took {:?}", answer.took);
}

const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

#[tokio::test]
async fn postgres_stopped_under_serve_answers_503_then_recovers_without_restart() {
    let test = "postgres_stopped_under_serve_answers_503_then_recovers_without_restart";
    let Some(cluster) = ThrowawayPostgres::start(test) else {
        return;
    };
    let server = Server::start(TestDb::external(cluster.config()).await, "").await;
    let admin = server.admin_token("root", "root-password").await;
    server.create_user("olga", "olga-password").await;
    let token = server.token_for("olga", "olga-password").await;

    for (cycle, mode) in ["fast", "immediate"].into_iter().enumerate() {
        cluster.pg_ctl_stop(mode);
        let password = format!("during-outage-{cycle}");
        let reset = json!({"new_password": password, "logout_devices": false});
        let login =
            json!({"type": "m.login.password", "user": "olga", "password": "olga-password"});
        let reset_path = "/_synapse/admin/v1/reset_password/@olga:example.com";
        // All at once: each waits for a connection up to homekey's bound.
        let (whoami, logged_in, reset_answer) = tokio::join!(
            request(&server, "GET", WHOAMI, Some(&token), None),
            request(
                &server,
                "POST",
                "/_matrix/client/v3/login",
                None,
                Some(login)
            ),
            request(&server, "POST", reset_path, Some(&admin), Some(reset)),
        );
        assert_unavailable(&whoami, "whoami");
        assert_unavailable(&logged_in, "login");
        assert_unavailable(&reset_answer, "reset");
        // A request that needs no database still works.
        let versions = request(&server, "GET", "/_matrix/client/versions", None, None).await;
        assert_eq!(versions.status, StatusCode::OK);

        cluster.pg_ctl_start();
        let back = Instant::now();
        loop {
            let answer = request(&server, "GET", WHOAMI, Some(&token), None).await;
            if answer.status == StatusCode::OK {
                assert_eq!(answer.body["user_id"], "@olga:example.com");
                break;
            }
            assert_unavailable(&answer, "whoami while coming back");
            assert!(back.elapsed() < RECOVERY_BOUND, "homekey did not recover");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let recovery = back.elapsed();
        // The reset refused during the outage did nothing; made again now, it works.
        assert!(
            server
                .has_password("@olga:example.com", "olga-password")
                .await
        );
        assert_eq!(
            request(
                &server,
                "POST",
                "/_matrix/client/v3/login",
                None,
                Some(
                    json!({"type": "m.login.password", "user": "olga", "password": "olga-password"})
                )
            )
            .await
            .status,
            StatusCode::OK
        );
        eprintln!(
            "outage ({mode} stop): whoami/login/reset answered 503 in {:?}/{:?}/{:?}; recovered {recovery:?} after the restart",
            whoami.took, logged_in.took, reset_answer.took
        );
    }
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Another connection holds SQLite's write lock: a write waits for it (within
/// `busy_timeout`) and succeeds once it is released, or answers 503 if it is held too long;
/// reads go on meanwhile (WAL). The result is never half of a change.
#[tokio::test]
async fn sqlite_locked_by_another_writer_waits_then_succeeds_or_answers_503() {
    use sqlx::Connection;
    let db = TestDb::sqlite().await;
    let DatabaseConfig::Sqlite { path } = db.config.clone() else {
        unreachable!()
    };
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-password").await;
    let user_id = "@sam:example.com";
    server.create_user("sam", "first-password").await;
    let sam = server.token_for("sam", "first-password").await;
    let reset_path = format!("/_synapse/admin/v1/reset_password/{user_id}");
    let mut writer = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();

    // Held briefly: the reset waits its turn, then lands whole.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let reset = json!({"new_password": "second-password", "logout_devices": true});
    let pending = request(&server, "POST", &reset_path, Some(&admin), Some(reset));
    let release = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Reads do not wait for the writer.
        let whoami = request(&server, "GET", WHOAMI, Some(&sam), None).await;
        assert_eq!(whoami.status, StatusCode::OK, "{}", whoami.body);
        sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
    };
    let (answer, ()) = tokio::join!(pending, release);
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(
        answer.took >= Duration::from_millis(1000),
        "it did not wait"
    );
    assert!(server.has_password(user_id, "second-password").await);
    assert_eq!(server.whoami(Some(&sam)).await.0, StatusCode::UNAUTHORIZED);

    // Held past busy_timeout: 503, and nothing changed.
    let sam = server.token_for("sam", "second-password").await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let reset = json!({"new_password": "third-password", "logout_devices": true});
    let answer = request(
        &server,
        "POST",
        &reset_path,
        Some(&admin),
        Some(reset.clone()),
    )
    .await;
    assert_unavailable(&answer, "reset while locked");
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
    assert!(server.has_password(user_id, "second-password").await);
    assert_eq!(server.whoami(Some(&sam)).await.0, StatusCode::OK);
    // Released: the same request goes through.
    let again = request(&server, "POST", &reset_path, Some(&admin), Some(reset)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(server.has_password(user_id, "third-password").await);
    assert_eq!(server.whoami(Some(&sam)).await.0, StatusCode::UNAUTHORIZED);
    eprintln!(
        "outage (SQLite locked past busy_timeout): 503 after {:?}",
        answer.took
    );
    assert!(!server.log().contains("panicked"));
}
