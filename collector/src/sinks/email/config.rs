//! `[[sinks.email]]` keys: parsed and checked at start (every bad key
//! named), then built into an SMTP transport (reading the password and the
//! private CA).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use serde::Deserialize;

use super::Email;
use crate::sinks::secret::SecretRef;
use crate::sinks::template::Templates;
use crate::sinks::{Sink, SinkContext, SinkSpec};
use crate::{Error, Result};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connect, then `STARTTLS` (required: a server that does not
    /// offer it is an error, never a silent fallback). Port 587.
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS). Port 465.
    Tls,
    /// No encryption: only for a relay on the same host or network
    /// (e.g. a local Postfix on port 25); never with a password.
    None,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }

    /// As the health check reports it.
    pub fn label(self) -> &'static str {
        match self {
            TlsMode::Starttls => "STARTTLS",
            TlsMode::Tls => "TLS",
            TlsMode::None => "unencrypted",
        }
    }
}

/// The keys of `[[sinks.email]]` besides the common ones, for the
/// unknown-key check (which names every unknown key, not just the first).
const KEYS: [&str; 11] = [
    "host",
    "port",
    "tls",
    "username",
    "password",
    "from",
    "to",
    "to_tenants",
    "ca_file",
    "timeout_ms",
    "hello_name",
];

/// `[[sinks.email]]` keys besides the common ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailConfig {
    /// The SMTP server (submission relay) to hand messages to.
    host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "default_tls")]
    tls: TlsMode,
    /// Login name (not a secret: the health check names it).
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<SecretRef>,
    /// The sender mailbox: `alerts@msp.example` or `Forewarn <alerts@msp.example>`.
    from: String,
    #[serde(default)]
    to: Vec<String>,
    /// Tenant name or id → recipients replacing `to` for that tenant.
    #[serde(default)]
    to_tenants: BTreeMap<String, Vec<String>>,
    /// PEM file of CA certificates trusted besides the system roots.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    /// The name given in EHLO; default: this machine's host name.
    #[serde(default)]
    hello_name: Option<String>,
}

fn default_tls() -> TlsMode {
    TlsMode::Starttls
}
fn default_timeout_ms() -> u64 {
    10_000
}

/// A validated email sink config.
#[derive(Debug, Clone)]
pub(super) struct EmailSpec {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Username and password (its `Debug` never shows the value).
    pub login: Option<(String, SecretRef)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub to_tenants: BTreeMap<String, Vec<Mailbox>>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub hello_name: Option<String>,
}

/// The registry's parser for `[[sinks.email]]`.
pub fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    validate(table).map(|s| Box::new(s) as Box<dyn SinkSpec>)
}

/// `[[sinks.email]]` keys → a spec, or every problem, each naming its key.
pub(super) fn validate(table: toml::Table) -> std::result::Result<EmailSpec, Vec<String>> {
    let unknown: Vec<String> = table
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .map(|k| format!("{k}: unknown key (email sinks have: {})", KEYS.join(", ")))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let cfg: EmailConfig =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            // "." is the table itself (a required key is missing).
            let key = e.path().to_string();
            let message = e.inner().message().trim().replace('\n', " ");
            vec![if key == "." {
                message
            } else {
                format!("{key}: {message}")
            }]
        })?;
    let mut problems = Vec::new();
    if cfg.host.trim().is_empty() || cfg.host.contains(['/', ' ', ':']) {
        problems.push(format!(
            "host {:?} must be a host name or IP address (the port goes in port)",
            cfg.host
        ));
    }
    if cfg.port == Some(0) {
        problems.push("port must be between 1 and 65535".to_string());
    }
    let login = match (cfg.username, cfg.password) {
        (Some(u), Some(p)) => {
            if u.is_empty() {
                problems.push("username must not be empty".to_string());
            }
            problems.extend(p.problems("password"));
            if cfg.tls == TlsMode::None {
                problems.push(
                    "password: never sent over an unencrypted connection: set tls = \"starttls\" or \"tls\""
                        .to_string(),
                );
            }
            Some((u, p))
        }
        (Some(_), None) => {
            problems.push("password: set it with username (both or neither)".to_string());
            None
        }
        (None, Some(_)) => {
            problems.push("username: set it with password (both or neither)".to_string());
            None
        }
        (None, None) => None,
    };
    let from = mailbox("from", &cfg.from, &mut problems);
    let to: Vec<Mailbox> = mailboxes("to", &cfg.to, &mut problems);
    let mut to_tenants = BTreeMap::new();
    for (tenant, list) in &cfg.to_tenants {
        let key = format!("to_tenants.{tenant}");
        if list.is_empty() {
            problems.push(format!("{key} must list at least one recipient"));
        }
        to_tenants.insert(tenant.clone(), mailboxes(&key, list, &mut problems));
    }
    if cfg.to.is_empty() && cfg.to_tenants.is_empty() {
        problems.push(
            "to must list at least one recipient (or set to_tenants for every routed tenant)"
                .to_string(),
        );
    }
    if from
        .as_ref()
        .is_some_and(|m| m.email.domain().starts_with('['))
    {
        problems.push(
            "from must have a domain name, not an address literal (the message ids use it)"
                .to_string(),
        );
    }
    if !(100..=120_000).contains(&cfg.timeout_ms) {
        problems.push(format!(
            "timeout_ms ({}) must be between 100 and 120000",
            cfg.timeout_ms
        ));
    }
    if let Some(h) = &cfg.hello_name
        && (h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        problems.push(format!("hello_name {h:?} must be a host name"));
    }
    if cfg.ca_file.is_some() && cfg.tls == TlsMode::None {
        problems.push("ca_file has no use with tls = \"none\"".to_string());
    }
    match from {
        Some(from) if problems.is_empty() => Ok(EmailSpec {
            port: cfg.port.unwrap_or(cfg.tls.default_port()),
            host: cfg.host,
            tls: cfg.tls,
            login,
            from,
            to,
            to_tenants,
            ca_file: cfg.ca_file,
            timeout: Duration::from_millis(cfg.timeout_ms),
            hello_name: cfg.hello_name,
        }),
        _ => Err(problems),
    }
}

fn mailbox(key: &str, text: &str, problems: &mut Vec<String>) -> Option<Mailbox> {
    match Mailbox::from_str(text) {
        Ok(m) => Some(m),
        Err(e) => {
            problems.push(format!("{key}: {text:?} is not a mailbox ({e})"));
            None
        }
    }
}

fn mailboxes(key: &str, list: &[String], problems: &mut Vec<String>) -> Vec<Mailbox> {
    list.iter()
        .enumerate()
        .filter_map(|(i, t)| mailbox(&format!("{key}[{i}]"), t, problems))
        .collect()
}

impl SinkSpec for EmailSpec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let password = match &self.login {
            Some((user, p)) => Some((user.clone(), p.read("sinks.email password")?)),
            None => None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
                .port(self.port)
                .timeout(Some(self.timeout));
        if self.tls != TlsMode::None {
            let params = self.tls_parameters()?;
            builder = builder.tls(match self.tls {
                TlsMode::Starttls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        }
        if let Some(h) = &self.hello_name {
            builder = builder.hello_name(ClientId::Domain(h.clone()));
        }
        if let Some((user, secret)) = &password {
            builder = builder
                .credentials(Credentials::new(user.clone(), secret.expose().to_string()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(Arc::new(Email {
            transport: builder.build(),
            spec: self.clone(),
            password,
            public_url: ctx.public_url.trim_end_matches('/').to_string(),
            templates,
        }))
    }
}

impl EmailSpec {
    fn tls_parameters(&self) -> Result<TlsParameters> {
        let mut b = TlsParameters::builder(self.host.clone());
        if let Some(file) = &self.ca_file {
            let pem = std::fs::read(file).map_err(|e| {
                Error::Config(format!(
                    "sinks.email ca_file: reading {}: {e}",
                    file.display()
                ))
            })?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(Error::Config(format!(
                    "sinks.email ca_file {}: holds no PEM certificate",
                    file.display()
                )));
            }
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!("sinks.email ca_file {}: {e}", file.display()))
            })?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| Error::Config(format!("sinks.email TLS: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    pub(crate) fn spec(s: &str) -> EmailSpec {
        validate(table(s)).expect("valid")
    }

    const OK: &str = "host = \"smtp.example\"\nfrom = \"Forewarn <alerts@msp.example>\"\nto = [\"noc@msp.example\"]\n";

    #[test]
    fn defaults_follow_the_tls_mode() {
        assert_eq!(spec(OK).port, 587);
        assert_eq!(spec(OK).tls, TlsMode::Starttls);
        assert_eq!(spec(OK).timeout, Duration::from_secs(10));
        assert_eq!(spec(&format!("{OK}tls = \"tls\"\n")).port, 465);
        assert_eq!(
            spec(&format!("{OK}tls = \"tls\"\nport = 2465\n")).port,
            2465
        );
        let s = spec(&format!(
            "{OK}username = \"u\"\npassword = {{ env = \"P\" }}\n[to_tenants]\nacme = [\"ops@acme.example\", \"Boss <boss@acme.example>\"]\n"
        ));
        assert_eq!(s.to_tenants["acme"].len(), 2);
        assert_eq!(s.from.email.domain(), "msp.example");
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = parse(table(
            "host = \"smtp.example:587\"\nport = 0\nfrom = \"not a mailbox\"\nto = [\"ok@x.example\", \"@bad\"]\n\
             username = \"u\"\npassword = \"\"\ntimeout_ms = 5\nhello_name = \"bad name\"\n\
             [to_tenants]\nacme = []\nglobex = [\"nope\"]\n",
        ))
        .expect_err("invalid")
        .join("\n");
        for needle in [
            "host \"smtp.example:587\"",
            "port must be",
            "from: \"not a mailbox\"",
            "to[1]: \"@bad\"",
            "password must not be empty",
            "timeout_ms (5)",
            "hello_name \"bad name\"",
            "to_tenants.acme must list",
            "to_tenants.globex[0]: \"nope\"",
        ] {
            assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        }
    }

    #[test]
    fn unknown_keys_are_each_named() {
        let err = parse(table(&format!("{OK}pasword = \"x\"\nsmtp_port = 1\n")))
            .expect_err("unknown")
            .join("\n");
        assert!(err.contains("pasword: unknown key"), "{err}");
        assert!(err.contains("smtp_port: unknown key"), "{err}");
        let err = parse(table(&format!("{OK}port = \"x\"\n")))
            .expect_err("types")
            .join("\n");
        assert!(err.starts_with("port: invalid type"), "{err}");
        let err = parse(table("from = \"a@b.example\"\n"))
            .expect_err("missing")
            .join("\n");
        assert!(err.contains("missing field `host`"), "{err}");
    }

    #[test]
    fn credentials_come_in_pairs_and_never_in_clear() {
        let err = |extra: &str| {
            parse(table(&format!("{OK}{extra}")))
                .expect_err("invalid")
                .join("\n")
        };
        assert!(err("username = \"u\"\n").contains("password: set it with username"));
        assert!(err("password = \"p\"\n").contains("username: set it with password"));
        assert!(
            err("tls = \"none\"\nusername = \"u\"\npassword = \"p\"\n")
                .contains("never sent over an unencrypted connection")
        );
        assert!(err("tls = \"plain\"\n").contains("tls"));
        assert!(parse(table(&format!("{OK}tls = \"none\"\nport = 25\n"))).is_ok());
    }

    #[test]
    fn recipients_may_come_from_tenant_lists_only() {
        let base = "host = \"smtp.example\"\nfrom = \"alerts@msp.example\"\n";
        let err = parse(table(base)).expect_err("no recipients").join("\n");
        assert!(err.contains("to must list at least one recipient"), "{err}");
        assert!(
            parse(table(&format!(
                "{base}[to_tenants]\nacme = [\"a@acme.example\"]\n"
            )))
            .is_ok()
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let spec = parse(table(&format!(
            "{OK}username = \"u\"\npassword = \"hunter2\"\n"
        )))
        .expect("valid");
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn a_missing_ca_file_fails_the_build_with_its_key() {
        let s = spec(&format!("{OK}ca_file = \"/nonexistent/ca.pem\"\n"));
        let err = s.tls_parameters().err().expect("missing").to_string();
        assert!(
            err.contains("ca_file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let s = spec(&format!("{OK}ca_file = {:?}\n", path.display().to_string()));
        let err = s
            .tls_parameters()
            .err()
            .expect("no certificate")
            .to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
