//! The `load` check: the load average per CPU (`[checks.load]`). One item,
//! named "". When it is raised, the message names the processes using the
//! most CPU at that moment. Windows has no load average: the check is off
//! by default there, and UNKNOWN "not supported" when enabled.

use std::time::Duration;

use super::{Check, CheckState, Evaluation, Metric, Needs, Sample, top_processes};
use crate::config::LoadConfig;

/// Load average per CPU.
pub struct LoadCheck {
    config: LoadConfig,
    last_state: CheckState,
    /// Whether this OS has a load average.
    supported: bool,
}

impl LoadCheck {
    pub fn new(config: &LoadConfig) -> Self {
        Self::for_platform(config, !cfg!(windows))
    }

    /// For an OS with (`supported`) or without a load average.
    pub fn for_platform(config: &LoadConfig, supported: bool) -> Self {
        Self {
            config: config.clone(),
            last_state: CheckState::Ok,
            supported,
        }
    }
}

impl Check for LoadCheck {
    fn kind(&self) -> &'static str {
        "load"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.config.interval_secs)
    }

    fn needs(&self) -> Needs {
        if !self.supported {
            return Needs::default();
        }
        Needs {
            load: true,
            // The process table only while there is a problem to explain.
            processes: self.last_state != CheckState::Ok,
            ..Needs::default()
        }
    }

    fn evaluate(&mut self, sample: &Sample) -> Vec<Evaluation> {
        if !self.supported {
            return vec![Evaluation {
                item: String::new(),
                state: CheckState::Unknown,
                message: "load average is not supported on Windows".to_owned(),
                metrics: Vec::new(),
            }];
        }
        let Some(load) = sample.load else {
            return Vec::new();
        };
        let value = match self.config.average_minutes {
            1 => load.one,
            5 => load.five,
            _ => load.fifteen,
        };
        #[allow(clippy::cast_precision_loss)]
        let per_cpu = value / load.cpu_count.max(1) as f64;
        let state = if per_cpu >= self.config.crit_per_cpu {
            CheckState::Crit
        } else if per_cpu >= self.config.warn_per_cpu {
            CheckState::Warn
        } else {
            CheckState::Ok
        };
        self.last_state = state;
        let mut message = format!(
            "load {value:.2} ({} min average) on {} CPUs = {per_cpu:.2} per CPU",
            self.config.average_minutes, load.cpu_count
        );
        if state != CheckState::Ok {
            message.push_str(&top_processes(
                sample.processes.as_ref(),
                |p| p.cpu_percent,
                |p| format!("{:.0}% cpu", p.cpu_percent),
            ));
        }
        vec![Evaluation {
            item: String::new(),
            state,
            message,
            metrics: vec![
                Metric::new("load1", load.one, ""),
                Metric::new("load5", load.five, ""),
                Metric::new("load15", load.fifteen, ""),
                Metric::new("load_per_cpu", per_cpu, ""),
            ],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{LoadAverage, TopProcess};

    fn sample(fifteen: f64, processes: Option<Vec<TopProcess>>) -> Sample {
        Sample {
            load: Some(LoadAverage {
                one: 0.0,
                five: 0.0,
                fifteen,
                cpu_count: 2,
            }),
            processes,
            ..Sample::default()
        }
    }

    #[test]
    fn without_a_load_average_it_is_unknown_and_reads_nothing() {
        let mut check = LoadCheck::for_platform(&LoadConfig::default(), false);
        assert_eq!(check.needs(), Needs::default());
        let e = check.evaluate(&sample(9.0, None));
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].state, e[0].message.as_str()),
            (
                CheckState::Unknown,
                "load average is not supported on Windows"
            )
        );
    }

    #[test]
    fn load_per_cpu_thresholds_and_top_processes() {
        let mut check = LoadCheck::new(&LoadConfig::default());
        assert!(!check.needs().processes);
        let e = check.evaluate(&sample(3.0, None));
        assert_eq!(e[0].state, CheckState::Ok, "{}", e[0].message);
        let e = check.evaluate(&sample(4.0, None));
        assert_eq!(e[0].state, CheckState::Warn);
        assert!(
            check.needs().processes,
            "a raised state asks for the process table"
        );
        let procs = vec![
            TopProcess {
                pid: 1,
                name: "idle".into(),
                cpu_percent: 0.5,
                memory_bytes: 1,
            },
            TopProcess {
                pid: 812,
                name: "java".into(),
                cpu_percent: 180.0,
                memory_bytes: 1,
            },
        ];
        let e = check.evaluate(&sample(9.0, Some(procs)));
        assert_eq!(e[0].state, CheckState::Crit);
        assert!(
            e[0].message
                .ends_with("; top: java (pid 812) 180% cpu, idle (pid 1) 0% cpu"),
            "{}",
            e[0].message
        );
    }
}
