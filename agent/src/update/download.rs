//! Downloading an offered binary over the session's mTLS channel
//! (`Ingest/Download`) into a file next to the current executable, checking
//! it while it streams: never more than the offered size (oversized:
//! refused at the first extra byte), exactly that size at the end
//! (truncated: refused), the offered SHA-256, and the minisign signature
//! against the agent's own release key with its trusted comment.

use std::io::Write as _;
use std::path::Path;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::ingest_client::IngestClient;
use minisign_verify::{PublicKey, Signature};
use semver::Version;
use sha2::{Digest, Sha256};

use super::verify::{Offer, Stopped, check_signed};
use crate::collectors::{Collectors, Target};
use crate::endpoint::{self, Tls};
use crate::error::{Error, chain};
use crate::identity::Credentials;

/// Where to download from, as whom.
pub struct Source<'a> {
    pub collectors: &'a Collectors,
    pub server_name: &'a str,
    pub credentials: &'a Credentials,
}

/// Downloads `offer` into `dest` (replaced if present) and verifies it;
/// on any refusal or failure `dest` is removed.
pub async fn fetch(
    source: &Source<'_>,
    offer: &Offer,
    offered: &Version,
    running: &Version,
    key: &PublicKey,
    dest: &Path,
) -> Result<(), Stopped> {
    let result = fetch_inner(source, offer, offered, running, key, dest).await;
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

async fn fetch_inner(
    source: &Source<'_>,
    offer: &Offer,
    offered: &Version,
    running: &Version,
    key: &PublicKey,
    dest: &Path,
) -> Result<(), Stopped> {
    let signature = Signature::decode(&offer.signature)
        .map_err(|e| Stopped::refused(format!("signature unreadable: {e}")))?;
    let mut verifier = key.verify_stream(&signature).map_err(|e| {
        Stopped::refused(format!(
            "signature is not from this agent's release key: {e}"
        ))
    })?;
    let mut stream = source
        .collectors
        .first_answer(|target| open(target, source, offer.file.clone()))
        .await
        .map_err(|e| Stopped::failed(format!("download: {}", chain(&e))))?;
    let mut file = create(dest)
        .map_err(|e| Stopped::failed(format!("cannot write {}: {e}", dest.display())))?;
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    loop {
        let chunk = match stream.message().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(status) => {
                return Err(Stopped::refused(format!(
                    "truncated download: {got} of {} bytes, then {} ({:?})",
                    offer.size,
                    status.message(),
                    status.code()
                )));
            }
        };
        got += chunk.data.len() as u64;
        if got > offer.size {
            return Err(Stopped::refused(format!(
                "oversized download: more than the offered {} bytes",
                offer.size
            )));
        }
        hasher.update(&chunk.data);
        verifier.update(&chunk.data);
        file.write_all(&chunk.data)
            .map_err(|e| Stopped::failed(format!("cannot write {}: {e}", dest.display())))?;
    }
    if got < offer.size {
        return Err(Stopped::refused(format!(
            "truncated download: {got} of {} bytes",
            offer.size
        )));
    }
    let sha256 = hex::encode(hasher.finalize());
    if !sha256.eq_ignore_ascii_case(&offer.sha256) {
        return Err(Stopped::refused(format!(
            "SHA-256 {sha256} differs from the offered {}",
            offer.sha256
        )));
    }
    verifier
        .finalize()
        .map_err(|e| Stopped::refused(format!("signature does not verify: {e}")))?;
    check_signed(signature.trusted_comment(), offer, offered, running)?;
    file.sync_all()
        .map_err(|e| Stopped::failed(format!("cannot write {}: {e}", dest.display())))?;
    Ok(())
}

/// `Ingest/Download` at one address.
async fn open(
    target: Target,
    source: &Source<'_>,
    file: String,
) -> crate::error::Result<tonic::Streaming<pb::DownloadChunk>> {
    let c = source.credentials;
    let channel = endpoint::connect(
        &target.dial(),
        &Tls {
            ca_pem: &c.ca_pem,
            server_name: source.server_name,
            client: Some((&c.chain_pem, &c.key_pem)),
        },
    )
    .await?;
    Ok(IngestClient::new(channel)
        .download(pb::DownloadRequest { file })
        .await
        .map_err(|status| Error::rejected("download", &status))?
        .into_inner())
}

/// A new file only the agent's user may run.
fn create(path: &Path) -> std::io::Result<std::fs::File> {
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o700);
    }
    options.open(path)
}
