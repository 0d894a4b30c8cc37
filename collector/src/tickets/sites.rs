//! Site outage grouping: when enough of a site's hosts are overdue at once,
//! one site ticket lists them instead of one ticket per host. Member hosts'
//! liveness tickets that were already open link to it (`parent_id`); hosts
//! of a site in outage open no liveness ticket of their own. The site
//! ticket resolves when no host of the site is overdue any more.

use super::lifecycle::ENGINE;
use super::policy::mins_ms;
use super::problems::AgentCtx;
use super::service::Desk;
use crate::Result;
use crate::domain::{CheckState, Millis};
use crate::store::{NewTicket, WriteTx};

/// A site ticket's fingerprint is this prefix and the site.
const PREFIX: &str = "site/";
/// Hosts named in a site ticket's summary; the rest are counted.
const MAX_LISTED: i64 = 50;

fn fingerprint(site: &str) -> String {
    format!("{PREFIX}{site}")
}

/// Is the agent's site in an outage (an open site ticket)?
pub async fn in_outage(tx: &mut dyn WriteTx, ctx: &AgentCtx) -> Result<bool> {
    Ok(tx
        .open_ticket(&ctx.row.tenant_id, &fingerprint(&ctx.row.site))
        .await?
        .is_some())
}

/// Opens, updates or resolves site tickets from the agents' overdue state.
/// Returns (opened, resolved).
pub async fn group(desk: &mut Desk<'_>, now: Millis) -> Result<(u32, u32)> {
    let (mut opened, mut resolved) = (0, 0);
    for s in desk.tx.site_counts(PREFIX).await? {
        let label = if s.site.is_empty() {
            "(no site)"
        } else {
            s.site.as_str()
        };
        if s.down == 0 {
            if let Some(id) = s.ticket
                && desk
                    .resolve_ticket(&s.tenant_id, id, ENGINE, "every host reports again", now)
                    .await?
            {
                resolved += 1;
            }
            continue;
        }
        let policy = desk.policy_for(&s.tenant_id).await?;
        #[allow(clippy::cast_precision_loss)]
        let share = s.down as f64 * 100.0 / s.hosts.max(1) as f64;
        let outage = s.down >= i64::from(policy.site_outage_min_hosts)
            && share >= policy.site_outage_min_percent;
        if s.ticket.is_none() && !outage {
            continue;
        }
        let names = desk
            .tx
            .overdue_hostnames(&s.tenant_id, &s.site, MAX_LISTED)
            .await?;
        let summary = format!(
            "CRIT site outage at {label}: {} of {} hosts stopped reporting: {}{}",
            s.down,
            s.hosts,
            names.join(", "),
            if s.down > MAX_LISTED { ", …" } else { "" }
        );
        let detail = format!("{} of {} hosts down", s.down, s.hosts);
        let id = match s.ticket {
            Some(id) => {
                if desk.tx.set_summary(id, &summary, now).await? {
                    desk.event(&s.tenant_id, id, now, "updated", &detail, ENGINE)
                        .await?;
                }
                id
            }
            None => {
                let priority = policy.priority(CheckState::Crit, "server");
                let sla = policy.sla(&priority);
                let detected_at = desk
                    .tx
                    .earliest_overdue(&s.tenant_id, &s.site)
                    .await?
                    .unwrap_or(now);
                let fp = fingerprint(&s.site);
                let ticket = NewTicket {
                    tenant_id: &s.tenant_id,
                    kind: "site",
                    site: &s.site,
                    agent_id: "",
                    host: label,
                    check: "site",
                    item: &s.site,
                    fingerprint: &fp,
                    severity: CheckState::Crit.as_str(),
                    summary: &summary,
                    priority: &priority,
                    tier: i64::from(policy.start_tier),
                    flapping: false,
                    detected_at,
                    ack_due_at: now + mins_ms(sla.ack_mins),
                    resolve_due_at: now + mins_ms(sla.resolve_mins),
                    now,
                };
                let id = desk.open_ticket(&ticket, &detail).await?;
                tracing::warn!(
                    tenant_id = s.tenant_id,
                    site = label,
                    down = s.down,
                    hosts = s.hosts,
                    "site outage"
                );
                opened += 1;
                id
            }
        };
        // Hosts' own liveness tickets opened before the outage was seen join it.
        desk.tx
            .link_site_liveness(&s.tenant_id, &s.site, id)
            .await?;
    }
    Ok((opened, resolved))
}
