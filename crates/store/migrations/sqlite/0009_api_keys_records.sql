-- Keys for a CRM's back end (issue 9): per tenant, with scopes; only the
-- key's SHA-256 is kept (the key itself is shown once, when made).
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    key_digest    TEXT NOT NULL UNIQUE,
    -- The key's first characters, so that an admin can tell keys apart.
    prefix        TEXT NOT NULL,
    -- Space-separated: records:read recordings:read webhooks:write users:write
    scopes        TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    revoked_ms    INTEGER,
    last_used_ms  INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

-- Who ended a call: agent, customer, carrier or system.
ALTER TABLE calls ADD COLUMN hung_up_by TEXT;
-- The records API filters by these.
CREATE INDEX calls_tenant_order ON calls(tenant_id, order_id);
