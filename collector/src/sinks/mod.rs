//! Ticket sinks: where ticket changes go besides the built-in queue.
//!
//! A sink kind (the webhook now; email, PagerDuty, Slack/Teams and PSA
//! connectors next) is a [`Sink`] plus one entry in [`KINDS`], the
//! hand-written registry that turns a `[[sinks.<kind>]]` table into it.
//!
//! Sinks never see the database. The store routes every ticket event worth
//! notifying ([`Status::for_event`]) to the matching sinks ([`SinkRoute`])
//! and writes one outbox row per (event, sink), with the [`Notification`]
//! frozen, in the same transaction as the ticket change
//! (`store/sqlite/outbox.rs`). [`outbox`] then delivers the rows: in order
//! per ticket, with retries and backoff, each attempt carrying the same
//! idempotency key, so a receiver sees every event exactly once.

mod enqueue;
pub mod outbox;
pub mod webhook;

pub use enqueue::enqueue;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::domain::{CheckState, Millis, Ticket, TicketState};

/// What a notification tells a receiver about its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Opened, reopened, severity changed or escalated: needs someone.
    Firing,
    /// Someone is on it.
    Acknowledged,
    /// Gone (by itself or by hand).
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }

    /// Which ticket timeline events notify, and as what. Flapping marks,
    /// SLA breaches (an escalation follows them), assignments and notes stay
    /// in the timeline: a receiver gets what changes who must act.
    pub fn for_event(kind: &str) -> Option<Self> {
        match kind {
            "opened" | "reopened" | "updated" | "escalated" => Some(Status::Firing),
            "acknowledged" => Some(Status::Acknowledged),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// One ticket event for the sinks, as it was when the event happened.
/// Stored as JSON in the outbox, so retries send the same facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub status: Status,
    /// The timeline event: `opened`, `reopened`, `updated`, `escalated`,
    /// `acknowledged`, `resolved`.
    pub event: String,
    /// The timeline event's id: increases with every event.
    pub event_id: i64,
    pub detail: String,
    /// `engine` or the operator who acted.
    pub actor: String,
    /// When the event happened.
    pub at: Millis,
    pub ticket_id: i64,
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub host: String,
    pub agent_id: String,
    pub check: String,
    pub item: String,
    pub severity: CheckState,
    pub priority: String,
    pub tier: u8,
    pub flapping: bool,
    pub state: TicketState,
    pub summary: String,
    pub opened_at: Millis,
    pub acknowledged_at: Option<Millis>,
    pub acknowledged_by: Option<String>,
    pub assignee: Option<String>,
    pub resolved_at: Option<Millis>,
    pub resolved_by: Option<String>,
}

/// The timeline event a notification is made of.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub detail: &'a str,
    pub actor: &'a str,
    pub at: Millis,
}

impl Notification {
    /// The notification of `event` on `ticket` (already changed by it).
    pub fn new(status: Status, ticket: &Ticket, tenant_name: &str, event: EventFacts<'_>) -> Self {
        Self {
            status,
            event: event.kind.to_string(),
            event_id: event.id,
            detail: event.detail.to_string(),
            actor: event.actor.to_string(),
            at: event.at,
            ticket_id: ticket.id,
            tenant_id: ticket.tenant_id.clone(),
            tenant_name: tenant_name.to_string(),
            site: ticket.site.clone(),
            host: ticket.host.clone(),
            agent_id: ticket.agent_id.clone(),
            check: ticket.check.clone(),
            item: ticket.item.clone(),
            severity: ticket.severity,
            priority: ticket.priority.clone(),
            tier: ticket.tier,
            flapping: ticket.flapping,
            state: ticket.state,
            summary: ticket.summary.clone(),
            opened_at: ticket.opened_at,
            acknowledged_at: ticket.acknowledged_at,
            acknowledged_by: ticket.acknowledged_by.clone(),
            assignee: ticket.assignee.clone(),
            resolved_at: ticket.resolved_at,
            resolved_by: ticket.resolved_by.clone(),
        }
    }

    /// Stable for a ticket episode: a relapse within the grace period
    /// reopens the same ticket, so it keeps the key; a later failure is a
    /// new ticket with a new key. Receivers dedupe/correlate on it.
    pub fn episode_key(&self) -> String {
        format!("forewarn-{}", self.ticket_id)
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth trying again (network error, timeout, 5xx, 408, 429);
    /// `after` is the receiver's own wish (`Retry-After`), if any.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (the receiver refused it): marked failed.
    Permanent(String),
}

/// A configured destination for ticket notifications.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Delivers one notification. `idempotency_key` is the same for every
    /// attempt of this (event, sink) delivery, so a receiver that saw an
    /// attempt whose answer got lost can drop the repeat.
    async fn deliver(&self, notification: &Notification, idempotency_key: &str) -> Outcome;

    /// The longest one delivery may take (its request timeout): outbox
    /// claims outlast it, so a claim never runs out under an attempt.
    fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(120)
    }
}

// === the registry ===

/// What building a sink needs beyond its own table.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// Base URL of this collector's HTTP API, for links (`http.public_url`).
    pub public_url: String,
}

/// A sink config that passed validation; building it may read files
/// (`secret_file`) and create clients.
pub trait SinkSpec: std::fmt::Debug + Send + Sync {
    fn build(&self, ctx: &SinkContext) -> Result<Arc<dyn Sink>>;
}

/// A kind's parser: its own keys (the common keys, [`SinkSettings`], are
/// already taken out) → a validated spec, or every problem, each naming its key.
pub type ParseFn = fn(toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>>;

/// One sink kind: its `[[sinks.<kind>]]` name and how to read its table.
pub struct SinkKind {
    pub kind: &'static str,
    pub parse: ParseFn,
}

/// Every sink kind this collector knows. A new kind adds one line here.
pub const KINDS: &[SinkKind] = &[SinkKind {
    kind: "webhook",
    parse: webhook::parse,
}];

fn known_kinds() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

/// Keys every sink kind has, read into [`SinkSettings`].
const COMMON_KEYS: [&str; 6] = [
    "name",
    "tenants",
    "tiers",
    "retry_initial_ms",
    "retry_max_ms",
    "give_up_after_secs",
];

/// The keys every `[[sinks.<kind>]]` table has: name, routing, retries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
                match ((k.parse)(own), settings) {
                    (Ok(spec), Some(settings)) => out.push(Parsed {
                        kind: k.kind,
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

    fn sinks(text: &str) -> SinksConfig {
        #[derive(Deserialize)]
        struct Wrap {
            sinks: SinksConfig,
        }
        toml::from_str::<Wrap>(text).expect("toml").sinks
    }

    #[test]
    fn events_map_to_statuses() {
        for k in ["opened", "reopened", "updated", "escalated"] {
            assert_eq!(Status::for_event(k), Some(Status::Firing), "{k}");
        }
        assert_eq!(
            Status::for_event("acknowledged"),
            Some(Status::Acknowledged)
        );
        assert_eq!(Status::for_event("resolved"), Some(Status::Resolved));
        for k in ["flapping", "sla_breach", "assigned", "note"] {
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
        let err = crate::Config::parse("[[sinks.email]]\nname = \"mail\"\n")
            .expect_err("unknown kind")
            .to_string();
        assert!(
            err.contains("sinks.email") && err.contains("webhook"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_lists_the_known_kinds() {
        let err = sinks("[[sinks.pagerduty]]\nname = \"pd\"\n").problems();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("sinks.pagerduty"), "{err:?}");
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
