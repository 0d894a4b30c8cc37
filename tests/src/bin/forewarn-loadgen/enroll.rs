//! Enrollment of the simulated agents, once, and the state dir that keeps
//! them for later runs.
//!
//! Each agent enrolls like the real one (agent/src/enroll.rs): the collector
//! CA is pinned by its fingerprint (the agent's own `pin` module), then a
//! key pair made here, a CSR and the token go out in an `Enrollment/Enroll`
//! call on a TLS connection of its own. Layout of `--state DIR`:
//!
//! - `ca.crt`: the pinned collector CA (sessions trust only it);
//! - `agents/agent-NNNNNN.json`: one agent's id, hostname, key and
//!   certificate chain, written atomically (tmp + rename).
//!
//! A run enrolls only the agents whose file is missing, unreadable or whose
//! certificate has expired (the collector's default lifetime is 7 days, and
//! the loadgen does not renew).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use forewarn_agent::endpoint::{self, CollectorUrl, Tls};
use forewarn_agent::pin::{self, Fingerprint};
use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_client::EnrollmentClient;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::checks;
use crate::cli::Args;

/// Refusals after which starting more enrollments is pointless.
const FATAL: [tonic::Code; 4] = [
    tonic::Code::Unauthenticated,
    tonic::Code::PermissionDenied,
    tonic::Code::InvalidArgument,
    tonic::Code::ResourceExhausted,
];

/// One enrolled agent as kept in the state dir.
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentFile {
    pub agent_id: String,
    pub hostname: String,
    pub chain_pem: String,
    pub key_pem: String,
    /// Certificate expiry, Unix seconds (0 = unknown).
    pub not_after: i64,
}

/// What a run needs to know of an agent; the key and certificate stay on
/// disk until it connects.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub index: usize,
    pub agent_id: Arc<str>,
}

/// The state dir.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.root.join("ca.crt")
    }

    pub fn agent_path(&self, index: usize) -> PathBuf {
        self.root
            .join("agents")
            .join(format!("agent-{index:06}.json"))
    }

    /// An agent's file, if it is there, readable and not expired.
    pub fn load(&self, index: usize) -> Option<AgentFile> {
        let text = std::fs::read(self.agent_path(index)).ok()?;
        let file: AgentFile = serde_json::from_slice(&text).ok()?;
        let now = checks::now_ms() / 1000;
        (file.not_after == 0 || file.not_after > now + 60).then_some(file)
    }

    fn save(&self, index: usize, file: &AgentFile) -> Result<()> {
        let path = self.agent_path(index);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(file)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }
}

/// Outcome of [`prepare`].
pub struct Fleet {
    pub agents: Vec<AgentSpec>,
    pub ca_pem: String,
    pub enrolled_now: usize,
    pub reused: usize,
}

/// Loads agents `0..n` from the state dir and enrolls the missing ones.
pub async fn prepare(args: &Args, url: &CollectorUrl, server_name: &str) -> Result<Fleet> {
    let n = args.max_agents();
    let state = StateDir::new(&args.state);
    std::fs::create_dir_all(state.root.join("agents"))
        .with_context(|| format!("creating {}", state.root.display()))?;
    let mut agents: Vec<Option<AgentSpec>> = (0..n)
        .map(|index| {
            state.load(index).map(|f| AgentSpec {
                index,
                agent_id: f.agent_id.into(),
            })
        })
        .collect();
    let missing: Vec<usize> = (0..n).filter(|&i| agents[i].is_none()).collect();
    let reused = n - missing.len();
    let stored_ca = std::fs::read_to_string(state.ca_path()).ok();
    println!(
        "state {}: {reused} of {n} agents enrolled before, {} to enroll",
        state.root.display(),
        missing.len()
    );
    if missing.is_empty() {
        let ca_pem = stored_ca.context("ca.crt missing from the state dir")?;
        let agents = agents.into_iter().flatten().collect();
        return Ok(Fleet {
            agents,
            ca_pem,
            enrolled_now: 0,
            reused,
        });
    }

    let (token, fingerprint) = token(args, missing.len())?;
    let fingerprint: Fingerprint = fingerprint
        .parse()
        .map_err(|e| anyhow::anyhow!("--ca-fingerprint: {e}"))?;
    let ca_pem = pin::fetch_pinned_ca(url, server_name, &fingerprint)
        .await
        .context("pinning the collector CA")?;
    if let Some(stored) = &stored_ca
        && stored != &ca_pem
        && reused > 0
    {
        bail!(
            "{} holds agents of another collector CA; use a new --state dir",
            state.root.display()
        );
    }
    std::fs::write(state.ca_path(), &ca_pem).context("writing ca.crt")?;

    let enrolled = enroll_all(args, url, server_name, &ca_pem, &token, &state, &missing).await?;
    let enrolled_now = enrolled.len();
    for spec in enrolled {
        let i = spec.index;
        agents[i] = Some(spec);
    }
    Ok(Fleet {
        agents: agents.into_iter().flatten().collect(),
        ca_pem,
        enrolled_now,
        reused,
    })
}

/// The token and CA fingerprint: given, or made with the collector CLI.
fn token(args: &Args, uses: usize) -> Result<(String, String)> {
    if let (Some(t), Some(f)) = (&args.token, &args.ca_fingerprint) {
        return Ok((t.clone(), f.clone()));
    }
    let Some(config) = &args.collector_config else {
        bail!(
            "{uses} agents to enroll: give --token and --ca-fingerprint \
             (forewarn-collector token create --max-uses {uses}), or --collector-config"
        );
    };
    let bin = args.collector_bin.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.join("forewarn-collector")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("forewarn-collector"))
    });
    let out = Command::new(&bin)
        .arg("--config")
        .arg(config)
        .args(["token", "create", "--json", "--expires-in", "24h"])
        .args(["--tenant", &args.tenant, "--role", &args.role])
        .args(["--max-uses", &uses.to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} token create failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("token create printed no JSON")?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .with_context(|| format!("token create JSON has no {k}"))
    };
    println!(
        "created an enrollment token for {uses} agents (tenant {:?})",
        args.tenant
    );
    Ok((field("token")?, field("ca_fingerprint")?))
}

/// Enrolls `missing` with at most `--enroll-concurrency` in flight; stops
/// starting new ones after a refusal that would repeat (token used up,
/// rate limited).
async fn enroll_all(
    args: &Args,
    url: &CollectorUrl,
    server_name: &str,
    ca_pem: &str,
    token: &str,
    state: &StateDir,
    missing: &[usize],
) -> Result<Vec<AgentSpec>> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.enroll_concurrency));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new((
        url.clone(),
        server_name.to_string(),
        ca_pem.to_string(),
        token.to_string(),
        state.clone(),
        args.hostname_prefix.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for &index in missing {
        let permit = gate.clone().acquire_owned().await?;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (shared, done, stop) = (shared.clone(), done.clone(), stop.clone());
        let total = missing.len();
        tasks.spawn(async move {
            let (url, server_name, ca_pem, token, state, prefix) = &*shared;
            let hostname = format!("{prefix}-{index:05}");
            let result = enroll_one(url, server_name, ca_pem, token, &hostname).await;
            drop(permit);
            match result {
                Ok(file) => {
                    state.save(index, &file)?;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % 1000 == 0 || n == total {
                        println!("enrolled {n}/{total}");
                    }
                    Ok(AgentSpec {
                        index,
                        agent_id: file.agent_id.into(),
                    })
                }
                Err(e) => {
                    if e.downcast_ref::<tonic::Status>()
                        .is_some_and(|s| FATAL.contains(&s.code()))
                    {
                        stop.store(true, Ordering::Relaxed);
                    }
                    Err(e.context(format!("enrolling {hostname}")))
                }
            }
        });
    }
    let mut enrolled = Vec::with_capacity(missing.len());
    let mut first_error = None;
    let mut failed = 0usize;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(spec) => enrolled.push(spec),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        bail!(
            "{} enrolled, {failed} failed, {} not tried; first error: {e:#}",
            enrolled.len(),
            missing.len() - enrolled.len() - failed
        );
    }
    println!(
        "enrolled {} agents in {:.1} s",
        enrolled.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(enrolled)
}

/// One agent: key, CSR, Enroll on a connection of its own.
async fn enroll_one(
    url: &CollectorUrl,
    server_name: &str,
    ca_pem: &str,
    token: &str,
    hostname: &str,
) -> Result<AgentFile> {
    let key = rcgen::KeyPair::generate()?;
    let csr_pem = rcgen::CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let tls = Tls {
        ca_pem,
        server_name,
        client: None,
    };
    let channel = endpoint::connect(url, &tls).await?;
    let response = EnrollmentClient::new(channel)
        .enroll(pb::EnrollRequest {
            token: token.to_string(),
            csr_pem,
            host: Some(checks::facts(hostname)),
        })
        .await?
        .into_inner();
    if response.agent_id.is_empty() || response.certificate_chain_pem.is_empty() {
        bail!("enroll response without agent_id or certificate");
    }
    Ok(AgentFile {
        agent_id: response.agent_id,
        hostname: hostname.to_string(),
        chain_pem: response.certificate_chain_pem,
        key_pem: key.serialize_pem(),
        not_after: response.not_after.map_or(0, |t| t.seconds),
    })
}
