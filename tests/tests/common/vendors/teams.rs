//! A Microsoft Teams Workflows webhook ("When a Teams webhook request is
//! received", Power Automate), after "Create incoming webhooks with
//! Workflows for Microsoft Teams" (learn.microsoft.com, Teams developer
//! docs, "Send Adaptive Cards using an Incoming Webhook") and the Adaptive
//! Cards schema (adaptivecards.io/explorer: AdaptiveCard, TextBlock,
//! FactSet, Action.OpenUrl).
//!
//! Checked: POST to the flow's path with its `api-version` and `sig` query
//! (a wrong `sig` is answered 401 as Azure Logic Apps does), JSON content
//! type, `type: "message"`, attachments whose `contentType` is the Adaptive
//! Card one, a card with `type: "AdaptiveCard"`, a known `version`, known
//! element and action types with their required fields and enum values.
//! The retired connector `MessageCard` is a violation. Answered 202
//! Accepted with an empty body, as Workflows does.

use serde_json::Value;

use super::super::fake::{Answer, Request, Vendor, require};

/// One flow's trigger.
pub struct Teams {
    path: String,
    sig: String,
}

const ELEMENTS: [&str; 9] = [
    "TextBlock",
    "FactSet",
    "ColumnSet",
    "Container",
    "Image",
    "ImageSet",
    "ActionSet",
    "RichTextBlock",
    "Table",
];
const ACTIONS: [&str; 5] = [
    "Action.OpenUrl",
    "Action.Submit",
    "Action.ShowCard",
    "Action.ToggleVisibility",
    "Action.Execute",
];
const VERSIONS: [&str; 6] = ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"];

impl Teams {
    /// The flow at `path` (`/workflows/<id>/triggers/manual/paths/invoke`)
    /// whose URL carries `sig`.
    pub fn new(path: &str, sig: &str) -> Self {
        Self {
            path: path.to_string(),
            sig: sig.to_string(),
        }
    }
}

/// `v[key]`, if present, is one of `allowed` (Adaptive Cards enums are
/// case-insensitive).
fn one_of(v: &Value, key: &str, allowed: &[&str], at: &str) -> Result<(), String> {
    match v.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.iter().any(|a| a.eq_ignore_ascii_case(s)) => Ok(()),
        Some(other) => Err(format!("{at}.{key} {other} is not one of {allowed:?}")),
    }
}

fn element(e: &Value, at: &str) -> Result<(), String> {
    require(e, "type", "string").map_err(|x| format!("{at}: {x}"))?;
    let t = e["type"].as_str().unwrap_or_default();
    if !ELEMENTS.contains(&t) {
        return Err(format!("{at}.type {t:?} is not an Adaptive Card element"));
    }
    match t {
        "TextBlock" => {
            require(e, "text", "string").map_err(|x| format!("{at}: {x}"))?;
            one_of(e, "weight", &["Default", "Lighter", "Bolder"], at)?;
            one_of(
                e,
                "size",
                &["Default", "Small", "Medium", "Large", "ExtraLarge"],
                at,
            )?;
            one_of(
                e,
                "color",
                &[
                    "Default",
                    "Dark",
                    "Light",
                    "Accent",
                    "Good",
                    "Warning",
                    "Attention",
                ],
                at,
            )?;
            if e.get("wrap").is_some_and(|w| !w.is_boolean()) {
                return Err(format!("{at}.wrap must be a boolean"));
            }
            Ok(())
        }
        "FactSet" => {
            let facts = e["facts"]
                .as_array()
                .ok_or(format!("{at}.facts must be an array"))?;
            for (i, f) in facts.iter().enumerate() {
                for k in ["title", "value"] {
                    require(f, k, "string").map_err(|x| format!("{at}.facts[{i}]: {x}"))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn card(c: &Value) -> Result<(), String> {
    if c["type"] != "AdaptiveCard" {
        return Err(format!(
            "content.type must be \"AdaptiveCard\", got {}",
            c["type"]
        ));
    }
    if let Some(s) = c.get("$schema") {
        s.as_str().ok_or("content.$schema must be a string")?;
    }
    let version = c["version"].as_str().unwrap_or_default();
    if !VERSIONS.contains(&version) {
        return Err(format!(
            "content.version {:?} is not a version Teams renders",
            c["version"]
        ));
    }
    let body = c["body"]
        .as_array()
        .ok_or("content.body must be an array")?;
    for (i, e) in body.iter().enumerate() {
        element(e, &format!("content.body[{i}]"))?;
    }
    for (i, a) in c
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("content.actions[{i}]");
        let t = a["type"].as_str().unwrap_or_default();
        if !ACTIONS.contains(&t) {
            return Err(format!("{at}.type {t:?} is not an Adaptive Card action"));
        }
        if t == "Action.OpenUrl" {
            require(a, "url", "string").map_err(|x| format!("{at}: {x}"))?;
        }
    }
    Ok(())
}

impl Vendor for Teams {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        if req.method != "POST" {
            return Err(format!(
                "a Workflows trigger takes POST, not {}",
                req.method
            ));
        }
        if req.path != self.path {
            return Ok(Answer::json(
                404,
                &serde_json::json!({"error": {"code": "WorkflowNotFound",
                "message": "The workflow could not be found."}}),
            ));
        }
        let query: Vec<(&str, &str)> = req
            .query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        if !query.iter().any(|(k, _)| *k == "api-version") {
            return Err("the trigger URL's api-version is missing".into());
        }
        if !query.iter().any(|(k, v)| *k == "sig" && *v == self.sig) {
            return Ok(Answer::json(
                401,
                &serde_json::json!({"error": {"code": "DirectApiInvalidAuthorizationSignature",
                "message": "The provided authorization signature is invalid."}}),
            ));
        }
        if !req.header("content-type").starts_with("application/json") {
            return Err("Content-Type must be application/json".into());
        }
        let v = req.json();
        if v.get("@type").is_some_and(|t| t == "MessageCard") {
            return Err("the retired Office 365 connector MessageCard format".into());
        }
        if v["type"] != "message" {
            return Err(format!("type must be \"message\", got {}", v["type"]));
        }
        let atts = v["attachments"]
            .as_array()
            .ok_or("attachments must be an array")?;
        if atts.is_empty() {
            return Err("attachments is empty".into());
        }
        for a in atts {
            if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
                return Err(format!(
                    "attachment contentType {} is not an Adaptive Card",
                    a["contentType"]
                ));
            }
            card(&a["content"])?;
        }
        Ok(Answer::text(202, ""))
    }
}
