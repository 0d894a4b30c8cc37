-- Enrollment tokens can be revoked; a revoked token is refused like an
-- expired one. token_hash is already UNIQUE (indexed): enrollment looks a
-- token up by the SHA-256 of the presented secret.
ALTER TABLE enrollment_tokens ADD COLUMN revoked_at INTEGER;
CREATE INDEX enrollment_tokens_by_tenant ON enrollment_tokens (tenant_id, created_at);
