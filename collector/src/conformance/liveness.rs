//! Conformance: silent agents, clean shutdowns and site outages.

use super::{NOW, changes, end_session, new_agent, open_crit, start_session, tenant_with_agent};
use crate::domain::{HostFacts, NewEnrollmentToken, Scope, TicketState};
use crate::tickets::Service;

/// A session that ends without a goodbye makes its agent overdue after the
/// reconnect grace (15 s), not after 3 intervals; reconnecting within the
/// grace (to any collector) makes none, and the late end of an older
/// session changes nothing once a newer one started.
pub async fn lost_sessions_go_overdue_after_the_reconnect_grace(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let facts = HostFacts::default();
    start_session(&svc, &tenant, "a1", "boot-1", &facts, 15, None, NOW)
        .await
        .expect("start");
    end_session(&svc, &tenant, "a1", NOW, false, NOW + 1_000)
        .await
        .expect("end");
    assert_eq!(svc.sweep(NOW + 15_000).await.expect("sweep").overdue, 0);
    assert_eq!(svc.sweep(NOW + 16_500).await.expect("sweep").overdue, 1);
    // Liveness confirmed 10 s later: a ticket 26.5 s after the session died.
    svc.sweep(NOW + 26_500).await.expect("sweep");
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(
        open.iter().filter(|t| t.kind == "agent").count(),
        1,
        "{open:?}"
    );
    assert!(
        open[0].summary.contains("without a goodbye"),
        "{}",
        open[0].summary
    );

    // Another agent moves: its session breaks, and it reconnects within the
    // grace; the broken session's end is only noticed after that.
    let t2 = tenant_with_agent(&svc, "beta", "b1").await;
    let later = NOW + 100_000;
    start_session(&svc, &t2, "b1", "boot-1", &facts, 15, None, later)
        .await
        .expect("start");
    start_session(&svc, &t2, "b1", "boot-1", &facts, 15, None, later + 2_000)
        .await
        .expect("reconnect");
    end_session(&svc, &t2, "b1", later, false, later + 3_000)
        .await
        .expect("late end of the old session");
    let b1 = svc
        .get_agent(&Scope::All, "b1")
        .await
        .expect("get")
        .expect("b1");
    assert_eq!(
        b1.agent.status, "online",
        "the old session's end must not win"
    );
    assert_eq!(svc.sweep(later + 30_000).await.expect("sweep").overdue, 0);
}

/// A collector that just started gives agents its reconnect grace plus
/// their longest backoff before it judges any overdue.
pub async fn a_starting_collector_waits_before_judging(svc: Service) {
    let svc = svc.serving_since(NOW + 60_000);
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let facts = HostFacts::default();
    start_session(&svc, &tenant, "a1", "boot-1", &facts, 15, None, NOW)
        .await
        .expect("start");
    end_session(&svc, &tenant, "a1", NOW, false, NOW)
        .await
        .expect("end");
    // Started at +60 s: nothing judged before +60 + 30 + 15 s.
    assert_eq!(svc.sweep(NOW + 104_000).await.expect("sweep").overdue, 0);
    assert_eq!(svc.sweep(NOW + 106_000).await.expect("sweep").overdue, 1);
}

pub async fn silent_agents_go_overdue_and_come_back(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let facts = HostFacts {
        hostname: "web1".into(),
        ..HostFacts::default()
    };
    start_session(&svc, &tenant, "a1", "boot-1", &facts, 15, None, NOW)
        .await
        .expect("start");
    open_crit(&svc, &tenant).await;
    // The agent goes silent with its session still open (a black-holed
    // link): 3 × 15 s, overdue at 45 s, not before.
    assert_eq!(svc.sweep(NOW + 44_000).await.expect("sweep").overdue, 0);
    assert_eq!(svc.sweep(NOW + 46_000).await.expect("sweep").overdue, 1);
    assert_eq!(
        svc.sweep(NOW + 47_000).await.expect("sweep").overdue,
        0,
        "once"
    );
    // Liveness is confirmed for 10 s (so a site going dark groups first).
    svc.sweep(NOW + 57_000).await.expect("sweep");
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    let liveness: Vec<_> = open.iter().filter(|t| t.kind == "agent").collect();
    assert_eq!(liveness.len(), 1, "{open:?}");
    assert!(
        liveness[0].summary.contains("overdue"),
        "{}",
        liveness[0].summary
    );
    let agent = svc
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("exists");
    assert!(agent.agent.overdue);
    // It reports again: liveness resolves by itself.
    svc.apply_report(
        &tenant,
        "a1",
        &changes(2, NOW + 60_000, vec![]),
        NOW + 60_000,
    )
    .await
    .expect("apply");
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert!(open.iter().all(|t| t.kind != "agent"), "{open:?}");
}

pub async fn clean_shutdown_opens_a_ticket_only_for_servers(svc: Service) {
    // tenant_with_agent enrolls a server.
    let tenant = tenant_with_agent(&svc, "acme", "srv").await;
    let t2 = svc.store().create_tenant("globex").await.expect("tenant");
    svc.store()
        .create_enrollment_token(&NewEnrollmentToken {
            id: "tw".into(),
            tenant_id: t2.id.clone(),
            site: String::new(),
            token_hash: "hw".into(),
            expires_at: NOW + 1000,
            max_uses: 1,
            role: "workstation".into(),
        })
        .await
        .expect("token");
    let mut ws = new_agent("ws", &t2.id);
    ws.role = "workstation".into();
    svc.enroll_agent("hw", NOW, &ws).await.expect("enroll");
    for (t, a) in [(&tenant, "srv"), (&t2.id, "ws")] {
        start_session(&svc, t, a, "b", &HostFacts::default(), 15, None, NOW)
            .await
            .expect("start");
        end_session(&svc, t, a, NOW, true, NOW + 1)
            .await
            .expect("goodbye");
    }
    // And neither goes overdue: they said goodbye.
    svc.sweep(NOW + 3_600_000).await.expect("sweep");
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].agent_id, "srv");
    let ws = svc
        .get_agent(&Scope::All, "ws")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(ws.agent.status, "offline");
    // The server comes back: its ticket resolves.
    start_session(
        &svc,
        &tenant,
        "srv",
        "b2",
        &HostFacts::default(),
        15,
        None,
        NOW + 5000,
    )
    .await
    .expect("start");
    assert!(
        svc.store()
            .list_tickets(&Scope::All, Some(TicketState::Open))
            .await
            .expect("list")
            .is_empty()
    );
}

pub async fn a_site_going_dark_is_one_ticket(svc: Service) {
    let t = svc.store().create_tenant("acme").await.expect("tenant");
    svc.store()
        .create_enrollment_token(&NewEnrollmentToken {
            id: "site".into(),
            tenant_id: t.id.clone(),
            site: "hq".into(),
            token_hash: "hs".into(),
            expires_at: NOW + 1000,
            max_uses: 10,
            role: "workstation".into(),
        })
        .await
        .expect("token");
    let hosts = ["h1", "h2", "h3", "h4", "h5"];
    for h in hosts {
        let mut a = new_agent(h, &t.id);
        a.role = "workstation".into();
        svc.enroll_agent("hs", NOW, &a).await.expect("enroll");
        let facts = HostFacts {
            hostname: h.into(),
            ..HostFacts::default()
        };
        start_session(&svc, &t.id, h, "b", &facts, 15, None, NOW)
            .await
            .expect("start");
    }
    // h5 keeps reporting; h1..h4 go silent together (4 of 5 = 80 %).
    for s in [50_000, 55_000, 60_000, 65_000, 70_000] {
        svc.apply_report(&t.id, "h5", &changes(s as u64, NOW + s, vec![]), NOW + s)
            .await
            .expect("h5 alive");
        svc.sweep(NOW + s).await.expect("sweep");
    }
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1, "one site ticket, no host tickets: {open:#?}");
    assert_eq!(open[0].kind, "site");
    assert!(
        open[0].summary.contains("4 of 5 hosts"),
        "{}",
        open[0].summary
    );
    for h in ["h1", "h2", "h3", "h4"] {
        assert!(open[0].summary.contains(h), "{}", open[0].summary);
    }
    // They come back: the site ticket resolves, no host ticket ever opened.
    for (i, h) in ["h1", "h2", "h3", "h4"].into_iter().enumerate() {
        svc.apply_report(
            &t.id,
            h,
            &changes(100 + i as u64, NOW + 80_000, vec![]),
            NOW + 80_000,
        )
        .await
        .expect("back");
    }
    svc.sweep(NOW + 81_000).await.expect("sweep");
    let all = svc
        .store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].state, TicketState::Resolved);
}
