//! Beside Synapse: keeping Synapse's users and devices in line with homekey's.
//!
//! A change that Synapse must follow (a logout, a reset with logout, a deactivation, a lock,
//! a new account, …) commits with a row "Synapse is owed user X" in the same transaction
//! (`store::synapse_queue`). Right after the commit the operation delivers it, for about
//! [`DELIVER_AT_ONCE`]; what is not delivered by then is retried by `serve`'s delivery loop
//! with backoff (the CLI leaves it to the next `serve`). What to send is computed when it is
//! delivered, from homekey's state at that moment compared with the mirror of what homekey
//! made Synapse have, under a per-user lease held in the database: two processes never
//! deliver for one user at once, and a login's new device is announced under the same lease,
//! so a delivery computed before that login can never delete its device.
//!
//! homekey only deletes in Synapse what it made exist there, and never re-creates what
//! Synapse deleted on its own (`homekey synapse reconcile` does, when an operator asks).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::sessions::{LoginError, localpart_of};
use super::{AccountError, Accounts, Requester, now_ms};
use crate::audit::Action;
use crate::secrets::random_alphanumeric;
use crate::store::{MirroredUser, NewSession, OwedWork, StoreError, User};
use crate::synapse::client::{LocalpartRefusal, Provisioned, SynapseCallError, SynapseClient};

/// How long an operation waits for its own change to reach Synapse before it answers.
pub const DELIVER_AT_ONCE: Duration = Duration::from_secs(2);
/// How long a login waits for another deliverer of the same user to finish.
const LOGIN_LEASE_WAIT: Duration = Duration::from_secs(10);
/// How long a lease lasts if its holder dies without giving it back and no heartbeat tells
/// that it did (a command's lease). Longer than any one delivery: each call to Synapse times
/// out after 10 s, and a delivery stops starting new calls after [`DELIVERY_BUDGET`].
const LEASE_MS: i64 = 60_000;
/// How often a `serve` process says it is alive, and after how long without a word it is
/// taken for dead, its leases with it: well within a login's [`LOGIN_LEASE_WAIT`], so that a
/// login on another instance right after a crash still gets the lease.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
const HEARTBEAT_STALE_MS: i64 = 8_000;
/// An instance silent for this long is forgotten (its row removed when another starts).
const FORGET_INSTANCE_MS: i64 = 7 * 24 * 3_600_000;
const DELIVERY_BUDGET: Duration = Duration::from_secs(30);
/// Retries wait 2 s, 4 s, 8 s, … and at most this long.
const MAX_BACKOFF_MS: i64 = 300_000;
/// How often `serve`'s delivery loop looks for work that has come due.
const LOOP_INTERVAL: Duration = Duration::from_millis(500);

/// Why work owed to Synapse was not delivered. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryFailure {
    #[error(transparent)]
    Synapse(#[from] SynapseCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process held the user's lease for longer than this one could wait.
    #[error("another homekey process is delivering for {0}")]
    Busy(String),
    /// Synapse already had a user homekey has just created: not taken over.
    #[error(
        "Synapse already had {0} when homekey created it; homekey's new account is locked so that it cannot take over Synapse's"
    )]
    Conflict(String),
}

impl From<DeliveryFailure> for LoginError {
    fn from(err: DeliveryFailure) -> LoginError {
        match err {
            DeliveryFailure::Store(err) => LoginError::Store(err),
            DeliveryFailure::Synapse(err) => LoginError::Synapse(err),
            other => LoginError::NotAnnounced(other.to_string()),
        }
    }
}

impl From<DeliveryFailure> for AccountError {
    fn from(err: DeliveryFailure) -> AccountError {
        match err {
            DeliveryFailure::Store(err) => AccountError::from(err),
            DeliveryFailure::Synapse(err) => AccountError::Synapse(err),
            DeliveryFailure::Busy(user) => AccountError::SynapseBusy(user),
            DeliveryFailure::Conflict(user) => AccountError::SynapseConflict(user),
        }
    }
}

/// What happened to the work a change owed, as an operator is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Not beside Synapse, or nothing was owed.
    NothingOwed,
    Delivered,
    /// Still owed: `serve` delivers it; the reason it was not delivered now.
    StillOwed(String),
}

/// A lease on delivering for one user, given back by [`Accounts::release`], or when dropped
/// (a delivery cut short: its operation timed out, its client went away).
struct Lease {
    user_id: String,
    holder: String,
    store: crate::store::Store,
    released: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // It expires on its own.
        };
        let (store, user_id, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.user_id),
            std::mem::take(&mut self.holder),
        );
        runtime.spawn(async move {
            if let Err(err) = store.release_synapse_lease(&user_id, &holder).await {
                tracing::warn!(error = %err, "a delivery lease was not given back");
            }
        });
    }
}

/// A `serve` process beside Synapse, as the other processes on the database know it: the
/// instance it serves as, a name that outlives restarts (the host and the addresses it
/// listens on: two processes cannot listen on one address of one host), and the process
/// itself, a name of its own. A process that takes over an instance's name takes over the
/// leases of the process before it at once: that one is gone (killed, or restarted).
#[derive(Debug)]
pub(crate) struct ServingInstance {
    name: String,
    process: String,
}

/// How much of Synapse's state a delivery checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Against the mirror: what homekey changed since it last told Synapse.
    Changes,
    /// Against Synapse itself, after a restore (`homekey synapse reconcile`): the devices
    /// made exactly homekey's, re-creating what Synapse lost.
    Everything,
}

impl Accounts {
    /// Whether homekey serves a Synapse (the config's `synapse:` section).
    pub fn beside_synapse(&self) -> bool {
        self.synapse.is_some()
    }

    /// Beside Synapse, lets the requester replace their cross-signing keys without
    /// user-interactive auth for the next ten minutes (MSC4312): Synapse cannot ask a user of
    /// delegated auth for a password, so its `/keys/device_signing/upload` waits until the
    /// authentication service allows it. Only the requester's own account, once they have
    /// re-authenticated (the account page asks for the password).
    pub async fn allow_cross_signing_reset(
        &self,
        requester: &Requester,
    ) -> Result<(), AccountError> {
        let synapse = self
            .synapse
            .as_ref()
            .ok_or(AccountError::NotBesideSynapse)?;
        synapse
            .allow_cross_signing_reset(&localpart_of(&requester.user.name))
            .await?;
        tracing::info!(user = %requester.user.name, "cross-signing reset allowed on Synapse for 10 minutes");
        Ok(())
    }

    /// Refuses, beside Synapse, a change to what Synapse keeps and homekey cannot tell it
    /// (`/_synapse/mas` carries no user type, shadow-ban or suspension), rather than make it
    /// in homekey alone.
    pub(super) fn refuse_beside_synapse(&self, field: &'static str) -> Result<(), AccountError> {
        if self.synapse.is_some() {
            return Err(AccountError::NotCarriedToSynapse(field));
        }
        Ok(())
    }

    /// `user` with the display name and avatar Synapse has, beside Synapse, where Synapse
    /// owns profiles (users change them through Synapse's `/profile`). If Synapse cannot be
    /// asked, homekey's own are kept.
    pub async fn with_synapse_profile(&self, mut user: User) -> User {
        let Some(synapse) = &self.synapse else {
            return user;
        };
        match synapse.query_user(&localpart_of(&user.name)).await {
            Ok(Some(found)) => {
                user.displayname = found.display_name;
                user.avatar_url = found.avatar_url;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, user = %user.name, "the profile was not read from Synapse; homekey's is shown");
            }
        }
        user
    }

    /// Beside Synapse, a profile change made where Synapse keeps profiles, before homekey
    /// records it: if Synapse does not take it, nothing changes.
    pub(super) async fn change_profile_in_synapse(
        &self,
        user_id: &str,
        displayname: Option<Option<&str>>,
        avatar_url: Option<Option<&str>>,
    ) -> Result<(), AccountError> {
        let Some(synapse) = &self.synapse else {
            return Ok(());
        };
        if displayname.is_none() && avatar_url.is_none() {
            return Ok(());
        }
        synapse
            .update_profile(&localpart_of(user_id), displayname, avatar_url)
            .await?;
        Ok(())
    }

    /// Before an account is created beside Synapse: Synapse must be willing to register its
    /// localpart (its rules, application services' namespaces, the users it has).
    pub(super) async fn check_name_with_synapse(&self, user_id: &str) -> Result<(), AccountError> {
        let Some(synapse) = &self.synapse else {
            return Ok(());
        };
        match synapse
            .is_localpart_available(&localpart_of(user_id))
            .await?
        {
            Ok(()) => Ok(()),
            Err(LocalpartRefusal::InUse) => Err(AccountError::UserExists(user_id.to_owned())),
            Err(refusal) => Err(AccountError::SynapseRefusesName {
                user: user_id.to_owned(),
                errcode: match refusal {
                    LocalpartRefusal::Exclusive => "M_EXCLUSIVE".to_owned(),
                    LocalpartRefusal::Invalid(errcode) => errcode,
                    LocalpartRefusal::InUse => unreachable!("matched above"),
                },
            }),
        }
    }

    /// Right after an account was created beside Synapse: makes it exist in Synapse. A user
    /// Synapse already had (a name taken between the check and the commit) is a conflict:
    /// homekey's new account is locked rather than given Synapse's, and the alarm stays in
    /// `homekey synapse status`. If Synapse cannot be reached, the work stays owed.
    pub(super) async fn provision_new_account(
        &self,
        user: &User,
    ) -> Result<Delivery, AccountError> {
        let Some(synapse) = &self.synapse else {
            return Ok(Delivery::NothingOwed);
        };
        let Some(lease) = self.lease(&user.name, DELIVER_AT_ONCE).await? else {
            return Ok(Delivery::StillOwed(
                DeliveryFailure::Busy(user.name.clone()).to_string(),
            ));
        };
        let result = self.provision_new(synapse, user).await;
        self.release(lease).await;
        match result {
            Ok(()) => Ok(Delivery::Delivered),
            Err(DeliveryFailure::Conflict(name)) => Err(AccountError::SynapseConflict(name)),
            Err(err) => Ok(Delivery::StillOwed(err.to_string())),
        }
    }

    async fn provision_new(
        &self,
        synapse: &SynapseClient,
        user: &User,
    ) -> Result<(), DeliveryFailure> {
        let Some(owed) = self.store.owed_for(&user.name).await? else {
            return Ok(());
        };
        let localpart = localpart_of(&user.name);
        // Nothing but the name first: a user Synapse already had must not be changed.
        let provisioned = synapse
            .provision_user(&localpart, None, Some(user.locked))
            .await;
        match provisioned {
            Ok(Provisioned::Created) => {}
            Ok(Provisioned::AlreadyExisted) => {
                let conflict = DeliveryFailure::Conflict(user.name.clone());
                tracing::error!(user = %user.name, "{conflict}");
                let record = crate::audit::record(
                    "homekey",
                    Action::Lock,
                    &user.name,
                    serde_json::json!({"reason": "Synapse already had this user"}),
                );
                self.store.lock_after_conflict(&user.name, &record).await?;
                self.store
                    .postpone_owed(&user.name, i64::MAX, &conflict.to_string(), true)
                    .await?;
                return Err(conflict);
            }
            Err(err) => {
                self.postpone(&owed, &err.clone().into()).await;
                return Err(err.into());
            }
        }
        self.store
            .mirror_synapse_user(
                &user.name,
                MirroredUser {
                    deactivated: false,
                    locked: Some(user.locked),
                },
            )
            .await?;
        // Synapse names a new user by its localpart; homekey's name and avatar follow.
        let displayname = match user.displayname.as_deref() {
            Some(name) if name == localpart => None,
            other => Some(other),
        };
        let avatar_url = user.avatar_url.as_deref().map(Some);
        if (displayname.is_some() || avatar_url.is_some())
            && let Err(err) = synapse
                .update_profile(&localpart, displayname, avatar_url)
                .await
        {
            tracing::warn!(error = %err, user = %user.name, "the profile did not reach Synapse");
        }
        // The addresses it was made with (a sign-up's proved one, an admin's list): Synapse
        // mails and finds users by them. Left owed if they do not get there.
        if let Err(err) = self
            .bring_emails_in_line(synapse, &user.name, &localpart)
            .await
        {
            self.postpone(&owed, &err).await;
            return Err(err);
        }
        self.settle(&owed).await
    }

    /// After a change that owes Synapse work committed: delivers it now, waiting at most
    /// [`DELIVER_AT_ONCE`]; what is left is retried by `serve` (the failure is logged by
    /// [`Accounts::postpone`], or here when the wait ran out).
    pub(super) async fn deliver_after_change(&self, user_id: &str) {
        if self.synapse.is_none() {
            return;
        }
        let delivery = self.deliver_owed(user_id, DELIVER_AT_ONCE);
        match tokio::time::timeout(DELIVER_AT_ONCE, delivery).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(user = %user_id, error = %err, "work owed to Synapse is not delivered yet; it is retried");
            }
            Err(_) => {
                tracing::warn!(user = %user_id, "Synapse did not answer within {} s; the work owed to it is retried", DELIVER_AT_ONCE.as_secs());
            }
        }
    }

    /// Delivers what is owed for `user_id`, if anything, waiting up to `wait` for its lease.
    pub async fn deliver_owed(
        &self,
        user_id: &str,
        wait: Duration,
    ) -> Result<Delivery, DeliveryFailure> {
        let Some(synapse) = &self.synapse else {
            return Ok(Delivery::NothingOwed);
        };
        let Some(lease) = self.lease(user_id, wait).await? else {
            return Err(DeliveryFailure::Busy(user_id.to_owned()));
        };
        let result = self.deliver_leased(synapse, user_id, Depth::Changes).await;
        self.release(lease).await;
        result
    }

    /// With the user's lease held: brings Synapse in line and settles the work, or records
    /// why not and when to try again.
    async fn deliver_leased(
        &self,
        synapse: &SynapseClient,
        user_id: &str,
        depth: Depth,
    ) -> Result<Delivery, DeliveryFailure> {
        let Some(owed) = self.store.owed_for(user_id).await? else {
            return Ok(Delivery::NothingOwed);
        };
        match self.bring_in_line(synapse, user_id, depth).await {
            Ok(()) => {
                self.settle(&owed).await?;
                Ok(Delivery::Delivered)
            }
            Err(err) => {
                self.postpone(&owed, &err).await;
                Ok(Delivery::StillOwed(err.to_string()))
            }
        }
    }

    /// Removes settled work; if a change owed more meanwhile, the row stays, due at once.
    async fn settle(&self, owed: &OwedWork) -> Result<(), DeliveryFailure> {
        if !self.store.settle_owed(&owed.user_id, owed.changes).await? {
            tracing::debug!(user = %owed.user_id, "more was owed to Synapse while delivering");
        }
        Ok(())
    }

    /// Records a failed delivery and when to try again; a refusal that retrying alone will
    /// not mend (403, 404) is an alarm.
    async fn postpone(&self, owed: &OwedWork, err: &DeliveryFailure) {
        let alarm = matches!(err, DeliveryFailure::Synapse(err) if err.is_alarm());
        if alarm {
            tracing::error!(user = %owed.user_id, error = %err, "Synapse refused work owed to it; check the shared secret and `homekey synapse status`");
        } else {
            tracing::warn!(user = %owed.user_id, error = %err, "work owed to Synapse is not delivered yet; it is retried");
        }
        let backoff = 2_000_i64
            .saturating_mul(1 << owed.attempts.clamp(0, 20))
            .min(MAX_BACKOFF_MS);
        if let Err(store) = self
            .store
            .postpone_owed(&owed.user_id, now_ms() + backoff, &err.to_string(), alarm)
            .await
        {
            tracing::error!(error = %store, "the failed delivery was not recorded");
        }
    }

    /// Gives Synapse the user's e-mail addresses when they are not what homekey last gave
    /// it. Never removes addresses homekey never gave: an account found in Synapse with
    /// addresses of its own and none in homekey is left as it is.
    async fn bring_emails_in_line(
        &self,
        synapse: &SynapseClient,
        user_id: &str,
        localpart: &str,
    ) -> Result<(), DeliveryFailure> {
        let mut emails: Vec<String> = self
            .store
            .user_threepids(user_id)
            .await?
            .into_iter()
            .filter(|t| t.threepid.medium == crate::threepid::Medium::Email)
            .map(|t| t.threepid.address)
            .collect();
        emails.sort();
        let digest = crate::store::emails_digest(emails.iter().map(String::as_str));
        let given = self.store.synapse_mirrored_emails(user_id).await?;
        if given.as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        if given.is_some() || !emails.is_empty() {
            synapse.set_emails(localpart, &emails).await?;
        }
        self.store.mirror_synapse_emails(user_id, &digest).await?;
        Ok(())
    }

    /// Makes Synapse's user and devices match homekey's for `user_id`.
    async fn bring_in_line(
        &self,
        synapse: &SynapseClient,
        user_id: &str,
        depth: Depth,
    ) -> Result<(), DeliveryFailure> {
        let started = Instant::now();
        let Some(user) = self.store.get_user(user_id).await? else {
            // homekey never had it, or the row went by hand: Synapse's users are not deleted.
            return Ok(());
        };
        // An application service's user is Synapse's (homekey keeps a row of it for its
        // logins, `Store::adopt_appservice_user`): only what homekey did is carried (its
        // devices' end, an admin's change in homekey), never Synapse's own state read back
        // and overwritten, even by `reconcile` (a user Synapse deactivated or locked stays so).
        let depth = if user.appservice_id.is_some() {
            Depth::Changes
        } else {
            depth
        };
        let localpart = localpart_of(user_id);
        let (mirrored, mirrored_devices) = self.store.synapse_mirror(user_id).await?;
        let mut known = match (mirrored, depth) {
            (Some(known), Depth::Changes) => known,
            _ => match synapse.query_user(&localpart).await? {
                Some(found) => MirroredUser {
                    deactivated: found.is_deactivated,
                    locked: None,
                },
                None if user.deactivated => return Ok(()),
                None => {
                    let name = user.displayname.as_deref();
                    synapse
                        .provision_user(&localpart, name, Some(user.locked))
                        .await?;
                    MirroredUser {
                        deactivated: false,
                        locked: Some(user.locked),
                    }
                }
            },
        };
        self.store.mirror_synapse_user(user_id, known).await?;

        if user.deactivated {
            if !known.deactivated {
                synapse.delete_user(&localpart, user.erased).await?;
                known.deactivated = true;
                self.store.mirror_synapse_user(user_id, known).await?;
            }
            // Synapse's deactivation deleted every device.
            self.store.mirror_synapse_devices(user_id, &[]).await?;
            return Ok(());
        }
        if known.deactivated {
            synapse.reactivate_user(&localpart).await?;
            known.deactivated = false;
            self.store.mirror_synapse_user(user_id, known).await?;
        }
        if known.locked != Some(user.locked) {
            synapse
                .provision_user(&localpart, None, Some(user.locked))
                .await?;
            known.locked = Some(user.locked);
            self.store.mirror_synapse_user(user_id, known).await?;
        }
        self.bring_emails_in_line(synapse, user_id, &localpart)
            .await?;

        let devices: BTreeSet<String> = self
            .store
            .list_devices(user_id)
            .await?
            .into_iter()
            .map(|device| device.device_id)
            .collect();
        if depth == Depth::Everything {
            let devices: Vec<String> = devices.into_iter().collect();
            synapse.sync_devices(&localpart, &devices).await?;
            self.store.mirror_synapse_devices(user_id, &devices).await?;
            return Ok(());
        }
        for device_id in mirrored_devices.iter().filter(|id| !devices.contains(*id)) {
            if started.elapsed() > DELIVERY_BUDGET {
                return Err(DeliveryFailure::Synapse(SynapseCallError::Unreachable {
                    endpoint: synapse.endpoint().to_owned(),
                    reason: "too slow: the rest is delivered next time".into(),
                }));
            }
            synapse.delete_device(&localpart, device_id).await?;
            self.store
                .mirror_synapse_device(user_id, device_id, false)
                .await?;
        }
        Ok(())
    }

    /// Beside Synapse, makes a new session's user and device exist in Synapse before its
    /// token is handed out (Synapse refuses a token whose device it does not have), under
    /// the user's lease; then delivers whatever else the user is owed. If Synapse does not
    /// take them, the token is withdrawn: the client is told to retry, and nothing usable is
    /// left behind (the device row stays, without tokens, for the next login to reuse).
    pub(super) async fn announce_session(
        &self,
        new: &NewSession,
        token_id: i64,
    ) -> Result<(), DeliveryFailure> {
        let Some(synapse) = &self.synapse else {
            return Ok(());
        };
        let announced = match self.lease(&new.user_id, LOGIN_LEASE_WAIT).await {
            Ok(Some(lease)) => {
                let announced = self.announce_leased(synapse, new).await;
                if announced.is_ok()
                    && let Err(err) = self
                        .deliver_leased(synapse, &new.user_id, Depth::Changes)
                        .await
                {
                    tracing::warn!(error = %err, user = %new.user_id, "work owed to Synapse was not delivered at login");
                }
                self.release(lease).await;
                announced
            }
            Ok(None) => Err(DeliveryFailure::Busy(new.user_id.clone())),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = &announced {
            tracing::error!(error = %err, user = %new.user_id, "Synapse did not take a new session; its token was withdrawn");
            if let Err(store) = self.store.withdraw_access_token(token_id).await {
                tracing::error!(error = %store, "withdrawing the token failed");
            }
        }
        announced
    }

    async fn announce_leased(
        &self,
        synapse: &SynapseClient,
        new: &NewSession,
    ) -> Result<(), DeliveryFailure> {
        let (mirrored, _) = self.store.synapse_mirror(&new.user_id).await?;
        if mirrored.is_none() {
            // A user homekey has not made exist in Synapse yet (created while Synapse was
            // away, or before homekey served it).
            self.bring_in_line(synapse, &new.user_id, Depth::Changes)
                .await?;
        }
        // Noted before it is asked for: Synapse makes the device even if this process dies
        // before its answer, and a later delivery must know to delete it (deleting a device
        // Synapse never made is harmless).
        self.store
            .mirror_synapse_device(&new.user_id, &new.device_id, true)
            .await?;
        let localpart = localpart_of(&new.user_id);
        synapse
            .upsert_device(
                &localpart,
                &new.device_id,
                new.device_display_name.as_deref(),
            )
            .await?;
        Ok(())
    }

    /// `serve`'s delivery loop: delivers work as it comes due, forever, and says beside it
    /// that this process is alive. Work whose lease another process holds is left to that
    /// process.
    pub async fn run_synapse_delivery(&self) {
        let Some(synapse) = &self.synapse else {
            return;
        };
        let heartbeat = self.clone();
        tokio::spawn(async move { heartbeat.run_heartbeat().await });
        loop {
            match self.store.due_owed(now_ms(), 64).await {
                Ok(due) => {
                    for owed in due {
                        match self.lease(&owed.user_id, Duration::ZERO).await {
                            Ok(Some(lease)) => {
                                if let Err(err) = self
                                    .deliver_leased(synapse, &owed.user_id, Depth::Changes)
                                    .await
                                {
                                    tracing::warn!(error = %err, user = %owed.user_id, "delivering to Synapse failed");
                                }
                                self.release(lease).await;
                            }
                            Ok(None) => {}
                            Err(err) => {
                                tracing::warn!(error = %err, "no lease for delivering to Synapse")
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "reading the work owed to Synapse failed"),
            }
            tokio::time::sleep(LOOP_INTERVAL).await;
        }
    }

    /// Everything owed to Synapse, the oldest first (`homekey synapse status`).
    pub async fn owed_to_synapse(&self) -> Result<Vec<OwedWork>, StoreError> {
        self.store.list_owed().await
    }

    /// Brings Synapse's users and devices in line with homekey's for `user_ids` (every
    /// account without), checking Synapse itself rather than the mirror: after a restore of
    /// either side. Returns each user with what happened.
    pub async fn reconcile_with_synapse(
        &self,
        user_ids: Option<Vec<String>>,
    ) -> Result<Vec<(String, Delivery)>, AccountError> {
        let Some(synapse) = &self.synapse else {
            return Err(AccountError::NotBesideSynapse);
        };
        let user_ids = match user_ids {
            Some(ids) => ids,
            None => self.store.all_user_ids().await?,
        };
        let mut results = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            if self.store.get_user(&user_id).await?.is_none() {
                return Err(AccountError::UserNotFound(user_id));
            }
            self.store.owe_synapse_now(&user_id).await?;
            let delivery = match self.lease(&user_id, LOGIN_LEASE_WAIT).await? {
                Some(lease) => {
                    let result = self
                        .deliver_leased(synapse, &user_id, Depth::Everything)
                        .await;
                    self.release(lease).await;
                    result?
                }
                None => Delivery::StillOwed(DeliveryFailure::Busy(user_id.clone()).to_string()),
            };
            results.push((user_id, delivery));
        }
        Ok(results)
    }

    /// Takes `user_id`'s delivery lease, waiting up to `wait` for another holder.
    async fn lease(&self, user_id: &str, wait: Duration) -> Result<Option<Lease>, StoreError> {
        let holder = format!("{}:{}", std::process::id(), random_alphanumeric(12));
        let started = Instant::now();
        let deadline = started + wait;
        let mut tries = 0;
        loop {
            let now = now_ms();
            tries += 1;
            let process = self.instance.as_ref().map(|i| i.process.as_str());
            if self
                .store
                .take_synapse_lease(
                    user_id,
                    &holder,
                    process,
                    now,
                    now + LEASE_MS,
                    now - HEARTBEAT_STALE_MS,
                )
                .await?
            {
                if tries > 1 {
                    tracing::debug!(user = %user_id, waited_ms = started.elapsed().as_millis() as u64, "waited for another deliverer's lease");
                }
                return Ok(Some(Lease {
                    user_id: user_id.to_owned(),
                    holder,
                    store: self.store.clone(),
                    released: false,
                }));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn release(&self, mut lease: Lease) {
        lease.released = true;
        if let Err(err) = self
            .store
            .release_synapse_lease(&lease.user_id, &lease.holder)
            .await
        {
            // Its process's heartbeat (or its expiry) ends it.
            tracing::warn!(error = %err, "a delivery lease was not given back");
        }
    }

    /// Beside Synapse, makes this `serve` process the instance listening on `addresses`:
    /// from now on its leases name it, and the leases of the process that served as the same
    /// instance before (a restart after a crash) are free at once. Its heartbeat is kept by
    /// [`Accounts::run_synapse_delivery`].
    pub async fn serve_as_instance(
        &mut self,
        addresses: &[std::net::SocketAddr],
    ) -> Result<(), StoreError> {
        if self.synapse.is_none() {
            return Ok(());
        }
        let mut addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        addresses.sort();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        let instance = ServingInstance {
            name: format!("{host} {}", addresses.join(",")),
            process: format!("{}-{}", std::process::id(), random_alphanumeric(12)),
        };
        let now = now_ms();
        let before = self
            .store
            .announce_synapse_instance(
                &instance.name,
                &instance.process,
                now,
                now - FORGET_INSTANCE_MS,
            )
            .await?;
        if let Some(before) = before {
            tracing::info!(instance = %instance.name, process = %before, "serving in the place of this instance's previous process: its delivery leases are free");
        }
        self.instance = Some(std::sync::Arc::new(instance));
        Ok(())
    }

    /// Says every [`HEARTBEAT_INTERVAL`] that this process is alive, forever.
    async fn run_heartbeat(&self) {
        let Some(instance) = &self.instance else {
            return;
        };
        let mut taken_over = false;
        loop {
            tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            match self
                .store
                .synapse_instance_heartbeat(&instance.name, &instance.process, now_ms())
                .await
            {
                Ok(true) => taken_over = false,
                Ok(false) if !taken_over => {
                    taken_over = true;
                    tracing::error!(instance = %instance.name, "another homekey process serves as this instance (the same host and addresses): its start freed this process's delivery leases; give each process its own address");
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "the heartbeat was not written"),
            }
        }
    }
}
