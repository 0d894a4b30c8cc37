//! KPIs per tenant over a period: tickets opened, auto-resolved, escalated,
//! SLA breaches, and mean / median time to detect, acknowledge, resolve.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{SqliteStore, scope_tenant};
use crate::Result;
use crate::domain::{DurationStats, Millis, Scope, TenantKpis};

pub(super) async fn kpis(
    store: &SqliteStore,
    scope: &Scope,
    from: Millis,
    to: Millis,
) -> Result<Vec<TenantKpis>> {
    let rows = sqlx::query(
        "SELECT t.tenant_id, n.name AS tenant_name, t.opened_at, t.detected_at, t.acknowledged_at,
                t.resolved_at, t.resolved_by, t.escalations, t.ack_breached, t.resolve_breached
         FROM tickets t JOIN tenants n ON n.id = t.tenant_id
         WHERE (?1 IS NULL OR t.tenant_id = ?1) AND t.opened_at >= ?2 AND t.opened_at < ?3",
    )
    .bind(scope_tenant(scope))
    .bind(from)
    .bind(to)
    .fetch_all(&store.pool)
    .await?;
    #[derive(Default)]
    struct Acc {
        name: String,
        opened: u64,
        auto_resolved: u64,
        resolved_by_hand: u64,
        escalated: u64,
        breaches: u64,
        detect: Vec<i64>,
        ack: Vec<i64>,
        resolve: Vec<i64>,
    }
    let mut by_tenant: BTreeMap<String, Acc> = BTreeMap::new();
    for r in rows {
        let a = by_tenant.entry(r.try_get("tenant_id")?).or_default();
        a.name = r.try_get("tenant_name")?;
        let opened: i64 = r.try_get("opened_at")?;
        a.opened += 1;
        let resolved_by: Option<String> = r.try_get("resolved_by")?;
        match resolved_by.as_deref() {
            Some("engine") => a.auto_resolved += 1,
            Some(_) => a.resolved_by_hand += 1,
            None => {}
        }
        if r.try_get::<i64, _>("escalations")? > 0 {
            a.escalated += 1;
        }
        a.breaches += u64::try_from(
            r.try_get::<i64, _>("ack_breached")? + r.try_get::<i64, _>("resolve_breached")?,
        )
        .unwrap_or(0);
        if let Some(d) = r.try_get::<Option<i64>, _>("detected_at")? {
            a.detect.push((opened - d).max(0));
        }
        if let Some(k) = r.try_get::<Option<i64>, _>("acknowledged_at")? {
            a.ack.push((k - opened).max(0));
        }
        if let Some(s) = r.try_get::<Option<i64>, _>("resolved_at")? {
            a.resolve.push((s - opened).max(0));
        }
    }
    Ok(by_tenant
        .into_iter()
        .map(|(tenant_id, a)| TenantKpis {
            tenant_id,
            tenant_name: a.name,
            from,
            to,
            opened: a.opened,
            auto_resolved: a.auto_resolved,
            resolved_by_hand: a.resolved_by_hand,
            escalated: a.escalated,
            sla_breaches: a.breaches,
            time_to_detect: stats(a.detect),
            time_to_acknowledge: stats(a.ack),
            time_to_resolve: stats(a.resolve),
        })
        .collect())
}

/// Mean and median of millisecond durations, in seconds.
fn stats(mut ms: Vec<i64>) -> Option<DurationStats> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let mean = ms.iter().sum::<i64>() as f64 / ms.len() as f64 / 1000.0;
    let mid = ms.len() / 2;
    #[allow(clippy::cast_precision_loss)]
    let median = if ms.len().is_multiple_of(2) {
        (ms[mid - 1] + ms[mid]) as f64 / 2000.0
    } else {
        ms[mid] as f64 / 1000.0
    };
    Some(DurationStats {
        count: ms.len() as u64,
        mean_secs: mean,
        median_secs: median,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_median() {
        let s = stats(vec![1000, 3000, 8000, 2000]).expect("stats");
        assert_eq!((s.count, s.mean_secs, s.median_secs), (4, 3.5, 2.5));
        assert!(stats(vec![]).is_none());
    }
}
