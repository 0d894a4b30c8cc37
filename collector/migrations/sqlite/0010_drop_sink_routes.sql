-- Sink routes are configuration: the collector holds them in memory (set at
-- start) and routes each ticket event against them, so the table that
-- mirrored them is no longer read or written.
DROP TABLE sink_routes;
