-- A tenant's series count is the sum of its agents' counts (read only when a
-- new series arrives under a tenant cap): one counter row per tenant, written
-- by every new series of every agent, serialized all of them on PostgreSQL.
DROP TRIGGER check_states_series_added;
DROP TRIGGER check_states_series_removed;
CREATE TRIGGER check_states_series_added AFTER INSERT ON check_states BEGIN
  UPDATE agents SET series_count = series_count + 1 WHERE id = NEW.agent_id;
END;
CREATE TRIGGER check_states_series_removed AFTER DELETE ON check_states BEGIN
  UPDATE agents SET series_count = series_count - 1 WHERE id = OLD.agent_id;
END;
ALTER TABLE tenants DROP COLUMN series_count;
