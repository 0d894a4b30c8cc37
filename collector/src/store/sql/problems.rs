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

    async fn agent_problems_for_update(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
    ) -> Result<Vec<(String, StoredProblem)>> {
        let rows = sqlx::query(concat!(
            "SELECT fingerprint, engine, message, updated_at FROM problems
             WHERE tenant_id = $1 AND agent_id = $2",
            for_update!()
        ))
        .bind(tenant_id)
        .bind(agent_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("fingerprint")?, stored_problem(r)?)))
            .collect()
    }

    async fn agent_check_states(&mut self, agent_id: &str) -> Result<Vec<StoredCheck>> {
        let rows: Vec<(String, String, String, Millis, Millis)> = sqlx::query_as(
            "SELECT check_kind, item, state, observed_at, updated_at FROM check_states WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(check, item, state, observed_at, updated_at)| StoredCheck {
                check,
                item,
                state,
                observed_at,
                updated_at,
            })
            .collect())
    }

    async fn upsert_check_states(&mut self, states: &[CheckStateWrite<'_>]) -> Result<()> {
        // Bound by the statement's parameter limit (10 a row): a report
        // carries far fewer results than that allows per chunk.
        for chunk in states.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, s| {
                b.push_bind(s.tenant_id)
                    .push_bind(s.agent_id)
                    .push_bind(s.check)
                    .push_bind(s.item)
                    .push_bind(s.state)
                    .push_bind(s.message)
                    .push_bind(s.metrics)
                    .push_bind(s.since)
                    .push_bind(s.observed_at)
                    .push_bind(s.now);
            });
            q.push(
                " ON CONFLICT (agent_id, check_kind, item) DO UPDATE SET
                   state = excluded.state, message = excluded.message, metrics = excluded.metrics,
                   since = excluded.since, observed_at = excluded.observed_at, updated_at = excluded.updated_at",
            );
            q.build().execute(&mut *self.tx).await?;
        }
        Ok(())
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
