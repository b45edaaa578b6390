//! The operator's commands other than `migrate`, `serve` and `migrate-from-synapse` never
//! create tables: a database that is neither homekey's nor Synapse's is refused untouched, a
//! missing SQLite file is not created, and homekey's schema left behind by an older homekey is
//! refused until `homekey migrate` brings it up to date. As processes, on SQLite and
//! PostgreSQL.

use std::borrow::Cow;
use std::path::Path;
use std::process::Output;

use homekey::config::DatabaseConfig;

use crate::support::{HOMEKEY, TestDb, run_binary, stderr};

/// Commands that only read: none of them may leave a table behind.
const READING_COMMANDS: &[&[&str]] = &[
    &["user", "list"],
    &["user", "show", "@alice:example.com"],
    &["audit", "list"],
];

fn run(args: &[&str], database: &str) -> Output {
    let mut all = args.to_vec();
    all.extend(["--database", database]);
    run_binary(HOMEKEY, &all, b"", &[("USER", "tester")])
}

/// The names of the database's tables, sorted.
async fn tables(config: &DatabaseConfig) -> Vec<String> {
    use sqlx::Connection;
    match config {
        DatabaseConfig::Sqlite { path } => {
            let url = format!("sqlite:{}?mode=ro", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let names = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            names
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let names = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
                 ORDER BY tablename",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            names
        }
        other => panic!("unexpected test database {other:?}"),
    }
}

async fn execute(config: &DatabaseConfig, sql: &str) {
    use sqlx::Connection;
    match config {
        DatabaseConfig::Sqlite { path } => {
            let url = format!("sqlite:{}?mode=rwc", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        other => panic!("unexpected test database {other:?}"),
    }
}

/// Every reading command on `database` is refused with a line naming it (exit 1), and the
/// database keeps exactly the tables it had.
async fn assert_refused_untouched(config: &DatabaseConfig, database: &str, named: &str) {
    let before = tables(config).await;
    for command in READING_COMMANDS {
        let out = run(command, database);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {err}");
        assert!(
            err.contains(named) && err.contains("neither homekey's tables nor Synapse's"),
            "{command:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{command:?}: {err}");
        assert_eq!(
            tables(config).await,
            before,
            "{command:?} changed the tables"
        );
    }
}

#[tokio::test]
async fn a_sqlite_file_of_neither_schema_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();

    // An empty file (what `touch` makes): it stays empty.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let config = DatabaseConfig::Sqlite {
        path: empty.clone(),
    };
    assert_refused_untouched(&config, &format!("sqlite:{}", empty.display()), "empty.db").await;
    assert_eq!(std::fs::read(&empty).unwrap(), b"");

    // Another program's database: not a byte of it changes (journal mode included).
    let other = dir.path().join("notes.db");
    let config = DatabaseConfig::Sqlite {
        path: other.clone(),
    };
    execute(
        &config,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
    )
    .await;
    let bytes = std::fs::read(&other).unwrap();
    assert_refused_untouched(&config, &format!("sqlite:{}", other.display()), "notes.db").await;
    assert_eq!(std::fs::read(&other).unwrap(), bytes);
    assert_eq!(tables(&config).await, ["notes"]);
}

#[tokio::test]
async fn a_postgres_database_of_neither_schema_is_refused_and_left_as_it_was() {
    let Some((config, _guard)) = TestDb::postgres_empty("postgres_of_neither_schema").await else {
        return;
    };
    let DatabaseConfig::PostgresUrl(url) = &config else {
        unreachable!("postgres_empty gives a URL")
    };
    assert_refused_untouched(&config, url, "PostgreSQL").await;
    assert!(tables(&config).await.is_empty());

    execute(
        &config,
        "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT)",
    )
    .await;
    assert_refused_untouched(&config, url, "PostgreSQL").await;
    assert_eq!(tables(&config).await, ["notes"]);
}

#[test]
fn a_missing_sqlite_file_is_not_created_by_the_reading_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let database = format!("sqlite:{}", path.display());
    for command in READING_COMMANDS {
        let out = run(command, &database);
        assert_eq!(out.status.code(), Some(3), "{command:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("typo.db does not exist"),
            "{}",
            stderr(&out)
        );
        assert!(!path.exists(), "{command:?} created {}", path.display());
    }
}

/// homekey's schema as an older homekey left it: every migration but the last applied.
async fn schema_of_an_older_homekey(config: &DatabaseConfig) {
    use sqlx::Connection;
    let engine = match config {
        DatabaseConfig::Sqlite { .. } => "sqlite",
        _ => "postgres",
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    let mut older = sqlx::migrate::Migrator::new(dir).await.unwrap();
    let all = older.migrations.to_vec();
    older.migrations = Cow::Owned(all[..all.len() - 1].to_vec());
    match config {
        DatabaseConfig::Sqlite { path } => {
            let url = format!("sqlite:{}?mode=rwc", path.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            older.run(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        DatabaseConfig::PostgresUrl(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            older.run(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        other => panic!("unexpected test database {other:?}"),
    }
}

async fn check_a_schema_behind_waits_for_migrate(config: &DatabaseConfig, database: &str) {
    schema_of_an_older_homekey(config).await;
    let before = tables(config).await;
    for command in READING_COMMANDS {
        let out = run(command, database);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {err}");
        assert!(
            err.contains("is behind this homekey") && err.contains("run `homekey migrate`"),
            "{command:?}: {err}"
        );
        assert_eq!(
            tables(config).await,
            before,
            "{command:?} changed the tables"
        );
    }
    let out = run(&["migrate"], database);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["user", "list"], database);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_schema_behind_is_refused_until_homekey_migrate_on_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.db");
    let database = format!("sqlite:{}", path.display());
    check_a_schema_behind_waits_for_migrate(&DatabaseConfig::Sqlite { path }, &database).await;

    if let Some((config, _guard)) = TestDb::postgres_empty("schema_behind_on_postgres").await {
        let DatabaseConfig::PostgresUrl(url) = &config else {
            unreachable!("postgres_empty gives a URL")
        };
        check_a_schema_behind_waits_for_migrate(&config, url).await;
    }
}
