//! A contract fake of the HaloPSA API, as its documentation describes it
//! (docs/sinks/halopsa.md names the pages):
//!
//! - `POST /auth/token`: form-encoded, `grant_type=client_credentials`, the
//!   client's id and secret and a scope → a bearer token this fake issued,
//!   valid for [`HaloPsa::expires_in`] seconds (wrong credentials: 401
//!   `invalid_client`);
//! - every `/api/…` call carries `Authorization: Bearer <a token it issued
//!   and that has not expired>` (else 401, as Halo answers);
//! - `POST /api/Tickets` takes a JSON **array** (a create needs `summary`,
//!   `client_id`, `tickettype_id`, `priority_id` integers that exist; an
//!   update `id` and e.g. `status_id`); `POST /api/Actions` an array of
//!   actions with integer `ticket_id`; ids are integers everywhere;
//! - lookups: `GET /api/Tickets?search=`, `/api/Tickets/{id}`,
//!   `/api/Agent/{id}`, `/api/TicketType/{id}`, `/api/Client?search=`,
//!   `/api/Team`, `/api/Status`, `/api/Priority`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};

use super::super::fake::{Answer, Request, Vendor, require};
use super::super::psa_e2e::{PsaFake, PsaTicket};

/// Clients: (id, name).
pub const CLIENTS: [(i64, &str); 2] = [(12, "Acme Corporation"), (13, "Globex")];
/// Ticket types: (id, name).
pub const TICKET_TYPES: [(i64, &str); 2] = [(1, "Incident"), (31, "Monitoring Alert")];
/// Teams: (id, name).
pub const TEAMS: [(i64, &str); 2] = [(2, "1st Line Support"), (5, "Monitoring")];
/// Statuses: (id, name).
pub const STATUSES: [(i64, &str); 3] = [(1, "New"), (2, "In Progress"), (9, "Closed")];
/// The technician who closes tickets in the tests: (agent id, name).
pub const TECHNICIAN: (i64, &str) = (17, "Sam Technician");
/// The API application's own agent.
pub const API_AGENT: (i64, &str) = (1, "Forewarn API");

#[derive(Default)]
struct State {
    /// Token → when it expires.
    tokens: BTreeMap<String, Instant>,
    issued: u64,
    tickets: BTreeMap<i64, Value>,
    actions: Vec<Value>,
    refusals: Vec<String>,
}

/// The fake HaloPSA tenant.
pub struct HaloPsa {
    client_id: String,
    client_secret: String,
    /// Lifetime of the tokens it issues, in seconds.
    pub expires_in: u64,
    state: Mutex<State>,
}

impl HaloPsa {
    pub fn new(client_id: &str, client_secret: &str, expires_in: u64) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expires_in,
            state: Mutex::new(State::default()),
        }
    }

    /// Every token issued so far expires now (Halo revoking them).
    pub fn expire_tokens(&self) {
        let mut st = self.state.lock().expect("lock");
        let now = Instant::now();
        for t in st.tokens.values_mut() {
            *t = now;
        }
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.state.lock().expect("lock").issued
    }

    fn token(&self, req: &Request) -> Result<Answer, String> {
        if req.method != Method::POST {
            return Err("the token endpoint takes a POST".into());
        }
        if !req
            .header("content-type")
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(format!(
                "token request Content-Type {:?}, not a form",
                req.header("content-type")
            ));
        }
        let form = pairs(&String::from_utf8_lossy(&req.body));
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return Err(format!(
                "grant_type {:?}, not client_credentials",
                form.get("grant_type")
            ));
        }
        for k in ["client_id", "client_secret", "scope"] {
            if form.get(k).is_none_or(String::is_empty) {
                return Err(format!("token request without {k}"));
            }
        }
        if form["client_id"] != self.client_id || form["client_secret"] != self.client_secret {
            return Ok(Answer::json(401, &json!({"error": "invalid_client"})));
        }
        let mut st = self.state.lock().expect("lock");
        st.issued += 1;
        let token = format!("halo-token-{}-{}", st.issued, uuid::Uuid::new_v4().simple());
        st.tokens.insert(
            token.clone(),
            Instant::now() + Duration::from_secs(self.expires_in),
        );
        Ok(Answer::json(
            200,
            &json!({
                "access_token": token, "token_type": "Bearer", "expires_in": self.expires_in, "scope": form["scope"],
            }),
        ))
    }

    fn refuse(st: &mut State, msg: String) -> Answer {
        st.refusals.push(msg.clone());
        Answer::json(400, &json!({ "message": msg }))
    }

    fn api(&self, req: &Request, path: &str) -> Result<Answer, String> {
        let auth = req.header("authorization");
        let Some(token) = auth.strip_prefix("Bearer ") else {
            return Err(format!("Authorization {auth:?} is not a bearer token"));
        };
        let mut st = self.state.lock().expect("lock");
        match st.tokens.get(token) {
            Some(until) if Instant::now() < *until => {}
            Some(_) => return Ok(Answer::text(401, "token expired")),
            None => return Err("a bearer token this fake never issued".into()),
        }
        let body = req.json();
        let query = pairs(&req.query);
        let segs: Vec<&str> = path.split('/').collect();
        let id_of = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("id {s:?} is not an integer"))
        };
        let named = |rows: &[(i64, &str)], key: &str| {
            rows.iter()
                .map(|(id, n)| json!({"id": id, key: n, "name": n}))
                .collect::<Vec<_>>()
        };
        match (&req.method, segs.as_slice()) {
            (&Method::POST, ["Tickets"]) => {
                let items = body.as_array().ok_or("POST /api/Tickets takes a JSON array")?;
                let mut out = Vec::new();
                for t in items {
                    match self.upsert(&mut st, t)? {
                        Ok(v) => out.push(v),
                        Err(refused) => return Ok(refused),
                    }
                }
                // One ticket in, one object out (as Halo answers).
                Ok(Answer::json(201, &if out.len() == 1 { out.remove(0) } else { json!(out) }))
            }
            (&Method::POST, ["Actions"]) => {
                let items = body.as_array().ok_or("POST /api/Actions takes a JSON array")?;
                for a in items {
                    require(a, "ticket_id", "integer")?;
                    require(a, "note", "string")?;
                    require(a, "outcome", "string")?;
                    if a.get("hiddenfromuser").is_some() {
                        require(a, "hiddenfromuser", "boolean")?;
                    }
                    let tid = a["ticket_id"].as_i64().unwrap_or_default();
                    if !st.tickets.contains_key(&tid) {
                        return Ok(Self::refuse(&mut st, format!("ticket {tid} not found")));
                    }
                    let mut a = a.clone();
                    a["id"] = json!(st.actions.len() + 1);
                    st.actions.push(a);
                }
                Ok(Answer::json(201, st.actions.last().unwrap_or(&Value::Null)))
            }
            (&Method::GET, ["Tickets"]) => {
                let search = query.get("search").cloned().unwrap_or_default().to_ascii_lowercase();
                let client = query.get("client_id").map(|c| id_of(c)).transpose()?;
                let found: Vec<Value> = st.tickets.values()
                    .filter(|t| t["summary"].as_str().is_some_and(|s| s.to_ascii_lowercase().contains(&search)))
                    .filter(|t| client.is_none_or(|c| t["client_id"] == c))
                    .cloned().collect();
                Ok(Answer::json(200, &json!({"record_count": found.len(), "tickets": found})))
            }
            (&Method::GET, ["Tickets", id]) => Ok(match st.tickets.get(&id_of(id)?) {
                Some(t) => Answer::json(200, t),
                None => Answer::json(404, &json!({"message": "ticket not found"})),
            }),
            (&Method::GET, ["Agent", id]) => {
                let id = id_of(id)?;
                Ok(match [API_AGENT, TECHNICIAN].into_iter().find(|(a, _)| *a == id) {
                    Some((a, n)) => Answer::json(200, &json!({"id": a, "name": n})),
                    None => Answer::json(404, &json!({"message": "agent not found"})),
                })
            }
            (&Method::GET, ["TicketType", id]) => {
                let id = id_of(id)?;
                Ok(match TICKET_TYPES.iter().find(|(t, _)| *t == id) {
                    Some((t, n)) => Answer::json(200, &json!({"id": t, "name": n})),
                    None => Answer::json(404, &json!({"message": "ticket type not found"})),
                })
            }
            (&Method::GET, ["Client"]) => {
                let search = query.get("search").cloned().unwrap_or_default().to_ascii_lowercase();
                let found: Vec<Value> = named(&CLIENTS, "name").into_iter()
                    .filter(|c| c["name"].as_str().is_some_and(|n| n.to_ascii_lowercase().contains(&search)))
                    .collect();
                Ok(Answer::json(200, &json!({"record_count": found.len(), "clients": found})))
            }
            (&Method::GET, ["Team"]) => Ok(Answer::json(200, &json!(named(&TEAMS, "name")))),
            (&Method::GET, ["Status"]) => Ok(Answer::json(200, &json!(named(&STATUSES, "name")))),
            (&Method::GET, ["Priority"]) => Ok(Answer::json(200, &json!((1..=4).map(|p| json!({
                "id": format!("1-{p}"), "slaid": 1, "priorityid": p, "name": format!("Priority {p}"),
            })).collect::<Vec<_>>()))),
            _ => Err("no such HaloPSA API endpoint".into()),
        }
    }

    /// One element of `POST /api/Tickets`: an update (has `id`) or a create.
    fn upsert(&self, st: &mut State, t: &Value) -> Result<Result<Value, Answer>, String> {
        if !t.is_object() {
            return Err("each ticket must be an object".into());
        }
        if let Some(id) = t.get("id") {
            require(t, "id", "integer")?;
            let id = id.as_i64().unwrap_or_default();
            if t.get("status_id").is_some() {
                require(t, "status_id", "integer")?;
                if !STATUSES
                    .iter()
                    .any(|(s, _)| Some(*s) == t["status_id"].as_i64())
                {
                    return Ok(Err(Self::refuse(
                        st,
                        format!("status {} not found", t["status_id"]),
                    )));
                }
            }
            let Some(row) = st.tickets.get_mut(&id) else {
                return Ok(Err(Self::refuse(st, format!("ticket {id} not found"))));
            };
            for (k, v) in t.as_object().into_iter().flatten() {
                row[k] = v.clone();
            }
            if t["status_id"] == 9 && row["agent_id"] == 0 {
                row["agent_id"] = json!(API_AGENT.0);
            }
            return Ok(Ok(row.clone()));
        }
        require(t, "summary", "string")?;
        for k in ["client_id", "tickettype_id", "priority_id"] {
            require(t, k, "integer")?;
        }
        if t.get("details").is_some() {
            require(t, "details", "string")?;
        }
        let summary = t["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 255 {
            return Err(format!(
                "summary must be 1..255 characters, has {}",
                summary.chars().count()
            ));
        }
        let exists =
            |rows: &[(i64, &str)], v: &Value| rows.iter().any(|(id, _)| Some(*id) == v.as_i64());
        if !exists(&CLIENTS, &t["client_id"]) {
            return Ok(Err(Self::refuse(
                st,
                format!("client {} not found", t["client_id"]),
            )));
        }
        if !exists(&TICKET_TYPES, &t["tickettype_id"]) {
            return Ok(Err(Self::refuse(
                st,
                format!("ticket type {} not found", t["tickettype_id"]),
            )));
        }
        if !(1..=4).contains(&t["priority_id"].as_i64().unwrap_or_default()) {
            return Ok(Err(Self::refuse(
                st,
                format!("priority {} not found", t["priority_id"]),
            )));
        }
        if let Some(team) = t.get("team") {
            let name = team
                .as_str()
                .ok_or("team must be a string (the team's name)")?;
            if !TEAMS.iter().any(|(_, n)| *n == name) {
                return Ok(Err(Self::refuse(st, format!("team {name:?} not found"))));
            }
        }
        let id = 2100 + i64::try_from(st.tickets.len()).unwrap_or_default();
        let mut row = t.clone();
        row["id"] = json!(id);
        row["status_id"] = json!(1);
        row["agent_id"] = json!(0);
        st.tickets.insert(id, row.clone());
        Ok(Ok(row))
    }
}

/// `a=1&b=2` (form or query, percent-decoded) as a map.
fn pairs(text: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{text}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

impl Vendor for HaloPsa {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        if req.path == "/auth/token" {
            return self.token(req);
        }
        match req.path.strip_prefix("/api/") {
            Some(path) => self.api(req, path),
            None => Err("neither /auth/token nor under /api/".into()),
        }
    }
}

impl PsaFake for HaloPsa {
    fn tickets(&self) -> Vec<PsaTicket> {
        let st = self.state.lock().expect("lock");
        st.tickets
            .values()
            .map(|t| {
                let id = t["id"].as_i64().unwrap_or_default();
                PsaTicket {
                    id,
                    company: t["client_id"].as_i64().unwrap_or_default(),
                    title: t["summary"].as_str().unwrap_or_default().into(),
                    body: t["details"].as_str().unwrap_or_default().into(),
                    priority: t["priority_id"].to_string(),
                    queue: t["team"].as_str().unwrap_or_default().into(),
                    closed: t["status_id"] == 9,
                    notes: st
                        .actions
                        .iter()
                        .filter(|a| a["ticket_id"] == id)
                        .map(|a| a["note"].as_str().unwrap_or_default().into())
                        .collect(),
                }
            })
            .collect()
    }

    fn close_as_technician(&self, id: i64) -> String {
        let mut st = self.state.lock().expect("lock");
        let t = st.tickets.get_mut(&id).expect("ticket to close");
        t["status_id"] = json!(9);
        t["agent_id"] = json!(TECHNICIAN.0);
        TECHNICIAN.1.into()
    }

    fn refused(&self) -> Vec<String> {
        self.state.lock().expect("lock").refusals.clone()
    }

    fn is_ticket_write(req: &Request) -> bool {
        req.method == Method::POST && (req.path == "/api/Tickets" || req.path == "/api/Actions")
    }
}
