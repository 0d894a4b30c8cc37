//! Reading agent identity back out of a verified peer certificate.

use x509_parser::prelude::*;

use crate::{Error, Result};

/// Who is on the other end of an mTLS session, as the CA wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub agent_id: String,
    pub tenant_id: String,
}

/// Extracts `CN=<agent_id>, O=<tenant_id>, OU=forewarn-agent` from a client
/// certificate that rustls has already verified against the collector CA.
pub fn peer_identity(der: &[u8]) -> Result<PeerIdentity> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::Unauthenticated("unreadable client certificate".into()))?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let agent_id = first(&mut subject.iter_common_name());
    let tenant_id = first(&mut subject.iter_organization());
    let ou = first(&mut subject.iter_organizational_unit());
    match (agent_id, tenant_id, ou.as_deref()) {
        (Some(agent_id), Some(tenant_id), Some(super::AGENT_OU)) => Ok(PeerIdentity {
            agent_id,
            tenant_id,
        }),
        _ => Err(Error::PermissionDenied(
            "client certificate is not a forewarn agent certificate".into(),
        )),
    }
}
