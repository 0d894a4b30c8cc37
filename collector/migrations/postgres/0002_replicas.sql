-- Same as migrations/sqlite/0011 (BIGINT for INTEGER).
-- Several collectors (replicas) on one database.
--
-- Outbox claims: a replica's delivery loop claims the rows it is about to
-- send (claimed_by = its replica id, until claim_until, Unix ms), so two
-- replicas never send the same event at once; a claim whose replica died
-- expires and the row is claimed again. Both are cleared when the attempt
-- is recorded.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_until BIGINT;
-- A replica's own claims, released at a clean shutdown.
CREATE INDEX outbox_claims ON outbox (claimed_by) WHERE state = 'pending' AND claimed_by IS NOT NULL;

-- The CA every replica shares (PostgreSQL; a SQLite collector keeps its CA
-- in <data_dir>/pki/ and leaves this table empty). One row. The key is
-- sealed with the key-encryption key of [pki] kek_file: "v1:" and base64 of
-- nonce || AES-256-GCM ciphertext, the certificate's fingerprint as
-- associated data. origin: 'generated' or 'imported' (from pki/ files).
CREATE TABLE ca (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    cert_pem    TEXT NOT NULL,
    key_sealed  TEXT NOT NULL,
    origin      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
