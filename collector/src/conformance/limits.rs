//! Conformance tests for `[limits]` (see `crate::limits`): series caps per
//! agent and per tenant, and the clock offset measured at session start.
//! They need a store built with given limits, so every backend runs them
//! through its own factory: `factory_conformance!(backend, factory; tests…)`.

use super::backends::{NewStore, postgres_with, sqlite_with};
use super::tenants::factory_conformance;
use super::{self as conformance, NOW, changes, new_agent, start_session};
use crate::domain::{
    CheckResult, CheckState, HostFacts, Millis, NewAgent, Report, ReportPayload, Scope, TicketState,
};
use crate::limits::Limits;
use crate::tickets::Service;

/// Builds a fresh store that enforces `limits`.
pub type Factory = fn(Limits) -> NewStore;

fn limits(toml_text: &str) -> Limits {
    let l: Limits = toml::from_str(toml_text).expect("test limits parse");
    assert!(l.problems().is_empty(), "{:?}", l.problems());
    l
}

/// Enrolls server `id` on a host named `id`.
async fn enroll(svc: &Service, tenant_id: &str, id: &str) {
    let agent = NewAgent {
        facts: HostFacts {
            hostname: id.into(),
            ..HostFacts::default()
        },
        ..new_agent(id, tenant_id)
    };
    conformance::enroll(svc, &agent).await;
}

fn item(i: usize, state: CheckState, at: Millis) -> CheckResult {
    CheckResult {
        check: "disk".into(),
        item: format!("/mnt/{i:02}"),
        state,
        message: format!("/mnt/{i:02} {}", state.as_str()),
        metrics: vec![],
        since: at,
    }
}

fn items(range: std::ops::Range<usize>, state: CheckState, at: Millis) -> Vec<CheckResult> {
    range.map(|i| item(i, state, at)).collect()
}

/// Series (stored check states) of `agent`.
async fn series(svc: &Service, agent: &str) -> Vec<String> {
    svc.get_agent(&Scope::All, agent)
        .await
        .expect("get")
        .expect("exists")
        .checks
        .into_iter()
        .map(|c| c.item)
        .collect()
}

pub async fn new_series_beyond_the_agent_cap_are_dropped(make: Factory) {
    let (svc, _guard) = make(limits("max_series_per_agent = 3\n")).await;
    let t = svc.store().create_tenant("acme").await.expect("tenant").id;
    enroll(&svc, &t, "a1").await;
    enroll(&svc, &t, "a2").await;

    // Five new series in one report: three fit, two are dropped; the
    // report itself is committed (a resend is a duplicate).
    let report = changes(1, NOW, items(0..5, CheckState::Ok, NOW));
    let o = svc
        .apply_report(&t, "a1", &report, NOW)
        .await
        .expect("apply");
    assert_eq!((o.duplicate, o.series_dropped), (false, 2));
    assert_eq!(series(&svc, "a1").await, ["/mnt/00", "/mnt/01", "/mnt/02"]);
    let again = svc
        .apply_report(&t, "a1", &report, NOW)
        .await
        .expect("resend");
    assert!(again.duplicate);

    // Existing series keep updating (and open tickets); a dropped one
    // going CRIT opens nothing.
    let o = svc
        .apply_report(
            &t,
            "a1",
            &changes(
                2,
                NOW + 1,
                vec![
                    item(1, CheckState::Crit, NOW + 1),
                    item(4, CheckState::Crit, NOW + 1),
                ],
            ),
            NOW + 1,
        )
        .await
        .expect("apply");
    assert_eq!((o.opened, o.series_dropped), (1, 1));
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0].item, "/mnt/01");
    // A heartbeat with every series: the stored ones apply, the rest drop.
    let o = svc
        .apply_report(
            &t,
            "a1",
            &Report {
                boot_id: "boot-1".into(),
                seq: 3,
                observed_at: NOW + 2,
                payload: ReportPayload::Heartbeat {
                    snapshot: crate::domain::HostSnapshot::default(),
                    checks: items(0..5, CheckState::Ok, NOW + 2),
                },
            },
            NOW + 2,
        )
        .await
        .expect("heartbeat");
    assert_eq!((o.resolved, o.series_dropped), (1, 2));

    // The cap is per agent: another agent of the tenant has its own.
    let o = svc
        .apply_report(
            &t,
            "a2",
            &changes(1, NOW, items(0..4, CheckState::Ok, NOW)),
            NOW,
        )
        .await
        .expect("apply");
    assert_eq!(o.series_dropped, 1);
    assert_eq!(series(&svc, "a2").await.len(), 3);
}

pub async fn the_tenant_cap_counts_all_its_agents_and_can_be_overridden(make: Factory) {
    let (svc, _guard) = make(limits(
        "max_series_per_agent = 10\nmax_series_per_tenant = 4\n\
         [tenants.big]\nmax_series_per_tenant = 0\n",
    ))
    .await;
    let acme = svc.store().create_tenant("acme").await.expect("tenant").id;
    let other = svc.store().create_tenant("other").await.expect("tenant").id;
    let big = svc.store().create_tenant("big").await.expect("tenant").id;
    for (t, a) in [(&acme, "a1"), (&acme, "a2"), (&other, "o1"), (&big, "b1")] {
        enroll(&svc, t, a).await;
    }
    let report = |n| changes(1, NOW, items(0..n, CheckState::Ok, NOW));
    let o = svc
        .apply_report(&acme, "a1", &report(3), NOW)
        .await
        .expect("a1");
    assert_eq!(o.series_dropped, 0);
    let o = svc
        .apply_report(&acme, "a2", &report(3), NOW)
        .await
        .expect("a2");
    assert_eq!(o.series_dropped, 2, "acme has 4 series in all");
    assert_eq!(series(&svc, "a2").await.len(), 1);
    // Tenants apart: another tenant has its own 4; `big` has no cap but
    // still the per-agent one.
    let o = svc
        .apply_report(&other, "o1", &report(5), NOW)
        .await
        .expect("o1");
    assert_eq!(o.series_dropped, 1);
    let o = svc
        .apply_report(&big, "b1", &report(12), NOW)
        .await
        .expect("b1");
    assert_eq!(o.series_dropped, 2);
    assert_eq!(series(&svc, "b1").await.len(), 10);
    // A full tenant still updates what it has.
    let o = svc
        .apply_report(
            &acme,
            "a2",
            &changes(2, NOW + 1, vec![item(0, CheckState::Crit, NOW + 1)]),
            NOW + 1,
        )
        .await
        .expect("update");
    assert_eq!((o.opened, o.series_dropped), (1, 0));
}

pub async fn the_clock_offset_is_stored_and_flagged_but_decides_nothing(make: Factory) {
    let (svc, _guard) = make(limits("clock_skew_tolerance_secs = 30\n")).await;
    let t = svc.store().create_tenant("acme").await.expect("tenant").id;
    for a in ["ahead", "fine", "old"] {
        enroll(&svc, &t, a).await;
    }
    let facts = HostFacts::default();
    for (a, offset) in [
        ("ahead", Some(-600_000)),
        ("fine", Some(1_200)),
        ("old", None),
    ] {
        start_session(&svc, &t, a, "boot-1", &facts, 15, offset, NOW)
            .await
            .expect("start");
    }
    let agents = svc.list_agents(&Scope::All).await.expect("list");
    let flags: Vec<_> = agents
        .iter()
        .map(|a| (a.id.as_str(), a.clock_offset_ms, a.clock_skewed))
        .collect();
    assert_eq!(
        flags,
        [
            ("ahead", Some(-600_000), true),
            ("fine", Some(1_200), false),
            ("old", None, false)
        ]
    );
    let detail = svc
        .get_agent(&Scope::All, "ahead")
        .await
        .expect("get")
        .expect("exists");
    assert!(detail.agent.clock_skewed);

    // The agent 10 minutes ahead stamps its failure 10 minutes ahead; the
    // ticket is dated in collector time all the same.
    let ahead = NOW + 600_000;
    let o = svc
        .apply_report(
            &t,
            "ahead",
            &changes(1, ahead, vec![item(0, CheckState::Crit, ahead)]),
            NOW,
        )
        .await
        .expect("apply");
    assert_eq!(o.opened, 1);
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!((open[0].detected_at, open[0].opened_at), (Some(NOW), NOW));

    // A later session without the field (an older agent): unknown again.
    start_session(&svc, &t, "ahead", "boot-2", &facts, 15, None, NOW + 1)
        .await
        .expect("restart");
    let a = svc
        .get_agent(&Scope::All, "ahead")
        .await
        .expect("get")
        .expect("exists")
        .agent;
    assert_eq!((a.clock_offset_ms, a.clock_skewed), (None, false));
}

fn heartbeat(seq: u64, at: Millis, checks: Vec<CheckResult>) -> Report {
    Report {
        boot_id: "boot-1".into(),
        seq,
        observed_at: at,
        payload: ReportPayload::Heartbeat {
            snapshot: crate::domain::HostSnapshot::default(),
            checks,
        },
    }
}

pub async fn checks_missing_from_heartbeats_within_a_session_are_retired(make: Factory) {
    let (svc, _guard) = make(limits("max_series_per_agent = 3\n")).await;
    let t = svc.store().create_tenant("acme").await.expect("tenant").id;
    enroll(&svc, &t, "a1").await;
    let facts = HostFacts {
        hostname: "a1".into(),
        ..HostFacts::default()
    };
    let s = 1000;
    // A 15 s heartbeat interval: a check is retired once missing for 45 s
    // of one session.
    start_session(&svc, &t, "a1", "boot-1", &facts, 15, None, NOW)
        .await
        .expect("session");
    let first = vec![
        item(0, CheckState::Crit, NOW),
        item(1, CheckState::Ok, NOW),
        item(2, CheckState::Ok, NOW),
    ];
    let o = svc
        .apply_report(&t, "a1", &heartbeat(1, NOW, first), NOW)
        .await
        .expect("apply");
    assert_eq!(o.opened, 1);
    // The config lost /mnt/00 and /mnt/02: 30 s later they are kept...
    let o = svc
        .apply_report(
            &t,
            "a1",
            &heartbeat(2, NOW + 30 * s, vec![item(1, CheckState::Ok, NOW)]),
            NOW + 30 * s,
        )
        .await
        .expect("apply");
    assert_eq!(o.resolved, 0);
    assert_eq!(series(&svc, "a1").await.len(), 3);
    // ...50 s later they are retired: the CRIT one's ticket resolves, and
    // their places under the series cap are free again.
    let o = svc
        .apply_report(
            &t,
            "a1",
            &heartbeat(3, NOW + 50 * s, vec![item(1, CheckState::Ok, NOW)]),
            NOW + 50 * s,
        )
        .await
        .expect("apply");
    assert_eq!(o.resolved, 1);
    assert_eq!(series(&svc, "a1").await, ["/mnt/01"]);
    // Their problems are forgotten too; the reported one stays.
    for (i, kept) in [(0, false), (1, true), (2, false)] {
        let check_item = format!("/mnt/{i:02}");
        assert_eq!(
            conformance::problem(&svc, &t, "a1", "disk", &check_item)
                .await
                .is_some(),
            kept,
            "{check_item}"
        );
    }
    let all = svc
        .store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, TicketState::Resolved, "{:#?}", all[0]);
    let o = svc
        .apply_report(
            &t,
            "a1",
            &changes(4, NOW + 55 * s, items(3..5, CheckState::Ok, NOW + 55 * s)),
            NOW + 55 * s,
        )
        .await
        .expect("apply");
    assert_eq!(o.series_dropped, 0, "retired series no longer count");

    // After a reconnect nothing is inferred until the session is old
    // enough: the first heartbeats may come before a slow probe's result.
    start_session(&svc, &t, "a1", "boot-2", &facts, 15, None, NOW + 100 * s)
        .await
        .expect("reconnect");
    let o = svc
        .apply_report(
            &t,
            "a1",
            &heartbeat(5, NOW + 101 * s, vec![item(1, CheckState::Ok, NOW)]),
            NOW + 101 * s,
        )
        .await
        .expect("apply");
    assert_eq!((o.resolved, o.opened), (0, 0));
    assert_eq!(series(&svc, "a1").await, ["/mnt/01", "/mnt/03", "/mnt/04"]);
}

fn sqlite_with_limits(limits: Limits) -> NewStore {
    sqlite_with(|s| s.with_limits(limits))
}

fn postgres_with_limits(limits: Limits) -> NewStore {
    postgres_with(|s| s.with_limits(limits))
}

factory_conformance!(sqlite, sqlite_with_limits;
    new_series_beyond_the_agent_cap_are_dropped,
    the_tenant_cap_counts_all_its_agents_and_can_be_overridden,
    the_clock_offset_is_stored_and_flagged_but_decides_nothing,
    checks_missing_from_heartbeats_within_a_session_are_retired,
);
factory_conformance!(postgres, postgres_with_limits;
    new_series_beyond_the_agent_cap_are_dropped,
    the_tenant_cap_counts_all_its_agents_and_can_be_overridden,
    the_clock_offset_is_stored_and_flagged_but_decides_nothing,
    checks_missing_from_heartbeats_within_a_session_are_retired,
);
