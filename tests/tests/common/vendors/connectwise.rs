//! A contract fake of ConnectWise PSA (Manage) REST API 3.0, as the
//! ConnectWise Developer Network documents it (Service → Tickets, Ticket
//! Notes, Boards, Board Statuses, Priorities; Company → Companies; System →
//! Info): see docs/sinks/connectwise.md for what it follows and what could
//! not be confirmed without a real site.
//!
//! Every request is checked: `Authorization: Basic
//! base64("company+public:private")` (wrong → 401, as ConnectWise answers),
//! the `clientId` header, the versioned `Accept`, `Content-Type` on
//! writes, the `/v4_6_release/apis/3.0` prefix, `conditions` syntax, field
//! types, and a JSON Patch array on PATCH. Type and shape errors are
//! contract violations; references to unknown records get ConnectWise's
//! own 400 `InvalidObject` or 404 `NotFound` answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use axum::http::Method;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::fake::{Answer, Request, Vendor, require};

/// The path every API request starts with.
pub const PREFIX: &str = "/v4_6_release/apis/3.0";
/// The member an API key acts as (`closedBy` when the API closes).
pub const API_MEMBER: &str = "ForewarnAPI";
/// Boards: (id, name); statuses: (id, board id, name, closed).
pub const BOARDS: [(i64, &str); 2] = [(1, "Help Desk"), (2, "Servers")];
pub const STATUSES: [(i64, i64, &str, bool); 5] = [
    (11, 1, "New", false),
    (12, 1, "In Progress", false),
    (13, 1, "Closed (resolved)", true),
    (21, 2, "New", false),
    (23, 2, "Closed (resolved)", true),
];
pub const PRIORITIES: [(i64, &str); 4] = [
    (15, "Priority 1 - Emergency Response"),
    (8, "Priority 2 - Quick Response"),
    (4, "Priority 3 - Normal Response"),
    (7, "Priority 4 - Schedule Maintenance"),
];
/// Companies: (id, identifier, name).
pub const COMPANIES: [(i64, &str, &str); 3] = [
    (250, "AcmeCorp", "ACME Corporation"),
    (251, "Globex", "Globex Inc"),
    (252, "AcmeLabs", "Acme Labs"),
];

/// A ticket as the fake keeps it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: i64,
    pub summary: String,
    pub initial_description: String,
    pub external_xref: String,
    pub board: i64,
    pub company: i64,
    pub priority: Option<i64>,
    pub status: i64,
    pub closed_by: Option<String>,
    pub notes: Vec<Note>,
}

/// A ticket note.
#[derive(Debug, Clone)]
pub struct Note {
    pub id: i64,
    pub text: String,
    pub detail: bool,
    pub internal: bool,
    pub resolution: bool,
}

/// The fake site: its credentials and its tickets.
pub struct ConnectWise {
    pub company: String,
    pub public_key: String,
    pub client_id: String,
    private_key: Mutex<String>,
    tickets: Mutex<BTreeMap<i64, Ticket>>,
}

impl ConnectWise {
    pub fn new(company: &str, public_key: &str, private_key: &str, client_id: &str) -> Self {
        Self {
            company: company.into(),
            public_key: public_key.into(),
            client_id: client_id.into(),
            private_key: Mutex::new(private_key.into()),
            tickets: Mutex::new(BTreeMap::new()),
        }
    }

    /// The API member's key is rotated on the ConnectWise side: the old
    /// one is refused with 401 from now on.
    pub fn rotate_private_key(&self, new: &str) {
        *self.private_key.lock().expect("lock") = new.into();
    }

    pub fn tickets(&self) -> Vec<Ticket> {
        self.tickets
            .lock()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn ticket(&self, id: i64) -> Option<Ticket> {
        self.tickets.lock().expect("lock").get(&id).cloned()
    }

    /// A technician closes ticket `id` in the ConnectWise UI: its board's
    /// closed status, `closedBy` = `member`.
    pub fn close_as(&self, id: i64, member: &str) {
        let mut all = self.tickets.lock().expect("lock");
        let t = all.get_mut(&id).expect("no such ticket");
        t.status = closed_status_of(t.board).expect("board has a closed status");
        t.closed_by = Some(member.into());
    }

    fn auth_ok(&self, req: &Request) -> bool {
        let want = format!(
            "{}+{}:{}",
            self.company,
            self.public_key,
            self.private_key.lock().expect("lock")
        );
        req.header("authorization")
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|raw| raw == want.as_bytes())
            && req.header("clientid") == self.client_id
    }
}

fn closed_status_of(board: i64) -> Option<i64> {
    STATUSES.iter().find(|s| s.1 == board && s.3).map(|s| s.0)
}

fn is_closed(status: i64) -> bool {
    STATUSES.iter().any(|s| s.0 == status && s.3)
}

fn info(href: &str) -> Value {
    json!({"lastUpdated": "2027-01-15T08:00:00Z", "updatedBy": API_MEMBER, "href": href})
}

impl Ticket {
    fn to_json(&self) -> Value {
        let board = BOARDS
            .iter()
            .find(|b| b.0 == self.board)
            .map_or("", |b| b.1);
        let status = STATUSES
            .iter()
            .find(|s| s.0 == self.status)
            .map_or("", |s| s.2);
        let company = COMPANIES.iter().find(|c| c.0 == self.company);
        json!({
            "id": self.id,
            "summary": self.summary,
            "recordType": "ServiceTicket",
            "board": {"id": self.board, "name": board},
            "status": {"id": self.status, "name": status},
            "company": {"id": self.company, "identifier": company.map(|c| c.1), "name": company.map(|c| c.2)},
            "priority": self.priority.map(|p| json!({"id": p})),
            "externalXRef": self.external_xref,
            "closedFlag": is_closed(self.status),
            "closedBy": self.closed_by,
            "_info": info(&format!("{PREFIX}/service/tickets/{}", self.id)),
        })
    }
}

/// ConnectWise's error body.
fn cw_error(status: u16, code: &str, message: &str, field: Option<&str>) -> Answer {
    let errors: Vec<Value> = field
        .map(|f| json!({"code": "InvalidField", "message": message, "resource": "ticket", "field": f}))
        .into_iter()
        .collect();
    let mut body = json!({"code": code, "message": message});
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    Answer::json(status, &body)
}

/// ConnectWise's 404 for an unknown ticket.
fn no_ticket(id: impl std::fmt::Display) -> Answer {
    cw_error(
        404,
        "NotFound",
        &format!("Ticket with id {id} not found"),
        None,
    )
}

impl Vendor for ConnectWise {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        let accept = req.header("accept");
        if !(accept.starts_with("application/vnd.connectwise.com+json;")
            && accept.contains("version=20"))
        {
            return Err(format!(
                "Accept {accept:?} is not the versioned ConnectWise type"
            ));
        }
        if req.header("clientid").is_empty() {
            return Err("the clientId header is missing".into());
        }
        if !self.auth_ok(req) {
            return Ok(cw_error(401, "Unauthorized", "Invalid credentials", None));
        }
        let writes = [Method::POST, Method::PATCH, Method::PUT];
        if writes.contains(&req.method) && req.header("content-type") != "application/json" {
            return Err(format!(
                "Content-Type {:?} on a write",
                req.header("content-type")
            ));
        }
        let path = req
            .path
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("path does not start with {PREFIX}"))?;
        let q = query(&req.query)?;
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (&req.method, segs.as_slice()) {
            (&Method::GET, ["system", "info"]) => Ok(Answer::json(
                200,
                &json!({"version": "v2024.1.99999", "isCloud": true, "serverTimeZone": "Eastern Standard Time", "cloudRegion": "NA"}),
            )),
            (&Method::GET, ["service", "boards"]) => {
                let rows = BOARDS.iter().map(|(id, name)| {
                    json!({"id": id, "name": name, "_info": info(&format!("{PREFIX}/service/boards/{id}"))})
                });
                list(rows.collect(), &q)
            }
            (&Method::GET, ["service", "boards", id, "statuses"]) => {
                let board: i64 = id.parse().map_err(|_| format!("board id {id:?}"))?;
                if !BOARDS.iter().any(|b| b.0 == board) {
                    return Ok(cw_error(
                        404,
                        "NotFound",
                        &format!("Board with id {board} not found"),
                        None,
                    ));
                }
                let rows = STATUSES.iter().filter(|s| s.1 == board).map(|(id, b, name, closed)| {
                    json!({"id": id, "name": name, "board": {"id": b}, "closedStatus": closed, "inactive": false})
                });
                list(rows.collect(), &q)
            }
            (&Method::GET, ["service", "priorities"]) => {
                let rows = PRIORITIES
                    .iter()
                    .map(|(id, name)| json!({"id": id, "name": name, "sortOrder": id}));
                list(rows.collect(), &q)
            }
            (&Method::GET, ["company", "companies"]) => {
                let rows = COMPANIES.iter().map(|(id, ident, name)| {
                    json!({"id": id, "identifier": ident, "name": name, "status": {"id": 1, "name": "Active"}})
                });
                list(rows.collect(), &q)
            }
            (&Method::GET, ["service", "tickets"]) => {
                let rows = self.tickets().iter().map(Ticket::to_json).collect();
                list(rows, &q)
            }
            (&Method::GET, ["service", "tickets", id]) => match self.ticket(number(id)?) {
                Some(t) => Ok(Answer::json(200, &pick(t.to_json(), &q))),
                None => Ok(no_ticket(id)),
            },
            (&Method::POST, ["service", "tickets"]) => self.create(&req.json()),
            (&Method::POST, ["service", "tickets", id, "notes"]) => {
                self.note(number(id)?, &req.json())
            }
            (&Method::PATCH, ["service", "tickets", id]) => self.patch(number(id)?, &req.json()),
            _ => Err("no such ConnectWise endpoint".into()),
        }
    }
}

fn number(s: &str) -> Result<i64, String> {
    s.parse().map_err(|_| format!("{s:?} is not an id"))
}

/// A `{"id": n}` reference's id, checked for type.
fn reference(body: &Value, key: &str) -> Result<Option<i64>, String> {
    match body.get(key) {
        None => Ok(None),
        Some(v) => {
            require(v, "id", "integer").map_err(|e| format!("{key}: {e}"))?;
            Ok(v["id"].as_i64())
        }
    }
}

impl ConnectWise {
    fn create(&self, body: &Value) -> Result<Answer, String> {
        const KNOWN: [&str; 7] = [
            "summary",
            "initialDescription",
            "board",
            "company",
            "priority",
            "externalXRef",
            "status",
        ];
        let obj = body.as_object().ok_or("the body must be a ticket object")?;
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!("unexpected ticket field {k:?}"));
        }
        require(body, "summary", "string")?;
        require(body, "company", "object")?;
        for k in ["initialDescription", "externalXRef"] {
            if body.get(k).is_some() {
                require(body, k, "string")?;
            }
        }
        let summary = body["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 100 || summary.contains('\n') {
            return Err(format!(
                "summary must be one line of 1..100 characters: {summary:?}"
            ));
        }
        let xref = body["externalXRef"].as_str().unwrap_or_default();
        if xref.chars().count() > 100 {
            return Err("externalXRef longer than 100 characters".into());
        }
        let company = reference(body, "company")?.unwrap_or_default();
        let board = reference(body, "board")?.unwrap_or(1);
        let priority = reference(body, "priority")?;
        if !COMPANIES.iter().any(|c| c.0 == company) {
            return Ok(cw_error(
                400,
                "InvalidObject",
                "ticket object is invalid",
                Some("company"),
            ));
        }
        if !BOARDS.iter().any(|b| b.0 == board) {
            return Ok(cw_error(
                400,
                "InvalidObject",
                "ticket object is invalid",
                Some("board"),
            ));
        }
        if priority.is_some_and(|p| !PRIORITIES.iter().any(|x| x.0 == p)) {
            return Ok(cw_error(
                400,
                "InvalidObject",
                "ticket object is invalid",
                Some("priority"),
            ));
        }
        let mut all = self.tickets.lock().expect("lock");
        let id = all.keys().next_back().map_or(1001, |k| k + 1);
        let t = Ticket {
            id,
            summary: summary.into(),
            initial_description: body["initialDescription"]
                .as_str()
                .unwrap_or_default()
                .into(),
            external_xref: xref.into(),
            board,
            company,
            priority,
            status: STATUSES.iter().find(|s| s.1 == board).map_or(0, |s| s.0),
            closed_by: None,
            notes: Vec::new(),
        };
        let answer = t.to_json();
        all.insert(id, t);
        Ok(Answer::json(201, &answer))
    }

    fn note(&self, ticket: i64, body: &Value) -> Result<Answer, String> {
        require(body, "text", "string")?;
        let flag = |k: &str| -> Result<bool, String> {
            match body.get(k) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(v) => Err(format!("{k} must be a JSON boolean, got {v}")),
            }
        };
        let (detail, internal, resolution) = (
            flag("detailDescriptionFlag")?,
            flag("internalAnalysisFlag")?,
            flag("resolutionFlag")?,
        );
        let mut all = self.tickets.lock().expect("lock");
        let Some(t) = all.get_mut(&ticket) else {
            return Ok(no_ticket(ticket));
        };
        let text = body["text"].as_str().unwrap_or_default();
        if text.is_empty() || !(detail || internal || resolution) {
            return Ok(cw_error(
                400,
                "InvalidObject",
                "note object is invalid",
                Some("text"),
            ));
        }
        let id = 5000 + i64::try_from(t.notes.len()).unwrap_or(0) + ticket * 100;
        t.notes.push(Note {
            id,
            text: text.into(),
            detail,
            internal,
            resolution,
        });
        Ok(Answer::json(
            201,
            &json!({
                "id": id, "ticketId": ticket, "text": text, "detailDescriptionFlag": detail,
                "internalAnalysisFlag": internal, "resolutionFlag": resolution,
                "createdBy": API_MEMBER, "_info": info(&format!("{PREFIX}/service/tickets/{ticket}/notes/{id}")),
            }),
        ))
    }

    fn patch(&self, ticket: i64, body: &Value) -> Result<Answer, String> {
        let ops = body
            .as_array()
            .ok_or("PATCH takes a JSON Patch array of operations")?;
        if ops.is_empty() {
            return Err("an empty JSON Patch".into());
        }
        let mut all = self.tickets.lock().expect("lock");
        let Some(t) = all.get_mut(&ticket) else {
            return Ok(no_ticket(ticket));
        };
        for op in ops {
            require(op, "op", "string")?;
            require(op, "path", "string")?;
            if !matches!(op["op"].as_str(), Some("replace" | "add" | "remove")) {
                return Err(format!(
                    "JSON Patch op {} is not replace/add/remove",
                    op["op"]
                ));
            }
            if op["path"].as_str().map(|p| p.trim_start_matches('/')) != Some("status") {
                return Err(format!("this fake only patches status, not {}", op["path"]));
            }
            let status = reference(op, "value")?.ok_or("status needs a value {\"id\": …}")?;
            if !STATUSES.iter().any(|s| s.0 == status && s.1 == t.board) {
                return Ok(cw_error(
                    400,
                    "InvalidObject",
                    "ticket object is invalid",
                    Some("status"),
                ));
            }
            // Closing through the API names the API member; reopening
            // clears it.
            t.closed_by = is_closed(status).then(|| API_MEMBER.to_string());
            t.status = status;
        }
        Ok(Answer::json(200, &t.to_json()))
    }
}

/// The query string as a map; `pageSize` checked.
fn query(raw: &str) -> Result<HashMap<String, String>, String> {
    let uri: axum::http::Uri = format!("/?{raw}")
        .parse()
        .map_err(|e| format!("query: {e}"))?;
    let q = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map_err(|e| format!("query: {e}"))?
        .0;
    if let Some(size) = q.get("pageSize") {
        match size.parse::<u32>() {
            Ok(1..=1000) => {}
            _ => return Err(format!("pageSize {size:?} must be 1..1000")),
        }
    }
    Ok(q)
}

/// A list answer: rows matching `conditions`, one page, `fields` only.
fn list(rows: Vec<Value>, q: &HashMap<String, String>) -> Result<Answer, String> {
    let conds = match q.get("conditions") {
        Some(c) => conditions::parse(c)?,
        None => Vec::new(),
    };
    let size = q.get("pageSize").and_then(|s| s.parse().ok()).unwrap_or(25);
    let out: Vec<Value> = rows
        .into_iter()
        .filter(|r| conds.iter().all(|c| c.matches(r)))
        .take(size)
        .map(|r| pick(r, q))
        .collect();
    Ok(Answer::json(200, &Value::Array(out)))
}

/// Only the `fields` asked for (all without a `fields` parameter).
fn pick(row: Value, q: &HashMap<String, String>) -> Value {
    let Some(fields) = q.get("fields") else {
        return row;
    };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    match row {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

pub mod conditions;
