//! Harness for end-to-end tests: real `forewarn-collector` and
//! `forewarn-agent` processes on loopback, each in its own temp dir.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, which
//! the test command in the README does). Everything waits by polling with a
//! deadline, never by sleeping a fixed time.
//!
//! A collector runs on either store [`Backend`]: embedded SQLite (the
//! default) or a fresh database of its own on the test PostgreSQL server
//! (`FOREWARN_TEST_POSTGRES_URL`, set by `./tests/run-all.sh` or
//! `source tests/postgres.sh`). [`on_each_backend!`] runs a test body once
//! per backend.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    // target/<profile>/deps/<test-exe> → target/<profile>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf();
    for b in ["forewarn-collector", "forewarn-agent"] {
        assert!(
            dir.join(b).exists(),
            "{} not found: build the binaries first (cargo build --workspace --bins)",
            dir.join(b).display()
        );
    }
    dir
}

/// Runs `cmd` (the collector binary, maybe wrapped) as `--config CONFIG
/// serve`, its stderr in `log`, and waits for its ready line: the process
/// and its gRPC and HTTP addresses. `who` names it if it never gets ready.
pub fn serve_until_ready(
    mut cmd: Command,
    config: &Path,
    log: PathBuf,
    who: &str,
) -> (Proc, SocketAddr, SocketAddr) {
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn collector");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("forewarn-collector ready") {
                let _ = tx.send(line);
            }
        }
    });
    let proc = Proc { child, log };
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{who} did not become ready:\n{}", proc.log_text()));
    let field = |k: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    (proc, field("grpc="), field("http="))
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A child process killed (and reaped) on drop, with its stderr in a file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === backends ===

pub use backend::*;

// === impl Collector ===

/// A running collector with its data dir, store, addresses and an
/// MSP-wide API key.
pub struct Collector {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// Where its store lives (the same across restarts).
    pub store: Store,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api_key: String,
    pub proc: Proc,
}

impl Collector {
    /// Starts `forewarn-collector serve` on free loopback ports (SQLite).
    pub fn start() -> Self {
        Self::start_on(Backend::Sqlite, "")
    }

    /// Starts on an existing data dir and config (SQLite, the default store
    /// in `<dir>/data`); the config's `data_dir` must be `<dir>/data`.
    pub fn start_with(dir: tempfile::TempDir, config: PathBuf) -> Self {
        Self::start_with_on(Backend::Sqlite, dir, config)
    }

    /// Like [`Collector::start_with`], on a new store of `backend`: for
    /// PostgreSQL, a `[store]` table naming a fresh database is appended to
    /// `config` (which must not have one).
    pub fn start_with_on(backend: Backend, dir: tempfile::TempDir, config: PathBuf) -> Self {
        let store = backend.new_store(dir.path());
        let text = std::fs::read_to_string(&config).expect("read config");
        let selected = store.select_in(&text, dir.path());
        if selected != text {
            std::fs::write(&config, selected).expect("write config");
        }
        Self::launch(dir, config, store)
    }

    /// Starts a process on `config`, whose store is `store`.
    fn launch(dir: tempfile::TempDir, config: PathBuf, store: Store) -> Self {
        let log = dir.path().join("collector.log");
        let (proc, grpc, http) = serve_until_ready(
            Command::new(bin("forewarn-collector")),
            &config,
            log,
            "collector",
        );
        let mut c = Collector {
            grpc,
            http,
            dir,
            config,
            store,
            api_key: String::new(),
            proc,
        };
        let key = c.cli_json(&[
            "api-key",
            "create",
            "--name",
            "e2e-admin",
            "--role",
            "msp-admin",
            "--json",
        ]);
        c.api_key = key["key"].as_str().expect("key").to_string();
        c
    }

    /// Stops the collector (SIGTERM) and starts it again on the same data
    /// dir, store and ports, so enrolled agents find it again.
    pub fn restart(self) -> Self {
        self.stop().start()
    }

    /// Stops the collector with SIGTERM; panics unless it exits within 15 s.
    pub fn stop(self) -> Stopped {
        let (mut proc, stopped) = self.split();
        assert!(
            proc.terminate(Duration::from_secs(15)).is_some(),
            "collector did not stop on SIGTERM:\n{}",
            proc.log_text()
        );
        stopped
    }

    /// `kill -9`: no clean stop, nothing flushed.
    pub fn kill9(self) -> Stopped {
        let (mut proc, stopped) = self.split();
        proc.child.kill().expect("kill -9 collector");
        proc.child.wait().expect("reap collector");
        stopped
    }

    fn split(self) -> (Proc, Stopped) {
        let Collector {
            dir,
            config,
            store,
            grpc,
            http,
            proc,
            ..
        } = self;
        let stopped = Stopped {
            dir,
            config,
            store,
            grpc,
            http,
        };
        (proc, stopped)
    }

    /// Runs a collector CLI command against this collector's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("forewarn-collector"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run collector cli")
    }

    /// Creates an operator with the CLI and sets its password through the
    /// setup link, over HTTP; returns the password. `role` is msp-admin,
    /// technician or viewer; `tenants` are names (technicians and viewers).
    pub async fn operator(&self, name: &str, role: &str, tenants: &[&str]) -> String {
        let mut args = vec!["operator", "add", name, "--role", role, "--json"];
        for t in tenants {
            args.extend(["--tenant", t]);
        }
        let made = self.cli_json(&args);
        let url = made["setup_url"].as_str().expect("setup_url");
        let token = url.split("token=").nth(1).expect("token in setup url");
        let password = format!("pw-{name}-long-enough");
        let resp = reqwest::Client::new()
            .post(format!("http://{}/setup", self.http))
            .form(&[
                ("token", token),
                ("password", &password),
                ("confirm", &password),
            ])
            .send()
            .await
            .expect("setup");
        assert_eq!(resp.status().as_u16(), 200, "setup for {name}");
        password
    }

    /// Runs a CLI command that prints JSON; panics with stderr on failure.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "collector {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: bad JSON {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Creates an enrollment token; returns (token, ca_fingerprint).
    pub fn token(&self, tenant: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["token", "create", "--tenant", tenant, "--json"];
        args.extend_from_slice(extra);
        let v = self.cli_json(&args);
        (
            v["token"].as_str().expect("token").to_string(),
            v["ca_fingerprint"].as_str().expect("fp").to_string(),
        )
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.grpc)
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/pki/ca.crt")).expect("ca.crt")
    }

    /// GET an API path with a bearer key; returns (status, JSON body).
    pub async fn get_with(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{path}", self.http))
            .bearer_auth(key)
            .send()
            .await
            .expect("http request");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Signs `user` in through the login form; the session cookie as
    /// `name=value`.
    pub async fn sign_in(&self, user: &str, password: &str) -> String {
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .post(format!("http://{}/login", self.http))
            .form(&[("username", user), ("password", password), ("next", "/")])
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status().as_u16(), 303, "login of {user}");
        let set = resp.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .to_string();
        set.split(';').next().expect("name=value").to_string()
    }

    /// GET a dashboard page with a session cookie: (status, body).
    pub async fn page(&self, cookie: &str, path: &str) -> (u16, String) {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{path}", self.http))
            .header("cookie", cookie)
            .header("accept", "text/html")
            .send()
            .await
            .expect("GET");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }

    /// `POST path` with a JSON body and the MSP-wide key: status and body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}{path}", self.http))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .expect("http request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `GET /api/v1/agents/{agent_id}` with the MSP-wide key; `None`
    /// unless 200 (e.g. before the agent is enrolled).
    pub async fn agent(&self, agent_id: &str) -> Option<Value> {
        let (status, v) = self
            .get_with(&self.api_key, &format!("/api/v1/agents/{agent_id}"))
            .await;
        (status == 200).then_some(v)
    }

    /// The agent's latest result for (check, item) as its detail shows it.
    pub async fn check_row(&self, agent_id: &str, check: &str, item: &str) -> Option<Value> {
        check_in(&self.agent(agent_id).await?, check, item)
    }

    /// GET with the MSP-wide key; panics unless 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.get_with(&self.api_key, path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

/// The row of (check, item) in an agent detail's `checks`.
pub fn check_in(detail: &Value, check: &str, item: &str) -> Option<Value> {
    detail["checks"]
        .as_array()?
        .iter()
        .find(|c| c["check"] == check && c["item"] == item)
        .cloned()
}

/// A collector that is no longer running: its data dir, config, store and
/// the ports it had.
pub struct Stopped {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub store: Store,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

impl Stopped {
    /// A new collector process on the same data dir, store and ports.
    pub fn start(self) -> Collector {
        let Stopped {
            dir,
            config,
            store,
            grpc,
            http,
        } = self;
        // Pin the ports it got; every other setting (e.g. `[tickets]`) stays.
        let text = std::fs::read_to_string(&config).expect("read config");
        let any = "listen_addr = \"127.0.0.1:0\"";
        let text = text
            .replacen(any, &format!("listen_addr = \"{grpc}\""), 1)
            .replacen(any, &format!("listen_addr = \"{http}\""), 1);
        std::fs::write(&config, text).expect("rewrite config");
        Collector::launch(dir, config, store)
    }
}

/// An agent's own directory: config + state.
pub struct AgentHome {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl AgentHome {
    /// Writes an agent config; `extra` is appended verbatim (TOML).
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\ninterval_secs = 15\n{extra}\n{}{}",
                dir.path().join("state"),
                // A host with a pending reboot, or a machine loaded by the
                // test run itself, would add unrelated tickets.
                if extra.contains("[checks.reboot_required]") {
                    ""
                } else {
                    "[checks.reboot_required]\nenabled = false\n"
                },
                if extra.contains("[checks.load]") {
                    ""
                } else {
                    "[checks.load]\nenabled = false\n"
                }
            ),
        )
        .expect("write agent config");
        Self { dir, config }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin("forewarn-agent"));
        c.arg("--config").arg(&self.config);
        c.env("RUST_LOG", "info");
        c
    }

    pub fn enroll(&self, collector: &Collector, token: &str, fingerprint: &str) -> Output {
        self.command()
            .args(["enroll", "--collector", &collector.url()])
            .args(["--token", token, "--ca-fingerprint", fingerprint])
            .output()
            .expect("run agent enroll")
    }

    pub fn run(&self) -> Proc {
        self.run_with("agent.log", "info")
    }

    /// Starts `forewarn-agent run` with `RUST_LOG=rust_log`, its stderr in
    /// `log_name` in the agent's dir.
    pub fn run_with(&self, log_name: &str, rust_log: &str) -> Proc {
        let log = self.dir.path().join(log_name);
        let child = self
            .command()
            .arg("run")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn agent");
        Proc { child, log }
    }

    pub fn identity(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("state/identity.json"))
            .expect("identity.json");
        serde_json::from_str(&text).expect("identity json")
    }
}

/// Enrolls an agent into `tenant` and asserts it worked; returns its id.
pub fn enroll_ok(collector: &Collector, home: &AgentHome, tenant: &str) -> String {
    let (token, fp) = collector.token(tenant, &[]);
    let out = home.enroll(collector, &token, &fp);
    assert!(
        out.status.success(),
        "enroll failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    home.identity()["agent_id"]
        .as_str()
        .expect("agent_id")
        .to_string()
}

/// A small tmpfs mounted for the test (needs root), unmounted on drop.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs failed (these tests run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

impl Collector {
    /// Starts like [`Collector::start`] with `extra` TOML appended to the
    /// config (e.g. a `[tickets]` section with short test timers). The
    /// `[grpc]` section must stay before `[http]` for [`Collector::restart`].
    pub fn start_with_config(extra: &str) -> Self {
        Self::start_on(Backend::Sqlite, extra)
    }

    /// Starts on a new store of `backend` with `extra` TOML appended to the
    /// config, as [`Collector::start_with_config`] does.
    pub fn start_on(backend: Backend, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n{extra}\n",
                dir.path().join("data")
            ),
        )
        .expect("write config");
        Self::start_with_on(backend, dir, config)
    }
}

impl Collector {
    /// `GET /metrics` as text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one series in `GET /metrics`, e.g.
    /// `forewarn_reports_total{result="committed"}` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().expect("metric value"))
    }

    /// `forewarn_rejected_total{reason="<reason>"}`.
    pub async fn rejected(&self, reason: &str) -> f64 {
        self.metric(&format!("forewarn_rejected_total{{reason=\"{reason}\"}}"))
            .await
    }
}

mod backend;
pub mod browser;
pub mod delivery;
pub mod disk_host;
pub mod fake;
pub mod fill;
pub mod netns;
pub mod oneliner;
pub mod packages;
pub mod postgres_server;
pub mod psa_e2e;
pub mod replica;
pub mod sim;
pub mod systemd_fake;
pub mod update;
pub mod vendors;
pub mod wine;
