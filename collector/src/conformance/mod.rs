//! The conformance suite: every storage backend runs these same tests of
//! the collector's decisions and reads, through a [`Service`] over that
//! backend (`store_conformance!(backend, factory)`; factories in
//! [`backends`]).

mod backends;
mod copy;
mod limits;
mod maintenance;
mod outbox;
mod renewal;
mod tenants;
mod tokens;

pub use backends::{postgres_with, sqlite_with};

#[allow(clippy::wildcard_imports)]
use self::maintenance::*;
#[allow(clippy::wildcard_imports)]
use self::outbox::*;
#[allow(clippy::wildcard_imports)]
use self::renewal::*;
#[allow(clippy::wildcard_imports)]
use self::tokens::*;
use crate::Error;
use crate::domain::{
    ApiCaller, CheckResult, CheckState, HostFacts, HostSnapshot, Millis, NewAgent, NewApiKey,
    NewEnrollmentToken, Report, ReportPayload, Scope, TicketAction, TicketState,
};
use crate::tickets::Service;

pub const NOW: Millis = 1_800_000_000_000;

/// A new tenant named `tenant` with one server `agent` (site `hq`); the tenant's id.
pub async fn tenant_with_agent(svc: &Service, tenant: &str, agent: &str) -> String {
    let t = svc.store().create_tenant(tenant).await.expect("tenant");
    enroll(svc, &new_agent(agent, &t.id)).await;
    t.id
}

/// Enrolls `agent` at `NOW` through a one-use token of its own (same site and role).
pub async fn enroll(svc: &Service, agent: &NewAgent) {
    let hash = format!("hash-{}", agent.id);
    svc.store()
        .create_enrollment_token(&NewEnrollmentToken {
            id: format!("tok-{}", agent.id),
            tenant_id: agent.tenant_id.clone(),
            site: agent.site.clone(),
            token_hash: hash.clone(),
            expires_at: NOW + 1000,
            max_uses: 1,
            role: agent.role.clone(),
        })
        .await
        .expect("token");
    svc.enroll_agent(&hash, NOW, agent).await.expect("enroll");
}

/// A server `id` on host `host-{id}`, site `hq`.
pub fn new_agent(id: &str, tenant_id: &str) -> NewAgent {
    NewAgent {
        id: id.into(),
        tenant_id: tenant_id.into(),
        site: "hq".into(),
        role: "server".into(),
        facts: HostFacts {
            hostname: format!("host-{id}"),
            ..HostFacts::default()
        },
        cert_not_after: NOW + 86_400_000,
    }
}

/// The stored problem of `agent`'s `check`/`item`, read in a transaction of
/// its own (rolled back).
pub async fn problem(
    svc: &Service,
    tenant: &str,
    agent: &str,
    check: &str,
    item: &str,
) -> Option<crate::store::StoredProblem> {
    let mut tx = svc.store().begin().await.expect("begin");
    tx.problem_for_update(tenant, &crate::tickets::fingerprint(agent, check, item))
        .await
        .expect("problem")
}

pub fn disk(state: CheckState, pct: f64) -> CheckResult {
    CheckResult {
        check: "disk".into(),
        item: "/data".into(),
        state,
        message: format!("/data {pct}% used"),
        metrics: vec![],
        since: NOW,
    }
}

pub fn changes(seq: u64, observed_at: Millis, results: Vec<CheckResult>) -> Report {
    Report {
        boot_id: "boot-1".into(),
        seq,
        observed_at,
        payload: ReportPayload::StateChanges(results),
    }
}

pub async fn tenants_are_unique_and_scoped(svc: Service) {
    let a = svc.store().create_tenant("acme").await.expect("create");
    assert!(matches!(
        svc.store().create_tenant("acme").await,
        Err(Error::Conflict(_))
    ));
    let b = svc.store().create_tenant("globex").await.expect("create");
    assert_eq!(
        svc.store()
            .list_tenants(&Scope::All)
            .await
            .expect("list")
            .len(),
        2
    );
    let only_a = svc
        .store()
        .list_tenants(&Scope::Tenant(a.id.clone()))
        .await
        .expect("list");
    assert_eq!(only_a, vec![a.clone()]);
    assert_eq!(
        svc.store().tenant_by_name("globex").await.expect("by name"),
        Some(b)
    );
}

pub async fn enrollment_tokens_expire_and_run_out(svc: Service) {
    let t = svc.store().create_tenant("acme").await.expect("tenant");
    svc.store()
        .create_enrollment_token(&NewEnrollmentToken {
            id: "t1".into(),
            tenant_id: t.id.clone(),
            site: "hq".into(),
            token_hash: "h1".into(),
            expires_at: NOW + 1000,
            max_uses: 2,
            role: "workstation".into(),
        })
        .await
        .expect("token");
    assert!(matches!(
        svc.check_enrollment_token("nope", NOW).await,
        Err(Error::Unauthenticated(_))
    ));
    assert!(matches!(
        svc.check_enrollment_token("h1", NOW + 1000).await,
        Err(Error::Unauthenticated(_))
    ));
    let grant = svc.check_enrollment_token("h1", NOW).await.expect("valid");
    assert_eq!(grant.tenant_id, t.id);
    assert_eq!(grant.site, "hq");
    svc.enroll_agent("h1", NOW, &new_agent("a1", &t.id))
        .await
        .expect("1st");
    svc.enroll_agent("h1", NOW, &new_agent("a2", &t.id))
        .await
        .expect("2nd");
    assert!(matches!(
        svc.enroll_agent("h1", NOW, &new_agent("a3", &t.id)).await,
        Err(Error::PermissionDenied(_))
    ));
    // Expired refusal leaves no agent behind either.
    assert!(
        svc.enroll_agent("h1", NOW + 5000, &new_agent("a4", &t.id))
            .await
            .is_err()
    );
    let agents = svc.list_agents(&Scope::All).await.expect("agents");
    let ids: Vec<_> = agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(svc.store().agent_auth("a3").await.expect("auth").is_none());
    assert!(svc.store().agent_auth("a4").await.expect("auth").is_none());
}

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

pub async fn reads_are_tenant_scoped(svc: Service) {
    let ta = tenant_with_agent(&svc, "acme", "a1").await;
    let tb = tenant_with_agent(&svc, "globex", "b1").await;
    svc.apply_report(
        &ta,
        "a1",
        &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
        NOW,
    )
    .await
    .expect("apply");
    // Tenant B writing for A's agent id finds nothing to write to.
    assert!(
        svc.apply_report(
            &tb,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
            NOW
        )
        .await
        .is_err()
    );
    let a_scope = Scope::Tenant(ta.clone());
    let b_scope = Scope::Tenant(tb.clone());
    let ticket = svc
        .store()
        .list_tickets(&a_scope, None)
        .await
        .expect("list")
        .remove(0);
    assert!(
        svc.store()
            .list_tickets(&b_scope, None)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        svc.store()
            .get_ticket(&b_scope, ticket.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(svc.get_agent(&b_scope, "a1").await.expect("get").is_none());
    assert!(svc.get_agent(&a_scope, "a1").await.expect("get").is_some());
    let b_agents = svc.list_agents(&b_scope).await.expect("agents");
    assert_eq!(b_agents.len(), 1);
    assert_eq!(b_agents[0].id, "b1");
}

pub async fn sessions_and_snapshots(svc: Service) {
    let t = tenant_with_agent(&svc, "acme", "a1").await;
    let facts = HostFacts {
        hostname: "renamed".into(),
        os_name: "Debian".into(),
        ..HostFacts::default()
    };
    svc.start_session(&t, "a1", "boot-1", &facts, 15, None, NOW)
        .await
        .expect("start");
    let snapshot = HostSnapshot {
        uptime_secs: 42,
        ..HostSnapshot::default()
    };
    svc.apply_report(
        &t,
        "a1",
        &Report {
            boot_id: "boot-1".into(),
            seq: 1,
            observed_at: NOW,
            payload: ReportPayload::Heartbeat {
                snapshot: snapshot.clone(),
                checks: vec![disk(CheckState::Ok, 10.0)],
            },
        },
        NOW + 5,
    )
    .await
    .expect("heartbeat");
    let a = svc
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(a.agent.hostname, "renamed");
    assert_eq!(a.agent.status, "online");
    assert_eq!(a.agent.last_seen_at, Some(NOW + 5));
    assert_eq!(a.agent.snapshot, Some(snapshot));
    assert_eq!(a.checks.len(), 1);
    assert_eq!(a.checks[0].state, CheckState::Ok);
    svc.end_session(&t, "a1", true, NOW + 10)
        .await
        .expect("end");
    let a = svc
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(a.agent.status, "offline");
}

pub async fn api_keys_grant_their_scope(svc: Service) {
    let t = svc.store().create_tenant("acme").await.expect("tenant");
    svc.store()
        .create_api_key(&NewApiKey {
            id: "k1".into(),
            tenant_id: Some(t.id.clone()),
            name: "acme-tech".into(),
            key_hash: "kh1".into(),
            role: "viewer".into(),
        })
        .await
        .expect("key");
    svc.store()
        .create_api_key(&NewApiKey {
            id: "k2".into(),
            tenant_id: None,
            name: "msp-admin".into(),
            key_hash: "kh2".into(),
            role: "admin".into(),
        })
        .await
        .expect("key");
    let k1 = svc
        .store()
        .api_caller("kh1")
        .await
        .expect("k1")
        .expect("exists");
    assert_eq!(k1.scope, Scope::Tenant(t.id));
    assert!(!k1.can_write(), "viewer");
    let k2 = svc
        .store()
        .api_caller("kh2")
        .await
        .expect("k2")
        .expect("exists");
    assert_eq!((k2.scope, k2.name.as_str()), (Scope::All, "msp-admin"));
    assert!(
        svc.store()
            .api_caller("nope")
            .await
            .expect("none")
            .is_none()
    );
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

pub async fn prune_forgets_old_deliveries(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.apply_report(&tenant, "a1", &changes(1, NOW, vec![]), NOW)
        .await
        .expect("apply");
    assert_eq!(
        svc.store().prune_delivered(NOW - 1).await.expect("prune"),
        0
    );
    assert_eq!(
        svc.store().prune_delivered(NOW + 1).await.expect("prune"),
        1
    );
    svc.store().ping().await.expect("ping");
}

pub const MIN: Millis = 60_000;

pub fn admin() -> ApiCaller {
    ApiCaller {
        scope: Scope::All,
        name: "alice".into(),
        role: "technician".into(),
    }
}

/// A CRIT disk on `a1` at `NOW` (a P1 ticket on a server); its id.
pub async fn open_crit(svc: &Service, tenant: &str) -> i64 {
    svc.apply_report(
        tenant,
        "a1",
        &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
        NOW,
    )
    .await
    .expect("apply");
    svc.store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list")[0]
        .id
}

pub async fn ticket(svc: &Service, id: i64) -> crate::domain::TicketDetail {
    svc.store()
        .get_ticket(&Scope::All, id)
        .await
        .expect("get")
        .expect("exists")
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
        role: "viewer".into(),
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

pub async fn silent_agents_go_overdue_and_come_back(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let facts = HostFacts {
        hostname: "web1".into(),
        ..HostFacts::default()
    };
    svc.start_session(&tenant, "a1", "boot-1", &facts, 15, None, NOW)
        .await
        .expect("start");
    open_crit(&svc, &tenant).await;
    // The stream breaks without a goodbye.
    svc.end_session(&tenant, "a1", false, NOW)
        .await
        .expect("end");
    // 3 × 15 s: overdue at 45 s, not before.
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
        svc.start_session(t, a, "b", &HostFacts::default(), 15, None, NOW)
            .await
            .expect("start");
        svc.end_session(t, a, true, NOW + 1).await.expect("goodbye");
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
    svc.start_session(
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
        svc.start_session(&t.id, h, "b", &facts, 15, None, NOW)
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

/// Runs the whole suite against a backend: `store_conformance!(name, async factory)`.
macro_rules! store_conformance {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            store_conformance!(@tests $factory;
                tenants_are_unique_and_scoped,
                enrollment_tokens_expire_and_run_out,
                tickets_open_update_resolve_and_reopen,
                stale_results_do_not_roll_back,
                reads_are_tenant_scoped,
                sessions_and_snapshots,
                api_keys_grant_their_scope,
                one_open_ticket_under_concurrent_writers,
                prune_forgets_old_deliveries,
                unacknowledged_tickets_escalate_once_per_sla_window,
                acknowledging_stops_escalation_and_actions_are_audited,
                resolving_by_hand_a_present_problem_says_so_and_reopens,
                silent_agents_go_overdue_and_come_back,
                clean_shutdown_opens_a_ticket_only_for_servers,
                a_site_going_dark_is_one_ticket,
                outbox_rows_are_written_with_the_ticket_change,
                outbox_routes_by_tenant_and_tier,
                outbox_hands_out_each_ticket_in_order_and_retries_with_the_same_key,
                a_fault_inside_a_window_that_clears_opens_no_ticket,
                a_fault_that_outlasts_a_window_opens_one_ticket_when_it_ends,
                windows_hold_only_their_scope,
                open_tickets_do_not_escalate_during_a_window,
                weekly_windows_follow_the_tenant_time_zone,
                maintenance_is_tenant_scoped_audited_and_closed_to_viewers,
                revoked_enrollment_tokens_are_refused_scoped_and_audited,
                enrollment_outcomes_are_audited_with_the_token_tenant,
                renewal_moves_the_expiry_and_is_audited,
                unchanged_heartbeats_do_not_rewrite_problems,
                revoking_an_agent_forgets_its_problems,
            );
        }
    };
    (@tests $factory:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let (svc, _guard) = $factory.await;
                super::$test(svc).await;
            }
        )*
    };
}

store_conformance!(sqlite, sqlite_with(|s| s));
store_conformance!(postgres, postgres_with(|s| s));
