//! `forewarn-loadgen` against a real collector: a short steady run of 20
//! simulated agents (enrolled through the collector CLI's token), a second
//! run that reuses their state dir without enrolling again, and a
//! reconnect run across a collector restart. Only what it reports and what
//! the collector recorded is checked, never how fast.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Collector, bin, eventually};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const AGENTS: usize = 20;

/// The loadgen on `collector` with `state`, a 1 s interval and a high
/// change rate (a raise or a clear per agent about every second).
fn loadgen(collector: &Collector, state: &Path) -> Command {
    let exe = bin("forewarn-loadgen");
    assert!(
        exe.exists(),
        "{} not found: build the binaries first (cargo build --workspace --bins)",
        exe.display()
    );
    let mut c = Command::new(exe);
    c.arg("--collector")
        .arg(collector.url())
        .arg("--state")
        .arg(state)
        .args(["--agents", &AGENTS.to_string()])
        .args(["--interval-secs", "1", "--change-rate", "3600"])
        .args(["--problem-secs", "1", "--progress-secs", "1"])
        .args(["--collector-pid", &collector.proc.child.id().to_string()])
        .kill_on_drop(true);
    c
}

/// Runs to the end; the `loadgen-result` JSON and the whole stdout.
async fn result_of(mut cmd: Command) -> (Value, String) {
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("loadgen finished within 120 s")
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "loadgen failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (parse(&stdout), stdout)
}

fn parse(stdout: &str) -> Value {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("loadgen-result "))
        .unwrap_or_else(|| panic!("no loadgen-result line in:\n{stdout}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn assert_clean(r: &Value, stdout: &str) {
    assert!(r["acks"].as_u64().expect("acks") > 0, "{stdout}");
    assert_eq!(r["errors_total"], 0, "{stdout}");
    assert_eq!(r["warmup_errors"], serde_json::json!({}), "{stdout}");
    assert_eq!(r["agents"], AGENTS, "{stdout}");
    assert_eq!(r["connected"], AGENTS, "{stdout}");
    assert!(r["latency"]["p99_ms"].is_number(), "{stdout}");
    assert!(
        r["heartbeat_latency"]["count"].as_u64() > Some(0),
        "{stdout}"
    );
    assert!(r["collector_rss_mib"].is_number(), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_enrolls_once_measures_and_times_a_reconnect() {
    let collector = Collector::start();
    let state = tempfile::tempdir().expect("tempdir");

    // 1. Steady: enrolls all 20 with a token it makes through the CLI.
    let mut cmd = loadgen(&collector, state.path());
    cmd.arg("--collector-config")
        .arg(&collector.config)
        .arg("--collector-bin")
        .arg(bin("forewarn-collector"))
        .args(["--warmup-secs", "2", "--duration-secs", "4"]);
    let (r, stdout) = result_of(cmd).await;
    assert_eq!(r["mode"], "steady", "{stdout}");
    assert_eq!(r["enrolled_now"], AGENTS, "{stdout}");
    assert_eq!(r["enrolled_before"], 0, "{stdout}");
    assert_clean(&r, &stdout);
    assert!(r["change_latency"]["count"].as_u64() > Some(0), "{stdout}");

    // The collector enrolled them and turned their changes into tickets,
    // opened and resolved.
    let agents = collector.get("/api/v1/agents").await;
    let ours = agents
        .as_array()
        .expect("agent list")
        .iter()
        .filter(|a| {
            a["hostname"]
                .as_str()
                .is_some_and(|h| h.starts_with("loadgen-"))
        })
        .count();
    assert_eq!(ours, AGENTS, "{agents}");
    let (opened, resolved) = eventually(Duration::from_secs(10), "tickets", || async {
        let all = collector.get("/api/v1/tickets?state=all&limit=1000").await;
        let tickets: Vec<&Value> = all
            .as_array()?
            .iter()
            .filter(|t| {
                t["host"]
                    .as_str()
                    .is_some_and(|h| h.starts_with("loadgen-"))
            })
            .collect();
        let resolved = tickets.iter().filter(|t| t["state"] == "resolved").count();
        (!tickets.is_empty() && resolved > 0).then_some((tickets.len(), resolved))
    })
    .await;
    assert!(opened >= resolved && resolved > 0);

    // 2. The same state dir: nothing to enroll (no token given at all).
    let mut cmd = loadgen(&collector, state.path());
    cmd.args(["--warmup-secs", "2", "--duration-secs", "2"]);
    let (r, stdout) = result_of(cmd).await;
    assert_eq!(r["enrolled_now"], 0, "{stdout}");
    assert_eq!(r["enrolled_before"], AGENTS, "{stdout}");
    assert_clean(&r, &stdout);

    // 3. Reconnect: once all are connected, restart the collector.
    let mut cmd = loadgen(&collector, state.path());
    cmd.args(["--reconnect", "--reconnect-timeout-secs", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn loadgen");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    let ready = format!("all {AGENTS} agents connected");
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with(&ready) {
                return;
            }
        }
        panic!("loadgen ended before every agent connected:\n{seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("agents not all connected within 60 s:\n{seen}"));

    let collector = collector.restart();

    let rest = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            seen.push_str(&line);
            seen.push('\n');
        }
        child.wait().await.expect("wait loadgen")
    })
    .await
    .unwrap_or_else(|_| panic!("loadgen did not finish after the restart:\n{seen}"));
    assert!(rest.success(), "loadgen reconnect run failed:\n{seen}");
    let r = parse(&seen);
    assert_eq!(r["mode"], "reconnect", "{seen}");
    assert!(r["reconnect_secs"].is_number(), "{seen}");
    assert_eq!(r["enrolled_now"], 0, "{seen}");
    assert!(
        seen.contains(&format!("reconnected {AGENTS} agents in ")),
        "{seen}"
    );
    assert_eq!(r["connected"], AGENTS, "{seen}");
    drop(collector);
}
