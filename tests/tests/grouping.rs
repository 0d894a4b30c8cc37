//! Per-tenant ticket policy end to end: a real collector configured with
//! `[tickets.tenants.<name>]` overrides, simulated agents (real enrollment,
//! real mTLS, the real session protocol) failing the same backup job on
//! many hosts at once, asserted through the HTTP API.
//!
//! Grouping runs in the collector's once-a-second sweep; everything is
//! awaited by polling with a deadline. Where a test must show that
//! something did *not* happen, it waits for a control that the same sweep
//! (or a later one) is bound to produce instead of sleeping.

mod common;

use std::time::Duration;

use common::sim::{SimAgent, State};
use common::{Collector, eventually};
use serde_json::Value;

/// Generous: two cores run several collectors at once.
const WAIT: Duration = Duration::from_secs(30);

/// Every ticket the collector holds, oldest first.
async fn all_tickets(c: &Collector) -> Vec<Value> {
    let mut v = c
        .get("/api/v1/tickets")
        .await
        .as_array()
        .expect("ticket list")
        .clone();
    v.sort_by_key(|t| t["id"].as_i64());
    v
}

fn id(t: &Value) -> i64 {
    t["id"].as_i64().unwrap_or_else(|| panic!("no id: {t}"))
}

/// The open `group` ticket for `check`/`item`, if any.
async fn open_group(c: &Collector, check: &str, item: &str) -> Option<Value> {
    all_tickets(c).await.into_iter().find(|t| {
        t["kind"] == "group" && t["check"] == check && t["item"] == item && t["state"] == "open"
    })
}

fn children<'a>(all: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    all.iter()
        .filter(|t| t["parent_id"] == parent["id"])
        .collect()
}

/// Connects every agent at once.
async fn connect_all(agents: Vec<SimAgent>) -> Vec<SimAgent> {
    let mut set = tokio::task::JoinSet::new();
    for mut a in agents {
        set.spawn(async move {
            a.connect(60).await;
            a
        });
    }
    let mut all = set.join_all().await;
    all.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    all
}

/// Six hosts of one tenant fail the same backup job: one parent ticket
/// with six children. The same failure at another tenant (no grouping
/// configured) stays six tickets. They recover: each child resolves on its
/// own, and the parent only with the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hosts_failing_the_same_backup_are_one_parent_with_six_children() {
    let c = Collector::start_with_config(
        r#"
[tickets.tenants.default]
group_same_check = { min_hosts = 5, window_secs = 120 }
workstation_priority = { crit = "P1" }

[tickets.tenants.nobody]
sla.P1.ack_mins = 5
"#,
    );
    // An override table naming no tenant is logged at start.
    let log = c.proc.log_text();
    assert!(
        log.contains("unknown tenant") && log.contains("nobody"),
        "no warning about tickets.tenants.nobody:\n{log}"
    );
    assert!(c.cli(&["tenant", "add", "other"]).status.success());
    let (token, _) = c.token("default", &["--max-uses", "6"]);
    let (other_token, _) = c.token("other", &["--max-uses", "6"]);
    let hosts = connect_all(SimAgent::enroll_many(&c, &token, "bk", 6).await).await;
    let others = connect_all(SimAgent::enroll_many(&c, &other_token, "ot", 6).await).await;

    // Every host's nightly backup fails within a second or two.
    let mut set = tokio::task::JoinSet::new();
    for mut a in hosts.into_iter().chain(others) {
        set.spawn(async move {
            a.change(
                "backup",
                "nightly",
                State::Crit,
                "backup job nightly failed",
            )
            .await;
            a
        });
    }
    let mut all_hosts = set.join_all().await;
    all_hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    let (mut hosts, others): (Vec<SimAgent>, Vec<SimAgent>) = all_hosts
        .into_iter()
        .partition(|a| a.hostname.starts_with("bk"));
    assert_eq!((hosts.len(), others.len()), (6, 6));

    let parent = eventually(WAIT, "the group ticket with six children", || async {
        let p = open_group(&c, "backup", "nightly").await?;
        let all = all_tickets(&c).await;
        (children(&all, &p).len() == 6).then_some(p)
    })
    .await;
    let all = all_tickets(&c).await;
    assert_eq!(parent["tenant_id"], hosts[0].tenant_id.as_str(), "{parent}");
    assert_eq!(
        parent["priority"], "P1",
        "tenant override: workstation crit → P1"
    );
    let summary = parent["summary"].as_str().expect("summary");
    assert!(
        summary.contains("backup nightly failing on 6 hosts"),
        "{summary}"
    );
    for a in &hosts {
        assert!(
            summary.contains(&a.hostname),
            "{} not listed: {summary}",
            a.hostname
        );
    }
    for t in children(&all, &parent) {
        assert_eq!(t["kind"], "check", "{t}");
        assert_eq!(t["state"], "open", "{t}");
        assert_eq!(t["priority"], "P1", "{t}");
    }
    // The other tenant: six tickets of their own, no parent, global priority.
    let theirs: Vec<&Value> = all
        .iter()
        .filter(|t| t["tenant_id"] == others[0].tenant_id.as_str())
        .collect();
    assert_eq!(theirs.len(), 6, "{theirs:?}");
    for t in &theirs {
        assert_eq!(t["kind"], "check", "{t}");
        assert!(t["parent_id"].is_null(), "{t}");
        assert_eq!(t["priority"], "P2", "{t}");
    }
    assert_eq!(
        all.len(),
        13,
        "6 + 1 parent + 6 at the other tenant: {all:?}"
    );

    // Five recover: their tickets resolve at once; the parent stays open.
    let last = hosts.pop().expect("six hosts");
    for a in &mut hosts {
        a.change(
            "backup",
            "nightly",
            State::Ok,
            "backup job nightly succeeded",
        )
        .await;
    }
    // Control: a later sweep groups a second failing job on the same five.
    for a in &mut hosts {
        a.change("backup", "weekly", State::Warn, "backup job weekly failed")
            .await;
    }
    eventually(WAIT, "the weekly job's group (a later sweep)", || async {
        open_group(&c, "backup", "weekly").await
    })
    .await;
    let all = all_tickets(&c).await;
    let kids = children(&all, &parent);
    assert_eq!(kids.len(), 6);
    assert_eq!(
        kids.iter().filter(|t| t["state"] == "resolved").count(),
        5,
        "{kids:?}"
    );
    let p = c.get(&format!("/api/v1/tickets/{}", id(&parent))).await;
    assert_eq!(p["state"], "open", "a child is still failing: {p}");

    // The last one recovers: the parent resolves.
    let mut last = last;
    last.change(
        "backup",
        "nightly",
        State::Ok,
        "backup job nightly succeeded",
    )
    .await;
    let p = eventually(WAIT, "the parent to resolve", || async {
        let p = c.get(&format!("/api/v1/tickets/{}", id(&parent))).await;
        (p["state"] == "resolved").then_some(p)
    })
    .await;
    assert_eq!(p["resolved_by"], "engine", "{p}");
    let all = all_tickets(&c).await;
    assert!(
        children(&all, &parent)
            .iter()
            .all(|t| t["state"] == "resolved"),
        "{all:?}"
    );
    let groups = all.iter().filter(|t| t["kind"] == "group").count();
    assert_eq!(groups, 2, "nightly (resolved) + weekly (open): {all:?}");
}
