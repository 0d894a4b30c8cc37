//! Shared figures of a run: ack latencies (heartbeats and state changes
//! apart), errors by gRPC code, how many agents have a working session, and
//! reconnect episodes.
//!
//! Latencies are kept as plain `Vec<u32>` of microseconds per measuring
//! window and sorted when a percentile is asked for: at 20,000 agents on a
//! 15 s interval a 5-minute window is ~400,000 samples (1.6 MB), so a
//! histogram crate would buy nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a report was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Heartbeat,
    Change,
}

/// Figures since the last [`Stats::take_window`].
#[derive(Debug, Default)]
pub struct Window {
    pub heartbeat_us: Vec<u32>,
    pub change_us: Vec<u32>,
    pub errors: BTreeMap<String, u64>,
    pub acks: u64,
}

/// Agents with a working session and the reconnect episodes.
#[derive(Debug, Default)]
struct Links {
    /// Agents whose current session got at least one ack.
    up: usize,
    /// Fewest `up` since the window began.
    up_min: usize,
    /// How many agents should be up.
    target: usize,
    /// When a working session first dropped while none was being waited for.
    drop_at: Option<Instant>,
    /// Seconds from the first drop until all `target` were up again.
    reconnects: Vec<f64>,
}

/// Everything the agents report into; cheap to update from many tasks.
#[derive(Debug, Default)]
pub struct Stats {
    window: Mutex<Window>,
    links: Mutex<Links>,
    /// Acks ever, for the progress line's rate.
    total_acks: std::sync::atomic::AtomicU64,
}

impl Stats {
    pub fn ack(&self, kind: Kind, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut w = lock(&self.window);
        w.acks += 1;
        match kind {
            Kind::Heartbeat => w.heartbeat_us.push(us),
            Kind::Change => w.change_us.push(us),
        }
        self.total_acks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn error(&self, label: &str) {
        *lock(&self.window)
            .errors
            .entry(label.to_string())
            .or_default() += 1;
    }

    pub fn total_acks(&self) -> u64 {
        self.total_acks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends the window: its figures, and a fresh one begins.
    pub fn take_window(&self) -> Window {
        let mut links = lock(&self.links);
        links.up_min = links.up;
        drop(links);
        std::mem::take(&mut *lock(&self.window))
    }

    /// A copy of the window's errors and p99 of all its acks, for progress.
    pub fn peek(&self) -> (BTreeMap<String, u64>, Option<f64>) {
        let w = lock(&self.window);
        let errors = w.errors.clone();
        let mut all: Vec<u32> = w.heartbeat_us.iter().chain(&w.change_us).copied().collect();
        drop(w);
        all.sort_unstable();
        (errors, percentile_ms(&all, 99.0))
    }

    pub fn set_target(&self, n: usize) {
        lock(&self.links).target = n;
    }

    /// (agents up now, fewest up in this window).
    pub fn up(&self) -> (usize, usize) {
        let l = lock(&self.links);
        (l.up, l.up_min)
    }

    /// A session got its first ack. Returns the episode's length if this
    /// made every agent up again after a drop.
    pub fn link_up(&self) -> Option<(usize, f64)> {
        let mut l = lock(&self.links);
        l.up += 1;
        if l.up >= l.target
            && let Some(at) = l.drop_at.take()
        {
            let secs = at.elapsed().as_secs_f64();
            l.reconnects.push(secs);
            return Some((l.up, secs));
        }
        None
    }

    /// A session that had an ack ended.
    pub fn link_down(&self) {
        let mut l = lock(&self.links);
        l.up = l.up.saturating_sub(1);
        l.up_min = l.up_min.min(l.up);
        if l.drop_at.is_none() {
            l.drop_at = Some(Instant::now());
        }
    }

    /// Whether a drop is being waited for, and the episodes so far.
    pub fn reconnects(&self) -> (bool, Vec<f64>) {
        let l = lock(&self.links);
        (l.drop_at.is_some(), l.reconnects.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only counters inside: a panicked holder leaves nothing half-done.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `p`th percentile (nearest rank) of sorted microseconds, in ms.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    Some(f64::from(sorted_us[i]) / 1000.0)
}

/// p50/p95/p99/max (ms) and count of a set of latencies.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Latency {
    pub fn of(mut us: Vec<u32>) -> Self {
        us.sort_unstable();
        Self {
            count: us.len(),
            p50_ms: percentile_ms(&us, 50.0),
            p95_ms: percentile_ms(&us, 95.0),
            p99_ms: percentile_ms(&us, 99.0),
            max_ms: us.last().map(|&m| f64::from(m) / 1000.0),
        }
    }

    /// `p50 1.2 ms, p95 …` for the summary.
    pub fn line(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} acks)",
            f(self.p50_ms),
            f(self.p95_ms),
            f(self.p99_ms),
            f(self.max_ms),
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let us: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&us, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&us, 100.0), Some(100.0));
        assert_eq!(percentile_ms(&[7000], 99.0), Some(7.0));
        assert_eq!(percentile_ms(&[], 99.0), None);
    }

    #[test]
    fn an_episode_runs_from_the_first_drop_until_all_are_up() {
        let s = Stats::default();
        s.set_target(2);
        assert!(s.link_up().is_none());
        assert!(s.link_up().is_none(), "no drop yet: nothing to report");
        s.link_down();
        s.link_down();
        assert!(s.link_up().is_none());
        let (up, secs) = s.link_up().expect("all back");
        assert_eq!(up, 2);
        assert!(secs >= 0.0);
        assert_eq!(s.reconnects(), (false, vec![secs]));
    }
}
