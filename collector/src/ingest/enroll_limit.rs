//! Per-source-address limit on failed enrollments.
//!
//! After `max_failures` refused enrollments from one IP address within
//! `window`, further attempts from it are refused up front (no store access)
//! until that window has passed since its first failure. A fixed window kept
//! in a small map, pruned as it is used and bounded in size, is all this
//! needs; `governor` was considered, but its GCRA refills gradually and has
//! no non-consuming check, while here only failures count and the block must
//! last until the window ends. Time is passed in, so tests need no waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond it the oldest windows are forgotten
/// (an attacker with that many addresses is not stopped by a per-IP limit).
const MAX_TRACKED: usize = 10_000;

/// Failed-enrollment counters per source address.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

impl FailureLimiter {
    /// `max_failures == 0` disables the limit.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` may try to enroll at `now`.
    pub fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        if self.max_failures == 0 {
            return true;
        }
        let mut map = self.lock();
        match map.get(&ip) {
            Some(w) if now.saturating_duration_since(w.start) >= self.window => {
                map.remove(&ip);
                true
            }
            Some(w) => w.failures < self.max_failures,
            None => true,
        }
    }

    /// Counts one refused enrollment from `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let window = self.window;
            map.retain(|_, w| now.saturating_duration_since(w.start) < window);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, w)| w.start).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let w = map.entry(ip).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.saturating_duration_since(w.start) >= self.window {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        // A poisoned map only holds counters; keep using it.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn blocks_after_max_failures_until_the_window_passes() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.allowed(ip(1), t0), "attempt {i} allowed");
            l.failed(ip(1), t0 + Duration::from_secs(i));
        }
        assert!(!l.allowed(ip(1), t0 + Duration::from_secs(10)));
        assert!(!l.allowed(ip(1), t0 + Duration::from_secs(59)));
        // Another address is unaffected.
        assert!(l.allowed(ip(2), t0 + Duration::from_secs(10)));
        // The window (from the first failure) has passed: allowed again.
        assert!(l.allowed(ip(1), t0 + Duration::from_secs(60)));
        assert_eq!(l.tracked(), 0, "expired window pruned");
    }

    #[test]
    fn failures_in_an_old_window_do_not_count() {
        let l = FailureLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        l.failed(ip(1), t0);
        l.failed(ip(1), t0 + Duration::from_secs(61));
        assert!(l.allowed(ip(1), t0 + Duration::from_secs(62)));
        l.failed(ip(1), t0 + Duration::from_secs(63));
        assert!(!l.allowed(ip(1), t0 + Duration::from_secs(64)));
    }

    #[test]
    fn zero_disables_and_the_map_stays_bounded() {
        let off = FailureLimiter::new(0, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..100 {
            off.failed(ip(1), t0);
        }
        assert!(off.allowed(ip(1), t0));
        assert_eq!(off.tracked(), 0);

        let l = FailureLimiter::new(1, Duration::from_secs(60));
        for i in 0..(MAX_TRACKED as u32 + 5) {
            l.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(l.tracked() <= MAX_TRACKED);
    }
}
