//! Login rate limits, per account name and per source address.
//!
//! Both are GCRA token buckets (`governor`), keyed by the name as typed
//! (known or not, so the limit itself reveals nothing) and by the peer
//! address. Every attempt takes a token from both; a refused attempt does
//! not check the password at all. They are per collector: behind a load
//! balancer with N replicas an attacker gets at most N times the rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::{Error, Result};

type Keyed = RateLimiter<String, HashMapStateStore<String>, DefaultClock>;

/// Attempts per account: 5 at once, then one a minute.
const ACCOUNT_BURST: u32 = 5;
const ACCOUNT_PERIOD: Duration = Duration::from_secs(60);
/// Attempts per source address: 20 at once, then one every 6 s.
const SOURCE_BURST: u32 = 20;
const SOURCE_PERIOD: Duration = Duration::from_secs(6);

pub struct LoginLimits {
    account: Keyed,
    source: Keyed,
}

fn quota(burst: u32, period: Duration) -> Quota {
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            account: RateLimiter::keyed(quota(ACCOUNT_BURST, ACCOUNT_PERIOD)),
            source: RateLimiter::keyed(quota(SOURCE_BURST, SOURCE_PERIOD)),
        }
    }
}

impl LoginLimits {
    /// Takes one attempt for `username` from `source`, or refuses it.
    pub fn attempt(&self, username: &str, source: &str) -> Result<()> {
        let by_source = self.source.check_key(&source.to_string());
        let by_account = self.account.check_key(&username.to_lowercase());
        if by_source.is_err() || by_account.is_err() {
            return Err(Error::RateLimited(
                "too many login attempts; wait a minute and try again".into(),
            ));
        }
        // Forget buckets that have refilled, so memory follows recent use.
        if self.account.len() > 10_000 {
            self.account.retain_recent();
        }
        if self.source.len() > 10_000 {
            self.source.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_limited_whatever_the_source() {
        let l = LoginLimits::default();
        for i in 0..ACCOUNT_BURST {
            l.attempt("alice", &format!("10.0.0.{i}")).unwrap();
        }
        let e = l.attempt("Alice", "10.0.0.99").unwrap_err();
        assert!(matches!(e, Error::RateLimited(_)), "{e}");
        l.attempt("bob", "10.0.0.99").unwrap();
    }

    #[test]
    fn a_source_is_limited_whatever_the_account() {
        let l = LoginLimits::default();
        for i in 0..SOURCE_BURST {
            l.attempt(&format!("user{i}"), "192.0.2.1").unwrap();
        }
        assert!(l.attempt("someone", "192.0.2.1").is_err());
        l.attempt("someone", "192.0.2.2").unwrap();
    }
}
