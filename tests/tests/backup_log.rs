//! The file-watching checks end to end: `backup` (staleness seen by the
//! periodic re-check, a new backup or a status file seen at once through
//! the file watch) and `log` (a matching line opens a ticket that resolves
//! after the hold; rotation is followed).

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{AgentHome, Collector, check_in, enroll_ok, eventually};
use serde_json::Value;

/// Only the checks under test: no host checks that could open tickets of
/// their own on a busy test machine.
const QUIET: &str = "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
                     [checks.memory]\nenabled = false\n[checks.load]\nenabled = false\n";

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime")
        .set_modified(t)
        .expect("set mtime");
}

/// The agent's latest result for (check, item), once it is online.
async fn check_result(
    collector: &Collector,
    agent_id: &str,
    check: &str,
    item: &str,
) -> Option<Value> {
    let v = collector.agent(agent_id).await?;
    if v["status"] != "online" {
        return None;
    }
    check_in(&v, check, item)
}

async fn wait_state(collector: &Collector, agent_id: &str, check: &str, item: &str, state: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("{check} {item} reported {state}"),
        || async {
            check_result(collector, agent_id, check, item)
                .await
                .filter(|c| c["state"] == state)
        },
    )
    .await;
}

/// The open ticket for (agent, check, item), if any.
async fn open_ticket(
    collector: &Collector,
    agent_id: &str,
    check: &str,
    item: &str,
) -> Option<Value> {
    let open = collector.get("/api/v1/tickets?state=open").await;
    open.as_array()?
        .iter()
        .find(|t| t["agent_id"] == agent_id && t["check"] == check && t["item"] == item)
        .cloned()
}

async fn wait_ticket(collector: &Collector, agent_id: &str, check: &str, item: &str) -> Value {
    eventually(
        Duration::from_secs(20),
        &format!("an open {check} ticket for {item}"),
        || open_ticket(collector, agent_id, check, item),
    )
    .await
}

async fn wait_resolved(collector: &Collector, ticket: &Value, within: Duration) {
    let id = ticket["id"].as_i64().expect("ticket id");
    eventually(within, &format!("ticket {id} to resolve"), || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(())
    })
    .await;
}

fn summary(ticket: &Value) -> &str {
    ticket["summary"].as_str().expect("summary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_staleness_is_caught_periodically_and_a_new_backup_resolves_at_once() {
    let collector = Collector::start();
    let periodic = tempfile::tempdir().expect("tempdir");
    let watched = tempfile::tempdir().expect("tempdir");
    std::fs::write(periodic.path().join("db-1.tar.zst"), vec![7u8; 4096]).expect("write");
    let stale = watched.path().join("db-1.tar.zst");
    std::fs::write(&stale, vec![7u8; 4096]).expect("write");
    set_mtime(&stale, SystemTime::now() - Duration::from_secs(30 * 3600));
    let home = AgentHome::new(&format!(
        "{QUIET}\
         [[checks.backup]]\nname = \"periodic\"\ndir = {:?}\nglob = \"*.tar.zst\"\n\
         max_age_hours = 1\ninterval_secs = 1\n\
         [[checks.backup]]\nname = \"watched\"\ndir = {:?}\nglob = \"*.tar.zst\"\n\
         interval_secs = 3600\n",
        periodic.path(),
        watched.path()
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run();

    // A fresh backup is OK.
    wait_state(&collector, &agent_id, "backup", "periodic", "ok").await;
    let ok = check_result(&collector, &agent_id, "backup", "periodic")
        .await
        .expect("result");
    assert!(
        ok["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("last backup db-1.tar.zst")),
        "{ok}"
    );

    // The backup crosses the 1 h limit two seconds from now, with no
    // filesystem event to announce it: only the periodic re-check sees it.
    set_mtime(
        &periodic.path().join("db-1.tar.zst"),
        SystemTime::now() - Duration::from_secs(3600 - 2),
    );
    let ticket = wait_ticket(&collector, &agent_id, "backup", "periodic").await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    assert!(summary(&ticket).contains("(limit 1 h)"), "{ticket}");

    // A backup that was stale at start opens a ticket on the first run...
    let ticket = wait_ticket(&collector, &agent_id, "backup", "watched").await;
    assert!(
        summary(&ticket).contains("last backup 30 h ago (limit 26 h)"),
        "{ticket}"
    );
    // ...and a new one landing (written under a temp name, then renamed, as
    // backup jobs do) resolves it at once: the next periodic run is an hour
    // away, so only the file watch can explain it.
    let partial = watched.path().join(".db-2.tar.zst.partial");
    std::fs::write(&partial, vec![8u8; 4096]).expect("write");
    std::fs::rename(&partial, watched.path().join("db-2.tar.zst")).expect("rename");
    let landed = Instant::now();
    wait_resolved(&collector, &ticket, Duration::from_secs(15)).await;
    eprintln!("new backup -> ticket resolved: {:?}", landed.elapsed());
    let ok = check_result(&collector, &agent_id, "backup", "watched")
        .await
        .expect("result");
    assert_eq!(ok["state"], "ok", "{ok}");
    assert!(
        ok["message"]
            .as_str()
            .is_some_and(|m| m.contains("db-2.tar.zst")),
        "{ok}"
    );
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_job_opens_a_ticket_and_success_resolves_it() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("nightly.tar.zst"), vec![1u8; 4096]).expect("write");
    let status = dir.path().join("nightly.status");
    std::fs::write(&status, "OK\n").expect("write");
    let home = AgentHome::new(&format!(
        "{QUIET}\
         [[checks.backup]]\nname = \"nightly\"\ndir = {:?}\nglob = \"*.tar.zst\"\n\
         status_file = {status:?}\ninterval_secs = 3600\n",
        dir.path()
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let _agent = home.run();
    wait_state(&collector, &agent_id, "backup", "nightly", "ok").await;

    // The job reports a failure (JSON); the periodic run is an hour away.
    std::fs::write(
        &status,
        r#"{"status": "failure", "finished_at": "2025-06-01T02:14:00Z", "message": "rsync exited 23: some files vanished"}"#,
    )
    .expect("write");
    let failed = Instant::now();
    let ticket = wait_ticket(&collector, &agent_id, "backup", "nightly").await;
    eprintln!("status file failure -> ticket open: {:?}", failed.elapsed());
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    assert!(
        summary(&ticket).contains("backup job failed")
            && summary(&ticket).contains("rsync exited 23"),
        "{ticket}"
    );

    // The next run succeeds (text format).
    std::fs::write(&status, "SUCCESS 4 KiB in 2 s\n").expect("write");
    wait_resolved(&collector, &ticket, Duration::from_secs(15)).await;

    // A status file nobody can read is UNKNOWN, with what was expected.
    std::fs::write(&status, "still running\n").expect("write");
    wait_state(&collector, &agent_id, "backup", "nightly", "unknown").await;
    let r = check_result(&collector, &agent_id, "backup", "nightly")
        .await
        .expect("result");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("unrecognised format")),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_log_line_opens_a_ticket_held_then_resolved_and_rotation_is_followed() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    std::fs::write(&log, "FATAL: an old line from before the agent started\n").expect("write");
    let item = log.to_str().expect("utf-8 path").to_string();
    let home = AgentHome::new(&format!(
        "{QUIET}\
         [[checks.log]]\npath = {log:?}\npattern = \"FATAL|panic\"\nhold_secs = 2\ninterval_secs = 1\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let _agent = home.run();

    // Old lines are not news.
    wait_state(&collector, &agent_id, "log", &item, "ok").await;
    assert!(
        open_ticket(&collector, &agent_id, "log", &item)
            .await
            .is_none()
    );

    // A matching line: a ticket with the line in its summary.
    append(&log, "info: all good\nFATAL: database connection lost\n");
    let logged = Instant::now();
    let first = wait_ticket(&collector, &agent_id, "log", &item).await;
    eprintln!("matching line -> ticket open: {:?}", logged.elapsed());
    assert_eq!(first["severity"], "crit", "{first}");
    assert!(
        summary(&first).contains("FATAL: database connection lost"),
        "{first}"
    );
    let r = check_result(&collector, &agent_id, "log", &item)
        .await
        .expect("result");
    let matches = r["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == "matches"))
        .and_then(|m| m["value"].as_f64());
    assert_eq!(matches, Some(1.0), "{r}");

    // Nothing more matches: it resolves once the 2 s hold has passed.
    wait_resolved(&collector, &first, Duration::from_secs(20)).await;

    // Rotation: the file is renamed away and a new one started; a match in
    // the new file raises it again (a new ticket, or the same one reopened
    // when the relapse falls within the collector's grace period).
    std::fs::rename(&log, dir.path().join("app.log.1")).expect("rotate");
    std::fs::write(&log, "panic: runtime error: index out of range\n").expect("write");
    let again = eventually(
        Duration::from_secs(20),
        "the log ticket open again for the line in the new file",
        || async {
            open_ticket(&collector, &agent_id, "log", &item)
                .await
                .filter(|t| summary(t).contains("panic: runtime error: index out of range"))
        },
    )
    .await;
    assert_eq!(again["severity"], "crit", "{again}");
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append")
        .write_all(text.as_bytes())
        .expect("append");
}
