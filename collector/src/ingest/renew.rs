//! `Ingest/Renew`: a new client certificate for the calling agent.
//!
//! Runs over mutual TLS like the session: the identity is the peer
//! certificate's (checked by [`IngestService::authenticate`], so revoked
//! and unknown agents are refused), the CSR contributes only its public key.
//! The certificate is signed in memory; the agent's `cert_not_after` and
//! the `agent.renewed` audit entry are committed together before the answer
//! leaves, and a refusal is audited as `renewal.refused` — except one over
//! the agent's renewal rate (`[grpc] renew_rate_*`): that is refused with
//! RESOURCE_EXHAUSTED before any store access, so a flood writes nothing;
//! it is logged and counted (`forewarn_rejected_total{reason="renew_rate"}`).

use std::sync::Arc;

use forewarn_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::{error, info, warn};

use super::convert;
use super::enroll::MAX_CSR_LEN;
use super::rate::retry_secs;
use super::session::{IngestService, certificate_identity, count_refusal};
use crate::domain::now_millis;
use crate::metrics::METRICS;
use crate::pki::Ca;
use crate::{Error, Result};

/// What renewing needs besides the store: the CA and the lifetime of the
/// certificates it issues.
pub struct Renewal {
    ca: Arc<Ca>,
    validity: time::Duration,
}

impl IngestService {
    /// Enables `Renew`: certificates signed by `ca`, valid for `validity`.
    pub fn with_renewal(mut self, ca: Arc<Ca>, validity: time::Duration) -> Self {
        self.renewal = Some(Renewal { ca, validity });
        self
    }
}

/// The handler behind [`forewarn_proto::v1::ingest_server::Ingest::renew`].
pub(super) async fn renew(
    service: &IngestService,
    request: Request<pb::RenewRequest>,
) -> std::result::Result<Response<pb::RenewResponse>, Status> {
    let peer = request
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Ok(id) = certificate_identity(&request)
        && let Err(wait) = service.limits.renewals.check(&id.agent_id)
    {
        let retry_after_secs = retry_secs(wait);
        warn!(
            agent_id = id.agent_id,
            peer, retry_after_secs, "renewal refused: too many renewals from this agent"
        );
        METRICS.rejected("renew_rate");
        return Err(Status::resource_exhausted(format!(
            "too many certificate renewals from this agent: back off and retry in {retry_after_secs} s"
        )));
    }
    let actor = format!("renew:{peer}");
    match issue(service, &request, &actor).await {
        Ok((agent_id, response)) => {
            info!(agent_id, peer, "agent certificate renewed");
            Ok(Response::new(response))
        }
        Err(e) => {
            warn!(error = %e, peer, "renewal refused");
            let detail = e.to_string();
            let entry = crate::store::Audit {
                tenant_id: None,
                at: now_millis(),
                actor: &actor,
                source: "",
                action: "renewal.refused",
                target: "renewal",
                detail: &detail,
            };
            if let Err(audit) = service.svc.store().audit_enrollment("", entry).await {
                error!(error = %audit, "could not write the renewal audit entry");
            }
            Err(e.into())
        }
    }
}

async fn issue(
    service: &IngestService,
    request: &Request<pb::RenewRequest>,
    actor: &str,
) -> Result<(String, pb::RenewResponse)> {
    let renewal = service
        .renewal
        .as_ref()
        .ok_or_else(|| Error::Pki("certificate renewal is not enabled".into()))?;
    let id = service.authenticate(request).await?;
    let csr_pem = &request.get_ref().csr_pem;
    if csr_pem.len() > MAX_CSR_LEN {
        METRICS.rejected("invalid_argument");
        return Err(Error::InvalidArgument(format!(
            "csr_pem larger than {MAX_CSR_LEN} bytes"
        )));
    }
    let cert = renewal
        .ca
        .sign_agent_csr(csr_pem, &id.agent_id, &id.tenant_id, renewal.validity)
        .inspect_err(count_refusal)?;
    let not_after = (cert.not_after.unix_timestamp_nanos() / 1_000_000) as i64;
    service
        .svc
        .renew_agent_cert(&id.tenant_id, &id.agent_id, not_after, now_millis(), actor)
        .await?;
    Ok((
        id.agent_id,
        pb::RenewResponse {
            certificate_chain_pem: cert.chain_pem,
            not_after: Some(convert::timestamp(not_after)),
        },
    ))
}
