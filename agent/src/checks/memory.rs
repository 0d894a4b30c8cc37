//! The `memory` check: RAM in use (total minus available), sustained over a
//! window (`[checks.memory]`). One item, named "".

use std::time::Duration;

use super::window::Window;
use super::{Check, Evaluation, Metric, Mode, Needs, Sample, format_bytes, format_secs};
use crate::config::WindowSettings;

/// Sustained memory usage.
pub struct MemoryCheck {
    window: Window,
    settings: WindowSettings,
    mode: Mode,
    /// Whether the last evaluation was raised: then the next sample brings
    /// the process table, to name the heaviest processes.
    raised: bool,
}

impl MemoryCheck {
    /// In [`Mode::Once`] the window is a single sample.
    pub fn new(settings: WindowSettings, mode: Mode) -> Self {
        let capacity = match mode {
            Mode::Continuous => settings.samples(),
            Mode::Once => 1,
        };
        Self {
            window: Window::new(&settings, capacity),
            settings,
            mode,
            raised: false,
        }
    }
}

impl Check for MemoryCheck {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn interval(&self) -> Duration {
        self.settings.sample_interval
    }

    fn needs(&self) -> Needs {
        Needs {
            memory: true,
            processes: self.raised,
            ..Needs::default()
        }
    }

    fn evaluate(&mut self, sample: &Sample) -> Vec<Evaluation> {
        let memory = sample.memory.unwrap_or_default();
        let current = (memory.total_bytes > 0).then(|| memory.used_percent());
        let status = self.window.push(current);
        let now = format!(
            "{} of {} in use now",
            format_bytes(memory.used_bytes),
            format_bytes(memory.total_bytes)
        );
        let message = match self.mode {
            Mode::Once => format!("memory {:.1}% used ({now})", status.average),
            Mode::Continuous if status.is_full() => format!(
                "memory {:.1}% used on average over {} ({now})",
                status.average,
                format_secs(self.settings.window)
            ),
            Mode::Continuous => format!(
                "memory {:.1}% used on average over {} of {} samples, window not full yet ({now})",
                status.average, status.filled, status.capacity
            ),
        };
        #[allow(clippy::cast_precision_loss)]
        let metrics = vec![
            Metric::new("used_percent", status.average, "percent"),
            Metric::new("used_bytes", memory.used_bytes as f64, "bytes"),
            Metric::new("total_bytes", memory.total_bytes as f64, "bytes"),
        ];
        self.raised =
            status.state != super::CheckState::Ok || status.average >= self.settings.warn_percent;
        let mut message = message;
        if self.raised {
            message.push_str(&super::top_processes(
                sample.processes.as_ref(),
                |p| p.memory_bytes as f64,
                |p| format_bytes(p.memory_bytes),
            ));
        }
        vec![Evaluation {
            item: String::new(),
            state: status.state,
            message,
            metrics,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckState;
    use crate::config::MemoryConfig;
    use crate::host::MemoryUsage;

    fn sample(used: u64) -> Sample {
        Sample {
            memory: Some(MemoryUsage {
                used_bytes: used,
                total_bytes: 1000,
            }),
            ..Sample::default()
        }
    }

    #[test]
    fn averages_over_the_window() {
        let config = MemoryConfig {
            sample_interval_secs: 5,
            window_secs: 10,
            ..MemoryConfig::default()
        };
        let mut check = MemoryCheck::new(config.window(), Mode::Continuous);
        assert_eq!(check.evaluate(&sample(990))[0].state, CheckState::Ok);
        // (990 + 900) / 2 = 94.5%: warn (90), not crit (95)
        let e = check.evaluate(&sample(900));
        assert_eq!(e[0].state, CheckState::Warn, "{}", e[0].message);
        assert!(
            e[0].message
                .starts_with("memory 94.5% used on average over 10 s")
        );
    }
}
