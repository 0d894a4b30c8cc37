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

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files::{create_new, create_private_dir, sync_dir};

const IDENTITY: &str = "identity.json";
const KEY: &str = "agent.key";
const CERT: &str = "agent.crt";
const CA: &str = "ca.crt";
/// A renewed key and certificate, complete on disk before either replaces
/// the current pair (see [`StateDir::replace_key_pair`]).
const KEY_NEXT: &str = "agent.key.next";
const CERT_NEXT: &str = "agent.crt.next";

/// Who the agent is, as the collector enrolled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub agent_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    /// The (first) collector URL given at enrollment.
    pub collector_url: String,
    /// Every collector URL given at enrollment, when there were several
    /// (replicas); absent in files written before there could be several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collector_urls: Vec<String>,
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

impl Identity {
    /// The collector URLs recorded at enrollment.
    pub fn collector_urls(&self) -> Vec<String> {
        if self.collector_urls.is_empty() {
            vec![self.collector_url.clone()]
        } else {
            self.collector_urls.clone()
        }
    }
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

    /// Identity, key and certificates, checked to be usable PEM. Finishes
    /// (or discards) a key pair replacement a crash interrupted first.
    pub fn load(&self) -> Result<Credentials> {
        self.finish_replacement()?;
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

    /// The certificate file (`agent.crt`: leaf + issuing CA).
    pub fn certificate_path(&self) -> PathBuf {
        self.file(CERT)
    }

    /// Replaces key and certificate with a renewed pair: both are written
    /// completely beside the current ones first (`agent.key.next` 0600,
    /// `agent.crt.next`), then the key and then the certificate are renamed
    /// into place. A crash in between is repaired by [`StateDir::load`]:
    /// with `agent.key.next` still there nothing was replaced and the staged
    /// pair is dropped (the current one stays valid); without it the key is
    /// in place and the staged certificate follows it.
    pub fn replace_key_pair(&self, key_pem: &str, chain_pem: &str) -> Result<()> {
        self.write_atomic(KEY_NEXT, key_pem.as_bytes(), 0o600)?;
        self.write_atomic(CERT_NEXT, chain_pem.as_bytes(), 0o644)?;
        self.rename(KEY_NEXT, KEY)?;
        self.rename(CERT_NEXT, CERT)
    }

    fn finish_replacement(&self) -> Result<()> {
        let (key_next, cert_next) = (self.file(KEY_NEXT), self.file(CERT_NEXT));
        if key_next.exists() {
            for path in [key_next, cert_next] {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(Error::Write { path, source: e });
                    }
                    _ => {}
                }
            }
            Ok(())
        } else if cert_next.exists() {
            self.rename(CERT_NEXT, CERT)
        } else {
            Ok(())
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let path = self.file(to);
        fs::rename(self.file(from), &path)
            .and_then(|()| sync_dir(&self.dir))
            .map_err(|source| Error::Write { path, source })
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
                collector_urls: Vec::new(),
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
    fn an_identity_without_collector_urls_has_its_one_url() {
        let old = r#"{"agent_id":"a","tenant_id":"t","tenant_name":"T","site":"",
            "collector_url":"https://c:4443","server_name":"c","enrolled_at":""}"#;
        let identity: Identity = serde_json::from_str(old).expect("old file");
        assert_eq!(identity.collector_urls(), ["https://c:4443"]);
        let text = serde_json::to_string(&identity).expect("json");
        assert!(!text.contains("collector_urls"), "{text}");
        let several = Identity {
            collector_urls: vec!["https://a:1".into(), "https://b:1".into()],
            ..identity
        };
        assert_eq!(several.collector_urls(), ["https://a:1", "https://b:1"]);
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

    #[test]
    fn renewed_pair_replaces_the_old_one_and_a_torn_replacement_is_repaired() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(tmp.path());
        let old = credentials();
        state.save(&old).expect("save");
        let new = credentials();
        state
            .replace_key_pair(&new.key_pem, &new.chain_pem)
            .expect("replace");
        let loaded = state.load().expect("load");
        assert_eq!(
            (loaded.key_pem, loaded.chain_pem),
            (new.key_pem.clone(), new.chain_pem.clone())
        );
        #[cfg(unix)]
        assert_eq!(mode(&state.path().join("agent.key")), 0o600);

        // crash before any rename: the staged pair is dropped, the current kept
        fs::write(state.path().join(KEY_NEXT), "half").expect("stage key");
        fs::write(state.path().join(CERT_NEXT), "half").expect("stage cert");
        assert_eq!(state.load().expect("load").key_pem, new.key_pem);
        assert!(!state.path().join(KEY_NEXT).exists());
        assert!(!state.path().join(CERT_NEXT).exists());

        // crash after the key was renamed: the certificate follows it
        let third = credentials();
        fs::write(state.path().join(KEY), &third.key_pem).expect("key in place");
        fs::write(state.path().join(CERT_NEXT), &third.chain_pem).expect("staged cert");
        let loaded = state.load().expect("load");
        assert_eq!(
            (loaded.key_pem, loaded.chain_pem),
            (third.key_pem, third.chain_pem)
        );
    }
}
