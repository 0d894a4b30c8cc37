// The fleet view's grouped reads, shared by both backends (included by
// each backend module).

#[async_trait]
impl FleetStore for Pooled {
    async fn fleet_rows(&self, scope: &Scope) -> Result<FleetRows> {
        let scope = scope_binding(scope);
        let checks = sqlx::query(
            "SELECT agent_id, check_kind, state, COUNT(*) AS n FROM check_states
             WHERE ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')
             GROUP BY agent_id, check_kind, state",
        )
        .bind(&scope)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<FleetCheckCount> {
            Ok(FleetCheckCount {
                agent_id: r.try_get("agent_id")?,
                check: r.try_get("check_kind")?,
                state: r.try_get("state")?,
                count: r.try_get("n")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let tickets = sqlx::query(
            "SELECT agent_id, COUNT(*) AS n,
                    SUM(CASE WHEN ack_breached <> 0 OR resolve_breached <> 0 THEN 1 ELSE 0 END) AS late
             FROM tickets
             WHERE state = 'open' AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')
             GROUP BY agent_id",
        )
        .bind(&scope)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<FleetTicketCount> {
            Ok(FleetTicketCount {
                agent_id: r.try_get("agent_id")?,
                open: r.try_get("n")?,
                breached: r.try_get::<Option<i64>, _>("late")?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(FleetRows { checks, tickets })
    }
}
