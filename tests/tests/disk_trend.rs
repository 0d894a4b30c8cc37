//! Time-to-full: a disk filling at a steady rate opens a ticket from its
//! trend *before* it crosses the usage thresholds.

mod common;

use std::time::Duration;

use common::fill::Filler;
use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_fill_opens_a_time_to_full_ticket_before_the_threshold() {
    let collector = Collector::start();
    let mnt = Tmpfs::mount("32m");
    let item = mnt.path().to_str().expect("utf-8").to_string();
    let home = AgentHome::new(&format!(
        "[checks.disk]\nmounts = [{item:?}]\nwarn_used_percent = 80.0\ncrit_used_percent = 90.0\n\
         trend_sample_secs = 1\ntrend_min_span_secs = 4\ntrend_min_used_percent = 0.0\n\
         warn_within_hours = 2.0\ncrit_within_hours = 1.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let _agent = home.run();
    eventually(Duration::from_secs(30), "agent online", || async {
        let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
        (v["status"] == "online").then_some(())
    })
    .await;

    // Fill at a steady ~640 KiB/s: full in under a minute, far sooner than
    // the one hour that makes the trend critical.
    // Never past 70 % (22 MiB of 32): the thresholds must not fire.
    let file = mnt.path().join("growing.log");
    let filler = Filler::start(file.clone(), 176);

    let ticket = eventually(Duration::from_secs(60), "a time-to-full ticket", || async {
        let open = collector.get("/api/v1/tickets?state=open").await;
        open.as_array().and_then(|ts| {
            ts.iter()
                .find(|t| t["agent_id"] == agent_id.as_str())
                .cloned()
        })
    })
    .await;
    filler.stop();

    let summary = ticket["summary"].as_str().expect("summary");
    assert_eq!(ticket["item"], item.as_str());
    assert_eq!(ticket["severity"], "crit", "{summary}");
    assert!(summary.contains("full in"), "{summary}");
    assert!(summary.contains("filling at"), "{summary}");
    // The usage at that moment was below the warning threshold.
    let used: f64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_suffix("%").and_then(|n| n.parse().ok()))
        .expect("used percent in summary");
    assert!(used < 80.0, "ticket opened only at {used}% used: {summary}");
    let detail = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
    let disk = detail["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["item"] == item.as_str()))
        .expect("disk check state");
    let names: Vec<&str> = disk["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"hours_to_full"), "{names:?}");

    // Cleaning up resets the trend: the ticket resolves.
    std::fs::remove_file(&file).expect("cleanup");
    eventually(Duration::from_secs(20), "the ticket to resolve", || async {
        let t = collector
            .get(&format!("/api/v1/tickets/{}", ticket["id"]))
            .await;
        (t["state"] == "resolved").then_some(())
    })
    .await;
}
