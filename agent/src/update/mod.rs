//! Signed self-update: the collector offers a release (after Hello, see
//! `collector/src/releases/`), the agent takes it only if it verifies.
//!
//! For each offer: [`verify::check_offer`] (a higher version, the file
//! named for this target, a bounded size) → [`download::fetch`] into
//! `<exe>.new` over the mTLS channel, checked while it streams (size,
//! SHA-256, minisign signature against this agent's release key, the signed
//! comment naming the file and a higher version) → [`trial::try_binary`]
//! (the new binary must connect and report within the trial timeout) →
//! [`swap::Paths::install`] (old kept as `<exe>.prev`) → the session stops
//! cleanly and [`swap::exec`] hands over (same PID on Unix). The new
//! version reports `UPDATED` once its first session is open; a refusal or a
//! failed trial is reported at once, and the old binary keeps running.
//!
//! The collector can only pick *which* signed release to offer: without
//! the offline secret key it cannot make one this agent accepts.

pub mod download;
pub mod swap;
pub mod trial;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use forewarn_proto::v1 as pb;
use semver::Version;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

pub use verify::{Offer, Outcome, Stopped};

use crate::collectors::Collectors;
use crate::config::UpdateConfig;
use crate::identity::Credentials;

/// The file (in the state dir) where an agent about to hand over leaves
/// its `UPDATED` result for the new version to send.
pub const RESULT_FILE: &str = "update-result.json";

/// An update attempt's result, for the collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReport {
    pub from_version: String,
    pub to_version: String,
    pub outcome: Outcome,
    pub message: String,
    pub at_unix_ms: u64,
}

impl UpdateReport {
    fn new(to_version: &str, outcome: Outcome, message: String) -> Self {
        Self {
            from_version: crate::VERSION.to_owned(),
            to_version: to_version.to_owned(),
            outcome,
            message,
            at_unix_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl From<&UpdateReport> for pb::AgentMessage {
    fn from(r: &UpdateReport) -> Self {
        use pb::update_result::Outcome as O;
        let outcome = match r.outcome {
            Outcome::Updated => O::Updated,
            Outcome::RolledBack => O::RolledBack,
            Outcome::Refused => O::Refused,
            Outcome::Failed => O::Failed,
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(r.at_unix_ms);
        pb::AgentMessage {
            body: Some(pb::agent_message::Body::UpdateResult(pb::UpdateResult {
                from_version: r.from_version.clone(),
                to_version: r.to_version.clone(),
                outcome: outcome as i32,
                message: r.message.clone(),
                at: Some(prost_types::Timestamp::from(at)),
            })),
        }
    }
}

/// What the update task needs.
pub struct Updater {
    pub config: UpdateConfig,
    pub state_dir: PathBuf,
    pub collectors: Collectors,
    pub server_name: String,
    pub credentials: watch::Receiver<Credentials>,
}

/// The update task's channels.
pub struct UpdateIo {
    pub offers: mpsc::Receiver<Offer>,
    pub results: mpsc::Sender<UpdateReport>,
    /// Receives the installed executable's path when the agent should stop
    /// and hand over to it.
    pub handover: oneshot::Sender<PathBuf>,
}

/// Takes offers until one is installed (then asks for the hand-over and
/// returns) or the channel closes.
pub async fn run(updater: Updater, mut io: UpdateIo) {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            error!(error = %e, "cannot find this executable: self-update is off");
            return;
        }
    };
    let mut refused: Vec<(String, String)> = Vec::new();
    while let Some(offer) = io.offers.recv().await {
        let key = (offer.file.clone(), offer.sha256.clone());
        if !updater.config.enabled {
            info!(
                version = offer.version,
                "update offered; [update] enabled = false"
            );
            continue;
        }
        if refused.contains(&key) {
            debug!(
                file = offer.file,
                "update offered again after it failed: ignored until restart"
            );
            continue;
        }
        info!(version = offer.version, file = offer.file, "update offered");
        match attempt(&updater, &offer, &exe).await {
            Ok(()) => {
                let report = UpdateReport::new(&offer.version, Outcome::Updated, String::new());
                if let Err(e) = save_pending(&updater.state_dir, &report) {
                    warn!(error = %e, "cannot keep the update result for the new version");
                }
                info!(
                    version = offer.version,
                    "update installed: handing over to the new version"
                );
                let _ = io.handover.send(exe);
                return;
            }
            Err(stopped) => {
                warn!(
                    version = offer.version,
                    outcome = ?stopped.outcome,
                    reason = stopped.message,
                    "update not taken"
                );
                refused.push(key);
                let report = UpdateReport::new(&offer.version, stopped.outcome, stopped.message);
                if io.results.send(report).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One offer, from checks to the installed binary.
async fn attempt(updater: &Updater, offer: &Offer, exe: &Path) -> Result<(), Stopped> {
    let running = Version::parse(crate::VERSION).map_err(|e| {
        Stopped::refused(format!(
            "this agent's own version {:?} is not SemVer: {e}",
            crate::VERSION
        ))
    })?;
    let key_text = updater.config.release_key().ok_or_else(|| {
        Stopped::refused(
            "no release key: [update] public_key is unset and none was compiled in \
             (FOREWARN_RELEASE_PUBLIC_KEY)",
        )
    })?;
    let key = minisign_verify::PublicKey::from_base64(key_text)
        .map_err(|e| Stopped::refused(format!("release key unusable: {e}")))?;
    let offered = verify::check_offer(
        offer,
        &running,
        crate::TARGET,
        updater.config.max_download_bytes,
    )?;
    let paths = swap::Paths::for_exe(exe);
    let credentials = updater.credentials.borrow().clone();
    let source = download::Source {
        collectors: &updater.collectors,
        server_name: &updater.server_name,
        credentials: &credentials,
    };
    download::fetch(&source, offer, &offered, &running, &key, &paths.new).await?;
    info!(version = %offered, "update downloaded and verified; trying it");
    let timeout = Duration::from_secs(updater.config.trial_timeout_secs);
    if let Err(e) = trial::try_binary(&paths.new, timeout).await {
        let _ = std::fs::remove_file(&paths.new);
        return Err(e);
    }
    paths
        .install()
        .map_err(|e| Stopped::failed(format!("cannot install {}: {e}", paths.exe.display())))
}

fn save_pending(state_dir: &Path, report: &UpdateReport) -> std::io::Result<()> {
    let path = state_dir.join(RESULT_FILE);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(report).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &path)
}

/// At start: the `UPDATED` result the previous binary left, if it names
/// this version (the file is removed either way).
pub fn take_pending(state_dir: &Path) -> Option<UpdateReport> {
    let path = state_dir.join(RESULT_FILE);
    let bytes = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    let report: UpdateReport = serde_json::from_slice(&bytes).ok()?;
    if report.to_version == crate::VERSION {
        Some(report)
    } else {
        warn!(
            expected = report.to_version,
            running = crate::VERSION,
            "an update was installed but another version runs"
        );
        Some(UpdateReport {
            outcome: Outcome::Failed,
            message: format!(
                "installed {}, but {} started",
                report.to_version,
                crate::VERSION
            ),
            ..report
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_result_is_taken_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = UpdateReport::new(crate::VERSION, Outcome::Updated, String::new());
        r.from_version = "0.0.1".into();
        save_pending(dir.path(), &r).expect("save");
        assert_eq!(take_pending(dir.path()), Some(r.clone()));
        assert_eq!(take_pending(dir.path()), None);
        // Another version started than the one installed: reported as failed.
        r.to_version = "99.0.0".into();
        save_pending(dir.path(), &r).expect("save");
        let taken = take_pending(dir.path()).expect("taken");
        assert_eq!(taken.outcome, Outcome::Failed);
    }
}
