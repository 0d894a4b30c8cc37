//! Checks: the agent-side evaluation of host data into OK / WARN / CRIT /
//! UNKNOWN. Each kind implements [`Check`] and is pure given a [`Sample`];
//! [`StateTracker`] adds `since` and detects state changes; [`build`] is the
//! registry that turns `[checks.*]` config into check instances.

mod backup;
mod certificate;
// Service managers and reboot tools are commands on Linux and macOS; the
// Windows build asks the SCM and the registry through their APIs.
#[cfg_attr(windows, allow(dead_code))]
mod command;
mod cpu;
mod disk;
pub mod limits;
mod load;
mod log;
mod memory;
pub(crate) mod net;
pub mod output;
pub mod plugin;
mod process;
pub(crate) mod reboot;
mod service;
mod state;
pub mod trend;
pub(crate) mod watch;
mod window;

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

pub use disk::{DiskCheck, DiskSelector};
pub use state::StateTracker;
pub use trend::TrendSettings;

use crate::config::ChecksConfig;
use crate::host::{DiskUsage, LoadAverage, MemoryUsage, TOP_PROCESSES, TopProcess};

/// The known check kinds, in the order they are built.
pub const KINDS: [&str; 4] = ["disk", "cpu", "memory", "load"];

/// Outcome of a check, in the Nagios sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckState {
    Ok,
    Warn,
    Crit,
    Unknown,
}

impl CheckState {
    /// `OK`, `WARN`, `CRIT`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Crit => "CRIT",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The Nagios plugin exit code: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warn => 1,
            Self::Crit => 2,
            Self::Unknown => 3,
        }
    }

    /// How bad a state is: CRIT > WARN > UNKNOWN > OK (a known problem
    /// outranks not knowing; monitoring-plugins' `max_state_alt`).
    fn severity(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Unknown => 1,
            Self::Warn => 2,
            Self::Crit => 3,
        }
    }

    /// The more severe of two states.
    pub fn worst(self, other: Self) -> Self {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for CheckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured value attached to a result. Names and units are usually
/// static (`used_percent`); plugin performance data brings dynamic ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: Cow<'static, str>,
    pub value: f64,
    /// `percent`, `bytes`, `seconds`, `` … (plugins: their UOM, e.g. `MB`)
    pub unit: Cow<'static, str>,
    /// A plugin's warn/crit ranges and min/max from its performance data;
    /// `None` for the agent's own metrics (boxed: most metrics have none).
    pub thresholds: Option<Box<plugin::perfdata::Thresholds>>,
}

impl Metric {
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        value: f64,
        unit: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            name: name.into(),
            value,
            unit: unit.into(),
            thresholds: None,
        }
    }
}

/// What a check says about one item, before state tracking.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// What the result is about (a mount point); empty when there is one.
    pub item: String,
    pub state: CheckState,
    pub message: String,
    pub metrics: Vec<Metric>,
}

/// A tracked result: an evaluation plus its check kind and since when the
/// item has been in this state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub check: &'static str,
    pub item: String,
    pub state: CheckState,
    pub message: String,
    pub metrics: Vec<Metric>,
    pub since: SystemTime,
}

/// What a check reads from the host on its tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub disks: bool,
    pub cpu: bool,
    pub memory: bool,
    pub load: bool,
    /// The process table, to name the heaviest processes in a ticket.
    pub processes: bool,
}

impl Needs {
    /// Both sets of needs.
    pub fn union(self, other: Self) -> Self {
        Self {
            disks: self.disks || other.disks,
            cpu: self.cpu || other.cpu,
            memory: self.memory || other.memory,
            load: self.load || other.load,
            processes: self.processes || other.processes,
        }
    }
}

/// Host data for one evaluation; only what was needed is filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Every mounted filesystem the host lists (checks filter themselves).
    pub disks: Option<Vec<DiskUsage>>,
    /// Global CPU usage since the previous sample; `None` at start, when
    /// there is no meaningful figure yet.
    pub cpu_percent: Option<f64>,
    /// Why there is no CPU figure when the platform could not give one
    /// (the CPU check is then UNKNOWN with this reason).
    pub cpu_problem: Option<String>,
    pub memory: Option<MemoryUsage>,
    pub load: Option<LoadAverage>,
    /// Every process, when a check asked for them.
    pub processes: Option<Vec<TopProcess>>,
}

/// A check kind.
pub trait Check: Send {
    /// The kind name, as in `[checks.<kind>]`.
    fn kind(&self) -> &'static str;
    /// How often it wants a sample.
    fn interval(&self) -> Duration;
    /// Which host data it reads.
    fn needs(&self) -> Needs;
    /// Folds `sample` in and says where every item stands now.
    fn evaluate(&mut self, sample: &Sample) -> Vec<Evaluation>;
}

/// A boxed future, for the object-safe [`Probe`] trait.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A check that does its own I/O — processes, services, files, network,
/// plugins — instead of reading the shared host [`Sample`]. Every probe runs
/// on its own task, so a slow or hanging one never delays another; the
/// scheduler caps each run at [`Probe::timeout`] and reports UNKNOWN when a
/// run overruns.
pub trait Probe: Send + 'static {
    /// The kind name, as in `[[checks.<kind>]]`.
    fn kind(&self) -> &'static str;
    /// The item this probe reports on (used for the timeout result).
    fn item(&self) -> String;
    /// How often to run when nothing wakes it earlier.
    fn interval(&self) -> Duration;
    /// Longest a run may take.
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    /// Event-driven probes (file watches) return a receiver that wakes them
    /// before the interval ends. Called once, before the first run.
    fn wake(&mut self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
    /// One run: where every item of this probe stands now.
    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>>;
}

/// Every configured probe (multi-instance kinds), from config.
pub fn build_probes(config: &ChecksConfig, _mode: Mode) -> Vec<Box<dyn Probe>> {
    let mut probes: Vec<Box<dyn Probe>> = Vec::new();
    probes.extend(process::probes(&config.process));
    probes.extend(service::probes(&config.service));
    probes.extend(reboot::probes(&config.reboot_required));
    probes.extend(plugin::build(&config.plugin));
    probes.extend(net::build_tcp(&config.tcp));
    probes.extend(net::build_http(&config.http));
    probes.extend(certificate::build(&config.certificate));
    probes.extend(backup::probes(&config.backup));
    probes.extend(log::probes(&config.log));
    probes
}

/// How the windowed checks treat time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The service: sustained averages over the configured windows.
    Continuous,
    /// `check --once`: a single short sample decides.
    Once,
}

/// Every enabled check, from config.
/// `state_dir` holds persisted history (the disk trend); `None` keeps it in
/// memory only.
pub fn build(
    config: &ChecksConfig,
    mode: Mode,
    state_dir: Option<&std::path::Path>,
) -> Vec<Box<dyn Check>> {
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    if config.disk.enabled {
        let history = state_dir.map(|d| d.join(disk::TREND_FILE));
        checks.push(Box::new(
            DiskCheck::new(&config.disk).with_history(history, mode),
        ));
    }
    if config.cpu.enabled {
        checks.push(Box::new(cpu::CpuCheck::new(config.cpu.window(), mode)));
    }
    if config.memory.enabled {
        checks.push(Box::new(
            memory::MemoryCheck::new(config.memory.window(), mode)
                .with_swap(config.memory.swap_window()),
        ));
    }
    if config.load.enabled {
        checks.push(Box::new(load::LoadCheck::new(&config.load)));
    }
    checks
}

/// `; top: java (pid 812) 180%, postgres (pid 77) 40%` — the heaviest
/// processes by `key`, for a ticket text; empty when none were sampled.
pub fn top_processes(
    processes: Option<&Vec<TopProcess>>,
    key: fn(&TopProcess) -> f64,
    show: fn(&TopProcess) -> String,
) -> String {
    let Some(processes) = processes else {
        return String::new();
    };
    let mut sorted: Vec<&TopProcess> = processes.iter().collect();
    sorted.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let top: Vec<String> = sorted
        .iter()
        .take(TOP_PROCESSES)
        .map(|p| format!("{} (pid {}) {}", p.name, p.pid, show(p)))
        .collect();
    if top.is_empty() {
        String::new()
    } else {
        format!("; top: {}", top.join(", "))
    }
}

/// Bytes for people: `312 KiB`, `8.0 MiB`, `1.5 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration for people: `45 s`, `5 min`, `90 s`.
pub fn format_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_state_ranks_crit_over_warn_over_unknown() {
        use CheckState::*;
        assert_eq!(Ok.worst(Unknown), Unknown);
        assert_eq!(Unknown.worst(Warn), Warn);
        assert_eq!(Crit.worst(Warn), Crit);
        assert_eq!(Warn.worst(Ok), Warn);
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(312 * 1024), "312 KiB");
        assert_eq!(format_bytes(8 * 1024 * 1024), "8.0 MiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }

    #[test]
    fn every_kind_is_built_by_default() {
        let checks = build(&ChecksConfig::default(), Mode::Continuous, None);
        let kinds: Vec<_> = checks.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, KINDS);
    }
}
