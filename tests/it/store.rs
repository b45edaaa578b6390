//! The store suite: every test runs on SQLite and on PostgreSQL.

use homekey::config::DatabaseConfig;
use homekey::ids::UserId;
use homekey::store::{
    Flavour, Logout, NewSession, NewUser, OpenMode, Store, StoreError, UserFilter,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::support::TestDb;

/// Generates, for each test function `f(Store)`, `sqlite::f` and `postgres::f`.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = crate::support::TestDb::sqlite().await;
                    super::$test(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(db) = crate::support::TestDb::postgres(stringify!($test)).await else {
                        return;
                    };
                    super::$test(db.store.clone()).await;
                    db.store.close().await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_created_user_reads_back_with_synapses_fields,
    a_duplicate_name_is_refused_ignoring_case_and_changes_nothing,
    unknown_users_are_reported_and_nothing_changes,
    listing_pages_and_filters_like_the_admin_api,
    a_new_password_and_the_logout_land_together,
    a_session_is_found_by_its_token_until_logged_out,
    deactivation_removes_the_password_and_every_session,
    admin_and_lock_flags_change,
    secrets_stay_out_of_debug_output,
    lookup_ignoring_case_finds_the_stored_spelling,
    interactive_auth_sessions_keep_stages_and_data_until_spent_or_expired,
    audit_records_are_listed_newest_first_by_user_and_time,
);

const NOW_S: i64 = 1_790_000_000;
const NOW_MS: i64 = NOW_S * 1000;

fn user_id(localpart: &str) -> UserId {
    UserId::parse_local(localpart, "example.com").unwrap()
}

fn hash(text: &str) -> SecretString {
    SecretString::from(format!("$2b$04${text}"))
}

async fn create(store: &Store, localpart: &str) -> homekey::store::User {
    store
        .create_user(
            &NewUser {
                user_id: user_id(localpart),
                password_hash: Some(hash(localpart)),
                creation_ts: NOW_S,
                admin: false,
                is_guest: false,
                user_type: None,
                displayname: Some(localpart.to_uppercase()),
                avatar_url: None,
                threepids: Vec::new(),
            },
            None,
        )
        .await
        .unwrap()
}

async fn login(store: &Store, localpart: &str, device: &str, token: &str) {
    store
        .create_session(
            &NewSession {
                user_id: user_id(localpart).to_string(),
                device_id: device.into(),
                device_display_name: Some(format!("{device} phone")),
                access_token: SecretString::from(token),
                valid_until_ms: None,
                now_ms: NOW_MS,
            },
            None,
        )
        .await
        .unwrap();
}

async fn token_owner(store: &Store, token: &str) -> Option<(String, Option<String>)> {
    store
        .find_session(token)
        .await
        .unwrap()
        .map(|s| (s.user.name, s.device_id))
}

async fn stored_hash(store: &Store, localpart: &str) -> Option<String> {
    store
        .get_user(user_id(localpart).as_str())
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .map(|h| h.expose_secret().to_owned())
}

async fn a_created_user_reads_back_with_synapses_fields(store: Store) {
    assert_eq!(store.flavour(), Flavour::Homekey);
    let created = store
        .create_user(
            &NewUser {
                user_id: user_id("alice"),
                password_hash: Some(hash("alice")),
                creation_ts: NOW_S,
                admin: true,
                is_guest: false,
                user_type: Some("support".into()),
                displayname: Some("Alice Liddell".into()),
                avatar_url: None,
                threepids: Vec::new(),
            },
            None,
        )
        .await
        .unwrap();
    let read = store.get_user("@alice:example.com").await.unwrap().unwrap();
    for user in [&created, &read] {
        assert_eq!(user.name, "@alice:example.com");
        assert_eq!(user.creation_ts, NOW_S);
        assert!(user.admin && !user.is_guest && !user.deactivated && !user.locked);
        assert_eq!(user.user_type.as_deref(), Some("support"));
        assert_eq!(user.displayname.as_deref(), Some("Alice Liddell"));
        assert_eq!(
            user.password_hash.as_ref().unwrap().expose_secret(),
            "$2b$04$alice"
        );
    }
}

async fn a_duplicate_name_is_refused_ignoring_case_and_changes_nothing(store: Store) {
    create(&store, "bob").await;
    let duplicate = NewUser {
        user_id: UserId::parse("@BOB:example.com").unwrap(),
        password_hash: Some(hash("other")),
        creation_ts: NOW_S + 5,
        admin: true,
        is_guest: false,
        user_type: None,
        displayname: Some("impostor".into()),
        avatar_url: None,
        threepids: Vec::new(),
    };
    let err = store.create_user(&duplicate, None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::UserExists(ref name) if name == "@BOB:example.com"),
        "{err}"
    );
    let mut exact = duplicate.clone();
    exact.user_id = user_id("bob");
    assert!(matches!(
        store.create_user(&exact, None).await.unwrap_err(),
        StoreError::UserExists(_)
    ));

    let page = store.list_users(&everyone(), 0, 100).await.unwrap();
    assert_eq!(page.total, 1);
    let bob = &page.users[0];
    assert_eq!(bob.displayname.as_deref(), Some("BOB"));
    assert!(!bob.admin);
    assert_eq!(
        stored_hash(&store, "bob").await.as_deref(),
        Some("$2b$04$bob")
    );
}

async fn unknown_users_are_reported_and_nothing_changes(store: Store) {
    create(&store, "carol").await;
    let ghost = "@ghost:example.com";
    assert!(store.get_user(ghost).await.unwrap().is_none());
    let not_found = |result: Result<_, StoreError>| matches!(result, Err(StoreError::UserNotFound(ref name)) if name == ghost);
    assert!(not_found(
        store
            .set_password_hash(ghost, Some(&hash("x")), &Logout::AllDevices, None)
            .await
    ));
    assert!(not_found(
        store
            .set_admin(ghost, true, homekey::store::AdminGuard::Off, None)
            .await
    ));
    assert!(not_found(
        store
            .set_locked(ghost, true, homekey::store::AdminGuard::Off, None)
            .await
    ));
    assert!(not_found(
        store
            .deactivate(ghost, false, homekey::store::AdminGuard::Off, None)
            .await
            .map(drop)
    ));
    assert!(not_found(
        store
            .logout(ghost, &Logout::AllDevices, None)
            .await
            .map(|_| ())
    ));
    let session = NewSession {
        user_id: ghost.into(),
        device_id: "DEV".into(),
        device_display_name: None,
        access_token: SecretString::from("ghost-token"),
        valid_until_ms: None,
        now_ms: NOW_MS,
    };
    assert!(not_found(
        store.create_session(&session, None).await.map(|_| ())
    ));
    assert!(store.find_session("ghost-token").await.unwrap().is_none());
    assert!(store.list_devices(ghost).await.unwrap().is_empty());
    assert_eq!(store.list_users(&everyone(), 0, 10).await.unwrap().total, 1);
}

fn everyone() -> UserFilter {
    UserFilter {
        include_guests: true,
        include_deactivated: true,
        include_locked: true,
        ..UserFilter::default()
    }
}

async fn listing_pages_and_filters_like_the_admin_api(store: Store) {
    for name in ["dave", "erin", "frank", "grace", "heidi"] {
        create(&store, name).await;
    }
    store
        .set_admin(
            "@erin:example.com",
            true,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    store
        .deactivate(
            "@frank:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    store
        .set_locked(
            "@grace:example.com",
            true,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    store
        .create_user(
            &NewUser {
                user_id: user_id("12345"),
                password_hash: None,
                creation_ts: NOW_S,
                admin: false,
                is_guest: true,
                user_type: None,
                displayname: None,
                avatar_url: None,
                threepids: Vec::new(),
            },
            None,
        )
        .await
        .unwrap();

    let names = |page: &homekey::store::UserPage| {
        page.users
            .iter()
            .map(|u| {
                u.name
                    .trim_start_matches('@')
                    .split(':')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let all = store.list_users(&everyone(), 0, 100).await.unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(
        names(&all),
        ["12345", "dave", "erin", "frank", "grace", "heidi"]
    );

    let page = store.list_users(&everyone(), 2, 2).await.unwrap();
    assert_eq!(
        (names(&page), page.total),
        (vec!["erin".into(), "frank".into()], 6)
    );
    let past_the_end = store.list_users(&everyone(), 10, 2).await.unwrap();
    assert!(past_the_end.users.is_empty());
    assert_eq!(past_the_end.total, 6);

    // Synapse's defaults: no guests, no deactivated, no locked users.
    let defaults = store
        .list_users(&UserFilter::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(names(&defaults), ["dave", "erin", "heidi"]);

    let admins = UserFilter {
        admins: Some(true),
        ..everyone()
    };
    assert_eq!(
        names(&store.list_users(&admins, 0, 100).await.unwrap()),
        ["erin"]
    );
    let non_admins = UserFilter {
        admins: Some(false),
        ..UserFilter::default()
    };
    assert_eq!(
        names(&store.list_users(&non_admins, 0, 100).await.unwrap()),
        ["dave", "heidi"]
    );

    // The name filter matches the localpart or the (lowercased) display name.
    let by_name = UserFilter {
        name_contains: Some("EID".into()),
        ..everyone()
    };
    assert_eq!(
        names(&store.list_users(&by_name, 0, 100).await.unwrap()),
        ["heidi"]
    );
    let by_id = UserFilter {
        user_id_contains: Some("ra".into()),
        ..everyone()
    };
    let page = store.list_users(&by_id, 0, 100).await.unwrap();
    assert_eq!(
        (names(&page), page.total),
        (vec!["frank".into(), "grace".into()], 2)
    );
}

async fn a_new_password_and_the_logout_land_together(store: Store) {
    create(&store, "ivan").await;
    create(&store, "judy").await;
    login(&store, "ivan", "PHONE", "tok-phone").await;
    login(&store, "ivan", "LAPTOP", "tok-laptop-1").await;
    login(&store, "ivan", "LAPTOP", "tok-laptop-2").await;
    login(&store, "judy", "PHONE", "tok-judy").await;
    let ivan = "@ivan:example.com";

    // Keep: only the hash changes.
    store
        .set_password_hash(ivan, Some(&hash("one")), &Logout::Keep, None)
        .await
        .unwrap();
    assert_eq!(
        stored_hash(&store, "ivan").await.as_deref(),
        Some("$2b$04$one")
    );
    assert!(token_owner(&store, "tok-phone").await.is_some());

    // All but the asking device: its tokens and the device survive, the rest go.
    store
        .set_password_hash(
            ivan,
            Some(&hash("two")),
            &Logout::AllDevicesExcept("LAPTOP".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        stored_hash(&store, "ivan").await.as_deref(),
        Some("$2b$04$two")
    );
    assert!(token_owner(&store, "tok-phone").await.is_none());
    assert_eq!(
        token_owner(&store, "tok-laptop-2").await,
        Some((ivan.into(), Some("LAPTOP".into())))
    );
    let devices: Vec<_> = store
        .list_devices(ivan)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(devices, ["LAPTOP"]);

    // Everything: no token or device of ivan is left; judy is untouched.
    store
        .set_password_hash(ivan, Some(&hash("three")), &Logout::AllDevices, None)
        .await
        .unwrap();
    assert!(token_owner(&store, "tok-laptop-1").await.is_none());
    assert!(token_owner(&store, "tok-laptop-2").await.is_none());
    assert!(store.list_devices(ivan).await.unwrap().is_empty());
    assert!(token_owner(&store, "tok-judy").await.is_some());
    assert_eq!(
        store.list_devices("@judy:example.com").await.unwrap().len(),
        1
    );
}

async fn a_session_is_found_by_its_token_until_logged_out(store: Store) {
    create(&store, "kim").await;
    login(&store, "kim", "TABLET", "tok-kim").await;
    let session = store.find_session("tok-kim").await.unwrap().unwrap();
    assert_eq!(session.user.name, "@kim:example.com");
    assert_eq!(session.device_id.as_deref(), Some("TABLET"));
    assert_eq!(session.valid_until_ms, None);
    let devices = store.list_devices("@kim:example.com").await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].display_name.as_deref(), Some("TABLET phone"));
    assert_eq!(devices[0].last_seen, Some(NOW_MS));

    // A second login on the same device keeps the device as it is.
    store
        .create_session(
            &NewSession {
                user_id: "@kim:example.com".into(),
                device_id: "TABLET".into(),
                device_display_name: Some("renamed?".into()),
                access_token: SecretString::from("tok-kim-2"),
                valid_until_ms: Some(NOW_MS + 60_000),
                now_ms: NOW_MS,
            },
            None,
        )
        .await
        .unwrap();
    let devices = store.list_devices("@kim:example.com").await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].display_name.as_deref(), Some("TABLET phone"));
    let second = store.find_session("tok-kim-2").await.unwrap().unwrap();
    assert_eq!(second.valid_until_ms, Some(NOW_MS + 60_000));

    // A token is unique: minting the same one again fails and adds nothing.
    let again = store
        .create_session(
            &NewSession {
                user_id: "@kim:example.com".into(),
                device_id: "OTHER".into(),
                device_display_name: None,
                access_token: SecretString::from("tok-kim"),
                valid_until_ms: None,
                now_ms: NOW_MS,
            },
            None,
        )
        .await;
    assert!(again.is_err());
    assert_eq!(
        store.list_devices("@kim:example.com").await.unwrap().len(),
        1
    );

    assert!(store.delete_access_token(session.token_id).await.unwrap());
    assert!(store.find_session("tok-kim").await.unwrap().is_none());
    assert!(store.find_session("tok-kim-2").await.unwrap().is_some());
    assert!(!store.delete_access_token(session.token_id).await.unwrap());

    assert_eq!(
        store
            .logout("@kim:example.com", &Logout::AllDevices, None)
            .await
            .unwrap(),
        1
    );
    assert!(store.find_session("tok-kim-2").await.unwrap().is_none());
    assert!(store.find_session("").await.unwrap().is_none());
}

async fn deactivation_removes_the_password_and_every_session(store: Store) {
    create(&store, "leo").await;
    login(&store, "leo", "PHONE", "tok-leo").await;
    store
        .deactivate(
            "@leo:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    let leo = store.get_user("@leo:example.com").await.unwrap().unwrap();
    assert!(leo.deactivated);
    assert!(leo.password_hash.is_none());
    assert!(store.find_session("tok-leo").await.unwrap().is_none());
    assert!(
        store
            .list_devices("@leo:example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn admin_and_lock_flags_change(store: Store) {
    create(&store, "mia").await;
    let mia = "@mia:example.com";
    store
        .set_admin(mia, true, homekey::store::AdminGuard::Off, None)
        .await
        .unwrap();
    store
        .set_locked(mia, true, homekey::store::AdminGuard::Off, None)
        .await
        .unwrap();
    let read = store.get_user(mia).await.unwrap().unwrap();
    assert!(read.admin && read.locked);
    store
        .set_admin(mia, false, homekey::store::AdminGuard::Off, None)
        .await
        .unwrap();
    store
        .set_locked(mia, false, homekey::store::AdminGuard::Off, None)
        .await
        .unwrap();
    let read = store.get_user(mia).await.unwrap().unwrap();
    assert!(!read.admin && !read.locked);
}

/// The types that hold a hash or a token show neither in their `Debug` output, while the
/// rest of them is there (so the output was really made from the secret-holding value).
async fn secrets_stay_out_of_debug_output(store: Store) {
    const HASH: &str = "$2b$04$nia";
    const TOKEN: &str = "tok-super-secret-value";
    let created = create(&store, "nia").await;
    assert_eq!(
        created.password_hash.as_ref().map(|h| h.expose_secret()),
        Some(HASH)
    );
    let read = store.get_user("@nia:example.com").await.unwrap().unwrap();
    assert_eq!(
        read.password_hash.as_ref().map(|h| h.expose_secret()),
        Some(HASH)
    );
    login(&store, "nia", "PHONE", TOKEN).await;
    let session = store.find_session(TOKEN).await.unwrap().unwrap();
    let new_user = NewUser {
        user_id: user_id("nia"),
        password_hash: Some(hash("nia")),
        creation_ts: NOW_S,
        admin: false,
        is_guest: false,
        user_type: None,
        displayname: None,
        avatar_url: None,
        threepids: Vec::new(),
    };
    let new_session = NewSession {
        user_id: "@nia:example.com".into(),
        device_id: "PHONE".into(),
        device_display_name: None,
        access_token: SecretString::from(TOKEN),
        valid_until_ms: None,
        now_ms: 0,
    };
    let changes = homekey::store::UserChanges {
        password: Some((hash("nia"), Logout::AllDevices)),
        ..Default::default()
    };
    for (what, debug, shown) in [
        ("User (created)", format!("{created:?}"), "@nia:example.com"),
        ("User (read)", format!("{read:?}"), "@nia:example.com"),
        ("NewUser", format!("{new_user:?}"), "nia"),
        ("Session", format!("{session:?}"), "@nia:example.com"),
        ("NewSession", format!("{new_session:?}"), "PHONE"),
        ("UserChanges", format!("{changes:?}"), "AllDevices"),
    ] {
        assert!(debug.contains(shown), "{what}: {debug}");
        for secret in [HASH, TOKEN] {
            assert!(!debug.contains(secret), "{what} shows {secret}: {debug}");
        }
    }
}

async fn lookup_ignoring_case_finds_the_stored_spelling(store: Store) {
    create(&store, "olga").await;
    let found = store
        .find_users_case_insensitive("@OLGA:Example.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "@olga:example.com");
    assert!(
        store
            .find_users_case_insensitive("@olgaa:example.com")
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- Opening databases: these are not per-backend suites but cover both engines. ----

async fn audit_records_are_listed_newest_first_by_user_and_time(store: Store) {
    use homekey::store::{AuditFilter, NewAuditRecord};
    let record = |ts_ms: i64, action: &str, target: &str| NewAuditRecord {
        ts_ms,
        actor: "@root:example.com".into(),
        action: action.into(),
        target: Some(target.into()),
        details: json!({"logout_devices": true}),
    };
    // Each record is written by the change it records.
    let amy = NewUser {
        user_id: user_id("amy"),
        password_hash: None,
        creation_ts: NOW_S,
        admin: false,
        is_guest: false,
        user_type: None,
        displayname: None,
        avatar_url: None,
        threepids: Vec::new(),
    };
    let created = record(NOW_MS - 2000, "create_user", "@amy:example.com");
    store.create_user(&amy, Some(&created)).await.unwrap();
    let reset = record(NOW_MS - 1000, "reset_password", "@amy:example.com");
    store
        .set_password_hash(
            amy.user_id.as_str(),
            Some(&hash("amy")),
            &Logout::AllDevices,
            Some(&reset),
        )
        .await
        .unwrap();
    create(&store, "bo").await;
    let promoted = record(NOW_MS, "set_admin", "@bo:example.com");
    store
        .set_admin(
            "@bo:example.com",
            true,
            homekey::store::AdminGuard::Off,
            Some(&promoted),
        )
        .await
        .unwrap();
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["set_admin", "reset_password", "create_user"]);
    assert_eq!(all[1].details, json!({"logout_devices": true}));
    assert_eq!(all[1].actor, "@root:example.com");

    let amy_recent = store
        .list_audit(&AuditFilter {
            target: Some("@amy:example.com".into()),
            since_ms: Some(NOW_MS - 1500),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(amy_recent.len(), 1);
    assert_eq!(amy_recent[0].action, "reset_password");
    let newest = store
        .list_audit(&AuditFilter {
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].action, "set_admin");
    // By actor, action and a time before, a page at a time, with the count of all.
    let by = |actor: &str, action: Option<&str>, until_ms: Option<i64>| AuditFilter {
        actor: Some(actor.into()),
        action: action.map(Into::into),
        until_ms,
        ..AuditFilter::default()
    };
    let root_resets = by("@root:example.com", Some("reset_password"), None);
    let listed = store.list_audit(&root_resets).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].target.as_deref(), Some("@amy:example.com"));
    assert_eq!(store.count_audit(&root_resets).await.unwrap(), 1);
    let before_now = by("@root:example.com", None, Some(NOW_MS));
    let actions: Vec<String> = (store.list_audit(&before_now).await.unwrap())
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["reset_password", "create_user"]);
    assert_eq!(store.count_audit(&before_now).await.unwrap(), 2);
    let nobody = by("@nobody:example.com", None, None);
    assert_eq!(store.count_audit(&nobody).await.unwrap(), 0);
    let second = store
        .list_audit(&AuditFilter {
            offset: Some(1),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(second[0].action, "reset_password");
    assert_eq!(store.count_audit(&AuditFilter::default()).await.unwrap(), 3);
}

async fn interactive_auth_sessions_keep_stages_and_data_until_spent_or_expired(store: Store) {
    let day_ms = 24 * 60 * 60 * 1000;
    for (session, created) in [("old", NOW_MS - 3 * day_ms), ("new", NOW_MS)] {
        store
            .create_ui_auth_session(
                session,
                created,
                "POST",
                "/_matrix/client/v3/account/password",
                "test",
            )
            .await
            .unwrap();
        store
            .complete_ui_auth_stage(session, "m.login.password", &json!("@amy:example.com"))
            .await
            .unwrap();
    }
    store
        .set_ui_auth_session_data(
            "new",
            json!({"password_hash": "$2b$04$x"})
                .as_object()
                .unwrap()
                .clone(),
        )
        .await
        .unwrap();
    let new = store.get_ui_auth_session("new").await.unwrap().unwrap();
    assert_eq!(
        (new.method.as_str(), new.creation_time_ms),
        ("POST", NOW_MS)
    );
    assert_eq!(new.serverdict["password_hash"], json!("$2b$04$x"));
    assert_eq!(
        store.completed_ui_auth_stages("new").await.unwrap(),
        vec![("m.login.password".to_owned(), json!("@amy:example.com"))]
    );

    // Expiry takes the old session with its stages, and only it.
    assert_eq!(
        store
            .delete_expired_ui_auth_sessions(NOW_MS - 2 * day_ms, NOW_MS - 2 * day_ms)
            .await
            .unwrap(),
        1
    );
    assert!(store.get_ui_auth_session("old").await.unwrap().is_none());
    assert!(
        store
            .completed_ui_auth_stages("old")
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_ui_auth_session("new").await.unwrap();
    assert!(store.get_ui_auth_session("new").await.unwrap().is_none());
    assert!(
        store
            .completed_ui_auth_stages("new")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_missing_sqlite_file_is_not_created_by_operator_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let err = Store::open(
        &DatabaseConfig::Sqlite { path: path.clone() },
        OpenMode::MustExist,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("typo.db does not exist"), "{err}");
    assert!(!path.exists());
}

#[tokio::test]
async fn an_unreachable_postgres_is_reported_without_its_password() {
    let config = DatabaseConfig::Postgres {
        host: Some("127.0.0.1".into()),
        port: Some(1),
        user: Some("nobody".into()),
        password: Some("pg-secret-password".into()),
        dbname: Some("nothing".into()),
    };
    let err = Store::open(&config, OpenMode::MustExist)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("pg-secret-password"), "{message}");
}

/// The account tables as Synapse creates them (its SQLite full schema, trimmed to them), plus
/// its `schema_version` marker.
pub(crate) const SYNAPSE_SQLITE_SCHEMA: &str = "
CREATE TABLE schema_version( Lock CHAR(1) NOT NULL DEFAULT 'X' UNIQUE, version INTEGER NOT NULL, upgraded BOOL NOT NULL, CHECK (Lock='X'));
INSERT INTO schema_version (version, upgraded) VALUES (92, 1);
CREATE TABLE users( name TEXT, password_hash TEXT, creation_ts BIGINT, admin SMALLINT DEFAULT 0 NOT NULL, upgrade_ts BIGINT, is_guest SMALLINT DEFAULT 0 NOT NULL, appservice_id TEXT, consent_version TEXT, consent_server_notice_sent TEXT, user_type TEXT DEFAULT NULL, deactivated SMALLINT DEFAULT 0 NOT NULL, shadow_banned BOOLEAN, consent_ts bigint, approved BOOLEAN, locked BOOLEAN DEFAULT FALSE NOT NULL, suspended BOOLEAN DEFAULT FALSE NOT NULL, UNIQUE(name) );
CREATE TABLE refresh_tokens ( id BIGINT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL, token TEXT NOT NULL, next_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE, expiry_ts BIGINT DEFAULT NULL, ultimate_session_expiry_ts BIGINT DEFAULT NULL, UNIQUE(token) );
CREATE TABLE access_tokens( id BIGINT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT, token TEXT NOT NULL, valid_until_ms BIGINT, puppets_user_id TEXT, last_validated BIGINT, refresh_token_id BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE, used BOOLEAN, UNIQUE(token) );
CREATE TABLE devices ( user_id TEXT NOT NULL, device_id TEXT NOT NULL, display_name TEXT, last_seen BIGINT, ip TEXT, user_agent TEXT, hidden BOOLEAN DEFAULT FALSE, CONSTRAINT device_uniqueness UNIQUE (user_id, device_id) );
CREATE TABLE profiles( user_id TEXT NOT NULL, displayname TEXT, avatar_url TEXT, full_user_id TEXT, UNIQUE(user_id) );
CREATE TABLE erased_users ( user_id TEXT NOT NULL );
CREATE UNIQUE INDEX erased_users_user ON erased_users(user_id);
CREATE TABLE user_threepids ( user_id TEXT NOT NULL, medium TEXT NOT NULL, address TEXT NOT NULL, validated_at BIGINT NOT NULL, added_at BIGINT NOT NULL, CONSTRAINT medium_address UNIQUE (medium, address) );
INSERT INTO user_threepids VALUES ('@old:example.com', 'email', 'old@example.com', 1600000000000, 1600000000000);
INSERT INTO users (name, password_hash, creation_ts, admin) VALUES ('@old:example.com', '$2b$04$old', 1600000000, 1);
INSERT INTO profiles (user_id, displayname, full_user_id) VALUES ('old', 'Old Timer', '@old:example.com');
INSERT INTO devices (user_id, device_id) VALUES ('@old:example.com', 'SYNDEV');
INSERT INTO access_tokens (id, user_id, device_id, token) VALUES (7, '@old:example.com', 'SYNDEV', 'syt_old');
";

#[tokio::test]
async fn a_synapse_database_is_used_as_it_is_never_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homeserver.db");
    {
        use sqlx::Connection;
        let url = format!("sqlite:{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(SYNAPSE_SQLITE_SCHEMA)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let store = Store::open(
        &DatabaseConfig::Sqlite { path: path.clone() },
        OpenMode::MustExist,
    )
    .await
    .unwrap();
    assert_eq!(store.flavour(), Flavour::Synapse);
    assert!(matches!(
        store.migrate().await,
        Err(StoreError::RefusedOnSynapse(_))
    ));

    let old = store.get_user("@old:example.com").await.unwrap().unwrap();
    assert!(old.admin);
    assert_eq!(old.displayname.as_deref(), Some("Old Timer"));
    let session = store.find_session("syt_old").await.unwrap().unwrap();
    assert_eq!(session.token_id, 7);

    // Minting a token is refused; changing a password (with logout) works.
    let mint = store
        .create_session(
            &NewSession {
                user_id: "@old:example.com".into(),
                device_id: "NEW".into(),
                device_display_name: None,
                access_token: SecretString::from("tok"),
                valid_until_ms: None,
                now_ms: NOW_MS,
            },
            None,
        )
        .await;
    assert!(matches!(mint, Err(StoreError::RefusedOnSynapse(_))));
    // An operator's change, with its audit record: Synapse's schema has no table for it, so
    // none is written (and no error comes of it).
    let record = homekey::store::NewAuditRecord {
        ts_ms: NOW_MS,
        actor: "cli:tester".into(),
        action: "reset_password".into(),
        target: Some("@old:example.com".into()),
        details: json!({"logout_devices": true}),
    };
    store
        .set_password_hash(
            "@old:example.com",
            Some(&hash("new")),
            &Logout::AllDevices,
            Some(&record),
        )
        .await
        .unwrap();
    assert!(store.find_session("syt_old").await.unwrap().is_none());
    assert_eq!(
        stored_hash(&store, "old").await.as_deref(),
        Some("$2b$04$new")
    );
    // Erasure is marked in Synapse's own `erased_users`, which Synapse reads `erased` from;
    // the shadow-ban and the suspension are Synapse's columns.
    let old_id = "@old:example.com";
    let guard = homekey::store::AdminGuard::Off;
    store.deactivate(old_id, true, guard, None).await.unwrap();
    store.set_shadow_banned(old_id, true, None).await.unwrap();
    store.set_suspended(old_id, true, None).await.unwrap();
    let old = store.get_user(old_id).await.unwrap().unwrap();
    assert!(old.deactivated && old.erased && old.shadow_banned && old.suspended);
    // As Synapse's deactivation: the account's third-party IDs go, from Synapse's table.
    assert!(store.user_threepids(old_id).await.unwrap().is_empty());
    store.close().await;

    // No homekey table was added.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let migrations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(migrations, 0);
}

#[tokio::test]
async fn reopening_keeps_the_data_and_the_schema_on_both_databases() {
    let sqlite = TestDb::sqlite().await;
    check_reopen(&sqlite).await;
    if let Some(postgres) = TestDb::postgres("reopening_keeps_the_data").await {
        check_reopen(&postgres).await;
        postgres.store.close().await;
    }
}

async fn check_reopen(db: &TestDb) {
    create(&db.store, "pat").await;
    let again = Store::open(&db.config, OpenMode::MustExist).await.unwrap();
    assert_eq!(again.flavour(), Flavour::Homekey);
    assert!(again.get_user("@pat:example.com").await.unwrap().is_some());
    again.close().await;
}
