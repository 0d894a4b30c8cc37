// Leases of periodic work, both backends: taken or renewed in one
// statement, outside any other transaction.

#[async_trait]
impl LeaseStore for Pooled {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool> {
        // Taken when free, expired, or already ours (renewed); the row lock
        // the upsert takes makes two takers see each other.
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < $3
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(expires_at)
        .fetch_optional(&self.pool)
        .await?;
        Ok(held.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn lease_holder(&self, name: &str, now: Millis) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2",
        )
        .bind(name)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }
}
