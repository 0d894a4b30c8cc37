//! `Enrollment/Enroll`: token + CSR → client certificate.
//!
//! Order matters for "a refused enrollment leaves nothing behind": the token
//! is checked, the certificate is signed in memory, and only then are the
//! token use and the agent row committed together. Any refusal before or at
//! that commit writes nothing (but the audit log, which records every
//! enrollment and every refusal with the peer address).
//!
//! Failed enrollments are limited per source address
//! ([`FailureLimiter`]): over the limit, attempts get `RESOURCE_EXHAUSTED`
//! before the store is touched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_server::Enrollment;
use tonic::{Request, Response, Status};
use tracing::{error, info, warn};

use super::convert;
use super::enroll_limit::FailureLimiter;
use crate::domain::{NewAgent, now_millis};
use crate::metrics::METRICS;
use crate::pki::Ca;
use crate::secrets;
use crate::store::Audit;
use crate::tickets::Service;
use crate::{Error, Result};

const MAX_TOKEN_LEN: usize = 256;
pub(super) const MAX_CSR_LEN: usize = 16 * 1024;

/// The enrollment service.
pub struct EnrollmentService {
    svc: Service,
    ca: Arc<Ca>,
    cert_validity: time::Duration,
    limiter: FailureLimiter,
}

impl EnrollmentService {
    pub fn new(svc: Service, ca: Arc<Ca>, cert_validity: time::Duration) -> Self {
        Self {
            svc,
            ca,
            cert_validity,
            limiter: FailureLimiter::new(10, Duration::from_secs(60)),
        }
    }

    /// Refuses a source address up front after `max_failures` failed
    /// enrollments within `window` (0 = no limit); default 10 per 60 s.
    pub fn with_failure_limit(mut self, max_failures: u32, window: Duration) -> Self {
        self.limiter = FailureLimiter::new(max_failures, window);
        self
    }

    /// Audit trail; a failed audit write is logged, never turns the outcome
    /// around.
    async fn audit(&self, token_hash: &str, actor: &str, action: &str, target: &str, detail: &str) {
        let entry = Audit {
            tenant_id: None,
            at: now_millis(),
            actor,
            source: "",
            action,
            target,
            detail,
        };
        if let Err(e) = self.svc.store().audit_enrollment(token_hash, entry).await {
            error!(error = %e, actor, action, "could not write the enrollment audit entry");
        }
    }

    async fn enroll(&self, req: pb::EnrollRequest) -> Result<pb::EnrollResponse> {
        if req.token.is_empty() || req.token.len() > MAX_TOKEN_LEN {
            return Err(Error::Unauthenticated("enrollment token missing".into()));
        }
        if req.csr_pem.len() > MAX_CSR_LEN {
            return Err(Error::InvalidArgument(format!(
                "csr_pem larger than {MAX_CSR_LEN} bytes"
            )));
        }
        let facts = convert::host_facts(req.host.as_ref())?;
        let token_hash = secrets::hash(&req.token);
        let now = now_millis();
        let grant = self.svc.check_enrollment_token(&token_hash, now).await?;
        let agent_id = uuid::Uuid::new_v4().to_string();
        let cert = self.ca.sign_agent_csr(
            &req.csr_pem,
            &agent_id,
            &grant.tenant_id,
            self.cert_validity,
        )?;
        let not_after = (cert.not_after.unix_timestamp_nanos() / 1_000_000) as i64;
        self.svc
            .enroll_agent(
                &token_hash,
                now,
                &NewAgent {
                    id: agent_id.clone(),
                    tenant_id: grant.tenant_id.clone(),
                    site: grant.site.clone(),
                    role: grant.role.clone(),
                    facts: facts.clone(),
                    cert_not_after: not_after,
                },
            )
            .await?;
        info!(
            agent_id,
            tenant = grant.tenant_name,
            site = grant.site,
            hostname = facts.hostname,
            "agent enrolled"
        );
        Ok(pb::EnrollResponse {
            agent_id,
            tenant_id: grant.tenant_id,
            tenant_name: grant.tenant_name,
            site: grant.site,
            certificate_chain_pem: cert.chain_pem,
            ca_pem: self.ca.cert_pem().to_string(),
            not_after: Some(convert::timestamp(not_after)),
        })
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> std::result::Result<Response<pb::EnrollResponse>, Status> {
        let addr = request.remote_addr();
        let peer = addr.map(|a| a.to_string()).unwrap_or_default();
        let ip = addr.map(|a| a.ip());
        if let Some(ip) = ip
            && !self.limiter.allowed(ip, Instant::now())
        {
            warn!(
                peer,
                "enrollment refused: too many failed attempts from this address"
            );
            METRICS.rejected("enroll_rate");
            return Err(Status::resource_exhausted(
                "too many failed enrollments from this address; try again later",
            ));
        }
        let req = request.into_inner();
        // Only the hash is kept: it names the token (and so its tenant) in
        // the audit log without holding the secret.
        let token_hash = secrets::hash(&req.token);
        let hostname = req
            .host
            .as_ref()
            .map(|h| h.hostname.chars().take(128).collect::<String>())
            .unwrap_or_default();
        let actor = format!("enroll:{peer}");
        match EnrollmentService::enroll(self, req).await {
            Ok(resp) => {
                let detail = format!("hostname {hostname:?}, site {:?}", resp.site);
                let target = format!("agent/{}", resp.agent_id);
                self.audit(&token_hash, &actor, "agent.enrolled", &target, &detail)
                    .await;
                Ok(Response::new(resp))
            }
            Err(error) => {
                warn!(%error, peer, "enrollment refused");
                METRICS.rejected("enroll_refused");
                if matches!(
                    error,
                    Error::Unauthenticated(_)
                        | Error::PermissionDenied(_)
                        | Error::InvalidArgument(_)
                        | Error::Pki(_)
                ) && let Some(ip) = ip
                {
                    self.limiter.failed(ip, Instant::now());
                }
                let detail = format!("{error} (hostname {hostname:?})");
                self.audit(
                    &token_hash,
                    &actor,
                    "enrollment.refused",
                    "enrollment",
                    &detail,
                )
                .await;
                Err(error.into())
            }
        }
    }
}
