//! The agent's TOML configuration: typed structs with documented defaults,
//! loading (unknown keys are errors) and a pure [`Config::validate`] that
//! reports every bad value at once. `deploy/agent.example.toml` lists every
//! key with its default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

mod backup;
mod certificate;
mod log;
mod net;
mod plugin;
mod process;
mod reboot;
mod service;
mod update;
mod validate;

pub use backup::BackupConfig;
pub use certificate::CertificateConfig;
pub use log::{LogConfig, LogMatchState};
pub use net::{HttpConfig, TcpConfig};
pub use plugin::PluginConfig;
pub use process::ProcessConfig;
pub use reboot::RebootRequiredConfig;
pub use service::{Expect, ServiceConfig};
pub use update::UpdateConfig;

/// Where `--config` points when it is not given, on Linux and macOS; see
/// [`default_config_path`] for every OS.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/forewarn/agent.toml";

/// Where `--config` points when it is not given: [`DEFAULT_CONFIG_PATH`],
/// or `%ProgramData%\Forewarn\agent.toml` on Windows.
pub fn default_config_path() -> PathBuf {
    crate::platform::default_config_path()
}

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Heartbeat + metrics snapshot period.
    pub interval_secs: u64,
    /// Identity, key and certificates.
    pub state_dir: PathBuf,
    /// Log filter (`error` … `trace` or an env-filter directive); `RUST_LOG` wins.
    pub log_level: String,
    /// Fraction of the client certificate's lifetime after which it is
    /// renewed (0.1 … 0.95).
    pub renew_at_fraction: f64,
    /// Overrides what `enroll` recorded.
    pub collector: CollectorConfig,
    /// The on-disk queue of unacknowledged reports.
    pub spool: SpoolConfig,
    /// The checks the agent runs.
    pub checks: ChecksConfig,
    /// Signed self-update from the collector.
    pub update: UpdateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval_secs: 15,
            state_dir: crate::platform::default_state_dir(),
            log_level: "info".to_owned(),
            renew_at_fraction: 0.66,
            collector: CollectorConfig::default(),
            spool: SpoolConfig::default(),
            checks: ChecksConfig::default(),
            update: UpdateConfig::default(),
        }
    }
}

/// `[collector]`: optional overrides of the enrolled collector address.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// `https://HOST:PORT` of the collector's gRPC listener.
    pub url: Option<String>,
    /// Several collectors (replicas on one database), each
    /// `https://HOST:PORT`; the agent reports to one at a time and moves to
    /// another when it fails (`collectors.rs`). Not together with `url`.
    pub urls: Option<Vec<String>>,
    /// TLS name to expect in the collector's certificate; one name for
    /// every address, so every collector's certificate must carry it.
    pub server_name: Option<String>,
}

impl CollectorConfig {
    /// The configured addresses (`urls`, or `url` as a list of one), if any.
    pub fn addresses(&self) -> Option<Vec<String>> {
        match (&self.urls, &self.url) {
            (Some(urls), _) => Some(urls.clone()),
            (None, Some(url)) => Some(vec![url.clone()]),
            (None, None) => None,
        }
    }
}

/// `[spool]`: reports not yet acknowledged, kept in `<state_dir>/spool/`
/// (design in `agent/src/spool/mod.rs`). Takes effect at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Bound on the spool; when full, the oldest heartbeats are dropped
    /// first, state changes last (each drop counted and logged).
    pub max_bytes: u64,
    /// A segment file is closed at this size and a new one started.
    pub segment_bytes: u64,
    /// A spool disk that failed (full, read-only) is tried again this often;
    /// meanwhile reports are kept in memory.
    pub disk_retry_secs: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            segment_bytes: 1 << 20,
            disk_retry_secs: 30,
        }
    }
}

impl SpoolConfig {
    /// The spool's settings for the state dir `state_dir`.
    pub fn options(&self, state_dir: &Path) -> crate::spool::Options {
        crate::spool::Options {
            dir: state_dir.join("spool"),
            max_bytes: self.max_bytes,
            segment_bytes: self.segment_bytes,
            disk_retry: Duration::from_secs(self.disk_retry_secs),
        }
    }
}

/// `[checks]`: one table per check kind (known kinds: disk, cpu, memory).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    pub disk: DiskConfig,
    pub cpu: CpuConfig,
    pub memory: MemoryConfig,
    pub load: LoadConfig,
    /// `[[checks.backup]]`: one table per backup set.
    pub backup: Vec<BackupConfig>,
    /// `[[checks.log]]`: one table per (log file, pattern).
    pub log: Vec<LogConfig>,
    /// `[[checks.process]]`: one table per watched program.
    pub process: Vec<ProcessConfig>,
    /// `[[checks.service]]`: one table per watched service.
    pub service: Vec<ServiceConfig>,
    /// `[checks.reboot_required]`: pending reboot after updates.
    pub reboot_required: RebootRequiredConfig,
    /// `[[checks.plugin]]`: one table per Nagios-compatible plugin.
    pub plugin: Vec<PluginConfig>,
    /// `[[checks.tcp]]`: one table per TCP port to connect to.
    pub tcp: Vec<TcpConfig>,
    /// `[[checks.http]]`: one table per URL to fetch.
    pub http: Vec<HttpConfig>,
    /// `[[checks.certificate]]`: one table per certificate to watch.
    pub certificate: Vec<CertificateConfig>,
}

/// `[checks.load]`: the load average per CPU. The load average is itself a
/// sustained figure (an exponentially damped average over 1, 5 or 15 min).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Default: on, except on Windows, which has no load average (enabled
    /// there, the check is UNKNOWN "not supported").
    pub enabled: bool,
    pub interval_secs: u64,
    /// Which load average decides: 1, 5 or 15 (minutes).
    pub average_minutes: u32,
    /// WARN at or above this load per CPU.
    pub warn_per_cpu: f64,
    /// CRIT at or above this load per CPU.
    pub crit_per_cpu: f64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            enabled: !cfg!(windows),
            interval_secs: 15,
            average_minutes: 15,
            warn_per_cpu: 2.0,
            crit_per_cpu: 4.0,
        }
    }
}

/// `[checks.disk]`: used space per mounted filesystem.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    pub enabled: bool,
    /// statvfs is cheap; this is what makes a filling disk visible within ~1 s.
    pub poll_interval_ms: u64,
    pub warn_used_percent: f64,
    pub crit_used_percent: f64,
    /// Optional: WARN when less than this many bytes are free.
    pub warn_free_bytes: Option<u64>,
    /// Optional: CRIT when less than this many bytes are free.
    pub crit_free_bytes: Option<u64>,
    /// Explicit mount points (any fs type); empty = every fixed, non-pseudo filesystem.
    pub mounts: Vec<String>,
    pub exclude_mounts: Vec<String>,
    pub exclude_fs_types: Vec<String>,
    /// Per-mount overrides of the thresholds, keyed by mount point.
    pub overrides: BTreeMap<String, DiskOverride>,
    /// Time-to-full prediction from the recent free-space trend.
    pub trend_enabled: bool,
    /// History the linear fit looks at.
    pub trend_window_hours: f64,
    /// One history point per this many seconds.
    pub trend_sample_secs: u64,
    /// No forecast before the history spans this long.
    pub trend_min_span_secs: u64,
    /// No trend alarm below this used share (an almost empty disk taking one
    /// big write is not a problem).
    pub trend_min_used_percent: f64,
    /// WARN when the disk is predicted full within this many hours.
    pub warn_within_hours: f64,
    /// CRIT when predicted full within this many hours.
    pub crit_within_hours: f64,
}

/// The four disk thresholds for one mount. State = the worse of the percent
/// rule and the free-bytes rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskThresholds {
    pub warn_used_percent: f64,
    pub crit_used_percent: f64,
    pub warn_free_bytes: Option<u64>,
    pub crit_free_bytes: Option<u64>,
}

/// `[checks.disk.overrides."/mount"]`: any subset of the thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskOverride {
    pub warn_used_percent: Option<f64>,
    pub crit_used_percent: Option<f64>,
    pub warn_free_bytes: Option<u64>,
    pub crit_free_bytes: Option<u64>,
}

/// Pseudo and virtual filesystems that hold no user data. Network
/// filesystems are deliberately not here: a full NFS share is a real problem.
pub fn default_exclude_fs_types() -> Vec<String> {
    [
        "tmpfs",
        "devtmpfs",
        "overlay",
        "squashfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "ramfs",
        "autofs",
        "nsfs",
        "tracefs",
        "debugfs",
        "securityfs",
        "efivarfs",
        "mqueue",
        "hugetlbfs",
        "fusectl",
        "configfs",
        "binfmt_misc",
        "pstore",
        "bpf",
        "iso9660",
        "rpc_pipefs",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.gvfsd-fuse",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: 1000,
            warn_used_percent: 85.0,
            crit_used_percent: 95.0,
            warn_free_bytes: None,
            crit_free_bytes: None,
            mounts: Vec::new(),
            exclude_mounts: Vec::new(),
            exclude_fs_types: default_exclude_fs_types(),
            overrides: BTreeMap::new(),
            trend_enabled: true,
            trend_window_hours: 6.0,
            trend_sample_secs: 60,
            trend_min_span_secs: 1800,
            trend_min_used_percent: 40.0,
            warn_within_hours: 24.0,
            crit_within_hours: 4.0,
        }
    }
}

impl DiskConfig {
    /// The thresholds of `[checks.disk]` itself, before overrides.
    pub fn base_thresholds(&self) -> DiskThresholds {
        DiskThresholds {
            warn_used_percent: self.warn_used_percent,
            crit_used_percent: self.crit_used_percent,
            warn_free_bytes: self.warn_free_bytes,
            crit_free_bytes: self.crit_free_bytes,
        }
    }

    /// The thresholds for `mount`: the override's keys over the base ones.
    pub fn thresholds_for(&self, mount: &str) -> DiskThresholds {
        let base = self.base_thresholds();
        match self.overrides.get(mount) {
            None => base,
            Some(o) => DiskThresholds {
                warn_used_percent: o.warn_used_percent.unwrap_or(base.warn_used_percent),
                crit_used_percent: o.crit_used_percent.unwrap_or(base.crit_used_percent),
                warn_free_bytes: o.warn_free_bytes.or(base.warn_free_bytes),
                crit_free_bytes: o.crit_free_bytes.or(base.crit_free_bytes),
            },
        }
    }

    /// The time-to-full settings (hours may be fractional).
    pub fn trend(&self) -> crate::checks::TrendSettings {
        let hours = |h: f64| Duration::try_from_secs_f64(h * 3600.0).unwrap_or(Duration::ZERO);
        crate::checks::TrendSettings {
            window: hours(self.trend_window_hours),
            sample_every: Duration::from_secs(self.trend_sample_secs),
            min_span: Duration::from_secs(self.trend_min_span_secs),
            warn_within: hours(self.warn_within_hours),
            crit_within: hours(self.crit_within_hours),
            min_used_percent: self.trend_min_used_percent,
        }
    }

    /// How often the disks are polled.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// Settings shared by the windowed checks (cpu, memory).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSettings {
    pub sample_interval: Duration,
    pub window: Duration,
    pub warn_percent: f64,
    pub crit_percent: f64,
}

impl WindowSettings {
    /// How many samples make a full window (at least one).
    pub fn samples(&self) -> usize {
        let n = self.window.as_secs() / self.sample_interval.as_secs().max(1);
        usize::try_from(n).unwrap_or(usize::MAX).max(1)
    }
}

/// `[checks.cpu]`: sustained CPU usage, averaged over a window.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    pub enabled: bool,
    pub sample_interval_secs: u64,
    /// The state is decided on the average over this window, once it is full.
    pub window_secs: u64,
    pub warn_percent: f64,
    pub crit_percent: f64,
}

impl Default for CpuConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_interval_secs: 5,
            window_secs: 300,
            warn_percent: 90.0,
            crit_percent: 98.0,
        }
    }
}

impl CpuConfig {
    pub fn window(&self) -> WindowSettings {
        WindowSettings {
            sample_interval: Duration::from_secs(self.sample_interval_secs),
            window: Duration::from_secs(self.window_secs),
            warn_percent: self.warn_percent,
            crit_percent: self.crit_percent,
        }
    }
}

/// `[checks.memory]`: sustained memory usage, averaged over a window.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    pub enabled: bool,
    pub sample_interval_secs: u64,
    pub window_secs: u64,
    pub warn_percent: f64,
    pub crit_percent: f64,
    /// Swap used, sustained over the same window (item "swap"); off unless
    /// set — many hosts keep idle pages in swap without any problem.
    pub swap_warn_percent: Option<f64>,
    pub swap_crit_percent: Option<f64>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_interval_secs: 5,
            window_secs: 300,
            warn_percent: 90.0,
            crit_percent: 95.0,
            swap_warn_percent: None,
            swap_crit_percent: None,
        }
    }
}

impl MemoryConfig {
    /// The swap window, when swap thresholds are configured (a missing one
    /// of the two is taken as "never": 101 %).
    pub fn swap_window(&self) -> Option<WindowSettings> {
        if self.swap_warn_percent.is_none() && self.swap_crit_percent.is_none() {
            return None;
        }
        Some(WindowSettings {
            warn_percent: self.swap_warn_percent.unwrap_or(101.0),
            crit_percent: self.swap_crit_percent.unwrap_or(101.0),
            ..self.window()
        })
    }

    pub fn window(&self) -> WindowSettings {
        WindowSettings {
            sample_interval: Duration::from_secs(self.sample_interval_secs),
            window: Duration::from_secs(self.window_secs),
            warn_percent: self.warn_percent,
            crit_percent: self.crit_percent,
        }
    }
}

// === impl Config ===

impl Config {
    /// Loads the config: `path` if given (it must exist), else the default
    /// path if it exists, else the built-in defaults. Validated either way.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let default = default_config_path();
        let (path, required) = match path {
            Some(p) => (p, true),
            None => (default.as_path(), false),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                let config = Self::default();
                config.check("built-in defaults")?;
                return Ok(config);
            }
            Err(source) => {
                return Err(Error::ConfigRead {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let config = Self::parse(&text, path)?;
        config.check(&path.display().to_string())?;
        Ok(config)
    }

    /// Parses TOML text; `path` only names the source in errors, which
    /// also name the key (`checks.disk.warn_used_percent: invalid type…`).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let error = |message| Error::ConfigParse {
            path: path.to_owned(),
            message,
        };
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|e| error(describe_toml_error(text, &e, "")))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            error(describe_toml_error(text, e.inner(), &key))
        })
    }

    fn check(&self, source_name: &str) -> Result<()> {
        let problems = self.validate();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::ConfigInvalid {
                source_name: source_name.to_owned(),
                problems,
            })
        }
    }

    /// Every out-of-range value, each naming its key. Empty = valid.
    pub fn validate(&self) -> Vec<String> {
        validate::validate(self)
    }
}

/// One line: where (line, key path) and toml's own message.
fn describe_toml_error(text: &str, e: &toml::de::Error, key: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    let line = e.span().map(|span| {
        text.get(..span.start)
            .map_or(0, |before| before.matches('\n').count())
            + 1
    });
    // serde_path_to_error says "." for the document root.
    let key = (!key.is_empty() && key != ".").then_some(key);
    match (line, key) {
        (Some(line), Some(key)) => format!("line {line}: {key}: {message}"),
        (Some(line), None) => format!("line {line}: {message}"),
        (None, Some(key)) => format!("{key}: {message}"),
        (None, None) => message,
    }
}

#[cfg(test)]
mod tests;
