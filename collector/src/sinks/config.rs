//! The `[sinks]` section and the registry of sink kinds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Sink, template};
use crate::Result;

// === the registry ===

/// A sink config that passed validation; building it reads its secrets
/// (files, environment) and creates clients.
pub trait SinkSpec: std::fmt::Debug + Send + Sync {
    fn build(
        &self,
        ctx: &super::SinkContext,
        templates: template::Templates,
    ) -> Result<Arc<dyn Sink>>;
}

/// A kind's parser: its own keys (the common keys, [`SinkSettings`], are
/// already taken out) → a validated spec, or every problem, each naming its key.
pub type ParseFn = fn(toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>>;

/// One sink kind: its `[[sinks.<kind>]]` name and how to read its table.
pub struct SinkKind {
    pub kind: &'static str,
    pub parse: ParseFn,
    /// The kind's templates (part name → minijinja source), which a sink's
    /// `templates` table overrides.
    pub templates: &'static [(&'static str, &'static str)],
}

/// Every sink kind this collector knows. A new kind adds one line here.
pub const KINDS: &[SinkKind] = &[
    SinkKind {
        kind: "webhook",
        parse: super::webhook::parse,
        templates: super::webhook::TEMPLATES,
    },
    SinkKind {
        kind: "email",
        parse: super::email::parse,
        templates: super::email::TEMPLATES,
    },
    SinkKind {
        kind: "pagerduty",
        parse: super::pagerduty::parse,
        templates: super::pagerduty::TEMPLATES,
    },
    SinkKind {
        kind: "slack",
        parse: super::slack::parse,
        templates: super::slack::TEMPLATES,
    },
    SinkKind {
        kind: "teams",
        parse: super::teams::parse,
        templates: super::teams::TEMPLATES,
    },
    SinkKind {
        kind: "connectwise",
        parse: super::psa::connectwise::parse,
        templates: super::psa::TEMPLATES,
    },
    SinkKind {
        kind: "autotask",
        parse: super::psa::autotask::PARSE,
        templates: super::psa::TEMPLATES,
    },
    SinkKind {
        kind: "halopsa",
        parse: super::psa::halopsa::PARSE,
        templates: super::psa::TEMPLATES,
    },
];

fn known_kinds() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

/// Keys every sink kind has, read into [`SinkSettings`].
const COMMON_KEYS: [&str; 7] = [
    "name",
    "templates",
    "tenants",
    "tiers",
    "retry_initial_ms",
    "retry_max_ms",
    "give_up_after_secs",
];

/// The keys every `[[sinks.<kind>]]` table has: name, routing, retries.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// Unique among all sinks; names the sink in logs, the outbox and the API.
    pub name: String,
    /// Tenant names or ids whose tickets go here; empty = every tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Support tiers (1 = L1 …) whose tickets go here; empty = every tier.
    /// An escalation reaches the new tier's sinks; a sink that was told
    /// about a ticket keeps hearing about it until it resolves.
    #[serde(default)]
    pub tiers: Vec<u8>,
    /// First retry delay; doubles per failed attempt (with jitter).
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// A delivery still failing this long after its event is marked failed.
    #[serde(default = "default_give_up_after_secs")]
    pub give_up_after_secs: u64,
    /// Overrides of the kind's templates, per sink and per tenant.
    #[serde(default)]
    pub templates: template::TemplateConfig,
}

fn default_retry_initial_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_give_up_after_secs() -> u64 {
    7 * 24 * 3600
}

impl SinkSettings {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(name_ok) {
            p.push(format!(
                "name {:?} must be 1..64 characters of A-Z a-z 0-9 - _ .",
                self.name
            ));
        }
        if self.tenants.iter().any(|t| t.trim().is_empty()) {
            p.push("tenants must not contain empty names".to_string());
        }
        if let Some(t) = self.tiers.iter().find(|t| !(1..=9).contains(*t)) {
            p.push(format!("tiers: {t} is not a tier (1 = L1 … 9)"));
        }
        if !(10..=3_600_000).contains(&self.retry_initial_ms) {
            p.push(format!(
                "retry_initial_ms ({}) must be between 10 and 3600000",
                self.retry_initial_ms
            ));
        }
        if self.retry_max_ms < self.retry_initial_ms || self.retry_max_ms > 86_400_000 {
            p.push(format!(
                "retry_max_ms ({}) must be between retry_initial_ms and 86400000",
                self.retry_max_ms
            ));
        }
        if !(1..=90 * 24 * 3600).contains(&self.give_up_after_secs) {
            p.push(format!(
                "give_up_after_secs ({}) must be between 1 and 7776000 (90 days)",
                self.give_up_after_secs
            ));
        }
        p
    }

    /// The route the store files events by.
    pub fn route(&self, kind: &str) -> SinkRoute {
        SinkRoute {
            name: self.name.clone(),
            kind: kind.to_string(),
            tenants: self.tenants.clone(),
            tiers: self.tiers.clone(),
        }
    }
}

/// Which tickets a sink hears about: the routing half of its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkRoute {
    pub name: String,
    pub kind: String,
    /// Tenant names or ids; empty = all.
    pub tenants: Vec<String>,
    /// Tiers; empty = all.
    pub tiers: Vec<u8>,
}

impl SinkRoute {
    /// Whether a ticket of this tenant at this tier goes to the sink.
    pub fn matches(&self, tenant_id: &str, tenant_name: &str, tier: u8) -> bool {
        (self.tenants.is_empty()
            || self
                .tenants
                .iter()
                .any(|t| t == tenant_id || t == tenant_name))
            && (self.tiers.is_empty() || self.tiers.contains(&tier))
    }
}

/// One `[[sinks.<kind>]]` entry after validation.
#[derive(Debug)]
pub struct Parsed {
    pub kind: &'static str,
    /// The kind's default templates.
    pub kind_defaults: &'static [(&'static str, &'static str)],
    pub settings: SinkSettings,
    pub spec: Box<dyn SinkSpec>,
}

/// The `[sinks]` section: `[[sinks.<kind>]]` arrays of tables, read through
/// the registry so that each kind owns its keys.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SinksConfig(BTreeMap<String, Vec<toml::Table>>);

impl std::fmt::Debug for SinksConfig {
    /// Kinds and names only: the tables may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (kind, tables) in &self.0 {
            let names: Vec<_> = tables
                .iter()
                .map(|t| t.get("name").and_then(toml::Value::as_str).unwrap_or("?"))
                .collect();
            m.entry(kind, &names);
        }
        m.finish()
    }
}

impl SinksConfig {
    /// The configured sinks' routes (what a ticket change files for whom);
    /// the error lists every problem, as [`SinksConfig::parse`] does.
    pub fn routes(&self) -> crate::Result<Vec<SinkRoute>> {
        let parsed = self
            .parse()
            .map_err(|problems| crate::Error::Config(problems.join("; ")))?;
        Ok(parsed.iter().map(|p| p.settings.route(p.kind)).collect())
    }

    /// Validates every sink; the error lists every problem, each naming its
    /// key (`sinks.webhook[0].url …`).
    pub fn parse(&self) -> std::result::Result<Vec<Parsed>, Vec<String>> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        for (kind, tables) in &self.0 {
            let Some(k) = KINDS.iter().find(|k| k.kind == kind) else {
                problems.push(format!(
                    "sinks.{kind}: unknown sink kind (known kinds: {})",
                    known_kinds()
                ));
                continue;
            };
            for (i, table) in tables.iter().enumerate() {
                let at = format!("sinks.{kind}[{i}]");
                let (common, own): (toml::Table, toml::Table) = table
                    .clone()
                    .into_iter()
                    .partition(|(key, _)| COMMON_KEYS.contains(&key.as_str()));
                let settings = match common.try_into::<SinkSettings>() {
                    Ok(s) => {
                        problems.extend(s.problems().into_iter().map(|p| format!("{at}.{p}")));
                        if !names.insert(s.name.clone()) {
                            problems.push(format!("{at}.name {:?} is used twice", s.name));
                        }
                        Some(s)
                    }
                    Err(e) => {
                        problems.push(format!("{at}: {}", e.message()));
                        None
                    }
                };
                if let Some(s) = &settings
                    && let Err(e) = template::Templates::new(k.templates, &s.templates)
                {
                    problems.push(format!("{at}.{e}"));
                }
                match ((k.parse)(own), settings) {
                    (Ok(spec), Some(settings)) => out.push(Parsed {
                        kind: k.kind,
                        kind_defaults: k.templates,
                        settings,
                        spec,
                    }),
                    (Ok(_), None) => {}
                    (Err(ps), _) => problems.extend(ps.into_iter().map(|p| format!("{at}.{p}"))),
                }
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Every problem, for `Config::validate`.
    pub fn problems(&self) -> Vec<String> {
        self.parse().err().unwrap_or_default()
    }

    /// Whether any sink is configured.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Status;

    fn sinks(text: &str) -> SinksConfig {
        #[derive(Deserialize)]
        struct Wrap {
            sinks: SinksConfig,
        }
        toml::from_str::<Wrap>(text).expect("toml").sinks
    }

    #[test]
    fn events_map_to_statuses() {
        for k in [
            "opened",
            "reopened",
            "updated",
            "escalated",
            "reminder",
            "still_failing",
        ] {
            assert_eq!(Status::for_event(k), Some(Status::Firing), "{k}");
        }
        assert_eq!(
            Status::for_event("acknowledged"),
            Some(Status::Acknowledged)
        );
        assert_eq!(Status::for_event("resolved"), Some(Status::Resolved));
        for k in [
            "flapping",
            "sla_breach",
            "assigned",
            "note",
            "closed_remotely",
        ] {
            assert_eq!(Status::for_event(k), None, "{k}");
        }
    }

    #[test]
    fn routes_match_tenant_by_name_or_id_and_tier() {
        let r = SinkRoute {
            name: "l2".into(),
            kind: "webhook".into(),
            tenants: vec!["acme".into(), "id-2".into()],
            tiers: vec![2, 3],
        };
        assert!(r.matches("id-1", "acme", 2));
        assert!(r.matches("id-2", "globex", 3));
        assert!(!r.matches("id-1", "acme", 1), "L1 is not this sink's tier");
        assert!(!r.matches("id-3", "initech", 2), "other tenant");
        let all = SinkRoute {
            tenants: vec![],
            tiers: vec![],
            ..r
        };
        assert!(all.matches("any", "any", 7));
    }

    #[test]
    fn a_valid_webhook_parses_with_defaults() {
        let parsed = sinks(
            "[[sinks.webhook]]\nname = \"psa\"\nurl = \"https://psa.example/hook\"\nsecret = \"k\"\n",
        )
        .parse()
        .expect("valid");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].kind, "webhook");
        let s = &parsed[0].settings;
        assert_eq!(
            (s.retry_initial_ms, s.retry_max_ms, s.give_up_after_secs),
            (1000, 300_000, 604_800)
        );
        assert!(s.tenants.is_empty() && s.tiers.is_empty());
    }

    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../../deploy/collector.example.toml");
        let start = text
            .find("# [[sinks.webhook]]")
            .expect("the example documents the webhook");
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with("# "))
            .map(|l| &l[2..])
            .filter(|l| !l.starts_with("secret = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg = crate::Config::parse(&block).expect("uncommented example parses");
        let parsed = cfg.sinks.parse().expect("valid");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].settings.name, "psa");
        assert_eq!(parsed[0].settings.retry_max_ms, default_retry_max_ms());
    }

    #[test]
    fn a_config_with_an_unknown_kind_does_not_load() {
        let err = crate::Config::parse("[[sinks.fax]]\nname = \"fax\"\n")
            .expect_err("unknown kind")
            .to_string();
        assert!(
            err.contains("sinks.fax") && err.contains("webhook"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_lists_the_known_kinds() {
        let err = sinks("[[sinks.pigeon]]\nname = \"coo\"\n").problems();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("sinks.pigeon"), "{err:?}");
        assert!(err[0].contains("known kinds: webhook"), "{err:?}");
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = sinks(
            "[[sinks.webhook]]\nname = \"a b\"\nurl = \"ftp://x\"\nsecret = \"k\"\ntiers = [0]\n\
             retry_initial_ms = 5\n\
             [[sinks.webhook]]\nname = \"dup\"\nurl = \"http://x\"\nsecret = \"k\"\nbogus = 1\n\
             [[sinks.webhook]]\nname = \"dup\"\nurl = \"http://x\"\n",
        )
        .problems()
        .join("\n");
        for needle in [
            "sinks.webhook[0].name",
            "sinks.webhook[0].url",
            "sinks.webhook[0].tiers",
            "sinks.webhook[0].retry_initial_ms",
            "sinks.webhook[1].",
            "bogus",
            "sinks.webhook[2].name \"dup\" is used twice",
            "sinks.webhook[2].secret",
        ] {
            assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        }
    }
}
