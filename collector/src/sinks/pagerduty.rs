//! The PagerDuty sink (`[[sinks.pagerduty]]`): Events API v2.
//!
//! Every event of a ticket episode carries the same `dedup_key` (the
//! episode key, `forewarn-<ticket id>`), so PagerDuty folds them into one
//! alert: firing → `trigger` (a relapse or an escalation re-triggers the
//! same alert, or opens a new incident if it was resolved), acknowledged →
//! `acknowledge`, resolved → `resolve`.
//!
//! PagerDuty answers 202 (`{"status":"success",…}`); 400 (an invalid event)
//! parks; 429 (throttled, sent without `Retry-After`) and 5xx retry with
//! the outbox's backoff ([`super::http`]). The Events API has no call
//! without side effects, so the health check only checks the routing key's
//! shape.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::secret::{Secret, SecretRef};
use super::template::{DEFAULT_TITLE, Templates};
use super::{CheckResult, Delivery, Notification, Outcome, Sink, SinkContext, SinkSpec, Status};
use super::{chat, http};
use crate::domain::rfc3339;
use crate::{Error, Result};

/// The US service region's endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's limit on `payload.summary`.
pub const SUMMARY_MAX: usize = 1024;
/// Integration (routing) keys are 32 characters.
pub const ROUTING_KEY_LEN: usize = 32;
/// The severities PagerDuty accepts.
pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];
/// The one template part: `payload.summary`.
pub const TEMPLATES: &[(&str, &str)] = &[("summary", DEFAULT_TITLE)];

/// `[[sinks.pagerduty]]` keys besides the common ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PagerDutyConfig {
    /// The Events API v2 integration key of the service.
    routing_key: SecretRef,
    #[serde(default = "default_url")]
    url: String,
    /// Forewarn priority → PagerDuty severity (merged over the default).
    #[serde(default)]
    severity: BTreeMap<String, String>,
    #[serde(default = "chat::default_timeout_ms")]
    timeout_ms: u64,
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

/// P1 critical, P2 error, P3 warning, P4 info.
fn default_severity() -> BTreeMap<String, String> {
    ["P1", "P2", "P3", "P4"]
        .into_iter()
        .zip(SEVERITIES)
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

/// A validated PagerDuty config (its `Debug` never shows the key).
#[derive(Debug)]
struct PagerDutySpec {
    routing_key: SecretRef,
    url: reqwest::Url,
    severity: BTreeMap<String, String>,
    timeout: Duration,
}

/// The registry's parser for `[[sinks.pagerduty]]`.
pub fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    let cfg: PagerDutyConfig = table
        .try_into()
        .map_err(|e| vec![e.message().to_string()])?;
    let mut problems = cfg.routing_key.problems("routing_key");
    if let SecretRef::Inline(k) = &cfg.routing_key
        && let Err(e) = key_shape(k)
    {
        problems.push(format!("routing_key {e}"));
    }
    let url = match reqwest::Url::parse(&cfg.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(u),
        _ => {
            problems.push(format!(
                "url {:?} must be an http or https URL (default {DEFAULT_URL})",
                cfg.url
            ));
            None
        }
    };
    let mut severity = default_severity();
    for (prio, sev) in cfg.severity {
        if !matches!(prio.as_str(), "P1" | "P2" | "P3" | "P4") {
            problems.push(format!(
                "severity.{prio}: priority must be P1, P2, P3 or P4"
            ));
        } else if !SEVERITIES.contains(&sev.as_str()) {
            problems.push(format!(
                "severity.{prio} ({sev:?}) must be one of {}",
                SEVERITIES.join(", ")
            ));
        }
        severity.insert(prio, sev);
    }
    problems.extend(chat::timeout_problem(cfg.timeout_ms));
    match url {
        Some(url) if problems.is_empty() => Ok(Box::new(PagerDutySpec {
            routing_key: cfg.routing_key,
            url,
            severity,
            timeout: chat::timeout(cfg.timeout_ms),
        })),
        _ => Err(problems),
    }
}

/// Whether `key` looks like an integration key; the problem never quotes it.
fn key_shape(key: &str) -> std::result::Result<(), String> {
    let n = key.chars().count();
    if n != ROUTING_KEY_LEN {
        return Err(format!(
            "must be the {ROUTING_KEY_LEN}-character integration key of an Events API v2 \
             integration (this one has {n} characters)"
        ));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("must be letters and digits only".to_string());
    }
    Ok(())
}

impl SinkSpec for PagerDutySpec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let key = self.routing_key.read("sinks.pagerduty routing_key")?;
        key_shape(key.expose())
            .map_err(|e| Error::Config(format!("sinks.pagerduty routing_key {e}")))?;
        Ok(Arc::new(PagerDuty {
            routing_key: key,
            url: self.url.clone(),
            severity: self.severity.clone(),
            public_url: ctx.public_url.trim_end_matches('/').to_string(),
            client: http::client(self.timeout)?,
            timeout: self.timeout,
            templates,
        }))
    }
}

/// A PagerDuty service's Events API v2 integration.
pub struct PagerDuty {
    routing_key: Secret,
    url: reqwest::Url,
    severity: BTreeMap<String, String>,
    public_url: String,
    client: reqwest::Client,
    timeout: Duration,
    templates: Templates,
}

/// PagerDuty's 202 answer.
#[derive(Deserialize)]
struct Accepted {
    status: String,
}

impl PagerDuty {
    /// The event for `n`: a full `trigger` while firing, a bare
    /// `acknowledge`/`resolve` (PagerDuty ignores a payload on those).
    fn event(&self, n: &Notification) -> std::result::Result<Value, String> {
        let key = n.episode_key();
        let action = match n.status {
            Status::Firing => "trigger",
            Status::Acknowledged => "acknowledge",
            Status::Resolved => "resolve",
        };
        if n.status != Status::Firing {
            return Ok(json!({
                "routing_key": self.routing_key.expose(),
                "event_action": action,
                "dedup_key": key,
            }));
        }
        let summary = self.templates.render("summary", n, &self.public_url)?;
        let link = chat::ticket_link(&self.public_url, n.ticket_id);
        let details: serde_json::Map<String, Value> = chat::facts(n, &link)
            .into_iter()
            .map(|f| (f.key.to_string(), Value::String(f.value)))
            .collect();
        let severity = self.severity.get(&n.priority).map_or_else(
            // A priority outside P1..P4 (none today): by the check's state.
            || match n.severity.as_str() {
                "crit" => "critical",
                "warn" => "warning",
                _ => "error",
            },
            String::as_str,
        );
        let group = if n.site.is_empty() {
            &n.tenant_name
        } else {
            &n.site
        };
        Ok(json!({
            "routing_key": self.routing_key.expose(),
            "event_action": action,
            "dedup_key": key,
            "payload": {
                "summary": chat::truncate(summary.trim(), SUMMARY_MAX),
                "source": n.host,
                "severity": severity,
                "timestamp": rfc3339::format(n.at),
                "component": n.check,
                "group": group,
                "class": n.check,
                "custom_details": details,
            },
            "links": [{"href": link, "text": format!("Forewarn ticket #{}", n.ticket_id)}],
            "client": "Forewarn",
            "client_url": self.public_url,
        }))
    }
}

#[async_trait]
impl Sink for PagerDuty {
    fn request_timeout(&self) -> Duration {
        self.timeout
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        let event = match self.event(d.notification) {
            Ok(e) => e,
            Err(e) => return Outcome::Park(e),
        };
        let req = self.client.post(self.url.clone()).json(&event);
        match http::send_json::<Accepted>(req).await {
            Ok(a) if a.status == "success" => Outcome::Delivered,
            Ok(a) => Outcome::Park(format!(
                "PagerDuty answered status {:?} instead of \"success\"",
                a.status
            )),
            Err(f) => f.outcome(),
        }
    }

    async fn health(&self) -> CheckResult {
        key_shape(self.routing_key.expose()).map_err(|e| format!("routing_key {e}"))?;
        Ok(format!(
            "routing key has the shape of an integration key ({ROUTING_KEY_LEN} characters); \
             the Events API v2 has no call without side effects, so PagerDuty itself checks \
             the key at the first event (a wrong key parks it with PagerDuty's reason)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::notification::tests::sample;
    use crate::sinks::template::TemplateConfig;

    const KEY: &str = "0123456789abcdef0123456789ABCDEF";

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    fn sink(extra: &str) -> Arc<dyn Sink> {
        let spec = parse(table(&format!("routing_key = \"{KEY}\"\n{extra}"))).expect("valid");
        let t = Templates::new(TEMPLATES, &TemplateConfig::default()).expect("templates");
        let ctx = SinkContext {
            public_url: "https://fw.example/".into(),
        };
        spec.build(&ctx, t).expect("build")
    }

    fn pd() -> PagerDuty {
        PagerDuty {
            routing_key: SecretRef::Inline(KEY.into()).read("k").expect("key"),
            url: DEFAULT_URL.parse().expect("url"),
            severity: default_severity(),
            public_url: "https://fw.example".into(),
            client: http::client(Duration::from_secs(1)).expect("client"),
            timeout: Duration::from_secs(1),
            templates: Templates::new(TEMPLATES, &TemplateConfig::default()).expect("t"),
        }
    }

    #[test]
    fn a_trigger_carries_the_facts_under_the_episode_key() {
        let e = pd().event(&sample()).expect("event");
        assert_eq!(e["routing_key"], KEY);
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], "forewarn-42");
        let p = &e["payload"];
        assert_eq!(p["summary"], "CRIT [P1 L1] db1: disk /data");
        assert_eq!(p["source"], "db1");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(p["component"], "disk");
        assert_eq!(p["group"], "hq");
        assert_eq!(p["custom_details"]["tenant"], "acme");
        assert_eq!(p["custom_details"]["item"], "/data");
        assert_eq!(
            p["custom_details"]["ticket"],
            "https://fw.example/tickets/42"
        );
        assert_eq!(e["links"][0]["href"], "https://fw.example/tickets/42");
        assert_eq!(e["client"], "Forewarn");
    }

    #[test]
    fn acknowledge_and_resolve_reuse_the_key_without_a_payload() {
        let sink = pd();
        for (status, action) in [
            (Status::Acknowledged, "acknowledge"),
            (Status::Resolved, "resolve"),
        ] {
            let mut n = sample();
            n.status = status;
            let e = sink.event(&n).expect("event");
            assert_eq!(e["event_action"], action);
            assert_eq!(e["dedup_key"], "forewarn-42");
            assert!(e.get("payload").is_none(), "{e}");
        }
    }

    #[test]
    fn severity_follows_the_priority_map_and_summary_is_cut_to_1024() {
        let mut sink = pd();
        sink.severity.insert("P3".into(), "critical".into());
        sink.templates = Templates::new(
            TEMPLATES,
            &toml::from_str("summary = \"{% for i in range(300) %}abcde{% endfor %}\"")
                .expect("toml"),
        )
        .expect("t");
        let mut n = sample();
        n.priority = "P3".into();
        let e = sink.event(&n).expect("event");
        assert_eq!(e["payload"]["severity"], "critical");
        let summary = e["payload"]["summary"].as_str().expect("summary");
        assert_eq!(summary.chars().count(), SUMMARY_MAX);
    }

    #[test]
    fn parse_names_every_bad_key_and_never_shows_the_key() {
        let err = parse(table(
            "routing_key = \"short-s3cr3t\"\nurl = \"ftp://x\"\ntimeout_ms = 5\n\
             [severity]\nP1 = \"fatal\"\nP9 = \"info\"\n",
        ))
        .expect_err("invalid")
        .join("\n");
        for needle in [
            "routing_key",
            "url",
            "timeout_ms",
            "severity.P1",
            "severity.P9",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        assert!(!err.contains("s3cr3t"), "{err}");
        let err = parse(table("url = \"https://x\""))
            .expect_err("no key")
            .join("");
        assert!(err.contains("routing_key"), "{err}");
        // From the environment, the shape is checked when the sink is built.
        let spec = parse(table("routing_key = { env = \"FOREWARN_TEST_PD_UNSET\" }"))
            .expect("valid at parse");
        let t = Templates::new(TEMPLATES, &TemplateConfig::default()).expect("t");
        let ctx = SinkContext {
            public_url: "x".into(),
        };
        let err = spec.build(&ctx, t).err().expect("unset").to_string();
        assert!(err.contains("routing_key"), "{err}");
    }

    #[tokio::test]
    async fn health_checks_the_key_shape_and_says_it_cannot_do_more() {
        let ok = sink("url = \"https://events.eu.pagerduty.com/v2/enqueue\"")
            .health()
            .await
            .expect("healthy");
        assert!(ok.contains("no call without side effects"), "{ok}");
        let debug = format!("{:?}", parse(table(&format!("routing_key = \"{KEY}\""))));
        assert!(!debug.contains(KEY), "{debug}");
    }
}
