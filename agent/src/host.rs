//! What the agent reads from the machine, through sysinfo: static facts sent
//! on enrollment and in `Hello`, and the periodic snapshot sent in
//! heartbeats. One [`Host`] keeps a single `System` and `Disks` alive and
//! refreshes only what is asked for.
//!
//! All methods block (they read `/proc` and call statvfs): call them from
//! `tokio::task::spawn_blocking`.
//!
//! On Windows two readings bypass sysinfo: CPU usage comes from
//! `GetSystemTimes` (sysinfo's PDH counters are missing on some systems and
//! under Wine, where sysinfo then calls an unimplemented function and the
//! process dies), and volumes sysinfo does not list are read with
//! `GetDiskFreeSpaceExW` ([`crate::platform::windows::disks`]).

use std::time::{Duration, Instant};

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, ProcessRefreshKind,
    ProcessesToUpdate, RefreshKind, System,
};

use crate::error::{Error, Result};

/// How long to wait between two CPU refreshes for a meaningful usage figure.
pub const MINIMUM_CPU_SAMPLE: Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

/// Static facts about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub arch: String,
    pub agent_version: String,
    /// Rust target triple ([`crate::TARGET`]).
    pub target: String,
    pub cpu_count: u32,
    pub memory_total_bytes: u64,
}

/// Point-in-time metrics sent with every heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSnapshot {
    pub uptime_secs: u64,
    pub cpu_percent: f64,
    pub memory: MemoryUsage,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub disks: Vec<DiskUsage>,
}

/// RAM in use (total minus available, as the kernel counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
}

impl MemoryUsage {
    pub fn used_percent(&self) -> f64 {
        percent(self.used_bytes, self.total_bytes)
    }
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskUsage {
    pub mount_point: String,
    pub fs_type: String,
    /// The mounted device as the mount table names it (`/dev/sda1`, `tmpfs`).
    pub device: String,
    /// `st_dev` of the mount point: equal for bind mounts of one filesystem.
    pub device_id: Option<u64>,
    pub total_bytes: u64,
    /// Free space available to unprivileged users (statvfs `f_bavail`).
    pub available_bytes: u64,
}

impl DiskUsage {
    /// Used share of the filesystem; root-reserved blocks count as used.
    pub fn used_percent(&self) -> f64 {
        percent(
            self.total_bytes.saturating_sub(self.available_bytes),
            self.total_bytes,
        )
    }
}

/// `part` as a percentage of `whole`; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Precision loss above 2^53 bytes is irrelevant for a percentage.
        #[allow(clippy::cast_precision_loss)]
        let p = part as f64 / whole as f64 * 100.0;
        p
    }
}

/// Load averages (1, 5, 15 minutes) and the CPU count they compare to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub cpu_count: usize,
}

/// One process among the heaviest, for ticket texts.
#[derive(Debug, Clone, PartialEq)]
pub struct TopProcess {
    pub pid: u32,
    pub name: String,
    /// Share of one core since the previous process refresh.
    pub cpu_percent: f64,
    pub memory_bytes: u64,
}

/// How many processes a ticket text names.
pub const TOP_PROCESSES: usize = 3;

/// How often the mount table is read again, so a filesystem mounted or
/// unmounted since shows up. In between, a disk sample only re-reads the
/// sizes of the filesystems already listed (one statvfs each): the disk
/// check samples every 250 ms, and re-listing each time (the mount table,
/// `/dev/disk/by-id`) would cost most of the agent's idle CPU.
const MOUNT_LIST_EVERY: Duration = Duration::from_secs(2);

/// The machine, as sysinfo sees it.
pub struct Host {
    system: System,
    disks: Disks,
    /// When the mount table was last read ([`MOUNT_LIST_EVERY`]).
    disks_listed_at: Option<Instant>,
    last_cpu_percent: f64,
    /// Why the last CPU sample has no figure, if it has none.
    cpu_problem: Option<String>,
    /// The previous processor times, for the usage between two samples.
    #[cfg(windows)]
    cpu_times: Option<forewarn_winffi::SystemTimes>,
    /// Mount points the config names, read directly when sysinfo does not
    /// list them (canonical spelling).
    #[cfg(windows)]
    extra_mounts: Vec<String>,
}

impl Host {
    /// Reads the CPU list and memory once, so facts are available and the
    /// next CPU refresh yields a usage figure.
    pub fn new() -> Result<Self> {
        // Windows: the CPU list only (GetSystemInfo), never sysinfo's PDH
        // usage query; usage comes from GetSystemTimes.
        let cpu = if cfg!(windows) {
            CpuRefreshKind::nothing()
        } else {
            CpuRefreshKind::nothing().with_usage()
        };
        let kind = RefreshKind::nothing()
            .with_cpu(cpu)
            .with_memory(MemoryRefreshKind::nothing().with_ram().with_swap());
        let system = System::new_with_specifics(kind).map_err(host_error)?;
        let disks = Disks::new().map_err(host_error)?;
        Ok(Self {
            system,
            disks,
            disks_listed_at: None,
            last_cpu_percent: 0.0,
            cpu_problem: None,
            #[cfg(windows)]
            cpu_times: forewarn_winffi::system_times().ok(),
            #[cfg(windows)]
            extra_mounts: Vec::new(),
        })
    }

    /// Mount points to read even when sysinfo does not list them (Windows
    /// only: volumes sysinfo misses, and under Wine it finds none).
    #[must_use]
    pub fn with_mounts(self, mounts: &[String]) -> Self {
        #[cfg(windows)]
        {
            let mut host = self;
            host.extra_mounts = mounts
                .iter()
                .filter_map(|m| crate::platform::mounts::normalize_here(m))
                .collect();
            host
        }
        #[cfg(not(windows))]
        {
            let _ = mounts;
            self
        }
    }

    /// Hostname, OS, kernel, CPU count and memory size.
    pub fn facts(&self) -> HostFacts {
        let cpu_count = match self.system.cpus().len() {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        HostFacts {
            hostname: System::host_name().unwrap_or_else(|_| "unknown".to_owned()),
            os_name: System::name().unwrap_or_default(),
            os_version: System::os_version().unwrap_or_default(),
            kernel_version: System::kernel_version().unwrap_or_default(),
            arch: System::cpu_arch(),
            agent_version: crate::VERSION.to_owned(),
            target: crate::TARGET.to_owned(),
            cpu_count: u32::try_from(cpu_count).unwrap_or(u32::MAX),
            memory_total_bytes: self.system.total_memory(),
        }
    }

    /// Global CPU usage since the previous call (or since [`Host::new`]);
    /// `None` when the platform gave no figure ([`Host::cpu_problem`] says
    /// why).
    pub fn sample_cpu(&mut self) -> Option<f64> {
        match self.read_cpu() {
            Ok(percent) => {
                self.cpu_problem = None;
                self.last_cpu_percent = percent;
                Some(percent)
            }
            Err(problem) => {
                self.cpu_problem = Some(problem);
                None
            }
        }
    }

    /// Why the last [`Host::sample_cpu`] has no figure, if it has none.
    pub fn cpu_problem(&self) -> Option<String> {
        self.cpu_problem.clone()
    }

    #[cfg(not(windows))]
    fn read_cpu(&mut self) -> std::result::Result<f64, String> {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        Ok(f64::from(self.system.global_cpu_usage()))
    }

    #[cfg(windows)]
    fn read_cpu(&mut self) -> std::result::Result<f64, String> {
        let now =
            forewarn_winffi::system_times().map_err(|e| format!("GetSystemTimes failed: {e}"))?;
        match self.cpu_times.replace(now) {
            None => Err("no earlier processor times to compare with yet".to_owned()),
            Some(before) => now
                .busy_percent_since(&before)
                .ok_or_else(|| "no processor time passed since the previous sample".to_owned()),
        }
    }

    /// The figure of the last [`Host::sample_cpu`].
    pub fn last_cpu_percent(&self) -> f64 {
        self.last_cpu_percent
    }

    /// Current RAM and swap usage.
    pub fn sample_memory(&mut self) -> MemoryUsage {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        MemoryUsage {
            used_bytes: self.system.used_memory(),
            total_bytes: self.system.total_memory(),
            swap_used_bytes: self.system.used_swap(),
            swap_total_bytes: self.system.total_swap(),
        }
    }

    /// Current load averages (zeros where the platform has none).
    pub fn sample_load(&self) -> LoadAverage {
        let l = System::load_average().unwrap_or(sysinfo::LoadAvg {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
        });
        LoadAverage {
            one: l.one,
            five: l.five,
            fifteen: l.fifteen,
            cpu_count: self.system.cpus().len().max(1),
        }
    }

    /// Every process with its CPU share (since the previous call) and
    /// resident memory. Only refreshed while a problem is being explained,
    /// so the process table costs nothing in the normal case.
    pub fn sample_processes(&mut self) -> Vec<TopProcess> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        self.system
            .processes()
            .values()
            .map(|p| TopProcess {
                pid: p.pid().as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                cpu_percent: f64::from(p.cpu_usage()),
                memory_bytes: p.memory(),
            })
            .collect()
    }

    /// Every mounted filesystem sysinfo lists, with fresh sizes. The mount
    /// table is read again at most every [`MOUNT_LIST_EVERY`], so a
    /// filesystem mounted after start shows up within that.
    pub fn sample_disks(&mut self) -> Vec<DiskUsage> {
        let sizes = DiskRefreshKind::nothing().with_storage();
        if self
            .disks_listed_at
            .is_none_or(|at| at.elapsed() >= MOUNT_LIST_EVERY)
        {
            self.disks.refresh_specifics(true, sizes);
            self.disks_listed_at = Some(Instant::now());
        } else {
            for disk in self.disks.iter_mut() {
                disk.refresh_specifics(sizes);
            }
        }
        let listed: Vec<DiskUsage> = self
            .disks
            .iter()
            .map(|d| DiskUsage {
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                fs_type: d.file_system().to_string_lossy().into_owned(),
                device: d.name().to_string_lossy().into_owned(),
                device_id: d.id(),
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
            })
            .collect();
        #[cfg(windows)]
        let listed = crate::platform::windows::disks::complete(listed, &self.extra_mounts);
        listed
    }

    /// The heartbeat snapshot. CPU is the last sampled figure unless
    /// `refresh_cpu` is set (when no CPU check samples it), disks are passed
    /// in already filtered.
    pub fn snapshot(&mut self, refresh_cpu: bool, disks: Vec<DiskUsage>) -> HostSnapshot {
        if refresh_cpu {
            let _ = self.sample_cpu();
        }
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let load = System::load_average().unwrap_or(sysinfo::LoadAvg {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
        });
        HostSnapshot {
            uptime_secs: System::uptime().unwrap_or(0),
            cpu_percent: self.last_cpu_percent,
            memory: MemoryUsage {
                used_bytes: self.system.used_memory(),
                total_bytes: self.system.total_memory(),
                swap_used_bytes: self.system.used_swap(),
                swap_total_bytes: self.system.total_swap(),
            },
            swap_used_bytes: self.system.used_swap(),
            swap_total_bytes: self.system.total_swap(),
            load1: load.one,
            load5: load.five,
            load15: load.fifteen,
            disks,
        }
    }
}

fn host_error(e: sysinfo::Error) -> Error {
    Error::Host(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(1, 0), 0.0);
        let d = DiskUsage {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            device: "/dev/sda1".into(),
            device_id: Some(1),
            total_bytes: 1000,
            available_bytes: 39,
        };
        assert!((d.used_percent() - 96.1).abs() < 1e-9);
    }

    #[test]
    fn reads_this_host() {
        let mut host = Host::new().expect("sysinfo works here");
        let facts = host.facts();
        assert!(facts.cpu_count >= 1);
        assert!(facts.memory_total_bytes > 0);
        assert!(host.sample_memory().total_bytes > 0);
        assert!(!host.sample_disks().is_empty());
    }
}
