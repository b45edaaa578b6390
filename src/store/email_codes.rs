//! The code mailed to an address a user adds on the account page (`homekey_email_codes`,
//! migration 0020): one address waiting a user, its code kept as a digest
//! ([`super::token_forms::digest`], the callers hand it in digested), with how many wrong
//! tries it still takes. Synapse's `threepid_validation_*` tables keep a link's token with no
//! count of tries, which a short typed code needs.
//!
//! The sign-up page's code waits here too (migration 0021): its key is not a user ID but
//! `sign-up:` and the page session's digest, and the form it proves waits with it (`sign_up`,
//! JSON), given back with the right code.

use super::transaction::for_update;
use super::{BeginWrite, NewMail, Store, StoreError, with_pool};

/// What a code typed on the page did.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeChecked {
    /// The right code, in time: spent; the address it was sent to, and the sign-up form kept
    /// with it (the sign-up page's codes only).
    Right {
        address: String,
        sign_up: Option<String>,
    },
    /// A wrong code: this many tries are left (0: the code is gone).
    Wrong { tries_left: i32 },
    /// No code is waiting (never sent, used up, or replaced), or it expired (then gone).
    NoneWaiting,
}

/// A code to keep: whose, for which address (canonical), until when, for how many tries.
pub struct NewEmailCode<'a> {
    pub user_id: &'a str,
    pub address: &'a str,
    pub code_digest: &'a str,
    pub expires_ms: i64,
    pub tries: i32,
    /// The sign-up page's form, waiting for the code (JSON).
    pub sign_up: Option<&'a str>,
}

impl Store {
    /// Keeps a user's new code (replacing any earlier one) and queues its `mail`, in one
    /// transaction.
    pub async fn keep_email_code(
        &self,
        new: &NewEmailCode<'_>,
        mail: &NewMail,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO homekey_email_codes \
                 (user_id, address, code, expires_ms, tries_left, sign_up) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (user_id) DO UPDATE SET address = excluded.address, \
                 code = excluded.code, expires_ms = excluded.expires_ms, \
                 tries_left = excluded.tries_left, sign_up = excluded.sign_up",
            )
            .bind(new.user_id)
            .bind(new.address)
            .bind(new.code_digest)
            .bind(new.expires_ms)
            .bind(new.tries)
            .bind(new.sign_up)
            .execute(&mut *tx)
            .await?;
            super::mail_outbox::queue_mail!(&mut tx, mail, now_ms);
            tx.commit().await?;
            Ok(())
        })
    }

    /// The address `user_id` was sent a code for, if that code still works at `now_ms`.
    pub async fn waiting_email_code(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT address FROM homekey_email_codes WHERE user_id = $1 AND expires_ms > $2",
            )
            .bind(user_id)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Checks a typed code against `user_id`'s waiting one, in one transaction: the right one
    /// is spent, a wrong one costs a try (the last try takes the code), an expired one goes.
    pub async fn check_email_code(
        &self,
        user_id: &str,
        code_digest: &str,
        now_ms: i64,
    ) -> Result<CodeChecked, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let sql = format!(
                "SELECT address, code, expires_ms, tries_left, sign_up FROM homekey_email_codes \
                 WHERE user_id = $1{}",
                for_update(&tx)
            );
            let row: Option<(String, String, i64, i32, Option<String>)> = sqlx::query_as(&sql)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((address, kept, expires_ms, tries_left, sign_up)) = row else {
                return Ok(CodeChecked::NoneWaiting);
            };
            let delete = "DELETE FROM homekey_email_codes WHERE user_id = $1";
            let checked = if expires_ms <= now_ms {
                sqlx::query(delete).bind(user_id).execute(&mut *tx).await?;
                CodeChecked::NoneWaiting
            } else if kept == code_digest {
                sqlx::query(delete).bind(user_id).execute(&mut *tx).await?;
                CodeChecked::Right { address, sign_up }
            } else if tries_left <= 1 {
                sqlx::query(delete).bind(user_id).execute(&mut *tx).await?;
                CodeChecked::Wrong { tries_left: 0 }
            } else {
                sqlx::query(
                    "UPDATE homekey_email_codes SET tries_left = tries_left - 1 WHERE user_id = $1",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                CodeChecked::Wrong {
                    tries_left: tries_left - 1,
                }
            };
            tx.commit().await?;
            Ok(checked)
        })
    }

    /// Deletes the codes expired before `now_ms` (with the reset links' cull).
    pub async fn cull_email_codes(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM homekey_email_codes WHERE expires_ms < $1")
                .bind(now_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
