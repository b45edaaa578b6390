//! Accounts' third-party IDs (Synapse's `user_threepids`, migration 0013 on homekey's
//! database): read here, written inside the transactions of `accounts.rs` by
//! [`replace_threepids!`] and [`Store::change_threepid`].

use super::audit::commit_audited;
use super::{BeginWrite, NewAuditRecord, Store, StoreError, with_pool};
use crate::threepid::{Medium, Threepid};

/// A third-party ID as an account has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountThreepid {
    pub threepid: Threepid,
    /// When it was added and when last shown to be the user's (ms since the epoch).
    pub added_at: i64,
    pub validated_at: i64,
}

/// Makes `$threepids` (`&[Threepid]`) the third-party IDs of `$user_id` inside the caller's
/// transaction: the others removed, the new ones added at `$now` (counted as validated then:
/// an admin or the operator vouches for them, as Synapse's Admin API does). One another
/// account has is [`StoreError::ThreepidInUse`], and the caller's transaction is dropped.
macro_rules! replace_threepids {
    ($tx:expr, $user_id:expr, $threepids:expr, $now:expr) => {{
        let tx = $tx;
        let user_id: &str = $user_id;
        let wanted: &[$crate::threepid::Threepid] = $threepids;
        let had: Vec<(String, String)> =
            sqlx::query_as("SELECT medium, address FROM user_threepids WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&mut **tx)
                .await?;
        for (medium, address) in &had {
            let kept = wanted
                .iter()
                .any(|t| t.medium.as_str() == medium && &t.address == address);
            if !kept {
                sqlx::query(
                    "DELETE FROM user_threepids WHERE user_id = $1 AND medium = $2 AND address = $3",
                )
                .bind(user_id)
                .bind(medium)
                .bind(address)
                .execute(&mut **tx)
                .await?;
            }
        }
        for threepid in wanted {
            let medium = threepid.medium.as_str();
            if had
                .iter()
                .any(|(m, a)| m == medium && a == &threepid.address)
            {
                continue;
            }
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT user_id FROM user_threepids WHERE medium = $1 AND address = $2",
            )
            .bind(medium)
            .bind(&threepid.address)
            .fetch_optional(&mut **tx)
            .await?;
            if holder.is_some() {
                return Err($crate::store::StoreError::ThreepidInUse(threepid.to_string()));
            }
            let inserted = sqlx::query(
                "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(user_id)
            .bind(medium)
            .bind(&threepid.address)
            .bind($now)
            .execute(&mut **tx)
            .await;
            match inserted {
                // Another transaction added it since the check (PostgreSQL lets both check).
                Err(err) if $crate::store::is_unique_violation(&err) => {
                    return Err($crate::store::StoreError::ThreepidInUse(threepid.to_string()));
                }
                other => other?,
            };
        }
    }};
}
pub(super) use replace_threepids;

impl Store {
    /// `user_id`'s third-party IDs, in the order they were added.
    pub async fn user_threepids(&self, user_id: &str) -> Result<Vec<AccountThreepid>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT medium, address, added_at, validated_at FROM user_threepids \
                 WHERE user_id = $1 ORDER BY added_at, medium, address",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(medium, address, added_at, validated_at)| {
                Some(AccountThreepid {
                    threepid: Threepid {
                        medium: Medium::parse(&medium)?,
                        address,
                    },
                    added_at,
                    validated_at,
                })
            })
            .collect())
    }

    /// The account that has `threepid`, if one does.
    pub async fn user_by_threepid(
        &self,
        threepid: &Threepid,
    ) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT user_id FROM user_threepids WHERE medium = $1 AND address = $2",
            )
            .bind(threepid.medium.as_str())
            .bind(&threepid.address)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Adds `threepid` to `user_id`'s (`add`) or removes it, in one transaction with the
    /// audit record; returns whether anything changed. Beside Synapse, Synapse is owed the
    /// change.
    pub async fn change_threepid(
        &self,
        user_id: &str,
        threepid: &Threepid,
        add: bool,
        now_ms: i64,
        audit: Option<&NewAuditRecord>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                return Err(StoreError::UserNotFound(user_id.to_owned()));
            }
            let mut wanted: Vec<Threepid> = {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT medium, address FROM user_threepids WHERE user_id = $1")
                        .bind(user_id)
                        .fetch_all(&mut *tx)
                        .await?;
                rows.into_iter()
                    .filter_map(|(medium, address)| {
                        Some(Threepid {
                            medium: Medium::parse(&medium)?,
                            address,
                        })
                    })
                    .collect()
            };
            let had = wanted.contains(threepid);
            if had == add {
                return Ok(false);
            }
            if add {
                wanted.push(threepid.clone());
            } else {
                wanted.retain(|t| t != threepid);
            }
            replace_threepids!(&mut tx, user_id, &wanted, now_ms);
            super::synapse_queue::owe_synapse!(&mut tx, self, user_id);
            commit_audited!(tx, self, audit);
            Ok(true)
        })
    }
}
