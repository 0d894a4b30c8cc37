//! The conformance suite: every storage backend runs these same tests of
//! the collector's decisions and reads, through a [`Service`] over that
//! backend (`store_conformance!(backend, factory)`; factories in
//! [`backends`]).

mod access;
mod backends;
mod copy;
mod dashboard;
mod fleet;
mod limits;
mod lists;
mod liveness;
mod maintenance;
mod metrics;
mod outbox;
mod reminders;
mod renewal;
mod replicas;
mod retention;
mod sink_ops;
mod tenants;
mod tickets;
mod tokens;
mod writer;

pub use backends::{postgres_with, sqlite_with};

#[allow(clippy::wildcard_imports)]
use self::access::*;
#[allow(clippy::wildcard_imports)]
use self::dashboard::*;
#[allow(clippy::wildcard_imports)]
use self::fleet::*;
#[allow(clippy::wildcard_imports)]
use self::lists::*;
#[allow(clippy::wildcard_imports)]
use self::liveness::*;
#[allow(clippy::wildcard_imports)]
use self::maintenance::*;
#[allow(clippy::wildcard_imports)]
use self::metrics::*;
#[allow(clippy::wildcard_imports)]
use self::outbox::*;
#[allow(clippy::wildcard_imports)]
use self::reminders::*;
#[allow(clippy::wildcard_imports)]
use self::renewal::*;
#[allow(clippy::wildcard_imports)]
use self::replicas::*;
#[allow(clippy::wildcard_imports)]
use self::retention::*;
#[allow(clippy::wildcard_imports)]
use self::sink_ops::*;
#[allow(clippy::wildcard_imports)]
use self::tickets::*;
#[allow(clippy::wildcard_imports)]
use self::tokens::*;
#[allow(clippy::wildcard_imports)]
use self::writer::*;
use crate::Error;
use crate::domain::{
    ApiCaller, CheckResult, CheckState, HostFacts, HostSnapshot, Millis, NewAgent,
    NewEnrollmentToken, Report, ReportPayload, Scope, TicketState,
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
/// Records a session start (hello) at `now`.
#[allow(clippy::too_many_arguments)]
pub async fn start_session(
    svc: &Service,
    tenant_id: &str,
    agent_id: &str,
    boot_id: &str,
    facts: &crate::domain::HostFacts,
    interval_secs: u32,
    clock_offset_ms: Option<i64>,
    now: Millis,
) -> crate::Result<()> {
    let hello = crate::tickets::report::Hello {
        tenant_id,
        agent_id,
        boot_id,
        facts,
        interval_secs,
        clock_offset_ms,
    };
    svc.start_session(&hello, now).await
}

/// A session of `agent` started at `NOW` (boot `boot-1`, 15 s interval).
pub async fn session_at_now(svc: &Service, tenant_id: &str, agent_id: &str) {
    start_session(
        svc,
        tenant_id,
        agent_id,
        "boot-1",
        &HostFacts::default(),
        15,
        None,
        NOW,
    )
    .await
    .expect("start");
}

/// Records the end, at `now`, of the session started at `started_at`.
pub async fn end_session(
    svc: &Service,
    tenant_id: &str,
    agent_id: &str,
    started_at: Millis,
    clean: bool,
    now: Millis,
) -> crate::Result<()> {
    let end = crate::tickets::report::SessionEnd {
        tenant_id,
        agent_id,
        started_at,
        clean,
    };
    svc.end_session(&end, now).await
}

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
    start_session(&svc, &t, "a1", "boot-1", &facts, 15, None, NOW)
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
    end_session(&svc, &t, "a1", NOW, true, NOW + 10)
        .await
        .expect("end");
    let a = svc
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(a.agent.status, "offline");
}

pub async fn prune_forgets_old_deliveries(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.apply_report(&tenant, "a1", &changes(1, NOW, vec![]), NOW)
        .await
        .expect("apply");
    let prune = |before| {
        let svc = svc.clone();
        async move {
            let mut tx = svc.store().begin().await.expect("begin");
            let n = tx.prune_delivered(before, 10).await.expect("prune");
            tx.commit().await.expect("commit");
            n
        }
    };
    assert_eq!(prune(NOW - 1).await, 0);
    assert_eq!(prune(NOW + 1).await, 1);
    // Forgotten: the same report is new again.
    let o = svc
        .apply_report(&tenant, "a1", &changes(1, NOW, vec![]), NOW)
        .await
        .expect("apply");
    assert!(!o.duplicate);
    svc.store().ping().await.expect("ping");
}

pub const MIN: Millis = 60_000;

pub fn admin() -> ApiCaller {
    ApiCaller {
        scope: Scope::All,
        name: "alice".into(),
        role: crate::domain::Role::Technician,
        source: String::new(),
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
                api_keys_grant_their_scope_until_disabled_or_revoked,
                a_scope_of_several_tenants_sees_exactly_those,
                operators_log_in_through_a_setup_link_and_sessions_end,
                totp_is_required_once_enabled,
                one_open_ticket_under_concurrent_writers,
                prune_forgets_old_deliveries,
                unacknowledged_tickets_escalate_once_per_sla_window,
                unacknowledged_tickets_are_reminded_at_their_tiers_cadence,
                a_tier_without_a_cadence_is_never_reminded,
                a_psa_ticket_closed_while_the_problem_fails_is_followed_up_once,
                a_psa_close_of_a_resolved_ticket_asks_for_nothing,
                acknowledging_stops_escalation_and_actions_are_audited,
                resolving_by_hand_a_present_problem_says_so_and_reopens,
                silent_agents_go_overdue_and_come_back,
                lost_sessions_go_overdue_after_the_reconnect_grace,
                a_starting_collector_waits_before_judging,
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
                rrule_windows_round_trip_and_hold_at_their_occurrences,
                maintenance_is_tenant_scoped_audited_and_closed_to_viewers,
                revoked_enrollment_tokens_are_refused_scoped_and_audited,
                enrollment_outcomes_are_audited_with_the_token_tenant,
                renewal_moves_the_expiry_and_is_audited,
                a_refused_write_fails_alone_and_its_batch_commits,
                unchanged_heartbeats_do_not_rewrite_problems,
                revoking_an_agent_forgets_its_problems,
                outbox_claims_never_hand_one_row_to_two_replicas,
                a_claimed_row_waits_for_its_claim_to_expire_or_be_released,
                the_shared_ca_is_stored_once_and_opens_only_with_its_kek,
                a_ca_in_files_is_imported_into_the_store,
                one_replica_holds_the_sweeper_lease,
                revocations_are_read_from_the_store,
                retention_prunes_old_rows_and_keeps_the_rest,
                lists_filter_and_page_in_the_store,
                heartbeats_are_sampled_once_per_window,
                a_sample_at_a_stored_instant_is_kept_as_it_was,
                metric_samples_are_pruned_by_age,
                dashboard_reads_order_filter_page_and_scope,
                fleet_rows_count_states_and_open_tickets_in_scope,
                notifications_reach_listeners_where_the_store_shares_them,
                writes_publish_what_they_changed_once_committed,
                changes_reach_a_subscriber_of_another_service_where_shared,
                failed_deliveries_are_sent_again_in_scope_and_counted_per_sink,
                links_are_stored_once_closed_once_and_read_in_scope,
                reminder_candidates_are_open_unacknowledged_tickets_quiet_long_enough,
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
