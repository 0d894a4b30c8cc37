//! The sliding window behind the sustained checks (cpu, memory): the state
//! is decided on the average of the last N samples, and only once N samples
//! have been seen, so a short spike never raises a problem.

use std::collections::VecDeque;

use super::{CheckState, Mode};
use crate::config::WindowSettings;

/// Where a window stands after a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStatus {
    /// Average over the samples held so far (0 when none).
    pub average: f64,
    /// Samples held / samples in a full window.
    pub filled: usize,
    pub capacity: usize,
    /// The threshold state; `Ok` until the window is full.
    pub state: CheckState,
}

impl WindowStatus {
    pub fn is_full(&self) -> bool {
        self.filled >= self.capacity
    }
}

/// The last `capacity` percentages and their thresholds.
#[derive(Debug, Clone)]
pub struct Window {
    samples: VecDeque<f64>,
    capacity: usize,
    warn_percent: f64,
    crit_percent: f64,
}

impl Window {
    pub fn new(settings: &WindowSettings, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity,
            warn_percent: settings.warn_percent,
            crit_percent: settings.crit_percent,
        }
    }

    /// The window a check runs with: the configured one, or a single
    /// sample in [`Mode::Once`].
    pub fn for_mode(settings: &WindowSettings, mode: Mode) -> Self {
        let capacity = match mode {
            Mode::Continuous => settings.samples(),
            Mode::Once => 1,
        };
        Self::new(settings, capacity)
    }

    /// Adds a sample (if any) and returns the status.
    pub fn push(&mut self, sample: Option<f64>) -> WindowStatus {
        if let Some(value) = sample.filter(|v| v.is_finite()) {
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
            }
            self.samples.push_back(value);
        }
        self.status()
    }

    pub fn status(&self) -> WindowStatus {
        let filled = self.samples.len();
        // Summing at most a few hundred values: no drift worth a running sum.
        #[allow(clippy::cast_precision_loss)]
        let average = if filled == 0 {
            0.0
        } else {
            self.samples.iter().sum::<f64>() / filled as f64
        };
        let state = if filled < self.capacity {
            CheckState::Ok
        } else if average >= self.crit_percent {
            CheckState::Crit
        } else if average >= self.warn_percent {
            CheckState::Warn
        } else {
            CheckState::Ok
        };
        WindowStatus {
            average,
            filled,
            capacity: self.capacity,
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn window(capacity: usize) -> Window {
        let settings = WindowSettings {
            sample_interval: Duration::from_secs(5),
            window: Duration::from_secs(5 * capacity as u64),
            warn_percent: 90.0,
            crit_percent: 98.0,
        };
        Window::new(&settings, settings.samples())
    }

    #[test]
    fn stays_ok_until_full() {
        let mut w = window(3);
        assert_eq!(w.push(None).state, CheckState::Ok);
        assert_eq!(w.push(Some(100.0)).state, CheckState::Ok);
        let s = w.push(Some(100.0));
        assert_eq!((s.state, s.filled, s.capacity), (CheckState::Ok, 2, 3));
        let s = w.push(Some(100.0));
        assert_eq!((s.state, s.average), (CheckState::Crit, 100.0));
    }

    #[test]
    fn decides_on_the_average_over_the_window() {
        let mut w = window(4);
        for v in [100.0, 100.0, 80.0, 80.0] {
            w.push(Some(v));
        }
        // average 90: at the warn threshold
        assert_eq!(w.status().state, CheckState::Warn);
        // the oldest 100 slides out: (100+80+80+0)/4 = 65
        let s = w.push(Some(0.0));
        assert_eq!((s.state, s.average), (CheckState::Ok, 65.0));
    }

    #[test]
    fn a_spike_does_not_trip_a_full_window() {
        let mut w = window(4);
        for _ in 0..4 {
            w.push(Some(10.0));
        }
        assert_eq!(w.push(Some(100.0)).state, CheckState::Ok);
    }

    #[test]
    fn ignores_non_finite_samples() {
        let mut w = window(1);
        assert_eq!(w.push(Some(f64::NAN)).filled, 0);
    }
}
