//! Moving an existing Synapse's accounts into homekey, and back: what is carried, what is
//! left to Synapse, and the batches' writes with their audit records.
//!
//! - **Into homekey** ([`Accounts::carry_from_synapse`], on homekey's database): users with
//!   their password hashes and flags (erasure too), their devices and their access and refresh tokens, so
//!   that every password and every logged-in client keeps working. Guests are left out
//!   (Synapse's delegated requests carry no guest flag, so a guest's token must not become a
//!   full user's: homekey answers their tokens as inactive). Appservice users are carried
//!   with their devices and tokens (a bridge bot's encryption device, logged in with
//!   `m.login.application_service`), so those tokens work once Synapse delegates; they stay
//!   the appservice's (no password, never provisioned: Synapse has them), and the
//!   appservice's own `as_token` stays Synapse's, which never asks homekey about it. Synapse's hidden devices are
//!   its store of cross-signing keys, no sessions. An account homekey already has is passed
//!   over: one an earlier run carried is homekey's since (so a second run, or one after an
//!   interruption, finishes the job and never undoes a change made in homekey meanwhile), and
//!   so is one homekey made in Synapse itself, beside it; any other is a conflict, reported
//!   and not changed.
//! - **Back into Synapse** ([`Accounts::restore_into_synapse`], on Synapse's database): see
//!   the store's `restore_account_batch`.
//! - **Registration tokens**, both ways ([`Accounts::carry_registration_tokens_from`]): every
//!   token with its limits and completed count; the uses held by unfinished sign-ups stay
//!   behind with their sessions (`pending` 0). A token homekey has already is homekey's, as
//!   an account carried before is: left as it is. On the way back homekey's count and limits
//!   are written over Synapse's copy, as homekey's accounts are: homekey admitted the
//!   sign-ups meanwhile.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::{Accounts, Actor, now_ms};
use crate::config::HashScheme;
use crate::password::scheme::scheme_of;
use crate::store::{
    AccountBatch, CarryOptions, NewAuditRecord, Restored, StoreError, TokensCarried,
};
use crate::threepid::Threepid;

/// What a migration found and did, summed over its batches.
#[derive(Debug, Default)]
pub struct Tally {
    /// Users read from the source database.
    pub read: u64,
    pub carried: u64,
    pub devices: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    /// Carried by an earlier run, passed over.
    pub already_carried: u64,
    /// Accounts homekey made in this Synapse itself (beside it): homekey's, passed over.
    pub made_by_homekey: u64,
    /// Any other account homekey had: left as it is (their names).
    pub conflicts: Vec<String>,
    /// Those of them replaced by Synapse's account (asked for): carried.
    pub replaced: Vec<String>,
    /// Names that differ only in case from one carried before them: not carried.
    pub case_duplicates: Vec<String>,
    pub guests: u64,
    /// Appservice users carried (with their devices and tokens).
    pub appservice_users: u64,
    /// Active accounts carried without a password (SSO-only, or never given one): they
    /// cannot log in through homekey until one is set.
    pub without_password: u64,
    /// Carried deactivated with erasure (marked in `erased_users`).
    pub erased: u64,
    /// E-mail addresses and phone numbers carried.
    pub threepids: u64,
    /// Of the accounts carried, the third-party IDs not carried, each as "the account: the
    /// medium and address (why)".
    pub threepids_left: Vec<String>,
}

impl Tally {
    /// Adds another batch's.
    pub fn add(&mut self, other: Tally) {
        self.read += other.read;
        self.carried += other.carried;
        self.devices += other.devices;
        self.access_tokens += other.access_tokens;
        self.refresh_tokens += other.refresh_tokens;
        self.already_carried += other.already_carried;
        self.made_by_homekey += other.made_by_homekey;
        self.conflicts.extend(other.conflicts);
        self.replaced.extend(other.replaced);
        self.case_duplicates.extend(other.case_duplicates);
        self.guests += other.guests;
        self.appservice_users += other.appservice_users;
        self.without_password += other.without_password;
        self.erased += other.erased;
        self.threepids += other.threepids;
        self.threepids_left.extend(other.threepids_left);
    }
}

/// How [`Accounts::carry_from_synapse`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Carrying {
    /// Do the work and roll it back.
    pub dry_run: bool,
    /// homekey had no account when the migration began: none is looked for before writing
    /// (on PostgreSQL that lookup was a twentieth of the time).
    pub into_empty_database: bool,
    /// Replace each account homekey had of its own (not carried by an earlier run, not made
    /// by homekey in this Synapse) by Synapse's: its password, flags, devices and sessions;
    /// homekey's sessions of it end. Without it such an account is named and not changed.
    pub replace_existing: bool,
}

/// What writing homekey's accounts back into Synapse found and did, summed.
#[derive(Debug, Default)]
pub struct RestoreTally {
    pub users: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    /// Accounts whose hash is argon2id, which Synapse cannot read: their password is
    /// cleared in Synapse, and they must reset it there.
    pub argon2_accounts: Vec<String>,
    /// Tokens left out because Synapse has no such device, as (user, device).
    pub without_device: Vec<(String, String)>,
    pub unknown_to_synapse: Vec<String>,
    /// Accounts marked erased in Synapse that were not yet.
    pub erased: u64,
    /// Third-party IDs given to accounts in Synapse, and taken from them.
    pub threepids_added: u64,
    pub threepids_removed: u64,
    /// OAuth 2.0 sessions ended, as (user, device): homekey keeps only their tokens'
    /// digests, which Synapse cannot take.
    pub oauth_sessions_ended: Vec<(String, String)>,
}

impl Accounts {
    /// Synapse's schema version, on a Synapse database.
    pub async fn synapse_schema_version(&self) -> Result<Option<i64>, StoreError> {
        self.store.synapse_schema_version().await
    }

    /// How many accounts this database has (every row of `users`).
    pub async fn count_all_users(&self) -> Result<i64, StoreError> {
        self.store.count_all_users().await
    }

    /// How many writers the database lets make progress at once (SQLite: one).
    pub fn concurrent_writers(&self) -> usize {
        self.store.concurrent_writers()
    }

    /// Other clients of this PostgreSQL database (see the store's `other_clients`).
    pub async fn other_database_clients(&self) -> Result<Vec<String>, StoreError> {
        self.store.other_clients().await
    }

    /// Up to `limit` accounts after `after`, by name, with their devices and tokens, as
    /// this database has them (Synapse's or homekey's).
    pub async fn read_account_batch(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<AccountBatch, StoreError> {
        self.store.read_account_batch(after, limit).await
    }

    /// Of the names of `source` (Synapse's database) that differ only in case from another
    /// one, those not to carry: homekey tells user IDs apart ignoring case, so of each such
    /// group only one is carried, the one homekey has already by that spelling, or else the
    /// first by name, a person's account before an appservice user's. Found before the first
    /// batch, as the group may span batches.
    pub async fn case_duplicates_in(
        &self,
        source: &Accounts,
    ) -> Result<HashSet<String>, StoreError> {
        let mut left_out = HashSet::new();
        let names = source.store.names_differing_only_in_case().await?;
        for group in names.chunk_by(|a, b| a.0 == b.0) {
            let had: HashSet<String> = self
                .store
                .find_users_case_insensitive(&group[0].1)
                .await?
                .into_iter()
                .map(|user| user.name)
                .collect();
            let kept = group
                .iter()
                .position(|(_, name)| had.contains(name))
                .unwrap_or(0);
            for (index, (_, name)) in group.iter().enumerate() {
                if index != kept {
                    left_out.insert(name.clone());
                }
            }
        }
        Ok(left_out)
    }

    /// Carries `batch`, read from Synapse's database, into this one (homekey's), in one
    /// transaction with its audit record (see [`Carrying`]), leaving out the names of
    /// `case_duplicates` ([`Accounts::case_duplicates_in`]). Adds what it found and did to
    /// `tally`.
    pub async fn carry_from_synapse(
        &self,
        actor: &Actor,
        mut batch: AccountBatch,
        how: Carrying,
        case_duplicates: &HashSet<String>,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        tally.read += batch.users.len() as u64;
        tally.guests += batch.users.iter().filter(|u| u.is_guest).count() as u64;
        tally.case_duplicates.extend(
            batch
                .users
                .iter()
                .filter(|u| case_duplicates.contains(&u.name))
                .map(|u| u.name.clone()),
        );
        batch.retain_users(|u| !u.is_guest && !case_duplicates.contains(&u.name));
        batch.devices.retain(|d| !d.hidden);
        for user in &mut batch.users {
            // Synapse has written an empty hash for "no password" in the past.
            if user.password_hash.as_deref() == Some("") {
                user.password_hash = None;
            }
        }
        let left = canonical_threepids(&mut batch);
        let (Some(first), Some(last)) = (batch.users.first(), batch.last_name()) else {
            return Ok(());
        };
        let record = |action: crate::audit::Action, details| {
            actor.audit_name().map(|name| NewAuditRecord {
                ts_ms: now_ms(),
                actor: name.to_owned(),
                action: action.as_str().to_owned(),
                target: None,
                details,
            })
        };
        let audit = record(
            crate::audit::Action::CarryFromSynapse,
            json!({
                "users": batch.users.len(),
                "first": first.name,
                "last": last,
            }),
        );
        let replacement = record(crate::audit::Action::ReplaceFromSynapse, json!({}));
        let options = CarryOptions {
            dry_run: how.dry_run,
            check_existing: !how.into_empty_database,
            replace_conflicts: how.replace_existing,
            replaced_record: replacement.as_ref(),
        };
        let before = self
            .store
            .carry_account_batch(&batch, now_ms(), audit.as_ref(), options)
            .await?;
        let new = |name: &str| before.is_new(name);
        tally.threepids_left.extend(
            left.into_iter()
                .filter(|(user, _)| new(user))
                .map(|(user, why)| format!("{user}: {why}")),
        );
        tally.threepids_left.extend(
            before
                .threepids_taken
                .iter()
                .map(|(user, threepid)| format!("{user}: {threepid} (another account has it)")),
        );
        tally.threepids += (batch.threepids.iter().filter(|t| new(&t.user_id)).count()
            - before.threepids_taken.len()) as u64;
        for user in batch.users.iter().filter(|u| new(&u.name)) {
            tally.carried += 1;
            if user.appservice_id.is_some() {
                // Its appservice acts for it: it has no password to set.
                tally.appservice_users += 1;
                continue;
            }
            // A deactivated account has none by design: it is not one to set a password for.
            if user.password_hash.is_none() && !user.deactivated {
                tally.without_password += 1;
            }
            if user.erased {
                tally.erased += 1;
            }
        }
        tally.devices += batch.devices.iter().filter(|d| new(&d.user_id)).count() as u64;
        tally.access_tokens += batch
            .access_tokens
            .iter()
            .filter(|t| new(&t.user_id))
            .count() as u64;
        tally.refresh_tokens += batch
            .refresh_tokens
            .iter()
            .filter(|t| new(&t.user_id))
            .count() as u64;
        tally.already_carried += before.carried.len() as u64;
        tally.made_by_homekey += before.made_by_homekey.len() as u64;
        // A name that differs only in case from the one homekey has (carried, or made by it).
        tally
            .case_duplicates
            .extend(before.case_duplicates.iter().cloned());
        let mut replaced: Vec<String> = before.replaced.into_iter().collect();
        replaced.sort();
        tally.replaced.extend(replaced);
        let mut conflicts: Vec<String> = before.conflicts.into_keys().collect();
        conflicts.sort();
        tally.conflicts.extend(conflicts);
        Ok(())
    }

    /// Writes `batch`, read from homekey's database, into this one (Synapse's, stopped): the
    /// password hashes Synapse can read (bcrypt; argon2id ones are cleared and named),
    /// admin, lock, deactivation, and the legacy sessions as homekey has them (OAuth
    /// sessions end, and are named). With `dry_run` the same work is done and rolled back.
    pub async fn restore_into_synapse(
        &self,
        batch: &mut AccountBatch,
        dry_run: bool,
        tally: &mut RestoreTally,
    ) -> Result<(), StoreError> {
        tally
            .oauth_sessions_ended
            .extend(batch.take_out_oauth_tokens());
        let mut hashes: HashMap<&str, Option<&str>> = HashMap::new();
        for user in &batch.users {
            let hash = user.password_hash.as_deref();
            let readable = hash.filter(|h| scheme_of(h) == Some(HashScheme::Bcrypt));
            if hash.is_some() && readable.is_none() {
                tally.argon2_accounts.push(user.name.clone());
            }
            hashes.insert(user.name.as_str(), readable);
        }
        let Restored {
            users,
            access_tokens,
            refresh_tokens,
            without_device,
            unknown_to_synapse,
            erased,
            threepids_added,
            threepids_removed,
        } = self
            .store
            .restore_account_batch(batch, &hashes, dry_run)
            .await?;
        tally.users += users;
        tally.access_tokens += access_tokens;
        tally.refresh_tokens += refresh_tokens;
        tally.without_device.extend(without_device);
        tally.unknown_to_synapse.extend(unknown_to_synapse);
        tally.erased += erased;
        tally.threepids_added += threepids_added;
        tally.threepids_removed += threepids_removed;
        Ok(())
    }

    /// Carries every registration token of `source` (the other database) into this one, in
    /// batches of `batch` tokens, each in one transaction (see the module's comment): into
    /// homekey (`self` homekey's database) a token already there is left as it is; into
    /// Synapse it is given homekey's limits and count. With `dry_run` nothing is written.
    pub async fn carry_registration_tokens_from(
        &self,
        source: &Accounts,
        actor: &Actor,
        batch: i64,
        dry_run: bool,
    ) -> Result<TokensCarried, StoreError> {
        let into_synapse = self.flavour() == crate::store::Flavour::Synapse;
        let mut total = TokensCarried::default();
        let mut after = String::new();
        loop {
            let tokens = source.store.registration_token_batch(&after, batch).await?;
            let Some(last) = tokens.last() else {
                return Ok(total);
            };
            after = last.token.clone();
            // Never the tokens themselves: they admit sign-ups.
            let record = actor.audit_name().map(|name| NewAuditRecord {
                ts_ms: now_ms(),
                actor: name.to_owned(),
                action: crate::audit::Action::CarryFromSynapse.as_str().to_owned(),
                target: None,
                details: json!({"registration_tokens": tokens.len()}),
            });
            let carried = self
                .store
                .carry_registration_tokens(&tokens, into_synapse, dry_run, record.as_ref())
                .await?;
            total.new += carried.new;
            total.already_there += carried.already_there;
        }
    }

    /// How many registration tokens this database has.
    pub async fn count_registration_tokens(&self) -> Result<i64, StoreError> {
        self.store.count_registration_tokens().await
    }

    /// Empties Synapse's copy of the password hashes of every account homekey carried from
    /// it (`synapse_side` is Synapse's database). Returns how many were cleared.
    pub async fn clear_carried_hashes_in(
        &self,
        synapse_side: &Accounts,
    ) -> Result<u64, StoreError> {
        let mut after = String::new();
        let mut cleared = 0;
        loop {
            let names = self.store.carried_user_ids(&after, 5_000).await?;
            let Some(last) = names.last() else {
                return Ok(cleared);
            };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            cleared += synapse_side
                .store
                .clear_synapse_password_hashes(&refs)
                .await?;
            after = last.clone();
        }
    }
}

/// Makes the batch's third-party IDs (from Synapse) what homekey holds: e-mail addresses
/// canonical (an older Synapse kept some as typed), phone numbers as they are, once per
/// account. Those homekey cannot hold (a medium other than `email` and `msisdn`, which
/// Synapse's own APIs never write; an address that is none) are taken out and returned as
/// (the account, the medium and address with why).
fn canonical_threepids(batch: &mut AccountBatch) -> Vec<(String, String)> {
    let mut left = Vec::new();
    let mut seen = HashSet::new();
    batch
        .threepids
        .retain_mut(|t| match Threepid::parse(&t.medium, &t.address) {
            Ok(threepid) => {
                t.address = threepid.address;
                seen.insert((t.user_id.clone(), t.medium.clone(), t.address.clone()))
            }
            Err(err) => {
                left.push((
                    t.user_id.clone(),
                    format!("{} {} ({err})", t.medium, t.address),
                ));
                false
            }
        });
    left
}
