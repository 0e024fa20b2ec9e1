-- Phone numbers a tenant owns (DIDs). `pool`: may be picked as the caller
-- number when a callOut leaves `caller` empty.
CREATE TABLE dids (
    number     TEXT PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    pool       INTEGER NOT NULL DEFAULT 1,
    group_id   INTEGER REFERENCES agent_groups(id)
);

-- Call records (CDR): every call, placed or refused.
CREATE TABLE calls (
    id             TEXT PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants(id),
    seat_id        INTEGER REFERENCES seats(id),
    direction      INTEGER NOT NULL,
    caller         TEXT NOT NULL,
    callee         TEXT NOT NULL,
    order_id       TEXT NOT NULL DEFAULT '',
    params         TEXT NOT NULL DEFAULT '',
    other          TEXT NOT NULL DEFAULT '',
    start_ms       INTEGER NOT NULL,
    connected_ms   INTEGER,
    hangup_ms      INTEGER,
    hangup_code    INTEGER,
    sip_code       INTEGER
);
CREATE INDEX calls_tenant_start ON calls(tenant_id, start_ms);
