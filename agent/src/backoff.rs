//! Reconnect delays: exponential with full jitter, from 0–1 s up to 0–30 s,
//! reset after a session that worked. Full jitter (a uniform draw between
//! zero and the exponential base) spreads a fleet's reconnects after a
//! collector restart over the whole interval instead of bunching them at
//! its upper half.

use std::time::Duration;

/// Exponential backoff with full jitter: attempt n waits a random time in
/// `[0, base]`, `base = min(max, first * 2^n)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    /// 0–1 s first, capped at 0–30 s.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(random_unit())
    }

    /// As [`Backoff::next_delay`] with the random draw `unit` in `[0, 1]`.
    pub fn next_delay_with(&mut self, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        let base = self.first.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Back to the first delay, after a session that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A uniform draw in `[0, 1)`. uuid already brings the OS random source for
/// boot ids; reusing it spares a second RNG crate in a small binary.
pub(crate) fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u64_pair().0 >> 11;
    #[allow(clippy::cast_precision_loss)]
    let unit = bits as f64 / (1u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_within_bounds() {
        let mut b = Backoff::default();
        let lows: Vec<_> = (0..8).map(|_| b.next_delay_with(0.0)).collect();
        let mut b = Backoff::default();
        let highs: Vec<_> = (0..8).map(|_| b.next_delay_with(1.0)).collect();
        assert!(lows.iter().all(|d| d.is_zero()), "{lows:?}");
        assert_eq!(highs[0], Duration::from_secs(1));
        assert_eq!(highs[1], Duration::from_secs(2));
        assert_eq!(highs[7], Duration::from_secs(30));
        assert!(highs.windows(2).all(|w| w[0] <= w[1]));
        let mut b = Backoff::default();
        let mids: Vec<_> = (0..8).map(|_| b.next_delay_with(0.5)).collect();
        assert_eq!(mids[0], Duration::from_millis(500));
        assert_eq!(mids[7], Duration::from_secs(15));
    }

    #[test]
    fn random_delays_stay_in_bounds_and_reset() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(30), "{d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn a_fleet_spreads_over_the_whole_interval() {
        // 10,000 agents at their 4th attempt (base 8 s): full jitter puts
        // about a tenth in each tenth of [0, 8 s].
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let mut b = Backoff::default();
            for _ in 0..3 {
                b.next_delay();
            }
            let d = b.next_delay().as_secs_f64();
            assert!(d <= 8.0, "{d}");
            buckets[((d / 0.8) as usize).min(9)] += 1;
        }
        assert!(
            buckets.iter().all(|n| (800..=1200).contains(n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn random_unit_is_a_unit() {
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&random_unit()));
        }
    }
}
