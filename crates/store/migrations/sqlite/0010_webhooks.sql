-- Webhooks (issue 9): each tenant may name one URL; every call record is
-- POSTed there once the call has ended, signed with the tenant's secret
-- (kept as is: an HMAC needs it).
CREATE TABLE webhooks (
    tenant_id   INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- The outbox: one delivery per ended call of a tenant with a webhook,
-- written in the same transaction as the record's end (by the triggers
-- below), so that no ended call is missed and none is queued twice.
-- `body` is made at the first attempt and sent unchanged at every retry.
CREATE TABLE webhook_outbox (
    id            INTEGER PRIMARY KEY,
    delivery_id   TEXT NOT NULL UNIQUE,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_id       TEXT NOT NULL UNIQUE,
    body          TEXT,
    created_ms    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       INTEGER NOT NULL,
    delivered_ms  INTEGER,
    -- Set when retries stop (delivery given up).
    failed_ms     INTEGER,
    last_status   INTEGER,
    last_error    TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(delivered_ms, failed_ms, next_ms);
CREATE INDEX webhook_outbox_tenant ON webhook_outbox(tenant_id, id);

CREATE TRIGGER calls_ended_insert AFTER INSERT ON calls
WHEN NEW.hangup_ms IS NOT NULL
 AND EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = NEW.tenant_id)
BEGIN
    INSERT OR IGNORE INTO webhook_outbox (delivery_id, tenant_id, call_id, created_ms, next_ms)
    VALUES (lower(hex(randomblob(16))), NEW.tenant_id, NEW.id, NEW.hangup_ms, 0);
END;

CREATE TRIGGER calls_ended_update AFTER UPDATE OF hangup_ms ON calls
WHEN OLD.hangup_ms IS NULL AND NEW.hangup_ms IS NOT NULL
 AND EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = NEW.tenant_id)
BEGIN
    INSERT OR IGNORE INTO webhook_outbox (delivery_id, tenant_id, call_id, created_ms, next_ms)
    VALUES (lower(hex(randomblob(16))), NEW.tenant_id, NEW.id, NEW.hangup_ms, 0);
END;
