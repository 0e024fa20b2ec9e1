-- PostgreSQL twin of sqlite/0026_nodes.sql: nodes sharing one database
-- (issue 12), their heartbeats, and the node that carried each call.
CREATE TABLE nodes (
    name          TEXT PRIMARY KEY,
    started_ms    BIGINT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL,
    draining      BIGINT NOT NULL DEFAULT 0,
    gone_ms       BIGINT
);

ALTER TABLE calls ADD COLUMN node TEXT;
