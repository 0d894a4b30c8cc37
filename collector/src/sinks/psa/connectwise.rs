//! ConnectWise PSA (Manage), two-way (`[[sinks.connectwise]]`): a
//! [`Connector`] for the shared [`PsaSink`] logic.
//!
//! It speaks the Manage REST API 3.0 (`{url}{api_path}`, by default
//! `/v4_6_release/apis/3.0`): every request carries `Authorization: Basic
//! base64("{company_id}+{public_key}:{private_key}")`, the `clientId`
//! header and a versioned `Accept`.
//!
//! - **create**: `POST /service/tickets` with `summary` (the title, cut to
//!   100 characters), `initialDescription`, `board`, `company`, `priority`
//!   (ids looked up by name and cached) and `externalXRef` = the delivery's
//!   idempotency key. `externalXRef` is a plain text field of the ticket
//!   model (≤ 100 characters) that `conditions` can search, meant for a
//!   reference in another system: [`Connector::find`] looks a lost create
//!   up by it, without a custom field an MSP would have to set up.
//! - **note**: `POST /service/tickets/{id}/notes` (a discussion note).
//! - **close**: the ticket's board is read, its status named
//!   `closed_status` looked up, `PATCH /service/tickets/{id}` with a JSON
//!   Patch setting it, then a resolution note. The status goes first so a
//!   retry after a failure in between repeats the (idempotent) status
//!   change, never the note, and a refused status parks before anything
//!   is written.
//! - **closed**: `GET /service/tickets?conditions=id in (…) and
//!   closedFlag=true`, batched, reports `closedBy`.

mod api;
mod mapping;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::PsaSink;
use crate::Result;
use crate::sinks::secret::SecretRef;
use crate::sinks::template::Templates;
use crate::sinks::{Sink, SinkContext, SinkSpec};

pub use api::ConnectWise;

/// The API path appended to `url` on ConnectWise's cloud (an alias the
/// cloud keeps pointing at its current release).
pub const DEFAULT_API_PATH: &str = "/v4_6_release/apis/3.0";

/// The priority names a new ConnectWise site ships with, per Forewarn
/// priority.
pub const DEFAULT_PRIORITIES: [(&str, &str); 4] = [
    ("P1", "Priority 1 - Emergency Response"),
    ("P2", "Priority 2 - Quick Response"),
    ("P3", "Priority 3 - Normal Response"),
    ("P4", "Priority 4 - Schedule Maintenance"),
];

/// `[[sinks.connectwise]]` keys besides the common ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectWiseConfig {
    /// The site's API base, e.g. `https://api-na.myconnectwise.net`.
    url: String,
    #[serde(default = "default_api_path")]
    api_path: String,
    /// Where technicians open tickets (links); default: `url` without a
    /// leading `api-` in the host name.
    #[serde(default)]
    ui_url: Option<String>,
    /// The company id technicians log in with (`acme_msp`).
    company_id: String,
    public_key: String,
    private_key: SecretRef,
    /// The integration's `clientId` (from developer.connectwise.com).
    client_id: SecretRef,
    /// Service board for every tenant without its own (`boards`).
    board: String,
    /// The board status a resolved Forewarn ticket sets.
    closed_status: String,
    /// Tenant name or id → ConnectWise company identifier.
    #[serde(default)]
    companies: BTreeMap<String, String>,
    /// Tenant name or id → service board name.
    #[serde(default)]
    boards: BTreeMap<String, String>,
    /// `P1`…`P4` → ConnectWise priority name.
    #[serde(default)]
    priorities: BTreeMap<String, String>,
    #[serde(default = "default_poll_secs")]
    poll_secs: u64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_api_path() -> String {
    DEFAULT_API_PATH.to_string()
}
fn default_poll_secs() -> u64 {
    60
}
fn default_timeout_ms() -> u64 {
    10_000
}

/// A validated `[[sinks.connectwise]]` (its `Debug` shows no secret:
/// [`SecretRef`] hides values).
#[derive(Debug)]
struct ConnectWiseSpec {
    api: reqwest::Url,
    ui: reqwest::Url,
    company_id: String,
    public_key: String,
    private_key: SecretRef,
    client_id: SecretRef,
    board: String,
    closed_status: String,
    companies: BTreeMap<String, String>,
    boards: BTreeMap<String, String>,
    priorities: BTreeMap<String, String>,
    poll: Duration,
    timeout: Duration,
}

/// The registry's parser for `[[sinks.connectwise]]`.
pub fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    let cfg: ConnectWiseConfig = table
        .try_into()
        .map_err(|e| vec![e.message().to_string()])?;
    let mut p = Vec::new();
    let url = web_url("url", &cfg.url, &mut p);
    let ui = match &cfg.ui_url {
        Some(u) => web_url("ui_url", u, &mut p),
        None => url.as_ref().map(ui_of),
    };
    if !cfg.api_path.starts_with('/') || cfg.api_path.contains(['?', '#']) {
        p.push(format!(
            "api_path {:?} must be a path starting with / (default {DEFAULT_API_PATH})",
            cfg.api_path
        ));
    }
    let bad_login = |s: &str| s.trim().is_empty() || s.contains([':', '+']) || s.trim() != s;
    if bad_login(&cfg.company_id) {
        p.push("company_id must be the login company id (no spaces, ':' or '+')".to_string());
    }
    if bad_login(&cfg.public_key) {
        p.push("public_key must be the API member's public key (no ':' or '+')".to_string());
    }
    p.extend(cfg.private_key.problems("private_key"));
    p.extend(cfg.client_id.problems("client_id"));
    for (key, v) in [("board", &cfg.board), ("closed_status", &cfg.closed_status)] {
        if v.trim().is_empty() {
            p.push(format!("{key} must name a ConnectWise {key}"));
        }
    }
    for (table, m) in [("companies", &cfg.companies), ("boards", &cfg.boards)] {
        for (tenant, v) in m {
            if v.trim().is_empty() {
                p.push(format!("{table}.{tenant} must not be empty"));
            }
        }
    }
    for (prio, v) in &cfg.priorities {
        if !DEFAULT_PRIORITIES.iter().any(|(k, _)| k == prio) {
            p.push(format!(
                "priorities.{prio}: Forewarn priorities are P1, P2, P3 and P4"
            ));
        } else if v.trim().is_empty() {
            p.push(format!(
                "priorities.{prio} must name a ConnectWise priority"
            ));
        }
    }
    if !(1..=86_400).contains(&cfg.poll_secs) {
        p.push(format!(
            "poll_secs ({}) must be between 1 and 86400",
            cfg.poll_secs
        ));
    }
    if !(100..=120_000).contains(&cfg.timeout_ms) {
        p.push(format!(
            "timeout_ms ({}) must be between 100 and 120000",
            cfg.timeout_ms
        ));
    }
    let (Some(url), Some(ui)) = (url, ui) else {
        return Err(p);
    };
    if !p.is_empty() {
        return Err(p);
    }
    let mut api = url;
    api.set_path(&format!(
        "{}{}",
        api.path().trim_end_matches('/'),
        cfg.api_path.trim_end_matches('/')
    ));
    let mut priorities: BTreeMap<String, String> = DEFAULT_PRIORITIES
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    priorities.extend(cfg.priorities);
    Ok(Box::new(ConnectWiseSpec {
        api,
        ui,
        company_id: cfg.company_id,
        public_key: cfg.public_key,
        private_key: cfg.private_key,
        client_id: cfg.client_id,
        board: cfg.board,
        closed_status: cfg.closed_status,
        companies: cfg.companies,
        boards: cfg.boards,
        priorities,
        poll: Duration::from_secs(cfg.poll_secs),
        timeout: Duration::from_millis(cfg.timeout_ms),
    }))
}

/// An http(s) URL with a host and nothing after the path.
fn web_url(key: &str, s: &str, problems: &mut Vec<String>) -> Option<reqwest::Url> {
    match reqwest::Url::parse(s) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.has_host()
                && u.query().is_none()
                && u.username().is_empty() =>
        {
            Some(u)
        }
        Ok(_) => {
            problems.push(format!(
                "{key} {s:?} must be an http or https URL of the site (no query, no user)"
            ));
            None
        }
        Err(e) => {
            problems.push(format!("{key} {s:?}: {e}"));
            None
        }
    }
}

/// The UI's base for an API base: cloud sites answer the API on
/// `api-<region>.myconnectwise.net` and the UI on `<region>.…`.
fn ui_of(api: &reqwest::Url) -> reqwest::Url {
    let mut ui = api.clone();
    if let Some(host) = api.host_str().and_then(|h| h.strip_prefix("api-")) {
        // A host name minus a prefix is still a host name.
        let _ = ui.set_host(Some(host));
    }
    ui
}

impl SinkSpec for ConnectWiseSpec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let private_key = self.private_key.read("sinks.connectwise private_key")?;
        let client_id = self.client_id.read("sinks.connectwise client_id")?;
        let cw = ConnectWise::new(api::Settings {
            api: self.api.clone(),
            ui: self.ui.clone(),
            company_id: self.company_id.clone(),
            login: format!(
                "{}+{}:{}",
                self.company_id,
                self.public_key,
                private_key.expose()
            ),
            client_id: client_id.expose().to_string(),
            board: self.board.clone(),
            closed_status: self.closed_status.clone(),
            companies: self.companies.clone(),
            boards: self.boards.clone(),
            priorities: self.priorities.clone(),
            poll: self.poll,
            timeout: self.timeout,
        })?;
        Ok(Arc::new(PsaSink::new(cw, templates, &ctx.public_url)))
    }
}

/// What [`Connector`] needs from this module beyond the API.
impl ConnectWise {
    /// The ConnectWise company identifier of a tenant (by name, then id).
    fn company_of<'a>(&'a self, tenant_name: &str, tenant_id: &str) -> Option<&'a String> {
        self.s
            .companies
            .get(tenant_name)
            .or_else(|| self.s.companies.get(tenant_id))
    }

    /// The board of a tenant and the key it comes from.
    fn board_of(&self, tenant_name: &str, tenant_id: &str) -> (String, &str) {
        for t in [tenant_name, tenant_id] {
            if let Some(b) = self.s.boards.get(t) {
                return (format!("boards.{t}"), b);
            }
        }
        ("board".to_string(), &self.s.board)
    }
}
