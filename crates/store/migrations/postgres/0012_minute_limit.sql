-- PostgreSQL twin of sqlite/0012_minute_limit.sql.
-- Calls one agent may place to one number in a minute, every attempt
-- counted, answered or not; 0: no limit (815).
ALTER TABLE tenant_policy ADD COLUMN max_calls_per_callee_per_minute BIGINT NOT NULL DEFAULT 0;
