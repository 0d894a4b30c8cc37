//! HaloPSA (`[[sinks.halopsa]]`), two-way, through its REST API
//! (docs/sinks/halopsa.md).
//!
//! - **Auth**: OAuth2 client credentials. `POST {auth_url}` (form:
//!   `grant_type=client_credentials`, `client_id`, `client_secret`,
//!   `scope`; `?tenant=` for hosted tenants) gives a bearer token, kept
//!   until a minute before it expires (or half its life, if shorter). A
//!   401 from the API drops it, and the call is made once more with a new
//!   one; a second 401 parks (the credentials or their permissions).
//! - **Create** `POST /api/Tickets` with a JSON array of one ticket (the
//!   tenant's `client_id`, `tickettype_id`, `priority_id`, `team`); the
//!   answer is the created ticket (an object, or an array of one).
//!   **Notes** `POST /api/Actions` (an array of one action, hidden from the
//!   end user); **close** an action, then `POST /api/Tickets`
//!   `[{id, status_id}]`. **Lost creates** are found with
//!   `GET /api/Tickets?search=<tag>&client_id=…` and the summary's reference
//!   tag ([`super::fields`]). **Closed by a technician**: `GET
//!   /api/Tickets/{id}` has `status_id` = `closed_status_id`; who closed it
//!   is the ticket's agent (`agent_id` → `GET /api/Agent/{id}`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::fields::{self, clip, key_tag, park, tagged_title, tenant_entry, ticket_id};
use super::{Connector, Created, NewPsaTicket, PsaSink};
use crate::Result;
use crate::sinks::http::{self, HttpFailure};
use crate::sinks::secret::{Secret, SecretRef};

use crate::sinks::template::Templates;
use crate::sinks::{CheckResult, Notification, Outcome, RemoteClose, Sink, SinkContext, SinkLink};
use crate::sinks::{SinkSpec, config::ParseFn};

/// The registry's parser.
pub const PARSE: ParseFn = parse;
/// Halo's summary is a 255-character column.
const SUMMARY_MAX: usize = 255;

/// `[[sinks.halopsa]]` keys besides the common ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HaloConfig {
    /// The tenant's base URL (`https://acme.halopsa.com`).
    url: String,
    /// Default `{url}/auth/token`.
    auth_url: Option<String>,
    client_id: String,
    client_secret: SecretRef,
    /// Hosted tenants: the `tenant` parameter of the token request.
    tenant: Option<String>,
    #[serde(default = "default_scope")]
    scope: String,
    ticket_type_id: i64,
    /// A team name, to put new tickets in that team's queue.
    team: Option<String>,
    #[serde(default)]
    clients: BTreeMap<String, i64>,
    #[serde(default)]
    priorities: BTreeMap<String, i64>,
    #[serde(default = "default_closed_status_id")]
    closed_status_id: i64,
    #[serde(default = "default_note_outcome")]
    note_outcome: String,
    #[serde(default = "default_poll_secs")]
    poll_secs: f64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_scope() -> String {
    "all".to_string()
}
fn default_closed_status_id() -> i64 {
    9
}
fn default_note_outcome() -> String {
    "Private Note".to_string()
}
fn default_poll_secs() -> f64 {
    60.0
}
fn default_timeout_ms() -> u64 {
    10_000
}

/// A validated `[[sinks.halopsa]]`.
#[derive(Debug, Clone)]
struct Spec {
    url: String,
    auth_url: String,
    client_id: String,
    client_secret: SecretRef,
    tenant: Option<String>,
    scope: String,
    ticket_type_id: i64,
    team: Option<String>,
    clients: BTreeMap<String, i64>,
    priorities: BTreeMap<String, i64>,
    closed_status_id: i64,
    note_outcome: String,
    poll: Duration,
    timeout: Duration,
}

fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    let c: HaloConfig = fields::table(table)?;
    let mut p = Vec::new();
    let url = fields::base_url("url", &c.url, &mut p);
    let auth_url = match (&c.auth_url, &url) {
        (Some(a), _) => fields::base_url("auth_url", a, &mut p),
        (None, Some(u)) => Some(format!("{u}/auth/token")),
        (None, None) => None,
    };
    if c.client_id.trim().is_empty() {
        p.push("client_id must not be empty".to_string());
    }
    p.extend(c.client_secret.problems("client_secret"));
    if c.scope.trim().is_empty() {
        p.push("scope must not be empty (Halo's scopes: all, read:tickets edit:tickets …)".into());
    }
    if c.tenant.as_deref().is_some_and(|t| t.trim().is_empty()) {
        p.push("tenant must not be empty (leave it out unless Halo hosts your instance)".into());
    }
    if c.team.as_deref().is_some_and(|t| t.trim().is_empty()) {
        p.push("team must not be empty (leave it out for the ticket type's default)".into());
    }
    let positive = |key: String, v: i64, p: &mut Vec<String>| {
        if v <= 0 {
            p.push(format!("{key} ({v}) must be a Halo id (1 or more)"));
        }
    };
    positive("ticket_type_id".into(), c.ticket_type_id, &mut p);
    positive("closed_status_id".into(), c.closed_status_id, &mut p);
    for (tenant, id) in &c.clients {
        positive(format!("clients.{tenant}"), *id, &mut p);
    }
    let priorities = fields::priority_map("priorities", c.priorities, [1, 2, 3, 4], &mut p);
    for (prio, id) in &priorities {
        positive(format!("priorities.{prio}"), *id, &mut p);
    }
    if c.note_outcome.trim().is_empty() {
        p.push("note_outcome must name an action outcome (default \"Private Note\")".into());
    }
    fields::timing_problems(c.timeout_ms, c.poll_secs, &mut p);
    match (url, auth_url) {
        (Some(url), Some(auth_url)) if p.is_empty() => Ok(Box::new(Spec {
            url,
            auth_url,
            client_id: c.client_id,
            client_secret: c.client_secret,
            tenant: c.tenant,
            scope: c.scope,
            ticket_type_id: c.ticket_type_id,
            team: c.team,
            clients: c.clients,
            priorities,
            closed_status_id: c.closed_status_id,
            note_outcome: c.note_outcome,
            poll: Duration::from_secs_f64(c.poll_secs),
            timeout: Duration::from_millis(c.timeout_ms),
        })),
        _ => Err(p),
    }
}

impl SinkSpec for Spec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let secret = self.client_secret.read("sinks.halopsa client_secret")?;
        let c = Halo {
            spec: self.clone(),
            secret,
            client: http::client(self.timeout)?,
            token: Mutex::new(None),
        };
        Ok(Arc::new(PsaSink::new(c, templates, &ctx.public_url)))
    }
}

/// A HaloPSA connector.
pub struct Halo {
    spec: Spec,
    secret: Secret,
    client: reqwest::Client,
    /// The bearer token and when to stop using it.
    token: Mutex<Option<(String, Instant)>>,
}

/// How long before its expiry a token is replaced.
fn usable_for(expires_in: u64) -> Duration {
    let life = Duration::from_secs(expires_in);
    life.saturating_sub(Duration::from_secs(60).min(life / 2))
}

fn is_401(f: &HttpFailure) -> bool {
    matches!(&f.0, Outcome::Park(e) if e.starts_with("HTTP 401"))
}

impl Halo {
    /// A token: the cached one, or a new one (`fresh` drops the cached).
    async fn token(&self, fresh: bool) -> std::result::Result<String, HttpFailure> {
        let mut cached = self.token.lock().await;
        if !fresh
            && let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            expires_in: Option<u64>,
        }
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_id", self.spec.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", self.spec.scope.as_str()),
        ])
        .map_err(|e| park(format!("token request: {e}")))?;
        let mut req = self
            .client
            .post(&self.spec.auth_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        if let Some(t) = &self.spec.tenant {
            req = req.query(&[("tenant", t.as_str())]);
        }
        let t: Token = http::send_json(req)
            .await
            .map_err(|f| HttpFailure(prefixed("token request", f.0)))?;
        let token = t.access_token;
        let until = Instant::now() + usable_for(t.expires_in.unwrap_or(3600));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    /// An API call with the bearer token; a 401 gets one more try with a
    /// new token.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> std::result::Result<T, HttpFailure> {
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            let mut req = self
                .client
                .request(method.clone(), format!("{}/api/{path}", self.spec.url))
                .bearer_auth(&token)
                .query(query);
            if let Some(b) = body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(b.to_string());
            }
            match http::send_json(req).await {
                Err(f) if is_401(&f) && !fresh => fresh = true,
                other => return other,
            }
        }
    }

    fn client_of(&self, n: &Notification) -> std::result::Result<i64, HttpFailure> {
        tenant_entry(&self.spec.clients, n)
            .copied()
            .ok_or_else(|| fields::unmapped_tenant(n, "clients"))
    }

    fn created(&self, id: i64) -> Created {
        Created {
            id: id.to_string(),
            url: Some(format!("{}/tickets?id={id}", self.spec.url)),
        }
    }

    async fn agent_name(&self, id: i64) -> std::result::Result<String, HttpFailure> {
        let a: Value = self
            .send(Method::GET, &format!("Agent/{id}"), &[], None)
            .await?;
        Ok(a["name"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .map_or_else(|| format!("Halo agent {id}"), str::to_string))
    }
}

fn prefixed(what: &str, o: Outcome) -> Outcome {
    match o {
        Outcome::Park(e) => Outcome::Park(format!("{what}: {e}")),
        Outcome::Retry { error, after } => Outcome::Retry {
            error: format!("{what}: {error}"),
            after,
        },
        other => other,
    }
}

/// The id of a created ticket: Halo answers one object, or an array.
fn first_id(v: &Value) -> Option<i64> {
    match v {
        Value::Array(a) => a.first().and_then(|t| t["id"].as_i64()),
        other => other["id"].as_i64(),
    }
}

/// Rows of a Halo list answer: `{"<key>": [...]}` or a bare array.
fn rows<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .map_or(&[], Vec::as_slice)
}

#[async_trait]
impl Connector for Halo {
    async fn create(&self, t: &NewPsaTicket<'_>) -> std::result::Result<Created, HttpFailure> {
        let n = t.notification;
        let client_id = self.client_of(n)?;
        let priority = self.spec.priorities.get(&n.priority).copied().unwrap_or(4);
        let mut ticket = json!({
            "summary": tagged_title(t.title, t.key, SUMMARY_MAX),
            "details": t.body,
            "client_id": client_id,
            "tickettype_id": self.spec.ticket_type_id,
            "priority_id": priority,
        });
        if let Some(team) = &self.spec.team {
            ticket["team"] = json!(team);
        }
        let made: Value = self
            .send(Method::POST, "Tickets", &[], Some(&json!([ticket])))
            .await?;
        first_id(&made).map(|id| self.created(id)).ok_or_else(|| {
            park(format!(
                "HaloPSA answered a create without a ticket id: {}",
                clip(&made.to_string(), 300)
            ))
        })
    }

    async fn find(
        &self,
        t: &NewPsaTicket<'_>,
    ) -> std::result::Result<Option<Created>, HttpFailure> {
        let client_id = self.client_of(t.notification)?;
        let tag = key_tag(t.key);
        let search = tag.trim_matches(['[', ']']).to_string();
        let found: Value = self
            .send(
                Method::GET,
                "Tickets",
                &[("search", search), ("client_id", client_id.to_string())],
                None,
            )
            .await?;
        Ok(rows(&found, "tickets")
            .iter()
            .find(|r| r["summary"].as_str().is_some_and(|s| s.ends_with(&tag)))
            .and_then(|r| r["id"].as_i64())
            .map(|id| self.created(id)))
    }

    async fn note(
        &self,
        id: &str,
        _n: &Notification,
        text: &str,
    ) -> std::result::Result<(), HttpFailure> {
        let action = json!([{
            "ticket_id": ticket_id("HaloPSA", id)?,
            "note": text,
            "outcome": self.spec.note_outcome,
            "hiddenfromuser": true,
        }]);
        let _: Value = self
            .send(Method::POST, "Actions", &[], Some(&action))
            .await?;
        Ok(())
    }

    async fn close(
        &self,
        id: &str,
        n: &Notification,
        text: &str,
    ) -> std::result::Result<(), HttpFailure> {
        self.note(id, n, text).await?;
        let status =
            json!([{"id": ticket_id("HaloPSA", id)?, "status_id": self.spec.closed_status_id}]);
        let _: Value = self
            .send(Method::POST, "Tickets", &[], Some(&status))
            .await?;
        Ok(())
    }

    async fn closed(&self, open: &[SinkLink]) -> std::result::Result<Vec<RemoteClose>, String> {
        let mut out = Vec::new();
        for l in open {
            let Ok(id) = l.external_id.parse::<i64>() else {
                continue;
            };
            let t: Value = match self
                .send(Method::GET, &format!("Tickets/{id}"), &[], None)
                .await
            {
                Ok(t) => t,
                // Deleted in Halo: nothing to reflect.
                Err(f) if f.message().starts_with("HTTP 404") => continue,
                Err(f) => return Err(f.message()),
            };
            if t["status_id"].as_i64() != Some(self.spec.closed_status_id) {
                continue;
            }
            let closed_by = match t["agent_id"].as_i64().filter(|a| *a > 0) {
                Some(a) => self.agent_name(a).await.map_err(|f| f.message())?,
                None => "HaloPSA".to_string(),
            };
            out.push(RemoteClose {
                external_id: id.to_string(),
                closed_by,
            });
        }
        Ok(out)
    }

    async fn health(&self) -> CheckResult {
        self.token(true).await.map_err(|f| f.message())?;
        let t: Value = self
            .send(
                Method::GET,
                &format!("TicketType/{}", self.spec.ticket_type_id),
                &[],
                None,
            )
            .await
            .map_err(|f| format!("ticket type {}: {}", self.spec.ticket_type_id, f.message()))?;
        Ok(format!(
            "token issued; ticket type {} ({}) readable",
            self.spec.ticket_type_id,
            t["name"].as_str().unwrap_or("?")
        ))
    }

    async fn mapping(&self, tenant: &str) -> CheckResult {
        let get = |path: &'static str, query: Vec<(&'static str, String)>| async move {
            self.send::<Value>(Method::GET, path, &query, None)
                .await
                .map_err(|f| format!("{path}: {}", f.message()))
        };
        let clients = get("Client", vec![("search", tenant.to_string())]).await?;
        let teams = get("Team", vec![]).await?;
        let statuses = get("Status", vec![]).await?;
        let priorities = get("Priority", vec![]).await?;
        let list = |v: &Value, key: &str, id: &str| {
            rows(v, key)
                .iter()
                .map(|r| format!("{} {}", r[id], r["name"].as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "HaloPSA clients matching {tenant:?}: {}\n",
            list(&clients, "clients", "id")
        );
        out.push_str(&format!("teams: {}\n", list(&teams, "teams", "id")));
        out.push_str(&format!(
            "statuses: {}\n",
            list(&statuses, "statuses", "id")
        ));
        out.push_str(&format!(
            "priorities: {}\n",
            list(&priorities, "priorities", "priorityid")
        ));
        out.push_str("\nPaste into this [[sinks.halopsa]] table (check the client):\n");
        match rows(&clients, "clients").first() {
            Some(c) => out.push_str(&format!("clients.{tenant} = {}\n", c["id"])),
            None => out.push_str(&format!(
                "# no client matches {tenant:?}: clients.{tenant} = <id>\n"
            )),
        }
        let prios: Vec<String> = self
            .spec
            .priorities
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        out.push_str(&format!("priorities = {{ {} }}\n", prios.join(", ")));
        out.push_str(&format!(
            "closed_status_id = {}\n",
            self.spec.closed_status_id
        ));
        Ok(out)
    }

    fn request_timeout(&self) -> Duration {
        // A token request may come first.
        self.spec.timeout * 2
    }

    fn poll_every(&self) -> Duration {
        self.spec.poll
    }

    fn vendor(&self) -> &'static str {
        "HaloPSA"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn a_minimal_table_parses_with_documented_defaults() {
        let spec = parse(t(
            "url = \"https://acme.halopsa.com/\"\nclient_id = \"fw\"\nclient_secret = \"s3\"\nticket_type_id = 3\n",
        ))
        .expect("valid");
        let d = format!("{spec:?}");
        for want in [
            "https://acme.halopsa.com/auth/token",
            "Private Note",
            "closed_status_id: 9",
            "\"P4\": 4",
        ] {
            assert!(d.contains(want), "{want} not in {d}");
        }
        assert!(!d.contains("s3"), "{d}");
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = parse(t(
            "url = \"acme\"\nclient_id = \"\"\nclient_secret = \"\"\nticket_type_id = 0\n\
             priorities = { P1 = 0, X = 2 }\nclients = { acme = -3 }\nscope = \"\"\ntenant = \"\"\n\
             closed_status_id = -1\nnote_outcome = \" \"\ntimeout_ms = 999999\n",
        ))
        .expect_err("invalid")
        .join("\n");
        for key in [
            "url",
            "client_id",
            "client_secret",
            "ticket_type_id",
            "priorities.P1",
            "priorities.X",
            "clients.acme",
            "scope",
            "tenant",
            "closed_status_id",
            "note_outcome",
            "timeout_ms",
        ] {
            assert!(err.contains(key), "{key} not in:\n{err}");
        }
    }

    #[test]
    fn tokens_are_replaced_before_they_expire() {
        assert_eq!(usable_for(3600), Duration::from_secs(3540));
        assert_eq!(usable_for(60), Duration::from_secs(30));
        assert_eq!(usable_for(0), Duration::ZERO);
    }

    #[test]
    fn created_ids_come_as_an_object_or_an_array() {
        assert_eq!(first_id(&json!({"id": 7})), Some(7));
        assert_eq!(first_id(&json!([{"id": 8}])), Some(8));
        assert_eq!(first_id(&json!([])), None);
        assert_eq!(rows(&json!({"tickets": [1]}), "tickets").len(), 1);
        assert_eq!(rows(&json!([1, 2]), "teams").len(), 2);
    }
}
