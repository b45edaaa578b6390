//! Crashes in the middle of an operation: `homekey serve` killed (SIGKILL) while admin resets
//! with `logout_devices` and user creations are in flight, and `homekey user set-password
//! --logout-devices` and `homekey user import` killed at random points, on SQLite and
//! PostgreSQL. Afterwards every account holds its old state (old hash, every token and
//! device) or its new one (new hash, no token, no device), never a mix; an account created
//! exists whole or not at all, and running an interrupted import again completes it.
//!
//! The kill delays are drawn at random over the time the same work takes when it is not
//! killed (measured first, on this machine, now), so kills land before, during and after the
//! transactions; many operations run at once so that some are mid-transaction whenever the
//! kill comes. Every other round instead watches the database and kills as soon as one of
//! the processes holds a write transaction open. Every kill freezes the processes first
//! (SIGSTOP) and asks the database whether one of them is inside a write transaction (SQLite:
//! its write lock is held, in `/proc/locks`; PostgreSQL: a backend of the database has a
//! transaction ID and is not committing), so the tests count the kills that landed inside a
//! transaction and require some. `HOMEKEY_CRASH_SCALE` multiplies the rounds (scripts/soak-crash.sh runs
//! hundreds of kill points).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use homekey::config::{DatabaseConfig, HashScheme};
use homekey::ids::UserId;
use homekey::password::HashSettings;
use homekey::store::{NewSession, NewUser, Store};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::server::{PEPPER, Server, server_tests};
use crate::support::{HOMEKEY, TestDb};

server_tests!(
    serve_killed_during_resets_and_creations_leaves_whole_accounts,
    set_password_killed_at_random_points_leaves_old_or_new_state,
    import_killed_at_random_points_leaves_whole_accounts_and_a_rerun_completes_it,
);

/// Accounts reset at once in each round.
const RESETS_PER_ROUND: usize = 6;
/// Accounts created at once in each round of the server test.
const CREATIONS_PER_ROUND: usize = 6;
/// `set-password` processes killed in each round.
const CLI_PROCESSES: usize = 3;
/// Accounts in each import file.
const IMPORT_SIZE: usize = 30;
const OLD_PASSWORD: &str = "old-password";

/// The rounds of each test: `base` times `HOMEKEY_CRASH_SCALE` (default 1).
fn rounds(base: usize) -> usize {
    let scale = std::env::var("HOMEKEY_CRASH_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    base * scale.max(1)
}

fn settings() -> HashSettings {
    HashSettings::new(HashScheme::Bcrypt, 5, SecretString::from(PEPPER))
}

/// A random delay in `[0, window]`.
fn random_delay(window: Duration) -> Duration {
    let micros = window.as_micros().max(1) as u64;
    Duration::from_micros(rand::random_range(0..=micros))
}

fn user_id(localpart: &str) -> String {
    format!("@{localpart}:example.com")
}

/// What the crash tests found, printed for docs/SECURITY.md.
#[derive(Default, Debug)]
struct Tally {
    /// SIGKILLs that hit a running process.
    kills: usize,
    /// Processes that had already exited when their kill came (not counted as kills).
    exited_before_kill: usize,
    /// Operations found done / not done after a kill.
    landed: usize,
    not_landed: usize,
    /// Rounds in which some operations had landed and others had not: the kill came while
    /// they were running.
    mixed_rounds: usize,
    /// Kills that came while one of the frozen processes held a write transaction open.
    in_transaction: usize,
}

impl Tally {
    /// Kills `child` (SIGKILL) if it is still running, and adapts the kill window (when
    /// given: the rounds with a random delay): shorter after a process that was done already,
    /// a little longer after one that was not, so that about one kill in seven comes after
    /// the end and the others spread over the whole run, whatever the machine's load does to
    /// its length.
    fn kill(&mut self, child: &mut Child, window: Option<&mut Duration>) {
        let exited = child.try_wait().unwrap().is_some();
        if exited {
            self.exited_before_kill += 1;
        } else {
            child.kill().unwrap();
            self.kills += 1;
        }
        if let Some(window) = window {
            *window = window.mul_f32(if exited { 0.6 } else { 1.1 });
        }
    }

    /// Waits for the kill point of `round`, then freezes `pids` (SIGSTOP) so that none can
    /// finish what it is doing, and counts the coming kill as inside a transaction if the
    /// database says that one of them holds a write transaction open. The caller kills them
    /// next. Odd rounds: after a random delay within `window`. Even rounds: as soon as the
    /// database shows a write transaction open, within four times `window` (which is adapted
    /// to the random kills, some of which come after the end); if it has ended by the time the
    /// processes are frozen, they go on (SIGCONT) and the watch goes on.
    async fn freeze_at_kill_point(
        &mut self,
        probe: &mut TransactionProbe,
        round: usize,
        window: Duration,
        pids: &[u32],
    ) {
        let signal = |signal| {
            for &pid in pids {
                // SAFETY: a plain syscall on a child of this test; an exited one is ESRCH.
                unsafe { libc::kill(pid as libc::pid_t, signal) };
            }
        };
        if round % 2 == 1 {
            tokio::time::sleep(random_delay(window)).await;
        } else {
            let deadline = Instant::now() + window * 4;
            while Instant::now() < deadline {
                if probe.write_transaction_open().await {
                    signal(libc::SIGSTOP);
                    if probe.write_transaction_open().await {
                        self.in_transaction += 1;
                        return;
                    }
                    signal(libc::SIGCONT);
                }
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
        signal(libc::SIGSTOP);
        if probe.write_transaction_open().await {
            self.in_transaction += 1;
        }
    }

    fn round(&mut self, landed: usize, not_landed: usize) {
        self.landed += landed;
        self.not_landed += not_landed;
        if landed > 0 && not_landed > 0 {
            self.mixed_rounds += 1;
        }
    }
}

/// Asks whether another connection holds a write transaction open on a database: on
/// SQLite, whether some process holds the WAL write lock (byte 120 of the `-shm` file, which
/// SQLite locks with `fcntl`; read from Linux's `/proc/locks`, which takes no lock); on
/// PostgreSQL, whether a backend of the database has a transaction ID (it has written or
/// locked a row) and is not committing, on a connection of its own kept open between
/// questions.
enum TransactionProbe {
    Sqlite(std::ffi::OsString),
    Postgres(sqlx::PgConnection),
}

impl TransactionProbe {
    async fn new(db: &TestDb) -> TransactionProbe {
        use sqlx::Connection;
        match &db.config {
            DatabaseConfig::Sqlite { path } => {
                let mut shm = path.clone().into_os_string();
                shm.push("-shm");
                TransactionProbe::Sqlite(shm)
            }
            DatabaseConfig::PostgresUrl(url) => {
                TransactionProbe::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
            }
            other => panic!("unexpected test database {other:?}"),
        }
    }

    async fn write_transaction_open(&mut self) -> bool {
        match self {
            TransactionProbe::Sqlite(shm) => {
                // Not `fcntl(F_GETLK)` on the file: closing a descriptor of it would drop
                // every lock this process holds on it, those of the test's own SQLite
                // connections too (POSIX locks are per process), and the next process to open
                // the database would then reset the `-shm` file under their mappings.
                use std::os::unix::fs::MetadataExt;
                let Ok(meta) = std::fs::metadata(&*shm) else {
                    return false;
                };
                let dev = meta.dev();
                let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
                let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
                let file = format!("{major:02x}:{minor:02x}:{}", meta.ino());
                let locks = std::fs::read_to_string("/proc/locks").unwrap();
                locks
                    .lines()
                    .filter(|line| !line.contains("->"))
                    .any(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        // "1: POSIX ADVISORY WRITE <pid> <dev:inode> <start> <end or EOF>"
                        matches!(fields.as_slice(), [_, _, _, "WRITE", _, id, start, end]
                        if *id == file
                            && start.parse::<u64>().is_ok_and(|start| start <= 120)
                            && (*end == "EOF" || end.parse::<u64>().is_ok_and(|end| end >= 120)))
                    })
            }
            TransactionProbe::Postgres(conn) => {
                let open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL \
                     AND NOT (state = 'active' AND query ILIKE 'commit%')",
                )
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                open > 0
            }
        }
    }
}

/// The kill window to adapt, in the rounds with a random delay only.
fn adapted(round: usize, window: &mut Duration) -> Option<&mut Duration> {
    (round % 2 == 1).then_some(window)
}

/// Creates an account with the old password's hash and two logged-in devices; returns
/// their tokens.
async fn seed_account(store: &Store, old_hash: &SecretString, localpart: &str) -> Vec<String> {
    store
        .create_user(
            &NewUser {
                user_id: UserId::parse_local(localpart, "example.com").unwrap(),
                password_hash: Some(old_hash.clone()),
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
    let mut tokens = Vec::new();
    for device in ["PHONE", "LAPTOP"] {
        let token = format!(
            "syt_{localpart}_{device}_{}",
            homekey::secrets::random_alphanumeric(12)
        );
        store
            .create_session(
                &NewSession {
                    user_id: user_id(localpart),
                    device_id: device.into(),
                    device_display_name: None,
                    access_token: SecretString::from(token.clone()),
                    valid_until_ms: None,
                    now_ms: homekey::accounts::now_ms(),
                },
                None,
            )
            .await
            .unwrap();
        tokens.push(token);
    }
    tokens
}

/// One account as one snapshot of the database: a single statement, so a transaction that
/// commits while it is read (a killed client's last `COMMIT` may still be on its way to
/// PostgreSQL) is seen whole or not at all.
struct AccountSnapshot {
    users: i64,
    profiles: i64,
    password_hash: Option<String>,
    displayname: Option<String>,
    tokens: i64,
    devices: i64,
}

async fn snapshot(db: &TestDb, user_id: &str) -> AccountSnapshot {
    use sqlx::Connection;
    const SQL: &str = "SELECT (SELECT COUNT(*) FROM users WHERE name = $1), \
         (SELECT COUNT(*) FROM profiles WHERE full_user_id = $1), \
         (SELECT password_hash FROM users WHERE name = $1), \
         (SELECT displayname FROM profiles WHERE full_user_id = $1), \
         (SELECT COUNT(*) FROM access_tokens WHERE user_id = $1), \
         (SELECT COUNT(*) FROM devices WHERE user_id = $1)";
    type Row = (i64, i64, Option<String>, Option<String>, i64, i64);
    let row: Row = match &db.config {
        DatabaseConfig::Sqlite { path } => {
            let url = format!("sqlite:{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(SQL)
                .bind(user_id)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(SQL)
                .bind(user_id)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
        other => panic!("unexpected test database {other:?}"),
    };
    AccountSnapshot {
        users: row.0,
        profiles: row.1,
        password_hash: row.2,
        displayname: row.3,
        tokens: row.4,
        devices: row.5,
    }
}

/// Checks that a reset account is wholly old (old hash, both tokens and devices) or wholly
/// new (new hash, no token, no device); returns whether it is new.
async fn assert_old_or_new(
    db: &TestDb,
    old_hash: &SecretString,
    localpart: &str,
    new_password: &str,
) -> bool {
    let id = user_id(localpart);
    let account = snapshot(db, &id).await;
    let hash = account.password_hash.expect("a password hash");
    if hash == old_hash.expose_secret() {
        assert_eq!(
            (account.tokens, account.devices),
            (2, 2),
            "{id}: old hash but tokens or devices gone"
        );
        false
    } else {
        assert!(
            settings().verify(
                &SecretString::from(new_password),
                Some(&SecretString::from(hash))
            ),
            "{id}: a hash that is neither the old nor the new password's"
        );
        assert_eq!(
            (account.tokens, account.devices),
            (0, 0),
            "{id}: new hash but tokens left"
        );
        true
    }
}

/// Checks that an account made by a creation exists whole (password, display name) or not
/// at all; returns whether it exists.
async fn assert_whole_or_absent(
    db: &TestDb,
    localpart: &str,
    password: &str,
    displayname: &str,
) -> bool {
    let id = user_id(localpart);
    let account = snapshot(db, &id).await;
    if account.users == 0 {
        assert_eq!(account.profiles, 0, "{id}: a profile without its account");
        return false;
    }
    assert_eq!(account.profiles, 1, "{id}: an account without its profile");
    assert!(
        settings().verify(
            &SecretString::from(password),
            account.password_hash.map(SecretString::from).as_ref()
        ),
        "{id}: created without its password"
    );
    assert_eq!(account.displayname.as_deref(), Some(displayname), "{id}");
    true
}

/// `homekey serve` killed while resets and creations are in flight.
async fn serve_killed_during_resets_and_creations_leaves_whole_accounts(db: TestDb) {
    let rounds = rounds(20);
    let old_hash = settings().hash(&SecretString::from(OLD_PASSWORD)).unwrap();
    // An admin whose token outlives every restart.
    let admin_token = seed_account(&db.store, &old_hash, "root").await.remove(0);
    db.store
        .set_admin(
            "@root:example.com",
            true,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();

    let mut tally = Tally::default();
    let mut probe = TransactionProbe::new(&db).await;
    let mut window = Duration::ZERO;
    // Round 0 measures the window and is not killed.
    for round in 0..=rounds {
        let mut seeded = Vec::new();
        for i in 0..RESETS_PER_ROUND {
            let localpart = format!("s{round}r{i}");
            seed_account(&db.store, &old_hash, &localpart).await;
            seeded.push(localpart);
        }
        let server = Server::start(db.share().await, "").await;
        let started = Instant::now();
        let mut requests = tokio::task::JoinSet::new();
        for (i, localpart) in seeded.iter().enumerate() {
            let (http, url) = (
                server.http.clone(),
                server.url(&format!(
                    "/_synapse/admin/v1/reset_password/{}",
                    user_id(localpart)
                )),
            );
            let (token, password) = (admin_token.clone(), format!("new-{localpart}"));
            requests.spawn(async move {
                let body = json!({"new_password": password, "logout_devices": true});
                let sent = http
                    .post(url)
                    .bearer_auth(token)
                    .body(body.to_string())
                    .send()
                    .await;
                (false, i, sent.map(|r| r.status()).ok())
            });
        }
        for i in 0..CREATIONS_PER_ROUND {
            let localpart = format!("s{round}c{i}");
            let (http, url) = (
                server.http.clone(),
                server.url(&format!("/_synapse/admin/v2/users/{}", user_id(&localpart))),
            );
            let token = admin_token.clone();
            requests.spawn(async move {
                let body = json!({"password": format!("pw-{localpart}"), "displayname": format!("Name {localpart}")});
                let sent = http.put(url).bearer_auth(token).body(body.to_string()).send().await;
                (true, i, sent.map(|r| r.status()).ok())
            });
        }
        if round == 0 {
            while let Some(joined) = requests.join_next().await {
                let (_, _, status) = joined.unwrap();
                assert!(status.is_some_and(|s| s.is_success()), "{status:?}");
            }
            window = started.elapsed().mul_f32(1.5);
            drop(server);
        } else {
            tally
                .freeze_at_kill_point(&mut probe, round, window, &[server.pid()])
                .await;
            drop(server); // SIGKILL
            tally.kills += 1;
        }
        let mut answered_ok = std::collections::HashSet::new();
        while let Some(joined) = requests.join_next().await {
            let (creation, i, status) = joined.unwrap();
            if status.is_some_and(|s| s.is_success()) {
                answered_ok.insert((creation, i));
            }
        }
        let (mut landed, mut not_landed) = (0, 0);
        for (i, localpart) in seeded.iter().enumerate() {
            let new = format!("new-{localpart}");
            let is_new = assert_old_or_new(&db, &old_hash, localpart, &new).await;
            assert!(
                is_new || !answered_ok.contains(&(false, i)),
                "{localpart}: answered but not done"
            );
            if is_new { landed += 1 } else { not_landed += 1 }
        }
        for i in 0..CREATIONS_PER_ROUND {
            let localpart = format!("s{round}c{i}");
            let exists = assert_whole_or_absent(
                &db,
                &localpart,
                &format!("pw-{localpart}"),
                &format!("Name {localpart}"),
            )
            .await;
            assert!(
                exists || !answered_ok.contains(&(true, i)),
                "{localpart}: answered but not done"
            );
            if exists { landed += 1 } else { not_landed += 1 }
        }
        if round > 0 {
            tally.round(landed, not_landed);
        }
    }
    eprintln!(
        "crash (serve, {}): kill window {window:?}, {tally:?}",
        db.store.engine()
    );
    assert!(
        tally.in_transaction > 0,
        "no kill of serve landed inside a transaction: {tally:?}"
    );
}

/// The operator's commands, run as processes on the test database.
struct Cli {
    _dir: tempfile::TempDir,
    config: PathBuf,
    database: String,
}

impl Cli {
    fn new(db: &TestDb) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::support::write_config(
            dir.path(),
            &format!(
                "server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  pepper: {PEPPER}\n"
            ),
        );
        let database = match &db.config {
            DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
            DatabaseConfig::PostgresUrl(url) => url.clone(),
            other => panic!("unexpected test database {other:?}"),
        };
        Cli {
            _dir: dir,
            config,
            database,
        }
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Starts `homekey ARGS` with `stdin` written to it.
    fn spawn(&self, args: &[&str], stdin: &str) -> Child {
        let mut child = Command::new(HOMEKEY)
            .args(args)
            .args([
                "-c",
                self.config.to_str().unwrap(),
                "--database",
                &self.database,
            ])
            .env_remove("HOMEKEY_CONFIG")
            .env_remove("RUST_LOG")
            .env("USER", "crash-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
        child
    }
}

/// `homekey user set-password --logout-devices`, several at once, killed at random points.
async fn set_password_killed_at_random_points_leaves_old_or_new_state(db: TestDb) {
    let rounds = rounds(20);
    let cli = Cli::new(&db);
    let old_hash = settings().hash(&SecretString::from(OLD_PASSWORD)).unwrap();
    let mut tally = Tally::default();
    let mut probe = TransactionProbe::new(&db).await;
    let mut window = Duration::ZERO;
    for round in 0..=rounds {
        let mut seeded = Vec::new();
        for i in 0..CLI_PROCESSES {
            let localpart = format!("p{round}u{i}");
            seed_account(&db.store, &old_hash, &localpart).await;
            seeded.push(localpart);
        }
        let started = Instant::now();
        let mut children: Vec<Child> = seeded
            .iter()
            .map(|localpart| {
                cli.spawn(
                    &[
                        "user",
                        "set-password",
                        localpart,
                        "--logout-devices",
                        "--password-stdin",
                    ],
                    &format!("new-{localpart}\n"),
                )
            })
            .collect();
        if round == 0 {
            for child in &mut children {
                assert!(child.wait().unwrap().success());
            }
            window = started.elapsed().mul_f32(1.3);
        } else {
            let pids: Vec<u32> = children.iter().map(Child::id).collect();
            tally
                .freeze_at_kill_point(&mut probe, round, window, &pids)
                .await;
            for child in &mut children {
                tally.kill(child, adapted(round, &mut window));
            }
        }
        let mut exited_ok = Vec::new();
        for child in &mut children {
            exited_ok.push(child.wait().unwrap().success());
        }
        let (mut landed, mut not_landed) = (0, 0);
        for (localpart, ok) in seeded.iter().zip(exited_ok) {
            let new = format!("new-{localpart}");
            let is_new = assert_old_or_new(&db, &old_hash, localpart, &new).await;
            assert!(is_new || !ok, "{localpart}: exited 0 but not done");
            if is_new { landed += 1 } else { not_landed += 1 }
        }
        if round > 0 {
            tally.round(landed, not_landed);
        }
    }
    eprintln!(
        "crash (set-password, {}): kill window {window:?}, {tally:?}",
        db.store.engine()
    );
    assert!(
        tally.kills * 2 >= rounds * CLI_PROCESSES,
        "too few kills hit a running set-password: {tally:?}"
    );
    assert!(
        tally.in_transaction > 0,
        "no kill of set-password landed inside a transaction: {tally:?}"
    );
}

/// `homekey user import` killed at a random point, then run again to the end.
async fn import_killed_at_random_points_leaves_whole_accounts_and_a_rerun_completes_it(db: TestDb) {
    let rounds = rounds(10);
    let cli = Cli::new(&db);
    let mut tally = Tally::default();
    let mut probe = TransactionProbe::new(&db).await;
    let mut window = Duration::ZERO;
    for round in 0..=rounds {
        let localparts: Vec<String> = (0..IMPORT_SIZE).map(|j| format!("i{round}u{j}")).collect();
        let mut csv = String::from("user,password,displayname\n");
        for localpart in &localparts {
            csv.push_str(&format!("{localpart},pw-{localpart},Name {localpart}\n"));
        }
        let file = cli.dir().join(format!("import-{round}.csv"));
        std::fs::write(&file, csv).unwrap();
        let file = file.to_str().unwrap();

        let started = Instant::now();
        let mut child = cli.spawn(&["user", "import", file], "");
        if round == 0 {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            window = started.elapsed().mul_f32(1.2);
        } else {
            tally
                .freeze_at_kill_point(&mut probe, round, window, &[child.id()])
                .await;
            tally.kill(&mut child, adapted(round, &mut window));
            child.wait().unwrap();
        }
        let (mut landed, mut not_landed) = (0, 0);
        for localpart in &localparts {
            let exists = assert_whole_or_absent(
                &db,
                localpart,
                &format!("pw-{localpart}"),
                &format!("Name {localpart}"),
            )
            .await;
            if exists { landed += 1 } else { not_landed += 1 }
        }
        if round > 0 {
            tally.round(landed, not_landed);
        }
        // Run again: it finishes the job, skipping whoever is there.
        let out = cli
            .spawn(&["user", "import", file], "")
            .wait_with_output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for localpart in &localparts {
            assert!(
                assert_whole_or_absent(
                    &db,
                    localpart,
                    &format!("pw-{localpart}"),
                    &format!("Name {localpart}"),
                )
                .await,
                "{localpart}: missing after the re-run"
            );
        }
    }
    eprintln!(
        "crash (import of {IMPORT_SIZE}, {}): kill window {window:?}, {tally:?}",
        db.store.engine()
    );
    assert!(
        tally.kills * 3 >= rounds,
        "too few kills hit a running import: {tally:?}"
    );
    assert!(
        tally.in_transaction > 0,
        "no kill of import landed inside a transaction: {tally:?}"
    );
}
