//! The agent's on-disk spool end to end: reports spooled while the
//! collector is down survive repeated agent `kill -9`s at random moments
//! and each arrives in the store once; a spool whose disk is full degrades
//! to memory, counts what its bound drops (in its log, and through its
//! heartbeats in its record at the collector), and comes back to disk when
//! space returns. Each test prints its figures (`--nocapture`).

mod common;

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::time::{Duration, Instant};

use common::delivery::{self, ReportId, count_lines, line_with, state_change_spooled};
use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};
use serde_json::Value;

fn agent_config(mounts: &[&Path], extra: &str) -> String {
    format!(
        "[checks.disk]\nmounts = {mounts:?}\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         poll_interval_ms = 200\n[checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n\
         [checks.load]\nenabled = false\n{extra}\n"
    )
}

/// A heartbeat every second instead of every 15 s: more reports, written
/// at more moments, for kills and the spool's bound to hit.
fn heartbeat_every_second(home: &AgentHome) {
    let text = std::fs::read_to_string(&home.config).expect("agent config");
    assert!(text.contains("interval_secs = 15\n"), "{text}");
    let text = text.replacen("interval_secs = 15\n", "interval_secs = 1\n", 1);
    std::fs::write(&home.config, text).expect("agent config");
}

/// Fills the filesystem at `dir` until a write fails; returns the file.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler.bin");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0x5Au8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

/// Names of the segment files in a spool dir.
fn segments(spool: &Path) -> Vec<String> {
    std::fs::read_dir(spool)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".seg"))
                .collect()
        })
        .unwrap_or_default()
}

fn tickets_for<'a>(all: &'a Value, agent_id: &str) -> Vec<&'a Value> {
    all.as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id && t["check"] == "disk")
        .collect()
}

/// Waits for an open disk ticket of `agent_id` on `item`; its id.
async fn open_ticket(collector: &Collector, agent_id: &str, item: &str) -> i64 {
    eventually(
        Duration::from_secs(30),
        &format!("a ticket for {item}"),
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            tickets_for(&open, agent_id)
                .into_iter()
                .find(|t| t["item"] == item)
                .and_then(|t| t["id"].as_i64())
        },
    )
    .await
}

async fn resolved(collector: &Collector, id: i64) {
    eventually(Duration::from_secs(30), "the ticket to resolve", || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(())
    })
    .await;
}

/// Sum of the `key=N` fields of the log lines containing `message`.
fn sum_field(log: &str, message: &str, key: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(message))
        .filter_map(|l| delivery::field(l, key)?.parse::<u64>().ok())
        .sum()
}

/// The spool status in the agent's record at the collector (from its last
/// heartbeat).
async fn agent_spool(collector: &Collector, agent_id: &str) -> Value {
    let (status, v) = collector
        .get_with(&collector.api_key, &format!("/api/v1/agents/{agent_id}"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["snapshot"]["spool"].clone()
}

/// A small xorshift generator: kill points that differ per run, with the
/// seed printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = RandomState::new().hash_one(Instant::now()) | 1;
        eprintln!("seed {seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Agent runs killed with `kill -9` while the collector is down.
const KILLED_RUNS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_spooled_while_the_collector_is_down_survive_repeated_agent_kills() {
    let collector = Collector::start();
    // One disk per killed run, so each run makes its own episode.
    let mounts: Vec<Tmpfs> = (0..KILLED_RUNS).map(|_| Tmpfs::mount("8m")).collect();
    let paths: Vec<&Path> = mounts.iter().map(Tmpfs::path).collect();
    let items: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().expect("utf-8 path").to_string())
        .collect();
    let home = AgentHome::new(&agent_config(&paths, ""));
    heartbeat_every_second(&home);
    let agent_id = enroll_ok(&collector, &home, "default");

    // The collector goes away before the agent ever reports.
    let stopped = collector.stop();

    let spool = home.dir.path().join("state/spool");
    let mut rng = Rng::seeded();
    let mut spooled: BTreeSet<ReportId> = BTreeSet::new();
    let mut per_run = Vec::new();
    let mut killed_segments = BTreeSet::new();
    for (run, (path, item)) in paths.iter().zip(&items).enumerate() {
        let mut agent = home.run_with(&format!("agent-{run}.log"), delivery::AGENT_LOG);
        if run > 0 {
            eventually(
                Duration::from_secs(20),
                "the restarted agent reading its spool",
                || async {
                    line_with(
                        &agent.log_text(),
                        None,
                        &["spool holds unacknowledged reports"],
                    )
                    .map(|_| ())
                },
            )
            .await;
        }
        // Its first heartbeat (every check, the disk OK) goes to the spool.
        eventually(
            Duration::from_secs(20),
            "the first heartbeat spooled",
            || async {
                line_with(&agent.log_text(), None, &["report spooled", "heartbeat"]).map(|_| ())
            },
        )
        .await;
        // The disk fills and drains while the collector is unreachable.
        let big = path.join("fill.bin");
        std::fs::write(&big, vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill tmpfs");
        let crit = state_change_spooled(&agent, None, item, "crit").await;
        std::fs::remove_file(&big).expect("drain tmpfs");
        state_change_spooled(&agent, Some(crit), item, "ok").await;

        // kill -9 at a random moment of the heartbeat cycle: no clean stop,
        // no goodbye, nothing flushed by the agent.
        let wait = Duration::from_millis(rng.below(2500));
        tokio::time::sleep(wait).await;
        agent.child.kill().expect("kill -9");
        agent.child.wait().expect("reap");
        let log = agent.log_text();
        assert!(
            !log.contains("session open"),
            "the agent was never connected:\n{log}"
        );
        let this_run = delivery::spooled(&log);
        eprintln!(
            "run {run} killed {wait:?} after its last state change: {} reports spooled",
            this_run.len()
        );
        per_run.push(this_run.len());
        spooled.extend(this_run);
        killed_segments.extend(segments(&spool));
    }
    assert!(!killed_segments.is_empty(), "the killed runs left a spool");

    // A new run finds the earlier runs' reports in its spool...
    let agent = home.run_with("agent-last.log", delivery::AGENT_LOG);
    eventually(
        Duration::from_secs(20),
        "the last agent run reading its spool",
        || async {
            line_with(
                &agent.log_text(),
                None,
                &["spool holds unacknowledged reports"],
            )
            .map(|_| ())
        },
    )
    .await;

    // ...and delivers every one of them once the collector is back.
    let collector = stopped.start();
    let rows = eventually(
        Duration::from_secs(60),
        "every report of the killed runs in the store",
        || async {
            let rows = delivery::stored(collector.dir.path(), &agent_id).await;
            let stored: BTreeSet<&ReportId> = rows.iter().collect();
            spooled.iter().all(|r| stored.contains(r)).then_some(rows)
        },
    )
    .await;
    let twice = delivery::repeats(&rows);
    assert_eq!(twice, 0, "stored twice: {rows:?}");
    let delivered = rows.iter().filter(|r| spooled.contains(*r)).count();

    // One episode per disk, in order: opened, resolved, once each.
    let all = eventually(
        Duration::from_secs(30),
        "every episode's ticket resolved",
        || async {
            let all = collector.get("/api/v1/tickets").await;
            let mine = tickets_for(&all, &agent_id);
            (mine.len() >= KILLED_RUNS && mine.iter().all(|t| t["state"] == "resolved"))
                .then_some(all)
        },
    )
    .await;
    let mine = tickets_for(&all, &agent_id);
    assert_eq!(mine.len(), KILLED_RUNS, "one ticket per episode: {all}");
    for item in &items {
        let t = mine
            .iter()
            .find(|t| t["item"] == item.as_str())
            .unwrap_or_else(|| panic!("no ticket for {item}: {all}"));
        let detail = collector.get(&format!("/api/v1/tickets/{}", t["id"])).await;
        let kinds: Vec<&str> = detail["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(kinds.first(), Some(&"opened"), "{detail}");
        assert_eq!(kinds.last(), Some(&"resolved"), "{detail}");
        assert_eq!(
            kinds.iter().filter(|k| **k == "opened").count(),
            1,
            "{detail}"
        );
    }

    // Everything acknowledged: the killed runs' segments are deleted.
    eventually(
        Duration::from_secs(30),
        "the killed runs' segments deleted",
        || async {
            let now = segments(&spool);
            (!killed_segments.iter().any(|s| now.contains(s))).then_some(())
        },
    )
    .await;
    let log = agent.log_text();
    assert!(!log.contains("unreadable"), "{log}");
    println!(
        "agent kill -9 x{KILLED_RUNS} while the collector was down: reports spooled per run \
         {per_run:?} (total {}), delivered {delivered} of them, lost {}, stored twice {twice}",
        spooled.len(),
        spooled.len() - delivered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_means_memory_only_counted_drops_and_recovery() {
    let started = Instant::now();
    let collector = Collector::start();
    // The whole state dir lives on a 1 MiB tmpfs; a second tmpfs makes
    // state changes while the first one is full.
    let state = Tmpfs::mount("1m");
    let other = Tmpfs::mount("8m");
    // A small bound (memory counts too) and a heartbeat every second, so
    // the reports held in memory pass the bound within seconds.
    let home = AgentHome::new(&agent_config(
        &[state.path(), other.path()],
        "[spool]\nmax_bytes = 8192\nsegment_bytes = 4096\ndisk_retry_secs = 1\n",
    ));
    heartbeat_every_second(&home);
    std::os::unix::fs::symlink(state.path(), home.dir.path().join("state")).expect("symlink");
    let agent_id = enroll_ok(&collector, &home, "default");
    let filler = fill(state.path());

    // The collector is down too: nothing leaves memory but by the bound.
    let stopped = collector.stop();

    let mut agent = home.run_with("agent.log", delivery::AGENT_LOG);
    eventually(
        Duration::from_secs(20),
        "one warning: spool in memory only",
        || async {
            let log = agent.log_text();
            line_with(&log, None, &["spool disk unusable", "memory only"]).map(|_| ())
        },
    )
    .await;
    // A state change while offline and in memory: kept over heartbeats.
    let other_item = other.path().to_str().expect("utf-8 path");
    let big = other.path().join("fill.bin");
    std::fs::write(&big, vec![1u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill other");
    state_change_spooled(&agent, None, other_item, "crit").await;

    // The bound drops the oldest heartbeats, counted; the disk is retried
    // every second, fails, and stays quiet about it.
    eventually(
        Duration::from_secs(30),
        "heartbeats dropped by the bound, a failed disk retry",
        || async {
            let log = agent.log_text();
            (log.contains("spool full, dropped the oldest reports")
                && log.contains("spool disk still unusable"))
            .then_some(())
        },
    )
    .await;

    // The collector is back: the drops are reported as the session opens,
    // and what was kept is delivered.
    let collector = stopped.start();
    let lost_line = eventually(
        Duration::from_secs(30),
        "the drops reported once connected",
        || async {
            agent
                .log_text()
                .lines()
                .find(|l| l.contains("reports lost before this session"))
                .map(str::to_owned)
        },
    )
    .await;
    let field = |key: &str| -> u64 {
        delivery::field(&lost_line, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {lost_line:?}"))
    };
    let (dropped_heartbeats, dropped_changes) =
        (field("dropped_heartbeats"), field("dropped_state_changes"));
    assert!(dropped_heartbeats > 0, "{lost_line}");
    assert_eq!(
        dropped_changes, 0,
        "state changes are kept longest: {lost_line}"
    );
    // The drops logged as they happened, up to that line, add up to it.
    let log = agent.log_text();
    let upto: String = log
        .lines()
        .take_while(|l| !l.contains("reports lost before this session"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        sum_field(
            &upto,
            "spool full, dropped the oldest reports",
            "heartbeats"
        ),
        dropped_heartbeats,
        "every drop counted once:\n{log}"
    );

    // The collector has the same counts: every heartbeat carries them to
    // the agent's record.
    let seen = eventually(
        Duration::from_secs(20),
        "the drops in the agent's record at the collector",
        || async {
            let spool = agent_spool(&collector, &agent_id).await;
            (spool["dropped_heartbeats"] == dropped_heartbeats
                && spool["dropped_state_changes"] == 0
                && spool["memory_only"] == true)
                .then_some(spool)
        },
    )
    .await;

    // Still reporting: the state change kept in memory opens its ticket,
    // and the spool's own full disk opens one.
    let state_item = state.path().to_str().expect("utf-8 path");
    let other_ticket = open_ticket(&collector, &agent_id, other_item).await;
    let state_ticket = open_ticket(&collector, &agent_id, state_item).await;
    std::fs::remove_file(&big).expect("drain other");
    resolved(&collector, other_ticket).await;
    assert!(segments(&state.path().join("spool")).is_empty());

    // Space returns: the spool goes back to disk, the ticket resolves.
    std::fs::remove_file(&filler).expect("free space");
    let freed = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the spool on disk again",
        || async {
            let log = agent.log_text();
            line_with(&log, None, &["spool disk usable again"]).map(|_| ())
        },
    )
    .await;
    let recovered_after = freed.elapsed();
    resolved(&collector, state_ticket).await;
    eventually(
        Duration::from_secs(20),
        "the collector sees the spool on disk again",
        || async {
            let spool = agent_spool(&collector, &agent_id).await;
            (spool["memory_only"] == false && spool["dropped_heartbeats"] == dropped_heartbeats)
                .then_some(())
        },
    )
    .await;
    // A report spooled after the recovery goes to a segment file again.
    let spooled_before = count_lines(&agent.log_text(), &["report spooled"]);
    eventually(
        Duration::from_secs(10),
        "a report spooled to a segment file",
        || async {
            (count_lines(&agent.log_text(), &["report spooled"]) > spooled_before
                && !segments(&state.path().join("spool")).is_empty())
            .then_some(())
        },
    )
    .await;

    assert!(
        agent.child.try_wait().expect("try_wait").is_none(),
        "agent died"
    );
    let log = agent.log_text();
    assert_eq!(
        log.matches("spool disk unusable").count(),
        1,
        "one warning per outage, not one per retry:\n{log}"
    );
    let retries = log.matches("spool disk still unusable").count();
    let heartbeat_bytes = log
        .lines()
        .filter(|l| l.contains("report spooled") && l.contains("heartbeat"))
        .find_map(|l| delivery::field(l, "bytes"))
        .unwrap_or("?")
        .to_string();
    let all = collector.get("/api/v1/tickets").await;
    assert_eq!(tickets_for(&all, &agent_id).len(), 2, "{all}");
    let status = agent.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", agent.log_text());
    println!(
        "full spool disk: drops counted {} (heartbeats {dropped_heartbeats}, state changes \
         {dropped_changes}; bound 8192 bytes, heartbeat {heartbeat_bytes} bytes; at the \
         collector: {seen}), failed disk \
         retries {retries}, back on disk {recovered_after:?} after space returned; total {:?}",
        dropped_heartbeats + dropped_changes,
        started.elapsed()
    );
}
