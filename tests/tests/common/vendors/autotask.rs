//! A contract fake of the Datto Autotask REST API v1.0, as its
//! documentation describes it (docs/sinks/autotask.md names the pages):
//!
//! - `GET /atservicesrest/v1.0/zoneInformation?user=` names the zone, whose
//!   API here lives under `/zone5/atservicesrest/v1.0/`; an API call before
//!   a zone lookup breaks the contract;
//! - every API call carries `ApiIntegrationCode`, `UserName`, `Secret` and
//!   `Content-Type: application/json` (missing: a violation; wrong values:
//!   401 as Autotask answers);
//! - `POST Tickets` needs every required field with its JSON type,
//!   `dueDateTime` in ISO 8601, picklist values that exist and are active
//!   and a company that exists; a body Autotask would refuse is answered
//!   500 `{"errors":[…]}` as Autotask does, and kept in
//!   [`Autotask::refusals`];
//! - notes, the status `PATCH`, `query` with `eq`/`in`/`endsWith`/
//!   `contains` filters, `entityInformation` (+ `/fields`), `Resources/{id}`
//!   and `Companies/query`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::Method;
use serde_json::{Value, json};

use super::super::fake::{Answer, Request, Vendor, require};
use super::super::psa_e2e::{PsaFake, PsaTicket};

/// The zone's API path prefix.
pub const ZONE: &str = "/zone5/atservicesrest/v1.0/";
/// The API user's resource (what our own closes are recorded as).
pub const API_RESOURCE: i64 = 29_682_885;
/// The technician who closes tickets in the tests.
pub const TECHNICIAN: (i64, &str) = (29_682_901, "Jane Technician");
/// Companies: (id, name).
pub const COMPANIES: [(i64, &str); 2] = [(174, "Acme Corporation"), (175, "Globex")];

/// Ticket picklists: field → (value, label, active).
fn picklists() -> BTreeMap<&'static str, Vec<(i64, &'static str, bool)>> {
    BTreeMap::from([
        (
            "priority",
            vec![
                (1, "High", true),
                (2, "Medium", true),
                (3, "Low", true),
                (4, "Critical", true),
                (6, "Legacy", false),
            ],
        ),
        (
            "status",
            vec![
                (1, "New", true),
                (5, "Complete", true),
                (8, "In Progress", true),
            ],
        ),
        (
            "queueID",
            vec![
                (29_683_481, "Monitoring Alert", true),
                (29_683_482, "Level I Support", true),
            ],
        ),
        (
            "ticketType",
            vec![
                (1, "Service Request", true),
                (2, "Incident", true),
                (5, "Alert", true),
            ],
        ),
        (
            "source",
            vec![
                (2, "Phone", true),
                (4, "Email", true),
                (8, "Monitoring Alert", true),
            ],
        ),
    ])
}

#[derive(Default)]
struct State {
    zone_looked_up: bool,
    tickets: BTreeMap<i64, Value>,
    notes: Vec<(i64, Value)>,
    refusals: Vec<String>,
}

/// The fake Autotask instance.
pub struct Autotask {
    username: String,
    secret: String,
    code: String,
    state: Mutex<State>,
}

impl Autotask {
    pub fn new(username: &str, secret: &str, code: &str) -> Self {
        Self {
            username: username.into(),
            secret: secret.into(),
            code: code.into(),
            state: Mutex::new(State::default()),
        }
    }

    /// Bodies refused as Autotask would (500 `{"errors":…}`).
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().expect("lock").refusals.clone()
    }

    fn refuse(&self, st: &mut State, msg: String) -> Answer {
        st.refusals.push(msg.clone());
        Answer::json(500, &json!({ "errors": [msg] }))
    }

    fn api(&self, req: &Request, path: &str) -> Result<Answer, String> {
        for h in ["ApiIntegrationCode", "UserName", "Secret"] {
            if req.headers.get(h).is_none() {
                return Err(format!("header {h} missing"));
            }
        }
        if req.header("content-type") != "application/json" {
            return Err(format!(
                "Content-Type {:?}, not application/json",
                req.header("content-type")
            ));
        }
        if req.header("ApiIntegrationCode") != self.code
            || req.header("UserName") != self.username
            || req.header("Secret") != self.secret
        {
            return Ok(Answer::json(401, &json!({"errors": ["Unauthorized"]})));
        }
        let mut st = self.state.lock().expect("lock");
        if !st.zone_looked_up {
            return Err("an API call before the zone lookup".into());
        }
        let body = req.json();
        let segs: Vec<&str> = path.split('/').collect();
        match (&req.method, segs.as_slice()) {
            (&Method::GET, ["Tickets", "entityInformation"]) => Ok(Answer::json(
                200,
                &json!({"info": {"name": "Ticket", "canCreate": true, "canQuery": true, "canUpdate": true, "hasUserDefinedFields": true}}),
            )),
            (&Method::GET, ["Tickets", "entityInformation", "fields"]) => {
                let fields: Vec<Value> = picklists()
                    .into_iter()
                    .map(|(name, values)| json!({
                        "name": name, "dataType": "integer", "isPickList": true, "isRequired": true,
                        "picklistValues": values.iter().map(|(v, l, a)| json!({
                            "value": v.to_string(), "label": l, "isActive": a, "isSystem": true,
                        })).collect::<Vec<_>>(),
                    }))
                    .chain([json!({"name": "title", "dataType": "string", "length": 255, "isPickList": false, "picklistValues": null})])
                    .collect();
                Ok(Answer::json(200, &json!({ "fields": fields })))
            }
            (&Method::POST, ["Tickets"]) => self.create(&mut st, &body),
            (&Method::PATCH, ["Tickets"]) => {
                require(&body, "id", "integer")?;
                let id = body["id"].as_i64().unwrap_or_default();
                if !st.tickets.contains_key(&id) {
                    return Ok(self.refuse(&mut st, format!("Ticket {id} does not exist")));
                }
                if body.get("status").is_some() {
                    require(&body, "status", "integer")?;
                    if let Err(e) = valid_pick("status", &body["status"]) {
                        return Ok(self.refuse(&mut st, e));
                    }
                }
                let t = st.tickets.get_mut(&id).expect("exists");
                for (k, v) in body.as_object().into_iter().flatten() {
                    t[k] = v.clone();
                }
                if body["status"] == 5 && t["completedByResourceID"].is_null() {
                    t["completedByResourceID"] = json!(API_RESOURCE);
                }
                Ok(Answer::json(200, &json!({ "itemId": id })))
            }
            (&Method::POST, ["Tickets", id, "Notes"]) => {
                let id: i64 = id
                    .parse()
                    .map_err(|_| format!("ticket id {id:?} is not an integer"))?;
                require(&body, "ticketID", "integer")?;
                if body["ticketID"] != id {
                    return Err(format!(
                        "ticketID {} differs from the path's {id}",
                        body["ticketID"]
                    ));
                }
                require(&body, "title", "string")?;
                require(&body, "description", "string")?;
                require(&body, "noteType", "integer")?;
                require(&body, "publish", "integer")?;
                too_long(&body, "title", 250)?;
                too_long(&body, "description", 32_000)?;
                if !st.tickets.contains_key(&id) {
                    return Ok(self.refuse(&mut st, format!("Ticket {id} does not exist")));
                }
                st.notes.push((id, body));
                let note_id = 30_000 + i64::try_from(st.notes.len()).unwrap_or_default();
                Ok(Answer::json(200, &json!({ "itemId": note_id })))
            }
            (&Method::POST, ["Tickets", "query"]) => {
                let rows: Vec<Value> = st.tickets.values().cloned().collect();
                let items = query(&body, &rows)?;
                Ok(Answer::json(200, &page(items)))
            }
            (&Method::POST, ["Companies", "query"]) => {
                let rows: Vec<Value> = COMPANIES
                    .iter()
                    .map(|(id, n)| json!({"id": id, "companyName": n, "isActive": true}))
                    .collect();
                Ok(Answer::json(200, &page(query(&body, &rows)?)))
            }
            (&Method::GET, ["Resources", id]) => {
                let id: i64 = id
                    .parse()
                    .map_err(|_| format!("resource id {id:?} is not an integer"))?;
                let (first, last) = match id {
                    API_RESOURCE => ("Forewarn", "API"),
                    i if i == TECHNICIAN.0 => ("Jane", "Technician"),
                    _ => return Ok(Answer::json(404, &json!({"errors": ["not found"]}))),
                };
                Ok(Answer::json(
                    200,
                    &json!({"item": {"id": id, "firstName": first, "lastName": last}}),
                ))
            }
            _ => Err("no such Autotask REST endpoint".into()),
        }
    }

    fn create(&self, st: &mut State, body: &Value) -> Result<Answer, String> {
        if !body.is_object() {
            return Err("the body must be one Ticket object".into());
        }
        for (k, kind) in [
            ("companyID", "integer"),
            ("title", "string"),
            ("description", "string"),
            ("status", "integer"),
            ("priority", "integer"),
            ("queueID", "integer"),
            ("dueDateTime", "string"),
            ("ticketType", "integer"),
            ("source", "integer"),
        ] {
            require(body, k, kind)?;
        }
        if body.get("id").is_some_and(|v| !v.is_null() && v != 0) {
            return Err("a create must not carry an id".into());
        }
        too_long(body, "title", 255)?;
        too_long(body, "description", 8000)?;
        let due = body["dueDateTime"].as_str().unwrap_or_default();
        time::OffsetDateTime::parse(due, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("dueDateTime {due:?} is not ISO 8601: {e}"))?;
        for field in ["status", "priority", "queueID", "ticketType", "source"] {
            if let Err(e) = valid_pick(field, &body[field]) {
                return Ok(self.refuse(st, e));
            }
        }
        let company = body["companyID"].as_i64().unwrap_or_default();
        if !COMPANIES.iter().any(|(id, _)| *id == company) {
            return Ok(self.refuse(st, format!("companyID {company} does not exist")));
        }
        let id = 7000 + i64::try_from(st.tickets.len()).unwrap_or_default();
        let mut t = body.clone();
        t["id"] = json!(id);
        t["ticketNumber"] = json!(format!("T20270115.{id:04}"));
        t["completedByResourceID"] = Value::Null;
        st.tickets.insert(id, t);
        Ok(Answer::json(200, &json!({ "itemId": id })))
    }
}

fn too_long(v: &Value, key: &str, max: usize) -> Result<(), String> {
    let n = v[key].as_str().map_or(0, |s| s.chars().count());
    if n > max {
        return Err(format!("{key} has {n} characters, more than {max}"));
    }
    Ok(())
}

fn valid_pick(field: &str, v: &Value) -> Result<(), String> {
    let lists = picklists();
    let ok = v.as_i64().is_some_and(|id| {
        lists[field]
            .iter()
            .any(|(x, _, active)| *x == id && *active)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Value {v} for field {field} is not a valid, active picklist value"
        ))
    }
}

fn page(items: Vec<Value>) -> Value {
    json!({"items": items, "pageDetails": {"count": items.len(), "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null}})
}

/// Autotask's query filter over `rows`: every condition must hold.
fn query(body: &Value, rows: &[Value]) -> Result<Vec<Value>, String> {
    let filter = body["filter"]
        .as_array()
        .filter(|f| !f.is_empty())
        .ok_or("query needs a non-empty filter array")?;
    if let Some(inc) = body.get("IncludeFields") {
        inc.as_array().ok_or("IncludeFields must be an array")?;
    }
    let mut out = Vec::new();
    for r in rows {
        let mut all = true;
        for c in filter {
            let (op, field, value) = (
                c["op"].as_str().unwrap_or(""),
                c["field"].as_str().ok_or("a condition needs a field")?,
                &c["value"],
            );
            let got = &r[field];
            let s = |v: &Value| v.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
            all &= match op {
                "eq" => got == value,
                "in" => value
                    .as_array()
                    .ok_or("in needs an array value")?
                    .contains(got),
                "endsWith" => s(got).ends_with(&s(value)),
                "contains" => s(got).contains(&s(value)),
                other => return Err(format!("unsupported op {other:?}")),
            };
        }
        if all {
            out.push(r.clone());
        }
    }
    Ok(out)
}

impl Vendor for Autotask {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        if req.path == "/atservicesrest/v1.0/zoneInformation"
            || req.path == "/atservicesrest/v1.0/ZoneInformation"
        {
            if req.method != Method::GET {
                return Err("zoneInformation is a GET".into());
            }
            let user = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("user="))
                .unwrap_or("");
            if user.replace("%40", "@") != self.username {
                return Ok(Answer::json(
                    500,
                    &json!({"errors": ["Zone information could not be determined"]}),
                ));
            }
            self.state.lock().expect("lock").zone_looked_up = true;
            let host = req.header("host");
            return Ok(Answer::json(
                200,
                &json!({
                    "zoneName": "America East 5", "url": format!("http://{host}/zone5/atservicesrest/"),
                    "webUrl": format!("http://{host}/"), "ci": 5,
                }),
            ));
        }
        match req.path.strip_prefix(ZONE) {
            Some(path) => self.api(req, path),
            None => Err("not under the zone's API base (was the zone lookup used?)".into()),
        }
    }
}

impl PsaFake for Autotask {
    fn tickets(&self) -> Vec<PsaTicket> {
        let st = self.state.lock().expect("lock");
        st.tickets
            .values()
            .map(|t| {
                let id = t["id"].as_i64().unwrap_or_default();
                PsaTicket {
                    id,
                    company: t["companyID"].as_i64().unwrap_or_default(),
                    title: t["title"].as_str().unwrap_or_default().into(),
                    body: t["description"].as_str().unwrap_or_default().into(),
                    priority: t["priority"].to_string(),
                    queue: t["queueID"].to_string(),
                    closed: t["status"] == 5,
                    notes: st
                        .notes
                        .iter()
                        .filter(|(n, _)| *n == id)
                        .map(|(_, b)| b["description"].as_str().unwrap_or_default().into())
                        .collect(),
                }
            })
            .collect()
    }

    fn close_as_technician(&self, id: i64) -> String {
        let mut st = self.state.lock().expect("lock");
        let t = st.tickets.get_mut(&id).expect("ticket to close");
        t["status"] = json!(5);
        t["completedByResourceID"] = json!(TECHNICIAN.0);
        TECHNICIAN.1.into()
    }

    fn refused(&self) -> Vec<String> {
        self.refusals()
    }

    fn is_ticket_write(req: &Request) -> bool {
        req.path.starts_with(ZONE)
            && (req.method == Method::PATCH
                || (req.method == Method::POST && !req.path.ends_with("/query")))
    }
}
