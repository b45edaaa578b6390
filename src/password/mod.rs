//! Passwords: Synapse-compatible hashing, the other schemes homekey reads, and the policy.
//!
//! - [`scheme`]: one hash or verification, on the calling thread (for the CLI and the blocking
//!   pool).
//! - [`PasswordHasher`]: the async face for servers: the same work on the blocking pool, never
//!   on an async worker, with at most one hash per core at a time.
//! - [`policy`]: what a new password must look like (Synapse's `password_config.policy`).

pub mod policy;
pub mod scheme;

use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::Semaphore;

pub use policy::{MAX_PASSWORD_LENGTH, PasswordPolicy, PolicyViolation};
pub use scheme::{HashSettings, PasswordError};

/// Hashes and verifies passwords off the async workers, bounded to the machine's cores so a
/// burst of logins queues instead of starving every other request.
#[derive(Clone)]
pub struct PasswordHasher {
    settings: Arc<HashSettings>,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(settings: HashSettings) -> PasswordHasher {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordHasher {
            settings: Arc::new(settings),
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    pub fn settings(&self) -> &HashSettings {
        &self.settings
    }

    /// A new hash of `password` in the configured scheme.
    pub async fn hash(&self, password: SecretString) -> Result<SecretString, PasswordError> {
        let settings = Arc::clone(&self.settings);
        self.run_blocking(move || settings.hash(&password)).await
    }

    /// Whether `password` matches `stored_hash` (any scheme homekey knows). A missing, empty or
    /// malformed hash never matches.
    pub async fn verify(&self, password: SecretString, stored_hash: Option<SecretString>) -> bool {
        let settings = Arc::clone(&self.settings);
        self.run_blocking(move || settings.verify(&password, stored_hash.as_ref()))
            .await
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the hashing semaphore is never closed");
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            // Hashing does not panic on any input; if it ever did, keep the panic a panic.
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::HashScheme;

    /// On a single-threaded runtime, a hash that ran on the async worker would freeze every
    /// other task until it finished; on the blocking pool, they keep running.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_worker_free() {
        let hasher = PasswordHasher::new(HashSettings::new(
            HashScheme::Bcrypt,
            11,
            SecretString::from("pepper"),
        ));
        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let hash = hasher.hash(SecretString::from("pw")).await.unwrap();
        ticker.abort();
        assert!(hash.expose_secret().starts_with("$2b$11$"));
        // A cost-11 hash takes tens of milliseconds; the ticker ran meanwhile.
        assert!(
            ticks.load(Ordering::Relaxed) >= 5,
            "{} ticks",
            ticks.load(Ordering::Relaxed)
        );
        assert!(
            hasher
                .verify(SecretString::from("pw"), Some(hash.clone()))
                .await
        );
        assert!(!hasher.verify(SecretString::from("px"), Some(hash)).await);
        assert!(!hasher.verify(SecretString::from("pw"), None).await);
    }
}
