//! [`Service`]: the collector's decisions over a [`Storage`] backend. The
//! edges (gRPC ingest, the HTTP API, the CLI, the sweeper) call it for
//! anything that changes tickets or needs policy, and read through
//! [`Service::store`] otherwise.
//!
//! Each operation takes one write transaction, decides with the policy in
//! memory, and commits; the storage below only runs queries.

use std::sync::{Arc, RwLock};

use crate::Result;
use crate::limits::Limits;
use crate::live::{Change, Kind, Live};
use crate::sinks::SinkRoute;
use crate::store::{Storage, WriteTx};
use crate::tickets::policy::Policy;

/// The decisions about agents, problems and tickets, written once for every
/// storage backend.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Storage>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) limits: Arc<Limits>,
    /// The configured sinks' routes, set at start: read once, not per event.
    routes: Arc<RwLock<Arc<[SinkRoute]>>>,
    /// When this collector started serving agents (`None`: a CLI or a test):
    /// the sweep gives agents time to reconnect after it.
    pub(crate) started_at: Option<crate::domain::Millis>,
    /// At most one metric sample per agent per this many ms
    /// (`[retention] metric_sample_secs`, see `crate::history`).
    pub(crate) metric_sample_ms: crate::domain::Millis,
    /// Committed changes, for the dashboard's live updates.
    live: Live,
}

// === impl Service ===

impl Service {
    /// Decisions over `store` with the default policy and limits.
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Self {
            live: Live::new(store.clone()),
            store,
            policy: Arc::default(),
            limits: Arc::default(),
            routes: Arc::new(RwLock::new(Arc::from(Vec::new()))),
            started_at: None,
            metric_sample_ms: crate::retention::RetentionConfig::default().metric_sample_ms(),
        }
    }

    /// Keeps at most one metric sample per agent per `ms` (see `crate::history`).
    #[must_use]
    pub fn with_metric_sample_ms(mut self, ms: crate::domain::Millis) -> Self {
        self.metric_sample_ms = ms;
        self
    }

    /// Marks the moment this collector starts serving agents.
    #[must_use]
    pub fn serving_since(mut self, now: crate::domain::Millis) -> Self {
        self.started_at = Some(now);
        self
    }

    /// Uses `policy` for ticket decisions.
    #[must_use]
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Uses `limits` (series caps, clock skew tolerance).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Arc::new(limits);
        self
    }

    /// The storage, for reads.
    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    /// The change feed the dashboard's live updates subscribe to.
    pub fn live(&self) -> &Live {
        &self.live
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the configured sinks' routes (config, held in memory): every
    /// later ticket event that notifies is filed, in its own transaction,
    /// for each matching sink. The CLI's service has them too, so a ticket
    /// changed from the CLI notifies like one changed by the server.
    pub fn set_sink_routes(&self, routes: &[SinkRoute]) {
        *self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(routes.to_vec());
    }

    /// Logs outbox rows pending for a sink the routes no longer name: they
    /// stay (visible in the API) and are delivered if it comes back under
    /// the same name.
    pub async fn warn_about_orphaned_outbox_rows(&self) -> Result<()> {
        let routes = self.routes();
        for (sink, rows) in self.store.pending_by_sink().await? {
            if !routes.iter().any(|r| r.name == sink) {
                tracing::warn!(
                    sink,
                    rows,
                    "outbox rows pending for a sink that is no longer configured"
                );
            }
        }
        Ok(())
    }

    pub(crate) fn routes(&self) -> Arc<[SinkRoute]> {
        self.routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A write transaction with what decisions inside it need.
    pub(crate) async fn begin(&self) -> Result<Desk<'_>> {
        Ok(Desk {
            tx: self.store.begin().await?,
            policy: &self.policy,
            routes: self.routes(),
            live: &self.live,
            changes: Vec::new(),
        })
    }
}

/// One write transaction and the policy and routes its decisions use.
pub struct Desk<'s> {
    pub tx: Box<dyn WriteTx>,
    pub policy: &'s Policy,
    pub routes: Arc<[SinkRoute]>,
    live: &'s Live,
    /// What this transaction changed, published once it commits.
    changes: Vec<Change>,
}

impl Desk<'_> {
    /// Commits, then publishes what changed to the live feed.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.live.publish(self.changes);
        Ok(())
    }

    /// Notes that tenant `tenant_id`'s `kind` changed in this transaction
    /// (told to live subscribers only if it commits).
    pub fn changed(&mut self, tenant_id: &str, kind: Kind) {
        if !self
            .changes
            .iter()
            .any(|c| c.kind == kind && c.tenant_id == tenant_id)
        {
            self.changes.push(Change {
                tenant_id: tenant_id.to_string(),
                kind,
            });
        }
    }
}

impl<'s> Desk<'s> {
    /// The policy as it applies to tenant `tenant_id` (overrides are keyed
    /// by tenant name, rows carry the id). Without overrides: no query.
    pub async fn policy_for(&mut self, tenant_id: &str) -> Result<std::borrow::Cow<'s, Policy>> {
        let policy: &'s Policy = self.policy;
        if policy.tenants.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(policy));
        }
        Ok(match self.tx.tenant_name(tenant_id).await? {
            Some(name) => policy.for_tenant(&name),
            None => std::borrow::Cow::Borrowed(policy),
        })
    }
}
