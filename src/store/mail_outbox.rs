//! The queue of mail homekey sends (`homekey_mail_outbox`, migration 0016). A change that sends
//! mail queues it with [`queue_mail!`] inside its own transaction, so the mail exists exactly
//! when the change is committed; `homekey serve` delivers it (`crate::accounts::mail_delivery`):
//! it takes one due mail at a time under a lease, so that of several instances on one database
//! one sends it, and an instance that dies loses the lease when it runs out. A mail's body may
//! hold a secret (a reset link): it is emptied once the mail is sent, dropped or given up.

use super::{Store, StoreError, with_pool};

/// A mail to queue.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    /// The recipient's address (canonical, as `user_threepids` keeps it).
    pub to: String,
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// Send only if `to` is still an address of an account when the mail is delivered; else
    /// drop it without a word. A reset asked for an address no account has takes the very
    /// path of one asked for a known address, up to here.
    pub only_if_address_known: bool,
}

/// The body may hold a reset link: never shown.
impl std::fmt::Debug for NewMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("only_if_address_known", &self.only_if_address_known)
            .finish_non_exhaustive()
    }
}

/// Queues `$mail` (`&NewMail`) at `$now_ms` inside the caller's write transaction `$tx`
/// (`&mut Transaction`): it is sent once the transaction commits, and never if it does not.
macro_rules! queue_mail {
    ($tx:expr, $mail:expr, $now_ms:expr) => {{
        let tx = $tx;
        let mail: &$crate::store::NewMail = $mail;
        let now_ms: i64 = $now_ms;
        sqlx::query(
            "INSERT INTO homekey_mail_outbox (recipient, subject, body_text, body_html, \
             only_if_address_known, queued_ms, state, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $6)",
        )
        .bind(&mail.to)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(mail.only_if_address_known)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }};
}
// For the store operations that send mail (a reset request's), in their own modules.
pub(crate) use queue_mail;

/// A mail taken for delivery, with its body.
#[derive(Clone, sqlx::FromRow)]
pub struct LeasedMail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub only_if_address_known: bool,
    pub queued_ms: i64,
    /// Attempts before this one.
    pub attempts: i32,
}

impl std::fmt::Debug for LeasedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedMail")
            .field("id", &self.id)
            .field("recipient", &self.recipient)
            .field("subject", &self.subject)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A queued or given-up mail as `homekey email status` shows it: no body.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailStatus {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    /// `queued` or `given_up`.
    pub state: String,
    pub attempts: i32,
    pub queued_ms: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub done_ms: Option<i64>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    /// The SMTP server took it.
    Sent,
    /// Not sent: its recipient is no account's address (any more).
    Dropped,
    /// Failed; tried again at this time.
    RetryAt { error: String, next_attempt_ms: i64 },
    /// Failed for the last time.
    GivenUp { error: String },
}

impl Store {
    /// Queues `mail` on its own (outside another change's transaction).
    pub async fn queue_mail(&self, mail: &NewMail) -> Result<(), StoreError> {
        let now_ms = crate::accounts::now_ms();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            queue_mail!(&mut tx, mail, now_ms);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Takes the mail due longest, if one is due at `now_ms` and no live lease holds it,
    /// leased to `holder` until `lease_until_ms`. Two instances asking at once never both get
    /// it: the update re-checks the lease on the row it changes.
    pub async fn lease_due_mail(
        &self,
        holder: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<LeasedMail>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE homekey_mail_outbox SET lease_holder = $1, lease_until_ms = $3 \
                 WHERE id = (SELECT id FROM homekey_mail_outbox WHERE state = 'queued' \
                     AND next_attempt_ms <= $2 AND lease_until_ms < $2 \
                     ORDER BY next_attempt_ms, id LIMIT 1) \
                 AND state = 'queued' AND lease_until_ms < $2 \
                 RETURNING id, recipient, subject, body_text, body_html, \
                 only_if_address_known, queued_ms, attempts",
            )
            .bind(holder)
            .bind(now_ms)
            .bind(lease_until_ms)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// When the next queued mail is due (`None`: nothing is queued).
    pub async fn next_mail_due_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(CASE WHEN lease_until_ms > next_attempt_ms THEN lease_until_ms \
                 ELSE next_attempt_ms END) FROM homekey_mail_outbox WHERE state = 'queued'",
            )
            .fetch_one(pool)
            .await?
        }))
    }

    /// Whether `address` is an e-mail address of an account.
    pub async fn email_address_known(&self, address: &str) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM user_threepids WHERE medium = 'email' AND address = $1",
            )
            .bind(address)
            .fetch_one(pool)
            .await?
                > 0
        }))
    }

    /// Records how the delivery of mail `id` by `holder` ended, and gives the lease back.
    /// `false` if `holder` had lost the lease meanwhile (nothing is changed then).
    pub async fn finish_mail_delivery(
        &self,
        id: i64,
        holder: &str,
        outcome: &MailOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        // Once sent, dropped or given up, the body (which may hold a link) goes.
        let (sql, state, next_attempt_ms, error) = match outcome {
            MailOutcome::RetryAt {
                error,
                next_attempt_ms,
            } => (
                "UPDATE homekey_mail_outbox SET attempts = attempts + $6, next_attempt_ms = $3, \
                 last_error = $4, lease_holder = NULL, lease_until_ms = 0, state = $5 \
                 WHERE id = $1 AND lease_holder = $2",
                "queued",
                *next_attempt_ms,
                Some(error.as_str()),
            ),
            done => (
                "UPDATE homekey_mail_outbox SET attempts = attempts + $6, next_attempt_ms = $3, \
                 last_error = COALESCE($4, last_error), lease_holder = NULL, lease_until_ms = 0, \
                 state = $5, done_ms = $3, body_text = NULL, body_html = NULL \
                 WHERE id = $1 AND lease_holder = $2",
                match done {
                    MailOutcome::Sent => "sent",
                    MailOutcome::Dropped => "dropped",
                    _ => "given_up",
                },
                now_ms,
                match done {
                    MailOutcome::GivenUp { error } => Some(error.as_str()),
                    _ => None,
                },
            ),
        };
        let attempted: i32 = if matches!(outcome, MailOutcome::Dropped) {
            0
        } else {
            1
        };
        Ok(with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(holder)
                .bind(next_attempt_ms)
                .bind(error)
                .bind(state)
                .bind(attempted)
                .execute(pool)
                .await?
                .rows_affected()
                > 0
        }))
    }

    /// Makes queued mail `id` due at `now_ms` (an admin's "try again now"). `false` if it is
    /// no longer queued: sent, dropped or given up meanwhile.
    pub async fn retry_mail_now(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE homekey_mail_outbox SET next_attempt_ms = $2 \
                 WHERE id = $1 AND state = 'queued'",
            )
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// The mail not sent: queued (waiting or retrying) and given up, the oldest first.
    pub async fn unsent_mail(&self) -> Result<Vec<MailStatus>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, recipient, subject, state, attempts, queued_ms, next_attempt_ms, \
                 last_error, done_ms FROM homekey_mail_outbox \
                 WHERE state IN ('queued', 'given_up') ORDER BY queued_ms, id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Forgets mail sent or dropped before `done_before_ms`, and mail given up before
    /// `given_up_before_ms`; returns how many.
    pub async fn cull_mail(
        &self,
        done_before_ms: i64,
        given_up_before_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM homekey_mail_outbox WHERE \
                 (state IN ('sent', 'dropped') AND done_ms < $1) \
                 OR (state = 'given_up' AND done_ms < $2)",
            )
            .bind(done_before_ms)
            .bind(given_up_before_ms)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }
}
