//! Conformance tests for the dashboard's reads: the ticket queue's order,
//! filters and pages, a ticket's outbox rows, tickets per host, current
//! check states of a tenant, and the filtered audit log — all scoped.

use super::{NOW, admin, changes, disk, enroll, new_agent, tenant_with_agent};
use crate::domain::{CheckState, Scope, TicketAction, TicketState};
use crate::domain::{Page, TicketFilter, TicketSort};
use crate::sinks::SinkRoute;
use crate::store::AuditFilter;
use crate::tickets::Service;

/// The queue's order (priority, then SLA due time) with `f`'s filters.
fn page_filter(f: impl FnOnce(&mut TicketFilter)) -> TicketFilter {
    let mut filter = TicketFilter {
        sort: TicketSort::Priority,
        ..TicketFilter::default()
    };
    f(&mut filter);
    filter
}

pub async fn dashboard_reads_order_filter_page_and_scope(svc: Service) {
    svc.set_sink_routes(&[SinkRoute {
        name: "hook".into(),
        kind: "webhook".into(),
        tenants: vec![],
        tiers: vec![],
    }]);
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    enroll(&svc, &new_agent("a2", &acme)).await;
    let globex = tenant_with_agent(&svc, "globex", "b1").await;
    let report = |tenant: String, agent: &'static str, state| {
        let svc = svc.clone();
        async move {
            svc.apply_report(
                &tenant,
                agent,
                &changes(1, NOW, vec![disk(state, 95.0)]),
                NOW,
            )
            .await
            .expect("apply");
        }
    };
    report(acme.clone(), "a2", CheckState::Warn).await;
    report(acme.clone(), "a1", CheckState::Crit).await;
    report(globex.clone(), "b1", CheckState::Crit).await;
    let store = svc.store();
    let page = |scope: Scope, filter: TicketFilter, offset, limit| {
        let store = store.clone();
        async move {
            store
                .find_tickets(&scope, &filter, Page { limit, offset })
                .await
                .expect("page")
                .iter()
                .map(|t| t.host.clone())
                .collect::<Vec<_>>()
        }
    };

    // P1s first (by SLA due time, then id), the P2 after, though opened first.
    let all = page(Scope::All, page_filter(|_| {}), 0, 10).await;
    assert_eq!(all, ["host-a1", "host-b1", "host-a2"]);
    assert_eq!(
        page(Scope::All, page_filter(|_| {}), 1, 1).await,
        ["host-b1"]
    );
    let only_acme = page_filter(|f| f.tenant_id = Some(acme.clone()));
    assert_eq!(
        page(Scope::All, only_acme.clone(), 0, 10).await,
        ["host-a1", "host-a2"]
    );
    let by_host = page_filter(|f| f.host = Some("host-a2".into()));
    assert_eq!(page(Scope::All, by_host, 0, 10).await, ["host-a2"]);
    let tier2 = page_filter(|f| f.tier = Some(2));
    assert!(page(Scope::All, tier2, 0, 10).await.is_empty());
    let tier1 = page_filter(|f| f.tier = Some(1));
    assert_eq!(page(Scope::All, tier1, 0, 10).await.len(), 3);
    let resolved = page_filter(|f| f.state = Some(TicketState::Resolved));
    assert!(page(Scope::All, resolved, 0, 10).await.is_empty());
    // Another tenant's scope sees none of acme's, whatever the filter asks.
    let g = Scope::Tenant(globex.clone());
    assert_eq!(
        page(g.clone(), page_filter(|_| {}), 0, 10).await,
        ["host-b1"]
    );
    assert!(page(g.clone(), only_acme, 0, 10).await.is_empty());

    // A ticket's outbox rows: the opening notification to the one sink.
    let a1 = store
        .find_tickets(
            &Scope::All,
            &page_filter(|f| f.host = Some("host-a1".into())),
            Page::first(1),
        )
        .await
        .expect("page")
        .remove(0);
    svc.ticket_action(&admin(), a1.id, &TicketAction::Resolve, NOW + 1)
        .await
        .expect("resolve");
    let rows = store
        .ticket_outbox(&Scope::All, a1.id)
        .await
        .expect("outbox");
    assert!(rows.len() >= 2, "opened and resolved rows: {rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.sink == "hook" && r.ticket_id == a1.id)
    );
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert!(
        store
            .ticket_outbox(&g, a1.id)
            .await
            .expect("outbox")
            .is_empty(),
        "another tenant's ticket has no rows for globex"
    );
    let open_acme = page_filter(|f| {
        f.tenant_id = Some(acme.clone());
        f.state = Some(TicketState::Open);
    });
    assert_eq!(page(Scope::All, open_acme, 0, 10).await, ["host-a2"]);

    // Tickets per host in a period, most first; CRIT counted apart.
    let per_host = store
        .tickets_per_host(&Scope::All, &acme, NOW - 1, NOW + 1, 10)
        .await
        .expect("per host");
    assert_eq!(per_host.len(), 2, "{per_host:?}");
    let a1_count = per_host.iter().find(|h| h.host == "host-a1").expect("a1");
    assert_eq!((a1_count.tickets, a1_count.crit), (1, 1));
    let a2_count = per_host.iter().find(|h| h.host == "host-a2").expect("a2");
    assert_eq!((a2_count.tickets, a2_count.crit), (1, 0));
    assert!(
        store
            .tickets_per_host(&Scope::All, &acme, NOW + 1, NOW + 2, 10)
            .await
            .expect("per host")
            .is_empty()
    );
    assert!(
        store
            .tickets_per_host(&g, &acme, NOW - 1, NOW + 1, 10)
            .await
            .expect("per host")
            .is_empty()
    );

    // Current check states of one tenant, by kind.
    let disks = store
        .check_states_of(&Scope::All, &acme, &["disk", "backup"])
        .await
        .expect("states");
    let hosts: Vec<_> = disks.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["host-a1", "host-a2"]);
    assert_eq!(disks[1].check.state, CheckState::Warn);
    assert!(
        store
            .check_states_of(&Scope::All, &acme, &["backup"])
            .await
            .expect("states")
            .is_empty()
    );
    assert!(
        store
            .check_states_of(&g, &acme, &["disk"])
            .await
            .expect("states")
            .is_empty()
    );

    // The audit log, filtered and paged, newest first.
    svc.ticket_action(
        &admin(),
        a1.id,
        &TicketAction::Note("hello".into()),
        NOW + 2,
    )
    .await
    .expect("note");
    let audit = |scope: Scope, filter: AuditFilter, offset| {
        let store = store.clone();
        async move {
            store
                .audit_page(&scope, &filter, offset, 10)
                .await
                .expect("audit")
                .iter()
                .map(|e| e.action.clone())
                .collect::<Vec<_>>()
        }
    };
    let by_alice = AuditFilter {
        actor: Some("alice".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        audit(Scope::All, by_alice.clone(), 0).await,
        ["ticket.note", "ticket.resolved"]
    );
    assert_eq!(
        audit(Scope::All, by_alice.clone(), 1).await,
        ["ticket.resolved"]
    );
    let notes = AuditFilter {
        action: Some("ticket.note".into()),
        tenant_id: Some(acme.clone()),
        ..AuditFilter::default()
    };
    assert_eq!(audit(Scope::All, notes.clone(), 0).await, ["ticket.note"]);
    assert!(audit(g, by_alice, 0).await.is_empty());
}
