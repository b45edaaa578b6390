//! Many requests at once on one account, through one `homekey serve`, on SQLite and
//! PostgreSQL: password resets racing each other and racing logins, logins and logouts of one
//! device, registrations of one name. Each test checks the end state in the database, so a
//! lost update or a token left behind fails it whatever the timing was.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use homekey::shared_secret::{RegistrationFields, registration_mac};
use homekey::store::{Logout, NewSession};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    a_hundred_concurrent_resets_leave_one_password_and_no_older_token,
    a_login_that_checked_the_old_password_never_outlives_the_reset,
    concurrent_logins_and_logouts_of_one_device_leave_no_orphan,
    concurrent_registrations_of_one_name_give_one_account_and_user_in_use,
    requests_their_clients_give_up_on_run_to_their_end_and_leave_no_transaction_open,
);

/// How many resets race in the first test.
const RESETS: usize = 100;
const SHARED_SECRET: &str = "concurrency-shared-secret";

fn reset_path(user_id: &str) -> String {
    format!("/_synapse/admin/v1/reset_password/{user_id}")
}

/// Every access token of `user_id` with a device has that device's row.
const ORPHAN_TOKENS: &str = "SELECT COUNT(*) FROM access_tokens t WHERE t.user_id = $1 \
     AND t.device_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM devices d \
     WHERE d.user_id = t.user_id AND d.device_id = t.device_id)";

/// Devices of `user_id` left without any access token.
const DEVICES_WITHOUT_TOKEN: &str = "SELECT COUNT(*) FROM devices d WHERE d.user_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM access_tokens t \
     WHERE t.user_id = d.user_id AND t.device_id = d.device_id)";

const TOKENS_OF: &str = "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1";

/// A status a request may get when the database is too busy to take it in time: the
/// operation was not done. Anything else but the expected answer fails the test.
fn is_busy(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE && body["errcode"] == "M_UNKNOWN"
}

/// 100 admin resets of one user, each with its own password, all at once, while the user
/// logs in again and again with the password most recently set.
async fn a_hundred_concurrent_resets_leave_one_password_and_no_older_token(db: TestDb) {
    let server = Arc::new(Server::start(db, "").await);
    let admin = server.admin_token("root", "root-password").await;
    let rose = "@rose:example.com";
    server.create_user("rose", "initial-password").await;
    let mut old_tokens = Vec::new();
    for _ in 0..3 {
        old_tokens.push(server.token_for("rose", "initial-password").await);
    }

    // The password of the last reset that answered, for the logins to try.
    let latest = Arc::new(Mutex::new(String::from("initial-password")));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut resets = tokio::task::JoinSet::new();
    for i in 0..RESETS {
        let (server, admin, latest) = (server.clone(), admin.clone(), latest.clone());
        resets.spawn(async move {
            let password = format!("password-{i}");
            let body = json!({"new_password": password, "logout_devices": true});
            let (status, answer) = server
                .call("POST", &reset_path(rose), Some(&admin), Some(body))
                .await;
            assert!(
                status == StatusCode::OK || is_busy(status, &answer),
                "{status} {answer}"
            );
            if status == StatusCode::OK {
                *latest.lock().unwrap() = password;
            }
            (i, status == StatusCode::OK)
        });
    }
    // Logins racing the resets: (password used, token) for each that succeeded.
    let minted = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (server, latest, done, minted) =
            (server.clone(), latest.clone(), done.clone(), minted.clone());
        logins.spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let password = latest.lock().unwrap().clone();
                let (status, body) = server.login("rose", &password).await;
                match status {
                    StatusCode::OK => minted
                        .lock()
                        .unwrap()
                        .push((password, body["access_token"].as_str().unwrap().to_owned())),
                    StatusCode::FORBIDDEN => assert_eq!(body["errcode"], "M_FORBIDDEN"),
                    _ => assert!(is_busy(status, &body), "{status} {body}"),
                }
            }
        });
    }
    let mut answered = Vec::new();
    while let Some(joined) = resets.join_next().await {
        let (i, ok) = joined.unwrap();
        if ok {
            answered.push(i);
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(joined) = logins.join_next().await {
        joined.unwrap();
    }
    assert!(!answered.is_empty(), "no reset went through");

    // Exactly one password works now, one whose reset answered.
    let mut working = Vec::new();
    for i in 0..RESETS {
        if server.has_password(rose, &format!("password-{i}")).await {
            working.push(i);
        }
    }
    assert!(!server.has_password(rose, "initial-password").await);
    assert_eq!(working.len(), 1, "passwords that work: {working:?}");
    assert!(answered.contains(&working[0]));
    let last = format!("password-{}", working[0]);

    // No token from before the last reset: only logins with the last password survive.
    for token in &old_tokens {
        let (status, _) = server.whoami(Some(token)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a token from before the resets"
        );
    }
    let minted = minted.lock().unwrap().clone();
    let mut surviving = 0;
    for (password, token) in &minted {
        let (status, _) = server.whoami(Some(token)).await;
        if status == StatusCode::OK {
            surviving += 1;
            assert_eq!(
                password, &last,
                "a token minted with an older password survived the last reset"
            );
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(server.db.count(TOKENS_OF, rose).await, surviving);
    assert_eq!(server.db.count(ORPHAN_TOKENS, rose).await, 0);
    server.token_for("rose", &last).await;
    eprintln!(
        "concurrency ({}): {RESETS} resets at once ({} answered 200), {} logins succeeded during them, {surviving} survived",
        server.store().engine(),
        answered.len(),
        minted.len()
    );
}

/// Rounds of one reset against several logins with the password it replaces. A login
/// checks the password (bcrypt, outside any transaction) and then writes its token: if the
/// reset commits in between, the login must fail, or its token would outlive the reset.
async fn a_login_that_checked_the_old_password_never_outlives_the_reset(db: TestDb) {
    const ROUNDS: usize = 25;
    const LOGINS: usize = 6;
    let server = Arc::new(Server::start(db, "").await);
    let admin = server.admin_token("root", "root-password").await;
    let user_id = "@lena:example.com";
    server.create_user("lena", "round-0").await;
    let mut raced = 0;
    for round in 0..ROUNDS {
        let old = format!("round-{round}");
        let new = format!("round-{}", round + 1);
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..LOGINS {
            let (server, old) = (server.clone(), old.clone());
            logins.spawn(async move {
                let (status, body) = server.login("lena", &old).await;
                (status == StatusCode::OK)
                    .then(|| body["access_token"].as_str().unwrap().to_owned())
            });
        }
        let body = json!({"new_password": new, "logout_devices": true});
        let (status, answer) = server
            .call("POST", &reset_path(user_id), Some(&admin), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let mut tokens = Vec::new();
        while let Some(joined) = logins.join_next().await {
            tokens.extend(joined.unwrap());
        }
        if tokens.len() < LOGINS {
            raced += 1;
        }
        // Whatever the order was, the reset has answered: no token of the old password lives.
        for token in &tokens {
            let (status, _) = server.whoami(Some(token)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "round {round}: a login with the old password outlived the reset"
            );
        }
        assert_eq!(
            server.db.count(TOKENS_OF, user_id).await,
            0,
            "round {round}"
        );
    }
    eprintln!(
        "concurrency ({}): {ROUNDS} rounds of 1 reset against {LOGINS} logins; in {raced} a login lost the race",
        server.store().engine(),
    );

    // The rounds above show that no old-password token outlives a reset, but not whether a
    // login ever lost in the compare-and-insert (a 403 there may be a check made after the
    // reset). So, once more, with the order held still: the test takes the user's row (the
    // database's write lock on SQLite), logins with the right password check it and then
    // wait for that lock to write their token; the test changes the hash, as an operator's
    // UPDATE does, and commits. Each login was right when checked, and must be refused.
    let refused = logins_checked_before_a_change_commits(&server, "lena", "round-25").await;
    assert_eq!(
        refused, 3,
        "logins that checked the password before the change committed were let in"
    );
    assert_eq!(server.db.count(TOKENS_OF, user_id).await, 0);
    assert_eq!(
        server.login("lena", "changed-by-hand").await.0,
        StatusCode::OK
    );
}

/// Three logins of `localpart` with `password` (its password now), held between their
/// password check and their token's insertion by a transaction of the test, which changes
/// the password hash before it commits; returns how many were refused (403 `M_FORBIDDEN`).
async fn logins_checked_before_a_change_commits(
    server: &Arc<Server>,
    localpart: &str,
    password: &str,
) -> usize {
    use homekey::config::{DatabaseConfig, HashScheme};
    use homekey::password::HashSettings;
    use secrecy::ExposeSecret;
    use sqlx::Connection;
    // Fewer than the SQLite pool's four connections: each waiting login holds one.
    const LOGINS: usize = 3;
    let user_id = format!("@{localpart}:example.com");
    let new_hash = HashSettings::new(
        HashScheme::Bcrypt,
        5,
        SecretString::from(crate::server::PEPPER),
    )
    .hash(&SecretString::from("changed-by-hand"))
    .unwrap();
    let update = "UPDATE users SET password_hash = $1 WHERE name = $2";
    let spawn_logins = || {
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..LOGINS {
            let (server, localpart, password) =
                (server.clone(), localpart.to_owned(), password.to_owned());
            logins.spawn(async move { server.login(&localpart, &password).await });
        }
        logins
    };
    let mut logins = match &server.db.config {
        DatabaseConfig::Sqlite { path } => {
            let url = format!("sqlite:{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            let logins = spawn_logins();
            // SQLite shows no waiting writer: give the logins ample time to read the account
            // and check the password (bcrypt at cost 5: milliseconds). One that checked only
            // after the commit would be refused anyway, so a slow one cannot fail the test.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            sqlx::query(update)
                .bind(new_hash.expose_secret())
                .bind(&user_id)
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
            logins
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("SELECT 1 FROM users WHERE name = $1 FOR UPDATE")
                .bind(&user_id)
                .execute(&mut conn)
                .await
                .unwrap();
            let logins = spawn_logins();
            // Each login is waiting for the row once PostgreSQL shows it waiting for a lock,
            // which it asks for only after its password check.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock'",
                )
                .fetch_one(&mut watcher)
                .await
                .unwrap();
                if waiting as usize >= LOGINS {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the logins never waited for the row"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            sqlx::query(update)
                .bind(new_hash.expose_secret())
                .bind(&user_id)
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
            logins
        }
        other => panic!("unexpected test database {other:?}"),
    };
    let mut refused = 0;
    while let Some(joined) = logins.join_next().await {
        let (status, body) = joined.unwrap();
        match status {
            StatusCode::FORBIDDEN => {
                assert_eq!(body["errcode"], "M_FORBIDDEN");
                refused += 1;
            }
            _ => assert_eq!(status, StatusCode::OK, "{body}"),
        }
    }
    refused
}

/// Clients logging in and out of the same device ID at once; each ends with a login.
async fn concurrent_logins_and_logouts_of_one_device_leave_no_orphan(db: TestDb) {
    const WORKERS: usize = 8;
    const CYCLES: usize = 12;
    let server = Arc::new(Server::start(db, "").await);
    let user_id = "@dave:example.com";
    server.create_user("dave", "dave-password").await;
    let login_body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "dave"},
        "password": "dave-password",
        "device_id": "SHAREDDEVICE",
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (server, login_body) = (server.clone(), login_body.clone());
        workers.spawn(async move {
            let mut last = String::new();
            for cycle in 0..=CYCLES {
                let (status, body) = server
                    .call(
                        "POST",
                        "/_matrix/client/v3/login",
                        None,
                        Some(login_body.clone()),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["device_id"], "SHAREDDEVICE");
                last = body["access_token"].as_str().unwrap().to_owned();
                if cycle == CYCLES {
                    break;
                }
                let (status, body) = server
                    .call(
                        "POST",
                        "/_matrix/client/v3/logout",
                        Some(&last),
                        Some(json!({})),
                    )
                    .await;
                // Another client's logout of the device may have ended this token already.
                assert!(
                    status == StatusCode::OK
                        || status == StatusCode::UNAUTHORIZED
                            && body["errcode"] == "M_UNKNOWN_TOKEN",
                    "{status} {body}"
                );
            }
            last
        });
    }
    let mut last_tokens = Vec::new();
    while let Some(joined) = workers.join_next().await {
        last_tokens.push(joined.unwrap());
    }
    assert_eq!(
        server.db.count(ORPHAN_TOKENS, user_id).await,
        0,
        "a token without its device"
    );
    assert_eq!(
        server.db.count(DEVICES_WITHOUT_TOKEN, user_id).await,
        0,
        "a device left without a token"
    );
    // Each final login that still works is on a device the user can see.
    let mut working = 0;
    for token in &last_tokens {
        let (status, _) = server.whoami(Some(token)).await;
        if status == StatusCode::OK {
            working += 1;
        }
    }
    assert_eq!(server.db.count(TOKENS_OF, user_id).await, working);
    let devices = server.device_ids(user_id).await;
    assert_eq!(devices.is_empty(), working == 0, "{devices:?}");
    // And a last logout leaves nothing behind.
    let token = server.token_for("dave", "dave-password").await;
    let (status, _) = server
        .call(
            "POST",
            "/_matrix/client/v3/logout/all",
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.db.count(TOKENS_OF, user_id).await, 0);
    assert!(server.device_ids(user_id).await.is_empty());
    eprintln!(
        "concurrency ({}): {WORKERS} clients x {CYCLES} login/logout cycles on one device; {working} final logins survived",
        server.store().engine(),
    );

    // The same straight on the store, without HTTP in between: many more interleavings.
    let (tasks, cycles) = (12, 30);
    let mut workers = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let store = server.store().clone();
        workers.spawn(async move {
            for cycle in 0..=cycles {
                let token = format!("syt_dave_{task}_{cycle}");
                store
                    .create_session(
                        &NewSession {
                            user_id: user_id.into(),
                            device_id: "STOREDEVICE".into(),
                            device_display_name: None,
                            access_token: SecretString::from(token),
                            valid_until_ms: None,
                            now_ms: homekey::accounts::now_ms(),
                        },
                        None,
                    )
                    .await
                    .unwrap();
                if cycle < cycles {
                    store
                        .logout(user_id, &Logout::Device("STOREDEVICE".into()), None)
                        .await
                        .unwrap();
                }
            }
        });
    }
    // Meanwhile, each snapshot of the database has every token on an existing device.
    let mut snapshots = 0;
    while !workers.is_empty() {
        let orphans = server.db.count(ORPHAN_TOKENS, user_id).await;
        assert_eq!(
            orphans, 0,
            "a token without its device, after {snapshots} snapshots"
        );
        snapshots += 1;
        while let Some(joined) = workers.try_join_next() {
            joined.unwrap();
        }
    }
    assert_eq!(
        server.db.count(ORPHAN_TOKENS, user_id).await,
        0,
        "a token without its device"
    );
    assert_eq!(server.db.count(DEVICES_WITHOUT_TOKEN, user_id).await, 0);
    assert_eq!(server.device_ids(user_id).await, ["STOREDEVICE"]);
    eprintln!(
        "concurrency ({}): {tasks} tasks x {cycles} store login/logout cycles on one device: no orphan in {snapshots} snapshots",
        server.store().engine(),
    );
}

/// Twenty shared-secret registrations of one name at once: one account, the others refused
/// with `M_USER_IN_USE`, never a 500.
async fn concurrent_registrations_of_one_name_give_one_account_and_user_in_use(db: TestDb) {
    const CLIENTS: usize = 20;
    let server = Arc::new(
        Server::start(
            db,
            &format!("registration_shared_secret: {SHARED_SECRET}\n"),
        )
        .await,
    );
    let secret = SecretString::from(SHARED_SECRET);
    // Nonces first, so the registrations themselves start together.
    let mut nonces = Vec::new();
    for _ in 0..CLIENTS {
        let (status, body) = server
            .call("GET", "/_synapse/admin/v1/register", None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        nonces.push(body["nonce"].as_str().unwrap().to_owned());
    }
    let mut clients = tokio::task::JoinSet::new();
    for (i, nonce) in nonces.into_iter().enumerate() {
        let server = server.clone();
        let password = format!("carol-password-{i}");
        let mac = registration_mac(
            &secret,
            RegistrationFields {
                nonce: &nonce,
                username: "carol",
                password: &password,
                admin: false,
                user_type: None,
            },
        );
        clients.spawn(async move {
            let body = json!({"nonce": nonce, "username": "carol", "password": password, "admin": false, "mac": mac});
            let (status, answer) = server
                .call("POST", "/_synapse/admin/v1/register", None, Some(body))
                .await;
            (i, status, answer)
        });
    }
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let mut winner = None;
    while let Some(joined) = clients.join_next().await {
        let (i, status, answer) = joined.unwrap();
        match status {
            StatusCode::OK => {
                assert_eq!(answer["user_id"], "@carol:example.com");
                winner = Some((i, answer["access_token"].as_str().unwrap().to_owned()));
            }
            StatusCode::BAD_REQUEST => assert_eq!(answer["errcode"], "M_USER_IN_USE", "{answer}"),
            _ => panic!("{status} {answer}"),
        }
        *outcomes.entry(status.to_string()).or_default() += 1;
    }
    assert_eq!(outcomes.get("200 OK"), Some(&1), "{outcomes:?}");
    let (i, token) = winner.unwrap();
    let (status, body) = server.whoami(Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        server
            .has_password("@carol:example.com", &format!("carol-password-{i}"))
            .await
    );
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM users WHERE lower(name) = $1",
                "@carol:example.com"
            )
            .await,
        1
    );
    eprintln!(
        "concurrency ({}): {CLIENTS} registrations of one name at once: {outcomes:?}",
        server.store().engine()
    );
}

/// How many refreshes are cut short by their clients.
const CUT_SHORT: usize = 120;

/// Clients that give up on their requests (the connection closed mid-request, as a phone
/// losing its network does) leave nothing half-done: the requests still run to their end, and
/// every write after them works at once. Before, a write transaction cut short this way could
/// stay open on its pooled SQLite connection, SQLite's write lock held: later writes failed with
/// "database is locked" or "begin_with at non-zero transaction depth". The race is shown to
/// have happened: the server finished more refreshes than its clients waited for.
async fn requests_their_clients_give_up_on_run_to_their_end_and_leave_no_transaction_open(
    db: TestDb,
) {
    let server = Server::start(db, "").await;
    server.create_user("alice", "alice-pw").await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..CUT_SHORT {
        let body = crate::serve_refresh::login_refreshable(&server, "alice", "alice-pw").await;
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    let cut = reqwest::Client::new();
    let url = server.url("/_matrix/client/v3/refresh");
    let mut requests = tokio::task::JoinSet::new();
    for (i, token) in refresh_tokens.iter().enumerate() {
        let request = cut.post(&url).json(&json!({"refresh_token": token})).send();
        // Given up on after 2 to 60 ms: some before the handler, some inside it, some after.
        let patience = std::time::Duration::from_millis(2 + 2 * (i % 30) as u64);
        requests.spawn(async move { tokio::time::timeout(patience, request).await.is_ok() });
    }
    let answered = requests
        .join_all()
        .await
        .into_iter()
        .filter(|answered| *answered)
        .count();
    // The refreshes that reached their handler run to their end, after their clients left:
    // the database shows more refresh tokens rotated (each pointing to its successor) than
    // clients waited for (counted once it settles). The access log, written around the
    // handler, has no line for a request whose client left.
    const ROTATED: &str =
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1 AND next_token_id IS NOT NULL";
    let mut finished = 0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = server.db.count(ROTATED, "@alice:example.com").await as usize;
        if now == finished && now > answered {
            break;
        }
        finished = now;
    }
    assert!(
        answered < finished,
        "no request was given up on mid-way ({answered} answered, {finished} finished): \
         the race did not happen"
    );
    // Writes right after: logins, each a transaction.
    for _ in 0..20 {
        let (status, body) = server.login("alice", "alice-pw").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let log = server.log();
    for symptom in ["transaction depth", "database is locked"] {
        assert!(!log.contains(symptom), "{symptom}:\n{log}");
    }
}
