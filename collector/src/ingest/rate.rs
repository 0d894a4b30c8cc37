//! Per-agent request rates at the gRPC edge: `Session` opens, `Renew` calls
//! and reports, each limited per agent id (from the verified client
//! certificate, so the keys are bounded by enrollment, not by what a peer
//! sends).
//!
//! Each limit is a GCRA token bucket from `governor` (a burst, then one
//! token every period), keyed by agent:
//!
//! - **Session opens** cost a store lookup and writes; over the limit the
//!   call is refused with RESOURCE_EXHAUSTED before the store is touched. A
//!   real agent reconnects with capped, jittered backoff and never comes
//!   near the limit; a reconnect loop does.
//! - **Renew calls** sign a certificate and write the store: refused the
//!   same way. An agent renews once per certificate lifetime (at least 40 s
//!   apart even with the shortest allowed lifetime) and retries with backoff.
//! - **Reports** are *throttled, never refused*: the session waits for a
//!   token before it applies the next report and reads nothing else
//!   meanwhile, so HTTP/2 flow control pushes back on the agent, which keeps
//!   the rest in its spool. Refusing would end the stream: the agent would
//!   reconnect (costing a session open) and resend every unacknowledged
//!   report, so a spool replay after a long outage would turn into a
//!   reconnect loop instead of a slower, steady upload. The one token bucket
//!   per agent is shared by all its sessions.
//!
//! Idle agents' buckets are dropped every minute (`retain_recent`: a bucket
//! that has refilled is the same as none), so memory follows the agents
//! active in the last minute. Time comes from a `governor` clock, so tests
//! use `FakeRelativeClock` and never wait.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

/// How often idle agents' buckets are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A rate: `burst` at once, then one more every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub period: Duration,
}

impl Rate {
    /// `burst` at once, then `per_sec` a second.
    pub fn per_second(per_sec: u32, burst: u32) -> Self {
        Self {
            burst,
            period: Duration::from_secs(1) / per_sec.max(1),
        }
    }

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// The three per-agent limits of the ingest service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub sessions: Rate,
    pub renewals: Rate,
    pub reports: Rate,
}

impl Default for RateLimits {
    /// The `[grpc]` defaults: 10 session opens then one per 6 s, 5 renewals
    /// then one per 30 s, 500 reports then 50 a second.
    fn default() -> Self {
        Self {
            sessions: Rate {
                burst: 10,
                period: Duration::from_secs(6),
            },
            renewals: Rate {
                burst: 5,
                period: Duration::from_secs(30),
            },
            reports: Rate::per_second(50, 500),
        }
    }
}

type Keyed<C> =
    RateLimiter<String, HashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One rate, per agent id.
pub struct AgentRate<C: Clock = DefaultClock> {
    limiter: Keyed<C>,
    clock: C,
    last_prune: Mutex<C::Instant>,
}

impl AgentRate {
    pub fn new(rate: Rate) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AgentRate<C> {
    pub fn with_clock(rate: Rate, clock: C) -> Self {
        Self {
            limiter: RateLimiter::hashmap_with_clock(rate.quota(), clock.clone()),
            last_prune: Mutex::new(clock.now()),
            clock,
        }
    }

    /// Takes a token for `agent_id` if there is one; otherwise how long
    /// until there will be (nothing is taken then).
    pub fn check(&self, agent_id: &str) -> Result<(), Duration> {
        self.prune_if_due();
        self.limiter
            .check_key(&agent_id.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Agents with a bucket that has not refilled yet.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }

    fn prune_if_due(&self) {
        // Another caller pruning right now is as good as pruning.
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        let now = self.clock.now();
        if Duration::from(now.duration_since(*last)) >= PRUNE_EVERY {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            *last = now;
        }
    }
}

impl AgentRate {
    /// Waits until `agent_id` may send its next report and takes the
    /// token. Returns whether it had to wait (the report was throttled).
    pub async fn until_ready(&self, agent_id: &str) -> bool {
        let mut throttled = false;
        while let Err(wait) = self.check(agent_id) {
            throttled = true;
            tokio::time::sleep(wait).await;
        }
        throttled
    }
}

/// The ingest service's limiters.
pub struct Limiters {
    pub sessions: AgentRate,
    pub renewals: AgentRate,
    pub reports: AgentRate,
}

impl Limiters {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            sessions: AgentRate::new(limits.sessions),
            renewals: AgentRate::new(limits.renewals),
            reports: AgentRate::new(limits.reports),
        }
    }
}

/// Whole seconds to tell an agent to wait, at least 1.
pub fn retry_secs(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn rate(burst: u32, period_secs: u64) -> Rate {
        Rate {
            burst,
            period: Duration::from_secs(period_secs),
        }
    }

    #[test]
    fn a_burst_then_one_per_period_per_agent() {
        let clock = FakeRelativeClock::default();
        let r = AgentRate::with_clock(rate(10, 6), clock.clone());
        for i in 0..10 {
            assert_eq!(r.check("a"), Ok(()), "open {i} is within the burst");
        }
        assert_eq!(r.check("a"), Err(Duration::from_secs(6)));
        // Another agent has its own bucket.
        assert_eq!(r.check("b"), Ok(()));
        clock.advance(Duration::from_secs(5));
        assert_eq!(r.check("a"), Err(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(r.check("a"), Ok(()));
        assert!(r.check("a").is_err(), "one token per period");
        // After a full refill the whole burst is back.
        clock.advance(Duration::from_secs(60));
        for _ in 0..10 {
            assert_eq!(r.check("a"), Ok(()));
        }
        assert!(r.check("a").is_err());
    }

    #[test]
    fn a_refused_check_takes_no_token() {
        let clock = FakeRelativeClock::default();
        let r = AgentRate::with_clock(rate(1, 10), clock.clone());
        assert_eq!(r.check("a"), Ok(()));
        for _ in 0..100 {
            assert!(r.check("a").is_err());
        }
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            r.check("a"),
            Ok(()),
            "hammering did not push the refill back"
        );
    }

    #[test]
    fn reports_per_second_with_a_burst() {
        let clock = FakeRelativeClock::default();
        let r = AgentRate::with_clock(Rate::per_second(50, 500), clock.clone());
        let admitted = (0..2000).filter(|_| r.check("a").is_ok()).count();
        assert_eq!(admitted, 500, "the burst");
        assert_eq!(r.check("a"), Err(Duration::from_millis(20)));
        clock.advance(Duration::from_secs(1));
        let admitted = (0..2000).filter(|_| r.check("a").is_ok()).count();
        assert_eq!(admitted, 50, "then 50 a second");
    }

    #[test]
    fn idle_agents_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let r = AgentRate::with_clock(rate(2, 1), clock.clone());
        for i in 0..1000 {
            assert_eq!(r.check(&format!("agent-{i}")), Ok(()));
        }
        assert_eq!(r.tracked(), 1000);
        clock.advance(PRUNE_EVERY);
        // Pruning happens on use; the busy agent keeps its (empty) bucket.
        assert_eq!(r.check("busy"), Ok(()));
        assert_eq!(r.check("busy"), Ok(()));
        assert!(r.check("busy").is_err());
        assert_eq!(r.tracked(), 1, "only the agent whose bucket is not full");
    }

    #[tokio::test]
    async fn until_ready_waits_and_says_so() {
        let r = AgentRate::new(Rate {
            burst: 2,
            period: Duration::from_millis(20),
        });
        assert!(!r.until_ready("a").await);
        assert!(!r.until_ready("a").await);
        let started = std::time::Instant::now();
        assert!(r.until_ready("a").await, "the third report waits");
        assert!(started.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn retry_secs_rounds_up() {
        assert_eq!(retry_secs(Duration::ZERO), 1);
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(Duration::from_secs(6)), 6);
        assert_eq!(retry_secs(Duration::from_millis(6001)), 7);
    }
}
