//! Opening the database: connection settings for each engine, telling homekey's schema from
//! Synapse's, and running homekey's migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::sqlite_reads::SqliteReads;
use super::{Backend, Flavour, Store, StoreError};
use crate::config::DatabaseConfig;

/// Whether opening may create the database and its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve`, `migrate` and `migrate-from-synapse`: a missing database is created, and
    /// homekey's schema is created or brought up to date.
    CreateIfMissing,
    /// Every other command: the database must exist and hold homekey's schema, up to date, or
    /// Synapse's. A path that does not exist is far more likely a typo than a wish, and a
    /// database of neither kind is someone else's: nothing is created in either.
    MustExist,
}

/// How long an operation waits for a locked SQLite database before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a connection before calling the database unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects, finds out whose schema the database has, and brings homekey's own schema up
    /// to date. A Synapse database is opened as it is.
    pub async fn open(database: &DatabaseConfig, mode: OpenMode) -> Result<Store, StoreError> {
        let backend = match database {
            DatabaseConfig::Sqlite { path } => {
                if mode == OpenMode::CreateIfMissing {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(|err| {
                            StoreError::Unavailable(format!(
                                "cannot create {}: {err}",
                                dir.display()
                            ))
                        })?;
                    }
                } else if !path.exists() {
                    // What a new user meets after `generate-config`: say how to make it.
                    return Err(StoreError::Unavailable(format!(
                        "{} does not exist; create it with `homekey migrate` given the same \
                         -c or --database (or start `homekey serve` once)",
                        path.display()
                    )));
                } else {
                    // Someone else's file is refused before the pool below sets its journal
                    // mode, which SQLite keeps in the file.
                    refuse_sqlite_without_account_schema(path, database).await?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(mode == OpenMode::CreateIfMissing)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    // A file on this machine does not drop a connection: the ping sqlx sends
                    // before handing one out is a round trip to the connection's thread on
                    // every query (bench/README.md, whoami's profile).
                    .test_before_acquire(false)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|err| {
                        StoreError::Unavailable(format!("SQLite at {}: {err}", path.display()))
                    })?;
                Backend::Sqlite(pool)
            }
            DatabaseConfig::Postgres {
                host,
                port,
                user,
                password,
                dbname,
            } => {
                let mut options = PgConnectOptions::new();
                if let Some(host) = host {
                    // libpq's rule: a host starting with '/' is the directory of a Unix socket.
                    options = if host.starts_with('/') {
                        options.socket(host)
                    } else {
                        options.host(host)
                    };
                }
                if let Some(port) = port {
                    options = options.port(*port);
                }
                if let Some(user) = user {
                    options = options.username(user);
                }
                if let Some(password) = password {
                    options = options.password(password);
                }
                if let Some(dbname) = dbname {
                    options = options.database(dbname);
                }
                Backend::Postgres(connect_postgres(options, database).await?)
            }
            DatabaseConfig::PostgresUrl(url) => {
                let options = PgConnectOptions::from_str(url).map_err(|_| {
                    StoreError::Unavailable("--database: not a valid postgres:// URL".into())
                })?;
                Backend::Postgres(connect_postgres(options, database).await?)
            }
        };
        let sqlite_reads = match (database, &backend) {
            (DatabaseConfig::Sqlite { path }, Backend::Sqlite(pool)) => Some(std::sync::Arc::new(
                SqliteReads::new(path.clone(), pool.clone()),
            )),
            _ => None,
        };
        let mut store = Store {
            backend,
            flavour: Flavour::Homekey,
            sqlite_reads,
            owes_synapse: false,
        };
        store.flavour = match (detect_schema(&store.backend).await?, mode) {
            (Schema::Synapse, _) => Flavour::Synapse,
            (Schema::Homekey | Schema::None, OpenMode::CreateIfMissing) => {
                store.migrate().await?;
                Flavour::Homekey
            }
            (Schema::Homekey, OpenMode::MustExist) => {
                store.check_schema_is_current(database).await?;
                Flavour::Homekey
            }
            (Schema::None, OpenMode::MustExist) => return Err(not_an_account_database(database)),
        };
        Ok(store)
    }

    /// Brings homekey's schema up to date. Refused on a Synapse database: its schema is
    /// Synapse's to change.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.flavour == Flavour::Synapse {
            return Err(StoreError::RefusedOnSynapse(
                "homekey does not migrate it; Synapse manages its own schema",
            ));
        }
        match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Refuses homekey's schema when it is not the one this homekey was built for: behind
    /// (an older homekey's, migrated by `homekey migrate`) or ahead (a newer homekey's).
    async fn check_schema_is_current(&self, database: &DatabaseConfig) -> Result<(), StoreError> {
        let query = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let (applied, migrator): (Vec<i64>, _) = match &self.backend {
            Backend::Sqlite(pool) => (
                sqlx::query_scalar(query).fetch_all(pool).await?,
                &SQLITE_MIGRATIONS,
            ),
            Backend::Postgres(pool) => (
                sqlx::query_scalar(query).fetch_all(pool).await?,
                &POSTGRES_MIGRATIONS,
            ),
        };
        let known: Vec<i64> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        if let Some(missing) = known.iter().find(|v| !applied.contains(v)) {
            return Err(StoreError::SchemaNotCurrent(format!(
                "homekey's schema in {database} is behind this homekey (migration {missing} \
                 not applied): run `homekey migrate` with the same -c or --database first"
            )));
        }
        if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
            return Err(StoreError::SchemaNotCurrent(format!(
                "homekey's schema in {database} is newer than this homekey (migration \
                 {unknown} unknown to it): use the homekey that migrated it"
            )));
        }
        Ok(())
    }
}

/// Synapse keeps its schema version in `schema_version`; homekey's migrations leave
/// `_sqlx_migrations`. A database with neither and no `users` table has no schema of
/// either (new, or someone else's).
async fn detect_schema(backend: &Backend) -> Result<Schema, StoreError> {
    let mut tables = Vec::new();
    for table in ["_sqlx_migrations", "schema_version", "users"] {
        let exists: bool = match backend {
            Backend::Sqlite(pool) => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1)",
            )
            .bind(table)
            .fetch_one(pool)
            .await?,
            Backend::Postgres(pool) => {
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(table)
                    .fetch_one(pool)
                    .await?
            }
        };
        if exists {
            tables.push(table);
        }
    }
    match tables.as_slice() {
        ["_sqlx_migrations", ..] => Ok(Schema::Homekey),
        ["schema_version", ..] => Ok(Schema::Synapse),
        [] => Ok(Schema::None),
        _ => Err(StoreError::NotAccountDatabase(
            "the database has a users table but is neither homekey's nor Synapse's; homekey leaves it alone"
                .into(),
        )),
    }
}

/// The refusal of a database with neither homekey's tables nor Synapse's, outside the
/// commands that create homekey's schema.
fn not_an_account_database(database: &DatabaseConfig) -> StoreError {
    StoreError::NotAccountDatabase(format!(
        "{database} has neither homekey's tables nor Synapse's, so nothing was changed: \
         `homekey migrate` creates homekey's schema in a new database"
    ))
}

/// Looks at an existing SQLite file through a connection that only reads and sets no journal
/// mode, so writes nothing to it, and refuses the file when it holds neither homekey's
/// tables nor Synapse's.
async fn refuse_sqlite_without_account_schema(
    path: &std::path::Path,
    database: &DatabaseConfig,
) -> Result<(), StoreError> {
    let options = SqliteConnectOptions::new().filename(path);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|err| StoreError::Unavailable(format!("SQLite at {}: {err}", path.display())))?;
    let backend = Backend::Sqlite(pool.clone());
    let schema = detect_schema(&backend).await;
    pool.close().await;
    match schema? {
        Schema::None => Err(not_an_account_database(database)),
        Schema::Homekey | Schema::Synapse => Ok(()),
    }
}

/// Whose tables a database holds, when it is opened.
enum Schema {
    Homekey,
    Synapse,
    /// Neither: a new database, or one of something else.
    None,
}

async fn connect_postgres(
    options: PgConnectOptions,
    database: &DatabaseConfig,
) -> Result<sqlx::PgPool, StoreError> {
    // When the server goes away (restart, failover, outage), the connections in the pool are
    // dead: each is pinged before it is handed out and replaced if it fails, and a new one
    // is tried until `CONNECT_TIMEOUT`, after which the request fails with 503 (a refused
    // connection is retried within that time, so a quick restart goes unnoticed). When the
    // server is back, the next request connects again: no restart of homekey is needed.
    // Named, so that `pg_stat_activity` tells homekey's sessions from others' (the
    // migrations from and to Synapse refuse while another client is connected).
    let options = options.application_name("homekey");
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(CONNECT_TIMEOUT)
        .test_before_acquire(true)
        .connect_with(options)
        .await
        // `database`'s Display never includes the password.
        .map_err(|err| StoreError::Unavailable(format!("{database}: {err}")))
}
