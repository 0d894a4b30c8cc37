// The shared CA's row, both backends (one row, id 1).

#[async_trait]
impl CaStore for Pooled {
    async fn stored_ca(&self) -> Result<Option<StoredCa>> {
        let row = sqlx::query("SELECT cert_pem, key_sealed, origin, created_at FROM ca WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(StoredCa {
                cert_pem: r.try_get("cert_pem")?,
                key_sealed: r.try_get("key_sealed")?,
                origin: r.try_get("origin")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn store_ca_if_absent(&self, ca: &StoredCa) -> Result<StoredCa> {
        // The first writer wins; everyone reads back what is stored.
        sqlx::query(
            "INSERT INTO ca (id, cert_pem, key_sealed, origin, created_at) VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ca.cert_pem)
        .bind(&ca.key_sealed)
        .bind(&ca.origin)
        .bind(ca.created_at)
        .execute(&self.pool)
        .await?;
        self.stored_ca()
            .await?
            .ok_or_else(|| Error::Corrupt("the CA row vanished after its insert".into()))
    }
}
