//! Offline signing: `release keygen` makes the minisign key pair,
//! `release sign` writes `<artifact>.minisig` with the trusted comment
//! `file:<name> version:<semver>`. Run on the machine that holds the
//! secret key, never on the collector. The files are minisign's own
//! formats, so the `minisign` tool reads and writes them too.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, SecretKey, SecretKeyBox};
use semver::Version;

use super::{ArtifactName, SIGNATURE_SUFFIX, TrustedComment};
use crate::{Error, Result};

/// File names `release keygen` writes in its `--out` directory.
pub const SECRET_KEY_FILE: &str = "forewarn-release.key";
pub const PUBLIC_KEY_FILE: &str = "forewarn-release.pub";

/// Environment variable that may hold the secret key's password.
pub const PASSWORD_ENV: &str = "FOREWARN_RELEASE_KEY_PASSWORD";

/// What `keygen` wrote.
#[derive(Debug)]
pub struct Generated {
    pub secret_key: PathBuf,
    pub public_key_file: PathBuf,
    /// The public key (`RW…`): `[releases] public_key` and the agent's
    /// `FOREWARN_RELEASE_PUBLIC_KEY` at build time.
    pub public_key: String,
}

/// Writes a new key pair into `out` (created 0700 if missing). The secret
/// key is written 0600 and never over an existing file; with a password it
/// is encrypted (scrypt, as minisign does).
pub fn keygen(out: &Path, password: Option<String>) -> Result<Generated> {
    create_private_dir(out)?;
    let secret_key = out.join(SECRET_KEY_FILE);
    let public_key_file = out.join(PUBLIC_KEY_FILE);
    for p in [&secret_key, &public_key_file] {
        if p.exists() {
            return Err(Error::Conflict(format!(
                "{} exists: a release key is never overwritten (move it away first)",
                p.display()
            )));
        }
    }
    let KeyPair { pk, sk } = match password {
        Some(pw) => KeyPair::generate_encrypted_keypair(Some(pw)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| Error::Internal(format!("key generation: {e}")))?;
    let sk_text = sk
        .to_box(Some("forewarn release signing key"))
        .map_err(|e| Error::Internal(format!("secret key encoding: {e}")))?
        .to_string();
    let pk_text = pk
        .to_box()
        .map_err(|e| Error::Internal(format!("public key encoding: {e}")))?
        .to_string();
    write_new(&secret_key, sk_text.as_bytes(), 0o600)?;
    write_new(&public_key_file, pk_text.as_bytes(), 0o644)?;
    Ok(Generated {
        secret_key,
        public_key_file,
        public_key: pk.to_base64(),
    })
}

/// Reads the secret key at `path`, decrypting it with `password` if it is
/// encrypted.
pub fn load_secret_key(path: &Path, password: Option<String>) -> Result<SecretKey> {
    let text = fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let sk_box = SecretKeyBox::from_string(&text).map_err(|e| {
        Error::InvalidArgument(format!(
            "--key {}: not a minisign secret key: {e}",
            path.display()
        ))
    })?;
    match password {
        Some(pw) => sk_box
            .into_secret_key(Some(pw))
            .map_err(|e| Error::InvalidArgument(format!("--key {}: {e}", path.display()))),
        None => sk_box.into_unencrypted_secret_key().map_err(|e| {
            Error::InvalidArgument(format!(
                "--key {}: {e} (an encrypted key needs --password-file or {PASSWORD_ENV})",
                path.display()
            ))
        }),
    }
}

/// Signs each of `files` as release `version`, writing `<file>.minisig`
/// next to it; returns the signature paths. Every name is checked first,
/// so a bad one signs nothing.
pub fn sign(sk: &SecretKey, version: &Version, files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let pk = PublicKey::from_secret_key(sk)
        .map_err(|e| Error::InvalidArgument(format!("--key: {e}")))?;
    let mut named = Vec::with_capacity(files.len());
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::InvalidArgument(format!("{}: no file name", file.display())))?;
        ArtifactName::parse(name, version)
            .map_err(|e| Error::InvalidArgument(format!("--version {version}: {e}")))?;
        named.push((file, name.to_owned()));
    }
    let mut written = Vec::with_capacity(named.len());
    for (file, name) in named {
        let data = fs::File::open(file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let comment = TrustedComment {
            file: name.clone(),
            version: version.clone(),
        }
        .to_string();
        let sig = minisign::sign(
            Some(&pk),
            sk,
            std::io::BufReader::new(data),
            Some(&comment),
            Some("signature from the forewarn release key"),
        )
        .map_err(|e| Error::Internal(format!("signing {}: {e}", file.display())))?;
        let target = sig_path(file);
        let tmp = target.with_extension("minisig.tmp");
        fs::write(&tmp, sig.to_string()).map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        fs::rename(&tmp, &target).map_err(|source| Error::Io {
            path: target.clone(),
            source,
        })?;
        written.push(target);
    }
    Ok(written)
}

/// `<file>.minisig`.
pub fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(SIGNATURE_SUFFIX);
    PathBuf::from(s)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_what_minisign_verify_accepts_with_the_comment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = keygen(&dir.path().join("keys"), None).expect("keygen");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&keys.secret_key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            keygen(&dir.path().join("keys"), None).is_err(),
            "never overwrites"
        );
        let file = dir
            .path()
            .join("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu");
        fs::write(&file, b"agent bytes").expect("write");
        let sk = load_secret_key(&keys.secret_key, None).expect("load");
        let sigs = sign(&sk, &Version::new(1, 2, 0), std::slice::from_ref(&file)).expect("sign");
        let pk = minisign_verify::PublicKey::from_base64(&keys.public_key).expect("pk");
        let sig = minisign_verify::Signature::decode(&fs::read_to_string(&sigs[0]).expect("sig"))
            .expect("decode");
        pk.verify(b"agent bytes", &sig, false).expect("verifies");
        assert!(pk.verify(b"agent bytez", &sig, false).is_err());
        let comment = TrustedComment::parse(sig.trusted_comment()).expect("comment");
        assert_eq!(
            comment.file,
            "forewarn-agent-1.2.0-x86_64-unknown-linux-gnu"
        );
        assert_eq!(comment.version, Version::new(1, 2, 0));
    }

    #[test]
    fn refuses_a_file_not_named_for_the_version_and_signs_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = keygen(dir.path(), None).expect("keygen");
        let sk = load_secret_key(&keys.secret_key, None).expect("load");
        let good = dir
            .path()
            .join("forewarn-agent-1.2.0-x86_64-unknown-linux-gnu");
        let bad = dir
            .path()
            .join("forewarn-agent-1.3.0-x86_64-unknown-linux-gnu");
        fs::write(&good, b"a").expect("write");
        fs::write(&bad, b"b").expect("write");
        let e = sign(&sk, &Version::new(1, 2, 0), &[good.clone(), bad]).expect_err("bad name");
        assert!(e.to_string().contains("--version 1.2.0"), "{e}");
        assert!(!sig_path(&good).exists());
    }

    #[test]
    fn an_encrypted_key_needs_its_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = keygen(dir.path(), Some("s3cret".into())).expect("keygen");
        let e = load_secret_key(&keys.secret_key, None).expect_err("no password");
        assert!(e.to_string().contains("--password-file"), "{e}");
        assert!(load_secret_key(&keys.secret_key, Some("wrong".into())).is_err());
        load_secret_key(&keys.secret_key, Some("s3cret".into())).expect("right password");
    }
}
