//! Per-tenant policy overrides: `[tickets.tenants.<tenant name>]`.
//!
//! An MSP client may have its own priorities, SLA targets and rules. Each
//! override table names only what differs; everything else falls back to
//! the global `[tickets]` value, key by key (`sla.P1.ack_mins` alone keeps
//! the global `sla.P1.resolve_mins`). A tenant may also turn on grouping of
//! the same check failing on many of its hosts at once
//! (`group_same_check`, off by default).
//!
//! [`Policy::for_tenant`] is the tenant's effective policy: the engine, the
//! sweep's escalations and the site tickets decide with it. Tenants are
//! named, not keyed by id, so the config reads like the CLI (`--tenant
//! acme`) and a tenant created after start is covered at once.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::engine::Rule;
use super::policy::{Policy, SeverityPriorities, Sla, rule_problems, valid_priority};

/// One tenant's overrides; unset keys fall back to the global policy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantPolicy {
    /// Severity → priority for servers, e.g. `{ warn = "P1" }`.
    pub server_priority: PriorityOverride,
    /// Severity → priority for workstations.
    pub workstation_priority: PriorityOverride,
    /// SLA per priority: `[tickets.tenants.<name>.sla.P1] ack_mins = 5`.
    pub sla: BTreeMap<String, SlaOverride>,
    /// Replaces the global `default_rule` (unset fields take the built-in
    /// rule defaults, as in `[tickets.default_rule]`).
    pub default_rule: Option<Rule>,
    /// Per check kind rules; each replaces the global rule of that kind.
    pub rules: BTreeMap<String, Rule>,
    /// One parent ticket when the same check fails on many hosts at once.
    pub group_same_check: Option<GroupSameCheck>,
}

/// Any of a role's priorities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityOverride {
    pub crit: Option<String>,
    pub warn: Option<String>,
    pub unknown: Option<String>,
}

/// Either SLA target of a priority, in minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaOverride {
    pub ack_mins: Option<f64>,
    pub resolve_mins: Option<f64>,
}

/// When at least `min_hosts` of the tenant's hosts open a ticket for the
/// same check kind and item within `window_secs`, one `kind: group` parent
/// ticket lists them and the hosts' tickets link to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSameCheck {
    pub min_hosts: u32,
    pub window_secs: u64,
}

impl Default for GroupSameCheck {
    fn default() -> Self {
        Self {
            min_hosts: 5,
            window_secs: 120,
        }
    }
}

// === impl PriorityOverride ===

impl PriorityOverride {
    fn apply(&self, to: &mut SeverityPriorities) {
        for (over, base) in [
            (&self.crit, &mut to.crit),
            (&self.warn, &mut to.warn),
            (&self.unknown, &mut to.unknown),
        ] {
            if let Some(v) = over {
                base.clone_from(v);
            }
        }
    }
}

// === impl Policy ===

impl Policy {
    /// The effective policy of the tenant named `tenant`: the global one
    /// (borrowed) when it has no override table. The result carries no
    /// overrides of its own, so resolving it again is free.
    pub fn for_tenant(&self, tenant: &str) -> Cow<'_, Policy> {
        let Some(o) = self.tenants.get(tenant) else {
            return Cow::Borrowed(self);
        };
        // Field by field, so the (possibly long) tenant table is not
        // copied and a new policy field cannot be forgotten here.
        let Policy {
            default_rule,
            rules,
            liveness_rule,
            server_priority,
            workstation_priority,
            sla,
            start_tier,
            max_tier,
            overdue_after_intervals,
            reconnect_grace_secs,
            shutdown_ticket_roles,
            site_outage_min_hosts,
            site_outage_min_percent,
            renotify_mins,
            still_failing_after_mins,
            tenants: _,
        } = self;
        let mut p = Policy {
            default_rule: o.default_rule.unwrap_or(*default_rule),
            rules: rules.clone(),
            liveness_rule: *liveness_rule,
            server_priority: server_priority.clone(),
            workstation_priority: workstation_priority.clone(),
            sla: sla.clone(),
            start_tier: *start_tier,
            max_tier: *max_tier,
            overdue_after_intervals: *overdue_after_intervals,
            reconnect_grace_secs: *reconnect_grace_secs,
            shutdown_ticket_roles: shutdown_ticket_roles.clone(),
            site_outage_min_hosts: *site_outage_min_hosts,
            site_outage_min_percent: *site_outage_min_percent,
            renotify_mins: renotify_mins.clone(),
            still_failing_after_mins: *still_failing_after_mins,
            tenants: BTreeMap::new(),
        };
        p.rules.extend(o.rules.iter().map(|(k, r)| (k.clone(), *r)));
        o.server_priority.apply(&mut p.server_priority);
        o.workstation_priority.apply(&mut p.workstation_priority);
        for (prio, s) in &o.sla {
            let base = p.sla(prio);
            p.sla.insert(
                prio.clone(),
                Sla {
                    ack_mins: s.ack_mins.unwrap_or(base.ack_mins),
                    resolve_mins: s.resolve_mins.unwrap_or(base.resolve_mins),
                },
            );
        }
        Cow::Owned(p)
    }

    /// Tenants whose same-check grouping is on, with its settings.
    pub fn grouping_tenants(&self) -> impl Iterator<Item = (&str, GroupSameCheck)> {
        self.tenants
            .iter()
            .filter_map(|(name, o)| o.group_same_check.map(|g| (name.as_str(), g)))
    }

    /// Override tables naming none of `known` tenant names (likely typos:
    /// they change nothing until such a tenant exists).
    pub fn unknown_tenants<'a>(&'a self, known: &[String]) -> Vec<&'a str> {
        self.tenants
            .keys()
            .filter(|name| !known.iter().any(|k| k == *name))
            .map(String::as_str)
            .collect()
    }

    /// Problems of the override tables, each naming its key
    /// (`tickets.tenants.acme.sla.P1.ack_mins …`).
    pub(super) fn tenant_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (name, o) in &self.tenants {
            let key = format!("tickets.tenants.{name}");
            if name.trim().is_empty() {
                p.push(format!("{key}: tenant name must not be empty"));
            }
            for (role, m) in [
                ("server_priority", &o.server_priority),
                ("workstation_priority", &o.workstation_priority),
            ] {
                for (sev, v) in [
                    ("crit", &m.crit),
                    ("warn", &m.warn),
                    ("unknown", &m.unknown),
                ] {
                    if let Some(v) = v.as_deref().filter(|v| !valid_priority(v)) {
                        p.push(format!(
                            "{key}.{role}.{sev} ({v:?}) must be P1, P2, P3 or P4"
                        ));
                    }
                }
            }
            for (prio, s) in &o.sla {
                if !valid_priority(prio) {
                    p.push(format!(
                        "{key}.sla.{prio}: priority must be P1, P2, P3 or P4"
                    ));
                }
                for (field, v) in [("ack_mins", s.ack_mins), ("resolve_mins", s.resolve_mins)] {
                    if let Some(v) = v.filter(|v| !(*v > 0.0 && v.is_finite())) {
                        p.push(format!("{key}.sla.{prio}.{field} ({v}) must be above 0"));
                    }
                }
            }
            if let Some(r) = &o.default_rule {
                p.extend(rule_problems(&format!("{key}.default_rule"), r));
            }
            for (kind, r) in &o.rules {
                p.extend(rule_problems(&format!("{key}.rules.{kind}"), r));
            }
            if let Some(g) = &o.group_same_check {
                if g.min_hosts < 2 {
                    p.push(format!(
                        "{key}.group_same_check.min_hosts ({}) must be at least 2",
                        g.min_hosts
                    ));
                }
                if !(1..=86_400).contains(&g.window_secs) {
                    p.push(format!(
                        "{key}.group_same_check.window_secs ({}) must be between 1 and 86400",
                        g.window_secs
                    ));
                }
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CheckState;

    fn parse(text: &str) -> Policy {
        toml::from_str(text).expect("policy parses")
    }

    #[test]
    fn a_tenant_overrides_key_by_key_and_others_keep_the_global_policy() {
        let p = parse(
            r#"
            [sla.P1]
            ack_mins = 15.0
            resolve_mins = 240.0
            [rules.backup]
            confirm_count = 2
            [tenants.acme]
            workstation_priority = { crit = "P1" }
            sla.P1.ack_mins = 5
            rules.service = { confirm_secs = 60 }
            "#,
        );
        let acme = p.for_tenant("acme");
        assert_eq!(acme.priority(CheckState::Crit, "workstation"), "P1");
        assert_eq!(acme.priority(CheckState::Warn, "workstation"), "P3");
        assert_eq!(acme.priority(CheckState::Crit, "server"), "P1");
        assert_eq!(
            acme.sla("P1"),
            Sla {
                ack_mins: 5.0,
                resolve_mins: 240.0
            }
        );
        assert_eq!(acme.sla("P2"), p.sla("P2"));
        assert_eq!(acme.rule("service").confirm_secs, 60);
        assert_eq!(
            acme.rule("backup").confirm_count,
            2,
            "global kind rule kept"
        );
        assert!(acme.tenants.is_empty());
        assert!(matches!(acme.for_tenant("acme"), Cow::Borrowed(_)));

        let other = p.for_tenant("globex");
        assert!(matches!(other, Cow::Borrowed(_)));
        assert_eq!(other.priority(CheckState::Crit, "workstation"), "P2");
        assert_eq!(other.sla("P1").ack_mins, 15.0);
        assert!(p.grouping_tenants().next().is_none());
    }

    #[test]
    fn every_bad_override_key_is_named() {
        let p = parse(
            r#"
            [tenants.acme]
            server_priority = { warn = "P7" }
            sla.P1.ack_mins = 0
            sla.P9 = { resolve_mins = 10 }
            default_rule = { confirm_count = 0 }
            group_same_check = { min_hosts = 1, window_secs = 0 }
            "#,
        );
        let msg = p.problems().join("; ");
        for key in [
            "tickets.tenants.acme.server_priority.warn",
            "tickets.tenants.acme.sla.P1.ack_mins",
            "tickets.tenants.acme.sla.P9",
            "tickets.tenants.acme.default_rule.confirm_count",
            "tickets.tenants.acme.group_same_check.min_hosts",
            "tickets.tenants.acme.group_same_check.window_secs",
        ] {
            assert!(msg.contains(key), "{key} not named: {msg}");
        }
    }

    #[test]
    fn unknown_override_keys_are_refused() {
        let err = toml::from_str::<Policy>("[tenants.acme]\nstart_tier = 2\n")
            .expect_err("not overridable")
            .to_string();
        assert!(err.contains("start_tier"), "{err}");
        let err = toml::from_str::<Policy>("[tenants.acme.group_same_check]\nhosts = 2\n")
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("hosts"), "{err}");
    }

    #[test]
    fn grouping_defaults_and_unknown_tenants() {
        let p = parse("[tenants.acme]\ngroup_same_check = {}\n[tenants.typo]\n");
        assert_eq!(
            p.grouping_tenants().collect::<Vec<_>>(),
            [("acme", GroupSameCheck::default())]
        );
        assert_eq!(p.unknown_tenants(&["acme".into(), "x".into()]), ["typo"]);
        assert!(p.problems().is_empty(), "{:?}", p.problems());
    }
}
