// API keys, operators, sessions and setup links (included by each backend
// module, where `Pooled` is its store type with a `pool` field).

fn api_key_from_row(r: &DbRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        tenant_name: r.try_get("tenant_name")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

macro_rules! select_api_keys {
    ($rest:literal) => {
        concat!(
            "SELECT k.id, k.tenant_id, n.name AS tenant_name, k.name, k.role,
                    k.created_at, k.disabled_at, k.revoked_at, k.last_used_at
             FROM api_keys k LEFT JOIN tenants n ON n.id = k.tenant_id ",
            $rest
        )
    };
}

#[async_trait]
impl KeyStore for Pooled {
    async fn create_api_key(&self, k: &NewApiKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at, role) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.id)
        .bind(&k.tenant_id)
        .bind(&k.name)
        .bind(&k.key_hash)
        .bind(crate::domain::now_millis())
        .bind(k.role.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>> {
        sqlx::query(select_api_keys!("WHERE k.key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn list_api_keys(&self, scope: &Scope) -> Result<Vec<ApiKeyRow>> {
        // An MSP-wide key (no tenant) shows only to an all-tenants scope.
        let rows = sqlx::query(select_api_keys!(
            "WHERE ($1 IS NULL OR $1 LIKE '%,' || k.tenant_id || ',%')
             ORDER BY k.created_at DESC, k.id"
        ))
        .bind(scope_binding(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn set_api_key_disabled(&self, id: &str, at: Option<Millis>) -> Result<bool> {
        let done = sqlx::query("UPDATE api_keys SET disabled_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_api_key(&self, id: &str, at: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_api_key(&self, id: &str, at: Millis) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn operator_from_row(r: &DbRow, tenant_ids: Vec<String>) -> Result<OperatorRow> {
    Ok(OperatorRow {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret: r.try_get("totp_secret")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        disabled_at: r.try_get("disabled_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_login_at: r.try_get("last_login_at")?,
        tenant_ids,
    })
}

fn session_from_row(r: &DbRow) -> Result<OperatorSession> {
    Ok(OperatorSession {
        id_hash: r.try_get("id_hash")?,
        operator_id: r.try_get("operator_id")?,
        csrf_token: r.try_get("csrf_token")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        source: r.try_get("source")?,
    })
}

impl Pooled {
    /// The operator `row` names, with its granted tenants.
    async fn operator_with_tenants(&self, row: Option<DbRow>) -> Result<Option<OperatorRow>> {
        let Some(r) = row else {
            return Ok(None);
        };
        let id: String = r.try_get("id")?;
        let tenants = sqlx::query_scalar(
            "SELECT tenant_id FROM operator_tenants WHERE operator_id = $1 ORDER BY tenant_id",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        operator_from_row(&r, tenants).map(Some)
    }
}

#[async_trait]
impl OperatorStore for Pooled {
    async fn create_operator(&self, op: &NewOperator<'_>) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO operators (id, username, role, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(op.id)
        .bind(op.username)
        .bind(op.role)
        .bind(op.created_at)
        .bind(op.created_by)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "operator {:?} already exists",
                op.username
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn operator_by_name(&self, username: &str) -> Result<Option<OperatorRow>> {
        let row = sqlx::query("SELECT * FROM operators WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        self.operator_with_tenants(row).await
    }

    async fn operator(&self, id: &str) -> Result<Option<OperatorRow>> {
        let row = sqlx::query("SELECT * FROM operators WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        self.operator_with_tenants(row).await
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRow>> {
        let rows = sqlx::query("SELECT * FROM operators ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        let grants: Vec<(String, String)> = sqlx::query_as(
            "SELECT operator_id, tenant_id FROM operator_tenants ORDER BY operator_id, tenant_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let mine = grants
                    .iter()
                    .filter(|(o, _)| *o == id)
                    .map(|(_, t)| t.clone())
                    .collect();
                operator_from_row(r, mine)
            })
            .collect()
    }

    async fn count_operators(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM operators")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn set_operator_tenants(&self, id: &str, tenant_ids: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM operator_tenants WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for t in tenant_ids {
            sqlx::query("INSERT INTO operator_tenants (operator_id, tenant_id) VALUES ($1, $2)")
                .bind(id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_operator_password(&self, id: &str, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE operators SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_operator_totp(&self, id: &str, secret: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE operators SET totp_secret = $2 WHERE id = $1")
            .bind(id)
            .bind(secret)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_operator_disabled(&self, id: &str, at: Option<Millis>) -> Result<bool> {
        let done = sqlx::query("UPDATE operators SET disabled_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_operator(&self, id: &str, at: Millis) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE operators SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_login(&self, id: &str, at: Millis) -> Result<()> {
        sqlx::query("UPDATE operators SET last_login_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_setup_link(&self, l: &SetupLinkRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO setup_links (token_hash, operator_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&l.token_hash)
        .bind(&l.operator_id)
        .bind(l.created_at)
        .bind(l.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_setup_link(&self, token_hash: &str, now: Millis) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "UPDATE setup_links SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING operator_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn insert_session(&self, s: &OperatorSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_sessions (id_hash, operator_id, csrf_token, created_at, last_seen_at, source)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.operator_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(&s.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<OperatorSession>> {
        sqlx::query("SELECT * FROM operator_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn touch_session(&self, id_hash: &str, at: Millis) -> Result<()> {
        sqlx::query("UPDATE operator_sessions SET last_seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_operator_sessions(&self, operator_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1")
            .bind(operator_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn prune_sessions(&self, before: Millis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM operator_sessions WHERE last_seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
