//! Same-check grouping, per tenant (`[tickets.tenants.<name>]
//! group_same_check`, off by default): the same backup job failing on 40
//! hosts is one parent ticket to work on, not 40 unrelated ones.
//!
//! Once a second the sweep looks, for each tenant that groups, at its check
//! tickets opened within `window_secs` that belong to no open group. When
//! at least `min_hosts` hosts have one for the same check kind + item, one
//! `kind: group` parent ticket opens (fingerprint `group/<check>/<item>`,
//! so the one-open-per-fingerprint index keeps it single) listing the
//! hosts, and their tickets link to it (`parent_id`). While the parent is
//! open, every other open ticket for that check and item joins it.
//!
//! Members stay tickets of their own and resolve individually, but do not
//! escalate on their own while the parent is open (the parent carries the
//! SLA; see the sweep). The parent resolves when its last member resolves.
//! Every change is conditional on the state it changes, so running the
//! same sweep again changes nothing.

use sqlx::Row;

use super::problems::{Tx, add_event};
use super::tenant_policy;
use crate::Result;
use crate::domain::{CheckState, Millis};
use crate::tickets::policy::{Policy, mins_ms};

/// Hosts named in a parent's summary; the rest are counted.
const MAX_LISTED: usize = 50;

fn fingerprint(check: &str, item: &str) -> String {
    format!("group/{check}/{item}")
}

/// Opens and extends groups for every tenant that groups, then resolves
/// parents whose members have all resolved. Returns (opened, resolved).
pub(super) async fn group(tx: &mut Tx, policy: &Policy, now: Millis) -> Result<(u32, u32)> {
    let mut opened = 0;
    for (name, g) in policy.grouping_tenants() {
        let Some(tenant_id) = tenant_policy::tenant_id(tx, name).await? else {
            continue;
        };
        let since = now - i64::try_from(g.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        // Checks failing on enough hosts lately, and open groups that a
        // ticket has not joined yet.
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.check_kind, c.item FROM tickets c
             WHERE c.tenant_id = ?1 AND c.state = 'open' AND c.kind = 'check' AND c.opened_at >= ?2
               AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = c.parent_id AND p.state = 'open')
             GROUP BY c.check_kind, c.item HAVING COUNT(DISTINCT c.agent_id) >= ?3
             UNION
             SELECT p.check_kind, p.item FROM tickets p
             WHERE p.tenant_id = ?1 AND p.kind = 'group' AND p.state = 'open'
               AND EXISTS (SELECT 1 FROM tickets c WHERE c.tenant_id = p.tenant_id AND c.state = 'open'
                             AND c.kind = 'check' AND c.check_kind = p.check_kind
                             AND c.item = p.item AND c.parent_id IS NOT p.id)",
        )
        .bind(&tenant_id)
        .bind(since)
        .bind(i64::from(g.min_hosts))
        .fetch_all(&mut **tx)
        .await?;
        if keys.is_empty() {
            continue;
        }
        let policy = policy.for_tenant(name);
        for (check, item) in keys {
            opened += join(tx, &policy, &tenant_id, &check, &item, now).await?;
        }
    }
    let resolved = resolve_finished(tx, now).await?;
    Ok((opened, resolved))
}

/// An open check ticket that belongs to no open group.
struct Member {
    id: i64,
    host: String,
    site: String,
    severity: String,
    priority: String,
    detected_at: Option<i64>,
}

/// Links the open, ungrouped tickets for `check`/`item` to the open parent,
/// opening it first if there is none. Returns 1 if a parent opened.
async fn join(
    tx: &mut Tx,
    policy: &Policy,
    tenant_id: &str,
    check: &str,
    item: &str,
    now: Millis,
) -> Result<u32> {
    let fp = fingerprint(check, item);
    let members = sqlx::query(
        "SELECT c.id, c.host, c.site, c.severity, c.priority, c.detected_at FROM tickets c
         WHERE c.tenant_id = ? AND c.state = 'open' AND c.kind = 'check' AND c.check_kind = ? AND c.item = ?
           AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = c.parent_id AND p.state = 'open')
         ORDER BY c.host, c.id",
    )
    .bind(tenant_id)
    .bind(check)
    .bind(item)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| -> Result<Member> {
        Ok(Member {
            id: r.try_get("id")?,
            host: r.try_get("host")?,
            site: r.try_get("site")?,
            severity: r.try_get("severity")?,
            priority: r.try_get("priority")?,
            detected_at: r.try_get("detected_at")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    if members.is_empty() {
        return Ok(0);
    }
    let parent: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets WHERE tenant_id = ? AND fingerprint = ? AND state = 'open'",
    )
    .bind(tenant_id)
    .bind(&fp)
    .fetch_optional(&mut **tx)
    .await?;
    let (parent, opened) = match parent {
        Some(id) => (id, 0),
        None => (
            open_parent(tx, policy, tenant_id, check, item, &members, now).await?,
            1,
        ),
    };
    for m in &members {
        sqlx::query("UPDATE tickets SET parent_id = ?, updated_at = ? WHERE id = ?")
            .bind(parent)
            .bind(now)
            .bind(m.id)
            .execute(&mut **tx)
            .await?;
        add_event(
            tx,
            tenant_id,
            m.id,
            now,
            "grouped",
            &format!(
                "part of ticket {parent}: {} failing on many hosts",
                what(check, item)
            ),
            "engine",
        )
        .await?;
    }
    // The summary lists every host that joined, so it only grows.
    let hosts: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT host FROM tickets WHERE parent_id = ? AND kind = 'check' ORDER BY host",
    )
    .bind(parent)
    .fetch_all(&mut **tx)
    .await?;
    let severity: String = sqlx::query_scalar("SELECT severity FROM tickets WHERE id = ?")
        .bind(parent)
        .fetch_one(&mut **tx)
        .await?;
    let summary = summary(&severity, check, item, &hosts);
    sqlx::query("UPDATE tickets SET summary = ?, updated_at = ? WHERE id = ?")
        .bind(&summary)
        .bind(now)
        .bind(parent)
        .execute(&mut **tx)
        .await?;
    if opened == 0 {
        let joined: Vec<&str> = members.iter().map(|m| m.host.as_str()).collect();
        add_event(
            tx,
            tenant_id,
            parent,
            now,
            "updated",
            &format!("joined: {} ({} hosts)", joined.join(", "), hosts.len()),
            "engine",
        )
        .await?;
    }
    Ok(opened)
}

/// Opens the parent: the most urgent member's priority and severity, the
/// tenant's SLA for it, detected when the first member was.
async fn open_parent(
    tx: &mut Tx,
    policy: &Policy,
    tenant_id: &str,
    check: &str,
    item: &str,
    members: &[Member],
    now: Millis,
) -> Result<i64> {
    let rank = |s: &str| match CheckState::parse(s) {
        Some(CheckState::Crit) => 0,
        Some(CheckState::Warn) => 1,
        _ => 2,
    };
    let lead = members
        .iter()
        .min_by(|a, b| {
            (a.priority.as_str(), rank(&a.severity)).cmp(&(b.priority.as_str(), rank(&b.severity)))
        })
        .map_or(("P4", "warn"), |m| {
            (m.priority.as_str(), m.severity.as_str())
        });
    let (priority, severity) = lead;
    let sla = policy.sla(priority);
    // One site when every member is at the same site (maintenance windows
    // of that site then hold the parent's escalation too).
    let site = members
        .first()
        .filter(|f| members.iter().all(|m| m.site == f.site))
        .map_or("", |f| f.site.as_str());
    let detected_at = members
        .iter()
        .filter_map(|m| m.detected_at)
        .min()
        .unwrap_or(now);
    let hosts: Vec<String> = members.iter().map(|m| m.host.clone()).collect();
    let summary = summary(severity, check, item, &hosts);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (tenant_id, site, agent_id, host, check_kind, item, fingerprint, severity, summary,
                              state, opened_at, updated_at, kind, priority, tier, detected_at, ack_due_at, resolve_due_at)
         VALUES (?, ?, '', '', ?, ?, ?, ?, ?, 'open', ?, ?, 'group', ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(tenant_id)
    .bind(site)
    .bind(check)
    .bind(item)
    .bind(fingerprint(check, item))
    .bind(severity)
    .bind(&summary)
    .bind(now)
    .bind(now)
    .bind(priority)
    .bind(i64::from(policy.start_tier))
    .bind(detected_at)
    .bind(now + mins_ms(sla.ack_mins))
    .bind(now + mins_ms(sla.resolve_mins))
    .fetch_one(&mut **tx)
    .await?;
    add_event(
        tx,
        tenant_id,
        id,
        now,
        "opened",
        &format!(
            "opened ({priority}, L{}): {} failing on {} hosts",
            policy.start_tier,
            what(check, item),
            members.len()
        ),
        "engine",
    )
    .await?;
    tracing::warn!(
        tenant_id,
        check,
        item,
        hosts = members.len(),
        "same check failing on many hosts"
    );
    Ok(id)
}

/// Resolves open parents none of whose members is open any more.
async fn resolve_finished(tx: &mut Tx, now: Millis) -> Result<u32> {
    let done = sqlx::query(
        "SELECT p.id, p.tenant_id FROM tickets p
         WHERE p.kind = 'group' AND p.state = 'open'
           AND NOT EXISTS (SELECT 1 FROM tickets c WHERE c.parent_id = p.id AND c.state = 'open')",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut resolved = 0;
    for row in done {
        let id: i64 = row.try_get("id")?;
        let tenant_id: String = row.try_get("tenant_id")?;
        let changed = sqlx::query(
            "UPDATE tickets SET state = 'resolved', resolved_at = ?, resolved_by = 'engine', updated_at = ?
             WHERE id = ? AND state = 'open'",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 1 {
            add_event(
                tx,
                &tenant_id,
                id,
                now,
                "resolved",
                "every host's ticket is resolved",
                "engine",
            )
            .await?;
            resolved += 1;
        }
    }
    Ok(resolved)
}

fn what(check: &str, item: &str) -> String {
    if item.is_empty() {
        check.to_string()
    } else {
        format!("{check} {item}")
    }
}

fn summary(severity: &str, check: &str, item: &str, hosts: &[String]) -> String {
    let listed = hosts
        .iter()
        .take(MAX_LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} {} failing on {} hosts: {listed}{}",
        severity.to_uppercase(),
        what(check, item),
        hosts.len(),
        if hosts.len() > MAX_LISTED {
            ", …"
        } else {
            ""
        }
    )
}
