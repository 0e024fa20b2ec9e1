-- PostgreSQL twin of sqlite/0023_group_ring_timeout.sql.
-- How long each offer of a group's calls rings an agent before the next
-- (issue 10); 0: the server's calls.ring_timeout_secs.
ALTER TABLE agent_groups ADD COLUMN ring_timeout_secs BIGINT NOT NULL DEFAULT 0
    CHECK (ring_timeout_secs BETWEEN 0 AND 300);
