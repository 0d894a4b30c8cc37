//! The `memory` check: RAM in use (total minus available), sustained over a
//! window (`[checks.memory]`). One item, named "".

use std::time::Duration;

use super::window::Window;
use super::{Check, Evaluation, Metric, Mode, Needs, Sample, format_bytes, format_secs};
use crate::config::WindowSettings;

/// What the message calls swap: Windows' paging file (commit limit minus
/// physical memory, as sysinfo counts it), swap elsewhere. The item and the
/// config keys say "swap" everywhere.
const SWAP_NAME: &str = if cfg!(windows) { "paging file" } else { "swap" };

/// Sustained memory usage.
pub struct MemoryCheck {
    window: Window,
    settings: WindowSettings,
    mode: Mode,
    /// Whether the last evaluation was raised: then the next sample brings
    /// the process table, to name the heaviest processes.
    raised: bool,
    /// Swap used, when swap thresholds are configured (item "swap").
    swap: Option<(Window, WindowSettings)>,
}

impl MemoryCheck {
    /// In [`Mode::Once`] the window is a single sample.
    pub fn new(settings: WindowSettings, mode: Mode) -> Self {
        Self {
            window: Window::for_mode(&settings, mode),
            settings,
            mode,
            raised: false,
            swap: None,
        }
    }

    /// Also watches swap use over the same window (item "swap").
    #[must_use]
    pub fn with_swap(mut self, settings: Option<WindowSettings>) -> Self {
        self.swap = settings.map(|s| (Window::for_mode(&s, self.mode), s));
        self
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
        let mut evaluations = vec![Evaluation {
            item: String::new(),
            state: status.state,
            message,
            metrics,
        }];
        if let Some((window, settings)) = self.swap.as_mut() {
            let current = (memory.swap_total_bytes > 0)
                .then(|| crate::host::percent(memory.swap_used_bytes, memory.swap_total_bytes));
            let s = window.push(current.or(Some(0.0)));
            let message = if memory.swap_total_bytes == 0 {
                format!("no {SWAP_NAME} configured")
            } else {
                let over = match self.mode {
                    Mode::Once => "in a single sample".to_owned(),
                    Mode::Continuous if s.is_full() => {
                        format!("on average over {}", format_secs(settings.window))
                    }
                    Mode::Continuous => format!(
                        "on average over {}, window not full yet",
                        format_secs(settings.window)
                    ),
                };
                format!(
                    "{SWAP_NAME} {:.1}% used {over} ({} of {} now)",
                    s.average,
                    format_bytes(memory.swap_used_bytes),
                    format_bytes(memory.swap_total_bytes)
                )
            };
            #[allow(clippy::cast_precision_loss)]
            evaluations.push(Evaluation {
                item: "swap".to_string(),
                state: s.state,
                message,
                metrics: vec![
                    Metric::new("swap_used_percent", s.average, "percent"),
                    Metric::new("swap_used_bytes", memory.swap_used_bytes as f64, "bytes"),
                ],
            });
        }
        evaluations
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
                swap_used_bytes: used / 2,
                swap_total_bytes: 1000,
            }),
            ..Sample::default()
        }
    }

    #[test]
    fn swap_is_watched_only_when_configured() {
        let config = MemoryConfig {
            sample_interval_secs: 5,
            window_secs: 5,
            swap_warn_percent: Some(40.0),
            swap_crit_percent: Some(80.0),
            ..MemoryConfig::default()
        };
        let mut plain = MemoryCheck::new(config.window(), Mode::Continuous);
        assert_eq!(plain.evaluate(&sample(900)).len(), 1);
        let mut check =
            MemoryCheck::new(config.window(), Mode::Continuous).with_swap(config.swap_window());
        let e = check.evaluate(&sample(900));
        assert_eq!(e[1].item, "swap");
        assert_eq!(e[1].state, CheckState::Warn, "{}", e[1].message);
        assert!(
            e[1].message.starts_with("swap 45.0% used"),
            "{}",
            e[1].message
        );
        assert!(MemoryConfig::default().swap_window().is_none());
        let mut once =
            MemoryCheck::new(config.window(), Mode::Once).with_swap(config.swap_window());
        let e = once.evaluate(&sample(450));
        assert!(
            e[1].message.contains("% used in a single sample ("),
            "{}",
            e[1].message
        );
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
