//! homekey's own password reset links (`homekey_password_reset_links`, migration 0019): the
//! links "Forgot password?" mails and those an operator sends. A link is kept as its token's
//! digest (`token_forms::digest`), made in one transaction with its mail (`queue_mail!`), and
//! spent in one transaction with the new password: it works once.

use secrecy::{ExposeSecret, SecretString};

use super::audit::commit_audited;
use super::mail_outbox::queue_mail;
use super::synapse_queue::owe_synapse;
use super::transaction::{delete_sessions, end_page_sessions, end_ui_auth_sessions};
use super::{BeginWrite, Logout, NewAuditRecord, NewMail, Store, StoreError, with_pool};

/// A link to keep, with the mail that carries it.
pub struct NewResetLink<'a> {
    pub token_digest: String,
    /// The canonical address the mail goes to.
    pub address: String,
    /// A path on homekey's pages, checked by the caller.
    pub return_to: Option<&'a str>,
    /// The operator's "sign out everywhere"; `None`: the user chooses.
    pub logout_devices: Option<bool>,
    pub expires_ms: i64,
    pub mail: NewMail,
}

/// A link that can still set a password.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResetLink {
    pub user_id: String,
    pub return_to: Option<String>,
    pub logout_devices: Option<bool>,
}

/// A link is usable while unused, unexpired, and its account still has the address it was
/// mailed to (`$1` the digest, `$2` now).
const USABLE: &str = "l.token_digest = $1 AND l.used_ms IS NULL AND l.expires_ms > $2 \
     AND EXISTS (SELECT 1 FROM user_threepids t WHERE t.user_id = l.user_id \
     AND t.medium = 'email' AND t.address = l.address)";

impl Store {
    /// Keeps `links` and queues their mail in one transaction (with `audit`, if any). Each
    /// link belongs to the account that has its address now, or to none: an address no
    /// account has runs the same statements, and its mail is dropped at delivery
    /// (`only_if_address_known`). Expired links are culled on the way.
    pub async fn keep_reset_links(
        &self,
        links: &[NewResetLink<'_>],
        now_ms: i64,
        audit: Option<&NewAuditRecord>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM homekey_password_reset_links WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            for link in links {
                let user_id: Option<String> = sqlx::query_scalar(
                    "SELECT user_id FROM user_threepids WHERE medium = 'email' AND address = $1",
                )
                .bind(&link.address)
                .fetch_optional(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO homekey_password_reset_links (token_digest, address, user_id, \
                     return_to, logout_devices, created_ms, expires_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&link.token_digest)
                .bind(&link.address)
                .bind(user_id)
                .bind(link.return_to)
                .bind(link.logout_devices)
                .bind(now_ms)
                .bind(link.expires_ms)
                .execute(&mut *tx)
                .await?;
                queue_mail!(&mut tx, &link.mail, now_ms);
            }
            commit_audited!(tx, self, audit);
            Ok(())
        })
    }

    /// The link whose token has `token_digest`, if it can still set a password.
    pub async fn usable_reset_link(
        &self,
        token_digest: &str,
        now_ms: i64,
    ) -> Result<Option<ResetLink>, StoreError> {
        let sql = format!(
            "SELECT l.user_id, l.return_to, l.logout_devices \
             FROM homekey_password_reset_links l WHERE {USABLE}"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(token_digest)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Spends the link and sets `user_id`'s password in one transaction: the new hash, the
    /// logout asked for, the user's interactive-auth sessions and page sign-ins ended (as
    /// every reset ends them: a proof made with the old password is worth nothing), every
    /// other unused link of the user spent too, and the audit record. `false` (nothing
    /// changed): the link was used, expired, or its address left the account meanwhile.
    pub async fn complete_password_reset(
        &self,
        token_digest: &str,
        user_id: &str,
        hash: &SecretString,
        logout: &Logout,
        now_ms: i64,
        audit: Option<&NewAuditRecord>,
    ) -> Result<bool, StoreError> {
        let spend = format!(
            "UPDATE homekey_password_reset_links SET used_ms = $2 WHERE token_digest IN \
             (SELECT l.token_digest FROM homekey_password_reset_links l WHERE {USABLE} \
             AND l.user_id = $3)"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let spent = sqlx::query(&spend)
                .bind(token_digest)
                .bind(now_ms)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if spent == 0 {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE homekey_password_reset_links SET used_ms = $2 \
                 WHERE user_id = $1 AND used_ms IS NULL",
            )
            .bind(user_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            let updated = sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
                .bind(user_id)
                .bind(hash.expose_secret())
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::UserNotFound(user_id.to_owned()));
            }
            delete_sessions!(&mut tx, self, user_id, logout);
            end_ui_auth_sessions!(&mut tx, self, user_id);
            end_page_sessions!(&mut tx, self, user_id, None);
            if *logout != Logout::Keep {
                owe_synapse!(&mut tx, self, user_id);
            }
            commit_audited!(tx, self, audit);
            Ok(true)
        })
    }
}
