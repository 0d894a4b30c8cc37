//! `forewarn-collector release keygen|sign|list`.
//!
//! `keygen` and `sign` run offline, on the machine that keeps the secret
//! key, and need no collector config; `list` shows what the collector
//! would serve and offer from `[releases] dir`, and why the rest is not.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use semver::Version;

use super::Releases;
use super::sign::{self, PASSWORD_ENV};
use crate::{Config, Error, Result};

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Make a release signing key pair (minisign format) in DIR:
    /// forewarn-release.key (secret, 0600, never overwritten) and
    /// forewarn-release.pub. Keep the secret key offline. It is encrypted
    /// with the password from --password-file or FOREWARN_RELEASE_KEY_PASSWORD;
    /// --unencrypted writes it in the clear.
    Keygen {
        /// Directory to write the key pair into (created 0700).
        #[arg(long)]
        out: PathBuf,
        /// File whose first line is the password that encrypts the secret key.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Write the secret key without a password.
        #[arg(long, conflicts_with = "password_file")]
        unencrypted: bool,
    },
    /// Sign release artifacts: writes FILE.minisig next to each FILE, with
    /// the trusted comment `file:<name> version:<VERSION>`. Each FILE must be
    /// named as a release artifact of VERSION (e.g.
    /// forewarn-agent-VERSION-x86_64-unknown-linux-gnu).
    Sign {
        /// The secret key (forewarn-release.key).
        #[arg(long)]
        key: PathBuf,
        /// The release's SemVer version.
        #[arg(long)]
        version: String,
        /// Password file for an encrypted key (or FOREWARN_RELEASE_KEY_PASSWORD).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Artifacts to sign.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the artifacts in [releases] dir that verify (name, version,
    /// kind, os/arch, size, sha256) and those that do not, with the reason.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Whether `cmd` runs without a collector config (offline signing).
pub fn is_offline(cmd: &ReleaseCommand) -> bool {
    !matches!(cmd, ReleaseCommand::List { .. })
}

/// Runs an offline command (`keygen`, `sign`).
pub fn run_offline(cmd: &ReleaseCommand) -> Result<()> {
    match cmd {
        ReleaseCommand::Keygen {
            out,
            password_file,
            unencrypted,
        } => {
            let password = password(password_file.as_deref())?;
            if password.is_none() && !unencrypted {
                return Err(Error::InvalidArgument(format!(
                    "keygen: give --password-file FILE or set {PASSWORD_ENV} to encrypt the \
                     secret key, or pass --unencrypted"
                )));
            }
            let g = sign::keygen(out, password)?;
            println!("secret key: {} (keep it offline)", g.secret_key.display());
            println!("public key file: {}", g.public_key_file.display());
            println!("public key: {}", g.public_key);
            println!(
                "collector config: [releases] public_key = \"{}\"; agent build: \
                 FOREWARN_RELEASE_PUBLIC_KEY={}",
                g.public_key, g.public_key
            );
            Ok(())
        }
        ReleaseCommand::Sign {
            key,
            version,
            password_file,
            files,
        } => {
            let version = Version::parse(version).map_err(|e| {
                Error::InvalidArgument(format!(
                    "--version {version:?} is not a SemVer version: {e}"
                ))
            })?;
            let sk = sign::load_secret_key(key, password(password_file.as_deref())?)?;
            for sig in sign::sign(&sk, &version, files)? {
                println!("{}", sig.display());
            }
            Ok(())
        }
        ReleaseCommand::List { .. } => Err(Error::Internal("list needs the config".into())),
    }
}

/// `release list`.
pub async fn list(cfg: &Config, json: bool) -> Result<()> {
    let releases = Releases::from_config(cfg)?;
    let scan = releases.current().await?;
    if json {
        let text = serde_json::to_string_pretty(&*scan)
            .map_err(|e| Error::Internal(format!("json: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    println!("releases dir: {}", releases.dir().display());
    for a in &scan.artifacts {
        println!(
            "{}\t{}\t{}\t{}/{}\t{} bytes\tsha256:{}",
            a.file, a.version, a.kind, a.os, a.arch, a.size, a.sha256
        );
    }
    for r in &scan.rejected {
        println!("NOT SERVED {}: {}", r.file, r.reason);
    }
    Ok(())
}

/// The password from `file` (first line), else the environment.
fn password(file: Option<&Path>) -> Result<Option<String>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let pw = text.lines().next().unwrap_or("").to_owned();
        if pw.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "--password-file {}: empty password",
                path.display()
            )));
        }
        return Ok(Some(pw));
    }
    Ok(std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()))
}
