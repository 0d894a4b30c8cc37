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
    /// Optional: CRIT unless the body (its first 64 KiB) contains this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Optional: CRIT unless the body (its first 64 KiB) matches this
    /// regular expression (Rust `regex` syntax).
    #[serde(default)]
    pub body_regex: Option<String>,
}

impl HttpConfig {
    /// The compiled `body_regex`, its size bounded like `[[checks.log]]`
    /// patterns (a pathological pattern is a config error, not a memory
    /// hog); `None` when not set.
    pub fn body_regex(&self) -> Option<Result<regex::Regex, regex::Error>> {
        let pattern = self.body_regex.as_deref()?;
        Some(
            regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .dfa_size_limit(256 << 10)
                .build(),
        )
    }
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
        if c.body_contains.as_deref().is_some_and(str::is_empty) {
            p.push(format!("{prefix}.body_contains must not be empty"));
        }
        if c.body_regex.as_deref().is_some_and(str::is_empty) {
            p.push(format!("{prefix}.body_regex must not be empty"));
        } else if let Some(Err(e)) = c.body_regex() {
            // regex's own message spans lines (it draws a caret).
            let e = e.to_string().replace('\n', " ");
            p.push(format!("{prefix}.body_regex is not a valid regex: {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_validation_names_every_bad_key() {
        let good = TcpConfig {
            name: "db".into(),
            address: "db.example.com:5432".into(),
            timeout_ms: 3000,
            warn_latency_ms: Some(500),
            interval_secs: 30,
        };
        let bad = TcpConfig {
            name: "db".into(),
            address: "db.example.com".into(),
            timeout_ms: 0,
            warn_latency_ms: Some(10),
            interval_secs: 0,
        };
        let mut p = Vec::new();
        validate_tcp(std::slice::from_ref(&good), &mut p);
        assert_eq!(p, Vec::<String>::new());
        validate_tcp(&[good, bad], &mut p);
        let all = p.join("\n");
        for expected in [
            "checks.tcp[1].name (\"db\") is used twice",
            "checks.tcp[1].address (\"db.example.com\") must be host:port",
            "checks.tcp[1].timeout_ms must be greater than 0",
            "checks.tcp[1].warn_latency_ms (10) must be below checks.tcp[1].timeout_ms (0)",
            "checks.tcp[1].interval_secs must be greater than 0",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn http_validation_names_every_bad_key() {
        let config = |url: &str, expect_status: Vec<u16>| HttpConfig {
            name: url.into(),
            url: url.into(),
            expect_status,
            timeout_ms: 5000,
            warn_latency_ms: None,
            interval_secs: 60,
            body_contains: None,
            body_regex: None,
        };
        let mut p = Vec::new();
        validate_http(
            &[config(
                "https://intranet.example.com/health",
                vec![200, 204],
            )],
            &mut p,
        );
        assert_eq!(p, Vec::<String>::new());
        validate_http(
            &[
                config("ftp://files.example.com/", Vec::new()),
                config("http://x/", vec![42]),
            ],
            &mut p,
        );
        let all = p.join("\n");
        for expected in [
            "checks.http[0].url (\"ftp://files.example.com/\") must start with http:// or https://",
            "checks.http[1].expect_status entry 42 must be within 100..=599",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn body_match_keys_are_checked() {
        let config = |contains: Option<&str>, regex: Option<&str>| HttpConfig {
            name: format!("{contains:?} {regex:?}"),
            url: "http://127.0.0.1/health".into(),
            expect_status: Vec::new(),
            timeout_ms: 5000,
            warn_latency_ms: None,
            interval_secs: 60,
            body_contains: contains.map(Into::into),
            body_regex: regex.map(Into::into),
        };
        let mut p = Vec::new();
        validate_http(
            &[config(Some("\"status\":\"ok\""), Some(r"^up \d+ s$"))],
            &mut p,
        );
        assert_eq!(p, Vec::<String>::new());
        validate_http(
            &[
                config(Some(""), Some("")),
                config(None, Some("(unclosed")),
                config(None, Some(r"\w{1000}")),
            ],
            &mut p,
        );
        assert_eq!(p.len(), 4, "{p:#?}");
        assert_eq!(p[0], "checks.http[0].body_contains must not be empty");
        assert_eq!(p[1], "checks.http[0].body_regex must not be empty");
        assert!(
            p[2].starts_with("checks.http[1].body_regex is not a valid regex: ")
                && !p[2].contains('\n'),
            "{}",
            p[2]
        );
        assert!(
            p[3].starts_with("checks.http[2].body_regex is not a valid regex: ")
                && p[3].contains("size limit"),
            "{}",
            p[3]
        );
    }
}
