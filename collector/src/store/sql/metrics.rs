// Metric history, both backends (included by each backend module): one
// insert per sample a report decided to keep (`crate::history`), and the
// scoped read of one agent's samples in a time range. What to sample, and
// how to bucket a range for a chart, is decided above.

#[async_trait]
impl MetricTx for Tx {
    async fn insert_metric_sample(&mut self, s: &MetricSample) -> Result<()> {
        // A second sample at the same instant (a resend the dedup window no
        // longer remembers) changes nothing.
        sqlx::query(
            "INSERT INTO metric_samples (tenant_id, agent_id, at, cpu_centipercent,
                    memory_used_bytes, memory_total_bytes, swap_used_bytes, swap_total_bytes,
                    load1_milli, load5_milli, load15_milli, disks)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
        )
        .bind(&s.tenant_id)
        .bind(&s.agent_id)
        .bind(s.at)
        .bind(s.cpu_centipercent)
        .bind(s.memory_used_bytes)
        .bind(s.memory_total_bytes)
        .bind(s.swap_used_bytes)
        .bind(s.swap_total_bytes)
        .bind(s.load1_milli)
        .bind(s.load5_milli)
        .bind(s.load15_milli)
        .bind(&s.disks)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl MetricStore for Pooled {
    async fn agent_metrics(
        &self,
        scope: &Scope,
        agent_id: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Option<Vec<MetricSample>>> {
        let tenant: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM agents WHERE id = $2 AND ($1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%')",
        )
        .bind(scope_binding(scope))
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(tenant) = tenant else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT tenant_id, agent_id, at, cpu_centipercent, memory_used_bytes,
                    memory_total_bytes, swap_used_bytes, swap_total_bytes, load1_milli,
                    load5_milli, load15_milli, disks
             FROM metric_samples WHERE agent_id = $1 AND tenant_id = $2 AND at >= $3 AND at < $4
             ORDER BY at",
        )
        .bind(agent_id)
        .bind(&tenant)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(metric_sample_from_row).collect::<Result<_>>().map(Some)
    }
}

fn metric_sample_from_row(r: &DbRow) -> Result<MetricSample> {
    Ok(MetricSample {
        tenant_id: r.try_get("tenant_id")?,
        agent_id: r.try_get("agent_id")?,
        at: r.try_get("at")?,
        cpu_centipercent: r.try_get("cpu_centipercent")?,
        memory_used_bytes: r.try_get("memory_used_bytes")?,
        memory_total_bytes: r.try_get("memory_total_bytes")?,
        swap_used_bytes: r.try_get("swap_used_bytes")?,
        swap_total_bytes: r.try_get("swap_total_bytes")?,
        load1_milli: r.try_get("load1_milli")?,
        load5_milli: r.try_get("load5_milli")?,
        load15_milli: r.try_get("load15_milli")?,
        disks: r.try_get("disks")?,
    })
}
