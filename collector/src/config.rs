//! Collector configuration: TOML, `deny_unknown_fields`, documented defaults.
//!
//! Load → [`Config::validate`] (pure, reports every bad key at once) → use.
//! A bad config never starts a half-working collector.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// Where `forewarn-collector` looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/forewarn/collector.toml";

/// The whole collector configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Holds the SQLite database and the CA (`pki/`). Created 0700.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Tenant created on first start when there is none.
    #[serde(default = "default_tenant")]
    pub default_tenant: String,
    #[serde(default)]
    pub grpc: GrpcConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub pki: PkiConfig,
    /// Ticket rules, priorities, SLA and liveness.
    #[serde(default)]
    pub tickets: crate::tickets::policy::Policy,
    /// Ticket sinks, `[[sinks.<kind>]]` (see `sinks/`): none by default.
    #[serde(default)]
    pub sinks: crate::sinks::SinksConfig,
    /// Series caps and clock skew tolerance (see `limits.rs`).
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// How long old records are kept (see `retention.rs`).
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// Signed agent artifacts the collector serves and offers (installers,
    /// packages, self-update binaries).
    #[serde(default)]
    pub releases: ReleasesConfig,
}

/// `[releases]`: where the signed agent artifacts live.
///
/// Each artifact sits in `dir` next to its minisign signature
/// (`<file>.minisig`). The install scripts download from here
/// (`/download/<file>`), and self-update offers what is here; the collector
/// never serves a file without its signature.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasesConfig {
    /// Default `<data_dir>/releases`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The release signing key's public half (minisign, `RW…`). Artifacts
    /// whose signature does not verify against it are neither served nor
    /// offered. Unset: nothing is served or offered.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Which version agents are offered (`[releases.rollout]`, see
    /// `releases/rollout.rs`). Empty: none.
    #[serde(default)]
    pub rollout: crate::releases::rollout::Rollout,
}

/// The agent-facing gRPC listener (enrollment over TLS, sessions over mTLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    #[serde(default = "default_grpc_listen")]
    pub listen_addr: SocketAddr,
    /// Extra DNS names / IP addresses agents use to reach this collector; they
    /// go into the server certificate next to `localhost`, `127.0.0.1` and
    /// the machine's hostname.
    #[serde(default)]
    pub server_names: Vec<String>,
    /// Largest accepted (and sent) gRPC message.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// HTTP/2 streams one connection may open at once.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// Failed enrollments one source address may make within
    /// `enroll_failure_window_secs` before it is refused up front with
    /// RESOURCE_EXHAUSTED until that window has passed; 0 = no limit.
    #[serde(default = "default_enroll_max_failures")]
    pub enroll_max_failures: u32,
    #[serde(default = "default_enroll_failure_window_secs")]
    pub enroll_failure_window_secs: u64,
    /// Session opens one agent may make at once, then one more every
    /// `session_rate_refill_secs`; over it: RESOURCE_EXHAUSTED, before any
    /// store access (see `ingest/rate.rs`).
    #[serde(default = "default_session_rate_burst")]
    pub session_rate_burst: u32,
    #[serde(default = "default_session_rate_refill_secs")]
    pub session_rate_refill_secs: u64,
    /// Certificate renewals one agent may make at once, then one more every
    /// `renew_rate_refill_secs`; over it: RESOURCE_EXHAUSTED.
    #[serde(default = "default_renew_rate_burst")]
    pub renew_rate_burst: u32,
    #[serde(default = "default_renew_rate_refill_secs")]
    pub renew_rate_refill_secs: u64,
    /// Reports one agent (all its sessions together) may send at once, then
    /// `report_rate_per_sec`; faster reports are delayed (flow control
    /// pushes back on the agent), never dropped.
    #[serde(default = "default_report_rate_per_sec")]
    pub report_rate_per_sec: u32,
    #[serde(default = "default_report_rate_burst")]
    pub report_rate_burst: u32,
}

/// The operator-facing HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_http_listen")]
    pub listen_addr: SocketAddr,
    /// Base URL operators reach this API at, for links sent to sinks;
    /// default `http://<listen_addr>` (the hostname when it listens on all
    /// addresses).
    #[serde(default)]
    pub public_url: Option<String>,
    /// A dashboard session unused this long ends (seconds; 60..=604800).
    #[serde(default = "default_session_idle_secs")]
    pub session_idle_secs: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only; browsers
    /// also accept it from `http://localhost` and `127.0.0.1`). Set false
    /// only to reach the dashboard over plain HTTP on a trusted network.
    #[serde(default = "default_true")]
    pub secure_cookies: bool,
}

fn default_session_idle_secs() -> u64 {
    3600
}

fn default_true() -> bool {
    true
}

/// The store backend.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://user[:password]@host[:port]/db`;
    /// default: embedded SQLite at `sqlite_path`.
    #[serde(default)]
    pub url: Option<String>,
    /// SQLite database file; default `<data_dir>/forewarn.db`.
    #[serde(default)]
    pub sqlite_path: Option<PathBuf>,
}

/// Why a PostgreSQL store needs `[pki] kek_file`, and how to make one.
pub(crate) const KEK_MISSING: &str = "[pki] kek_file is required with a PostgreSQL store: the CA every \
     replica shares is kept in the database, its key sealed with that key-encryption key. \
     Create one (32 random bytes, hex) with `forewarn-collector ca kek-create /etc/forewarn/kek` \
     (or `openssl rand -hex 32 > /etc/forewarn/kek; chmod 600 /etc/forewarn/kek`), copy it to \
     every replica and set `[pki] kek_file = \"/etc/forewarn/kek\"`";

/// The collector's certificate authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiConfig {
    /// Lifetime of a client certificate issued at enrollment.
    #[serde(default = "default_agent_cert_validity_days")]
    pub agent_cert_validity_days: u32,
    /// Overrides `agent_cert_validity_days` in seconds (tests); at least 60.
    #[serde(default)]
    pub agent_cert_validity_secs: Option<u64>,
    /// The key-encryption key sealing the CA key in a PostgreSQL store
    /// (required there; unused with SQLite, whose CA stays in `pki/`):
    /// 32 random bytes as 64 hex digits (`forewarn-collector ca kek-create
    /// PATH`, or `openssl rand -hex 32`), the same file on every replica.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
}

impl PkiConfig {
    /// Lifetime of an agent certificate, at enrollment and at renewal.
    pub fn agent_cert_validity(&self) -> time::Duration {
        match self.agent_cert_validity_secs {
            Some(secs) => time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)),
            None => time::Duration::days(i64::from(self.agent_cert_validity_days)),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/forewarn-collector")
}
fn default_tenant() -> String {
    "default".to_string()
}
fn default_grpc_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4443))
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_message_bytes() -> usize {
    1024 * 1024
}
fn default_max_concurrent_streams() -> u32 {
    16
}
fn default_enroll_max_failures() -> u32 {
    10
}
fn default_enroll_failure_window_secs() -> u64 {
    60
}
fn default_session_rate_burst() -> u32 {
    10
}
fn default_session_rate_refill_secs() -> u64 {
    6
}
fn default_renew_rate_burst() -> u32 {
    5
}
fn default_renew_rate_refill_secs() -> u64 {
    30
}
fn default_report_rate_per_sec() -> u32 {
    50
}
fn default_report_rate_burst() -> u32 {
    500
}
fn default_agent_cert_validity_days() -> u32 {
    7
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen_addr: default_grpc_listen(),
            server_names: Vec::new(),
            max_message_bytes: default_max_message_bytes(),
            max_concurrent_streams: default_max_concurrent_streams(),
            enroll_max_failures: default_enroll_max_failures(),
            enroll_failure_window_secs: default_enroll_failure_window_secs(),
            session_rate_burst: default_session_rate_burst(),
            session_rate_refill_secs: default_session_rate_refill_secs(),
            renew_rate_burst: default_renew_rate_burst(),
            renew_rate_refill_secs: default_renew_rate_refill_secs(),
            report_rate_per_sec: default_report_rate_per_sec(),
            report_rate_burst: default_report_rate_burst(),
        }
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen_addr: default_http_listen(),
            public_url: None,
            session_idle_secs: default_session_idle_secs(),
            secure_cookies: true,
        }
    }
}
impl Default for PkiConfig {
    fn default() -> Self {
        Self {
            agent_cert_validity_days: default_agent_cert_validity_days(),
            agent_cert_validity_secs: None,
            kek_file: None,
        }
    }
}
impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            default_tenant: default_tenant(),
            grpc: GrpcConfig::default(),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            pki: PkiConfig::default(),
            tickets: crate::tickets::policy::Policy::default(),
            sinks: crate::sinks::SinksConfig::default(),
            limits: crate::limits::Limits::default(),
            releases: ReleasesConfig::default(),
            retention: crate::retention::RetentionConfig::default(),
        }
    }
}

// === impl GrpcConfig ===

impl GrpcConfig {
    /// The per-agent request rates of the ingest service.
    pub fn rate_limits(&self) -> crate::ingest::RateLimits {
        use crate::ingest::Rate;
        use std::time::Duration;
        crate::ingest::RateLimits {
            sessions: Rate {
                burst: self.session_rate_burst,
                period: Duration::from_secs(self.session_rate_refill_secs),
            },
            renewals: Rate {
                burst: self.renew_rate_burst,
                period: Duration::from_secs(self.renew_rate_refill_secs),
            },
            reports: Rate::per_second(self.report_rate_per_sec, self.report_rate_burst),
        }
    }

    /// Problems with the rate keys, each naming its key.
    fn rate_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value, max) in [
            (
                "session_rate_burst",
                u64::from(self.session_rate_burst),
                10_000,
            ),
            (
                "session_rate_refill_secs",
                self.session_rate_refill_secs,
                86_400,
            ),
            ("renew_rate_burst", u64::from(self.renew_rate_burst), 10_000),
            (
                "renew_rate_refill_secs",
                self.renew_rate_refill_secs,
                86_400,
            ),
            (
                "report_rate_per_sec",
                u64::from(self.report_rate_per_sec),
                1_000_000,
            ),
            (
                "report_rate_burst",
                u64::from(self.report_rate_burst),
                1_000_000,
            ),
        ] {
            if !(1..=max).contains(&value) {
                problems.push(format!("grpc.{key} ({value}) must be between 1 and {max}"));
            }
        }
        problems
    }
}

/// This machine's host name, if the kernel has one.
pub(crate) fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

// === impl HttpConfig ===

impl HttpConfig {
    /// `public_url`, or one derived from the address the API is bound to.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        if bound.ip().is_unspecified() {
            let host = hostname().unwrap_or_else(|| "localhost".to_string());
            format!("http://{host}:{}", bound.port())
        } else {
            format!("http://{bound}")
        }
    }
}

// === impl Config ===

impl Config {
    /// Loads the config: `path` if given (must exist), else the default path
    /// if it exists, else built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let cfg = Self::parse(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(cfg)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let cfg: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value; the error lists each bad key.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.default_tenant.trim().is_empty() {
            problems.push("default_tenant must not be empty".to_string());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.grpc.max_message_bytes) {
            problems.push(format!(
                "grpc.max_message_bytes ({}) must be between 1024 and 67108864",
                self.grpc.max_message_bytes
            ));
        }
        if !(60..=604_800).contains(&self.http.session_idle_secs) {
            problems.push(format!(
                "http.session_idle_secs ({}) must be between 60 and 604800",
                self.http.session_idle_secs
            ));
        }
        if self.grpc.max_concurrent_streams == 0 {
            problems.push("grpc.max_concurrent_streams must be at least 1".to_string());
        }
        if !(1..=86_400).contains(&self.grpc.enroll_failure_window_secs) {
            problems.push(format!(
                "grpc.enroll_failure_window_secs ({}) must be between 1 and 86400",
                self.grpc.enroll_failure_window_secs
            ));
        }
        problems.extend(self.grpc.rate_problems());
        if !(1..=3650).contains(&self.pki.agent_cert_validity_days) {
            problems.push(format!(
                "pki.agent_cert_validity_days ({}) must be between 1 and 3650",
                self.pki.agent_cert_validity_days
            ));
        }
        if let Some(secs) = self.pki.agent_cert_validity_secs
            && !(60..=3650 * 86_400).contains(&secs)
        {
            problems.push(format!(
                "pki.agent_cert_validity_secs ({secs}) must be between 60 and {}",
                3650 * 86_400
            ));
        }
        if self.grpc.listen_addr == self.http.listen_addr && self.http.listen_addr.port() != 0 {
            problems.push(format!(
                "http.listen_addr ({}) must differ from grpc.listen_addr",
                self.http.listen_addr
            ));
        }
        for name in &self.grpc.server_names {
            if name.trim().is_empty() || name.contains(char::is_whitespace) {
                problems.push(format!("grpc.server_names: invalid name {name:?}"));
            }
        }
        problems.extend(self.tickets.problems());
        if let Some(u) = &self.http.public_url {
            match reqwest::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.has_host() => {}
                _ => problems.push(format!("http.public_url {u:?} must be an http(s) URL")),
            }
        }
        problems.extend(self.sinks.problems());
        problems.extend(self.limits.problems());
        problems.extend(self.retention.problems());
        problems.extend(self.releases.problems());
        if let Some(url) = &self.store.url {
            if self.store.sqlite_path.is_some() {
                problems.push("[store] url and [store] sqlite_path: set one of them".to_string());
            }
            match crate::store::StoreUrl::parse(url) {
                Err(e) => problems.push(e.to_string().trim_start_matches("config: ").to_string()),
                Ok(crate::store::StoreUrl::Postgres(_)) if self.pki.kek_file.is_none() => {
                    problems.push(KEK_MISSING.to_string());
                }
                Ok(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }

    /// The store: `[store] url`, else SQLite at [`Config::sqlite_path`].
    pub fn store_url(&self) -> Result<crate::store::StoreUrl> {
        match &self.store.url {
            Some(url) => crate::store::StoreUrl::parse(url),
            None => Ok(crate::store::StoreUrl::Sqlite(self.sqlite_path())),
        }
    }

    /// The SQLite database file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.store
            .sqlite_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("forewarn.db"))
    }

    /// Directory holding the CA key and certificate.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// Where the signed agent artifacts are (`[releases] dir`).
    pub fn releases_dir(&self) -> PathBuf {
        self.releases
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("releases"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults valid");
        Config::parse("").expect("empty file is all defaults");
    }

    #[test]
    fn example_file_parses() {
        Config::parse(include_str!("../../deploy/collector.example.toml"))
            .expect("deploy/collector.example.toml must stay valid");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[grpc]\nlisten = \"127.0.0.1:1\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("listen"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn bad_values_are_named() {
        let err =
            Config::parse("[grpc]\nmax_message_bytes = 10\n[pki]\nagent_cert_validity_days = 0\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("grpc.max_message_bytes"), "{err}");
        assert!(err.contains("pki.agent_cert_validity_days"), "{err}");
    }

    #[test]
    fn bad_rates_are_named() {
        let err = Config::parse(
            "[grpc]\nsession_rate_burst = 0\nrenew_rate_refill_secs = 0\nreport_rate_per_sec = 0\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "grpc.session_rate_burst",
            "grpc.renew_rate_refill_secs",
            "grpc.report_rate_per_sec",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        let cfg = Config::parse("[grpc]\nreport_rate_per_sec = 20\nreport_rate_burst = 5\n")
            .expect("valid rates");
        let limits = cfg.grpc.rate_limits();
        assert_eq!(limits.reports.burst, 5);
        assert_eq!(limits.reports.period, std::time::Duration::from_millis(50));
        assert_eq!(limits.sessions.burst, 10);
    }

    #[test]
    fn bad_type_is_named() {
        let err = Config::parse("[http]\nlisten_addr = 8080\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
    }
}
