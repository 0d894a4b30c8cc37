//! The collector's own certificate authority.
//!
//! With SQLite it is generated on first use and kept in `<data_dir>/pki/`
//! (`ca.key` mode 0600). With PostgreSQL every replica shares one CA kept in
//! the database, its key sealed with `[pki] kek_file` (`shared.rs`). It signs the collector's server certificate (minted at every start) and
//! the client certificates agents receive at enrollment. Agent identity is
//! written into those certificates by the collector — requested names in a
//! CSR are ignored — and read back from the peer certificate on every session.

mod files;
mod identity;
mod kek;
mod shared;

pub(crate) use files::create_private_dir;

/// Writes the CA certificate to `<dir>/ca.crt` unless it is already there.
pub(crate) fn write_ca_cert(dir: &Path, cert_pem: &str) -> Result<()> {
    let path = dir.join("ca.crt");
    if std::fs::read_to_string(&path).is_ok_and(|s| s == cert_pem) {
        return Ok(());
    }
    files::create_private_dir(dir)?;
    files::write_atomic(&path, cert_pem.as_bytes())
}
pub use identity::{PeerIdentity, peer_identity};
pub use kek::Kek;
pub use shared::load_or_create_shared;

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::{Error, Result};

/// Organizational unit that marks agent client certificates.
const AGENT_OU: &str = "forewarn-agent";

/// The CA: its certificate and signing key.
pub struct Ca {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A signed agent certificate.
pub struct AgentCertificate {
    /// Agent certificate followed by the CA certificate.
    pub chain_pem: String,
    pub not_after: OffsetDateTime,
}

// === impl Ca ===

impl Ca {
    /// Loads the CA from `dir`, generating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let (key_path, cert_path) = file_paths(dir);
        if !key_path.exists() {
            files::create_private_dir(dir)?;
            let (cert_pem, key_pem) = generate()?;
            // Key first, create_new: two processes racing both generate, one wins.
            match files::write_new_private(&key_path, key_pem.as_bytes()) {
                Ok(()) => files::write_atomic(&cert_path, cert_pem.as_bytes())?,
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Self::load(&key_path, &cert_path)
    }

    /// The CA in `dir` if there is one (its key file exists).
    pub fn load_existing(dir: &Path) -> Result<Option<Self>> {
        let (key_path, cert_path) = file_paths(dir);
        if !key_path.exists() {
            return Ok(None);
        }
        Self::load(&key_path, &cert_path).map(Some)
    }

    fn load(key_path: &Path, cert_path: &Path) -> Result<Self> {
        let key_pem = files::read_retry(key_path)?;
        let cert_pem = files::read_retry(cert_path)?;
        Self::from_pem(cert_pem, &key_pem)
    }

    /// A CA from its certificate and key (PEM).
    pub fn from_pem(cert_pem: String, key_pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(key_pem)?;
        let der = pem_to_der(&cert_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Self {
            cert_pem,
            cert_der: der,
            issuer,
        })
    }

    /// The CA key (PEM), to seal it for the shared store.
    fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// `sha256:<hex>` over the CA certificate's DER: what agents pin.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Mints a server certificate for `names` (DNS names or IPs); returns
    /// (chain PEM = server + CA, key PEM).
    pub fn server_identity(&self, names: &[String]) -> Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "forewarn-collector");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(30);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((
            format!("{}{}", cert.pem(), self.cert_pem),
            key.serialize_pem(),
        ))
    }

    /// Signs an agent's CSR. Only the CSR's public key is used: subject and
    /// names come from the collector (`CN=<agent_id>, O=<tenant_id>`).
    /// Valid from five minutes ago (clock skew) until `validity` from now.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        agent_id: &str,
        tenant_id: &str,
        validity: Duration,
    ) -> Result<AgentCertificate> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::InvalidArgument(format!("csr_pem: {e}")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id);
        dn.push(DnType::OrganizationName, tenant_id);
        dn.push(DnType::OrganizationalUnitName, AGENT_OU);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(
            format!("urn:forewarn:agent:{agent_id}")
                .try_into()
                .map_err(|e: rcgen::Error| Error::Pki(e.to_string()))?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + validity;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(AgentCertificate {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            not_after: params.not_after,
        })
    }
}

/// `ca.key`, `ca.crt` in `dir`.
fn file_paths(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    (dir.join("ca.key"), dir.join("ca.crt"))
}

/// A new self-signed CA: (certificate PEM, key PEM).
fn generate() -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Forewarn collector CA");
    dn.push(DnType::OrganizationName, "Forewarn");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// `sha256:<lowercase hex>` of DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| Error::Pki(format!("bad CA certificate PEM: {e}")))?;
    Ok(parsed.contents)
}

#[cfg(test)]
mod tests;
