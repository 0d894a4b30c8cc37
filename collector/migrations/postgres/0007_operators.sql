-- Operators (people at the dashboard), their tenants, their browser
-- sessions and one-time setup links; API keys gain disable/revoke; the
-- audit log records where each change came from.

CREATE TABLE operators (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; NULL until the operator sets a password through
    -- a setup link (there is never a default password).
    password_hash  TEXT,
    -- Base32 TOTP secret (RFC 6238, SHA-1, 6 digits, 30 s); NULL: no TOTP.
    totp_secret    TEXT,
    role           TEXT NOT NULL CHECK (role IN ('msp-admin', 'technician', 'viewer')),
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    disabled_at    BIGINT,
    -- Revoked for good: cannot log in or be enabled again.
    revoked_at     BIGINT,
    last_login_at  BIGINT
);

-- The tenants a technician or viewer works on (msp-admins see all).
CREATE TABLE operator_tenants (
    operator_id  TEXT NOT NULL REFERENCES operators(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (operator_id, tenant_id)
);

-- Browser sessions: only the SHA-256 of the cookie's value is stored.
CREATE TABLE operator_sessions (
    id_hash       TEXT PRIMARY KEY,
    operator_id   TEXT NOT NULL REFERENCES operators(id),
    -- Sent back with every state-changing form (synchronizer token).
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    source        TEXT NOT NULL
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_by_last_seen ON operator_sessions (last_seen_at);

-- One-time links that let an operator set a password (first start, new
-- operator, reset). Only the hash of the token is stored.
CREATE TABLE setup_links (
    token_hash   TEXT PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators(id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);

ALTER TABLE api_keys ADD COLUMN disabled_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
UPDATE api_keys SET role = 'msp-admin' WHERE role = 'admin';

ALTER TABLE audit_log ADD COLUMN source TEXT NOT NULL DEFAULT '';
