//! Slack incoming webhooks (`POST /services/T…/B…/<secret>`), after
//! "Sending messages using incoming webhooks" (api.slack.com/messaging/webhooks,
//! its "Handling errors" table) and the Block Kit reference
//! (api.slack.com/reference/block-kit/blocks, …/composition-objects,
//! …/block-elements#button) for block shapes and limits.
//!
//! Checked: method, JSON content type, a JSON object body, `text` a string,
//! `blocks` an array (≤ 50) of known block types with their required
//! fields and Slack's length limits (header 150, section fields ≤ 10 of ≤
//! 2000, context ≤ 10 elements, button text ≤ 75, url ≤ 3000).
//! Answered like Slack: 200 `ok` (text/plain); 404 `no_service` for a
//! path that is not the webhook's; 400 `no_text` for a body with neither
//! `text` nor `blocks` (so `{}` probes a webhook without posting); 410
//! `channel_is_archived` when [`Slack::archive`] is set.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::super::fake::{Answer, Request, Vendor, require};

/// One incoming webhook.
pub struct Slack {
    path: String,
    archived: AtomicBool,
}

const BLOCKS: [&str; 10] = [
    "header",
    "section",
    "context",
    "actions",
    "divider",
    "image",
    "rich_text",
    "input",
    "file",
    "video",
];

impl Slack {
    /// The webhook at `path` (`/services/T…/B…/<secret>`).
    pub fn new(path: &str) -> Self {
        Self {
            path: path.to_string(),
            archived: AtomicBool::new(false),
        }
    }

    /// The channel got archived: 410 `channel_is_archived`.
    pub fn archive(&self, on: bool) {
        self.archived.store(on, Ordering::SeqCst);
    }
}

/// A text object: `plain_text` or `mrkdwn` with at most `max` characters.
fn text_object(v: &Value, at: &str, max: usize, plain_only: bool) -> Result<(), String> {
    require(v, "type", "string").map_err(|e| format!("{at}: {e}"))?;
    require(v, "text", "string").map_err(|e| format!("{at}: {e}"))?;
    let t = v["type"].as_str().unwrap_or_default();
    if t != "plain_text" && (plain_only || t != "mrkdwn") {
        return Err(format!("{at}.type {t:?} is not allowed here"));
    }
    let n = v["text"].as_str().map_or(0, |s| s.chars().count());
    if n == 0 || n > max {
        return Err(format!("{at}.text must be 1..{max} characters, has {n}"));
    }
    Ok(())
}

fn block(b: &Value, at: &str) -> Result<(), String> {
    require(b, "type", "string").map_err(|e| format!("{at}: {e}"))?;
    let t = b["type"].as_str().unwrap_or_default();
    if !BLOCKS.contains(&t) {
        return Err(format!("{at}.type {t:?} is not a Block Kit block"));
    }
    match t {
        "header" => text_object(&b["text"], &format!("{at}.text"), 150, true),
        "section" => {
            if b.get("text").is_none() && b.get("fields").is_none() {
                return Err(format!("{at}: a section needs text or fields"));
            }
            if let Some(t) = b.get("text") {
                text_object(t, &format!("{at}.text"), 3000, false)?;
            }
            if let Some(f) = b.get("fields") {
                let fs = f
                    .as_array()
                    .ok_or(format!("{at}.fields must be an array"))?;
                if fs.is_empty() || fs.len() > 10 {
                    return Err(format!("{at}.fields must hold 1..10 items"));
                }
                for (i, f) in fs.iter().enumerate() {
                    text_object(f, &format!("{at}.fields[{i}]"), 2000, false)?;
                }
            }
            Ok(())
        }
        "context" => {
            let es = b["elements"]
                .as_array()
                .ok_or(format!("{at}.elements must be an array"))?;
            if es.is_empty() || es.len() > 10 {
                return Err(format!("{at}.elements must hold 1..10 items"));
            }
            es.iter()
                .enumerate()
                .try_for_each(|(i, e)| text_object(e, &format!("{at}.elements[{i}]"), 3000, false))
        }
        "actions" => {
            let es = b["elements"]
                .as_array()
                .ok_or(format!("{at}.elements must be an array"))?;
            if es.is_empty() || es.len() > 25 {
                return Err(format!("{at}.elements must hold 1..25 items"));
            }
            for (i, e) in es.iter().enumerate() {
                let at = format!("{at}.elements[{i}]");
                if e["type"] != "button" {
                    return Err(format!("{at}: only buttons are checked by this fake"));
                }
                text_object(&e["text"], &format!("{at}.text"), 75, true)?;
                if let Some(u) = e.get("url") {
                    let ok = u.as_str().is_some_and(|u| {
                        (u.starts_with("http://") || u.starts_with("https://")) && u.len() <= 3000
                    });
                    if !ok {
                        return Err(format!(
                            "{at}.url must be an http(s) URL of at most 3000 characters"
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Vendor for Slack {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        if req.method != "POST" {
            return Err(format!("incoming webhooks take POST, not {}", req.method));
        }
        if req.path != self.path {
            return Ok(Answer::text(404, "no_service"));
        }
        if !req.header("content-type").starts_with("application/json") {
            return Err("Content-Type must be application/json".into());
        }
        let v = req.json();
        if !v.is_object() {
            return Ok(Answer::text(400, "invalid_payload"));
        }
        if let Some(t) = v.get("text") {
            t.as_str().ok_or("text must be a string")?;
        }
        if let Some(bs) = v.get("blocks") {
            let bs = bs.as_array().ok_or("blocks must be an array")?;
            if bs.len() > 50 {
                return Err("at most 50 blocks".into());
            }
            for (i, b) in bs.iter().enumerate() {
                block(b, &format!("blocks[{i}]"))?;
            }
        }
        let has_text = v["text"].as_str().is_some_and(|t| !t.trim().is_empty());
        if !has_text && v.get("blocks").is_none() {
            return Ok(Answer::text(400, "no_text"));
        }
        if self.archived.load(Ordering::SeqCst) {
            return Ok(Answer::text(410, "channel_is_archived"));
        }
        Ok(Answer::text(200, "ok"))
    }
}
