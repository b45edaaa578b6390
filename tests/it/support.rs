//! Test fixtures: fresh databases, the built binaries, an optional Python with `bcrypt`.
//!
//! PostgreSQL tests run against `$HOMEKEY_TEST_POSTGRES_URL` (default: this machine's server,
//! `postgres://postgres@127.0.0.1:5432/test`), each in a database of its own that is dropped
//! afterwards. Without a reachable server they print that they were skipped and pass, except
//! under CI (`CI=true`), where a missing server is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use homekey::config::DatabaseConfig;
use homekey::store::{OpenMode, Store};

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips a test whose external dependency is missing, loudly; under CI, fails it.
pub fn skip(test: &str, why: &str) {
    assert!(!in_ci(), "{test}: {why} (CI=true: skipping is not allowed)");
    eprintln!("SKIPPED {test}: {why}");
}

/// A database for one test, removed when the test ends (also when it fails).
pub struct TestDb {
    pub store: Store,
    pub config: DatabaseConfig,
    _dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("HOMEKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig::Sqlite {
            path: dir.path().join("homeserver.db"),
        };
        let store = Store::open(&config, OpenMode::CreateIfMissing)
            .await
            .unwrap();
        TestDb {
            store,
            config,
            _dir: Some(dir),
            postgres_name: None,
        }
    }

    /// A fresh, empty PostgreSQL database (not yet opened by a store), or `None` if skipped.
    pub async fn postgres_empty(test: &str) -> Option<(DatabaseConfig, PostgresGuard)> {
        use sqlx::Connection;
        let url = admin_url();
        let mut admin = match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::PgConnection::connect(&url),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                skip(test, &format!("PostgreSQL unreachable: {err}"));
                return None;
            }
            Err(_) => {
                skip(test, "PostgreSQL unreachable: connection timed out");
                return None;
            }
        };
        let name = format!(
            "homekey_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            homekey::secrets::random_alphanumeric(6).to_lowercase()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        let config = DatabaseConfig::PostgresUrl(format!("{base}/{name}"));
        Some((config, PostgresGuard { name }))
    }

    pub async fn postgres(test: &str) -> Option<TestDb> {
        let (config, guard) = Self::postgres_empty(test).await?;
        let store = Store::open(&config, OpenMode::CreateIfMissing)
            .await
            .unwrap();
        let name = guard.name.clone();
        std::mem::forget(guard);
        Some(TestDb {
            store,
            config,
            _dir: None,
            postgres_name: Some(name),
        })
    }
}

/// Drops a test's PostgreSQL database when it goes out of scope.
pub struct PostgresGuard {
    pub name: String,
}

impl Drop for PostgresGuard {
    fn drop(&mut self) {
        drop_postgres_database(&self.name);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres_name {
            drop_postgres_database(name);
        }
    }
}

/// Drops a database from a thread of its own (Drop may run inside an async test).
fn drop_postgres_database(name: &str) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sqlx::Connection;
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        });
    })
    .join()
    .unwrap();
}

/// Runs a built binary of this package with `stdin` piped in.
pub fn run_binary(binary: &str, args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("HOMEKEY_CONFIG")
        .env_remove("RUST_LOG");
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    // A command that fails early (a bad config, say) may exit before reading its input.
    if let Err(err) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
    child.wait_with_output().unwrap()
}

pub const HOMEKEY: &str = env!("CARGO_BIN_EXE_homekey");
pub const HASH_PASSWORD: &str = env!("CARGO_BIN_EXE_hash_password");
pub const REGISTER_NEW_MATRIX_USER: &str = env!("CARGO_BIN_EXE_register_new_matrix_user");

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes a homeserver.yaml into `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("homeserver.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Password → hash pairs made by Synapse's own `hash_password` (`tests/vectors/`), with and
/// without a pepper.
pub fn synapse_hash_vectors() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/synapse_hashes.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A Python interpreter that has `bcrypt` (`$HOMEKEY_TEST_PYTHON`, else `python3`), or `None`
/// (the test is skipped; under CI it fails).
pub fn python_with_bcrypt(test: &str) -> Option<String> {
    let python = std::env::var("HOMEKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_bcrypt = Command::new(&python)
        .args(["-c", "import bcrypt"])
        .output()
        .is_ok_and(|out| out.status.success());
    if has_bcrypt {
        Some(python)
    } else {
        skip(
            test,
            &format!("{python} has no bcrypt module (set HOMEKEY_TEST_PYTHON)"),
        );
        None
    }
}

/// The venv holding the real Synapse (`pip install matrix-synapse`), from
/// `HOMEKEY_TEST_SYNAPSE`; `.ci/run` makes it. `None` (a skip; under CI a failure) without.
pub fn synapse_venv(test: &str) -> Option<std::path::PathBuf> {
    let Some(venv) = std::env::var_os("HOMEKEY_TEST_SYNAPSE").map(std::path::PathBuf::from) else {
        skip(
            test,
            "HOMEKEY_TEST_SYNAPSE is not set (a venv with matrix-synapse; .ci/run makes one)",
        );
        return None;
    };
    let python = venv.join("bin/python");
    let importable = Command::new(&python)
        .args(["-c", "import synapse"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !importable {
        skip(test, &format!("{} cannot import synapse", python.display()));
        return None;
    }
    Some(venv)
}

/// The venv holding synadm, Synapse's admin CLI (`pip install synadm`), from
/// `HOMEKEY_TEST_SYNADM`; `.ci/run` makes it. `None` (a skip; under CI a failure) without.
pub fn synadm_venv(test: &str) -> Option<PathBuf> {
    let Some(venv) = std::env::var_os("HOMEKEY_TEST_SYNADM").map(PathBuf::from) else {
        skip(
            test,
            "HOMEKEY_TEST_SYNADM is not set (a venv with synadm; .ci/run makes one)",
        );
        return None;
    };
    let runs = Command::new(venv.join("bin/synadm"))
        .arg("--version")
        .env("HOME", std::env::temp_dir())
        .output()
        .is_ok_and(|out| out.status.success());
    if !runs {
        skip(
            test,
            &format!("{} does not run", venv.join("bin/synadm").display()),
        );
        return None;
    }
    Some(venv)
}

/// Runs `argv` on a pseudo-terminal (through Python's `pty`, on every machine with Python),
/// answering its password prompts; returns what the terminal showed and the exit code.
pub fn on_a_terminal(argv: &[&str], answers: &[&str]) -> (String, i32) {
    let script = r#"
import os, pty, sys, termios, time
count = int(sys.argv[1])
argv, answers = sys.argv[2:2 + count], sys.argv[2 + count:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen = b""
def read_until(marker, deadline):
    global seen
    while marker not in seen and time.time() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return
        if not chunk:
            return
        seen += chunk
deadline = time.time() + 20
prompts = [b"Password: ", b"Confirm password: "]
def wait_for_echo_off(deadline):
    # The prompt is printed just before echo is switched off: type only once it is off,
    # as a person would (on Linux the master side reports the terminal's settings).
    while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
        time.sleep(0.01)
for i, answer in enumerate(answers):
    read_until(prompts[i], deadline)
    wait_for_echo_off(deadline)
    os.write(fd, answer.encode() + b"\r")
while time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let count = argv.len().to_string();
    let mut args = vec!["-c", script, &count];
    args.extend_from_slice(argv);
    args.extend_from_slice(answers);
    let out = run_binary("python3", &args, b"", &[]);
    (stdout(&out), out.status.code().unwrap_or(-1))
}

/// The property tests' configuration: `PROPTEST_CASES` inputs if set (a long run, see
/// docs/SECURITY.md), else `default_cases`, modest so that `cargo test` stays fast.
pub fn proptest_config(default_cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(default_cases),
        ..proptest::test_runner::Config::default()
    }
}

impl TestDb {
    /// Another handle on the same database, with a store of its own; dropping it leaves the
    /// database to its owner (for tests that restart a server on one database, or run several).
    pub async fn share(&self) -> TestDb {
        TestDb::external(self.config.clone()).await
    }

    /// A database the test manages itself (a throwaway PostgreSQL cluster, say): opened and
    /// migrated here, never removed.
    pub async fn external(config: DatabaseConfig) -> TestDb {
        let store = Store::open(&config, OpenMode::CreateIfMissing)
            .await
            .unwrap();
        TestDb {
            store,
            config,
            _dir: None,
            postgres_name: None,
        }
    }

    /// How many rows `sql` counts (one `COUNT(*)`), with one bound text value, run straight
    /// on the database as an operator's SQL would be.
    pub async fn count(&self, sql: &str, value: &str) -> i64 {
        use sqlx::Connection;
        match &self.config {
            DatabaseConfig::Sqlite { path } => {
                let url = format!("sqlite:{}", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query_scalar(sql)
                    .bind(value)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            DatabaseConfig::PostgresUrl(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql)
                    .bind(value)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            other => panic!("unexpected test database {other:?}"),
        }
    }
}

/// A port on 127.0.0.1 free now, for a server a test starts a moment later. Below the range
/// the kernel hands out to outgoing connections and to `bind(":0")` (32768 and up on Linux):
/// a port from that range, released, could be taken meanwhile by any connection's source
/// port, and the server would not start. Each call tries the next port of this process's
/// own stretch of 20000-32767.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const PORTS: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % PORTS;
    for _ in 0..PORTS {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (start + offset) % PORTS;
        let port = u16::try_from(port).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32767");
}
