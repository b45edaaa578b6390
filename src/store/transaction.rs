//! The steps that several write transactions share: lock a user, fetch a user, delete
//! sessions, deactivate, and keep an admin who can act. Each is a macro run inside the
//! caller's transaction, on either backend (generic sqlx executors make the futures lose
//! `Send`, so these cannot be generic functions).

/// What each engine needs to lock a row read in a write transaction until it commits. On
/// SQLite nothing: `BEGIN IMMEDIATE` already holds the whole database's write lock.
pub(super) trait RowLock {
    const FOR_UPDATE: &'static str;
    /// The statement that makes every change able to end an admin's power run one at a time,
    /// where the engine does not already (see [`admins_before_change!`]).
    const ADMIN_CHANGES_LOCK: Option<&'static str>;
}

impl RowLock for sqlx::Sqlite {
    const FOR_UPDATE: &'static str = "";
    const ADMIN_CHANGES_LOCK: Option<&'static str> = None;
}

impl RowLock for sqlx::Postgres {
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    // `SELECT count(*) … FOR UPDATE` is refused; a lock of one agreed key is what excludes
    // another such change until this transaction ends.
    // The key is "homekey" in ASCII, so that it is easy to recognise in `pg_locks`.
    const ADMIN_CHANGES_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(29395913221563769)");
}

/// The `FOR UPDATE` clause of `tx`'s engine (`""` where none is needed).
pub(super) fn for_update<DB: sqlx::Database + RowLock>(
    _tx: &sqlx::Transaction<'_, DB>,
) -> &'static str {
    DB::FOR_UPDATE
}

/// The admin-changes lock statement of `tx`'s engine, if it needs one.
pub(super) fn admin_changes_lock<DB: sqlx::Database + RowLock>(
    _tx: &sqlx::Transaction<'_, DB>,
) -> Option<&'static str> {
    DB::ADMIN_CHANGES_LOCK
}

/// Locks a user's row for the rest of the transaction (PostgreSQL; on SQLite the transaction
/// already excludes every other writer) and evaluates to its password hash: `None` if there
/// is no such user, `Some(None)` if the user has no password. Every operation that adds or
/// removes a user's tokens or devices takes this lock first, so they run one after the other
/// per user: a login cannot slip a token in between a reset's check and its commit, and a
/// logout cannot delete a device while a login adds a token to it.
macro_rules! lock_user {
    ($tx:expr, $user_id:expr) => {{
        let tx = $tx;
        let sql = format!(
            "SELECT password_hash FROM users WHERE name = $1{}",
            $crate::store::transaction::for_update(&*tx)
        );
        let hash: Option<Option<String>> = sqlx::query_scalar(&sql)
            .bind($user_id)
            .fetch_optional(&mut **tx)
            .await?;
        hash
    }};
}
pub(super) use lock_user;

/// One user by exact ID, on a connection or transaction of either backend.
macro_rules! fetch_user {
    ($executor:expr, $user_id:expr) => {{
        let sql = format!(
            "SELECT {} FROM {} WHERE u.name = $1",
            $crate::store::USER_COLUMNS,
            $crate::store::USERS_WITH_PROFILES
        );
        let row: Option<$crate::store::UserRow> = sqlx::query_as(&sql)
            .bind($user_id)
            .fetch_optional($executor)
            .await?;
        row.map($crate::store::User::from)
    }};
}
pub(super) use fetch_user;

/// Ends the account page's sign-ins of `user_id` (`homekey_web_sessions`) inside the
/// caller's transaction of `$store`, all but the one whose ID hashes to `$spared` (the page
/// asking for the change, if it did). A Synapse database has no such table and no page.
macro_rules! end_page_sessions {
    ($tx:expr, $store:expr, $user_id:expr, $spared:expr) => {{
        if $store.flavour() == $crate::store::Flavour::Homekey {
            let tx = $tx;
            let spared: Option<&str> = $spared;
            sqlx::query("DELETE FROM homekey_web_sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind($user_id)
                .bind(spared.unwrap_or(""))
                .execute(&mut **tx)
                .await?;
        }
    }};
}
pub(super) use end_page_sessions;

/// Ends the user-interactive auth sessions in which `user_id` proved who they are (a stage's
/// result is their user ID), inside the caller's transaction of `$store`: after a new
/// password, a proof made with the old one authorises nothing more. A Synapse database keeps
/// more tables about each session (Synapse's own business): left alone there.
macro_rules! end_ui_auth_sessions {
    ($tx:expr, $store:expr, $user_id:expr) => {{
        if $store.flavour() == $crate::store::Flavour::Homekey {
            let tx = $tx;
            let proved = serde_json::Value::from($user_id).to_string();
            let sessions: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT session_id FROM ui_auth_sessions_credentials WHERE result = $1",
            )
            .bind(&proved)
            .fetch_all(&mut **tx)
            .await?;
            for session_id in &sessions {
                for table in ["ui_auth_sessions_credentials", "ui_auth_sessions"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                        .bind(session_id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
    }};
}
pub(super) use end_ui_auth_sessions;

/// Deletes the devices, access tokens and refresh tokens of `user_id` that `logout` names,
/// inside the caller's transaction of `$store`; evaluates to how many access tokens were
/// removed. Each kind of logout has its own condition: a device ID only ever narrows a
/// deletion (an empty one names no device, since device IDs are never empty). Hidden devices
/// (Synapse's rows for cross-signing keys) are never deleted, as Synapse's own logout spares
/// them. The OAuth sessions that held the deleted devices end with them. A logout of every
/// device (all of them, or all but the one asking) also ends the account page's sign-ins: a
/// browser signed in there is one more device.
macro_rules! delete_sessions {
    ($tx:expr, $store:expr, $user_id:expr, $logout:expr) => {{
        let tx = $tx;
        let user_id: &str = $user_id;
        let logout: &$crate::store::Logout = $logout;
        // The access tokens' condition, the other tables' condition, and the device in `$2`.
        // A token without a device goes with "all devices" and "all but one": it belongs to
        // no device that is kept.
        let scope: Option<(&str, &str, Option<&str>)> = match logout {
            $crate::store::Logout::Keep => None,
            $crate::store::Logout::AllDevices
            | $crate::store::Logout::AllDevicesAndPagesExcept(_) => Some(("", "", None)),
            $crate::store::Logout::AllDevicesExcept(device_id) => Some((
                " AND (device_id IS NULL OR device_id <> $2)",
                " AND device_id <> $2",
                Some(device_id.as_str()),
            )),
            $crate::store::Logout::Device(device_id) => Some((
                " AND device_id = $2",
                " AND device_id = $2",
                Some(device_id.as_str()),
            )),
        };
        let mut tokens = 0;
        if let Some((token_condition, device_condition, device)) = scope {
            // One at a time with the user's logins (see `lock_user!`).
            $crate::store::transaction::lock_user!(&mut *tx, user_id);
            let statements = [
                // Access tokens first: they reference refresh tokens.
                format!("DELETE FROM access_tokens WHERE user_id = $1{token_condition}"),
                format!("DELETE FROM refresh_tokens WHERE user_id = $1{device_condition}"),
                format!(
                    "DELETE FROM devices WHERE user_id = $1{device_condition} \
                     AND (hidden IS NULL OR hidden = FALSE)"
                ),
            ];
            for (index, sql) in statements.iter().enumerate() {
                let mut query = sqlx::query(sql).bind(user_id);
                if let Some(device) = device {
                    query = query.bind(device);
                }
                let deleted = query.execute(&mut **tx).await?.rows_affected();
                if index == 0 {
                    tokens = deleted;
                }
            }
            // The OAuth sessions that held the devices (a Synapse database has none).
            if $store.flavour() == $crate::store::Flavour::Homekey {
                let sql = format!(
                    "DELETE FROM homekey_oauth_sessions WHERE user_id = $1{device_condition}"
                );
                let mut query = sqlx::query(&sql).bind(user_id);
                if let Some(device) = device {
                    query = query.bind(device);
                }
                query.execute(&mut **tx).await?;
            }
        }
        match logout {
            $crate::store::Logout::AllDevices | $crate::store::Logout::AllDevicesExcept(_) => {
                $crate::store::transaction::end_page_sessions!(&mut *tx, $store, user_id, None);
            }
            $crate::store::Logout::AllDevicesAndPagesExcept(page) => {
                $crate::store::transaction::end_page_sessions!(
                    &mut *tx,
                    $store,
                    user_id,
                    Some(page.as_str())
                );
            }
            $crate::store::Logout::Keep | $crate::store::Logout::Device(_) => {}
        }
        tokens
    }};
}
pub(super) use delete_sessions;

/// Deactivates `user_id` as Synapse does, inside the caller's transaction: the flag set, the
/// password hash removed, every device and token deleted, its third-party IDs removed, and with `erase` the display name
/// and avatar too and the user marked in `erased_users` (Synapse's `mark_user_erased`: once,
/// however often it is asked). A user who does not exist is left to the caller to report.
macro_rules! deactivate_user {
    ($tx:expr, $store:expr, $user_id:expr, $erase:expr) => {{
        let tx = $tx;
        let user_id: &str = $user_id;
        let updated =
            sqlx::query("UPDATE users SET deactivated = 1, password_hash = NULL WHERE name = $1")
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
        if updated.rows_affected() > 0 {
            $crate::store::transaction::delete_sessions!(
                &mut *tx,
                $store,
                user_id,
                &$crate::store::Logout::AllDevices
            );
            // As Synapse: a deactivated account keeps no third-party ID.
            sqlx::query("DELETE FROM user_threepids WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            if $erase {
                sqlx::query(
                    "UPDATE profiles SET displayname = NULL, avatar_url = NULL \
                     WHERE full_user_id = $1",
                )
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO erased_users (user_id) VALUES ($1) \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            }
        }
    }};
}
pub(super) use deactivate_user;

/// Reactivates `user_id` as Synapse's `activate_account` does, inside the caller's
/// transaction: the flag cleared and the erasure mark removed (the password stays unset: one
/// must be set to log in again).
macro_rules! reactivate_user {
    ($tx:expr, $user_id:expr) => {{
        let tx = $tx;
        let user_id: &str = $user_id;
        sqlx::query("DELETE FROM erased_users WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE users SET deactivated = 0 WHERE name = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }};
}
pub(super) use reactivate_user;

/// How many admins can act (not deactivated, not locked), inside the caller's transaction.
macro_rules! count_acting_admins {
    ($tx:expr) => {{
        let tx = $tx;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE admin = 1 AND deactivated = 0 AND locked = FALSE",
        )
        .fetch_one(&mut **tx)
        .await?;
        count
    }};
}
pub(super) use count_acting_admins;

/// The first step of a change that can end an admin's power (demote, lock, deactivate),
/// with [`crate::store::AdminGuard::KeepOne`]: takes the admin-changes lock where the engine
/// needs one (PostgreSQL; SQLite's write transaction already excludes every other writer),
/// so that two such changes never decide on the same count, and evaluates to the number of
/// admins who can act before the change (`None` without the guard).
macro_rules! admins_before_change {
    ($tx:expr, $guard:expr) => {{
        let tx = $tx;
        match $guard {
            $crate::store::AdminGuard::Off => None,
            $crate::store::AdminGuard::KeepOne => {
                if let Some(lock) = $crate::store::transaction::admin_changes_lock(&*tx) {
                    sqlx::query(lock).execute(&mut **tx).await?;
                }
                Some($crate::store::transaction::count_acting_admins!(&mut *tx))
            }
        }
    }};
}
pub(super) use admins_before_change;

/// The last step before the commit of such a change: refuses it (the caller's transaction is
/// rolled back when dropped) if the server had an admin who could act and now has none.
macro_rules! keep_an_admin {
    ($tx:expr, $before:expr, $user_id:expr) => {{
        let tx = $tx;
        if let Some(before) = $before
            && before > 0
            && $crate::store::transaction::count_acting_admins!(&mut *tx) == 0
        {
            return Err($crate::store::StoreError::LastAdmin($user_id.to_owned()));
        }
    }};
}
pub(super) use keep_an_admin;

#[cfg(test)]
mod tests {
    #[test]
    fn the_advisory_lock_statement_uses_the_agreed_key() {
        use super::RowLock;
        let key = i64::from_be_bytes(*b"\0homekey");
        assert_eq!(
            <sqlx::Postgres as RowLock>::ADMIN_CHANGES_LOCK.map(str::to_owned),
            Some(format!("SELECT pg_advisory_xact_lock({key})"))
        );
    }
}
