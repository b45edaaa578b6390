//! The real Synapse on PostgreSQL, the fixture the migration's tests and benchmark build on
//! ([`Synapse::prepare_on`]): on a fresh database of the test PostgreSQL server, as on its
//! SQLite file, Synapse creates its schema, registers a user through its own shared-secret
//! script, logs them in and answers whoami, and the account is in its tables. Needs
//! `$HOMEKEY_TEST_SYNAPSE` with psycopg2 (`.ci/run` installs it) and PostgreSQL on
//! 127.0.0.1:5432; the PostgreSQL half is skipped without them (under CI a failure). Synapse
//! listens on 127.0.0.1 only.

use std::process::Stdio;

use reqwest::StatusCode;
use sqlx::Connection;

use crate::support::{skip, stderr, stdout, synapse_venv};
use crate::synapse_interop::{PEPPER, SHARED_SECRET, Synapse, SynapseDatabase};

#[tokio::test]
async fn synapse_runs_on_postgresql_as_on_sqlite() {
    let test = "synapse_runs_on_postgresql_as_on_sqlite";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let has_psycopg2 = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import psycopg2"])
        .output()
        .is_ok_and(|out| out.status.success());
    let auth = format!("password_config:\n  pepper: {PEPPER}\n");
    for database in [SynapseDatabase::Postgres, SynapseDatabase::Sqlite] {
        if database == SynapseDatabase::Postgres && !has_psycopg2 {
            skip(
                test,
                "the Synapse venv has no psycopg2 (.ci/run installs psycopg2-binary)",
            );
            continue;
        }
        let Some(mut synapse) = Synapse::prepare_on(venv.clone(), &auth, database, test).await
        else {
            continue;
        };
        let url = synapse.database_url();
        let config = std::fs::read_to_string(&synapse.config).unwrap();
        if database == SynapseDatabase::Postgres {
            let name = url.rsplit_once('/').unwrap().1;
            assert!(config.contains("name: psycopg2"), "{config}");
            assert!(config.contains(&format!("dbname: {name}")), "{config}");
        } else {
            assert!(config.contains("name: sqlite3"), "{config}");
        }
        synapse.start().await;

        let out = synapse
            .venv_command("register_new_matrix_user")
            .args(["-u", "alice", "-p", "alice-pw", "--no-admin", "-k"])
            .arg(SHARED_SECRET)
            .arg(synapse.url(""))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let (status, body) = synapse.login("alice", "alice-pw").await;
        assert_eq!(status, StatusCode::OK, "{database:?}: {body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let device = body["device_id"].as_str().unwrap().to_owned();
        let (status, body) = synapse.whoami(&token).await;
        assert_eq!(status, StatusCode::OK, "{database:?}: {body}");
        assert_eq!(body["user_id"], "@alice:example.com");
        assert_eq!(body["device_id"], device.as_str());
        synapse.stop();

        // The account, its device and the login's token are in Synapse's own tables there.
        let sql = "SELECT (SELECT COUNT(*) FROM users WHERE name = '@alice:example.com') \
                   + (SELECT COUNT(*) FROM devices WHERE user_id = '@alice:example.com' \
                      AND device_id = $1) \
                   + (SELECT COUNT(*) FROM access_tokens WHERE user_id = '@alice:example.com' \
                      AND device_id = $1 AND token = $2)";
        let rows: i64 = if database == SynapseDatabase::Postgres {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(&device)
                .bind(&token)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(&device)
                .bind(&token)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        };
        assert_eq!(rows, 3, "{database:?}: the user, the device, the token");
    }
}
