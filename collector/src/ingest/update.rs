//! Self-update over the session: the offer sent after an agent's hello,
//! `Ingest/Download` streaming an offered artifact, and the agent's
//! `UpdateResult`, recorded in the audit log (`agent.update.<outcome>`,
//! which the agent detail reads back as the last update attempt).
//!
//! Downloads go over the same mTLS gRPC channel as the session: the agent
//! already trusts only the collector CA and holds its client certificate
//! there, so no second TLS client, port or trust store is needed, and the
//! caller is an authenticated, non-revoked agent. Only artifacts the
//! releases scan verified are served; the agent verifies again with its
//! own pinned key, so the collector cannot hand it anything unsigned.

use std::sync::Arc;

use forewarn_proto::v1 as pb;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::session::IngestService;
use crate::domain::now_millis;
use crate::pki::PeerIdentity;
use crate::releases::rollout::Asker;
use crate::releases::{Artifact, Offers};
use crate::store::{Audit, Storage};

/// Bytes per `DownloadChunk`.
pub const CHUNK_BYTES: usize = 64 * 1024;

pub type DownloadStream = ReceiverStream<std::result::Result<pb::DownloadChunk, Status>>;

impl IngestService {
    /// Enables update offers and downloads.
    pub fn with_offers(mut self, offers: Offers) -> Self {
        self.offers = Some(Arc::new(offers));
        self
    }
}

/// The offer for the agent that said `hello`, if the rollout has one.
pub(super) async fn offer_for(
    offers: Option<&Offers>,
    id: &PeerIdentity,
    hello: &pb::Hello,
) -> Option<pb::CollectorMessage> {
    let offers = offers?;
    let host = hello.host.as_ref()?;
    let asker = Asker {
        tenant: &id.tenant_id,
        agent_id: &id.agent_id,
        hostname: &host.hostname,
        version: &host.agent_version,
        target: &host.target,
    };
    match offers.offer(&asker).await {
        Ok(Some(a)) => {
            info!(
                agent_id = id.agent_id,
                from = host.agent_version,
                to = %a.version,
                file = a.file,
                "offering an agent update"
            );
            Some(offer_message(&a))
        }
        Ok(None) => None,
        Err(error) => {
            warn!(%error, "releases scan failed: no update offered");
            None
        }
    }
}

fn offer_message(a: &Artifact) -> pb::CollectorMessage {
    pb::CollectorMessage {
        body: Some(pb::collector_message::Body::UpdateOffer(pb::UpdateOffer {
            file: a.file.clone(),
            version: a.version.to_string(),
            size: a.size,
            sha256: a.sha256.clone(),
            signature: a.signature.clone(),
        })),
    }
}

/// `Ingest/Download`: streams a verified artifact to an authenticated agent.
pub(super) async fn download(
    service: &IngestService,
    request: Request<pb::DownloadRequest>,
) -> std::result::Result<Response<DownloadStream>, Status> {
    let id = service.authenticate(&request).await?;
    let file = request.into_inner().file;
    let Some(offers) = service.offers.as_ref() else {
        return Err(Status::not_found("this collector serves no releases"));
    };
    let scan = offers.releases().current().await?;
    let Some(artifact) = scan.get(&file).cloned() else {
        return Err(Status::not_found(format!(
            "{file:?} is not a verified release artifact here"
        )));
    };
    let mut f = tokio::fs::File::open(&artifact.path)
        .await
        .map_err(|e| Status::unavailable(format!("cannot read {file}: {e}")))?;
    info!(
        agent_id = id.agent_id,
        file,
        size = artifact.size,
        "serving a release artifact"
    );
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let chunk = match f.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => Ok(pb::DownloadChunk {
                    data: buf[..n].to_vec(),
                }),
                Err(e) => Err(Status::unavailable(format!("reading {file}: {e}"))),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(Response::new(ReceiverStream::new(rx)))
}

/// The audit action for an outcome.
fn action(outcome: pb::update_result::Outcome) -> &'static str {
    use pb::update_result::Outcome;
    match outcome {
        Outcome::Updated => "agent.update.updated",
        Outcome::RolledBack => "agent.update.rolled_back",
        Outcome::Refused => "agent.update.refused",
        Outcome::Failed | Outcome::Unspecified => "agent.update.failed",
    }
}

/// Longest message kept from an agent's update result.
const MAX_MESSAGE: usize = 1000;

/// Records an agent's update result in the audit log (and the log).
pub(super) async fn record_result(store: &dyn Storage, id: &PeerIdentity, r: &pb::UpdateResult) {
    let outcome = r.outcome();
    let mut message: String = r.message.chars().take(MAX_MESSAGE).collect();
    message.retain(|c| !c.is_control());
    let clip = |s: &str| s.chars().take(64).collect::<String>();
    let detail = format!(
        "from {} to {}: {message}",
        clip(&r.from_version),
        clip(&r.to_version)
    );
    if outcome == pb::update_result::Outcome::Updated {
        info!(agent_id = id.agent_id, detail, "agent updated");
    } else {
        warn!(
            agent_id = id.agent_id,
            outcome = action(outcome),
            detail,
            "agent update did not happen"
        );
    }
    let recorded = store
        .record_audit(Audit {
            tenant_id: Some(&id.tenant_id),
            at: now_millis(),
            actor: &format!("agent/{}", id.agent_id),
            source: "",
            action: action(outcome),
            target: &format!("agent/{}", id.agent_id),
            detail: &detail,
        })
        .await;
    if let Err(error) = recorded {
        warn!(%error, agent_id = id.agent_id, "could not record the update result");
    }
}
