//! Account operations: create, read, list, and change one user's row.

use std::collections::HashSet;

use secrecy::{ExposeSecret, SecretString};

use super::audit::commit_audited;
use super::bulk_rows::{BulkRows, rows_per_statement};
use super::synapse_queue::owe_synapse;
use super::threepids::replace_threepids;
use super::transaction::{
    admins_before_change, deactivate_user, delete_sessions, end_page_sessions,
    end_ui_auth_sessions, fetch_user, keep_an_admin, reactivate_user,
};
use super::{
    AdminGuard, BeginWrite, Logout, NewAuditRecord, NewRefreshToken, NewSession, NewUser, Store,
    StoreError, USER_COLUMNS, USERS_WITH_PROFILES, User, UserChanges, UserFilter, UserPage,
    UserRow, is_unique_violation, with_pool,
};

/// What a deactivation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deactivation {
    Done,
    /// The account was deactivated already and nothing was asked beyond it: nothing changed,
    /// and no record was written.
    AlreadyDeactivated,
}

/// The filter of a listing, on `$1`–`$7` (see [`Store::list_users`]).
const USER_FILTER: &str = "($1 = '' OR u.name LIKE '@%' || $1 || '%:%' \
         OR lower(p.displayname) LIKE '%' || $1 || '%') \
     AND ($2 = '' OR lower(u.name) LIKE '%' || $2 || '%') \
     AND ($3 < 0 OR u.admin = $3) \
     AND ($4 = 1 OR u.is_guest = 0) \
     AND ($5 = 1 OR u.deactivated = 0) \
     AND ($6 = 0 OR u.deactivated = 1) \
     AND ($7 = 1 OR u.locked = FALSE) \
     AND ($8 = '' OR EXISTS (SELECT 1 FROM user_threepids t WHERE t.user_id = u.name \
          AND t.medium = 'email' AND lower(t.address) LIKE '%' || $8 || '%'))";

/// `SELECT` those of `user_ids` that an account has, ignoring case (the database's `lower`
/// on both sides, as at login).
pub(super) fn taken_ids_query<'a, DB: BulkRows>(
    user_ids: &[&'a str],
) -> sqlx::QueryBuilder<'a, DB> {
    let mut query = sqlx::QueryBuilder::new("SELECT v.column1 FROM ");
    DB::push_names(&mut query, user_ids);
    // A scalar subquery, not EXISTS: PostgreSQL turns an EXISTS into a semi-join, and on a
    // table that grew since its statistics (an import) it chose a sequential scan of `users`
    // per query: 115 million rows read for 100,000 imported users. A subquery per row
    // always probes the `lower(name)` index.
    query.push(
        " WHERE (SELECT 1 FROM users WHERE lower(users.name) = lower(v.column1) LIMIT 1) \
         IS NOT NULL",
    );
    query
}

/// What admitted a new account, settled in the transaction that makes it.
#[derive(Debug, Default)]
pub struct Admission<'a> {
    /// The registration token whose pending use becomes a completed one.
    pub registration_token: Option<&'a str>,
    /// A registration token whose use is spent and completed at once, valid at the given
    /// time (ms): the sign-up page's, where no session held a use. One statement checks
    /// and counts; a token unknown, expired or used up by then makes no account.
    pub registration_token_now: Option<(&'a str, i64)>,
    /// The sign-up's user-interactive session, spent.
    pub ui_auth_session: Option<&'a str>,
    /// A refresh token for the first session (a client that asked for one).
    pub refresh: Option<&'a NewRefreshToken>,
}

impl Store {
    /// Creates an account (and its profile row), with its audit record if an admin or an
    /// operator creates it. Refused if the name is taken, ignoring case, as Synapse does at
    /// registration.
    pub async fn create_user(
        &self,
        new: &NewUser,
        audit: Option<&NewAuditRecord>,
    ) -> Result<User, StoreError> {
        self.create_user_with_session(new, None, &Admission::default(), audit)
            .await
            .map(|(user, _)| user)
    }

    /// [`Store::create_user`], and with `session` the new user's first device and token, in
    /// the same transaction (shared-secret registration, sign-up): either both exist or
    /// neither, and what `admission` names is settled in it too. Returns the account and the
    /// token's row ID.
    pub async fn create_user_with_session(
        &self,
        new: &NewUser,
        session: Option<&NewSession>,
        admission: &Admission<'_>,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(User, Option<i64>), StoreError> {
        let name = new.user_id.as_str();
        if session.is_some() {
            self.refuse_minting_on_synapse()?;
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let taken: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM users WHERE lower(name) = lower($1))",
            )
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
            if taken {
                return Err(StoreError::UserExists(name.to_owned()));
            }
            let inserted = sqlx::query(
                "INSERT INTO users (name, password_hash, creation_ts, admin, is_guest, user_type, \
                 deactivated, locked, approved) VALUES ($1, $2, $3, $4, $5, $6, 0, FALSE, TRUE)",
            )
            .bind(name)
            .bind(
                new.password_hash
                    .as_ref()
                    .map(|h| h.expose_secret().to_owned()),
            )
            .bind(new.creation_ts)
            .bind(i16::from(new.admin))
            .bind(i16::from(new.is_guest))
            .bind(new.user_type.as_deref())
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::UserExists(name.to_owned()));
                }
                other => other?,
            };
            sqlx::query(
                "INSERT INTO profiles (user_id, displayname, avatar_url, full_user_id) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
                 displayname = excluded.displayname, avatar_url = excluded.avatar_url, \
                 full_user_id = excluded.full_user_id",
            )
            .bind(new.user_id.localpart())
            .bind(new.displayname.as_deref())
            .bind(new.avatar_url.as_deref())
            .bind(name)
            .execute(&mut *tx)
            .await?;
            replace_threepids!(&mut tx, name, &new.threepids, crate::accounts::now_ms());
            let token_id = match session {
                Some(session) => Some(super::sessions::insert_session_rows!(&mut tx, session)),
                None => None,
            };
            if let (Some(session), Some(token_id), Some(refresh)) =
                (session, token_id, admission.refresh)
            {
                let refresh_id = super::sessions::insert_refresh_token!(
                    &mut tx,
                    &session.user_id,
                    &session.device_id,
                    refresh
                );
                sqlx::query("UPDATE access_tokens SET refresh_token_id = $2 WHERE id = $1")
                    .bind(token_id)
                    .bind(refresh_id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(token) = admission.registration_token
                && !super::registration_tokens::complete_registration_token!(&mut tx, token)
            {
                // Deleted since the sign-up spent a use: the account is not made.
                return Err(StoreError::RegistrationTokenGone);
            }
            if let Some((token, now_ms)) = admission.registration_token_now
                && !super::registration_tokens::use_registration_token_now!(&mut tx, token, now_ms)
            {
                return Err(StoreError::RegistrationTokenGone);
            }
            if let Some(ui_auth_session) = admission.ui_auth_session {
                // Spent with the account: the sign-up's session admits nothing more.
                for table in ["ui_auth_sessions_credentials", "ui_auth_sessions"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
                        .bind(ui_auth_session)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let user = fetch_user!(&mut *tx, name);
            owe_synapse!(&mut tx, self, name);
            commit_audited!(tx, self, audit);
            let user = user.ok_or_else(|| StoreError::UserNotFound(name.to_owned()))?;
            Ok((user, token_id))
        })
    }

    /// The largest all-digit localpart of any account (0 without any): a sign-up without a
    /// name gets the next number, as Synapse numbers them. Only names starting with a digit
    /// are read (`@0` to `@9…` sort between `@0` and `@:`).
    pub async fn largest_numeric_localpart(&self) -> Result<i64, StoreError> {
        let names: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT name FROM users WHERE name >= '@0' AND name < '@:'")
                .fetch_all(pool)
                .await?
        });
        Ok(names
            .iter()
            .filter_map(|name| name.strip_prefix('@')?.split_once(':'))
            .filter(|(localpart, _)| localpart.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|(localpart, _)| localpart.parse::<i64>().ok())
            .max()
            .unwrap_or(0))
    }

    /// Which of `user_ids` are taken by an account, ignoring case as
    /// [`Store::find_users_case_insensitive`] does; a few queries however many IDs are given.
    pub async fn existing_user_ids(
        &self,
        user_ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let mut existing = HashSet::new();
        with_pool!(self, |pool| {
            // A transaction: one snapshot for all its statements.
            let mut tx = pool.begin().await?;
            for chunk in user_ids.chunks(rows_per_statement(&tx)) {
                let taken: Vec<String> = taken_ids_query(chunk)
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await?;
                existing.extend(taken);
            }
            tx.commit().await?;
        });
        Ok(existing)
    }

    /// Creates the accounts (and their profile rows) whose names are not taken, ignoring case,
    /// each with the audit record of its creation, all in one transaction, with a few
    /// multi-row statements (one per table on PostgreSQL: see `bulk_rows`); the others are
    /// passed over, and so are their records. Returns which were created, in order. For
    /// `homekey user import`: one account at a time costs a transaction (and a sync to disk)
    /// each.
    pub async fn create_users(
        &self,
        new: &[(NewUser, Option<NewAuditRecord>)],
    ) -> Result<Vec<bool>, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let names: Vec<&str> = new.iter().map(|(n, _)| n.user_id.as_str()).collect();
            let mut taken = HashSet::new();
            for chunk in names.chunks(rows_per_statement(&tx)) {
                let rows: Vec<String> = taken_ids_query(chunk)
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await?;
                taken.extend(rows);
            }
            let todo: Vec<&NewUser> = new
                .iter()
                .map(|(n, _)| n)
                .filter(|n| !taken.contains(n.user_id.as_str()))
                .collect();
            let mut created = HashSet::new();
            for chunk in todo.chunks(rows_per_statement(&tx)) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO users (name, password_hash, creation_ts, admin, is_guest, \
                     user_type, deactivated, locked, approved) ",
                );
                BulkRows::push_users(&mut insert, chunk);
                // A name taken meanwhile (by another writer on PostgreSQL) is passed over too.
                insert.push(" ON CONFLICT DO NOTHING RETURNING name");
                let inserted: Vec<String> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
                let inserted: HashSet<String> = inserted.into_iter().collect();
                let profiles: Vec<&NewUser> = chunk
                    .iter()
                    .copied()
                    .filter(|n| inserted.contains(n.user_id.as_str()))
                    .collect();
                if !profiles.is_empty() {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO profiles (user_id, displayname, full_user_id) ",
                    );
                    BulkRows::push_profiles(&mut insert, &profiles);
                    insert.push(
                        " ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname, \
                         full_user_id = excluded.full_user_id",
                    );
                    insert.build().execute(&mut *tx).await?;
                }
                for new in &profiles {
                    // An address taken since the import checked it stops the whole batch.
                    if !new.threepids.is_empty() {
                        let now = crate::accounts::now_ms();
                        replace_threepids!(&mut tx, new.user_id.as_str(), &new.threepids, now);
                    }
                }
                for name in &inserted {
                    owe_synapse!(&mut tx, self, name.as_str());
                }
                created.extend(inserted);
            }
            let records = new
                .iter()
                .filter(|(n, _)| created.contains(n.user_id.as_str()))
                .filter_map(|(_, record)| record.as_ref());
            commit_audited!(tx, self, records);
            Ok(new
                .iter()
                .map(|(n, _)| created.contains(n.user_id.as_str()))
                .collect())
        })
    }

    /// The account with exactly this ID.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        with_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            Ok(fetch_user!(&mut *conn, user_id))
        })
    }

    /// The accounts whose ID equals `user_id` ignoring case, as Synapse looks users up at
    /// login (`get_users_by_id_case_insensitive`). Historical databases may hold several.
    pub async fn find_users_case_insensitive(
        &self,
        user_id: &str,
    ) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {USERS_WITH_PROFILES} WHERE lower(u.name) = lower($1) ORDER BY u.name"
        );
        with_pool!(self, |pool| {
            let rows: Vec<UserRow> = sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await?;
            Ok(rows.into_iter().map(User::from).collect())
        })
    }

    /// A page of the users matching `filter`, in its order, and how many match in all.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        from: i64,
        limit: i64,
    ) -> Result<UserPage, StoreError> {
        let direction = if filter.descending { "DESC" } else { "ASC" };
        let (user_type_filter, excluded_types) = not_user_type_filter(&filter.not_user_types);
        let page_sql = format!(
            "SELECT {USER_COLUMNS} FROM {USERS_WITH_PROFILES} WHERE {USER_FILTER}{user_type_filter} \
             ORDER BY {} {direction}, u.name ASC LIMIT ${} OFFSET ${}",
            filter.order_by.sql(),
            9 + excluded_types.len(),
            10 + excluded_types.len(),
        );
        let count_sql = format!(
            "SELECT COUNT(*) FROM {USERS_WITH_PROFILES} WHERE {USER_FILTER}{user_type_filter}"
        );
        let admins: i16 = match filter.admins {
            None => -1,
            Some(admin) => i16::from(admin),
        };
        macro_rules! bind_filter {
            ($query:expr) => {{
                let mut query = $query
                    .bind(lowercase(&filter.name_contains))
                    .bind(lowercase(&filter.user_id_contains))
                    .bind(admins)
                    .bind(i16::from(filter.include_guests))
                    .bind(i16::from(
                        filter.include_deactivated || filter.only_deactivated,
                    ))
                    .bind(i16::from(filter.only_deactivated))
                    .bind(i16::from(filter.include_locked))
                    .bind(lowercase(&filter.email_contains));
                for user_type in &excluded_types {
                    query = query.bind(*user_type);
                }
                query
            }};
        }
        with_pool!(self, |pool| {
            // One read transaction, so the page and the total agree.
            let mut tx = pool.begin().await?;
            let rows: Vec<UserRow> = bind_filter!(sqlx::query_as(&page_sql))
                .bind(limit)
                .bind(from)
                .fetch_all(&mut *tx)
                .await?;
            let total: i64 = bind_filter!(sqlx::query_scalar(&count_sql))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(UserPage {
                users: rows.into_iter().map(User::from).collect(),
                total,
            })
        })
    }

    /// Replaces a user's password hash (`None` removes it, so no password logs in) and logs
    /// devices out as asked, in one transaction: the new hash, the logout and the audit
    /// record (`None` for a user changing their own password) land together.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        hash: Option<&SecretString>,
        logout: &Logout,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
                .bind(user_id)
                .bind(hash.map(|h| h.expose_secret().to_owned()))
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::UserNotFound(user_id.to_owned()));
            }
            delete_sessions!(&mut tx, self, user_id, logout);
            end_ui_auth_sessions!(&mut tx, self, user_id);
            if *logout != Logout::Keep {
                owe_synapse!(&mut tx, self, user_id);
            }
            commit_audited!(tx, self, audit);
            Ok(())
        })
    }

    /// Replaces `current` by `upgraded` only if `current` is still the stored hash, so a
    /// login's rehash never overwrites a password changed in the meantime. Returns whether it
    /// replaced it.
    pub async fn upgrade_password_hash(
        &self,
        user_id: &str,
        current: &SecretString,
        upgraded: &SecretString,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE users SET password_hash = $3 WHERE name = $1 AND password_hash = $2",
            )
            .bind(user_id)
            .bind(current.expose_secret())
            .bind(upgraded.expose_secret())
            .execute(pool)
            .await?;
            Ok(updated.rows_affected() == 1)
        })
    }

    /// Applies several changes to one account in one transaction, with their audit record:
    /// all land or none does.
    pub async fn modify_user(
        &self,
        user_id: &crate::ids::UserId,
        changes: &UserChanges,
        guard: AdminGuard,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        let name = user_id.as_str();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let admins_before = admins_before_change!(&mut tx, guard);
            if fetch_user!(&mut *tx, name).is_none() {
                return Err(StoreError::UserNotFound(name.to_owned()));
            }
            if changes.displayname.is_some() || changes.avatar_url.is_some() {
                // Make sure the profile row exists, then set what was asked.
                sqlx::query(
                    "INSERT INTO profiles (user_id, full_user_id) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id.localpart())
                .bind(name)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(displayname) = &changes.displayname {
                sqlx::query("UPDATE profiles SET displayname = $2 WHERE full_user_id = $1")
                    .bind(name)
                    .bind(displayname.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(avatar_url) = &changes.avatar_url {
                sqlx::query("UPDATE profiles SET avatar_url = $2 WHERE full_user_id = $1")
                    .bind(name)
                    .bind(avatar_url.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(admin) = changes.admin {
                sqlx::query("UPDATE users SET admin = $2 WHERE name = $1")
                    .bind(name)
                    .bind(i16::from(admin))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((hash, logout)) = &changes.password {
                sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
                    .bind(name)
                    .bind(hash.expose_secret())
                    .execute(&mut *tx)
                    .await?;
                delete_sessions!(&mut tx, self, name, logout);
            }
            match changes.deactivated {
                Some(true) => {
                    deactivate_user!(&mut tx, self, name, false);
                }
                Some(false) => {
                    reactivate_user!(&mut tx, name);
                }
                None => {}
            }
            if let Some(locked) = changes.locked {
                sqlx::query("UPDATE users SET locked = $2 WHERE name = $1")
                    .bind(name)
                    .bind(locked)
                    .execute(&mut *tx)
                    .await?;
                if locked {
                    end_page_sessions!(&mut tx, self, name, None);
                }
            }
            if let Some(threepids) = &changes.threepids {
                replace_threepids!(&mut tx, name, threepids, crate::accounts::now_ms());
            }
            if let Some(user_type) = &changes.user_type {
                sqlx::query("UPDATE users SET user_type = $2 WHERE name = $1")
                    .bind(name)
                    .bind(user_type.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            keep_an_admin!(&mut tx, admins_before, name);
            owe_synapse!(&mut tx, self, name);
            commit_audited!(tx, self, audit);
            Ok(())
        })
    }

    /// Grants or removes server admin rights, with the change's audit record.
    pub async fn set_admin(
        &self,
        user_id: &str,
        admin: bool,
        guard: AdminGuard,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        self.update_user(
            user_id,
            "UPDATE users SET admin = $2 WHERE name = $1",
            i16::from(admin),
            guard,
            AlsoDoes::Nothing,
            audit,
        )
        .await
    }

    /// Locks or unlocks an account (a locked user's requests are refused; tokens survive,
    /// sign-ins to the account page end), with the change's audit record.
    pub async fn set_locked(
        &self,
        user_id: &str,
        locked: bool,
        guard: AdminGuard,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        self.update_user(
            user_id,
            "UPDATE users SET locked = $2 WHERE name = $1",
            locked,
            guard,
            if locked {
                AlsoDoes::OweSynapseAndEndPageSessions
            } else {
                AlsoDoes::OweSynapse
            },
            audit,
        )
        .await
    }

    /// Sets or clears the shadow-ban flag (`users.shadow_banned`), with the change's audit
    /// record.
    pub async fn set_shadow_banned(
        &self,
        user_id: &str,
        shadow_banned: bool,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        self.update_user(
            user_id,
            "UPDATE users SET shadow_banned = $2 WHERE name = $1",
            shadow_banned,
            AdminGuard::Off,
            AlsoDoes::Nothing,
            audit,
        )
        .await
    }

    /// Suspends or unsuspends an account (`users.suspended`), with the change's audit record.
    pub async fn set_suspended(
        &self,
        user_id: &str,
        suspended: bool,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        self.update_user(
            user_id,
            "UPDATE users SET suspended = $2 WHERE name = $1",
            suspended,
            AdminGuard::Off,
            AlsoDoes::Nothing,
            audit,
        )
        .await
    }

    /// Deactivates an account as Synapse does: the flag set, the password hash removed, every
    /// device and token deleted, and with `erase` the display name and avatar too, in one
    /// transaction with the audit record (`None` for a user deactivating their own account).
    /// An account deactivated already is left as it is, unless `erase` asks for more.
    pub async fn deactivate(
        &self,
        user_id: &str,
        erase: bool,
        guard: AdminGuard,
        audit: Option<&NewAuditRecord>,
    ) -> Result<Deactivation, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let admins_before = admins_before_change!(&mut tx, guard);
            let deactivated: Option<i16> =
                sqlx::query_scalar("SELECT deactivated FROM users WHERE name = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match deactivated {
                None => return Err(StoreError::UserNotFound(user_id.to_owned())),
                Some(1) if !erase => return Ok(Deactivation::AlreadyDeactivated),
                Some(_) => {}
            }
            deactivate_user!(&mut tx, self, user_id, erase);
            keep_an_admin!(&mut tx, admins_before, user_id);
            owe_synapse!(&mut tx, self, user_id);
            commit_audited!(tx, self, audit);
            Ok(Deactivation::Done)
        })
    }

    /// Runs a one-column `UPDATE … WHERE name = $1` with `$2 = value`, in one transaction
    /// with its audit record and under `guard`. `synapse_follows`: whether a Synapse beside
    /// homekey is owed the change (a lock is; the admin flag reaches Synapse only through
    /// introspection, and the moderation flags are refused beside Synapse).
    async fn update_user<T>(
        &self,
        user_id: &str,
        sql: &'static str,
        value: T,
        guard: AdminGuard,
        also: AlsoDoes,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError>
    where
        T: Send
            + for<'q> sqlx::Encode<'q, sqlx::Sqlite>
            + for<'q> sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Sqlite>
            + sqlx::Type<sqlx::Postgres>
            + Copy,
    {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let admins_before = admins_before_change!(&mut tx, guard);
            let updated = sqlx::query(sql)
                .bind(user_id)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::UserNotFound(user_id.to_owned()));
            }
            keep_an_admin!(&mut tx, admins_before, user_id);
            if also != AlsoDoes::Nothing {
                owe_synapse!(&mut tx, self, user_id);
            }
            if also == AlsoDoes::OweSynapseAndEndPageSessions {
                end_page_sessions!(&mut tx, self, user_id, None);
            }
            commit_audited!(tx, self, audit);
            Ok(())
        })
    }
}

/// The listing's `not_user_type` clause, on `$8`, `$9`… (one per type, each once), and the
/// types to bind there; `""` and none when nothing is excluded. Synapse's rules
/// (`get_users_paginate`): `""` stands for "no user type" (NULL). Alone it excludes exactly
/// the users without a type; beside other types it makes those others exclude users without a
/// type too (SQL's `NULL NOT IN (…)`), while without it they never do. Several `""` and
/// nothing else exclude nothing at all (Synapse's `NOT FALSE`): odd, matched.
fn not_user_type_filter(not_user_types: &[String]) -> (String, Vec<&str>) {
    if not_user_types.is_empty() {
        return (String::new(), Vec::new());
    }
    if let [only] = not_user_types
        && only.is_empty()
    {
        return (" AND u.user_type IS NOT NULL".into(), Vec::new());
    }
    let mut types: Vec<&str> = not_user_types
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    types.sort_unstable();
    types.dedup();
    if types.is_empty() {
        return (String::new(), Vec::new());
    }
    let placeholders: Vec<String> = (0..types.len()).map(|i| format!("${}", 9 + i)).collect();
    let not_in = format!("u.user_type NOT IN ({})", placeholders.join(", "));
    let clause = if not_user_types.iter().any(|t| t.is_empty()) {
        format!(" AND {not_in}")
    } else {
        format!(" AND ({not_in} OR u.user_type IS NULL)")
    };
    (clause, types)
}

/// A filter's text, lowercased as Synapse compares it; '' for none.
fn lowercase(text: &Option<String>) -> String {
    text.as_deref().unwrap_or("").to_lowercase()
}

/// What a one-column change of [`Store::update_user`] does besides.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AlsoDoes {
    Nothing,
    /// Synapse must follow it (beside Synapse).
    OweSynapse,
    /// ...and the account's sign-ins to the account page end (a lock).
    OweSynapseAndEndPageSessions,
}
