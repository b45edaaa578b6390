//! `homekey generate-config` and `homekey migrate` as processes.

use homekey::config::{Config, DatabaseConfig};
use homekey::store::{Flavour, OpenMode, Store};
use secrecy::ExposeSecret;

use crate::support::{HOMEKEY, run_binary, stderr, stdout};

#[test]
fn generate_config_writes_a_loadable_file_with_fresh_secrets_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homeserver.yaml");
    let path_arg = path.to_str().unwrap();
    let out = run_binary(
        HOMEKEY,
        &[
            "generate-config",
            "--server-name",
            "example.com",
            "-c",
            path_arg,
        ],
        b"",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let config = Config::load(&[&path]).unwrap();
    assert_eq!(config.server_name, "example.com");
    assert_eq!(config.bcrypt_rounds, 12);
    assert_eq!(config.listeners[0].port, 8008);
    assert_eq!(config.listeners[0].bind_addresses, ["127.0.0.1"]);
    assert_eq!(
        config.database,
        DatabaseConfig::Sqlite {
            path: dir.path().join("homekey-data").join("homeserver.db")
        }
    );
    let shared = config.registration_shared_secret.unwrap();
    assert!(shared.expose_secret().len() >= 32);
    assert!(config.macaroon_secret_key.is_some());
    assert!(config.password.pepper.expose_secret().len() >= 32);
    // The secrets are printed nowhere.
    assert!(!stdout(&out).contains(shared.expose_secret()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the file with secrets is readable by others: {mode:o}"
        );
    }

    let before = std::fs::read(&path).unwrap();
    let out = run_binary(
        HOMEKEY,
        &[
            "generate-config",
            "--server-name",
            "other.org",
            "-c",
            path_arg,
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn generate_config_refuses_a_bad_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homeserver.yaml");
    let out = run_binary(
        HOMEKEY,
        &[
            "generate-config",
            "--server-name",
            "not a name",
            "-c",
            path.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--server-name: 'not a name' is not a valid server name"),
        "{}",
        stderr(&out)
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn migrate_creates_homekeys_schema_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hk.db");
    let url = format!("sqlite:{}", db.display());
    let out = run_binary(HOMEKEY, &["migrate", "--database", &url], b"", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("schema up to date"));
    let store = Store::open(&DatabaseConfig::Sqlite { path: db }, OpenMode::MustExist)
        .await
        .unwrap();
    assert_eq!(store.flavour(), Flavour::Homekey);
    assert!(store.get_user("@nobody:x.org").await.unwrap().is_none());
    store.close().await;

    if let Some((config, _guard)) =
        crate::support::TestDb::postgres_empty("migrate_on_postgres").await
    {
        let DatabaseConfig::PostgresUrl(url) = &config else {
            unreachable!()
        };
        let out = run_binary(HOMEKEY, &["migrate", "--database", url], b"", &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let store = Store::open(&config, OpenMode::MustExist).await.unwrap();
        assert!(store.get_user("@nobody:x.org").await.unwrap().is_none());
        store.close().await;
    }
}

#[test]
fn migrate_reports_an_unreachable_database_with_exit_code_3() {
    let out = run_binary(
        HOMEKEY,
        &[
            "migrate",
            "--database",
            "postgres://nobody:hidden-pw@127.0.0.1:1/none",
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot be opened"), "{err}");
    assert!(!err.contains("hidden-pw"), "{err}");

    let out = run_binary(HOMEKEY, &["migrate", "--database", "mysql://x"], b"", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected sqlite:PATH or a postgres:// URL"));
}

#[test]
fn migrate_without_any_config_uses_the_builtin_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(HOMEKEY)
        .arg("migrate")
        .current_dir(dir.path())
        .env_remove("HOMEKEY_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no config file; using the built-in one (server localhost"));
    assert!(dir.path().join("homekey-data/homeserver.db").is_file());
}

/// What a new user meets: `generate-config`, then `user create` before any server ran. The
/// database does not exist yet: exit 3, and the message says how to create it; done so,
/// the same command works.
#[test]
fn user_create_right_after_generate_config_says_how_to_create_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homeserver.yaml");
    let path_arg = path.to_str().unwrap();
    let out = run_binary(
        HOMEKEY,
        &[
            "generate-config",
            "--server-name",
            "example.com",
            "-c",
            path_arg,
        ],
        b"",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let create = [
        "user",
        "create",
        "alice",
        "--password-stdin",
        "-c",
        path_arg,
    ];
    let out = run_binary(HOMEKEY, &create, b"alice-pw\n", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("homeserver.db does not exist"), "{err}");
    assert!(
        err.contains("homekey migrate") && err.contains("homekey serve"),
        "no hint on how to create the database: {err}"
    );
    assert!(!dir.path().join("homekey-data/homeserver.db").exists());

    // The hint works.
    let out = run_binary(HOMEKEY, &["migrate", "-c", path_arg], b"", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_binary(HOMEKEY, &create, b"alice-pw\n", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}
