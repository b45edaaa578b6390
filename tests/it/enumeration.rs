//! Telling which accounts exist: unknown, deactivated and existing users answer a wrong
//! login alike, in the same time (the dummy hash runs at the configured cost), and the
//! address rate limit answers before any account is looked up.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(the_address_limit_answers_before_any_account_is_looked_up);

/// Tries of each kind; the medians are compared.
const TRIES: usize = 7;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// At a real cost (bcrypt 10), an unknown or deactivated user takes as long to refuse as a
/// wrong password: the medians are within a factor of two. Without the dummy hash, an
/// unknown user would be refused some thirty times faster.
#[tokio::test]
async fn unknown_and_deactivated_users_take_as_long_as_a_wrong_password() {
    let server = Server::start(TestDb::sqlite().await, "bcrypt_rounds: 10\n").await;
    for user in ["amy", "gone"] {
        server.create_user(user, &format!("{user}-pw")).await;
        // The first login rehashes at the configured cost, as for any older hash.
        assert_eq!(
            server.login(user, &format!("{user}-pw")).await.0,
            StatusCode::OK
        );
        let stored = server
            .store()
            .get_user(&format!("@{user}:example.com"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            secrecy::ExposeSecret::expose_secret(&stored.password_hash.unwrap())
                .starts_with("$2b$10$")
        );
    }
    server
        .store()
        .deactivate(
            "@gone:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    let refusal = json!({"errcode": "M_FORBIDDEN", "error": "Invalid username or password"});
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    let mut deactivated = Vec::new();
    // Interleaved, so a slow moment of the machine slows every kind alike.
    for round in 0..TRIES {
        let unknown_user = format!("nobody{round}");
        for (user, password, times) in [
            ("amy", "wrong-pw", &mut wrong),
            (unknown_user.as_str(), "wrong-pw", &mut unknown),
            ("gone", "gone-pw", &mut deactivated),
        ] {
            let started = Instant::now();
            let (status, body) = server.login(user, password).await;
            times.push(started.elapsed());
            assert_eq!((status, &body), (StatusCode::FORBIDDEN, &refusal), "{user}");
        }
    }
    let (wrong, unknown, deactivated) = (median(wrong), median(unknown), median(deactivated));
    eprintln!(
        "FIGURES login medians at bcrypt cost 10 ({TRIES} tries each): wrong password {wrong:?}, \
         unknown user {unknown:?}, deactivated user {deactivated:?}"
    );
    for (what, median) in [("unknown", unknown), ("deactivated", deactivated)] {
        assert!(
            median * 2 >= wrong && median <= wrong * 2,
            "{what} user: median {median:?} against {wrong:?} for a wrong password"
        );
    }
}

/// With a burst of one login per address, the next ones are 429 for an unknown and for an
/// existing user alike, even with the accounts table gone: the limit is checked before any
/// lookup (a lookup would have failed with a 500).
async fn the_address_limit_answers_before_any_account_is_looked_up(db: TestDb) {
    let limits = "rc_login:\n  address: {per_second: 0.001, burst_count: 1}\n  \
                  account: {per_second: 1000, burst_count: 1000}\n  \
                  failed_attempts: {per_second: 1000, burst_count: 1000}\n";
    let server = Server::start(db, limits).await;
    server.create_user("kim", "kim-pw").await;
    let token = server.admin_token("root", "root-pw").await;
    // That login used the burst. Now the accounts cannot be read at all.
    rename_users_table(&server.db.config, "users", "users_hidden").await;
    let (status, _) = server.whoami(Some(&token)).await;
    assert!(
        status.is_server_error(),
        "the accounts table should be unreadable: {status}"
    );
    for (user, password) in [("nobody", "x"), ("kim", "kim-pw"), ("kim", "wrong")] {
        let (status, body) = server.login(user, password).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{user}: {body}");
        assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED");
    }
    rename_users_table(&server.db.config, "users_hidden", "users").await;
}

async fn rename_users_table(config: &homekey::config::DatabaseConfig, from: &str, to: &str) {
    use sqlx::Connection;
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    match config {
        homekey::config::DatabaseConfig::Sqlite { path } => {
            let url = format!("sqlite:{}", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        }
        homekey::config::DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        }
        other => panic!("{other:?}"),
    }
}
