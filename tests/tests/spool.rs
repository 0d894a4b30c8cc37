//! The agent's on-disk spool end to end: state changes made while the
//! collector is down survive an agent `kill -9` and arrive once; a spool
//! whose disk is full degrades to memory and comes back when space returns.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{AgentHome, Collector, Proc, Tmpfs, enroll_ok, eventually};
use serde_json::Value;

fn agent_config(mounts: &[&Path], extra: &str) -> String {
    format!(
        "[checks.disk]\nmounts = {mounts:?}\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         poll_interval_ms = 200\n[checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n\
         [checks.load]\nenabled = false\n{extra}\n"
    )
}

/// Starts `forewarn-agent run` logging to `log_name` in the agent's dir,
/// with the outbox's per-report and the spool's debug lines on.
fn run_agent(home: &AgentHome, log_name: &str) -> Proc {
    let log = home.dir.path().join(log_name);
    let child = home
        .command()
        .arg("run")
        .env(
            "RUST_LOG",
            "info,forewarn_agent::outbox=debug,forewarn_agent::spool=debug",
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn agent");
    Proc { child, log }
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

/// Index of the first log line after `after` that has every one of `parts`
/// (case-insensitive: the log may style field names).
fn line_with(log: &str, after: Option<usize>, parts: &[&str]) -> Option<usize> {
    log.lines()
        .enumerate()
        .skip(after.map_or(0, |a| a + 1))
        .find(|(_, l)| {
            let l = l.to_lowercase();
            parts.iter().all(|p| l.contains(&p.to_lowercase()))
        })
        .map(|(i, _)| i)
}

/// Waits until the agent logged a change of the disk check on `item` to
/// `state` and then spooled a state-change report (written before any send).
async fn state_change_spooled(agent: &Proc, item: &str, state: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("disk {state} observed and spooled"),
        || async {
            let log = agent.log_text();
            let changed = line_with(&log, None, &["check state changed", item, state])?;
            line_with(&log, Some(changed), &["report spooled", "state_changes"]).map(|_| ())
        },
    )
    .await;
}

/// Starts the collector again on its data dir and its old ports.
fn start_again(
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    grpc: &str,
    http: &str,
) -> Collector {
    let text = std::fs::read_to_string(&config).expect("read config");
    let any = "listen_addr = \"127.0.0.1:0\"";
    let text = text
        .replacen(any, &format!("listen_addr = \"{grpc}\""), 1)
        .replacen(any, &format!("listen_addr = \"{http}\""), 1);
    std::fs::write(&config, text).expect("rewrite config");
    Collector::start_with(dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_made_while_the_collector_is_down_survive_an_agent_kill() {
    let collector = Collector::start();
    let mnt = Tmpfs::mount("8m");
    let item = mnt.path().to_str().expect("utf-8 path").to_string();
    let home = AgentHome::new(&agent_config(&[mnt.path()], ""));
    let agent_id = enroll_ok(&collector, &home, "default");

    // The collector goes away before the agent ever reports.
    let Collector {
        dir,
        config,
        grpc,
        http,
        mut proc,
        ..
    } = collector;
    assert!(
        proc.terminate(Duration::from_secs(15)).is_some(),
        "collector did not stop:\n{}",
        proc.log_text()
    );
    drop(proc);

    // The disk fills and drains while the agent cannot reach the collector.
    let mut agent = run_agent(&home, "agent-1.log");
    // Its first heartbeat (every check, the disk OK) goes to the spool.
    eventually(
        Duration::from_secs(20),
        "the first heartbeat spooled",
        || async {
            let log = agent.log_text();
            line_with(&log, None, &["report spooled", "heartbeat"]).map(|_| ())
        },
    )
    .await;
    let big = mnt.path().join("fill.bin");
    std::fs::write(&big, vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill tmpfs");
    state_change_spooled(&agent, &item, "crit").await;
    std::fs::remove_file(&big).expect("drain tmpfs");
    eventually(
        Duration::from_secs(20),
        "disk ok again, spooled",
        || async {
            let log = agent.log_text();
            let crit = line_with(&log, None, &["check state changed", &item, "crit"])?;
            let ok = line_with(&log, Some(crit), &["check state changed", &item, "ok"])?;
            line_with(&log, Some(ok), &["report spooled", "state_changes"]).map(|_| ())
        },
    )
    .await;

    // kill -9: no clean stop, no goodbye, nothing flushed by the agent.
    agent.child.kill().expect("kill -9");
    agent.child.wait().expect("reap");
    let first_log = agent.log_text();
    let spool = home.dir.path().join("state/spool");
    let killed_runs_segments = segments(&spool);
    assert!(
        !killed_runs_segments.is_empty(),
        "the killed run left a spool"
    );
    assert!(
        !first_log.contains("session open"),
        "the agent was never connected:\n{first_log}"
    );

    // A new run finds the earlier run's reports in its spool...
    let agent = run_agent(&home, "agent-2.log");
    eventually(
        Duration::from_secs(20),
        "the restarted agent reading its spool",
        || async {
            let log = agent.log_text();
            line_with(&log, None, &["spool holds unacknowledged reports"]).map(|_| ())
        },
    )
    .await;

    // ...and delivers them once the collector is back.
    let collector = start_again(dir, config, &grpc.to_string(), &http.to_string());
    let ticket = eventually(
        Duration::from_secs(60),
        "the disk ticket from the earlier run, resolved",
        || async {
            let all = collector.get("/api/v1/tickets").await;
            let mine = tickets_for(&all, &agent_id);
            let t = mine.first()?;
            (t["state"] == "resolved").then(|| (*t).clone())
        },
    )
    .await;
    assert_eq!(ticket["item"], item.as_str());
    let detail = collector
        .get(&format!("/api/v1/tickets/{}", ticket["id"]))
        .await;
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"opened"), "{detail}");
    assert_eq!(kinds.last(), Some(&"resolved"), "{detail}");

    // Everything acknowledged: the killed run's segments are deleted, and
    // nothing came twice.
    eventually(
        Duration::from_secs(30),
        "the earlier run's segments deleted",
        || async {
            let now = segments(&spool);
            (!killed_runs_segments.iter().any(|s| now.contains(s))).then_some(())
        },
    )
    .await;
    let all = collector.get("/api/v1/tickets").await;
    assert_eq!(tickets_for(&all, &agent_id).len(), 1, "one episode: {all}");
    let (status, v) = collector
        .get_with(&collector.api_key, &format!("/api/v1/agents/{agent_id}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        v["checks"].as_array().is_some_and(|cs| cs
            .iter()
            .any(|c| c["check"] == "disk" && c["item"] == item.as_str() && c["state"] == "ok")),
        "{v}"
    );
    let log = agent.log_text();
    assert!(!log.contains("unreadable"), "{log}");
    eprintln!(
        "reports spooled by the killed run: {}; delivered by the next one",
        first_log.matches("report spooled").count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_means_memory_only_until_space_returns() {
    let collector = Collector::start();
    // The whole state dir lives on a 1 MiB tmpfs; a second tmpfs makes
    // state changes while the first one is full.
    let state = Tmpfs::mount("1m");
    let other = Tmpfs::mount("8m");
    let home = AgentHome::new(&agent_config(
        &[state.path(), other.path()],
        "[spool]\ndisk_retry_secs = 1\n",
    ));
    std::os::unix::fs::symlink(state.path(), home.dir.path().join("state")).expect("symlink");
    let agent_id = enroll_ok(&collector, &home, "default");
    let filler = fill(state.path());

    let mut agent = run_agent(&home, "agent.log");
    eventually(
        Duration::from_secs(20),
        "one warning: spool in memory only",
        || async {
            let log = agent.log_text();
            line_with(&log, None, &["spool disk unusable", "memory only"]).map(|_| ())
        },
    )
    .await;

    // Still reporting: its own full disk opens a ticket...
    let state_item = state.path().to_str().expect("utf-8 path");
    let other_item = other.path().to_str().expect("utf-8 path");
    let state_ticket = open_ticket(&collector, &agent_id, state_item).await;

    // ...and so do state changes made while the spool disk stays full (each
    // one retries the disk, fails, and stays quiet about it). The wait lets
    // the retry interval (1 s) pass first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let big = other.path().join("fill.bin");
    std::fs::write(&big, vec![1u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill other");
    let other_ticket = open_ticket(&collector, &agent_id, other_item).await;
    std::fs::remove_file(&big).expect("drain other");
    resolved(&collector, other_ticket).await;
    assert!(segments(&state.path().join("spool")).is_empty());

    // Space returns: the spool goes back to disk, the ticket resolves.
    std::fs::remove_file(&filler).expect("free space");
    eventually(
        Duration::from_secs(30),
        "the spool on disk again",
        || async {
            let log = agent.log_text();
            line_with(&log, None, &["spool disk usable again"]).map(|_| ())
        },
    )
    .await;
    resolved(&collector, state_ticket).await;
    assert!(
        !segments(&state.path().join("spool")).is_empty(),
        "a segment file on the freed disk"
    );

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
    assert!(
        log.contains("spool disk still unusable"),
        "a retry failed:\n{log}"
    );
    let all = collector.get("/api/v1/tickets").await;
    assert_eq!(tickets_for(&all, &agent_id).len(), 2, "{all}");
    let status = agent.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", agent.log_text());
}
