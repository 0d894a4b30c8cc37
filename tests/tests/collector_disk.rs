//! The collector's own disk fills up: it cannot commit, so it acknowledges
//! nothing; the agent keeps its report in the spool and resends it; the
//! collector stays up and keeps answering reads; when space returns the
//! report is committed once and its ticket opens — nothing lost, nothing
//! doubled.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};
use serde_json::Value;

/// Writes zeros into `path` until the file system says it is full.
fn fill(path: &std::path::Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    let _ = file.sync_all();
    written
}

async fn open_tickets(collector: &Collector, agent_id: &str) -> Vec<Value> {
    let all = collector.get("/api/v1/tickets?state=all").await;
    all.as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id && t["check"] == "plugin")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_collector_disk_delays_reports_but_loses_none() {
    let data = Tmpfs::mount("24m");
    let collector_dir = tempfile::tempdir().expect("tempdir");
    let config = collector_dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n",
            data.path()
        ),
    )
    .expect("write config");
    let collector = Collector::start_with(collector_dir, config);

    let scripts = tempfile::tempdir().expect("tempdir");
    let state = scripts.path().join("state");
    std::fs::write(&state, "0").expect("state");
    let plugin = scripts.path().join("check_flag");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\ns=$(cat {state:?})\necho \"flag is $s\"\nexit $s\n"),
    )
    .expect("plugin");
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let home = AgentHome::new(&format!(
        "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
         [checks.memory]\nenabled = false\n\
         [[checks.plugin]]\nname = \"flag\"\ncommand = [{plugin:?}]\ninterval_secs = 1\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run();
    eventually(Duration::from_secs(30), "plugin OK in the API", || async {
        let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
        v["checks"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["check"] == "plugin" && c["state"] == "ok")
            })
            .cloned()
    })
    .await;

    let filler = data.path().join("filler");
    let written = fill(&filler);
    println!("collector disk: filled with {} KiB", written / 1024);
    // The problem happens while the collector cannot write.
    std::fs::write(&state, "2").expect("state");
    let logged = eventually(
        Duration::from_secs(30),
        "the collector logs that it cannot commit",
        || async {
            let log = collector.proc.log_text();
            log.lines()
                .find(|l| l.contains("disk is full"))
                .map(str::to_string)
        },
    )
    .await;
    println!("collector disk: logged {logged}");
    // Still up, still answering reads, and nothing was half-written.
    // /healthz says so (503, with the error), for load balancers and
    // monitoring, and /metrics shows the store as not writable.
    let health = eventually(
        Duration::from_secs(30),
        "/healthz reports the store as not writable",
        || async {
            let resp = reqwest::get(format!("http://{}/healthz", collector.http))
                .await
                .ok()?;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.ok()?;
            (status == 503).then_some(body)
        },
    )
    .await;
    println!("collector disk: /healthz while full → 503 {health}");
    assert_eq!(health["status"], "store not writable", "{health}");
    assert!(
        health["error"].as_str().is_some_and(|e| e.contains("full")),
        "{health}"
    );
    assert_eq!(collector.metric("forewarn_store_writable").await, 0.0);
    assert!(
        open_tickets(&collector, &agent_id).await.is_empty(),
        "a ticket appeared although nothing could be committed"
    );

    std::fs::remove_file(&filler).expect("free the disk");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let tickets = loop {
        let t = open_tickets(&collector, &agent_id).await;
        if !t.is_empty() {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the spooled CRIT was not committed within 90 s of space returning\n\
             collector log:\n{}\nagent log:\n{}",
            collector.proc.log_text(),
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(tickets.len(), 1, "exactly one ticket: {tickets:?}");
    let resp = reqwest::get(format!("http://{}/healthz", collector.http))
        .await
        .expect("healthz");
    assert_eq!(resp.status().as_u16(), 200, "healthy again once it wrote");
    assert_eq!(tickets[0]["state"], "open", "{}", tickets[0]);
    // The agent never stopped, and the collector is the same process.
    assert!(
        collector
            .proc
            .log_text()
            .lines()
            .all(|l| !l.contains("panicked")),
        "{}",
        collector.proc.log_text()
    );
    drop(agent);
}
