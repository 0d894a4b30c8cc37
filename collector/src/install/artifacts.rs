//! The signed agent artifacts in `[releases] dir`, as the installers see
//! them: which files there are (named as the packagers name them), what
//! each is (kind, OS, CPU, version), and whether its minisign signature
//! verifies against `[releases] public_key`.
//!
//! A file is offered and served only with a `.minisig` next to it that
//! verifies: the index checks every file (remembering the answer per
//! file size and modification time), and a download is checked again on
//! the very bytes it answers with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use minisign_verify::{PublicKey, Signature};
use serde::Serialize;

use crate::{Error, Result};

/// Suffix of a signature file.
pub const SIG_SUFFIX: &str = ".minisig";

/// What an artifact is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// cargo-deb: `forewarn-agent_<version>-1_amd64.deb`.
    Deb,
    /// cargo-generate-rpm: `forewarn-agent-<version>-1.x86_64.rpm`.
    Rpm,
    /// wixl: `forewarn-agent-<version>-x64.msi`.
    Msi,
    /// A plain binary: `forewarn-agent-<version>-<target triple>[.exe]`.
    Binary,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deb => "deb",
            Kind::Rpm => "rpm",
            Kind::Msi => "msi",
            Kind::Binary => "binary",
        }
    }
}

/// One agent artifact, as named in the releases dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub file: String,
    pub kind: Kind,
    pub version: String,
    /// `linux`, `macos` or `windows`.
    pub os: String,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    pub size: u64,
}

/// Reads what an artifact's file name says, or `None` for a file that is
/// no agent artifact (the collector's own packages, notes, signatures).
pub fn parse_name(file: &str) -> Option<(Kind, String, &'static str, &'static str)> {
    if let Some(rest) = file.strip_prefix("forewarn-agent_") {
        // <version>-<revision>_<debian arch>.deb
        let rest = rest.strip_suffix(".deb")?;
        let (version_rev, arch) = rest.rsplit_once('_')?;
        let (version, _rev) = version_rev.rsplit_once('-')?;
        let arch = match arch {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            _ => return None,
        };
        return valid_version(version).then(|| (Kind::Deb, version.to_string(), "linux", arch));
    }
    let rest = file.strip_prefix("forewarn-agent-")?;
    if let Some(rest) = rest.strip_suffix(".rpm") {
        // <version>-<release>.<arch>.rpm
        let (version_rel, arch) = rest.rsplit_once('.')?;
        let (version, _rel) = version_rel.rsplit_once('-')?;
        let arch = match arch {
            "x86_64" => "x86_64",
            "aarch64" => "aarch64",
            _ => return None,
        };
        return valid_version(version).then(|| (Kind::Rpm, version.to_string(), "linux", arch));
    }
    if let Some(rest) = rest.strip_suffix(".msi") {
        let (version, arch) = rest.rsplit_once('-')?;
        let arch = match arch {
            "x64" => "x86_64",
            "arm64" => "aarch64",
            _ => return None,
        };
        return valid_version(version).then(|| (Kind::Msi, version.to_string(), "windows", arch));
    }
    // <version>-<arch>-<vendor>-<os>[-<env>][.exe]: the version has no '-'
    // before its pre-release part, so the triple starts at the first
    // '-' followed by a known CPU.
    let rest = rest.strip_suffix(".exe").unwrap_or(rest);
    for (cpu, arch) in [("-x86_64-", "x86_64"), ("-aarch64-", "aarch64")] {
        if let Some(at) = rest.find(cpu) {
            let version = &rest[..at];
            let triple = &rest[at + 1..];
            let os = if triple.contains("-linux") {
                "linux"
            } else if triple.contains("-apple-darwin") {
                "macos"
            } else if triple.contains("-windows") {
                "windows"
            } else {
                return None;
            };
            if (os == "windows") != file.ends_with(".exe") {
                return None;
            }
            return valid_version(version).then(|| (Kind::Binary, version.to_string(), os, arch));
        }
    }
    None
}

/// `MAJOR.MINOR.PATCH` with an optional `-pre` part of safe characters.
fn valid_version(v: &str) -> bool {
    let (core, pre) = v.split_once('-').unwrap_or((v, ""));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && pre
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Orders versions: numeric core first, a release after its pre-releases.
fn version_key(v: &str) -> (Vec<u64>, bool, String) {
    let (core, pre) = v.split_once('-').unwrap_or((v, ""));
    let nums = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    (nums, pre.is_empty(), pre.to_string())
}

/// Whether a request names a plain file of the releases dir: no path
/// separators, no parent or hidden names. Anything else is refused before
/// the file system is touched.
pub fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

/// The index's verdicts: file → (size, modified, signed).
type Verdicts = HashMap<String, (u64, Option<SystemTime>, bool)>;

/// The releases dir and the key its artifacts must be signed with.
#[derive(Debug)]
pub struct Releases {
    dir: PathBuf,
    key: Option<(String, PublicKey)>,
    verdicts: Mutex<Verdicts>,
}

impl Releases {
    /// `key` is `[releases] public_key`: the minisign public key, its
    /// base64 line (`RW…`) or a whole `.pub` file's text.
    pub fn new(dir: PathBuf, key: Option<&str>) -> Result<Self> {
        let key = match key {
            None => None,
            Some(text) => {
                let line = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
                    .unwrap_or_default();
                let parsed = PublicKey::from_base64(line).map_err(|e| {
                    Error::Config(format!(
                        "[releases] public_key is not a minisign public key (RW…): {e}"
                    ))
                })?;
                Some((line.to_string(), parsed))
            }
        };
        Ok(Self {
            dir,
            key,
            verdicts: Mutex::new(HashMap::new()),
        })
    }

    /// The public key's base64 line, if one is configured.
    pub fn public_key(&self) -> Option<&str> {
        self.key.as_ref().map(|(text, _)| text.as_str())
    }

    /// Every agent artifact with a verifying signature, newest first.
    pub async fn index(&self) -> Result<Vec<Artifact>> {
        let Some((_, key)) = &self.key else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Error::io(&self.dir, e))?
        {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some((kind, version, os, arch)) = parse_name(&name) else {
                continue;
            };
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stamp = (meta.len(), meta.modified().ok());
            let known = self
                .lock()
                .get(&name)
                .filter(|v| (v.0, v.1) == stamp)
                .map(|v| v.2);
            let signed = match known {
                Some(signed) => signed,
                None => {
                    let signed = self.read_verified(key, &name).await.is_ok();
                    self.lock().insert(name.clone(), (stamp.0, stamp.1, signed));
                    signed
                }
            };
            if signed {
                out.push(Artifact {
                    file: name,
                    kind,
                    version,
                    os: os.to_string(),
                    arch: arch.to_string(),
                    size: meta.len(),
                });
            }
        }
        out.sort_by(|a, b| {
            version_key(&b.version)
                .cmp(&version_key(&a.version))
                .then_with(|| a.file.cmp(&b.file))
        });
        Ok(out)
    }

    /// The bytes of `name` (an artifact or its `.minisig`) when the
    /// artifact's signature verifies; `NotFound` otherwise, saying why.
    pub async fn read(&self, name: &str) -> Result<Vec<u8>> {
        if !safe_name(name) {
            return Err(Error::InvalidArgument(format!(
                "file {name:?}: a plain file name is expected (letters, digits, . - _ +)"
            )));
        }
        let Some((_, key)) = &self.key else {
            return Err(Error::NotFound(
                "this collector serves no downloads: [releases] public_key is not set".into(),
            ));
        };
        match name.strip_suffix(SIG_SUFFIX) {
            Some(artifact) => {
                let (_, sig) = self.read_verified(key, artifact).await?;
                Ok(sig)
            }
            None => Ok(self.read_verified(key, name).await?.0),
        }
    }

    /// The artifact and its signature file, read once and verified together.
    async fn read_verified(&self, key: &PublicKey, name: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        if parse_name(name).is_none() {
            return Err(Error::NotFound(format!("{name} is no agent artifact")));
        }
        let sig_path = self.path(&format!("{name}{SIG_SUFFIX}"));
        let body = read(&self.path(name), name).await?;
        let sig = read(&sig_path, &format!("{name}{SIG_SUFFIX}")).await?;
        let key = key.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            verify(&key, &name, &body, &sig)?;
            Ok((body, sig))
        })
        .await
        .map_err(|e| Error::Internal(format!("signature check: {e}")))?
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Verdicts> {
        self.verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn read(path: &Path, name: &str) -> Result<Vec<u8>> {
    match tokio::fs::read(path).await {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NotFound(format!("no {name} in the releases dir")))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Checks `sig` (a `.minisig` file) over `body` with `key`, and that its
/// trusted comment names this file: a signature made for another artifact
/// does not make a renamed file servable.
fn verify(key: &PublicKey, name: &str, body: &[u8], sig: &[u8]) -> Result<()> {
    let refuse = |why: String| {
        tracing::warn!(file = name, why, "release artifact refused");
        Error::NotFound(format!("{name} is not served: {why}"))
    };
    let text = std::str::from_utf8(sig).map_err(|_| refuse("its .minisig is not text".into()))?;
    let signature =
        Signature::decode(text).map_err(|e| refuse(format!("its .minisig does not parse: {e}")))?;
    key.verify(body, &signature, false)
        .map_err(|e| refuse(format!("its signature does not verify: {e}")))?;
    let named = signature
        .trusted_comment()
        .split_whitespace()
        .any(|w| w.strip_prefix("file:") == Some(name));
    if !named {
        return Err(refuse(format!(
            "its signature's trusted comment does not name it ({:?})",
            signature.trusted_comment()
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "artifacts_tests.rs"]
mod tests;
