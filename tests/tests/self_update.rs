//! Signed self-update end to end: a real collector offers a signed release
//! from its `[releases] dir` to a real agent over mTLS; the agent runs from
//! its own copy of the binary, which the update replaces. Keys and
//! signatures are made by the collector's own `release keygen` / `release
//! sign`. The second version (0.99.0) is the real agent built again with
//! `FOREWARN_VERSION` (`tests/update.sh`); the crashing "version" is a small
//! shell script signed like a release, since a binary that crashes at
//! start is what the trial must catch.

mod common;

use std::time::Duration;

use common::update::{
    B_VERSION, UpdatingAgent, a_version, artifact_name, b_binary, keygen, publish, releases_config,
    shown_version, update_audit,
};
use common::{Collector, bin, enroll_ok, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// A → B: offered, downloaded, verified, tried, swapped and exec'd (same
/// PID); the collector then sees B's version and the audit log the result.
#[tokio::test(flavor = "multi_thread")]
async fn the_collector_updates_an_agent_from_a_to_b() {
    let a = a_version();
    let keys = keygen();
    let releases = keys.dir.path().join("releases");
    let b_bytes = std::fs::read(b_binary()).expect("B");
    publish(&releases, &keys, B_VERSION, &b_bytes);
    let collector =
        Collector::start_with_config(&releases_config(&releases, &keys.public, B_VERSION));
    let agent = UpdatingAgent::new(&bin("forewarn-agent"), &keys.public);
    let id = enroll_ok(&collector, &agent.home, "default");
    let mut proc = agent.run();

    eventually(
        WAIT,
        "the collector to see the agent at B's version",
        || async {
            (shown_version(&collector, &id).await.as_deref() == Some(B_VERSION)).then_some(())
        },
    )
    .await;
    let updated = eventually(WAIT, "the update's audit entry", || async {
        update_audit(&collector)
            .await
            .into_iter()
            .find(|e| e["action"] == "agent.update.updated")
    })
    .await;
    assert_eq!(updated["target"], format!("agent/{id}"));
    assert!(
        updated["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("from {a} to {B_VERSION}"))),
        "{updated}"
    );
    // The same process (exec keeps the PID): still our child, still running.
    assert!(
        proc.child.try_wait().expect("wait").is_none(),
        "the agent process exited:\n{}",
        proc.log_text()
    );
    // B is in place, A kept as .prev, nothing left over.
    assert_eq!(std::fs::read(&agent.exe).expect("exe"), b_bytes);
    assert_eq!(
        std::fs::read(agent.sibling(".prev")).expect("prev"),
        std::fs::read(bin("forewarn-agent")).expect("A")
    );
    assert!(!agent.sibling(".new").exists());
    let log = proc.log_text();
    assert!(log.contains("update trial passed"), "{log}");
    assert!(log.contains("handing over to the new version"), "{log}");
    // B keeps reporting: a fresh heartbeat after the hand-over.
    eventually(WAIT, "the updated agent online", || async {
        let d = collector.agent(&id).await?;
        (d["status"] == "online").then_some(())
    })
    .await;
}

/// A compromised collector that trusts (and signs with) another key: the
/// agent refuses the tampered binary, reports it, and keeps running A.
/// The same tampered bytes under the real key's signature are never even
/// served by an honest collector (`release list` says why).
#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_binary_is_refused() {
    let a = a_version();
    let trusted = keygen();
    let attacker = keygen();
    let releases = attacker.dir.path().join("releases");
    let mut tampered = std::fs::read(b_binary()).expect("B");
    tampered.extend_from_slice(b"\0tampered");
    publish(&releases, &attacker, B_VERSION, &tampered);
    let collector =
        Collector::start_with_config(&releases_config(&releases, &attacker.public, B_VERSION));
    let agent = UpdatingAgent::new(&bin("forewarn-agent"), &trusted.public);
    let id = enroll_ok(&collector, &agent.home, "default");
    let mut proc = agent.run();

    let refused = eventually(WAIT, "the refusal in the audit log", || async {
        update_audit(&collector)
            .await
            .into_iter()
            .find(|e| e["action"] == "agent.update.refused")
    })
    .await;
    let detail = refused["detail"].as_str().expect("detail");
    assert!(
        detail.contains("not from this agent's release key"),
        "{detail}"
    );
    assert!(
        proc.child.try_wait().expect("wait").is_none(),
        "{}",
        proc.log_text()
    );
    assert_eq!(
        shown_version(&collector, &id).await.as_deref(),
        Some(a.as_str())
    );
    assert_eq!(
        std::fs::read(&agent.exe).expect("exe"),
        std::fs::read(bin("forewarn-agent")).expect("A")
    );
    assert!(
        !agent.sibling(".new").exists(),
        "the refused download is removed"
    );
    assert!(proc.log_text().contains("update not taken"));

    // An honest collector never serves bytes its signature does not cover.
    let honest = trusted.dir.path().join("releases");
    let file = publish(
        &honest,
        &trusted,
        B_VERSION,
        &std::fs::read(b_binary()).expect("B"),
    );
    std::fs::write(&file, &tampered).expect("tamper after signing");
    let listed = collector_cli_list(&honest, &trusted.public);
    assert_eq!(listed["artifacts"], serde_json::json!([]), "{listed}");
    assert_eq!(listed["rejected"][0]["file"], artifact_name(B_VERSION));
    assert!(
        listed["rejected"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("signature does not verify")),
        "{listed}"
    );
}

/// A signed "B" that crashes at start fails its trial: A is kept (rolled
/// back), the failure with B's last words is reported, A keeps reporting.
#[tokio::test(flavor = "multi_thread")]
async fn a_b_that_crashes_at_start_is_rolled_back() {
    let a = a_version();
    let keys = keygen();
    let releases = keys.dir.path().join("releases");
    publish(
        &releases,
        &keys,
        B_VERSION,
        b"#!/bin/sh\necho 'fatal: cannot start' >&2\nexit 3\n",
    );
    let collector =
        Collector::start_with_config(&releases_config(&releases, &keys.public, B_VERSION));
    let agent = UpdatingAgent::new(&bin("forewarn-agent"), &keys.public);
    let id = enroll_ok(&collector, &agent.home, "default");
    let mut proc = agent.run();

    let rolled_back = eventually(WAIT, "the rollback in the audit log", || async {
        update_audit(&collector)
            .await
            .into_iter()
            .find(|e| e["action"] == "agent.update.rolled_back")
    })
    .await;
    let detail = rolled_back["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!("from {a} to {B_VERSION}")),
        "{detail}"
    );
    assert!(detail.contains("exit status: 3"), "{detail}");
    assert!(detail.contains("fatal: cannot start"), "{detail}");
    assert!(
        proc.child.try_wait().expect("wait").is_none(),
        "{}",
        proc.log_text()
    );
    assert_eq!(
        std::fs::read(&agent.exe).expect("exe"),
        std::fs::read(bin("forewarn-agent")).expect("A")
    );
    assert!(!agent.sibling(".new").exists());
    assert!(!agent.sibling(".prev").exists());
    assert_eq!(
        shown_version(&collector, &id).await.as_deref(),
        Some(a.as_str())
    );
    assert!(
        update_audit(&collector)
            .await
            .iter()
            .all(|e| e["action"] != "agent.update.updated")
    );
}

/// An agent at B with only A (older, signed) in the rollout: nothing is
/// offered, so nothing is attempted; B keeps running. (That the agent
/// itself refuses a downgrade a collector did offer is unit-tested in
/// `agent/src/update/verify.rs`: an honest collector cannot be made to.)
#[tokio::test(flavor = "multi_thread")]
async fn a_downgrade_is_not_offered() {
    let a = a_version();
    let keys = keygen();
    let releases = keys.dir.path().join("releases");
    publish(
        &releases,
        &keys,
        &a,
        &std::fs::read(bin("forewarn-agent")).expect("A"),
    );
    let collector = Collector::start_with_config(&releases_config(&releases, &keys.public, &a));
    let agent = UpdatingAgent::new(&b_binary(), &keys.public);
    let id = enroll_ok(&collector, &agent.home, "default");
    let proc = agent.run();
    eventually(WAIT, "the agent at B online", || async {
        let d = collector.agent(&id).await?;
        (d["status"] == "online" && d["agent_version"] == B_VERSION).then_some(())
    })
    .await;
    // The offer would follow the hello at once; a heartbeat later there is none.
    eventually(WAIT, "a heartbeat", || async {
        let d = collector.agent(&id).await?;
        (!d["checks"].as_array()?.is_empty()).then_some(())
    })
    .await;
    assert!(update_audit(&collector).await.is_empty());
    assert!(
        !collector
            .proc
            .log_text()
            .contains("offering an agent update")
    );
    assert!(!proc.log_text().contains("update offered"));
    assert_eq!(
        std::fs::read(&agent.exe).expect("exe"),
        std::fs::read(b_binary()).expect("B")
    );
}

/// `forewarn-collector release list --json` on a config with `dir` and `key`.
fn collector_cli_list(dir: &std::path::Path, key: &str) -> serde_json::Value {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[releases]\ndir = {dir:?}\npublic_key = \"{key}\"\n",
            home.path().join("data")
        ),
    )
    .expect("config");
    let out = std::process::Command::new(bin("forewarn-collector"))
        .arg("--config")
        .arg(&config)
        .args(["release", "list", "--json"])
        .output()
        .expect("release list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}
