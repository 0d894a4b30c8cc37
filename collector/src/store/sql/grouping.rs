// Site outage and same-check grouping queries inside a write transaction
// (included by each backend module).

#[async_trait]
impl GroupingTx for Tx {
    async fn site_counts(&mut self, site_prefix: &str) -> Result<Vec<SiteCount>> {
        let rows = sqlx::query(
            "SELECT s.tenant_id, s.site, s.down, s.hosts, s.ticket FROM (
               SELECT a.tenant_id, a.site,
                      CAST(SUM(CASE WHEN a.overdue = 1 THEN 1 ELSE 0 END) AS BIGINT) AS down,
                      COUNT(*) AS hosts,
                      (SELECT t.id FROM tickets t WHERE t.tenant_id = a.tenant_id
                         AND t.fingerprint = $1 || a.site AND t.state = 'open') AS ticket
               FROM agents a WHERE a.revoked_at IS NULL
               GROUP BY a.tenant_id, a.site) s
             WHERE s.down > 0 OR s.ticket IS NOT NULL
             ORDER BY s.tenant_id, s.site",
        )
        .bind(site_prefix)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SiteCount {
                    tenant_id: r.try_get("tenant_id")?,
                    site: r.try_get("site")?,
                    down: r.try_get("down")?,
                    hosts: r.try_get("hosts")?,
                    ticket: r.try_get("ticket")?,
                })
            })
            .collect()
    }

    async fn overdue_hostnames(
        &mut self,
        tenant_id: &str,
        site: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT hostname FROM agents WHERE tenant_id = $1 AND site = $2 AND overdue = 1
             ORDER BY hostname LIMIT $3",
        )
        .bind(tenant_id)
        .bind(site)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn earliest_overdue(&mut self, tenant_id: &str, site: &str) -> Result<Option<Millis>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(overdue_since) FROM agents WHERE tenant_id = $1 AND site = $2 AND overdue = 1",
        )
        .bind(tenant_id)
        .bind(site)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn link_site_liveness(
        &mut self,
        tenant_id: &str,
        site: &str,
        parent: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET parent_id = $1 WHERE tenant_id = $2 AND site = $3 AND kind = 'agent'
               AND state = 'open' AND parent_id IS NULL",
        )
        .bind(parent)
        .bind(tenant_id)
        .bind(site)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn group_candidates(
        &mut self,
        tenant_id: &str,
        since: Millis,
        min_hosts: i64,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT c.check_kind, c.item FROM tickets c
             WHERE c.tenant_id = $1 AND c.state = 'open' AND c.kind = 'check' AND c.opened_at >= $2
               AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = c.parent_id AND p.state = 'open')
             GROUP BY c.check_kind, c.item HAVING COUNT(DISTINCT c.agent_id) >= $3
             UNION
             SELECT p.check_kind, p.item FROM tickets p
             WHERE p.tenant_id = $1 AND p.kind = 'group' AND p.state = 'open'
               AND EXISTS (SELECT 1 FROM tickets c WHERE c.tenant_id = p.tenant_id AND c.state = 'open'
                             AND c.kind = 'check' AND c.check_kind = p.check_kind AND c.item = p.item
                             AND (c.parent_id IS NULL OR c.parent_id != p.id))
             ORDER BY 1, 2",
        )
        .bind(tenant_id)
        .bind(since)
        .bind(min_hosts)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn group_members(
        &mut self,
        tenant_id: &str,
        check: &str,
        item: &str,
    ) -> Result<Vec<GroupMember>> {
        let rows = sqlx::query(
            "SELECT c.id, c.host, c.site, c.severity, c.priority, c.detected_at FROM tickets c
             WHERE c.tenant_id = $1 AND c.state = 'open' AND c.kind = 'check' AND c.check_kind = $2
               AND c.item = $3
               AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = c.parent_id AND p.state = 'open')
             ORDER BY c.host, c.id",
        )
        .bind(tenant_id)
        .bind(check)
        .bind(item)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GroupMember {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    site: r.try_get("site")?,
                    severity: r.try_get("severity")?,
                    priority: r.try_get("priority")?,
                    detected_at: r.try_get("detected_at")?,
                })
            })
            .collect()
    }

    async fn group_hosts(&mut self, parent: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT host FROM tickets WHERE parent_id = $1 AND kind = 'check' ORDER BY host",
        )
        .bind(parent)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn ticket_severity(&mut self, id: i64) -> Result<String> {
        Ok(sqlx::query_scalar("SELECT severity FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn finished_groups(&mut self) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT p.id, p.tenant_id FROM tickets p
             WHERE p.kind = 'group' AND p.state = 'open'
               AND NOT EXISTS (SELECT 1 FROM tickets c WHERE c.parent_id = p.id AND c.state = 'open')
             ORDER BY p.id",
        )
        .fetch_all(&mut *self.tx)
        .await?)
    }
}
