//! Datto Autotask PSA (`[[sinks.autotask]]`), two-way, through the REST API
//! v1.0 (docs/sinks/autotask.md).
//!
//! - **Zone first**: the API lives in one of several zones; unless
//!   `zone_url` is set, `GET …/v1.0/zoneInformation?user=<username>` (no
//!   credentials sent) names it, once per start.
//! - **Auth**: the headers `ApiIntegrationCode`, `UserName`, `Secret` on
//!   every call (marked sensitive, never logged).
//! - **Picklists**: queue, priorities, statuses, ticket type and source may
//!   be named by label or id; they are resolved (and checked to exist and
//!   be active) through `GET Tickets/entityInformation/fields`, once.
//! - **Create** `POST Tickets` with every required field (`dueDateTime` =
//!   now + `due_hours` of the priority); **notes** `POST Tickets/{id}/Notes`;
//!   **close** a note then `PATCH Tickets {id, status}`; **lost creates**
//!   are found by the title's reference tag ([`super::fields`]);
//!   **closed by a technician** = `status` is the closed status, and
//!   `completedByResourceID` names who (`GET Resources/{id}`).
//! - **Errors**: as [`crate::sinks::http`] classifies them, except that
//!   Autotask answers some validation errors with HTTP 500 and
//!   `{"errors":["…"]}`: such an answer parks (retrying a refused body
//!   cannot help), unless its message reads as transient (timeout,
//!   unexpected error, try again…), which retries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

mod config;

use config::{Pick, Spec};

use super::fields::{self, PRIORITIES, clip, key_tag, park, tagged_title, tenant_entry, ticket_id};
use super::{Connector, Created, NewPsaTicket};
use crate::domain::{now_millis, rfc3339};
use crate::sinks::config::ParseFn;
use crate::sinks::http::{self, HttpFailure};
use crate::sinks::{CheckResult, Notification, Outcome, RemoteClose, SinkLink};

/// Where the zone of an API user is looked up.
pub const ZONE_LOOKUP_URL: &str = "https://webservices.autotask.net/atservicesrest";
/// The registry's parser.
pub const PARSE: ParseFn = config::parse;
/// Autotask's limits on ticket and note fields.
const TITLE_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 8000;
const NOTE_TITLE_MAX: usize = 250;
const NOTE_MAX: usize = 32_000;
/// Ids asked about per closed-ticket query.
const IDS_PER_QUERY: usize = 200;

/// The zone's API base and web UI.
#[derive(Debug, Clone)]
struct Zone {
    api: String,
    web: Option<String>,
}

/// The picklist ids the sink's labels resolved to.
#[derive(Debug)]
struct Picks {
    priority: BTreeMap<String, i64>,
    new_status: i64,
    closed_status: i64,
    queue: i64,
    ticket_type: i64,
    source: i64,
    /// Every field's active values (id, label), for the mapping.
    lists: BTreeMap<String, Vec<(i64, String)>>,
}

/// An Autotask connector.
pub struct Autotask {
    spec: Spec,
    secret: HeaderValue,
    code: HeaderValue,
    client: reqwest::Client,
    zone: OnceCell<Zone>,
    picks: Mutex<Option<Arc<Picks>>>,
}

/// A 500 carrying `{"errors":[…]}` that does not read as transient parks.
fn refused(f: HttpFailure) -> HttpFailure {
    match &f.0 {
        Outcome::Retry { error, .. }
            if error.starts_with("HTTP 500") && error.contains("\"errors\"") =>
        {
            let l = error.to_ascii_lowercase();
            let transient = [
                "timeout",
                "timed out",
                "unexpected",
                "try again",
                "unavailable",
                "deadlock",
                "temporar",
            ]
            .iter()
            .any(|w| l.contains(w));
            if transient {
                f
            } else {
                HttpFailure(Outcome::Park(format!(
                    "{error} (Autotask refused the request as invalid: fix the sink's mapping or the data, then send it again)"
                )))
            }
        }
        _ => f,
    }
}

/// A picklist value's id: `value` comes as a string or a number.
fn pick_value(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl Autotask {
    async fn zone(&self) -> std::result::Result<&Zone, HttpFailure> {
        self.zone
            .get_or_try_init(|| async {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Info {
                    url: String,
                    web_url: Option<String>,
                }
                let req = self
                    .client
                    .get(format!(
                        "{}/v1.0/zoneInformation",
                        self.spec.zone_lookup_url
                    ))
                    .query(&[("user", self.spec.username.as_str())]);
                let info: Info = http::send_json(req).await.map_err(refused)?;
                Ok(Zone {
                    api: info.url.trim_end_matches('/').to_string(),
                    web: info.web_url.map(|w| w.trim_end_matches('/').to_string()),
                })
            })
            .await
    }

    /// A call to the zone's API with the three auth headers.
    async fn call(
        &self,
        method: Method,
        path: &str,
    ) -> std::result::Result<reqwest::RequestBuilder, HttpFailure> {
        let zone = self.zone().await?;
        Ok(self
            .client
            .request(method, format!("{}/v1.0/{path}", zone.api))
            .header("ApiIntegrationCode", self.code.clone())
            .header("UserName", self.spec.username.as_str())
            .header("Secret", self.secret.clone())
            .header(CONTENT_TYPE, "application/json"))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> std::result::Result<T, HttpFailure> {
        let mut req = self.call(method, path).await?;
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        http::send_json(req).await.map_err(refused)
    }

    /// The picklists, read once and resolved against the config.
    async fn picks(&self) -> std::result::Result<Arc<Picks>, HttpFailure> {
        let mut cached = self.picks.lock().await;
        if let Some(p) = cached.as_ref() {
            return Ok(p.clone());
        }
        #[derive(Deserialize)]
        struct Fields {
            fields: Vec<Field>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Field {
            name: String,
            #[serde(default)]
            picklist_values: Option<Vec<Value>>,
        }
        let f: Fields = self
            .send(Method::GET, "Tickets/entityInformation/fields", None)
            .await?;
        let mut lists = BTreeMap::new();
        for field in f.fields {
            let active = field
                .picklist_values
                .unwrap_or_default()
                .iter()
                .filter(|v| v["isActive"].as_bool() != Some(false))
                .filter_map(|v| Some((pick_value(&v["value"])?, v["label"].as_str()?.to_string())))
                .collect::<Vec<_>>();
            lists.insert(field.name, active);
        }
        let resolve = |field: &str,
                       key: &str,
                       want: &Pick|
         -> std::result::Result<i64, HttpFailure> {
            let values = lists.get(field).map(Vec::as_slice).unwrap_or_default();
            let found = values.iter().find(|(id, l)| match want {
                Pick::Id(w) => id == w,
                Pick::Label(w) => l.eq_ignore_ascii_case(w),
            });
            found.map(|(id, _)| *id).ok_or_else(|| {
                let known: Vec<String> = values.iter().map(|(i, l)| format!("{i} {l}")).collect();
                park(format!(
                    "{key} = {want}: the Autotask ticket picklist {field} has no such active value (it has: {})",
                    known.join(", ")
                ))
            })
        };
        let s = &self.spec;
        let mut priority = BTreeMap::new();
        for (p, want) in &s.priorities {
            priority.insert(
                p.clone(),
                resolve("priority", &format!("priorities.{p}"), want)?,
            );
        }
        let picks = Arc::new(Picks {
            priority,
            new_status: resolve("status", "new_status", &s.new_status)?,
            closed_status: resolve("status", "closed_status", &s.closed_status)?,
            queue: resolve("queueID", "queue", &s.queue)?,
            ticket_type: resolve("ticketType", "ticket_type", &s.ticket_type)?,
            source: resolve("source", "source", &s.source)?,
            lists,
        });
        *cached = Some(picks.clone());
        Ok(picks)
    }

    async fn company(&self, n: &Notification) -> std::result::Result<i64, HttpFailure> {
        tenant_entry(&self.spec.companies, n)
            .copied()
            .ok_or_else(|| fields::unmapped_tenant(n, "companies"))
    }

    async fn created(&self, id: i64) -> Created {
        let url =
            self.zone().await.ok().and_then(|z| z.web.clone()).map(|w| {
                format!("{w}/Mvc/ServiceDesk/TicketDetail.mvc?workspace=False&ticketId={id}")
            });
        Created {
            id: id.to_string(),
            url,
        }
    }

    async fn resource_name(&self, id: i64) -> std::result::Result<String, HttpFailure> {
        #[derive(Deserialize)]
        struct One {
            item: Value,
        }
        let r: One = self
            .send(Method::GET, &format!("Resources/{id}"), None)
            .await?;
        let name = format!(
            "{} {}",
            r.item["firstName"].as_str().unwrap_or_default(),
            r.item["lastName"].as_str().unwrap_or_default()
        );
        let name = name.trim();
        Ok(if name.is_empty() {
            format!("Autotask resource {id}")
        } else {
            name.to_string()
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemId {
    item_id: i64,
}

#[derive(Deserialize)]
struct Items {
    items: Vec<Value>,
}

#[async_trait]
impl Connector for Autotask {
    async fn create(&self, t: &NewPsaTicket<'_>) -> std::result::Result<Created, HttpFailure> {
        let n = t.notification;
        let company = self.company(n).await?;
        let p = self.picks().await?;
        let prio = if PRIORITIES.contains(&n.priority.as_str()) {
            n.priority.as_str()
        } else {
            "P4"
        };
        let hours = self.spec.due_hours.get(prio).copied().unwrap_or(72.0);
        let due = now_millis().max(n.at) + (hours * 3_600_000.0) as i64;
        let body = json!({
            "companyID": company,
            "title": tagged_title(t.title, t.key, TITLE_MAX),
            "description": clip(t.body, DESCRIPTION_MAX),
            "status": p.new_status,
            "priority": p.priority.get(prio).copied().unwrap_or_default(),
            "queueID": p.queue,
            "dueDateTime": rfc3339::format(due),
            "ticketType": p.ticket_type,
            "source": p.source,
        });
        let made: ItemId = self.send(Method::POST, "Tickets", Some(body)).await?;
        Ok(self.created(made.item_id).await)
    }

    async fn find(
        &self,
        t: &NewPsaTicket<'_>,
    ) -> std::result::Result<Option<Created>, HttpFailure> {
        let company = self.company(t.notification).await?;
        let q = json!({"filter": [
            {"op": "eq", "field": "companyID", "value": company},
            {"op": "endsWith", "field": "title", "value": key_tag(t.key)},
        ]});
        let found: Items = self.send(Method::POST, "Tickets/query", Some(q)).await?;
        match found.items.first().and_then(|i| i["id"].as_i64()) {
            Some(id) => Ok(Some(self.created(id).await)),
            None => Ok(None),
        }
    }

    async fn note(
        &self,
        id: &str,
        _n: &Notification,
        text: &str,
    ) -> std::result::Result<(), HttpFailure> {
        let id = ticket_id("Autotask", id)?;
        let title = clip(text.lines().next().unwrap_or("Forewarn"), NOTE_TITLE_MAX);
        let body = json!({
            "ticketID": id,
            "title": title,
            "description": clip(text, NOTE_MAX),
            "noteType": self.spec.note_type,
            "publish": self.spec.note_publish,
        });
        let _: ItemId = self
            .send(Method::POST, &format!("Tickets/{id}/Notes"), Some(body))
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
        let p = self.picks().await?;
        let body = json!({"id": ticket_id("Autotask", id)?, "status": p.closed_status});
        let _: ItemId = self.send(Method::PATCH, "Tickets", Some(body)).await?;
        Ok(())
    }

    async fn closed(&self, open: &[SinkLink]) -> std::result::Result<Vec<RemoteClose>, String> {
        let ids: Vec<i64> = open
            .iter()
            .filter_map(|l| l.external_id.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let p = self.picks().await.map_err(|f| f.message())?;
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let q = json!({
                "filter": [
                    {"op": "in", "field": "id", "value": chunk},
                    {"op": "eq", "field": "status", "value": p.closed_status},
                ],
                "IncludeFields": ["id", "status", "completedByResourceID"],
            });
            let found: Items = self
                .send(Method::POST, "Tickets/query", Some(q))
                .await
                .map_err(|f| f.message())?;
            for t in found.items {
                let Some(id) = t["id"].as_i64() else { continue };
                let closed_by = match t["completedByResourceID"].as_i64() {
                    Some(r) => self.resource_name(r).await.map_err(|f| f.message())?,
                    None => "Autotask".to_string(),
                };
                out.push(RemoteClose {
                    external_id: id.to_string(),
                    closed_by,
                });
            }
        }
        Ok(out)
    }

    async fn health(&self) -> CheckResult {
        let zone = self
            .zone()
            .await
            .map_err(|f| format!("zone lookup: {}", f.message()))?;
        let _: Value = self
            .send(Method::GET, "Tickets/entityInformation", None)
            .await
            .map_err(|f| format!("Tickets/entityInformation: {}", f.message()))?;
        let p = self.picks().await.map_err(|f| f.message())?;
        Ok(format!(
            "zone {}: credentials accepted; queue {}, statuses new {} closed {}, priorities {:?} resolved",
            zone.api, p.queue, p.new_status, p.closed_status, p.priority
        ))
    }

    async fn mapping(&self, tenant: &str) -> CheckResult {
        let q = json!({"filter": [{"op": "contains", "field": "companyName", "value": tenant}]});
        let found: Items = self
            .send(Method::POST, "Companies/query", Some(q))
            .await
            .map_err(|f| f.message())?;
        let p = self.picks().await.map_err(|f| f.message())?;
        let mut out = format!("Autotask companies matching {tenant:?}:\n");
        for c in &found.items {
            out.push_str(&format!(
                "  {}  {}\n",
                c["id"],
                c["companyName"].as_str().unwrap_or_default()
            ));
        }
        for (field, title) in [
            ("queueID", "queues"),
            ("priority", "priorities"),
            ("status", "statuses"),
            ("ticketType", "ticket types"),
            ("source", "sources"),
        ] {
            let values: Vec<String> = p
                .lists
                .get(field)
                .into_iter()
                .flatten()
                .map(|(i, l)| format!("{i} {l}"))
                .collect();
            out.push_str(&format!("{title}: {}\n", values.join(", ")));
        }
        out.push_str("\nPaste into this [[sinks.autotask]] table (check the company):\n");
        match found.items.first() {
            Some(c) => out.push_str(&format!("companies.{tenant} = {}\n", c["id"])),
            None => out.push_str(&format!(
                "# no company matches {tenant:?}: companies.{tenant} = <id>\n"
            )),
        }
        out.push_str(&format!("queue = {}\n", p.queue));
        let prios: Vec<String> = p
            .priority
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        out.push_str(&format!("priorities = {{ {} }}\n", prios.join(", ")));
        out.push_str(&format!(
            "new_status = {}\nclosed_status = {}\n",
            p.new_status, p.closed_status
        ));
        Ok(out)
    }

    fn request_timeout(&self) -> Duration {
        self.spec.timeout
    }

    fn poll_every(&self) -> Duration {
        self.spec.poll
    }

    fn vendor(&self) -> &'static str {
        "Autotask"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_500_parks_and_a_transient_one_retries() {
        let f = |e: &str| {
            refused(HttpFailure(Outcome::Retry {
                error: e.to_string(),
                after: None,
            }))
            .0
        };
        assert!(matches!(
            f(r#"HTTP 500: {"errors":["Value for field queueID is not a valid picklist value"]}"#),
            Outcome::Park(r) if r.contains("refused the request as invalid")
        ));
        assert!(matches!(
            f(r#"HTTP 500: {"errors":["An unexpected error has occurred"]}"#),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            f("HTTP 500: <html>oops</html>"),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            f(r#"HTTP 503: {"errors":["down"]}"#),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn picklist_values_come_as_strings_or_numbers() {
        assert_eq!(pick_value(&json!("5")), Some(5));
        assert_eq!(pick_value(&json!(5)), Some(5));
        assert_eq!(pick_value(&json!("x")), None);
    }
}
