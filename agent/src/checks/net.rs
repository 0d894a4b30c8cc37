//! Network checks: `tcp` (`[[checks.tcp]]`: can a port be connected to,
//! and how fast) and `http` (`[[checks.http]]`: does a URL answer with an
//! expected status, and a body that contains or matches what is expected
//! ([`body`]), and how fast). Plus what the `certificate` check shares
//! with them: connecting with a deadline and the host's trusted roots.
//!
//! A name that does not resolve is UNKNOWN (the check cannot say anything
//! about the service); a refused, timed-out or failed connection is CRIT.
//!
//! HTTPS trusts the operating system's root store (`rustls-native-certs`:
//! the CA bundle on Linux, the keychain on macOS, the Windows store), not a
//! bundle compiled into the agent: internal services are usually signed by
//! a company CA installed on the machine, and the OS keeps the store up to
//! date. It is read once per process, on the first HTTPS or certificate
//! check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tracing::{debug, warn};

mod body;

use self::body::{BODY_CAP, Body, BodyMatch};
use super::limits::{self, MAX_MESSAGE_BYTES};
use super::{BoxFuture, CheckState, Evaluation, Metric, Probe};
use crate::config::{HttpConfig, TcpConfig};

/// Every configured tcp check as a probe.
pub fn build_tcp(checks: &[TcpConfig]) -> Vec<Box<dyn Probe>> {
    checks
        .iter()
        .map(|c| Box::new(TcpProbe { config: c.clone() }) as Box<dyn Probe>)
        .collect()
}

/// Every configured http check as a probe (configs are validated first;
/// a URL that does not parse reports UNKNOWN).
pub fn build_http(checks: &[HttpConfig]) -> Vec<Box<dyn Probe>> {
    checks
        .iter()
        .map(|c| Box::new(HttpProbe::new(c)) as Box<dyn Probe>)
        .collect()
}

// === connecting ===

/// `host:port` split, the host without IPv6 brackets; `None` when it is
/// not that shape or the port is 0.
pub(crate) fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
}

impl ConnectError {
    /// Not resolving says nothing about the service: UNKNOWN; not
    /// connecting is the failure being watched for: CRIT.
    pub(super) fn state(&self) -> CheckState {
        match self {
            Self::Resolve { .. } | Self::NoAddress { .. } => CheckState::Unknown,
            Self::Connect { .. } => CheckState::Crit,
        }
    }
}

/// Connects to the first address of `host` that accepts.
pub(super) async fn connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ConnectError::Resolve {
            host: host.to_owned(),
            source,
        })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(source) => {
                last = Some(ConnectError::Connect {
                    address: addr.to_string(),
                    source,
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::NoAddress {
        host: host.to_owned(),
    }))
}

/// The crypto provider every check uses (the agent's: ring).
pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The operating system's trusted roots, read once (in the blocking pool).
pub(super) async fn native_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceCell<Arc<RootCertStore>> = OnceCell::const_new();
    ROOTS
        .get_or_init(|| async {
            let load = tokio::task::spawn_blocking(|| {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(found.certs);
                if let Some(error) = found.errors.first() {
                    debug!(%error, "some system root certificates could not be read");
                }
                if added == 0 {
                    warn!("no trusted root certificates found: https checks will fail");
                } else {
                    debug!(added, ignored, "system root certificates loaded");
                }
                roots
            });
            Arc::new(load.await.unwrap_or_else(|_| RootCertStore::empty()))
        })
        .await
        .clone()
}

/// A server name for TLS: a DNS name, or an IP address literal.
pub(crate) fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).ok()
}

/// A duration in milliseconds for people: `0.4 ms`, `12 ms`.
fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// WARN over a latency threshold, else `state`.
fn latency_state(state: CheckState, ms: f64, warn_ms: Option<u64>) -> (CheckState, String) {
    match warn_ms {
        #[allow(clippy::cast_precision_loss)]
        Some(warn) if state == CheckState::Ok && ms > warn as f64 => {
            (CheckState::Warn, format!(" (slower than {warn} ms)"))
        }
        _ => (state, String::new()),
    }
}

// === impl TcpProbe ===

/// One `[[checks.tcp]]` instance.
pub struct TcpProbe {
    config: TcpConfig,
}

impl TcpProbe {
    async fn check(&self) -> Evaluation {
        let c = &self.config;
        let evaluation = |state, message: String, metrics| Evaluation {
            item: c.name.clone(),
            state,
            message: limits::clean_text(&message, MAX_MESSAGE_BYTES),
            metrics,
        };
        let Some((host, port)) = split_host_port(&c.address) else {
            let message = format!("address {:?} is not host:port", c.address);
            return evaluation(CheckState::Unknown, message, Vec::new());
        };
        let started = Instant::now();
        let timeout = Duration::from_millis(c.timeout_ms);
        match tokio::time::timeout(timeout, connect(host, port)).await {
            Ok(Ok(stream)) => {
                let ms = millis(started.elapsed());
                drop(stream);
                let (state, slow) = latency_state(CheckState::Ok, ms, c.warn_latency_ms);
                let message = format!("connected to {} in {}{slow}", c.address, format_ms(ms));
                evaluation(state, message, vec![Metric::new("latency_ms", ms, "ms")])
            }
            Ok(Err(e)) => evaluation(e.state(), e.to_string(), Vec::new()),
            Err(_) => {
                let message = format!("no connection to {} within {} ms", c.address, c.timeout_ms);
                evaluation(CheckState::Crit, message, Vec::new())
            }
        }
    }
}

impl Probe for TcpProbe {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn item(&self) -> String {
        self.config.name.clone()
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.config.interval_secs)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move { vec![self.check().await] })
    }
}

// === impl HttpProbe ===

/// Where an `http` check goes, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpTarget {
    tls: bool,
    /// Without IPv6 brackets.
    host: String,
    port: u16,
    /// `Host:` header: the URL's authority.
    authority: String,
    /// Origin-form request target: path and query.
    path: String,
}

impl HttpTarget {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let scheme_error = || "must start with http:// or https://".to_owned();
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(scheme_error());
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("is not a valid URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            _ => return Err(scheme_error()),
        };
        let authority = uri.authority().ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("must not carry credentials".to_owned());
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err("has no host".to_owned());
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if port == 0 {
            return Err("has port 0".to_owned());
        }
        if tls && server_name(host).is_none() {
            return Err(format!("host {host:?} is not a valid TLS server name"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// One `[[checks.http]]` instance.
pub struct HttpProbe {
    config: HttpConfig,
    target: Result<HttpTarget, String>,
    /// What the body must contain or match; `None`: the body is not read.
    body: Result<Option<BodyMatch>, String>,
    /// TLS settings; `None` = the system roots (tests bring their own CA).
    tls: Option<Arc<ClientConfig>>,
}

/// What became of one request.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(String),
}

impl HttpProbe {
    pub fn new(config: &HttpConfig) -> Self {
        Self {
            config: config.clone(),
            target: HttpTarget::parse(&config.url),
            body: BodyMatch::from_config(config),
            tls: None,
        }
    }

    /// With a TLS client config of its own instead of the system roots.
    #[cfg(test)]
    fn with_tls(mut self, tls: Arc<ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    async fn tls_config(&self) -> Arc<ClientConfig> {
        static DEFAULT: OnceCell<Arc<ClientConfig>> = OnceCell::const_new();
        if let Some(tls) = &self.tls {
            return Arc::clone(tls);
        }
        DEFAULT
            .get_or_init(|| async { http_client_config(native_roots().await) })
            .await
            .clone()
    }

    async fn check(&self) -> Evaluation {
        let c = &self.config;
        let evaluation = |state, message: String, metrics| Evaluation {
            item: c.name.clone(),
            state,
            message: limits::clean_text(&message, MAX_MESSAGE_BYTES),
            metrics,
        };
        let target = match &self.target {
            Ok(target) => target,
            Err(e) => {
                let message = format!("url {:?} {e}", c.url);
                return evaluation(CheckState::Unknown, message, Vec::new());
            }
        };
        let body_match = match &self.body {
            Ok(m) => m.as_ref(),
            Err(e) => return evaluation(CheckState::Unknown, e.clone(), Vec::new()),
        };
        let started = Instant::now();
        let timeout = Duration::from_millis(c.timeout_ms);
        let fetch = self.fetch(target, body_match.is_some());
        let response = match tokio::time::timeout(timeout, fetch).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                let state = match &e {
                    HttpError::Connect(e) => e.state(),
                    HttpError::Tls { .. } | HttpError::Http(_) => CheckState::Crit,
                };
                return evaluation(state, e.to_string(), Vec::new());
            }
            Err(_) => {
                let message = format!("no response from {} within {} ms", c.url, c.timeout_ms);
                return evaluation(CheckState::Crit, message, Vec::new());
            }
        };
        let ms = millis(started.elapsed());
        let status = response.status();
        let reason = status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        let mut message = format!("HTTP {}{reason} in {}", status.as_u16(), format_ms(ms));
        if status.is_redirection()
            && let Some(location) = response.headers().get(header::LOCATION)
        {
            message.push_str(&format!(
                " → {}",
                limits::clean_text(&String::from_utf8_lossy(location.as_bytes()), 256)
            ));
        }
        let state = if status_expected(&c.expect_status, status) {
            match body_match.zip(response.body().as_ref()) {
                Some((m, body)) => match m.miss(body) {
                    Some(why) => {
                        message.push_str(&format!(", but the {why}"));
                        CheckState::Crit
                    }
                    None => CheckState::Ok,
                },
                None => CheckState::Ok,
            }
        } else {
            message.push_str(&format!(
                " (expected {})",
                describe_expected(&c.expect_status)
            ));
            CheckState::Crit
        };
        let (state, slow) = latency_state(state, ms, c.warn_latency_ms);
        message.push_str(&slow);
        let metrics = vec![
            Metric::new("latency_ms", ms, "ms"),
            Metric::new("status", f64::from(status.as_u16()), ""),
        ];
        evaluation(state, message, metrics)
    }

    /// Connects (and TLS) and sends one GET; returns the response head,
    /// and the start of the body when `read_body`.
    async fn fetch(
        &self,
        target: &HttpTarget,
        read_body: bool,
    ) -> Result<hyper::Response<Option<Body>>, HttpError> {
        let tcp = connect(&target.host, target.port).await?;
        let request = Request::get(target.path.as_str())
            .header(header::HOST, target.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("forewarn-agent/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| HttpError::Http(e.to_string()))?;
        if !target.tls {
            return exchange(tcp, request, read_body).await;
        }
        let tls_error = |source| HttpError::Tls {
            host: target.host.clone(),
            source,
        };
        let name = server_name(&target.host).ok_or_else(|| {
            tls_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a valid server name",
            ))
        })?;
        let stream = tokio_rustls::TlsConnector::from(self.tls_config().await)
            .connect(name, tcp)
            .await
            .map_err(tls_error)?;
        exchange(stream, request, read_body).await
    }
}

/// An HTTP/1.1 client config over `roots`.
fn http_client_config(roots: Arc<RootCertStore>) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let mut config = match config {
        Ok(config) => config,
        // The ring provider supports the default versions; keep going
        // with rustls' own default if that ever changes.
        Err(_) => ClientConfig::builder()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One request on a fresh connection; the body is read (its first
/// [`BODY_CAP`] bytes) only when `read_body`.
async fn exchange<T>(
    io: T,
    request: Request<Empty<Bytes>>,
    read_body: bool,
) -> Result<hyper::Response<Option<Body>>, HttpError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |e: hyper::Error| HttpError::Http(error_chain(&e));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    let mut conn = std::pin::pin!(conn);
    // A finished connection future must not be polled again.
    let mut conn_done = false;
    let send = sender.send_request(request);
    let mut send = std::pin::pin!(send);
    let response = tokio::select! {
        response = &mut send => response,
        done = &mut conn => {
            conn_done = true;
            done.map_err(http_error)?;
            send.await
        }
    }
    .map_err(http_error)?;
    let (head, incoming) = response.into_parts();
    if !read_body {
        return Ok(hyper::Response::from_parts(head, None));
    }
    // The connection task delivers the body: drive both until the body
    // is read (or cut), the connection closing first being no error.
    let read = body::read_capped(incoming, BODY_CAP);
    let mut read = std::pin::pin!(read);
    let body = if conn_done {
        read.await
    } else {
        tokio::select! {
            body = &mut read => body,
            done = &mut conn => {
                done.map_err(http_error)?;
                read.await
            }
        }
    }
    .map_err(http_error)?;
    Ok(hyper::Response::from_parts(head, Some(body)))
}

/// An error with its causes: `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Whether `status` is what the check expects (empty list: 2xx or 3xx).
fn status_expected(expected: &[u16], status: StatusCode) -> bool {
    if expected.is_empty() {
        status.is_success() || status.is_redirection()
    } else {
        expected.contains(&status.as_u16())
    }
}

fn describe_expected(expected: &[u16]) -> String {
    if expected.is_empty() {
        "2xx or 3xx".to_owned()
    } else {
        let codes: Vec<String> = expected.iter().map(u16::to_string).collect();
        codes.join(", ")
    }
}

impl Probe for HttpProbe {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn item(&self) -> String {
        self.config.name.clone()
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.config.interval_secs)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move { vec![self.check().await] })
    }
}

#[cfg(test)]
mod tests;
