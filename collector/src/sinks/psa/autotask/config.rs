//! `[[sinks.autotask]]`: its keys, their defaults and checks, and the
//! build that reads the secrets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};

use super::super::{PsaSink, fields};
use super::{Autotask, ZONE_LOOKUP_URL, Zone};
use crate::Result;
use crate::sinks::http;
use crate::sinks::secret::{Secret, SecretRef};
use crate::sinks::template::Templates;
use crate::sinks::{Sink, SinkContext, SinkSpec};

/// A picklist value, by id or by label.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(super) enum Pick {
    Id(i64),
    Label(String),
}

impl std::fmt::Display for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pick::Id(i) => write!(f, "{i}"),
            Pick::Label(l) => write!(f, "{l:?}"),
        }
    }
}

fn label(s: &str) -> Pick {
    Pick::Label(s.to_string())
}

/// `[[sinks.autotask]]` keys besides the common ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutotaskConfig {
    /// The API user's user name (an email address).
    username: String,
    secret: SecretRef,
    /// The `ApiIntegrationCode` of the integration (a tracking identifier).
    integration_code: SecretRef,
    /// The zone's API base (`https://webservices5.autotask.net/atservicesrest`);
    /// looked up when absent.
    zone_url: Option<String>,
    #[serde(default = "default_zone_lookup_url")]
    zone_lookup_url: String,
    queue: Pick,
    #[serde(default)]
    companies: BTreeMap<String, i64>,
    #[serde(default)]
    priorities: BTreeMap<String, Pick>,
    #[serde(default = "default_closed_status")]
    closed_status: Pick,
    #[serde(default = "default_new_status")]
    new_status: Pick,
    #[serde(default = "default_ticket_type")]
    ticket_type: Pick,
    #[serde(default = "default_source")]
    source: Pick,
    #[serde(default)]
    due_hours: BTreeMap<String, f64>,
    #[serde(default = "one")]
    note_type: i64,
    #[serde(default = "one")]
    note_publish: i64,
    #[serde(default = "default_poll_secs")]
    poll_secs: f64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_zone_lookup_url() -> String {
    ZONE_LOOKUP_URL.to_string()
}
fn default_closed_status() -> Pick {
    label("Complete")
}
fn default_new_status() -> Pick {
    label("New")
}
fn default_ticket_type() -> Pick {
    label("Alert")
}
fn default_source() -> Pick {
    label("Monitoring Alert")
}
fn one() -> i64 {
    1
}
fn default_poll_secs() -> f64 {
    60.0
}
fn default_timeout_ms() -> u64 {
    10_000
}

/// A validated `[[sinks.autotask]]`.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) username: String,
    pub(super) secret: SecretRef,
    pub(super) integration_code: SecretRef,
    pub(super) zone_url: Option<String>,
    pub(super) zone_lookup_url: String,
    pub(super) companies: BTreeMap<String, i64>,
    /// Picklist values as configured (resolved at first use).
    pub(super) queue: Pick,
    pub(super) priorities: BTreeMap<String, Pick>,
    pub(super) closed_status: Pick,
    pub(super) new_status: Pick,
    pub(super) ticket_type: Pick,
    pub(super) source: Pick,
    pub(super) due_hours: BTreeMap<String, f64>,
    pub(super) note_type: i64,
    pub(super) note_publish: i64,
    pub(super) poll: Duration,
    pub(super) timeout: Duration,
}

pub(super) fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    let c: AutotaskConfig = fields::table(table)?;
    let mut p = Vec::new();
    if !c.username.contains('@') {
        p.push(format!(
            "username {:?} must be the API user's user name (an email address)",
            c.username
        ));
    }
    p.extend(c.secret.problems("secret"));
    p.extend(c.integration_code.problems("integration_code"));
    let zone_url = c
        .zone_url
        .as_deref()
        .and_then(|u| fields::base_url("zone_url", u, &mut p));
    let lookup = fields::base_url("zone_lookup_url", &c.zone_lookup_url, &mut p);
    for (tenant, id) in &c.companies {
        if *id < 0 {
            p.push(format!(
                "companies.{tenant} ({id}) must be a company id (0 or more)"
            ));
        }
    }
    let priorities = fields::priority_map(
        "priorities",
        c.priorities,
        ["Critical", "High", "Medium", "Low"].map(label),
        &mut p,
    );
    // Forewarn's default SLA resolve times (`[tickets.sla]`).
    let due_hours = fields::priority_map("due_hours", c.due_hours, [4.0, 8.0, 24.0, 72.0], &mut p);
    for (prio, h) in &due_hours {
        if !(h.is_finite() && *h > 0.0 && *h <= 24.0 * 365.0) {
            p.push(format!(
                "due_hours.{prio} ({h}) must be above 0 and at most a year"
            ));
        }
    }
    fields::timing_problems(c.timeout_ms, c.poll_secs, &mut p);
    match lookup {
        Some(zone_lookup_url) if p.is_empty() => Ok(Box::new(Spec {
            username: c.username,
            secret: c.secret,
            integration_code: c.integration_code,
            zone_url,
            zone_lookup_url,
            companies: c.companies,
            queue: c.queue,
            priorities,
            closed_status: c.closed_status,
            new_status: c.new_status,
            ticket_type: c.ticket_type,
            source: c.source,
            due_hours,
            note_type: c.note_type,
            note_publish: c.note_publish,
            poll: Duration::from_secs_f64(c.poll_secs),
            timeout: Duration::from_millis(c.timeout_ms),
        })),
        _ => Err(p),
    }
}

impl SinkSpec for Spec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let sensitive = |s: Secret, key: &str| {
            let mut v = HeaderValue::from_str(s.expose()).map_err(|_| {
                crate::Error::Config(format!("sinks.autotask {key}: not a valid header value"))
            })?;
            v.set_sensitive(true);
            Ok::<_, crate::Error>(v)
        };
        let secret = sensitive(self.secret.read("sinks.autotask secret")?, "secret")?;
        let code = sensitive(
            self.integration_code
                .read("sinks.autotask integration_code")?,
            "integration_code",
        )?;
        let zone = OnceCell::new_with(self.zone_url.clone().map(|api| Zone { api, web: None }));
        let c = Autotask {
            spec: self.clone(),
            secret,
            code,
            client: http::client(self.timeout)?,
            zone,
            picks: Mutex::new(None),
        };
        Ok(Arc::new(PsaSink::new(c, templates, &ctx.public_url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    const MINIMAL: &str = "username = \"api@msp.example\"\nsecret = \"s\"\nintegration_code = \"c\"\nqueue = \"Monitoring\"\n";

    #[test]
    fn a_minimal_table_parses_with_documented_defaults() {
        let spec = parse(t(MINIMAL)).expect("valid");
        let debug = format!("{spec:?}");
        assert!(
            debug.contains("Critical") && debug.contains("Complete"),
            "{debug}"
        );
        assert!(!debug.contains("secret = \"s\""));
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = parse(t(
            "username = \"nobody\"\nsecret = \"\"\nintegration_code = { env = \"\" }\nqueue = 3\n\
             zone_url = \"ftp://x\"\npriorities = { P7 = \"High\" }\ndue_hours = { P1 = 0.0 }\n\
             companies = { acme = -1 }\ntimeout_ms = 5\npoll_secs = 0.0\n",
        ))
        .expect_err("invalid")
        .join("\n");
        for key in [
            "username",
            "secret",
            "integration_code.env",
            "zone_url",
            "priorities.P7",
            "due_hours.P1",
            "companies.acme",
            "timeout_ms",
            "poll_secs",
        ] {
            assert!(err.contains(key), "{key} not in:\n{err}");
        }
        let err = parse(t(
            "username = \"a@b\"\nsecret = \"s\"\nintegration_code = \"c\"\n",
        ))
        .expect_err("no queue")
        .join("");
        assert!(err.contains("queue"), "{err}");
    }
}
