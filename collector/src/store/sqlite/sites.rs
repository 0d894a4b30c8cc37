//! Site outage grouping: when enough of a site's hosts are overdue at once,
//! one site ticket lists them instead of one ticket per host. Member hosts'
//! liveness tickets that were already open link to it (`parent_id`); hosts
//! of a site in outage open no liveness ticket of their own. The site
//! ticket resolves when no host of the site is overdue any more.

use sqlx::Row;

use super::problems::{AgentCtx, Tx, add_event};
use crate::Result;
use crate::domain::{CheckState, Millis};
use crate::tickets::policy::{Policy, mins_ms};

fn fingerprint(site: &str) -> String {
    format!("site/{site}")
}

/// Is the agent's site in an outage (an open site ticket)?
pub(super) async fn in_outage(tx: &mut Tx, ctx: &AgentCtx) -> Result<bool> {
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets WHERE tenant_id = ? AND fingerprint = ? AND state = 'open'",
    )
    .bind(&ctx.tenant_id)
    .bind(fingerprint(&ctx.site))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(open.is_some())
}

/// Opens, updates or resolves site tickets from the agents' overdue state.
/// Returns (opened, resolved).
pub(super) async fn group(tx: &mut Tx, policy: &Policy, now: Millis) -> Result<(u32, u32)> {
    let (mut opened, mut resolved) = (0, 0);
    // Sites with overdue hosts, and sites with an open site ticket.
    let rows = sqlx::query(
        "SELECT a.tenant_id, a.site,
                SUM(CASE WHEN a.overdue = 1 THEN 1 ELSE 0 END) AS down,
                COUNT(*) AS hosts,
                (SELECT t.id FROM tickets t WHERE t.tenant_id = a.tenant_id
                   AND t.fingerprint = 'site/' || a.site AND t.state = 'open') AS ticket
         FROM agents a WHERE a.revoked_at IS NULL
         GROUP BY a.tenant_id, a.site
         HAVING down > 0 OR ticket IS NOT NULL",
    )
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let site: String = row.try_get("site")?;
        let down: i64 = row.try_get("down")?;
        let hosts: i64 = row.try_get("hosts")?;
        let ticket: Option<i64> = row.try_get("ticket")?;
        let label = if site.is_empty() {
            "(no site)"
        } else {
            site.as_str()
        };
        if down == 0 {
            if let Some(id) = ticket {
                sqlx::query(
                    "UPDATE tickets SET state = 'resolved', resolved_at = ?, resolved_by = 'engine', updated_at = ? WHERE id = ?",
                )
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await?;
                add_event(
                    tx,
                    &tenant_id,
                    id,
                    now,
                    "resolved",
                    "every host reports again",
                    "engine",
                )
                .await?;
                resolved += 1;
            }
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let share = down as f64 * 100.0 / hosts.max(1) as f64;
        let outage = down >= i64::from(policy.site_outage_min_hosts)
            && share >= policy.site_outage_min_percent;
        if ticket.is_none() && !outage {
            continue;
        }
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT hostname FROM agents WHERE tenant_id = ? AND site = ? AND overdue = 1 ORDER BY hostname LIMIT 50",
        )
        .bind(&tenant_id)
        .bind(&site)
        .fetch_all(&mut **tx)
        .await?;
        let summary = format!(
            "CRIT site outage at {label}: {down} of {hosts} hosts stopped reporting: {}{}",
            names.join(", "),
            if down > 50 { ", …" } else { "" }
        );
        let id = match ticket {
            Some(id) => {
                let changed = sqlx::query(
                    "UPDATE tickets SET summary = ?, updated_at = ? WHERE id = ? AND summary != ?",
                )
                .bind(&summary)
                .bind(now)
                .bind(id)
                .bind(&summary)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if changed > 0 {
                    add_event(
                        tx,
                        &tenant_id,
                        id,
                        now,
                        "updated",
                        &format!("{down} of {hosts} hosts down"),
                        "engine",
                    )
                    .await?;
                }
                id
            }
            None => {
                let tenant_policy =
                    super::tenant_policy::for_tenant_id(tx, policy, &tenant_id).await?;
                let priority = tenant_policy.priority(CheckState::Crit, "server");
                let sla = tenant_policy.sla(&priority);
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tickets (tenant_id, site, agent_id, host, check_kind, item, fingerprint, severity, summary,
                                          state, opened_at, updated_at, kind, priority, tier, detected_at, ack_due_at, resolve_due_at)
                     VALUES (?, ?, '', ?, 'site', ?, ?, 'crit', ?, 'open', ?, ?, 'site', ?, ?,
                             (SELECT MIN(overdue_since) FROM agents WHERE tenant_id = ? AND site = ? AND overdue = 1), ?, ?)
                     RETURNING id",
                )
                .bind(&tenant_id)
                .bind(&site)
                .bind(label)
                .bind(&site)
                .bind(fingerprint(&site))
                .bind(&summary)
                .bind(now)
                .bind(now)
                .bind(&priority)
                .bind(i64::from(tenant_policy.start_tier))
                .bind(&tenant_id)
                .bind(&site)
                .bind(now + mins_ms(sla.ack_mins))
                .bind(now + mins_ms(sla.resolve_mins))
                .fetch_one(&mut **tx)
                .await?;
                add_event(
                    tx,
                    &tenant_id,
                    id,
                    now,
                    "opened",
                    &format!("{down} of {hosts} hosts down"),
                    "engine",
                )
                .await?;
                tracing::warn!(tenant_id, site = label, down, hosts, "site outage");
                opened += 1;
                id
            }
        };
        // Hosts' own liveness tickets opened before the outage was seen join it.
        sqlx::query(
            "UPDATE tickets SET parent_id = ? WHERE tenant_id = ? AND site = ? AND kind = 'agent'
               AND state = 'open' AND parent_id IS NULL",
        )
        .bind(id)
        .bind(&tenant_id)
        .bind(&site)
        .execute(&mut **tx)
        .await?;
    }
    Ok((opened, resolved))
}
