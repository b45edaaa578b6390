//! Moving accounts between an existing Synapse's database and homekey's (`homekey
//! migrate-from-synapse` and `migrate-to-synapse`): reading them in batches in name order,
//! from either database (the tables are the same), and writing a batch in one transaction.
//!
//! The rows carry secrets (password hashes, tokens) and have no `Debug`, so that none can
//! be formatted into a log line or an error.

use std::collections::{HashMap, HashSet};

use super::audit::commit_audited;
use super::bulk_rows::{BulkRows, Column, copied_rows_per_statement, rows_per_statement};
use super::{BeginWrite, Flavour, NewAuditRecord, Store, StoreError, with_pool};

/// A row of `users`, every column homekey's table has.
#[derive(sqlx::FromRow)]
pub struct MigratedUser {
    pub name: String,
    pub password_hash: Option<String>,
    pub creation_ts: i64,
    pub admin: bool,
    pub upgrade_ts: Option<i64>,
    pub is_guest: bool,
    pub appservice_id: Option<String>,
    pub consent_version: Option<String>,
    pub consent_server_notice_sent: Option<String>,
    pub user_type: Option<String>,
    pub deactivated: bool,
    pub shadow_banned: Option<bool>,
    pub consent_ts: Option<i64>,
    pub approved: Option<bool>,
    pub locked: bool,
    pub suspended: bool,
    /// Deactivated with erasure: a row of `erased_users` (Synapse's and homekey's table).
    pub erased: bool,
}

/// A row of `devices`.
#[derive(sqlx::FromRow)]
pub struct MigratedDevice {
    pub user_id: String,
    pub device_id: String,
    pub display_name: Option<String>,
    pub last_seen: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Synapse keeps each user's cross-signing keys as hidden devices: they are no session.
    pub hidden: bool,
}

/// A row of `access_tokens`; `id` and `refresh_token_id` are the source database's.
#[derive(sqlx::FromRow)]
pub struct MigratedAccessToken {
    pub id: i64,
    pub user_id: String,
    pub device_id: Option<String>,
    pub token: String,
    pub valid_until_ms: Option<i64>,
    pub puppets_user_id: Option<String>,
    pub last_validated: Option<i64>,
    pub refresh_token_id: Option<i64>,
    pub used: Option<bool>,
}

/// A row of `refresh_tokens`; `id` and `next_token_id` are the source database's.
#[derive(sqlx::FromRow)]
pub struct MigratedRefreshToken {
    pub id: i64,
    pub user_id: String,
    pub device_id: String,
    pub token: String,
    pub next_token_id: Option<i64>,
    pub expiry_ts: Option<i64>,
    pub ultimate_session_expiry_ts: Option<i64>,
}

/// A row of `user_threepids` (an e-mail address or a phone number), as the source has it.
#[derive(sqlx::FromRow, Clone)]
pub struct MigratedThreepid {
    pub user_id: String,
    pub medium: String,
    pub address: String,
    pub validated_at: i64,
    pub added_at: i64,
}

/// Consecutive users (by name) with their devices, tokens and third-party IDs.
#[derive(Default)]
pub struct AccountBatch {
    pub users: Vec<MigratedUser>,
    pub devices: Vec<MigratedDevice>,
    pub access_tokens: Vec<MigratedAccessToken>,
    pub refresh_tokens: Vec<MigratedRefreshToken>,
    pub threepids: Vec<MigratedThreepid>,
    /// Read from homekey's database: the users whose e-mail addresses homekey has given
    /// Synapse (or carried from it). Their third-party IDs are homekey's to say on the way
    /// back; another's (carried before homekey carried addresses, never changed since) are
    /// left as Synapse has them.
    pub threepids_given: HashSet<String>,
}

impl AccountBatch {
    /// The last user's name: where the next batch starts.
    pub fn last_name(&self) -> Option<&str> {
        self.users.last().map(|u| u.name.as_str())
    }

    /// Takes the OAuth 2.0 API's tokens out of the batch (homekey keeps only their digest,
    /// which Synapse cannot take: those sessions end), and returns their sessions as
    /// (user, device), once each.
    pub fn take_out_oauth_tokens(&mut self) -> Vec<(String, String)> {
        let digest = |token: &str| super::token_forms::stored_form(token).is_none();
        let mut ended: Vec<(String, String)> = self
            .access_tokens
            .iter()
            .filter(|t| digest(&t.token))
            .map(|t| (t.user_id.clone(), t.device_id.clone().unwrap_or_default()))
            .collect();
        ended.sort();
        ended.dedup();
        self.access_tokens.retain(|t| !digest(&t.token));
        self.refresh_tokens.retain(|t| !digest(&t.token));
        ended
    }

    /// The batch with only the users `keep` accepts, and their devices and tokens.
    pub fn retain_users(&mut self, keep: impl Fn(&MigratedUser) -> bool) {
        self.users.retain(keep);
        let names: HashSet<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        self.devices.retain(|d| names.contains(d.user_id.as_str()));
        self.access_tokens
            .retain(|t| names.contains(t.user_id.as_str()));
        self.refresh_tokens
            .retain(|t| names.contains(t.user_id.as_str()));
        self.threepids
            .retain(|t| names.contains(t.user_id.as_str()));
        self.threepids_given.retain(|u| names.contains(u.as_str()));
    }
}

/// Where the users of a batch stand in homekey's database.
#[derive(Debug, Default)]
pub struct CarriedBefore {
    /// Carried by an earlier run: homekey's since, passed over.
    pub carried: HashSet<String>,
    /// Made by homekey itself, beside this Synapse (it is in the mirror of what homekey made
    /// Synapse have): homekey's own account, passed over.
    pub made_by_homekey: HashSet<String>,
    /// Names that differ only in case from an account carried (or made by homekey) before
    /// them: not carried, as homekey tells user IDs apart ignoring case.
    pub case_duplicates: HashSet<String>,
    /// Any other account homekey has (ignoring case), Synapse's name -> homekey's: not
    /// changed.
    pub conflicts: HashMap<String, String>,
    /// Conflicts spelt as homekey spells them, replaced by Synapse's accounts (asked for):
    /// carried.
    pub replaced: HashSet<String>,
    /// Of the third-party IDs of the accounts carried, those another account had already
    /// (in homekey, or carried before them), as (the account, the medium and address): not
    /// carried.
    pub threepids_taken: Vec<(String, String)>,
}

impl CarriedBefore {
    /// Whether the batch's user of this name is written: homekey has no account of this name,
    /// or had one that is replaced.
    pub fn is_new(&self, name: &str) -> bool {
        !self.carried.contains(name)
            && !self.made_by_homekey.contains(name)
            && !self.case_duplicates.contains(name)
            && !self.conflicts.contains_key(name)
    }
}

/// How [`Store::carry_account_batch`] writes a batch.
#[derive(Clone, Copy)]
pub struct CarryOptions<'a> {
    /// Do the work and roll it back.
    pub dry_run: bool,
    /// Look for the accounts homekey has already. Without it (homekey had no account when the
    /// migration began) none is looked for, and one made meanwhile fails the batch on the
    /// unique index.
    pub check_existing: bool,
    /// Replace each account homekey had of its own (a conflict) by Synapse's.
    pub replace_conflicts: bool,
    /// The audit record of each account replaced, written with its target set to it.
    pub replaced_record: Option<&'a NewAuditRecord>,
}

/// What writing a batch back into Synapse's database did.
#[derive(Debug, Default)]
pub struct Restored {
    pub users: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    /// Tokens (user, device) left out because Synapse has no such device.
    pub without_device: Vec<(String, String)>,
    /// homekey's users that Synapse does not have at all.
    pub unknown_to_synapse: Vec<String>,
    /// Users marked erased in Synapse who were not yet.
    pub erased: u64,
    /// Third-party IDs given to accounts in Synapse, and taken from them, so that each
    /// account homekey keeps the set of has homekey's.
    pub threepids_added: u64,
    pub threepids_removed: u64,
}

/// The batch reads (`$1`: after this name; users: `$2` at most; the rest: up to this name),
/// in the columns' order of the `Migrated…` rows.
pub(super) const USER_BATCH: &str = "SELECT name, password_hash, \
     COALESCE(creation_ts, 0) AS creation_ts, admin <> 0 AS admin, upgrade_ts, \
     is_guest <> 0 AS is_guest, appservice_id, consent_version, consent_server_notice_sent, \
     user_type, deactivated <> 0 AS deactivated, shadow_banned, consent_ts, approved, \
     COALESCE(locked, FALSE) AS locked, COALESCE(suspended, FALSE) AS suspended, \
     EXISTS (SELECT 1 FROM erased_users e WHERE e.user_id = users.name) AS erased \
     FROM users WHERE name > $1 ORDER BY name LIMIT $2";
pub(super) const DEVICE_BATCH: &str = "SELECT user_id, device_id, display_name, last_seen, ip, \
     user_agent, COALESCE(hidden, FALSE) AS hidden FROM devices \
     WHERE user_id > $1 AND user_id <= $2";
pub(super) const ACCESS_TOKEN_BATCH: &str = "SELECT id, user_id, device_id, token, \
     valid_until_ms, puppets_user_id, last_validated, refresh_token_id, used \
     FROM access_tokens WHERE user_id > $1 AND user_id <= $2";
pub(super) const THREEPID_BATCH: &str = "SELECT user_id, medium, address, validated_at, \
     added_at FROM user_threepids WHERE user_id > $1 AND user_id <= $2";
/// On homekey's database only (see [`AccountBatch::threepids_given`]).
pub(super) const THREEPIDS_GIVEN_BATCH: &str = "SELECT user_id FROM homekey_synapse_users \
     WHERE emails_digest IS NOT NULL AND user_id > $1 AND user_id <= $2";
pub(super) const REFRESH_TOKEN_BATCH: &str = "SELECT id, user_id, device_id, token, \
     next_token_id, expiry_ts, ultimate_session_expiry_ts FROM refresh_tokens \
     WHERE user_id > $1 AND user_id <= $2";

/// Runs `$head VALUES… $tail` over `$rows` in statements of the engine's size, the values
/// made by `$columns` from each chunk of rows.
macro_rules! insert_rows {
    ($tx:ident, $head:expr, $rows:expr, |$chunk:ident| $columns:expr, $tail:expr) => {{
        for $chunk in $rows.chunks(copied_rows_per_statement(&$tx)) {
            let mut insert = sqlx::QueryBuilder::new($head);
            BulkRows::push_columns(&mut insert, $columns);
            insert.push($tail);
            insert.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Runs `$head <names> $tail` over `$names` (`&[&str]`) in statements of the engine's size,
/// the names given as a table of one column, `column1`; evaluates to the rows affected.
macro_rules! execute_for_names {
    ($tx:ident, $head:expr, $names:expr, $tail:expr) => {{
        let mut affected: u64 = 0;
        for chunk in $names.chunks(rows_per_statement(&$tx)) {
            let mut query = sqlx::QueryBuilder::new($head);
            BulkRows::push_names(&mut query, chunk);
            query.push($tail);
            affected += query.build().execute(&mut *$tx).await?.rows_affected();
        }
        affected
    }};
}

/// The rows (`$row`) of the query `$head <names> $tail` over `$names` (`&[&str]`), run in
/// statements of the engine's size as in [`execute_for_names!`].
macro_rules! fetch_for_names {
    ($tx:ident, $row:ty, $head:expr, $names:expr, $tail:expr) => {{
        let mut rows: Vec<$row> = Vec::new();
        for chunk in $names.chunks(rows_per_statement(&$tx)) {
            let mut query = sqlx::QueryBuilder::new($head);
            BulkRows::push_names(&mut query, chunk);
            query.push($tail);
            rows.extend(query.build_query_as::<$row>().fetch_all(&mut *$tx).await?);
        }
        rows
    }};
}

/// Of `$names`, those an account has ignoring case, and where each stands: a
/// [`CarriedBefore`], read inside `$tx`. homekey's own spelling of the name decides: an
/// account in the mirror is homekey's (carried or made by it), and a name that differs from
/// its spelling only in case is a duplicate of it.
macro_rules! carried_before {
    ($tx:ident, $names:expr) => {{
        let mut before = CarriedBefore::default();
        for chunk in $names.chunks(rows_per_statement(&$tx)) {
            // A scalar subquery per name always probes the `lower(name)` index (see
            // `taken_ids_query`).
            let mut query = sqlx::QueryBuilder::new(
                "SELECT t.wanted, t.had, m.carried_ts IS NOT NULL, m.user_id IS NOT NULL \
                 FROM (SELECT v.column1 AS wanted, (SELECT name FROM users \
                 WHERE lower(users.name) = lower(v.column1) LIMIT 1) AS had FROM ",
            );
            BulkRows::push_names(&mut query, chunk);
            query.push(
                ") t LEFT JOIN homekey_synapse_users m ON m.user_id = t.had \
                 WHERE t.had IS NOT NULL",
            );
            let rows: Vec<(String, String, bool, bool)> =
                query.build_query_as().fetch_all(&mut *$tx).await?;
            for (wanted, had, carried, made_by_homekey) in rows {
                if (carried || made_by_homekey) && wanted != had {
                    before.case_duplicates.insert(wanted);
                } else if carried {
                    before.carried.insert(wanted);
                } else if made_by_homekey {
                    before.made_by_homekey.insert(wanted);
                } else {
                    before.conflicts.insert(wanted, had);
                }
            }
        }
        before
    }};
}

/// Removes homekey's own account `$had` inside `$tx`, for Synapse's of the same name to be
/// carried in its place: its sessions (as a logout of every device, and an admin's tokens
/// acting as it), the rest of its devices, work owed to Synapse for it, its sign-ins to the
/// account page, its erasure mark, its row. Its profile row stays: the user ID is the same.
macro_rules! remove_replaced_account {
    ($tx:ident, $store:expr, $had:expr) => {{
        let had: &str = $had;
        // The logout ends its sign-ins to the account page too.
        super::transaction::delete_sessions!(&mut $tx, $store, had, &super::Logout::AllDevices);
        for sql in [
            // The logout spares hidden devices, and an admin's tokens acting as the user.
            "DELETE FROM devices WHERE user_id = $1",
            "DELETE FROM access_tokens WHERE puppets_user_id = $1",
            "DELETE FROM homekey_synapse_devices WHERE user_id = $1",
            "DELETE FROM homekey_synapse_owed WHERE user_id = $1",
            "DELETE FROM homekey_synapse_leases WHERE user_id = $1",
            "DELETE FROM erased_users WHERE user_id = $1",
            "DELETE FROM user_threepids WHERE user_id = $1",
            "DELETE FROM users WHERE name = $1",
        ] {
            sqlx::query(sql).bind(had).execute(&mut *$tx).await?;
        }
    }};
}

/// Inserts `$tokens` (`&[&MigratedRefreshToken]`) into homekey's `refresh_tokens`, then
/// links each to its successor; evaluates to the map of source id -> homekey's id.
macro_rules! insert_refresh_tokens {
    ($tx:ident, $tokens:expr) => {{
        let tokens: &[&MigratedRefreshToken] = &$tokens;
        let mut ids: HashMap<i64, i64> = HashMap::new();
        let source_id: HashMap<&str, i64> =
            tokens.iter().map(|t| (t.token.as_str(), t.id)).collect();
        for chunk in tokens.chunks(rows_per_statement(&$tx)) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO refresh_tokens (user_id, device_id, token, expiry_ts, \
                 ultimate_session_expiry_ts) ",
            );
            BulkRows::push_columns(
                &mut insert,
                vec![
                    Column::Text(chunk.iter().map(|t| Some(t.user_id.as_str())).collect()),
                    Column::Text(chunk.iter().map(|t| Some(t.device_id.as_str())).collect()),
                    Column::Text(chunk.iter().map(|t| Some(t.token.as_str())).collect()),
                    Column::BigInt(chunk.iter().map(|t| t.expiry_ts).collect()),
                    Column::BigInt(chunk.iter().map(|t| t.ultimate_session_expiry_ts).collect()),
                ],
            );
            insert.push(" RETURNING id, token");
            let rows: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *$tx).await?;
            for (id, token) in rows {
                if let Some(source) = source_id.get(token.as_str()) {
                    ids.insert(*source, id);
                }
            }
        }
        for token in tokens {
            if let (Some(id), Some(next)) = (
                ids.get(&token.id),
                token.next_token_id.and_then(|n| ids.get(&n)),
            ) {
                sqlx::query("UPDATE refresh_tokens SET next_token_id = $2 WHERE id = $1")
                    .bind(id)
                    .bind(next)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        ids
    }};
}

impl Store {
    /// Synapse's schema version (`schema_version.version`); `None` without that table's row.
    pub async fn synapse_schema_version(&self) -> Result<Option<i64>, StoreError> {
        if self.flavour != Flavour::Synapse {
            return Ok(None);
        }
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT CAST(version AS BIGINT) FROM schema_version")
                .fetch_optional(pool)
                .await?
        }))
    }

    /// On PostgreSQL, the other clients connected to this database (not homekey's own), each
    /// as "application (address)": a running Synapse, or one of its workers, is among them.
    pub async fn other_clients(&self) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            super::Backend::Sqlite(_) => Ok(Vec::new()),
            super::Backend::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT COALESCE(NULLIF(application_name, ''), 'a client') || ' (' || \
                 COALESCE(host(client_addr), 'local socket') || ', pid ' || pid || ')' \
                 FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND application_name <> 'homekey' \
                 AND backend_type = 'client backend' ORDER BY pid",
            )
            .fetch_all(pool)
            .await?),
        }
    }

    /// How many writers the database lets make progress at once: SQLite one, PostgreSQL one a
    /// core (two is what the migration uses: it also reads).
    pub fn concurrent_writers(&self) -> usize {
        match &self.backend {
            super::Backend::Sqlite(_) => 1,
            super::Backend::Postgres(_) => 2,
        }
    }

    /// The user IDs of accounts carried (all but guests) that differ only in case from
    /// another one, as (the lowercase one all of them share, the ID), in that order, an
    /// appservice user after the others of its group (so that a person's account is the one
    /// kept): Synapse's `users` has such from before it told user IDs apart ignoring case,
    /// and homekey's cannot.
    pub async fn names_differing_only_in_case(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                // One pass over `users` (an `IN (… GROUP BY …)` took two: 389 against 89 ms
                // for 100,000 users on PostgreSQL).
                // Of the accounts carried at all: a guest is left out, and must not make a
                // carried account of its name a duplicate.
                "SELECT lowered, name FROM (SELECT lower(name) AS lowered, name, \
                 appservice_id IS NOT NULL AS appservice, \
                 COUNT(*) OVER (PARTITION BY lower(name)) AS spellings FROM users \
                 WHERE is_guest = 0) AS t \
                 WHERE spellings > 1 ORDER BY lowered, appservice, name",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many rows `users` has.
    pub async fn count_all_users(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Up to `limit` users whose names come after `after`, in name order, with their devices
    /// and tokens, read in one snapshot.
    pub async fn read_account_batch(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<AccountBatch, StoreError> {
        let homekey_database = self.flavour == Flavour::Homekey;
        let mut batch = match (&self.backend, &self.sqlite_reads) {
            (super::Backend::Sqlite(_), Some(reads)) => {
                let reads = reads.clone();
                let after = after.to_owned();
                tokio::task::spawn_blocking(move || {
                    reads.account_batch(&after, limit, homekey_database)
                })
                .await
                .map_err(|err| StoreError::Unavailable(format!("reading a batch: {err}")))??
            }
            _ => with_pool!(self, |pool| {
                let mut tx = pool.begin().await?;
                let users: Vec<MigratedUser> = sqlx::query_as(USER_BATCH)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                let Some(last) = users.last().map(|u| u.name.clone()) else {
                    return Ok(AccountBatch::default());
                };
                let devices = sqlx::query_as(DEVICE_BATCH)
                    .bind(after)
                    .bind(&last)
                    .fetch_all(&mut *tx)
                    .await?;
                let access_tokens = sqlx::query_as(ACCESS_TOKEN_BATCH)
                    .bind(after)
                    .bind(&last)
                    .fetch_all(&mut *tx)
                    .await?;
                let refresh_tokens = sqlx::query_as(REFRESH_TOKEN_BATCH)
                    .bind(after)
                    .bind(&last)
                    .fetch_all(&mut *tx)
                    .await?;
                let threepids = sqlx::query_as(THREEPID_BATCH)
                    .bind(after)
                    .bind(&last)
                    .fetch_all(&mut *tx)
                    .await?;
                let threepids_given: Vec<String> = if homekey_database {
                    sqlx::query_scalar(THREEPIDS_GIVEN_BATCH)
                        .bind(after)
                        .bind(&last)
                        .fetch_all(&mut *tx)
                        .await?
                } else {
                    Vec::new()
                };
                tx.commit().await?;
                AccountBatch {
                    users,
                    devices,
                    access_tokens,
                    refresh_tokens,
                    threepids,
                    threepids_given: threepids_given.into_iter().collect(),
                }
            }),
        };
        // Rows of names without a `users` row fell in the range too.
        batch.retain_users(|_| true);
        Ok(batch)
    }

    /// Writes `batch` (from Synapse) into homekey's database in one transaction: the users
    /// homekey does not have yet, with their devices and tokens, marked as carried, and what
    /// Synapse has of them in the mirror of the queue of owed work (nothing is owed: Synapse
    /// has them already). Users homekey has are passed over and said in the answer, or, the
    /// ones it has of its own (conflicts) with [`CarryOptions::replace_conflicts`], replaced.
    pub async fn carry_account_batch(
        &self,
        batch: &AccountBatch,
        now_ms: i64,
        audit: Option<&NewAuditRecord>,
        options: CarryOptions<'_>,
    ) -> Result<CarriedBefore, StoreError> {
        if self.flavour != Flavour::Homekey {
            return Err(StoreError::RefusedOnSynapse(
                "accounts are carried into homekey's own database only",
            ));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let names: Vec<&str> = batch.users.iter().map(|u| u.name.as_str()).collect();
            let mut before = if options.check_existing {
                carried_before!(tx, names)
            } else {
                CarriedBefore::default()
            };
            let mut records: Vec<NewAuditRecord> = audit.into_iter().cloned().collect();
            if options.replace_conflicts {
                // Only an account spelt as Synapse spells it: one that differs in case is
                // another user's to Synapse (it may have the exact spelling too, elsewhere).
                let same_spelling: Vec<String> = before
                    .conflicts
                    .iter()
                    .filter(|(wanted, had)| wanted == had)
                    .map(|(wanted, _)| wanted.clone())
                    .collect();
                for name in same_spelling {
                    remove_replaced_account!(tx, self, &name);
                    records.extend(options.replaced_record.map(|record| NewAuditRecord {
                        target: Some(name.clone()),
                        ..record.clone()
                    }));
                    before.conflicts.remove(&name);
                    before.replaced.insert(name);
                }
            }
            let new = |name: &str| before.is_new(name);
            let users: Vec<&MigratedUser> = batch.users.iter().filter(|u| new(&u.name)).collect();
            let devices: Vec<&MigratedDevice> =
                batch.devices.iter().filter(|d| new(&d.user_id)).collect();
            let access: Vec<&MigratedAccessToken> = batch
                .access_tokens
                .iter()
                .filter(|t| new(&t.user_id))
                .collect();
            let refresh: Vec<&MigratedRefreshToken> = batch
                .refresh_tokens
                .iter()
                .filter(|t| new(&t.user_id))
                .collect();
            insert_rows!(
                tx,
                "INSERT INTO users (name, password_hash, creation_ts, admin, upgrade_ts, \
                 is_guest, appservice_id, consent_version, consent_server_notice_sent, \
                 user_type, deactivated, shadow_banned, consent_ts, approved, locked, \
                 suspended) ",
                users,
                |chunk| user_columns(chunk),
                ""
            );
            insert_rows!(
                tx,
                "INSERT INTO devices (user_id, device_id, display_name, last_seen, ip, \
                 user_agent, hidden) ",
                devices,
                |chunk| device_columns(chunk),
                ""
            );
            // Their third-party IDs (canonical already: see `carry_from_synapse`). One another
            // account has (in homekey, or carried before it) is passed over and said.
            let threepids: Vec<&MigratedThreepid> =
                batch.threepids.iter().filter(|t| new(&t.user_id)).collect();
            let mut carried_threepids: HashSet<(String, String, String)> = HashSet::new();
            for chunk in threepids.chunks(copied_rows_per_statement(&tx)) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO user_threepids (user_id, medium, address, validated_at, \
                     added_at) ",
                );
                BulkRows::push_columns(&mut insert, threepid_columns(chunk));
                insert.push(
                    " ON CONFLICT (medium, address) DO NOTHING RETURNING user_id, medium, address",
                );
                let rows: Vec<(String, String, String)> =
                    insert.build_query_as().fetch_all(&mut *tx).await?;
                carried_threepids.extend(rows);
            }
            for t in &threepids {
                let key = (t.user_id.clone(), t.medium.clone(), t.address.clone());
                if !carried_threepids.contains(&key) {
                    before
                        .threepids_taken
                        .push((t.user_id.clone(), format!("{} {}", t.medium, t.address)));
                }
            }
            // The e-mail addresses Synapse has of each account carried: nothing is owed.
            let emails_digests: Vec<String> = users
                .iter()
                .map(|u| {
                    super::synapse_queue::emails_digest(
                        carried_threepids
                            .iter()
                            .filter(|(user, medium, _)| user == &u.name && medium == "email")
                            .map(|(_, _, address)| address.as_str()),
                    )
                })
                .collect();
            // What Synapse has of the accounts carried, in the mirror of the queue of owed
            // work, marked as carried. (Made from the rows just written, inside the database,
            // it took twice as long on PostgreSQL.) Plain inserts: an account homekey does not have has no
            // devices or mirror rows in homekey's database, and `ON CONFLICT` costs
            // PostgreSQL a speculative insertion a row.
            insert_rows!(
                tx,
                "INSERT INTO homekey_synapse_users (user_id, deactivated, locked, carried_ts, \
                 emails_digest) ",
                users.iter().zip(&emails_digests).collect::<Vec<_>>(),
                |chunk| vec![
                    Column::Text(chunk.iter().map(|(u, _)| Some(u.name.as_str())).collect()),
                    Column::Bool(chunk.iter().map(|(u, _)| Some(u.deactivated)).collect()),
                    Column::Bool(chunk.iter().map(|(u, _)| Some(u.locked)).collect()),
                    Column::BigInt(vec![Some(now_ms); chunk.len()]),
                    Column::Text(chunk.iter().map(|(_, d)| Some(d.as_str())).collect()),
                ],
                ""
            );
            insert_rows!(
                tx,
                "INSERT INTO homekey_synapse_devices (user_id, device_id) ",
                devices,
                |chunk| vec![
                    Column::Text(chunk.iter().map(|d| Some(d.user_id.as_str())).collect()),
                    Column::Text(chunk.iter().map(|d| Some(d.device_id.as_str())).collect()),
                ],
                ""
            );
            let erased: Vec<&str> = users
                .iter()
                .filter(|u| u.erased)
                .map(|u| u.name.as_str())
                .collect();
            execute_for_names!(
                tx,
                "INSERT INTO erased_users (user_id) SELECT column1 FROM ",
                erased,
                ""
            );
            let refresh_ids = insert_refresh_tokens!(tx, refresh);
            insert_rows!(
                tx,
                "INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, \
                 puppets_user_id, last_validated, refresh_token_id, used) ",
                access,
                |chunk| access_token_columns(chunk, &refresh_ids),
                ""
            );
            if options.dry_run {
                tx.rollback().await?;
            } else {
                commit_audited!(tx, self, &records);
            }
            Ok(before)
        })
    }

    /// Writes `batch` (from homekey) back into Synapse's database in one transaction, with
    /// Synapse stopped: each user's password hash (`None` clears it), admin, lock,
    /// deactivation and erasure (`erased_users`); and their sessions become exactly homekey's: the access and refresh
    /// tokens homekey has that Synapse lacks are added (numbered after Synapse's highest,
    /// as Synapse numbers them when it starts), those homekey ended are removed. Devices
    /// are never written: a token whose device Synapse lacks is left out and reported.
    /// With `dry_run`, all of it is done and then rolled back.
    pub async fn restore_account_batch(
        &self,
        batch: &AccountBatch,
        hashes: &HashMap<&str, Option<&str>>,
        dry_run: bool,
    ) -> Result<Restored, StoreError> {
        if self.flavour != Flavour::Synapse {
            return Err(StoreError::NotAccountDatabase(
                "this is not a Synapse database: accounts go back into Synapse's".into(),
            ));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut restored = Restored::default();
            for user in &batch.users {
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $2, admin = $3, locked = $4, \
                     deactivated = $5 WHERE name = $1",
                )
                .bind(&user.name)
                .bind(hashes.get(user.name.as_str()).copied().flatten())
                .bind(i16::from(user.admin))
                .bind(user.locked)
                .bind(i16::from(user.deactivated))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    restored.unknown_to_synapse.push(user.name.clone());
                } else {
                    restored.users += 1;
                }
            }
            let known: HashSet<&str> = batch
                .users
                .iter()
                .map(|u| u.name.as_str())
                .filter(|n| !restored.unknown_to_synapse.iter().any(|u| u == n))
                .collect();
            // Erasure as homekey has it: marked, or unmarked by a reactivation.
            let erased_names = |erased: bool| -> Vec<&str> {
                batch
                    .users
                    .iter()
                    .filter(|u| u.erased == erased && known.contains(u.name.as_str()))
                    .map(|u| u.name.as_str())
                    .collect()
            };
            restored.erased = execute_for_names!(
                tx,
                "INSERT INTO erased_users (user_id) SELECT column1 FROM ",
                erased_names(true),
                " WHERE TRUE ON CONFLICT (user_id) DO NOTHING"
            );
            execute_for_names!(
                tx,
                "DELETE FROM erased_users WHERE user_id IN (SELECT column1 FROM ",
                erased_names(false),
                ")"
            );
            // Third-party IDs: each account whose set homekey keeps (it has some, or gave
            // Synapse its list: see `AccountBatch::threepids_given`) gets homekey's set.
            let owners: HashSet<&str> = batch
                .threepids
                .iter()
                .map(|t| t.user_id.as_str())
                .chain(batch.threepids_given.iter().map(String::as_str))
                .filter(|name| known.contains(name))
                .collect();
            let owner_names: Vec<&str> = owners.iter().copied().collect();
            let synapse_threepids = fetch_for_names!(
                tx,
                (String, String, String),
                "SELECT user_id, medium, address FROM user_threepids \
                 WHERE user_id IN (SELECT column1 FROM ",
                owner_names,
                ")"
            );
            let wanted: HashSet<(&str, &str, &str)> = batch
                .threepids
                .iter()
                .filter(|t| owners.contains(t.user_id.as_str()))
                .map(|t| (t.user_id.as_str(), t.medium.as_str(), t.address.as_str()))
                .collect();
            for (user, medium, address) in &synapse_threepids {
                // One homekey would not hold (a medium it does not know, an address that is
                // none) was never carried into homekey: it stays.
                if wanted.contains(&(user.as_str(), medium.as_str(), address.as_str()))
                    || crate::threepid::Threepid::parse(medium, address).is_err()
                {
                    continue;
                }
                sqlx::query(
                    "DELETE FROM user_threepids WHERE user_id = $1 AND medium = $2 \
                     AND address = $3",
                )
                .bind(user)
                .bind(medium)
                .bind(address)
                .execute(&mut *tx)
                .await?;
                restored.threepids_removed += 1;
            }
            let had: HashSet<(&str, &str, &str)> = synapse_threepids
                .iter()
                .map(|(u, m, a)| (u.as_str(), m.as_str(), a.as_str()))
                .collect();
            for t in &batch.threepids {
                let key = (t.user_id.as_str(), t.medium.as_str(), t.address.as_str());
                if !owners.contains(t.user_id.as_str()) || had.contains(&key) {
                    continue;
                }
                // An address Synapse has on another account moves to this one: homekey holds
                // each address on one account, and is the one that says which.
                let moved = sqlx::query(
                    "UPDATE user_threepids SET user_id = $1, validated_at = $4, added_at = $5 \
                     WHERE medium = $2 AND address = $3",
                )
                .bind(&t.user_id)
                .bind(&t.medium)
                .bind(&t.address)
                .bind(t.validated_at)
                .bind(t.added_at)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() == 0 {
                    sqlx::query(
                        "INSERT INTO user_threepids (user_id, medium, address, validated_at, \
                         added_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&t.user_id)
                    .bind(&t.medium)
                    .bind(&t.address)
                    .bind(t.validated_at)
                    .bind(t.added_at)
                    .execute(&mut *tx)
                    .await?;
                }
                restored.threepids_added += 1;
            }
            // The devices Synapse has of these users. Selected by their names, not by a range
            // of names: the batch is in homekey's order, and Synapse's database may sort
            // otherwise (a collation other than C puts `@alice` before `@Bob`).
            let names: Vec<&str> = known.iter().copied().collect();
            let synapse_devices: HashSet<(String, String)> = fetch_for_names!(
                tx,
                (String, String),
                "SELECT user_id, device_id FROM devices WHERE user_id IN (SELECT column1 FROM ",
                names,
                ")"
            )
            .into_iter()
            .collect();
            let has_device = |user: &str, device: &str| {
                synapse_devices.contains(&(user.to_owned(), device.to_owned()))
            };
            // Sessions homekey ended are ended in Synapse too.
            let homekey_tokens: HashSet<&str> = batch
                .access_tokens
                .iter()
                .map(|t| t.token.as_str())
                .collect();
            let homekey_refresh: HashSet<&str> = batch
                .refresh_tokens
                .iter()
                .map(|t| t.token.as_str())
                .collect();
            let synapse_tokens = fetch_for_names!(
                tx,
                (i64, String, String),
                "SELECT id, user_id, token FROM access_tokens \
                 WHERE user_id IN (SELECT column1 FROM ",
                names,
                ")"
            );
            let synapse_refresh = fetch_for_names!(
                tx,
                (i64, String, String),
                "SELECT id, user_id, token FROM refresh_tokens \
                 WHERE user_id IN (SELECT column1 FROM ",
                names,
                ")"
            );
            for (id, user, token) in &synapse_tokens {
                if known.contains(user.as_str()) && !homekey_tokens.contains(token.as_str()) {
                    sqlx::query("DELETE FROM access_tokens WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (id, user, token) in &synapse_refresh {
                if known.contains(user.as_str()) && !homekey_refresh.contains(token.as_str()) {
                    sqlx::query("DELETE FROM refresh_tokens WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let in_synapse: HashSet<&str> = synapse_tokens
                .iter()
                .chain(&synapse_refresh)
                .map(|(_, _, token)| token.as_str())
                .collect();
            // New rows are numbered after the highest of each table, as Synapse would.
            let mut next_refresh: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM refresh_tokens")
                    .fetch_one(&mut *tx)
                    .await?;
            let mut next_access: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM access_tokens")
                    .fetch_one(&mut *tx)
                    .await?;
            // homekey's refresh token id -> Synapse's.
            let mut refresh_ids: HashMap<i64, i64> = HashMap::new();
            let existing_refresh: HashMap<&str, i64> = synapse_refresh
                .iter()
                .map(|(id, _, token)| (token.as_str(), *id))
                .collect();
            for token in &batch.refresh_tokens {
                if !known.contains(token.user_id.as_str()) {
                    continue;
                }
                if let Some(id) = existing_refresh.get(token.token.as_str()) {
                    refresh_ids.insert(token.id, *id);
                    continue;
                }
                if !has_device(&token.user_id, &token.device_id) {
                    restored
                        .without_device
                        .push((token.user_id.clone(), token.device_id.clone()));
                    continue;
                }
                next_refresh += 1;
                sqlx::query(
                    "INSERT INTO refresh_tokens (id, user_id, device_id, token, expiry_ts, \
                     ultimate_session_expiry_ts) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(next_refresh)
                .bind(&token.user_id)
                .bind(&token.device_id)
                .bind(&token.token)
                .bind(token.expiry_ts)
                .bind(token.ultimate_session_expiry_ts)
                .execute(&mut *tx)
                .await?;
                refresh_ids.insert(token.id, next_refresh);
                restored.refresh_tokens += 1;
            }
            for token in &batch.refresh_tokens {
                if let (Some(id), Some(next)) = (
                    refresh_ids.get(&token.id),
                    token.next_token_id.and_then(|n| refresh_ids.get(&n)),
                ) {
                    sqlx::query("UPDATE refresh_tokens SET next_token_id = $2 WHERE id = $1")
                        .bind(id)
                        .bind(next)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for token in &batch.access_tokens {
                if !known.contains(token.user_id.as_str())
                    || in_synapse.contains(token.token.as_str())
                {
                    continue;
                }
                if let Some(device) = token
                    .device_id
                    .as_ref()
                    .filter(|device| !has_device(&token.user_id, device))
                {
                    restored
                        .without_device
                        .push((token.user_id.clone(), device.clone()));
                    continue;
                }
                next_access += 1;
                sqlx::query(
                    "INSERT INTO access_tokens (id, user_id, device_id, token, valid_until_ms, \
                     puppets_user_id, last_validated, refresh_token_id, used) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(next_access)
                .bind(&token.user_id)
                .bind(token.device_id.as_deref())
                .bind(&token.token)
                .bind(token.valid_until_ms)
                .bind(token.puppets_user_id.as_deref())
                .bind(token.last_validated)
                .bind(token.refresh_token_id.and_then(|id| refresh_ids.get(&id)))
                .bind(token.used)
                .execute(&mut *tx)
                .await?;
                restored.access_tokens += 1;
            }
            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            restored.without_device.sort();
            restored.without_device.dedup();
            Ok(restored)
        })
    }

    /// Empties `users.password_hash` in Synapse's database for `names` (accounts homekey
    /// carried), so that turning delegation off by mistake cannot bring old passwords back.
    /// Returns how many hashes were cleared.
    pub async fn clear_synapse_password_hashes(&self, names: &[&str]) -> Result<u64, StoreError> {
        if self.flavour != Flavour::Synapse {
            return Err(StoreError::NotAccountDatabase(
                "this is not a Synapse database".into(),
            ));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let cleared = execute_for_names!(
                tx,
                "UPDATE users SET password_hash = NULL WHERE password_hash IS NOT NULL \
                 AND name IN (SELECT column1 FROM ",
                names,
                ")"
            );
            tx.commit().await?;
            Ok(cleared)
        })
    }

    /// Up to `limit` names of accounts carried from Synapse, after `after`, in order.
    pub async fn carried_user_ids(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT user_id FROM homekey_synapse_users WHERE carried_ts IS NOT NULL \
                 AND user_id > $1 ORDER BY user_id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }
}

fn user_columns<'a>(users: &[&'a MigratedUser]) -> Vec<Column<'a>> {
    let text = |f: fn(&'a MigratedUser) -> Option<&'a str>| {
        Column::Text(users.iter().map(|u| f(u)).collect())
    };
    vec![
        text(|u| Some(u.name.as_str())),
        text(|u| u.password_hash.as_deref()),
        Column::BigInt(users.iter().map(|u| Some(u.creation_ts)).collect()),
        Column::SmallInt(users.iter().map(|u| i16::from(u.admin)).collect()),
        Column::BigInt(users.iter().map(|u| u.upgrade_ts).collect()),
        Column::SmallInt(users.iter().map(|u| i16::from(u.is_guest)).collect()),
        text(|u| u.appservice_id.as_deref()),
        text(|u| u.consent_version.as_deref()),
        text(|u| u.consent_server_notice_sent.as_deref()),
        text(|u| u.user_type.as_deref()),
        Column::SmallInt(users.iter().map(|u| i16::from(u.deactivated)).collect()),
        Column::Bool(users.iter().map(|u| u.shadow_banned).collect()),
        Column::BigInt(users.iter().map(|u| u.consent_ts).collect()),
        Column::Bool(users.iter().map(|u| u.approved).collect()),
        Column::Bool(users.iter().map(|u| Some(u.locked)).collect()),
        Column::Bool(users.iter().map(|u| Some(u.suspended)).collect()),
    ]
}

fn threepid_columns<'a>(threepids: &[&'a MigratedThreepid]) -> Vec<Column<'a>> {
    vec![
        Column::Text(threepids.iter().map(|t| Some(t.user_id.as_str())).collect()),
        Column::Text(threepids.iter().map(|t| Some(t.medium.as_str())).collect()),
        Column::Text(threepids.iter().map(|t| Some(t.address.as_str())).collect()),
        Column::BigInt(threepids.iter().map(|t| Some(t.validated_at)).collect()),
        Column::BigInt(threepids.iter().map(|t| Some(t.added_at)).collect()),
    ]
}

fn device_columns<'a>(devices: &[&'a MigratedDevice]) -> Vec<Column<'a>> {
    let text = |f: fn(&'a MigratedDevice) -> Option<&'a str>| {
        Column::Text(devices.iter().map(|d| f(d)).collect())
    };
    vec![
        text(|d| Some(d.user_id.as_str())),
        text(|d| Some(d.device_id.as_str())),
        text(|d| d.display_name.as_deref()),
        Column::BigInt(devices.iter().map(|d| d.last_seen).collect()),
        text(|d| d.ip.as_deref()),
        text(|d| d.user_agent.as_deref()),
        Column::Bool(devices.iter().map(|d| Some(d.hidden)).collect()),
    ]
}

fn access_token_columns<'a>(
    tokens: &[&'a MigratedAccessToken],
    refresh_ids: &HashMap<i64, i64>,
) -> Vec<Column<'a>> {
    vec![
        Column::Text(tokens.iter().map(|t| Some(t.user_id.as_str())).collect()),
        Column::Text(tokens.iter().map(|t| t.device_id.as_deref()).collect()),
        Column::Text(tokens.iter().map(|t| Some(t.token.as_str())).collect()),
        Column::BigInt(tokens.iter().map(|t| t.valid_until_ms).collect()),
        Column::Text(
            tokens
                .iter()
                .map(|t| t.puppets_user_id.as_deref())
                .collect(),
        ),
        Column::BigInt(tokens.iter().map(|t| t.last_validated).collect()),
        Column::BigInt(
            tokens
                .iter()
                .map(|t| {
                    t.refresh_token_id
                        .and_then(|id| refresh_ids.get(&id).copied())
                })
                .collect(),
        ),
        Column::Bool(tokens.iter().map(|t| t.used).collect()),
    ]
}
