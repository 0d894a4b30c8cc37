//! Reconnect delays: exponential with jitter, from 0.5–1 s up to 15–30 s,
//! reset after a session that worked. The jitter spreads a fleet's
//! reconnects after a collector restart.

use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt n waits a random time in
/// `[base/2, base]`, `base = min(max, first * 2^n)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    /// 0.5–1 s first, capped at 15–30 s.
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
        base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Back to the first delay, after a session that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A uniform draw in `[0, 1)`. uuid already brings the OS random source for
/// boot ids; reusing it spares a second RNG crate in a small binary.
fn random_unit() -> f64 {
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
        assert_eq!(lows[0], Duration::from_millis(500));
        assert_eq!(highs[0], Duration::from_secs(1));
        assert_eq!(highs[1], Duration::from_secs(2));
        assert_eq!(highs[7], Duration::from_secs(30));
        assert_eq!(lows[7], Duration::from_secs(15));
        assert!(lows.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn random_delays_stay_in_bounds_and_reset() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(
                (Duration::from_millis(500)..=Duration::from_secs(30)).contains(&d),
                "{d:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn random_unit_is_a_unit() {
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&random_unit()));
        }
    }
}
