// Problems and check states inside a write transaction (included by each
// backend module).

fn stored_problem(r: &DbRow) -> Result<StoredProblem> {
    Ok(StoredProblem {
        engine: r.try_get("engine")?,
        message: r.try_get("message")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl ProblemTx for Tx {
    async fn problem_for_update(
        &mut self,
        tenant_id: &str,
        fingerprint: &str,
    ) -> Result<Option<StoredProblem>> {
        let row = sqlx::query(concat!(
            "SELECT engine, message, updated_at FROM problems WHERE tenant_id = $1 AND fingerprint = $2",
            for_update!()
        ))
        .bind(tenant_id)
        .bind(fingerprint)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(stored_problem).transpose()
    }

    async fn save_problem(&mut self, p: &SaveProblem<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO problems (tenant_id, fingerprint, agent_id, check_kind, item, engine, message, observed_at, waiting, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)
             ON CONFLICT (tenant_id, fingerprint) DO UPDATE SET
               engine = excluded.engine, message = excluded.message, observed_at = excluded.observed_at,
               waiting = excluded.waiting, updated_at = excluded.updated_at",
        )
        .bind(p.tenant_id)
        .bind(p.fingerprint)
        .bind(p.agent_id)
        .bind(p.check)
        .bind(p.item)
        .bind(p.engine)
        .bind(p.message)
        .bind(p.now)
        .bind(i64::from(p.waiting))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn delete_problem(&mut self, tenant_id: &str, fingerprint: &str) -> Result<()> {
        sqlx::query("DELETE FROM problems WHERE tenant_id = $1 AND fingerprint = $2")
            .bind(tenant_id)
            .bind(fingerprint)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn delete_agent_problems(&mut self, tenant_id: &str, agent_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM problems WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant_id)
            .bind(agent_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn waiting_problems(&mut self, limit: i64) -> Result<Vec<WaitingProblem>> {
        let rows = sqlx::query(
            "SELECT tenant_id, agent_id, check_kind, item, engine, message, updated_at FROM problems
             WHERE waiting = 1 ORDER BY tenant_id, agent_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WaitingProblem {
                    tenant_id: r.try_get("tenant_id")?,
                    agent_id: r.try_get("agent_id")?,
                    check: r.try_get("check_kind")?,
                    item: r.try_get("item")?,
                    stored: stored_problem(r)?,
                })
            })
            .collect()
    }

    async fn check_observed_at(
        &mut self,
        agent_id: &str,
        check: &str,
        item: &str,
    ) -> Result<Option<Millis>> {
        Ok(sqlx::query_scalar(
            "SELECT observed_at FROM check_states WHERE agent_id = $1 AND check_kind = $2 AND item = $3",
        )
        .bind(agent_id)
        .bind(check)
        .bind(item)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn upsert_check_state(&mut self, s: &CheckStateWrite<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (agent_id, check_kind, item) DO UPDATE SET
               state = excluded.state, message = excluded.message, metrics = excluded.metrics,
               since = excluded.since, observed_at = excluded.observed_at, updated_at = excluded.updated_at",
        )
        .bind(s.tenant_id)
        .bind(s.agent_id)
        .bind(s.check)
        .bind(s.item)
        .bind(s.state)
        .bind(s.message)
        .bind(s.metrics)
        .bind(s.since)
        .bind(s.observed_at)
        .bind(s.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn stale_checks(&mut self, agent_id: &str, before: Millis) -> Result<Vec<StaleCheck>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT check_kind, item, state FROM check_states WHERE agent_id = $1 AND updated_at < $2",
        )
        .bind(agent_id)
        .bind(before)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(check, item, state)| StaleCheck { check, item, state })
            .collect())
    }

    async fn delete_check_state(&mut self, agent_id: &str, check: &str, item: &str) -> Result<()> {
        sqlx::query("DELETE FROM check_states WHERE agent_id = $1 AND check_kind = $2 AND item = $3")
            .bind(agent_id)
            .bind(check)
            .bind(item)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
