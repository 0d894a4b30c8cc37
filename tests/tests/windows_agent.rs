//! The Windows agent, exercised: `forewarn-agent.exe` (cross-built for
//! x86_64-pc-windows-gnu by `tests/windows.sh`) runs under Debian's Wine
//! against a real Linux collector over mTLS.
//!
//! - It enrolls with a token, runs, and shows online; a plugin fault (a
//!   mingw-built test plugin, CRIT while a flag file exists) opens a ticket
//!   and its recovery resolves it.
//! - `check --once` with a config naming every Windows check kind prints a
//!   result for each, with facts a stub could not know (the host's memory
//!   total, the size of the C: drive's filesystem, the plugin's own words).
//!
//! Wine stands in for Windows (none exists here); `tests/windows.sh` gives
//! the prefix a stand-in bcryptprimitives.dll, because Debian's Wine 8.0
//! lacks `ProcessPrng` (test scaffolding, never shipped).
//! `FOREWARN_SKIP_WINE=1` skips this loudly; nothing else does.

mod common;

use std::path::Path;
use std::time::Duration;

use common::wine::{Artifacts, Prefix, WinAgent, artifacts, win_path};
use common::{Collector, check_in, eventually};
use serde_json::Value;

/// One plugin, `flag`: CRIT while `flag` exists. Every host check off, so
/// the only ticket the agent can cause is the plugin's.
fn plugin_only_config(a: &Artifacts, flag: &Path) -> String {
    format!(
        "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
         [checks.memory]\nenabled = false\n[checks.load]\nenabled = false\n\
         [checks.reboot_required]\nenabled = false\n\
         [[checks.plugin]]\nname = \"flag\"\ncommand = [{:?}, {:?}]\ninterval_secs = 1\ntimeout_secs = 30\n",
        win_path(&a.flag_plugin),
        win_path(flag),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_agent_enrolls_reports_and_a_plugin_fault_opens_and_resolves_a_ticket() {
    let Some(a) = artifacts("windows_agent_enrolls_reports_and_a_plugin_fault…") else {
        return;
    };
    let collector = Collector::start();
    let prefix = Prefix::new(&a);
    let work = tempfile::tempdir().expect("tempdir");
    let flag = work.path().join("flag");
    let agent = WinAgent::new(&prefix, &a, &plugin_only_config(&a, &flag));
    let agent_id = agent.enroll(&collector, "default");
    let mut proc = agent.run();

    // Online, with the plugin's OK result and its own words.
    let ok = eventually(
        Duration::from_secs(90),
        "the Windows agent online with an OK plugin result",
        || async {
            let v = collector.agent(&agent_id).await?;
            let row = check_in(&v, "plugin", "flag")?;
            (v["status"] == "online" && row["state"] == "ok").then_some(row)
        },
    )
    .await;
    assert!(
        ok["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("FLAG OK - no flag at Z:\\")),
        "{ok}"
    );
    let facts = collector.agent(&agent_id).await.expect("agent detail");
    assert!(
        facts.to_string().to_lowercase().contains("windows"),
        "the agent's facts name Windows: {facts}"
    );

    // The fault: the flag appears, one CRIT ticket opens, carrying the
    // plugin's message.
    std::fs::write(&flag, "disk array degraded\n").expect("write flag");
    let ticket = eventually(
        Duration::from_secs(60),
        "a ticket for the plugin",
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            open.as_array()?
                .iter()
                .find(|t| t["agent_id"] == agent_id.as_str())
                .cloned()
        },
    )
    .await;
    assert_eq!(ticket["check"], "plugin", "{ticket}");
    assert_eq!(ticket["item"], "flag", "{ticket}");
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let row = collector
        .check_row(&agent_id, "plugin", "flag")
        .await
        .expect("plugin row");
    assert_eq!(
        row["message"], "FLAG CRITICAL - disk array degraded",
        "{row}"
    );
    let id = ticket["id"].as_i64().expect("ticket id");

    // The recovery resolves the same ticket.
    std::fs::remove_file(&flag).expect("remove flag");
    eventually(Duration::from_secs(60), "the ticket to resolve", || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(())
    })
    .await;
    let all = collector.get("/api/v1/tickets").await;
    let mine = all
        .as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id.as_str())
        .count();
    assert_eq!(mine, 1, "one ticket for one fault: {all}");

    assert!(
        proc.child.try_wait().expect("agent status").is_none(),
        "the agent exited early:\n{}",
        proc.log_text()
    );
    drop(proc);
    prefix.kill();
}

/// `/proc/meminfo`'s MemTotal, in bytes: what Windows' (Wine's) memory
/// total must match.
fn host_memory_total() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemTotal");
    kb * 1024.0
}

/// Total bytes of the filesystem holding `path` (`df`), the size Wine
/// reports for a drive mapped onto it.
fn filesystem_total(path: &Path) -> f64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=size"])
        .arg(path)
        .output()
        .expect("run df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df size")
}

fn metric(row: &Value, name: &str) -> f64 {
    row["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("no metric {name} in {row}"))
}

fn row<'a>(rows: &'a [Value], check: &str, item: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["check"] == check && r["item"] == item)
        .unwrap_or_else(|| {
            panic!(
                "check --once printed no {check}/{item}:\n{}",
                serde_json::to_string_pretty(rows).unwrap_or_default()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_once_under_wine_runs_every_windows_check_kind() {
    let Some(a) = artifacts("check_once_under_wine_runs_every_windows_check_kind") else {
        return;
    };
    let collector = Collector::start();
    let prefix = Prefix::new(&a);
    let work = tempfile::tempdir().expect("tempdir");
    let flag = work.path().join("flag");
    std::fs::write(&flag, "raid rebuild failed\n").expect("flag");
    let backups = work.path().join("backups");
    std::fs::create_dir(&backups).expect("backups dir");
    std::fs::write(backups.join("nightly.bak"), vec![7u8; 4096]).expect("backup file");
    let log = work.path().join("app.log");
    std::fs::write(&log, "started\n").expect("log file");
    let ca = work.path().join("ca.crt");
    std::fs::write(&ca, collector.ca_pem()).expect("ca.crt");

    let config = format!(
        r#"
[checks.disk]
mounts = ['C:\']
[checks.cpu]
enabled = true
[checks.memory]
enabled = true
swap_warn_percent = 99.0
swap_crit_percent = 100.0
[checks.reboot_required]
enabled = true
[[checks.service]]
name = "PlugPlay"
expect = "running"
[[checks.service]]
name = "NoSuchServiceHere"
expect = "running"
[[checks.process]]
name = "services"
[[checks.process]]
cmdline = "no-such-program-under-wine"
[[checks.backup]]
name = "nightly"
dir = {backups:?}
glob = "*.bak"
max_age_hours = 26
min_bytes = 1
[[checks.log]]
name = "app"
path = {log:?}
pattern = "FATAL"
[[checks.plugin]]
name = "flag"
command = [{plugin:?}, {flag:?}]
[[checks.tcp]]
name = "collector grpc"
address = "{grpc}"
[[checks.http]]
name = "collector health"
url = "http://{http}/healthz"
expect_status = [200]
[[checks.certificate]]
name = "collector ca"
pem_file = {ca_win:?}
"#,
        backups = win_path(&backups),
        log = win_path(&log),
        plugin = win_path(&a.flag_plugin),
        flag = win_path(&flag),
        grpc = collector.grpc,
        http = collector.http,
        ca_win = win_path(&ca),
    );
    let agent = WinAgent::new(&prefix, &a, &config);
    let out = agent.output(&["check", "--once", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check --once under Wine printed no JSON ({e}), exit {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("check --once under Wine:\n{stdout}");
    // The plugin is CRIT, so the worst state (the exit code) is CRIT.
    assert_eq!(out.status.code(), Some(2), "{stdout}");

    // Every Windows check kind printed a result.
    for kind in [
        "disk",
        "cpu",
        "memory",
        "reboot_required",
        "service",
        "process",
        "backup",
        "log",
        "plugin",
        "tcp",
        "http",
        "certificate",
    ] {
        assert!(
            rows.iter().any(|r| r["check"] == kind),
            "no {kind} result:\n{stdout}"
        );
    }

    // Memory: Windows' total is the host's (Wine reads /proc/meminfo).
    let memory = row(&rows, "memory", "");
    let total = metric(memory, "total_bytes");
    let host = host_memory_total();
    assert!(
        (total - host).abs() <= host * 0.01,
        "memory total {total} vs host {host}: {memory}"
    );
    assert!(
        rows.iter()
            .any(|r| r["check"] == "memory" && r["item"] == "swap"),
        "the paging file (swap) is reported: {stdout}"
    );

    // C:\ is the prefix's drive_c: the size of the filesystem under it.
    let disk = row(&rows, "disk", "C:\\");
    let size = filesystem_total(&prefix.drive_c(""));
    let got = metric(disk, "total_bytes");
    assert!(
        (got - size).abs() <= size * 0.01,
        "C:\\ total {got} vs filesystem {size}: {disk}"
    );
    assert_ne!(disk["state"], "UNKNOWN", "{disk}");

    // CPU: a result, never a crash; UNKNOWN with the reason is allowed
    // (Wine has no PDH performance counters).
    let cpu = rows.iter().find(|r| r["check"] == "cpu").expect("cpu row");
    assert!(
        cpu["state"] != "UNKNOWN" || !cpu["message"].as_str().unwrap_or("").is_empty(),
        "{cpu}"
    );
    // Load averages do not exist on Windows: never a made-up OK.
    for r in rows.iter().filter(|r| r["check"] == "load") {
        assert_eq!(r["state"], "UNKNOWN", "{r}");
    }

    assert_eq!(row(&rows, "reboot_required", "")["state"], "OK", "{stdout}");
    assert_eq!(row(&rows, "service", "PlugPlay")["state"], "OK", "{stdout}");
    assert_eq!(
        row(&rows, "service", "NoSuchServiceHere")["state"],
        "CRIT",
        "{stdout}"
    );
    // Wine's own service manager, services.exe, always runs in a prefix.
    let services = row(&rows, "process", "services");
    assert_eq!(services["state"], "OK", "{services}");
    assert_eq!(metric(services, "count"), 1.0, "{services}");
    assert_eq!(
        row(&rows, "process", "no-such-program-under-wine")["state"],
        "CRIT",
        "{stdout}"
    );
    let backup = row(&rows, "backup", "nightly");
    assert_eq!(backup["state"], "OK", "{backup}");
    assert_eq!(metric(backup, "size_bytes"), 4096.0, "{backup}");
    assert_eq!(row(&rows, "log", "app")["state"], "OK", "{stdout}");
    let plugin = row(&rows, "plugin", "flag");
    assert_eq!(plugin["state"], "CRIT", "{plugin}");
    assert_eq!(
        plugin["message"], "FLAG CRITICAL - raid rebuild failed",
        "{plugin}"
    );
    assert_eq!(metric(plugin, "flag"), 1.0, "{plugin}");
    assert_eq!(
        row(&rows, "tcp", "collector grpc")["state"],
        "OK",
        "{stdout}"
    );
    let http = row(&rows, "http", "collector health");
    assert_eq!(http["state"], "OK", "{http}");
    assert_eq!(metric(http, "status"), 200.0, "{http}");
    let cert = row(&rows, "certificate", "collector ca");
    assert_eq!(cert["state"], "OK", "{cert}");
    assert!(metric(cert, "days_left") > 30.0, "{cert}");
    assert!(
        cert["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("CN=Forewarn collector CA")),
        "the collector's own CA was read: {cert}"
    );

    prefix.kill();
}
