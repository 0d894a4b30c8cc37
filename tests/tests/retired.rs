//! A check removed from an agent's config does not linger at the
//! collector: once its heartbeats have left it out for three intervals of
//! one session, its state is gone from the agent's record and its open
//! ticket resolves, saying why. The checks that stay are untouched.

mod common;

use std::time::Duration;

use common::{AgentHome, Collector, enroll_ok, eventually};
use serde_json::Value;

fn plugin(name: &str, script: &std::path::Path) -> String {
    format!("[[checks.plugin]]\nname = {name:?}\ncommand = [{script:?}]\ninterval_secs = 1\n")
}

async fn checks(collector: &Collector, agent_id: &str) -> Vec<Value> {
    collector.get(&format!("/api/v1/agents/{agent_id}")).await["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_removed_from_the_config_is_retired_and_its_ticket_resolves() {
    let collector = Collector::start();
    let scripts = tempfile::tempdir().expect("tempdir");
    let failing = scripts.path().join("check_failing");
    let fine = scripts.path().join("check_fine");
    for (path, body) in [
        (&failing, "echo 'CRITICAL - broken'; exit 2"),
        (&fine, "echo 'OK - fine'; exit 0"),
    ] {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let quiet = "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
                 [checks.memory]\nenabled = false\n";
    let both = format!(
        "{quiet}{}{}",
        plugin("failing", &failing),
        plugin("fine", &fine)
    );
    let home = AgentHome::new(&both);
    // Heartbeats every 2 s (the harness default is 15 s): retirement after
    // 6 s of absence keeps the test short.
    let text = std::fs::read_to_string(&home.config).expect("read config");
    std::fs::write(
        &home.config,
        text.replacen("interval_secs = 15\n", "interval_secs = 2\n", 1),
    )
    .expect("rewrite config");
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run();

    let ticket = eventually(
        Duration::from_secs(30),
        "the failing plugin's ticket",
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            open.as_array()?
                .iter()
                .find(|t| t["agent_id"] == agent_id.as_str() && t["item"] == "failing")
                .cloned()
        },
    )
    .await;

    // The failing check is dropped from the config (reloaded on SIGHUP).
    let text = std::fs::read_to_string(&home.config).expect("read config");
    let without = text.replace(&plugin("failing", &failing), "");
    assert_ne!(text, without);
    std::fs::write(&home.config, without).expect("rewrite config");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &agent.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());

    let id = ticket["id"].as_i64().expect("ticket id");
    let resolved = eventually(
        Duration::from_secs(60),
        "the removed check's ticket resolved",
        || async {
            let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
            (t["state"] == "resolved").then_some(t)
        },
    )
    .await;
    let text = resolved.to_string();
    assert!(
        text.contains("no longer reported"),
        "the ticket says why it resolved: {resolved}"
    );
    let now = checks(&collector, &agent_id).await;
    assert!(
        now.iter().all(|c| c["item"] != "failing"),
        "the removed check is gone from the agent's record: {now:?}"
    );
    assert!(
        now.iter()
            .any(|c| c["item"] == "fine" && c["state"] == "ok"),
        "the remaining check is untouched: {now:?}"
    );
    // One ticket, resolved once: nothing reopened it.
    let all = collector.get("/api/v1/tickets?state=all").await;
    let mine: Vec<&Value> = all
        .as_array()
        .expect("tickets")
        .iter()
        .filter(|t| t["agent_id"] == agent_id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["state"], "resolved");
}
