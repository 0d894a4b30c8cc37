//! The key-encryption key (KEK) that seals the shared CA's key in a
//! PostgreSQL store (`[pki] kek_file`).
//!
//! The file holds 32 random bytes as 64 hex digits (whitespace around them
//! is ignored); every replica reads the same file. Sealing is ring's
//! AES-256-GCM with a random 96-bit nonce, the CA certificate's fingerprint
//! as associated data (so a key cannot be paired with another
//! certificate): `v1:` + base64(nonce || ciphertext || tag).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

const KEY_LEN: usize = 32;
const VERSION: &str = "v1:";

/// A key-encryption key, read from its file.
pub struct Kek {
    key: LessSafeKey,
    path: PathBuf,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

// === impl Kek ===

impl Kek {
    /// Reads `[pki] kek_file`; a missing file or one that is not 64 hex
    /// digits is a config error naming the key.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("[pki] kek_file {}: {e}", path.display())))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
            .ok_or_else(|| {
                Error::Config(format!(
                    "[pki] kek_file {}: must hold 32 bytes as 64 hex digits \
                     (`forewarn-collector ca kek-create PATH` makes one)",
                    path.display()
                ))
            })?;
        Self::from_bytes(&bytes, path)
    }

    fn from_bytes(bytes: &[u8; KEY_LEN], path: &Path) -> Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::Pki("cannot use the key-encryption key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            path: path.to_path_buf(),
        })
    }

    /// Writes a new random KEK to `path` (mode 0600); refuses to overwrite.
    pub fn create_file(path: &Path) -> Result<()> {
        let mut bytes = [0u8; KEY_LEN];
        random(&mut bytes)?;
        super::files::write_new_private(path, format!("{}\n", hex::encode(bytes)).as_bytes())
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals `plain`, bound to `aad`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .map_err(|_| Error::Pki("sealing with the key-encryption key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION}{}", STANDARD.encode(out)))
    }

    /// Opens what [`Kek::seal`] made with the same `aad`; `None` if this
    /// is not the key it was sealed with (or the data was changed).
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Option<Vec<u8>>> {
        let raw = sealed
            .strip_prefix(VERSION)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or_else(|| {
                Error::Corrupt("the stored CA key is not in the v1 sealed form".into())
            })?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Corrupt("the stored CA key's nonce".into()))?;
        let mut body = body.to_vec();
        Ok(self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()
            .map(|plain| plain.to_vec()))
    }
}

fn random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| Error::Pki("the system random source failed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(dir: &Path, name: &str) -> Kek {
        let path = dir.join(name);
        Kek::create_file(&path).expect("create");
        Kek::read(&path).expect("read")
    }

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_aad() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (kek(dir.path(), "a"), kek(dir.path(), "b"));
        let sealed = a.seal(b"secret key", b"sha256:cert").expect("seal");
        assert!(sealed.starts_with("v1:"));
        assert_eq!(
            a.open(&sealed, b"sha256:cert").expect("open").as_deref(),
            Some(&b"secret key"[..])
        );
        assert_eq!(b.open(&sealed, b"sha256:cert").expect("open"), None);
        assert_eq!(a.open(&sealed, b"sha256:other").expect("open"), None);
        // Two seals of the same key differ (fresh nonce).
        assert_ne!(sealed, a.seal(b"secret key", b"sha256:cert").expect("seal"));
        assert!(matches!(a.open("v0:xx", b""), Err(Error::Corrupt(_))));
    }

    #[test]
    fn kek_files_are_private_hex_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("kek");
        Kek::create_file(&path).expect("create");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim().len(), 64);
        assert!(Kek::create_file(&path).is_err(), "must not overwrite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "abcd\n").expect("write");
        let err = Kek::read(&path).expect_err("short");
        assert!(err.to_string().contains("[pki] kek_file"), "{err}");
        let err = Kek::read(&dir.path().join("none")).expect_err("missing");
        assert!(err.to_string().contains("[pki] kek_file"), "{err}");
    }
}
