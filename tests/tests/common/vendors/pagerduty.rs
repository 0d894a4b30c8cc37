//! PagerDuty Events API v2 (`POST /v2/enqueue`), after "Events API v2
//! Overview" and "Send an Alert Event" in PagerDuty's developer docs
//! (developer.pagerduty.com/docs/events-api-v2/overview/,
//! …/trigger-events/, …/acknowledge-events/, …/resolve-events/).
//!
//! Checked: method, path, JSON content type, known top-level and payload
//! keys, `routing_key` equal to the configured one, `event_action` one of
//! three, `dedup_key` (≤ 255 characters) present for acknowledge and
//! resolve, a trigger's `payload` with `summary` (≤ 1024), `source` and a
//! known `severity`, an RFC 3339 `timestamp`, `links` as `{href, text}`.
//! Answered like PagerDuty: 202 `{"status":"success","message":"Event
//! processed","dedup_key":…}`, or 400 `invalid event` when [`PagerDuty::refuse`]
//! is set.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::super::fake::{Answer, Request, Vendor, require};

/// A PagerDuty service with one Events API v2 integration.
pub struct PagerDuty {
    routing_key: String,
    refuse: AtomicBool,
}

const TOP: [&str; 8] = [
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "images",
    "links",
    "client",
    "client_url",
];
const PAYLOAD: [&str; 8] = [
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
];

impl PagerDuty {
    pub fn new(routing_key: &str) -> Self {
        Self {
            routing_key: routing_key.to_string(),
            refuse: AtomicBool::new(false),
        }
    }

    /// Answer every well-formed event with PagerDuty's 400 `invalid event`
    /// (what a disabled integration or a refused event gets).
    pub fn refuse(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }

    /// The contract check: the problem with `v`, if any.
    fn check(&self, req: &Request, v: &Value) -> Result<(), String> {
        if req.method != "POST" || req.path != "/v2/enqueue" {
            return Err(format!("PagerDuty has no {} {}", req.method, req.path));
        }
        if !req.header("content-type").starts_with("application/json") {
            return Err("Content-Type must be application/json".into());
        }
        let obj = v.as_object().ok_or("the body must be a JSON object")?;
        if let Some(k) = obj.keys().find(|k| !TOP.contains(&k.as_str())) {
            return Err(format!("unknown field {k:?}"));
        }
        require(v, "routing_key", "string")?;
        if v["routing_key"] != self.routing_key.as_str() {
            return Err("routing_key is not the integration's key".into());
        }
        require(v, "event_action", "string")?;
        let action = v["event_action"].as_str().unwrap_or_default();
        if !matches!(action, "trigger" | "acknowledge" | "resolve") {
            return Err(format!(
                "event_action {action:?} is not trigger, acknowledge or resolve"
            ));
        }
        if action != "trigger" || v.get("dedup_key").is_some() {
            require(v, "dedup_key", "string")?;
            let n = v["dedup_key"].as_str().map_or(0, |s| s.chars().count());
            if n == 0 || n > 255 {
                return Err(format!("dedup_key must be 1..255 characters, has {n}"));
            }
        }
        if action != "trigger" {
            return Ok(());
        }
        require(v, "payload", "object")?;
        let p = &v["payload"];
        if let Some(k) = p
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| !PAYLOAD.contains(&k.as_str()))
        {
            return Err(format!("unknown payload field {k:?}"));
        }
        for k in ["summary", "source", "severity"] {
            require(p, k, "string").map_err(|e| format!("payload: {e}"))?;
        }
        let summary = p["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 1024 {
            return Err("payload.summary must be 1..1024 characters".into());
        }
        let sev = p["severity"].as_str().unwrap_or_default();
        if !matches!(sev, "critical" | "error" | "warning" | "info") {
            return Err(format!(
                "payload.severity {sev:?} is not one of PagerDuty's four"
            ));
        }
        if let Some(ts) = p.get("timestamp") {
            let ok = ts
                .as_str()
                .is_some_and(|t| forewarn_collector::domain::rfc3339::parse(t).is_ok());
            if !ok {
                return Err(format!("payload.timestamp {ts} is not RFC 3339"));
            }
        }
        for k in ["component", "group", "class", "client", "client_url"] {
            let field = if matches!(k, "client" | "client_url") {
                v.get(k)
            } else {
                p.get(k)
            };
            if field.is_some_and(|f| !f.is_string()) {
                return Err(format!("{k} must be a string"));
            }
        }
        if p.get("custom_details")
            .is_some_and(|d| !d.is_object() && !d.is_string())
        {
            return Err("payload.custom_details must be an object or a string".into());
        }
        if let Some(links) = v.get("links") {
            let ok = links.as_array().is_some_and(|ls| {
                ls.iter()
                    .all(|l| l["href"].is_string() && l.get("text").is_none_or(Value::is_string))
            });
            if !ok {
                return Err("links must be an array of {href, text}".into());
            }
        }
        Ok(())
    }
}

impl Vendor for PagerDuty {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        let v = req.json();
        self.check(req, &v)?;
        if self.refuse.load(Ordering::SeqCst) {
            return Ok(Answer::json(
                400,
                &json!({"status": "invalid event", "message": "Event object is invalid",
                        "errors": ["The integration for this routing key is disabled"]}),
            ));
        }
        let key = v["dedup_key"]
            .as_str()
            .map_or_else(|| "pd-generated-key".to_string(), str::to_string);
        Ok(Answer::json(
            202,
            &json!({"status": "success", "message": "Event processed", "dedup_key": key}),
        ))
    }
}
