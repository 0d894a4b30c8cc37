//! `[[checks.tcp]]` and `[[checks.http]]`: ports and URLs the agent
//! probes (`agent/src/checks/net.rs`). One table per target; the item is
//! its `name`.

use serde::Deserialize;

use crate::checks::limits::validate_name;
use crate::checks::net;

/// `[[checks.tcp]]`: one TCP port to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// The item the results are reported under.
    pub name: String,
    /// `host:port` (`[v6 address]:port` for IPv6 literals).
    pub address: String,
    #[serde(default = "default_tcp_timeout_ms")]
    pub timeout_ms: u64,
    /// Optional: WARN when connecting takes longer than this.
    #[serde(default)]
    pub warn_latency_ms: Option<u64>,
    #[serde(default = "default_tcp_interval_secs")]
    pub interval_secs: u64,
}

fn default_tcp_timeout_ms() -> u64 {
    3000
}

fn default_tcp_interval_secs() -> u64 {
    30
}

/// `[[checks.http]]`: one URL to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The item the results are reported under.
    pub name: String,
    /// `http://` or `https://` URL; redirects are reported, not followed.
    pub url: String,
    /// Status codes that count as OK; empty = any 2xx or 3xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Connect + TLS + response headers must fit in this.
    #[serde(default = "default_http_timeout_ms")]
    pub timeout_ms: u64,
    /// Optional: WARN when the response takes longer than this.
    #[serde(default)]
    pub warn_latency_ms: Option<u64>,
    #[serde(default = "default_http_interval_secs")]
    pub interval_secs: u64,
}

fn default_http_timeout_ms() -> u64 {
    5000
}

fn default_http_interval_secs() -> u64 {
    60
}

/// Every problem in `[[checks.tcp]]`, each naming its key.
pub fn validate_tcp(checks: &[TcpConfig], p: &mut Vec<String>) {
    let mut seen = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let prefix = format!("checks.tcp[{i}]");
        validate_name(&prefix, &c.name, &mut seen, p);
        if net::split_host_port(&c.address).is_none() {
            p.push(format!(
                "{prefix}.address ({:?}) must be host:port with a port in 1..=65535",
                c.address
            ));
        }
        validate_timing(&prefix, c.timeout_ms, c.warn_latency_ms, c.interval_secs, p);
    }
}

/// Every problem in `[[checks.http]]`, each naming its key.
pub fn validate_http(checks: &[HttpConfig], p: &mut Vec<String>) {
    let mut seen = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let prefix = format!("checks.http[{i}]");
        validate_name(&prefix, &c.name, &mut seen, p);
        if let Err(e) = net::HttpTarget::parse(&c.url) {
            p.push(format!("{prefix}.url ({:?}) {e}", c.url));
        }
        for code in c.expect_status.iter().filter(|c| !(100..=599).contains(*c)) {
            p.push(format!(
                "{prefix}.expect_status entry {code} must be within 100..=599"
            ));
        }
        validate_timing(&prefix, c.timeout_ms, c.warn_latency_ms, c.interval_secs, p);
    }
}

fn validate_timing(
    prefix: &str,
    timeout_ms: u64,
    warn_latency_ms: Option<u64>,
    interval_secs: u64,
    p: &mut Vec<String>,
) {
    if timeout_ms == 0 {
        p.push(format!("{prefix}.timeout_ms must be greater than 0"));
    }
    if let Some(warn) = warn_latency_ms
        && warn >= timeout_ms
    {
        p.push(format!(
            "{prefix}.warn_latency_ms ({warn}) must be below {prefix}.timeout_ms ({timeout_ms})"
        ));
    }
    if interval_secs == 0 {
        p.push(format!("{prefix}.interval_secs must be greater than 0"));
    }
}
