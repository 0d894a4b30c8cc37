//! The ConnectWise Manage REST API as this connector uses it: requests with
//! the credentials, lookups of names to ids (cached), and the
//! [`Connector`] calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::super::{Connector, Created, NewPsaTicket};
use crate::sinks::http::{self, HttpFailure};
use crate::sinks::{CheckResult, Notification, Outcome, RemoteClose, SinkLink};
use crate::{Error, Result};

/// The API version this connector was written against (ConnectWise
/// versions its JSON by this header, not by the URL).
pub const ACCEPT_VALUE: &str = "application/vnd.connectwise.com+json; version=2022.1";
/// Longest ticket `summary` ConnectWise takes.
pub const SUMMARY_CHARS: usize = 100;
/// Tickets asked about per `closed` request.
const CLOSED_BATCH: usize = 100;

/// Everything the connector is configured with (secrets already read).
pub struct Settings {
    /// `url` + `api_path`.
    pub api: reqwest::Url,
    pub ui: reqwest::Url,
    pub company_id: String,
    /// `company+public:private`, Base64-encoded into the header only.
    pub login: String,
    pub client_id: String,
    pub board: String,
    pub closed_status: String,
    pub companies: BTreeMap<String, String>,
    pub boards: BTreeMap<String, String>,
    /// `P1`…`P4` → priority name (defaults filled in).
    pub priorities: BTreeMap<String, String>,
    pub poll: Duration,
    pub timeout: Duration,
}

/// Ids looked up by name: boards, companies and priorities rarely change,
/// so each is asked once per process (a rename needs a restart).
#[derive(Default)]
struct Cache {
    boards: HashMap<String, i64>,
    /// Board id → id of its `closed_status`.
    closed: HashMap<i64, i64>,
    /// Priority name → id, all of them.
    priorities: Option<HashMap<String, i64>>,
    /// Company identifier → id.
    companies: HashMap<String, i64>,
}

/// One ConnectWise site.
pub struct ConnectWise {
    pub(super) s: Settings,
    client: reqwest::Client,
    auth: HeaderValue,
    client_id: HeaderValue,
    cache: Mutex<Cache>,
}

#[derive(Deserialize)]
pub(super) struct Id {
    pub id: i64,
}

#[derive(Deserialize)]
pub(super) struct Named {
    pub id: i64,
    pub name: String,
}

#[derive(Deserialize)]
struct TicketBoard {
    board: Option<Id>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClosedTicket {
    id: i64,
    #[serde(default)]
    closed_flag: bool,
    #[serde(default)]
    closed_by: Option<String>,
}

#[derive(Deserialize)]
struct SystemInfo {
    #[serde(default)]
    version: String,
}

/// ConnectWise's error body: `{"code":"InvalidObject","message":…,
/// "errors":[{"code":…,"message":…,"resource":…,"field":…}]}`.
#[derive(Deserialize)]
struct CwError {
    code: String,
    message: String,
    #[serde(default)]
    errors: Vec<CwFieldError>,
}

#[derive(Deserialize)]
struct CwFieldError {
    message: String,
    #[serde(default)]
    field: String,
}

pub(super) fn park(reason: String) -> HttpFailure {
    HttpFailure(Outcome::Park(reason))
}

/// A string in a `conditions` expression: double quotes, with `\` and `"`
/// escaped.
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A ticket title as a `summary`: one line, at most 100 characters.
pub fn summary(title: &str) -> String {
    let line = title.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(SUMMARY_CHARS).collect()
}

/// A refusal in ConnectWise's words: its error body's message and field
/// errors, and plain advice for refused credentials.
pub fn refine(f: HttpFailure) -> HttpFailure {
    let Outcome::Park(msg) = &f.0 else {
        return f;
    };
    let Some(after) = msg.strip_prefix("HTTP ") else {
        return f;
    };
    let status: String = after.chars().take_while(char::is_ascii_digit).collect();
    if status == "401" || status == "403" {
        return park(format!(
            "ConnectWise refused the credentials (HTTP {status}): check company_id, public_key, \
             private_key, client_id and the API member's security role, then send the parked \
             deliveries again"
        ));
    }
    let Some(e) = after
        .split_once(": ")
        .and_then(|(_, body)| serde_json::from_str::<CwError>(body).ok())
    else {
        return f;
    };
    let mut reason = format!(
        "ConnectWise refused the request (HTTP {status} {}): {}",
        e.code, e.message
    );
    for fe in e.errors {
        if fe.field.is_empty() {
            reason.push_str(&format!("; {}", fe.message));
        } else {
            reason.push_str(&format!("; {}: {}", fe.field, fe.message));
        }
    }
    park(reason)
}

fn header(value: &str, what: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::Config(format!(
            "sinks.connectwise {what}: contains characters an HTTP header cannot carry"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl ConnectWise {
    pub fn new(s: Settings) -> Result<Self> {
        let basic = base64::engine::general_purpose::STANDARD.encode(s.login.as_bytes());
        Ok(Self {
            client: http::client(s.timeout)?,
            auth: header(&format!("Basic {basic}"), "credentials")?,
            client_id: header(&s.client_id, "client_id")?,
            cache: Mutex::new(Cache::default()),
            s,
        })
    }

    fn cache<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        // A panic elsewhere cannot leave the cache half-written: every
        // change is one insert.
        f(&mut self.cache.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.s.api.as_str().trim_end_matches('/'));
        self.client
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
            .header("clientId", self.client_id.clone())
            .header(ACCEPT, ACCEPT_VALUE)
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> std::result::Result<T, HttpFailure> {
        http::send_json(self.request(Method::GET, path).query(query))
            .await
            .map_err(refine)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<(), HttpFailure> {
        http::send(self.request(method, path).json(body), 1 << 20)
            .await
            .map(|_| ())
            .map_err(refine)
    }

    /// The id of the first record at `path` matching `conditions`; a
    /// park saying `missing()` if there is none.
    async fn first_id(
        &self,
        path: &str,
        conditions: &str,
        missing: impl FnOnce() -> String,
    ) -> std::result::Result<i64, HttpFailure> {
        let found: Vec<Id> = self
            .get(path, &[("conditions", conditions), ("fields", "id")])
            .await?;
        found.first().map(|r| r.id).ok_or_else(|| park(missing()))
    }

    /// A board's id by name; `key` names where the name came from.
    pub(super) async fn board_id(
        &self,
        name: &str,
        key: &str,
    ) -> std::result::Result<i64, HttpFailure> {
        if let Some(id) = self.cache(|c| c.boards.get(name).copied()) {
            return Ok(id);
        }
        let cond = format!("name={}", quoted(name));
        let id = self
            .first_id("/service/boards", &cond, || {
                format!("ConnectWise has no service board named {name:?} ({key})")
            })
            .await?;
        self.cache(|c| c.boards.insert(name.to_string(), id));
        Ok(id)
    }

    /// The id of `closed_status` on board `board`.
    pub(super) async fn closed_status_id(
        &self,
        board: i64,
    ) -> std::result::Result<i64, HttpFailure> {
        if let Some(id) = self.cache(|c| c.closed.get(&board).copied()) {
            return Ok(id);
        }
        let name = &self.s.closed_status;
        let cond = format!("name={}", quoted(name));
        let id = self
            .first_id(&format!("/service/boards/{board}/statuses"), &cond, || {
                format!("ConnectWise board {board} has no status named {name:?} (closed_status)")
            })
            .await?;
        self.cache(|c| c.closed.insert(board, id));
        Ok(id)
    }

    /// Every priority, name → id.
    pub(super) async fn priorities(
        &self,
    ) -> std::result::Result<HashMap<String, i64>, HttpFailure> {
        if let Some(all) = self.cache(|c| c.priorities.clone()) {
            return Ok(all);
        }
        let found: Vec<Named> = self
            .get(
                "/service/priorities",
                &[("fields", "id,name"), ("pageSize", "1000")],
            )
            .await?;
        let all: HashMap<String, i64> = found.into_iter().map(|p| (p.name, p.id)).collect();
        self.cache(|c| c.priorities = Some(all.clone()));
        Ok(all)
    }

    /// The ConnectWise priority id of a Forewarn priority (`None`: not
    /// mapped, the board's default applies).
    async fn priority_id(&self, prio: &str) -> std::result::Result<Option<i64>, HttpFailure> {
        let Some(name) = self.s.priorities.get(prio) else {
            return Ok(None);
        };
        match self.priorities().await?.get(name) {
            Some(id) => Ok(Some(*id)),
            None => Err(park(format!(
                "ConnectWise has no priority named {name:?} (priorities.{prio})"
            ))),
        }
    }

    /// A company's id by identifier; `key` names where it came from.
    pub(super) async fn company_id(
        &self,
        identifier: &str,
        key: &str,
    ) -> std::result::Result<i64, HttpFailure> {
        if let Some(id) = self.cache(|c| c.companies.get(identifier).copied()) {
            return Ok(id);
        }
        let cond = format!("identifier={}", quoted(identifier));
        let id = self
            .first_id("/company/companies", &cond, || {
                format!("ConnectWise has no company with identifier {identifier:?} ({key})")
            })
            .await?;
        self.cache(|c| c.companies.insert(identifier.to_string(), id));
        Ok(id)
    }

    /// The ConnectWise server's version (`GET /system/info`).
    pub(super) async fn version(&self) -> std::result::Result<String, HttpFailure> {
        let info: SystemInfo = self.get("/system/info", &[]).await?;
        Ok(info.version)
    }

    /// A ticket as Forewarn links it: its id and its page in the UI.
    pub fn created(&self, id: i64) -> Created {
        let mut u = self.s.ui.clone();
        u.set_path(&format!(
            "{}/v4_6_release/services/system_io/Service/fv_sr100_request.rails",
            u.path().trim_end_matches('/')
        ));
        u.query_pairs_mut()
            .append_pair("service_recid", &id.to_string())
            .append_pair("companyName", &self.s.company_id);
        Created {
            id: id.to_string(),
            url: Some(u.to_string()),
        }
    }

    async fn add_note(
        &self,
        ticket: i64,
        text: &str,
        resolution: bool,
    ) -> std::result::Result<(), HttpFailure> {
        let body = json!({
            "text": text,
            "detailDescriptionFlag": true,
            "internalAnalysisFlag": false,
            "resolutionFlag": resolution,
        });
        self.send(
            Method::POST,
            &format!("/service/tickets/{ticket}/notes"),
            &body,
        )
        .await
    }
}

/// A linked ticket's number.
fn ticket_number(id: &str) -> std::result::Result<i64, HttpFailure> {
    id.parse()
        .map_err(|_| park(format!("{id:?} is not a ConnectWise ticket number")))
}

#[async_trait]
impl Connector for ConnectWise {
    async fn create(&self, t: &NewPsaTicket<'_>) -> std::result::Result<Created, HttpFailure> {
        let n = t.notification;
        let Some(identifier) = self.company_of(&n.tenant_name, &n.tenant_id) else {
            return Err(park(format!(
                "tenant {:?} has no ConnectWise company: set companies.{} = \"<company identifier>\" \
                 in this [[sinks.connectwise]] (`forewarn-collector sink map NAME --tenant {}` lists candidates)",
                n.tenant_name, n.tenant_name, n.tenant_name
            )));
        };
        let company = self
            .company_id(identifier, &format!("companies.{}", n.tenant_name))
            .await?;
        let (board_key, board_name) = self.board_of(&n.tenant_name, &n.tenant_id);
        let board = self.board_id(board_name, &board_key).await?;
        let mut body = json!({
            "summary": summary(t.title),
            "initialDescription": t.body,
            "board": {"id": board},
            "company": {"id": company},
            "externalXRef": t.key,
        });
        if let Some(p) = self.priority_id(&n.priority).await? {
            body["priority"] = json!({ "id": p });
        }
        let made: Id = http::send_json(self.request(Method::POST, "/service/tickets").json(&body))
            .await
            .map_err(refine)?;
        Ok(self.created(made.id))
    }

    async fn find(
        &self,
        t: &NewPsaTicket<'_>,
    ) -> std::result::Result<Option<Created>, HttpFailure> {
        let cond = format!("externalXRef={}", quoted(t.key));
        let found: Vec<Id> = self
            .get(
                "/service/tickets",
                &[("conditions", &cond), ("fields", "id")],
            )
            .await?;
        Ok(found.first().map(|f| self.created(f.id)))
    }

    async fn note(
        &self,
        id: &str,
        _n: &Notification,
        text: &str,
    ) -> std::result::Result<(), HttpFailure> {
        self.add_note(ticket_number(id)?, text, false).await
    }

    async fn close(
        &self,
        id: &str,
        _n: &Notification,
        text: &str,
    ) -> std::result::Result<(), HttpFailure> {
        let number = ticket_number(id)?;
        // The ticket's own board: a technician may have moved it.
        let t: TicketBoard = self
            .get(
                &format!("/service/tickets/{number}"),
                &[("fields", "id,board")],
            )
            .await?;
        let board = t
            .board
            .ok_or_else(|| park(format!("ConnectWise ticket {number} has no board")))?;
        let status = self.closed_status_id(board.id).await?;
        let patch = json!([{"op": "replace", "path": "status", "value": {"id": status}}]);
        self.send(Method::PATCH, &format!("/service/tickets/{number}"), &patch)
            .await?;
        self.add_note(number, text, true).await
    }

    async fn closed(&self, open: &[SinkLink]) -> std::result::Result<Vec<RemoteClose>, String> {
        let ids: Vec<String> = open
            .iter()
            .filter(|l| l.external_id.parse::<i64>().is_ok())
            .map(|l| l.external_id.clone())
            .collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(CLOSED_BATCH) {
            let cond = format!("id in ({}) and closedFlag=true", chunk.join(","));
            let size = CLOSED_BATCH.to_string();
            let found: Vec<ClosedTicket> = self
                .get(
                    "/service/tickets",
                    &[
                        ("conditions", &cond),
                        ("fields", "id,closedFlag,closedBy,status"),
                        ("pageSize", &size),
                    ],
                )
                .await
                .map_err(|f| f.message())?;
            out.extend(found.into_iter().filter(|t| t.closed_flag).map(|t| {
                RemoteClose {
                    external_id: t.id.to_string(),
                    closed_by: t
                        .closed_by
                        .filter(|b| !b.trim().is_empty())
                        .unwrap_or_else(|| "someone in ConnectWise".to_string()),
                }
            }));
        }
        Ok(out)
    }

    async fn health(&self) -> CheckResult {
        self.check().await
    }

    async fn mapping(&self, tenant: &str) -> CheckResult {
        self.map(tenant).await
    }

    fn request_timeout(&self) -> Duration {
        self.s.timeout
    }

    fn poll_every(&self) -> Duration {
        self.s.poll
    }

    fn vendor(&self) -> &'static str {
        "ConnectWise"
    }
}
