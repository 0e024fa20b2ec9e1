-- PostgreSQL twin of sqlite/0006_call_trunk.sql.
-- The trunk that carried an outbound call (issue 8): with failover, the
-- last one tried. NULL for inbound calls and calls refused before dialing.
ALTER TABLE calls ADD COLUMN trunk TEXT;
