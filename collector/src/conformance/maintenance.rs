//! Conformance tests for maintenance windows and silences: problems inside
//! a window are tracked without tickets, a problem that outlasts the window
//! opens exactly one ticket when it ends, open tickets do not escalate, and
//! windows are tenant-scoped, audited and closed to viewers.

use super::{MIN, NOW, admin, changes, disk, open_crit, tenant_with_agent, ticket};
use crate::Error;
use crate::domain::{ApiCaller, CheckState, Millis, Scope, TicketState};
use crate::maintenance::request::{self, SilenceRequest, WindowRequest};
use crate::maintenance::schedule::Weekly;
use crate::maintenance::{Kind, NewWindow, Schedule, Target};
use crate::tickets::Service;

fn host_window(tenant: &str, agent: &str, start: Millis, end: Millis) -> NewWindow {
    NewWindow {
        tenant_id: tenant.into(),
        kind: Kind::Once,
        target: Target {
            agent_id: Some(agent.into()),
            ..Target::default()
        },
        schedule: Schedule::Between { start, end },
        reason: "patching".into(),
    }
}

/// A report of a1's disk at `state`, observed at `at`: tickets opened.
async fn disk_report(svc: &Service, tenant: &str, seq: u64, at: Millis, state: CheckState) -> u32 {
    svc.apply_report(tenant, "a1", &changes(seq, at, vec![disk(state, 99.0)]), at)
        .await
        .expect("apply")
        .opened
}

async fn open_count(svc: &Service) -> usize {
    svc.store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list")
        .len()
}

async fn all_tickets(svc: &Service) -> Vec<crate::domain::Ticket> {
    svc.store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list")
}

pub async fn a_fault_inside_a_window_that_clears_opens_no_ticket(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.create_maintenance(
        &admin(),
        &host_window(&tenant, "a1", NOW, NOW + 60 * MIN),
        NOW,
    )
    .await
    .expect("window");
    let report =
        |seq: u64, at: Millis, state: CheckState| disk_report(&svc, &tenant, seq, at, state);
    assert_eq!(report(1, NOW + MIN, CheckState::Crit).await, 0);
    for (seq, m) in [(2, 5), (3, 20), (4, 40)] {
        report(seq, NOW + m * MIN, CheckState::Crit).await;
        assert_eq!(
            svc.sweep(NOW + m * MIN + 1000).await.expect("sweep").opened,
            0
        );
    }
    // Tracked all along: the problem is there, just without a ticket.
    let agent = svc
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("agent");
    assert_eq!(agent.checks[0].state, CheckState::Crit);
    // It clears before the window ends...
    report(5, NOW + 50 * MIN, CheckState::Ok).await;
    // ...and nothing opens afterwards either (the agent keeps reporting).
    report(6, NOW + 60 * MIN - 5000, CheckState::Ok).await;
    for t in [NOW + 60 * MIN, NOW + 60 * MIN + 1000] {
        svc.sweep(t).await.expect("sweep");
    }
    assert!(
        all_tickets(&svc).await.is_empty(),
        "{:#?}",
        all_tickets(&svc).await
    );
}

pub async fn a_fault_that_outlasts_a_window_opens_one_ticket_when_it_ends(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let end = NOW + 30 * MIN;
    svc.create_maintenance(&admin(), &host_window(&tenant, "a1", NOW, end), NOW)
        .await
        .expect("window");
    let crit = |seq: u64, at: Millis| changes(seq, at, vec![disk(CheckState::Crit, 99.0)]);
    let o = svc
        .apply_report(&tenant, "a1", &crit(1, NOW + MIN), NOW + MIN)
        .await
        .expect("apply");
    assert_eq!(o.opened, 0, "held by the window");
    // Still failing in the last heartbeat of the window.
    svc.apply_report(&tenant, "a1", &crit(2, end - 10_000), end - 10_000)
        .await
        .expect("apply");
    assert_eq!(svc.sweep(end - 1000).await.expect("sweep").opened, 0);
    assert_eq!(open_count(&svc).await, 0);
    // The window ends: the sweep opens the one ticket at once.
    assert_eq!(svc.sweep(end).await.expect("sweep").opened, 1);
    svc.sweep(end + 1000).await.expect("sweep");
    let all = all_tickets(&svc).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (all[0].check.as_str(), all[0].state),
        ("disk", TicketState::Open)
    );
    assert_eq!(all[0].opened_at, end);
}

pub async fn windows_hold_only_their_scope(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let other = tenant_with_agent(&svc, "globex", "b1").await;
    let until = NOW + 60 * MIN;
    let scoped = |target: Target, tenant: &str| NewWindow {
        tenant_id: tenant.into(),
        kind: Kind::Once,
        target,
        schedule: Schedule::Between {
            start: NOW,
            end: until,
        },
        reason: String::new(),
    };
    // Another check on this host, another site, another tenant: none covers a1's disk.
    for (t, target) in [
        (
            &tenant,
            Target {
                agent_id: Some("a1".into()),
                check: Some("backup".into()),
                ..Target::default()
            },
        ),
        (
            &tenant,
            Target {
                site: Some("branch".into()),
                ..Target::default()
            },
        ),
        (&other, Target::default()),
    ] {
        svc.create_maintenance(&admin(), &scoped(target, t), NOW)
            .await
            .expect("window");
    }
    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(1, NOW + MIN, vec![disk(CheckState::Crit, 99.0)]),
            NOW + MIN,
        )
        .await
        .expect("apply");
    assert_eq!(o.opened, 1, "not in any window's scope");
    // Globex's tenant-wide window covers b1, site hq included.
    let o = svc
        .apply_report(
            &other,
            "b1",
            &changes(1, NOW + MIN, vec![disk(CheckState::Crit, 99.0)]),
            NOW + MIN,
        )
        .await
        .expect("apply");
    assert_eq!(o.opened, 0);
    // A site window for hq does cover a1's other problems.
    svc.create_maintenance(
        &admin(),
        &scoped(
            Target {
                site: Some("hq".into()),
                ..Target::default()
            },
            &tenant,
        ),
        NOW,
    )
    .await
    .expect("window");
    let mut backup = disk(CheckState::Crit, 0.0);
    backup.check = "backup".into();
    backup.item = "nightly".into();
    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(2, NOW + 2 * MIN, vec![backup]),
            NOW + 2 * MIN,
        )
        .await
        .expect("apply");
    assert_eq!(o.opened, 0);
}

pub async fn open_tickets_do_not_escalate_during_a_window(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    // P1 on a server: acknowledge within 15 min, else L2.
    let id = open_crit(&svc, &tenant).await;
    let end = NOW + 60 * MIN;
    svc.create_maintenance(
        &admin(),
        &host_window(&tenant, "a1", NOW + MIN, end),
        NOW + MIN,
    )
    .await
    .expect("window");
    let sweep = |at: Millis| {
        let svc = svc.clone();
        async move { svc.sweep(at).await.expect("sweep").escalated }
    };
    assert_eq!(sweep(NOW + 16 * MIN).await, 0);
    assert_eq!(sweep(NOW + 16 * MIN).await, 0, "a re-run changes nothing");
    let t = ticket(&svc, id).await;
    assert_eq!(t.ticket.state, TicketState::Open, "stays open");
    assert_eq!(t.ticket.tier, 1);
    assert!(!t.ticket.ack_breached);
    // The full acknowledgement time starts when the window ends.
    assert_eq!(t.ticket.ack_due_at, Some(end + 15 * MIN));
    let paused: Vec<_> = t
        .events
        .iter()
        .filter(|e| e.kind == "maintenance")
        .collect();
    assert_eq!(paused.len(), 1, "{:#?}", t.events);
    // Not the instant the window closes...
    assert_eq!(sweep(end).await, 0);
    assert_eq!(sweep(end + 14 * MIN).await, 0);
    let t = ticket(&svc, id).await;
    assert_eq!(t.ticket.tier, 1, "{:#?}", t.events);
    // ...but once nobody acknowledged it in the fresh period. (The silent
    // agent's liveness ticket, opened when the window ended, escalates too.)
    assert!(sweep(end + 16 * MIN).await >= 1);
    assert_eq!(ticket(&svc, id).await.ticket.tier, 2);
}

pub async fn weekly_windows_follow_the_tenant_time_zone(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.set_tenant_time_zone(&admin(), &tenant, "Europe/Berlin", NOW)
        .await
        .expect("tz");
    let t = svc
        .store()
        .list_tenants(&Scope::Tenant(tenant.clone()))
        .await
        .expect("list");
    assert_eq!(t[0].time_zone, "Europe/Berlin");
    // Daily 22:00 Berlin time for 1 h.
    let w = svc
        .create_maintenance(
            &admin(),
            &NewWindow {
                tenant_id: tenant.clone(),
                kind: Kind::Weekly,
                target: Target::default(),
                schedule: Schedule::Weekly(Weekly::new(0x7f, 22 * 60, 3600).expect("weekly")),
                reason: String::new(),
            },
            NOW,
        )
        .await
        .expect("window");
    assert_eq!(w.time_zone, "Europe/Berlin");
    let at = |s: &str| -> Millis {
        s.parse::<jiff::Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    };
    // 20:30 UTC in July is 22:30 CEST: inside.
    let inside = at("2027-07-01T20:30:00Z");
    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(1, inside, vec![disk(CheckState::Crit, 99.0)]),
            inside,
        )
        .await
        .expect("apply");
    assert_eq!(o.opened, 0, "22:30 in Berlin");
    // 21:00 UTC is 23:00 CEST: the window is over.
    let after = at("2027-07-01T21:00:00Z");
    let o = svc
        .apply_report(
            &tenant,
            "a1",
            &changes(2, after, vec![disk(CheckState::Crit, 99.0)]),
            after,
        )
        .await
        .expect("apply");
    assert_eq!(o.opened, 1);
}

pub async fn maintenance_is_tenant_scoped_audited_and_closed_to_viewers(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let globex = tenant_with_agent(&svc, "globex", "b1").await;
    let acme_tech = ApiCaller {
        scope: Scope::Tenant(acme.clone()),
        name: "acme-tech".into(),
        role: crate::domain::Role::Technician,
        source: String::new(),
    };
    let globex_tech = ApiCaller {
        scope: Scope::Tenant(globex.clone()),
        name: "globex-tech".into(),
        role: crate::domain::Role::Technician,
        source: String::new(),
    };
    let viewer = ApiCaller {
        role: crate::domain::Role::Viewer,
        source: String::new(),
        ..acme_tech.clone()
    };
    // Through the request layer, as the API and CLI do: the tenant comes
    // from the key, the host may be named by hostname.
    let w = request::create_window(
        &svc,
        &acme_tech,
        WindowRequest {
            host: Some("host-a1".into()),
            weekly: Some(request::WeeklyRequest {
                days: "mon-fri".into(),
                at: "22:00".into(),
                duration: "2h".into(),
            }),
            ..WindowRequest::default()
        },
        NOW,
    )
    .await
    .expect("window");
    assert_eq!(
        (w.tenant_id.as_str(), w.target.agent_id.as_deref()),
        (acme.as_str(), Some("a1"))
    );
    assert_eq!(w.created_by, "acme-tech");
    let silence = |caller: ApiCaller, tenant: Option<&'static str>, host: Option<&'static str>| {
        let svc = svc.clone();
        async move {
            request::create_silence(
                &svc,
                &caller,
                SilenceRequest {
                    tenant: tenant.map(Into::into),
                    host: host.map(Into::into),
                    duration: "30m".into(),
                    reason: "swapping the disk".into(),
                    ..SilenceRequest::default()
                },
                NOW,
            )
            .await
        }
    };
    let s = silence(acme_tech.clone(), None, None)
        .await
        .expect("silence");
    assert_eq!(
        s.schedule,
        Schedule::Between {
            start: NOW,
            end: NOW + 30 * MIN
        }
    );
    // Another tenant, by name, or another tenant's host: not found.
    assert!(matches!(
        silence(globex_tech.clone(), Some("acme"), None).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        silence(globex_tech.clone(), None, Some("a1")).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        svc.create_maintenance(&globex_tech, &host_window(&acme, "a1", NOW, NOW + MIN), NOW)
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        svc.create_maintenance(&acme_tech, &host_window(&acme, "b1", NOW, NOW + MIN), NOW)
            .await,
        Err(Error::NotFound(_))
    ));
    // Viewers read but never write.
    assert!(matches!(
        silence(viewer.clone(), None, None).await,
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        svc.delete_maintenance(&viewer, w.id, &Kind::WINDOWS, NOW)
            .await,
        Err(Error::PermissionDenied(_))
    ));
    // Each tenant lists its own; windows and silences are separate lists.
    let list = |scope: Scope, kinds: &'static [Kind]| {
        let svc = svc.clone();
        async move { svc.list_maintenance(&scope, kinds).await.expect("list") }
    };
    assert_eq!(
        list(Scope::Tenant(acme.clone()), &Kind::WINDOWS)
            .await
            .len(),
        1
    );
    assert_eq!(
        list(Scope::Tenant(acme.clone()), &Kind::SILENCES)
            .await
            .len(),
        1
    );
    assert!(
        list(Scope::Tenant(globex.clone()), &Kind::WINDOWS)
            .await
            .is_empty()
    );
    assert!(matches!(
        svc.delete_maintenance(&globex_tech, w.id, &Kind::WINDOWS, NOW)
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(
        matches!(
            svc.delete_maintenance(&acme_tech, w.id, &Kind::SILENCES, NOW)
                .await,
            Err(Error::NotFound(_))
        ),
        "a window is not a silence"
    );
    svc.delete_maintenance(&acme_tech, s.id, &Kind::SILENCES, NOW + MIN)
        .await
        .expect("delete");
    assert!(list(Scope::All, &Kind::SILENCES).await.is_empty());
    let audit = svc
        .store()
        .audit_log(&Scope::Tenant(acme), 10)
        .await
        .expect("audit");
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["silence.delete", "silence.create", "maintenance.create"]
    );
    assert!(audit.iter().all(|a| a.actor == "acme-tech"));
    assert!(
        audit[2]
            .detail
            .contains("weekly mon,tue,wed,thu,fri at 22:00"),
        "{}",
        audit[2].detail
    );
}

/// An rrule window (Patch Tuesday, 22:00–02:00 Berlin time) round-trips
/// through the store and holds tickets exactly while an occurrence runs;
/// the store refuses an rrule row without its rule.
pub async fn rrule_windows_round_trip_and_hold_at_their_occurrences(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.set_tenant_time_zone(&admin(), &tenant, "Europe/Berlin", NOW)
        .await
        .expect("tz");
    let req = WindowRequest {
        tenant: Some("acme".into()),
        host: Some("a1".into()),
        recurrence: Some(request::RecurrenceRequest {
            rrule: "freq=monthly;byday=+2TU".into(),
            at: "22:00".into(),
            duration: "4h".into(),
            dtstart: Some("2027-01-01".into()),
        }),
        reason: "patch tuesday".into(),
        ..WindowRequest::default()
    };
    let created = request::create_window(&svc, &admin(), req, NOW)
        .await
        .expect("window");
    assert_eq!(created.kind, Kind::Rrule);
    let listed = svc
        .list_maintenance(&Scope::Tenant(tenant.clone()), &Kind::WINDOWS)
        .await
        .expect("list");
    assert_eq!(
        listed,
        std::slice::from_ref(&created),
        "read back as written"
    );
    let Schedule::Recurring(r) = &listed[0].schedule else {
        panic!("{:?}", listed[0].schedule)
    };
    assert_eq!(r.rule().to_string(), "FREQ=MONTHLY;BYDAY=2TU", "normalized");
    assert_eq!(r.dtstart().to_string(), "2027-01-01");
    assert_eq!((r.start_minute(), r.duration_secs()), (22 * 60, 4 * 3600));
    let at = |s: &str| -> Millis {
        s.parse::<jiff::Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    };
    // NOW is 15 January 2027; the next Patch Tuesday is 9 February, 22:00 CET.
    let view = crate::maintenance::WindowView::new(&listed[0], NOW);
    assert_eq!(view.next_start, Some(at("2027-02-09T21:00:00Z")));
    assert!(!view.active && !view.ended);
    // 13 July 2027 (second Tuesday) 22:00 CEST = 20:00 UTC. At 01:00 local
    // the next day the window still holds; at 02:30 it is over.
    let report = |seq: u64, t: Millis| disk_report(&svc, &tenant, seq, t, CheckState::Crit);
    assert_eq!(report(1, at("2027-07-13T23:00:00Z")).await, 0, "01:00 Wed");
    assert_eq!(report(2, at("2027-07-14T00:30:00Z")).await, 1, "02:30 Wed");

    // The CHECK constraint admits the kind only with its columns.
    let row = |rrule: Option<&'static str>| crate::store::NewWindowRow {
        tenant_id: "",
        kind: "rrule",
        site: None,
        agent_id: None,
        check: None,
        start_at: None,
        end_at: None,
        weekdays: None,
        start_minute: Some(0),
        duration_secs: Some(60),
        rrule,
        dtstart: Some("2027-01-01"),
        reason: "",
        created_by: "x",
        created_at: NOW,
    };
    let mut tx = svc.store().begin().await.expect("begin");
    let bad = tx
        .insert_window(&crate::store::NewWindowRow {
            tenant_id: &tenant,
            ..row(None)
        })
        .await;
    assert!(bad.is_err(), "an rrule row without its rule: {bad:?}");
    drop(tx);
    let mut tx = svc.store().begin().await.expect("begin");
    tx.insert_window(&crate::store::NewWindowRow {
        tenant_id: &tenant,
        ..row(Some("FREQ=DAILY"))
    })
    .await
    .expect("a whole rrule row");
    tx.commit().await.expect("commit");
}
