//! Conformance tests for per-tenant ticket policy: overrides of priority
//! and SLA (`[tickets.tenants.<name>]`) and same-check grouping. They need
//! a store built with a given policy, so every backend runs them through
//! its own factory: `factory_conformance!(backend, factory; tests…)`.

use super::{self as conformance, MIN, NOW, changes, new_agent};
use crate::domain::{
    CheckResult, CheckState, HostFacts, Millis, NewAgent, Scope, Ticket, TicketDetail, TicketState,
};
use crate::tickets::Service;
use crate::tickets::policy::Policy;

const SEC: Millis = 1000;

use super::backends::{NewStore, postgres_with, sqlite_with};

/// Builds a fresh store that decides with `policy`.
pub type Factory = fn(Policy) -> NewStore;

/// `toml_text` as the `[tickets]` section. Agents report only when a test
/// says so: they must not go overdue (site tickets) during the test.
fn policy(toml_text: &str) -> Policy {
    let text = format!("overdue_after_intervals = 1000\n{toml_text}");
    let p: Policy = toml::from_str(&text).expect("test policy parses");
    assert!(p.problems().is_empty(), "{:?}", p.problems());
    p
}

/// Enrolls `id` with `role` on a host named `id`.
async fn enroll(svc: &Service, tenant_id: &str, id: &str, role: &str) {
    let agent = NewAgent {
        role: role.into(),
        facts: HostFacts {
            hostname: id.into(),
            ..HostFacts::default()
        },
        ..new_agent(id, tenant_id)
    };
    conformance::enroll(svc, &agent).await;
}

fn result(check: &str, item: &str, state: CheckState, at: Millis) -> CheckResult {
    CheckResult {
        check: check.into(),
        item: item.into(),
        state,
        message: format!("{check} {item} {}", state.as_str()),
        metrics: vec![],
        since: at,
    }
}

/// One agent's report of one result at `at` (agent and collector agree on time).
async fn report(svc: &Service, tenant_id: &str, agent: &str, seq: u64, r: CheckResult, at: Millis) {
    svc.apply_report(tenant_id, agent, &changes(seq, at, vec![r]), at)
        .await
        .expect("apply");
}

async fn tickets(svc: &Service) -> Vec<Ticket> {
    let mut t = svc
        .store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list");
    t.sort_by_key(|t| t.id);
    t
}

async fn detail(svc: &Service, id: i64) -> TicketDetail {
    svc.store()
        .get_ticket(&Scope::All, id)
        .await
        .expect("get")
        .expect("exists")
}

fn of_agent<'a>(all: &'a [Ticket], agent: &str) -> &'a Ticket {
    let mut it = all.iter().filter(|t| t.agent_id == agent);
    let t = it.next().unwrap_or_else(|| panic!("no ticket of {agent}"));
    assert!(it.next().is_none(), "{agent} has several tickets: {all:#?}");
    t
}

pub async fn tenants_escalate_on_their_own_sla_and_priorities(make: Factory) {
    let (svc, _guard) = make(policy(
        r#"
        [tenants.acme]
        workstation_priority = { crit = "P1" }
        sla.P1.ack_mins = 5
        "#,
    ))
    .await;
    let acme = svc.store().create_tenant("acme").await.expect("tenant").id;
    let globex = svc
        .store()
        .create_tenant("globex")
        .await
        .expect("tenant")
        .id;
    enroll(&svc, &acme, "a-srv", "server").await;
    enroll(&svc, &acme, "a-ws", "workstation").await;
    enroll(&svc, &globex, "g-srv", "server").await;
    enroll(&svc, &globex, "g-ws", "workstation").await;
    for (tenant, agent) in [
        (&acme, "a-srv"),
        (&acme, "a-ws"),
        (&globex, "g-srv"),
        (&globex, "g-ws"),
    ] {
        report(
            &svc,
            tenant,
            agent,
            1,
            result("disk", "/data", CheckState::Crit, NOW),
            NOW,
        )
        .await;
    }
    let all = tickets(&svc).await;
    let prio = |a: &str| of_agent(&all, a).priority.clone();
    assert_eq!(prio("a-srv"), "P1");
    assert_eq!(prio("a-ws"), "P1", "acme: workstation crit → P1");
    assert_eq!(prio("g-srv"), "P1");
    assert_eq!(
        prio("g-ws"),
        "P2",
        "globex: the global workstation crit → P2"
    );
    let ack_due = |a: &str| of_agent(&all, a).ack_due_at;
    assert_eq!(ack_due("a-srv"), Some(NOW + 5 * MIN), "acme's P1: 5 min");
    assert_eq!(ack_due("g-srv"), Some(NOW + 15 * MIN), "global P1: 15 min");
    assert_eq!(
        of_agent(&all, "a-srv").resolve_due_at,
        Some(NOW + 240 * MIN),
        "acme keeps the global P1 resolve time"
    );

    let tiers = |svc: Service| async move {
        let all = tickets(&svc).await;
        ["a-srv", "a-ws", "g-srv", "g-ws"].map(|a| of_agent(&all, a).tier)
    };
    svc.sweep(NOW + 4 * MIN).await.expect("sweep");
    assert_eq!(tiers(svc.clone()).await, [1, 1, 1, 1]);
    svc.sweep(NOW + 5 * MIN).await.expect("sweep");
    assert_eq!(
        tiers(svc.clone()).await,
        [2, 2, 1, 1],
        "acme's P1s at 5 min"
    );
    svc.sweep(NOW + 5 * MIN).await.expect("sweep");
    assert_eq!(
        tiers(svc.clone()).await,
        [2, 2, 1, 1],
        "no double escalation"
    );
    svc.sweep(NOW + 10 * MIN).await.expect("sweep");
    assert_eq!(
        tiers(svc.clone()).await,
        [3, 3, 1, 1],
        "L2 → L3 on acme's 5 min too"
    );
    svc.sweep(NOW + 15 * MIN).await.expect("sweep");
    assert_eq!(
        tiers(svc.clone()).await,
        [3, 3, 2, 1],
        "globex P1 at 15 min"
    );
    svc.sweep(NOW + 60 * MIN).await.expect("sweep");
    assert_eq!(
        tiers(svc.clone()).await,
        [3, 3, 3, 2],
        "globex P2 at 60 min"
    );

    let all = tickets(&svc).await;
    let breach = |a: &str| {
        let id = of_agent(&all, a).id;
        let svc = svc.clone();
        async move {
            detail(&svc, id)
                .await
                .events
                .into_iter()
                .find(|e| e.kind == "sla_breach")
                .expect("breach recorded")
                .detail
        }
    };
    assert!(breach("a-srv").await.contains("within 5 min"));
    assert!(breach("g-srv").await.contains("within 15 min"));
}

pub async fn same_check_on_many_hosts_is_one_parent_with_children(make: Factory) {
    let (svc, _guard) = make(policy(
        r#"
        [tenants.acme]
        group_same_check = { min_hosts = 3, window_secs = 120 }
        "#,
    ))
    .await;
    let acme = svc.store().create_tenant("acme").await.expect("tenant").id;
    let globex = svc
        .store()
        .create_tenant("globex")
        .await
        .expect("tenant")
        .id;
    let hosts = ["h1", "h2", "h3", "h4", "h5"];
    for h in hosts {
        enroll(&svc, &acme, h, "server").await;
    }
    for g in ["g1", "g2", "g3"] {
        enroll(&svc, &globex, g, "server").await;
    }
    let backup = |state, at| result("backup", "nightly", state, at);
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    // Three acme hosts fail the nightly backup within seconds; globex too,
    // but globex does not group. h4's disk fails: another check.
    for (i, h) in ["h1", "h2", "h3"].into_iter().enumerate() {
        let at = NOW + i as i64 * SEC;
        report(&svc, &acme, h, next(), backup(CheckState::Crit, at), at).await;
    }
    for g in ["g1", "g2", "g3"] {
        report(&svc, &globex, g, next(), backup(CheckState::Crit, NOW), NOW).await;
    }
    let disk = result("disk", "/", CheckState::Crit, NOW);
    report(&svc, &acme, "h4", next(), disk, NOW).await;
    // Two hosts fail the weekly backup two minutes apart: never 2 in a window.
    report(
        &svc,
        &acme,
        "h1",
        next(),
        result("backup", "weekly", CheckState::Warn, NOW),
        NOW,
    )
    .await;
    let out = svc.sweep(NOW + 3 * SEC).await.expect("sweep");
    assert_eq!(out.opened, 1, "one parent: {out:?}");
    svc.sweep(NOW + 3 * SEC).await.expect("sweep again");

    let all = tickets(&svc).await;
    let parents: Vec<&Ticket> = all.iter().filter(|t| t.kind == "group").collect();
    assert_eq!(parents.len(), 1, "{all:#?}");
    let parent = parents[0].clone();
    assert_eq!(parent.tenant_id, acme);
    assert_eq!(
        (parent.check.as_str(), parent.item.as_str()),
        ("backup", "nightly")
    );
    assert_eq!(parent.fingerprint, "group/backup/nightly");
    assert_eq!((parent.priority.as_str(), parent.tier), ("P1", 1));
    assert_eq!(parent.severity, CheckState::Crit);
    assert_eq!(parent.detected_at, Some(NOW), "the first member's failure");
    assert!(
        parent
            .summary
            .contains("backup nightly failing on 3 hosts: h1, h2, h3"),
        "{}",
        parent.summary
    );
    let children: Vec<&Ticket> = all
        .iter()
        .filter(|t| t.parent_id == Some(parent.id))
        .collect();
    let mut child_hosts: Vec<&str> = children.iter().map(|t| t.host.as_str()).collect();
    child_hosts.sort_unstable();
    assert_eq!(child_hosts, ["h1", "h2", "h3"]);
    assert!(
        children
            .iter()
            .all(|t| t.state == TicketState::Open && t.kind == "check")
    );
    let kinds: Vec<String> = detail(&svc, children[0].id)
        .await
        .events
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["opened", "grouped"],
        "grouped once, though swept twice"
    );
    assert_eq!(
        all.iter().filter(|t| t.parent_id.is_some()).count(),
        3,
        "globex, the disk and the weekly backup stay on their own: {all:#?}"
    );

    // Outside the window: h2 fails the weekly backup 3 min after h1.
    let at = NOW + 3 * MIN;
    let weekly = result("backup", "weekly", CheckState::Warn, at);
    report(&svc, &acme, "h2", next(), weekly, at).await;
    svc.sweep(at).await.expect("sweep");
    // A host failing the nightly backup later joins the open group.
    let at = NOW + 4 * MIN;
    report(&svc, &acme, "h5", next(), backup(CheckState::Crit, at), at).await;
    svc.sweep(at).await.expect("sweep");
    let all = tickets(&svc).await;
    assert_eq!(
        all.iter().filter(|t| t.kind == "group").count(),
        1,
        "{all:#?}"
    );
    let h5 = all.iter().find(|t| t.agent_id == "h5").expect("h5 ticket");
    assert_eq!(h5.parent_id, Some(parent.id));
    let p = detail(&svc, parent.id).await;
    assert!(
        p.ticket.summary.contains("on 4 hosts: h1, h2, h3, h5"),
        "{}",
        p.ticket.summary
    );
    assert_eq!(
        p.events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["opened", "updated"]
    );

    // P1 unacknowledged for 15 min: the parent escalates, its members don't;
    // globex's ungrouped tickets do.
    svc.sweep(NOW + 16 * MIN).await.expect("sweep");
    let all = tickets(&svc).await;
    for t in &all {
        let expected = match (t.kind.as_str(), t.parent_id) {
            ("group", _) => 2,
            (_, Some(_)) => 1,
            _ if t.priority == "P1" => 2,
            _ => 1,
        };
        assert_eq!(t.tier, expected, "{t:#?}");
    }

    // They recover one by one: each member resolves on its own; the parent
    // only with the last one.
    let mut at = NOW + 20 * MIN;
    for h in ["h1", "h2", "h3"] {
        report(&svc, &acme, h, next(), backup(CheckState::Ok, at), at).await;
        svc.sweep(at).await.expect("sweep");
        at += SEC;
    }
    assert_eq!(
        detail(&svc, parent.id).await.ticket.state,
        TicketState::Open
    );
    report(&svc, &acme, "h5", next(), backup(CheckState::Ok, at), at).await;
    svc.sweep(at).await.expect("sweep");
    let p = detail(&svc, parent.id).await;
    assert_eq!(p.ticket.state, TicketState::Resolved);
    assert_eq!(p.ticket.resolved_by.as_deref(), Some("engine"));
    assert_eq!(p.events.last().map(|e| e.kind.as_str()), Some("resolved"));
    let all = tickets(&svc).await;
    assert!(
        all.iter()
            .filter(|t| t.parent_id == Some(parent.id))
            .all(|t| t.state == TicketState::Resolved)
    );
    assert_eq!(all.iter().filter(|t| t.kind == "group").count(), 1);

    // The next wave is a new group; a group ticket (no agent's problem
    // behind it) can be resolved by hand.
    for (i, h) in ["h1", "h2", "h3"].into_iter().enumerate() {
        let at = NOW + 60 * MIN + i as i64 * SEC;
        report(&svc, &acme, h, next(), backup(CheckState::Crit, at), at).await;
    }
    svc.sweep(NOW + 61 * MIN).await.expect("sweep");
    let all = tickets(&svc).await;
    let second = all
        .iter()
        .rfind(|t| t.kind == "group")
        .expect("a second group");
    assert_ne!(second.id, parent.id);
    assert_eq!(second.state, TicketState::Open);
    let caller = crate::domain::ApiCaller {
        scope: Scope::All,
        name: "alice".into(),
        role: crate::domain::Role::Technician,
        source: String::new(),
    };
    let out = svc
        .ticket_action(
            &caller,
            second.id,
            &crate::domain::TicketAction::Resolve,
            NOW + 62 * MIN,
        )
        .await
        .expect("a group ticket resolves by hand");
    assert_eq!(out.ticket.ticket.state, TicketState::Resolved);
}

/// Runs tests that build their own store against a backend whose factory
/// takes what they vary (policy, limits): `factory_conformance!(name,
/// factory; test, …)`.
macro_rules! factory_conformance {
    ($backend:ident, $factory:expr; $($test:ident),* $(,)?) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($factory).await;
                }
            )*
        }
    };
}
pub(super) use factory_conformance;

fn sqlite_with_policy(policy: Policy) -> NewStore {
    sqlite_with(|s| s.with_policy(policy))
}

fn postgres_with_policy(policy: Policy) -> NewStore {
    postgres_with(|s| s.with_policy(policy))
}

factory_conformance!(sqlite, sqlite_with_policy;
    tenants_escalate_on_their_own_sla_and_priorities,
    same_check_on_many_hosts_is_one_parent_with_children,
);
factory_conformance!(postgres, postgres_with_policy;
    tenants_escalate_on_their_own_sla_and_priorities,
    same_check_on_many_hosts_is_one_parent_with_children,
);
