//! Ticket policy: per-kind rules, severity × role → priority, SLA targets
//! per priority, agent liveness. The `[tickets]` section of the collector
//! config; every key has a documented default.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::engine::Rule;
use crate::domain::CheckState;

/// Host roles: set per enrollment token (`token create --role`).
pub const ROLES: [&str; 2] = ["server", "workstation"];

/// The whole ticket policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Rule for every check kind without its own.
    pub default_rule: Rule,
    /// Per check kind rules, e.g. `[tickets.rules.service]`.
    pub rules: BTreeMap<String, Rule>,
    /// Rule for agent liveness (overdue) unless `rules.agent` is given:
    /// confirmed for 10 s, so hosts of a site going silent together are
    /// grouped before any opens its own ticket.
    pub liveness_rule: Rule,
    /// Severity → priority for servers.
    pub server_priority: SeverityPriorities,
    /// Severity → priority for workstations.
    pub workstation_priority: SeverityPriorities,
    /// SLA per priority: `[tickets.sla.P1]`.
    pub sla: BTreeMap<String, Sla>,
    /// Tier a new ticket starts at (1 = L1).
    pub start_tier: u8,
    /// Highest tier escalation reaches (3 = L3).
    pub max_tier: u8,
    /// An agent is overdue after this many missed heartbeat intervals.
    pub overdue_after_intervals: u32,
    /// A session that ended without a goodbye (the agent crashed, the host
    /// rebooted, the link was reset) makes the agent overdue this long
    /// after, unless it reconnects (to any collector) meanwhile. Also how
    /// long a starting collector gives agents to reconnect before judging.
    pub reconnect_grace_secs: u32,
    /// Roles whose clean shutdown still opens a ticket (servers must stay up).
    pub shutdown_ticket_roles: Vec<String>,
    /// Site outage: at least this many of a site's hosts overdue at once…
    pub site_outage_min_hosts: u32,
    /// …and at least this share of the site's hosts → one site ticket
    /// listing them instead of one ticket per host.
    pub site_outage_min_percent: f64,
    /// Re-notification of unacknowledged tickets, minutes per tier
    /// (`[tickets.renotify_mins]`, keys `L1` `L2` `L3`): a ticket nobody
    /// acknowledged notifies its sinks again (`reminder`) this long after
    /// its last notification; 0 or absent = never. Acknowledging stops it.
    pub renotify_mins: BTreeMap<String, f64>,
    /// A sink's own ticket (a PSA ticket) closed on its side while the
    /// Forewarn ticket is still open for this long (the problem still
    /// fails) makes a `still_failing` event, which opens a new PSA ticket
    /// naming the closed one.
    pub still_failing_after_mins: f64,
    /// Per-tenant overrides, `[tickets.tenants.<tenant name>]` (see
    /// [`super::tenant`]): none by default.
    pub tenants: BTreeMap<String, super::tenant::TenantPolicy>,
}

/// Priorities per severity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityPriorities {
    pub crit: String,
    pub warn: String,
    pub unknown: String,
}

/// Time to acknowledge and to resolve, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub ack_mins: f64,
    pub resolve_mins: f64,
}

impl Default for Policy {
    fn default() -> Self {
        let sla = |ack_mins: f64, resolve_mins: f64| Sla {
            ack_mins,
            resolve_mins,
        };
        let prio = |c: &str, w: &str, u: &str| SeverityPriorities {
            crit: c.into(),
            warn: w.into(),
            unknown: u.into(),
        };
        Self {
            default_rule: Rule::default(),
            // The agent already decides cpu/memory/load on sustained windows;
            // the collector adds no second confirmation delay for them.
            rules: BTreeMap::new(),
            liveness_rule: Rule {
                confirm_secs: 10,
                ..Rule::default()
            },
            server_priority: prio("P1", "P2", "P3"),
            workstation_priority: prio("P2", "P3", "P4"),
            sla: BTreeMap::from([
                ("P1".to_string(), sla(15.0, 240.0)),
                ("P2".to_string(), sla(60.0, 480.0)),
                ("P3".to_string(), sla(240.0, 1440.0)),
                ("P4".to_string(), sla(1440.0, 4320.0)),
            ]),
            start_tier: 1,
            max_tier: 3,
            overdue_after_intervals: 3,
            reconnect_grace_secs: 15,
            shutdown_ticket_roles: vec!["server".to_string()],
            site_outage_min_hosts: 3,
            site_outage_min_percent: 50.0,
            renotify_mins: BTreeMap::from([
                ("L1".to_string(), 30.0),
                ("L2".to_string(), 30.0),
                ("L3".to_string(), 15.0),
            ]),
            still_failing_after_mins: 10.0,
            tenants: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// The rule for a check kind.
    pub fn rule(&self, check: &str) -> Rule {
        match self.rules.get(check) {
            Some(r) => *r,
            None if check == "agent" => self.liveness_rule,
            None => self.default_rule,
        }
    }

    /// `P1`…`P4` for a severity on a host of `role`.
    pub fn priority(&self, severity: CheckState, role: &str) -> String {
        let p = if role == "server" {
            &self.server_priority
        } else {
            &self.workstation_priority
        };
        match severity {
            CheckState::Crit => p.crit.clone(),
            CheckState::Warn | CheckState::Ok => p.warn.clone(),
            CheckState::Unknown => p.unknown.clone(),
        }
    }

    /// The re-notification interval of tier `tier` in ms, if it has one.
    pub fn renotify_ms(&self, tier: u8) -> Option<i64> {
        let mins = *self.renotify_mins.get(&format!("L{tier}"))?;
        (mins > 0.0).then_some((mins * 60_000.0) as i64)
    }

    /// SLA of a priority (the loosest one when unknown).
    pub fn sla(&self, priority: &str) -> Sla {
        self.sla.get(priority).copied().unwrap_or(Sla {
            ack_mins: 1440.0,
            resolve_mins: 4320.0,
        })
    }

    /// Problems, each naming its key (`tickets.…`).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (role, m) in [
            ("server_priority", &self.server_priority),
            ("workstation_priority", &self.workstation_priority),
        ] {
            for (sev, v) in [
                ("crit", &m.crit),
                ("warn", &m.warn),
                ("unknown", &m.unknown),
            ] {
                if !valid_priority(v) {
                    p.push(format!(
                        "tickets.{role}.{sev} ({v:?}) must be P1, P2, P3 or P4"
                    ));
                }
            }
        }
        for (prio, s) in &self.sla {
            if !valid_priority(prio) {
                p.push(format!(
                    "tickets.sla.{prio}: priority must be P1, P2, P3 or P4"
                ));
            }
            if !(s.ack_mins > 0.0 && s.resolve_mins > 0.0 && s.ack_mins.is_finite()) {
                p.push(format!(
                    "tickets.sla.{prio}: ack_mins and resolve_mins must be above 0"
                ));
            }
        }
        for (kind, r) in std::iter::once(("default_rule".to_string(), &self.default_rule))
            .chain(self.rules.iter().map(|(k, r)| (format!("rules.{k}"), r)))
        {
            p.extend(rule_problems(&format!("tickets.{kind}"), r));
        }
        if !(1..=3).contains(&self.start_tier)
            || self.max_tier < self.start_tier
            || self.max_tier > 3
        {
            p.push("tickets.start_tier and tickets.max_tier must satisfy 1 <= start_tier <= max_tier <= 3".into());
        }
        for (tier, mins) in &self.renotify_mins {
            if !matches!(tier.as_str(), "L1" | "L2" | "L3") {
                p.push(format!(
                    "tickets.renotify_mins.{tier}: tier must be L1, L2 or L3"
                ));
            }
            if !(mins.is_finite() && (*mins == 0.0 || *mins >= 1.0)) {
                p.push(format!(
                    "tickets.renotify_mins.{tier} ({mins}) must be 0 (never) or at least 1 minute"
                ));
            }
        }
        if !(self.still_failing_after_mins.is_finite() && self.still_failing_after_mins >= 0.0) {
            p.push("tickets.still_failing_after_mins must be 0 or more".into());
        }
        if self.site_outage_min_hosts < 2 {
            p.push("tickets.site_outage_min_hosts must be at least 2".into());
        }
        if !(0.0..=100.0).contains(&self.site_outage_min_percent) {
            p.push("tickets.site_outage_min_percent must be within 0..=100".into());
        }
        if self.overdue_after_intervals == 0 {
            p.push("tickets.overdue_after_intervals must be at least 1".into());
        }
        for r in &self.shutdown_ticket_roles {
            if !ROLES.contains(&r.as_str()) {
                p.push(format!(
                    "tickets.shutdown_ticket_roles: unknown role {r:?} (known: server, workstation)"
                ));
            }
        }
        p.extend(self.tenant_problems());
        p
    }
}

/// `P1`…`P4`.
pub(super) fn valid_priority(v: &str) -> bool {
    matches!(v, "P1" | "P2" | "P3" | "P4")
}

/// Problems of one rule, named under `key` (`tickets.rules.service`).
pub(super) fn rule_problems(key: &str, r: &Rule) -> Vec<String> {
    let mut p = Vec::new();
    if r.confirm_count == 0 {
        p.push(format!("{key}.confirm_count must be at least 1"));
    }
    if !(0.0..=100.0).contains(&r.flap_stop_percent)
        || !(0.0..=100.0).contains(&r.flap_start_percent)
        || r.flap_stop_percent > r.flap_start_percent
    {
        p.push(format!(
            "{key}: flap_stop_percent must be within 0..=flap_start_percent<=100"
        ));
    }
    p
}

/// Milliseconds in `mins` minutes.
pub fn mins_ms(mins: f64) -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    let ms = (mins * 60_000.0).round() as i64;
    ms.max(0)
}
