-- PostgreSQL twin of sqlite/0013_recording.sql.
-- Call recording (issue 9): per tenant a mode and how many days recordings
-- are kept; a group may have its own mode. No row: off, kept 90 days.
CREATE TABLE recording_policy (
    tenant_id       BIGINT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    mode            TEXT NOT NULL CHECK (mode IN ('off', 'all', 'onDemand')),
    retention_days  BIGINT NOT NULL
);
CREATE TABLE recording_groups (
    tenant_id  BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    group_no   TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('off', 'all', 'onDemand')),
    PRIMARY KEY (tenant_id, group_no)
);
-- 1 while the call has a recording on disk (0 again once retention removed it).
ALTER TABLE calls ADD COLUMN recorded BIGINT NOT NULL DEFAULT 0;
CREATE INDEX calls_recorded ON calls(recorded, hangup_ms) WHERE recorded = 1;
