//! Delivering the queued mail (`crate::store::mail_outbox`): `serve`'s loop takes one due mail
//! at a time under a lease (one instance sends it; a dead instance's lease runs out and
//! another takes the mail), sends it (`crate::mail::transport`), and records the outcome: sent,
//! dropped (its recipient is no account's address any more), retried after the next of
//! `email.delivery_retry_delays`, or given up after the last (logged, and shown by `homekey
//! email status`). The body, which may hold a reset link, is never logged and is emptied once
//! the mail is done with.

use std::sync::Arc;
use std::time::Duration;

use super::{AccountError, Accounts, now_ms};
use crate::config::EmailConfig;
use crate::mail::transport::{self, OutgoingMail};
use crate::store::{LeasedMail, MailOutcome, MailStatus, NewMail, StoreError};

/// The longest wait between two looks at the queue (mail queued by another instance is
/// seen this late at worst).
const POLL: Duration = Duration::from_secs(5);
/// How often mail done with is culled, and how long it is kept: sent or dropped, a week;
/// given up, 30 days (for `homekey email status`).
const CULL_EVERY: Duration = Duration::from_secs(3600);
const KEEP_DONE_MS: i64 = 7 * 86_400_000;
const KEEP_GIVEN_UP_MS: i64 = 30 * 86_400_000;
/// The steps of one delivery, each bounded by `smtp_timeout` (resolve, connect, STARTTLS
/// twice over, AUTH, MAIL, RCPT, DATA, the message twice over, QUIT).
const STEPS_PER_DELIVERY: u32 = 11;

/// Wakes the delivery loop of this process when it has queued mail.
#[derive(Default)]
pub struct MailWakeup(tokio::sync::Notify);

impl Accounts {
    /// Queues `mail` on its own (not inside another change) and wakes the delivery.
    pub async fn queue_mail(&self, mail: &NewMail) -> Result<(), AccountError> {
        self.store.queue_mail(mail).await?;
        self.mail_queued();
        Ok(())
    }

    /// Tells this process's delivery that mail was just queued (after the change that queued
    /// it committed), so it goes out at once rather than at the next look at the queue.
    pub fn mail_queued(&self) {
        self.mail_wakeup.0.notify_one();
    }

    /// The mail not sent: waiting, being retried, or given up (`homekey email status`).
    pub async fn unsent_mail(&self) -> Result<Vec<MailStatus>, StoreError> {
        self.store.unsent_mail().await
    }

    /// Makes queued mail `id` due now and wakes the delivery (the console's "Try again
    /// now"; it changes no account, so nothing is audited). `false`: no longer queued.
    pub async fn retry_mail_now(&self, id: i64) -> Result<bool, StoreError> {
        let due = self.store.retry_mail_now(id, now_ms()).await?;
        if due {
            self.mail_queued();
        }
        Ok(due)
    }

    /// `serve`'s delivery of the queued mail, until `stopped`. Nothing without an `email:`
    /// section (the mail waits for one).
    pub async fn run_mail_delivery(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let Some(email) = self.config.email.clone() else {
            return;
        };
        let email = Arc::new(email);
        let holder = format!(
            "{}:{}",
            std::process::id(),
            crate::secrets::random_alphanumeric(12)
        );
        let step = Duration::from_millis(email.smtp_timeout_ms.max(1) as u64);
        let deadline = step * STEPS_PER_DELIVERY;
        // Past the delivery's own deadline (by up to 10 s, for the clocks of instances that
        // differ a little), so that a live instance never loses its lease.
        let margin = (deadline / 2).min(Duration::from_secs(10));
        let lease_ms = (deadline + margin).as_millis() as i64;
        let mut last_cull: Option<tokio::time::Instant> = None;
        loop {
            if *stopped.borrow() {
                return;
            }
            loop {
                let now = now_ms();
                match self
                    .store
                    .lease_due_mail(&holder, now, now + lease_ms)
                    .await
                {
                    Ok(Some(mail)) => self.deliver(&email, &holder, mail, deadline).await,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the mail queue failed");
                        break;
                    }
                }
                if *stopped.borrow() {
                    return;
                }
            }
            if last_cull.is_none_or(|at| at.elapsed() >= CULL_EVERY) {
                last_cull = Some(tokio::time::Instant::now());
                let now = now_ms();
                match self
                    .store
                    .cull_mail(now - KEEP_DONE_MS, now - KEEP_GIVEN_UP_MS)
                    .await
                {
                    Ok(0) => {}
                    Ok(culled) => tracing::debug!(culled, "old mail forgotten"),
                    Err(err) => tracing::warn!(error = %err, "culling old mail failed"),
                }
            }
            let wait = match self.store.next_mail_due_ms().await {
                Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, i64::MAX) as u64),
                _ => POLL,
            }
            .min(POLL);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.mail_wakeup.0.notified() => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Delivers one leased mail and records how it went.
    async fn deliver(
        &self,
        email: &EmailConfig,
        holder: &str,
        mail: LeasedMail,
        deadline: Duration,
    ) {
        let outcome = self.attempt(email, &mail, deadline).await;
        match &outcome {
            MailOutcome::Sent => {
                tracing::info!(mail = mail.id, to = %mail.recipient, "mail sent")
            }
            MailOutcome::Dropped => tracing::info!(
                mail = mail.id,
                "mail dropped: its recipient is no account's address"
            ),
            MailOutcome::RetryAt {
                error,
                next_attempt_ms,
            } => tracing::warn!(
                mail = mail.id,
                to = %mail.recipient,
                attempt = mail.attempts + 1,
                %error,
                retry_in_s = (next_attempt_ms - now_ms()) / 1000,
                "mail not delivered; it will be tried again"
            ),
            MailOutcome::GivenUp { error } => tracing::error!(
                mail = mail.id,
                to = %mail.recipient,
                attempts = mail.attempts + 1,
                %error,
                "mail given up: it could not be delivered (see `homekey email status`)"
            ),
        }
        match self
            .store
            .finish_mail_delivery(mail.id, holder, &outcome, now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                mail = mail.id,
                "the mail's lease ran out before its delivery ended"
            ),
            Err(err) => tracing::warn!(
                mail = mail.id,
                error = %err,
                "recording the mail's delivery failed; it may be sent again"
            ),
        }
    }

    async fn attempt(
        &self,
        email: &EmailConfig,
        mail: &LeasedMail,
        deadline: Duration,
    ) -> MailOutcome {
        if mail.only_if_address_known {
            match self.store.email_address_known(&mail.recipient).await {
                Ok(true) => {}
                Ok(false) => return MailOutcome::Dropped,
                Err(err) => return retry_or_give_up(email, mail, err.to_string(), false),
            }
        }
        let outgoing = OutgoingMail {
            to: &mail.recipient,
            subject: &mail.subject,
            text: &mail.body_text,
            html: &mail.body_html,
            message_id: format!(
                "homekey.{}.{}@{}",
                mail.id, mail.queued_ms, self.config.server_name
            ),
        };
        match tokio::time::timeout(deadline, transport::send(email, &outgoing)).await {
            Ok(Ok(())) => MailOutcome::Sent,
            Ok(Err(err)) => retry_or_give_up(email, mail, err.to_string(), err.permanent),
            Err(_) => retry_or_give_up(
                email,
                mail,
                format!("the delivery took longer than {} s", deadline.as_secs()),
                false,
            ),
        }
    }
}

/// After a failed attempt: the next try after the delay for this attempt, or given up after
/// the last delay (or at once when retrying cannot help).
fn retry_or_give_up(
    email: &EmailConfig,
    mail: &LeasedMail,
    error: String,
    permanent: bool,
) -> MailOutcome {
    let delay = usize::try_from(mail.attempts)
        .ok()
        .and_then(|attempts| email.retry_delays_ms.get(attempts));
    match delay {
        Some(delay) if !permanent => MailOutcome::RetryAt {
            error,
            next_attempt_ms: now_ms() + delay,
        },
        _ => MailOutcome::GivenUp { error },
    }
}
