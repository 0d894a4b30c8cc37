//! The trial of a downloaded binary before it replaces the running one.
//!
//! The running agent starts the new binary with its own arguments and
//! `FOREWARN_UPDATE_TRIAL=1`. In that mode the new binary does not run the
//! checks or touch the spool: it loads the config and identity, connects
//! to the collector over mTLS, says Hello (with its own version) and
//! Goodbye, and exits 0 once the collector has accepted both (the stream
//! closes cleanly). Anything else — a crash, an error exit, no answer
//! within `[update] trial_timeout_secs` (then it is killed) — fails the
//! trial and the running binary stays.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_client::IngestClient;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::info;

use super::verify::{Outcome, Stopped};
use crate::collectors::Target;
use crate::config::Config;
use crate::endpoint::{self, Tls};
use crate::error::{Error, Result};
use crate::host::{Host, HostFacts};
use crate::identity::Credentials;
use crate::report::{Goodbye, Hello};

/// Set (to anything) in the environment of a binary under trial.
pub const TRIAL_ENV: &str = "FOREWARN_UPDATE_TRIAL";

/// How much of a failed trial's stderr goes into the report.
const STDERR_TAIL: usize = 600;

/// Whether this process is a binary under trial.
pub fn requested() -> bool {
    std::env::var_os(TRIAL_ENV).is_some()
}

/// Runs `binary` in trial mode with this process's arguments; `Ok` when it
/// exited 0 within `timeout`.
pub async fn try_binary(binary: &Path, timeout: Duration) -> std::result::Result<(), Stopped> {
    let rolled_back = |message: String| Stopped {
        outcome: Outcome::RolledBack,
        message,
    };
    let mut child = tokio::process::Command::new(binary)
        .args(std::env::args_os().skip(1))
        .env(TRIAL_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| rolled_back(format!("the new binary does not start: {e}")))?;
    let mut stderr = child.stderr.take();
    let read_stderr = async move {
        let mut out = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut out).await;
        }
        out
    };
    let waited = tokio::time::timeout(timeout, async {
        let (status, err) = tokio::join!(child.wait(), read_stderr);
        (status, err)
    })
    .await;
    match waited {
        Err(_) => {
            let _ = child.kill().await;
            Err(rolled_back(format!(
                "the new binary did not report within {} s ([update] trial_timeout_secs)",
                timeout.as_secs()
            )))
        }
        Ok((Err(e), _)) => Err(rolled_back(format!("waiting for the new binary: {e}"))),
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), err)) => {
            let text = String::from_utf8_lossy(&err);
            let text = text.trim();
            let tail: String = text
                .chars()
                .rev()
                .take(STDERR_TAIL)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(rolled_back(format!(
                "the new binary failed its trial ({status}){}{tail}",
                if tail.is_empty() { "" } else { ": " }
            )))
        }
    }
}

/// Trial mode (in the new binary): Hello and Goodbye to the first
/// collector that answers.
pub async fn run(config: &Config) -> Result<()> {
    let (credentials, collectors, server_name) = crate::run::enrolled(config).await?;
    let facts = tokio::task::spawn_blocking(|| Host::new().map(|h| h.facts())).await??;
    info!(
        version = crate::VERSION,
        "update trial: reporting to the collector"
    );
    collectors
        .first_answer(|target| hello_goodbye(target, &credentials, &server_name, facts.clone()))
        .await?;
    info!("update trial passed");
    Ok(())
}

async fn hello_goodbye(
    target: Target,
    c: &Credentials,
    server_name: &str,
    facts: HostFacts,
) -> Result<()> {
    let channel = endpoint::connect(
        &target.dial(),
        &Tls {
            ca_pem: &c.ca_pem,
            server_name,
            client: Some((&c.chain_pem, &c.key_pem)),
        },
    )
    .await?;
    let hello = Hello {
        agent_id: c.identity.agent_id.clone(),
        boot_id: uuid::Uuid::new_v4().to_string(),
        facts,
        interval_secs: 60,
        sent_at: std::time::SystemTime::now(),
    };
    let goodbye = Goodbye {
        reason: "update trial".to_owned(),
    };
    let (tx, rx) = mpsc::channel(2);
    // Cannot fail: the buffer holds both and `rx` is alive.
    let _ = tx.try_send(pb::AgentMessage::from(&hello));
    let _ = tx.try_send(pb::AgentMessage::from(&goodbye));
    drop(tx);
    let mut inbound = IngestClient::new(channel)
        .session(ReceiverStream::new(rx))
        .await
        .map_err(|status| Error::rejected("session", &status))?
        .into_inner();
    // An offer may come first; the end of the stream, cleanly, is the answer.
    loop {
        match inbound.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(status) => return Err(Error::rejected("session", &status)),
        }
    }
}
