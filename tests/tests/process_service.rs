//! Process and service checks end to end: a real helper process the test
//! starts and kills opens and resolves a `process` ticket; a `service`
//! check on a machine without a running systemd reports UNKNOWN "systemd
//! not available" (not a false CRIT).

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::{AgentHome, Collector, enroll_ok, eventually};
use serde_json::Value;

/// Only the checks under test: host checks off, so nothing else raises.
const QUIET: &str = "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
                     [checks.memory]\nenabled = false\n[checks.load]\nenabled = false\n\
                     [checks.reboot_required]\nenabled = false\n";

/// `sleep 600` under a name no other process on the machine has.
fn start_helper(exe: &Path) -> Child {
    Command::new(exe).arg("600").spawn().expect("spawn helper")
}

fn stop_helper(mut child: Child) {
    child.kill().expect("kill helper");
    child.wait().expect("reap helper");
}

fn tickets_for<'a>(all: &'a Value, agent_id: &str, check: &str) -> Vec<&'a Value> {
    all.as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id && t["check"] == check)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_process_opens_a_ticket_and_a_restart_resolves_it() {
    let collector = Collector::start();
    let helper_dir = tempfile::tempdir().expect("tempdir");
    let marker = format!("fw-e2e-sleeper-{}", std::process::id());
    let exe = helper_dir.path().join(&marker);
    std::os::unix::fs::symlink("/bin/sleep", &exe).expect("symlink sleep");
    let helper = start_helper(&exe);

    let home = AgentHome::new(&format!(
        "{QUIET}[[checks.process]]\ncmdline = {marker:?}\ninterval_secs = 1\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run();

    let ok = eventually(Duration::from_secs(30), "process check OK", || async {
        collector
            .check_row(&agent_id, "process", &marker)
            .await
            .filter(|c| c["state"] == "ok")
    })
    .await;
    assert_eq!(ok["message"], format!("{marker}: 1 running"), "{ok}");
    assert_eq!(ok["metrics"][0]["name"], "count", "{ok}");
    assert_eq!(ok["metrics"][0]["value"], 1.0, "{ok}");
    let open = collector.get("/api/v1/tickets?state=open").await;
    assert!(
        tickets_for(&open, &agent_id, "process").is_empty(),
        "{open}"
    );

    // The program stops: a CRIT ticket for exactly this pattern.
    stop_helper(helper);
    let ticket = eventually(
        Duration::from_secs(15),
        "a ticket for the stopped process",
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            tickets_for(&open, &agent_id, "process")
                .first()
                .map(|t| (*t).clone())
        },
    )
    .await;
    assert_eq!(ticket["item"], marker.as_str(), "{ticket}");
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let summary = ticket["summary"].as_str().expect("summary");
    assert!(
        summary.contains(&format!("{marker}: 0 running, expected at least 1")),
        "{summary}"
    );
    let id = ticket["id"].as_i64().expect("id");

    // It runs again: the same ticket resolves by itself.
    let helper = start_helper(&exe);
    let resolved = eventually(Duration::from_secs(15), "the ticket to resolve", || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(t)
    })
    .await;
    assert!(resolved["resolved_at"].is_string(), "{resolved}");
    let all = collector.get("/api/v1/tickets").await;
    assert_eq!(tickets_for(&all, &agent_id, "process").len(), 1, "{all}");

    stop_helper(helper);
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_check_without_systemd_is_unknown_not_crit() {
    let collector = Collector::start();
    let unit = "forewarn-e2e-absent.service";
    let home = AgentHome::new(&format!(
        "{QUIET}[[checks.service]]\nname = {unit:?}\nexpect = \"running_and_enabled\"\ninterval_secs = 1\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let _agent = home.run();

    // Where systemd does run, the unit simply does not exist: CRIT "not
    // found". Here (systemd not PID 1) the agent cannot know: UNKNOWN.
    let systemd_runs = Path::new("/run/systemd/system").exists();
    let want = if systemd_runs { "crit" } else { "unknown" };
    let row = eventually(
        Duration::from_secs(30),
        "the service check's result",
        || async {
            collector
                .check_row(&agent_id, "service", unit)
                .await
                .filter(|c| c["state"] == want)
        },
    )
    .await;
    let message = row["message"].as_str().expect("message");
    if systemd_runs {
        assert!(message.contains("not found"), "{row}");
    } else {
        assert!(
            message.starts_with(&format!("{unit}: systemd not available (")),
            "{row}"
        );
        // The collector may open a ticket for UNKNOWN (policy is its own),
        // but it must never present it as a CRIT service outage.
        let all = collector.get("/api/v1/tickets").await;
        for t in tickets_for(&all, &agent_id, "service") {
            assert_eq!(t["severity"], "unknown", "{t}");
        }
    }
}
