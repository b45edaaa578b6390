//! Rate limits as Synapse's `rc_*` settings mean them: per key (an address, an account), a
//! leaky bucket of `burst_count` actions that drains at `per_second`.
//!
//! Written here rather than taken from a crate (governor's GCRA is close) because login needs
//! Synapse's two extra moves: asking whether a key is over its limit without counting an
//! action (before a password is checked), and counting an action that already happened (a
//! failed password) without refusing it. The state lives in the process, as in Synapse.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{LoginRateLimits, RateLimit};

/// How often drained buckets are dropped, so the map does not grow with every address seen.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// One limit, kept per key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    buckets: HashMap<String, Bucket>,
    last_pruned: Instant,
}

/// Synapse's meter: `count` actions since `start`, of which `elapsed × rate` have drained.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: f64,
    start: Instant,
}

impl Bucket {
    fn level(&self, rate: f64, now: Instant) -> f64 {
        self.count - now.duration_since(self.start).as_secs_f64() * rate
    }
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                last_pruned: Instant::now(),
            }),
        }
    }

    /// Counts one action for `key` if the limit allows it; otherwise refuses it with how
    /// long to wait, in milliseconds.
    pub fn attempt(&self, key: &str) -> Result<(), u64> {
        self.act(key, true, false)
    }

    /// Whether one more action for `key` would be allowed, without counting it.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.act(key, false, false)
    }

    /// Counts an action that has already happened, allowed or not.
    pub fn record(&self, key: &str) {
        let _ = self.act(key, true, true);
    }

    fn act(&self, key: &str, count: bool, always: bool) -> Result<(), u64> {
        let RateLimit {
            per_second: rate,
            burst_count: burst,
        } = self.limit;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.prune(rate, now);
        let mut bucket = state.buckets.get(key).copied().unwrap_or(Bucket {
            count: 0.0,
            start: now,
        });
        if bucket.level(rate, now) <= 0.0 {
            bucket = Bucket {
                count: 0.0,
                start: now,
            };
        }
        let allowed = bucket.level(rate, now) + 1.0 <= burst;
        if count && (allowed || always) {
            bucket.count += 1.0;
            state.buckets.insert(key.to_owned(), bucket);
        }
        if allowed {
            return Ok(());
        }
        // The moment the level is low enough for one more action again.
        let wait = if rate > 0.0 {
            let allowed_at = (bucket.count - burst + 1.0) / rate;
            (allowed_at - now.duration_since(bucket.start).as_secs_f64()).max(0.0)
        } else {
            // A rate of 0 never drains: Synapse's "never again" (-1), said as an hour.
            3600.0
        };
        Err((wait * 1000.0) as u64)
    }
}

impl State {
    fn prune(&mut self, rate: f64, now: Instant) {
        if now.duration_since(self.last_pruned) < PRUNE_INTERVAL {
            return;
        }
        self.buckets
            .retain(|_, bucket| bucket.level(rate, now) > 0.0);
        self.last_pruned = now;
    }
}

/// The three login limits of `rc_login`.
#[derive(Debug)]
pub struct LoginLimiters {
    /// Every login attempt, per client address.
    pub address: RateLimiter,
    /// Successful logins, per account.
    pub account: RateLimiter,
    /// Wrong passwords, per account named (at login and in user-interactive auth).
    pub failed_attempts: RateLimiter,
}

impl LoginLimiters {
    pub fn new(limits: &LoginRateLimits) -> LoginLimiters {
        LoginLimiters {
            address: RateLimiter::new(limits.address),
            account: RateLimiter::new(limits.account),
            failed_attempts: RateLimiter::new(limits.failed_attempts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst_count: f64) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second,
            burst_count,
        })
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_the_wait_until_one_has_drained() {
        let limiter = limiter(0.5, 3.0);
        for _ in 0..3 {
            assert_eq!(limiter.attempt("a"), Ok(()));
        }
        let wait = limiter.attempt("a").unwrap_err();
        // One action drains in 2 s at 0.5/s.
        assert!((1900..=2000).contains(&wait), "waited {wait} ms");
        assert_eq!(limiter.attempt("b"), Ok(()), "keys are limited apart");
    }

    #[test]
    fn check_never_counts_and_record_always_does() {
        let limiter = limiter(0.1, 2.0);
        for _ in 0..5 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        limiter.record("a");
        limiter.record("a");
        assert!(limiter.check("a").is_err());
        limiter.record("a");
        assert!(limiter.attempt("a").is_err());
    }

    #[test]
    fn the_bucket_drains_over_time() {
        let limiter = limiter(50.0, 1.0);
        assert_eq!(limiter.attempt("a"), Ok(()));
        assert!(limiter.attempt("a").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(limiter.attempt("a"), Ok(()));
    }
}
