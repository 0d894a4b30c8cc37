-- Series caps ([limits]): how many (check, item) series each agent and each
-- tenant has, kept by triggers in the same transaction as the check_states
-- row, so admitting a new series reads two counters instead of counting
-- rows (a COUNT over a tenant's 200,000 series costs ~7 ms, paid by every
-- agent at once when a new check rolls out to a fleet). An upsert that
-- updates an existing row fires no INSERT trigger: only new series count.
ALTER TABLE agents ADD COLUMN series_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN series_count INTEGER NOT NULL DEFAULT 0;
UPDATE agents SET series_count = s.n
  FROM (SELECT agent_id, COUNT(*) AS n FROM check_states GROUP BY agent_id) AS s
  WHERE s.agent_id = agents.id;
UPDATE tenants SET series_count = s.n
  FROM (SELECT tenant_id, COUNT(*) AS n FROM check_states GROUP BY tenant_id) AS s
  WHERE s.tenant_id = tenants.id;
CREATE TRIGGER check_states_series_added AFTER INSERT ON check_states BEGIN
  UPDATE agents SET series_count = series_count + 1 WHERE id = NEW.agent_id;
  UPDATE tenants SET series_count = series_count + 1 WHERE id = NEW.tenant_id;
END;
CREATE TRIGGER check_states_series_removed AFTER DELETE ON check_states BEGIN
  UPDATE agents SET series_count = series_count - 1 WHERE id = OLD.agent_id;
  UPDATE tenants SET series_count = series_count - 1 WHERE id = OLD.tenant_id;
END;

-- Clock skew: collector receive time minus the agent's clock, measured at
-- its last session start (hello.sent_at); NULL = unknown (older agents).
ALTER TABLE agents ADD COLUMN clock_offset_ms INTEGER;
