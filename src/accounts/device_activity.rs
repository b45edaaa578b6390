//! When each device was last in use, as Synapse's `client_ips` keeps it for `last_seen_ts`,
//! `last_seen_ip` and `last_seen_user_agent`: a login, every request made with a device's
//! token, and beside Synapse every time Synapse asks about the token (then only the time is
//! known: the request was Synapse's). As in Synapse, a contact through a token is noted at
//! most once every [`LAST_SEEN_GRANULARITY_MS`], kept in the process, and written with the
//! others every [`WRITE_INTERVAL`] in one transaction, off the requests' path: a busy device
//! costs no write per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Accounts, Requester, now_ms};
use crate::store::{ClientSeen, DeviceContact};

/// How long a token's noted contact stands before a newer one is noted (Synapse's
/// `LAST_SEEN_GRANULARITY`, two minutes).
pub const LAST_SEEN_GRANULARITY_MS: i64 = 120_000;
/// How often the noted contacts are written (Synapse flushes its batch every 5 s).
pub const WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// Above this many tokens noted, those whose contact no longer stands are forgotten.
const NOTED_BEFORE_PRUNING: usize = 50_000;

/// The contacts noted and not written yet, and when the last one through each token was
/// noted (by token: a number, so that a request whose contact is not due costs no
/// allocation).
#[derive(Default)]
pub struct DeviceActivity {
    state: Mutex<Noted>,
}

#[derive(Default)]
struct Noted {
    last_noted_ms: HashMap<i64, i64>,
    /// When the tokens whose contact no longer stands were last forgotten: at most once
    /// every [`LAST_SEEN_GRANULARITY_MS`], so that many busy tokens cost no scan a request.
    pruned_ms: i64,
    unwritten: Vec<DeviceContact>,
}

impl DeviceActivity {
    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a contact through `token_id` at `now_ms` is to be noted: none was less than
    /// [`LAST_SEEN_GRANULARITY_MS`] before. If so, it counts as noted from now.
    fn due(&self, token_id: i64, now_ms: i64) -> bool {
        let mut noted = self.noted();
        let stands = |at: i64| now_ms - at < LAST_SEEN_GRANULARITY_MS;
        if noted
            .last_noted_ms
            .get(&token_id)
            .is_some_and(|at| stands(*at))
        {
            return false;
        }
        if noted.last_noted_ms.len() >= NOTED_BEFORE_PRUNING && !stands(noted.pruned_ms) {
            noted.last_noted_ms.retain(|_, at| stands(*at));
            noted.pruned_ms = now_ms;
        }
        noted.last_noted_ms.insert(token_id, now_ms);
        true
    }
}

impl Accounts {
    /// Notes that `requester`'s device was used now, from the client `client` gives (its
    /// address and user agent) when the request was the client's own; `client` is asked
    /// only when the contact is due. A token without a device (an admin's puppet token) has
    /// nothing to note.
    pub fn note_device_use(
        &self,
        requester: &Requester,
        client: impl FnOnce() -> Option<ClientSeen>,
    ) {
        let Some(device_id) = &requester.device_id else {
            return;
        };
        let now = now_ms();
        if !self.activity.due(requester.token_id, now) {
            return;
        }
        let contact = DeviceContact {
            user_id: requester.user.name.clone(),
            device_id: device_id.clone(),
            seen_ms: now,
            client: client(),
        };
        self.activity.noted().unwritten.push(contact);
    }

    /// Records a login's contact at once (the login's answer and the device listings right
    /// after it show it), and notes it for its token, so that the requests right after it
    /// write nothing.
    pub(super) async fn record_login_contact(&self, token_id: i64, contact: DeviceContact) {
        self.activity.due(token_id, contact.seen_ms);
        // What whois and the device listings show; the login stands without it.
        if let Err(err) = self
            .store
            .record_device_contacts(std::slice::from_ref(&contact))
            .await
        {
            tracing::warn!(error = %err, "the device's last contact was not recorded");
        }
    }

    /// Writes the contacts noted since the last time. A failure is logged, and those
    /// contacts are given up (the next ones will be noted soon enough).
    pub async fn write_device_activity(&self) {
        let contacts = std::mem::take(&mut self.activity.noted().unwritten);
        if let Err(err) = self.store.record_device_contacts(&contacts).await {
            tracing::warn!(error = %err, devices = contacts.len(), "the devices' last contacts were not recorded");
        }
    }

    /// `serve`'s writer of the devices' contacts: every [`WRITE_INTERVAL`], and once more
    /// when `stopped` says the server stopped (after its last request).
    pub async fn run_device_activity_writes(
        &self,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(WRITE_INTERVAL) => false,
                _ = stopped.wait_for(|stop| *stop) => true,
            };
            self.write_device_activity().await;
            if stop {
                return;
            }
        }
    }
}
