//! An audited change and its record commit together or not at all, on SQLite and on
//! PostgreSQL. With the audit table taken away (renamed, so no record can be written), every
//! store write that an admin or an operator makes fails with a clear error and leaves the
//! database exactly as it was, and the Admin API answers 500 and logs no audit line; with the
//! table back, each write leaves its change and exactly its record.

use homekey::ids::UserId;
use homekey::store::{
    AuditFilter, AuditRecord, Logout, NewAuditRecord, NewSession, NewUser, Store, StoreError,
    UserChanges, UserFilter,
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::server::{Server, raw_execute, server_tests};
use crate::support::TestDb;

server_tests!(
    every_audited_write_is_undone_when_its_record_cannot_be_written,
    the_admin_api_refuses_a_reset_it_cannot_record_and_logs_no_audit_line,
);

const NOW_MS: i64 = 1_790_000_000_000;
const ALICE: &str = "@alice:example.com";

/// Renames `homekey_audit_log`, so that writing a record fails as a full disk or a broken
/// table would, while every other table works.
pub async fn take_the_audit_log_away(db: &TestDb) {
    let sql = "ALTER TABLE homekey_audit_log RENAME TO homekey_audit_log_away";
    raw_execute(&db.config, sql, &[]).await;
}

/// Undoes [`take_the_audit_log_away`].
pub async fn bring_the_audit_log_back(db: &TestDb) {
    let sql = "ALTER TABLE homekey_audit_log_away RENAME TO homekey_audit_log";
    raw_execute(&db.config, sql, &[]).await;
}

/// The store's audited writes, each as an admin or an operator makes it, in an order in which
/// each one changes something when they run one after the other.
#[derive(Debug, Clone, Copy)]
enum Write {
    CreateUser,
    ImportUsers,
    MintSession,
    LoginAsUser,
    DeleteDevices,
    Lock,
    SetAdmin,
    ModifyUser,
    Logout,
    ResetPassword,
    Deactivate,
}

impl Write {
    const ALL: [Write; 11] = [
        Write::CreateUser,
        Write::ImportUsers,
        Write::MintSession,
        Write::LoginAsUser,
        Write::DeleteDevices,
        Write::Lock,
        Write::SetAdmin,
        Write::ModifyUser,
        Write::Logout,
        Write::ResetPassword,
        Write::Deactivate,
    ];

    /// Its record: which account, and a name for what was done.
    fn record(self) -> NewAuditRecord {
        let target = match self {
            Write::CreateUser => "@dave:example.com",
            Write::ImportUsers => "@erin:example.com",
            _ => ALICE,
        };
        NewAuditRecord {
            ts_ms: NOW_MS,
            actor: "@root:example.com".into(),
            action: format!("{self:?}"),
            target: Some(target.into()),
            details: json!({"write": format!("{self:?}")}),
        }
    }

    async fn run(self, store: &Store, record: &NewAuditRecord) -> Result<(), StoreError> {
        let audit = Some(record);
        match self {
            Write::CreateUser => store.create_user(&new_user("dave"), audit).await.map(drop),
            Write::ImportUsers => store
                .create_users(&[(new_user("erin"), Some(record.clone()))])
                .await
                .map(drop),
            Write::MintSession => {
                let session = NewSession {
                    user_id: ALICE.into(),
                    device_id: "MINTED".into(),
                    device_display_name: None,
                    access_token: SecretString::from("syt_minted"),
                    valid_until_ms: None,
                    now_ms: NOW_MS,
                };
                store.create_session(&session, audit).await.map(drop)
            }
            Write::LoginAsUser => {
                let token = SecretString::from("syt_puppet");
                let admin = "@root:example.com";
                store
                    .create_puppet_token(admin, ALICE, &token, None, NOW_MS, record)
                    .await
            }
            Write::DeleteDevices => store
                .delete_devices(ALICE, &["PHONE".into()], audit)
                .await
                .map(drop),
            Write::Lock => {
                store
                    .set_locked(ALICE, true, homekey::store::AdminGuard::Off, audit)
                    .await
            }
            Write::SetAdmin => {
                store
                    .set_admin(ALICE, true, homekey::store::AdminGuard::Off, audit)
                    .await
            }
            Write::ModifyUser => {
                let changes = UserChanges {
                    displayname: Some(Some("Alice L.".into())),
                    avatar_url: Some(Some("mxc://example.com/alice".into())),
                    ..UserChanges::default()
                };
                let user_id = UserId::parse(ALICE).unwrap();
                store
                    .modify_user(&user_id, &changes, homekey::store::AdminGuard::Off, audit)
                    .await
            }
            Write::Logout => store
                .logout(ALICE, &Logout::AllDevices, audit)
                .await
                .map(drop),
            Write::ResetPassword => {
                let hash = SecretString::from("$2b$04$new");
                store
                    .set_password_hash(ALICE, Some(&hash), &Logout::AllDevices, audit)
                    .await
            }
            Write::Deactivate => store
                .deactivate(ALICE, true, homekey::store::AdminGuard::Off, audit)
                .await
                .map(drop),
        }
    }
}

fn new_user(localpart: &str) -> NewUser {
    NewUser {
        user_id: UserId::parse_local(localpart, "example.com").unwrap(),
        password_hash: Some(SecretString::from(format!("$2b$04${localpart}"))),
        creation_ts: NOW_MS / 1000,
        admin: false,
        is_guest: false,
        user_type: None,
        displayname: Some(localpart.into()),
        avatar_url: None,
        threepids: Vec::new(),
    }
}

/// Every account as the database holds it: its row, profile, devices and tokens (its own
/// and those acting as it), one line each.
async fn accounts(db: &TestDb) -> Vec<String> {
    let everyone = UserFilter {
        include_guests: true,
        include_deactivated: true,
        include_locked: true,
        ..UserFilter::default()
    };
    let page = db.store.list_users(&everyone, 0, 100).await.unwrap();
    let mut lines = Vec::new();
    for user in page.users {
        let devices: Vec<String> = db
            .store
            .list_devices(&user.name)
            .await
            .unwrap()
            .into_iter()
            .map(|device| device.device_id)
            .collect();
        let tokens = db
            .count(
                "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1 OR puppets_user_id = $1",
                &user.name,
            )
            .await;
        lines.push(format!(
            "{} hash={:?} admin={} deactivated={} locked={} displayname={:?} avatar={:?} \
             devices={devices:?} tokens={tokens}",
            user.name,
            user.password_hash
                .as_ref()
                .map(|h| h.expose_secret().to_owned()),
            user.admin,
            user.deactivated,
            user.locked,
            user.displayname,
            user.avatar_url,
        ));
    }
    lines
}

async fn audit_log(store: &Store) -> Vec<AuditRecord> {
    store.list_audit(&AuditFilter::default()).await.unwrap()
}

async fn every_audited_write_is_undone_when_its_record_cannot_be_written(db: TestDb) {
    let store = &db.store;
    for localpart in ["alice", "root"] {
        store.create_user(&new_user(localpart), None).await.unwrap();
    }
    for device in ["PHONE", "LAPTOP"] {
        let session = NewSession {
            user_id: ALICE.into(),
            device_id: device.into(),
            device_display_name: None,
            access_token: SecretString::from(format!("syt_{device}")),
            valid_until_ms: None,
            now_ms: NOW_MS,
        };
        store.create_session(&session, None).await.unwrap();
    }
    let seeded = accounts(&db).await;
    assert!(audit_log(store).await.is_empty());

    // No record can be written: each write fails, saying why, and changes nothing.
    for write in Write::ALL {
        take_the_audit_log_away(&db).await;
        let result = write.run(store, &write.record()).await;
        bring_the_audit_log_back(&db).await;
        let err = result.expect_err(&format!("{write:?} succeeded without its record"));
        assert!(
            matches!(err, StoreError::AuditNotWritten(_)),
            "{write:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("the change was not made: its audit record could not be written: ")
                && message.contains("homekey_audit_log"),
            "{write:?}: {message}"
        );
        assert_eq!(
            accounts(&db).await,
            seeded,
            "{write:?} changed the accounts"
        );
        assert!(audit_log(store).await.is_empty(), "{write:?}");
    }

    // With the table back, each write lands with exactly its own record.
    for write in Write::ALL {
        let before = accounts(&db).await;
        let record = write.record();
        write.run(store, &record).await.unwrap();
        assert_ne!(accounts(&db).await, before, "{write:?} changed nothing");
        let log = audit_log(store).await;
        let newest = &log[0];
        assert_eq!(
            (
                newest.ts_ms,
                newest.actor.as_str(),
                newest.action.as_str(),
                newest.target.as_deref(),
                &newest.details
            ),
            (
                record.ts_ms,
                record.actor.as_str(),
                record.action.as_str(),
                record.target.as_deref(),
                &record.details
            ),
            "{write:?}"
        );
    }
    let recorded: Vec<String> = audit_log(store)
        .await
        .into_iter()
        .rev()
        .map(|record| record.action)
        .collect();
    let written: Vec<String> = Write::ALL.iter().map(|w| format!("{w:?}")).collect();
    assert_eq!(recorded, written, "one record per write, none twice");
}

async fn the_admin_api_refuses_a_reset_it_cannot_record_and_logs_no_audit_line(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("alice", "old-pw").await;
    let (phone, _) = server.session_for("alice", "old-pw").await;
    let path = format!("/_synapse/admin/v1/reset_password/{ALICE}");
    let reset = || {
        server.call(
            "POST",
            &path,
            Some(&admin),
            Some(json!({"new_password": "new-pw"})),
        )
    };

    take_the_audit_log_away(&server.db).await;
    let (status, body) = reset().await;
    bring_the_audit_log_back(&server.db).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errcode": "M_UNKNOWN", "error": "Internal server error"})
        )
    );
    assert!(server.has_password(ALICE, "old-pw").await);
    assert_eq!(server.whoami(Some(&phone)).await.0, StatusCode::OK);
    assert!(audit_log(server.store()).await.is_empty());
    assert!(server.wait_for_log("its audit record could not be written"));
    assert!(
        !server.log().contains("homekey::audit"),
        "an audit line for a change that was not made: {}",
        server.log()
    );

    // The same reset with the table back: the change, its record, then its log line.
    let (status, _) = reset().await;
    assert_eq!(status, StatusCode::OK);
    assert!(server.has_password(ALICE, "new-pw").await);
    assert_eq!(
        server.whoami(Some(&phone)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let log = audit_log(server.store()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].actor.as_str(), log[0].action.as_str()),
        ("@root:example.com", "reset_password")
    );
    assert!(server.wait_for_log("homekey::audit"));
    let line = server
        .log()
        .lines()
        .find(|line| line.contains("homekey::audit"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("reset_password") && line.contains(ALICE) && !line.contains("new-pw"),
        "{line}"
    );
}
