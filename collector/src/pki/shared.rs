//! The CA every replica on one PostgreSQL database shares.
//!
//! Stored once in the database (`CaStore`), its key sealed with the
//! key-encryption key of `[pki] kek_file` ([`Kek`]). The first replica to
//! start stores one — the CA of its `pki/` files if it has them (a single
//! collector moving to PostgreSQL keeps the CA its agents pin), else a new
//! one — with an insert that does nothing if a CA is already there, and
//! then every replica uses what is stored. A KEK that cannot open the
//! stored key stops the start: a new CA would strand every enrolled agent.

use std::path::Path;

use tracing::{info, warn};

use super::{Ca, Kek, fingerprint, generate, pem_to_der};
use crate::domain::now_millis;
use crate::store::{CaStore, StoredCa};
use crate::{Error, Result};

/// The shared CA: the stored one, else the one in `files_dir` (imported),
/// else a new one.
pub async fn load_or_create_shared(store: &dyn CaStore, kek: &Kek, files_dir: &Path) -> Result<Ca> {
    if let Some(stored) = store.stored_ca().await? {
        return open(&stored, kek);
    }
    let (cert_pem, key_pem, origin) = match Ca::load_existing(files_dir)? {
        Some(ca) => (ca.cert_pem.clone(), ca.key_pem(), "imported"),
        None => {
            let (cert, key) = generate()?;
            (cert, key, "generated")
        }
    };
    let aad = fingerprint(&pem_to_der(&cert_pem)?);
    let ours = StoredCa {
        key_sealed: kek.seal(key_pem.as_bytes(), aad.as_bytes())?,
        cert_pem,
        origin: origin.to_string(),
        created_at: now_millis(),
    };
    let stored = store.store_ca_if_absent(&ours).await?;
    let ca = open(&stored, kek)?;
    if stored == ours {
        info!(
            origin,
            ca_fingerprint = ca.fingerprint(),
            files = %files_dir.display(),
            "stored the CA in the database for every replica"
        );
    } else {
        info!(
            ca_fingerprint = ca.fingerprint(),
            "another replica stored the CA first: using it"
        );
    }
    if origin == "imported" && stored == ours {
        warn!(
            files = %files_dir.display(),
            "the CA in the database is now the one that counts: the pki/ files are no longer read"
        );
    }
    Ok(ca)
}

/// The stored CA, its key opened with `kek`.
fn open(stored: &StoredCa, kek: &Kek) -> Result<Ca> {
    let aad = fingerprint(&pem_to_der(&stored.cert_pem)?);
    let key = kek
        .open(&stored.key_sealed, aad.as_bytes())?
        .ok_or_else(|| {
            Error::Pki(format!(
                "the CA key stored in the database cannot be decrypted with [pki] kek_file {}: \
                 it is not the key-encryption key the CA was sealed with (every replica needs the \
                 same file). Not starting: a new CA would cut off every enrolled agent",
                kek.path().display()
            ))
        })?;
    let key = String::from_utf8(key)
        .map_err(|_| Error::Corrupt("the stored CA key is not PEM text".into()))?;
    Ca::from_pem(stored.cert_pem.clone(), &key)
}
