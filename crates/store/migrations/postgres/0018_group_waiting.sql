-- PostgreSQL twin of sqlite/0018_group_waiting.sql.
-- Callers waiting in a group's queue (issue 10): how long a caller may wait
-- for an agent (0: no queue, 480 when nobody is free, as before) and the
-- group of the same tenant a caller moves to when that wait runs out
-- (NULL: the call ends).
ALTER TABLE agent_groups ADD COLUMN max_wait_secs BIGINT NOT NULL DEFAULT 0
    CHECK (max_wait_secs BETWEEN 0 AND 3600);
ALTER TABLE agent_groups ADD COLUMN overflow_group TEXT
    CHECK (overflow_group IS NULL OR length(overflow_group) BETWEEN 1 AND 32);
