-- PostgreSQL twin of sqlite/0002_calls.sql.
-- Phone numbers a tenant owns (DIDs). `pool`: may be picked as the caller
-- number when a callOut leaves `caller` empty.
CREATE TABLE dids (
    number     TEXT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants(id),
    pool       BIGINT NOT NULL DEFAULT 1,
    group_id   BIGINT REFERENCES agent_groups(id)
);

-- Call records (CDR): every call, placed or refused.
CREATE TABLE calls (
    id             TEXT PRIMARY KEY,
    tenant_id      BIGINT NOT NULL REFERENCES tenants(id),
    seat_id        BIGINT REFERENCES seats(id),
    direction      BIGINT NOT NULL,
    caller         TEXT NOT NULL,
    callee         TEXT NOT NULL,
    order_id       TEXT NOT NULL DEFAULT '',
    params         TEXT NOT NULL DEFAULT '',
    other          TEXT NOT NULL DEFAULT '',
    start_ms       BIGINT NOT NULL,
    connected_ms   BIGINT,
    hangup_ms      BIGINT,
    hangup_code    BIGINT,
    sip_code       BIGINT
);
CREATE INDEX calls_tenant_start ON calls(tenant_id, start_ms);
