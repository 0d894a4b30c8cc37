//! Conformance: a problem's ticket from open to resolve, one at a time
//! under concurrent writers, escalation and operator actions, and what a
//! problem row keeps.

use super::{MIN, NOW, admin, changes, disk, open_crit, problem, tenant_with_agent, ticket};
use crate::Error;
use crate::domain::{
    ApiCaller, CheckState, HostSnapshot, Millis, Report, ReportPayload, Scope, TicketAction,
    TicketState,
};
use crate::tickets::Service;

pub async fn tickets_open_update_resolve_and_reopen(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Warn, 90.0)]),
            NOW,
        )
        .await
        .expect("apply");
    assert_eq!((o.opened, o.duplicate), (1, false));
    // Same seq again: a duplicate, nothing changes.
    let dup = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
            NOW,
        )
        .await
        .expect("dup");
    assert!(dup.duplicate);
    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(2, NOW + 1, vec![disk(CheckState::Crit, 97.0)]),
            NOW + 1,
        )
        .await
        .expect("apply");
    assert_eq!((o.opened, o.updated), (0, 1));
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].severity, CheckState::Crit);
    assert_eq!(open[0].item, "/data");
    assert_eq!(open[0].host, "host-a1");
    assert_eq!(open[0].site, "hq");
    let first_id = open[0].id;

    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(3, NOW + 2, vec![disk(CheckState::Ok, 20.0)]),
            NOW + 2,
        )
        .await
        .expect("apply");
    assert_eq!(o.resolved, 1);
    let t = svc
        .store()
        .get_ticket(&Scope::All, first_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(t.ticket.state, TicketState::Resolved);
    assert_eq!(t.ticket.resolved_at, Some(NOW + 2));
    let kinds: Vec<_> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "updated", "resolved"]);

    // A relapse within the grace reopens the same ticket (same episode)...
    let apply = |seq: u64, at: Millis, state: CheckState| {
        let svc = svc.clone();
        let tenant = tenant.clone();
        async move {
            svc.apply_report(
                &tenant,
                "a1",
                &changes(seq, at, vec![disk(state, 99.0)]),
                at,
            )
            .await
            .expect("apply")
        }
    };
    assert_eq!(apply(4, NOW + 3, CheckState::Crit).await.opened, 1);
    let all = svc
        .store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, TicketState::Open);
    let t = svc
        .store()
        .get_ticket(&Scope::All, first_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(t.events.last().map(|e| e.kind.as_str()), Some("reopened"));
    // ...a failure after the grace (default 300 s) is a new episode.
    assert_eq!(apply(5, NOW + 4, CheckState::Ok).await.resolved, 1);
    assert_eq!(apply(6, NOW + 400_000, CheckState::Crit).await.opened, 1);
    let all = svc
        .store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list");
    assert_eq!(all.len(), 2);
    assert_ne!(all[0].id, first_id);
    assert_eq!(all[0].priority, "P1", "crit on a server");
    assert_eq!(all[0].tier, 1);
    assert!(all[0].ack_due_at.is_some());
}

pub async fn stale_results_do_not_roll_back(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.apply_report(
        &tenant,
        "a1",
        &changes(2, NOW + 10, vec![disk(CheckState::Crit, 99.0)]),
        NOW,
    )
    .await
    .expect("apply");
    // An older report arriving late (resend) must not resolve the ticket.
    svc.apply_report(
        &tenant,
        "a1",
        &changes(1, NOW, vec![disk(CheckState::Ok, 10.0)]),
        NOW,
    )
    .await
    .expect("apply");
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
}

/// Many writers race to report the same failure; the database must end with
/// exactly one open ticket.
pub async fn one_open_ticket_under_concurrent_writers(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let mut tasks = Vec::new();
    for seq in 1..=16u64 {
        let svc = svc.clone();
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            let state = if seq % 2 == 0 {
                CheckState::Crit
            } else {
                CheckState::Warn
            };
            svc.apply_report(
                &tenant,
                "a1",
                &changes(seq, NOW, vec![disk(state, 99.0)]),
                NOW,
            )
            .await
        }));
    }
    let mut opened = 0;
    for t in tasks {
        opened += t.await.expect("join").expect("apply").opened;
    }
    assert_eq!(opened, 1);
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
}

pub async fn unacknowledged_tickets_escalate_once_per_sla_window(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    let t = ticket(&svc, id).await.ticket;
    assert_eq!((t.priority.as_str(), t.tier), ("P1", 1), "crit on a server");
    // P1: acknowledge within 15 min. (The agent also goes overdue as
    // nothing reports here; only the disk ticket is followed.)
    let tier = |svc: Service| async move { ticket(&svc, id).await.ticket.tier };
    svc.sweep(NOW + 14 * MIN).await.expect("sweep");
    assert_eq!(tier(svc.clone()).await, 1);
    svc.sweep(NOW + 16 * MIN).await.expect("sweep");
    assert_eq!(tier(svc.clone()).await, 2);
    // The same moment again (a restart re-running the sweep): no double escalation.
    svc.sweep(NOW + 16 * MIN).await.expect("sweep");
    let t = ticket(&svc, id).await;
    assert_eq!(t.ticket.tier, 2);
    assert!(t.ticket.ack_breached);
    let kinds: Vec<_> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "sla_breach", "escalated"]);
    svc.sweep(NOW + 32 * MIN).await.expect("sweep");
    assert_eq!(tier(svc.clone()).await, 3);
    svc.sweep(NOW + 90 * MIN).await.expect("sweep");
    let t = ticket(&svc, id).await.ticket;
    assert_eq!((t.tier, t.escalations), (3, 2), "L3 is the top");
    // Not resolved within 4 h: a resolve breach, once.
    svc.sweep(NOW + 241 * MIN).await.expect("sweep");
    svc.sweep(NOW + 300 * MIN).await.expect("sweep");
    let t = ticket(&svc, id).await;
    assert!(t.ticket.resolve_breached);
    assert_eq!(
        t.events.iter().filter(|e| e.kind == "sla_breach").count(),
        2
    );
}

pub async fn acknowledging_stops_escalation_and_actions_are_audited(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    let now = NOW + MIN;
    let out = svc
        .ticket_action(&admin(), id, &TicketAction::Acknowledge, now)
        .await
        .expect("ack");
    assert_eq!(out.ticket.ticket.acknowledged_by.as_deref(), Some("alice"));
    assert!(matches!(
        svc.ticket_action(&admin(), id, &TicketAction::Acknowledge, now)
            .await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(svc.sweep(NOW + 60 * MIN).await.expect("sweep").escalated, 0);
    svc.ticket_action(&admin(), id, &TicketAction::Assign("bob".into()), now)
        .await
        .expect("assign");
    svc.ticket_action(
        &admin(),
        id,
        &TicketAction::Note("replacing disk".into()),
        now,
    )
    .await
    .expect("note");
    let out = svc
        .ticket_action(&admin(), id, &TicketAction::Escalate, now)
        .await
        .expect("escalate");
    assert_eq!(out.ticket.ticket.tier, 2);
    assert_eq!(out.ticket.ticket.assignee.as_deref(), Some("bob"));
    let viewer = ApiCaller {
        role: crate::domain::Role::Viewer,
        source: String::new(),
        ..admin()
    };
    assert!(matches!(
        svc.ticket_action(&viewer, id, &TicketAction::Resolve, now)
            .await,
        Err(Error::PermissionDenied(_))
    ));
    let other_tenant = ApiCaller {
        scope: Scope::Tenant("someone-else".into()),
        ..admin()
    };
    assert!(matches!(
        svc.ticket_action(&other_tenant, id, &TicketAction::Resolve, now)
            .await,
        Err(Error::NotFound(_))
    ));
    let audit = svc.store().audit_log(&Scope::All, 10).await.expect("audit");
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "ticket.escalated",
            "ticket.note",
            "ticket.assigned",
            "ticket.acknowledged"
        ]
    );
    assert!(audit.iter().all(|a| a.actor == "alice"));
}

pub async fn resolving_by_hand_a_present_problem_says_so_and_reopens(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    let out = svc
        .ticket_action(&admin(), id, &TicketAction::Resolve, NOW + MIN)
        .await
        .expect("resolve");
    assert!(out.still_failing.is_some(), "the disk is still full");
    assert_eq!(out.ticket.ticket.resolved_by.as_deref(), Some("alice"));
    // The engine still watches (the agent still reports): the next sweep
    // reopens the same ticket.
    svc.apply_report(&tenant, "a1", &changes(2, NOW + MIN, vec![]), NOW + MIN)
        .await
        .expect("alive");
    svc.sweep(NOW + MIN + 1000).await.expect("sweep");
    let t = ticket(&svc, id).await;
    assert_eq!(t.ticket.state, TicketState::Open);
    assert_eq!(t.events.last().map(|e| e.kind.as_str()), Some("reopened"));
}

/// A problem row is written when the problem changes, not at every
/// heartbeat that repeats it.
pub async fn unchanged_heartbeats_do_not_rewrite_problems(svc: Service) {
    let t = tenant_with_agent(&svc, "acme", "a1").await;
    let beat = |seq: u64| Report {
        boot_id: "boot-1".into(),
        seq,
        observed_at: NOW + 1000 * i64::try_from(seq).expect("seq"),
        payload: ReportPayload::Heartbeat {
            snapshot: HostSnapshot::default(),
            checks: vec![disk(CheckState::Ok, 10.0)],
        },
    };
    // Enough repeats for the engine's flap history to settle.
    for seq in 1..=40 {
        let r = beat(seq);
        svc.apply_report(&t, "a1", &r, r.observed_at)
            .await
            .expect("heartbeat");
    }
    let settled = problem(&svc, &t, "a1", "disk", "/data")
        .await
        .expect("problem");
    for seq in 41..=45 {
        let r = beat(seq);
        svc.apply_report(&t, "a1", &r, r.observed_at)
            .await
            .expect("heartbeat");
    }
    let later = problem(&svc, &t, "a1", "disk", "/data")
        .await
        .expect("problem");
    assert_eq!(later.updated_at, settled.updated_at, "rewritten unchanged");
    // A change is written.
    let r = changes(46, NOW + 46_000, vec![disk(CheckState::Crit, 99.0)]);
    svc.apply_report(&t, "a1", &r, NOW + 46_000)
        .await
        .expect("change");
    let changed = problem(&svc, &t, "a1", "disk", "/data")
        .await
        .expect("problem");
    assert_eq!(changed.updated_at, NOW + 46_000);
}

/// A revoked agent reports nothing more: its problems are forgotten.
pub async fn revoking_an_agent_forgets_its_problems(svc: Service) {
    let t = tenant_with_agent(&svc, "acme", "a1").await;
    let other = tenant_with_agent(&svc, "globex", "b1").await;
    for (tenant, agent) in [(&t, "a1"), (&other, "b1")] {
        svc.apply_report(
            tenant,
            agent,
            &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
            NOW,
        )
        .await
        .expect("apply");
    }
    assert!(problem(&svc, &t, "a1", "disk", "/data").await.is_some());
    svc.revoke_agent(&admin(), "a1", NOW + 1)
        .await
        .expect("revoke");
    assert!(problem(&svc, &t, "a1", "disk", "/data").await.is_none());
    assert!(
        problem(&svc, &other, "b1", "disk", "/data").await.is_some(),
        "another agent's problems stay"
    );
}
