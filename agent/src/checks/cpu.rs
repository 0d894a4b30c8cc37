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
    /// Whether the last evaluation was raised: then the next sample brings
    /// the process table, to name the heaviest processes.
    raised: bool,
}

impl CpuCheck {
    /// In [`Mode::Once`] the window is a single sample.
    pub fn new(settings: WindowSettings, mode: Mode) -> Self {
        Self {
            window: Window::for_mode(&settings, mode),
            settings,
            mode,
            raised: false,
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
            processes: self.raised,
            ..Needs::default()
        }
    }

    fn evaluate(&mut self, sample: &Sample) -> Vec<Evaluation> {
        if let Some(problem) = &sample.cpu_problem {
            self.raised = false;
            return vec![Evaluation {
                item: String::new(),
                state: super::CheckState::Unknown,
                message: format!("cpu usage unavailable: {problem}"),
                metrics: Vec::new(),
            }];
        }
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
        self.raised =
            status.state != super::CheckState::Ok || status.average >= self.settings.warn_percent;
        let mut message = message;
        if self.raised {
            message.push_str(&super::top_processes(
                sample.processes.as_ref(),
                |p| p.cpu_percent,
                |p| format!("{:.0}% cpu", p.cpu_percent),
            ));
        }
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
    fn a_raised_state_names_the_top_processes() {
        let config = CpuConfig {
            sample_interval_secs: 5,
            window_secs: 5,
            ..CpuConfig::default()
        };
        let mut check = CpuCheck::new(config.window(), Mode::Continuous);
        assert!(!check.needs().processes);
        check.evaluate(&sample(99.0));
        assert!(check.needs().processes);
        let mut s = sample(99.0);
        s.processes = Some(vec![crate::host::TopProcess {
            pid: 42,
            name: "spin".into(),
            cpu_percent: 97.0,
            memory_bytes: 0,
        }]);
        let e = check.evaluate(&s);
        assert!(
            e[0].message.ends_with("; top: spin (pid 42) 97% cpu"),
            "{}",
            e[0].message
        );
        check.evaluate(&sample(1.0));
        assert!(!check.needs().processes, "back to normal: no process table");
    }

    #[test]
    fn a_platform_without_a_figure_is_unknown_with_the_reason() {
        let mut check = CpuCheck::new(CpuConfig::default().window(), Mode::Once);
        let e = check.evaluate(&Sample {
            cpu_problem: Some("GetSystemTimes failed: access denied".into()),
            ..Sample::default()
        });
        assert_eq!(e[0].state, CheckState::Unknown);
        assert_eq!(
            e[0].message,
            "cpu usage unavailable: GetSystemTimes failed: access denied"
        );
        assert!(e[0].metrics.is_empty());
    }

    #[test]
    fn once_mode_decides_on_one_sample() {
        let mut check = CpuCheck::new(CpuConfig::default().window(), Mode::Once);
        assert_eq!(check.evaluate(&sample(95.0))[0].state, CheckState::Warn);
    }
}
