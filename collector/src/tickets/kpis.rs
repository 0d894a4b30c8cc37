//! KPIs per tenant over a period: tickets opened, auto-resolved, escalated,
//! SLA breaches, and mean / median time to detect, acknowledge, resolve.

use std::collections::BTreeMap;

use super::lifecycle::ENGINE;
use super::service::Service;
use crate::Result;
use crate::domain::{DurationStats, Millis, Scope, TenantKpis};

impl Service {
    /// KPIs per tenant in scope, for tickets opened in `[from, to)`.
    pub async fn kpis(&self, scope: &Scope, from: Millis, to: Millis) -> Result<Vec<TenantKpis>> {
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
        for r in self.store().kpi_rows(scope, from, to).await? {
            let a = by_tenant.entry(r.tenant_id).or_default();
            a.name = r.tenant_name;
            a.opened += 1;
            match r.resolved_by.as_deref() {
                Some(ENGINE) => a.auto_resolved += 1,
                Some(_) => a.resolved_by_hand += 1,
                None => {}
            }
            if r.escalations > 0 {
                a.escalated += 1;
            }
            a.breaches += u64::from(r.ack_breached) + u64::from(r.resolve_breached);
            if let Some(d) = r.detected_at {
                a.detect.push((r.opened_at - d).max(0));
            }
            if let Some(k) = r.acknowledged_at {
                a.ack.push((k - r.opened_at).max(0));
            }
            if let Some(s) = r.resolved_at {
                a.resolve.push((s - r.opened_at).max(0));
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
