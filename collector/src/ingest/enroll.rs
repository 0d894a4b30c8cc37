//! `Enrollment/Enroll`: token + CSR → client certificate.
//!
//! Order matters for "a refused enrollment leaves nothing behind": the token
//! is checked, the certificate is signed in memory, and only then are the
//! token use and the agent row committed together. Any refusal before or at
//! that commit writes nothing.

use std::sync::Arc;

use forewarn_proto::v1 as pb;
use forewarn_proto::v1::enrollment_server::Enrollment;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::convert;
use crate::domain::{NewAgent, now_millis};
use crate::pki::Ca;
use crate::secrets;
use crate::store::Store;
use crate::{Error, Result};

const MAX_TOKEN_LEN: usize = 256;
const MAX_CSR_LEN: usize = 16 * 1024;

/// The enrollment service.
pub struct EnrollmentService {
    store: Arc<dyn Store>,
    ca: Arc<Ca>,
    cert_validity_days: u32,
}

impl EnrollmentService {
    pub fn new(store: Arc<dyn Store>, ca: Arc<Ca>, cert_validity_days: u32) -> Self {
        Self {
            store,
            ca,
            cert_validity_days,
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
        let grant = self.store.check_enrollment_token(&token_hash, now).await?;
        let agent_id = uuid::Uuid::new_v4().to_string();
        let cert = self.ca.sign_agent_csr(
            &req.csr_pem,
            &agent_id,
            &grant.tenant_id,
            self.cert_validity_days,
        )?;
        let not_after = (cert.not_after.unix_timestamp_nanos() / 1_000_000) as i64;
        self.store
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
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        match EnrollmentService::enroll(self, request.into_inner()).await {
            Ok(resp) => Ok(Response::new(resp)),
            Err(error) => {
                warn!(%error, peer, "enrollment refused");
                Err(error.into())
            }
        }
    }
}
