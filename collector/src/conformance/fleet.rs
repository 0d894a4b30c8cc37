//! Conformance: the fleet view's grouped reads, the store's notifications,
//! and the live change feed built on them (what the write paths publish,
//! and that it reaches another service over the same store where the
//! store shares notifications: PostgreSQL replicas).

use std::sync::Arc;
use std::time::Duration;

use super::{NOW, changes, disk, session_at_now, tenant_with_agent};
use crate::domain::{
    CheckResult, CheckState, HostFacts, HostSnapshot, Report, ReportPayload, Scope,
};
use crate::live::{Change, Kind};
use crate::store::{FleetCheckCount, FleetTicketCount};
use crate::tickets::Service;
use crate::tickets::writer::{Write, Writer};

const DEADLINE: Duration = Duration::from_secs(10);

fn cpu(state: CheckState) -> CheckResult {
    CheckResult {
        check: "cpu".into(),
        item: String::new(),
        state,
        message: "cpu".into(),
        metrics: vec![],
        since: NOW,
    }
}

async fn report(svc: &Service, tenant: &str, agent: &str, seq: u64, results: Vec<CheckResult>) {
    svc.apply_report(
        tenant,
        agent,
        &changes(seq, NOW + seq as i64, results),
        NOW + seq as i64,
    )
    .await
    .expect("report");
}

fn count(agent: &str, check: &str, state: &str, count: i64) -> FleetCheckCount {
    FleetCheckCount {
        agent_id: agent.into(),
        check: check.into(),
        state: state.into(),
        count,
    }
}

pub async fn fleet_rows_count_states_and_open_tickets_in_scope(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    super::enroll(&svc, &super::new_agent("a2", &acme)).await;
    let other = tenant_with_agent(&svc, "other", "b1").await;
    for (t, a) in [(&acme, "a1"), (&acme, "a2"), (&other, "b1")] {
        session_at_now(&svc, t, a).await;
    }
    report(&svc, &acme, "a1", 1, vec![disk(CheckState::Crit, 99.0)]).await;
    report(
        &svc,
        &acme,
        "a2",
        1,
        vec![disk(CheckState::Ok, 10.0), cpu(CheckState::Warn)],
    )
    .await;
    report(&svc, &other, "b1", 1, vec![disk(CheckState::Crit, 99.0)]).await;

    let mut rows = svc
        .store()
        .fleet_rows(&Scope::Tenant(acme.clone()))
        .await
        .expect("fleet rows");
    rows.checks
        .sort_by(|a, b| (&a.agent_id, &a.check).cmp(&(&b.agent_id, &b.check)));
    assert_eq!(
        rows.checks,
        [
            count("a1", "disk", "crit", 1),
            count("a2", "cpu", "warn", 1),
            count("a2", "disk", "ok", 1),
        ],
        "acme's checks only"
    );
    rows.tickets.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    let open = |agent: &str| FleetTicketCount {
        agent_id: agent.into(),
        open: 1,
        breached: 0,
    };
    assert_eq!(
        rows.tickets,
        [open("a1"), open("a2")],
        "acme's open tickets (disk CRIT, cpu WARN); other's is out of scope"
    );
    let all = svc.store().fleet_rows(&Scope::All).await.expect("all");
    assert!(all.checks.iter().any(|c| c.agent_id == "b1"), "{all:?}");
    assert_eq!(all.tickets.iter().map(|t| t.open).sum::<i64>(), 3);
    let none = svc
        .store()
        .fleet_rows(&Scope::Tenants(vec![]))
        .await
        .expect("empty scope");
    assert!(
        none.checks.is_empty() && none.tickets.is_empty(),
        "{none:?}"
    );
}

pub async fn notifications_reach_listeners_where_the_store_shares_them(svc: Service) {
    let store = svc.store();
    let listening = store.listen("forewarn_conformance").await.expect("listen");
    if !store.shares_notifications() {
        assert!(
            listening.is_none(),
            "one process owns this store: nothing to listen to"
        );
        store
            .notify("forewarn_conformance", "x")
            .await
            .expect("a no-op");
        return;
    }
    let mut listening = listening.expect("a shared store listens");
    for payload in ["first", "second"] {
        store
            .notify("forewarn_conformance", payload)
            .await
            .expect("notify");
    }
    for want in ["first", "second"] {
        let got = tokio::time::timeout(DEADLINE, listening.recv())
            .await
            .expect("a notification within the deadline")
            .expect("recv");
        assert_eq!(got, want, "in order");
    }
}

fn change(tenant: &str, kind: Kind) -> Change {
    Change {
        tenant_id: tenant.into(),
        kind,
    }
}

pub async fn writes_publish_what_they_changed_once_committed(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let writer = Writer::start(&svc, 1);
    let live = svc.live();
    writer
        .apply(Write::Hello {
            tenant_id: acme.clone(),
            agent_id: "a1".into(),
            boot_id: "boot-1".into(),
            facts: HostFacts::default(),
            interval_secs: 15,
            clock_offset_ms: None,
            now: NOW,
        })
        .await
        .expect("hello");
    assert_eq!(
        live.take_published(),
        [change(&acme, Kind::Agent)],
        "a session start"
    );

    let heartbeat = |seq: u64, state| Write::Report {
        tenant_id: acme.clone(),
        agent_id: "a1".into(),
        report: Report {
            boot_id: "boot-1".into(),
            seq,
            observed_at: NOW + 1,
            payload: ReportPayload::Heartbeat {
                snapshot: HostSnapshot::default(),
                checks: vec![disk(state, 10.0)],
            },
        },
        now: NOW + 1,
    };
    writer
        .apply(heartbeat(1, CheckState::Ok))
        .await
        .expect("first heartbeat");
    live.take_published();
    writer
        .apply(heartbeat(2, CheckState::Ok))
        .await
        .expect("heartbeat");
    assert_eq!(
        live.take_published(),
        [],
        "a heartbeat that changes nothing publishes nothing"
    );

    writer
        .apply(Write::Report {
            tenant_id: acme.clone(),
            agent_id: "a1".into(),
            report: changes(3, NOW + 2, vec![disk(CheckState::Crit, 99.0)]),
            now: NOW + 2,
        })
        .await
        .expect("state change");
    let mut got = live.take_published();
    got.sort_by_key(|c| c.kind == Kind::Ticket);
    assert_eq!(
        got,
        [change(&acme, Kind::Agent), change(&acme, Kind::Ticket)],
        "the state and the ticket it opened"
    );

    // A refused write publishes nothing.
    let refused = writer
        .apply(Write::Report {
            tenant_id: acme.clone(),
            agent_id: "nobody".into(),
            report: changes(1, NOW + 3, vec![disk(CheckState::Crit, 99.0)]),
            now: NOW + 3,
        })
        .await;
    assert!(refused.is_err());
    assert_eq!(live.take_published(), [], "rolled back: nothing to tell");
}

pub async fn changes_reach_a_subscriber_of_another_service_where_shared(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    session_at_now(&svc, &acme, "a1").await;
    // Another replica: its own service (and feed) over the same database.
    let other = Service::new(Arc::clone(svc.store()));
    let shared = svc.store().shares_notifications();
    let (reader, mut rx) = if shared {
        let rx = other.live().subscribe();
        (other, rx)
    } else {
        // One process owns a SQLite store: its own service's subscribers.
        let rx = svc.live().subscribe();
        (svc.clone(), rx)
    };
    // The listener connects in the background: probe until it hears.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        svc.live().publish([change("probe", Kind::Agent)]);
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Ok(c)) if c.tenant_id == "probe" => break,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "the feed never delivered"
            ),
        }
    }
    drop(reader);
    report(&svc, &acme, "a1", 1, vec![disk(CheckState::Crit, 99.0)]).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while !seen.contains(&change(&acme, Kind::Ticket)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let c = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no ticket change for acme; saw {seen:?}"))
            .expect("recv");
        seen.push(c);
    }
}
