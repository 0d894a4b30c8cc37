// The dashboard's reads both backends share: filtered, paged lists and
// per-ticket and per-tenant views. Lists of values are bound as one
// `,a,b,` string and matched with LIKE, as the scope is.

#[async_trait]
impl DashboardStore for Pooled {
    async fn ticket_outbox(&self, scope: &Scope, ticket_id: i64) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query(
            "SELECT id, key, sink, tenant_id, ticket_id, event_id, event, status, state, attempts,
                    created_at, next_attempt_at, last_attempt_at, delivered_at, last_error
             FROM outbox WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND ticket_id = $2
             ORDER BY id",
        )
        .bind(scope_binding(scope))
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_entry_from_row).collect()
    }

    async fn tickets_per_host(
        &self,
        scope: &Scope,
        tenant_id: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<HostTicketCount>> {
        let rows = sqlx::query(
            "SELECT agent_id, MAX(host) AS host, COUNT(*) AS n,
                    SUM(CASE WHEN severity = 'crit' THEN 1 ELSE 0 END) AS crit
             FROM tickets
             WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%') AND tenant_id = $2
               AND opened_at >= $3 AND opened_at < $4 AND kind IN ('check', 'agent')
             GROUP BY agent_id ORDER BY n DESC, host LIMIT $5",
        )
        .bind(scope_binding(scope))
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HostTicketCount {
                    agent_id: r.try_get("agent_id")?,
                    host: r.try_get("host")?,
                    tickets: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                    crit: u64::try_from(r.try_get::<i64, _>("crit")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn check_states_of(
        &self,
        scope: &Scope,
        tenant_id: &str,
        checks: &[&str],
    ) -> Result<Vec<HostCheckRow>> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT c.agent_id, a.hostname, c.check_kind, c.item, c.state, c.message, c.metrics,
                    c.since, c.updated_at
             FROM check_states c JOIN agents a ON a.id = c.agent_id
             WHERE ($1 IS NULL OR $1 LIKE '%,' || c.tenant_id || ',%') AND c.tenant_id = $2
               AND a.revoked_at IS NULL AND $3 LIKE '%,' || c.check_kind || ',%'
             ORDER BY a.hostname, c.agent_id, c.check_kind, c.item",
        )
        .bind(scope_binding(scope))
        .bind(tenant_id)
        .bind(format!(",{},", checks.join(",")))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HostCheckRow {
                    agent_id: r.try_get("agent_id")?,
                    host: r.try_get("hostname")?,
                    check: check_state_from_row(r)?,
                })
            })
            .collect()
    }

    async fn audit_page(
        &self,
        scope: &Scope,
        filter: &AuditFilter,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, tenant_id, actor, action, target, detail, source FROM audit_log
             WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')
               AND ($2 IS NULL OR tenant_id = $2) AND ($3 IS NULL OR actor = $3)
               AND ($4 IS NULL OR action = $4)
             ORDER BY id DESC LIMIT $5 OFFSET $6",
        )
        .bind(scope_binding(scope))
        .bind(filter.tenant_id.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.action.as_deref())
        .bind(i64::from(limit.clamp(1, 1000)))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
