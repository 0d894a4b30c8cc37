//! The vertical slice end to end: a real disk fills on the agent's machine,
//! one ticket opens at the collector; the disk drains, the ticket resolves.

mod common;

use std::time::{Duration, Instant};

use common::{AgentHome, Backend, Collector, Tmpfs, enroll_ok, eventually, on_each_backend};
use serde_json::Value;

fn agent_config(mount: &std::path::Path) -> String {
    format!(
        "[checks.disk]\nmounts = [{mount:?}]\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

fn tickets_for<'a>(all: &'a Value, agent_id: &str) -> Vec<&'a Value> {
    all.as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id)
        .collect()
}

on_each_backend!(disk_fill_opens_one_ticket_and_drain_resolves_it);
async fn disk_fill_opens_one_ticket_and_drain_resolves_it(backend: Backend) {
    let collector = Collector::start_on(backend, "");
    let mnt = Tmpfs::mount("8m");
    let item = mnt.path().to_str().expect("utf-8 path").to_string();
    let home = AgentHome::new(&agent_config(mnt.path()));
    let agent_id = enroll_ok(&collector, &home, "default");
    let mut agent = home.run();

    // The agent connects and reports the tmpfs as OK.
    eventually(
        Duration::from_secs(30),
        "agent online with an OK disk check",
        || async {
            let (status, v) = collector
                .get_with(&collector.api_key, &format!("/api/v1/agents/{agent_id}"))
                .await;
            let ok = status == 200
                && v["status"] == "online"
                && v["checks"].as_array().is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["check"] == "disk" && c["item"] == item.as_str() && c["state"] == "ok"
                    })
                });
            ok.then_some(())
        },
    )
    .await;
    assert!(
        collector
            .get("/api/v1/tickets?state=open")
            .await
            .as_array()
            .expect("list")
            .is_empty()
    );

    // Fill the disk past the critical threshold (7.5 of 8 MiB).
    let big = mnt.path().join("fill.bin");
    std::fs::write(&big, vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024]).expect("fill tmpfs");
    let filled = Instant::now();
    let ticket = eventually(
        Duration::from_secs(15),
        "a ticket for the full disk",
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            tickets_for(&open, &agent_id).first().map(|t| (*t).clone())
        },
    )
    .await;
    eprintln!(
        "disk filled -> ticket visible in the API: {:?}",
        filled.elapsed()
    );
    assert_eq!(ticket["check"], "disk");
    assert_eq!(ticket["item"], item.as_str());
    assert_eq!(ticket["severity"], "crit");
    assert_eq!(ticket["state"], "open");
    assert!(
        ticket["summary"].as_str().expect("summary").contains(&item),
        "{ticket}"
    );
    let id = ticket["id"].as_i64().expect("id");

    // The counters show it in the Prometheus text format (no key needed).
    let metrics = reqwest::get(format!("http://{}/metrics", collector.http))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |needle: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{needle} missing in:\n{metrics}"))
    };
    assert!(value("forewarn_reports_total{result=\"committed\"}") >= 2.0);
    assert!(value("forewarn_ticket_changes_total{change=\"opened\"}") >= 1.0);
    assert_eq!(value("forewarn_sessions_open"), 1.0);

    // Repeated failures (heartbeats) never open a second ticket.
    let all = collector.get("/api/v1/tickets").await;
    assert_eq!(tickets_for(&all, &agent_id).len(), 1, "{all}");

    // Drain: the same ticket resolves by itself.
    std::fs::remove_file(&big).expect("drain tmpfs");
    let drained = Instant::now();
    let resolved = eventually(Duration::from_secs(15), "the ticket to resolve", || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(t)
    })
    .await;
    eprintln!("disk drained -> ticket resolved: {:?}", drained.elapsed());
    assert!(resolved["resolved_at"].is_string());
    let kinds: Vec<&str> = resolved["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"opened"));
    assert_eq!(kinds.last(), Some(&"resolved"));
    let all = collector.get("/api/v1/tickets").await;
    assert_eq!(
        tickets_for(&all, &agent_id).len(),
        1,
        "exactly one episode: {all}"
    );
    let open = collector.get("/api/v1/tickets?state=open").await;
    assert!(tickets_for(&open, &agent_id).is_empty());

    // A clean stop says goodbye: the agent shows offline.
    let status = agent.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "agent did not stop cleanly:\n{}",
        agent.log_text()
    );
    eventually(
        Duration::from_secs(10),
        "agent offline after goodbye",
        || async {
            let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
            (v["status"] == "offline").then_some(())
        },
    )
    .await;
}

on_each_backend!(tickets_and_agents_survive_a_collector_restart);
async fn tickets_and_agents_survive_a_collector_restart(backend: Backend) {
    let collector = Collector::start_on(backend, "");
    let mnt = Tmpfs::mount("8m");
    let home = AgentHome::new(&agent_config(mnt.path()));
    let agent_id = enroll_ok(&collector, &home, "default");
    std::fs::write(
        mnt.path().join("fill.bin"),
        vec![1u8; 7 * 1024 * 1024 + 512 * 1024],
    )
    .expect("fill");
    let _agent = home.run();
    let id = eventually(Duration::from_secs(30), "ticket open", || async {
        let open = collector.get("/api/v1/tickets?state=open").await;
        tickets_for(&open, &agent_id)
            .first()
            .and_then(|t| t["id"].as_i64())
    })
    .await;

    // Restart the collector on the same data dir (same CA) and ports.
    let collector = collector.restart();

    // The agent reconnects to the new process with its certificate...
    eventually(
        Duration::from_secs(40),
        "agent session on the restarted collector",
        || async {
            let log = collector.proc.log_text();
            log.lines()
                .any(|l| l.contains("agent session started") && l.contains(&agent_id))
                .then_some(())
        },
    )
    .await;
    // ...and the open ticket is still the one ticket for the problem.
    let all = collector.get("/api/v1/tickets").await;
    let mine = tickets_for(&all, &agent_id);
    assert_eq!(mine.len(), 1, "{all}");
    assert_eq!(mine[0]["id"].as_i64(), Some(id));
    assert_eq!(mine[0]["state"], "open");
}
