//! Instant detection, end to end: the event paths that put a failure on the
//! collector before the check's interval comes round, and the fallback.
//!
//! - A systemd unit stopped: its D-Bus signal wakes the agent's service
//!   check. systemd cannot run here, so the bus is a real private
//!   `dbus-daemon` and systemd on it is a local fake
//!   (`common/systemd_fake.rs`). The check's `interval_secs` is an hour:
//!   only the signal can bring the ticket.
//! - No system bus (this machine as it is): the service check polls
//!   `systemctl` every interval and says so in the log once, not per poll.
//! - A watched process killed: its pidfd wakes the process check, again
//!   with an hour-long interval.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::systemd_fake::SystemdFake;
use common::{AgentHome, Collector, Proc, enroll_ok, eventually};
use serde_json::Value;

/// Only the checks under test: host checks off, so nothing else raises.
const QUIET: &str = "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
                     [checks.memory]\nenabled = false\n";

/// The open ticket of (check, item) for this agent, if any.
async fn open_ticket(c: &Collector, agent_id: &str, check: &str, item: &str) -> Option<Value> {
    let open = c.get("/api/v1/tickets?state=open").await;
    open.as_array()?
        .iter()
        .find(|t| t["agent_id"] == agent_id && t["check"] == check && t["item"] == item)
        .cloned()
}

/// `forewarn-agent run` with the system bus at `bus` (a private one).
fn run_on_bus(home: &AgentHome, bus: &str) -> Proc {
    let log = home.dir.path().join("agent.log");
    let child = home
        .command()
        .arg("run")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn agent");
    Proc { child, log }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_stopped_is_reported_by_its_dbus_signal() {
    let unit = "fw-e2e-web.service";
    let systemd = SystemdFake::start(&[unit]).await;
    let collector = Collector::start();
    // The name without `.service`, as a user would write it; an hour
    // between polls, so only a signal can bring a change in time.
    let home = AgentHome::new(&format!(
        "{QUIET}[[checks.service]]\nname = \"fw-e2e-web\"\ninterval_secs = 3600\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = run_on_bus(&home, &systemd.address);

    let ok = eventually(Duration::from_secs(30), "service OK over D-Bus", || async {
        collector
            .check_row(&agent_id, "service", "fw-e2e-web")
            .await
            .filter(|c| c["state"] == "ok")
    })
    .await;
    assert_eq!(
        ok["message"], "fw-e2e-web: active (running), enabled",
        "{ok}"
    );
    assert!(
        agent
            .log_text()
            .contains("service checks follow systemd over the system bus"),
        "{}",
        agent.log_text()
    );
    let loads = systemd.loads(unit);
    assert!(loads >= 1, "the agent read the unit over the bus");

    systemd.set_running(unit, false).await;
    let ticket = eventually(
        Duration::from_secs(30),
        "a ticket for the stopped unit",
        || open_ticket(&collector, &agent_id, "service", "fw-e2e-web"),
    )
    .await;
    assert_eq!(ticket["severity"], "crit", "{ticket}");
    let summary = ticket["summary"].as_str().expect("summary");
    assert!(
        summary.contains("fw-e2e-web: inactive (dead), enabled, expected running"),
        "{summary}"
    );
    assert!(
        systemd.loads(unit) > loads,
        "the signal made the agent read the unit again"
    );

    systemd.set_running(unit, true).await;
    let id = ticket["id"].as_i64().expect("id");
    eventually(Duration::from_secs(30), "the ticket to resolve", || async {
        let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
        (t["state"] == "resolved").then_some(())
    })
    .await;
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_system_bus_services_are_polled_and_it_is_said_once() {
    if Path::new("/run/dbus/system_bus_socket").exists() {
        eprintln!("a system bus exists here: the fallback is not what runs");
        return;
    }
    let collector = Collector::start();
    let home = AgentHome::new(&format!(
        "{QUIET}[[checks.service]]\nname = \"fw-e2e-absent\"\ninterval_secs = 1\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    // Debug for the service probe: one line per poll, to count them.
    let agent = home.run_with("agent.log", "info,forewarn_agent::checks::service=debug");
    let polls = |text: &str| text.matches("service polled with systemctl").count();
    eventually(Duration::from_secs(60), "three systemctl polls", || async {
        (polls(&agent.log_text()) >= 3).then_some(())
    })
    .await;
    let text = agent.log_text();
    assert_eq!(
        text.matches("systemd is not reachable on the system bus")
            .count(),
        1,
        "said once, not per poll:\n{text}"
    );
    let row = eventually(Duration::from_secs(30), "the service check", || async {
        collector
            .check_row(&agent_id, "service", "fw-e2e-absent")
            .await
            .filter(|c| c["state"] == "unknown")
    })
    .await;
    assert!(
        row["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("fw-e2e-absent: systemd not available (")),
        "{row}"
    );
}

/// `sleep 600` under a name no other process on the machine has.
fn start_helper(exe: &Path) -> Child {
    Command::new(exe).arg("600").spawn().expect("spawn helper")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_is_reported_by_its_pidfd() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = format!("fw-e2e-pidfd-{}", std::process::id());
    let exe = dir.path().join(&marker);
    std::os::unix::fs::symlink("/bin/sleep", &exe).expect("symlink sleep");
    let mut helper = start_helper(&exe);
    let home = AgentHome::new(&format!(
        "{QUIET}[[checks.process]]\ncmdline = {marker:?}\ninterval_secs = 3600\n"
    ));
    let agent_id = enroll_ok(&collector, &home, "default");
    let agent = home.run();
    eventually(Duration::from_secs(30), "process check OK", || async {
        collector
            .check_row(&agent_id, "process", &marker)
            .await
            .filter(|c| c["state"] == "ok")
    })
    .await;

    helper.kill().expect("kill helper");
    helper.wait().expect("reap helper");
    let ticket = eventually(
        Duration::from_secs(30),
        "a ticket for the killed process",
        || open_ticket(&collector, &agent_id, "process", &marker),
    )
    .await;
    assert!(
        ticket["summary"]
            .as_str()
            .is_some_and(|s| s.contains("0 running, expected at least 1")),
        "{ticket}"
    );
    drop(agent);
}
