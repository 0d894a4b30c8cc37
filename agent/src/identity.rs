//! The agent's identity on disk, in `state_dir`:
//!
//! | file            | mode | content                                      |
//! |-----------------|------|----------------------------------------------|
//! | `agent.key`     | 0600 | the agent's private key (PEM, PKCS#8)        |
//! | `agent.crt`     | 0644 | its certificate + issuing CA (PEM)           |
//! | `ca.crt`        | 0644 | the pinned collector CA, the only trusted root |
//! | `identity.json` | 0644 | agent/tenant ids, site, collector, enrolled_at |
//!
//! The directory is created 0700. Every file is written atomically (temp
//! file in the same directory, fsync, rename); `identity.json` is written
//! last, so its presence means the agent is enrolled.
//!
//! All functions block: call them from `spawn_blocking`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const IDENTITY: &str = "identity.json";
const KEY: &str = "agent.key";
const CERT: &str = "agent.crt";
const CA: &str = "ca.crt";

/// Who the agent is, as the collector enrolled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub agent_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub collector_url: String,
    pub server_name: String,
    /// RFC 3339.
    pub enrolled_at: String,
}

/// Identity plus the TLS material for mutual TLS.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub identity: Identity,
    pub key_pem: String,
    pub chain_pem: String,
    pub ca_pem: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The recorded identity, or `None` when not enrolled.
    pub fn identity(&self) -> Result<Option<Identity>> {
        let path = self.file(IDENTITY);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| Error::IdentityFile { path, source })
    }

    /// Identity, key and certificates, checked to be usable PEM.
    pub fn load(&self) -> Result<Credentials> {
        let identity = self.identity()?.ok_or_else(|| Error::NotEnrolled {
            path: self.file(IDENTITY),
        })?;
        let read = |name: &str| {
            let path = self.file(name);
            fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
        };
        let credentials = Credentials {
            identity,
            key_pem: read(KEY)?,
            chain_pem: read(CERT)?,
            ca_pem: read(CA)?,
        };
        check_certificates(&self.file(CERT), &credentials.chain_pem)?;
        check_certificates(&self.file(CA), &credentials.ca_pem)?;
        if PrivateKeyDer::from_pem_slice(credentials.key_pem.as_bytes()).is_err() {
            return Err(Error::CertificateFile {
                path: self.file(KEY),
                reason: "no private key".to_owned(),
            });
        }
        Ok(credentials)
    }

    /// Creates the directory (0700) if needed and writes every file,
    /// `identity.json` last.
    pub fn save(&self, c: &Credentials) -> Result<()> {
        if !self.dir.exists() {
            create_private_dir(&self.dir).map_err(|source| Error::Write {
                path: self.dir.clone(),
                source,
            })?;
        }
        let json = serde_json::to_string_pretty(&c.identity).map_err(|e| Error::Write {
            path: self.file(IDENTITY),
            source: io::Error::other(e),
        })?;
        self.write_atomic(KEY, c.key_pem.as_bytes(), 0o600)?;
        self.write_atomic(CERT, c.chain_pem.as_bytes(), 0o644)?;
        self.write_atomic(CA, c.ca_pem.as_bytes(), 0o644)?;
        self.write_atomic(IDENTITY, format!("{json}\n").as_bytes(), 0o644)
    }

    /// Temp file created with `mode` (a key is never readable by others,
    /// not even for a moment), fsync, rename over `name`, fsync the
    /// directory.
    fn write_atomic(&self, name: &str, contents: &[u8], mode: u32) -> Result<()> {
        let path = self.file(name);
        let tmp = self.file(&format!(".{name}.tmp"));
        let result = (|| {
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut file = create_new(&tmp, mode)?;
            file.write_all(contents)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        })();
        result.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            Error::Write { path, source }
        })
    }
}

// === files, per platform ===

/// Creates `dir` and its parents, 0700.
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

// TODO(windows): ACL limiting the state dir to the agent's account (and
// SYSTEM); until then it inherits its parent's ACL.
#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).create(dir)
}

/// Creates `path`, which must not exist, with `mode`.
#[cfg(unix)]
fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

// TODO(windows): ACL so the key is readable by the agent's account only;
// until then every file inherits the state dir's ACL.
#[cfg(not(unix))]
fn create_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a `File` (access denied), so there is
/// nothing to fsync; the rename is as durable as the file system's metadata
/// journal makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn check_certificates(path: &Path, pem: &str) -> Result<()> {
    let count = CertificateDer::pem_slice_iter(pem.as_bytes())
        .take_while(std::result::Result::is_ok)
        .count();
    if count == 0 {
        return Err(Error::CertificateFile {
            path: path.to_owned(),
            reason: "no certificate".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["agent".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        Credentials {
            identity: Identity {
                agent_id: "a-1".into(),
                tenant_id: "t-1".into(),
                tenant_name: "Acme".into(),
                site: "HQ".into(),
                collector_url: "https://c:4443".into(),
                server_name: "c".into(),
                enrolled_at: "2025-01-01T00:00:00Z".into(),
            },
            key_pem: key.serialize_pem(),
            chain_pem: cert.pem(),
            ca_pem: cert.pem(),
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn save_then_load_with_private_modes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(tmp.path().join("state"));
        assert!(state.identity().expect("readable").is_none());
        assert!(matches!(state.load(), Err(Error::NotEnrolled { .. })));

        let c = credentials();
        state.save(&c).expect("save");
        assert_eq!(state.load().expect("load"), c);
        #[cfg(unix)]
        {
            assert_eq!(mode(state.path()), 0o700);
            assert_eq!(mode(&state.path().join("agent.key")), 0o600);
        }
        let names: Vec<_> = fs::read_dir(state.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");

        // saving again (enroll --force) replaces the files
        let mut again = credentials();
        again.identity.agent_id = "a-2".into();
        state.save(&again).expect("save again");
        assert_eq!(state.load().expect("load").identity.agent_id, "a-2");
    }

    #[test]
    fn broken_certificate_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(tmp.path());
        let mut c = credentials();
        c.ca_pem = "garbage".into();
        state.save(&c).expect("save");
        let err = state.load().expect_err("bad ca").to_string();
        assert!(err.contains("ca.crt"), "{err}");
    }
}
