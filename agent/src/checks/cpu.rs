//! The `cpu` check: global CPU usage, sustained over a window
//! (`[checks.cpu]`). One item, named "".

use std::time::Duration;

use super::window::Window;
use super::{Check, Evaluation, Metric, Mode, Needs, Sample, format_secs};
use crate::config::WindowSettings;

/// Sustained CPU usage.
pub struct CpuCheck {
    window: Window,
    settings: WindowSettings,
    mode: Mode,
}

impl CpuCheck {
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
        }
    }
}

impl Check for CpuCheck {
    fn kind(&self) -> &'static str {
        "cpu"
    }

    fn interval(&self) -> Duration {
        self.settings.sample_interval
    }

    fn needs(&self) -> Needs {
        Needs {
            cpu: true,
            ..Needs::default()
        }
    }

    fn evaluate(&mut self, sample: &Sample) -> Vec<Evaluation> {
        let status = self.window.push(sample.cpu_percent);
        let message = match self.mode {
            Mode::Once => format!("cpu {:.1}% in a single short sample", status.average),
            Mode::Continuous if status.is_full() => format!(
                "cpu {:.1}% average over {}",
                status.average,
                format_secs(self.settings.window)
            ),
            Mode::Continuous => format!(
                "cpu {:.1}% average over {} of {} samples (window not full yet)",
                status.average, status.filled, status.capacity
            ),
        };
        vec![Evaluation {
            item: String::new(),
            state: status.state,
            message,
            metrics: vec![Metric::new("usage_percent", status.average, "percent")],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckState;
    use crate::config::CpuConfig;

    fn sample(cpu: f64) -> Sample {
        Sample {
            cpu_percent: Some(cpu),
            ..Sample::default()
        }
    }

    #[test]
    fn sustained_load_goes_crit_only_when_the_window_is_full() {
        let config = CpuConfig {
            sample_interval_secs: 5,
            window_secs: 15,
            ..CpuConfig::default()
        };
        let mut check = CpuCheck::new(config.window(), Mode::Continuous);
        for _ in 0..2 {
            let e = check.evaluate(&sample(99.0));
            assert_eq!(e[0].state, CheckState::Ok, "{}", e[0].message);
            assert!(e[0].message.contains("not full"), "{}", e[0].message);
        }
        let e = check.evaluate(&sample(99.0));
        assert_eq!(e[0].state, CheckState::Crit);
        assert_eq!(e[0].message, "cpu 99.0% average over 15 s");
        assert_eq!(e[0].item, "");
    }

    #[test]
    fn once_mode_decides_on_one_sample() {
        let mut check = CpuCheck::new(CpuConfig::default().window(), Mode::Once);
        assert_eq!(check.evaluate(&sample(95.0))[0].state, CheckState::Warn);
    }
}
