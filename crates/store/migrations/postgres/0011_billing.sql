-- PostgreSQL twin of sqlite/0011_billing.sql.
-- Billing (issue 9): each tenant's rates by destination, and what each
-- answered call was billed.
CREATE TABLE rates (
    tenant_id              BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The start of the E.164 numbers it applies to; the longest match wins.
    prefix                 TEXT NOT NULL,
    millicents_per_minute  BIGINT NOT NULL,
    first_secs             BIGINT NOT NULL,
    next_secs              BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, prefix)
);
ALTER TABLE calls ADD COLUMN billed_secs BIGINT;
ALTER TABLE calls ADD COLUMN cost_millicents BIGINT;
