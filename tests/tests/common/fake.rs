//! Contract fakes of SaaS receivers (PSAs, PagerDuty, Slack, Teams): a real
//! HTTP server on 127.0.0.1 that records every request, checks it against
//! the vendor's documented shape ([`Vendor::answer`]) and answers as the
//! vendor does. A request that breaks the contract is answered 400 and
//! kept in [`Fake::violations`], which every test asserts empty.
//!
//! [`Fake::set_down`] makes it answer 503 to everything (an outage), and
//! [`Fake::set_status`] forces one status for everything (a 401 after a
//! key rotation), without forgetting what it holds.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// The raw query string ("" if none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Unix ms when it arrived.
    pub at_ms: i64,
    /// The status the fake answered.
    pub status: u16,
}

impl Request {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value as text ("" if absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A vendor's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

impl Answer {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            content_type: "application/json",
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_string(),
            content_type: "text/plain",
        }
    }
}

/// One vendor's documented behaviour.
pub trait Vendor: Send + Sync + 'static {
    /// Answers one request. `Err(problem)`: the request breaks the vendor's
    /// documented contract (answered 400 and recorded as a violation).
    fn answer(&self, req: &Request) -> Result<Answer, String>;
}

struct Shared<V> {
    vendor: V,
    requests: Mutex<Vec<Request>>,
    violations: Mutex<Vec<String>>,
    down: AtomicBool,
    forced: AtomicU16,
}

/// A running fake of vendor `V`.
pub struct Fake<V> {
    shared: Arc<Shared<V>>,
    pub addr: SocketAddr,
}

impl<V: Vendor> Fake<V> {
    /// Starts the fake on 127.0.0.1, any free port.
    pub async fn start(vendor: V) -> Self {
        Self::start_on(vendor, IpAddr::from([127, 0, 0, 1])).await
    }

    /// Starts the fake on `ip`, any free port.
    pub async fn start_on(vendor: V, ip: IpAddr) -> Self {
        let shared = Arc::new(Shared {
            vendor,
            requests: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            forced: AtomicU16::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle::<V>)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
            .await
            .expect("bind fake");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { shared, addr }
    }

    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn vendor(&self) -> &V {
        &self.shared.vendor
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Contract violations so far: every test asserts there are none.
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().expect("lock").clone()
    }

    /// An outage: 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Forces `status` (e.g. 401) for every request; `None` = normal.
    pub fn set_status(&self, status: Option<u16>) {
        self.shared
            .forced
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }
}

async fn handle<V: Vendor>(
    State(s): State<Arc<Shared<V>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut req = Request {
        method,
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body,
        at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        status: 0,
    };
    let forced = s.forced.load(Ordering::SeqCst);
    let answer = if s.down.load(Ordering::SeqCst) {
        Answer::text(503, "service unavailable (fake outage)")
    } else if forced != 0 {
        Answer::json(
            forced,
            &serde_json::json!({"message": format!("forced {forced} by the test")}),
        )
    } else {
        match s.vendor.answer(&req) {
            Ok(a) => a,
            Err(problem) => {
                let line = format!("{} {}: {problem}", req.method, req.path);
                s.violations.lock().expect("lock").push(line.clone());
                Answer::json(400, &serde_json::json!({ "message": line }))
            }
        }
    };
    req.status = answer.status;
    s.requests.lock().expect("lock").push(req);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, answer.content_type)],
        answer.body,
    )
        .into_response()
}

/// Checks that `v[key]` exists and is of JSON type `kind` ("string",
/// "number", "integer", "boolean", "object", "array"); the problem if not.
pub fn require(v: &serde_json::Value, key: &str, kind: &str) -> Result<(), String> {
    let got = v
        .get(key)
        .ok_or_else(|| format!("required field {key:?} missing"))?;
    let ok = match kind {
        "string" => got.is_string(),
        "number" => got.is_number(),
        "integer" => got.is_i64() || got.is_u64(),
        "boolean" => got.is_boolean(),
        "object" => got.is_object(),
        "array" => got.is_array(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("field {key:?} must be a JSON {kind}, got {got}"))
    }
}
