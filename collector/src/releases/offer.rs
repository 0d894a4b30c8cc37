//! What the session asks at each hello: the update to offer this agent.
//! Holds the releases scan and the rollout, with the rollout's tenant
//! names resolved to ids once at start.

use std::sync::Arc;

use tracing::{info, warn};

use super::rollout::{Asker, Rollout, choose};
use super::{Artifact, Releases};
use crate::store::Storage;
use crate::{Config, Result};

/// The releases and the rollout, as the session uses them.
#[derive(Clone)]
pub struct Offers {
    releases: Releases,
    /// Tenants keyed by id.
    rollout: Arc<Rollout>,
}

impl Offers {
    /// From the config; rollout tenants named in the config but absent from
    /// the store are logged and left out.
    pub async fn from_config(cfg: &Config, store: &dyn Storage) -> Result<Self> {
        let releases = Releases::from_config(cfg)?;
        let mut rollout = cfg.releases.rollout.clone();
        let mut by_id = std::collections::BTreeMap::new();
        for (name, ring) in std::mem::take(&mut rollout.tenants) {
            match store.tenant_by_name(&name).await? {
                Some(t) => {
                    by_id.insert(t.id, ring);
                }
                None => warn!(
                    tenant = name,
                    "releases.rollout.tenants: no such tenant, its rule is ignored"
                ),
            }
        }
        rollout.tenants = by_id;
        if !rollout.is_empty() {
            info!(
                version = rollout.version.as_deref().unwrap_or("none"),
                canary_version = rollout.canary_version.as_deref().unwrap_or("none"),
                canary_agents = rollout.canary_agents.len(),
                tenant_rules = rollout.tenants.len(),
                dir = %releases.dir().display(),
                "agent update rollout"
            );
        }
        Ok(Self {
            releases,
            rollout: Arc::new(rollout),
        })
    }

    /// The releases scan (for downloads).
    pub fn releases(&self) -> &Releases {
        &self.releases
    }

    /// The artifact to offer `asker` (`asker.tenant` is the tenant id).
    pub async fn offer(&self, asker: &Asker<'_>) -> Result<Option<Artifact>> {
        if self.rollout.is_empty() {
            return Ok(None);
        }
        let scan = self.releases.current().await?;
        Ok(choose(&self.rollout, &scan, asker).cloned())
    }
}
