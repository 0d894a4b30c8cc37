//! Certificate renewal end to end: a collector issuing 60-second agent
//! certificates and an agent renewing at 10 % of the lifetime. The agent's
//! certificate file changes, the collector records the new expiry and an
//! `agent.renewed` audit entry, and reporting goes on across renewals — also
//! after the enrollment certificate has expired, so the sessions must be
//! using the renewed ones.

mod common;

use std::time::{Duration, Instant};

use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn agent_config(mount: &std::path::Path) -> String {
    format!(
        "renew_at_fraction = 0.1\n\
         [checks.disk]\nmounts = [{mount:?}]\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

fn instant(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("rfc3339 string"), &Rfc3339).expect("rfc3339")
}

fn sessions_started(collector: &Collector, agent_id: &str) -> usize {
    collector
        .proc
        .log_text()
        .lines()
        .filter(|l| l.contains("agent session started") && l.contains(agent_id))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_renews_its_certificate_and_keeps_reporting() {
    let collector = Collector::start_with_config("[pki]\nagent_cert_validity_secs = 60\n");
    let mnt = Tmpfs::mount("8m");
    let item = mnt.path().to_str().expect("utf-8 path").to_string();
    let home = AgentHome::new(&agent_config(mnt.path()));
    let agent_id = enroll_ok(&collector, &home, "default");
    let cert_path = home.dir.path().join("state/agent.crt");
    let first_cert = std::fs::read_to_string(&cert_path).expect("agent.crt");
    let agent_path = format!("/api/v1/agents/{agent_id}");
    let first_not_after = instant(&collector.get(&agent_path).await["cert_not_after"]);
    let lifetime = first_not_after - OffsetDateTime::now_utc();
    assert!(
        lifetime <= time::Duration::seconds(60),
        "enrollment certificate must follow agent_cert_validity_secs: {lifetime}"
    );
    let mut agent = home.run();

    eventually(Duration::from_secs(30), "agent online", || async {
        let v = collector.get(&agent_path).await;
        (v["status"] == "online").then_some(())
    })
    .await;

    // ~6 s after enrollment: new key + certificate on disk, the new expiry
    // and an audit entry at the collector.
    let renewed_at = Instant::now();
    eventually(Duration::from_secs(30), "a renewed certificate", || async {
        let cert = std::fs::read_to_string(&cert_path).ok()?;
        let v = collector.get(&agent_path).await;
        let audit = collector.get("/api/v1/audit").await;
        let audited = audit.as_array().is_some_and(|a| {
            a.iter().any(|e| {
                e["action"] == "agent.renewed" && e["target"] == format!("agent/{agent_id}")
            })
        });
        (cert != first_cert && instant(&v["cert_not_after"]) > first_not_after && audited)
            .then_some(())
    })
    .await;
    eprintln!("renewal seen after {:?}", renewed_at.elapsed());
    let key = home.dir.path().join("state/agent.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "renewed key must stay private");
    }

    // Past the enrollment certificate's expiry, the agent still opens new
    // sessions (it reconnects after every renewal) and still reports.
    let expired = first_not_after + time::Duration::seconds(2);
    let before = sessions_started(&collector, &agent_id);
    eventually(
        Duration::from_secs(90),
        "a new session after the enrollment certificate expired",
        || async {
            (OffsetDateTime::now_utc() > expired
                && sessions_started(&collector, &agent_id) > before)
                .then_some(())
        },
    )
    .await;
    let after_expiry = sessions_started(&collector, &agent_id);
    eventually(
        Duration::from_secs(30),
        "yet another session on a renewed certificate",
        || async { (sessions_started(&collector, &agent_id) > after_expiry).then_some(()) },
    )
    .await;

    // Reporting goes on across the renewals: a full disk still opens its
    // ticket, and the agent is online, not overdue, with no liveness ticket.
    std::fs::write(
        mnt.path().join("fill.bin"),
        vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024],
    )
    .expect("fill tmpfs");
    let ticket = eventually(
        Duration::from_secs(20),
        "a ticket for the full disk",
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            open.as_array()?
                .iter()
                .find(|t| t["agent_id"] == agent_id.as_str() && t["check"] == "disk")
                .cloned()
        },
    )
    .await;
    assert_eq!(ticket["item"], item.as_str());
    let open = collector.get("/api/v1/tickets?state=open").await;
    let mine: Vec<_> = open
        .as_array()
        .expect("list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "only the disk ticket: {open}");
    eventually(Duration::from_secs(10), "agent online", || async {
        let v = collector.get(&agent_path).await;
        (v["status"] == "online" && v["overdue"] == false).then_some(())
    })
    .await;
    let log = agent.log_text();
    assert!(log.contains("client certificate renewed"), "{log}");
    assert!(!log.contains("certificate expired"), "{log}");

    let status = agent.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "agent did not stop cleanly:\n{}",
        agent.log_text()
    );
}
