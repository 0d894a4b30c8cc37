//! Conformance tests for metric history: heartbeats sampled once per
//! window in the report's transaction, the scoped read of a range, and
//! pruning by age.

use super::{NOW, changes, start_session, tenant_with_agent};
use crate::Error;
use crate::domain::{
    CheckResult, CheckState, DiskUsage, HostFacts, HostSnapshot, Metric, Millis, Report,
    ReportPayload, Scope,
};
use crate::history::MountSample;
use crate::retention::{Cutoffs, run_once};
use crate::store::MetricSample;
use crate::tickets::Service;

const SEC: Millis = 1000;

fn heartbeat(seq: u64, observed_at: Millis, cpu: f64, hours_to_full: Option<f64>) -> Report {
    let mut metrics = vec![Metric {
        name: "used_percent".into(),
        value: 60.0,
        unit: "percent".into(),
        ..Metric::default()
    }];
    if let Some(h) = hours_to_full {
        metrics.push(Metric {
            name: "hours_to_full".into(),
            value: h,
            unit: "hours".into(),
            ..Metric::default()
        });
    }
    Report {
        boot_id: "boot-1".into(),
        seq,
        observed_at,
        payload: ReportPayload::Heartbeat {
            snapshot: HostSnapshot {
                cpu_percent: cpu,
                memory_used_bytes: 2 << 30,
                memory_total_bytes: 8 << 30,
                swap_used_bytes: 1 << 20,
                swap_total_bytes: 4 << 20,
                load1: 0.25,
                load5: 0.5,
                load15: 0.75,
                disks: vec![DiskUsage {
                    mount_point: "/data".into(),
                    fs_type: "ext4".into(),
                    total_bytes: 1000,
                    available_bytes: 400,
                }],
                ..HostSnapshot::default()
            },
            checks: vec![CheckResult {
                check: "disk".into(),
                item: "/data".into(),
                state: CheckState::Ok,
                message: "/data 60% used".into(),
                metrics,
                since: NOW,
            }],
        },
    }
}

fn sample(tenant: &str, agent: &str, at: Millis) -> MetricSample {
    MetricSample {
        tenant_id: tenant.into(),
        agent_id: agent.into(),
        at,
        cpu_centipercent: 1,
        memory_used_bytes: 2,
        memory_total_bytes: 3,
        swap_used_bytes: None,
        swap_total_bytes: None,
        load1_milli: 4,
        load5_milli: 5,
        load15_milli: 6,
        disks: "[]".into(),
    }
}

async fn insert(svc: &Service, samples: &[MetricSample]) {
    let mut tx = svc.store().begin().await.expect("begin");
    for s in samples {
        tx.insert_metric_sample(s).await.expect("insert");
    }
    tx.commit().await.expect("commit");
}

async fn read(svc: &Service, scope: &Scope, agent: &str) -> Option<Vec<MetricSample>> {
    svc.store()
        .agent_metrics(scope, agent, NOW - 3600 * SEC, NOW + 3600 * SEC)
        .await
        .expect("read")
}

pub async fn heartbeats_are_sampled_once_per_window(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let globex = tenant_with_agent(&svc, "globex", "b1").await;
    // The agent's clock is 2 s behind the collector's.
    start_session(
        &svc,
        &acme,
        "a1",
        "boot-1",
        &HostFacts::default(),
        15,
        Some(2 * SEC),
        NOW,
    )
    .await
    .expect("session");
    // Heartbeats every 15 s for 75 s, and a state change between them.
    for (i, at) in (0..6).map(|i| (i, NOW + 1 + i * 15 * SEC)) {
        let seq = 2 * u64::try_from(i).expect("small");
        let cpu = 10.0 * f64::from(u8::try_from(i + 1).expect("small"));
        let beat = heartbeat(seq + 1, at - 2 * SEC, cpu, Some(2.0));
        svc.apply_report(&acme, "a1", &beat, at)
            .await
            .expect("beat");
        svc.apply_report(&acme, "a1", &changes(seq + 2, at - 2 * SEC, vec![]), at + 5)
            .await
            .expect("changes");
    }
    // The same heartbeat again is a duplicate: no second sample.
    let again = heartbeat(1, NOW - 2 * SEC + 1, 99.0, None);
    assert!(
        svc.apply_report(&acme, "a1", &again, NOW + 80 * SEC)
            .await
            .expect("resend")
            .duplicate
    );

    let samples = read(&svc, &Scope::Tenant(acme.clone()), "a1")
        .await
        .expect("agent in scope");
    // Minutes NOW and NOW + 60 s: the first heartbeat of each.
    let times: Vec<Millis> = samples.iter().map(|s| s.at).collect();
    assert_eq!(times, [NOW + 1, NOW + 60 * SEC + 1]);
    let first = &samples[0];
    assert_eq!(
        (first.tenant_id.as_str(), first.agent_id.as_str()),
        (acme.as_str(), "a1")
    );
    assert_eq!(first.cpu_centipercent, 1000);
    assert_eq!(samples[1].cpu_centipercent, 5000);
    assert_eq!(
        (first.memory_used_bytes, first.memory_total_bytes),
        (2 << 30, 8 << 30)
    );
    assert_eq!(
        (first.swap_used_bytes, first.swap_total_bytes),
        (Some(1 << 20), Some(4 << 20))
    );
    assert_eq!(
        (first.load1_milli, first.load5_milli, first.load15_milli),
        (250, 500, 750)
    );
    let disks: Vec<MountSample> = serde_json::from_str(&first.disks).expect("disks json");
    assert_eq!(
        disks,
        [MountSample {
            mount: "/data".into(),
            used_bytes: 600,
            total_bytes: 1000,
            full_at: Some(NOW + 1 + 2 * 3600 * SEC),
        }]
    );

    // Scoped: another tenant's agent is not there; all tenants see it.
    assert_eq!(read(&svc, &Scope::Tenant(globex.clone()), "a1").await, None);
    assert_eq!(read(&svc, &Scope::All, "a1").await.expect("all").len(), 2);
    assert_eq!(read(&svc, &Scope::Tenant(globex), "b1").await, Some(vec![]));
    assert_eq!(read(&svc, &Scope::All, "nobody").await, None);
    // The range is [from, to).
    let only_first = svc
        .store()
        .agent_metrics(&Scope::All, "a1", NOW + 1, NOW + 60 * SEC + 1)
        .await
        .expect("range")
        .expect("agent");
    assert_eq!(only_first.len(), 1);
    assert_eq!(only_first[0].at, NOW + 1);

    // Shaped for charts through the service, scoped the same way.
    let series = svc
        .agent_metrics(&Scope::Tenant(acme.clone()), "a1", NOW, NOW + 3600 * SEC)
        .await
        .expect("series");
    assert_eq!(series.cpu_percent, [10.0, 50.0]);
    assert_eq!(series.memory_percent, [Some(25.0), Some(25.0)]);
    assert_eq!(series.disks[0].used_percent, [Some(60.0), Some(60.0)]);
    let p = series.disks[0].projection.as_ref().expect("projection");
    assert_eq!(p.full_at, NOW + 60 * SEC + 1 + 2 * 3600 * SEC);
    let other = svc
        .agent_metrics(&Scope::Tenant("elsewhere".into()), "a1", NOW, NOW + SEC)
        .await;
    assert!(matches!(other, Err(Error::NotFound(_))), "{other:?}");
    let backwards = svc.agent_metrics(&Scope::All, "a1", NOW, NOW).await;
    assert!(
        matches!(backwards, Err(Error::InvalidArgument(_))),
        "{backwards:?}"
    );
}

pub async fn a_sample_at_a_stored_instant_is_kept_as_it_was(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    insert(&svc, &[sample(&acme, "a1", NOW)]).await;
    let mut changed = sample(&acme, "a1", NOW);
    changed.cpu_centipercent = 9999;
    insert(&svc, &[changed]).await;
    let samples = read(&svc, &Scope::All, "a1").await.expect("agent");
    assert_eq!(samples, [sample(&acme, "a1", NOW)]);
}

pub async fn metric_samples_are_pruned_by_age(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let globex = tenant_with_agent(&svc, "globex", "b1").await;
    let old: Vec<MetricSample> = (1..=3)
        .flat_map(|i| {
            [
                sample(&acme, "a1", NOW - i * SEC),
                sample(&globex, "b1", NOW - i * SEC),
            ]
        })
        .collect();
    insert(&svc, &old).await;
    insert(
        &svc,
        &[sample(&acme, "a1", NOW), sample(&globex, "b1", NOW + SEC)],
    )
    .await;
    // Only metrics are cut; every other kind keeps everything.
    let cut = Cutoffs {
        delivered_reports: Millis::MIN,
        outbox: Millis::MIN,
        resolved_tickets: Millis::MIN,
        audit: Millis::MIN,
        maintenance: Millis::MIN,
        metrics: NOW,
    };
    // Batches of four: two batches, the second short.
    let pruned = run_once(svc.store().as_ref(), &cut, 4)
        .await
        .expect("prune")
        .expect("lease");
    assert_eq!(pruned.metrics, 6);
    assert_eq!(pruned.delivered_reports + pruned.audit, 0);
    let left = |agent| {
        let svc = svc.clone();
        async move {
            let s = read(&svc, &Scope::All, agent).await.expect("agent");
            s.iter().map(|s| s.at).collect::<Vec<_>>()
        }
    };
    assert_eq!(left("a1").await, [NOW]);
    assert_eq!(left("b1").await, [NOW + SEC]);
}
