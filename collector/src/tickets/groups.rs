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

use super::lifecycle::ENGINE;
use super::policy::{Policy, mins_ms};
use super::service::Desk;
use crate::Result;
use crate::domain::{CheckState, Millis};
use crate::store::{GroupMember, NewTicket};

/// Hosts named in a parent's summary; the rest are counted.
const MAX_LISTED: usize = 50;

fn fingerprint(check: &str, item: &str) -> String {
    format!("group/{check}/{item}")
}

/// Opens and extends groups for every tenant that groups, then resolves
/// parents whose members have all resolved. Returns (opened, resolved).
pub async fn group(desk: &mut Desk<'_>, now: Millis) -> Result<(u32, u32)> {
    let mut opened = 0;
    let policy: &Policy = desk.policy;
    for (name, g) in policy.grouping_tenants() {
        let Some(tenant_id) = desk.tx.tenant_id(name).await? else {
            continue;
        };
        let since = now - i64::try_from(g.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let keys = desk
            .tx
            .group_candidates(&tenant_id, since, i64::from(g.min_hosts))
            .await?;
        if keys.is_empty() {
            continue;
        }
        let tenant_policy = policy.for_tenant(name);
        for (check, item) in keys {
            opened += join(desk, &tenant_policy, &tenant_id, &check, &item, now).await?;
        }
    }
    let mut resolved = 0;
    for (id, tenant_id) in desk.tx.finished_groups().await? {
        let detail = "every host's ticket is resolved";
        if desk
            .resolve_ticket(&tenant_id, id, ENGINE, detail, now)
            .await?
        {
            resolved += 1;
        }
    }
    Ok((opened, resolved))
}

/// Links the open, ungrouped tickets for `check`/`item` to the open parent,
/// opening it first if there is none. Returns 1 if a parent opened.
async fn join(
    desk: &mut Desk<'_>,
    policy: &Policy,
    tenant_id: &str,
    check: &str,
    item: &str,
    now: Millis,
) -> Result<u32> {
    let members = desk.tx.group_members(tenant_id, check, item).await?;
    if members.is_empty() {
        return Ok(0);
    }
    let (parent, opened) = match desk
        .tx
        .open_ticket(tenant_id, &fingerprint(check, item))
        .await?
    {
        Some(id) => (id, 0),
        None => (
            open_parent(desk, policy, tenant_id, check, item, &members, now).await?,
            1,
        ),
    };
    let joined = format!(
        "part of ticket {parent}: {} failing on many hosts",
        what(check, item)
    );
    for m in &members {
        desk.tx.set_parent(m.id, parent, now).await?;
        desk.event(tenant_id, m.id, now, "grouped", &joined, ENGINE)
            .await?;
    }
    // The summary lists every host that joined, so it only grows.
    let hosts = desk.tx.group_hosts(parent).await?;
    let severity = desk.tx.ticket_severity(parent).await?;
    desk.tx
        .set_summary(parent, &summary(&severity, check, item, &hosts), now)
        .await?;
    if opened == 0 {
        let names: Vec<&str> = members.iter().map(|m| m.host.as_str()).collect();
        let detail = format!("joined: {} ({} hosts)", names.join(", "), hosts.len());
        desk.event(tenant_id, parent, now, "updated", &detail, ENGINE)
            .await?;
    }
    Ok(opened)
}

/// Opens the parent: the most urgent member's priority and severity, the
/// tenant's SLA for it, detected when the first member was.
async fn open_parent(
    desk: &mut Desk<'_>,
    policy: &Policy,
    tenant_id: &str,
    check: &str,
    item: &str,
    members: &[GroupMember],
    now: Millis,
) -> Result<i64> {
    let rank = |s: &str| match CheckState::parse(s) {
        Some(CheckState::Crit) => 0,
        Some(CheckState::Warn) => 1,
        _ => 2,
    };
    let (priority, severity) = members
        .iter()
        .min_by(|a, b| {
            (a.priority.as_str(), rank(&a.severity)).cmp(&(b.priority.as_str(), rank(&b.severity)))
        })
        .map_or(("P4", "warn"), |m| {
            (m.priority.as_str(), m.severity.as_str())
        });
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
    let fp = fingerprint(check, item);
    let text = summary(severity, check, item, &hosts);
    let ticket = NewTicket {
        tenant_id,
        kind: "group",
        site,
        agent_id: "",
        host: "",
        check,
        item,
        fingerprint: &fp,
        severity,
        summary: &text,
        priority,
        tier: i64::from(policy.start_tier),
        flapping: false,
        detected_at,
        ack_due_at: now + mins_ms(sla.ack_mins),
        resolve_due_at: now + mins_ms(sla.resolve_mins),
        now,
    };
    let detail = format!(
        "opened ({priority}, L{}): {} failing on {} hosts",
        policy.start_tier,
        what(check, item),
        members.len()
    );
    let id = desk.open_ticket(&ticket, &detail).await?;
    tracing::warn!(
        tenant_id,
        check,
        item,
        hosts = members.len(),
        "same check failing on many hosts"
    );
    Ok(id)
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
