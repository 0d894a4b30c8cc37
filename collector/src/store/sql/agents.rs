// Agents, tenants, tokens and audit inside a write transaction (included
// by each backend module, where `Tx` wraps its transaction and
// `for_update!()` is its row-lock suffix).

#[async_trait]
impl AgentTx for Tx {
    async fn agent_for_update(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
    ) -> Result<Option<AgentRow>> {
        let row = sqlx::query(concat!(
            "SELECT a.site, a.hostname, a.role, a.overdue, a.revoked_at, a.interval_secs, a.connected_at,
                    a.clock_offset_ms, a.last_sample_at, n.name AS tenant_name
             FROM agents a JOIN tenants n ON n.id = a.tenant_id WHERE a.id = $1 AND a.tenant_id = $2",
            for_update!("a")
        ))
        .bind(agent_id)
        .bind(tenant_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(AgentRow {
                tenant_id: tenant_id.to_string(),
                tenant: r.try_get("tenant_name")?,
                agent_id: agent_id.to_string(),
                site: r.try_get("site")?,
                host: r.try_get("hostname")?,
                role: r.try_get("role")?,
                overdue: flag(&r, "overdue")?,
                revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                interval_secs: r.try_get("interval_secs")?,
                connected_at: r.try_get("connected_at")?,
                clock_offset_ms: r.try_get("clock_offset_ms")?,
                last_sample_at: r.try_get("last_sample_at")?,
            })
        })
        .transpose()
    }

    async fn start_session(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        s: &SessionRow<'_>,
        now: Millis,
    ) -> Result<()> {
        let f = s.facts;
        sqlx::query(
            "UPDATE agents SET hostname = $1, os_name = $2, os_version = $3, kernel_version = $4, arch = $5,
                    agent_version = $6, cpu_count = $7, memory_total_bytes = $8, boot_id = $9,
                    status = 'online', last_seen_at = $10, interval_secs = $11, clock_offset_ms = $12,
                    connected_at = $10
             WHERE id = $13 AND tenant_id = $14",
        )
        .bind(&f.hostname)
        .bind(&f.os_name)
        .bind(&f.os_version)
        .bind(&f.kernel_version)
        .bind(&f.arch)
        .bind(&f.agent_version)
        .bind(i64::from(f.cpu_count))
        .bind(to_i64(f.memory_total_bytes))
        .bind(s.boot_id)
        .bind(now)
        .bind(s.interval_secs)
        .bind(s.clock_offset_ms)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn end_session(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        started_at: Millis,
        status: &str,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agents SET status = $1,
                    last_seen_at = CASE WHEN last_seen_at > $2 THEN last_seen_at ELSE $2 END
             WHERE id = $3 AND tenant_id = $4 AND status != 'offline' AND connected_at = $5",
        )
        .bind(status)
        .bind(now)
        .bind(agent_id)
        .bind(tenant_id)
        .bind(started_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_agent(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        snapshot: Option<&str>,
        sampled_at: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET last_seen_at = $1, status = 'online', snapshot = COALESCE($2, snapshot),
                    last_sample_at = COALESCE($5, last_sample_at)
             WHERE id = $3 AND tenant_id = $4",
        )
        .bind(now)
        .bind(snapshot)
        .bind(agent_id)
        .bind(tenant_id)
        .bind(sampled_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn record_delivery(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        boot_id: &str,
        seq: i64,
        now: Millis,
    ) -> Result<bool> {
        let fresh = sqlx::query(
            "INSERT INTO delivered_reports (tenant_id, agent_id, boot_id, seq, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(tenant_id)
        .bind(agent_id)
        .bind(boot_id)
        .bind(seq)
        .bind(now)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(fresh == 1)
    }

    async fn set_overdue(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        overdue_since: Option<Millis>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET overdue = $1, overdue_since = COALESCE($2, overdue_since)
             WHERE id = $3 AND tenant_id = $4",
        )
        .bind(i64::from(overdue_since.is_some()))
        .bind(overdue_since)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn overdue_candidates(
        &mut self,
        c: &OverdueCutoffs,
        limit: i64,
    ) -> Result<Vec<OverdueAgent>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, interval_secs, last_seen_at, status FROM agents
             WHERE status IN ('online', 'disconnected') AND overdue = 0 AND revoked_at IS NULL
               AND last_seen_at >= $4
               AND (last_seen_at + interval_secs * 1000 * $1 < $2
                    OR (status = 'disconnected' AND last_seen_at < $3))
             ORDER BY last_seen_at LIMIT $5",
        )
        .bind(c.intervals)
        .bind(c.now)
        .bind(c.disconnected_before)
        .bind(c.seen_since)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OverdueAgent {
                    agent_id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    interval_secs: r.try_get("interval_secs")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    disconnected: r.try_get::<String, _>("status")? == "disconnected",
                })
            })
            .collect()
    }

    async fn agent_series(&mut self, tenant_id: &str, agent_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT series_count FROM agents WHERE id = $1 AND tenant_id = $2",
        )
        .bind(agent_id)
        .bind(tenant_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn tenant_series(&mut self, tenant_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(series_count), 0) AS BIGINT) FROM agents WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn agent_tenant(&mut self, scope: &Scope, agent_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT tenant_id FROM agents WHERE id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')",
        )
        .bind(scope_binding(scope))
        .bind(agent_id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn revoke_agent(&mut self, agent_id: &str, now: Millis) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE agents SET revoked_at = $1, status = 'offline' WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(agent_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn set_cert_not_after(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        not_after: Millis,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE agents SET cert_not_after = $1
             WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(not_after)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn tenant_name(&mut self, tenant_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn tenant_id(&mut self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn set_time_zone(&mut self, tenant_id: &str, time_zone: &str) -> Result<bool> {
        let changed = sqlx::query("UPDATE tenants SET time_zone = $1 WHERE id = $2")
            .bind(time_zone)
            .bind(tenant_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn token_tenant(&mut self, scope: &Scope, id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT tenant_id FROM enrollment_tokens WHERE id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')",
        )
        .bind(scope_binding(scope))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn revoke_token(&mut self, id: &str, now: Millis) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn token(&mut self, id: &str) -> Result<EnrollmentToken> {
        let row = sqlx::query(concat!(select_tokens!(), " WHERE t.id = $1"))
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?;
        token_from_row(&row)
    }
}

#[async_trait]
impl AuditTx for Tx {
    async fn insert_audit(&mut self, e: Audit<'_>) -> Result<()> {
        insert_audit(&mut *self.tx, e).await
    }
}

#[async_trait]
impl MaintenanceTx for Tx {
    async fn windows_for_agent(
        &mut self,
        tenant_id: &str,
        site: &str,
        agent_id: &str,
    ) -> Result<Vec<WindowRow>> {
        let rows = sqlx::query(select_windows!(
            "WHERE w.tenant_id = $1 AND (w.site IS NULL OR w.site = $2) AND (w.agent_id IS NULL OR w.agent_id = $3)"
        ))
        .bind(tenant_id)
        .bind(site)
        .bind(agent_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(window_from_row).collect()
    }

    async fn active_windows(&mut self, now: Millis) -> Result<Vec<WindowRow>> {
        let rows = sqlx::query(select_windows!(
            "WHERE w.kind IN ('weekly', 'rrule') OR (w.start_at <= $1 AND w.end_at > $1) ORDER BY w.tenant_id"
        ))
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(window_from_row).collect()
    }

    async fn insert_window(&mut self, w: &NewWindowRow<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO maintenance_windows (tenant_id, kind, site, agent_id, check_kind, start_at, end_at,
                                              weekdays, start_minute, duration_secs, rrule, dtstart,
                                              reason, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(w.tenant_id)
        .bind(w.kind)
        .bind(w.site)
        .bind(w.agent_id)
        .bind(w.check)
        .bind(w.start_at)
        .bind(w.end_at)
        .bind(w.weekdays)
        .bind(w.start_minute)
        .bind(w.duration_secs)
        .bind(w.rrule)
        .bind(w.dtstart)
        .bind(w.reason)
        .bind(w.created_by)
        .bind(w.created_at)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn window(&mut self, scope: &Scope, id: i64) -> Result<Option<WindowRow>> {
        let row = sqlx::query(select_windows!(
            "WHERE w.id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || w.tenant_id || ',%')"
        ))
        .bind(scope_binding(scope))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(window_from_row).transpose()
    }

    async fn delete_window(&mut self, tenant_id: &str, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM maintenance_windows WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn agent_exists(&mut self, tenant_id: &str, agent_id: &str) -> Result<bool> {
        let known: Option<String> =
            sqlx::query_scalar("SELECT id FROM agents WHERE id = $1 AND tenant_id = $2")
                .bind(agent_id)
                .bind(tenant_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(known.is_some())
    }
}
