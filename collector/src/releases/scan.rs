//! The scan of `[releases] dir`: every artifact verified against
//! `[releases] public_key` (its `.minisig` next to it, the trusted comment
//! naming this very file and a version), then listed with kind, version,
//! OS/arch, size and SHA-256. Whatever fails is listed apart with the
//! reason and is neither served nor offered.
//!
//! [`Releases`] keeps the last scan and redoes it only when the
//! directory's listing (names, sizes, modification times) changed, looked
//! at no more than once every [`RECHECK`].

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use minisign_verify::{PublicKey, Signature};
use semver::Version;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{ArtifactName, Kind, SIGNATURE_SUFFIX, TrustedComment};
use crate::{Error, Result};

/// How often the directory listing is looked at for changes.
pub const RECHECK: Duration = Duration::from_secs(2);

/// A verified artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub file: String,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(serialize_with = "as_string")]
    pub version: Version,
    pub kind: Kind,
    pub os: String,
    pub arch: String,
    /// Rust target triple (self-update binaries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub size: u64,
    pub sha256: String,
    /// The `.minisig` file's text, handed to agents with an offer.
    #[serde(skip)]
    pub signature: String,
}

/// A file in the releases dir that is not served, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub file: String,
    pub reason: String,
}

/// One scan's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scan {
    pub artifacts: Vec<Artifact>,
    pub rejected: Vec<Rejected>,
}

fn as_string<S: serde::Serializer>(v: &Version, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Scan {
    /// The verified artifact called `file`.
    pub fn get(&self, file: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.file == file)
    }
}

/// Parses `[releases] public_key` (the `RW…` line of a minisign `.pub`).
pub fn public_key(key: &str) -> Result<PublicKey> {
    PublicKey::from_base64(key.trim()).map_err(|e| {
        Error::Config(format!(
            "releases.public_key: not a minisign public key: {e}"
        ))
    })
}

/// Scans `dir`. A missing directory is an empty scan; without a public key
/// every file is rejected (nothing unverified is ever served).
pub fn scan(dir: &Path, key: Option<&PublicKey>) -> Result<Scan> {
    let mut out = Scan::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.ends_with(SIGNATURE_SUFFIX) && !n.starts_with('.') && !n.ends_with(".tmp"))
        .collect();
    names.sort();
    for file in names {
        let path = dir.join(&file);
        let checked = match key {
            None => Err("no [releases] public_key is configured".to_owned()),
            Some(key) => verify(&path, &file, key),
        };
        match checked {
            Ok(a) => out.artifacts.push(a),
            Err(reason) => out.rejected.push(Rejected { file, reason }),
        }
    }
    Ok(out)
}

/// Verifies one artifact: signature, then that the trusted comment names
/// this file and a version its name carries.
fn verify(path: &Path, file: &str, key: &PublicKey) -> std::result::Result<Artifact, String> {
    let sig_path = super::sign::sig_path(path);
    let signature = fs::read_to_string(&sig_path)
        .map_err(|e| format!("no readable signature {file}{SIGNATURE_SUFFIX}: {e}"))?;
    let sig = Signature::decode(&signature).map_err(|e| format!("bad signature file: {e}"))?;
    let mut verifier = key
        .verify_stream(&sig)
        .map_err(|e| format!("signature does not verify: {e}"))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut f = fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        verifier.update(&buf[..n]);
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    verifier
        .finalize()
        .map_err(|e| format!("signature does not verify: {e}"))?;
    let comment = TrustedComment::parse(sig.trusted_comment())?;
    if comment.file != file {
        return Err(format!(
            "signed as {:?}, not as this file (a renamed artifact is not served)",
            comment.file
        ));
    }
    let name = ArtifactName::parse(file, &comment.version)?;
    Ok(Artifact {
        file: file.to_owned(),
        path: path.to_owned(),
        version: comment.version,
        kind: name.kind,
        os: name.os,
        arch: name.arch,
        target: name.target,
        size,
        sha256: hex::encode(hasher.finalize()),
        signature,
    })
}

/// The last scan of the releases dir, redone when the dir changes.
#[derive(Clone)]
pub struct Releases {
    dir: PathBuf,
    key: Option<Arc<PublicKey>>,
    cache: Arc<Mutex<Cache>>,
}

struct Cache {
    checked: Option<Instant>,
    listing: Vec<(String, u64, Option<SystemTime>)>,
    scan: Arc<Scan>,
}

impl Releases {
    /// `key` unset: every artifact is rejected.
    pub fn new(dir: PathBuf, key: Option<&str>) -> Result<Self> {
        let key = key.map(public_key).transpose()?.map(Arc::new);
        Ok(Self {
            dir,
            key,
            cache: Arc::new(Mutex::new(Cache {
                checked: None,
                listing: Vec::new(),
                scan: Arc::new(Scan::default()),
            })),
        })
    }

    /// From the collector config.
    pub fn from_config(cfg: &crate::Config) -> Result<Self> {
        Self::new(cfg.releases_dir(), cfg.releases.public_key.as_deref())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current scan (verifying again what changed on disk).
    pub async fn current(&self) -> Result<Arc<Scan>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.current_blocking())
            .await
            .map_err(|e| Error::Internal(format!("releases scan: {e}")))?
    }

    /// [`Releases::current`] for blocking callers.
    pub fn current_blocking(&self) -> Result<Arc<Scan>> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::Internal("releases cache poisoned".into()))?;
        if cache.checked.is_some_and(|t| t.elapsed() < RECHECK) {
            return Ok(cache.scan.clone());
        }
        let listing = listing(&self.dir);
        if cache.checked.is_none() || listing != cache.listing {
            cache.scan = Arc::new(scan(&self.dir, self.key.as_deref())?);
            for r in &cache.scan.rejected {
                tracing::warn!(
                    file = r.file,
                    reason = r.reason,
                    "release artifact not served"
                );
            }
            cache.listing = listing;
        }
        cache.checked = Some(Instant::now());
        Ok(cache.scan.clone())
    }
}

fn listing(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((
                e.file_name().into_string().ok()?,
                m.len(),
                m.modified().ok(),
            ))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::super::sign;
    use super::*;

    fn signed_dir() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = sign::keygen(&dir.path().join("keys"), None).expect("keygen");
        let sk = sign::load_secret_key(&keys.secret_key, None).expect("sk");
        let rel = dir.path().join("releases");
        fs::create_dir(&rel).expect("mkdir");
        let bin = rel.join("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu");
        let deb = rel.join("forewarn-agent_1.2.0-1_amd64.deb");
        fs::write(&bin, b"binary").expect("write");
        fs::write(&deb, b"deb").expect("write");
        sign::sign(&sk, &Version::new(1, 2, 0), &[bin, deb]).expect("sign");
        (dir, keys.public_key)
    }

    #[test]
    fn lists_verified_artifacts_with_their_facts() {
        let (dir, pk) = signed_dir();
        let key = public_key(&pk).expect("pk");
        let s = scan(&dir.path().join("releases"), Some(&key)).expect("scan");
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        let bin = s
            .get("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu")
            .expect("binary listed");
        assert_eq!((bin.kind, bin.size), (Kind::Binary, 6));
        assert_eq!(bin.sha256, hex::encode(Sha256::digest(b"binary")));
        assert_eq!(
            s.get("forewarn-agent_1.2.0-1_amd64.deb").expect("deb").kind,
            Kind::Deb
        );
    }

    #[test]
    fn rejects_tampered_renamed_unsigned_and_foreign_key() {
        let (dir, pk) = signed_dir();
        let rel = dir.path().join("releases");
        // Tampered after signing.
        fs::write(rel.join("forewarn-agent_1.2.0-1_amd64.deb"), b"dex").expect("tamper");
        // Renamed (the signature names the old file).
        fs::copy(
            rel.join("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu"),
            rel.join("forewarn-agent-1.3.0-x86_64-unknown-linux-gnu"),
        )
        .expect("copy");
        fs::copy(
            rel.join("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu.minisig"),
            rel.join("forewarn-agent-1.3.0-x86_64-unknown-linux-gnu.minisig"),
        )
        .expect("copy sig");
        fs::write(
            rel.join("forewarn-agent-1.4.0-x86_64-unknown-linux-gnu"),
            b"x",
        )
        .expect("unsigned");
        let key = public_key(&pk).expect("pk");
        let s = scan(&rel, Some(&key)).expect("scan");
        let files: Vec<&str> = s.artifacts.iter().map(|a| a.file.as_str()).collect();
        assert_eq!(files, ["forewarn-agent-1.2.0-x86_64-unknown-linux-gnu"]);
        assert_eq!(s.rejected.len(), 3, "{:?}", s.rejected);
        // Another key: nothing verifies.
        let other = sign::keygen(&dir.path().join("other"), None).expect("keygen");
        let s = scan(&rel, Some(&public_key(&other.public_key).expect("pk"))).expect("scan");
        assert!(s.artifacts.is_empty());
        // No key: nothing is served.
        assert!(scan(&rel, None).expect("scan").artifacts.is_empty());
    }

    #[test]
    fn a_bad_public_key_names_the_key() {
        let e = public_key("RWnotakey").expect_err("bad");
        assert!(e.to_string().contains("releases.public_key"), "{e}");
    }
}
