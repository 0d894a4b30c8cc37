//! Benchmark (ignored test): fault on the agent's machine → ticket open at
//! the collector, for each event-backed kind, at p50 and p99.
//!
//! One real agent and collector (real mTLS, SQLite, or PostgreSQL with
//! `FOREWARN_BENCH_BACKEND=postgres` after `source tests/postgres.sh`), one
//! agent watching:
//! - `disk`: an 8 MiB tmpfs (root), filled past CRIT; default
//!   `poll_interval_ms`;
//! - `service`: a unit stopped on systemd — here a **local fake** of
//!   systemd on a private `dbus-daemon` (`common/systemd_fake.rs`), because
//!   systemd cannot run on this machine; the agent follows it over D-Bus at
//!   default settings;
//! - `process`: a helper process killed (pidfd); default `interval_secs`;
//! - `plugin`: a flag file created that a plugin script reports as CRIT,
//!   with `interval_ms = 250` (plugins default to 60 s: they are polled,
//!   not event-backed; sub-second is opted into).
//!
//! Each round waits a random 0–1000 ms (so the fault lands anywhere in the
//! agent's poll cycles), causes the fault, polls the API every 5 ms until
//! the ticket is open, clears the fault and waits for the resolution.
//! Flapping detection is off for the bench (the same fault repeated every
//! second is flapping, rightly). Prints every round and p50 / p99 / max per
//! kind. Not part of the suite; needs root:
//!
//!     cargo build --workspace --bins
//!     cargo nextest run -p forewarn-tests -E 'binary(detect_latency)' --run-ignored only --no-capture
//!
//! `FOREWARN_DETECT_ROUNDS` (default 30) sets the rounds per kind.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::systemd_fake::SystemdFake;
use common::{AgentHome, Collector, Proc, Tmpfs, enroll_ok};

const UNIT: &str = "fw-bench.service";

/// Rules without flapping detection, for every kind measured.
const RULES: &str = "[tickets.rules.disk]\nflap_start_percent = 100.0\nflap_stop_percent = 99.0\n\
                     [tickets.rules.service]\nflap_start_percent = 100.0\nflap_stop_percent = 99.0\n\
                     [tickets.rules.process]\nflap_start_percent = 100.0\nflap_stop_percent = 99.0\n\
                     [tickets.rules.plugin]\nflap_start_percent = 100.0\nflap_stop_percent = 99.0\n";

/// Whether (check, item) of the agent has an open ticket.
async fn is_open(c: &Collector, agent_id: &str, check: &str, item: &str) -> bool {
    let open = c.get("/api/v1/tickets?state=open").await;
    open.as_array().is_some_and(|all| {
        all.iter()
            .any(|t| t["agent_id"] == agent_id && t["check"] == check && t["item"] == item)
    })
}

/// Polls every 5 ms until the ticket is open (`want`) or not.
async fn until(c: &Collector, agent_id: &str, check: &str, item: &str, want: bool) {
    let start = Instant::now();
    loop {
        if is_open(c, agent_id, check, item).await == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{check} {item}: ticket never {}",
            if want { "opened" } else { "resolved" }
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(nanos % 1000))
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(kind: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{kind:<8} {:>3} rounds: p50 {:>6.1} ms, p99 {:>6.1} ms, max {:>6.1} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(*samples.last().expect("samples"))
    )
}

/// `sleep 3600` under a name of its own.
fn helper(exe: &Path) -> Child {
    Command::new(exe).arg("3600").spawn().expect("spawn helper")
}

fn plugin_script(dir: &Path, flag: &Path) -> PathBuf {
    let path = dir.join("flag-check");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ -e {flag:?} ]; then echo \"flag raised\"; exit 2; fi\necho ok\nexit 0\n"
        ),
    )
    .expect("write plugin");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --run-ignored only (needs root for the tmpfs)"]
async fn detect_latency() {
    let rounds: usize = std::env::var("FOREWARN_DETECT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let backend = common::Backend::for_bench();
    println!("store: {backend:?}, {rounds} rounds per kind");
    let systemd = SystemdFake::start(&[UNIT]).await;
    let collector = Collector::start_on(backend, RULES);
    let mnt = Tmpfs::mount("8m");
    let work = tempfile::tempdir().expect("tempdir");
    let marker = format!("fw-bench-proc-{}", std::process::id());
    let exe = work.path().join(&marker);
    std::os::unix::fs::symlink("/bin/sleep", &exe).expect("symlink sleep");
    let mut proc = helper(&exe);
    let flag = work.path().join("flag");
    let plugin = plugin_script(work.path(), &flag);

    let disk_item = mnt.path().to_str().expect("utf-8").to_owned();
    let home = AgentHome::new(&format!(
        "[checks.disk]\nmounts = [{disk_item:?}]\ncrit_used_percent = 90.0\nwarn_used_percent = 80.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n\
         [[checks.service]]\nname = {UNIT:?}\n\
         [[checks.process]]\ncmdline = {marker:?}\n\
         [[checks.plugin]]\nname = \"flag\"\ncommand = [{plugin:?}]\ninterval_ms = 250\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let log = home.dir.path().join("agent.log");
    let _agent = Proc {
        child: home
            .command()
            .arg("run")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &systemd.address)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn agent"),
        log,
    };
    // Everything OK before the first round.
    let start = Instant::now();
    loop {
        let a = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
        let ok = |check: &str| {
            a["checks"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["check"] == check && c["state"] == "ok"))
        };
        if ["disk", "service", "process", "plugin"]
            .iter()
            .all(|k| ok(k))
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "not all OK: {a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut results = Vec::new();
    let fill = mnt.path().join("fill.bin");
    let (c, id) = (&collector, agent_id.as_str());

    let mut disk = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep(jitter()).await;
        let t0 = Instant::now();
        std::fs::write(&fill, vec![7u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill");
        until(c, id, "disk", &disk_item, true).await;
        let d = t0.elapsed();
        println!(
            "disk     round {round:>2}: {:>7.1} ms",
            d.as_secs_f64() * 1e3
        );
        disk.push(d);
        std::fs::remove_file(&fill).expect("drain");
        until(c, id, "disk", &disk_item, false).await;
    }
    results.push(summary("disk", disk));

    let mut service = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep(jitter()).await;
        let t0 = Instant::now();
        systemd.set_running(UNIT, false).await;
        until(c, id, "service", UNIT, true).await;
        let d = t0.elapsed();
        println!(
            "service  round {round:>2}: {:>7.1} ms",
            d.as_secs_f64() * 1e3
        );
        service.push(d);
        systemd.set_running(UNIT, true).await;
        until(c, id, "service", UNIT, false).await;
    }
    results.push(summary("service", service));

    let mut process = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep(jitter()).await;
        let t0 = Instant::now();
        proc.kill().expect("kill helper");
        proc.wait().expect("reap helper");
        until(c, id, "process", &marker, true).await;
        let d = t0.elapsed();
        println!(
            "process  round {round:>2}: {:>7.1} ms",
            d.as_secs_f64() * 1e3
        );
        process.push(d);
        // A new process is found at the next poll (interval_secs).
        proc = helper(&exe);
        until(c, id, "process", &marker, false).await;
    }
    results.push(summary("process", process));

    let mut plugin_times = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep(jitter()).await;
        let t0 = Instant::now();
        std::fs::write(&flag, b"1").expect("raise flag");
        until(c, id, "plugin", "flag", true).await;
        let d = t0.elapsed();
        println!(
            "plugin   round {round:>2}: {:>7.1} ms",
            d.as_secs_f64() * 1e3
        );
        plugin_times.push(d);
        std::fs::remove_file(&flag).expect("lower flag");
        until(c, id, "plugin", "flag", false).await;
    }
    results.push(summary("plugin", plugin_times));

    let _ = proc.kill();
    let _ = proc.wait();
    println!("fault -> ticket open at the collector (seen in the API, polled every 5 ms):");
    for line in results {
        println!("{line}");
    }
}
