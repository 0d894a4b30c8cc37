//! What a simulated agent reports: the check set of a typical server (cpu,
//! memory, load, disk per mount, services, processes) with the names, items,
//! messages and metrics the real agent's checks send (agent/src/checks/),
//! and the host snapshot of its heartbeats.
//!
//! Nothing here is stored per agent: results are built from static
//! templates, the agent's index and its raised checks when a report is
//! sent, so 20,000 agents cost no more memory than their connections.

use forewarn_proto::v1 as pb;

/// One kind of result an agent reports.
#[derive(Debug, Clone, Copy)]
enum Template {
    Cpu,
    Memory,
    Load,
    Disk(&'static str),
    Service(&'static str),
    Process(&'static str),
}

/// The first twelve checks; beyond them, more disks (`/data<n>`).
const TEMPLATES: [Template; 12] = [
    Template::Cpu,
    Template::Memory,
    Template::Load,
    Template::Disk("/"),
    Template::Disk("/var"),
    Template::Disk("/home"),
    Template::Disk("/boot"),
    Template::Service("sshd"),
    Template::Service("cron"),
    Template::Service("nginx"),
    Template::Process("postgres"),
    Template::Process("java"),
];

const GIB: u64 = 1 << 30;
const MEMORY_TOTAL: u64 = 16 * GIB;

/// The check set of every agent: `count` checks.
#[derive(Debug, Clone, Copy)]
pub struct CheckSet {
    count: usize,
}

/// A state a check can be raised to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    Warn,
    Crit,
}

impl CheckSet {
    pub fn new(count: usize) -> Self {
        Self { count }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    fn template(index: usize) -> (Template, String) {
        match TEMPLATES.get(index) {
            Some(t) => (*t, String::new()),
            None => (
                Template::Disk(""),
                format!("/data{}", index - TEMPLATES.len() + 1),
            ),
        }
    }

    /// The disks of the set: (mount point, total bytes, used share).
    fn disks(&self, agent: usize) -> impl Iterator<Item = (String, u64, f64)> + '_ {
        (0..self.count).filter_map(move |i| match Self::template(i) {
            (Template::Disk(m), extra) => {
                let mount = if m.is_empty() { extra } else { m.to_string() };
                let total = (20 + 10 * (i as u64 % 5)) * GIB;
                Some((mount, total, used_share(agent, i)))
            }
            _ => None,
        })
    }

    /// Check `index`'s result for agent `agent`: OK unless `raised`.
    pub fn result(
        &self,
        agent: usize,
        index: usize,
        raised: Option<Raised>,
        since_ms: i64,
    ) -> pb::CheckResult {
        let (template, extra) = Self::template(index);
        let state = match raised {
            None => pb::CheckState::Ok,
            Some(Raised::Warn) => pb::CheckState::Warn,
            Some(Raised::Crit) => pb::CheckState::Crit,
        };
        let jitter = rand::random::<f64>();
        let (check, item, message, metrics) = match template {
            Template::Cpu => {
                let pct = match raised {
                    None => 3.0 + 20.0 * jitter,
                    Some(Raised::Warn) => 85.0 + 5.0 * jitter,
                    Some(Raised::Crit) => 96.0 + 3.0 * jitter,
                };
                let message = format!("cpu {pct:.1}% over 300 s (20/20 samples)");
                (
                    "cpu",
                    String::new(),
                    message,
                    vec![metric("usage_percent", pct, "percent")],
                )
            }
            Template::Memory => {
                let pct = match raised {
                    None => 30.0 + 20.0 * jitter,
                    Some(Raised::Warn) => 91.0,
                    Some(Raised::Crit) => 97.5,
                };
                let used = (MEMORY_TOTAL as f64 * pct / 100.0) as u64;
                let message = format!("memory {pct:.1}% used over 300 s");
                let metrics = vec![
                    metric("used_percent", pct, "percent"),
                    metric("used_bytes", used as f64, "bytes"),
                    metric("total_bytes", MEMORY_TOTAL as f64, "bytes"),
                ];
                ("memory", String::new(), message, metrics)
            }
            Template::Load => {
                let per_cpu = if raised.is_some() {
                    2.4
                } else {
                    0.05 + 0.2 * jitter
                };
                let message = format!("load {:.2} ({per_cpu:.2} per cpu)", per_cpu * 4.0);
                let metrics = vec![
                    metric("load1", per_cpu * 4.0, ""),
                    metric("load5", per_cpu * 4.0, ""),
                    metric("load15", per_cpu * 4.0, ""),
                    metric("load_per_cpu", per_cpu, ""),
                ];
                ("load", String::new(), message, metrics)
            }
            Template::Disk(m) => {
                let mount = if m.is_empty() { extra } else { m.to_string() };
                let total = (20 + 10 * (index as u64 % 5)) * GIB;
                let pct = match raised {
                    None => used_share(agent, index) * 100.0,
                    Some(Raised::Warn) => 86.0,
                    Some(Raised::Crit) => 96.0,
                };
                let free = (total as f64 * (1.0 - pct / 100.0)) as u64;
                let message = format!(
                    "{mount} {pct:.1}% used, {:.1} GiB free of {} GiB",
                    free as f64 / GIB as f64,
                    total / GIB
                );
                let metrics = vec![
                    metric("used_percent", pct, "percent"),
                    metric("free_bytes", free as f64, "bytes"),
                    metric("total_bytes", total as f64, "bytes"),
                ];
                ("disk", mount, message, metrics)
            }
            Template::Service(name) => {
                let running = raised.is_none();
                let message = if running {
                    format!("{name}: active (running)")
                } else {
                    format!("{name}: inactive (dead), expected running")
                };
                let metrics = vec![
                    metric("running", f64::from(u8::from(running)), ""),
                    metric("enabled", 1.0, ""),
                ];
                ("service", name.to_string(), message, metrics)
            }
            Template::Process(name) => {
                let count: u32 = if raised.is_some() { 0 } else { 4 };
                let message = if count == 0 {
                    format!("{name}: 0 running, expected at least 1")
                } else {
                    format!("{name}: {count} running")
                };
                let metrics = vec![metric("count", f64::from(count), "")];
                ("process", name.to_string(), message, metrics)
            }
        };
        // Services and processes are either up or down: CRIT, like the agent.
        let state = match (template, state) {
            (Template::Service(_) | Template::Process(_), pb::CheckState::Warn) => {
                pb::CheckState::Crit
            }
            (_, s) => s,
        };
        pb::CheckResult {
            check: check.to_string(),
            item,
            state: state as i32,
            message,
            metrics,
            since: Some(timestamp(since_ms)),
        }
    }

    /// The metrics snapshot of a heartbeat.
    pub fn snapshot(&self, agent: usize, uptime_secs: u64) -> pb::HostSnapshot {
        let jitter = rand::random::<f64>();
        let disks = self
            .disks(agent)
            .map(|(mount, total, used)| pb::DiskUsage {
                mount_point: mount,
                fs_type: "ext4".to_string(),
                total_bytes: total,
                available_bytes: (total as f64 * (1.0 - used)) as u64,
            })
            .collect();
        pb::HostSnapshot {
            uptime_secs,
            cpu_percent: 3.0 + 20.0 * jitter,
            memory_used_bytes: MEMORY_TOTAL / 3,
            memory_total_bytes: MEMORY_TOTAL,
            swap_used_bytes: 0,
            swap_total_bytes: 2 * GIB,
            load1: 0.3 + jitter,
            load5: 0.4,
            load15: 0.35,
            disks,
        }
    }
}

/// Host facts of simulated agent `hostname`.
pub fn facts(hostname: &str) -> pb::HostFacts {
    pb::HostFacts {
        hostname: hostname.to_string(),
        os_name: "Debian GNU/Linux".to_string(),
        os_version: "12".to_string(),
        kernel_version: "6.1.0-loadgen".to_string(),
        arch: "x86_64".to_string(),
        agent_version: concat!("loadgen-", env!("CARGO_PKG_VERSION")).to_string(),
        cpu_count: 4,
        memory_total_bytes: MEMORY_TOTAL,
        target: String::new(),
    }
}

/// A steady used share per (agent, disk): 20–70 %, stable between reports
/// so the collector's disk trend sees a flat line.
fn used_share(agent: usize, index: usize) -> f64 {
    let h = (agent as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64 * 0x85EB_CA6B);
    0.2 + 0.5 * ((h >> 11) % 1000) as f64 / 1000.0
}

fn metric(name: &str, value: f64, unit: &str) -> pb::Metric {
    pb::Metric {
        name: name.to_string(),
        value,
        unit: unit.to_string(),
        ..Default::default()
    }
}

/// Unix ms as a protobuf timestamp.
pub fn timestamp(ms: i64) -> forewarn_proto::Timestamp {
    forewarn_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// The wall clock in Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_twelve_names_every_kind_and_more_are_disks() {
        let set = CheckSet::new(14);
        let checks: Vec<_> = (0..14).map(|i| set.result(3, i, None, 0)).collect();
        for kind in ["cpu", "memory", "load", "disk", "service", "process"] {
            assert!(checks.iter().any(|c| c.check == kind), "{kind}");
        }
        assert_eq!(checks[12].item, "/data1");
        assert_eq!(checks[13].item, "/data2");
        let items: std::collections::BTreeSet<_> =
            checks.iter().map(|c| (&c.check, &c.item)).collect();
        assert_eq!(items.len(), 14, "every (check, item) distinct");
        assert!(checks.iter().all(|c| c.state == pb::CheckState::Ok as i32));
        assert_eq!(set.snapshot(3, 1).disks.len(), 6);
    }

    #[test]
    fn raised_checks_say_so() {
        let set = CheckSet::new(12);
        let disk = set.result(0, 3, Some(Raised::Crit), 0);
        assert_eq!(disk.state, pb::CheckState::Crit as i32);
        assert!(disk.message.contains("96.0% used"), "{}", disk.message);
        let service = set.result(0, 7, Some(Raised::Warn), 0);
        assert_eq!(service.state, pb::CheckState::Crit as i32);
    }
}
