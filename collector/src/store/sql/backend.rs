// The backend-level trait impls both backends share (included by each
// backend module, which defines `BACKEND`, `begin_write`, `sweeper_lease`
// and `retention_lease`).

#[async_trait]
impl Storage for Pooled {
    async fn begin(&self) -> Result<Box<dyn WriteTx>> {
        Ok(Box::new(Tx {
            tx: begin_write(&self.pool).await?,
        }))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

#[async_trait]
impl WriteTx for Tx {
    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    async fn try_sweeper_lease(&mut self) -> Result<bool> {
        sweeper_lease(&mut self.tx).await
    }

    async fn try_retention_lease(&mut self) -> Result<bool> {
        retention_lease(&mut self.tx).await
    }
}
