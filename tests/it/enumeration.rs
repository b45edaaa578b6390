//! Telling which accounts exist: unknown, deactivated and existing users answer a wrong
//! login alike, in the same time (the dummy hash runs at the configured cost), and the
//! address rate limit answers before any account is looked up.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(the_address_limit_answers_before_any_account_is_looked_up);

/// Rounds; each tries every kind once, so a slow moment of the machine slows one round's
/// tries alike, and the rounds' ratios are compared, not times from different moments.
const ROUNDS: usize = 21;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// At a real cost (bcrypt 10), an unknown or deactivated user takes as long to refuse as a
/// wrong password. The test runs beside CPU-heavy ones (`cargo test` runs tests in parallel),
/// so it does not compare times taken at different moments: each round times the three kinds
/// back to back, in an order that rotates from round to round, and takes each kind's ratio to
/// the wrong password of the same round; the median ratio over the rounds must be within a
/// factor of two. Without the dummy hash an unknown user is refused some thirty times faster
/// (a ratio near 0.03).
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
    let mut times: [Vec<Duration>; 3] = Default::default();
    // One round more, first, to warm up; not counted.
    for round in 0..=ROUNDS {
        let unknown_user = format!("nobody{round}");
        let kinds = [
            ("amy", "wrong-pw"),
            (unknown_user.as_str(), "wrong-pw"),
            ("gone", "gone-pw"),
        ];
        let mut took = [Duration::ZERO; 3];
        for offset in 0..3 {
            let kind = (round + offset) % 3;
            let (user, password) = kinds[kind];
            let started = Instant::now();
            let (status, body) = server.login(user, password).await;
            took[kind] = started.elapsed();
            assert_eq!((status, &body), (StatusCode::FORBIDDEN, &refusal), "{user}");
        }
        if round > 0 {
            for (kind, time) in took.into_iter().enumerate() {
                times[kind].push(time);
            }
        }
    }
    let ratios = |kind: usize| -> Vec<f64> {
        times[kind]
            .iter()
            .zip(&times[0])
            .map(|(time, wrong)| time.as_secs_f64() / wrong.as_secs_f64())
            .collect()
    };
    let median_ms =
        |kind: usize| median(times[kind].iter().map(|t| t.as_secs_f64() * 1e3).collect());
    let (unknown, deactivated) = (median(ratios(1)), median(ratios(2)));
    eprintln!(
        "FIGURES login at bcrypt cost 10, {ROUNDS} rounds: medians wrong password {:.0} ms, \
         unknown user {:.0} ms, deactivated user {:.0} ms; median ratio to the wrong password \
         of the same round: unknown {unknown:.2}, deactivated {deactivated:.2}",
        median_ms(0),
        median_ms(1),
        median_ms(2),
    );
    for (what, ratio) in [("unknown", unknown), ("deactivated", deactivated)] {
        assert!(
            (0.5..=2.0).contains(&ratio),
            "{what} user: median ratio {ratio:.2} to a wrong password's time ({times:?})"
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
