-- Metric history for the Host page's charts: at most one sample per agent
-- per `[retention] metric_sample_secs`, taken from heartbeats in the
-- report's own transaction (collector/src/history.rs decides which).
--
-- Only integers and text, as everywhere (one row mapping for both
-- backends, and `store copy` moves integers and text): CPU in hundredths
-- of a percent, load averages in thousandths. Swap is NULL on a host
-- without swap. `disks` is compact JSON, one object per mount:
-- {"mount":"/","used_bytes":…,"total_bytes":…,"full_at":ms|null}, where
-- full_at is the disk check's time-to-full projection in collector time.
-- No foreign key: like delivered_reports, a high-volume table kept cheap
-- to insert into and pruned by age.
CREATE TABLE metric_samples (
    tenant_id           TEXT NOT NULL,
    agent_id            TEXT NOT NULL,
    at                  BIGINT NOT NULL,
    cpu_centipercent    BIGINT NOT NULL,
    memory_used_bytes   BIGINT NOT NULL,
    memory_total_bytes  BIGINT NOT NULL,
    swap_used_bytes     BIGINT,
    swap_total_bytes    BIGINT,
    load1_milli         BIGINT NOT NULL,
    load5_milli         BIGINT NOT NULL,
    load15_milli        BIGINT NOT NULL,
    disks               TEXT NOT NULL,
    PRIMARY KEY (agent_id, at)
);
-- Retention deletes the oldest samples first, across agents.
CREATE INDEX metric_samples_by_age ON metric_samples (at);

-- When the agent's latest sample was taken: read with the agent's row a
-- report reads anyway, so deciding whether to sample costs no query.
ALTER TABLE agents ADD COLUMN last_sample_at BIGINT;
