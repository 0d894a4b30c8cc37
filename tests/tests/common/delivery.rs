//! Delivery bookkeeping for the fault tests: which reports an agent spooled
//! and had acknowledged (from its debug log), which ones the collector's
//! store committed (its delivery records, read with sqlx on either backend),
//! the collector's report counters, an agent's peak memory, and log-line
//! search.
//!
//! The agent's log lines used here: `agent starting … boot_id=…` (info),
//! `report spooled seq=…` (`forewarn_agent::outbox=debug`) and
//! `report acknowledged boot_id=… seq=…` (`forewarn_agent::session=debug`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Collector, Proc, Store, eventually};

/// `RUST_LOG` for an agent whose log the functions below read.
pub const AGENT_LOG: &str =
    "info,forewarn_agent::outbox=debug,forewarn_agent::session=debug,forewarn_agent::spool=debug";

/// A report's identity: `(boot_id, seq)`.
pub type ReportId = (String, u64);

/// The value of `key=value` on a tracing fmt line (quotes trimmed).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

/// Index of the first log line after `after` that has every one of `parts`
/// (case-insensitive: the log may style field names).
pub fn line_with(log: &str, after: Option<usize>, parts: &[&str]) -> Option<usize> {
    log.lines()
        .enumerate()
        .skip(after.map_or(0, |a| a + 1))
        .find(|(_, l)| has_all(l, parts))
        .map(|(i, _)| i)
}

/// How many log lines have every one of `parts` (case-insensitive).
pub fn count_lines(log: &str, parts: &[&str]) -> usize {
    log.lines().filter(|l| has_all(l, parts)).count()
}

fn has_all(line: &str, parts: &[&str]) -> bool {
    let line = line.to_lowercase();
    parts.iter().all(|p| line.contains(&p.to_lowercase()))
}

/// The boot id an agent run logged when it started.
pub fn boot_id(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("agent starting"))
        .find_map(|l| field(l, "boot_id"))
        .unwrap_or_else(|| panic!("no boot id in the agent log:\n{log}"))
        .to_string()
}

/// Every report one agent run spooled (numbered under its own boot id).
pub fn spooled(log: &str) -> BTreeSet<ReportId> {
    let boot = boot_id(log);
    log.lines()
        .filter(|l| l.contains("report spooled"))
        .filter_map(|l| field(l, "seq")?.parse().ok())
        .map(|seq| (boot.clone(), seq))
        .collect()
}

/// Every report the agent saw acknowledged (any boot id: a run resends an
/// earlier run's reports under their own).
pub fn acknowledged(log: &str) -> BTreeSet<ReportId> {
    log.lines()
        .filter(|l| l.contains("report acknowledged"))
        .filter_map(|l| {
            Some((
                field(l, "boot_id")?.to_string(),
                field(l, "seq")?.parse().ok()?,
            ))
        })
        .collect()
}

/// The delivery records of `agent_id` in the default SQLite store of the
/// collector whose temp dir is `collector_dir` (running or not); see
/// [`stored_in`].
pub async fn stored(collector_dir: &Path, agent_id: &str) -> Vec<ReportId> {
    stored_in(
        &Store::Sqlite(collector_dir.join("data/forewarn.db")),
        agent_id,
    )
    .await
}

/// The delivery records of `agent_id` in a collector's store (running or
/// not), one row each: a report committed twice would appear twice. Read
/// with sqlx, the collector's own driver, on a connection of the test's
/// own; the same query on either backend.
pub async fn stored_in(store: &Store, agent_id: &str) -> Vec<ReportId> {
    use sqlx::ConnectOptions as _;
    use sqlx::Connection as _;

    const QUERY: &str =
        "SELECT boot_id, seq FROM delivered_reports WHERE agent_id = $1 ORDER BY boot_id, seq";
    let rows: Vec<(String, i64)> = match store {
        Store::Sqlite(db) => {
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .busy_timeout(Duration::from_secs(10))
                .connect()
                .await
                .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
            let rows = sqlx::query_as(QUERY)
                .bind(agent_id)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("read delivered_reports in {}: {e}", db.display()));
            let _ = conn.close().await;
            rows
        }
        Store::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url)
                .await
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            let rows = sqlx::query_as(QUERY)
                .bind(agent_id)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("read delivered_reports in {url}: {e}"));
            let _ = conn.close().await;
            rows
        }
    };
    rows.into_iter()
        .map(|(boot, seq)| (boot, u64::try_from(seq).expect("seq")))
        .collect()
}

/// Rows that are a repeat of an earlier row (0 unless a report was stored
/// twice).
pub fn repeats(rows: &[ReportId]) -> usize {
    rows.len() - rows.iter().collect::<BTreeSet<_>>().len()
}

/// `forewarn_reports_total{result="<result>"}` of this collector process
/// (0 if it has not counted any).
pub async fn reports_counted(collector: &Collector, result: &str) -> u64 {
    let series = format!("forewarn_reports_total{{result=\"{result}\"}}");
    collector.metric(&series).await as u64
}

/// Samples a process's resident memory (VmRSS) every 50 ms on its own
/// thread and keeps the peak.
pub struct RssPeak {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssPeak {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match vm_rss_kib(pid) {
                    Some(kib) => p.fetch_max(kib, Ordering::Relaxed),
                    None => break,
                };
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { peak, stop }
    }

    /// The peak (KiB) since the last call; starts a new window.
    pub fn take(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A process's VmRSS in KiB; `None` once it is gone.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Waits until the agent logged the disk check on `item` changing to
/// `state` (after its log line `after`, if given) and then spooled a
/// state-change report; the index of that report's line.
pub async fn state_change_spooled(
    agent: &Proc,
    after: Option<usize>,
    item: &str,
    state: &str,
) -> usize {
    eventually(
        Duration::from_secs(20),
        &format!("disk {item} {state} observed and spooled"),
        || async {
            let log = agent.log_text();
            let changed = line_with(&log, after, &["check state changed", item, state])?;
            line_with(&log, Some(changed), &["report spooled", "state_changes"])
        },
    )
    .await
}
