-- When the agent's current session started (collector time): a check it
-- has not reported for a while *within* one session is one it no longer
-- has (see store/sqlite/retire.rs); across a reconnect nothing is inferred.
ALTER TABLE agents ADD COLUMN connected_at INTEGER;
CREATE INDEX check_states_by_agent_age ON check_states (agent_id, updated_at);
