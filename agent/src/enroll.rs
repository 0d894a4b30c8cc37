//! `forewarn-agent enroll`: pin the collector CA by fingerprint, generate
//! the agent's key pair locally, send a CSR with the enrollment token and
//! store the returned certificate. Nothing is written unless the collector
//! accepted the enrollment.

use std::time::SystemTime;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_client::EnrollmentClient;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{info, warn};

use crate::collectors::{Collectors, Target};
use crate::endpoint::{self, Tls};
use crate::error::{Error, Result};
use crate::host::HostFacts;
use crate::identity::{Credentials, Identity, StateDir};
use crate::pin::{self, Fingerprint};

/// What `enroll` was asked to do.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// One URL, or several (replicas): tried address by address until one
    /// answers.
    pub collectors: Collectors,
    pub token: String,
    pub ca_fingerprint: Fingerprint,
    /// TLS name of the collector (every one); defaults to the first URL's
    /// host.
    pub server_name: Option<String>,
    /// Enroll again even if the state dir holds an identity.
    pub force: bool,
}

/// The Enroll call's request.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    pub token: String,
    pub csr_pem: String,
    pub facts: HostFacts,
}

/// The collector's answer.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub agent_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub certificate_chain_pem: String,
    pub ca_pem: String,
    pub not_after: Option<SystemTime>,
}

/// Enrolls with the collector and writes the identity into `state`.
pub async fn enroll(
    state: &StateDir,
    options: EnrollOptions,
    facts: HostFacts,
) -> Result<Identity> {
    let existing = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.identity()).await??
    };
    if let Some(identity) = existing
        && !options.force
    {
        return Err(Error::AlreadyEnrolled {
            agent_id: identity.agent_id,
            dir: state.path().to_owned(),
        });
    }

    let collectors = &options.collectors;
    let server_name = options
        .server_name
        .clone()
        .unwrap_or_else(|| collectors.first().host().to_owned());
    let key = KeyPair::generate()?;
    let csr_pem = CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let request = EnrollRequest {
        token: options.token.clone(),
        csr_pem,
        facts,
    };
    let (ca_pem, response) = collectors
        .first_answer(|target| enroll_at(target, &options, &server_name, &request))
        .await?;
    let enrolled = Enrolled::try_from(response)?;
    check_chain(&enrolled.certificate_chain_pem)?;
    if !same_certificate(&enrolled.ca_pem, &ca_pem) {
        // Keep trusting what the operator pinned, never what the wire says.
        warn!(
            pinned = %options.ca_fingerprint,
            "collector returned a different ca than the pinned one; keeping the pinned ca"
        );
    }

    let identity = Identity {
        agent_id: enrolled.agent_id,
        tenant_id: enrolled.tenant_id,
        tenant_name: enrolled.tenant_name,
        site: enrolled.site,
        collector_url: collectors.first().to_string(),
        collector_urls: if collectors.urls().len() > 1 {
            collectors.urls().iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        },
        server_name,
        enrolled_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    };
    let credentials = Credentials {
        identity: identity.clone(),
        key_pem: key.serialize_pem(),
        chain_pem: enrolled.certificate_chain_pem,
        ca_pem,
    };
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.save(&credentials)).await??;
    Ok(identity)
}

/// Pins the CA at one address and enrolls there: the pinned CA and the
/// answer.
async fn enroll_at(
    target: Target,
    options: &EnrollOptions,
    server_name: &str,
    request: &EnrollRequest,
) -> Result<(String, pb::EnrollResponse)> {
    let url = target.dial();
    let ca_pem = pin::fetch_pinned_ca(&url, server_name, &options.ca_fingerprint).await?;
    info!(collector = %target, fingerprint = %options.ca_fingerprint, "collector ca pinned");
    let channel = endpoint::connect(
        &url,
        &Tls {
            ca_pem: &ca_pem,
            server_name,
            client: None,
        },
    )
    .await?;
    let response = EnrollmentClient::new(channel)
        .enroll(pb::EnrollRequest::from(request))
        .await
        .map_err(|status| Error::rejected("enrollment", &status))?
        .into_inner();
    Ok((ca_pem, response))
}

fn check_chain(pem: &str) -> Result<()> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(_)) => Ok(()),
        _ => Err(Error::Protocol(
            "certificate_chain_pem holds no certificate".to_owned(),
        )),
    }
}

/// Whether two PEM certificates are the same certificate.
fn same_certificate(a: &str, b: &str) -> bool {
    let first = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).ok();
    matches!((first(a), first(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_is_pem() {
        let key = KeyPair::generate().expect("key");
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(
            key.serialize_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
    }

    #[test]
    fn same_certificate_ignores_pem_layout() {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["c".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let ours = crate::pin::to_pem(cert.der());
        assert!(same_certificate(&cert.pem(), &ours));
        assert!(!same_certificate(&cert.pem(), ""));
    }
}
